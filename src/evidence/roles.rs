//! Address roles: which addresses in a report are the offenders.
//!
//! In: one line of a report and where an address sits in it. Out: the
//! address's [`Role`]. Structure decides first (an address that is not
//! public, a CIDR block or range, a traceroute hop), then the label in front
//! of the address on its line ("Target:", "our server", "from", "Quelle:"),
//! in every language the rules know. Pure.
//!
//! Only `source` addresses are offenders: they alone go into a report's
//! `ips`, its case and `--ip` search.

pub use crate::model::evidence::Role;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Source,
        Role::Target,
        Role::Reporter,
        Role::Range,
        Role::Hop,
        Role::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Target => "target",
            Role::Reporter => "reporter",
            Role::Range => "range",
            Role::Hop => "hop",
            Role::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Whether `ip` can be a host on the internet: not private, loopback,
/// link-local, shared (CGNAT), multicast, broadcast or reserved. The
/// documentation ranges count as public: reports (and test data) use them.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80) // link-local
}

/// Lines that describe a network block, not a host (whois and RPSL keys).
const RANGE_KEYS: &[&str] = &[
    "inetnum", "inet6num", "netrange", "cidr", "route", "route6", "netblock", "subnet", "network",
];

/// Labels that name the victim, lower case, by language.
const TARGET_LABELS: &[&str] = &[
    "target",
    "destination",
    "dest ip",
    "dest",
    "dst",
    "victim",
    "attacked host",
    "attacked server",
    "against",
    "our server",
    "our ip",
    "our host",
    "our address",
    "our network",
    "our site",
    "our website",
    "our web server",
    "my server",
    "my ip",
    "my host",
    "my website",
    "my site",
    "honeypot",
    "sensor",
    "on host",
    "on server",
    "to host",
    "to server",
    "ziel",
    "unser server",
    "unseren server",
    "unsere ip",
    "unser host",
    "meine ip",
    "mein server",
    "meinen server",
    "cible",
    "notre serveur",
    "notre ip",
    "mon serveur",
    "mon ip",
    "objetivo",
    "destino",
    "nuestro servidor",
    "nuestra ip",
    "mi servidor",
    "mi ip",
    "alvo",
    "nosso servidor",
    "nosso ip",
    "meu servidor",
    "meu ip",
    "connecting to",
    "connected to",
    "connections to",
    "contacting",
    "to c2",
];

/// Labels that name the reporter's own infrastructure.
const REPORTER_LABELS: &[&str] = &[
    "my wan",
    "my public ip",
    "our public ip",
    "our mx",
    "our mail server",
    "our mailserver",
    "our relay",
    "our gateway",
    "my router",
    "reported by",
];

/// Labels that name a service on the way to the offender, not the
/// offender: the name servers and mail exchangers a web-fraud report
/// lists beside the hosting address, the resolver a lookup used.
const INFRA_LABELS: &[&str] = &[
    "nameserver",
    "nameservers",
    "name server",
    "name servers",
    "dns server",
    "mail exchanger",
    "resolver",
    "resolved via",
    "namensserver",
    "serveur de noms",
    "servidor de nombres",
    "servidor de nomes",
];

/// Labels that name the offender.
const SOURCE_LABELS: &[&str] = &[
    "source",
    "src",
    "attacker",
    "attacking",
    "offender",
    "offending",
    "abusive",
    "from",
    "origin",
    "originating",
    "by ip",
    "by host",
    "sender ip",
    "client",
    "quelle",
    "angreifer",
    "absender",
    "von ip",
    "attaquant",
    "depuis",
    "provenance",
    "origen",
    "atacante",
    "desde",
    "origem",
    "atacando",
    "infected host",
    "infected ip",
    "compromised host",
    "your customer",
    "your host",
    "your server",
    "your ip",
];

/// The role of the address at `line[start..end]`.
/// What decided an address's role on its line, in words, for `reports
/// explain`: the same tests as [`role_in_line`], in the same order.
pub fn why_in_line(line: &str, ip: IpAddr, role: Role) -> String {
    let written = ip.to_string();
    let Some(start) = line.find(&written) else {
        return "named in a structured field".to_owned();
    };
    let end = start + written.len();
    if !is_public(ip) {
        return "not a public address (private, loopback, link-local, shared or reserved)".into();
    }
    if is_range(line, start, end) {
        return "part of a network block (CIDR, a range, or a whois block line)".into();
    }
    if is_hop(line) {
        return "a hop of a traceroute".into();
    }
    let flow = line[..start].trim_end();
    if flow.ends_with('>') && !flow.ends_with("=>") {
        return "the right-hand side of a flow (a > b)".into();
    }
    let cut = line[..start]
        .char_indices()
        .rev()
        .nth(40)
        .map_or(0, |(i, _)| i);
    match LABELS.find_iter(&line[cut..start]).last() {
        Some(m) => format!("the label {:?} before it", m.as_str()),
        None if role != Role::Source => {
            "the label at the end of the line above (the label and the address were wrapped)".into()
        }
        None => "no label before it: an address a report names is taken as the offender".into(),
    }
}

pub fn role_in_line(line: &str, ip: IpAddr, start: usize, end: usize) -> Role {
    if !is_public(ip) {
        return Role::Other;
    }
    if is_range(line, start, end) {
        return Role::Range;
    }
    if is_hop(line) {
        return Role::Hop;
    }
    label_role(&line[..start]).unwrap_or(Role::Source)
}

/// The role the words in front of an address give it, if any: the label
/// closest to the address wins (`from 192.0.2.1 to our server 203.0.113.5`).
pub fn label_role(before: &str) -> Option<Role> {
    // `a > b`, `a -> b`: the right-hand side of a flow is its destination.
    let flow = before.trim_end();
    if flow.ends_with('>') && !flow.ends_with("=>") {
        return Some(Role::Target);
    }
    // The label is in the last few words before the address.
    let cut = before.char_indices().rev().nth(40).map_or(0, |(i, _)| i);
    let window = &before[cut..];
    // One pass of one regex over the window: the last label wins (the one
    // closest to the address); at one end, the longer one.
    let mut best: Option<(usize, usize, Role)> = None;
    for m in LABELS.find_iter(window) {
        let role = label_of(m.as_str())?;
        let better =
            best.is_none_or(|(end, len, _)| m.end() > end || (m.end() == end && m.len() > len));
        if better {
            best = Some((m.end(), m.len(), role));
        }
    }
    best.map(|(_, _, role)| role)
}

/// Every label of every role, as whole words, case-insensitive; longer
/// alternatives first so a match takes the longest label at its place.
static LABELS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    let mut all: Vec<&str> = TARGET_LABELS
        .iter()
        .chain(REPORTER_LABELS)
        .chain(INFRA_LABELS)
        .chain(SOURCE_LABELS)
        .copied()
        .collect();
    all.sort_by_key(|l| std::cmp::Reverse(l.len()));
    let alternatives: Vec<String> = all.iter().map(|l| regex::escape(l)).collect();
    crate::model::pattern::regex(&format!(r"(?i)\b(?:{})\b", alternatives.join("|")))
        .expect("valid regex")
});

/// The role a matched label (any case) gives.
fn label_of(matched: &str) -> Option<Role> {
    let lower = matched.to_lowercase();
    let is = |labels: &[&str]| labels.contains(&lower.as_str());
    if is(TARGET_LABELS) {
        Some(Role::Target)
    } else if is(REPORTER_LABELS) {
        Some(Role::Reporter)
    } else if is(INFRA_LABELS) {
        Some(Role::Other)
    } else if is(SOURCE_LABELS) {
        Some(Role::Source)
    } else {
        None
    }
}

/// A CIDR block (`192.0.2.0/24`), a range (`192.0.2.0 - 192.0.2.255`), or a
/// line that is a whois block key.
fn is_range(line: &str, start: usize, end: usize) -> bool {
    let after = &line[end..];
    if after
        .strip_prefix('/')
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    {
        return true;
    }
    let dash_then_ip = |s: &str| {
        s.trim_start()
            .strip_prefix(['-', '–'])
            .is_some_and(|r| r.trim_start().starts_with(|c: char| c.is_ascii_hexdigit()))
            && s.trim_start().len() > 1
    };
    if dash_then_ip(after) {
        return true;
    }
    let before = line[..start].trim_end();
    if let Some(head) = before.strip_suffix(['-', '–']) {
        if head.trim_end().ends_with(|c: char| c.is_ascii_hexdigit()) {
            return true;
        }
    }
    if is_spelled_range(line, start, end) {
        return true;
    }
    let key = line
        .trim_start()
        .split([':', ' ', '\t'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    RANGE_KEYS.contains(&key.as_str()) && line.contains(':')
}

/// Words that join the two ends of a range written out in prose.
const RANGE_WORDS: &[&str] = &[
    "to", "through", "thru", "until", "bis", "à", "a", "até", "hasta",
];

/// `192.0.2.0 to 192.0.2.255`: two IPv4 addresses joined by a word, in one
/// /16, the first lower, and one of them a block's edge (`.0` first or
/// `.255` last). Attacks "from 192.0.2.7 to 203.0.113.5" are flows, not
/// ranges: their ends are far apart or not edges.
fn is_spelled_range(line: &str, start: usize, end: usize) -> bool {
    let Ok(IpAddr::V4(this)) = line[start..end].parse::<IpAddr>() else {
        return false;
    };
    let address_at = |s: &str, from_end: bool| -> Option<Ipv4Addr> {
        let word = if from_end {
            s.split_whitespace().next_back()
        } else {
            s.split_whitespace().next()
        }?;
        word.trim_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    };
    let edges = |low: Ipv4Addr, high: Ipv4Addr| {
        let (l, h) = (low.octets(), high.octets());
        l[..2] == h[..2] && low < high && (l[3] == 0 || h[3] == 255)
    };
    let after = joined_by_word(&line[end..], false).and_then(|r| address_at(r, false));
    let before = joined_by_word(&line[..start], true).and_then(|r| address_at(r, true));

    after.is_some_and(|high| edges(this, high)) || before.is_some_and(|low| edges(low, this))
}

/// What follows (or, `from_end`, precedes) a range word at the start (end)
/// of `s`, when there is one.
fn joined_by_word(s: &str, from_end: bool) -> Option<&str> {
    let s = s.trim();
    let (word, rest) = if from_end {
        let (rest, word) = s.rsplit_once(char::is_whitespace)?;
        (word, rest)
    } else {
        s.split_once(char::is_whitespace)?
    };
    RANGE_WORDS
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
        .then_some(rest)
}

/// A traceroute/mtr line: a hop number first and a round-trip time, or
/// mtr's report form (`  2.|-- 198.51.100.33   0.0%  10  5.1 …`).
fn is_hop(line: &str) -> bool {
    let trimmed = line.trim_start();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=2).contains(&digits) && trimmed[digits..].starts_with(".|--") {
        return true;
    }
    (1..=2).contains(&digits)
        && trimmed[digits..].starts_with([' ', '.', '\t'])
        && has_round_trip(line)
}

/// A time in milliseconds (`12.3 ms`, `0.4ms`) somewhere in `line`.
fn has_round_trip(line: &str) -> bool {
    line.match_indices("ms").any(|(at, _)| {
        let before = line[..at].trim_end_matches(' ');
        let after = line[at + 2..].chars().next();
        before.ends_with(|c: char| c.is_ascii_digit())
            && before.len() + 1 >= at
            && after.is_none_or(|c| !c.is_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(line: &str, ip: &str) -> Role {
        let start = line.find(ip).unwrap();
        role_in_line(line, ip.parse().unwrap(), start, start + ip.len())
    }

    #[test]
    fn structure_decides_first() {
        assert_eq!(
            role("seen from 10.1.2.3 and 127.0.0.1", "10.1.2.3"),
            Role::Other
        );
        assert_eq!(role("from 100.64.1.1", "100.64.1.1"), Role::Other);
        assert_eq!(role("from fe80::1 now", "fe80::1"), Role::Other);
        assert_eq!(role("please block 192.0.2.0/24", "192.0.2.0"), Role::Range);
        assert_eq!(
            role("inetnum:        192.0.2.0 - 192.0.2.255", "192.0.2.0"),
            Role::Range
        );
        assert_eq!(
            role("inetnum:        192.0.2.0 - 192.0.2.255", "192.0.2.255"),
            Role::Range
        );
        assert_eq!(
            role(
                " 7  ae-1.r01.example.net (198.51.100.9)  12.3 ms  11.9 ms",
                "198.51.100.9"
            ),
            Role::Hop
        );
        assert_eq!(
            role("The attack came from 192.0.2.7.", "192.0.2.7"),
            Role::Source
        );
        let spelled = "we blocked 203.0.113.0 to 203.0.113.255 for now";
        assert_eq!(role(spelled, "203.0.113.0"), Role::Range);
        assert_eq!(role(spelled, "203.0.113.255"), Role::Range);
        assert_eq!(
            role("von 198.51.100.0 bis 198.51.100.127", "198.51.100.127"),
            Role::Range
        );
        // A flow is not a range.
        let flow = "traffic from 192.0.2.7 to 203.0.113.5";
        assert_eq!(role(flow, "192.0.2.7"), Role::Source);
        assert_eq!(
            role("scans from 192.0.2.7 to 192.0.2.9", "192.0.2.7"),
            Role::Source
        );
        assert_eq!(
            role(
                "nameserver: ns1.example.org (198.51.100.53)",
                "198.51.100.53"
            ),
            Role::Other
        );
    }

    #[test]
    fn the_label_closest_to_the_address_decides_in_every_language() {
        let line = "Attack from 192.0.2.7 against our server 203.0.113.5 on port 22";
        assert_eq!(role(line, "192.0.2.7"), Role::Source);
        assert_eq!(role(line, "203.0.113.5"), Role::Target);
        assert_eq!(role("Target: 203.0.113.5", "203.0.113.5"), Role::Target);
        assert_eq!(
            role("Destination IP: 203.0.113.5", "203.0.113.5"),
            Role::Target
        );
        assert_eq!(role("Ziel: 203.0.113.5", "203.0.113.5"), Role::Target);
        assert_eq!(role("Quelle: 192.0.2.7", "192.0.2.7"), Role::Source);
        assert_eq!(
            role("notre serveur 203.0.113.5 a été attaqué", "203.0.113.5"),
            Role::Target
        );
        assert_eq!(
            role("nuestro servidor 203.0.113.5", "203.0.113.5"),
            Role::Target
        );
        assert_eq!(
            role("nosso servidor 203.0.113.5", "203.0.113.5"),
            Role::Target
        );
        assert_eq!(
            role("My WAN address is 198.51.100.2", "198.51.100.2"),
            Role::Reporter
        );
        // "targeted" is not "target"; a word inside another does not count.
        assert_eq!(role("the host 192.0.2.7", "192.0.2.7"), Role::Source);
        assert_eq!(role("dstport 192.0.2.7", "192.0.2.7"), Role::Source);
    }
}

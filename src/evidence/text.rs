//! Candidates in free text: IP addresses (plain, defanged, bracketed, with a
//! port), URLs (also `hxxp`), ports, timestamps, and whether a line is a log line.
//!
//! Every regex match is only a candidate until `IpAddr::from_str`, the URL
//! check or the timestamp parser accepts it. Regexes compile once.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use regex::Regex;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)[0-9]{1,3}(?:(?:\.|\[\.\]|\(\.\)|\[dot\]|\(dot\)|\{\.\})[0-9]{1,3}){3}(?::[0-9]{1,5})?")
        .expect("valid regex")
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(
        r"\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?\]?(?::[0-9]{1,5})?",
    )
    .expect("valid regex")
});
static URL: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(
        r#"(?i)\b(?:h[tx]{2}ps?|ftp)(?:://|\[://\]|\[:\]//|\(:\)//)[^\s<>"'`]+"#,
    )
    .expect("valid regex")
});
static DST_PORT: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)(?:\bDPT=|\bdport[=: ]\s*|\bdst[ _-]?port[=: ]\s*|\bdestination port[=: ]\s*|\bto port\s+)([0-9]{1,5})\b").expect("valid regex")
});
/// `port 22` / `puerto 22` / `porta 22`, wherever no more specific form says which end it is.
static ANY_PORT: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)\b(?:port|puerto|porta|Port:)\s*([0-9]{1,5})\b")
        .expect("valid regex")
});
static SRC_PORT: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(
        r"(?i)(?:\bSPT=|\bsport[=: ]\s*|\bsrc[ _-]?port[=: ]\s*|\bsource port[=: ]\s*)([0-9]{1,5})\b",
    )
    .expect("valid regex")
});
static SRC_DST: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)\b(?:SRC|DST|saddr|daddr|src_ip|dst_ip)=\S+")
        .expect("valid regex")
});
static ISO: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?(?:\s?(?:Z|UTC|[+-][0-9]{2}:?[0-9]{2}))?").expect("valid regex")
});
static RFC2822: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s+)?[0-9]{1,2}\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+[0-9]{4}\s+[0-9]{2}:[0-9]{2}(?::[0-9]{2})?\s+(?:[+-][0-9]{4}|UT|GMT|UTC|[A-Z]{3,5}\b)").expect("valid regex")
});
static CLF: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"\b([0-9]{2})/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2})\s([+-][0-9]{4})").expect("valid regex")
});
/// `date`/ctime output: `Thu Jun 30 01:01:10 CEST 2022`.
static CTIME: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+([0-9]{1,2})\s+([0-9]{2}):([0-9]{2}):([0-9]{2})\s+(?:([A-Z]{2,5})\s+)?([0-9]{4})\b").expect("valid regex")
});
/// Windows event logs and US tools: `11/30/2026 3:12:44 AM` (month first,
/// unless the first number cannot be a month).
static US_DATE: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"\b([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})\s+([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\s*([AaPp][Mm]))?")
        .expect("valid regex")
});
/// tcpdump's time of day (`07:58:01.120311 IP …`): no date, so the report's.
static TCPDUMP_TIME: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"^\s*([0-9]{2}):([0-9]{2}):([0-9]{2})\.[0-9]{3,9}\s+IP6?\s")
        .expect("valid regex")
});
/// A time-zone abbreviation right after a time.
static ZONE_AFTER: LazyLock<Regex> =
    LazyLock::new(|| crate::model::pattern::regex(r"^\s?\(?([A-Z]{2,5})\b").expect("valid regex"));
static SYSLOG: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+([0-9]{1,2})\s([0-9]{2}):([0-9]{2}):([0-9]{2})\b").expect("valid regex")
});
static LOG_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)\b(?:sshd|Failed password|Invalid user|authentication failure|\bIN=\S*\s|SRC=|DPT=|PROTO=|fail2ban|\bBan\b|GET /|POST /|HEAD /|HTTP/1\.[01]|kernel:|iptables|nftables|UFW BLOCK|dropbear|postfix/|SASL|connection attempt|port scan|SYN|Flags \[|\bIP6? \S+ > )").expect("valid regex")
});

/// What one line of text names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineFacts {
    /// In order of appearance; `SRC=` first when present.
    pub ips: Vec<IpAddr>,
    /// The role of each of `ips` on this line ([`super::roles`]).
    pub roles: Vec<super::roles::Role>,
    pub source_ip: Option<IpAddr>,
    pub target_ip: Option<IpAddr>,
    pub source_port: Option<u16>,
    pub target_port: Option<u16>,
    pub urls: Vec<String>,
    /// RFC 3339, UTC.
    pub timestamp: Option<String>,
    pub is_log: bool,
}

/// Scans one line. `reference` (when the report arrived) fixes the year of
/// syslog stamps, which have none.
pub fn scan_line(line: &str, reference: DateTime<Utc>) -> LineFacts {
    let mut facts = scan_addresses(line);
    facts.timestamp = timestamp(line, reference);
    facts.is_log = !facts.ips.is_empty()
        && (LOG_WORDS.is_match(line) || (facts.timestamp.is_some() && !is_sentence(line)));
    facts
}

/// [`scan_line`] for a line of free text: a line that names no address and
/// no URL is not dated (the time regexes, with their word boundaries, are
/// the costly part of a scan, and most lines of prose or junk name nothing).
pub fn scan_text_line(line: &str, reference: DateTime<Utc>) -> LineFacts {
    scan_text_line_after(line, "", reference)
}

/// [`scan_text_line`] for a line of prose that follows `previous`: a label
/// at the end of the previous line ("… gegen unseren\nServer 192.0.2.7")
/// gives its role to an address early in this one.
pub fn scan_text_line_after(line: &str, previous: &str, reference: DateTime<Utc>) -> LineFacts {
    let facts = scan_addresses_after(line, previous);
    if facts.ips.is_empty() && facts.urls.is_empty() {
        return facts;
    }
    let timestamp = timestamp(line, reference);
    // A dated line that names a URL ("hxxps://… 198.51.100.150 2026-11-30
    // 08:55 UTC" in a takedown table) dates the URL; it is not a log line.
    let dated_log = timestamp.is_some() && !is_sentence(line) && facts.urls.is_empty();
    LineFacts {
        is_log: !facts.ips.is_empty() && (LOG_WORDS.is_match(line) || dated_log),
        timestamp,
        ..facts
    }
}

/// Function words of prose, in the languages the rules know: a dated line
/// with [`SENTENCE_WORDS`] of them is a sentence ("we received spam from
/// 192.0.2.150 at 10:00 today, please stop it" reports a spam; it is not a
/// log of one). Log lines, however terse, are made of other words.
const PROSE_WORDS: &[&str] = &[
    "we",
    "our",
    "us",
    "you",
    "your",
    "the",
    "this",
    "that",
    "please",
    "received",
    "have",
    "has",
    "was",
    "were",
    "is",
    "are",
    "today",
    "yesterday",
    "wir",
    "unser",
    "unsere",
    "bitte",
    "ihr",
    "haben",
    "heute",
    "nous",
    "notre",
    "votre",
    "vous",
    "avons",
    "reçu",
    "nosotros",
    "nuestro",
    "nuestra",
    "hemos",
    "recibido",
    "hoy",
    "nós",
    "nosso",
    "nossa",
    "recebemos",
    "hoje",
];
const SENTENCE_WORDS: usize = 3;

/// Whether `line` reads as a sentence rather than a log line.
fn is_sentence(line: &str) -> bool {
    line.split_whitespace()
        .filter(|w| {
            let w = w
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            PROSE_WORDS.contains(&w.as_str())
        })
        .count()
        >= SENTENCE_WORDS
}

/// [`scan_line`] without the time and the log-line test: what a CSV row
/// needs from its log column when another column carries the time.
pub fn scan_addresses(line: &str) -> LineFacts {
    scan_addresses_after(line, "")
}

/// Words of an address's line that may be read before the previous line's
/// tail is: an address this early in its line may have its label above.
const CARRIED_LABEL_CHARS: usize = 24;

fn scan_addresses_after(line: &str, previous: &str) -> LineFacts {
    let mut facts = LineFacts {
        urls: urls(line),
        ..LineFacts::default()
    };
    let mut ports_after_ip = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // The previous line's words after its last address, found once per line.
    let mut previous_tail: Option<&str> = None;
    for found in ips_in(line) {
        if seen.insert(found.ip) {
            facts.ips.push(found.ip);
            let mut role = super::roles::role_in_line(line, found.ip, found.start, found.end);
            if role == super::roles::Role::Source
                && !previous.is_empty()
                && found.start <= CARRIED_LABEL_CHARS
                && super::roles::label_role(&line[..found.start]).is_none()
            {
                // Only words after the previous line's last address can
                // label this one ("… desde 203.0.113.33 contra nuestro⏎
                // servidor 192.0.2.71"; not "… our site (192.0.2.88):⏎
                // 203.0.113.77 - - [26/Nov/…").
                let tail = *previous_tail.get_or_insert_with(|| {
                    let after_last_ip = ips_in(previous).last().map_or(0, |f| f.end);
                    let rest = &previous[after_last_ip..];
                    let tail_start = rest
                        .char_indices()
                        .rev()
                        .nth(CARRIED_LABEL_CHARS)
                        .map_or(0, |(i, _)| i);
                    &rest[tail_start..]
                });
                let joined = format!("{tail} {}", &line[..found.start]);
                if let Some(carried) = super::roles::label_role(&joined) {
                    role = carried;
                }
            }
            facts.roles.push(role);
        }
        ports_after_ip.push((found.ip, found.port));
    }
    // Cheap byte checks first: most lines have no `=`, no `port`, no URL, and
    // a regex that cannot match is still a scan of the line (100,000 CSV rows).
    let has_equals = line.contains('=');
    let has_port = contains_ignore_case(line, b"port") || contains_ignore_case(line, b"puerto");
    // `find` runs on the DFA; capture groups would need the slower engines,
    // so the parts are split out of the match by hand.
    for m in SRC_DST.find_iter(if has_equals { line } else { "" }) {
        let Some((key, value)) = m.as_str().split_once('=') else {
            continue;
        };
        let Some(ip) = parse_ip(value.trim_end_matches([',', ';'])) else {
            continue;
        };
        if key.starts_with(['s', 'S']) {
            facts.source_ip.get_or_insert(ip);
        } else {
            facts.target_ip.get_or_insert(ip);
        }
    }
    // Without SRC=/DST=, the roles decide: the first source is the source,
    // the first target the target, else the first other host address.
    use super::roles::Role;
    let with_role = |wanted: Role| {
        facts
            .ips
            .iter()
            .zip(&facts.roles)
            .find(|(_, r)| **r == wanted)
            .map(|(ip, _)| *ip)
    };
    if facts.source_ip.is_none() {
        facts.source_ip = with_role(Role::Source);
    }
    if facts.target_ip.is_none() {
        facts.target_ip = with_role(Role::Target).or_else(|| {
            facts
                .ips
                .iter()
                .zip(&facts.roles)
                .find(|(ip, r)| {
                    Some(**ip) != facts.source_ip && !matches!(r, Role::Range | Role::Hop)
                })
                .map(|(ip, _)| *ip)
        });
    }
    let port_text = if has_equals || has_port { line } else { "" };
    facts.target_port = DST_PORT
        .find(port_text)
        .and_then(|m| trailing_port(m.as_str()));
    facts.source_port = SRC_PORT
        .find(port_text)
        .and_then(|m| trailing_port(m.as_str()));
    let mut attached = Vec::new();
    for (ip, port) in ports_after_ip {
        let Some(p) = port else { continue };
        attached.push(p);
        if Some(ip) == facts.target_ip && facts.target_port.is_none() {
            facts.target_port = Some(p);
        } else if Some(ip) == facts.source_ip && facts.source_port.is_none() {
            facts.source_port = Some(p);
        }
    }
    // A `port N` that belongs to no address is the port that was hit.
    if facts.target_port.is_none() && has_port {
        facts.target_port = ANY_PORT
            .find_iter(line)
            .filter_map(|m| trailing_port(m.as_str()))
            .find(|p| *p > 0 && !attached.contains(p) && Some(*p) != facts.source_port);
    }
    facts
}

/// Every IP address in `text` with the port written after it, if any.
pub fn ips_with_ports(text: &str) -> Vec<(IpAddr, Option<u16>)> {
    ips_in(text).into_iter().map(|f| (f.ip, f.port)).collect()
}

/// An address found in a line, and where.
pub struct Found {
    pub ip: IpAddr,
    pub port: Option<u16>,
    /// Byte range of the address as written (port excluded when attached).
    pub start: usize,
    pub end: usize,
}

/// Every IP address in `text`, with its port and place.
pub fn ips_in(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    for m in IPV4.find_iter(text) {
        // Part of a longer dotted run (a version number, an OID): not an address.
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        if before.is_some_and(|c| c.is_ascii_digit() || c == '.')
            || after.is_some_and(|c| c.is_ascii_digit())
        {
            continue;
        }
        // tcpdump writes the port after a dot: `192.0.2.1.54321 > 203.0.113.5.22:`.
        let mut dotted_port = None;
        if after == Some('.') && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit()) {
            let rest = &text[m.end() + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let follows = &rest[digits..];
            let is_tcpdump = digits <= 5
                && !m.as_str().contains(':')
                && (follows.starts_with(" > ") || follows.starts_with(": "))
                && text.contains(" > ");
            if !is_tcpdump {
                continue;
            }
            dotted_port = rest[..digits].parse::<u16>().ok().filter(|p| *p > 0);
        }
        // Inside a host name (`4.3.2.1.static.example.net`, `ip-…`): a name,
        // not an address mention.
        if (after == Some('.') || after == Some('-'))
            && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_alphabetic())
            || before == Some('-')
        {
            continue;
        }
        let s = m.as_str();
        let (addr, port) = match s.rsplit_once(':') {
            Some((a, p)) => (a, p.parse::<u16>().ok()),
            None => (s, None),
        };
        let port = port
            .or(dotted_port)
            .or_else(|| port_after(&text[m.end()..]));
        if let Some(ip) = parse_ip(addr) {
            out.push(Found {
                ip,
                port,
                start: m.start(),
                end: m.start() + addr.len(),
            });
        }
    }
    // An IPv6 address has at least two colons.
    let ipv6_text = if memchr::memchr_iter(b':', text.as_bytes()).nth(1).is_some() {
        text
    } else {
        ""
    };
    for m in IPV6.find_iter(ipv6_text) {
        let s = m.as_str();
        if s.matches(':').count() < 2 {
            continue;
        }
        let before = text[..m.start()].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        let (addr, port) = match s.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((a, rest)) => (a, rest.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (s.trim_end_matches(']'), None),
        };
        let addr = addr.split('%').next().unwrap_or(addr);
        let port = port.or_else(|| port_after(&text[m.end()..]));
        if let Ok(ip) = addr.parse::<Ipv6Addr>() {
            if !ip.is_unspecified() && !ip.is_loopback() && ip.to_ipv4_mapped().is_none() {
                let start = m.start() + usize::from(s.starts_with('['));
                out.push(Found {
                    ip: IpAddr::V6(ip),
                    port,
                    start,
                    end: (start + addr.len()).min(text.len()),
                });
            }
        }
    }
    out
}

/// The number a port match ends with (`DPT=22` → 22); `None` for 0 or junk.
fn trailing_port(matched: &str) -> Option<u16> {
    let digits = matched.trim_end_matches(|c: char| !c.is_ascii_digit());
    let start = digits
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    digits[start..].parse().ok().filter(|p| *p > 0)
}

/// ASCII-case-insensitive substring test without allocating.
fn contains_ignore_case(haystack: &str, needle: &[u8]) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// `" port 4000"` right after an address (sshd's `from IP port N`).
fn port_after(rest: &str) -> Option<u16> {
    let rest = rest.strip_prefix(' ')?;
    let digits = rest
        .strip_prefix("port ")
        .or_else(|| rest.strip_prefix("porta "))
        .or_else(|| rest.strip_prefix("puerto "))?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok().filter(|p| *p > 0)
}

/// Parses an address written plainly or defanged (`192.0.2[.]1`); `None` for
/// anything `IpAddr::from_str` does not accept, and for unspecified addresses.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .trim()
        .trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')' || c == ',' || c == ';');
    let cleaned: String = if s.contains(['[', '(', '{']) || s.to_ascii_lowercase().contains("dot") {
        let lower = s.to_ascii_lowercase();
        ["[.]", "(.)", "{.}", "[dot]", "(dot)"]
            .iter()
            .fold(lower, |acc, pat| acc.replace(pat, "."))
    } else {
        s.to_owned()
    };
    // Leading zeros are octal to some parsers and an error to ours; refuse them.
    if cleaned.split('.').count() == 4
        && cleaned
            .split('.')
            .any(|o| o.len() > 1 && o.starts_with('0'))
    {
        return None;
    }
    match cleaned.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) if v4 == Ipv4Addr::UNSPECIFIED || v4.is_broadcast() => None,
        IpAddr::V6(v6) if v6.is_unspecified() => None,
        ip => Some(ip),
    }
}

/// URLs in `text`, re-fanged (`hxxp` → `http`, `[.]` → `.`) and trimmed of
/// trailing punctuation.
pub fn urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !text.contains("//") {
        return out;
    }
    for m in URL.find_iter(text) {
        let mut url = m.as_str().to_owned();
        for (from, to) in [
            ("[://]", "://"),
            ("[:]//", "://"),
            ("(:)//", "://"),
            ("[.]", "."),
            ("(.)", "."),
            ("[dot]", "."),
        ] {
            url = url.replace(from, to);
        }
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("hxxp") {
            url.replace_range(..4, "http");
        }
        while url.ends_with(['.', ',', ';', ':', '!', '?', ')', ']', '>', '\'', '"']) {
            url.pop();
        }
        let Some((_, rest)) = url.split_once("://") else {
            continue;
        };
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        if host.is_empty() || !(host.contains('.') || host.starts_with('[')) {
            continue;
        }
        if !out.contains(&url) {
            out.push(url);
        }
    }
    out
}

/// The host of a URL's authority, without user info, port or the brackets
/// of an IPv6 address: `login-bank.example` of
/// `https://user@login-bank.example:8443/a`; `None` without `://`.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    Some(host.trim_matches(['[', ']']))
}

/// The first timestamp in `line` as RFC 3339 UTC (seconds). A syslog stamp has
/// no year: the one that puts it at or before `reference` (the time the
/// report arrived) is taken.
pub fn timestamp(line: &str, reference: DateTime<Utc>) -> Option<String> {
    parse_timestamp(line, reference).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn parse_timestamp(line: &str, reference: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(m) = ISO.find(line) {
        let written = m.as_str();
        let has_zone = written.ends_with(['Z', 'C']) || {
            let tail = &written[written.len().saturating_sub(6)..];
            tail.contains(['+', '-']) && tail.bytes().filter(u8::is_ascii_digit).count() >= 4
        };
        // `2026-11-26 09:58:12 CET`: the abbreviation sets the offset.
        let zone = (!has_zone)
            .then(|| ZONE_AFTER.captures(&line[m.end()..]))
            .flatten()
            .and_then(|c| zone_offset_minutes(&c[1]));
        if let Some(t) = parse_iso(written) {
            return Some(t - chrono::Duration::minutes(i64::from(zone.unwrap_or(0))));
        }
    }
    if let Some(m) = RFC2822.find(line) {
        let written = m.as_str();
        let (head, zone) = written.rsplit_once(' ').unwrap_or((written, ""));
        let s = match zone_offset_minutes(zone) {
            Some(minutes) if !zone.starts_with(['+', '-']) => {
                let sign = if minutes < 0 { '-' } else { '+' };
                let minutes = minutes.abs();
                format!("{head} {sign}{:02}{:02}", minutes / 60, minutes % 60)
            }
            _ => written.to_owned(),
        };
        if let Ok(t) = DateTime::parse_from_rfc2822(&s) {
            return Some(t.with_timezone(&Utc));
        }
    }
    if let Some(c) = CTIME.captures(line) {
        let month = month_number(&c[1])?;
        let date = NaiveDate::from_ymd_opt(c[7].parse().ok()?, month, c[2].parse().ok()?)?;
        let time = date.and_hms_opt(c[3].parse().ok()?, c[4].parse().ok()?, c[5].parse().ok()?)?;
        let offset = c
            .get(6)
            .map_or(Some(0), |z| zone_offset_minutes(z.as_str()));
        if let Some(offset) = offset {
            return Some(Utc.from_utc_datetime(&time) - chrono::Duration::minutes(offset.into()));
        }
    }
    if let Some(c) = CLF.captures(line) {
        let s = format!(
            "{} {} {} {}:{}:{} {}",
            &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7]
        );
        if let Ok(t) = DateTime::parse_from_str(&s, "%d %b %Y %H:%M:%S %z") {
            return Some(t.with_timezone(&Utc));
        }
    }
    if let Some(c) = US_DATE.captures(line) {
        let (a, b): (u32, u32) = (c[1].parse().ok()?, c[2].parse().ok()?);
        let (month, day) = if a > 12 { (b, a) } else { (a, b) };
        let mut hour: u32 = c[4].parse().ok()?;
        match c.get(7).map(|m| m.as_str().to_ascii_lowercase()) {
            Some(ref pm) if pm == "pm" && hour < 12 => hour += 12,
            Some(ref am) if am == "am" && hour == 12 => hour = 0,
            _ => {}
        }
        let date = NaiveDate::from_ymd_opt(c[3].parse().ok()?, month, day)?;
        let time = date.and_hms_opt(hour, c[5].parse().ok()?, c[6].parse().ok()?)?;
        return Some(Utc.from_utc_datetime(&time));
    }
    if let Some(c) = TCPDUMP_TIME.captures(line) {
        // The day the report was sent, or the day before if the time has
        // not come yet that day.
        let (h, m, s): (u32, u32, u32) =
            (c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?);
        let t = Utc.from_utc_datetime(&reference.date_naive().and_hms_opt(h, m, s)?);
        return Some(if t > reference {
            t - chrono::Duration::days(1)
        } else {
            t
        });
    }
    if let Some(c) = SYSLOG.captures(line) {
        let month = month_number(&c[1])?;
        let (day, h, m, s): (u32, u32, u32, u32) = (
            c[2].parse().ok()?,
            c[3].parse().ok()?,
            c[4].parse().ok()?,
            c[5].parse().ok()?,
        );
        let mut year = reference.year();
        let at = |year| {
            NaiveDate::from_ymd_opt(year, month, day)
                .and_then(|d| d.and_hms_opt(h, m, s))
                .map(|t| Utc.from_utc_datetime(&t))
        };
        let mut t = at(year)?;
        if t > reference + chrono::Duration::days(1) {
            year -= 1;
            t = at(year)?;
        }
        return Some(t);
    }
    None
}

/// ISO 8601 / RFC 3339 with the variations seen in logs: space for `T`, no
/// seconds, a comma for the fraction, `UTC`, offsets with or without colon,
/// no zone at all (taken as UTC).
pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    let s = s
        .trim()
        .replace(',', ".")
        .replace(" UTC", "Z")
        .replace("UTC", "Z");
    let s = s.replacen(' ', "T", 1);
    let s = s.trim_end().replace("T+", "+").replace("T-", "-");
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%dT%H:%M:%S%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(&s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let naive = s.trim_end_matches('Z');
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

/// Minutes east of UTC for the time-zone abbreviations reports use. An
/// abbreviation not in the table is not guessed at: the time is not read.
fn zone_offset_minutes(abbreviation: &str) -> Option<i32> {
    Some(match abbreviation {
        "UTC" | "GMT" | "UT" | "Z" | "WET" => 0,
        "CET" | "WEST" | "BST" | "MET" => 60,
        "CEST" | "EET" | "MEST" | "SAST" => 120,
        "EEST" | "MSK" | "TRT" => 180,
        "GST" => 240,
        "IST" => 330,
        "ICT" | "WIB" => 420,
        "SGT" | "HKT" | "AWST" | "PHT" => 480,
        "JST" | "KST" => 540,
        "ACST" => 570,
        "AEST" => 600,
        "AEDT" => 660,
        "NZST" => 720,
        "NZDT" => 780,
        "BRT" | "ART" => -180,
        "AST" | "EDT" => -240,
        "EST" | "CDT" => -300,
        "CST" | "MDT" => -360,
        "MST" | "PDT" => -420,
        "PST" | "AKDT" => -480,
        "AKST" => -540,
        "HST" => -600,
        _ => return None,
    })
}

fn month_number(name: &str) -> Option<u32> {
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    months
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> DateTime<Utc> {
        parse_iso("2026-01-05T12:00:00Z").unwrap()
    }

    #[test]
    fn defanged_bracketed_and_ported_ips_are_found() {
        let found: Vec<_> = ips_with_ports(
            "from 192.0.2[.]10, [2001:db8::5]:443 and 198.51.100.7:22 (not 1.2.3.4.5 or 300.1.1.1)",
        )
        .into_iter()
        .map(|(ip, p)| (ip.to_string(), p))
        .collect();
        assert_eq!(
            found,
            vec![
                ("192.0.2.10".into(), None),
                ("198.51.100.7".into(), Some(22)),
                ("2001:db8::5".into(), Some(443))
            ]
        );
    }

    #[test]
    fn times_and_macs_are_not_ipv6() {
        assert!(ips_with_ports("at 08:01:02 and 00:1a:2b:3c:4d:5e").is_empty());
    }

    #[test]
    fn urls_are_refanged_and_trimmed() {
        assert_eq!(
            urls("see hxxps://bad[.]example/login.php?x=1. and (http://ok.example/a)"),
            vec!["https://bad.example/login.php?x=1", "http://ok.example/a"]
        );
    }

    #[test]
    fn iptables_line_gives_source_target_and_ports() {
        let f = scan_line(
            "Nov 26 08:01:02 fw kernel: [UFW BLOCK] IN=eth0 SRC=203.0.113.9 DST=198.51.100.7 PROTO=TCP SPT=51234 DPT=22 SYN",
            reference(),
        );
        assert_eq!(f.source_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(f.target_ip, Some("198.51.100.7".parse().unwrap()));
        assert_eq!((f.source_port, f.target_port), (Some(51234), Some(22)));
        // No year in syslog: November is after the January reference, so last year.
        assert_eq!(f.timestamp.as_deref(), Some("2025-11-26T08:01:02Z"));
        assert!(f.is_log);
    }

    #[test]
    fn sshd_port_after_the_source_is_the_source_port() {
        let f = scan_line(
            "Failed password for root from 192.0.2.5 port 4000 ssh2 on 203.0.113.7 port 22",
            reference(),
        );
        assert_eq!((f.source_port, f.target_port), (Some(4000), Some(22)));
        let f = scan_line(
            "Failed password for root from 192.0.2.5 port 4000 ssh2",
            reference(),
        );
        assert_eq!((f.source_port, f.target_port), (Some(4000), None));
        let f = scan_line("attack from 192.0.2.5 against port 22", reference());
        assert_eq!((f.source_port, f.target_port), (None, Some(22)));
    }

    #[test]
    fn timestamp_formats() {
        let r = reference();
        assert_eq!(
            timestamp("2026-01-02 03:04:05 +0100", r).as_deref(),
            Some("2026-01-02T02:04:05Z")
        );
        assert_eq!(
            timestamp("2026-01-02T03:04:05.123Z", r).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(
            timestamp("Fri, 2 Jan 2026 03:04:05 -0000", r).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(
            timestamp("[02/Jan/2026:03:04:05 +0000] \"GET /", r).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(timestamp("no time here", r), None);
    }

    #[test]
    fn zone_abbreviations_and_ctime_are_converted_never_read_as_utc() {
        let r = reference();
        assert_eq!(
            timestamp("Thu Jun 30 01:01:10 CEST 2022 sshd", r).as_deref(),
            Some("2022-06-29T23:01:10Z")
        );
        assert_eq!(
            timestamp("2026-11-26 09:58:12 CET attack", r).as_deref(),
            Some("2026-11-26T08:58:12Z")
        );
        assert_eq!(
            timestamp("2026-11-26 09:58:12 PST", r).as_deref(),
            Some("2026-11-26T17:58:12Z")
        );
        assert_eq!(
            timestamp("Thu, 26 Nov 2026 09:58:12 CET", r).as_deref(),
            Some("2026-11-26T08:58:12Z")
        );
        assert_eq!(
            timestamp("Thu, 26 Nov 2026 09:58:12 CEST", r).as_deref(),
            Some("2026-11-26T07:58:12Z")
        );
        assert_eq!(
            timestamp("Thu, 26 Nov 2026 09:58:12 EST", r).as_deref(),
            Some("2026-11-26T14:58:12Z")
        );
        assert_eq!(
            timestamp("Audit Failure\t11/30/2026 3:12:44 PM\tMicrosoft", r).as_deref(),
            Some("2026-11-30T15:12:44Z")
        );
        assert_eq!(
            timestamp("30/11/2026 03:12:44", r).as_deref(),
            Some("2026-11-30T03:12:44Z")
        );
        // An offset written out wins over any word after it.
        assert_eq!(
            timestamp("2026-11-26T09:58:12+01:00 CET", r).as_deref(),
            Some("2026-11-26T08:58:12Z")
        );
    }

    #[test]
    fn tcpdump_lines_give_source_and_target_with_their_ports() {
        let f = scan_line(
            "09:58:01.123456 IP 198.51.100.7.51234 > 203.0.113.5.22: Flags [S], seq 1, length 0",
            reference(),
        );
        assert_eq!(f.source_ip, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(f.target_ip, Some("203.0.113.5".parse().unwrap()));
        assert_eq!((f.source_port, f.target_port), (Some(51234), Some(22)));
        assert_eq!(f.roles[1], super::super::roles::Role::Target);
        assert!(f.is_log);
        // A dotted run elsewhere is still no address.
        assert!(scan_line("version 1.2.3.4.5 released", reference())
            .ips
            .is_empty());
    }

    #[test]
    fn a_dated_sentence_of_prose_is_not_a_log_line() {
        let r = reference();
        assert!(
            !scan_text_line(
                "We received spam from 192.0.2.150 at 2026-11-26 10:00 today, please stop it",
                r
            )
            .is_log
        );
        assert!(scan_text_line("192.0.2.31 brute forcing ssh. 2026-11-26 09:58:12 UTC, 400 failed logins on 203.0.113.4 port 22.", r).is_log);
    }

    #[test]
    fn leading_zero_octets_are_refused() {
        assert_eq!(parse_ip("010.0.0.1"), None);
        assert_eq!(parse_ip("0.0.0.0"), None);
        assert_eq!(parse_ip("192.0.2.1"), Some("192.0.2.1".parse().unwrap()));
    }
}

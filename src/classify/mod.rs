//! Classification: which abuse type a report is, why, and what it still lacks.
//!
//! In: the extracted [`Evidence`] (structured facts, rows, text), the subject,
//! and the compiled [`Rules`]. Out: a [`Classification`] with the type, the
//! network subtype, every reason that counted (with its score), and the
//! `missing` list. Structured fields decide first (ARF, X-ARF, ACNS, log
//! lines); free-text rules add their weights; the best-supported type wins.
//! Pure: no I/O.

pub mod case;
pub mod feeds;
mod missing;
pub mod rsit;
pub mod rules;

pub use missing::missing as missing_for;

pub use feeds::{Feed, Feeds};
pub use rules::Rules;

use crate::evidence::{Evidence, Kind};
use crate::model::{AbuseType, Missing, NetworkSubtype};
use regex::Regex;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Weight of a structured field: it outweighs any amount of free text.
const STRUCTURED: u32 = 100;
/// Weight of log rows (CSV or pasted logs) for network activity.
const LOG_ROWS: u32 = 20;
/// Weight of a carried message with full headers, for email abuse.
const CARRIED_MESSAGE: u32 = 10;
/// Weight of a known feed's usual type: more than the words of its
/// boilerplate, less than any structured field.
const FEED_PROFILE: u32 = 12;
/// Weight of a forwarded message whose Received: lines are missing.
const PARTIAL_HEADERS: u32 = 4;
/// Weight of URLs named in a report without logs or a carried message.
const URLS_NAMED: u32 = 2;
/// Below this total a report stays `unknown`.
const THRESHOLD: u32 = 3;

pub use crate::model::{Place, Reason, Signal};

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub abuse_type: AbuseType,
    pub subtype: Option<NetworkSubtype>,
    /// Every reason, strongest first.
    pub reasons: Vec<Reason>,
    pub missing: Vec<Missing>,
}

/// Classifies a report.
pub fn classify(
    evidence: &Evidence,
    subject: Option<&str>,
    rules: &Rules,
    feed: Option<&Feed>,
) -> Classification {
    let mut reasons = structured(evidence);
    if let Some((feed, abuse_type)) = feed.and_then(|f| Some((f, f.abuse_type?))) {
        reasons.push(Reason {
            abuse_type,
            subtype: feed.subtype,
            weight: FEED_PROFILE,
            signal: Signal::Feed {
                id: feed.id.clone(),
                name: feed.name.clone(),
            },
        });
    }
    reasons.extend(log_reasons(evidence));
    if evidence.facts.has_full_headers {
        reasons.push(Reason {
            abuse_type: AbuseType::EmailAbuse,
            subtype: None,
            weight: CARRIED_MESSAGE,
            signal: Signal::CarriedMessage,
        });
    }
    if !evidence.facts.has_full_headers && evidence.facts.has_partial_headers {
        // A forwarded mail whose client dropped the Received: lines (the
        // "---------- Forwarded message ---------" block of webmail).
        reasons.push(Reason {
            abuse_type: AbuseType::EmailAbuse,
            subtype: None,
            weight: PARTIAL_HEADERS,
            signal: Signal::ForwardedWithoutReceived,
        });
    }
    let urls = evidence.count(Kind::Url);
    if urls > 0 && evidence.count(Kind::LogRow) == 0 && !evidence.facts.has_full_headers {
        // What a report names and nothing else points at is what it is
        // about: with a word about a page, a URL makes it web content.
        reasons.push(Reason {
            abuse_type: AbuseType::WebContent,
            subtype: None,
            weight: URLS_NAMED,
            signal: Signal::UrlsNamed { urls: urls as u64 },
        });
    }
    if let Some(subject) = subject {
        reasons.extend(rule_reasons(subject, rules, 2, Place::Subject));
    }
    reasons.extend(rule_reasons(&evidence.facts.prose, rules, 1, Place::Text));
    sort_strongest_first(&mut reasons);

    let (best, subtype) = decide(&reasons);
    let abuse_type = best.unwrap_or(AbuseType::Unknown);
    let missing = missing::missing(abuse_type, evidence);
    Classification {
        abuse_type,
        subtype,
        reasons,
        missing,
    }
}

/// Strongest first; among equals, in the order of their text.
fn sort_strongest_first(reasons: &mut [Reason]) {
    reasons.sort_by_cached_key(|r| (std::cmp::Reverse(r.weight), r.signal.to_string()));
}

/// A report and the follow-up merged into it, classified again from the
/// reasons of both (every structured field, log and word either found):
/// the type, subtype and the reasons, strongest first. `None` when even
/// together nothing reaches the threshold.
pub fn reclassify_merged(
    original: &[Reason],
    follow_up: &[Reason],
) -> Option<(AbuseType, Option<NetworkSubtype>, Vec<Reason>)> {
    let mut reasons: Vec<Reason> = Vec::new();
    for r in original.iter().chain(follow_up) {
        if !reasons.contains(r) {
            reasons.push(r.clone());
        }
    }
    sort_strongest_first(&mut reasons);
    let (best, subtype) = decide(&reasons);
    Some((best?, subtype, reasons))
}

/// What a report still lacks once a follow-up merged into it as
/// `new_type`: for the same type, what neither message supplies; for a new
/// type, what the follow-up's evidence still lacks for it.
pub fn merged_missing(
    original_type: AbuseType,
    new_type: AbuseType,
    original_missing: &[Missing],
    follow_up_missing_by_type: &[(AbuseType, Vec<Missing>)],
) -> Vec<Missing> {
    let theirs = follow_up_missing_by_type
        .iter()
        .find(|(t, _)| *t == new_type)
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    if new_type == original_type {
        original_missing
            .iter()
            .filter(|m| theirs.contains(m))
            .cloned()
            .collect()
    } else {
        theirs
    }
}

/// The type with the highest total (at least [`THRESHOLD`]; on a tie the
/// one with the more specific requirements), and for network activity the
/// subtype its reasons support most (else `other`).
fn decide(reasons: &[Reason]) -> (Option<AbuseType>, Option<NetworkSubtype>) {
    let mut totals: BTreeMap<AbuseType, u32> = BTreeMap::new();
    let mut subtypes: BTreeMap<NetworkSubtype, u32> = BTreeMap::new();
    for r in reasons {
        *totals.entry(r.abuse_type).or_default() += r.weight;
        if let (AbuseType::NetworkActivity, Some(s)) = (r.abuse_type, r.subtype) {
            *subtypes.entry(s).or_default() += r.weight;
        }
    }
    let best = totals
        .iter()
        .filter(|(_, total)| **total >= THRESHOLD)
        .max_by(|a, b| {
            a.1.cmp(b.1)
                .then_with(|| priority(*b.0).cmp(&priority(*a.0)))
        })
        .map(|(t, _)| *t);
    let subtype = (best == Some(AbuseType::NetworkActivity)).then(|| {
        subtypes
            .into_iter()
            .max_by_key(|(_, score)| *score)
            .map_or(NetworkSubtype::Other, |(s, _)| s)
    });
    (best, subtype)
}

/// On a tie, the type with more specific evidence requirements wins.
fn priority(t: AbuseType) -> u8 {
    match t {
        AbuseType::Copyright => 0,
        AbuseType::NetworkActivity => 1,
        AbuseType::EmailAbuse => 2,
        AbuseType::WebContent => 3,
        AbuseType::Unknown => 4,
    }
}

/// Structured fields mapped to types (ARF RFC 5965 §7.3, X-ARF / XARF v4
/// categories and types, ACNS). Documented in README "Classification".
fn structured(ev: &Evidence) -> Vec<Reason> {
    let mut out = Vec::new();
    let mut push = |abuse_type, subtype, signal| {
        out.push(Reason {
            abuse_type,
            subtype,
            weight: STRUCTURED,
            signal,
        })
    };
    if let Some(ft) = &ev.facts.arf_feedback_type {
        match ft.as_str() {
            "abuse" | "fraud" | "virus" | "auth-failure" | "other" => push(
                AbuseType::EmailAbuse,
                None,
                Signal::ArfFeedbackType { value: ft.clone() },
            ),
            _ => {}
        }
    }
    for t in &ev.facts.xarf_types {
        if let Some((abuse_type, subtype)) = xarf_type(t) {
            push(abuse_type, subtype, Signal::XarfType { value: t.clone() });
        }
    }
    for name in &ev.facts.feed_reports {
        if let Some((abuse_type, subtype)) = feed_report_type(name) {
            push(
                abuse_type,
                subtype,
                Signal::FeedReport {
                    value: name.clone(),
                },
            );
        }
    }
    if ev.facts.has_acns {
        push(AbuseType::Copyright, None, Signal::AcnsNotice);
    }
    if ev.facts.is_delivery_status {
        push(AbuseType::Unknown, None, Signal::DeliveryStatus);
    }
    if let Some(dmarc) = ev.facts.dmarc {
        // Mail sent as a domain by hosts it did not authorise.
        push(
            AbuseType::EmailAbuse,
            None,
            Signal::DmarcAggregate {
                records: dmarc.records,
                failing: dmarc.failing,
            },
        );
    }
    out
}

/// An X-ARF / XARF type as the tables match it: lower case, letters and
/// digits only (`Login-Attack`, `login_attack` and `loginattack` are one).
pub(crate) fn xarf_key(t: &str) -> String {
    t.to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// X-ARF v0.2 report types and XARF v4 categories/types, leniently.
pub fn xarf_type(t: &str) -> Option<(AbuseType, Option<NetworkSubtype>)> {
    let n = xarf_key(t);
    use AbuseType::*;
    use NetworkSubtype::*;
    Some(match n.as_str() {
        "loginattack" | "bruteforce" | "loginattempt" | "authfailure" => {
            (NetworkActivity, Some(BruteForce))
        }
        "ddos" | "dos" | "floods" | "flood" | "reflectiveattack" | "amplification"
        | "ddosamplification" => (NetworkActivity, Some(Dos)),
        "portscan" | "scan" | "scanning" | "probe" => (NetworkActivity, Some(PortScan)),
        "intrusion" | "exploit" | "hacking" | "intrusionattempt" | "attack" | "webattack"
        | "sqlinjection" | "vulnscanning" => (NetworkActivity, Some(Intrusion)),
        "infected" | "compromised" | "compromisedserver" | "bot" | "botnet" | "vulnerable"
        | "openresolver" | "openproxy" | "openservice" | "openrelay" | "regbot"
        | "registrationbot" | "formspam" | "commentspam" | "harvesting" | "trojan" | "c2"
        | "c2server" | "cnc" | "botnetcontroller" | "ransomware" => (NetworkActivity, Some(Other)),
        "spam" | "phishingmail" | "email" | "emailspam" => (EmailAbuse, None),
        "phishing"
        | "malware"
        | "malwarehosting"
        | "content"
        | "defacement"
        | "csam"
        | "fraud"
        | "scam"
        | "illegaladvertisement" => (WebContent, None),
        "copyright" | "infringement" | "copyrightinfringement" | "trademark" => (Copyright, None),
        _ => return None,
    })
}

/// Feed report names (Shadowserver's families) mapped to types: what the
/// feed observed about the host, not the words of its boilerplate. `scan_*`
/// reports are services found open or vulnerable on the host (not a scan
/// the host made); `darknet` and honeypot scans are scans it made.
pub fn feed_report_type(name: &str) -> Option<(AbuseType, Option<NetworkSubtype>)> {
    use AbuseType::*;
    use NetworkSubtype::*;
    let has = |part: &str| name.contains(part);
    Some(if has("brute_force") || has("bruteforce") {
        (NetworkActivity, Some(BruteForce))
    } else if has("ddos") || has("amplification") || (has("amp") && has("honeypot")) {
        (NetworkActivity, Some(Dos))
    } else if has("darknet") || has("honeypot_scan") || has("scanner") {
        (NetworkActivity, Some(PortScan))
    } else if has("exploit") || has("honeypot_http") {
        (NetworkActivity, Some(Intrusion))
    } else if has("compromised_website") || has("phish") || has("malware_url") || has("defac") {
        (WebContent, None)
    } else if has("spam") {
        (EmailAbuse, None)
    } else if has("sinkhole")
        || has("drone")
        || has("botnet")
        || has("scan")
        || has("compromised")
        || has("blocklist")
        || has("device")
        || has("spoofer")
    {
        (NetworkActivity, Some(Other))
    } else {
        return None;
    })
}

static BRUTE: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)(failed password|invalid user|authentication failure|login failed|failed login|sasl login authentication failed|auth fail|possible break-in|maximum authentication attempts|brute|an account failed to log on|POST /(xmlrpc|wp-login)\.php)").expect("valid regex")
});
static DOS: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)(syn flood|udp flood|icmp flood|flood|ddos|dos attack|amplification|rate limit exceeded|too many requests|pps|mbps|gbps)").expect("valid regex")
});
static INTRUSION: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)(union(\s|%20|\+)+select|\.\./\.\./|/etc/passwd|cmd=|exec=|wget(\s|%20)+http|curl(\s|%20)+http|\(\)\s*\{\s*:;\s*\}|<script|/wp-admin/admin-ajax|phpunit|eval-stdin|jndi:|shellshock|exploit|cgi-bin/.*\.(sh|cgi))").expect("valid regex")
});

/// Network activity from log rows; the subtype from what the lines say.
fn log_reasons(ev: &Evidence) -> Vec<Reason> {
    let logs: Vec<_> = ev.rows.iter().filter(|r| r.kind == Kind::LogRow).collect();
    if logs.is_empty() {
        return Vec::new();
    }
    let count = |re: &Regex| {
        logs.iter()
            .filter(|r| r.line.as_deref().is_some_and(|l| re.is_match(l)))
            .count()
    };
    let (brute, dos, intrusion) = (count(&BRUTE), count(&DOS), count(&INTRUSION));
    // Port scan: one source touching many destination ports.
    let mut ports: BTreeMap<std::net::IpAddr, std::collections::BTreeSet<u16>> = BTreeMap::new();
    for r in &logs {
        if let (Some(src), Some(port)) = (r.source_ip, r.target_port) {
            ports.entry(src).or_default().insert(port);
        }
    }
    let scan = ports.values().map(|p| p.len()).max().unwrap_or(0);
    let of = logs.len() as u64;
    let mut candidates = [
        (
            NetworkSubtype::BruteForce,
            brute,
            Signal::FailedLogins {
                lines: brute as u64,
                of,
            },
        ),
        (
            NetworkSubtype::Dos,
            dos,
            Signal::Flooding {
                lines: dos as u64,
                of,
            },
        ),
        (
            NetworkSubtype::Intrusion,
            intrusion,
            Signal::ExploitStrings {
                lines: intrusion as u64,
                of,
            },
        ),
        (
            NetworkSubtype::PortScan,
            if scan >= 5 { scan } else { 0 },
            Signal::PortsProbed { ports: scan as u64 },
        ),
    ];
    candidates.sort_by_key(|c| std::cmp::Reverse(c.1));
    // One dated line is weak evidence of a log ("Email from 192.0.2.66 /
    // date" in a spam report); three or more are a log.
    let weight = match logs.len() {
        1 => LOG_ROWS * 2 / 5,
        2 => LOG_ROWS * 7 / 10,
        _ => LOG_ROWS,
    };
    let mut out = vec![Reason {
        abuse_type: AbuseType::NetworkActivity,
        subtype: None,
        weight,
        signal: Signal::LogRows { rows: of },
    }];
    if let Some((subtype, _, signal)) = candidates.into_iter().find(|c| c.1 > 0) {
        out.push(Reason {
            abuse_type: AbuseType::NetworkActivity,
            subtype: Some(subtype),
            weight,
            signal,
        });
    }
    out
}

fn rule_reasons(text: &str, rules: &Rules, factor: u32, place: Place) -> Vec<Reason> {
    rules
        .matches(text)
        .map(|rule| {
            let matched = rule.matched(text).unwrap_or_default();
            Reason {
                abuse_type: rule.abuse_type,
                subtype: rule.subtype,
                weight: rule.weight * factor,
                signal: Signal::Rule {
                    id: rule.id.clone(),
                    matched: matched.to_owned(),
                    place,
                },
            }
        })
        .collect()
}

/// The explanation `reports show` prints: one readable paragraph.
pub fn explain(
    abuse_type: AbuseType,
    subtype: Option<NetworkSubtype>,
    reasons: &[Reason],
    missing: &[Missing],
) -> String {
    let kind = match subtype {
        Some(s) => format!("{} ({})", abuse_type.as_str(), s.as_str()),
        None => abuse_type.as_str().to_owned(),
    };
    let mut text = if reasons.is_empty() {
        format!("Classified as {kind}: nothing in the message pointed to any abuse type.")
    } else {
        let shown: Vec<String> = reasons.iter().take(4).map(ToString::to_string).collect();
        let more = if reasons.len() > 4 {
            format!(" and {} weaker signals", reasons.len() - 4)
        } else {
            String::new()
        };
        format!(
            "Classified as {kind} because of {}{more}.",
            shown.join("; ")
        )
    };
    if missing.is_empty() {
        text.push_str(" The evidence this type needs is complete.");
    } else {
        text.push_str(&format!(
            " Still missing: {}.",
            Missing::join(missing, ", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merged_follow_up_reclassifies_from_the_reasons_of_both() {
        let read = |texts: &[&str]| -> Vec<Reason> {
            texts
                .iter()
                .map(|t| Reason::from_text(t).unwrap())
                .collect()
        };
        let original = read(&[
            "web_content +2: 1 URLs named, no logs and no carried message",
            "network_activity +6: rule en.attack matched \"attack\" in the subject",
        ]);
        let follow_up = read(&[
            "network_activity/brute_force +20: 3 of 3 log lines show failed logins",
            "network_activity +20: 3 log rows with addresses",
        ]);
        let (t, s, reasons) = reclassify_merged(&original, &follow_up).unwrap();
        assert_eq!(t, AbuseType::NetworkActivity);
        assert_eq!(s, Some(NetworkSubtype::BruteForce));
        assert_eq!(reasons.len(), 4);
        assert_eq!(reasons[0].weight, 20);
        assert_eq!(reclassify_merged(&[], &[]), None);
    }
}

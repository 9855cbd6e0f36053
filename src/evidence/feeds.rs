//! Report names of the automated feeds that name their report in a file
//! name or subject (Shadowserver: `2026-11-26-scan_ssh-world-asn64500.csv`,
//! `event4_sinkhole_http`, `botnet_drone`, `compromised_website`).
//!
//! In: a parsed message. Out: the report names found, lower case; the
//! classifier maps them to types ([`crate::classify::feed_report_type`]).
//! Pure.

use crate::parse::Parsed;
use regex::Regex;
use std::sync::LazyLock;

/// A report name: one of the families' prefixes, then words joined by `_`.
static REPORT_NAME: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)(?:^|[^a-z0-9])((?:scan|scan6|event4|event6|botnet|sinkhole|sinkhole6|compromised|honeypot|blocklist|drone|ddos|spam|phish|malware|device|darknet|amplification)_[a-z0-9_]+)")
        .expect("valid regex")
});

/// Report names in the attachment names and the subject, in order, once.
pub fn report_names(parsed: &Parsed) -> Vec<String> {
    let mut names = Vec::new();
    let places = parsed
        .attachments
        .iter()
        .filter_map(|a| a.name.as_deref())
        .chain(parsed.subject.as_deref());
    for place in places {
        for c in REPORT_NAME.captures_iter(place) {
            let name = c[1].to_ascii_lowercase();
            if !names.contains(&name) && names.len() < 16 {
                names.push(name);
            }
        }
    }
    names
}

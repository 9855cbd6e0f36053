//! Cases: reports of one abuse type about the same source network (/24 for
//! IPv4, /64 for IPv6) within [`WINDOW_DAYS`] are linked into one case, so an
//! operator handles a campaign once.
//!
//! In: a new report's draft. Out: the case it belongs in, as a key the
//! store looks up (joining the newest case for that key still in the
//! window, or opening one). Pure.

use crate::model::{ip_key, network_len, AbuseType, ReportDraft};

/// A report joins a case whose last report is at most this old.
pub const WINDOW_DAYS: i64 = 7;

/// Which case a report belongs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseKey {
    pub abuse_type: AbuseType,
    /// The network's bytes of the 16-byte address key.
    pub net_key: Vec<u8>,
    /// The network as people write it (`192.0.2.0/24`).
    pub network: String,
    /// Cases last active before this (RFC 3339) are closed to it.
    pub since: String,
}

/// The case key of a new report: the network of its first offending
/// address; `None` without one.
pub fn key(draft: &ReportDraft, received_at: &str) -> Option<CaseKey> {
    let source = *draft.sources.first()?;
    let key = ip_key(source);
    let since = chrono::DateTime::parse_from_rfc3339(received_at)
        .map(|t| {
            (t - chrono::Duration::days(WINDOW_DAYS))
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        })
        .unwrap_or_default();
    Some(CaseKey {
        abuse_type: draft.abuse_type,
        net_key: key[..network_len(&key)].to_vec(),
        network: network_text(&key),
        since,
    })
}

fn network_text(key: &[u8; 16]) -> String {
    let v6 = std::net::Ipv6Addr::from(*key);
    match v6.to_ipv4_mapped() {
        Some(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        None => {
            let mut net = *key;
            net[8..].fill(0);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_a_v4_24_or_a_v6_64_and_the_window_a_week() {
        let mut draft = ReportDraft::empty();
        assert_eq!(key(&draft, "2026-12-02T00:00:00Z"), None);
        draft.sources = vec!["192.0.2.77".parse().unwrap()];
        let k = key(&draft, "2026-12-08T00:00:00Z").unwrap();
        assert_eq!(k.network, "192.0.2.0/24");
        assert_eq!(k.net_key.len(), 15);
        assert_eq!(k.since, "2026-12-01T00:00:00.000000Z");
        draft.sources = vec!["2001:db8:1:2:3::4".parse().unwrap()];
        let k = key(&draft, "2026-12-08T00:00:00Z").unwrap();
        assert_eq!(k.network, "2001:db8:1:2::/64");
        assert_eq!(k.net_key.len(), 8);
    }
}

//! Cases: a report's offenders group into the case of (customer, abuse
//! type) when they are a customer's, open until resolved; offenders of no
//! known customer keep the network grouping — reports of one abuse type
//! about the same source network (/24 for IPv4, /64 for IPv6) within
//! [`WINDOW_DAYS`] — so an operator handles a campaign once. A report about
//! two customers is in two cases.
//!
//! In: a new report's draft (routed). Out: the cases it belongs in, as keys
//! the store looks up (joining the open case of each key, or opening one).
//! Pure.

use crate::model::owner;
use crate::model::{ip_key, network_len, AbuseType, CaseId, CaseStatus, ReportDraft, ReportId};

/// A network case takes a report whose last report is at most this old.
pub const WINDOW_DAYS: i64 = 7;

/// Which case a report belongs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseKey {
    pub abuse_type: AbuseType,
    pub group: Group,
}

/// What a case groups by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    /// A customer's reports of one kind, open until resolved.
    Customer(String),
    /// An unowned source network, within a window.
    Network {
        /// The network's bytes of the 16-byte address key.
        net_key: Vec<u8>,
        /// The network as people write it (`192.0.2.0/24`).
        network: String,
        /// Cases last active before this (RFC 3339) are closed to it.
        since: String,
    },
}

/// The cases of a new report: one per customer its offenders belong to,
/// and the network of its first offending address no customer holds.
pub fn keys(draft: &ReportDraft, received_at: &str) -> Vec<CaseKey> {
    let mut keys: Vec<CaseKey> = owner::customers(&draft.owners)
        .into_iter()
        .map(|customer| CaseKey {
            abuse_type: draft.abuse_type,
            group: Group::Customer(customer.to_owned()),
        })
        .collect();
    let owned = |ip: &std::net::IpAddr| {
        let text = ip.to_string();
        draft
            .owners
            .iter()
            .any(|o| o.customer.is_some() && o.ip_matches(&text))
    };
    if let Some(source) = draft.sources.iter().find(|ip| !owned(ip)) {
        let key = ip_key(*source);
        let since = chrono::DateTime::parse_from_rfc3339(received_at)
            .map(|t| {
                (t - chrono::Duration::days(WINDOW_DAYS))
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            })
            .unwrap_or_default();
        keys.push(CaseKey {
            abuse_type: draft.abuse_type,
            group: Group::Network {
                net_key: key[..network_len(&key)].to_vec(),
                network: network_text(&key),
                since,
            },
        });
    }
    keys
}

/// A report of a case with every case it is in, and each one's status.
pub type Membership = (ReportId, Vec<(CaseId, CaseStatus)>);

/// Which reports resolving case `case` closes, and which stay open: a
/// report closes when every other case it is in is resolved too (a report
/// about two customers stays open until both cases are). `reports`: each
/// report of the case with all its cases.
pub fn reports_to_close(case: CaseId, reports: &[Membership]) -> (Vec<ReportId>, Vec<ReportId>) {
    let (mut close, mut keep) = (Vec::new(), Vec::new());
    for (id, cases) in reports {
        let others_done = cases
            .iter()
            .filter(|(c, _)| *c != case)
            .all(|(_, status)| *status == CaseStatus::Resolved);
        if others_done {
            close.push(*id);
        } else {
            keep.push(*id);
        }
    }
    (close, keep)
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
        assert_eq!(keys(&draft, "2026-12-02T00:00:00Z"), vec![]);
        draft.sources = vec!["192.0.2.77".parse().unwrap()];
        let k = keys(&draft, "2026-12-08T00:00:00Z");
        assert_eq!(k.len(), 1);
        let Group::Network {
            net_key,
            network,
            since,
        } = &k[0].group
        else {
            panic!("{k:?}")
        };
        assert_eq!(network, "192.0.2.0/24");
        assert_eq!(net_key.len(), 15);
        assert_eq!(since, "2026-12-01T00:00:00.000000Z");
        draft.sources = vec!["2001:db8:1:2:3::4".parse().unwrap()];
        let k = keys(&draft, "2026-12-08T00:00:00Z");
        let Group::Network {
            net_key, network, ..
        } = &k[0].group
        else {
            panic!("{k:?}")
        };
        assert_eq!(network, "2001:db8:1:2::/64");
        assert_eq!(net_key.len(), 8);
    }

    fn owner(value: &str, customer: Option<&str>) -> owner::Owner {
        owner::Owner {
            looked: owner::Looked::Address,
            value: value.into(),
            customer: customer.map(str::to_owned),
            matched: owner::MatchKind::Netblock,
            by: None,
            at: "2026-12-01T00:00:00Z".into(),
            time_from: owner::TimeSource::Received,
        }
    }

    #[test]
    fn owned_offenders_group_by_customer_and_the_unowned_by_network() {
        let mut draft = ReportDraft::empty();
        draft.abuse_type = AbuseType::NetworkActivity;
        draft.sources = ["192.0.2.1", "198.51.100.1", "203.0.113.9", "192.0.2.2"]
            .map(|s| s.parse().unwrap())
            .to_vec();
        draft.owners = vec![
            owner("192.0.2.1", Some("A")),
            owner("198.51.100.1", Some("B")),
            owner("203.0.113.9", None),
            owner("192.0.2.2", Some("A")),
        ];
        let groups: Vec<String> = keys(&draft, "2026-12-08T00:00:00Z")
            .into_iter()
            .map(|k| match k.group {
                Group::Customer(c) => format!("customer {c}"),
                Group::Network { network, .. } => format!("network {network}"),
            })
            .collect();
        assert_eq!(
            groups,
            ["customer A", "customer B", "network 203.0.113.0/24"]
        );
        // All owned: no network case.
        draft.owners[2].customer = Some("C".into());
        assert_eq!(keys(&draft, "2026-12-08T00:00:00Z").len(), 3);
    }

    #[test]
    fn a_report_closes_with_its_last_open_case() {
        let (a, b) = (CaseId(1), CaseId(2));
        let reports = vec![
            (ReportId(10), vec![(a, CaseStatus::Open)]),
            (
                ReportId(11),
                vec![(a, CaseStatus::Open), (b, CaseStatus::Open)],
            ),
            (
                ReportId(12),
                vec![(a, CaseStatus::Open), (b, CaseStatus::Resolved)],
            ),
        ];
        assert_eq!(
            reports_to_close(a, &reports),
            (vec![ReportId(10), ReportId(12)], vec![ReportId(11)])
        );
    }
}

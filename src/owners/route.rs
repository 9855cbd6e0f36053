//! Routing: each offender of a report to the customer that held it when
//! the event happened.
//!
//! In: a report's draft, when it arrived, and the [`Index`] (plus what the
//! HTTP resolver answered, if one is configured). Out: one [`Owner`] per
//! offending address and per reported host, with what matched and the time
//! used. Pure.

use super::{domain_key, Index, Target};
use crate::model::owner::{Looked, MatchKind, Owner, TimeSource};
use crate::model::ReportDraft;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::IpAddr;

/// Offenders and hosts looked up per report, at most; a feed's report of
/// 50,000 rows names far fewer, and the rest are counted in a warning.
pub const MAX_LOOKUPS: usize = 1024;

/// One thing to look up, at its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub looked: Looked,
    /// The address or host name (lower case).
    pub value: String,
    /// The address, when `looked` is one.
    pub ip: Option<IpAddr>,
    pub at: DateTime<Utc>,
    pub time_from: TimeSource,
}

/// What the lookups of a report need: the queries, and how many were left
/// out past [`MAX_LOOKUPS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queries {
    pub queries: Vec<Query>,
    pub left_out: usize,
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
}

/// The time of an event: the earliest of its evidence times that is not
/// after the report arrived; else the arrival.
fn event_time(
    times: impl Iterator<Item = DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> (DateTime<Utc>, TimeSource) {
    times
        .filter(|t| *t <= received_at)
        .min()
        .map_or((received_at, TimeSource::Received), |t| {
            (t, TimeSource::Evidence)
        })
}

/// The offending addresses (first found first) and the hosts of reported
/// URLs, each once, with the time to look each up at.
pub fn queries(draft: &ReportDraft, received_at: DateTime<Utc>) -> Queries {
    // The times the evidence gives each offending address and each URL.
    let mut address_times: HashMap<IpAddr, Vec<DateTime<Utc>>> = HashMap::new();
    let mut url_times: HashMap<&str, Vec<DateTime<Utc>>> = HashMap::new();
    for row in &draft.evidence {
        let Some(at) = row.occurred_at.as_deref().and_then(parse_time) else {
            continue;
        };
        if let (Some(ip), true) = (row.source_ip, row.is_offender()) {
            address_times.entry(ip).or_default().push(at);
        }
        if let Some(url) = row.url.as_deref() {
            url_times.entry(url).or_default().push(at);
        }
    }
    let mut queries: Vec<Query> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut wanted = 0usize;
    let mut push = |query: Query, queries: &mut Vec<Query>| {
        if seen.insert((query.looked, query.value.clone())) {
            wanted += 1;
            if queries.len() < MAX_LOOKUPS {
                queries.push(query);
            }
        }
    };
    for ip in &draft.sources {
        let times = address_times.get(ip).into_iter().flatten().copied();
        let (at, time_from) = event_time(times, received_at);
        let query = Query {
            looked: Looked::Address,
            value: ip.to_string(),
            ip: Some(*ip),
            at,
            time_from,
        };
        push(query, &mut queries);
    }
    for url in &draft.urls {
        let Some(host) = crate::evidence::text::url_host(url) else {
            continue;
        };
        let times = url_times.get(url.as_str()).into_iter().flatten().copied();
        let (at, time_from) = event_time(times, received_at);
        let query = match host.parse::<IpAddr>() {
            Ok(ip) => Query {
                looked: Looked::Address,
                value: ip.to_string(),
                ip: Some(ip),
                at,
                time_from,
            },
            Err(_) => match domain_key(host) {
                Some(name) => Query {
                    looked: Looked::Host,
                    value: name,
                    ip: None,
                    at,
                    time_from,
                },
                None => continue,
            },
        };
        push(query, &mut queries);
    }
    Queries {
        left_out: wanted - queries.len(),
        queries,
    }
}

/// Whose `query` is by the local assignments.
pub fn local(index: &Index, query: &Query) -> Owner {
    let found = match query.ip {
        Some(ip) => index.address(ip, query.at),
        None => index.domain(&query.value, query.at),
    };
    let (customer, matched, by) = match found {
        Some(a) => {
            let (kind, by) = match &a.target {
                Target::Netblock(block) => (MatchKind::Netblock, block.to_string()),
                Target::Domain(name) => (MatchKind::Domain, name.clone()),
            };
            (Some(a.customer.clone()), kind, Some(by))
        }
        None => (None, MatchKind::Unowned, None),
    };
    Owner {
        looked: query.looked,
        value: query.value.clone(),
        customer,
        matched,
        by,
        at: query.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        time_from: query.time_from,
    }
}

/// What the operator's resolver said of a query: the customer (`None`:
/// none it knows of) and the window its answer holds for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub customer: Option<String>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}

impl Answer {
    /// Whether the answer holds at `at`.
    pub fn holds_at(&self, at: DateTime<Utc>) -> bool {
        super::within(self.valid_from, self.valid_until, at)
    }
}

/// Another source of owners, asked before the local assignments (the
/// operator's HTTP resolver). `None`: no answer (not configured, an error,
/// out of time): the local assignments decide.
pub trait Resolver {
    /// Whether it may answer at all.
    fn active(&self) -> bool;
    fn resolve(&mut self, query: &Query) -> Option<Answer>;
}

/// No resolver: the local assignments alone.
pub struct LocalOnly;

impl Resolver for LocalOnly {
    fn active(&self) -> bool {
        false
    }

    fn resolve(&mut self, _: &Query) -> Option<Answer> {
        None
    }
}

/// Whose `query` is: the resolver's customer when it names one, else the
/// local assignments'.
pub fn owner(index: &Index, resolver: &mut dyn Resolver, query: &Query) -> Owner {
    match resolver.resolve(query) {
        Some(Answer {
            customer: Some(customer),
            ..
        }) => Owner {
            looked: query.looked,
            value: query.value.clone(),
            customer: Some(customer),
            matched: MatchKind::Http,
            by: None,
            at: query.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            time_from: query.time_from,
        },
        _ => local(index, query),
    }
}

/// Routes a report: whose each offender and host is, by the resolver and
/// the local assignments. Empty when no owners are known (a desk that
/// imported none and runs no resolver routes nothing). The second value
/// counts lookups left out.
pub fn route(
    index: &Index,
    resolver: &mut dyn Resolver,
    draft: &ReportDraft,
    received_at: DateTime<Utc>,
) -> (Vec<Owner>, usize) {
    if index.is_empty() && !resolver.active() {
        return (Vec::new(), 0);
    }
    let Queries { queries, left_out } = queries(draft, received_at);
    let owners = queries.iter().map(|q| owner(index, resolver, q)).collect();
    (owners, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::evidence::{Kind, Row};
    use crate::owners::tests::{at, block};
    use crate::owners::Assignment;

    fn row(ip: &str, when: Option<&str>) -> Row {
        let mut r = Row::new(Kind::LogRow, "body");
        r.source_ip = Some(ip.parse().unwrap());
        r.occurred_at = when.map(str::to_owned);
        r
    }

    #[test]
    fn an_address_goes_to_whoever_held_it_when_the_event_happened() {
        // 198.51.100.0/24 moved from A to B at T; the report of T-1h
        // arrives at T+2d and is about A.
        let t = "2026-11-01T00:00:00Z";
        let index = Index::new(vec![
            block("A", "198.51.100.0/24", None, Some(t)),
            block("B", "198.51.100.0/24", Some(t), None),
            block("C", "198.51.100.8/29", None, None),
        ]);
        let mut draft = ReportDraft::empty();
        draft.sources = vec![
            "198.51.100.7".parse().unwrap(),
            "198.51.100.9".parse().unwrap(),
            "192.0.2.1".parse().unwrap(),
        ];
        draft.evidence = vec![
            row("198.51.100.7", Some("2026-10-31T23:30:00Z")),
            row("198.51.100.7", Some("2026-10-31T23:00:00Z")),
            // After it arrived: not believed.
            row("198.51.100.9", Some("2027-01-01T00:00:00Z")),
        ];
        let (owners, left_out) = route(&index, &mut LocalOnly, &draft, at("2026-11-03T00:00:00Z"));
        assert_eq!(left_out, 0);
        let got: Vec<_> = owners
            .iter()
            .map(|o| {
                (
                    o.value.as_str(),
                    o.customer.as_deref(),
                    o.why(),
                    o.at.as_str(),
                    o.time_from,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "198.51.100.7",
                    Some("A"),
                    "netblock 198.51.100.0/24".to_owned(),
                    "2026-10-31T23:00:00Z",
                    TimeSource::Evidence
                ),
                (
                    "198.51.100.9",
                    Some("C"),
                    "netblock 198.51.100.8/29".to_owned(),
                    "2026-11-03T00:00:00Z",
                    TimeSource::Received
                ),
                (
                    "192.0.2.1",
                    None,
                    "not ours".to_owned(),
                    "2026-11-03T00:00:00Z",
                    TimeSource::Received
                ),
            ]
        );
    }

    #[test]
    fn a_url_goes_by_its_registrable_domain_or_by_the_address_it_names() {
        let index = Index::new(vec![
            Assignment {
                customer: "shop".into(),
                target: Target::Domain("example.co.uk".into()),
                valid_from: None,
                valid_until: None,
            },
            block("host", "203.0.113.0/24", None, None),
        ]);
        let mut draft = ReportDraft::empty();
        draft.urls = vec![
            "https://www.shop.example.co.uk/login".into(),
            "http://203.0.113.5:8080/x".into(),
            "http://other.co.uk/".into(),
            "https://WWW.Shop.Example.co.uk/again".into(),
        ];
        let (owners, _) = route(&index, &mut LocalOnly, &draft, at("2026-11-03T00:00:00Z"));
        let got: Vec<_> = owners
            .iter()
            .map(|o| (o.looked, o.value.as_str(), o.customer.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Looked::Host, "www.shop.example.co.uk", Some("shop")),
                (Looked::Address, "203.0.113.5", Some("host")),
                (Looked::Host, "other.co.uk", None),
            ]
        );
    }

    #[test]
    fn nothing_is_routed_without_owners_and_lookups_have_a_budget() {
        let mut draft = ReportDraft::empty();
        draft.sources = (0..MAX_LOOKUPS as u32 + 10)
            .map(|n| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n)))
            .collect();
        let received = at("2026-11-03T00:00:00Z");
        assert_eq!(
            route(&Index::default(), &mut LocalOnly, &draft, received),
            (Vec::new(), 0)
        );
        let index = Index::new(vec![block("A", "10.0.0.0/8", None, None)]);
        let (owners, left_out) = route(&index, &mut LocalOnly, &draft, received);
        assert_eq!((owners.len(), left_out), (MAX_LOOKUPS, 10));
    }

    struct Fixed(Vec<(&'static str, Option<Answer>)>, usize);

    impl Resolver for Fixed {
        fn active(&self) -> bool {
            true
        }

        fn resolve(&mut self, query: &Query) -> Option<Answer> {
            self.1 += 1;
            self.0
                .iter()
                .find(|(v, _)| *v == query.value)
                .and_then(|(_, a)| a.clone())
        }
    }

    #[test]
    fn the_resolver_names_the_customer_and_the_local_tables_answer_the_rest() {
        let index = Index::new(vec![block("local", "192.0.2.0/24", None, None)]);
        let named = Answer {
            customer: Some("ipam".into()),
            valid_from: None,
            valid_until: None,
        };
        let unknown = Answer {
            customer: None,
            ..named.clone()
        };
        let mut resolver = Fixed(
            vec![
                ("192.0.2.1", Some(named)),
                ("192.0.2.2", Some(unknown)),
                ("192.0.2.3", None),
            ],
            0,
        );
        let mut draft = ReportDraft::empty();
        draft.sources = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.1"]
            .map(|s| s.parse().unwrap())
            .to_vec();
        let (owners, _) = route(&index, &mut resolver, &draft, at("2026-11-03T00:00:00Z"));
        let got: Vec<_> = owners
            .iter()
            .map(|o| (o.customer.as_deref(), o.why()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("ipam"), "http resolver".to_owned()),
                (Some("local"), "netblock 192.0.2.0/24".to_owned()),
                (Some("local"), "netblock 192.0.2.0/24".to_owned()),
                (None, "not ours".to_owned()),
            ]
        );
        assert_eq!(resolver.1, 4);
        // With no assignments, an active resolver still routes.
        let (owners, _) = route(
            &Index::default(),
            &mut resolver,
            &draft,
            at("2026-11-03T00:00:00Z"),
        );
        assert_eq!(owners.len(), 4);
    }
}

//! Whose is it: customers' netblocks and domains, each valid for a time,
//! and the lookup that says which customer held an address or a domain at
//! the time of an event.
//!
//! In: the assignments (as the store keeps them) and a query with its
//! time. Out: the most specific assignment valid then, and why it matched.
//! Pure: the [`Index`] is built once from the assignments and rebuilt when
//! they change.

pub mod import;
pub mod netblock;
pub mod route;

pub use netblock::Netblock;

use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

/// What an assignment gives a customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Netblock(Netblock),
    /// A domain (lower case, no trailing dot) and every name under it.
    Domain(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Netblock(block) => write!(f, "netblock {block}"),
            Target::Domain(domain) => write!(f, "domain {domain}"),
        }
    }
}

/// A netblock or domain held by a customer from `valid_from` (open: since
/// ever) until `valid_until` (open: still), the end excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The customer's reference.
    pub customer: String,
    pub target: Target,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}

impl Assignment {
    pub fn valid_at(&self, at: DateTime<Utc>) -> bool {
        within(self.valid_from, self.valid_until, at)
    }
}

/// Whether `at` lies in the window from `from` (open: since ever) until
/// `until` (open: still), the end excluded.
pub fn within(
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> bool {
    from.is_none_or(|from| from <= at) && until.is_none_or(|until| at < until)
}

/// A domain as assignments and lookups compare it: lower case, without a
/// trailing dot; `None` when it is not a host name.
pub fn domain_key(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    labels_ok.then_some(name)
}

/// How an assignment sorts among those covering an address: smaller
/// blocks first; of the same block, the latest start; then its position.
type Specificity = (u128, std::cmp::Reverse<Option<DateTime<Utc>>>, u32);

/// The assignments, indexed for lookups by address and by domain.
#[derive(Debug, Default)]
pub struct Index {
    assignments: Vec<Assignment>,
    /// Where each elementary segment of the address space starts, sorted;
    /// a segment runs to the next start.
    starts: Vec<u128>,
    /// The assignments covering segment `i`: `covering[offsets[i]..offsets[i + 1]]`,
    /// most specific first.
    offsets: Vec<u32>,
    covering: Vec<u32>,
    domains: HashMap<String, Vec<u32>>,
}

impl Index {
    /// Builds the index: a sweep over the blocks' ends cuts the address
    /// space into segments that every block covers whole or not at all.
    pub fn new(assignments: Vec<Assignment>) -> Index {
        let mut events: Vec<(u128, bool, u32)> = Vec::new();
        let mut domains: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, a) in assignments.iter().enumerate() {
            let i = i as u32;
            match &a.target {
                Target::Netblock(block) => {
                    events.push((block.first_key(), true, i));
                    if let Some(end) = block.last_key().checked_add(1) {
                        events.push((end, false, i));
                    }
                }
                Target::Domain(domain) => domains.entry(domain.clone()).or_default().push(i),
            }
        }
        events.sort_unstable();
        let specificity = |i: &u32| -> Specificity {
            let a = &assignments[*i as usize];
            let span = match &a.target {
                Target::Netblock(block) => block.span(),
                Target::Domain(_) => u128::MAX,
            };
            (span, std::cmp::Reverse(a.valid_from), *i)
        };
        let mut active: BTreeSet<Specificity> = BTreeSet::new();
        let (mut starts, mut offsets, mut covering) = (Vec::new(), vec![0u32], Vec::new());
        let mut e = 0;
        while e < events.len() {
            let at = events[e].0;
            while e < events.len() && events[e].0 == at {
                let (_, opens, i) = events[e];
                if opens {
                    active.insert(specificity(&i));
                } else {
                    active.remove(&specificity(&i));
                }
                e += 1;
            }
            starts.push(at);
            covering.extend(active.iter().map(|(_, _, i)| *i));
            offsets.push(covering.len() as u32);
        }
        for list in domains.values_mut() {
            list.sort_by_key(|i| std::cmp::Reverse(assignments[*i as usize].valid_from));
        }
        Index {
            assignments,
            starts,
            offsets,
            covering,
            domains,
        }
    }

    pub fn len(&self) -> usize {
        self.assignments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.assignments.is_empty()
    }

    /// The most specific netblock assignment holding `ip` at `at`.
    pub fn address(&self, ip: IpAddr, at: DateTime<Utc>) -> Option<&Assignment> {
        let k = netblock::key(ip);
        let segment = self.starts.partition_point(|s| *s <= k).checked_sub(1)?;
        let (from, to) = (
            self.offsets[segment] as usize,
            self.offsets[segment + 1] as usize,
        );
        self.covering[from..to]
            .iter()
            .map(|i| &self.assignments[*i as usize])
            .find(|a| a.valid_at(at))
    }

    /// The assignment of `host` or the nearest name above it, up to its
    /// registrable domain (the Public Suffix List's: `www.shop.example.co.uk`
    /// finds `example.co.uk`, never `co.uk`), valid at `at`.
    pub fn domain(&self, host: &str, at: DateTime<Utc>) -> Option<&Assignment> {
        let host = domain_key(host)?;
        let floor = psl::domain_str(&host).unwrap_or(host.as_str());
        let mut name = host.as_str();
        loop {
            if let Some(found) = self.domains.get(name).and_then(|list| {
                list.iter()
                    .map(|i| &self.assignments[*i as usize])
                    .find(|a| a.valid_at(at))
            }) {
                return Some(found);
            }
            if name.len() <= floor.len() {
                return None;
            }
            name = name.split_once('.')?.1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    /// A netblock assignment, for the tests of this room.
    pub(super) fn block(
        customer: &str,
        net: &str,
        from: Option<&str>,
        until: Option<&str>,
    ) -> Assignment {
        Assignment {
            customer: customer.into(),
            target: Target::Netblock(Netblock::parse(net).unwrap()),
            valid_from: from.map(at),
            valid_until: until.map(at),
        }
    }

    fn domain(customer: &str, name: &str) -> Assignment {
        Assignment {
            customer: customer.into(),
            target: Target::Domain(name.into()),
            valid_from: None,
            valid_until: None,
        }
    }

    const NOW: &str = "2026-12-03T12:00:00Z";

    fn owner<'a>(index: &'a Index, ip: &str, when: &str) -> Option<&'a str> {
        index
            .address(ip.parse().unwrap(), at(when))
            .map(|a| a.customer.as_str())
    }

    #[test]
    fn the_most_specific_block_wins_and_ipv6_works() {
        let index = Index::new(vec![
            block("big", "203.0.113.0/24", None, None),
            block("small", "203.0.113.8/29", None, None),
            block("range", "203.0.113.9-203.0.113.10", None, None),
            block("v6", "2001:db8::/32", None, None),
            block("v6-small", "2001:db8:1::/48", None, None),
        ]);
        assert_eq!(owner(&index, "203.0.113.1", NOW), Some("big"));
        assert_eq!(owner(&index, "203.0.113.8", NOW), Some("small"));
        assert_eq!(owner(&index, "203.0.113.10", NOW), Some("range"));
        assert_eq!(owner(&index, "203.0.113.15", NOW), Some("small"));
        assert_eq!(owner(&index, "203.0.113.16", NOW), Some("big"));
        assert_eq!(owner(&index, "203.0.114.0", NOW), None);
        assert_eq!(owner(&index, "2001:db8:1::5", NOW), Some("v6-small"));
        assert_eq!(owner(&index, "2001:db8:2::5", NOW), Some("v6"));
        assert_eq!(owner(&index, "::ffff:203.0.113.1", NOW), Some("big"));
    }

    #[test]
    fn an_address_belongs_to_whoever_held_it_at_the_event() {
        // It moved from A to B at T; a report of T-1h that arrives at
        // T+2d is about A.
        let t = "2026-11-01T00:00:00Z";
        let index = Index::new(vec![
            block("A", "198.51.100.0/24", None, Some(t)),
            block("B", "198.51.100.0/24", Some(t), None),
        ]);
        assert_eq!(
            owner(&index, "198.51.100.7", "2026-10-31T23:00:00Z"),
            Some("A")
        );
        assert_eq!(owner(&index, "198.51.100.7", t), Some("B"));
        assert_eq!(
            owner(&index, "198.51.100.7", "2026-11-03T00:00:00Z"),
            Some("B")
        );
        // A /29 of C's inside, but only for a week: before and after, B's.
        let index = Index::new(vec![
            block("B", "198.51.100.0/24", None, None),
            block(
                "C",
                "198.51.100.0/29",
                Some("2026-11-10T00:00:00Z"),
                Some("2026-11-17T00:00:00Z"),
            ),
        ]);
        assert_eq!(
            owner(&index, "198.51.100.1", "2026-11-09T00:00:00Z"),
            Some("B")
        );
        assert_eq!(
            owner(&index, "198.51.100.1", "2026-11-12T00:00:00Z"),
            Some("C")
        );
        assert_eq!(
            owner(&index, "198.51.100.1", "2026-11-20T00:00:00Z"),
            Some("B")
        );
    }

    #[test]
    fn a_domain_is_found_from_any_name_under_it_down_to_its_registrable_domain() {
        let index = Index::new(vec![
            domain("shop", "example.co.uk"),
            domain("blog", "blog.example.net"),
            domain("suffix", "co.uk"),
        ]);
        let owner = |host: &str| index.domain(host, at(NOW)).map(|a| a.customer.as_str());
        assert_eq!(owner("www.shop.example.co.uk"), Some("shop"));
        assert_eq!(owner("EXAMPLE.CO.UK."), Some("shop"));
        assert_eq!(owner("a.blog.example.net"), Some("blog"));
        assert_eq!(owner("example.net"), None);
        // Never above the registrable domain: co.uk is a public suffix.
        assert_eq!(owner("other.co.uk"), None);
        assert_eq!(owner("not a host"), None);
    }

    /// A small deterministic generator: the property test needs no crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn the_index_agrees_with_a_brute_force_scan() {
        let mut rng = Lcg(7);
        let days = |n: u64| at("2026-01-01T00:00:00Z") + chrono::Duration::days(n as i64);
        let mut assignments = Vec::new();
        for n in 0..400 {
            // Blocks inside 10.0.0.0/16 so that they nest and overlap.
            let len = 16 + rng.next() % 17;
            let addr = 0x0a00_0000u32 | (rng.next() as u32 & 0xffff);
            let mask = if len == 32 {
                u32::MAX
            } else {
                !(u32::MAX >> len)
            };
            let net = format!("{}/{len}", std::net::Ipv4Addr::from(addr & mask));
            let from = (rng.next() % 3 != 0).then(|| days(rng.next() % 300));
            let until = from.map(|f| f + chrono::Duration::days(1 + (rng.next() % 200) as i64));
            assignments.push(Assignment {
                customer: format!("c{n}"),
                target: Target::Netblock(Netblock::parse(&net).unwrap()),
                valid_from: from,
                valid_until: until,
            });
        }
        let index = Index::new(assignments.clone());
        let mut mismatches = 0;
        for _ in 0..20_000 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(
                0x0a00_0000u32 | (rng.next() as u32 & 0x1_ffff),
            ));
            let when = days(rng.next() % 520);
            let brute = assignments
                .iter()
                .enumerate()
                .filter(|(_, a)| match &a.target {
                    Target::Netblock(b) => b.contains(ip) && a.valid_at(when),
                    Target::Domain(_) => false,
                })
                .min_by_key(|(i, a)| match &a.target {
                    Target::Netblock(b) => (b.span(), std::cmp::Reverse(a.valid_from), *i),
                    Target::Domain(_) => unreachable!(),
                })
                .map(|(_, a)| a);
            if index.address(ip, when) != brute {
                mismatches += 1;
            }
        }
        assert_eq!(mismatches, 0);
    }
}

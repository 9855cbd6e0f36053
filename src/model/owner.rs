//! Whose an offender is, as a report records it: for each offending address
//! and each reported host, the customer that held it at the event's time,
//! what matched, and which time was used.

use serde::{Deserialize, Serialize};

/// What was looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Looked {
    /// An offending address (or the address a URL names).
    Address,
    /// The host name of a reported URL.
    Host,
}

impl Looked {
    pub const ALL: [Looked; 2] = [Looked::Address, Looked::Host];

    pub fn as_str(self) -> &'static str {
        match self {
            Looked::Address => "address",
            Looked::Host => "host",
        }
    }

    pub fn parse(s: &str) -> Option<Looked> {
        Looked::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What made the customer the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The most specific netblock holding the address then.
    Netblock,
    /// The host's own assignment, or the nearest name above it up to the
    /// registrable domain.
    Domain,
    /// The operator's HTTP resolver answered.
    Http,
    /// Nothing matched: not on our network (as far as we know).
    Unowned,
}

impl MatchKind {
    pub const ALL: [MatchKind; 4] = [
        MatchKind::Netblock,
        MatchKind::Domain,
        MatchKind::Http,
        MatchKind::Unowned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Netblock => "netblock",
            MatchKind::Domain => "domain",
            MatchKind::Http => "http",
            MatchKind::Unowned => "unowned",
        }
    }

    pub fn parse(s: &str) -> Option<MatchKind> {
        MatchKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which time an offender was matched at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The earliest time its evidence rows give.
    Evidence,
    /// The report's arrival: the evidence gives none (or one after it).
    Received,
}

impl TimeSource {
    pub const ALL: [TimeSource; 2] = [TimeSource::Evidence, TimeSource::Received];

    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Evidence => "evidence",
            TimeSource::Received => "received",
        }
    }

    pub fn parse(s: &str) -> Option<TimeSource> {
        TimeSource::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One offender (or reported host) and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub looked: Looked,
    /// The address or host name, as looked up.
    pub value: String,
    /// The customer's reference; `None` when nothing matched.
    pub customer: Option<String>,
    pub matched: MatchKind,
    /// What matched: `203.0.113.0/24`, `example.co.uk`, the resolver's URL;
    /// `None` when nothing did.
    pub by: Option<String>,
    /// The time it was matched at (RFC 3339, UTC).
    pub at: String,
    pub time_from: TimeSource,
}

impl Owner {
    /// Whether this is the lookup of address `ip` (as text).
    pub fn ip_matches(&self, ip: &str) -> bool {
        self.looked == Looked::Address && self.value == ip
    }

    /// Why, as an operator reads it: `netblock 203.0.113.0/24`,
    /// `domain example.co.uk`, `http resolver`, `not ours`.
    pub fn why(&self) -> String {
        match (self.matched, &self.by) {
            (MatchKind::Unowned, _) => "not ours".to_owned(),
            (MatchKind::Http, _) => "http resolver".to_owned(),
            (kind, Some(by)) => format!("{} {by}", kind.as_str()),
            (kind, None) => kind.as_str().to_owned(),
        }
    }
}

/// Whether a report's offenders are ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// Nothing to look up (no offender, no host), or no owners are known.
    Unrouted,
    /// Every offender matched a customer.
    Owned,
    /// Some did, some did not.
    Partly,
    /// None did: not on our network.
    NotOurs,
}

impl Ownership {
    /// What `owners` say together.
    pub fn of(owners: &[Owner]) -> Ownership {
        let owned = owners.iter().filter(|o| o.customer.is_some()).count();
        match (owners.len(), owned) {
            (0, _) => Ownership::Unrouted,
            (n, o) if o == n => Ownership::Owned,
            (_, 0) => Ownership::NotOurs,
            _ => Ownership::Partly,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::Unrouted => "unrouted",
            Ownership::Owned => "owned",
            Ownership::Partly => "partly",
            Ownership::NotOurs => "not_ours",
        }
    }

    pub const ALL: [Ownership; 4] = [
        Ownership::Unrouted,
        Ownership::Owned,
        Ownership::Partly,
        Ownership::NotOurs,
    ];

    pub fn parse(s: &str) -> Option<Ownership> {
        Ownership::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The customers of `owners`, each once, in order of first appearance.
pub fn customers(owners: &[Owner]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in owners.iter().filter_map(|o| o.customer.as_deref()) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

//! Reply rate limits: per recipient, per recipient domain, and in all.
//!
//! In: the recipient address, and counts of the replies queued in the last
//! hour (the store counts). Out: whether one more may go, or why not. Pure.
//! An address is counted under its [`key`]: lower case, without its
//! `+tag`, so `Victim+1@Example.org` and `victim@example.org` share one limit.

pub use crate::model::reply::Limits;
use crate::model::reply::{LimitScope, Suppression};

/// Replies queued in the last hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recent {
    pub recipient: u64,
    pub domain: u64,
    pub global: u64,
}

/// The address as limits count it: lower case, sub-address (`+tag`) cut.
pub fn key(address: &str) -> String {
    let address = address.trim().to_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}")
        }
        None => address,
    }
}

/// The address's domain, lower case.
pub fn domain(address: &str) -> String {
    address
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .trim()
        .trim_end_matches('.')
        .to_lowercase()
}

/// The organisational domain of a domain name (RFC 7489 §3.2): its
/// registrable part under the Public Suffix List, lower case
/// (`mail.cert.example.co.uk` → `example.co.uk`); a name that is itself a
/// public suffix, or has none known, is its own organisation.
pub fn organisation(domain: &str) -> String {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&domain).map_or_else(|| domain.clone(), str::to_owned)
}

/// Whether two addresses' domains belong to one organisation.
pub fn same_organisation(a: &str, b: &str) -> bool {
    let (a, b) = (domain(a), domain(b));
    !a.is_empty() && organisation(&a) == organisation(&b)
}

/// `Err(reason)` when one more reply would pass a limit.
pub fn check(recent: Recent, limits: Limits) -> Result<(), Suppression> {
    let passed = [
        (LimitScope::Global, recent.global, limits.global),
        (LimitScope::Domain, recent.domain, limits.per_domain),
        (
            LimitScope::Recipient,
            recent.recipient,
            limits.per_recipient,
        ),
    ]
    .into_iter()
    .find(|(_, count, limit)| *count >= u64::from(*limit));
    match passed {
        Some((scope, count, _)) => Err(Suppression::RateLimit { scope, count }),
        None => Ok(()),
    }
}

/// `plan`, to another recipient: its rate-limit key and domain follow.
pub fn plan_for(plan: &crate::model::ReplyPlan, recipient: &str) -> crate::model::ReplyPlan {
    crate::model::ReplyPlan {
        recipient: recipient.to_owned(),
        recipient_key: key(recipient),
        recipient_domain: domain(recipient),
        ..plan.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisations_follow_the_public_suffix_list() {
        assert_eq!(organisation("Mail.Cert.Example.co.uk."), "example.co.uk");
        assert_eq!(organisation("example.org"), "example.org");
        assert_eq!(organisation("a.b.example.org"), "example.org");
        // Anyone may register under these: each name is its own organisation.
        assert!(!same_organisation(
            "mallory@evil.co.uk",
            "victim@bank.co.uk"
        ));
        assert!(!same_organisation("a@alice.github.io", "b@bob.github.io"));
        assert!(!same_organisation("a@x.com.au", "b@y.com.au"));
        assert!(same_organisation(
            "analyst@cert.example.org",
            "tickets@example.org"
        ));
        assert!(!same_organisation(
            "a@good.example.org",
            "b@victim.example.net"
        ));
    }

    #[test]
    fn case_and_sub_address_variants_share_one_key() {
        for variant in [
            "victim@example.org",
            "Victim@EXAMPLE.org",
            "victim+1@example.org",
            "VICTIM+abc+d@Example.Org",
        ] {
            assert_eq!(key(variant), "victim@example.org", "{variant}");
        }
        assert_eq!(domain("a@Mail.Example.org."), "mail.example.org");
    }

    #[test]
    fn the_tightest_limit_decides() {
        let limits = Limits {
            per_recipient: 5,
            per_domain: 20,
            global: 200,
        };
        assert!(check(Recent::default(), limits).is_ok());
        let at = |recipient, domain, global| Recent {
            recipient,
            domain,
            global,
        };
        let scope = |r: Result<(), Suppression>| match r {
            Err(Suppression::RateLimit { scope, .. }) => Some(scope),
            _ => None,
        };
        assert_eq!(
            scope(check(at(5, 5, 5), limits)),
            Some(LimitScope::Recipient)
        );
        assert_eq!(
            scope(check(at(0, 20, 20), limits)),
            Some(LimitScope::Domain)
        );
        assert_eq!(
            scope(check(at(0, 0, 200), limits)),
            Some(LimitScope::Global)
        );
        assert_eq!(
            check(at(0, 0, 200), limits).unwrap_err().to_string(),
            "rate limit: 200 replies in all in the last hour (reply.rate_limit_global_per_hour)"
        );
    }
}

//! Sender authentication: is the reporter who the From line says?
//!
//! In: a committed message and its envelope (peer IP, HELO, MAIL FROM).
//! Out: [`AuthResults`]: SPF, DKIM and DMARC verdicts from Stalwart's
//! `mail-auth`, whether a pass is aligned with the From domain, and the one
//! decision the reply policy uses, `authenticated`. Runs in the worker child
//! (after the `250`, so DNS never delays intake), once per message: the
//! result is stored with the raw message and reused by `reprocess`.
//!
//! The rule: the From domain is authenticated by a DMARC pass, or, when the
//! domain publishes no DMARC record, by an SPF pass for a MAIL FROM domain or
//! a DKIM signature whose `d=` is the From domain or a parent of it. DNS
//! lookups go through hickory's caching resolver, each bounded by the
//! resolver's timeout and the whole check by `auth.timeout_seconds`; a check
//! that does not finish is a `temperror`, which does not authenticate.

use crate::config::AuthConfig;
use crate::model::{Envelope, Sender};
use mail_auth::hickory_resolver::config::{
    NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfResult};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// One check's result, as `Authentication-Results` (RFC 8601) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::SoftFail => "softfail",
            Verdict::Neutral => "neutral",
            Verdict::None => "none",
            Verdict::TempError => "temperror",
            Verdict::PermError => "permerror",
        }
    }
}

/// What the checks found for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResults {
    pub spf: Verdict,
    pub dkim: Verdict,
    pub dmarc: Verdict,
    /// An SPF or DKIM pass for the From domain (or a parent of it).
    pub aligned: bool,
    /// The reply policy's question: is the From address the sender's?
    pub authenticated: bool,
    /// The From domain checked (none when From had no single domain).
    pub domain: Option<String>,
    /// Whether that domain takes mail: an MX (not a null MX, RFC 7505) or
    /// an address record. `None`: not known (not looked up, or DNS failed).
    #[serde(default)]
    pub accepts_mail: Option<bool>,
    /// `spf=pass smtp.mailfrom=… dkim=pass header.d=… dmarc=pass header.from=…`.
    pub summary: String,
}

impl AuthResults {
    /// The result for a message that could not be checked at all.
    pub fn unchecked(why: Verdict, domain: Option<String>) -> AuthResults {
        let summary = format!(
            "spf={0} dkim={0} dmarc={0}{1}",
            why.as_str(),
            domain
                .as_deref()
                .map(|d| format!(" header.from={d}"))
                .unwrap_or_default()
        );
        AuthResults {
            spf: why,
            dkim: why,
            dmarc: why,
            aligned: false,
            authenticated: false,
            domain,
            accepts_mail: None,
            summary,
        }
    }
}

/// The verifier: a DNS resolver with its cache, built once per worker.
pub struct Verifier {
    authenticator: MessageAuthenticator,
    timeout: Duration,
    /// Our name in SPF checks (the host the message was received at).
    host: String,
    /// After a check ran out of time, DNS counts as down until then: the
    /// messages in between are `temperror` at once instead of each waiting
    /// out the timeout (a DNS outage must not stall processing).
    dns_down_until: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long DNS counts as down after a check ran out of time.
const DNS_DOWN_PAUSE: Duration = Duration::from_secs(30);

impl Verifier {
    /// # Errors
    /// A nameserver is not `IP` or `IP:PORT`, or the system resolver
    /// configuration cannot be read.
    pub fn new(config: &AuthConfig, host: &str) -> Result<Verifier, String> {
        let timeout = Duration::from_secs(config.timeout_seconds.max(1));
        let mut options = ResolverOpts::default();
        // Each lookup gets a share of the message's budget, and one retry.
        options.timeout = (timeout / 3).max(Duration::from_millis(500));
        options.attempts = 1;
        options.cache_size = 4096;
        let resolver = if config.nameservers.is_empty() {
            let (system, _) = mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("auth: /etc/resolv.conf: {e}"))?;
            system
        } else {
            let mut resolver = ResolverConfig::from_parts(None, Vec::new(), Vec::new());
            for server in &config.nameservers {
                let addr = server
                    .parse::<SocketAddr>()
                    .or_else(|_| server.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| format!("auth.nameservers: {server:?} is not an IP or IP:PORT"))?;
                resolver.add_name_server(NameServerConfig::new(addr, ProtocolConfig::Udp));
                resolver.add_name_server(NameServerConfig::new(addr, ProtocolConfig::Tcp));
            }
            resolver
        };
        let authenticator = MessageAuthenticator::new(resolver, options)
            .map_err(|e| format!("auth: resolver: {e}"))?;
        Ok(Verifier {
            authenticator,
            timeout,
            host: host.to_owned(),
            dns_down_until: std::sync::Mutex::new(None),
        })
    }

    /// Checks one message; never fails (what cannot be checked is
    /// `temperror` or `permerror` and does not authenticate).
    pub async fn verify(&self, envelope: &Envelope, raw: &[u8]) -> AuthResults {
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return AuthResults::unchecked(Verdict::PermError, None);
        };
        let domain = single_from_domain(message.froms());
        let now = std::time::Instant::now();
        let down = || {
            self.dns_down_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if down().is_some_and(|until| now < until) {
            return AuthResults::unchecked(Verdict::TempError, domain);
        }
        match tokio::time::timeout(self.timeout, self.check(envelope, &message, domain.clone()))
            .await
        {
            Ok(results) => {
                *down() = None;
                results
            }
            Err(_) => {
                tracing::warn!(
                    timeout_seconds = self.timeout.as_secs(),
                    "sender checks ran out of time; DNS counts as down for 30 s"
                );
                *down() = Some(now + self.timeout + DNS_DOWN_PAUSE);
                AuthResults::unchecked(Verdict::TempError, domain)
            }
        }
    }

    async fn check(
        &self,
        envelope: &Envelope,
        message: &AuthenticatedMessage<'_>,
        domain: Option<String>,
    ) -> AuthResults {
        let dkim = self.authenticator.verify_dkim(message).await;
        let mail_from = match &envelope.mail_from {
            Sender::Address(a) => a.to_ascii_lowercase(),
            Sender::Null | Sender::Unknown => String::new(),
        };
        let helo = envelope.helo.as_deref().unwrap_or("unknown");
        // Null sender: SPF checks the HELO name (RFC 7208 §2.4).
        let spf_identity = if mail_from.is_empty() {
            format!("postmaster@{helo}")
        } else {
            mail_from.clone()
        };
        let spf_domain = spf_identity
            .rsplit_once('@')
            .map_or(String::new(), |(_, d)| d.to_owned());
        let spf = match envelope.peer_ip {
            Some(ip) => {
                self.authenticator
                    .verify_spf(mail_auth::spf::verify::SpfParameters::verify_mail_from(
                        ip,
                        helo,
                        &self.host,
                        &spf_identity,
                    ))
                    .await
            }
            // `ingest`: no connection to check.
            None => mail_auth::SpfOutput::default(),
        };
        let Some(from_domain) = domain.clone() else {
            let mut r = AuthResults::unchecked(Verdict::None, None);
            r.spf = spf_verdict(spf.result());
            r.dkim = dkim_verdict(dkim.iter().map(|o| o.result()));
            r.summary = summary(&r, &spf_domain, &[]);
            return r;
        };
        let dmarc = self
            .authenticator
            .verify_dmarc(mail_auth::dmarc::verify::DmarcParameters::new(
                message,
                &dkim,
                &spf_domain,
                &spf,
            ))
            .await;
        let dmarc_verdict = if dmarc.dmarc_record().is_none() {
            match (dmarc.dkim_result(), dmarc.spf_result()) {
                (DmarcResult::TempError(_), _) | (_, DmarcResult::TempError(_)) => {
                    Verdict::TempError
                }
                _ => Verdict::None,
            }
        } else if *dmarc.dkim_result() == DmarcResult::Pass
            || *dmarc.spf_result() == DmarcResult::Pass
        {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        let signers: Vec<String> = dkim
            .iter()
            .filter(|o| *o.result() == DkimResult::Pass)
            .filter_map(|o| o.signature().map(|s| s.d.to_ascii_lowercase()))
            .collect();
        let spf_pass = spf.result() == SpfResult::Pass;
        let aligned = (spf_pass && within(&from_domain, &spf_domain))
            || signers.iter().any(|d| within(&from_domain, d));
        let accepts_mail = self.accepts_mail(&from_domain).await;
        let mut r = AuthResults {
            spf: spf_verdict(spf.result()),
            dkim: dkim_verdict(dkim.iter().map(|o| o.result())),
            dmarc: dmarc_verdict,
            aligned,
            authenticated: dmarc_verdict == Verdict::Pass
                || (aligned && dmarc_verdict == Verdict::None),
            domain: Some(from_domain),
            accepts_mail,
            summary: String::new(),
        };
        r.summary = summary(&r, &spf_domain, &signers);
        r
    }
}

impl Verifier {
    /// Whether `domain` takes mail: its MX, else its A/AAAA (RFC 5321
    /// §5.1). `None` when DNS did not say.
    async fn accepts_mail(&self, domain: &str) -> Option<bool> {
        use mail_auth::common::cache::NoCache;
        use mail_auth::Error;
        let no_cache = None::<&NoCache<Box<str>, std::sync::Arc<[mail_auth::MX]>>>;
        match self.authenticator.mx_lookup(domain, no_cache).await {
            Ok(mx) if !mx.is_empty() => {
                let null_mx = mx.iter().all(|m| {
                    m.exchanges
                        .iter()
                        .all(|e| e.trim_end_matches('.').is_empty())
                });
                return Some(!null_mx);
            }
            Ok(_) | Err(Error::DnsRecordNotFound(_)) => {}
            Err(_) => return None,
        }
        let no_v4 = None::<&NoCache<Box<str>, std::sync::Arc<[std::net::Ipv4Addr]>>>;
        let no_v6 = None::<&NoCache<Box<str>, std::sync::Arc<[std::net::Ipv6Addr]>>>;
        self.authenticator.exists(domain, no_v4, no_v6).await.ok()
    }
}

/// The one domain of the From line; none for no From or several domains
/// (DMARC exempts those, and so do we: they do not authenticate).
fn single_from_domain(froms: &[String]) -> Option<String> {
    let mut domains = froms
        .iter()
        .filter_map(|f| f.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()));
    let first = domains.next()?;
    domains.all(|d| d == first).then_some(first)
}

/// Whether `domain` is `parent` or a subdomain of it.
fn within(domain: &str, parent: &str) -> bool {
    !parent.is_empty()
        && (domain.eq_ignore_ascii_case(parent)
            || domain
                .len()
                .checked_sub(parent.len() + 1)
                .is_some_and(|cut| {
                    domain.as_bytes()[cut] == b'.' && domain[cut + 1..].eq_ignore_ascii_case(parent)
                }))
}

fn spf_verdict(result: SpfResult) -> Verdict {
    match result {
        SpfResult::Pass => Verdict::Pass,
        SpfResult::Fail => Verdict::Fail,
        SpfResult::SoftFail => Verdict::SoftFail,
        SpfResult::Neutral => Verdict::Neutral,
        SpfResult::TempError => Verdict::TempError,
        SpfResult::PermError => Verdict::PermError,
        SpfResult::None => Verdict::None,
    }
}

/// The best of a message's signatures: one pass is a pass.
fn dkim_verdict<'a>(results: impl Iterator<Item = &'a DkimResult>) -> Verdict {
    let rank = |v: Verdict| match v {
        Verdict::Pass => 0,
        Verdict::TempError => 1,
        Verdict::Fail => 2,
        Verdict::PermError => 3,
        Verdict::Neutral => 4,
        Verdict::SoftFail => 5,
        Verdict::None => 6,
    };
    results
        .map(|r| match r {
            DkimResult::Pass => Verdict::Pass,
            DkimResult::Neutral(_) => Verdict::Neutral,
            DkimResult::Fail(_) => Verdict::Fail,
            DkimResult::PermError(_) => Verdict::PermError,
            DkimResult::TempError(_) => Verdict::TempError,
            DkimResult::None => Verdict::None,
        })
        .min_by_key(|v| rank(*v))
        .unwrap_or(Verdict::None)
}

fn summary(r: &AuthResults, spf_domain: &str, signers: &[String]) -> String {
    let mut s = format!("spf={}", r.spf.as_str());
    if !spf_domain.is_empty() {
        s.push_str(&format!(" smtp.mailfrom={spf_domain}"));
    }
    s.push_str(&format!(" dkim={}", r.dkim.as_str()));
    if let Some(d) = signers.first() {
        s.push_str(&format!(" header.d={d}"));
    }
    s.push_str(&format!(" dmarc={}", r.dmarc.as_str()));
    if let Some(d) = &r.domain {
        s.push_str(&format!(" header.from={d}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_domain_aligns_and_a_lookalike_does_not() {
        assert!(within("example.org", "example.org"));
        assert!(within("mail.example.org", "Example.ORG"));
        assert!(!within("example.org", "mail.example.org"));
        assert!(!within("badexample.org", "example.org"));
        assert!(!within("example.org", ""));
    }

    #[test]
    fn several_from_domains_are_no_domain() {
        let one = vec!["a@Example.org".to_owned(), "b@example.org".to_owned()];
        assert_eq!(single_from_domain(&one), Some("example.org".into()));
        let two = vec!["a@example.org".to_owned(), "b@example.net".to_owned()];
        assert_eq!(single_from_domain(&two), None);
        assert_eq!(single_from_domain(&[]), None);
    }
}

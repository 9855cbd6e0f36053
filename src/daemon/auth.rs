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

use std::net::IpAddr;
use std::time::Duration;

pub use crate::model::auth::{AuthResults, Verdict};

/// The verifier: a DNS resolver, the record caches and the memory of
/// failing senders; one per daemon, shared by every check in flight.
pub struct Verifier {
    authenticator: MessageAuthenticator,
    caches: Caches,
    timeout: Duration,
    /// How long a sender whose checks ran out of time stays `temperror`.
    failing_pause: Duration,
    /// Our name in SPF checks (the host the message was received at).
    host: String,
    /// Senders (From, MAIL FROM and DKIM domains together) whose checks
    /// ran out of time lately, and until when that is remembered: their
    /// next messages are `temperror` at once. Only that sender: nothing one
    /// sender's nameservers do reaches another sender's checks.
    failing: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// Senders remembered as failing, at most (past it, the oldest are dropped).
const FAILING_SENDERS: usize = 10_000;
/// Entries per record cache (TXT, MX, A, AAAA, PTR).
const CACHE_ENTRIES: usize = 20_000;

/// Limits on what DKIM verification looks at, checked before any work:
/// past one of them the message's signatures are not verified (`neutral`),
/// so a crafted header block costs a scan, never a quadratic search.
pub const MAX_DKIM_SIGNATURES: usize = 5;
/// Header names one signature's `h=` may list.
pub const MAX_SIGNED_HEADERS: usize = 64;
/// Header fields of a message whose signatures are verified.
pub const MAX_HEADER_FIELDS: usize = 1_000;
/// Bytes of header block whose signatures are verified.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

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
                let addr = crate::config::parse_nameserver(server)
                    .map_err(|e| format!("auth.nameservers: {e}"))?;
                resolver.add_name_server(NameServerConfig::new(addr, ProtocolConfig::Udp));
                resolver.add_name_server(NameServerConfig::new(addr, ProtocolConfig::Tcp));
            }
            resolver
        };
        let authenticator = MessageAuthenticator::new(resolver, options)
            .map_err(|e| format!("auth: resolver: {e}"))?;
        Ok(Verifier {
            authenticator,
            caches: Caches::default(),
            timeout,
            failing_pause: Duration::from_secs(config.retry_seconds.max(1)),
            host: host.to_owned(),
            failing: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Checks one message; never fails (what cannot be checked is
    /// `temperror` or `permerror` and does not authenticate).
    pub async fn verify(&self, envelope: &Envelope, raw: &[u8]) -> AuthResults {
        // One identity per message: what the checks authenticate must be
        // what the report says is the reporter.
        if let Some(why) = identity_problem(raw) {
            let mut r = AuthResults::unchecked(Verdict::PermError, None);
            r.summary = format!("{} (not checked: {why})", r.summary);
            return r;
        }
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return AuthResults::unchecked(Verdict::PermError, None);
        };
        let domain = single_from_domain(message.froms());
        let sender = sender_key(domain.as_deref(), envelope, &message);
        let now = std::time::Instant::now();
        let failing = || {
            self.failing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if failing().get(&sender).is_some_and(|until| now < *until) {
            crate::metrics::get()
                .checks
                .get_or_create(&vec![("outcome", "sender_failing".to_owned())])
                .inc();
            return AuthResults::unchecked(Verdict::TempError, domain);
        }
        let dkim_limit = dkim_over_budget(raw);
        let checked = tokio::time::timeout(
            self.timeout,
            self.check(envelope, &message, domain.clone(), dkim_limit),
        )
        .await;
        match checked {
            Ok(results) => results,
            Err(_) => {
                tracing::warn!(
                    timeout_seconds = self.timeout.as_secs(),
                    sender = %crate::safe_text::visible(&sender),
                    failing_seconds = self.failing_pause.as_secs(),
                    "sender checks ran out of time; this sender counts as failing for a while"
                );
                let mut failing = failing();
                if failing.len() >= FAILING_SENDERS {
                    failing.retain(|_, until| *until > now);
                    if failing.len() >= FAILING_SENDERS {
                        failing.clear();
                    }
                }
                failing.insert(sender, now + self.timeout + self.failing_pause);
                AuthResults::unchecked(Verdict::TempError, domain)
            }
        }
    }

    async fn check(
        &self,
        envelope: &Envelope,
        message: &AuthenticatedMessage<'_>,
        domain: Option<String>,
        dkim_limit: Option<&'static str>,
    ) -> AuthResults {
        let dkim = match dkim_limit {
            None => {
                self.authenticator
                    .verify_dkim(self.caches.with(message))
                    .await
            }
            Some(_) => Vec::new(),
        };
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
                    .verify_spf(self.caches.with(
                        mail_auth::spf::verify::SpfParameters::verify_mail_from(
                            ip,
                            helo,
                            &self.host,
                            &spf_identity,
                        ),
                    ))
                    .await
            }
            // `ingest`: no connection to check.
            None => mail_auth::SpfOutput::default(),
        };
        let dkim_verdict = match dkim_limit {
            Some(_) => Verdict::Neutral,
            None => dkim_verdict(dkim.iter().map(|o| o.result())),
        };
        let Some(from_domain) = domain.clone() else {
            let mut r = AuthResults::unchecked(Verdict::None, None);
            r.spf = spf_verdict(spf.result());
            r.dkim = dkim_verdict;
            r.summary = summary(&r, &spf_domain, &[], dkim_limit);
            return r;
        };
        let dmarc = self
            .authenticator
            .verify_dmarc(
                self.caches
                    .with(mail_auth::dmarc::verify::DmarcParameters::new(
                        message,
                        &dkim,
                        &spf_domain,
                        &spf,
                    )),
            )
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
            dkim: dkim_verdict,
            dmarc: dmarc_verdict,
            aligned,
            authenticated: dmarc_verdict == Verdict::Pass
                || (aligned && dmarc_verdict == Verdict::None),
            domain: Some(from_domain),
            accepts_mail,
            summary: String::new(),
        };
        r.summary = summary(&r, &spf_domain, &signers, dkim_limit);
        r
    }
}

impl Verifier {
    /// Whether `domain` takes mail: its MX, else its A/AAAA (RFC 5321
    /// §5.1). `None` when DNS did not say.
    async fn accepts_mail(&self, domain: &str) -> Option<bool> {
        use mail_auth::Error;
        match self
            .authenticator
            .mx_lookup(domain, Some(&self.caches.mx))
            .await
        {
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
        self.authenticator
            .exists(domain, Some(&self.caches.ipv4), Some(&self.caches.ipv6))
            .await
            .ok()
    }
}

/// Why a message has no one identity, if it has not: more than one From
/// field (RFC 5322 §3.6 allows one; DMARC treats several as a failure), or a
/// line without a colon in the header block, which header parsers read
/// differently (one stops there, another skips it and reads on), so the
/// domain the checks authenticate and the reporter the report names could
/// differ. One linear scan of the header block.
pub fn identity_problem(raw: &[u8]) -> Option<&'static str> {
    let mut froms = 0;
    for (i, line) in raw.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(first) = line.first() else {
            return None; // the end of the header block
        };
        if *first == b' ' || *first == b'\t' {
            continue; // folded
        }
        if i == 0 && line.starts_with(b"From ") {
            continue; // an mbox separator
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Some("a header line without a colon");
        };
        if line[..colon].trim_ascii().eq_ignore_ascii_case(b"from") {
            froms += 1;
            if froms > 1 {
                return Some("several From fields");
            }
        }
    }
    None
}

/// Who a message says sent it, for the memory of failing senders: the From
/// domain, the MAIL FROM domain and the DKIM signers' domains.
fn sender_key(
    from: Option<&str>,
    envelope: &Envelope,
    message: &AuthenticatedMessage<'_>,
) -> String {
    let mail_from = match &envelope.mail_from {
        Sender::Address(a) => a
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .to_ascii_lowercase(),
        Sender::Null | Sender::Unknown => String::new(),
    };
    let mut signers: Vec<String> = message
        .dkim_headers
        .iter()
        .filter_map(|h| h.header.as_ref().ok().map(|s| s.d.to_ascii_lowercase()))
        .take(MAX_DKIM_SIGNATURES)
        .collect();
    signers.sort();
    signers.dedup();
    format!("{}|{mail_from}|{}", from.unwrap_or(""), signers.join(","))
}

/// Why a message's DKIM signatures are not verified, if they are not: the
/// header block, its fields, its signatures or a signature's `h=` list is
/// past its limit. One linear scan of the header block.
pub fn dkim_over_budget(raw: &[u8]) -> Option<&'static str> {
    let end = memchr::memmem::find(raw, b"\r\n\r\n")
        .or_else(|| memchr::memmem::find(raw, b"\n\n"))
        .unwrap_or(raw.len());
    if end > MAX_HEADER_BYTES {
        return Some("header block too large");
    }
    let header = &raw[..end];
    let mut fields = 0;
    let mut signatures = 0;
    let mut signature: Option<Vec<u8>> = None;
    let mut over = None;
    let mut finish = |sig: Option<Vec<u8>>| {
        if let Some(sig) = sig {
            if signed_header_count(&sig) > MAX_SIGNED_HEADERS {
                over = Some("a signature lists too many headers");
            }
        }
    };
    for line in header.split(|&b| b == b'\n') {
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if folded {
            if let Some(sig) = signature.as_mut() {
                sig.extend_from_slice(line);
            }
            continue;
        }
        finish(signature.take());
        fields += 1;
        if line.len() >= 15 && line[..15].eq_ignore_ascii_case(b"dkim-signature:") {
            signatures += 1;
            signature = Some(line[15..].to_vec());
        }
    }
    finish(signature.take());
    if fields > MAX_HEADER_FIELDS {
        return Some("too many header fields");
    }
    if signatures > MAX_DKIM_SIGNATURES {
        return Some("too many signatures");
    }
    over
}

/// Names in the `h=` tag of a DKIM-Signature value.
fn signed_header_count(value: &[u8]) -> usize {
    value
        .split(|&b| b == b';')
        .find_map(|tag| {
            let tag = tag.trim_ascii_start();
            let rest = tag
                .strip_prefix(b"h")?
                .trim_ascii_start()
                .strip_prefix(b"=")?;
            Some(rest.split(|&b| b == b':').count())
        })
        .unwrap_or(0)
}

/// The record caches the checks share: what DNS answered, until its TTL.
#[derive(Default)]
struct Caches {
    txt: Cache<Box<str>, mail_auth::Txt>,
    mx: Cache<Box<str>, std::sync::Arc<[mail_auth::MX]>>,
    ipv4: Cache<Box<str>, std::sync::Arc<[std::net::Ipv4Addr]>>,
    ipv6: Cache<Box<str>, std::sync::Arc<[std::net::Ipv6Addr]>>,
    ptr: Cache<IpAddr, std::sync::Arc<[Box<str>]>>,
}

type Cached<'x, P> = mail_auth::Parameters<
    'x,
    P,
    Cache<Box<str>, mail_auth::Txt>,
    Cache<Box<str>, std::sync::Arc<[mail_auth::MX]>>,
    Cache<Box<str>, std::sync::Arc<[std::net::Ipv4Addr]>>,
    Cache<Box<str>, std::sync::Arc<[std::net::Ipv6Addr]>>,
    Cache<IpAddr, std::sync::Arc<[Box<str>]>>,
>;

impl Caches {
    /// `params` with every cache attached.
    fn with<P>(&self, params: P) -> Cached<'_, P> {
        mail_auth::Parameters::new(params)
            .with_txt_cache(&self.txt)
            .with_mx_cache(&self.mx)
            .with_ipv4_cache(&self.ipv4)
            .with_ipv6_cache(&self.ipv6)
            .with_ptr_cache(&self.ptr)
    }
}

/// A bounded map of DNS answers that expire with their TTL.
struct Cache<K, V> {
    entries: std::sync::Mutex<std::collections::HashMap<K, (V, std::time::Instant)>>,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Cache {
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> mail_auth::ResolverCache<K, V> for Cache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let metrics = crate::metrics::get();
        match entries.get(name) {
            Some((value, until)) if *until > std::time::Instant::now() => {
                metrics.dns_cache_hits.inc();
                Some(value.clone())
            }
            Some(_) => {
                entries.remove(name);
                metrics.dns_cache_misses.inc();
                None
            }
            None => {
                metrics.dns_cache_misses.inc();
                None
            }
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(name).map(|(value, _)| value)
    }

    fn insert(&self, key: K, value: V, valid_until: std::time::Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_ENTRIES {
            let now = std::time::Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (value, valid_until));
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

fn summary(
    r: &AuthResults,
    spf_domain: &str,
    signers: &[String],
    dkim_limit: Option<&str>,
) -> String {
    let mut s = format!("spf={}", r.spf.as_str());
    if !spf_domain.is_empty() {
        s.push_str(&format!(" smtp.mailfrom={spf_domain}"));
    }
    s.push_str(&format!(" dkim={}", r.dkim.as_str()));
    if let Some(limit) = dkim_limit {
        s.push_str(&format!(" (not verified: {limit})"));
    }
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
    fn a_message_has_one_identity_or_none() {
        let one = b"From: a@example.org\r\nSubject: x\r\n folded\r\n\r\nFrom: in the body\r\nno colon\r\n";
        assert_eq!(identity_problem(one), None);
        let mbox = b"From a@example.org Thu Dec  3 08:00:00 2026\nFrom: a@example.org\n\nbody\n";
        assert_eq!(identity_problem(mbox), None);
        let two = b"From: mallory@good.example.org\r\nFROM : alice@reporter.example.org\r\n\r\n";
        assert_eq!(identity_problem(two), Some("several From fields"));
        let spacer = b"From: mallory@good.example.org\r\nX-Spacer\r\nFrom: alice@reporter.example.org\r\n\r\n";
        assert_eq!(
            identity_problem(spacer),
            Some("a header line without a colon")
        );
    }

    #[test]
    fn dkim_is_verified_only_within_its_limits() {
        let signature = |names: usize| {
            let h: Vec<String> = (0..names).map(|i| format!("x-{i}")).collect();
            format!(
                "DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=s;\r\n\th={}; bh=x; b=y\r\n",
                h.join(":")
            )
        };
        let message = |head: String| format!("{head}From: a@example.org\r\n\r\nbody\r\n");
        assert_eq!(dkim_over_budget(message(signature(3)).as_bytes()), None);
        let many = (0..=MAX_DKIM_SIGNATURES).map(|_| signature(3)).collect();
        assert_eq!(
            dkim_over_budget(message(many).as_bytes()),
            Some("too many signatures")
        );
        assert_eq!(
            dkim_over_budget(message(signature(MAX_SIGNED_HEADERS + 1)).as_bytes()),
            Some("a signature lists too many headers")
        );
        let fields: String = (0..=MAX_HEADER_FIELDS)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        assert_eq!(
            dkim_over_budget(message(fields).as_bytes()),
            Some("too many header fields")
        );
        let big = format!("X-Big: {}\r\n", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(
            dkim_over_budget(message(big).as_bytes()),
            Some("header block too large")
        );
        // Lines past the header block are the body's: not counted.
        let body_lines: String = (0..5_000).map(|i| format!("line {i}\r\n")).collect();
        let in_body = format!("From: a@example.org\r\n\r\n{body_lines}");
        assert_eq!(dkim_over_budget(in_body.as_bytes()), None);
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

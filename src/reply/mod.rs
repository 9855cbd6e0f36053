//! The reply decision: acknowledge, ask for what is missing, or stay silent.
//!
//! In: the envelope, the message's headers, the reporter, the formats found
//! and the `missing` list. Out: a [`ReplyDecision`] and, when suppressed, the
//! reason. Pure. Never a reply that could loop or backscatter (RFC 3834):
//! null senders, bounces, list mail, auto-submitted mail, our own replies and
//! automated feeds (unless allow-listed) are not answered — except that a
//! notice of illegal content or copyright is confirmed unless the message
//! itself asks for silence (DSA Art. 16(4)).

mod compose;
pub mod dkim;
pub mod follow_up;
pub mod language;
pub mod limits;
pub mod phrases;
pub mod queue;
pub mod report_plan;
pub mod resolve;
pub mod routed;
pub mod sender;
pub mod settle;
pub mod token;
pub mod wrap;

pub use crate::model::reply::Suppression;
pub use compose::{body, compose, Draft, Prepared, Templates, FOLLOW_UP_NOTE};
pub use language::Language;
pub use settle::{settle, Settled};

use crate::config::ReplyConfig;
use crate::evidence::Format;
use crate::model::{ReplyDecision, Sender};
use crate::parse::Headers;
use std::collections::BTreeSet;

/// Header our own replies carry, so a reply that comes back is recognised.
pub const OUR_REPLY_HEADER: &str = "x-abuse-inbox-reply";

/// What the decision needs to know about one report.
pub struct Facts<'a> {
    pub sender: &'a Sender,
    pub headers: &'a Headers,
    pub reporter: Option<&'a str>,
    pub formats: &'a BTreeSet<Format>,
    pub missing: &'a [crate::model::Missing],
    /// The sender checks; `None` when they were not made.
    pub auth: Option<&'a crate::model::auth::AuthResults>,
    /// The known feed that sent it, if any.
    pub feed: Option<&'a crate::classify::Feed>,
    /// How it came in.
    pub origin: crate::model::Origin,
    /// What the report is about: a notice of illegal content or of
    /// copyright is confirmed even from an automated sender.
    pub abuse_type: crate::model::AbuseType,
}

/// Whether a report of `abuse_type` is a notice whose receipt the desk
/// confirms even when a machine sent it (EU Digital Services Act Art. 16(4)
/// asks hosting providers to): illegal content at a URL, and copyright.
/// Only the message itself (`Auto-Submitted`, `X-Auto-Response-Suppress`,
/// `Precedence`, list headers) can ask for silence; the sender being a
/// known feed, or writing ARF/X-ARF, is no reason.
pub fn is_confirmed_notice(abuse_type: crate::model::AbuseType) -> bool {
    matches!(
        abuse_type,
        crate::model::AbuseType::WebContent | crate::model::AbuseType::Copyright
    )
}

/// Decides the reply; the reason is `Some` when the reply is suppressed or off.
pub fn decide(facts: &Facts<'_>, config: &ReplyConfig) -> (ReplyDecision, Option<Suppression>) {
    if !config.enabled {
        return (ReplyDecision::None, Some(Suppression::RepliesOff));
    }
    let reason = suppression_before_checks(facts, config).or_else(|| {
        facts
            .reporter
            .and_then(|r| checks_suppression(r, facts.auth, config))
    });
    if let Some(reason) = reason {
        return (ReplyDecision::Suppressed, Some(reason));
    }
    if facts.missing.is_empty() {
        (ReplyDecision::Ack, None)
    } else {
        (ReplyDecision::NeedsInfo, None)
    }
}

/// Decides the reply while the sender checks are still running: every rule
/// that does not need them applies now; a reply they would let through is
/// `Pending` (its kind in the second value), for [`settle`] to decide.
pub fn decide_before_checks(
    facts: &Facts<'_>,
    config: &ReplyConfig,
) -> (
    ReplyDecision,
    Option<String>,
    Option<crate::model::ReplyKind>,
) {
    if !config.enabled {
        let (decision, reason) = decide(facts, config);
        return (decision, reason.map(|r| r.to_string()), None);
    }
    if let Some(reason) = suppression_before_checks(facts, config) {
        return (ReplyDecision::Suppressed, Some(reason.to_string()), None);
    }
    let kind = if facts.missing.is_empty() {
        crate::model::ReplyKind::Ack
    } else {
        crate::model::ReplyKind::NeedsInfo
    };
    (
        ReplyDecision::Pending,
        Some(settle::WAITING.to_owned()),
        Some(kind),
    )
}

/// Every rule but those that need the sender checks.
fn suppression_before_checks(facts: &Facts<'_>, config: &ReplyConfig) -> Option<Suppression> {
    if facts.origin.is_history() {
        return Some(Suppression::History(facts.origin.as_str()));
    }
    if *facts.sender == Sender::Null {
        return Some(Suppression::NullSender);
    }
    let Some(reporter) = facts.reporter.map(str::to_ascii_lowercase) else {
        return Some(Suppression::NoReporter);
    };
    let local = reporter.split('@').next().unwrap_or("");
    if local == "mailer-daemon"
        || local == "postmaster"
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || local == "noreply"
        || local == "no-reply"
    {
        return Some(Suppression::AutomatedSender(local.to_owned()));
    }
    if facts.headers.get(OUR_REPLY_HEADER).is_some() {
        return Some(Suppression::OurOwnReply);
    }
    if let Some(why) = auto_reply(facts.headers) {
        return Some(why);
    }
    if config.from.eq_ignore_ascii_case(&reporter) {
        return Some(Suppression::ReporterIsUs);
    }
    if let Some(auto) = facts.headers.get("auto-submitted") {
        let value = auto
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if value != "no" && !allowed(config, &reporter) {
            return Some(Suppression::AutoSubmitted(value));
        }
    }
    if let Some(p) = facts.headers.get("precedence") {
        let p = p.trim().to_ascii_lowercase();
        if matches!(p.as_str(), "bulk" | "junk" | "list") {
            return Some(Suppression::Precedence(p));
        }
    }
    for list in ["list-id", "list-unsubscribe"] {
        if facts.headers.get(list).is_some() {
            return Some(Suppression::MailingList(list));
        }
    }
    let machine_may_be_answered =
        is_confirmed_notice(facts.abuse_type) || allowed(config, &reporter);
    if (facts.formats.contains(&Format::Arf) || facts.formats.contains(&Format::Xarf))
        && !machine_may_be_answered
    {
        return Some(Suppression::AutomatedFormat);
    }
    if facts.formats.contains(&Format::DmarcAggregate) && !allowed(config, &reporter) {
        return Some(Suppression::DmarcReport);
    }
    if let Some(feed) = facts.feed.filter(|f| f.automated) {
        if !machine_may_be_answered {
            return Some(Suppression::AutomatedFeed(feed.id.clone()));
        }
    }
    let domain = limits::domain(&reporter);
    if let Some(why) = not_public(&domain) {
        return Some(Suppression::DomainNotPublic { domain, why });
    }
    None
}

/// The rules that need the sender checks: the reporter's domain takes mail,
/// and the reporter is authenticated (or exempt). `auth` is `None` when the
/// checks were not made.
pub fn checks_suppression(
    reporter: &str,
    auth: Option<&crate::model::auth::AuthResults>,
    config: &ReplyConfig,
) -> Option<Suppression> {
    let domain = limits::domain(&reporter.to_ascii_lowercase());
    if let Some(auth) = auth {
        if auth.accepts_mail == Some(false) && auth.domain.as_deref() == Some(domain.as_str()) {
            return Some(Suppression::DomainTakesNoMail(domain));
        }
    }
    if config.require_auth && !in_domains(&config.unauthenticated_allow, &domain) {
        let authenticated =
            auth.is_some_and(|a| a.authenticated && a.domain.as_deref() == Some(domain.as_str()));
        if !authenticated {
            let detail = auth.map_or("not checked".to_owned(), |a| a.summary.clone());
            return Some(Suppression::Unauthenticated(detail));
        }
    }
    None
}

/// Where a reply to `reporter` goes: the `Reply-To` address when the
/// reporter set one in their own organisation's domain (its registrable
/// domain under the Public Suffix List; ticket systems do:
/// `From: analyst@cert.example`, `Reply-To: tickets@cert.example`), else
/// the reporter. A `Reply-To` elsewhere is ignored: the reply would go to
/// an address nobody authenticated.
pub fn reply_address(reporter: Option<&str>, reply_to: Option<&str>) -> Option<String> {
    let reporter = reporter?;
    let candidate = reply_to.and_then(|v| {
        let first = v.split(',').next()?.trim();
        let address = match (first.rfind('<'), first.rfind('>')) {
            (Some(open), Some(close)) if open < close => &first[open + 1..close],
            _ => first,
        };
        let address = address.trim();
        (address.contains('@') && !address.contains(char::is_whitespace)).then_some(address)
    });
    match candidate {
        Some(address) if limits::same_organisation(address, reporter) => Some(address.to_owned()),
        _ => Some(reporter.to_owned()),
    }
}

/// Subject openings of vacation and auto-replies, in the languages mail
/// clients write them in.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "auto:",
    "out of office",
    "out of the office",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "resposta automática",
    "resposta automatica",
    "ausente do escritório",
    "autosvar",
];

/// Why a message is an auto-reply (or asks for none), if it is, when it
/// says so other than by `Auto-Submitted`: Microsoft's
/// `X-Auto-Response-Suppress`, `X-Autoreply`/`X-Autorespond`, a vacation
/// subject, or a subject quoting one of our report tags back.
fn auto_reply(headers: &Headers) -> Option<Suppression> {
    if headers.get("content-type").is_some_and(|t| {
        let t = t.to_ascii_lowercase().replace(['"', ' '], "");
        t.starts_with("multipart/report") && t.contains("report-type=delivery-status")
    }) {
        return Some(Suppression::DeliveryStatus);
    }
    if let Some(v) = headers.get("x-auto-response-suppress") {
        let v = v.to_ascii_lowercase();
        if v.contains("all") || v.contains("autoreply") || v.contains("oof") {
            return Some(Suppression::AutoResponseSuppress(v.trim().to_owned()));
        }
    }
    for name in [
        "x-autoreply",
        "x-autorespond",
        "x-autogenerated",
        "x-autorespond-to",
    ] {
        if headers.get(name).is_some() {
            return Some(Suppression::AutoReplyHeader(name));
        }
    }
    let subject = headers.get("subject")?.trim().to_lowercase();
    let bare = subject
        .trim_start_matches(|c: char| c == '[' || c.is_whitespace())
        .trim_start_matches("re:")
        .trim_start_matches("aw:")
        .trim_start();
    if let Some(opening) = AUTO_REPLY_SUBJECTS.iter().find(|o| bare.starts_with(*o)) {
        return Some(Suppression::AutoReplySubject(opening));
    }
    if subject.contains("[abuse #") {
        return Some(Suppression::QuotesOurTag);
    }
    None
}

/// Top-level names that are not on the public internet (RFC 6761, 6762,
/// 7686, 8375, 9476) or that sites use for internal networks. `.example`
/// and `.test` are left to the DNS: documentation and test set-ups use them.
const PRIVATE_TLDS: [&str; 14] = [
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "private",
    "invalid",
    "arpa",
    "onion",
    "alt",
    "domain",
];

/// Why mail to `domain` must never be sent by us, if so: an IP literal, a
/// name without a dot, or a non-public top-level name.
fn not_public(domain: &str) -> Option<&'static str> {
    if domain.is_empty() {
        return Some("is missing");
    }
    if domain.starts_with('[') || domain.parse::<std::net::IpAddr>().is_ok() {
        return Some("is an IP literal");
    }
    let Some((_, tld)) = domain.rsplit_once('.') else {
        return Some("is a single label (a local name)");
    };
    if PRIVATE_TLDS.contains(&tld) || domain.ends_with(".home.arpa") {
        return Some("is not a public domain");
    }
    None
}

/// Whether `domain` is one of `list` or under one of them.
fn in_domains(list: &[String], domain: &str) -> bool {
    list.iter().any(|d| {
        let d = d.trim().to_ascii_lowercase();
        !d.is_empty() && (domain == d || domain.ends_with(&format!(".{d}")))
    })
}

fn allowed(config: &ReplyConfig, reporter: &str) -> bool {
    let domain = reporter.rsplit('@').next().unwrap_or("");
    config.automated_allow.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        if a.contains('@') {
            a == reporter
        } else {
            domain == a || domain.ends_with(&format!(".{a}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_with(
        headers: &str,
        sender: Sender,
        reporter: Option<&str>,
        formats: &[Format],
    ) -> (ReplyDecision, Option<String>) {
        let headers = Headers::parse_block(headers);
        let formats = formats.iter().copied().collect();
        let missing = vec![];
        let facts = Facts {
            sender: &sender,
            headers: &headers,
            reporter,
            formats: &formats,
            missing: &missing,
            auth: None,
            feed: None,
            origin: crate::model::Origin::Smtp,
            abuse_type: crate::model::AbuseType::EmailAbuse,
        };
        let config = ReplyConfig {
            require_auth: false,
            ..ReplyConfig::default()
        };
        let (decision, reason) = decide(&facts, &config);
        (decision, reason.map(|r| r.to_string()))
    }

    #[test]
    fn more_automated_senders_lists_and_our_own_address_are_suppressed() {
        let addr = || Sender::Address("x@example.net".into());
        for reporter in [
            "postmaster@example.net",
            "list-request@example.net",
            "noreply@example.net",
        ] {
            assert_eq!(
                decide_with("", addr(), Some(reporter), &[]).0,
                ReplyDecision::Suppressed,
                "{reporter}"
            );
        }
        let human = Some("a@example.net");
        assert_eq!(
            decide_with(
                "List-Unsubscribe: <mailto:u@example.net>\n",
                addr(),
                human,
                &[]
            )
            .0,
            ReplyDecision::Suppressed
        );
        assert_eq!(
            decide_with("Precedence: junk\n", addr(), human, &[]).0,
            ReplyDecision::Suppressed
        );
        let ours = ReplyConfig::default().from;
        assert_eq!(
            decide_with("", addr(), Some(&ours), &[]).0,
            ReplyDecision::Suppressed
        );
    }

    #[test]
    fn an_allow_listed_feed_is_answered_and_replies_can_be_switched_off() {
        let headers = Headers::parse_block("Auto-Submitted: auto-generated\n");
        let formats: BTreeSet<Format> = [Format::Arf].into_iter().collect();
        let sender = Sender::Address("fbl@feeds.example.org".into());
        let facts = Facts {
            sender: &sender,
            headers: &headers,
            reporter: Some("fbl@feeds.example.org"),
            formats: &formats,
            missing: &[],
            auth: None,
            feed: None,
            origin: crate::model::Origin::Smtp,
            abuse_type: crate::model::AbuseType::EmailAbuse,
        };
        let mut config = ReplyConfig {
            automated_allow: vec!["example.org".into()],
            require_auth: false,
            ..ReplyConfig::default()
        };
        assert_eq!(decide(&facts, &config).0, ReplyDecision::Ack);
        config.enabled = false;
        assert_eq!(decide(&facts, &config).0, ReplyDecision::None);
    }

    #[test]
    fn notices_of_illegal_content_and_copyright_are_confirmed_even_from_machines() {
        use crate::model::AbuseType;
        let sender = Sender::Address("notices@rights.example.org".into());
        let feeds = crate::classify::Feeds::builtin();
        let feed = feeds
            .recognise(&["notices@markmonitor.com"], None, &Headers::default())
            .expect("a built-in automated feed");
        assert!(feed.automated);
        let formats: BTreeSet<Format> = [Format::Xarf].into_iter().collect();
        let config = ReplyConfig {
            require_auth: false,
            ..ReplyConfig::default()
        };
        let decide_for = |abuse_type, headers: &str| {
            let headers = Headers::parse_block(headers);
            let facts = Facts {
                sender: &sender,
                headers: &headers,
                reporter: Some("notices@rights.example.org"),
                formats: &formats,
                missing: &[],
                auth: None,
                feed: Some(feed),
                origin: crate::model::Origin::Smtp,
                abuse_type,
            };
            decide(&facts, &config).0
        };
        for notice in [AbuseType::Copyright, AbuseType::WebContent] {
            assert_eq!(decide_for(notice, ""), ReplyDecision::Ack, "{notice:?}");
            // The message itself can still ask for silence.
            for silence in [
                "Auto-Submitted: auto-generated\n",
                "X-Auto-Response-Suppress: All\n",
                "Precedence: bulk\n",
            ] {
                assert_eq!(
                    decide_for(notice, silence),
                    ReplyDecision::Suppressed,
                    "{notice:?} {silence}"
                );
            }
        }
        // Machine feeds of network events and spam stay unanswered.
        for feed_type in [AbuseType::NetworkActivity, AbuseType::EmailAbuse] {
            assert_eq!(decide_for(feed_type, ""), ReplyDecision::Suppressed);
        }
    }

    #[test]
    fn replies_go_to_a_reply_to_of_the_reporters_own_domain_only() {
        let to = |r: Option<&str>| reply_address(Some("analyst@cert.example.org"), r);
        assert_eq!(
            to(Some("Tickets <tickets@helpdesk.cert.example.org>")).as_deref(),
            Some("tickets@helpdesk.cert.example.org")
        );
        assert_eq!(
            to(Some("victim@elsewhere.example")).as_deref(),
            Some("analyst@cert.example.org")
        );
        assert_eq!(to(None).as_deref(), Some("analyst@cert.example.org"));
        assert_eq!(reply_address(None, Some("x@example.org")), None);
    }

    #[test]
    fn auto_replies_without_auto_submitted_are_suppressed() {
        let addr = || Sender::Address("a@example.net".into());
        let human = Some("a@example.net");
        for headers in [
            "Subject: Automatic reply: SSH attack\n",
            "Subject: Abwesenheitsnotiz: Ihre Meldung\n",
            "Subject: Réponse automatique : attaque\n",
            "Subject: Out of Office: your report\n",
            "X-Auto-Response-Suppress: All\nSubject: hi\n",
            "X-Autoreply: yes\nSubject: hi\n",
            "Subject: Re: [abuse #12-abcdefgh] Report received\n",
        ] {
            assert_eq!(
                decide_with(headers, addr(), human, &[]).0,
                ReplyDecision::Suppressed,
                "{headers}"
            );
        }
        assert_eq!(
            decide_with("Subject: attack report\n", addr(), human, &[]).0,
            ReplyDecision::Ack
        );
    }

    #[test]
    fn loops_and_backscatter_are_suppressed() {
        let addr = || Sender::Address("a@example.net".into());
        let human = Some("a@example.net");
        assert_eq!(decide_with("", addr(), human, &[]).0, ReplyDecision::Ack);
        assert_eq!(
            decide_with("", Sender::Null, human, &[]).0,
            ReplyDecision::Suppressed
        );
        assert_eq!(
            decide_with("", addr(), Some("MAILER-DAEMON@example.net"), &[]).0,
            ReplyDecision::Suppressed
        );
        assert_eq!(
            decide_with("", addr(), Some("owner-list@example.net"), &[]).0,
            ReplyDecision::Suppressed
        );
        assert_eq!(
            decide_with("Auto-Submitted: auto-replied\n", addr(), human, &[]).0,
            ReplyDecision::Suppressed
        );
        assert_eq!(
            decide_with("Auto-Submitted: no\n", addr(), human, &[]).0,
            ReplyDecision::Ack
        );
        assert_eq!(
            decide_with("Precedence: bulk\n", addr(), human, &[]).0,
            ReplyDecision::Suppressed
        );
        assert_eq!(
            decide_with("List-Id: <l.example.net>\n", addr(), human, &[]).0,
            ReplyDecision::Suppressed
        );
        assert_eq!(
            decide_with("X-Abuse-Inbox-Reply: 7\n", addr(), human, &[]).0,
            ReplyDecision::Suppressed
        );
        assert_eq!(
            decide_with("", addr(), human, &[Format::Arf]).0,
            ReplyDecision::Suppressed
        );
        assert_eq!(
            decide_with("", addr(), None, &[]).0,
            ReplyDecision::Suppressed
        );
    }
}

//! The reply policy's values that reports and plans carry: the language we
//! answer in, the report a follow-up claims, and the rate limits. The rules
//! that decide are `reply`.

use serde::{Deserialize, Serialize};

/// A language we reply in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    De,
    Es,
    Fr,
    Pt,
}

/// The report a follow-up claims, with the token it gave (if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub id: i64,
    pub token: Option<String>,
}

/// Replies per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub per_recipient: u32,
    pub per_domain: u32,
    pub global: u32,
}

/// Why a report gets no reply: each rule of [`crate::reply`] that can
/// suppress one names itself here. The report keeps the text
/// ([`Suppression`]'s `Display`) as its `reply_reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suppression {
    /// `reply.enabled` is off (the decision is `none`, not `suppressed`).
    RepliesOff,
    NullSender,
    NoReporter,
    /// `mailer-daemon`, `postmaster`, `noreply`, `owner-…`, `…-request`.
    AutomatedSender(String),
    OurOwnReply,
    /// `X-Auto-Response-Suppress` asks for no automatic answer (its value).
    AutoResponseSuppress(String),
    /// An auto-reply header (its name).
    AutoReplyHeader(&'static str),
    /// An auto-reply subject (its opening).
    AutoReplySubject(&'static str),
    QuotesOurTag,
    ReporterIsUs,
    /// `Auto-Submitted` other than `no` (its value).
    AutoSubmitted(String),
    /// `Precedence: bulk|junk|list`.
    Precedence(String),
    /// A `List-Id` or `List-Unsubscribe` header (its name).
    MailingList(&'static str),
    /// ARF or X-ARF from a sender not in `reply.automated_allow`.
    AutomatedFormat,
    /// A known automated feed not in `reply.automated_allow` (its id).
    AutomatedFeed(String),
    /// A DMARC aggregate report: a receiver's machine, not a person.
    DmarcReport,
    /// A delivery-status notification (a bounce, RFC 3464).
    DeliveryStatus,
    /// The reporter's domain is not public (what it is instead).
    DomainNotPublic {
        domain: String,
        why: &'static str,
    },
    /// The reporter's domain has no MX or address record.
    DomainTakesNoMail(String),
    /// The sender checks did not authenticate the reporter (their summary).
    Unauthenticated(String),
    /// One more reply would pass a rate limit.
    RateLimit {
        scope: LimitScope,
        count: u64,
    },
    /// The checks kept failing until the desk stopped waiting.
    GaveUpWaiting(Box<Suppression>),
    /// Imported from a mailbox's history (`maildir`, `mbox`).
    History(&'static str),
}

/// Which of the rate limits a reply would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    Global,
    Domain,
    Recipient,
}

impl std::fmt::Display for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Suppression::*;
        match self {
            RepliesOff => f.write_str("replies are switched off (reply.enabled)"),
            NullSender => f.write_str("null envelope sender"),
            History(origin) => write!(f, "imported from a mailbox ({origin}): history is not answered"),
            NoReporter => f.write_str("no reporter address"),
            AutomatedSender(local) => write!(f, "automated sender {local}"),
            OurOwnReply => f.write_str("the message is one of our own replies"),
            AutoResponseSuppress(v) => write!(f, "x-auto-response-suppress: {v}"),
            AutoReplyHeader(name) => write!(f, "auto-reply ({name})"),
            AutoReplySubject(opening) => write!(f, "auto-reply (subject \"{opening}…\")"),
            QuotesOurTag => f.write_str("the subject quotes one of our report tags"),
            ReporterIsUs => f.write_str("the reporter is our own address"),
            AutoSubmitted(v) => write!(f, "auto-submitted: {v}"),
            Precedence(p) => write!(f, "precedence: {p}"),
            MailingList(header) => write!(f, "mailing-list mail ({header})"),
            AutomatedFormat => {
                f.write_str("automated feed (ARF/X-ARF) not in reply.automated_allow")
            }
            AutomatedFeed(id) => write!(f, "automated feed {id:?} not in reply.automated_allow"),
            DeliveryStatus => f.write_str("a delivery-status notification (a bounce)"),
            DmarcReport => f.write_str(
                "a DMARC aggregate report (a receiver's machine) not in reply.automated_allow",
            ),
            DomainNotPublic { domain, why } => write!(f, "the reporter's domain {domain:?} {why}"),
            DomainTakesNoMail(domain) => write!(
                f,
                "the reporter's domain {domain:?} has no MX or address record"
            ),
            Unauthenticated(detail) => write!(f, "unauthenticated sender ({detail})"),
            RateLimit {
                scope: LimitScope::Global,
                count,
            } => write!(
                f,
                "rate limit: {count} replies in all in the last hour (reply.rate_limit_global_per_hour)"
            ),
            RateLimit {
                scope: LimitScope::Domain,
                count,
            } => write!(f, "rate limit: {count} replies to this domain in the last hour"),
            RateLimit {
                scope: LimitScope::Recipient,
                count,
            } => write!(f, "rate limit: {count} replies to this address in the last hour"),
            GaveUpWaiting(inner) => write!(
                f,
                "{inner}; the checks failed until the desk stopped waiting"
            ),
        }
    }
}

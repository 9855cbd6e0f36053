//! Types that cross stage boundaries.
//!
//! In: nothing. Out: the vocabulary the stages share — ids, the message as it
//! arrived ([`Incoming`]), and the report the pipeline produces ([`Report`]).
//! This module does no I/O and knows nothing of SQL or SMTP.

pub mod auth;
pub mod case;
pub mod evidence;
pub mod operator;
pub mod owner;
pub mod pattern;
pub mod reason;
pub mod reply;

pub use reason::{Place, Reason, Signal};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Row ids: one type per table, so one can never be passed for another.
/// In JSON and on the command line they are plain numbers.
macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

row_id!(
    /// Row id of a committed raw message; exists only after the store committed it.
    RawId
);
row_id!(
    /// Row id of a report.
    ReportId
);
row_id!(
    /// Row id of a case.
    CaseId
);
row_id!(
    /// Row id of a reply in the outbox.
    OutboxId
);

/// Where a raw message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    Smtp,
    Ingest,
    /// `import maildir`: a mailbox's history.
    Maildir,
    /// `import mbox`: a mailbox's history.
    Mbox,
    /// `serve`'s `[[imap]]` intake: new mail, answered like SMTP mail.
    Imap,
    /// `import imap://…`: a mailbox's history.
    ImapImport,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Smtp => "smtp",
            Origin::Ingest => "ingest",
            Origin::Maildir => "maildir",
            Origin::Mbox => "mbox",
            Origin::Imap => "imap",
            Origin::ImapImport => "imap-import",
        }
    }

    pub const ALL: [Origin; 6] = [
        Origin::Smtp,
        Origin::Ingest,
        Origin::Maildir,
        Origin::Mbox,
        Origin::Imap,
        Origin::ImapImport,
    ];

    /// Whether it brings a mailbox's history in: recorded, routed and
    /// searchable, but never answered and never put into a case to act on
    /// (its reporters and customers heard long ago, or never will now).
    pub fn is_history(self) -> bool {
        matches!(self, Origin::Maildir | Origin::Mbox | Origin::ImapImport)
    }

    pub fn parse(s: &str) -> Option<Origin> {
        Origin::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The SMTP reverse path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sender {
    /// `MAIL FROM:<>` or `Return-Path: <>`: a bounce or other automated notice.
    Null,
    Address(String),
    /// `ingest` of a file without `Return-Path:`.
    Unknown,
}

impl Sender {
    /// The value stored in `raw_messages.mail_from`: `""` for null, `NULL` for unknown.
    pub fn as_column(&self) -> Option<&str> {
        match self {
            Sender::Null => Some(""),
            Sender::Address(a) => Some(a),
            Sender::Unknown => None,
        }
    }

    pub fn from_column(value: Option<String>) -> Self {
        match value {
            None => Sender::Unknown,
            Some(v) if v.is_empty() => Sender::Null,
            Some(v) => Sender::Address(v),
        }
    }
}

/// The SMTP envelope of a message, or what `ingest` could recover of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub origin: Origin,
    pub peer_ip: Option<IpAddr>,
    pub helo: Option<String>,
    pub mail_from: Sender,
    pub rcpt_to: Vec<String>,
    /// RFC 3461 parameters, when the client sent any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn: Option<Dsn>,
}

/// The DSN parameters of a transaction (RFC 3461), decoded. We do not offer
/// DSN; these are kept as the client sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dsn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<DsnRet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    /// One per entry of `rcpt_to`, in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<DsnRecipient>,
}

impl Dsn {
    /// Whether the client gave any DSN parameter at all.
    pub fn is_given(&self) -> bool {
        self.ret.is_some()
            || self.envid.is_some()
            || self
                .recipients
                .iter()
                .any(|r| r.notify.is_some() || r.orcpt.is_some())
    }
}

/// `RET=`: what a bounce should carry of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DsnRet {
    Full,
    Hdrs,
}

/// `NOTIFY=` and `ORCPT=` of one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnRecipient {
    /// `NEVER`, or a comma list of `SUCCESS`, `FAILURE`, `DELAY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    /// `type;address`, the address xtext-decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
}

/// A message as it arrived, before it is committed.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub envelope: Envelope,
    /// RFC 3339, UTC: the moment the end of data was seen.
    pub received_at: String,
    pub bytes: Vec<u8>,
}

/// A committed raw message as the pipeline reads it back.
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub id: RawId,
    pub envelope: Envelope,
    pub received_at: String,
    pub bytes: Vec<u8>,
    /// The sender checks, once made (stored with the message, reused).
    pub auth: Option<crate::model::auth::AuthResults>,
    /// PostgreSQL: the node that claimed it for processing (this one). Its
    /// report is written only while the claim is still this node's: a node
    /// that paused past its lease finds the message taken and writes nothing.
    pub claim: Option<String>,
}

/// Where a report stands with the desk (`reports.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// Being worked on (or waiting to be).
    Open,
    /// Closed by `reports resolve`.
    Resolved,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Open => "open",
            ReportStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<ReportStatus> {
        [ReportStatus::Open, ReportStatus::Resolved]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Whether a case is being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Reports join it.
    Open,
    /// The customer answered that it is dealt with: no reminder, no
    /// escalation by time; a new report opens it again.
    CustomerResolved,
    /// Closed by an operator or by its policy (idle): a later report opens
    /// a new case, or (closed by the policy) reopens this one.
    Resolved,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 3] = [
        CaseStatus::Open,
        CaseStatus::CustomerResolved,
        CaseStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::CustomerResolved => "customer_resolved",
            CaseStatus::Resolved => "resolved",
        }
    }

    /// Whether reports still join it.
    pub fn is_active(self) -> bool {
        self != CaseStatus::Resolved
    }

    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which reply a queued one is (`outbox.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// The report is complete: received, being investigated.
    Ack,
    /// Something is missing: what, and how to send it.
    NeedsInfo,
    /// `reports resolve`: the investigation is concluded.
    Concluded,
    /// None of the report's offenders is on our network.
    NotOurs,
    /// Every event is older than the desk can act on.
    TooOld,
    /// To a customer: the first notice of their case, with its events.
    Notice,
    /// To a customer: the events since the last notice.
    Digest,
    /// To a customer: no answer since the last notice.
    Reminder,
    /// To the escalation contact: the case passed its policy's count or time.
    Escalation,
    /// To a customer: the case is closed.
    CaseClosed,
}

impl ReplyKind {
    pub const ALL: [ReplyKind; 10] = [
        ReplyKind::Ack,
        ReplyKind::NeedsInfo,
        ReplyKind::Concluded,
        ReplyKind::NotOurs,
        ReplyKind::TooOld,
        ReplyKind::Notice,
        ReplyKind::Digest,
        ReplyKind::Reminder,
        ReplyKind::Escalation,
        ReplyKind::CaseClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Ack => "ack",
            ReplyKind::NeedsInfo => "needs_info",
            ReplyKind::Concluded => "concluded",
            ReplyKind::NotOurs => "not_ours",
            ReplyKind::TooOld => "too_old",
            ReplyKind::Notice => "notice",
            ReplyKind::Digest => "digest",
            ReplyKind::Reminder => "reminder",
            ReplyKind::Escalation => "escalation",
            ReplyKind::CaseClosed => "case_closed",
        }
    }

    /// Whether it goes to a customer about a case (its text is written
    /// when it is queued), not to a reporter about a report.
    pub fn is_notice(self) -> bool {
        matches!(
            self,
            ReplyKind::Notice
                | ReplyKind::Digest
                | ReplyKind::Reminder
                | ReplyKind::Escalation
                | ReplyKind::CaseClosed
        )
    }

    pub fn parse(s: &str) -> Option<ReplyKind> {
        ReplyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The reply a report's decision calls for, if it calls for one.
    pub fn for_decision(decision: ReplyDecision) -> Option<ReplyKind> {
        match decision {
            ReplyDecision::Ack => Some(ReplyKind::Ack),
            ReplyDecision::NeedsInfo => Some(ReplyKind::NeedsInfo),
            ReplyDecision::NotOurs => Some(ReplyKind::NotOurs),
            ReplyDecision::TooOld => Some(ReplyKind::TooOld),
            _ => None,
        }
    }
}

impl std::fmt::Display for ReplyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a queued reply stands (`outbox.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// No relay configured yet, or `reply.review`: waiting for one, or for
    /// an operator's release.
    Held,
    /// Due at its next attempt.
    Pending,
    Sent,
    /// Refused for good, or given up.
    Failed,
    /// Dropped by an operator.
    Discarded,
}

impl OutboxState {
    pub const ALL: [OutboxState; 5] = [
        OutboxState::Held,
        OutboxState::Pending,
        OutboxState::Sent,
        OutboxState::Failed,
        OutboxState::Discarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Held => "held",
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
            OutboxState::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxState> {
        OutboxState::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for OutboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What an operator does to a reply that has not gone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyAction {
    /// A held reply goes to the relay: due now.
    Release,
    /// A held or pending reply is dropped for good.
    Discard,
}

impl ReplyAction {
    /// The states a reply can be in for this action to apply.
    pub fn applies_to(self) -> &'static [OutboxState] {
        match self {
            ReplyAction::Release => &[OutboxState::Held],
            ReplyAction::Discard => &[OutboxState::Held, OutboxState::Pending],
        }
    }

    /// Those states in words: `held or pending`.
    pub fn applies_to_words(self) -> String {
        let states: Vec<&str> = self.applies_to().iter().map(|s| s.as_str()).collect();
        states.join(" or ")
    }

    /// The state it leaves the reply in.
    pub fn to(self) -> OutboxState {
        match self {
            ReplyAction::Release => OutboxState::Pending,
            ReplyAction::Discard => OutboxState::Discarded,
        }
    }

    /// Its name: `release`, `discard` (the CLI's and the console's word).
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyAction::Release => "release",
            ReplyAction::Discard => "discard",
        }
    }

    pub fn parse(s: &str) -> Option<ReplyAction> {
        [ReplyAction::Release, ReplyAction::Discard]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    /// The word for it in the history and the logs.
    pub fn done(self) -> &'static str {
        match self {
            ReplyAction::Release => "released",
            ReplyAction::Discard => "discarded",
        }
    }
}

/// Where a raw message stands in processing (`raw_messages.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RawStatus {
    /// Committed, waiting for the worker: the backlog.
    Received,
    Processed,
    /// Quarantined: processing failed (the reason is kept).
    Failed,
    /// Set aside by an operator; never processed.
    Discarded,
    /// Its bytes and what named a person erased by `prune` (retention).
    Pruned,
}

impl RawStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RawStatus::Received => "received",
            RawStatus::Processed => "processed",
            RawStatus::Failed => "failed",
            RawStatus::Discarded => "discarded",
            RawStatus::Pruned => "pruned",
        }
    }

    pub const ALL: [RawStatus; 5] = [
        RawStatus::Received,
        RawStatus::Processed,
        RawStatus::Failed,
        RawStatus::Discarded,
        RawStatus::Pruned,
    ];

    /// The status a stored text names.
    pub fn parse(text: &str) -> Option<RawStatus> {
        RawStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A line of a report's history (`report_events.kind`), as `reports show`
/// lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryEvent {
    Received,
    Classified,
    /// The reply decided (or changed: a follow-up completed the report).
    Reply,
    /// A follow-up merged into the report, or refused (on its own report).
    FollowUp,
    Sent,
    SendFailed,
    Resolved,
}

impl HistoryEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryEvent::Received => "received",
            HistoryEvent::Classified => "classified",
            HistoryEvent::Reply => "reply",
            HistoryEvent::FollowUp => "follow_up",
            HistoryEvent::Sent => "sent",
            HistoryEvent::SendFailed => "send_failed",
            HistoryEvent::Resolved => "resolved",
        }
    }
}

/// What the store did with an [`Incoming`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub raw_id: RawId,
    /// The same message (Message-ID and content) was already stored; nothing new was written.
    pub is_duplicate: bool,
}

/// The report's `abuse_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbuseType {
    WebContent,
    EmailAbuse,
    NetworkActivity,
    Copyright,
    Unknown,
}

impl AbuseType {
    pub const ALL: [AbuseType; 5] = [
        AbuseType::WebContent,
        AbuseType::EmailAbuse,
        AbuseType::NetworkActivity,
        AbuseType::Copyright,
        AbuseType::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AbuseType::WebContent => "web_content",
            AbuseType::EmailAbuse => "email_abuse",
            AbuseType::NetworkActivity => "network_activity",
            AbuseType::Copyright => "copyright",
            AbuseType::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// `subtype` of a `network_activity` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkSubtype {
    Intrusion,
    Dos,
    PortScan,
    BruteForce,
    Other,
}

impl NetworkSubtype {
    pub const ALL: [NetworkSubtype; 5] = [
        NetworkSubtype::Intrusion,
        NetworkSubtype::Dos,
        NetworkSubtype::PortScan,
        NetworkSubtype::BruteForce,
        NetworkSubtype::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkSubtype::Intrusion => "intrusion",
            NetworkSubtype::Dos => "dos",
            NetworkSubtype::PortScan => "port_scan",
            NetworkSubtype::BruteForce => "brute_force",
            NetworkSubtype::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The reply decided for a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyDecision {
    Ack,
    NeedsInfo,
    Suppressed,
    /// Replies are switched off in the configuration.
    None,
    /// Waiting for the sender checks (SPF, DKIM, DMARC): the reply is held
    /// until they end, then decided ([`crate::reply::settle`]).
    Pending,
    /// Answered "not on our network": none of its offenders is ours
    /// (`owners.unowned_reply`).
    NotOurs,
    /// Answered "too old to act on": every event is older than
    /// `owners.max_event_age_days`.
    TooOld,
}

impl ReplyDecision {
    pub const ALL: [ReplyDecision; 7] = [
        ReplyDecision::Ack,
        ReplyDecision::NeedsInfo,
        ReplyDecision::Suppressed,
        ReplyDecision::None,
        ReplyDecision::Pending,
        ReplyDecision::NotOurs,
        ReplyDecision::TooOld,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReplyDecision::Ack => "ack",
            ReplyDecision::NeedsInfo => "needs_info",
            ReplyDecision::Suppressed => "suppressed",
            ReplyDecision::None => "none",
            ReplyDecision::Pending => "pending",
            ReplyDecision::NotOurs => "not_ours",
            ReplyDecision::TooOld => "too_old",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The history line of this decision when it queues nothing.
    pub fn event(self, reason: Option<&str>) -> String {
        format!("{}: {}", self.as_str(), reason.unwrap_or(""))
    }
}

/// A report's RSIT classification (`classification.taxonomy` and
/// `classification.type` in IntelMQ), from [`crate::classify::rsit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsitPair {
    pub taxonomy: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// What the pipeline makes of one raw message; becomes a [`Report`] once stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDraft {
    pub message_id: Option<String>,
    pub reporter: Option<String>,
    pub subject: Option<String>,
    pub abuse_type: AbuseType,
    pub subtype: Option<NetworkSubtype>,
    pub ips: Vec<String>,
    pub urls: Vec<String>,
    pub evidence_rows: u64,
    pub missing: Vec<Missing>,
    pub reply: ReplyDecision,
    /// Why the reply was suppressed (or is off).
    pub reply_reason: Option<String>,
    pub parse_warnings: Vec<String>,
    /// Formats recognised (`arf`, `csv`, …).
    pub formats: Vec<crate::model::evidence::Format>,
    /// Why the report got its type, strongest first.
    pub reasons: Vec<Reason>,
    pub evidence: Vec<crate::model::evidence::Row>,
    /// Where the decided reply goes, if one is decided (`ack`/`needs_info`).
    pub reply_plan: Option<ReplyPlan>,
    /// What the message says (bodies as text, capped), for full-text search.
    pub search_text: String,
    /// The offending addresses (evidence sources), first found first: the
    /// first one's network groups the report into a case.
    pub sources: Vec<std::net::IpAddr>,
    /// The report this message says it follows up (it answers one of our
    /// replies, or names `[abuse #ID-TOKEN]` in its subject); the store
    /// merges it only if [`crate::reply::follow_up`] allows.
    pub follow_up: Option<crate::model::reply::Claim>,
    /// How the ack to the original report's reporter is queued when this
    /// follow-up completes it (present with `follow_up`, replies on).
    pub follow_up_reply: Option<ReplyPlan>,
    /// The sender checks the reply decision used.
    pub auth: Option<crate::model::auth::AuthResults>,
    /// The reply that waits for the sender checks (`reply` is `pending`):
    /// [`crate::reply::settle`] decides it when they end.
    #[serde(default)]
    pub pending_reply: Option<PendingReply>,
    /// The sender checks are still to be made (they run after the report is
    /// stored, and decide `pending_reply` and a follow-up that needs them).
    #[serde(default)]
    pub checks_pending: bool,
    /// The RSIT pair of the classification.
    pub rsit: RsitPair,
    /// The known feed that sent it (`config/feeds.toml` id).
    pub feed: Option<String>,
    /// What would still be missing for each abuse type with this message's
    /// evidence alone: merged with the original report's own list.
    pub missing_by_type: Vec<(AbuseType, Vec<Missing>)>,
    /// The language the reporter wrote in; replies use it.
    pub language: crate::model::reply::Language,
    /// Whose each offender and reported host is (empty until routed, and
    /// when no owners are known).
    #[serde(default)]
    pub owners: Vec<owner::Owner>,
    /// It answers one of our notices to a customer: kept on the case, not
    /// as a report, when the store finds the token is the case's.
    #[serde(default)]
    pub case_answer: Option<case::CaseAnswer>,
    /// From a mailbox's history ([`Origin::is_history`]): no reply, no case.
    #[serde(default)]
    pub history: bool,
}

impl ReportDraft {
    /// The draft as a follow-up keeps it while its merge waits for the
    /// sender checks: everything but what is stored apart (evidence rows,
    /// search text).
    pub fn for_later(&self) -> ReportDraft {
        ReportDraft {
            evidence: Vec::new(),
            search_text: String::new(),
            ..self.clone()
        }
    }

    /// `abuse_type/subtype`, or the type alone: the history's `classified`.
    pub fn class_label(&self) -> String {
        match self.subtype {
            Some(s) => format!("{}/{}", self.abuse_type.as_str(), s.as_str()),
            None => self.abuse_type.as_str().to_owned(),
        }
    }

    /// The history line of a reply decision that queues nothing.
    pub fn reply_event(&self) -> String {
        self.reply.event(self.reply_reason.as_deref())
    }
}

#[cfg(test)]
impl ReportDraft {
    /// An unknown report with nothing in it, for unit tests.
    pub fn empty() -> ReportDraft {
        ReportDraft {
            message_id: None,
            reporter: None,
            subject: None,
            abuse_type: AbuseType::Unknown,
            subtype: None,
            ips: Vec::new(),
            urls: Vec::new(),
            evidence_rows: 0,
            missing: Vec::new(),
            reply: ReplyDecision::None,
            reply_reason: None,
            parse_warnings: Vec::new(),
            formats: Vec::new(),
            reasons: Vec::new(),
            evidence: Vec::new(),
            reply_plan: None,
            search_text: String::new(),
            sources: Vec::new(),
            follow_up: None,
            follow_up_reply: None,
            auth: None,
            pending_reply: None,
            checks_pending: false,
            rsit: RsitPair {
                taxonomy: "other".into(),
                kind: "undetermined".into(),
            },
            feed: None,
            missing_by_type: Vec::new(),
            language: crate::model::reply::Language::En,
            owners: Vec::new(),
            case_answer: None,
            history: false,
        }
    }
}

/// An address as a 16-byte key (IPv4 mapped into IPv6): how addresses are
/// indexed and grouped.
pub fn ip_key(ip: std::net::IpAddr) -> [u8; 16] {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    }
}

/// Bytes of a key that make its network: /24 for IPv4 (mapped), /64 for IPv6.
pub fn network_len(key: &[u8; 16]) -> usize {
    if key[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] {
        15
    } else {
        8
    }
}

/// Evidence a report still lacks for its type (the JSON's `missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Web content: where it is.
    Url,
    /// A video: where in it.
    Timestamp,
    /// Email abuse: the offending message with all its headers.
    FullHeaders,
    /// Network activity: dated log lines naming the offender.
    NetworkLogs,
    /// Copyright: the elements of a notice (work, location, contact,
    /// statements, signature).
    CopyrightNotice,
    /// Which of the four kinds of abuse it is.
    AbuseType,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Url => "url",
            Missing::Timestamp => "timestamp",
            Missing::FullHeaders => "full_headers",
            Missing::NetworkLogs => "network_logs",
            Missing::CopyrightNotice => "copyright_notice",
            Missing::AbuseType => "abuse_type",
        }
    }
}

impl Missing {
    /// The names, joined by `sep`.
    pub fn join(missing: &[Missing], sep: &str) -> String {
        let names: Vec<&str> = missing.iter().map(|m| m.as_str()).collect();
        names.join(sep)
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the store needs to queue a decided reply in the report's transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyPlan {
    pub recipient: String,
    /// No relay is configured, or replies wait for review: the reply waits
    /// in the outbox as `held`.
    pub hold: bool,
    /// The recipient as rate limits count it (`reply::limits::key`).
    pub recipient_key: String,
    /// The recipient's domain, lower case.
    pub recipient_domain: String,
    /// Replies per hour past which the reply is suppressed.
    pub limits: crate::model::reply::Limits,
    /// Domain of our reply Message-IDs.
    pub domain: String,
}

#[cfg(test)]
impl ReplyPlan {
    /// A plan for unit tests: to `recipient`, one reply an hour allowed.
    pub fn for_tests(recipient: &str) -> ReplyPlan {
        ReplyPlan {
            recipient: recipient.to_owned(),
            hold: false,
            recipient_key: String::new(),
            recipient_domain: String::new(),
            limits: crate::model::reply::Limits {
                per_recipient: 1,
                per_domain: 1,
                global: 1,
            },
            domain: "abuse.example".into(),
        }
    }
}

/// A reply decided but for the sender checks: what it would be, and where
/// it would go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReply {
    pub kind: ReplyKind,
    pub plan: ReplyPlan,
}

/// The sender checks as a report shows them (`auth` in its JSON): the
/// results, or `"pending"` while they run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AuthState {
    Pending(ChecksPending),
    Checked(crate::model::auth::AuthResults),
}

/// `"pending"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksPending {
    Pending,
}

impl AuthState {
    /// The results, once the checks are made.
    pub fn checked(&self) -> Option<&crate::model::auth::AuthResults> {
        match self {
            AuthState::Checked(results) => Some(results),
            AuthState::Pending(_) => None,
        }
    }
}

/// The report object. Its `Serialize` impl *is* the JSON printed by `ingest`,
/// `reports list` and `reports show`: change it only together with README.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub id: ReportId,
    pub raw_id: RawId,
    pub message_id: Option<String>,
    /// RFC 3339, UTC.
    pub received_at: String,
    pub reporter: Option<String>,
    pub subject: Option<String>,
    pub abuse_type: AbuseType,
    pub subtype: Option<NetworkSubtype>,
    pub ips: Vec<String>,
    pub urls: Vec<String>,
    pub evidence_rows: u64,
    pub missing: Vec<Missing>,
    pub reply: ReplyDecision,
    pub reply_reason: Option<String>,
    pub formats: Vec<crate::model::evidence::Format>,
    /// Why the report has its type, strongest first; its JSON shows each
    /// as text (`network_activity +20: 50 log rows with addresses`).
    #[serde(serialize_with = "reason::as_texts")]
    pub reasons: Vec<Reason>,
    pub parse_warnings: Vec<String>,
    pub status: ReportStatus,
    /// The case grouping reports about the same source network and type.
    pub case_id: Option<CaseId>,
    /// The language the reporter wrote in (`en`, `de`, `es`, `fr`, `pt`).
    pub language: crate::model::reply::Language,
    /// SPF, DKIM and DMARC of the message; `"pending"` while they run,
    /// `null` when it is not checked.
    pub auth: Option<AuthState>,
    /// ENISA's Reference Security Incident Taxonomy pair.
    pub rsit: RsitPair,
    /// The known feed that sent it, if any (`config/feeds.toml` id).
    pub feed: Option<String>,
    /// Whose each offender and reported host is, with why and when.
    pub owners: Vec<owner::Owner>,
    /// What the owners say together: `owned`, `partly`, `not_ours`, or
    /// `unrouted` (nothing to look up, or no owners known).
    pub ownership: owner::Ownership,
}

/// `192.0.2.7` → that address; `192.0.2.0/24`, `2001:db8::/32` → the first and
/// last address of the network.
pub fn ip_range(s: &str) -> Result<(std::net::IpAddr, std::net::IpAddr), String> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let bad = || format!("{s:?} is not an address or a network like 192.0.2.0/24");
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (
            a.parse::<IpAddr>().map_err(|_| bad())?,
            Some(b.parse::<u32>().map_err(|_| bad())?),
        ),
        None => (s.parse::<IpAddr>().map_err(|_| bad())?, None),
    };
    match (addr, bits) {
        (ip, None) => Ok((ip, ip)),
        (IpAddr::V4(v4), Some(bits)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            let first = u32::from(v4) & mask;
            Ok((
                IpAddr::V4(Ipv4Addr::from(first)),
                IpAddr::V4(Ipv4Addr::from(first | !mask)),
            ))
        }
        (IpAddr::V6(v6), Some(bits)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            let first = u128::from(v6) & mask;
            Ok((
                IpAddr::V6(Ipv6Addr::from(first)),
                IpAddr::V6(Ipv6Addr::from(first | !mask)),
            ))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_strings_round_trip_and_match_serde() {
        for t in AbuseType::ALL {
            assert_eq!(AbuseType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for t in NetworkSubtype::ALL {
            assert_eq!(NetworkSubtype::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for t in ReplyDecision::ALL {
            assert_eq!(ReplyDecision::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for t in ReplyKind::ALL {
            assert_eq!(ReplyKind::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for t in OutboxState::ALL {
            assert_eq!(OutboxState::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for t in [ReportStatus::Open, ReportStatus::Resolved] {
            assert_eq!(ReportStatus::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }

    #[test]
    fn sender_column_distinguishes_null_from_unknown() {
        for s in [
            Sender::Null,
            Sender::Unknown,
            Sender::Address("a@b.example".into()),
        ] {
            assert_eq!(Sender::from_column(s.as_column().map(str::to_owned)), s);
        }
    }
}

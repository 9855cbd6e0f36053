//! What happens to a case, and the clock the notice schedule reads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where "now" comes from: the system's clock in the daemon, a fixed time
/// where a test or an operator sets one (`notices run --now`). The notice
/// schedule never reads the system time itself.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// One line of a case's history (`case_events.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseEvent {
    /// A notice, digest, reminder or escalation was queued.
    Notified,
    /// The relay took a notice.
    Sent,
    /// A notice failed for good.
    SendFailed,
    /// The customer answered (a statement is stored).
    Answered,
    /// The customer's answer said it is dealt with.
    CustomerResolved,
    /// A new report opened it again (after the customer's "resolved", or
    /// after it closed by itself).
    Reopened,
    /// An operator resolved it.
    Resolved,
    /// Its policy closed it, idle.
    AutoClosed,
}

impl CaseEvent {
    pub const ALL: [CaseEvent; 8] = [
        CaseEvent::Notified,
        CaseEvent::Sent,
        CaseEvent::SendFailed,
        CaseEvent::Answered,
        CaseEvent::CustomerResolved,
        CaseEvent::Reopened,
        CaseEvent::Resolved,
        CaseEvent::AutoClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseEvent::Notified => "notified",
            CaseEvent::Sent => "sent",
            CaseEvent::SendFailed => "send_failed",
            CaseEvent::Answered => "answered",
            CaseEvent::CustomerResolved => "customer_resolved",
            CaseEvent::Reopened => "reopened",
            CaseEvent::Resolved => "resolved",
            CaseEvent::AutoClosed => "auto_closed",
        }
    }

    pub fn parse(s: &str) -> Option<CaseEvent> {
        CaseEvent::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who closed a case (`cases.closed_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// `cases resolve`.
    Operator,
    /// Its notice policy, idle for `close_after_days`: a new report reopens it.
    Policy,
}

impl ClosedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedBy::Operator => "operator",
            ClosedBy::Policy => "policy",
        }
    }

    pub fn parse(s: &str) -> Option<ClosedBy> {
        [ClosedBy::Operator, ClosedBy::Policy]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What a customer's answer says of its case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStatus {
    /// The customer says it is dealt with (a status keyword first).
    Resolved,
    /// A statement, nothing more.
    Statement,
}

impl AnswerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerStatus::Resolved => "resolved",
            AnswerStatus::Statement => "statement",
        }
    }

    pub fn parse(s: &str) -> Option<AnswerStatus> {
        [AnswerStatus::Resolved, AnswerStatus::Statement]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A message that answers one of our notices: it names a case with a
/// token. The store keeps it on the case when the token is the case's; a
/// wrong token makes it a report like any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseAnswer {
    pub claim: crate::model::reply::Claim,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub status: AnswerStatus,
    /// Their own words (above the quoted notice), clipped.
    pub text: String,
}

/// What the desk decided about the content of a case (EU Digital Services
/// Act, Art. 17: the restriction a statement of reasons names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The content was removed.
    Removed,
    /// Access to it was disabled.
    Disabled,
    /// Its visibility was restricted (demoted, age-gated, …).
    Restricted,
    /// The customer's service was suspended.
    Suspended,
    /// Nothing was restricted (not illegal, not against the terms).
    NoAction,
}

impl Decision {
    pub const ALL: [Decision; 5] = [
        Decision::Removed,
        Decision::Disabled,
        Decision::Restricted,
        Decision::Suspended,
        Decision::NoAction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Removed => "removed",
            Decision::Disabled => "disabled",
            Decision::Restricted => "restricted",
            Decision::Suspended => "suspended",
            Decision::NoAction => "no_action",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Why (DSA Art. 17(3)(d)/(e)): the content is illegal, or against the
/// terms of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Ground {
    Illegal,
    Terms,
}

impl Ground {
    pub fn as_str(self) -> &'static str {
        match self {
            Ground::Illegal => "illegal",
            Ground::Terms => "terms",
        }
    }

    pub fn parse(s: &str) -> Option<Ground> {
        [Ground::Illegal, Ground::Terms]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A decision with its ground (`None` for [`Decision::NoAction`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub decision: Decision,
    pub ground: Option<Ground>,
}

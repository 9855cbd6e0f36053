//! Queueing a decided reply: whether it may go (the rate limits), in which
//! state it waits, its Message-ID, and what the report's history says.
//!
//! In: what the store counted and read. Out: the outbox row to insert, or
//! why the reply is suppressed. Pure.

use super::limits::{self, Recent};
use crate::model::reply::Suppression;
use crate::model::{OutboxState, ReplyKind, ReplyPlan};

/// The hour the rate limits count replies in: queued at or after this
/// instant (RFC 3339, UTC, as `created_at` is stored).
pub fn window_start(now: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(now)
        .map(|t| {
            (t - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        })
        .unwrap_or_default()
}

/// The replies the rate limits count: what we start. The concluded reply
/// answers someone we already answered, and never counts.
pub const COUNTED: [ReplyKind; 4] = [
    ReplyKind::Ack,
    ReplyKind::NeedsInfo,
    ReplyKind::NotOurs,
    ReplyKind::TooOld,
];

/// An outbox row to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub message_id: String,
    pub state: OutboxState,
    /// The event on the report.
    pub event: String,
}

/// What the store read to queue one reply.
pub struct Counted<'a> {
    /// Replies queued in the window ([`window_start`]), `concluded` ones
    /// not counted.
    pub recent: Recent,
    /// Replies the report has had: numbers the next Message-ID.
    pub replies_of_report: i64,
    /// The installation's secret (the Message-ID's token).
    pub secret: &'a [u8],
}

/// The row for a reply of `kind` to report `report`, or `Err(reason)` when
/// a rate limit holds it back. The concluded reply to a resolved report is
/// never held back by them: the reporter was answered before.
pub fn plan(
    report: i64,
    kind: ReplyKind,
    plan: &ReplyPlan,
    counted: &Counted<'_>,
) -> Result<Queued, Suppression> {
    if kind != ReplyKind::Concluded {
        limits::check(counted.recent, plan.limits)?;
    }
    let state = if plan.hold {
        OutboxState::Held
    } else {
        OutboxState::Pending
    };
    Ok(Queued {
        message_id: super::token::message_id(
            counted.secret,
            report,
            counted.replies_of_report,
            &plan.domain,
        ),
        state,
        event: format!("{kind} to {} queued ({})", plan.recipient, state.as_str()),
    })
}

/// The history line of a report whose reply was suppressed.
pub fn suppressed_event(reason: &Suppression) -> String {
    format!("suppressed: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_plan(hold: bool) -> ReplyPlan {
        ReplyPlan {
            recipient: "r@example.net".into(),
            hold,
            recipient_key: "r@example.net".into(),
            recipient_domain: "example.net".into(),
            limits: limits::Limits {
                per_recipient: 2,
                per_domain: 10,
                global: 100,
            },
            domain: "abuse.example".into(),
        }
    }

    #[test]
    fn a_reply_past_a_limit_is_suppressed_but_a_concluded_one_goes() {
        let counted = Counted {
            recent: Recent {
                recipient: 2,
                domain: 2,
                global: 2,
            },
            replies_of_report: 1,
            secret: b"s",
        };
        let plan_ = reply_plan(false);
        assert!(plan(7, ReplyKind::Ack, &plan_, &counted)
            .unwrap_err()
            .to_string()
            .contains("to this address"));
        let queued = plan(7, ReplyKind::Concluded, &plan_, &counted).unwrap();
        assert_eq!(queued.state, OutboxState::Pending);
        assert!(queued.message_id.starts_with("abuse-7.1."), "{queued:?}");
        assert!(queued.message_id.ends_with("@abuse.example"));
    }

    #[test]
    fn without_a_relay_the_reply_is_held() {
        let counted = Counted {
            recent: Recent::default(),
            replies_of_report: 0,
            secret: b"s",
        };
        let queued = plan(1, ReplyKind::NeedsInfo, &reply_plan(true), &counted).unwrap();
        assert_eq!(queued.state, OutboxState::Held);
        assert_eq!(queued.event, "needs_info to r@example.net queued (held)");
    }

    #[test]
    fn the_window_is_the_last_hour() {
        assert_eq!(
            window_start("2026-12-02T10:30:00Z"),
            "2026-12-02T09:30:00.000000Z"
        );
    }
}

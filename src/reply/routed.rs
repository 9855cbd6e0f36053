//! The replies routing calls for: "not on our network" for a report none
//! of whose offenders is ours, and "too old to act on" for one whose events
//! all lie further back than the desk can act on. Either takes the place of
//! the ack or the request for evidence.
//!
//! In: a routed draft, when it arrived, and the configuration's switches.
//! Out: the same draft with its reply turned, when a rule applies. Pure.
//! Only a reply already decided (or waiting for the sender checks) is
//! turned: who is answered at all stays the reply decision's call, so an
//! unauthenticated reporter still hears nothing.

use crate::model::owner::{Ownership, TimeSource};
use crate::model::{ReplyDecision, ReplyKind, ReportDraft};
use chrono::{DateTime, Utc};

/// What the configuration switches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// `owners.unowned_reply`.
    pub not_ours: bool,
    /// `owners.max_event_age_days`, when set.
    pub max_event_age: Option<chrono::Duration>,
}

/// The reply routing calls for, if any: not ours before too old (a report
/// about someone else's network is that, however old).
pub fn kind(draft: &ReportDraft, received_at: DateTime<Utc>, rules: Rules) -> Option<ReplyKind> {
    if draft.follow_up.is_some() {
        // A follow-up adds to a report we answered.
        return None;
    }
    if rules.not_ours && Ownership::of(&draft.owners) == Ownership::NotOurs {
        return Some(ReplyKind::NotOurs);
    }
    let limit = received_at - rules.max_event_age?;
    let all_old = !draft.owners.is_empty()
        && draft.owners.iter().all(|o| {
            o.time_from == TimeSource::Evidence
                && DateTime::parse_from_rfc3339(&o.at).is_ok_and(|at| at.to_utc() < limit)
        });
    all_old.then_some(ReplyKind::TooOld)
}

/// Turns `draft`'s reply into the one routing calls for (see [`kind`]).
pub fn apply(draft: &mut ReportDraft, received_at: DateTime<Utc>, rules: Rules) {
    let Some(kind) = kind(draft, received_at, rules) else {
        return;
    };
    let decision = match kind {
        ReplyKind::TooOld => ReplyDecision::TooOld,
        _ => ReplyDecision::NotOurs,
    };
    match draft.reply {
        ReplyDecision::Ack | ReplyDecision::NeedsInfo => {
            draft.reply = decision;
            draft.reply_reason = None;
        }
        ReplyDecision::Pending => {
            if let Some(pending) = &mut draft.pending_reply {
                pending.kind = kind;
            }
        }
        ReplyDecision::Suppressed
        | ReplyDecision::None
        | ReplyDecision::NotOurs
        | ReplyDecision::TooOld => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::owner::{Looked, MatchKind, Owner, TimeSource};
    use crate::model::{PendingReply, ReplyPlan};

    fn owner(customer: Option<&str>) -> Owner {
        Owner {
            looked: Looked::Address,
            value: "192.0.2.1".into(),
            customer: customer.map(str::to_owned),
            matched: if customer.is_some() {
                MatchKind::Netblock
            } else {
                MatchKind::Unowned
            },
            by: None,
            at: "2026-12-01T00:00:00Z".into(),
            time_from: TimeSource::Received,
        }
    }

    const NOT_OURS: Rules = Rules {
        not_ours: true,
        max_event_age: None,
    };

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn draft(reply: ReplyDecision, owners: Vec<Owner>) -> ReportDraft {
        let mut d = ReportDraft::empty();
        d.reply = reply;
        d.owners = owners;
        d
    }

    #[test]
    fn only_a_decided_reply_about_none_of_ours_turns() {
        let mut d = draft(ReplyDecision::Ack, vec![owner(None), owner(None)]);
        apply(&mut d, now(), NOT_OURS);
        assert_eq!(d.reply, ReplyDecision::NotOurs);
        let mut d = draft(ReplyDecision::NeedsInfo, vec![owner(None)]);
        apply(&mut d, now(), NOT_OURS);
        assert_eq!(d.reply, ReplyDecision::NotOurs);
        // One of ours: the ordinary reply.
        let mut d = draft(ReplyDecision::Ack, vec![owner(None), owner(Some("A"))]);
        apply(&mut d, now(), NOT_OURS);
        assert_eq!(d.reply, ReplyDecision::Ack);
        // Nothing looked up (no owners known, or no offender): unchanged.
        let mut d = draft(ReplyDecision::NeedsInfo, vec![]);
        apply(&mut d, now(), NOT_OURS);
        assert_eq!(d.reply, ReplyDecision::NeedsInfo);
        // Not answered at all: still not answered.
        let mut d = draft(ReplyDecision::Suppressed, vec![owner(None)]);
        apply(&mut d, now(), NOT_OURS);
        assert_eq!(d.reply, ReplyDecision::Suppressed);
    }

    #[test]
    fn a_reply_waiting_for_the_checks_waits_as_not_ours() {
        let mut d = draft(ReplyDecision::Pending, vec![owner(None)]);
        d.pending_reply = Some(PendingReply {
            kind: ReplyKind::Ack,
            plan: ReplyPlan::for_tests("r@example.net"),
        });
        apply(&mut d, now(), NOT_OURS);
        assert_eq!(d.reply, ReplyDecision::Pending);
        assert_eq!(d.pending_reply.unwrap().kind, ReplyKind::NotOurs);
    }

    #[test]
    fn events_all_older_than_the_limit_get_too_old_and_one_recent_event_does_not() {
        let rules = Rules {
            not_ours: true,
            max_event_age: Some(chrono::Duration::days(30)),
        };
        let mut old = owner(Some("A"));
        old.at = "2026-10-01T00:00:00Z".into();
        old.time_from = TimeSource::Evidence;
        let mut d = draft(ReplyDecision::Ack, vec![old.clone(), old.clone()]);
        apply(&mut d, now(), rules);
        assert_eq!(d.reply, ReplyDecision::TooOld);
        // One recent event: the ordinary reply.
        let mut recent = old.clone();
        recent.at = "2026-11-30T00:00:00Z".into();
        let mut d = draft(ReplyDecision::Ack, vec![old.clone(), recent]);
        apply(&mut d, now(), rules);
        assert_eq!(d.reply, ReplyDecision::Ack);
        // A time that is only the arrival says nothing of age.
        let mut undated = old.clone();
        undated.time_from = TimeSource::Received;
        let mut d = draft(ReplyDecision::Ack, vec![old.clone(), undated]);
        apply(&mut d, now(), rules);
        assert_eq!(d.reply, ReplyDecision::Ack);
        // Not ours comes first; off, the age still speaks.
        let mut theirs = old.clone();
        theirs.customer = None;
        let mut d = draft(ReplyDecision::Ack, vec![theirs.clone()]);
        apply(&mut d, now(), rules);
        assert_eq!(d.reply, ReplyDecision::NotOurs);
        let mut d = draft(ReplyDecision::Ack, vec![theirs]);
        apply(
            &mut d,
            now(),
            Rules {
                not_ours: false,
                ..rules
            },
        );
        assert_eq!(d.reply, ReplyDecision::TooOld);
    }
}

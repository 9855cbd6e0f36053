//! The "not on our network" reply: a report none of whose offenders is
//! ours gets it in place of the ack or the request for evidence.
//!
//! In: a routed draft. Out: the same draft with its reply turned, when the
//! rule applies. Pure. Only a reply already decided (or waiting for the
//! sender checks) is turned: who is answered at all stays the reply
//! decision's call, so an unauthenticated reporter still hears nothing.

use crate::model::owner::Ownership;
use crate::model::{ReplyDecision, ReplyKind, ReportDraft};

/// Turns `draft`'s reply into "not on our network" when every offender and
/// host it names was looked up and none is ours. A follow-up is left
/// alone: it adds to a report we answered.
pub fn apply(draft: &mut ReportDraft) {
    if Ownership::of(&draft.owners) != Ownership::NotOurs || draft.follow_up.is_some() {
        return;
    }
    match draft.reply {
        ReplyDecision::Ack | ReplyDecision::NeedsInfo => {
            draft.reply = ReplyDecision::NotOurs;
            draft.reply_reason = None;
        }
        ReplyDecision::Pending => {
            if let Some(pending) = &mut draft.pending_reply {
                pending.kind = ReplyKind::NotOurs;
            }
        }
        ReplyDecision::Suppressed | ReplyDecision::None | ReplyDecision::NotOurs => {}
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

    fn draft(reply: ReplyDecision, owners: Vec<Owner>) -> ReportDraft {
        let mut d = ReportDraft::empty();
        d.reply = reply;
        d.owners = owners;
        d
    }

    #[test]
    fn only_a_decided_reply_about_none_of_ours_turns() {
        let mut d = draft(ReplyDecision::Ack, vec![owner(None), owner(None)]);
        apply(&mut d);
        assert_eq!(d.reply, ReplyDecision::NotOurs);
        let mut d = draft(ReplyDecision::NeedsInfo, vec![owner(None)]);
        apply(&mut d);
        assert_eq!(d.reply, ReplyDecision::NotOurs);
        // One of ours: the ordinary reply.
        let mut d = draft(ReplyDecision::Ack, vec![owner(None), owner(Some("A"))]);
        apply(&mut d);
        assert_eq!(d.reply, ReplyDecision::Ack);
        // Nothing looked up (no owners known, or no offender): unchanged.
        let mut d = draft(ReplyDecision::NeedsInfo, vec![]);
        apply(&mut d);
        assert_eq!(d.reply, ReplyDecision::NeedsInfo);
        // Not answered at all: still not answered.
        let mut d = draft(ReplyDecision::Suppressed, vec![owner(None)]);
        apply(&mut d);
        assert_eq!(d.reply, ReplyDecision::Suppressed);
    }

    #[test]
    fn a_reply_waiting_for_the_checks_waits_as_not_ours() {
        let mut d = draft(ReplyDecision::Pending, vec![owner(None)]);
        d.pending_reply = Some(PendingReply {
            kind: ReplyKind::Ack,
            plan: ReplyPlan {
                recipient: "r@example.net".into(),
                hold: true,
                recipient_key: String::new(),
                recipient_domain: String::new(),
                limits: crate::reply::limits::Limits {
                    per_recipient: 1,
                    per_domain: 1,
                    global: 1,
                },
                domain: "example.org".into(),
            },
        });
        apply(&mut d);
        assert_eq!(d.reply, ReplyDecision::Pending);
        assert_eq!(d.pending_reply.unwrap().kind, ReplyKind::NotOurs);
    }
}

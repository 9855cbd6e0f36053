//! The reply of a report stored before its sender checks ended.
//!
//! In: the reply that waits ([`PendingReply`]), the reporter, the results
//! of the checks and whether waiting is over. Out: [`Settled`]: go on
//! waiting (the checks failed for now: DNS), or the decision, with the reply
//! to queue. Pure. A reply is never sent on checks that did not end: a
//! temporary failure keeps it waiting, and giving up suppresses it with the
//! reason said.

use super::{checks_suppression, Suppression};
use crate::config::ReplyConfig;
use crate::model::auth::AuthResults;
use crate::model::{PendingReply, ReplyDecision, ReplyKind};

/// The reason a report shows while its checks run.
pub const WAITING: &str = "waiting for the sender checks";

/// What becomes of a waiting reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The checks failed for now (a lookup timed out, the nameservers are
    /// unreachable): the reply keeps waiting; the reason says why.
    Wait { reason: String },
    /// Decided: the report's decision and reason, and the reply to queue.
    Decided {
        decision: ReplyDecision,
        reason: Option<String>,
        queue: Option<PendingReply>,
    },
}

/// Whether what waits for the checks (a reply, a follow-up's merge) goes
/// on waiting: they failed for now, and the desk has not given up.
pub fn keeps_waiting(auth: &AuthResults, give_up: bool) -> bool {
    auth.is_temporary() && !give_up
}

/// The reason a report shows while its checks fail for now.
pub fn waiting_reason(auth: &AuthResults) -> String {
    format!(
        "dns unavailable: the sender checks failed for now ({}); trying again",
        auth.summary
    )
}

/// Decides `pending` now that the checks gave `auth`. `give_up`: the checks
/// have failed for as long as the desk waits (`auth.give_up_after_seconds`):
/// a temporary failure then counts as unauthenticated.
pub fn settle(
    pending: &PendingReply,
    reporter: Option<&str>,
    auth: &AuthResults,
    config: &ReplyConfig,
    give_up: bool,
) -> Settled {
    if keeps_waiting(auth, give_up) {
        return Settled::Wait {
            reason: waiting_reason(auth),
        };
    }
    let suppressed = match reporter {
        Some(reporter) => checks_suppression(reporter, Some(auth), config),
        None => Some(Suppression::NoReporter),
    };
    match suppressed {
        Some(reason) => Settled::Decided {
            decision: ReplyDecision::Suppressed,
            reason: Some(
                if auth.is_temporary() {
                    Suppression::GaveUpWaiting(Box::new(reason))
                } else {
                    reason
                }
                .to_string(),
            ),
            queue: None,
        },
        None => Settled::Decided {
            decision: match pending.kind {
                ReplyKind::NeedsInfo => ReplyDecision::NeedsInfo,
                ReplyKind::NotOurs => ReplyDecision::NotOurs,
                ReplyKind::TooOld => ReplyDecision::TooOld,
                ReplyKind::Ack | ReplyKind::Concluded => ReplyDecision::Ack,
                // A notice goes to a customer about a case: never a report's
                // pending reply.
                ReplyKind::Notice
                | ReplyKind::Digest
                | ReplyKind::Reminder
                | ReplyKind::Escalation
                | ReplyKind::CaseClosed => ReplyDecision::Ack,
            },
            reason: None,
            queue: Some(pending.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::auth::Verdict;
    use crate::model::ReplyPlan;

    fn pending(kind: ReplyKind) -> PendingReply {
        PendingReply {
            kind,
            plan: ReplyPlan {
                recipient: "soc@cert.example.org".into(),
                hold: false,
                recipient_key: "soc@cert.example.org".into(),
                recipient_domain: "cert.example.org".into(),
                limits: crate::reply::limits::Limits {
                    per_recipient: 5,
                    per_domain: 20,
                    global: 200,
                },
                domain: "isp.example".into(),
            },
        }
    }

    fn auth(verdict: Verdict, authenticated: bool) -> AuthResults {
        let mut a = AuthResults::unchecked(verdict, Some("cert.example.org".into()));
        a.authenticated = authenticated;
        a
    }

    #[test]
    fn an_authenticated_reporter_gets_the_waiting_reply() {
        let settled = settle(
            &pending(ReplyKind::NeedsInfo),
            Some("soc@cert.example.org"),
            &auth(Verdict::Pass, true),
            &ReplyConfig::default(),
            false,
        );
        assert_eq!(
            settled,
            Settled::Decided {
                decision: ReplyDecision::NeedsInfo,
                reason: None,
                queue: Some(pending(ReplyKind::NeedsInfo)),
            }
        );
    }

    #[test]
    fn a_failed_check_is_suppressed_and_a_temporary_one_waits() {
        let config = ReplyConfig::default();
        let p = pending(ReplyKind::Ack);
        let reporter = Some("soc@cert.example.org");
        let failed = settle(&p, reporter, &auth(Verdict::Fail, false), &config, false);
        assert!(matches!(
            failed,
            Settled::Decided {
                decision: ReplyDecision::Suppressed,
                queue: None,
                ..
            }
        ));
        let temporary = settle(
            &p,
            reporter,
            &auth(Verdict::TempError, false),
            &config,
            false,
        );
        assert!(
            matches!(&temporary, Settled::Wait { reason } if reason.starts_with("dns unavailable")),
            "{temporary:?}"
        );
        // Given up: never sent unauthenticated, and the reason says so.
        let given_up = settle(
            &p,
            reporter,
            &auth(Verdict::TempError, false),
            &config,
            true,
        );
        assert!(matches!(
            given_up,
            Settled::Decided { decision: ReplyDecision::Suppressed, queue: None, reason: Some(r) }
                if r.contains("stopped waiting")
        ));
    }

    #[test]
    fn the_authenticated_domain_must_be_the_reporters() {
        let settled = settle(
            &pending(ReplyKind::Ack),
            Some("alice@victim.example.net"),
            &auth(Verdict::Pass, true),
            &ReplyConfig::default(),
            false,
        );
        assert!(matches!(
            settled,
            Settled::Decided {
                decision: ReplyDecision::Suppressed,
                ..
            }
        ));
    }
}

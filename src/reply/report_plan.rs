//! What storing a report does besides writing its row, decided before the
//! store writes anything: whether a follow-up joins the report it names
//! (now, or once the sender checks end), which case the report goes in,
//! which reply is queued, and what the reply decision becomes when the
//! limits refuse that reply or a merge completes the original.
//!
//! In: the draft and what the store read for it ([`ClaimRead`]). Out: a
//! [`ReportPlan`] (for a report stored now) or a [`SettlePlan`] (for one
//! whose sender checks just ended), which the store carries out in the
//! report's transaction. Pure.

use super::follow_up::{plan_merge, Merge, MergePlan, OriginalReport};
use super::settle::{keeps_waiting, settle, waiting_reason, Settled};
use crate::classify::case::CaseKey;
use crate::config::ReplyConfig;
use crate::model::auth::AuthResults;
use crate::model::reply::Suppression;
use crate::model::{PendingReply, ReplyDecision, ReplyKind, ReplyPlan, ReportDraft, ReportId};

/// What the store read for a follow-up: the report it names (`None`: no
/// such report, or one merged elsewhere) and whether it carried that
/// report's valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRead {
    pub original: Option<OriginalReport>,
    pub has_token: bool,
}

/// What becomes of a message that says it follows up a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUpStep {
    /// It names no report: a report like any other.
    NotOne,
    /// It joins only with its sender authenticated, and the checks are
    /// still to run: the draft is kept until they end.
    Wait,
    /// It stays a report of its own; the event (on it) says why.
    Refused { event: String },
    /// It joins the original: the original takes its evidence, and the
    /// follow-up's own reply is suppressed.
    Merge(Box<Merge>),
}

impl FollowUpStep {
    /// Decides for follow-up `id` (its draft `draft`), from what was read.
    /// `waits`: the sender checks have not run yet, so a claim without the
    /// token waits for them.
    fn decide(id: ReportId, draft: &ReportDraft, read: Option<&ClaimRead>, waits: bool) -> Self {
        let Some(read) = read.filter(|_| draft.follow_up.is_some()) else {
            return FollowUpStep::NotOne;
        };
        if waits && !read.has_token {
            return FollowUpStep::Wait;
        }
        match plan_merge(read.original.as_ref(), id.0, draft, read.has_token) {
            None => FollowUpStep::NotOne,
            Some(MergePlan::Refused { event }) => FollowUpStep::Refused { event },
            Some(MergePlan::Merge(merge)) => FollowUpStep::Merge(merge),
        }
    }

    /// The report's cases, unless it joined another report or waits to.
    fn cases(&self, draft: &ReportDraft, received_at: &str) -> Vec<CaseKey> {
        match self {
            FollowUpStep::NotOne | FollowUpStep::Refused { .. } => {
                crate::classify::case::keys(draft, received_at)
            }
            FollowUpStep::Wait | FollowUpStep::Merge(_) => Vec::new(),
        }
    }

    /// The follow-up's own reply once it joined, or the merge's ack.
    fn merged(&self, id: ReportId) -> Option<(ReplyUpdate, Option<QueueReply>)> {
        let FollowUpStep::Merge(merge) = self else {
            return None;
        };
        let own = ReplyUpdate::with_event(
            id,
            ReplyDecision::Suppressed,
            Some(merge.follow_up_reason.clone()),
        );
        let original = ReportId(merge.original);
        let ack = merge.ack.clone().map(|plan| QueueReply {
            report: original,
            kind: ReplyKind::Ack,
            plan,
            note: Some(super::FOLLOW_UP_NOTE),
            // The original was waiting for information and now has it.
            queued: Some(ReplyUpdate::quiet(original, ReplyDecision::Ack, None)),
            refusal_suppresses: false,
        });
        Some((own, ack))
    }
}

/// A report's reply decision as it is written, and the history line that
/// says so (`None` when another step already wrote one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyUpdate {
    pub report: ReportId,
    pub decision: ReplyDecision,
    pub reason: Option<String>,
    pub event: Option<String>,
}

impl ReplyUpdate {
    fn with_event(report: ReportId, decision: ReplyDecision, reason: Option<String>) -> Self {
        ReplyUpdate {
            report,
            event: Some(decision.event(reason.as_deref())),
            decision,
            reason,
        }
    }

    fn quiet(report: ReportId, decision: ReplyDecision, reason: Option<String>) -> Self {
        ReplyUpdate {
            report,
            decision,
            reason,
            event: None,
        }
    }
}

/// A reply to queue (the rate limits may still refuse it) and what either
/// answer changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueReply {
    pub report: ReportId,
    pub kind: ReplyKind,
    pub plan: ReplyPlan,
    /// The outbox row's note (the ack of a merge that completed a report).
    pub note: Option<&'static str>,
    /// What the report's reply becomes once the reply is queued (`None`:
    /// it stays as stored).
    pub queued: Option<ReplyUpdate>,
    /// A refusal suppresses the report's reply, with the refusal as reason.
    pub refusal_suppresses: bool,
}

impl QueueReply {
    /// What the report's reply becomes after the queue answered
    /// (`Err(reason)`: the limits refused it).
    pub fn after(&self, answer: Result<(), Suppression>) -> Option<ReplyUpdate> {
        match answer {
            Ok(()) => self.queued.clone(),
            Err(reason) if self.refusal_suppresses => Some(ReplyUpdate {
                report: self.report,
                decision: ReplyDecision::Suppressed,
                event: Some(super::queue::suppressed_event(&reason)),
                reason: Some(reason.to_string()),
            }),
            Err(_) => None,
        }
    }
}

/// What is done about a report's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyStep {
    /// Queue a reply.
    Queue(QueueReply),
    /// Write the decision (and its event).
    Update(ReplyUpdate),
    /// The decision stands as stored; only its history line is written.
    Record { report: ReportId, event: String },
}

/// What storing a new report does, after its row and evidence are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPlan {
    pub follow_up: FollowUpStep,
    pub cases: Vec<CaseKey>,
    pub reply: ReplyStep,
    /// The ack a merge queues to the original report's reporter.
    pub merge_ack: Option<QueueReply>,
}

/// The cases of a report processed again whose offenders' customers
/// changed (`reprocess` after an import): those of its owners now. A
/// follow-up merged into another report is never processed again.
pub fn for_rerouted_report(draft: &ReportDraft, received_at: &str) -> Vec<CaseKey> {
    crate::classify::case::keys(draft, received_at)
}

/// The plan for new report `id`, stored from `draft` (the message arrived
/// at `received_at`); `claim`: what was read of the report it follows up.
pub fn for_new_report(
    id: ReportId,
    draft: &ReportDraft,
    received_at: &str,
    claim: Option<&ClaimRead>,
) -> ReportPlan {
    let follow_up = FollowUpStep::decide(id, draft, claim, draft.checks_pending);
    // History is looked up, not acted on: no case, so no notice.
    let cases = if draft.history {
        Vec::new()
    } else {
        follow_up.cases(draft, received_at)
    };
    let (reply, merge_ack) = match follow_up.merged(id) {
        Some((own, ack)) => (ReplyStep::Update(own), ack),
        None => match (&draft.reply_plan, ReplyKind::for_decision(draft.reply)) {
            (Some(plan), Some(kind)) => (
                ReplyStep::Queue(QueueReply {
                    report: id,
                    kind,
                    plan: plan.clone(),
                    note: None,
                    queued: None,
                    refusal_suppresses: true,
                }),
                None,
            ),
            _ => (
                ReplyStep::Record {
                    report: id,
                    event: draft.reply_event(),
                },
                None,
            ),
        },
    };
    ReportPlan {
        follow_up,
        cases,
        reply,
        merge_ack,
    }
}

/// What the store read of a report whose sender checks ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub id: ReportId,
    pub reply: ReplyDecision,
    pub reason: Option<String>,
    pub pending_reply: Option<PendingReply>,
    /// A follow-up's draft, kept until the checks end.
    pub follow_up: Option<ReportDraft>,
    pub reporter: Option<String>,
    pub received_at: String,
}

/// What becomes of a report whose sender checks ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettlePlan {
    /// The checks failed for now: try again later; the reason is shown.
    Wait { reason: String },
    /// The results are recorded, then the steps carried out.
    Record(Box<Settle>),
}

/// The steps once the checks are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    pub follow_up: FollowUpStep,
    pub cases: Vec<CaseKey>,
    /// `None`: the reply did not wait for the checks.
    pub reply: Option<ReplyStep>,
    pub merge_ack: Option<QueueReply>,
}

/// The plan for `waiting` now that its checks gave `auth` (`give_up`: the
/// desk stopped waiting for checks that keep failing); `claim`: what was
/// read of the report its follow-up names.
///
/// # Errors
/// A reply marked as waiting without the reply that waits (a corrupt row).
pub fn for_settled_checks(
    waiting: &Waiting,
    auth: &AuthResults,
    give_up: bool,
    config: &ReplyConfig,
    claim: Option<&ClaimRead>,
) -> Result<SettlePlan, &'static str> {
    let reply_waits = waiting.reply == ReplyDecision::Pending;
    if (reply_waits || waiting.follow_up.is_some()) && keeps_waiting(auth, give_up) {
        return Ok(SettlePlan::Wait {
            reason: waiting_reason(auth),
        });
    }
    let (follow_up, cases) = match &waiting.follow_up {
        Some(draft) => {
            let mut draft = draft.clone();
            draft.auth = Some(auth.clone());
            let step = FollowUpStep::decide(waiting.id, &draft, claim, false);
            let cases = step.cases(&draft, &waiting.received_at);
            (step, cases)
        }
        None => (FollowUpStep::NotOne, Vec::new()),
    };
    if let Some((own, ack)) = follow_up.merged(waiting.id) {
        // Joined: the reply that waited is not sent.
        return Ok(SettlePlan::Record(Box::new(Settle {
            follow_up,
            cases,
            reply: Some(ReplyStep::Update(own)),
            merge_ack: ack,
        })));
    }
    let reply = if reply_waits {
        let pending = waiting
            .pending_reply
            .as_ref()
            .ok_or("a pending reply without its plan")?;
        Some(settled_reply(waiting, pending, auth, give_up, config))
    } else {
        None
    };
    Ok(SettlePlan::Record(Box::new(Settle {
        follow_up,
        cases,
        reply,
        merge_ack: None,
    })))
}

fn settled_reply(
    waiting: &Waiting,
    pending: &PendingReply,
    auth: &AuthResults,
    give_up: bool,
    config: &ReplyConfig,
) -> ReplyStep {
    let settled = settle(pending, waiting.reporter.as_deref(), auth, config, give_up);
    let Settled::Decided {
        decision,
        reason,
        queue,
    } = settled
    else {
        // Not reached: `keeps_waiting` is the same rule, asked above; a
        // reply that would wait is suppressed rather than left pending.
        return ReplyStep::Update(ReplyUpdate::with_event(
            waiting.id,
            ReplyDecision::Suppressed,
            Some(waiting_reason(auth)),
        ));
    };
    match queue {
        Some(p) => ReplyStep::Queue(QueueReply {
            report: waiting.id,
            kind: p.kind,
            plan: p.plan,
            note: None,
            queued: Some(ReplyUpdate::quiet(waiting.id, decision, reason)),
            refusal_suppresses: true,
        }),
        None => ReplyStep::Update(ReplyUpdate::with_event(waiting.id, decision, reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::auth::Verdict;
    use crate::model::{AbuseType, Missing, ReportStatus};

    fn plan() -> ReplyPlan {
        ReplyPlan {
            recipient: "reporter@example.net".into(),
            recipient_key: "reporter@example.net".into(),
            recipient_domain: "example.net".into(),
            hold: false,
            limits: crate::model::reply::Limits {
                per_recipient: 5,
                per_domain: 50,
                global: 500,
            },
            domain: "abuse.example".into(),
        }
    }

    fn auth(domain: &str, verdict: Verdict) -> AuthResults {
        AuthResults {
            spf: verdict,
            dkim: verdict,
            dmarc: verdict,
            aligned: verdict == Verdict::Pass,
            authenticated: verdict == Verdict::Pass,
            domain: Some(domain.into()),
            accepts_mail: Some(true),
            summary: format!("spf={}", verdict.as_str()),
        }
    }

    fn report() -> ReportDraft {
        let mut d = ReportDraft::empty();
        d.abuse_type = AbuseType::NetworkActivity;
        d.sources = vec!["192.0.2.9".parse().unwrap()];
        d.reporter = Some("reporter@example.net".into());
        d.reply = ReplyDecision::Ack;
        d.reply_plan = Some(plan());
        d
    }

    fn follow_up() -> ReportDraft {
        let mut d = report();
        d.follow_up = Some(crate::model::reply::Claim {
            id: 3,
            token: Some("t".into()),
        });
        d.follow_up_reply = Some(plan());
        d
    }

    fn original(reply: ReplyDecision) -> OriginalReport {
        OriginalReport {
            id: 3,
            abuse_type: AbuseType::NetworkActivity,
            subtype: None,
            missing: if reply == ReplyDecision::NeedsInfo {
                vec![Missing::NetworkLogs]
            } else {
                vec![]
            },
            reply,
            status: ReportStatus::Open,
            ips: vec![],
            urls: vec![],
            reporter: Some("reporter@example.net".into()),
            reasons: vec![],
        }
    }

    const AT: &str = "2026-12-03T10:00:00.000000Z";

    #[test]
    fn a_plain_report_gets_its_case_and_queues_its_reply_which_a_refusal_suppresses() {
        let p = for_new_report(ReportId(7), &report(), AT, None);
        assert_eq!(p.follow_up, FollowUpStep::NotOne);
        assert!(matches!(
            &p.cases[..],
            [CaseKey { group: crate::classify::case::Group::Network { network, .. }, .. }]
                if network == "192.0.2.0/24"
        ));
        let ReplyStep::Queue(q) = &p.reply else {
            panic!("{:?}", p.reply)
        };
        assert_eq!((q.report, q.kind), (ReportId(7), ReplyKind::Ack));
        assert_eq!(q.after(Ok(())), None);
        let limit = Suppression::RateLimit {
            scope: crate::model::reply::LimitScope::Recipient,
            count: 5,
        };
        let refused = q.after(Err(limit)).unwrap();
        assert_eq!(refused.decision, ReplyDecision::Suppressed);
        let text = "rate limit: 5 replies to this address in the last hour";
        assert_eq!(refused.reason.as_deref(), Some(text));
        assert_eq!(refused.event, Some(format!("suppressed: {text}")));
        assert_eq!(p.merge_ack, None);
    }

    #[test]
    fn a_report_without_a_reply_to_queue_only_records_its_decision() {
        let mut d = report();
        d.reply = ReplyDecision::Suppressed;
        d.reply_reason = Some("automated sender".into());
        d.reply_plan = None;
        let p = for_new_report(ReportId(7), &d, AT, None);
        assert_eq!(
            p.reply,
            ReplyStep::Record {
                report: ReportId(7),
                event: "suppressed: automated sender".into()
            }
        );
    }

    #[test]
    fn a_follow_up_with_the_token_merges_suppresses_its_own_reply_and_takes_no_case() {
        let read = ClaimRead {
            original: Some(original(ReplyDecision::Ack)),
            has_token: true,
        };
        let p = for_new_report(ReportId(9), &follow_up(), AT, Some(&read));
        assert!(matches!(p.follow_up, FollowUpStep::Merge(_)), "{p:?}");
        assert_eq!(p.cases, vec![]);
        let ReplyStep::Update(own) = &p.reply else {
            panic!("{:?}", p.reply)
        };
        assert_eq!(own.report, ReportId(9));
        assert_eq!(own.decision, ReplyDecision::Suppressed);
        assert_eq!(
            own.reason.as_deref(),
            Some("follow-up merged into report 3")
        );
        // The original had its ack already: nothing to queue.
        assert_eq!(p.merge_ack, None);
    }

    #[test]
    fn a_merge_that_completes_the_original_queues_its_ack_and_makes_its_reply_ack() {
        let read = ClaimRead {
            original: Some(original(ReplyDecision::NeedsInfo)),
            has_token: true,
        };
        let p = for_new_report(ReportId(9), &follow_up(), AT, Some(&read));
        let ack = p.merge_ack.expect("an ack to the original's reporter");
        assert_eq!((ack.report, ack.kind), (ReportId(3), ReplyKind::Ack));
        assert_eq!(ack.note, Some(super::super::FOLLOW_UP_NOTE));
        let queued = ack.after(Ok(())).unwrap();
        assert_eq!(
            (queued.report, queued.decision),
            (ReportId(3), ReplyDecision::Ack)
        );
        // Refused by the limits, the original stays as it was.
        assert_eq!(ack.after(Err(Suppression::NoReporter)), None);
    }

    #[test]
    fn a_refused_follow_up_stays_a_report_with_its_case_and_its_reply() {
        let read = ClaimRead {
            original: Some(original(ReplyDecision::Ack)),
            has_token: false,
        };
        let mut d = follow_up();
        d.reporter = Some("someone@else.example".into());
        let p = for_new_report(ReportId(9), &d, AT, Some(&read));
        let FollowUpStep::Refused { event } = &p.follow_up else {
            panic!("{:?}", p.follow_up)
        };
        assert!(event.starts_with("not merged into report 3"), "{event}");
        assert_eq!(p.cases.len(), 1);
        assert!(matches!(p.reply, ReplyStep::Queue(_)));
    }

    #[test]
    fn a_follow_up_without_the_token_waits_for_the_checks_and_then_joins() {
        let read = ClaimRead {
            original: Some(original(ReplyDecision::Ack)),
            has_token: false,
        };
        let mut d = follow_up();
        d.checks_pending = true;
        d.reply = ReplyDecision::Pending;
        d.reply_plan = None;
        d.pending_reply = Some(PendingReply {
            kind: ReplyKind::Ack,
            plan: plan(),
        });
        let p = for_new_report(ReportId(9), &d, AT, Some(&read));
        assert_eq!(
            (p.follow_up.clone(), p.cases.clone()),
            (FollowUpStep::Wait, vec![])
        );

        let waiting = Waiting {
            id: ReportId(9),
            reply: ReplyDecision::Pending,
            reason: None,
            pending_reply: d.pending_reply.clone(),
            follow_up: Some(d.for_later()),
            reporter: d.reporter.clone(),
            received_at: AT.into(),
        };
        let config = ReplyConfig::default();
        // The checks failed for now: it waits on.
        let temporary = auth("example.net", Verdict::TempError);
        let plan = for_settled_checks(&waiting, &temporary, false, &config, Some(&read));
        assert!(matches!(plan, Ok(SettlePlan::Wait { .. })), "{plan:?}");
        // The reporter's domain authenticated: it joins, and the reply
        // that waited is suppressed, not sent.
        let pass = auth("example.net", Verdict::Pass);
        let Ok(SettlePlan::Record(s)) =
            for_settled_checks(&waiting, &pass, false, &config, Some(&read))
        else {
            panic!()
        };
        assert!(matches!(s.follow_up, FollowUpStep::Merge(_)));
        assert_eq!(s.cases, vec![]);
        let Some(ReplyStep::Update(own)) = &s.reply else {
            panic!("{:?}", s.reply)
        };
        assert_eq!(own.decision, ReplyDecision::Suppressed);
        // Another domain authenticated: refused, and the reply is decided.
        let other = auth("else.example", Verdict::Pass);
        let Ok(SettlePlan::Record(s)) =
            for_settled_checks(&waiting, &other, false, &config, Some(&read))
        else {
            panic!()
        };
        assert!(matches!(s.follow_up, FollowUpStep::Refused { .. }));
        assert_eq!(s.cases.len(), 1);
        assert!(s.reply.is_some());
    }

    #[test]
    fn a_pending_reply_without_its_plan_is_corrupt() {
        let waiting = Waiting {
            id: ReportId(9),
            reply: ReplyDecision::Pending,
            reason: None,
            pending_reply: None,
            follow_up: None,
            reporter: None,
            received_at: AT.into(),
        };
        let pass = auth("example.net", Verdict::Pass);
        assert!(for_settled_checks(&waiting, &pass, false, &ReplyConfig::default(), None).is_err());
    }
}

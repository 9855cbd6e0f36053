//! Resolving a report: it is closed once, and its reporter, if we answered
//! them before, is told it is concluded.
//!
//! In: the report as the store read it. Out: what to do. Pure.

use crate::model::{ReplyDecision, ReplyKind, ReplyPlan, ReportStatus};

/// What the store read of the report being resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub reply: ReplyDecision,
    pub reporter: Option<String>,
    pub status: ReportStatus,
    pub resolved_at: Option<String>,
}

/// What resolving does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    NoSuchReport,
    /// Resolved before, at `at`: nothing changes, nothing is sent again.
    AlreadyResolved {
        at: String,
    },
    /// Close it, and queue the concluded reply to this plan's recipient.
    Resolve {
        concluded: Option<ReplyPlan>,
    },
}

/// The plan for resolving `current`; `replies` is how replies are queued
/// (`None` when replies are off).
pub fn plan(current: Option<&Current>, replies: Option<&ReplyPlan>) -> Plan {
    let Some(current) = current else {
        return Plan::NoSuchReport;
    };
    if current.status == ReportStatus::Resolved {
        // The reporter was told once; a second resolve changes nothing.
        return Plan::AlreadyResolved {
            at: current.resolved_at.clone().unwrap_or_default(),
        };
    }
    // Only a reporter we answered (ack or needs_info) hears the end; one
    // told "not on our network" has heard it.
    let answered = matches!(
        ReplyKind::for_decision(current.reply),
        Some(ReplyKind::Ack | ReplyKind::NeedsInfo)
    );
    let concluded = match (replies, &current.reporter) {
        (Some(plan), Some(reporter)) if answered => Some(super::limits::plan_for(plan, reporter)),
        _ => None,
    };
    Plan::Resolve { concluded }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(reply: ReplyDecision, status: ReportStatus) -> Current {
        Current {
            reply,
            reporter: Some("r@example.net".into()),
            status,
            resolved_at: Some("2026-12-01T00:00:00Z".into()),
        }
    }

    fn replies() -> ReplyPlan {
        ReplyPlan::for_tests("")
    }

    #[test]
    fn only_an_answered_reporter_hears_the_end_and_only_once() {
        let answered = current(ReplyDecision::NeedsInfo, ReportStatus::Open);
        match plan(Some(&answered), Some(&replies())) {
            Plan::Resolve { concluded: Some(p) } => assert_eq!(p.recipient, "r@example.net"),
            other => panic!("{other:?}"),
        }
        let silent = current(ReplyDecision::Suppressed, ReportStatus::Open);
        assert_eq!(
            plan(Some(&silent), Some(&replies())),
            Plan::Resolve { concluded: None }
        );
        assert_eq!(
            plan(Some(&answered), None),
            Plan::Resolve { concluded: None }
        );
        let closed = current(ReplyDecision::Ack, ReportStatus::Resolved);
        assert!(matches!(
            plan(Some(&closed), Some(&replies())),
            Plan::AlreadyResolved { .. }
        ));
        assert_eq!(plan(None, None), Plan::NoSuchReport);
    }
}

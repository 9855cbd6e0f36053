//! Whether a message that says it follows up a report may join it.
//!
//! In: what the store read of the original report and what the new message
//! claims. Out: yes, or why not. Pure. A stranger must not be able to add
//! evidence to someone else's report, change its type, or make us mail its
//! reporter: report ids and subject lines are easy to guess, so a follow-up
//! joins only with the report's token (sent only to its reporter, in our
//! Message-ID and subject tag) or from the original reporter's address,
//! authenticated.

use super::limits;
use crate::model::{
    AbuseType, Missing, NetworkSubtype, Reason, ReplyDecision, ReplyPlan, ReportDraft,
    ReportStatus, RsitPair,
};

/// The original report, as stored.
pub struct Original<'a> {
    pub id: i64,
    pub reporter: Option<&'a str>,
    pub resolved: bool,
}

/// The message that claims to follow it up.
pub struct Claimant<'a> {
    pub id: i64,
    pub reporter: Option<&'a str>,
    /// The domain the sender checks authenticated (`None`: none was).
    pub authenticated_domain: Option<&'a str>,
    /// It carried the report's valid token.
    pub has_token: bool,
}

/// `Err(reason)` when the follow-up stays a report of its own.
pub fn may_merge(original: &Original<'_>, claimant: &Claimant<'_>) -> Result<(), &'static str> {
    if original.id >= claimant.id {
        return Err("a message cannot follow up itself or a later report");
    }
    if original.resolved {
        return Err("the report it follows up is resolved");
    }
    if claimant.has_token {
        return Ok(());
    }
    let same_reporter = match (original.reporter, claimant.reporter) {
        (Some(a), Some(b)) => limits::key(a) == limits::key(b),
        _ => false,
    };
    // The domain the checks authenticated must be the original reporter's
    // organisation's: a message whose From lines the checks and the parser
    // read differently authenticates one domain and names another.
    let authenticated_as_reporter = match (claimant.authenticated_domain, original.reporter) {
        (Some(domain), Some(reporter)) => {
            limits::organisation(domain) == limits::organisation(&limits::domain(reporter))
        }
        _ => false,
    };
    if same_reporter && authenticated_as_reporter {
        Ok(())
    } else {
        Err("no valid report token, and not the report's authenticated reporter")
    }
}

/// Whether reprocessing a message may rewrite its report. Not when the
/// report took in follow-ups or was merged into another
/// (`joined_by_follow_up`): its evidence and completeness come from more
/// than this one message.
pub fn reprocess_rewrites(joined_by_follow_up: bool) -> bool {
    !joined_by_follow_up
}

/// What the store read of the report a follow-up claims to follow up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalReport {
    pub id: i64,
    pub abuse_type: AbuseType,
    pub subtype: Option<NetworkSubtype>,
    pub missing: Vec<Missing>,
    pub reply: ReplyDecision,
    pub status: ReportStatus,
    pub ips: Vec<String>,
    pub urls: Vec<String>,
    pub reporter: Option<String>,
    pub reasons: Vec<Reason>,
}

/// What becomes of a follow-up: the store carries it out in the follow-up
/// report's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergePlan {
    /// It stays a report of its own; the event says why (on the follow-up).
    Refused { event: String },
    /// It joins the original report.
    Merge(Box<Merge>),
}

/// The original report after the merge, and what to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub original: i64,
    pub abuse_type: AbuseType,
    pub subtype: Option<NetworkSubtype>,
    pub rsit: RsitPair,
    pub reasons: Vec<Reason>,
    pub missing: Vec<Missing>,
    /// Both reports' addresses and URLs, sorted, once each.
    pub ips: Vec<String>,
    pub urls: Vec<String>,
    /// Evidence rows the original takes over.
    pub evidence_rows_added: u64,
    /// The event on the original report.
    pub event: String,
    /// The original was waiting for information and now has it all: an
    /// ack to its reporter (its reply decision becomes `ack`).
    pub ack: Option<ReplyPlan>,
    /// The follow-up's own reply decision and reason once merged.
    pub follow_up_reason: String,
}

/// The plan for follow-up `id` (its draft `follow_up`) and the report it
/// claims, as read (`None`: no such report, or one merged elsewhere).
/// `has_token` says whether it carried that report's valid token.
pub fn plan_merge(
    original: Option<&OriginalReport>,
    id: i64,
    follow_up: &ReportDraft,
    has_token: bool,
) -> Option<MergePlan> {
    let original = original?;
    let allowed = may_merge(
        &Original {
            id: original.id,
            reporter: original.reporter.as_deref(),
            resolved: original.status == ReportStatus::Resolved,
        },
        &Claimant {
            id,
            reporter: follow_up.reporter.as_deref(),
            authenticated_domain: follow_up
                .auth
                .as_ref()
                .filter(|a| a.authenticated)
                .and_then(|a| a.domain.as_deref()),
            has_token,
        },
    );
    if let Err(why) = allowed {
        return Some(MergePlan::Refused {
            event: format!("not merged into report {}: {why}", original.id),
        });
    }
    // The report is classified again from the reasons of both messages.
    let (abuse_type, subtype, reasons) =
        crate::classify::reclassify_merged(&original.reasons, &follow_up.reasons).unwrap_or((
            original.abuse_type,
            original.subtype,
            original.reasons.clone(),
        ));
    let missing = crate::classify::merged_missing(
        original.abuse_type,
        abuse_type,
        &original.missing,
        &follow_up.missing_by_type,
    );
    let union = |a: &[String], b: &[String]| -> Vec<String> {
        let all: std::collections::BTreeSet<&String> = a.iter().chain(b).collect();
        all.into_iter().cloned().collect()
    };
    let still = if missing.is_empty() {
        "nothing".to_owned()
    } else {
        Missing::join(&missing, ", ")
    };
    let completes = original.reply == ReplyDecision::NeedsInfo
        && missing.is_empty()
        && original.status == ReportStatus::Open;
    let ack = match (&follow_up.follow_up_reply, &original.reporter) {
        (Some(plan), Some(reporter)) if completes => Some(super::limits::plan_for(plan, reporter)),
        _ => None,
    };
    Some(MergePlan::Merge(Box::new(Merge {
        original: original.id,
        abuse_type,
        subtype,
        rsit: crate::classify::rsit::for_report(abuse_type, subtype, &reasons).into(),
        reasons,
        missing,
        ips: union(&original.ips, &follow_up.ips),
        urls: union(&original.urls, &follow_up.urls),
        evidence_rows_added: follow_up.evidence.len() as u64,
        event: format!("report {id} merged; missing now: {still}"),
        ack,
        follow_up_reason: format!("follow-up merged into report {}", original.id),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_or_the_authenticated_reporter_joins_an_open_earlier_report() {
        let original = Original {
            id: 5,
            reporter: Some("Reporter@example.net"),
            resolved: false,
        };
        let claimant = |reporter, authenticated: Option<&'static str>, has_token| Claimant {
            id: 9,
            reporter: Some(reporter),
            authenticated_domain: authenticated,
            has_token,
        };
        let reporters = Some("example.net");
        assert!(may_merge(&original, &claimant("x@evil.example", None, true)).is_ok());
        assert!(may_merge(
            &original,
            &claimant("reporter@example.net", reporters, false)
        )
        .is_ok());
        // ...a subdomain of the reporter's organisation authenticated too.
        let sub = Some("mail.example.net");
        assert!(may_merge(&original, &claimant("reporter@example.net", sub, false)).is_ok());
        // A forged From of the reporter (case changed or not) is not enough.
        assert!(may_merge(&original, &claimant("REPORTER@example.net", None, false)).is_err());
        assert!(may_merge(&original, &claimant("x@evil.example", reporters, false)).is_err());
        // The header differential: the parser reads the reporter's From,
        // the checks authenticated another domain (a first From line).
        let other = Some("good.example.org");
        assert!(may_merge(&original, &claimant("reporter@example.net", other, false)).is_err());
        let resolved = Original {
            resolved: true,
            ..original
        };
        assert!(may_merge(&resolved, &claimant("x@evil.example", reporters, true)).is_err());
        let itself = Original {
            id: 9,
            reporter: Some("reporter@example.net"),
            resolved: false,
        };
        assert!(may_merge(&itself, &claimant("reporter@example.net", reporters, true)).is_err());
    }

    fn original() -> OriginalReport {
        OriginalReport {
            id: 3,
            abuse_type: AbuseType::NetworkActivity,
            subtype: Some(NetworkSubtype::BruteForce),
            missing: vec![Missing::NetworkLogs],
            reply: ReplyDecision::NeedsInfo,
            status: ReportStatus::Open,
            ips: vec!["192.0.2.9".into()],
            urls: vec![],
            reporter: Some("reporter@example.net".into()),
            reasons: vec![],
        }
    }

    fn follow_up() -> ReportDraft {
        let mut d = ReportDraft::empty();
        d.reporter = Some("someone@else.example".into());
        d.ips = vec!["192.0.2.9".into(), "192.0.2.10".into()];
        d.missing_by_type = vec![(AbuseType::NetworkActivity, vec![])];
        d.follow_up_reply = Some(ReplyPlan {
            recipient: "someone@else.example".into(),
            hold: false,
            recipient_key: "someone@else.example".into(),
            recipient_domain: "else.example".into(),
            limits: limits::Limits {
                per_recipient: 5,
                per_domain: 20,
                global: 200,
            },
            domain: "abuse.example".into(),
        });
        d
    }

    #[test]
    fn a_follow_up_with_the_token_completes_the_report_and_its_reporter_gets_the_ack() {
        let plan = plan_merge(Some(&original()), 8, &follow_up(), true).unwrap();
        let MergePlan::Merge(merge) = plan else {
            panic!("{plan:?}")
        };
        assert!(merge.missing.is_empty());
        assert_eq!(merge.ips, ["192.0.2.10", "192.0.2.9"]);
        // The ack goes to the original reporter, not to the follow-up's sender.
        assert_eq!(merge.ack.unwrap().recipient, "reporter@example.net");
        assert_eq!(merge.event, "report 8 merged; missing now: nothing");
        assert_eq!(merge.follow_up_reason, "follow-up merged into report 3");
    }

    #[test]
    fn without_the_token_a_stranger_is_refused_and_nothing_merges() {
        let plan = plan_merge(Some(&original()), 8, &follow_up(), false).unwrap();
        assert!(
            matches!(&plan, MergePlan::Refused { event } if event.starts_with("not merged into report 3")),
            "{plan:?}"
        );
        assert_eq!(plan_merge(None, 8, &follow_up(), true), None);
        // Still missing something: merged, but no ack.
        let mut lacking = follow_up();
        lacking.missing_by_type = vec![(AbuseType::NetworkActivity, vec![Missing::NetworkLogs])];
        let Some(MergePlan::Merge(merge)) = plan_merge(Some(&original()), 8, &lacking, true) else {
            panic!()
        };
        assert_eq!(merge.ack, None);
    }
}

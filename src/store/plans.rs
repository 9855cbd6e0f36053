//! Carries out the plans of [`crate::reply::report_plan`] in the report's
//! transaction: what was read for them in, the writes they ask for out.
//! No decision is taken here.

use super::sql::Sql;
use super::Error;
use crate::model::{HistoryEvent, ReportDraft, ReportId};
use crate::reply::follow_up::Merge;
use crate::reply::report_plan::{ClaimRead, FollowUpStep, QueueReply, ReplyStep, ReplyUpdate};
use crate::sql_params;

/// What a follow-up's plan needs read: the report it names and whether it
/// carried that report's token. `None` when `draft` follows up nothing.
pub(super) fn read_claim(q: &mut dyn Sql, draft: &ReportDraft) -> Result<Option<ClaimRead>, Error> {
    let Some(claim) = &draft.follow_up else {
        return Ok(None);
    };
    Ok(Some(ClaimRead {
        has_token: super::outbox::claim_has_token(q, claim)?,
        original: super::outbox::original_report(q, ReportId(claim.id))?,
    }))
}

/// Carries out a follow-up's step for report `id` (from `draft`).
pub(super) fn follow_up(
    q: &mut dyn Sql,
    id: ReportId,
    step: &FollowUpStep,
    draft: &ReportDraft,
    now: &str,
) -> Result<(), Error> {
    match step {
        FollowUpStep::NotOne => {}
        FollowUpStep::Wait => {
            q.exec(
                "UPDATE reports SET pending_follow_up = ?2 WHERE id = ?1",
                sql_params![id, super::json_text(&draft.for_later())],
            )?;
        }
        FollowUpStep::Refused { event } => {
            super::outbox::event(q, id, now, HistoryEvent::FollowUp, event)?;
        }
        FollowUpStep::Merge(merge) => self::merge(q, id, merge, draft, now)?,
    }
    Ok(())
}

/// Follow-up `id` joins `merge.original`: the original takes its
/// evidence, addresses and URLs, its new type and what is still missing.
fn merge(
    q: &mut dyn Sql,
    id: ReportId,
    merge: &Merge,
    follow_up: &ReportDraft,
    now: &str,
) -> Result<(), Error> {
    let target = ReportId(merge.original);
    q.exec(
        "UPDATE reports SET abuse_type = ?2, subtype = ?3, missing = ?4, ips = ?5, urls = ?6,
             evidence_rows = evidence_rows + ?7, rsit_taxonomy = ?8, rsit_type = ?9,
             reasons = ?10
         WHERE id = ?1",
        sql_params![
            target,
            merge.abuse_type.as_str(),
            merge.subtype.map(crate::model::NetworkSubtype::as_str),
            super::json_list(&merge.missing),
            super::json_list(&merge.ips),
            super::json_list(&merge.urls),
            merge.evidence_rows_added,
            &merge.rsit.taxonomy,
            &merge.rsit.kind,
            super::json_list(&merge.reasons),
        ],
    )?;
    q.exec(
        "UPDATE evidence SET report_id = ?1 WHERE report_id = ?2",
        sql_params![target, id],
    )?;
    super::add_report_ips(q, target, &follow_up.ips)?;
    super::outbox::event(q, target, now, HistoryEvent::FollowUp, &merge.event)?;
    q.exec(
        "UPDATE reports SET follow_up_of = ?2, evidence_rows = 0 WHERE id = ?1",
        sql_params![id, target],
    )?;
    Ok(())
}

/// Carries out a reply step; the decision written, if one was.
pub(super) fn reply(
    q: &mut dyn Sql,
    step: &ReplyStep,
    now: &str,
) -> Result<Option<ReplyUpdate>, Error> {
    match step {
        ReplyStep::Queue(queue) => self::queue(q, queue, now),
        ReplyStep::Update(update) => {
            write_reply(q, update, now)?;
            Ok(Some(update.clone()))
        }
        ReplyStep::Record { report, event } => {
            super::outbox::event(q, *report, now, HistoryEvent::Reply, event)?;
            Ok(None)
        }
    }
}

/// Queues a reply and writes what its answer changes.
pub(super) fn queue(
    q: &mut dyn Sql,
    queue: &QueueReply,
    now: &str,
) -> Result<Option<ReplyUpdate>, Error> {
    let answer = super::outbox::queue(q, queue.report, queue.kind, &queue.plan, queue.note, now)?;
    let update = queue.after(answer.map(|_| ()));
    if let Some(update) = &update {
        write_reply(q, update, now)?;
    }
    Ok(update)
}

fn write_reply(q: &mut dyn Sql, update: &ReplyUpdate, now: &str) -> Result<(), Error> {
    if let Some(event) = &update.event {
        super::outbox::event(q, update.report, now, HistoryEvent::Reply, event)?;
    }
    q.exec(
        "UPDATE reports SET reply = ?2, reply_reason = ?3, pending_reply = NULL WHERE id = ?1",
        sql_params![
            update.report,
            update.decision.as_str(),
            update.reason.clone()
        ],
    )?;
    Ok(())
}

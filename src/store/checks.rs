//! Sender checks that end after their report was stored: the results
//! recorded, and what waited for them (the reply, a follow-up's merge)
//! carried out as [`crate::reply::report_plan::for_settled_checks`] decides.

use super::sql::Sql;
use super::{Db, Error};
use crate::config::ReplyConfig;
use crate::model::auth::AuthResults;
use crate::model::{PendingReply, RawId, RawMessage, ReplyDecision, ReportDraft, ReportId};
use crate::reply::report_plan::{FollowUpStep, SettlePlan, Waiting};
use crate::sql_params;

/// The checks of one report, ended.
#[derive(Debug, Clone)]
pub struct CheckDone {
    pub report: ReportId,
    pub raw: RawId,
    pub auth: AuthResults,
    /// The desk stopped waiting for checks that keep failing
    /// (`auth.give_up_after_seconds`): a temporary failure is final.
    pub give_up: bool,
}

/// What recording one [`CheckDone`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The checks failed for now; they are tried again at the due time.
    Waiting { reason: String },
    /// The results are recorded; the report's reply decision (unchanged
    /// when it did not wait for them).
    Recorded {
        reply: ReplyDecision,
        reason: Option<String>,
        /// A follow-up joined the report it named.
        merged_into: Option<ReportId>,
    },
    /// Nothing waited any more (another node recorded it first).
    Gone,
}

/// A report whose checks are due, with its raw message.
#[derive(Debug, Clone)]
pub struct CheckJob {
    pub report: ReportId,
    pub raw: RawMessage,
}

impl Db {
    /// Records each ended check and decides what waited for it, in one
    /// transaction. `retry_at`: when checks that failed for now are tried again.
    ///
    /// # Errors
    /// Storage errors; then nothing of the batch was recorded.
    pub fn settle_checks(
        &mut self,
        done: &[CheckDone],
        config: &ReplyConfig,
        now: &str,
        retry_at: &str,
    ) -> Result<Vec<Settlement>, Error> {
        self.write(|q| {
            done.iter()
                .map(|d| settle_one(q, d, config, now, retry_at))
                .collect()
        })
    }

    /// Up to `limit` reports whose checks are due at `now` (at most
    /// `max_bytes` of raw messages, at least one), oldest due first,
    /// leaving out `skip` (those in flight).
    ///
    /// # Errors
    /// Storage errors.
    pub fn checks_due(
        &self,
        now: &str,
        limit: usize,
        max_bytes: u64,
        skip: &std::collections::HashSet<ReportId>,
    ) -> Result<Vec<CheckJob>, Error> {
        let due = self.read(|q| {
            q.rows(
                "SELECT id, raw_id FROM reports
                 WHERE checks_due_at IS NOT NULL AND checks_due_at <= ?1
                 ORDER BY checks_due_at LIMIT ?2",
                sql_params![now, limit + skip.len()],
            )?
            .iter()
            .map(|r| Ok((ReportId(r.int(0)?), RawId(r.int(1)?))))
            .collect::<Result<Vec<_>, Error>>()
        })?;
        let mut jobs = Vec::new();
        let mut bytes = 0u64;
        for (report, raw) in due.into_iter().filter(|(r, _)| !skip.contains(r)) {
            if jobs.len() >= limit || (!jobs.is_empty() && bytes >= max_bytes) {
                break;
            }
            if let Some(raw) = self.raw(raw)? {
                bytes += raw.bytes.len() as u64;
                jobs.push(CheckJob { report, raw });
            }
        }
        Ok(jobs)
    }

    /// Reports whose checks have not ended (the `auth: pending` ones).
    ///
    /// # Errors
    /// Storage errors.
    pub fn checks_pending(&self) -> Result<u64, Error> {
        self.read(|q| {
            let row = q.row(
                "SELECT count(*) FROM reports WHERE checks_due_at IS NOT NULL",
                &[],
            )?;
            Ok(row.map_or(Ok(0), |r| r.int(0))?.max(0) as u64)
        })
    }
}

fn settle_one(
    q: &mut dyn Sql,
    done: &CheckDone,
    config: &ReplyConfig,
    now: &str,
    retry_at: &str,
) -> Result<Settlement, Error> {
    let corrupt = |detail: String| Error::Corrupt {
        table: "reports",
        id: done.report.0,
        detail,
    };
    let Some(row) = q.row(
        "SELECT reply, reply_reason, pending_reply, pending_follow_up, reporter, received_at
         FROM reports WHERE id = ?1 AND checks_due_at IS NOT NULL",
        sql_params![done.report],
    )?
    else {
        return Ok(Settlement::Gone);
    };
    let reply_text = row.text(0)?;
    let reply = ReplyDecision::parse(&reply_text)
        .ok_or_else(|| corrupt(format!("unknown reply {reply_text:?}")))?;
    let reason = row.opt_text(1)?;
    let pending: Option<PendingReply> = row
        .opt_text(2)?
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| corrupt(format!("unreadable pending_reply: {e}")))?;
    let follow_up: Option<ReportDraft> = row
        .opt_text(3)?
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| corrupt(format!("unreadable pending_follow_up: {e}")))?;
    let waiting = Waiting {
        id: done.report,
        reply,
        reason,
        pending_reply: pending,
        reporter: row.opt_text(4)?,
        received_at: row.text(5)?,
        follow_up,
    };
    let claim = match &waiting.follow_up {
        Some(draft) => super::plans::read_claim(q, draft)?,
        None => None,
    };
    let plan = crate::reply::report_plan::for_settled_checks(
        &waiting,
        &done.auth,
        done.give_up,
        config,
        claim.as_ref(),
    )
    .map_err(|e| corrupt(e.into()))?;
    let steps = match plan {
        SettlePlan::Wait { reason } => {
            q.exec(
                "UPDATE reports SET checks_due_at = ?2, reply_reason = ?3 WHERE id = ?1",
                sql_params![done.report, retry_at, &reason],
            )?;
            return Ok(Settlement::Waiting { reason });
        }
        SettlePlan::Record(steps) => steps,
    };
    let auth_json = super::json_text(&done.auth);
    q.exec(
        "UPDATE raw_messages SET auth = ?2 WHERE id = ?1 AND auth IS NULL",
        sql_params![done.raw, auth_json.clone()],
    )?;
    q.exec(
        "UPDATE reports SET auth = ?2, checks_due_at = NULL, pending_follow_up = NULL
         WHERE id = ?1",
        sql_params![done.report, auth_json],
    )?;
    if let Some(draft) = &waiting.follow_up {
        super::plans::follow_up(q, done.report, &steps.follow_up, draft, now)?;
    }
    for key in &steps.cases {
        super::cases::assign(q, done.report, key, &waiting.received_at)?;
    }
    if let Some(ack) = &steps.merge_ack {
        super::plans::queue(q, ack, now)?;
    }
    let merged_into = match &steps.follow_up {
        FollowUpStep::Merge(merge) => Some(ReportId(merge.original)),
        _ => None,
    };
    let (reply, reason) = match &steps.reply {
        Some(step) => match super::plans::reply(q, step, now)? {
            Some(update) => (update.decision, update.reason),
            None => (waiting.reply, waiting.reason),
        },
        None => (waiting.reply, waiting.reason),
    };
    Ok(Settlement::Recorded {
        reply,
        reason,
        merged_into,
    })
}

//! The outbox: replies decided in the report's transaction, sent later.
//!
//! States: `held` (no relay configured yet), `pending` (due at
//! `next_attempt_at`), `sent`, `failed` (permanent refusal, or given up),
//! `discarded` (an operator dropped it). Our Message-ID is the idempotency
//! key of a send.

use super::{Db, Error};
use crate::model::{OutboxId, ReplyPlan, ReportId};
use crate::reply::Draft;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

/// One outbox row, as `replies list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: OutboxId,
    pub report_id: ReportId,
    pub kind: crate::model::ReplyKind,
    pub recipient: String,
    pub message_id: String,
    pub state: crate::model::OutboxState,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// Appends to a report's history.
pub(super) fn event(
    tx: &Transaction<'_>,
    report: i64,
    at: &str,
    kind: &str,
    detail: &str,
) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO report_events (report_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![report, at, kind, detail])?;
    Ok(())
}

/// The installation's secret for follow-up tokens (migration 0010).
pub(super) fn secret(tx: &rusqlite::Connection) -> Result<Vec<u8>, Error> {
    Ok(tx
        .prepare_cached("SELECT secret FROM installation WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

impl Db {
    /// The installation's secret (follow-up tokens, export ids).
    pub fn installation_secret(&self) -> Result<Vec<u8>, Error> {
        secret(&self.conn)
    }
}

/// Queues a reply of `kind` for `report` as [`crate::reply::queue::plan`]
/// decides from what is counted here; `Err(reason)` inside `Ok` when it
/// is suppressed (nothing written).
pub(super) fn queue(
    tx: &Transaction<'_>,
    report: i64,
    kind: crate::model::ReplyKind,
    plan: &ReplyPlan,
    note: Option<&str>,
    now: &str,
) -> Result<Result<i64, String>, Error> {
    let since = crate::reply::queue::window_start(now);
    let count = |sql: &str, key: &str| -> Result<u64, Error> {
        Ok(tx
            .prepare_cached(sql)?
            .query_row(params![key, since], |r| r.get::<_, i64>(0))?
            .max(0) as u64)
    };
    let recent = crate::reply::limits::Recent {
        recipient: count(RECENT_TO_RECIPIENT, &plan.recipient_key)?,
        domain: count(RECENT_TO_DOMAIN, &plan.recipient_domain)?,
        global: count(RECENT_IN_ALL, "")?,
    };
    let replies_of_report: i64 = tx
        .prepare_cached(REPLIES_OF_REPORT)?
        .query_row([report], |r| r.get(0))?;
    let secret = secret(tx)?;
    let counted = crate::reply::queue::Counted {
        recent,
        replies_of_report,
        secret: &secret,
    };
    let queued = match crate::reply::queue::plan(report, kind, plan, &counted) {
        Ok(queued) => queued,
        Err(reason) => return Ok(Err(reason)),
    };
    tx.prepare_cached(
        "INSERT INTO outbox (report_id, kind, recipient, message_id, note, state, next_attempt_at,
                             created_at, recipient_key, recipient_domain)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
    )?
    .execute(params![
        report,
        kind.as_str(),
        plan.recipient,
        queued.message_id,
        note,
        queued.state.as_str(),
        now,
        plan.recipient_key,
        plan.recipient_domain
    ])?;
    let id = tx.last_insert_rowid();
    event(tx, report, now, "reply", &queued.event)?;
    Ok(Ok(id))
}

/// What the store holds of report `id` for a follow-up to join it; `None`
/// when there is none, or it was itself merged into another.
fn original_report(
    tx: &Transaction<'_>,
    id: i64,
) -> Result<Option<crate::reply::follow_up::OriginalReport>, Error> {
    use crate::model::{AbuseType, NetworkSubtype, ReplyDecision, ReportStatus};
    let row = tx
        .query_row(
            "SELECT abuse_type, subtype, missing, reply, status, ips, urls, reporter, reasons
             FROM reports WHERE id = ?1 AND follow_up_of IS NULL",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, String>(8)?,
                ))
            },
        )
        .optional()?;
    let Some((abuse_type, subtype, missing, reply, status, ips, urls, reporter, reasons)) = row
    else {
        return Ok(None);
    };
    let list = |text: &str| super::parse_json_list::<String>("reports", id, text);
    Ok(Some(crate::reply::follow_up::OriginalReport {
        id,
        abuse_type: AbuseType::parse(&abuse_type).unwrap_or(AbuseType::Unknown),
        subtype: subtype.as_deref().and_then(NetworkSubtype::parse),
        missing: super::parse_json_list("reports", id, &missing)?,
        reply: ReplyDecision::parse(&reply).unwrap_or(ReplyDecision::None),
        status: ReportStatus::parse(&status).unwrap_or(ReportStatus::Open),
        ips: list(&ips)?,
        urls: list(&urls)?,
        reporter,
        reasons: list(&reasons)?,
    }))
}

/// Carries out what [`crate::reply::follow_up::plan_merge`] decides for
/// new report `id`, a follow-up of another: the original takes its
/// evidence, addresses and URLs, its new type and what is still missing,
/// and queues an ack when that completes it. The merge's plan, or `None`
/// when the follow-up stays a report of its own.
pub(super) fn merge_follow_up(
    tx: &Transaction<'_>,
    original: i64,
    id: i64,
    follow_up: &crate::model::ReportDraft,
    now: &str,
) -> Result<Option<crate::reply::follow_up::Merge>, Error> {
    use crate::reply::follow_up::{plan_merge, MergePlan};
    let found = original_report(tx, original)?;
    let secret = secret(tx)?;
    let has_token = follow_up
        .follow_up
        .as_ref()
        .and_then(|c| c.token.as_deref())
        .is_some_and(|t| crate::reply::token::is_valid(&secret, original, t));
    let merge = match plan_merge(found.as_ref(), id, follow_up, has_token) {
        None => return Ok(None),
        Some(MergePlan::Refused { event: why }) => {
            event(tx, id, now, "follow_up", &why)?;
            return Ok(None);
        }
        Some(MergePlan::Merge(merge)) => *merge,
    };
    tx.execute(
        "UPDATE reports SET abuse_type = ?2, subtype = ?3, missing = ?4, ips = ?5, urls = ?6,
             evidence_rows = evidence_rows + ?7, rsit_taxonomy = ?8, rsit_type = ?9,
             reasons = ?10
         WHERE id = ?1",
        params![
            merge.original,
            merge.abuse_type.as_str(),
            merge.subtype.map(crate::model::NetworkSubtype::as_str),
            super::json_list(&merge.missing),
            super::json_list(&merge.ips),
            super::json_list(&merge.urls),
            merge.evidence_rows_added as i64,
            merge.rsit.taxonomy,
            merge.rsit.kind,
            super::json_list(&merge.reasons),
        ],
    )?;
    tx.execute(
        "UPDATE evidence SET report_id = ?1 WHERE report_id = ?2",
        params![merge.original, id],
    )?;
    super::add_report_ips(tx, merge.original, &follow_up.ips)?;
    event(tx, merge.original, now, "follow_up", &merge.event)?;
    if let Some(plan) = &merge.ack {
        let note = Some(crate::reply::FOLLOW_UP_NOTE);
        let kind = crate::model::ReplyKind::Ack;
        if queue(tx, merge.original, kind, plan, note, now)?.is_ok() {
            tx.execute(
                "UPDATE reports SET reply = ?2 WHERE id = ?1",
                params![merge.original, crate::model::ReplyDecision::Ack.as_str()],
            )?;
        }
    }
    Ok(Some(merge))
}

/// Replies (other than `concluded`) queued since ?2 to one address, to one
/// domain, and in all; each an index range scan.
const RECENT_TO_RECIPIENT: &str = "SELECT count(*) FROM outbox
     WHERE recipient_key = ?1 AND created_at >= ?2 AND kind != 'concluded'";
const RECENT_TO_DOMAIN: &str = "SELECT count(*) FROM outbox
     WHERE recipient_domain = ?1 AND created_at >= ?2 AND kind != 'concluded'";
const RECENT_IN_ALL: &str = "SELECT count(*) FROM outbox
     WHERE ?1 = ?1 AND created_at >= ?2 AND kind != 'concluded'";

/// How many replies a report has had (numbers the next one's Message-ID);
/// run for every reply queued.
const REPLIES_OF_REPORT: &str = "SELECT count(*) FROM outbox WHERE report_id = ?1";
/// Whether any reply is held (the sender asks every round).
const ANY_HELD: &str = "SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'held')";
/// Replies not sent yet: one count per partial index, not a scan of the outbox.
const OUTBOX_DEPTH: &str = "SELECT (SELECT count(*) FROM outbox WHERE state = 'held')
     + (SELECT count(*) FROM outbox WHERE state = 'pending')";

/// A change to the outbox the reply sender asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxChange {
    /// A relay is configured now: held replies become pending, due now.
    ReleaseHeld,
    /// The relay took the reply.
    Sent {
        outbox_id: OutboxId,
        report_id: ReportId,
    },
    /// A temporary failure: try again at `at`.
    Retry {
        outbox_id: OutboxId,
        error: String,
        at: String,
    },
    /// Refused for good, or given up.
    Failed {
        outbox_id: OutboxId,
        report_id: ReportId,
        error: String,
    },
}

/// What `reports resolve` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Resolved now; the concluded reply is queued (when one is due).
    Resolved,
    /// Resolved before, at `at`: nothing changed, nothing is sent again.
    AlreadyResolved {
        at: String,
    },
    NoSuchReport,
}

impl Db {
    /// The replies of one report, oldest first.
    pub fn replies_for(&self, report: ReportId) -> Result<Vec<Entry>, Error> {
        let mut replies = self.select_replies(None, Some(report.0), usize::MAX)?;
        replies.reverse();
        Ok(replies)
    }

    /// Outbox rows, newest first, optionally in one state.
    pub fn replies(
        &self,
        state: Option<crate::model::OutboxState>,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        self.select_replies(state, None, limit)
    }

    fn select_replies(
        &self,
        state: Option<crate::model::OutboxState>,
        report: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        // Only the filters given are in the SQL, so SQLite can use the index
        // of the one that is there (`report_id = ?` for `reports show`).
        let mut sql = String::from(
            "SELECT id, report_id, kind, recipient, message_id, state, attempts, next_attempt_at,
                    last_error, created_at, sent_at
             FROM outbox WHERE 1 = 1",
        );
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(state) = state {
            values.push(state.as_str().to_owned().into());
            sql.push_str(&format!(" AND state = ?{}", values.len()));
        }
        if let Some(report) = report {
            values.push(report.into());
            sql.push_str(&format!(" AND report_id = ?{}", values.len()));
        }
        values.push((limit.min(i64::MAX as usize) as i64).into());
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", values.len()));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
            Ok(Entry {
                id: r.get(0)?,
                report_id: r.get(1)?,
                // A kind this build does not know reads as concluded: shown,
                // and never held back by a rate limit.
                kind: crate::model::ReplyKind::parse(&r.get::<_, String>(2)?)
                    .unwrap_or(crate::model::ReplyKind::Concluded),
                recipient: r.get(3)?,
                message_id: r.get(4)?,
                // A state this build does not know reads as failed: shown,
                // never sent.
                state: crate::model::OutboxState::parse(&r.get::<_, String>(5)?)
                    .unwrap_or(crate::model::OutboxState::Failed),
                attempts: r.get(6)?,
                next_attempt_at: r.get(7)?,
                last_error: r.get(8)?,
                created_at: r.get(9)?,
                sent_at: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replies waiting to go out (held or pending).
    pub fn outbox_depth(&self) -> Result<u64, Error> {
        let n: i64 = self.conn.query_row(OUTBOX_DEPTH, [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Drops unsent replies: the given ids, or every held one.
    pub fn discard_replies(&mut self, ids: &[OutboxId], all_held: bool) -> Result<usize, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut n = 0;
        if all_held {
            n += tx.execute(
                "UPDATE outbox SET state = 'discarded' WHERE state = 'held'",
                [],
            )?;
        }
        for id in ids {
            n += tx.execute(
                "UPDATE outbox SET state = 'discarded' WHERE id = ?1 AND state IN ('held', 'pending')",
                [id],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Replies due at `now`, oldest first, with what their text needs.
    pub fn due_replies(&self, now: &str, limit: usize) -> Result<Vec<Draft>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, o.report_id, o.kind, o.recipient, o.message_id, o.note, r.subject, r.message_id,
                    r.abuse_type, r.subtype, r.missing, r.language
             FROM outbox o JOIN reports r ON r.id = o.report_id
             WHERE o.state = 'pending' AND o.next_attempt_at <= ?1 ORDER BY o.next_attempt_at, o.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit as i64], |r| {
            let missing: String = r.get(10)?;
            Ok(Draft {
                outbox_id: r.get(0)?,
                report_id: r.get(1)?,
                kind: crate::model::ReplyKind::parse(&r.get::<_, String>(2)?)
                    .unwrap_or(crate::model::ReplyKind::Concluded),
                recipient: r.get(3)?,
                message_id: r.get(4)?,
                note: r.get(5)?,
                subject: r.get(6)?,
                in_reply_to: r.get(7)?,
                abuse_type: r.get(8)?,
                subtype: r.get(9)?,
                missing: serde_json::from_str(&missing).unwrap_or_default(),
                language: crate::reply::Language::parse(&r.get::<_, String>(11)?)
                    .unwrap_or(crate::reply::Language::En),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records what became of replies, in one transaction: how the reply
    /// sender's changes reach the store (through the daemon's single
    /// writer). The number of rows changed.
    pub fn apply_outbox(&mut self, change: &OutboxChange, now: &str) -> Result<usize, Error> {
        if *change == OutboxChange::ReleaseHeld {
            // Usually there are none: find that out with a read, so the
            // sender's rounds take no write lock from the SMTP commits.
            let any: bool = self.conn.query_row(ANY_HELD, [], |r| r.get(0))?;
            if !any {
                return Ok(0);
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let changed = match change {
            OutboxChange::ReleaseHeld => tx.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?1 WHERE state = 'held'",
                [now],
            )?,
            OutboxChange::Sent {
                outbox_id,
                report_id,
            } => {
                event(
                    &tx,
                    report_id.0,
                    now,
                    "sent",
                    &format!("reply {outbox_id} sent"),
                )?;
                tx.execute(
                    "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1,
                         last_error = NULL WHERE id = ?1",
                    params![outbox_id, now],
                )?
            }
            OutboxChange::Retry {
                outbox_id,
                error,
                at,
            } => tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
                 WHERE id = ?1",
                params![outbox_id, error, at],
            )?,
            OutboxChange::Failed {
                outbox_id,
                report_id,
                error,
            } => {
                let detail = format!("reply {outbox_id}: {error}");
                event(&tx, report_id.0, now, "send_failed", &detail)?;
                tx.execute(
                    "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2
                     WHERE id = ?1",
                    params![outbox_id, error],
                )?
            }
        };
        tx.commit()?;
        Ok(changed)
    }

    /// When the reply was queued and how often it was tried (for backoff and giving up).
    pub fn reply_progress(&self, outbox_id: OutboxId) -> Result<Option<(String, i64)>, Error> {
        Ok(self
            .conn
            .query_row(
                "SELECT created_at, attempts FROM outbox WHERE id = ?1",
                [outbox_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Closes a report as [`crate::reply::resolve::plan`] decides: once,
    /// with the concluded reply to a reporter we answered before.
    pub fn resolve(
        &mut self,
        report: ReportId,
        note: Option<&str>,
        plan: Option<&ReplyPlan>,
        now: &str,
    ) -> Result<Resolution, Error> {
        use crate::model::{ReplyDecision, ReportStatus};
        use crate::reply::resolve;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = tx
            .query_row(
                "SELECT reply, reporter, status, resolved_at FROM reports WHERE id = ?1",
                [report.0],
                |r| {
                    Ok(resolve::Current {
                        reply: ReplyDecision::parse(&r.get::<_, String>(0)?)
                            .unwrap_or(ReplyDecision::None),
                        reporter: r.get(1)?,
                        status: ReportStatus::parse(&r.get::<_, String>(2)?)
                            .unwrap_or(ReportStatus::Open),
                        resolved_at: r.get(3)?,
                    })
                },
            )
            .optional()?;
        let concluded = match resolve::plan(current.as_ref(), plan) {
            resolve::Plan::NoSuchReport => return Ok(Resolution::NoSuchReport),
            resolve::Plan::AlreadyResolved { at } => return Ok(Resolution::AlreadyResolved { at }),
            resolve::Plan::Resolve { concluded } => concluded,
        };
        tx.execute(
            "UPDATE reports SET status = ?3, resolved_at = ?2 WHERE id = ?1",
            params![report.0, now, ReportStatus::Resolved.as_str()],
        )?;
        event(&tx, report.0, now, "resolved", note.unwrap_or(""))?;
        if let Some(plan) = concluded {
            let kind = crate::model::ReplyKind::Concluded;
            let _ = queue(&tx, report.0, kind, &plan, note, now)?;
        }
        tx.commit()?;
        Ok(Resolution::Resolved)
    }

    /// A report's history, oldest first: (at, kind, detail).
    pub fn events(&self, report: ReportId) -> Result<Vec<(String, String, String)>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT at, kind, coalesce(detail, '') FROM report_events WHERE report_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([report.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    /// The queries run for every reply queued, every sender round and every
    /// metrics scrape stay off a scan of the whole outbox, which grows by a
    /// row per report (75 ms per scan at a million rows).
    #[test]
    fn the_frequent_outbox_queries_use_partial_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), Role::Cli).unwrap();
        for sql in [REPLIES_OF_REPORT, ANY_HELD, OUTBOX_DEPTH] {
            let params: Vec<i64> = sql.contains("?1").then_some(0).into_iter().collect();
            let plan: Vec<String> = db
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(params), |r| r.get(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let scans: Vec<&String> = plan.iter().filter(|d| d.contains("outbox")).collect();
            assert!(!scans.is_empty(), "{plan:?}");
            for step in scans {
                assert!(step.contains(" INDEX outbox_"), "{sql}: {plan:?}");
            }
        }
    }
}

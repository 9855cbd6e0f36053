//! The outbox: replies decided in the report's transaction, sent later.
//!
//! States: `held` (no relay configured yet), `pending` (due at
//! `next_attempt_at`), `sent`, `failed` (permanent refusal, or given up),
//! `discarded` (an operator dropped it). Our Message-ID is the idempotency
//! key of a send.

use super::sql::{Row, Sql};
use super::{Db, Error};
use crate::model::{OutboxId, ReplyPlan, ReportId};
use crate::reply::Draft;
use crate::sql_params;
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
    q: &mut dyn Sql,
    report: ReportId,
    at: &str,
    kind: crate::model::HistoryEvent,
    detail: &str,
) -> Result<(), Error> {
    q.exec(
        "INSERT INTO report_events (report_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
        sql_params![report, at, kind.as_str(), detail],
    )?;
    Ok(())
}

/// The installation's secret for follow-up tokens (migration 0010).
pub(super) fn secret(q: &mut dyn Sql) -> Result<Vec<u8>, Error> {
    q.row("SELECT secret FROM installation WHERE id = 1", &[])?
        .ok_or(Error::Corrupt {
            table: "installation",
            id: 1,
            detail: "no secret".into(),
        })?
        .blob(0)
}

impl Db {
    /// The installation's secret (follow-up tokens, export ids).
    pub fn installation_secret(&self) -> Result<Vec<u8>, Error> {
        self.read(secret)
    }
}

/// Queues a reply of `kind` for `report` as [`crate::reply::queue::plan`]
/// decides from what is counted here; `Err(reason)` inside `Ok` when it
/// is suppressed (nothing written).
pub(super) fn queue(
    q: &mut dyn Sql,
    report: ReportId,
    kind: crate::model::ReplyKind,
    plan: &ReplyPlan,
    note: Option<&str>,
    now: &str,
) -> Result<Result<OutboxId, crate::model::reply::Suppression>, Error> {
    let since = crate::reply::queue::window_start(now);
    let counted = crate::reply::queue::COUNTED.map(crate::model::ReplyKind::as_str);
    let recent = crate::reply::limits::Recent {
        recipient: q.count(
            RECENT_TO_RECIPIENT,
            sql_params![&plan.recipient_key, &since, counted[0], counted[1]],
        )?,
        domain: q.count(
            RECENT_TO_DOMAIN,
            sql_params![&plan.recipient_domain, &since, counted[0], counted[1]],
        )?,
        global: q.count(RECENT_IN_ALL, sql_params![&since, counted[0], counted[1]])?,
    };
    let replies_of_report = q.count(REPLIES_OF_REPORT, sql_params![report])? as i64;
    let secret = secret(q)?;
    let counted = crate::reply::queue::Counted {
        recent,
        replies_of_report,
        secret: &secret,
    };
    let queued = match crate::reply::queue::plan(report.0, kind, plan, &counted) {
        Ok(queued) => queued,
        Err(reason) => return Ok(Err(reason)),
    };
    let id = q.insert(
        "INSERT INTO outbox (report_id, kind, recipient, message_id, note, state, next_attempt_at,
                                 created_at, recipient_key, recipient_domain)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
        sql_params![
            report,
            kind.as_str(),
            &plan.recipient,
            &queued.message_id,
            note,
            queued.state.as_str(),
            now,
            &plan.recipient_key,
            &plan.recipient_domain
        ],
    )?;
    event(
        q,
        report,
        now,
        crate::model::HistoryEvent::Reply,
        &queued.event,
    )?;
    Ok(Ok(OutboxId(id)))
}

/// What the store holds of report `id` for a follow-up to join it; `None`
/// when there is none, or it was itself merged into another.
pub(super) fn original_report(
    q: &mut dyn Sql,
    id: ReportId,
) -> Result<Option<crate::reply::follow_up::OriginalReport>, Error> {
    use crate::model::{AbuseType, NetworkSubtype, ReplyDecision, ReportStatus};
    let Some(r) = q.row(
        "SELECT abuse_type, subtype, missing, reply, status, ips, urls, reporter, reasons
         FROM reports WHERE id = ?1 AND follow_up_of IS NULL",
        sql_params![id],
    )?
    else {
        return Ok(None);
    };
    let list = |i: usize| -> Result<Vec<String>, Error> {
        super::parse_json_list("reports", id.0, &r.text(i)?)
    };
    Ok(Some(crate::reply::follow_up::OriginalReport {
        id: id.0,
        abuse_type: super::known("reports", id.0, &r.text(0)?, AbuseType::parse)?,
        subtype: r
            .opt_text(1)?
            .map(|s| super::known("reports", id.0, &s, NetworkSubtype::parse))
            .transpose()?,
        missing: super::parse_json_list("reports", id.0, &r.text(2)?)?,
        reply: super::known("reports", id.0, &r.text(3)?, ReplyDecision::parse)?,
        status: super::known("reports", id.0, &r.text(4)?, ReportStatus::parse)?,
        ips: list(5)?,
        urls: list(6)?,
        reporter: r.opt_text(7)?,
        reasons: super::parse_json_list("reports", id.0, &r.text(8)?)?,
    }))
}

/// Whether a follow-up's claim carries the valid token of the report it names.
pub(super) fn claim_has_token(
    q: &mut dyn Sql,
    claim: &crate::reply::token::Claim,
) -> Result<bool, Error> {
    let Some(token) = claim.token.as_deref() else {
        return Ok(false);
    };
    let secret = secret(q)?;
    Ok(crate::reply::token::is_valid(&secret, claim.id, token))
}

/// Appends to the history of the case of outbox row `id`, when it is a
/// notice (a reply to a reporter has none).
fn notice_event(
    q: &mut dyn Sql,
    id: OutboxId,
    at: &str,
    kind: crate::model::case::CaseEvent,
    detail: &str,
) -> Result<(), Error> {
    q.exec(
        "INSERT INTO case_events (case_id, at, kind, actor, detail)
         SELECT case_id, ?2, ?3, 'relay', kind || ' ' || id || ' to ' || recipient || ': ' || ?4
         FROM outbox WHERE id = ?1 AND case_id IS NOT NULL",
        sql_params![id, at, kind.as_str(), detail],
    )?;
    Ok(())
}

/// Whether an answer's claim carries the valid token of the case it names.
pub(super) fn claim_has_case_token(
    q: &mut dyn Sql,
    claim: &crate::reply::token::Claim,
) -> Result<bool, Error> {
    let Some(token) = claim.token.as_deref() else {
        return Ok(false);
    };
    let secret = secret(q)?;
    Ok(crate::reply::token::is_valid_case(&secret, claim.id, token))
}

/// Replies of the kinds that count ([`crate::reply::queue::COUNTED`])
/// queued since the window's start to one address, to one domain, and in
/// all; each an index range scan.
const RECENT_TO_RECIPIENT: &str = "SELECT count(*) FROM outbox
     WHERE recipient_key = ?1 AND created_at >= ?2 AND kind IN (?3, ?4)";
const RECENT_TO_DOMAIN: &str = "SELECT count(*) FROM outbox
     WHERE recipient_domain = ?1 AND created_at >= ?2 AND kind IN (?3, ?4)";
const RECENT_IN_ALL: &str = "SELECT count(*) FROM outbox
     WHERE created_at >= ?1 AND kind IN (?2, ?3)";

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
        let mut replies = self.select_replies(None, Some(report), None, usize::MAX)?;
        replies.reverse();
        Ok(replies)
    }

    /// Outbox rows, newest first, optionally in one state.
    pub fn replies(
        &self,
        state: Option<crate::model::OutboxState>,
        before: Option<OutboxId>,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        self.select_replies(state, None, before, limit)
    }

    fn select_replies(
        &self,
        state: Option<crate::model::OutboxState>,
        report: Option<ReportId>,
        before: Option<OutboxId>,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        // Only the filters given are in the SQL, so the database can use
        // the index of the one that is there (`report_id = ?` for `reports show`).
        let mut sql = String::from(
            "SELECT id, report_id, kind, recipient, message_id, state, attempts, next_attempt_at,
                    last_error, created_at, sent_at
             FROM outbox WHERE 1 = 1",
        );
        let mut values: Vec<super::sql::Value> = Vec::new();
        if let Some(state) = state {
            values.push(state.as_str().into());
            sql.push_str(&format!(" AND state = ?{}", values.len()));
        }
        if let Some(report) = report {
            values.push(report.into());
            sql.push_str(&format!(" AND report_id = ?{}", values.len()));
        }
        if let Some(before) = before {
            values.push(before.into());
            sql.push_str(&format!(" AND id < ?{}", values.len()));
        }
        values.push(limit.into());
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", values.len()));
        self.read(|q| q.rows(&sql, &values)?.iter().map(read_entry).collect())
    }

    /// Replies waiting to go out (held or pending).
    pub fn outbox_depth(&self) -> Result<u64, Error> {
        self.read(|q| q.count(OUTBOX_DEPTH, &[]))
    }

    /// Releases or discards unsent replies: the given ids, or every held
    /// one; each change in its report's history, with `by` (the operator)
    /// when known. How many changed: an id in no state the action applies
    /// to changes nothing.
    pub fn act_on_replies(
        &mut self,
        action: crate::model::ReplyAction,
        ids: &[OutboxId],
        all_held: bool,
        by: Option<&str>,
        now: &str,
    ) -> Result<usize, Error> {
        let from: Vec<String> = action
            .applies_to()
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let change = format!(
            "UPDATE outbox SET state = ?2, next_attempt_at = coalesce(?3, next_attempt_at)
             WHERE id = ?1 AND state IN ({}) RETURNING report_id",
            from.join(", ")
        );
        let to = action.to();
        let due = (to == crate::model::OutboxState::Pending).then_some(now);
        self.write(|q| {
            let mut targets = ids.to_vec();
            if all_held {
                let held = q.rows(
                    "SELECT id FROM outbox WHERE state = 'held' ORDER BY id",
                    &[],
                )?;
                for row in held {
                    targets.push(OutboxId(row.int(0)?));
                }
            }
            let mut n = 0;
            for id in targets {
                let Some(row) = q.row(&change, sql_params![id, to.as_str(), due])? else {
                    continue;
                };
                let detail = match by {
                    Some(by) => format!("reply {id} {} by {by}", action.done()),
                    None => format!("reply {id} {}", action.done()),
                };
                event(
                    q,
                    ReportId(row.int(0)?),
                    now,
                    crate::model::HistoryEvent::Reply,
                    &detail,
                )?;
                n += 1;
            }
            Ok(n)
        })
    }

    /// Replies due at `now`, oldest first, with what their text needs. On
    /// PostgreSQL they are claimed for this node for its claim lease (so of several
    /// daemons one sends each reply); a claim that runs out (its node died
    /// mid-send) makes the reply due again.
    pub fn due_replies(&self, now: &str, limit: usize) -> Result<Vec<Draft>, Error> {
        let lease = self.claim_lease.as_secs().max(1);
        const COLUMNS: &str = "o.id, o.report_id, o.kind, o.recipient, o.message_id, o.note,
            r.subject, r.message_id, r.abuse_type, r.subtype, r.missing, r.language,
            o.case_id, o.subject, o.body, o.attachment";
        self.read(|q| {
            let rows = match q.dialect() {
                super::sql::Dialect::Sqlite => q.rows(
                    &format!(
                        "SELECT {COLUMNS} FROM outbox o JOIN reports r ON r.id = o.report_id
                         WHERE o.state = 'pending' AND o.next_attempt_at <= ?1
                         ORDER BY o.next_attempt_at, o.id LIMIT ?2"
                    ),
                    sql_params![now, limit],
                )?,
                super::sql::Dialect::Postgres => q.rows(
                    &format!(
                        "WITH due AS (
                             SELECT id FROM outbox
                             WHERE state = 'pending' AND next_attempt_at <= ?1
                               AND (claimed_until IS NULL OR claimed_until < now())
                             ORDER BY next_attempt_at, id LIMIT ?2
                             FOR UPDATE SKIP LOCKED
                         ), claimed AS (
                             UPDATE outbox SET claimed_by = ?3,
                                 claimed_until = now() + make_interval(secs => ?4)
                             FROM due WHERE outbox.id = due.id
                             RETURNING outbox.*
                         )
                         SELECT {COLUMNS} FROM claimed o JOIN reports r ON r.id = o.report_id
                         ORDER BY o.next_attempt_at, o.id"
                    ),
                    sql_params![now, limit, super::node_name(), lease],
                )?,
            };
            rows.iter().map(read_draft).collect()
        })
    }

    /// Records what became of replies, in one transaction: how the reply
    /// sender's changes reach the store (through the daemon's single
    /// writer). The number of rows changed.
    pub fn apply_outbox(&mut self, change: &OutboxChange, now: &str) -> Result<usize, Error> {
        if *change == OutboxChange::ReleaseHeld {
            // Usually there are none: find that out with a read, so the
            // sender's rounds take no write lock from the SMTP commits.
            if self.read(|q| q.count(ANY_HELD, &[]))? == 0 {
                return Ok(0);
            }
        }
        self.write(|q| {
            let changed = match change {
                OutboxChange::ReleaseHeld => q.exec(
                    "UPDATE outbox SET state = 'pending', next_attempt_at = ?1 WHERE state = 'held'",
                    sql_params![now],
                )?,
                OutboxChange::Sent {
                    outbox_id,
                    report_id,
                } => {
                    event(q, *report_id, now, crate::model::HistoryEvent::Sent, &format!("reply {outbox_id} sent"))?;
                    notice_event(q, *outbox_id, now, crate::model::case::CaseEvent::Sent, "sent")?;
                    q.exec(
                        "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1,
                             last_error = NULL WHERE id = ?1",
                        sql_params![*outbox_id, now],
                    )?
                }
                OutboxChange::Retry {
                    outbox_id,
                    error,
                    at,
                } => {
                    // PostgreSQL: the claim ends with the attempt, so the
                    // retry is due for any node at `at`.
                    let release = match q.dialect() {
                        super::sql::Dialect::Sqlite => "",
                        super::sql::Dialect::Postgres => ", claimed_by = NULL, claimed_until = NULL",
                    };
                    q.exec(
                        &format!(
                            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
                                 next_attempt_at = ?3 {release}
                             WHERE id = ?1"
                        ),
                        sql_params![*outbox_id, error, at],
                    )?
                }
                OutboxChange::Failed {
                    outbox_id,
                    report_id,
                    error,
                } => {
                    let detail = format!("reply {outbox_id}: {error}");
                    event(q, *report_id, now, crate::model::HistoryEvent::SendFailed, &detail)?;
                    notice_event(q, *outbox_id, now, crate::model::case::CaseEvent::SendFailed, error)?;
                    q.exec(
                        "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2
                         WHERE id = ?1",
                        sql_params![*outbox_id, error],
                    )?
                }
            };
            Ok(changed as usize)
        })
    }

    /// When the reply was queued and how often it was tried (for backoff and giving up).
    pub fn reply_progress(&self, outbox_id: OutboxId) -> Result<Option<(String, i64)>, Error> {
        self.read(|q| {
            q.row(
                "SELECT created_at, attempts FROM outbox WHERE id = ?1",
                sql_params![outbox_id],
            )?
            .map(|r| Ok((r.text(0)?, r.int(1)?)))
            .transpose()
        })
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
        self.write(|q| {
            let current = q
                .row(
                    "SELECT reply, reporter, status, resolved_at FROM reports WHERE id = ?1",
                    sql_params![report],
                )?
                .map(|r| -> Result<resolve::Current, Error> {
                    Ok(resolve::Current {
                        reply: super::known(
                            "reports",
                            report.0,
                            &r.text(0)?,
                            ReplyDecision::parse,
                        )?,
                        reporter: r.opt_text(1)?,
                        status: super::known(
                            "reports",
                            report.0,
                            &r.text(2)?,
                            ReportStatus::parse,
                        )?,
                        resolved_at: r.opt_text(3)?,
                    })
                })
                .transpose()?;
            let concluded = match resolve::plan(current.as_ref(), plan) {
                resolve::Plan::NoSuchReport => return Ok(Resolution::NoSuchReport),
                resolve::Plan::AlreadyResolved { at } => {
                    return Ok(Resolution::AlreadyResolved { at })
                }
                resolve::Plan::Resolve { concluded } => concluded,
            };
            q.exec(
                "UPDATE reports SET status = ?3, resolved_at = ?2 WHERE id = ?1",
                sql_params![report, now, ReportStatus::Resolved.as_str()],
            )?;
            event(
                q,
                report,
                now,
                crate::model::HistoryEvent::Resolved,
                note.unwrap_or(""),
            )?;
            if let Some(plan) = concluded {
                let kind = crate::model::ReplyKind::Concluded;
                let _ = queue(q, report, kind, &plan, note, now)?;
            }
            Ok(Resolution::Resolved)
        })
    }

    /// A report's history, oldest first: (at, kind, detail).
    pub fn events(&self, report: ReportId) -> Result<Vec<(String, String, String)>, Error> {
        self.read(|q| {
            q.rows(
                "SELECT at, kind, coalesce(detail, '') FROM report_events WHERE report_id = ?1 ORDER BY id",
                sql_params![report],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?)))
            .collect()
        })
    }
}

pub(super) fn read_entry(r: &Row) -> Result<Entry, Error> {
    let id = r.int(0)?;
    Ok(Entry {
        id: OutboxId(id),
        report_id: ReportId(r.int(1)?),
        kind: super::known("outbox", id, &r.text(2)?, crate::model::ReplyKind::parse)?,
        recipient: r.text(3)?,
        message_id: r.text(4)?,
        state: super::known("outbox", id, &r.text(5)?, crate::model::OutboxState::parse)?,
        attempts: r.int(6)?,
        next_attempt_at: r.opt_text(7)?,
        last_error: r.opt_text(8)?,
        created_at: r.text(9)?,
        sent_at: r.opt_text(10)?,
    })
}

fn read_draft(r: &Row) -> Result<Draft, Error> {
    let id = r.int(0)?;
    Ok(Draft {
        outbox_id: OutboxId(id),
        report_id: ReportId(r.int(1)?),
        kind: super::known("outbox", id, &r.text(2)?, crate::model::ReplyKind::parse)?,
        recipient: r.text(3)?,
        message_id: r.text(4)?,
        note: r.opt_text(5)?,
        subject: r.opt_text(6)?,
        in_reply_to: r.opt_text(7)?,
        abuse_type: super::known("outbox", id, &r.text(8)?, crate::model::AbuseType::parse)?,
        subtype: r
            .opt_text(9)?
            .map(|s| super::known("outbox", id, &s, crate::model::NetworkSubtype::parse))
            .transpose()?,
        missing: serde_json::from_str(&r.text(10)?).unwrap_or_default(),
        language: super::known("outbox", id, &r.text(11)?, crate::reply::Language::parse)?,
        prepared: match (r.opt_int(12)?, r.opt_text(13)?, r.opt_text(14)?) {
            (Some(case), Some(subject), Some(body)) => Some(crate::reply::Prepared {
                case_id: crate::model::CaseId(case),
                subject,
                body,
                csv: r.opt_text(15)?,
            }),
            _ => None,
        },
    })
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
                .lite()
                .unwrap()
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

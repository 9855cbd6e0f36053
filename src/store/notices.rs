//! Notices to customers, as stored: what a case's schedule reads
//! ([`crate::notices::schedule::CaseState`]), a notice queued in the outbox
//! with the reports it tells of, the case's history and the customer's
//! answers.

use super::sql::{Row, Sql};
use super::{Db, Error};
use crate::model::case::{CaseEvent, ClosedBy};
use crate::model::{AbuseType, CaseId, CaseStatus, OutboxId, OutboxState, ReplyKind, ReportId};
use crate::notices::schedule::CaseState;
use crate::owners::import::Customer;
use crate::sql_params;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A customer's case, as the notice schedule reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeCase {
    pub state: CaseState,
    pub abuse_type: AbuseType,
    /// The RSIT type of its first report (policies may name one).
    pub rsit_type: String,
    pub customer_ref: String,
    /// `None` when the customer is not in the owners any more, or disabled.
    pub customer: Option<Customer>,
}

/// A notice to queue, written ([`crate::notices::compose`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice<'a> {
    pub case: CaseId,
    pub kind: ReplyKind,
    pub recipient: &'a str,
    /// The recipient's rate-limit keys ([`crate::model::ReplyPlan`]).
    pub recipient_key: &'a str,
    pub recipient_domain: &'a str,
    pub state: OutboxState,
    /// Ours, without brackets: the send's idempotency key.
    pub message_id: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub csv: Option<&'a str>,
    /// The reports it tells of (a notice or digest).
    pub reports: &'a [ReportId],
    /// The case as the schedule saw it: when it changed since (another
    /// node or command acted), nothing is queued.
    pub seen: &'a CaseState,
}

/// One line of a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseHistory {
    pub at: String,
    pub kind: CaseEvent,
    /// `policy`, `operator`, `customer`.
    pub actor: String,
    pub detail: String,
}

/// A customer's answer, as stored on the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub received_at: String,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub status: crate::model::case::AnswerStatus,
    pub text: String,
}

/// Which cases `cases list` shows by who is to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Told, and not answered since the last notice.
    OnCustomer,
    /// The customer answered (and it is not closed).
    CustomerAnswered,
}

fn time(table: &'static str, id: i64, text: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| Error::Corrupt {
            table,
            id,
            detail: format!("unreadable time {text:?}"),
        })
}

fn opt_time(r: &Row, i: usize, id: i64) -> Result<Option<DateTime<Utc>>, Error> {
    r.opt_text(i)?.map(|t| time("cases", id, &t)).transpose()
}

/// Appends to a case's history.
pub(super) fn case_event(
    q: &mut dyn Sql,
    case: CaseId,
    at: &str,
    kind: CaseEvent,
    actor: &str,
    detail: &str,
) -> Result<(), Error> {
    q.exec(
        "INSERT INTO case_events (case_id, at, kind, actor, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        sql_params![case, at, kind.as_str(), actor, detail],
    )?;
    Ok(())
}

const NOTICE_CASE_COLUMNS: &str = "c.id, c.status, c.reports, c.first_at, c.last_at, c.notices,
    c.first_notice_at, c.last_notice_at, c.reminded_at, c.escalated_at, c.answered_at,
    c.abuse_type, c.customer,
    (SELECT count(*) FROM report_cases u WHERE u.case_id = c.id AND u.notice_id IS NULL),
    (SELECT min(r.received_at) FROM report_cases u JOIN reports r ON r.id = u.report_id
         WHERE u.case_id = c.id AND u.notice_id IS NULL),
    (SELECT r.rsit_type FROM report_cases u JOIN reports r ON r.id = u.report_id
         WHERE u.case_id = c.id ORDER BY u.report_id LIMIT 1),
    k.id, k.reference, k.name, k.emails, k.language, k.policy, k.enabled";

fn read_notice_case(r: &Row) -> Result<NoticeCase, Error> {
    let id = r.int(0)?;
    let customer = match r.opt_int(16)? {
        Some(k) => Some(Customer {
            reference: r.text(17)?,
            name: r.text(18)?,
            emails: super::parse_json_list("customers", k, &r.text(19)?)?,
            language: super::known("customers", k, &r.text(20)?, crate::reply::Language::parse)?,
            policy: r.opt_text(21)?,
            enabled: r.bool(22)?,
        }),
        None => None,
    }
    .filter(|c| c.enabled);
    let state = CaseState {
        case: CaseId(id),
        status: super::known("cases", id, &r.text(1)?, CaseStatus::parse)?,
        events: r.int(2)?.max(0) as u64,
        opened_at: time("cases", id, &r.text(3)?)?,
        last_event_at: time("cases", id, &r.text(4)?)?,
        notices: u32::try_from(r.int(5)?.max(0)).unwrap_or(u32::MAX),
        first_notice_at: opt_time(r, 6, id)?,
        last_notice_at: opt_time(r, 7, id)?,
        reminded_at: opt_time(r, 8, id)?,
        escalated_at: opt_time(r, 9, id)?,
        answered_at: opt_time(r, 10, id)?,
        untold: r.int(13)?.max(0) as u64,
        oldest_untold_at: opt_time(r, 14, id)?,
        reachable: customer.as_ref().is_some_and(|c| !c.emails.is_empty()),
    };
    Ok(NoticeCase {
        state,
        abuse_type: super::known("cases", id, &r.text(11)?, AbuseType::parse)?,
        customer_ref: r.text(12)?,
        rsit_type: r.opt_text(15)?.unwrap_or_default(),
        customer,
    })
}

/// The time of `t` as stored.
fn stored(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

impl Db {
    /// The customers' cases not closed, at most `limit`, those with the
    /// oldest activity first: what a notice round looks at.
    pub fn notice_cases(&self, limit: usize) -> Result<Vec<NoticeCase>, Error> {
        self.read(|q| {
            q.rows(
                &format!(
                    "SELECT {NOTICE_CASE_COLUMNS} FROM cases c
                     LEFT JOIN customers k ON k.reference = c.customer
                     WHERE c.customer IS NOT NULL AND c.status <> ?1
                     ORDER BY c.id LIMIT ?2"
                ),
                sql_params![CaseStatus::Resolved.as_str(), limit],
            )?
            .iter()
            .map(read_notice_case)
            .collect()
        })
    }

    /// One customer's case as the schedule reads it.
    pub fn notice_case(&self, id: CaseId) -> Result<Option<NoticeCase>, Error> {
        self.read(|q| {
            q.row(
                &format!(
                    "SELECT {NOTICE_CASE_COLUMNS} FROM cases c
                     LEFT JOIN customers k ON k.reference = c.customer
                     WHERE c.id = ?1 AND c.customer IS NOT NULL"
                ),
                sql_params![id],
            )?
            .as_ref()
            .map(read_notice_case)
            .transpose()
        })
    }

    /// The reports of case `id` its customer was not told of, oldest first,
    /// at most `limit`.
    pub fn untold_reports(&self, id: CaseId, limit: usize) -> Result<Vec<ReportId>, Error> {
        self.read(|q| {
            q.rows(
                "SELECT report_id FROM report_cases WHERE case_id = ?1 AND notice_id IS NULL
                 ORDER BY report_id LIMIT ?2",
                sql_params![id, limit],
            )?
            .iter()
            .map(|r| Ok(ReportId(r.int(0)?)))
            .collect()
        })
    }

    /// Queues `n` in the outbox, in one transaction with what it changes of
    /// its case; `None` when the case changed since it was read (nothing
    /// written).
    pub fn queue_notice(
        &mut self,
        n: &NewNotice<'_>,
        now: &str,
    ) -> Result<Option<OutboxId>, Error> {
        self.write(|q| {
            let seen = n.seen;
            let is_notice = matches!(n.kind, ReplyKind::Notice | ReplyKind::Digest);
            let notices = seen.notices + u32::from(is_notice);
            // The guard: the case is as the schedule saw it.
            let changed = q.exec(
                "UPDATE cases SET notices = ?2,
                     first_notice_at = CASE WHEN ?3 THEN coalesce(first_notice_at, ?4) ELSE first_notice_at END,
                     last_notice_at = CASE WHEN ?3 THEN ?4 ELSE last_notice_at END,
                     reminded_at = CASE WHEN ?5 THEN ?4 ELSE reminded_at END,
                     escalated_at = CASE WHEN ?6 THEN ?4 ELSE escalated_at END
                 WHERE id = ?1 AND notices = ?7 AND status <> ?10
                   AND coalesce(reminded_at, '') = ?8 AND coalesce(escalated_at, '') = ?9",
                sql_params![
                    n.case,
                    i64::from(notices),
                    is_notice,
                    now,
                    n.kind == ReplyKind::Reminder,
                    n.kind == ReplyKind::Escalation,
                    i64::from(seen.notices),
                    stored(seen.reminded_at).unwrap_or_default(),
                    stored(seen.escalated_at).unwrap_or_default(),
                    CaseStatus::Resolved.as_str()
                ],
            )?;
            if changed == 0 && n.kind != ReplyKind::CaseClosed {
                return Ok(None);
            }
            let id = q.insert(
                "INSERT INTO outbox (report_id, kind, recipient, message_id, state, next_attempt_at,
                     created_at, recipient_key, recipient_domain, case_id, subject, body, attachment)
                 SELECT min(report_id), ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?1, ?9, ?10, ?11
                 FROM report_cases WHERE case_id = ?1",
                sql_params![
                    n.case,
                    n.kind.as_str(),
                    n.recipient,
                    n.message_id,
                    n.state.as_str(),
                    now,
                    n.recipient_key,
                    n.recipient_domain,
                    n.subject,
                    n.body,
                    n.csv
                ],
            )?;
            if n.kind == ReplyKind::CaseClosed {
                // With a decision, the closed notice is the statement of reasons.
                q.exec(
                    "UPDATE cases SET reasons_sent_at = ?2 WHERE id = ?1 AND decision IS NOT NULL",
                    sql_params![n.case, now],
                )?;
            }
            for report in n.reports {
                q.exec(
                    "UPDATE report_cases SET notice_id = ?3
                     WHERE case_id = ?1 AND report_id = ?2 AND notice_id IS NULL",
                    sql_params![n.case, *report, id],
                )?;
            }
            let detail = match n.reports.len() {
                0 => format!("{} {id} to {} ({})", n.kind, n.recipient, n.state.as_str()),
                k => format!(
                    "{} {id} to {} ({}): {k} reports",
                    n.kind,
                    n.recipient,
                    n.state.as_str()
                ),
            };
            case_event(q, n.case, now, CaseEvent::Notified, "policy", &detail)?;
            Ok(Some(OutboxId(id)))
        })
    }

    /// Closes case `id` (when not closed yet): by an operator with their
    /// note, or by its policy. `false` when it was closed already.
    pub fn close_case(
        &mut self,
        id: CaseId,
        by: ClosedBy,
        note: Option<&str>,
        decided: Option<crate::model::case::Decided>,
        now: &str,
    ) -> Result<bool, Error> {
        self.write(|q| {
            let changed = q.exec(
                "UPDATE cases SET status = ?2, resolved_at = ?3, note = ?4, closed_by = ?5,
                     decision = ?6, decision_ground = ?7
                 WHERE id = ?1 AND status <> ?2",
                sql_params![
                    id,
                    CaseStatus::Resolved.as_str(),
                    now,
                    note,
                    by.as_str(),
                    decided.map(|d| d.decision.as_str()),
                    decided.and_then(|d| d.ground).map(|g| g.as_str())
                ],
            )?;
            if changed > 0 {
                let kind = match by {
                    ClosedBy::Operator => CaseEvent::Resolved,
                    ClosedBy::Policy => CaseEvent::AutoClosed,
                };
                let detail = match decided {
                    Some(d) => format!(
                        "{}{}{}",
                        d.decision.as_str(),
                        d.ground
                            .map_or(String::new(), |g| format!(" ({})", g.as_str())),
                        note.map_or(String::new(), |n| format!(": {n}"))
                    ),
                    None => note.unwrap_or("").to_owned(),
                };
                case_event(q, id, now, kind, by.as_str(), &detail)?;
            }
            Ok(changed > 0)
        })
    }

    /// A case's history, oldest first.
    pub fn case_history(&self, id: CaseId) -> Result<Vec<CaseHistory>, Error> {
        self.read(|q| {
            q.rows(
                "SELECT id, at, kind, actor, detail FROM case_events WHERE case_id = ?1 ORDER BY id",
                sql_params![id],
            )?
            .iter()
            .map(|r| {
                let row = r.int(0)?;
                Ok(CaseHistory {
                    at: r.text(1)?,
                    kind: super::known("case_events", row, &r.text(2)?, CaseEvent::parse)?,
                    actor: r.text(3)?,
                    detail: r.text(4)?,
                })
            })
            .collect()
        })
    }

    /// The customer's answers on a case, oldest first.
    pub fn case_statements(&self, id: CaseId) -> Result<Vec<Statement>, Error> {
        self.read(|q| {
            q.rows(
                "SELECT received_at, sender, subject, status, text FROM case_statements
                 WHERE case_id = ?1 ORDER BY id",
                sql_params![id],
            )?
            .iter()
            .map(|r| {
                Ok(Statement {
                    received_at: r.text(0)?,
                    sender: r.opt_text(1)?,
                    subject: r.opt_text(2)?,
                    status: super::known(
                        "case_statements",
                        0,
                        &r.text(3)?,
                        crate::model::case::AnswerStatus::parse,
                    )?,
                    text: r.text(4)?,
                })
            })
            .collect()
        })
    }

    /// The notices of a case, oldest first.
    pub fn case_notices(&self, id: CaseId) -> Result<Vec<super::OutboxEntry>, Error> {
        self.read(|q| {
            q.rows(
                "SELECT id, report_id, kind, recipient, message_id, state, attempts, next_attempt_at,
                        last_error, created_at, sent_at
                 FROM outbox WHERE case_id = ?1 ORDER BY id",
                sql_params![id],
            )?
            .iter()
            .map(super::outbox::read_entry)
            .collect()
        })
    }
}

/// Stores a customer's answer on case `claim.id` (its token checked by
/// the caller): the statement, the case's `answered_at`, its status when
/// the answer says it is resolved, and the history. `false` (nothing
/// written) when the case is not a customer's.
pub(super) fn answer(
    q: &mut dyn Sql,
    raw_id: crate::model::RawId,
    answer: &crate::model::case::CaseAnswer,
    received_at: &str,
) -> Result<bool, Error> {
    let case = CaseId(answer.claim.id);
    let kept = q.row(
        "SELECT 1 FROM case_statements WHERE raw_id = ?1",
        sql_params![raw_id],
    )?;
    if kept.is_some() {
        // Processed again: it is on the case already.
        return Ok(true);
    }
    let Some(row) = q.row(
        "SELECT status FROM cases WHERE id = ?1 AND customer IS NOT NULL",
        sql_params![case],
    )?
    else {
        return Ok(false);
    };
    let status = super::known("cases", case.0, &row.text(0)?, CaseStatus::parse)?;
    let resolved = answer.status == crate::model::case::AnswerStatus::Resolved;
    q.exec(
        "INSERT INTO case_statements (case_id, raw_id, received_at, sender, subject, status, text)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (raw_id) DO NOTHING",
        sql_params![
            case,
            raw_id,
            received_at,
            answer.sender.clone(),
            answer.subject.clone(),
            answer.status.as_str(),
            &answer.text
        ],
    )?;
    q.exec(
        "UPDATE cases SET answered_at = ?2 WHERE id = ?1",
        sql_params![case, received_at],
    )?;
    let who = answer.sender.as_deref().unwrap_or("");
    case_event(q, case, received_at, CaseEvent::Answered, "customer", who)?;
    if resolved && status == CaseStatus::Open {
        q.exec(
            "UPDATE cases SET status = ?2 WHERE id = ?1",
            sql_params![case, CaseStatus::CustomerResolved.as_str()],
        )?;
        case_event(
            q,
            case,
            received_at,
            CaseEvent::CustomerResolved,
            "customer",
            who,
        )?;
    }
    Ok(true)
}

/// The `cases list` condition of `waiting`, on table alias `cases`.
pub(super) fn waiting_sql(waiting: Option<Waiting>) -> &'static str {
    match waiting {
        None => "",
        Some(Waiting::OnCustomer) => {
            " AND status = 'open' AND notices > 0
              AND (answered_at IS NULL OR answered_at < last_notice_at)"
        }
        Some(Waiting::CustomerAnswered) => " AND status <> 'resolved' AND answered_at IS NOT NULL",
    }
}

impl Db {
    /// Every web-content and copyright report received at or after `since`,
    /// with what became of it (one row per case it is in), oldest first.
    pub fn dsa_notices(&self, since: &str) -> Result<Vec<crate::export::dsa::Notice>, Error> {
        use crate::model::case::{ClosedBy, Decision, Ground};
        self.read(|q| {
            q.rows(
                "SELECT r.id, r.abuse_type, r.received_at,
                    (SELECT min(o.sent_at) FROM outbox o
                      WHERE o.report_id = r.id AND o.kind IN (?2, ?3) AND o.state = ?4),
                    c.decision, c.decision_ground, c.resolved_at, c.closed_by, c.reasons_sent_at
                 FROM reports r
                 LEFT JOIN report_cases rc ON rc.report_id = r.id
                 LEFT JOIN cases c ON c.id = rc.case_id
                 WHERE r.abuse_type IN (?5, ?6) AND r.received_at >= ?1
                 ORDER BY r.id",
                sql_params![
                    since,
                    ReplyKind::Ack.as_str(),
                    ReplyKind::NeedsInfo.as_str(),
                    OutboxState::Sent.as_str(),
                    AbuseType::WebContent.as_str(),
                    AbuseType::Copyright.as_str()
                ],
            )?
            .iter()
            .map(|r| {
                let id = r.int(0)?;
                let at = |i: usize| -> Result<Option<DateTime<Utc>>, Error> {
                    r.opt_text(i)?.map(|t| time("reports", id, &t)).transpose()
                };
                let decision = r
                    .opt_text(4)?
                    .map(|s| super::known("cases", id, &s, Decision::parse))
                    .transpose()?;
                Ok(crate::export::dsa::Notice {
                    report: ReportId(id),
                    category: super::known("reports", id, &r.text(1)?, AbuseType::parse)?,
                    received_at: time("reports", id, &r.text(2)?)?,
                    confirmed_at: at(3)?,
                    decision,
                    ground: r
                        .opt_text(5)?
                        .map(|s| super::known("cases", id, &s, Ground::parse))
                        .transpose()?,
                    decided_at: at(6)?,
                    closed_by: r
                        .opt_text(7)?
                        .map(|s| super::known("cases", id, &s, ClosedBy::parse))
                        .transpose()?,
                    reasons_sent_at: at(8)?,
                })
            })
            .collect()
        })
    }
}

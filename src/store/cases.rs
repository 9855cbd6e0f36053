//! Cases, as stored: [`crate::classify::case`] says which case a report belongs in;
//! this finds or opens it.

use super::sql::{Row, Sql};
use super::{Db, Error};
use crate::classify::case::{CaseKey, Group, Membership};
use crate::model::{CaseId, CaseStatus, Report, ReportId};
use crate::sql_params;
use serde::Serialize;

/// A case as `cases list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub id: CaseId,
    pub abuse_type: crate::model::AbuseType,
    /// The customer whose reports it groups; `None` for a network case.
    pub customer: Option<String>,
    /// The source network of a network case (`192.0.2.0/24`); empty for
    /// a customer's.
    pub network: String,
    pub status: CaseStatus,
    /// When it was closed (by an operator or its policy), and the note.
    pub resolved_at: Option<String>,
    pub note: Option<String>,
    pub closed_by: Option<crate::model::case::ClosedBy>,
    pub reports: i64,
    pub first_at: String,
    pub last_at: String,
    /// Notices (first and digests) the customer was sent.
    pub notices: i64,
    pub last_notice_at: Option<String>,
    /// The customer's last answer.
    pub answered_at: Option<String>,
    /// What was decided about the content when it was closed (DSA).
    pub decision: Option<crate::model::case::Decision>,
    pub decision_ground: Option<crate::model::case::Ground>,
    /// When the customer was sent the statement of reasons.
    pub reasons_sent_at: Option<String>,
}

impl Case {
    /// Whose it is, as a listing shows it: `customer C-1001`, or the
    /// network.
    pub fn group(&self) -> String {
        match &self.customer {
            Some(customer) => format!("customer {customer}"),
            None => self.network.clone(),
        }
    }
}

/// Puts report `report` into the case of `key` reports still join (for a
/// network, the newest one still in its window), or into a new one. A
/// customer's case they said was resolved, or that its policy closed
/// (idle), is opened again by the new report (`reopened` in its history);
/// one an operator resolved stays closed.
pub(super) fn assign(
    q: &mut dyn Sql,
    report: ReportId,
    key: &CaseKey,
    received_at: &str,
) -> Result<(), Error> {
    let abuse_type = key.abuse_type.as_str();
    let open = CaseStatus::Open.as_str();
    let found = match &key.group {
        Group::Customer(customer) => {
            let found = q.row(
                "SELECT id, status, closed_by FROM cases
                 WHERE customer = ?1 AND abuse_type = ?2
                   AND (status <> ?3 OR closed_by = ?4)
                 ORDER BY id DESC LIMIT 1",
                sql_params![
                    customer,
                    abuse_type,
                    CaseStatus::Resolved.as_str(),
                    crate::model::case::ClosedBy::Policy.as_str()
                ],
            )?;
            if let Some(row) = &found {
                let case = CaseId(row.int(0)?);
                if super::known("cases", case.0, &row.text(1)?, CaseStatus::parse)?
                    != CaseStatus::Open
                {
                    q.exec(
                        "UPDATE cases SET status = ?2, resolved_at = NULL, note = NULL,
                             closed_by = NULL
                         WHERE id = ?1",
                        sql_params![case, open],
                    )?;
                    let detail = format!("by report {report}");
                    super::notices::case_event(
                        q,
                        case,
                        received_at,
                        crate::model::case::CaseEvent::Reopened,
                        "policy",
                        &detail,
                    )?;
                }
            }
            found
        }
        Group::Network { net_key, since, .. } => q.row(
            "SELECT id FROM cases WHERE abuse_type = ?1 AND net_key = ?2 AND last_at >= ?3
                 AND customer IS NULL AND status = ?4
             ORDER BY last_at DESC LIMIT 1",
            sql_params![abuse_type, net_key.clone(), since, open],
        )?,
    };
    let case = match found {
        Some(row) => {
            let case = row.int(0)?;
            q.exec(
                "UPDATE cases SET reports = reports + 1,
                     last_at = CASE WHEN last_at > ?2 THEN last_at ELSE ?2 END
                 WHERE id = ?1",
                sql_params![case, received_at],
            )?;
            case
        }
        None => {
            let (customer, net_key, network) = match &key.group {
                Group::Customer(customer) => (Some(customer.clone()), Vec::new(), String::new()),
                Group::Network {
                    net_key, network, ..
                } => (None, net_key.clone(), network.clone()),
            };
            q.insert(
                "INSERT INTO cases (abuse_type, net_key, network, first_at, last_at, reports,
                     customer, status)
                 VALUES (?1, ?2, ?3, ?4, ?4, 1, ?5, ?6)",
                sql_params![abuse_type, net_key, network, received_at, customer, open],
            )?
        }
    };
    q.exec(
        "INSERT INTO report_cases (case_id, report_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        sql_params![case, report],
    )?;
    // The report's first case is the one its row names.
    q.exec(
        "UPDATE reports SET case_id = ?2 WHERE id = ?1 AND case_id IS NULL",
        sql_params![report, case],
    )?;
    Ok(())
}

/// Takes report `report` out of its cases (a case left with no report is
/// deleted, unless it has a history: events, statements or notices, which
/// stay with it) and puts it into those of `keys`.
pub(super) fn regroup(
    q: &mut dyn Sql,
    report: ReportId,
    keys: &[CaseKey],
    received_at: &str,
) -> Result<(), Error> {
    let left: Vec<i64> = q
        .rows(
            "SELECT case_id FROM report_cases WHERE report_id = ?1",
            sql_params![report],
        )?
        .iter()
        .map(|r| r.int(0))
        .collect::<Result<_, _>>()?;
    q.exec(
        "DELETE FROM report_cases WHERE report_id = ?1",
        sql_params![report],
    )?;
    q.exec(
        "UPDATE reports SET case_id = NULL WHERE id = ?1",
        sql_params![report],
    )?;
    for case in left {
        q.exec(
            "UPDATE cases SET reports = reports - 1 WHERE id = ?1",
            sql_params![case],
        )?;
        q.exec(
            "DELETE FROM cases WHERE id = ?1 AND reports <= 0
                 AND NOT EXISTS (SELECT 1 FROM report_cases WHERE case_id = ?1)
                 AND NOT EXISTS (SELECT 1 FROM reports WHERE case_id = ?1)
                 AND NOT EXISTS (SELECT 1 FROM case_events WHERE case_id = ?1)
                 AND NOT EXISTS (SELECT 1 FROM case_statements WHERE case_id = ?1)
                 AND NOT EXISTS (SELECT 1 FROM outbox WHERE case_id = ?1)",
            sql_params![case],
        )?;
    }
    for key in keys {
        assign(q, report, key, received_at)?;
    }
    Ok(())
}

const CASE_COLUMNS: &str = "id, abuse_type, network, reports, first_at, last_at, customer, status,
     resolved_at, note, closed_by, notices, last_notice_at, answered_at, decision, decision_ground,
     reasons_sent_at";

impl Db {
    /// Cases, most recently active first; only `customer`'s, and only
    /// those of `status`, when given; only those after case `after` in
    /// that order (a page's last), when given.
    pub fn cases(
        &self,
        customer: Option<&str>,
        status: Option<CaseStatus>,
        waiting: Option<super::Waiting>,
        after: Option<CaseId>,
        limit: usize,
    ) -> Result<Vec<Case>, Error> {
        let waiting = super::notices::waiting_sql(waiting);
        self.read(|q| {
            q.rows(
                &format!(
                    "SELECT {CASE_COLUMNS} FROM cases
                     WHERE (CAST(?1 AS TEXT) IS NULL OR customer = ?1)
                       AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) {waiting}
                       AND (CAST(?4 AS BIGINT) IS NULL
                            OR (last_at, id) < (SELECT last_at, id FROM cases WHERE id = ?4))
                     ORDER BY last_at DESC, id DESC LIMIT ?3"
                ),
                sql_params![customer, status.map(CaseStatus::as_str), limit, after],
            )?
            .iter()
            .map(read_case)
            .collect()
        })
    }

    /// One case.
    pub fn case(&self, id: CaseId) -> Result<Option<Case>, Error> {
        self.read(|q| {
            q.row(
                &format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ?1"),
                sql_params![id],
            )?
            .as_ref()
            .map(read_case)
            .transpose()
        })
    }

    /// The reports of case `id`, each with every case it is in.
    ///
    /// # Errors
    /// Storage errors.
    pub fn case_memberships(&self, id: CaseId) -> Result<Vec<Membership>, Error> {
        let rows = self.read(|q| {
            q.rows(
                "SELECT mine.report_id, c.id, c.status
                 FROM report_cases mine
                 JOIN report_cases other ON other.report_id = mine.report_id
                 JOIN cases c ON c.id = other.case_id
                 WHERE mine.case_id = ?1
                 ORDER BY mine.report_id, c.id",
                sql_params![id],
            )
        })?;
        let mut out: Vec<Membership> = Vec::new();
        for r in &rows {
            let report = ReportId(r.int(0)?);
            let case = r.int(1)?;
            let status = super::known("cases", case, &r.text(2)?, CaseStatus::parse)?;
            match out.last_mut() {
                Some((last, cases)) if *last == report => cases.push((CaseId(case), status)),
                _ => out.push((report, vec![(CaseId(case), status)])),
            }
        }
        Ok(out)
    }

    /// The reports of a case, oldest first.
    pub fn case_reports(&self, id: CaseId) -> Result<Vec<Report>, Error> {
        let ids = self.read(|q| {
            q.rows(
                "SELECT report_id FROM report_cases WHERE case_id = ?1 ORDER BY report_id",
                sql_params![id],
            )?
            .iter()
            .map(|r| r.int(0))
            .collect::<Result<Vec<_>, _>>()
        })?;
        ids.into_iter()
            .filter_map(|id| self.report(ReportId(id)).transpose())
            .collect()
    }
}

fn read_case(r: &Row) -> Result<Case, Error> {
    let id = r.int(0)?;
    Ok(Case {
        id: CaseId(id),
        abuse_type: super::known("cases", id, &r.text(1)?, crate::model::AbuseType::parse)?,
        network: r.text(2)?,
        reports: r.int(3)?,
        first_at: r.text(4)?,
        last_at: r.text(5)?,
        customer: r.opt_text(6)?,
        status: super::known("cases", id, &r.text(7)?, CaseStatus::parse)?,
        resolved_at: r.opt_text(8)?,
        note: r.opt_text(9)?,
        closed_by: r
            .opt_text(10)?
            .map(|s| super::known("cases", id, &s, crate::model::case::ClosedBy::parse))
            .transpose()?,
        notices: r.int(11)?,
        last_notice_at: r.opt_text(12)?,
        answered_at: r.opt_text(13)?,
        decision: r
            .opt_text(14)?
            .map(|s| super::known("cases", id, &s, crate::model::case::Decision::parse))
            .transpose()?,
        decision_ground: r
            .opt_text(15)?
            .map(|s| super::known("cases", id, &s, crate::model::case::Ground::parse))
            .transpose()?,
        reasons_sent_at: r.opt_text(16)?,
    })
}

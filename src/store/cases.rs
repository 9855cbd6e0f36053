//! Cases, as stored: [`crate::classify::case`] says which case a report belongs in;
//! this finds or opens it.

use super::sql::{Row, Sql};
use super::{Db, Error};
use crate::classify::case::CaseKey;
use crate::model::{CaseId, Report, ReportId};
use crate::sql_params;
use serde::Serialize;

/// A case as `cases list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub id: CaseId,
    pub abuse_type: crate::model::AbuseType,
    pub network: String,
    pub reports: i64,
    pub first_at: String,
    pub last_at: String,
}

/// Puts report `report` into the newest case of `key` still open to it,
/// or into a new one.
pub(super) fn assign(
    q: &mut dyn Sql,
    report: ReportId,
    key: &CaseKey,
    received_at: &str,
) -> Result<(), Error> {
    let abuse_type = key.abuse_type.as_str();
    let found = q.row(
        "SELECT id FROM cases WHERE abuse_type = ?1 AND net_key = ?2 AND last_at >= ?3
         ORDER BY last_at DESC LIMIT 1",
        sql_params![abuse_type, key.net_key.clone(), &key.since],
    )?;
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
        None => q.insert(
            "INSERT INTO cases (abuse_type, net_key, network, first_at, last_at, reports)
             VALUES (?1, ?2, ?3, ?4, ?4, 1)",
            sql_params![abuse_type, key.net_key.clone(), &key.network, received_at],
        )?,
    };
    q.exec(
        "UPDATE reports SET case_id = ?2 WHERE id = ?1",
        sql_params![report, case],
    )?;
    Ok(())
}

const CASE_COLUMNS: &str = "id, abuse_type, network, reports, first_at, last_at";

impl Db {
    /// Cases, most recently active first.
    pub fn cases(&self, limit: usize) -> Result<Vec<Case>, Error> {
        self.read(|q| {
            q.rows(
                &format!("SELECT {CASE_COLUMNS} FROM cases ORDER BY last_at DESC LIMIT ?1"),
                sql_params![limit],
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

    /// The reports of a case, oldest first.
    pub fn case_reports(&self, id: CaseId) -> Result<Vec<Report>, Error> {
        let ids = self.read(|q| {
            q.rows(
                "SELECT id FROM reports WHERE case_id = ?1 ORDER BY id",
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
    })
}

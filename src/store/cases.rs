//! Cases, as stored: [`crate::cases`] says which case a report belongs in;
//! this finds or opens it.

use super::{Db, Error};
use crate::cases::CaseKey;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

/// A case as `cases list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub id: crate::model::CaseId,
    pub abuse_type: String,
    pub network: String,
    pub reports: i64,
    pub first_at: String,
    pub last_at: String,
}

/// Puts report `report` into the newest case of `key` still open to it,
/// or into a new one.
pub(super) fn assign(
    tx: &Transaction<'_>,
    report: i64,
    key: &CaseKey,
    received_at: &str,
) -> Result<(), Error> {
    let abuse_type = key.abuse_type.as_str();
    let found: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM cases WHERE abuse_type = ?1 AND net_key = ?2 AND last_at >= ?3
             ORDER BY last_at DESC LIMIT 1",
        )?
        .query_row(params![abuse_type, key.net_key, key.since], |r| r.get(0))
        .optional()?;
    let case = match found {
        Some(case) => {
            tx.prepare_cached(
                "UPDATE cases SET reports = reports + 1, last_at = max(last_at, ?2) WHERE id = ?1",
            )?
            .execute(params![case, received_at])?;
            case
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO cases (abuse_type, net_key, network, first_at, last_at, reports)
                 VALUES (?1, ?2, ?3, ?4, ?4, 1)",
            )?
            .execute(params![abuse_type, key.net_key, key.network, received_at])?;
            tx.last_insert_rowid()
        }
    };
    tx.prepare_cached("UPDATE reports SET case_id = ?2 WHERE id = ?1")?
        .execute(params![report, case])?;
    Ok(())
}

impl Db {
    /// Cases, most recently active first.
    pub fn cases(&self, limit: usize) -> Result<Vec<Case>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, abuse_type, network, reports, first_at, last_at FROM cases ORDER BY last_at DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], read_case)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One case.
    pub fn case(&self, id: crate::model::CaseId) -> Result<Option<Case>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, abuse_type, network, reports, first_at, last_at FROM cases WHERE id = ?1",
        )?;
        Ok(stmt.query_row([id], read_case).optional()?)
    }

    /// The reports of a case, oldest first.
    pub fn case_reports(
        &self,
        id: crate::model::CaseId,
    ) -> Result<Vec<crate::model::Report>, Error> {
        let ids: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id FROM reports WHERE case_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map([id], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        ids.into_iter()
            .filter_map(|id| self.report(crate::model::ReportId(id)).transpose())
            .collect()
    }
}

fn read_case(r: &rusqlite::Row<'_>) -> rusqlite::Result<Case> {
    Ok(Case {
        id: r.get(0)?,
        abuse_type: r.get(1)?,
        network: r.get(2)?,
        reports: r.get(3)?,
        first_at: r.get(4)?,
        last_at: r.get(5)?,
    })
}

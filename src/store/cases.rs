//! Cases: reports of one abuse type about the same source network (/24 for
//! IPv4, /64 for IPv6) within [`WINDOW_DAYS`] are linked into one case, so an
//! operator handles a campaign once.

use super::{ip_key, net_len, Db, Error};
use crate::model::ReportDraft;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

/// A report joins a case whose last report is at most this old.
pub const WINDOW_DAYS: i64 = 7;

/// A case as `cases list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub id: i64,
    pub abuse_type: String,
    pub network: String,
    pub reports: i64,
    pub first_at: String,
    pub last_at: String,
}

/// Puts new report `report` into its case (found or opened); a report
/// without an offending address has none.
pub(super) fn assign(
    tx: &Transaction<'_>,
    report: i64,
    draft: &ReportDraft,
    received_at: &str,
) -> Result<(), Error> {
    let Some(source) = draft.sources.first() else {
        return Ok(());
    };
    let key = ip_key(*source);
    let net = &key[..net_len(&key)];
    let network = network_text(&key);
    let since = chrono::DateTime::parse_from_rfc3339(received_at)
        .map(|t| {
            (t - chrono::Duration::days(WINDOW_DAYS))
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        })
        .unwrap_or_default();
    let abuse_type = draft.abuse_type.as_str();
    let found: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM cases WHERE abuse_type = ?1 AND net_key = ?2 AND last_at >= ?3
             ORDER BY last_at DESC LIMIT 1",
        )?
        .query_row(params![abuse_type, net, since], |r| r.get(0))
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
            .execute(params![abuse_type, net, network, received_at])?;
            tx.last_insert_rowid()
        }
    };
    tx.prepare_cached("UPDATE reports SET case_id = ?2 WHERE id = ?1")?
        .execute(params![report, case])?;
    Ok(())
}

fn network_text(key: &[u8; 16]) -> String {
    let v6 = std::net::Ipv6Addr::from(*key);
    match v6.to_ipv4_mapped() {
        Some(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        None => {
            let mut net = *key;
            net[8..].fill(0);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
    }
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
    pub fn case(&self, id: i64) -> Result<Option<Case>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, abuse_type, network, reports, first_at, last_at FROM cases WHERE id = ?1",
        )?;
        Ok(stmt.query_row([id], read_case).optional()?)
    }

    /// The reports of a case, oldest first.
    pub fn case_reports(&self, id: i64) -> Result<Vec<crate::model::Report>, Error> {
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

//! Writing a report's evidence rows, the bulk of what the single writer
//! writes (a 50-row CSV report is some 55 rows).
//!
//! One prepared `INSERT` a row: multi-row `VALUES` lists measured slower
//! here (`cargo bench --bench pipeline -- --only=store`). A log line is
//! stored once per report: further rows found on the same line point at the
//! row that carries it (`line_of`), and only that first row's id is read
//! back ([`Sql::insert`]): reading every id doubled the writer's time per
//! report.

use super::sql::{Sql, Value};
use super::Error;
use crate::evidence::Row;
use crate::model::ReportId;
use std::collections::HashMap;

/// Inserts `rows` as the evidence of `report`.
pub(super) fn insert(q: &mut dyn Sql, report: ReportId, rows: &[Row]) -> Result<(), Error> {
    // Lines found on more than one row: their first row's id is needed.
    let mut repeats: HashMap<&str, u32> = HashMap::new();
    for line in rows.iter().filter_map(|r| r.line.as_deref()) {
        *repeats.entry(line).or_default() += 1;
    }
    let mut carriers: HashMap<&str, i64> = HashMap::new();
    for row in rows {
        let line = row.line.as_deref();
        let line_of = line.and_then(|l| carriers.get(l).copied());
        let values = values(report, row, line_of);
        match line {
            Some(line) if line_of.is_none() && repeats.get(line).is_some_and(|n| *n > 1) => {
                carriers.insert(line, q.insert(statement(), &values)?);
            }
            _ => {
                q.exec(statement(), &values)?;
            }
        }
    }
    Ok(())
}

/// The `INSERT` of one row.
fn statement() -> &'static str {
    "INSERT INTO evidence (report_id, kind, source_ip, target_ip, source_port, target_port,
         occurred_at, url, line, origin, line_of, role)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
}

fn values(report: ReportId, row: &Row, line_of: Option<i64>) -> Vec<Value> {
    vec![
        Value::from(report),
        Value::from(row.kind.as_str()),
        row.source_ip.map(|ip| ip.to_string()).into(),
        row.target_ip.map(|ip| ip.to_string()).into(),
        row.source_port.into(),
        row.target_port.into(),
        row.occurred_at.clone().into(),
        row.url.clone().into(),
        // A row pointing at its line's carrier does not repeat the line.
        match line_of {
            Some(_) => Value::Null,
            None => row.line.clone().into(),
        },
        Value::from(row.origin.as_str()),
        line_of.into(),
        Value::from(row.role.as_str()),
    ]
}

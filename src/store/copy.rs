//! `migrate-store`: a desk moved from one store to another (SQLite to
//! PostgreSQL), raw messages included, ids kept, resumable.
//!
//! Each table is copied in id order, in batches that each commit on their
//! own; a table already copied up to some id continues after it, so a run
//! that stopped (or a second run after the daemon took more mail) picks up
//! where the last one ended. Tables go in the order their references need:
//! raw messages, cases, reports (with their address index and search text),
//! evidence, replies, history, customers and their assignments; then the
//! small tables kept by name (the console's operators, the IMAP mailboxes'
//! progress; a row the target has already stays as it is); then the
//! installation's secret, so report tokens and export ids stay what they
//! were. Console sessions are not copied: operators log in again.

use super::sql::{Dialect, Sql, Value};
use super::{Db, Error};
use crate::sql_params;

/// Rows per transaction.
const BATCH: usize = 500;

/// Each table and the columns both stores have.
const TABLES: &[(&str, &str)] = &[
    (
        "raw_messages",
        "id, received_at, origin, peer_ip, helo, mail_from, rcpt_to, message_id, dedup_key, \
         size_bytes, bytes, status, error, auth, dsn",
    ),
    (
        "cases",
        "id, abuse_type, net_key, network, first_at, last_at, reports, customer, status, \
         resolved_at, note, notices, first_notice_at, last_notice_at, reminded_at, escalated_at, \
         answered_at, closed_by, decision, decision_ground, reasons_sent_at",
    ),
    (
        "reports",
        "id, raw_id, message_id, received_at, reporter, subject, abuse_type, subtype, ips, urls, \
         evidence_rows, missing, reply, parse_warnings, processed_at, formats, reasons, \
         reply_reason, status, resolved_at, follow_up_of, case_id, language, auth, \
         rsit_taxonomy, rsit_type, feed, pending_reply, pending_follow_up, checks_due_at, \
         owners, ownership",
    ),
    (
        "evidence",
        "id, report_id, kind, source_ip, target_ip, source_port, target_port, occurred_at, url, \
         line, origin, line_of, role",
    ),
    (
        "outbox",
        "id, report_id, kind, recipient, message_id, note, state, attempts, next_attempt_at, \
         last_error, created_at, sent_at, recipient_key, recipient_domain, case_id, subject, body, \
         attachment",
    ),
    ("report_events", "id, report_id, at, kind, detail"),
    ("case_events", "id, case_id, at, kind, actor, detail"),
    (
        "case_statements",
        "id, case_id, raw_id, received_at, sender, subject, status, text",
    ),
    (
        "customers",
        "id, reference, name, emails, language, policy, enabled, updated_at",
    ),
    (
        "assignments",
        "id, customer_id, netblock, domain, valid_from, valid_until, source, created_at",
    ),
    (
        "owner_imports",
        "id, source, imported_at, created, updated, ended",
    ),
];

/// Tables keyed by a name, small by nature: copied whole, a row the target
/// has already kept.
const KEYED_TABLES: &[(&str, &str)] = &[
    (
        "operators",
        "name, role, password_hash, disabled_at, created_at",
    ),
    (
        "imap_progress",
        "mailbox, uid_validity, last_uid, updated_at",
    ),
];

/// Where `owners` is among the reports' columns above.
const REPORT_OWNERS_COLUMN: usize = 30;

/// What one table's copy did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub table: &'static str,
    /// Rows copied by this run.
    pub rows: u64,
    /// Rows the target has now.
    pub total: u64,
}

/// The insert of one row of `columns` into `table`; a row the target has
/// already stays.
fn insert_sql(table: &str, columns: &str) -> String {
    let placeholders: Vec<String> = (1..=columns.split(',').count())
        .map(|i| format!("?{i}"))
        .collect();
    format!(
        "INSERT INTO {table} ({columns}) VALUES ({}) ON CONFLICT DO NOTHING",
        placeholders.join(", ")
    )
}

impl Db {
    /// Copies everything of `self` into `target` that `target` does not
    /// have yet (by id), table by table. `progress` hears of each batch.
    ///
    /// # Errors
    /// Either store fails; what was committed stays, and a new run
    /// continues from there.
    pub fn copy_into(
        &self,
        target: &mut Db,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<Vec<Copied>, Error> {
        let mut out = Vec::new();
        for (table, columns) in TABLES {
            let mut after = target
                .read(|q| q.count(&format!("SELECT coalesce(max(id), 0) FROM {table}"), &[]))?
                as i64;
            let mut rows = 0;
            loop {
                let batch = self.read(|q| {
                    q.rows(
                        &format!(
                            "SELECT {columns} FROM {table} WHERE id > ?1 ORDER BY id LIMIT ?2"
                        ),
                        sql_params![after, BATCH],
                    )
                })?;
                let Some(last) = batch.last() else { break };
                after = last.int(0)?;
                // The search text lives apart in SQLite (FTS5); a report's
                // cases (it may be in several) in their own table.
                let (texts, cases) = if *table == "reports" {
                    (
                        batch
                            .iter()
                            .map(|row| self.search_text(row.int(0)?))
                            .collect::<Result<Vec<_>, Error>>()?,
                        batch
                            .iter()
                            .map(|row| self.cases_of(row.int(0)?))
                            .collect::<Result<Vec<_>, Error>>()?,
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                let insert = insert_sql(table, columns);
                target.write(|q| {
                    for (i, row) in batch.iter().enumerate() {
                        q.exec(&insert, &row.0)?;
                        if *table == "reports" {
                            let id = crate::model::ReportId(row.int(0)?);
                            let ips: Vec<String> =
                                super::parse_json_list("reports", id.0, &row.text(8)?)?;
                            super::index_report_ips(q, id, &ips)?;
                            let (subject, body) = &texts[i];
                            super::reports::index_text(q, id, subject, body, true)?;
                            let owners: Vec<crate::model::owner::Owner> = super::parse_json_list(
                                "reports",
                                id.0,
                                &row.text(REPORT_OWNERS_COLUMN)?,
                            )?;
                            super::reports::index_customers(q, id, &owners)?;
                            for (case, notice) in &cases[i] {
                                q.exec(
                                    "INSERT INTO report_cases (case_id, report_id, notice_id)
                                     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                                    sql_params![*case, id, *notice],
                                )?;
                            }
                        }
                    }
                    Ok(())
                })?;
                rows += batch.len() as u64;
                progress(table, rows);
            }
            target.read(|q| restart_ids(q, table))?;
            let total = target.read(|q| q.count(&format!("SELECT count(*) FROM {table}"), &[]))?;
            out.push(Copied { table, rows, total });
        }
        for (table, columns) in KEYED_TABLES {
            let all = self.read(|q| q.rows(&format!("SELECT {columns} FROM {table}"), &[]))?;
            let insert = insert_sql(table, columns);
            let rows = target.write(|q| {
                let mut n = 0;
                for row in &all {
                    n += q.exec(&insert, &row.0)?;
                }
                Ok(n)
            })?;
            progress(table, rows);
            let total = target.read(|q| q.count(&format!("SELECT count(*) FROM {table}"), &[]))?;
            out.push(Copied { table, rows, total });
        }
        let secret = self.installation_secret()?;
        target.write(|q| {
            q.exec(
                "UPDATE installation SET secret = ?1 WHERE id = 1",
                &[Value::Blob(secret)],
            )
        })?;
        Ok(out)
    }

    /// The cases report `id` is in, each with the notice that told its
    /// customer of it.
    fn cases_of(&self, id: i64) -> Result<Vec<(i64, Option<i64>)>, Error> {
        self.read(|q| {
            q.rows(
                "SELECT case_id, notice_id FROM report_cases WHERE report_id = ?1 ORDER BY case_id",
                sql_params![id],
            )?
            .iter()
            .map(|r| Ok((r.int(0)?, r.opt_int(1)?)))
            .collect()
        })
    }

    /// A report's subject and search body as the source holds them.
    fn search_text(&self, id: i64) -> Result<(String, String), Error> {
        self.read(|q| {
            let sql = match q.dialect() {
                Dialect::Sqlite => "SELECT subject, body FROM report_text WHERE rowid = ?1",
                Dialect::Postgres => "SELECT coalesce(subject, ''), '' FROM reports WHERE id = ?1",
            };
            Ok(match q.row(sql, sql_params![id])? {
                Some(row) => (
                    row.opt_text(0)?.unwrap_or_default(),
                    row.opt_text(1)?.unwrap_or_default(),
                ),
                None => (String::new(), String::new()),
            })
        })
    }
}

/// PostgreSQL: the table's id sequence continues after the copied ids.
fn restart_ids(q: &mut dyn Sql, table: &str) -> Result<(), Error> {
    if q.dialect() == Dialect::Postgres {
        q.rows(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                     greatest((SELECT max(id) FROM {table}), 1))::text"
            ),
            &[],
        )?;
    }
    Ok(())
}

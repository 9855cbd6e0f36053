//! The web desk's accounts, sessions and dashboard counts: SQL and nothing
//! else. Whether a session is still good, and what a role may do, is
//! decided in `web/`.

use super::{Db, Error};
use crate::model::operator::{Operator, OperatorRole};
use crate::sql_params;

/// A session as stored, with its operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub operator: Operator,
    pub csrf: String,
    pub created_at: String,
    pub last_seen: String,
}

fn read_operator(row: &super::sql::Row, first: usize) -> Result<Operator, Error> {
    let name = row.text(first)?;
    let role = row.text(first + 1)?;
    Ok(Operator {
        role: OperatorRole::parse(&role).ok_or_else(|| Error::Corrupt {
            table: "operators",
            id: 0,
            detail: format!("operator {name:?} has an unknown role {role:?}"),
        })?,
        name,
        disabled_at: row.opt_text(first + 2)?,
        created_at: row.text(first + 3)?,
    })
}

impl Db {
    /// Keeps this connection's page cache small (SQLite: 2 MiB instead of
    /// the 32 MiB a command's connection may grow to): the console holds a
    /// few connections for as long as it runs.
    ///
    /// # Errors
    /// The store fails.
    pub fn use_small_cache(&self) -> Result<(), Error> {
        match &self.backend {
            super::Backend::Sqlite(conn) => Ok(conn.pragma_update(None, "cache_size", -2048)?),
            super::Backend::Postgres(_) => Ok(()),
        }
    }

    /// Adds an operator; `false` when the name is taken.
    ///
    /// # Errors
    /// The store fails.
    pub fn add_operator(
        &mut self,
        name: &str,
        role: OperatorRole,
        password_hash: &str,
        now: &str,
    ) -> Result<bool, Error> {
        self.write(|q| {
            let added = q.exec(
                "INSERT INTO operators (name, role, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                sql_params![name, role.as_str(), password_hash, now],
            )?;
            Ok(added == 1)
        })
    }

    /// Every operator, by name.
    ///
    /// # Errors
    /// The store fails.
    pub fn operators(&self) -> Result<Vec<Operator>, Error> {
        self.read(|q| {
            q.rows(
                "SELECT name, role, disabled_at, created_at FROM operators ORDER BY name",
                &[],
            )?
            .iter()
            .map(|row| read_operator(row, 0))
            .collect()
        })
    }

    /// An operator and its password hash, to check a login.
    ///
    /// # Errors
    /// The store fails.
    pub fn operator_login(&self, name: &str) -> Result<Option<(Operator, String)>, Error> {
        self.read(|q| {
            q.row(
                "SELECT name, role, disabled_at, created_at, password_hash
                 FROM operators WHERE name = ?1",
                sql_params![name],
            )?
            .map(|row| Ok((read_operator(&row, 0)?, row.text(4)?)))
            .transpose()
        })
    }

    /// Disables an operator and ends its sessions; `false` when there is
    /// no such operator.
    ///
    /// # Errors
    /// The store fails.
    pub fn disable_operator(&mut self, name: &str, now: &str) -> Result<bool, Error> {
        self.write(|q| {
            let found = q.exec(
                "UPDATE operators SET disabled_at = coalesce(disabled_at, ?2) WHERE name = ?1",
                sql_params![name, now],
            )?;
            q.exec(
                "DELETE FROM web_sessions WHERE operator = ?1",
                sql_params![name],
            )?;
            Ok(found == 1)
        })
    }

    /// Starts a session.
    ///
    /// # Errors
    /// The store fails.
    pub fn create_session(
        &mut self,
        token_hash: &str,
        operator: &str,
        csrf: &str,
        now: &str,
    ) -> Result<(), Error> {
        self.write(|q| {
            q.exec(
                "INSERT INTO web_sessions (token_hash, operator, csrf, created_at, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                sql_params![token_hash, operator, csrf, now],
            )?;
            Ok(())
        })
    }

    /// The session whose cookie hashes to `token_hash`, with its operator.
    ///
    /// # Errors
    /// The store fails.
    pub fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, Error> {
        self.read(|q| {
            q.row(
                "SELECT o.name, o.role, o.disabled_at, o.created_at,
                        s.csrf, s.created_at, s.last_seen
                 FROM web_sessions s JOIN operators o ON o.name = s.operator
                 WHERE s.token_hash = ?1",
                sql_params![token_hash],
            )?
            .map(|row| {
                Ok(SessionRow {
                    operator: read_operator(&row, 0)?,
                    csrf: row.text(4)?,
                    created_at: row.text(5)?,
                    last_seen: row.text(6)?,
                })
            })
            .transpose()
        })
    }

    /// Records that a session was used at `now`.
    ///
    /// # Errors
    /// The store fails.
    pub fn touch_session(&mut self, token_hash: &str, now: &str) -> Result<(), Error> {
        self.write(|q| {
            q.exec(
                "UPDATE web_sessions SET last_seen = ?2 WHERE token_hash = ?1",
                sql_params![token_hash, now],
            )?;
            Ok(())
        })
    }

    /// Ends a session (logout, or found expired).
    ///
    /// # Errors
    /// The store fails.
    pub fn end_session(&mut self, token_hash: &str) -> Result<(), Error> {
        self.write(|q| {
            q.exec(
                "DELETE FROM web_sessions WHERE token_hash = ?1",
                sql_params![token_hash],
            )?;
            Ok(())
        })
    }

    /// Removes sessions idle since before `idle_before` or started before
    /// `started_before` (both RFC 3339); how many.
    ///
    /// # Errors
    /// The store fails.
    pub fn end_stale_sessions(
        &mut self,
        idle_before: &str,
        started_before: &str,
    ) -> Result<u64, Error> {
        self.write(|q| {
            q.exec(
                "DELETE FROM web_sessions WHERE last_seen < ?1 OR created_at < ?2",
                sql_params![idle_before, started_before],
            )
        })
    }

    /// Reports received in the hour of `since` (`YYYY-MM-DDTHH`, or a day)
    /// and after, counted per period and type from `report_hours`: the
    /// period is the first `prefix` characters of the hour (10: the day,
    /// 13: the hour).
    ///
    /// # Errors
    /// The store fails.
    pub fn reports_per_period(
        &self,
        since: &str,
        prefix: usize,
    ) -> Result<Vec<(String, crate::model::AbuseType, u64)>, Error> {
        self.read(|q| {
            q.rows(
                "SELECT substr(hour, 1, CAST(?2 AS INTEGER)) AS period, abuse_type, CAST(sum(n) AS BIGINT)
                 FROM report_hours WHERE hour >= ?1 GROUP BY period, abuse_type",
                sql_params![since, prefix],
            )?
            .iter()
            .map(|row| {
                let kind = row.text(1)?;
                Ok((
                    row.text(0)?,
                    super::known("reports", 0, &kind, crate::model::AbuseType::parse)?,
                    u64::try_from(row.int(2)?).unwrap_or(0),
                ))
            })
            .collect()
        })
    }

    /// The most failed logins counted against any of `keys` in a window
    /// that began after `over` (RFC 3339): windows that began at or before
    /// it are over.
    ///
    /// # Errors
    /// The store fails.
    pub fn login_failures(&self, keys: &[String], over: &str) -> Result<u64, Error> {
        self.read(|q| {
            let mut most = 0;
            for key in keys {
                let n = q
                    .row(
                        "SELECT failures FROM login_failures WHERE key = ?1 AND window_start > ?2",
                        sql_params![key.as_str(), over],
                    )?
                    .map(|r| r.int(0))
                    .transpose()?
                    .unwrap_or(0);
                most = most.max(u64::try_from(n).unwrap_or(0));
            }
            Ok(most)
        })
    }

    /// Counts a failed login at `now` against each of `keys`: in its
    /// window, or in a new one from `now` when its window began at or
    /// before `over`. Windows that are over are deleted, so the table holds
    /// only the last window's keys.
    ///
    /// # Errors
    /// The store fails.
    pub fn count_login_failure(
        &mut self,
        keys: &[String],
        now: &str,
        over: &str,
    ) -> Result<(), Error> {
        self.write(|q| {
            q.exec(
                "DELETE FROM login_failures WHERE window_start <= ?1",
                sql_params![over],
            )?;
            for key in keys {
                q.exec(
                    "INSERT INTO login_failures (key, window_start, failures) VALUES (?1, ?2, 1)
                     ON CONFLICT (key) DO UPDATE SET failures = login_failures.failures + 1",
                    sql_params![key.as_str(), now],
                )?;
            }
            Ok(())
        })
    }

    /// Forgets the failures counted against `key`.
    ///
    /// # Errors
    /// The store fails.
    pub fn clear_login_failures(&mut self, key: &str) -> Result<(), Error> {
        self.write(|q| {
            q.exec(
                "DELETE FROM login_failures WHERE key = ?1",
                sql_params![key],
            )?;
            Ok(())
        })
    }
}

//! The SQLite store: every SQL statement of the daemon lives under this module.
//!
//! In: committed-or-not messages, report drafts, queries. Out: ids, reports,
//! counts. [`Db`] is a synchronous connection (WAL, `synchronous=FULL`,
//! `busy_timeout`); async code reaches SQLite only through [`CommitQueue`]
//! (group commit on its own thread) or `spawn_blocking`, never on an async worker.
//! Migrations are forward-only, numbered, and counted by `PRAGMA user_version`.

mod raw;
mod reports;
mod writer;

pub use reports::{ListFilter, Stats};
pub use writer::CommitQueue;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Migrations in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no database at {path}")]
    Missing { path: PathBuf },
    #[error("database {path} has schema version {found}; this build knows up to {known}")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("group commit failed: {detail}")]
    Commit {
        detail: String,
        is_storage_full: bool,
    },
    #[error("the commit queue is closed")]
    Closed,
    #[error("row {id} of {table} is unreadable: {detail}")]
    Corrupt {
        table: &'static str,
        id: i64,
        detail: String,
    },
}

impl Error {
    /// The disk (or SQLite's page limit) is full: RFC 5321 452 territory.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Sqlite(e) | Error::Open { source: e, .. } => {
                e.sqlite_error_code() == Some(ErrorCode::DiskFull)
            }
            Error::Commit {
                is_storage_full, ..
            } => *is_storage_full,
            _ => false,
        }
    }
}

/// How hard a connection's commits push to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a commit is on disk when it returns. For raw intake.
    Full,
    /// `synchronous=NORMAL`: in WAL mode the database stays consistent but the last
    /// commits may roll back on power loss. Only for rows derivable from raw
    /// messages (reports): the next FULL commit of intake syncs them too, and a
    /// raw message still marked `received` is processed again at start-up.
    Derived,
}

/// One synchronous connection to the database.
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    ///
    /// # Errors
    /// The file cannot be opened, is not SQLite, or is from a newer build.
    pub fn open(path: &Path, durability: Durability) -> Result<Db, Error> {
        let conn = Connection::open(path).map_err(|source| Error::Open {
            path: path.into(),
            source,
        })?;
        Self::setup(conn, path, durability)
    }

    /// Opens an existing database; does not create one.
    ///
    /// # Errors
    /// As [`Db::open`], and [`Error::Missing`] when there is no file.
    pub fn open_existing(path: &Path) -> Result<Db, Error> {
        if !path.exists() {
            return Err(Error::Missing { path: path.into() });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| Error::Open {
            path: path.into(),
            source,
        })?;
        Self::setup(conn, path, Durability::Full)
    }

    fn setup(conn: Connection, path: &Path, durability: Durability) -> Result<Db, Error> {
        let open_err = |source| Error::Open {
            path: path.into(),
            source,
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Derived => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let mut db = Db { conn };
        db.migrate(path)?;
        Ok(db)
    }

    /// The schema version this database is at.
    pub fn schema_version(&self) -> Result<i64, Error> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn migrate(&mut self, path: &Path) -> Result<(), Error> {
        let known = MIGRATIONS.len() as i64;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > known {
            return Err(Error::TooNew {
                path: path.into(),
                found,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).expect("a list of strings always serialises")
}

fn parse_json_list(table: &'static str, id: i64, text: &str) -> Result<Vec<String>, Error> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt {
        table,
        id,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_set_user_version_and_reopen_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&path, Durability::Full).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(db);
        let db = Db::open(&path, Durability::Full).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Db::open(&path, Durability::Full).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Db::open(&path, Durability::Full).err().unwrap();
        assert!(matches!(err, Error::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn open_existing_does_not_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.db");
        assert!(matches!(
            Db::open_existing(&path),
            Err(Error::Missing { .. })
        ));
        assert!(!path.exists());
    }
}

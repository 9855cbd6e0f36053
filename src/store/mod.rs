//! The SQLite store: every SQL statement of the daemon lives under this module.
//!
//! In: committed-or-not messages, report drafts, queries. Out: ids, reports,
//! counts. [`Db`] is a synchronous connection (WAL, `synchronous=FULL`,
//! `busy_timeout`); async code reaches SQLite only through [`CommitQueue`]
//! (group commit on its own thread) or `spawn_blocking`, never on an async worker.
//! Migrations are forward-only, numbered, and counted by `PRAGMA user_version`.

mod cases;
mod checks;
mod console;
mod copy;
mod evidence;
mod imap;
mod notices;
mod outbox;
mod owners;
pub mod pg;
mod plans;
mod raw;
mod raw_rows;
mod reports;
pub mod sql;
mod writer;

pub use cases::Case;
pub use checks::{CheckDone, CheckJob, Settlement};
pub use console::SessionRow;
pub use copy::Copied;
pub use notices::{CaseHistory, NewNotice, NoticeCase, Statement, Waiting};
pub use outbox::{Entry as OutboxEntry, OutboxChange, Resolution};
pub use raw::RawSummary;
pub use reports::{Dashboard, ListFilter, Outcome, Pruned, ReportSink, Saved, Stats, Stored};
pub use writer::{CommitQueue, WorkerPending, WorkerSink};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest WAL file kept on disk between bursts.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Prepared statements kept per SQLite connection.
const STATEMENT_CACHE: usize = 256;

/// Page cache per connection, in KiB (as a negative `cache_size`).
const CACHE_KIB: i64 = -32 * 1024;

/// Migrations in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_evidence.sql"),
    include_str!("migrations/0003_replies.sql"),
    include_str!("migrations/0004_report_ips.sql"),
    include_str!("migrations/0005_search.sql"),
    include_str!("migrations/0006_cases.sql"),
    include_str!("migrations/0007_language.sql"),
    include_str!("migrations/0008_indexes.sql"),
    include_str!("migrations/0009_evidence_lines.sql"),
    include_str!("migrations/0010_reply_safety.sql"),
    include_str!("migrations/0011_evidence_roles.sql"),
    include_str!("migrations/0012_rsit_and_feed.sql"),
    include_str!("migrations/0013_dsn.sql"),
    include_str!("migrations/0014_pending_checks.sql"),
    include_str!("migrations/0015_follow_up_index.sql"),
    include_str!("migrations/0016_rsit_backfill.sql"),
    include_str!("migrations/0017_owners.sql"),
    include_str!("migrations/0018_routing.sql"),
    include_str!("migrations/0019_case_resolution.sql"),
    include_str!("migrations/0020_notices.sql"),
    include_str!("migrations/0021_imap.sql"),
    include_str!("migrations/0022_web.sql"),
    include_str!("migrations/0023_login_failures.sql"),
    include_str!("migrations/0024_open_counts.sql"),
];

/// How long a connection waits for another writer before giving up, in
/// fine-grained retries first (the intake writer and the pipeline worker take
/// turns within milliseconds) and then in 1 ms steps.
const BUSY_FINE_RETRIES: i32 = 200;
const BUSY_FINE_STEP: Duration = Duration::from_micros(50);
const BUSY_COARSE_STEP: Duration = Duration::from_millis(1);
const BUSY_COARSE_RETRIES: i32 = 30_000;

/// SQLite's own busy handler sleeps in steps of up to 100 ms, which would put
/// tens of milliseconds on an SMTP reply whenever the worker holds the write
/// lock; this one retries within microseconds.
fn on_busy(retries: i32) -> bool {
    if retries < BUSY_FINE_RETRIES {
        std::thread::sleep(BUSY_FINE_STEP);
        true
    } else if retries < BUSY_FINE_RETRIES + BUSY_COARSE_RETRIES {
        std::thread::sleep(BUSY_COARSE_STEP);
        true
    } else {
        false
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite's words once (rusqlite repeats the path and the code).
    #[error("cannot open database {path}: {}", sqlite_text(.cause))]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error("{path} is a directory; the store is a file in it (store.path or --db), e.g. {}", .path.join("abuse-inbox.db").display())]
    IsDirectory { path: PathBuf },
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no database at {path}")]
    Missing { path: PathBuf },
    #[error("{path} exists; not overwriting it")]
    Exists { path: PathBuf },
    #[error("database {path} has schema version {found}; this build knows up to {known}")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The server's own words and SQLSTATE, said once (the client's
    /// "db error" wrapper left out), with the fix when it is a known one.
    #[error("postgresql: {}", pg_text(.0))]
    Postgres(postgres::Error),
    #[error("group commit failed: {detail}")]
    Commit {
        detail: String,
        is_storage_full: bool,
    },
    #[error("the commit queue is closed")]
    Closed,
    #[error("postgresql at {store}: the connection was lost and the last attempt to open it again failed; trying again within a second")]
    Reconnecting { store: String },
    /// A transaction of several batches failed; each batch gets its text.
    #[error("storing reports failed: {0}")]
    Batch(String),
    #[error("{what} is not supported")]
    Unsupported { what: String },
    #[error("database {path} has schema version {found}; this build needs {known}: run a command that writes (`abuse-inbox serve`, `ingest` or `reprocess`) once to migrate it")]
    TooOld {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("column {index}: {detail}")]
    Column { index: usize, detail: String },
    #[error("row {id} of {table} is unreadable: {detail}")]
    Corrupt {
        table: &'static str,
        id: i64,
        detail: String,
    },
}

impl Error {
    /// The database refused the data itself (a value too long for an index
    /// or the search text, a constraint, a malformed value): the same row
    /// fails again, whatever else is in its transaction. Not a full disk, a
    /// lost connection or a lock: those pass.
    pub fn is_refused_data(&self) -> bool {
        match self {
            Error::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch)
            ),
            Error::Postgres(e) => e.code().is_some_and(|code| {
                // Class 22 data exception, 23 integrity constraint, 54
                // program limit exceeded (index row size, tsvector size).
                let class = &code.code()[..2];
                matches!(class, "22" | "23" | "54")
            }),
            _ => false,
        }
    }

    /// The database's own words: for PostgreSQL its message and SQLSTATE
    /// (what its server log would say), for SQLite its message and code.
    pub fn database_text(&self) -> String {
        match self {
            Error::Postgres(e) => match e.as_db_error() {
                Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
                None => e.to_string(),
            },
            Error::Sqlite(e) => match e.sqlite_error() {
                Some(code) => format!("{e} (SQLite code {})", code.extended_code),
                None => e.to_string(),
            },
            other => other.to_string(),
        }
    }

    /// The disk (or SQLite's page limit) is full: RFC 5321 452 territory.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Sqlite(e) | Error::Open { cause: e, .. } => {
                e.sqlite_error_code() == Some(ErrorCode::DiskFull)
            }
            Error::Commit {
                is_storage_full, ..
            } => *is_storage_full,
            _ => false,
        }
    }
}

/// What a connection is for, which decides how hard its commits push to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The single writer: `synchronous=FULL` (a commit is on disk when it
    /// returns; reports are written with NORMAL, see `writer`) and no automatic
    /// checkpoint, which would sit on the path to a 250.
    Intake,
    /// The pipeline worker's reading connection (its reports are written by
    /// the single writer, see `writer`).
    Pipeline,
    /// One-shot commands (`ingest`, `reports`): `synchronous=FULL`.
    Cli,
}

/// Where a store lives, as `store.path` / `--db` name it: a SQLite file
/// (`sqlite:PATH` or a plain path), or a PostgreSQL server
/// (`postgres://…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    pub fn parse(url: &Path) -> Location {
        let text = url.to_string_lossy();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.into_owned())
        } else if let Some(path) = text.strip_prefix("sqlite:") {
            Location::Sqlite(PathBuf::from(path.trim_start_matches("//")))
        } else {
            Location::Sqlite(url.to_path_buf())
        }
    }
}

impl std::fmt::Display for Location {
    /// The path, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

/// How a command uses the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Queries (`reports`, `stats`, `cases`, `export`, `/metrics`): the store
    /// must exist at this build's schema; never migrated, never locked for
    /// writing.
    ReadOnly,
    /// The daemon and the commands that change things: created when
    /// missing (`Create`) or not (`Existing`), and migrated.
    ReadWrite { role: Role, create: bool },
}

/// Opens the store at `location` for `mode`.
///
/// # Errors
/// As [`Db::open`], [`Db::open_existing`] and [`Db::open_read_only`] for a
/// file ([`Error::IsDirectory`] for a directory); for a PostgreSQL URL,
/// [`Error::Postgres`] when the server cannot be reached or refuses us,
/// and [`Error::TooOld`] or [`Error::TooNew`] for a read-only connection
/// to a schema that is not this build's.
pub fn open(location: &Location, mode: Mode) -> Result<Db, Error> {
    let path = match location {
        Location::Sqlite(path) if path.is_dir() => {
            return Err(Error::IsDirectory { path: path.clone() })
        }
        Location::Sqlite(path) => path,
        Location::Postgres(url) => {
            let conn = match mode {
                Mode::ReadOnly => pg::connect_read_only(url)?,
                Mode::ReadWrite { .. } => pg::connect(url)?,
            };
            return Ok(Db {
                backend: Backend::Postgres(Box::new(PgBackend {
                    conn: std::cell::RefCell::new(conn),
                    url: url.clone(),
                    read_only: mode == Mode::ReadOnly,
                    failed_at: std::cell::Cell::new(None),
                })),
                claim_lease: raw::CLAIM_LEASE,
            });
        }
    };
    match mode {
        Mode::ReadOnly => Db::open_read_only(path),
        Mode::ReadWrite { role, create: true } => Db::open(path, role),
        Mode::ReadWrite {
            role: _,
            create: false,
        } => Db::open_existing(path),
    }
}

/// A URL fit for an error message: without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:…{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Creates `path` empty with mode 0600 unless it exists, whatever the umask:
/// reports hold third parties' mail. SQLite gives the `-wal` and `-shm`
/// files the mode of the database file.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// One synchronous connection to the database.
pub struct Db {
    backend: Backend,
    /// PostgreSQL: how long claims on messages and replies last.
    claim_lease: Duration,
}

enum Backend {
    Sqlite(Connection),
    Postgres(Box<PgBackend>),
}

impl From<postgres::Error> for Error {
    fn from(error: postgres::Error) -> Error {
        Error::Postgres(error)
    }
}

/// What SQLite said, once: its message and extended code.
fn sqlite_text(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            let said = message.clone().unwrap_or_else(|| code.to_string());
            format!("{said} (SQLite code {})", code.extended_code)
        }
        other => other.to_string(),
    }
}

/// What PostgreSQL said: for a server error its message, SQLSTATE and, for
/// the errors a new desk meets, what to do; else the client's text.
fn pg_text(error: &postgres::Error) -> String {
    let Some(db) = error.as_db_error() else {
        // The cause (`Connection refused`) is the client error's source.
        let mut text = error.to_string();
        let mut cause = std::error::Error::source(error);
        while let Some(inner) = cause {
            let said = inner.to_string();
            if !text.contains(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            cause = inner.source();
        }
        return if text.contains("error connecting to server") {
            format!("{text} (is PostgreSQL running there, and is the host and port of store.path or --db right?)")
        } else {
            text
        };
    };
    let code = db.code().code();
    let fix = match code {
        "3D000" => " (create the database, e.g. createdb, or fix the name in store.path or --db)",
        "28000" | "28P01" => {
            " (check the role and password in store.path or --db, and pg_hba.conf)"
        }
        "42501" => " (the role needs rights on the database: make it the owner, or GRANT them)",
        _ => "",
    };
    format!("{}: {} (SQLSTATE {code}){fix}", db.severity(), db.message())
}

/// A PostgreSQL connection, and how to open it again: a connection the
/// server closed (a restart, a node stopped past
/// `idle_in_transaction_session_timeout`) is replaced at the next use
/// instead of failing every statement until the daemon restarts.
struct PgBackend {
    /// A cell: queries take `&self`, and the client needs `&mut` for each.
    conn: std::cell::RefCell<sql::PgConn>,
    url: String,
    read_only: bool,
    /// When reconnecting last failed: the next try waits [`RECONNECT_PAUSE`],
    /// so a server that is down costs each caller an error, not a wait.
    failed_at: std::cell::Cell<Option<Instant>>,
}

/// The pause between reconnection attempts to a PostgreSQL server.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

impl PgBackend {
    /// The connection, opened again first when the server closed it (the
    /// error is the new connection's when that fails: the next use tries
    /// again).
    fn conn(&self) -> Result<std::cell::RefMut<'_, sql::PgConn>, Error> {
        let mut conn = self.conn.borrow_mut();
        if conn.is_closed() {
            if let Some(at) = self.failed_at.get() {
                if at.elapsed() < RECONNECT_PAUSE {
                    return Err(Error::Reconnecting {
                        store: redact_url(&self.url),
                    });
                }
            }
            let fresh = if self.read_only {
                pg::connect_read_only(&self.url)
            } else {
                pg::connect(&self.url)
            };
            let fresh = match fresh {
                Ok(fresh) => fresh,
                Err(error) => {
                    self.failed_at.set(Some(Instant::now()));
                    return Err(error);
                }
            };
            self.failed_at.set(None);
            tracing::warn!(
                store = %redact_url(&self.url),
                "the PostgreSQL connection was closed by the server; reconnected"
            );
            *conn = fresh;
        }
        Ok(conn)
    }

    /// Runs `f` on the connection. An error that says the connection is
    /// gone (the server ended it, the socket broke) drops it, so the next
    /// use opens a new one: a statement fails once, not until the client
    /// happens to notice.
    pub(super) fn run<T>(
        &self,
        f: impl FnOnce(&mut sql::PgConn) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut conn = self.conn()?;
        let result = f(&mut conn);
        if let Err(Error::Postgres(error)) = &result {
            if connection_lost(error) {
                conn.discard();
            }
        }
        result
    }
}

/// Whether `error` means the connection is unusable: closed, an I/O
/// failure, or the server ending the session (SQLSTATE class 08, 57P0x).
fn connection_lost(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        let code = code.code();
        return code.starts_with("08") || code.starts_with("57P0");
    }
    std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>())
}

/// The advisory lock PostgreSQL write transactions take: reports, replies
/// and cases change one transaction at a time across all nodes, as they
/// do under SQLite's single writer, so the rules that read before they
/// write (rate limits, cases, follow-ups) see every earlier decision.
/// Intake does not take it.
const PG_WRITE_LOCK: i64 = 0x6162_7573_6577_7269; // "abusewri"

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    ///
    /// # Errors
    /// The file cannot be opened, is not SQLite, or is from a newer build.
    pub fn open(path: &Path, role: Role) -> Result<Db, Error> {
        create_private(path).map_err(|source| Error::Create {
            path: path.into(),
            source,
        })?;
        let conn = Connection::open(path).map_err(|cause| Error::Open {
            path: path.into(),
            cause,
        })?;
        Self::setup(conn, path, role)
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
        let conn = Connection::open_with_flags(path, flags).map_err(|cause| Error::Open {
            path: path.into(),
            cause,
        })?;
        Self::setup(conn, path, Role::Cli)
    }

    /// The SQLite connection, for what only SQLite has.
    fn lite(&self) -> Result<&Connection, Error> {
        match &self.backend {
            Backend::Sqlite(conn) => Ok(conn),
            Backend::Postgres(_) => Err(Error::Unsupported {
                what: "this operation on a PostgreSQL store".into(),
            }),
        }
    }

    fn lite_mut(&mut self) -> Result<&mut Connection, Error> {
        match &mut self.backend {
            Backend::Sqlite(conn) => Ok(conn),
            Backend::Postgres(_) => Err(Error::Unsupported {
                what: "this operation on a PostgreSQL store".into(),
            }),
        }
    }

    /// How long this connection's claims last (PostgreSQL;
    /// `store.claim_lease_seconds`).
    pub fn set_claim_lease(&mut self, lease: Duration) {
        self.claim_lease = lease;
    }

    /// Which database this is.
    pub fn dialect(&self) -> sql::Dialect {
        match &self.backend {
            Backend::Sqlite(_) => sql::Dialect::Sqlite,
            Backend::Postgres(_) => sql::Dialect::Postgres,
        }
    }

    /// Runs `f` outside a transaction (each statement on its own): reads.
    fn read<T>(&self, f: impl FnOnce(&mut dyn sql::Sql) -> Result<T, Error>) -> Result<T, Error> {
        match &self.backend {
            Backend::Sqlite(conn) => f(&mut sql::Lite(conn)),
            Backend::Postgres(pg) => pg.run(|c| f(c)),
        }
    }

    /// Runs `f` in one write transaction, committed when it returns `Ok`
    /// (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: under [`PG_WRITE_LOCK`]).
    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut dyn sql::Sql) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match &mut self.backend {
            Backend::Sqlite(conn) => {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let out = f(&mut sql::Lite(&tx))?;
                tx.commit()?;
                Ok(out)
            }
            Backend::Postgres(pg) => pg.run(|pg| {
                let mut tx = pg.transaction()?;
                sql::Sql::exec(
                    &mut tx,
                    "SELECT pg_advisory_xact_lock(?1)",
                    crate::sql_params![PG_WRITE_LOCK],
                )?;
                let out = f(&mut tx)?;
                tx.commit()?;
                Ok(out)
            }),
        }
    }

    /// Opens an existing database for queries only: nothing is created,
    /// migrated or written, and the write lock is never taken, so a query
    /// never stalls intake.
    ///
    /// # Errors
    /// [`Error::Missing`] without a file; [`Error::TooOld`] or
    /// [`Error::TooNew`] when its schema is not this build's.
    pub fn open_read_only(path: &Path) -> Result<Db, Error> {
        if !path.exists() {
            return Err(Error::Missing { path: path.into() });
        }
        let open_err = |cause| Error::Open {
            path: path.into(),
            cause,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_handler(Some(on_busy)).map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "query_only", true)
            .map_err(open_err)?;
        let db = Db {
            backend: Backend::Sqlite(conn),
            claim_lease: raw::CLAIM_LEASE,
        };
        let found = db.schema_version().map_err(|e| match e {
            Error::Sqlite(source) => open_err(source),
            other => other,
        })?;
        let known = MIGRATIONS.len() as i64;
        if found < known {
            return Err(Error::TooOld {
                path: path.into(),
                found,
                known,
            });
        }
        if found > known {
            return Err(Error::TooNew {
                path: path.into(),
                found,
                known,
            });
        }
        Ok(db)
    }

    fn setup(conn: Connection, path: &Path, role: Role) -> Result<Db, Error> {
        let open_err = |cause| Error::Open {
            path: path.into(),
            cause,
        };
        conn.busy_handler(Some(on_busy)).map_err(open_err)?;
        // Every statement a writer runs stays prepared: storing a report, its
        // history, cases, outbox and sender checks use some fifty, and
        // rusqlite's default of 16 would prepare most of them again each time.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        let sync = match role {
            Role::Intake | Role::Cli => "FULL",
            Role::Pipeline => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        // Big reports (100,000 evidence rows) stay in memory until COMMIT
        // instead of spilling to the WAL half-way; the cache grows only on
        // use. The worker's connection only reads and keeps SQLite's default.
        if role != Role::Pipeline {
            conn.pragma_update(None, "cache_size", CACHE_KIB)
                .map_err(open_err)?;
        }
        if role == Role::Intake {
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(open_err)?;
        }
        // After a burst the WAL file is cut back to this size once it restarts.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
            .map_err(open_err)?;
        let mut db = Db {
            backend: Backend::Sqlite(conn),
            claim_lease: raw::CLAIM_LEASE,
        };
        db.migrate(path)?;
        Ok(db)
    }

    /// Copies committed WAL pages into the database file without blocking the
    /// writer (`PRAGMA wal_checkpoint(PASSIVE)`); SQLite starts the WAL over
    /// once everything in it has been copied. The single writer never
    /// checkpoints (it would sit on the path to a 250): the worker does.
    /// PostgreSQL checkpoints itself: nothing to do.
    pub fn checkpoint(&mut self) -> Result<(), Error> {
        if let Backend::Sqlite(conn) = &self.backend {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Checkpoints everything and cuts the WAL file back to zero bytes
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`): how space is reclaimed when the
    /// disk runs low. Waits for readers; fails harmlessly if it cannot.
    pub fn checkpoint_truncate(&mut self) -> Result<(), Error> {
        if let Backend::Sqlite(conn) = &self.backend {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// The database file, when it is one (not in memory).
    pub fn file_path(&self) -> Option<PathBuf> {
        self.lite()
            .ok()?
            .path()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }

    /// Copies the whole database to `target` with SQLite's online backup API:
    /// consistent even while the daemon writes. Refuses to overwrite a file.
    ///
    /// # Errors
    /// `target` exists or cannot be written.
    pub fn backup_to(&self, target: &Path) -> Result<(), Error> {
        // Before anything is created: a store that cannot be copied this
        // way leaves no empty file behind.
        let source = self.lite()?;
        if target.exists() {
            return Err(Error::Exists {
                path: target.into(),
            });
        }
        create_private(target).map_err(|source| Error::Create {
            path: target.into(),
            source,
        })?;
        source
            .backup(rusqlite::DatabaseName::Main, target, None)
            .map_err(|cause| Error::Open {
                path: target.into(),
                cause,
            })
    }

    /// The schema version this database is at.
    pub fn schema_version(&self) -> Result<i64, Error> {
        match &self.backend {
            Backend::Sqlite(conn) => Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?),
            Backend::Postgres(pg) => pg.run(pg::schema_version),
        }
    }

    fn migrate(&mut self, path: &Path) -> Result<(), Error> {
        let known = MIGRATIONS.len() as i64;
        let tx = self
            .lite_mut()?
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
            if version + 1 == 4 {
                backfill_report_ips(&tx)?;
            }
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Row ids go into and come out of SQLite as their integers.
macro_rules! sql_row_id {
    ($($name:ident),*) => {$(
        impl rusqlite::types::ToSql for crate::model::$name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        impl rusqlite::types::FromSql for crate::model::$name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(value).map(crate::model::$name)
            }
        }
    )*};
}

sql_row_id!(RawId, ReportId, CaseId, OutboxId);

/// This node's name in claims (PostgreSQL): host name and process id.
pub fn node_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let pid = std::process::id();
        match process_started(pid) {
            Some(started) => format!("{}:{pid}:{started}", host.trim()),
            None => format!("{}:{pid}", host.trim()),
        }
    })
    .clone()
}

/// When process `pid` of this host started (clock ticks after boot, field 22
/// of `/proc/PID/stat`), while it exists and is not a zombie: with its PID
/// this names one process, so a PID the kernel gave to another process
/// since is not taken for the daemon that held it.
pub fn process_started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: the command may hold anything, so the
    // fields are counted from the last ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Bytes an unprivileged writer may still use on the file system of `dir`.
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes only into the zeroed struct we own; `path` is a
    // valid NUL-terminated string for the duration of the call.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(path.as_ptr(), &mut stat) == 0)
            .then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
    }
}

pub(crate) use crate::model::{ip_key, network_len as net_len};

/// Records the addresses a report names (after deleting what it named before).
pub(crate) fn index_report_ips(
    q: &mut dyn sql::Sql,
    report: crate::model::ReportId,
    ips: &[String],
) -> Result<(), Error> {
    q.exec(
        "DELETE FROM report_ips WHERE report_id = ?1",
        crate::sql_params![report],
    )?;
    add_report_ips(q, report, ips)
}

/// Adds addresses to a report's index (a merged follow-up's): SQLite keys
/// them as 16 bytes with their network's prefix, PostgreSQL as `inet`.
pub(crate) fn add_report_ips(
    q: &mut dyn sql::Sql,
    report: crate::model::ReportId,
    ips: &[String],
) -> Result<(), Error> {
    for ip in ips
        .iter()
        .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok())
    {
        match q.dialect() {
            sql::Dialect::Sqlite => {
                let key = ip_key(ip);
                q.exec(
                    "INSERT INTO report_ips (ip_key, report_id, net_key) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    crate::sql_params![&key[..], report, &key[..net_len(&key)]],
                )?;
            }
            sql::Dialect::Postgres => {
                q.exec(
                    "INSERT INTO report_ips (ip, report_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    crate::sql_params![ip.to_string(), report],
                )?;
            }
        }
    }
    Ok(())
}

/// Migration 4's data step: index the addresses of reports stored before it.
fn backfill_report_ips(tx: &rusqlite::Transaction<'_>) -> Result<(), Error> {
    let rows: Vec<(i64, String)> = {
        let mut stmt = tx.prepare("SELECT id, ips FROM reports")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, ips) in rows {
        let ips: Vec<String> = parse_json_list("reports", id, &ips)?;
        add_report_ips(&mut sql::Lite(tx), crate::model::ReportId(id), &ips)?;
    }
    Ok(())
}

fn json_list<T: serde::Serialize>(values: &[T]) -> String {
    serde_json::to_string(values).expect("a list of model values always serialises")
}

fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("a model value always serialises")
}

/// A stored value of one of our enums. Text this build does not know is an
/// error naming the row and the value: one policy for every reader, so a
/// bad row is never shown or acted on as something it is not.
pub(super) fn known<T>(
    table: &'static str,
    id: i64,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, Error> {
    parse(text).ok_or_else(|| Error::Corrupt {
        table,
        id,
        detail: format!("unknown value {text:?}"),
    })
}

fn parse_json_list<T: serde::de::DeserializeOwned>(
    table: &'static str,
    id: i64,
    text: &str,
) -> Result<Vec<T>, Error> {
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
    fn an_unknown_stored_value_is_an_error_naming_the_row_and_the_value() {
        let ok = known("reports", 7, "dos", crate::model::NetworkSubtype::parse);
        assert_eq!(ok.unwrap(), crate::model::NetworkSubtype::Dos);
        let bad = known(
            "reports",
            7,
            "teleport",
            crate::model::NetworkSubtype::parse,
        );
        assert_eq!(
            bad.unwrap_err().to_string(),
            "row 7 of reports is unreadable: unknown value \"teleport\""
        );
    }

    #[test]
    fn the_rsit_backfill_gives_old_rows_the_pair_their_type_maps_to() {
        use crate::model::{AbuseType, NetworkSubtype};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Db::open(&path, Role::Cli).unwrap());
        let conn = Connection::open(&path).unwrap();
        let subtypes = [
            None,
            Some(NetworkSubtype::Intrusion),
            Some(NetworkSubtype::Dos),
            Some(NetworkSubtype::PortScan),
            Some(NetworkSubtype::BruteForce),
            Some(NetworkSubtype::Other),
        ];
        let mut expected = Vec::new();
        for t in AbuseType::ALL {
            for s in subtypes {
                conn.execute(
                    "INSERT INTO raw_messages (received_at, origin, rcpt_to, dedup_key,
                         size_bytes, bytes, status)
                     VALUES ('2026-01-01T00:00:00Z', 'ingest', '[]', randomblob(32), 1, x'00',
                         'processed')",
                    [],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO reports (raw_id, received_at, abuse_type, subtype, ips, urls,
                         evidence_rows, missing, reply, parse_warnings, processed_at, formats,
                         reasons)
                     VALUES (last_insert_rowid(), '2026-01-01T00:00:00Z', ?1, ?2, '[]', '[]',
                         0, '[]', 'none', '[]', '2026-01-01T00:00:00Z', '[]', '[]')",
                    rusqlite::params![t.as_str(), s.map(NetworkSubtype::as_str)],
                )
                .unwrap();
                expected.push(crate::model::RsitPair::from(
                    crate::classify::rsit::for_type(t, s),
                ));
            }
        }
        conn.execute_batch(MIGRATIONS[15]).unwrap();
        let mut stmt = conn
            .prepare("SELECT rsit_taxonomy, rsit_type FROM reports ORDER BY id")
            .unwrap();
        let got: Vec<crate::model::RsitPair> = stmt
            .query_map([], |r| {
                Ok(crate::model::RsitPair {
                    taxonomy: r.get(0)?,
                    kind: r.get(1)?,
                })
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn migrations_set_user_version_and_reopen_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&path, Role::Cli).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(db);
        let db = Db::open(&path, Role::Cli).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Db::open(&path, Role::Cli).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Db::open(&path, Role::Cli).err().unwrap();
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

//! The PostgreSQL store: several daemons on one database.
//!
//! The same rules as the SQLite store: a message is committed (PostgreSQL
//! COMMIT with `synchronous_commit = on`) before its `250`; a message
//! already stored is recognised by its dedup key (`ON CONFLICT DO
//! NOTHING`). What several nodes need on top: a message is processed by one
//! node at a time, which claims it (`FOR UPDATE SKIP LOCKED`) for a lease;
//! a node that dies leaves its claims to expire, and another takes them.
//!
//! Here: connecting (TLS as the URL's `sslmode` asks), migrating (under an
//! advisory lock, so nodes starting together migrate once), intake, and
//! claiming work; the claims are renewed by the heartbeat
//! (`daemon::lease`) and a report's write is fenced by its claim. Reports,
//! the outbox and the queries share their SQL with SQLite (`store::sql`).

use super::sql::PgConn;
use super::Error;
use crate::model::{Committed, Incoming, RawId, RawMessage};
use postgres::Client;
use std::time::Duration;

/// Migrations in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("0001_init.sql"),
    include_str!("0002_pending_checks.sql"),
    include_str!("0003_follow_up_index.sql"),
    include_str!("0004_rsit_backfill.sql"),
    include_str!("0005_owners.sql"),
    include_str!("0006_routing.sql"),
    include_str!("0007_case_resolution.sql"),
    include_str!("0008_notices.sql"),
    include_str!("0009_imap.sql"),
    include_str!("0010_web.sql"),
    include_str!("0011_login_failures.sql"),
    include_str!("0012_open_counts.sql"),
];

/// The advisory lock a migration holds: one node migrates, the others wait.
const MIGRATION_LOCK: i64 = 0x6162_7573_6569_6e62; // "abuseinb"

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout`): a server that is down must not hold intake for the
/// operating system's TCP timeout (two minutes) at each reconnect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client for `url`, TLS as it asks, within [`CONNECT_TIMEOUT`] unless it
/// sets its own.
fn open_client(url: &str) -> Result<Client, Error> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config.connect(tls())?)
}

/// Connects to `url` (`postgres://user@host:port/db`) and migrates.
///
/// # Errors
/// The server cannot be reached, refuses us, or has a newer schema.
pub fn connect(url: &str) -> Result<PgConn, Error> {
    let mut client = open_client(url)?;
    // A 250 waits for the commit to be on disk (and on a synchronous
    // standby, when the server has one), whatever the server's default.
    // A node stopped (SIGSTOP, a stall) in the middle of a transaction
    // would hold its locks, the write lock among them, and with it every
    // other node: the server ends a transaction left idle this long.
    // Ours never wait between their statements.
    client.batch_execute(
        "SET synchronous_commit = on; SET TIME ZONE 'UTC';
         SET idle_in_transaction_session_timeout = '5s'",
    )?;
    migrate(&mut client, url)?;
    Ok(PgConn::new(client))
}

/// Connects to `url` for queries: nothing is migrated, and every
/// transaction of the session is read-only.
///
/// # Errors
/// As [`connect`], and [`Error::TooOld`] when the schema is not migrated.
pub fn connect_read_only(url: &str) -> Result<PgConn, Error> {
    let mut client = open_client(url)?;
    client.batch_execute("SET default_transaction_read_only = on; SET TIME ZONE 'UTC'")?;
    let mut pg = PgConn::new(client);
    let found = schema_version(&mut pg).unwrap_or(0);
    let known = MIGRATIONS.len() as i64;
    let path = super::redact_url(url).into();
    if found < known {
        return Err(Error::TooOld { path, found, known });
    }
    if found > known {
        return Err(Error::TooNew { path, found, known });
    }
    Ok(pg)
}

/// TLS for the connection, as the URL's `sslmode` asks (`prefer` by
/// default: TLS when the server offers it; `require` insists): rustls with
/// ring, trusting the system's certificate store (where a private CA goes)
/// and Mozilla's roots.
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// The schema version of the database.
pub fn schema_version(pg: &mut PgConn) -> Result<i64, Error> {
    Ok(pg
        .client()
        .query_one("SELECT max(version) FROM abuse_inbox_schema", &[])?
        .get::<_, Option<i64>>(0)
        .unwrap_or(0))
}

fn migrate(client: &mut Client, url: &str) -> Result<(), Error> {
    let known = MIGRATIONS.len() as i64;
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS abuse_inbox_schema (
                 version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    let found: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM abuse_inbox_schema",
            &[],
        )?
        .get(0);
    if found > known {
        return Err(Error::TooNew {
            path: super::redact_url(url).into(),
            found,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)?;
        if version == 0 {
            // The installation's secret: follow-up tokens, export ids.
            let secret = random_secret()?;
            tx.execute(
                "INSERT INTO installation (id, secret) VALUES (1, $1) ON CONFLICT DO NOTHING",
                &[&secret.as_slice()],
            )?;
        }
        tx.execute(
            "INSERT INTO abuse_inbox_schema (version) VALUES ($1)",
            &[&(version as i64 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Commits `messages` in one transaction; a message already stored is
/// reported as a duplicate and not written again. Returns after COMMIT.
///
/// # Errors
/// Any failure; then nothing of the batch was committed.
pub fn commit_raws(pg: &mut PgConn, messages: &[&Incoming]) -> Result<Vec<Committed>, Error> {
    // Prepared once per connection, not per group commit.
    let insert = pg.statement(super::raw_rows::INSERT_RAW_RETURNING)?;
    let existing = pg.statement(super::raw_rows::RAW_BY_KEY)?;
    let mut tx = pg.client().transaction()?;
    let mut out = Vec::with_capacity(messages.len());
    for msg in messages {
        let (key, values) = super::raw_rows::insert_values(msg);
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let inserted = tx.query_opt(&insert, &params)?;
        out.push(match inserted {
            Some(row) => Committed {
                raw_id: RawId(row.get(0)),
                is_duplicate: false,
            },
            None => Committed {
                raw_id: RawId(tx.query_one(&existing, &[&&key[..]])?.get(0)),
                is_duplicate: true,
            },
        });
    }
    tx.commit()?;
    Ok(out)
}

/// Claims up to `limit` unprocessed messages (at most `max_bytes` of
/// them, but at least one) for `node` until `lease` from now, oldest
/// first. A message claimed by another node whose lease has not run out
/// is skipped, and so is one another node is claiming right now: each
/// message is worked on by one node at a time.
///
/// # Errors
/// Any failure; then nothing was claimed.
pub fn claim_unprocessed(
    pg: &mut PgConn,
    node: &str,
    limit: usize,
    max_bytes: u64,
    lease: Duration,
) -> Result<Vec<RawMessage>, Error> {
    let rows = super::sql::Sql::rows(
        pg,
        "WITH candidates AS (
             SELECT id, size_bytes FROM raw_messages
             WHERE status = 'received' AND (claimed_until IS NULL OR claimed_until < now())
             ORDER BY id LIMIT ?2
             FOR UPDATE SKIP LOCKED
         ), budgeted AS (
             SELECT id, (sum(size_bytes) OVER (ORDER BY id))::bigint - size_bytes AS before
             FROM candidates
         )
         UPDATE raw_messages r
         SET claimed_by = ?1, claimed_until = now() + make_interval(secs => (?4::bigint / 1000.0)::float8)
         FROM budgeted b
         WHERE r.id = b.id AND (b.before = 0 OR b.before < ?3::bigint)
         RETURNING r.id, r.received_at, r.origin, r.peer_ip, r.helo, r.mail_from,
                   r.rcpt_to, r.bytes, r.auth, r.dsn",
        crate::sql_params![node, limit, max_bytes, lease.as_millis() as u64],
    )?;
    let mut claimed = rows
        .iter()
        .map(super::raw_rows::read_raw)
        .collect::<Result<Vec<_>, Error>>()?;
    claimed.sort_by_key(|r| r.id);
    for raw in &mut claimed {
        raw.claim = Some(node.to_owned());
    }
    Ok(claimed)
}

/// 32 bytes from the kernel's random source.
fn random_secret() -> Result<[u8; 32], Error> {
    use std::io::Read;
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .map_err(|source| Error::Create {
            path: "/dev/urandom".into(),
            source,
        })?;
    Ok(secret)
}

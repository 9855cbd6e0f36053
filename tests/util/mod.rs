//! Test helpers: a real server on port 0 with a temp-dir database, a raw SMTP
//! client for exact reply codes, and the built binary for the CLI.

#![allow(dead_code)]

pub mod dns;
pub mod dovecot;
pub mod pg;

use abuse_inbox::config::Config;
use abuse_inbox::daemon::server::Server;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A daemon running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    server: Server,
    /// The SQLite file in `dir`, or the PostgreSQL URL the test gave.
    store: PathBuf,
}

impl TestServer {
    /// Reloads the running configuration with `change` made to it (as a
    /// SIGHUP with an edited file would); the keys changed, or the problems.
    pub fn reload_with(
        &self,
        change: impl FnOnce(&mut Config),
    ) -> Result<Vec<String>, Vec<String>> {
        let reloader = self.server.reloader();
        let mut config = reloader.running();
        change(&mut config);
        reloader.reload(config)
    }

    /// Starts the server with `config`, on 127.0.0.1:0 and a fresh database.
    pub async fn start(config: Config) -> TestServer {
        Self::start_with(config, tempfile::tempdir().unwrap(), "127.0.0.1:0").await
    }

    /// Starts the server on `listen` with the database in `dir` (a restart
    /// passes the directory a stopped server returned).
    pub async fn start_with(
        mut config: Config,
        dir: tempfile::TempDir,
        listen: &str,
    ) -> TestServer {
        config.smtp.listen = listen.into();
        // A test of the PostgreSQL store names its database; the others
        // get a fresh SQLite file.
        if !config.store.path.to_string_lossy().starts_with("postgres") {
            config.store.path = dir.path().join("test.db");
        }
        // Without a DNS server of the test's own, no sender checks and
        // replies as if the sender were authenticated (see NO_AUTH).
        if config.auth.nameservers.is_empty() {
            config.auth.enabled = false;
            config.reply.require_auth = false;
        }
        // The worker child is the real binary, not this test executable
        // (unless the test named its own path to it).
        if config.worker.binary.is_none() {
            config.worker.binary = Some(env!("CARGO_BIN_EXE_abuse-inbox").into());
        }
        // The worker child is a debug build here, ten to twenty times slower
        // than the release build the 10 s default is for: the hostile
        // messages that take a release child well under a second take it
        // longer than that.
        if config.worker.max_seconds_per_message == Config::default().worker.max_seconds_per_message
        {
            config.worker.max_seconds_per_message = 120;
        }
        if config.smtp.idle_timeout_seconds == Config::default().smtp.idle_timeout_seconds {
            config.smtp.idle_timeout_seconds = 10; // a wedged session fails fast
        }
        let store = config.store.path.clone();
        let server = Server::start(config).await.expect("server starts");
        TestServer {
            addr: server.local_addr(),
            dir,
            server,
            store,
        }
    }

    pub async fn default() -> TestServer {
        Self::start(Config::default()).await
    }

    /// The default server on `store`; `None` (the test says SKIPPED) when
    /// PostgreSQL is not installed.
    pub async fn on(store: Store, mut config: Config) -> Option<TestServer> {
        match store.location() {
            Ok(Some(url)) => config.store.path = url.into(),
            Ok(None) => {}
            Err(()) => {
                crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
                return None;
            }
        }
        Some(Self::start(config).await)
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.metrics_addr()
    }

    /// Where the console listens, when `web.listen` was set.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.server.web_addr()
    }

    /// The store: a SQLite file, or a `postgres://` URL.
    pub fn db_path(&self) -> PathBuf {
        self.store.clone()
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.server.shutdown().await.expect("clean shutdown");
        self.dir
    }
}

/// A port nothing listens on right now.
/// The TCP port process `pid` listens on (IPv4; the first it has): read
/// from `/proc` (its socket inodes in `fd/`, their state in `net/tcp`), so
/// a daemon started on port 0 is found without a log line and without a
/// port released by the test and bound again by someone else.
pub fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local_address is field 1 (`0100007F:1F90`), st field 3 (0A: LISTEN), inode field 9.
        let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        if *state != "0A" || !inodes.iter().any(|i| i == inode) {
            return None;
        }
        u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
    })
}

/// A port nobody listens on, held by a socket that is bound but never
/// listens (a connection to it is refused) until `release`d, so no other
/// test can take it meanwhile: for "the relay is down, then comes up".
pub struct ReservedPort {
    fd: Option<std::os::fd::OwnedFd>,
    pub port: u16,
}

impl ReservedPort {
    pub fn new() -> ReservedPort {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket(2)/bind(2)/getsockname(2) on a socket this
        // function owns; the sockaddr structs are ours and sized correctly.
        unsafe {
            // CLOEXEC: the daemon's worker children must not inherit (and hold) it.
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len);
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            let mut len = len;
            libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len);
            ReservedPort {
                fd: Some(owned),
                port: u16::from_be(addr.sin_port),
            }
        }
    }

    /// Lets the port go, to be bound at once by what should listen there.
    pub fn release(&mut self) {
        self.fd.take();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it returns `Some`, for at most `seconds`.
pub fn wait_for<T>(seconds: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A row of the outbox, as the tests look at it.
#[derive(Debug)]
pub struct OutboxRow {
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Which store a test's daemon runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

impl Store {
    /// Where a new daemon of this kind keeps its data: `None` for SQLite
    /// (the test server's own file), a fresh database of the shared test
    /// cluster for PostgreSQL; `Err` when PostgreSQL is not installed
    /// (the test says SKIPPED and returns).
    pub fn location(self) -> Result<Option<String>, ()> {
        match self {
            Store::Sqlite => Ok(None),
            Store::Postgres => pg::shared_db().map(Some).ok_or(()),
        }
    }
}

/// The rows of `sql` on a PostgreSQL store (blocking; inside a test's
/// runtime, on a thread allowed to block).
fn pg_rows(url: &str, sql: &str) -> Vec<postgres::Row> {
    let run = || {
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client.query(sql, &[]).unwrap()
    };
    pg::off_runtime(run)
}

fn is_pg(db: &Path) -> Option<&str> {
    db.to_str().filter(|s| s.starts_with("postgres"))
}

/// The first column of every row of `sql` (portable SQL), as text, from
/// either store.
pub fn texts(db: &Path, sql: &str) -> Vec<Option<String>> {
    if let Some(url) = is_pg(db) {
        return pg_rows(url, sql)
            .iter()
            .map(|r| {
                r.try_get::<_, Option<String>>(0)
                    .or_else(|_| {
                        r.try_get::<_, Option<i64>>(0)
                            .map(|n| n.map(|n| n.to_string()))
                    })
                    .unwrap_or_else(|_| r.get::<_, Option<i32>>(0).map(|n| n.to_string()))
            })
            .collect();
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| {
        Ok(match r.get_ref(0)? {
            rusqlite::types::ValueRef::Null => None,
            rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
            rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            other => Some(format!("{other:?}")),
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The integer `sql` (portable) gives, from either store.
pub fn int(db: &Path, sql: &str) -> i64 {
    texts(db, sql)[0].as_deref().unwrap_or("0").parse().unwrap()
}

/// Runs statements (portable SQL, `;`-separated) on either store.
pub fn execute(db: &Path, sql: &str) {
    if let Some(url) = is_pg(db) {
        let url = url.to_owned();
        let sql = sql.to_owned();
        pg::off_runtime(move || {
            postgres::Client::connect(&url, postgres::NoTls)
                .unwrap()
                .batch_execute(&sql)
                .unwrap()
        });
        return;
    }
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

/// Every raw message's bytes, oldest first, from either store.
pub fn raw_bytes(db: &Path) -> Vec<Vec<u8>> {
    let sql = "SELECT bytes FROM raw_messages ORDER BY id";
    if let Some(url) = is_pg(db) {
        return pg_rows(url, sql).iter().map(|r| r.get(0)).collect();
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// One column of every raw message, as text, oldest first, from either store.
pub fn raw_texts(db: &Path, column: &str) -> Vec<Option<String>> {
    let sql = format!("SELECT {column} FROM raw_messages ORDER BY id");
    if let Some(url) = is_pg(db) {
        return pg_rows(url, &sql).iter().map(|r| r.get(0)).collect();
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The outbox of `db`, oldest first, read over an independent connection.
pub fn outbox(db: &Path) -> Vec<OutboxRow> {
    if let Some(url) = is_pg(db) {
        return pg_rows(
            url,
            "SELECT kind, state, attempts, last_error FROM outbox ORDER BY id",
        )
        .iter()
        .map(|r| OutboxRow {
            kind: r.get(0),
            state: r.get(1),
            attempts: r.get(2),
            last_error: r.get(3),
        })
        .collect();
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT kind, state, attempts, last_error FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(OutboxRow {
            kind: r.get(0)?,
            state: r.get(1)?,
            attempts: r.get(2)?,
            last_error: r.get(3)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Rows in `table`, read over an independent connection.
pub fn count_rows(db: &Path, table: &str) -> i64 {
    if let Some(url) = is_pg(db) {
        return pg_rows(url, &format!("SELECT count(*) FROM {table}"))[0].get(0);
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Messages not processed yet, and reports whose sender checks have not
/// ended yet (those that failed for now and wait for DNS do not count).
const UNFINISHED: &str = "SELECT (SELECT count(*) FROM raw_messages WHERE status = 'received')
     + (SELECT count(*) FROM reports WHERE checks_due_at IS NOT NULL
          AND (reply_reason IS NULL OR reply_reason NOT LIKE 'dns unavailable%'))";

/// Waits (bounded) until the worker has turned every raw message into a report
/// or a failure, and every report's sender checks have ended (or wait for
/// DNS); returns the number of reports.
pub fn wait_processed(db: &Path) -> i64 {
    if let Some(url) = is_pg(db) {
        return wait_for(10, "every message processed", || {
            let pending: i64 = pg_rows(url, UNFINISHED)[0].get(0);
            (pending == 0).then(|| pg_rows(url, "SELECT count(*) FROM reports")[0].get(0))
        });
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    for _ in 0..500 {
        let pending: i64 = conn.query_row(UNFINISHED, [], |r| r.get(0)).unwrap();
        if pending == 0 {
            return conn
                .query_row("SELECT count(*) FROM reports", [], |r| r.get(0))
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("messages still unprocessed after 10 s");
}

/// A blocking SMTP client that speaks raw bytes (for exact codes).
pub struct Smtp {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Smtp {
    /// Connects and returns the client with the greeting already read.
    pub fn connect(addr: SocketAddr) -> (Smtp, String) {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut smtp = Smtp { reader, stream };
        let greeting = smtp.reply();
        (smtp, greeting)
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// One whole reply (all lines of a multi-line reply), or "" at EOF.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = Vec::new();
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            all.push_str(&line);
            if last {
                return all;
            }
        }
    }

    /// Sends a command line and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Sends a command and asserts the reply code.
    pub fn expect(&mut self, line: &str, code: &str) -> String {
        let reply = self.cmd(line);
        assert!(
            reply.starts_with(code),
            "{line:?}: expected {code}, got {reply:?}"
        );
        reply
    }

    /// A whole transaction; returns the reply to the end of data.
    pub fn send_message(&mut self, from: &str, to: &str, body: &[u8]) -> String {
        self.expect(&format!("MAIL FROM:<{from}>"), "250");
        self.expect(&format!("RCPT TO:<{to}>"), "250");
        self.expect("DATA", "354");
        self.send(body);
        self.send(b"\r\n.\r\n");
        self.reply()
    }

    /// True once the server has closed the connection (a reset counts: the
    /// server closed with our unread bytes in its buffer).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        match self.reader.read(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => {
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
        }
    }
}

/// A small, valid report message with a unique Message-ID.
pub fn message(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Reporter <reporter@example.net>\r\nTo: abuse@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}@example.net>\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nSSH brute force from 192.0.2.10 against 198.51.100.7 port 22.\r\n"
    )
    .into_bytes()
}

/// Runs the built binary.
pub fn abuse_inbox(args: &[&str]) -> Output {
    abuse_inbox_stdin(args, None)
}

/// What every test configuration starts with: no sender checks (there is
/// no DNS here but the test's own) and replies to unauthenticated senders,
/// so the tests of replies, follow-ups and the CLI see the decisions the
/// reports call for. The tests of the checks themselves (`safety.rs`) run
/// a DNS server and turn both back on.
pub const NO_AUTH: &str = "[auth]\nenabled = false\n";
pub const REPLY_UNAUTHENTICATED: &str = "require_auth = false\n";

/// A config file of [`NO_AUTH`] and `[reply]` [`REPLY_UNAUTHENTICATED`]
/// plus `reply_keys` (more `[reply]` keys) and `more` (other tables).
pub fn test_config(dir: &Path, reply_keys: &str, more: &str) -> PathBuf {
    let path = dir.join("test-config.toml");
    std::fs::write(
        &path,
        format!("{NO_AUTH}\n[reply]\n{REPLY_UNAUTHENTICATED}{reply_keys}\n{more}"),
    )
    .unwrap();
    path
}

/// The config the CLI gets when a test names none.
pub fn default_test_config() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        test_config(&dir, "", "").to_str().unwrap().to_owned()
    })
}

pub fn abuse_inbox_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_abuse-inbox"));
    cmd.args(args).env_remove("RUST_LOG");
    if !args.contains(&"--config") {
        cmd.args(["--config", default_test_config()]);
    }
    if let Some(input) = stdin {
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        return child.wait_with_output().unwrap();
    }
    cmd.output().unwrap()
}

/// stdout parsed as JSON; panics with stderr on failure.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The real binary running `serve` on a port of its own, as a process a
/// test can kill -9. A test that fails does not leave it running.
pub struct Daemon {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// Every line it logged so far.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Already gone (the test killed or stopped it): both just fail.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub fn start(db: &str) -> Daemon {
        Self::start_with_env(db, &[])
    }

    pub fn start_with_env(db: &str, env: &[(&str, &str)]) -> Daemon {
        Self::start_with(db, &[], env)
    }

    pub fn start_with(db: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_abuse-inbox"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
            .args(args);
        if !args.contains(&"--config") {
            command.args(["--config", crate::util::default_test_config()]);
        }
        let mut child = command
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // Read the log on a thread (and keep draining it, so the daemon never
        // blocks on a full pipe); the bound address comes from the start-up line.
        std::thread::spawn({
            let log = log.clone();
            move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { return };
                    if let Some(rest) = line.split("listen=").nth(1) {
                        let _ = tx.send(
                            rest.split_whitespace()
                                .next()
                                .unwrap_or_default()
                                .to_owned(),
                        );
                    }
                    log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            }
        });
        let addr = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("daemon logs its address within 30 s")
            .parse()
            .unwrap();
        Daemon { child, addr, log }
    }

    /// Waits (at most `seconds`) until a line it logs contains `needle`;
    /// that line.
    pub fn wait_for_log(&self, seconds: u64, needle: &str) -> String {
        wait_for(seconds, needle, || {
            let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            log.iter().find(|l| l.contains(needle)).cloned()
        })
    }
}

/// A test whose tool is missing: on a laptop it says SKIPPED and returns;
/// under CI (`CI` set, as `.ci/run` does) it fails, so a missing component
/// can never pass for a green run.
pub fn skipped(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why} (CI is set: every component must be here)");
    }
    eprintln!("SKIPPED: {why}");
    // And once more, counted, after the run's own summary.
    let mut skips = SKIPS.lock().unwrap_or_else(|p| p.into_inner());
    if skips.is_empty() {
        // SAFETY: registers a plain extern "C" function with no arguments.
        unsafe {
            libc::atexit(say_skips);
        }
    }
    skips.push(why.to_owned());
}

static SKIPS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// At exit: how many tests were skipped, and why, in one place.
extern "C" fn say_skips() {
    let skips = SKIPS.lock().unwrap_or_else(|p| p.into_inner());
    let mut reasons: Vec<(usize, &String)> = Vec::new();
    for why in skips.iter() {
        match reasons.iter_mut().find(|(_, r)| *r == why) {
            Some((n, _)) => *n += 1,
            None => reasons.push((1, why)),
        }
    }
    eprintln!(
        "\n{} tests SKIPPED, testing nothing (under CI, with CI=true, they fail):",
        skips.len()
    );
    for (n, why) in reasons {
        eprintln!("  {n} × {why}");
    }
}

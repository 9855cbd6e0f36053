//! A throwaway PostgreSQL cluster on a loopback port: `initdb` in a
//! temporary directory, `postgres` started as an unprivileged user (the
//! `postgres` account Debian's package makes, when the tests run as root),
//! stopped and removed when the guard drops. `.ci/run` installs PostgreSQL
//! from Debian; without it the tests that need it say SKIPPED.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    next_db: std::sync::atomic::AtomicU32,
}

/// The newest PostgreSQL server installed (`/usr/lib/postgresql/N/bin`).
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The account the server runs as: ourselves, or `postgres` when we are
/// root (the server refuses to run as root).
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").ok()?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we
    // copy the two ids out at once, on this thread.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

fn command(bin: &Path, user: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(bin);
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    // SAFETY: prctl only sets this process's parent-death signal: the
    // server goes when the test that started it goes, even on a panic.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Runs `f` where a blocking PostgreSQL client may run: not on a thread
/// that drives a test's async runtime (the client runs its own).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(f).join().unwrap())
    } else {
        f()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// A running cluster, or `None` (with the reason on stderr) when
    /// PostgreSQL is not installed here.
    pub fn start() -> Option<Cluster> {
        Self::start_with(None)
    }

    /// A running cluster that also speaks TLS with `cert` and `key` (PEM).
    pub fn start_with_tls(cert: &str, key: &str) -> Option<Cluster> {
        Self::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Cluster> {
        Self::start_at(tls, None)
    }

    fn start_in(root: Option<PathBuf>) -> Option<Cluster> {
        Self::start_at(None, root)
    }

    fn start_at(tls: Option<(&str, &str)>, root: Option<PathBuf>) -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
            return None;
        };
        let user = run_as();
        let dir = match root {
            Some(root) => tempfile::tempdir_in(root).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let init = command(&bin.join("initdb"), user)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "abuse", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let mut settings: Vec<String> = Vec::new();
        if let Some((cert, key)) = tls {
            for (name, pem) in [("server.crt", cert), ("server.key", key)] {
                let path = data.join(name);
                std::fs::write(&path, pem).unwrap();
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .unwrap();
                if let Some((uid, gid)) = user {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
                }
            }
            settings.extend(["-c".into(), "ssl=on".into()]);
        }
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path().join("server.log"), Some(uid), Some(gid)).unwrap();
        }
        let child = command(&bin.join("postgres"), user)
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", &port.to_string()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=60",
            ])
            .args(["-c", "shared_buffers=16MB"])
            .args(&settings)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let cluster = Cluster {
            dir,
            child,
            port,
            next_db: std::sync::atomic::AtomicU32::new(0),
        };
        let started = Instant::now();
        while postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(cluster.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(cluster)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://abuse@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database; its URL.
    pub fn create_db(&self) -> String {
        let n = self
            .next_db
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("desk{n}");
        let admin = self.url("postgres");
        off_runtime(|| {
            postgres::Client::connect(&admin, postgres::NoTls)
                .unwrap()
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap()
        });
        self.url(&name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGINT: the server's fast shutdown.
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let _ = self.child.wait();
    }
}

/// A fresh database on the cluster all tests of this run share (started
/// on first use); `None` when PostgreSQL is not installed. The cluster
/// lives in `target/test-pg/` and goes with the test process; a run
/// removes what earlier runs left there.
pub fn shared_db() -> Option<String> {
    static CLUSTER: std::sync::OnceLock<Option<Cluster>> = std::sync::OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            // Started from a thread that never ends: the server's
            // parent-death signal comes only when the test process goes.
            std::thread::spawn(move || {
                let _ = tx.send(Cluster::start_in(Some(shared_root())));
                loop {
                    std::thread::park();
                }
            });
            rx.recv().unwrap()
        })
        .as_ref()
        .map(Cluster::create_db)
}

fn shared_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-pg");
    if let Ok(old) = std::fs::read_dir(&root) {
        for entry in old.flatten() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    std::fs::create_dir_all(&root).unwrap();
    root
}

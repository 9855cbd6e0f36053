//! `serve` as a process: configuration at start, signals, systemd, kill -9, its log.

use super::{db_arg, db_for};
use crate::util::{abuse_inbox, message, Daemon, Smtp, Store};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn a_bad_config_fails_at_start_naming_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[smtp]\nmax_message_bytes = 0\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let out = abuse_inbox(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("smtp.max_message_bytes") && err.contains("smtp.listen"),
        "{err}"
    );
    std::fs::write(&cfg, "[smtp]\nmax_mesage_bytes = 5\n").unwrap();
    let out = abuse_inbox(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_mesage_bytes"));
    // A notice policies file with a bad type and no default policy.
    let notices = dir.path().join("notices.toml");
    std::fs::write(
        &notices,
        "[[policy]]\nname = \"fast\"\ntypes = [\"spamm\"]\ndigest_minutes = 0\nrepeat_hours = 0\n\
         remind_hours = 0\nescalate_after_events = 0\nescalate_after_hours = 0\nclose_after_days = 0\n",
    )
    .unwrap();
    std::fs::write(
        &cfg,
        format!("[notices]\nfile = {:?}\n", notices.to_str().unwrap()),
    )
    .unwrap();
    let out = abuse_inbox(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notices.file: policy[0] (\"fast\").types: \"spamm\"")
            && err.contains("no [[policy]] named \"default\""),
        "{err}"
    );
}

on_both_stores_sync!(kill_9_while_clients_send_loses_no_acknowledged_message);
fn kill_9_while_clients_send_loses_no_acknowledged_message(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let mut daemon = Daemon::start(&db);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (acked, stop, addr) = (acked.clone(), stop.clone(), daemon.addr);
            std::thread::spawn(move || {
                let (mut smtp, _) = Smtp::connect(addr);
                smtp.cmd("EHLO crash.example");
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let id = format!("crash-{c}-{n}");
                    if !smtp.cmd("MAIL FROM:<a@example.net>").starts_with("250")
                        || !smtp.cmd("RCPT TO:<abuse@example.com>").starts_with("250")
                        || !smtp.cmd("DATA").starts_with("354")
                    {
                        return;
                    }
                    smtp.send(&message(&id, "crash"));
                    smtp.send(b".\r\n");
                    if smtp.reply().starts_with("250") {
                        acked.lock().unwrap().push(format!("{id}@example.net"));
                    } else {
                        return;
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while acked.lock().unwrap().len() < 200 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.child.kill().unwrap(); // SIGKILL, mid-stream
    daemon.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        let _ = c.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "only {} messages acknowledged before the kill",
        acked.len()
    );

    // Restart: everything acknowledged is there and gets processed.
    let mut daemon = Daemon::start(&db);
    let path = std::path::PathBuf::from(&db);
    let reports = crate::util::wait_processed(&path);
    let stored: std::collections::HashSet<String> = crate::util::raw_texts(&path, "message_id")
        .into_iter()
        .flatten()
        .collect();
    let lost: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert_eq!(reports as usize, stored.len());
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
}

on_both_stores_sync!(sigterm_stops_the_daemon_with_exit_0);
fn sigterm_stops_the_daemon_with_exit_0(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let mut daemon = Daemon::start(&db);
    let (mut smtp, _) = Smtp::connect(daemon.addr);
    smtp.expect("EHLO term.example", "250");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) };
    let reply = smtp.reply();
    assert!(reply.starts_with("421"), "{reply}");
    let status = daemon.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn systemd_hears_ready_and_stopping_and_sighup_does_not_kill() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut daemon =
        Daemon::start_with_env(&db, &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())]);
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("READY within 30 s");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    assert!(ready.contains(&daemon.addr.to_string()), "{ready}");
    let mut next_state = || {
        let n = socket.recv(&mut buf).expect("a notification within 30 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGHUP) };
    // The reload says RELOADING=1, then READY=1 once the new config applies.
    assert_eq!(next_state(), "RELOADING=1");
    assert_eq!(next_state(), "READY=1");
    let (mut smtp, greeting) = Smtp::connect(daemon.addr);
    assert!(
        greeting.starts_with("220"),
        "the daemon died of SIGHUP: {greeting}"
    );
    smtp.expect("QUIT", "221");
    // A SIGHUP and a SIGTERM sent back to back: the reload is served, then
    // the daemon stops (SIGHUP never kills it, even while it is stopping).
    // SAFETY: as above.
    unsafe {
        libc::kill(daemon.child.id() as i32, libc::SIGHUP);
        libc::kill(daemon.child.id() as i32, libc::SIGTERM);
    }
    let mut said = Vec::new();
    while said.last().map(String::as_str) != Some("STOPPING=1") {
        said.push(next_state());
    }
    assert!(
        said == ["STOPPING=1"] || said == ["RELOADING=1", "READY=1", "STOPPING=1"],
        "{said:?}"
    );
    assert_eq!(daemon.child.wait().unwrap().code(), Some(0));
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        crate::util::skipped(
            "systemd-analyze is not installed (Debian package systemd; .ci/run installs it)",
        );
        return;
    };
    assert!(version.status.success());
    // The unit names /usr/local/bin/abuse-inbox; verify checks that it exists,
    // so point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/abuse-inbox.service"),
    )
    .unwrap();
    let path = dir.path().join("abuse-inbox.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/abuse-inbox",
            env!("CARGO_BIN_EXE_abuse-inbox"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

on_both_stores_sync!(
    sighup_reloads_the_recipients_and_keeps_the_running_config_when_the_new_one_is_bad
);
fn sighup_reloads_the_recipients_and_keeps_the_running_config_when_the_new_one_is_bad(
    store: Store,
) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let config = dir.path().join("abuse-inbox.toml");
    let write_config =
        |text: &str| std::fs::write(&config, format!("{}{text}", crate::util::NO_AUTH)).unwrap();
    write_config("[smtp]\nrecipients = [\"abuse\"]\n");
    let mut daemon = Daemon::start_with(&db, &["--config", config.to_str().unwrap()], &[]);
    let rcpt = |addr| {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("EHLO reload.example", "250");
        c.expect("MAIL FROM:<a@example.net>", "250");
        c.cmd("RCPT TO:<security@example.com>")[..3].to_owned()
    };
    assert_eq!(rcpt(daemon.addr), "550");
    write_config("[smtp]\nrecipients = [\"abuse\", \"security\"]\n");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGHUP) };
    crate::util::wait_for(20, "the reload", || {
        (rcpt(daemon.addr) == "250").then_some(())
    });
    // A broken file is refused as a whole; the running configuration stays.
    write_config("[smtp]\nrecipients = []\nmax_mesage_bytes = 5\n");
    // SAFETY: as above.
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGHUP) };
    let refused = daemon.wait_for_log(20, "reload refused");
    assert!(refused.contains("max_mesage_bytes"), "{refused}");
    assert_eq!(rcpt(daemon.addr), "250");
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon died"
    );
    // SAFETY: as above.
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) };
    assert_eq!(daemon.child.wait().unwrap().code(), Some(0));
}

// Regression: with stderr closed (journald restarted, `serve 2>&1 | head`),
// logging a session's first line panicked inside tracing and dropped the
// connection before its 250.
on_both_stores_sync!(a_closed_stderr_does_not_cost_a_session);
fn a_closed_stderr_does_not_cost_a_session(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // nobody reads the log any more
                               // Its port from /proc: the log that would say it is gone.
    let port = crate::util::wait_for(30, "the listener", || {
        crate::util::listening_port(child.id())
    });
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (mut smtp, greeting) = Smtp::connect(addr);
    assert!(greeting.starts_with("220"), "{greeting:?}");
    smtp.expect("EHLO client.example", "250");
    let reply = smtp.send_message(
        "a@example.net",
        "abuse@example.com",
        &message("stderr-1", "no log"),
    );
    assert!(reply.starts_with("250 "), "{reply:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

on_both_stores_sync!(the_report_log_line_carries_the_reply_decision_as_stored);
fn the_report_log_line_carries_the_reply_decision_as_stored(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::test_config(dir.path(), "rate_limit_per_hour = 2\n", "");
    let mut files = Vec::new();
    for n in 1..=3 {
        let path = dir.path().join(format!("{n}.eml"));
        std::fs::write(&path, format!("From: tom@example.net\r\nSubject: ssh {n}\r\nMessage-ID: <log-{n}@example.net>\r\n\r\n192.0.2.31 brute forcing ssh at 2026-11-26 09:58:12 UTC on 203.0.113.4 port 22, attempt {n}\r\n")).unwrap();
        files.push(path.to_str().unwrap().to_owned());
    }
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
        .args(["ingest", "--config", config.to_str().unwrap(), "--db", &db])
        .args(&files)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("report stored"))
        .collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines[1].contains("reply=\"ack\""), "{}", lines[1]);
    // The third passed the rate limit when it was stored: the line says so.
    assert!(
        lines[2].contains("reply=\"suppressed\" reply_reason=rate limit"),
        "{}",
        lines[2]
    );
}

/// An address in use: the error names the key and says its cause once, and
/// nothing is created before it.
#[test]
fn a_listen_address_in_use_is_named_once_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.db");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = abuse_inbox(&["serve", "--listen", &addr, "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (smtp.listen)")),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
    assert!(!db.exists(), "the store was created before the bind failed");
}

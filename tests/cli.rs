//! The command line, run as the built binary: ingest, reports, stats, serve.

use crate::util::{abuse_inbox, abuse_inbox_stdin, json, message, Daemon, Smtp, Store};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn db_arg(dir: &tempfile::TempDir) -> String {
    dir.path().join("cli.db").to_str().unwrap().to_owned()
}

/// The store a scenario runs on: a file in `dir`, or a fresh PostgreSQL
/// database; `None` (SKIPPED) when PostgreSQL is not installed.
fn db_for(store: Store, dir: &tempfile::TempDir) -> Option<String> {
    match store.location() {
        Ok(None) => Some(db_arg(dir)),
        Ok(Some(url)) => Some(url),
        Err(()) => {
            crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
            None
        }
    }
}

on_both_stores_sync!(ingest_prints_one_complete_report_per_file_and_dedupes);
fn ingest_prints_one_complete_report_per_file_and_dedupes(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let a = dir.path().join("a.eml");
    let b = dir.path().join("b.eml");
    std::fs::write(&a, message("ingest-a", "first")).unwrap();
    std::fs::write(&b, message("ingest-b", "second")).unwrap();
    let out = abuse_inbox(&[
        "ingest",
        "--db",
        &db,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["subject"], "first");
    assert_eq!(lines[1]["message_id"], "ingest-b@example.net");
    assert_eq!(lines[0]["reporter"], "reporter@example.net");
    // Delivered again: the same report, not a new one.
    let again = json(&abuse_inbox(&["ingest", "--db", &db, a.to_str().unwrap()]));
    assert_eq!(again["id"], lines[0]["id"]);
    let stats = json(&abuse_inbox(&["stats", "--db", &db, "--format", "json"]));
    assert_eq!(stats["reports"], 2);
}

on_both_stores_sync!(ingest_from_stdin_takes_the_sender_from_return_path);
fn ingest_from_stdin_takes_the_sender_from_return_path(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let mut raw = b"Return-Path: <>\r\n".to_vec();
    raw.extend_from_slice(&message("stdin-1", "bounce"));
    let report = json(&abuse_inbox_stdin(
        &["ingest", "--db", &db, "-"],
        Some(&raw),
    ));
    assert_eq!(report["subject"], "bounce");
    let db = Path::new(&db);
    let from = crate::util::raw_texts(db, "mail_from");
    let origin = crate::util::raw_texts(db, "origin");
    assert_eq!(
        (from, origin),
        (vec![Some(String::new())], vec![Some("ingest".to_owned())])
    );
}

on_both_stores_sync!(a_bad_file_is_reported_and_the_rest_still_run_with_exit_1);
fn a_bad_file_is_reported_and_the_rest_still_run_with_exit_1(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let good = dir.path().join("good.eml");
    std::fs::write(&good, message("good", "fine")).unwrap();
    let out = abuse_inbox(&[
        "ingest",
        "--db",
        &db,
        "/nonexistent/x.eml",
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.eml"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["subject"], "fine");
}

on_both_stores_sync!(reports_show_list_filters_and_table_output);
fn reports_show_list_filters_and_table_output(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let f = dir.path().join("m.eml");
    std::fs::write(&f, message("show-1", "shown")).unwrap();
    let ingested = json(&abuse_inbox(&["ingest", "--db", &db, f.to_str().unwrap()]));
    let id = ingested["id"].to_string();
    let shown = json(&abuse_inbox(&[
        "reports", "show", &id, "--db", &db, "--format", "json",
    ]));
    assert_eq!(shown, ingested);
    let table = abuse_inbox(&["reports", "show", &id, "--db", &db]);
    let table = String::from_utf8_lossy(&table.stdout);
    for part in [
        "subject: shown",
        "envelope: ingest",
        "evidence (",
        "replies:",
        "history:",
        "Classified as",
    ] {
        assert!(
            table.contains(part),
            "reports show lacks {part:?}:\n{table}"
        );
    }
    let listed = json(&abuse_inbox(&[
        "reports",
        "list",
        "--db",
        &db,
        "--format",
        "json",
        "--since",
        "2000-01-01T00:00:00Z",
    ]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let future = json(&abuse_inbox(&[
        "reports",
        "list",
        "--db",
        &db,
        "--format",
        "json",
        "--since",
        "2999-01-01T00:00:00+02:00",
    ]));
    assert!(future.as_array().unwrap().is_empty());
    let other_type = json(&abuse_inbox(&[
        "reports",
        "list",
        "--db",
        &db,
        "--format",
        "json",
        "--type",
        "copyright",
    ]));
    assert!(other_type.as_array().unwrap().is_empty());
    // The table has what the JSON has that an operator sorts by.
    let table = abuse_inbox(&["reports", "list", "--db", &db]);
    let table = String::from_utf8_lossy(&table.stdout);
    let header = table.lines().next().unwrap_or_default();
    for column in ["STATUS", "REPLY", "CASE", "RSIT", "FEED", "REPORTER"] {
        assert!(header.contains(column), "{column} in {header}");
    }
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|row| row.contains("  open  ")),
        "{table}"
    );
    let bad = abuse_inbox(&["reports", "list", "--db", &db, "--type", "spam"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("web_content"));
    let missing = abuse_inbox(&["reports", "show", "999", "--db", &db]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn reading_commands_do_not_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let out = abuse_inbox(&["reports", "list", "--db", &db]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no database"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("cli.db").exists());
}

/// Numbers in plain words, `30d` for days, and an action that changed
/// nothing says so with exit 1.
#[test]
fn numbers_in_plain_words_and_a_no_op_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let eml = dir.path().join("a.eml");
    std::fs::write(&eml, message("numbers-a", "numbers")).unwrap();
    assert!(abuse_inbox(&["ingest", "--db", &db, eml.to_str().unwrap()])
        .status
        .success());
    let days = abuse_inbox(&["prune", "--older-than", "30d", "--dry-run", "--db", &db]);
    assert!(
        days.status.success(),
        "{}",
        String::from_utf8_lossy(&days.stderr)
    );
    let bad = abuse_inbox(&["prune", "--older-than", "a month", "--db", &db]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("whole number of days, e.g. 30"));
    let bad = abuse_inbox(&["reports", "list", "--limit", "lots", "--db", &db]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"lots\" is not a whole number"));
    let nothing = abuse_inbox(&["replies", "discard", "99", "--db", &db]);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("1 of 1 replies changed nothing"));
}

/// A store path that is a directory, or a file that is not a database:
/// the path and SQLite's words once, and what to give instead.
#[test]
fn a_store_that_is_not_a_database_file_is_named_once_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let as_dir = dir.path().to_str().unwrap();
    for command in [&["stats"][..], &["ingest", "-"]] {
        let mut args = vec!["--db", as_dir];
        args.extend_from_slice(command);
        let out = abuse_inbox(&args);
        assert_eq!(out.status.code(), Some(2));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("is a directory"), "{said}");
        assert!(said.contains("abuse-inbox.db"), "{said}");
        assert_eq!(
            said.matches(as_dir).count(),
            2,
            "the path, and the example in it: {said}"
        );
    }
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, "not a database, not at all").unwrap();
    let out = abuse_inbox(&["--db", garbage.to_str().unwrap(), "stats"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.matches("garbage.db").count(), 1, "{said}");
    assert!(said.contains("not a database (SQLite code 26)"), "{said}");
}

#[test]
fn queries_never_migrate_nor_wait_for_the_writer_and_writers_do_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml/network/051-fail2ban-report.eml");
    assert!(
        abuse_inbox(&["ingest", "--db", &db, fixture.to_str().unwrap()])
            .status
            .success()
    );
    // The database as the build before migrations 13 and 14 left it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP INDEX reports_checks_due;
         ALTER TABLE reports DROP COLUMN pending_reply;
         ALTER TABLE reports DROP COLUMN pending_follow_up;
         ALTER TABLE reports DROP COLUMN checks_due_at;
         ALTER TABLE raw_messages DROP COLUMN dsn; PRAGMA user_version = 12;",
    )
    .unwrap();
    for query in [
        &["reports", "list", "--db", &db][..],
        &["stats", "--db", &db],
        &["export", "--format", "jsonl", "--db", &db],
    ] {
        let out = abuse_inbox(query);
        assert_eq!(out.status.code(), Some(2), "{query:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("schema version 12"), "{stderr}");
    }
    let version = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&conn), 12, "a query migrated the database");
    // A writer migrates it; then the queries read it. While another
    // connection holds the write lock, a query still answers at once.
    let fixture2 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/eml/network/052-nginx-intrusion-log.eml");
    let ingest = abuse_inbox(&["ingest", "--db", &db, fixture2.to_str().unwrap()]);
    assert!(
        ingest.status.success(),
        "{}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    assert!(version(&conn) > 12);
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let listed = json(&abuse_inbox(&[
        "reports", "list", "--db", &db, "--format", "json",
    ]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    conn.execute_batch("ROLLBACK").unwrap();
}

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

/// `reprocess` draws its progress on a terminal (here a pseudo-terminal
/// from `script`) and wipes it; through a pipe it draws nothing.
#[test]
fn long_commands_show_progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let eml = dir.path().join("a.eml");
    std::fs::write(&eml, message("progress-a", "progress")).unwrap();
    let out = abuse_inbox(&["ingest", "--db", &db, eml.to_str().unwrap()]);
    assert!(out.status.success());
    let piped = abuse_inbox(&["reprocess", "--all", "--db", &db]);
    assert!(piped.status.success());
    let said = String::from_utf8_lossy(&piped.stderr);
    assert!(!said.contains("reprocess:"), "{said}");
    let command = format!(
        "{} reprocess --all --db {db}",
        env!("CARGO_BIN_EXE_abuse-inbox")
    );
    let on_terminal = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script(1), from bsdutils");
    assert!(on_terminal.status.success());
    let seen = String::from_utf8_lossy(&on_terminal.stdout);
    assert!(
        seen.contains("reprocess: 1 of 1 messages (100 %)"),
        "{seen:?}"
    );
    assert!(seen.contains("\x1b[2K"), "the line is wiped: {seen:?}");
    assert!(seen.contains("\"reprocessed\":1"), "{seen:?}");
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

on_both_stores_sync!(reprocess_after_a_rules_change_reclassifies_in_place_and_queues_no_reply);
fn reprocess_after_a_rules_change_reclassifies_in_place_and_queues_no_reply(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let f = dir.path().join("m.eml");
    std::fs::write(
        &f,
        "From: sam@example.org\r\nSubject: question\r\nMessage-ID: <rp-1@example.org>\r\n\r\nYour customer at 192.0.2.250 runs grumbleware on our hosts.\r\n",
    )
    .unwrap();
    let before = json(&abuse_inbox(&["ingest", "--db", &db, f.to_str().unwrap()]));
    assert_eq!(before["abuse_type"], "unknown");
    // A stranger names that report without its token: a follow-up refused,
    // which stays a report of its own and must be reprocessed like any other.
    let g = dir.path().join("stranger.eml");
    std::fs::write(
        &g,
        format!(
            "From: mallory@elsewhere.example\r\nSubject: Re: [abuse #{}] more\r\nMessage-ID: <rp-2@elsewhere.example>\r\n\r\nThe grumbleware at 192.0.2.251 too.\r\n",
            before["id"]
        ),
    )
    .unwrap();
    let stranger = json(&abuse_inbox(&["ingest", "--db", &db, g.to_str().unwrap()]));
    assert_ne!(stranger["id"], before["id"], "refused: a report of its own");
    assert_eq!(stranger["abuse_type"], "unknown");
    let outbox = |db: &str| -> i64 { crate::util::count_rows(Path::new(db), "outbox") };
    let queued = outbox(&db);
    // An operator adds a rule, in a rules file of their own.
    let mut rules =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml"))
            .unwrap();
    rules.push_str("\n[[rule]]\nid = \"local.grumbleware\"\nabuse_type = \"network_activity\"\nsubtype = \"intrusion\"\npattern = '(?i)grumbleware'\nweight = 5\n");
    let rules_path = dir.path().join("rules.toml");
    std::fs::write(&rules_path, rules).unwrap();
    let config = crate::util::test_config(
        dir.path(),
        "",
        &format!(
            "[classify]\nrules_file = {:?}\n",
            rules_path.to_str().unwrap()
        ),
    );
    let summary = json(&abuse_inbox(&[
        "reprocess",
        "--all",
        "--config",
        config.to_str().unwrap(),
        "--db",
        &db,
    ]));
    assert_eq!(summary["reprocessed"], 2);
    assert_eq!(summary["failed"], 0);
    let refused = json(&abuse_inbox(&[
        "reports",
        "show",
        &stranger["id"].to_string(),
        "--db",
        &db,
        "--format",
        "json",
    ]));
    assert_eq!(
        refused["abuse_type"], "network_activity",
        "the refused follow-up is rewritten too: {refused}"
    );
    let after = json(&abuse_inbox(&[
        "reports",
        "show",
        &before["id"].to_string(),
        "--db",
        &db,
        "--format",
        "json",
    ]));
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["abuse_type"], "network_activity");
    assert_eq!(after["subtype"], "intrusion");
    assert!(
        after["reasons"].to_string().contains("local.grumbleware"),
        "{after}"
    );
    assert_eq!(outbox(&db), queued, "reprocess queued a reply");
    // A bad rules file fails with the rule named.
    std::fs::write(
        &rules_path,
        "[[rule]]\nid = 'x'\nabuse_type = 'web_content'\npattern = '('\nweight = 1\n",
    )
    .unwrap();
    let out = abuse_inbox(&[
        "reprocess",
        "--all",
        "--config",
        config.to_str().unwrap(),
        "--db",
        &db,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rule[0].pattern"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

#[test]
fn backup_copies_a_consistent_database_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let f = dir.path().join("m.eml");
    std::fs::write(&f, message("backup-1", "kept")).unwrap();
    json(&abuse_inbox(&["ingest", "--db", &db, f.to_str().unwrap()]));
    let copy = dir.path().join("copy.db");
    let out = json(&abuse_inbox(&[
        "backup",
        copy.to_str().unwrap(),
        "--db",
        &db,
    ]));
    assert_eq!(out["reports"], 1);
    let listed = json(&abuse_inbox(&[
        "reports",
        "list",
        "--db",
        copy.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(listed[0]["subject"], "kept");
    let again = abuse_inbox(&["backup", copy.to_str().unwrap(), "--db", &db]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not overwriting"));
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

on_both_stores_sync!(reports_list_filters_by_network_subtype_reply_reporter_and_pages);
fn reports_list_filters_by_network_subtype_reply_reporter_and_pages(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    let files: Vec<String> = [
        "csv/020-csv-basic-sshd.eml",
        "network/050-iptables-pasted-log.eml",
        "network/054-single-ip-no-logs.eml",
        "csv/022-csv-tab-ipv6.eml",
    ]
    .iter()
    .map(|f| root.join(f).to_str().unwrap().to_owned())
    .collect();
    let mut args = vec!["ingest", "--db", &db];
    args.extend(files.iter().map(String::as_str));
    assert!(abuse_inbox(&args).status.success());
    let ids = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["reports", "list", "--db", &db, "--format", "json"];
        args.extend_from_slice(extra);
        let mut subjects: Vec<String> = json(&abuse_inbox(&args))
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["message_id"].as_str().unwrap().to_owned())
            .collect();
        subjects.sort();
        subjects
    };
    // Offenders only: net-050's 192.0.2.10 is the firewall that was scanned.
    assert_eq!(
        ids(&["--ip", "192.0.2.0/24"]),
        ["csv-020@security.example.org", "net-054@example.net"]
    );
    assert_eq!(ids(&["--ip", "198.51.100.77"]), ["net-050@example.org"]);
    assert_eq!(ids(&["--ip", "2001:db8::/32"]), ["csv-022@example.net"]);
    assert_eq!(
        ids(&["--subtype", "port_scan"]),
        ["csv-022@example.net", "net-050@example.org"]
    );
    assert_eq!(ids(&["--reply", "needs_info"]), ["net-054@example.net"]);
    assert_eq!(
        ids(&["--reporter", "SECURITY.example"]),
        ["csv-020@security.example.org"]
    );
    assert_eq!(
        ids(&["--status", "open", "--type", "network_activity"]).len(),
        4
    );
    assert!(ids(&["--until", "2000-01-01T00:00:00Z"]).is_empty());
    assert_eq!(ids(&["--limit", "2", "--offset", "3"]).len(), 1);
    assert_eq!(
        ids(&["--search", "firewall"]),
        ["csv-022@example.net", "net-050@example.org"]
    );
    assert_eq!(ids(&["--search", "ufw"]), ["net-050@example.org"]);
    assert_eq!(
        ids(&["--search", "attacking SSH servers"]),
        ["csv-020@security.example.org"]
    );
    assert_eq!(
        ids(&["--search", "hacker", "--ip", "192.0.2.199"]),
        ["net-054@example.net"]
    );
    // Query syntax in the words is text, never an error.
    assert!(ids(&["--search", "\"UFW OR -x* NEAR("]).is_empty());
    let bad = abuse_inbox(&["reports", "list", "--db", &db, "--ip", "192.0.2.0/33"]);
    assert_eq!(bad.status.code(), Some(2));

    // The same data through stats.
    let stats = json(&abuse_inbox(&["stats", "--db", &db, "--format", "json"]));
    assert_eq!(
        stats["top_networks"][0],
        serde_json::json!(["192.0.2.0/24", 2]),
        "{stats}"
    );
    assert_eq!(
        stats["by_subtype"]["network_activity/port_scan"], 2,
        "{stats}"
    );
    assert_eq!(
        stats["by_day"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        4
    );
    assert_eq!(stats["top_reporters"].as_array().unwrap().len(), 4);
    assert!(
        stats["top_ips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e[0] == "2001:db8:bad::1"),
        "{stats}"
    );
    assert_eq!(stats["backlog"], 0);
    let table = abuse_inbox(&["stats", "--db", &db]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("192.0.2.0/24"));
}

on_both_stores_sync!(show_raw_prints_the_original_and_export_is_spreadsheet_safe);
fn show_raw_prints_the_original_and_export_is_spreadsheet_safe(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let f = dir.path().join("m.eml");
    let original = b"From: =cmd|' /C calc'!A0 <x@example.net>\r\nSubject: =HYPERLINK(\"http://evil.example\",\"click\")\r\nMessage-ID: <csvinj@example.net>\r\n\r\n192.0.2.5 attacked 198.51.100.1 port 22 at 2026-11-26T10:00:00Z\r\n";
    std::fs::write(&f, original).unwrap();
    let report = json(&abuse_inbox(&["ingest", "--db", &db, f.to_str().unwrap()]));
    let raw = abuse_inbox(&[
        "reports",
        "show",
        &report["id"].to_string(),
        "--raw",
        "--db",
        &db,
    ]);
    assert!(raw.status.success());
    assert_eq!(raw.stdout, original);
    let csv = abuse_inbox(&["export", "--format", "csv", "--db", &db]);
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).unwrap();
    let mut rows = ::csv::Reader::from_reader(text.as_bytes());
    let record = rows.records().next().unwrap().unwrap();
    assert!(record[3].starts_with("'=HYPERLINK"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with('=') || l.contains(",=")),
        "{text}"
    );
    // XARF v4: what our own X-ARF reader takes back in.
    let xarf = abuse_inbox(&["export", "--format", "xarf", "--db", &db]);
    let doc: serde_json::Value =
        serde_json::from_slice(xarf.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(doc["xarf_version"], "4.2.0");
    assert_eq!(
        (doc["category"].as_str(), doc["type"].as_str()),
        (Some("infrastructure"), Some("compromised_server"))
    );
    assert_eq!(doc["sender"]["contact"], "abuse@abuse-inbox.localhost");
    assert!(
        doc["reporter"]["contact"].as_str().unwrap().contains('@'),
        "{doc}"
    );
    assert_eq!(doc["source_identifier"], "192.0.2.5");
    let eml = dir.path().join("xarf.eml");
    std::fs::write(
        &eml,
        format!(
            "From: peer@example.org\r\nSubject: re-import\r\nMessage-ID: <reimport@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport attached\r\n--b\r\nContent-Type: application/json; name=xarf.json\r\n\r\n{doc}\r\n--b--\r\n"
        ),
    )
    .unwrap();
    let reimported = json(&abuse_inbox(&[
        "ingest",
        "--db",
        &db,
        eml.to_str().unwrap(),
    ]));
    assert_eq!(reimported["formats"], serde_json::json!(["xarf"]));
    assert!(
        reimported["ips"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("192.0.2.5")),
        "{reimported}"
    );
    let jsonl = abuse_inbox(&[
        "export",
        "--format",
        "jsonl",
        "--db",
        &db,
        "--since",
        "2000-01-01T00:00:00Z",
    ]);
    let line: serde_json::Value =
        serde_json::from_slice(jsonl.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["message_id"], "csvinj@example.net");
}

on_both_stores_sync!(prune_forgets_people_and_addresses_of_old_reports_but_keeps_the_counts);
fn prune_forgets_people_and_addresses_of_old_reports_but_keeps_the_counts(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    for f in [
        "csv/020-csv-basic-sshd.eml",
        "network/054-single-ip-no-logs.eml",
    ] {
        assert!(
            abuse_inbox(&["ingest", "--db", &db, root.join(f).to_str().unwrap()])
                .status
                .success()
        );
    }
    // Report 1 arrived a year ago, and its sender was checked (the checks
    // name the reporter's domain).
    crate::util::execute(
        Path::new(&db),
        "UPDATE reports SET received_at = '2025-11-01T00:00:00.000000Z' WHERE id = 1;
         UPDATE raw_messages SET received_at = '2025-11-01T00:00:00.000000Z',
             auth = '{\"summary\":\"spf=pass header.from=reporter.example\"}' WHERE id = 1;",
    );
    let count = |sql: &str| -> i64 { crate::util::int(Path::new(&db), sql) };
    let evidence_before = count("SELECT count(*) FROM evidence");
    let dry = json(&abuse_inbox(&[
        "prune",
        "--older-than",
        "30",
        "--dry-run",
        "--db",
        &db,
    ]));
    assert_eq!(dry["pruned"]["reports"], 1);
    assert_eq!(dry["pruned"]["evidence_rows"], 11);
    assert_eq!(
        count("SELECT count(*) FROM evidence"),
        evidence_before,
        "a dry run changed something"
    );
    // Everything younger than a day, without --yes: refused, nothing changed.
    let everything = abuse_inbox(&["prune", "--older-than", "0", "--db", &db]);
    assert_eq!(everything.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&everything.stderr);
    assert!(
        stderr.contains("prune refused") && stderr.contains("--yes"),
        "{stderr}"
    );
    assert_eq!(count("SELECT count(*) FROM evidence"), evidence_before);
    let done = json(&abuse_inbox(&["prune", "--older-than", "30", "--db", &db]));
    assert_eq!(done["pruned"]["raw_messages"], 1);
    let report = json(&abuse_inbox(&[
        "reports", "show", "1", "--db", &db, "--format", "json",
    ]));
    assert_eq!(report["reporter"], serde_json::Value::Null);
    assert_eq!(report["subject"], serde_json::Value::Null);
    assert_eq!(report["ips"], serde_json::json!([]));
    assert_eq!(report["abuse_type"], "network_activity");
    assert_eq!(
        count("SELECT length(bytes) FROM raw_messages WHERE id = 1"),
        0
    );
    // The sender checks named the reporter's domain (header.from=…): gone too.
    assert_eq!(
        count("SELECT count(*) FROM raw_messages WHERE id = 1 AND auth IS NOT NULL"),
        0
    );
    assert_eq!(report["auth"], serde_json::Value::Null);
    assert_eq!(
        count("SELECT count(*) FROM evidence WHERE report_id = 1"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM report_ips WHERE report_id = 1"),
        0
    );
    assert!(
        count("SELECT count(*) FROM evidence WHERE report_id = 2") > 0,
        "the recent report lost evidence"
    );
    let stats = json(&abuse_inbox(&["stats", "--db", &db, "--format", "json"]));
    assert_eq!(stats["reports"], 2);
    let again = json(&abuse_inbox(&["prune", "--older-than", "30", "--db", &db]));
    assert_eq!(again["pruned"]["reports"], 0);
}

#[test]
fn follow_prints_new_reports_as_they_come_even_before_the_database_exists() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let mut follower = Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
        .args([
            "reports", "list", "--follow", "--format", "json", "--db", &db,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    for n in 0..2 {
        let f = dir.path().join(format!("{n}.eml"));
        std::fs::write(
            &f,
            message(&format!("follow-{n}"), &format!("followed {n}")),
        )
        .unwrap();
        assert!(abuse_inbox(&["ingest", "--db", &db, f.to_str().unwrap()])
            .status
            .success());
    }
    let mut subjects = Vec::new();
    while subjects.len() < 2 {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a followed report within 20 s");
        let report: serde_json::Value = serde_json::from_str(&line).unwrap();
        subjects.push(report["subject"].as_str().unwrap().to_owned());
    }
    assert_eq!(subjects, ["followed 0", "followed 1"]);
    follower.kill().unwrap();
    follower.wait().unwrap();
}

on_both_stores_sync!(reports_about_one_network_and_type_become_one_case);
fn reports_about_one_network_and_type_become_one_case(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let write = |name: &str, text: String| {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        f.to_str().unwrap().to_owned()
    };
    let log = |n: u8, ip: &str| {
        format!(
            "From: r{n}@example.net\r\nSubject: ssh {n}\r\nMessage-ID: <case-{n}@example.net>\r\n\r\n2026-11-26T09:00:0{n}Z sshd[1]: Failed password for root from {ip} port 4000 ssh2 on 203.0.113.9 port 22\r\n"
        )
    };
    let files = [
        write("1.eml", log(1, "192.0.2.10")),
        write("2.eml", log(2, "192.0.2.77")), // same /24, same type: same case
        write("3.eml", log(3, "198.51.100.5")), // another network: another case
        write(
            "4.eml",
            "From: r4@example.net\r\nSubject: spam\r\nMessage-ID: <case-4@example.net>\r\n\r\nSpam from 192.0.2.10, see http://spam.example/\r\n".to_owned(),
        ), // same network, another type: another case
    ];
    let mut args = vec!["ingest", "--db", &db];
    args.extend(files.iter().map(String::as_str));
    let out = abuse_inbox(&args);
    assert!(out.status.success());
    let cases_of: Vec<serde_json::Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["case_id"].clone())
        .collect();
    assert_eq!(cases_of[0], cases_of[1]);
    assert_ne!(cases_of[0], cases_of[2]);
    assert_ne!(cases_of[0], cases_of[3]);
    let cases = json(&abuse_inbox(&[
        "cases", "list", "--db", &db, "--format", "json",
    ]));
    assert_eq!(cases.as_array().unwrap().len(), 3);
    let first = cases_of[0].as_i64().unwrap().to_string();
    let shown = json(&abuse_inbox(&[
        "cases", "show", &first, "--db", &db, "--format", "json",
    ]));
    assert_eq!(shown["case"]["network"], "192.0.2.0/24");
    assert_eq!(shown["case"]["reports"], 2);
    assert_eq!(shown["reports"].as_array().unwrap().len(), 2);
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

on_both_stores_sync!(an_operators_feeds_file_marks_a_sender_automated_and_a_bad_one_is_refused);
fn an_operators_feeds_file_marks_a_sender_automated_and_a_bad_one_is_refused(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let feeds = dir.path().join("feeds.toml");
    std::fs::write(
        &feeds,
        "[[feed]]\nid = 'honeynet'\nname = 'Our partner honeynet'\nsenders = ['honeynet.example.org']\nautomated = true\nabuse_type = 'network_activity'\nsubtype = 'port_scan'\n",
    )
    .unwrap();
    let config = crate::util::test_config(
        dir.path(),
        "",
        &format!("[classify]\nfeeds_file = {:?}\n", feeds.to_str().unwrap()),
    );
    let mail = dir.path().join("m.eml");
    std::fs::write(
        &mail,
        "From: sensor@honeynet.example.org\r\nSubject: report\r\nMessage-ID: <hn-1@honeynet.example.org>\r\n\r\n2026-11-30T10:00:00Z 192.0.2.60 -> 203.0.113.1:23\r\n",
    )
    .unwrap();
    let report = json(&abuse_inbox(&[
        "ingest",
        "--config",
        config.to_str().unwrap(),
        "--db",
        &db,
        mail.to_str().unwrap(),
    ]));
    assert_eq!(report["abuse_type"], "network_activity", "{report}");
    assert_eq!(report["subtype"], "port_scan", "{report}");
    assert_eq!(report["reply"], "suppressed", "{report}");
    assert_eq!(
        report["reply_reason"],
        "automated feed \"honeynet\" not in reply.automated_allow"
    );
    assert!(
        report["reasons"]
            .to_string()
            .contains("feed \\\"honeynet\\\""),
        "{report}"
    );
    std::fs::write(&feeds, "[[feed]]\nid = 'x'\nname = 'x'\nsubject = '('\n").unwrap();
    let out = abuse_inbox(&[
        "ingest",
        "--config",
        config.to_str().unwrap(),
        "--db",
        &db,
        mail.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("classify.feeds_file: feed[0].subject"),
        "{err}"
    );
}

on_both_stores_sync!(reports_explain_names_each_addresss_role_and_what_decided_it);
fn reports_explain_names_each_addresss_role_and_what_decided_it(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    for fixture in [
        "network/105-traceroute-included.eml",
        "freetext/084-es-fuerza-bruta.eml",
    ] {
        let file = root.join(fixture);
        assert!(
            abuse_inbox(&["ingest", "--db", &db, file.to_str().unwrap()])
                .status
                .success()
        );
    }
    let explained = |id: &str| {
        json(&abuse_inbox(&[
            "reports", "explain", id, "--db", &db, "--format", "json",
        ]))
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["address"].as_str().unwrap().to_owned(),
                e["role"].as_str().unwrap().to_owned(),
                e["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect::<Vec<_>>()
    };
    let traceroute = explained("1");
    let role = |list: &[(String, String, String)], address: &str| {
        list.iter()
            .find(|(a, _, _)| a == address)
            .map(|(_, role, why)| (role.clone(), why.clone()))
            .unwrap()
    };
    assert_eq!(role(&traceroute, "192.0.2.201").0, "source");
    assert_eq!(role(&traceroute, "198.51.100.1").0, "hop");
    assert!(role(&traceroute, "10.0.0.1")
        .1
        .contains("not a public address"));
    let spanish = explained("2");
    assert_eq!(
        role(&spanish, "203.0.113.33"),
        (
            "source".to_owned(),
            "the label \"desde\" before it".to_owned()
        )
    );
    let (target, why) = role(&spanish, "192.0.2.71");
    assert_eq!(target, "target");
    assert!(why.contains("line above"), "{why}");
    let table = abuse_inbox(&["reports", "explain", "2", "--db", &db]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("ROLE"));
    assert_eq!(
        abuse_inbox(&["reports", "explain", "99", "--db", &db])
            .status
            .code(),
        Some(2)
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

/// `raw list` as a table: the whole receipt time, and the null sender as
/// SMTP writes it (`<>`), not a blank.
#[test]
fn raw_list_shows_whole_times_and_the_null_sender() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let bounce = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@example.net\r\nSubject: bounce\r\nMessage-ID: <b1@example.net>\r\n\r\nUndeliverable.\r\n";
    let out = abuse_inbox_stdin(&["ingest", "--db", &db, "-"], Some(bounce));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = abuse_inbox(&["raw", "list", "--db", &db]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    let row = text.lines().nth(1).unwrap_or_default();
    assert!(row.contains(" <> "), "{text}");
    let received = row.split_whitespace().nth(1).unwrap_or_default();
    assert_eq!(received.len(), 27, "{text}");
    assert!(received.ends_with('Z'), "{text}");
}

/// A table that does not show everything says so on stderr, with the
/// option that shows the rest; a whole list says nothing.
#[test]
fn a_cut_list_says_so_and_how_to_see_more() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    for f in [
        "csv/020-csv-basic-sshd.eml",
        "network/051-fail2ban-report.eml",
        "network/054-single-ip-no-logs.eml",
    ] {
        let out = abuse_inbox(&["ingest", "--db", &db, root.join(f).to_str().unwrap()]);
        assert!(out.status.success());
    }
    let cut = abuse_inbox(&["reports", "list", "--limit", "2", "--db", &db]);
    assert!(cut.status.success());
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(
        stderr.contains("2 shown, more match: --offset 2"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&cut.stdout).lines().count(), 3);
    let whole = abuse_inbox(&["reports", "list", "--limit", "3", "--db", &db]);
    assert!(
        whole.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let json = abuse_inbox(&[
        "reports", "list", "--limit", "2", "--db", &db, "--format", "json",
    ]);
    assert!(json.stderr.is_empty(), "stderr in JSON mode");
}

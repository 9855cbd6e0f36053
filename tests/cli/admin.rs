//! Keeping the store: errors about it, queries that never write, `backup`, `prune`, `raw`.

use super::{db_arg, db_for};
use crate::util::{abuse_inbox, abuse_inbox_stdin, json, message, Store};
use std::path::Path;

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
    // The database as the build before migration 13 left it (what the
    // later migrations add is taken out too, or is made again harmlessly).
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TABLE login_failures; DROP INDEX reports_open; DROP TRIGGER report_hours_insert; DROP TRIGGER report_hours_delete;
         DROP TRIGGER report_hours_update; DROP TABLE report_hours;
         DROP TABLE web_sessions; DROP TABLE operators;
         DROP TABLE imap_progress; DROP TABLE case_statements; DROP TABLE case_events;
         DROP INDEX outbox_case; ALTER TABLE outbox DROP COLUMN case_id;
         ALTER TABLE outbox DROP COLUMN subject; ALTER TABLE outbox DROP COLUMN body;
         ALTER TABLE outbox DROP COLUMN attachment;
         DROP INDEX report_cases_untold; ALTER TABLE report_cases DROP COLUMN notice_id;
         DROP INDEX cases_active;
         ALTER TABLE cases DROP COLUMN notices; ALTER TABLE cases DROP COLUMN first_notice_at;
         ALTER TABLE cases DROP COLUMN last_notice_at; ALTER TABLE cases DROP COLUMN reminded_at;
         ALTER TABLE cases DROP COLUMN escalated_at; ALTER TABLE cases DROP COLUMN answered_at;
         ALTER TABLE cases DROP COLUMN closed_by; ALTER TABLE cases DROP COLUMN decision;
         ALTER TABLE cases DROP COLUMN decision_ground; ALTER TABLE cases DROP COLUMN reasons_sent_at;
         DROP TABLE owner_imports; DROP TABLE report_cases; DROP TABLE report_customers;
         ALTER TABLE cases DROP COLUMN resolved_at; ALTER TABLE cases DROP COLUMN note;
         DROP INDEX cases_customer; ALTER TABLE cases DROP COLUMN customer;
         ALTER TABLE cases DROP COLUMN status;
         DROP INDEX reports_ownership; ALTER TABLE reports DROP COLUMN owners;
         ALTER TABLE reports DROP COLUMN ownership;
         DROP TABLE assignments; DROP TABLE customers;
         DROP INDEX reports_checks_due;
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

/// `raw show --raw` writes a stranger's bytes as they came, but not to a
/// terminal when they hold controls that would drive it (a pseudo-terminal
/// from `script`); through a pipe, and with `--force`, they go out whole.
#[test]
fn raw_bytes_never_drive_the_operators_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let eml = dir.path().join("escape.eml");
    std::fs::write(
        &eml,
        "From: x@example.net\r\nSubject: clear\r\nMessage-ID: <esc-1@example.net>\r\n\r\n\x1b[2J\x1b]0;owned\x07 192.0.2.1 scanned us\r\n",
    )
    .unwrap();
    assert!(abuse_inbox(&["ingest", "--db", &db, eml.to_str().unwrap()])
        .status
        .success());
    let piped = abuse_inbox(&["raw", "show", "1", "--raw", "--db", &db]);
    assert!(piped.status.success());
    assert!(
        piped.stdout.windows(4).any(|w| w == b"\x1b[2J"),
        "the bytes, whole"
    );
    let on_terminal = |extra: &str| {
        let command = format!(
            "{} raw show 1 --raw --db {db} {extra}",
            env!("CARGO_BIN_EXE_abuse-inbox")
        );
        std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .output()
            .expect("script(1), from bsdutils")
    };
    let refused = on_terminal("");
    let seen = String::from_utf8_lossy(&refused.stdout);
    assert!(seen.contains("would act on this terminal"), "{seen:?}");
    assert!(!seen.contains("\x1b[2J"), "{seen:?}");
    let forced = on_terminal("--force");
    assert!(String::from_utf8_lossy(&forced.stdout).contains("\x1b[2J"));
}

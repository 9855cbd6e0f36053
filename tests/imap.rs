//! IMAP against a real Dovecot: `import imap://…` reads a folder without
//! changing it, once however often it runs, and a run killed mid-way is
//! finished by the next; `serve`'s `[[imap]]` intake commits, then moves to
//! the processed folder (the failed folder for what cannot be taken),
//! wakes on IDLE, survives the server going away, and reads a folder
//! again when its UIDVALIDITY changes without storing anything twice.

use crate::util::dovecot::Dovecot;
use crate::util::{abuse_inbox, count_rows, int, texts, wait_for, Store, TestServer};
use abuse_inbox::config::{Config, ImapConfig, ImapTls};
use std::path::Path;

/// A port-scan report about 192.0.2.(n % 250), numbered `n`.
fn report(n: usize) -> Vec<u8> {
    format!(
        "From: SOC <soc{n}@cert.example.org>\r\nTo: abuse@hosting.example\r\n\
         Subject: Port scan from 192.0.2.{ip}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\
         Message-ID: <imap-{n}@cert.example.org>\r\n\r\n\
         We saw a port scan from 192.0.2.{ip}.\r\n\
         192.0.2.{ip}, 2026-12-03T09:00:00Z, SYN to port 22 from 192.0.2.{ip}\r\n",
        ip = n % 250
    )
    .into_bytes()
}

/// Not a message: no header line at all.
const NOT_A_MESSAGE: &[u8] = b"\x00\x01 binary junk, no header\r\n";

/// Larger than the 64 KiB limit the tests set.
fn oversized() -> Vec<u8> {
    let mut m = report(99_999);
    m.extend(std::iter::repeat_n(b'x', 100 * 1024));
    m
}

const SMALL_LIMIT: &str = "[smtp]\nmax_message_bytes = 65536\n";

fn import(db: &str, config: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    all.extend(["--db", db, "--config", config.to_str().unwrap()]);
    let out = abuse_inbox(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), summary, stderr)
}

on_both_stores_sync!(an_imap_folder_is_imported_read_only_once_and_as_history);
fn an_imap_folder_is_imported_read_only_once_and_as_history(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = crate::cli::db_for(store, &dir) else {
        return;
    };
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    for n in 0..30 {
        // A third read by a person already.
        dovecot.deliver(&report(n), n % 3 == 0);
    }
    dovecot.deliver(NOT_A_MESSAGE, false);
    dovecot.deliver(&oversized(), false);
    let config = crate::util::test_config(dir.path(), "", SMALL_LIMIT);
    let password = dovecot.password_file();
    let url = dovecot.url("INBOX");
    let pw = password.to_str().unwrap();
    let ca = dovecot.ca_file.to_str().unwrap();

    // STARTTLS (the default) with a certificate nobody here trusts: refused.
    let (code, _, stderr) = import(&db, &config, &[&url, "--password-file", pw]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    // A password on the command line is refused, and says where it goes.
    let with_password = url.replace("desk@", "desk:secret@");
    let (code, _, stderr) = import(&db, &config, &[&with_password, "--password-file", pw]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("does not go in the URL"), "{stderr}");
    // --dry-run reads and stores nothing.
    let (code, summary, stderr) = import(
        &db,
        &config,
        &[&url, "--password-file", pw, "--ca-file", ca, "--dry-run"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(summary["messages"], 32, "{summary}");
    assert_eq!(summary["stored"], 0, "{summary}");

    // STARTTLS with the CA: everything but the two bad ones, named.
    let (code, summary, stderr) = import(
        &db,
        &config,
        &[&url, "--password-file", pw, "--ca-file", ca],
    );
    assert_eq!(code, Some(1), "one failed: exit 1 ({stderr})");
    assert_eq!(summary["format"], "imap-import");
    assert_eq!(summary["messages"], 32, "{summary}");
    assert_eq!(summary["stored"], 30, "{summary}");
    assert_eq!(summary["failed"], 2, "{summary}");
    let reasons = summary["failures"].to_string();
    assert!(reasons.contains("not a mail message"), "{reasons}");
    assert!(
        reasons.contains("larger than smtp.max_message_bytes"),
        "{reasons}"
    );
    let db_path = Path::new(&db);
    assert_eq!(count_rows(db_path, "reports"), 30);
    assert_eq!(
        texts(db_path, "SELECT DISTINCT origin FROM raw_messages"),
        [Some("imap-import".to_owned())]
    );
    // History: never answered, never in a case.
    assert_eq!(count_rows(db_path, "outbox"), 0);
    assert_eq!(count_rows(db_path, "report_cases"), 0);
    // The folder is as it was: nothing moved, nothing marked read.
    assert_eq!(dovecot.count("INBOX"), 32);
    assert_eq!(dovecot.status("INBOX", "unseen"), 32 - 10);

    // Again, over TLS from the first byte and the password from the
    // environment: nothing new.
    let imaps = format!("imaps://desk@127.0.0.1:{}/INBOX", dovecot.tls_port);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
        .args(["import", &imaps, "--ca-file", ca, "--db", &db, "--config"])
        .arg(&config)
        .env("IMAP_PASSWORD", "secret")
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("{}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(summary["stored"], 0, "{summary}");
    assert_eq!(summary["duplicates"], 30, "{summary}");
    assert_eq!(count_rows(db_path, "reports"), 30);
    // A wrong password is a clear error, not a panic.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "nope\n").unwrap();
    let (code, _, stderr) = import(
        &db,
        &config,
        &[
            &url,
            "--password-file",
            wrong.to_str().unwrap(),
            "--ca-file",
            ca,
        ],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("login as desk refused"), "{stderr}");
}

#[test]
fn an_imap_import_of_ten_thousand_killed_midway_and_rerun_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    const N: usize = 10_000;
    for n in 0..N {
        dovecot.deliver(&report(n), false);
    }
    let db = dir.path().join("import.db");
    let db_arg = db.to_str().unwrap();
    let config = crate::util::test_config(dir.path(), "", "");
    let password = dovecot.password_file();
    let args = |child: &mut std::process::Command| {
        child
            .args([
                "import",
                &dovecot.url("INBOX"),
                "--tls",
                "none",
                "--password-file",
            ])
            .arg(&password)
            .args(["--db", db_arg, "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
    };
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_abuse-inbox"));
    args(&mut first);
    let mut first = first.spawn().unwrap();
    // Killed once some are stored.
    wait_for(120, "part of the import stored", || {
        (db.exists() && std::panic::catch_unwind(|| count_rows(&db, "reports")).unwrap_or(0) >= 500)
            .then_some(())
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let partial = count_rows(&db, "raw_messages");
    assert!(
        partial < N as i64,
        "the import finished before it was killed"
    );
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_abuse-inbox"));
    args(&mut second);
    let out = second.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("imap import rerun after a kill at {partial}: {summary}");
    assert_eq!(summary["messages"], N, "{summary}");
    assert_eq!(
        summary["stored"].as_i64().unwrap() + summary["duplicates"].as_i64().unwrap(),
        N as i64,
        "{summary}"
    );
    assert_eq!(count_rows(&db, "raw_messages"), N as i64);
    assert_eq!(count_rows(&db, "reports"), N as i64);
    assert_eq!(
        int(&db, "SELECT count(DISTINCT message_id) FROM reports"),
        N as i64
    );
    // Read-only: the folder is untouched.
    assert_eq!(dovecot.count("INBOX"), N as u64);
}

/// The server's configuration with one `[[imap]]` mailbox on `dovecot`.
fn serving(dovecot: &Dovecot, poll_seconds: u64) -> Config {
    let mut config = Config::default();
    config.smtp.max_message_bytes = 65536;
    config.imap = vec![ImapConfig {
        url: dovecot.url("INBOX"),
        tls: Some(ImapTls::Starttls),
        password_file: Some(dovecot.password_file()),
        ca_file: Some(dovecot.ca_file.clone()),
        batch: 7,
        poll_seconds,
        ..ImapConfig::default()
    }];
    config
}

on_both_stores!(serve_reads_an_imap_mailbox_commits_then_moves_and_wakes_on_idle);
async fn serve_reads_an_imap_mailbox_commits_then_moves_and_wakes_on_idle(store: Store) {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    for n in 0..20 {
        // Some read by a person already: read or not, all are taken.
        dovecot.deliver(&report(n), n % 4 == 0);
    }
    dovecot.deliver(NOT_A_MESSAGE, false);
    dovecot.deliver(&oversized(), false);
    // Polling once an hour: only IDLE can bring the late message in time.
    let mut config = serving(&dovecot, 3600);
    config.metrics.listen = "127.0.0.1:0".into();
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let db = server.db_path();
    let metrics = server.metrics_addr().unwrap();
    // The waits block: the server runs on the runtime's other threads.
    tokio::task::block_in_place(|| {
        let moved = |dovecot: &Dovecot| {
            (
                dovecot.count("INBOX"),
                dovecot.count("Processed"),
                dovecot.count("Failed"),
            )
        };
        wait_for(60, "every message moved", || {
            (moved(&dovecot) == (0, 20, 2)).then_some(())
        });
        assert_eq!(crate::util::wait_processed(&db), 20);
        assert_eq!(
            texts(&db, "SELECT DISTINCT origin FROM raw_messages"),
            [Some("imap".to_owned())]
        );
        // Answered like SMTP mail (the test server needs no authentication).
        assert!(count_rows(&db, "outbox") > 0);
        // Moved, never marked: those nobody read are still unread.
        assert_eq!(dovecot.status("Processed", "unseen"), 15);

        // A new message wakes the IDLE wait.
        let started = std::time::Instant::now();
        dovecot.deliver(&report(20), false);
        wait_for(25, "the new message through IDLE", || {
            (count_rows(&db, "raw_messages") == 21).then_some(())
        });
        eprintln!("IDLE wake-up to commit: {:?}", started.elapsed());
        wait_for(20, "the new message moved", || {
            (moved(&dovecot) == (0, 21, 2)).then_some(())
        });
        let text = crate::smtp::http_get(metrics, "/metrics");
        let mailbox = format!("mailbox=\"desk@127.0.0.1:{}/INBOX\"", dovecot.port);
        for (outcome, n) in [("committed", 21), ("failed", 2)] {
            let line =
                format!("abuse_inbox_imap_messages_total{{{mailbox},outcome=\"{outcome}\"}} {n}");
            assert!(text.contains(&line), "{line} not in {text}");
        }
    });
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_outlasts_the_server_going_away_and_a_changed_uidvalidity() {
    let Some(mut dovecot) = Dovecot::start() else {
        return;
    };
    for n in 0..5 {
        dovecot.deliver(&report(n), false);
    }
    // Polling every second: a lost connection is found at once.
    let mut config = serving(&dovecot, 1);
    config.imap[0].idle = false;
    let server = TestServer::start(config).await;
    let db = server.db_path();
    tokio::task::block_in_place(|| {
        wait_for(30, "the first five", || {
            (dovecot.count("Processed") == 5).then_some(())
        });
        // The server goes away; mail arrives meanwhile; the server comes back.
        dovecot.pause();
        dovecot.deliver(&report(5), false);
        std::thread::sleep(std::time::Duration::from_secs(3));
        dovecot.resume();
        wait_for(
            60,
            "the message that came while the server was away",
            || (count_rows(&db, "raw_messages") == 6).then_some(()),
        );
        wait_for(20, "moved", || {
            (dovecot.count("Processed") == 6).then_some(())
        });
        // A person moves a processed message back, and the folder's
        // UIDVALIDITY changes (a restored or rebuilt mailbox): the folder is
        // read again from the start; what was stored is recognised.
        dovecot.doveadm(&["move", "-u", "desk", "INBOX", "mailbox", "Processed", "all"]);
        dovecot.doveadm(&[
            "mailbox",
            "update",
            "-u",
            "desk",
            "--uid-validity",
            "4242",
            "INBOX",
        ]);
        dovecot.deliver(&report(6), false);
        wait_for(60, "all back in Processed", || {
            (dovecot.count("INBOX") == 0 && dovecot.count("Processed") == 7).then_some(())
        });
        assert_eq!(count_rows(&db, "raw_messages"), 7, "nothing stored twice");
        assert_eq!(crate::util::wait_processed(&db), 7);
        assert_eq!(int(&db, "SELECT uid_validity FROM imap_progress"), 4242);
    });
    server.stop().await;
}

//! `import maildir|mbox`: a mailbox's history through the intake, on both
//! stores: stored once however often it runs, killed mid-way and run again
//! with nothing lost or doubled, never answered, never put in a case.

use super::db_for;
use super::owners::{fixture, import as import_owners};
use crate::util::{abuse_inbox, count_rows, texts, Store};
use std::path::Path;

/// A report about c-100's address `n` (203.0.113.x), numbered `n`.
fn report(n: usize) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/notices/report.eml"),
    )
    .unwrap()
    .replace("{N}", &format!("import-{n}"))
    .replace("{IP}", &format!("203.0.113.{}", 100 + n % 100))
    .replace("{OTHER}", "203.0.113.250")
}

/// A Maildir of `n` reports, half read by a person (`cur/`, flagged).
fn maildir(dir: &Path, n: usize) {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for i in 0..n {
        let name = if i % 2 == 0 {
            format!("new/{}.M{i}P1.mx", 1_764_000_000 + i)
        } else {
            format!("cur/{}.M{i}P1.mx:2,S", 1_764_000_000 + i)
        };
        std::fs::write(dir.join(name), report(i)).unwrap();
    }
}

fn run(db: &str, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let config = crate::util::default_test_config();
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    all.extend(["--db", db, "--config", config]);
    let out = abuse_inbox(&all);
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), summary)
}

on_both_stores_sync!(a_maildir_is_imported_once_as_history_and_its_bad_messages_are_named);
fn a_maildir_is_imported_once_as_history_and_its_bad_messages_are_named(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    import_owners(&db, &fixture(), &[]);
    let mail = dir.path().join("Maildir");
    maildir(&mail, 40);
    // The same message delivered twice, an empty file, one over the limit.
    std::fs::write(mail.join("new/1764000100.M100P1.mx"), report(3)).unwrap();
    std::fs::write(mail.join("new/1764000101.M101P1.mx"), "\n").unwrap();
    std::fs::write(
        mail.join("new/1764000102.M102P1.mx"),
        format!("Subject: huge\n\n{}", "x".repeat(30 << 20)),
    )
    .unwrap();
    let mail = mail.to_str().unwrap();
    let (dry_code, dry) = run(&db, &["maildir", mail, "--dry-run"]);
    assert_eq!(dry["messages"], 43, "{dry}");
    assert_eq!(dry_code, Some(1), "two cannot be read: {dry}");
    assert_eq!(
        count_rows(Path::new(&db), "raw_messages"),
        0,
        "a dry run stores nothing"
    );

    let (code, first) = run(&db, &["maildir", mail]);
    assert_eq!(code, Some(1), "{first}");
    assert_eq!(
        (
            first["stored"].as_u64(),
            first["duplicates"].as_u64(),
            first["failed"].as_u64()
        ),
        (Some(40), Some(1), Some(2)),
        "{first}"
    );
    let reasons: Vec<&str> = first["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("more than smtp.max_message_bytes")),
        "{first}"
    );
    assert!(reasons.contains(&"empty"), "{first}");
    // Again: nothing new.
    let (_, again) = run(&db, &["maildir", mail]);
    assert_eq!(
        (again["stored"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(41))
    );
    assert_eq!(count_rows(Path::new(&db), "reports"), 40);

    // History: routed and searchable, marked by its origin, never answered,
    // in no case (so no notice).
    let db_path = Path::new(&db);
    assert_eq!(
        texts(db_path, "SELECT DISTINCT origin FROM raw_messages"),
        [Some("maildir".to_owned())]
    );
    assert_eq!(
        texts(db_path, "SELECT DISTINCT reply FROM reports"),
        [Some("suppressed".to_owned())]
    );
    let reason = texts(db_path, "SELECT reply_reason FROM reports LIMIT 1")[0]
        .clone()
        .unwrap();
    assert!(
        reason.contains("imported from a mailbox (maildir)"),
        "{reason}"
    );
    assert_eq!(count_rows(db_path, "outbox"), 0);
    assert_eq!(count_rows(db_path, "cases"), 0);
    let c100 = texts(
        db_path,
        "SELECT count(*) FROM report_customers WHERE customer = 'c-100'",
    );
    assert_eq!(c100, [Some("40".to_owned())]);
    // The envelope as the mailbox kept it; the time its name gives.
    let arrived = texts(
        db_path,
        "SELECT received_at FROM raw_messages ORDER BY id LIMIT 1",
    );
    assert_eq!(arrived, [Some("2025-11-24T16:00:00.000000Z".to_owned())]);

    // --since: only what arrived from then on.
    let later = dir.path().join("later.db");
    let later = later.to_str().unwrap();
    let (_, since) = run(later, &["maildir", mail, "--since", "2025-11-24T16:00:30Z"]);
    assert_eq!(since["older_than_since"], 30, "{since}");
    // Messages 30 to 39, and the copy of message 3 delivered later.
    assert_eq!(since["stored"], 11, "{since}");
}

on_both_stores_sync!(an_import_killed_mid_way_and_run_again_loses_and_doubles_nothing);
fn an_import_killed_mid_way_and_run_again_loses_and_doubles_nothing(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    // The store exists before the import starts (so it can be watched).
    import_owners(&db, &fixture(), &[]);
    let mail = dir.path().join("Maildir");
    maildir(&mail, 1500);
    let mail = mail.to_str().unwrap();
    let config = crate::util::default_test_config();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
        .args(["import", "maildir", mail, "--db", &db, "--config", config])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once some are stored (or at the latest after 20 s).
    crate::util::wait_for(20, "the first messages committed", || {
        (count_rows(Path::new(&db), "raw_messages") > 0).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();
    let before = count_rows(Path::new(&db), "reports");
    let (code, rerun) = run(&db, &["maildir", mail]);
    assert_eq!(code, Some(0), "{rerun}");
    assert_eq!(
        rerun["stored"].as_i64().unwrap() + rerun["duplicates"].as_i64().unwrap(),
        1500,
        "{rerun}"
    );
    assert!(
        rerun["duplicates"].as_i64().unwrap() >= before,
        "{rerun} after {before}"
    );
    assert_eq!(count_rows(Path::new(&db), "raw_messages"), 1500);
    assert_eq!(count_rows(Path::new(&db), "reports"), 1500);
}

on_both_stores_sync!(an_mbox_splits_only_at_its_from_lines_and_unquotes_them);
fn an_mbox_splits_only_at_its_from_lines_and_unquotes_them(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let mut mbox = String::new();
    for i in 0..30 {
        let body = report(i).replace(
            "Log lines attached.",
            "Log lines attached.\n\n>From the first attempt on, the host kept trying.\n\
             From here on, an unquoted line without a blank line before it.",
        );
        mbox.push_str(&format!(
            "From soc@cert.example.org Mon Nov 24 10:{:02}:00 2025\n{body}\n",
            i
        ));
    }
    // One written with CRLF ends (as some Windows exports are).
    let crlf = format!(
        "From soc@cert.example.org Mon Nov 24 11:00:00 2025\n{}\n",
        report(99)
    )
    .replace('\n', "\r\n");
    mbox.push_str(&crlf);
    let file = dir.path().join("abuse.mbox");
    std::fs::write(&file, &mbox).unwrap();
    let (code, summary) = run(&db, &["mbox", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(
        (summary["messages"].as_u64(), summary["stored"].as_u64()),
        (Some(31), Some(31))
    );
    let db_path = Path::new(&db);
    let raw = crate::util::raw_bytes(db_path);
    let first = String::from_utf8_lossy(&raw[0]);
    assert!(
        first.contains("\nFrom the first attempt on"),
        "unquoted once: {first}"
    );
    assert!(
        first.contains("\nFrom here on, an unquoted line"),
        "{first}"
    );
    assert!(
        !first.contains("From soc@cert.example.org Mon"),
        "the From line is not the message's"
    );
    assert_eq!(
        texts(
            db_path,
            "SELECT received_at FROM raw_messages ORDER BY id LIMIT 1"
        ),
        [Some("2025-11-24T10:00:00.000000Z".to_owned())]
    );
    let evidence = texts(
        db_path,
        "SELECT count(*) FROM reports WHERE evidence_rows = 2",
    );
    assert_eq!(
        evidence,
        [Some("31".to_owned())],
        "every message whole, the CRLF one too"
    );
    let not_mbox = dir.path().join("not.mbox");
    std::fs::write(&not_mbox, report(1)).unwrap();
    let (code, refused) = run(&db, &["mbox", not_mbox.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{refused}");
    assert!(refused["failures"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not an mbox"));
}

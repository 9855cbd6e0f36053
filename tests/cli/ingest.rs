//! `ingest` and `reprocess`: messages into reports from the command line.

use super::{db_arg, db_for};
use crate::util::{abuse_inbox, abuse_inbox_stdin, json, message, Store};
use std::path::Path;

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

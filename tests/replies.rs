//! Replies to reporters: decided with the report, queued in the outbox, sent
//! through a relay. The relay is a second abuse-inbox on port 0 that accepts
//! mail for the reporters, so every reply arrives over real SMTP and is
//! inspected in the relay's own database.

use crate::util::{abuse_inbox, json, outbox, wait_for, Smtp, Store, TestServer};

use abuse_inbox::config::Config;
use std::path::{Path, PathBuf};

/// A relay that accepts mail for `reporter@…` and `soc@…` (the fixtures' reporters).
pub(crate) async fn relay_sink(dir: tempfile::TempDir, listen: &str) -> TestServer {
    let mut config = Config::default();
    config.smtp.recipients = vec!["reporter".into(), "soc".into(), "someone".into()];
    TestServer::start_with(config, dir, listen).await
}

fn daemon_config(relay_port: u16, store: &Option<String>) -> Config {
    let mut config = Config::default();
    if let Some(url) = store {
        config.store.path = url.into();
    }
    config.reply.from = "abuse@example.com".into();
    config.reply.relay_host = Some("127.0.0.1".into());
    config.reply.relay_port = relay_port;
    config.reply.retry_min_seconds = 1;
    config
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/eml")
            .join(path),
    )
    .unwrap()
}

/// Delivers `raw` to the daemon from `from`, with CRLF line ends.
fn deliver(server: &TestServer, from: &str, raw: &[u8]) {
    let text = String::from_utf8_lossy(raw)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let body = text.trim_end_matches("\r\n").replace("\r\n.", "\r\n..");
    let (mut c, _) = Smtp::connect(server.addr);
    c.expect("EHLO reporter.example", "250");
    let reply = c.send_message(from, "abuse@example.com", body.as_bytes());
    assert!(reply.starts_with("250 "), "{reply}");
}

/// The messages the relay received, as (envelope sender, recipients, text).
fn received(db: &Path) -> Vec<(Option<String>, String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT mail_from, rcpt_to, bytes FROM raw_messages ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            String::from_utf8_lossy(&r.get::<_, Vec<u8>>(2)?).into_owned(),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Every report's (reply, reply_reason), sorted.
fn reply_decisions(db: &Path) -> Vec<(String, String)> {
    let listed = json(&abuse_inbox(&[
        "reports",
        "list",
        "--db",
        &db_str(db),
        "--format",
        "json",
        "--limit",
        "100",
    ]));
    let mut decisions: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reply"].as_str().unwrap().to_owned(),
                r["reply_reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    decisions.sort();
    decisions
}

fn db_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

on_both_stores!(ack_needs_info_and_concluded_arrive_with_the_right_headers);
async fn ack_needs_info_and_concluded_arrive_with_the_right_headers(store: Store) {
    let Ok(location) = store.location() else {
        crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
        return;
    };
    let sink = relay_sink(tempfile::tempdir().unwrap(), "127.0.0.1:0").await;
    let daemon = TestServer::start(daemon_config(sink.addr.port(), &location)).await;
    let (sink_db, daemon_db) = (sink.db_path(), daemon.db_path());
    let d = daemon.addr;
    let daemon_ref = &daemon;
    tokio::task::block_in_place(|| {
        // Complete: CSV rows with source, target and time → ack.
        deliver(
            daemon_ref,
            "soc@security.example.org",
            &fixture("csv/020-csv-basic-sshd.eml"),
        );
        let got = wait_for(20, "the ack", || {
            Some(received(&sink_db)).filter(|m| m.len() == 1)
        });
        let (from, rcpt, text) = &got[0];
        assert_eq!(
            from.as_deref(),
            Some(""),
            "replies use the null envelope sender"
        );
        assert_eq!(rcpt, r#"["soc@security.example.org"]"#);
        assert!(
            untokened(text)
                .contains("Subject: [abuse #1] Report received: SSH brute force from 192.0.2.77"),
            "{text}"
        );
        assert!(
            text.contains("In-Reply-To: <csv-020@security.example.org>"),
            "{text}"
        );
        assert!(
            text.contains("References: <csv-020@security.example.org>"),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(text.contains("From: abuse@example.com"), "{text}");
        // Our Message-ID carries the report's token: unique per installation,
        // and what a follow-up must quote. The subject tag has the same.
        let id = header(text, "Message-ID");
        assert!(
            id.starts_with("<abuse-1.0.") && id.ends_with("@example.com>") && id.len() == 32,
            "{id}"
        );
        let token = &id[11..19];
        assert!(text.contains(&format!("[abuse #1-{token}]")), "{text}");
        assert!(
            text.contains("report #1 (network activity, brute force)"),
            "{text}"
        );

        // A reload changes the From of the replies from the sender's next
        // round; one that changes a key built at start is refused whole.
        let refused = daemon_ref.reload_with(|c| {
            c.reply.from = "nobody@example.com".into();
            c.metrics.timeout_seconds += 1;
        });
        assert!(refused.is_err_and(|problems| problems
            .iter()
            .any(|p| p.starts_with("metrics.timeout_seconds"))),);
        let changed = daemon_ref.reload_with(|c| c.reply.from = "desk@example.com".into());
        assert_eq!(changed, Ok(vec!["reply.from".to_owned()]));

        // Incomplete: one address, no logs → needs_info naming the CSV format.
        deliver(
            daemon_ref,
            "someone@example.net",
            &fixture("network/054-single-ip-no-logs.eml"),
        );
        let got = wait_for(20, "the needs_info", || {
            Some(received(&sink_db)).filter(|m| m.len() == 2)
        });
        let text = &got[1].2;
        assert!(
            text.contains("From: desk@example.com"),
            "the reloaded From: {text}"
        );
        assert!(
            untokened(text).contains("Subject: [abuse #2] More information needed: hacker"),
            "{text}"
        );
        assert!(text.contains("IP address, date-time in ISO 8601"), "{text}");

        // Resolved by the operator → concluded, without details.
        let out = abuse_inbox(&[
            "reports",
            "resolve",
            "1",
            "--note",
            "Customer notified.",
            "--db",
            &db_str(&daemon_db),
        ]);
        let report = json(&out);
        assert_eq!(report["status"], "resolved");
        // Resolving again says so and sends nothing more.
        let again = abuse_inbox(&["reports", "resolve", "1", "--db", &db_str(&daemon_db)]);
        assert_eq!(json(&again)["status"], "resolved");
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("already resolved"),
            "{again:?}"
        );
        assert_eq!(outbox(&daemon_db).len(), 3, "a second concluded was queued");
        let got = wait_for(20, "the concluded reply", || {
            Some(received(&sink_db)).filter(|m| m.len() == 3)
        });
        let text = &got[2].2;
        assert!(
            untokened(text).contains("Subject: [abuse #1] Investigation concluded"),
            "{text}"
        );
        assert!(text.contains("Customer notified."), "{text}");
        // The relay has it; the daemon marks it sent right after.
        wait_for(10, "three replies marked sent", || {
            (outbox(&daemon_db)
                .iter()
                .filter(|r| r.state == "sent")
                .count()
                == 3)
                .then_some(())
        });

        // The relay's own pipeline sees our replies as auto-replies: no loop.
        crate::util::wait_processed(&sink_db);
        let conn = rusqlite::Connection::open(&sink_db).unwrap();
        let suppressed: i64 = conn
            .query_row(
                "SELECT count(*) FROM reports WHERE reply = 'suppressed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(suppressed, 3);
    });
    let _ = d;
    daemon.stop().await;
    sink.stop().await;
}

on_both_stores!(feeds_bounces_and_lists_get_no_reply_and_the_rate_limit_holds);
async fn feeds_bounces_and_lists_get_no_reply_and_the_rate_limit_holds(store: Store) {
    let Ok(location) = store.location() else {
        crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
        return;
    };
    let mut config = Config::default();
    if let Some(url) = &location {
        config.store.path = url.into();
    }
    config.reply.rate_limit_per_hour = 2;
    let daemon = TestServer::start(config).await;
    let db = daemon.db_path();
    let daemon_ref = &daemon;
    tokio::task::block_in_place(|| {
        deliver(
            daemon_ref,
            "fbl@mail.example.net",
            &fixture("arf/001-arf-abuse-rfc822.eml"),
        );
        deliver(
            daemon_ref,
            "MAILER-DAEMON@mx.example.net",
            &fixture("freetext/093-auto-submitted-bounce.eml"),
        );
        deliver(
            daemon_ref,
            "seclist@lists.example.org",
            &fixture("freetext/094-list-mail.eml"),
        );
        crate::util::wait_processed(&db);
        assert!(outbox(&db).is_empty(), "{:?}", outbox(&db));
        // Three reports from one person within the hour: two replies, then silence.
        for n in 0..3 {
            let raw = format!("From: tom@example.net\r\nSubject: ssh {n}\r\nMessage-ID: <rl-{n}@example.net>\r\n\r\n192.0.2.31 brute forcing ssh at 2026-11-26 09:58:12 UTC on 203.0.113.4 port 22, attempt {n}\r\n");
            deliver(daemon_ref, "tom@example.net", raw.as_bytes());
            crate::util::wait_processed(&db);
        }
    });
    let decisions = reply_decisions(&db);
    let reasons: Vec<&str> = decisions.iter().map(|(_, why)| why.as_str()).collect();
    // The ARF feed is auto-submitted; either rule keeps it unanswered.
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("automated feed") || r.starts_with("auto-submitted")),
        "{decisions:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("mailer-daemon")),
        "{decisions:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("precedence: list") || r.starts_with("mailing-list")),
        "{decisions:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("rate limit")),
        "{decisions:?}"
    );
    assert_eq!(
        decisions.iter().filter(|(d, _)| d == "ack").count(),
        2,
        "{decisions:?}"
    );
    // No relay configured: the two replies wait as held.
    let held = json(&abuse_inbox(&[
        "replies",
        "list",
        "--state",
        "held",
        "--db",
        &db_str(&db),
        "--format",
        "json",
    ]));
    assert_eq!(held.as_array().unwrap().len(), 2);
    let discarded = json(&abuse_inbox(&[
        "replies",
        "discard",
        "--held",
        "--db",
        &db_str(&db),
    ]));
    assert_eq!(discarded["discarded"], 2);
    let _kept = daemon.stop().await; // the database lives in it
                                     // Reprocessing keeps every decision as it was taken, the rate limit's too.
    let out = abuse_inbox(&["reprocess", "--all", "--db", &db_str(&db)]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let after = reply_decisions(&db);
    assert_eq!(after, decisions);
}

on_both_stores!(relay_down_is_retried_and_a_restart_with_a_pending_outbox_delivers_once);
async fn relay_down_is_retried_and_a_restart_with_a_pending_outbox_delivers_once(store: Store) {
    let Ok(location) = store.location() else {
        crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
        return;
    };
    // The relay's port, held (refusing connections) until the relay comes up.
    let mut reserved = crate::util::ReservedPort::new();
    let port = reserved.port;
    let relay_addr = format!("127.0.0.1:{port}");
    let daemon = TestServer::start(daemon_config(port, &location)).await;
    let db = daemon.db_path();
    let failed_attempt = |db: &Path, n: usize| {
        wait_for(20, "a failed attempt", || {
            let o = outbox(db);
            (o.len() == n && o[n - 1].state == "pending" && o[n - 1].attempts >= 1).then_some(())
        })
    };
    // 1. The relay is down: the reply stays pending and is retried...
    tokio::task::block_in_place(|| {
        deliver(
            &daemon,
            "soc@security.example.org",
            &fixture("csv/020-csv-basic-sshd.eml"),
        );
        failed_attempt(&db, 1);
    });
    // ... and delivered when the relay comes back, while the daemon runs.
    reserved.release();
    let sink = relay_sink(tempfile::tempdir().unwrap(), &relay_addr).await;
    let sink_db: PathBuf = sink.db_path();
    tokio::task::block_in_place(|| {
        wait_for(30, "the delivery once the relay is back", || {
            Some(received(&sink_db)).filter(|m| m.len() == 1)
        });
    });
    let sink_dir = sink.stop().await;

    // 2. Down again: a second reply fails, then the daemon restarts with it
    // pending and the relay up, and delivers it exactly once.
    tokio::task::block_in_place(|| {
        deliver(
            &daemon,
            "someone@example.net",
            &fixture("network/054-single-ip-no-logs.eml"),
        );
        failed_attempt(&db, 2);
    });
    let dir = daemon.stop().await;
    let sink = relay_sink(sink_dir, &relay_addr).await;
    let daemon = TestServer::start_with(daemon_config(port, &location), dir, "127.0.0.1:0").await;
    tokio::task::block_in_place(|| {
        wait_for(30, "the delivery after the restart", || {
            Some(received(&sink_db)).filter(|m| m.len() == 2)
        });
        wait_for(10, "both marked sent", || {
            outbox(&daemon.db_path())
                .iter()
                .all(|r| r.state == "sent")
                .then_some(())
        });
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let got = received(&sink_db);
        assert_eq!(got.len(), 2, "a reply was sent twice");
        assert!(
            untokened(&got[1].2).contains("[abuse #2] More information needed"),
            "{}",
            got[1].2
        );
    });
    daemon.stop().await;
    sink.stop().await;
}

on_both_stores!(a_follow_up_completes_the_report_and_an_ack_follows);
async fn a_follow_up_completes_the_report_and_an_ack_follows(store: Store) {
    let Ok(location) = store.location() else {
        crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
        return;
    };
    let sink = relay_sink(tempfile::tempdir().unwrap(), "127.0.0.1:0").await;
    let daemon = TestServer::start(daemon_config(sink.addr.port(), &location)).await;
    let (sink_db, daemon_db) = (sink.db_path(), daemon.db_path());
    let daemon_ref = &daemon;
    tokio::task::block_in_place(|| {
        deliver(
            daemon_ref,
            "someone@example.net",
            &fixture("network/054-single-ip-no-logs.eml"),
        );
        let got = wait_for(20, "the needs_info", || {
            Some(received(&sink_db)).filter(|m| m.len() == 1)
        });
        assert!(got[0].2.contains("More information needed"));
        // The reporter answers our reply, quoting it (with its example log line).
        // It answers our reply: In-Reply-To names our Message-ID, token and all.
        let ours = header(&got[0].2, "Message-ID");
        assert!(ours.starts_with("<abuse-1.0."), "{ours}");
        let follow_up = format!("From: someone@example.net\r\nTo: abuse@example.com\r\nSubject: Re: [abuse #1] More information needed: hacker\r\nMessage-ID: <fu-1@example.net>\r\nIn-Reply-To: {ours}\r\n\r\nHere are my logs:\r\n2026-11-26T05:58:01Z sshd[3301]: Failed password for root from 192.0.2.199 port 33410 ssh2 on 203.0.113.50 port 22\r\n\r\n> we need\r\n> 192.0.2.1,2026-01-31T12:34:56Z,sshd[123]: Failed password for root from 192.0.2.1 port 4242 ssh2\r\n> -- abuse-inbox --\r\n");
        deliver(daemon_ref, "someone@example.net", follow_up.as_bytes());
        let got = wait_for(20, "the ack after the follow-up", || {
            Some(received(&sink_db)).filter(|m| m.len() == 2)
        });
        assert!(
            untokened(&got[1].2).contains("Subject: [abuse #1] Report complete"),
            "{}",
            got[1].2
        );
        // It says why it comes now.
        assert!(
            got[1]
                .2
                .replace("=\r\n", "")
                .contains("We have added your additional information"),
            "{}",
            got[1].2
        );
        // Someone else naming report 1 (without its token) does not add to
        // it: theirs is report 3.
        let stranger = "From: mallory@example.org\r\nTo: abuse@example.com\r\nSubject: Re: [abuse #1] more\r\nMessage-ID: <fu-2@example.org>\r\nIn-Reply-To: <abuse-1.0@example.com>\r\n\r\n2026-11-26T06:00:00Z sshd[1]: Failed password for root from 198.51.100.66 port 1 ssh2 on 203.0.113.50 port 22\r\n";
        deliver(daemon_ref, "mallory@example.org", stranger.as_bytes());
        crate::util::wait_processed(&daemon_db);
    });
    let db = db_str(&daemon_db);
    let original = json(&abuse_inbox(&[
        "reports", "show", "1", "--db", &db, "--format", "json",
    ]));
    assert_eq!(original["reply"], "ack");
    assert_eq!(original["abuse_type"], "network_activity");
    // Classified again from both messages: the follow-up's log lines make
    // it brute force, with the reasons of both and the matching RSIT pair.
    assert_eq!(original["subtype"], "brute_force", "{original}");
    assert_eq!(original["rsit"]["type"], "brute-force", "{original}");
    let reasons = original["reasons"].to_string();
    assert!(reasons.contains("failed logins"), "{reasons}");
    assert!(reasons.contains("en.attack"), "{reasons}");
    assert_eq!(original["missing"], serde_json::json!([]));
    let ips = original["ips"].as_array().unwrap();
    // The follow-up's offender joined; its target (our reporter's server,
    // 203.0.113.50) is no offender.
    assert_eq!(ips, &[serde_json::json!("192.0.2.199")], "{ips:?}");
    assert!(
        !ips.contains(&serde_json::json!("198.51.100.66")),
        "a stranger's follow-up was merged: {ips:?}"
    );
    let strangers = json(&abuse_inbox(&[
        "reports", "show", "3", "--db", &db, "--format", "json",
    ]));
    assert_eq!(strangers["reporter"], "mallory@example.org");
    // Its own report, never answered: its subject quotes our tag.
    assert_eq!(strangers["reply"], "suppressed", "{strangers}");
    assert_eq!(
        strangers["reply_reason"], "the subject quotes one of our report tags",
        "{strangers}"
    );
    assert!(strangers["case_id"].is_i64(), "{strangers}");
    assert!(
        !ips.contains(&serde_json::json!("192.0.2.1")),
        "our quoted example became evidence: {ips:?}"
    );
    let follow_up = json(&abuse_inbox(&[
        "reports", "show", "2", "--db", &db, "--format", "json",
    ]));
    assert_eq!(follow_up["reply"], "suppressed");
    let history = abuse_inbox(&["reports", "show", "1", "--db", &db]);
    let history = String::from_utf8_lossy(&history.stdout);
    for step in ["received", "classified", "reply", "sent", "follow_up"] {
        assert!(history.contains(step), "history lacks {step}:\n{history}");
    }
    let _kept = daemon.stop().await; // the database lives in it
    sink.stop().await;
    // Reprocessing (after a rules change, say) neither unmerges the follow-up
    // nor takes back the decisions that were acted on.
    let out = abuse_inbox(&["reprocess", "--all", "--db", &db]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let show = |id: &str| {
        json(&abuse_inbox(&[
            "reports", "show", id, "--db", &db, "--format", "json",
        ]))
    };
    let (after, follow_up_after) = (show("1"), show("2"));
    for key in ["reply", "abuse_type", "missing", "ips", "evidence_rows"] {
        assert_eq!(after[key], original[key], "{key} of the original changed");
        assert_eq!(
            follow_up_after[key], follow_up[key],
            "{key} of the follow-up changed"
        );
    }
}

// The corpus through `serve` with a relay: exactly the replies the golden
// files promise arrive, one per report, to the right people.
on_both_stores!(the_fixture_corpus_produces_exactly_the_expected_replies);
async fn the_fixture_corpus_produces_exactly_the_expected_replies(store: Store) {
    let Ok(location) = store.location() else {
        crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    let mut cases = Vec::new();
    for kind in std::fs::read_dir(&root).unwrap() {
        for entry in std::fs::read_dir(kind.unwrap().path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                let golden: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(path.with_extension("json")).unwrap(),
                )
                .unwrap();
                // A follow-up to a report of another corpus would merge into it.
                if golden["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains("[abuse #"))
                {
                    continue;
                }
                cases.push((path, golden));
            }
        }
    }
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected: Vec<(String, String, String)> = cases
        .iter()
        .filter_map(|(_, g)| match g["reply"].as_str() {
            Some(kind @ ("ack" | "needs_info")) => Some((
                g["reporter"].as_str().unwrap().to_lowercase(),
                kind.to_owned(),
                g["language"].as_str().unwrap().to_owned(),
            )),
            _ => None,
        })
        .collect();
    expected.sort();
    let mut sink_config = Config::default();
    sink_config.smtp.recipients = expected.iter().map(|(to, _, _)| to.clone()).collect();
    let sink = TestServer::start(sink_config).await;
    let mut config = daemon_config(sink.addr.port(), &location);
    config.reply.rate_limit_per_hour = 1000;
    let daemon = TestServer::start(config).await;
    let (sink_db, daemon_db) = (sink.db_path(), daemon.db_path());
    let daemon_ref = &daemon;
    tokio::task::block_in_place(|| {
        for (path, golden) in &cases {
            let raw = std::fs::read(path).unwrap();
            let from = match abuse_inbox::parse::rawmail::return_path(&raw) {
                abuse_inbox::model::Sender::Null => String::new(),
                abuse_inbox::model::Sender::Address(a) => a,
                abuse_inbox::model::Sender::Unknown => {
                    golden["reporter"].as_str().unwrap_or("").to_owned()
                }
            };
            deliver(daemon_ref, &from, &raw);
        }
        crate::util::wait_processed(&daemon_db);
        let replies = wait_for(60, "every reply", || {
            Some(received(&sink_db)).filter(|m| m.len() >= expected.len())
        });
        // What each reply's subject says after "[abuse #ID] ", by language.
        let subjects = [
            ("ack", "en", "Report received"),
            ("ack", "de", "Meldung erhalten"),
            ("ack", "es", "Aviso recibido"),
            ("ack", "fr", "Signalement reçu"),
            ("ack", "pt", "Denúncia recebida"),
            ("needs_info", "en", "More information needed"),
            ("needs_info", "de", "Weitere Angaben nötig"),
            ("needs_info", "es", "Necesitamos más información"),
            (
                "needs_info",
                "fr",
                "Informations complémentaires nécessaires",
            ),
            ("needs_info", "pt", "Precisamos de mais informações"),
        ];
        let mut got: Vec<(String, String, String)> = replies
            .iter()
            .map(|(_, rcpt, text)| {
                let to: Vec<String> = serde_json::from_str(rcpt).unwrap();
                let subject = abuse_inbox::parse::parse(text.as_bytes())
                    .subject
                    .unwrap_or_default();
                let (kind, language) = subjects
                    .iter()
                    .find(|(_, _, words)| subject.contains(&format!("] {words}")))
                    .map_or(("other", "?"), |(kind, language, _)| (*kind, *language));
                (to[0].to_lowercase(), kind.to_owned(), language.to_owned())
            })
            .collect();
        got.sort();
        assert_eq!(got, expected);
        // Nothing more trickles in.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert_eq!(received(&sink_db).len(), expected.len());
    });
    daemon.stop().await;
    sink.stop().await;
}

/// `text` with its header lines unfolded and the follow-up token taken out
/// of every `[abuse #ID-TOKEN]`.
fn untokened(text: &str) -> String {
    let text = text.replace("\r\n ", " ").replace("\n ", " ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("[abuse #") {
        let digits = rest[at + 8..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let end = at + 8 + digits;
        out.push_str(&rest[..end]);
        rest = &rest[end..];
        let token = rest.strip_prefix('-').and_then(|t| t.get(..8)).filter(|t| {
            t.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        });
        if token.is_some() {
            rest = &rest[9..];
        }
    }
    out.push_str(rest);
    out
}

/// The value of header `name` in a message's text.
fn header(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .unwrap_or_default()
}

on_both_stores!(the_whole_loop_runs_over_smtp_notice_answer_and_conclusion);
/// From a report to its conclusion without a hand-written mail: the daemon's
/// own notice round tells the customer (with the evidence as CSV), the
/// customer's answer over SMTP lands on the case, and resolving the case
/// tells the reporter and the customer.
async fn the_whole_loop_runs_over_smtp_notice_answer_and_conclusion(store: Store) {
    let Ok(location) = store.location() else {
        crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
        return;
    };
    let mut sink_config = Config::default();
    sink_config.smtp.recipients = vec!["abuse".into(), "noc".into(), "soc".into()];
    let sink =
        TestServer::start_with(sink_config, tempfile::tempdir().unwrap(), "127.0.0.1:0").await;
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("notices.toml");
    std::fs::write(
        &policies,
        "[[policy]]\nname = \"default\"\ndigest_minutes = 0\nrepeat_hours = 0\nremind_hours = 0\n\
         escalate_after_events = 0\nescalate_after_hours = 0\nclose_after_days = 0\n",
    )
    .unwrap();
    let mut config = daemon_config(sink.addr.port(), &location);
    config.notices.file = Some(policies);
    config.notices.interval_seconds = 1;
    let daemon = TestServer::start(config).await;
    let (sink_db, daemon_db) = (sink.db_path(), daemon.db_path());
    let daemon_ref = &daemon;
    tokio::task::block_in_place(|| {
        let db = db_str(&daemon_db);
        let owners = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/customers.csv");
        let imported = abuse_inbox(&["owners", "import", owners.to_str().unwrap(), "--db", &db]);
        assert!(imported.status.success(), "{imported:?}");
        let report = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/notices/report.eml"),
        )
        .unwrap()
        .replace("{N}", "1")
        .replace("{IP}", "203.0.113.120")
        .replace("{OTHER}", "203.0.113.121");
        deliver(daemon_ref, "soc@cert.example.org", report.as_bytes());
        // The reporter's ack, and the customer's notice from the round.
        let got = wait_for(30, "the ack and the notice", || {
            Some(received(&sink_db)).filter(|m| m.len() == 2)
        });
        let notice = got
            .iter()
            .find(|(_, rcpt, _)| rcpt.contains("abuse@hosting.example"))
            .map(|(_, _, text)| text.clone())
            .expect("a notice to the customer");
        // Counted for /metrics (the counter is the process's: other tests
        // may have added to it, never taken away).
        let counted = abuse_inbox::metrics::get()
            .notices
            .get_or_create(&vec![("kind", "notice".to_owned())])
            .get();
        assert!(counted >= 1, "notices_total{{kind=notice}} = {counted}");
        let id = header(&notice, "Message-ID");
        assert!(
            id.starts_with("<case-1.n0.") && id.ends_with("@example.com>"),
            "{id}"
        );
        let subject = header(&notice, "Subject");
        assert!(subject.starts_with("[case #1-"), "{subject}");
        assert!(
            notice.contains("Auto-Submitted: auto-generated"),
            "{notice}"
        );
        assert!(notice.contains("filename=\"evidence.csv\""), "{notice}");
        assert!(notice.contains("203.0.113.120"), "{notice}");
        assert!(
            !notice.contains("soc@cert.example.org"),
            "the reporter is withheld: {notice}"
        );

        // The customer answers; the first line says it is dealt with.
        let tag = &subject[..subject.find(']').unwrap() + 1];
        let answer = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/notices/answer-resolved.eml"),
        )
        .unwrap()
        .replace("{TAG}", tag)
        .replace("{IN_REPLY_TO}", id.trim_matches(['<', '>']))
        .replace("{N}", "1");
        deliver(daemon_ref, "abuse@hosting.example", answer.as_bytes());
        let shown = wait_for(30, "the answer on the case", || {
            let shown = json(&abuse_inbox(&[
                "cases", "show", "1", "--db", &db, "--format", "json",
            ]));
            (shown["case"]["status"] == "customer_resolved").then_some(shown)
        });
        assert_eq!(shown["statements"][0]["sender"], "abuse@hosting.example");
        // The case's history says who did what when.
        wait_for(10, "the notice marked sent on the case", || {
            let shown = json(&abuse_inbox(&[
                "cases", "show", "1", "--db", &db, "--format", "json",
            ]));
            let kinds: Vec<String> = shown["history"]
                .as_array()?
                .iter()
                .map(|h| {
                    format!(
                        "{} by {}",
                        h["kind"].as_str().unwrap_or(""),
                        h["actor"].as_str().unwrap_or("")
                    )
                })
                .collect();
            (kinds.contains(&"sent by relay".to_owned())).then_some(kinds)
        });
        assert_eq!(
            shown["reports"].as_array().unwrap().len(),
            1,
            "the answer is no report"
        );

        // The operator concludes: the reporter and the customer hear it.
        let done = json(&abuse_inbox(&[
            "cases",
            "resolve",
            "1",
            "--note",
            "VM removed",
            "--db",
            &db,
        ]));
        assert_eq!(done["customer_told"], true, "{done}");
        let got = wait_for(30, "the concluded reply and the closed notice", || {
            Some(received(&sink_db)).filter(|m| m.len() == 4)
        });
        let to_reporter = got[2..]
            .iter()
            .find(|(_, rcpt, _)| rcpt.contains("soc@cert.example.org"))
            .expect("concluded to the reporter");
        assert!(
            untokened(&to_reporter.2).contains("Investigation concluded"),
            "{}",
            to_reporter.2
        );
        let to_customer = got[2..]
            .iter()
            .find(|(_, rcpt, _)| rcpt.contains("abuse@hosting.example"))
            .expect("closed to the customer");
        assert!(to_customer.2.contains("VM removed"), "{}", to_customer.2);
        assert!(
            header(&to_customer.2, "Subject").contains("abgeschlossen"),
            "{}",
            to_customer.2
        );
    });
    daemon.stop().await;
    sink.stop().await;
}

on_both_stores!(under_review_a_reply_waits_until_an_operator_releases_it);
async fn under_review_a_reply_waits_until_an_operator_releases_it(store: Store) {
    let Ok(location) = store.location() else {
        crate::util::skipped("PostgreSQL is not installed here; .ci/run installs it");
        return;
    };
    let sink = relay_sink(tempfile::tempdir().unwrap(), "127.0.0.1:0").await;
    let mut config = daemon_config(sink.addr.port(), &location);
    config.reply.review = true;
    config.web.listen = "127.0.0.1:0".into();
    let daemon = TestServer::start(config).await;
    let (sink_db, daemon_db) = (sink.db_path(), daemon.db_path());
    let web = daemon.web_addr().expect("the console listens");
    let daemon_ref = &daemon;
    tokio::task::block_in_place(|| {
        deliver(
            daemon_ref,
            "soc@security.example.org",
            &fixture("csv/020-csv-basic-sshd.eml"),
        );
        wait_for(20, "the ack held", || {
            Some(outbox(&daemon_db)).filter(|o| o.len() == 1 && o[0].state == "held")
        });
        // The relay is there, and still nothing goes out: the sender's
        // rounds (one a second) leave a reply under review alone.
        std::thread::sleep(std::time::Duration::from_secs(3));
        assert_eq!(outbox(&daemon_db)[0].state, "held");
        assert!(received(&sink_db).is_empty());

        // An agent releases it in the console; it goes out, and the
        // history says who let it.
        crate::web::add_user(&daemon_db, "ana", "agent", "ana-password-1");
        let ana = crate::web::log_in(web, "ana", "ana-password-1");
        let page = crate::web::http(web, "GET", "/replies", &[("Cookie", &ana)], "");
        let id = crate::util::texts(&daemon_db, "SELECT CAST(id AS TEXT) FROM outbox")[0]
            .clone()
            .unwrap();
        let release = format!("/replies/{id}/release");
        assert!(page.body.contains(&release), "{}", page.body);
        let token = crate::web::csrf_of(&page.body);
        assert_eq!(
            crate::web::http(web, "POST", &release, &[("Cookie", &ana)], "").status,
            403,
            "no token, no release"
        );
        let done = crate::web::http(
            web,
            "POST",
            &release,
            &[("Cookie", &ana)],
            &format!("csrf={token}"),
        );
        assert_eq!(done.status, 303, "{}", done.body);
        let got = wait_for(20, "the released ack", || {
            Some(received(&sink_db)).filter(|m| m.len() == 1)
        });
        assert_eq!(got[0].1, r#"["soc@security.example.org"]"#);
        let history = crate::util::texts(
            &daemon_db,
            "SELECT detail FROM report_events WHERE kind = 'reply' AND detail LIKE '%released%'",
        );
        assert_eq!(history, vec![Some(format!("reply {id} released by ana"))]);
        let again = crate::web::http(
            web,
            "POST",
            &release,
            &[("Cookie", &ana)],
            &format!("csrf={token}"),
        );
        assert_eq!(again.status, 409, "a sent reply is released once");

        // From the command line: every held reply at once; an id that is not
        // held changes nothing and says why.
        deliver(
            daemon_ref,
            "someone@example.net",
            &fixture("network/054-single-ip-no-logs.eml"),
        );
        wait_for(20, "the needs_info held", || {
            Some(outbox(&daemon_db)).filter(|o| o.len() == 2 && o[1].state == "held")
        });
        let out = abuse_inbox(&["replies", "release", &id, "--db", &db_str(&daemon_db)]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("only held replies can be released"));
        let out = abuse_inbox(&["replies", "release", "--held", "--db", &db_str(&daemon_db)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(json(&out)["released"], 1);
        wait_for(20, "the released needs_info", || {
            Some(received(&sink_db)).filter(|m| m.len() == 2)
        });
    });
    daemon.stop().await;
    sink.stop().await;
}

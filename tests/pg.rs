//! The PostgreSQL store against a real server (tests/util/pg.rs): intake
//! commits and dedup, claims shared by two nodes, a dead node's lease
//! taken over, two nodes migrating one new database at once.

use crate::util::pg::Cluster;
use abuse_inbox::model::{Envelope, Incoming, Origin, Sender};
use abuse_inbox::store::{self, Db, Location, Mode, Role};
use std::collections::HashSet;
use std::time::Duration;

fn connect(url: &str) -> Result<Db, store::Error> {
    store::open(
        &Location::Postgres(url.to_owned()),
        Mode::ReadWrite {
            role: Role::Intake,
            create: true,
        },
    )
}

fn incoming(n: usize) -> Incoming {
    Incoming {
        envelope: Envelope {
            origin: Origin::Smtp,
            peer_ip: Some("192.0.2.1".parse().unwrap()),
            helo: Some("mx.example.net".into()),
            mail_from: Sender::Address("reporter@example.net".into()),
            rcpt_to: vec!["abuse@example.com".into()],
            dsn: None,
        },
        received_at: format!("2026-12-02T10:00:{:02}.000000Z", n % 60),
        bytes: crate::util::message(&format!("pg-{n}"), &format!("report {n}")),
    }
}

#[test]
fn intake_commits_once_per_message_and_knows_a_duplicate() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let mut pg = connect(&url).unwrap();
    assert_eq!(pg.schema_version().unwrap(), 12);
    let (a, b) = (incoming(1), incoming(2));
    let first = pg.commit_raws(&[&a, &b]).unwrap();
    assert!(first.iter().all(|c| !c.is_duplicate));
    let again = pg.commit_raws(&[&a]).unwrap();
    assert!(again[0].is_duplicate);
    assert_eq!(again[0].raw_id, first[0].raw_id);
    assert_eq!(pg.backlog().unwrap(), 2);
    // What a 250 waits for, whatever the server's default.
    let mut check = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let stored: i64 = check
        .query_one("SELECT count(*) FROM raw_messages", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, 2);
    // A reconnect does not migrate again.
    assert_eq!(connect(&url).unwrap().schema_version().unwrap(), 12);
}

#[test]
fn two_nodes_claim_every_message_exactly_once_and_take_over_a_dead_nodes_lease() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let mut pg = connect(&url).unwrap();
    let messages: Vec<Incoming> = (0..200).map(incoming).collect();
    let refs: Vec<&Incoming> = messages.iter().collect();
    pg.commit_raws(&refs).unwrap();
    // Both nodes are connected before either claims: connecting is slower
    // than claiming, and a late node would find the work gone.
    let ready = std::sync::Arc::new(std::sync::Barrier::new(2));
    let nodes: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|node| {
            let (url, ready) = (url.clone(), ready.clone());
            std::thread::spawn(move || {
                let pg = connect(&url).unwrap();
                ready.wait();
                let mut mine = Vec::new();
                loop {
                    let batch = pg
                        .claim_unprocessed(node, 7, u64::MAX, Duration::from_secs(60))
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let claims: Vec<Vec<_>> = nodes.into_iter().map(|n| n.join().unwrap()).collect();
    let all: Vec<_> = claims.iter().flatten().copied().collect();
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "claimed twice or missed");
    assert_eq!(unique.len(), 200);
    assert!(
        claims.iter().all(|c| !c.is_empty()),
        "one node did all the work"
    );
    // A node dies holding a short lease: once it runs out, another node
    // takes the message.
    let extra = incoming(500);
    pg.commit_raws(&[&extra]).unwrap();
    let dead = pg
        .claim_unprocessed("dead", 10, u64::MAX, Duration::from_millis(300))
        .unwrap();
    assert_eq!(dead.len(), 1);
    let other = connect(&url).unwrap();
    assert!(other
        .claim_unprocessed("c", 10, u64::MAX, Duration::from_secs(60))
        .unwrap()
        .is_empty());
    std::thread::sleep(Duration::from_millis(400));
    let taken = other
        .claim_unprocessed("c", 10, u64::MAX, Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        taken.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![dead[0].id]
    );
    assert_eq!(taken[0].bytes, extra.bytes);
}

/// A node that paused past its lease (SIGSTOP, a stall) finds the message
/// taken when it comes back: its write is fenced by its claim, so there is
/// one report, the taker's. A heartbeat keeps a working node's claims.
#[test]
fn a_paused_node_whose_claim_was_taken_stores_nothing_and_a_heartbeat_keeps_claims() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let mut pg = connect(&url).unwrap();
    pg.commit_raws(&[&incoming(1), &incoming(2)]).unwrap();
    let lease = Duration::from_millis(300);
    let paused = pg.claim_unprocessed("mx1:1", 1, u64::MAX, lease).unwrap();
    // The working node renews its claim past the lease: nobody takes it.
    let working = connect(&url).unwrap();
    let kept = working
        .claim_unprocessed("mx2:2", 1, u64::MAX, lease)
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_ne!(kept[0].id, paused[0].id);
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(working.renew_claims("mx2:2", lease).unwrap(), 1);
    }
    // The paused node's lease ran out; a third node takes its message.
    let mut taker = connect(&url).unwrap();
    let taken = taker
        .claim_unprocessed("mx3:3", 10, u64::MAX, lease)
        .unwrap();
    assert_eq!(
        taken.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![paused[0].id],
        "only the lapsed claim is taken"
    );
    let pipeline =
        abuse_inbox::pipeline::Pipeline::new(&abuse_inbox::config::Config::default()).unwrap();
    let outcome = |raw: &abuse_inbox::model::RawMessage| store::Outcome {
        raw_id: raw.id,
        received_at: raw.received_at.clone(),
        result: Ok(pipeline.process(raw)),
        fence: raw.claim.clone(),
    };
    // The paused node resumes first: the message is no longer its own.
    let late = pg.save_outcomes(&[outcome(&paused[0])], "2026-12-02T10:01:00.000000Z");
    assert_eq!(late.unwrap(), vec![abuse_inbox::store::Saved::NotStored]);
    assert_eq!(count(&url, "SELECT count(*) FROM reports"), 0);
    let stored = taker
        .save_outcomes(&[outcome(&taken[0])], "2026-12-02T10:01:00.000000Z")
        .unwrap();
    assert!(stored[0].is_stored());
    // ...and after the taker stored it, still nothing.
    let again = pg.save_outcomes(&[outcome(&paused[0])], "2026-12-02T10:01:01.000000Z");
    assert_eq!(again.unwrap(), vec![abuse_inbox::store::Saved::NotStored]);
    assert_eq!(count(&url, "SELECT count(*) FROM reports"), 1);
}

/// Two daemons, one stopped (SIGSTOP) past its lease while it works: the
/// other takes over its messages within the lease, and when the stopped one
/// resumes there is still exactly one report per message.
#[test]
fn a_stopped_node_s_work_is_taken_over_and_never_stored_twice() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::test_config(dir.path(), "", "[store]\nclaim_lease_seconds = 2\n");
    let config = config.to_str().unwrap();
    let start = || crate::util::Daemon::start_with(&url, &["--config", config], &[]);
    let nodes = [start(), start()];
    // Mail goes to the node that keeps running; both nodes process it.
    let mut acked = 0;
    let (mut smtp, _) = crate::util::Smtp::connect(nodes[1].addr);
    smtp.cmd("EHLO load.example");
    let mut send = |n: usize| {
        let id = format!("stop-{n}");
        assert!(smtp
            .cmd("MAIL FROM:<reporter@example.net>")
            .starts_with("250"));
        assert!(smtp.cmd("RCPT TO:<abuse@example.com>").starts_with("250"));
        assert!(smtp.cmd("DATA").starts_with("354"));
        smtp.send(&crate::util::message(&id, "stopped node"));
        smtp.send(b".\r\n");
        assert!(smtp.reply().starts_with("250"));
    };
    for n in 0..150 {
        send(n);
        acked += 1;
    }
    let stopped = nodes[0].child.id().to_string();
    let signal = |sig: &str| {
        assert!(std::process::Command::new("kill")
            .args([sig, &stopped])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    for n in 150..300 {
        send(n);
        acked += 1;
    }
    // While it is stopped, the other node finishes everything, its claims
    // included, within the lease (and a little).
    // (A node stopped inside a transaction holds the write lock until the
    // server ends it, 5 s later; then the lease, 2 s, runs out.)
    crate::util::wait_for(40, "the stopped node's work taken over", || {
        let waiting = count(
            &url,
            "SELECT count(*) FROM raw_messages WHERE status <> 'processed'",
        );
        (waiting == 0).then_some(())
    });
    signal("-CONT");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(&url, "SELECT count(*) FROM raw_messages"), acked);
    assert_eq!(
        count(&url, "SELECT count(*) FROM reports"),
        acked,
        "one report per message"
    );
    assert_eq!(
        count(&url, "SELECT count(DISTINCT raw_id) FROM reports"),
        acked
    );
    // The resumed node carries on alone: a connection the server closed
    // under it (the transaction it was stopped in) is opened again, so its
    // intake takes mail and its worker turns it into reports.
    let [resumed, other] = nodes;
    drop(other);
    let (mut smtp, _) = crate::util::Smtp::connect(resumed.addr);
    smtp.cmd("EHLO load.example");
    for n in 0..20 {
        let id = format!("resumed-{n}");
        assert!(smtp
            .cmd("MAIL FROM:<reporter@example.net>")
            .starts_with("250"));
        assert!(smtp.cmd("RCPT TO:<abuse@example.com>").starts_with("250"));
        assert!(smtp.cmd("DATA").starts_with("354"));
        smtp.send(&crate::util::message(&id, "resumed node"));
        smtp.send(b".\r\n");
        let reply = smtp.reply();
        assert!(
            reply.starts_with("250"),
            "the resumed node refused: {reply}"
        );
        acked += 1;
    }
    crate::util::wait_for(30, "the resumed node's own reports", || {
        (count(&url, "SELECT count(*) FROM reports") == acked).then_some(())
    });
}

/// The server ends a node's connection (a restart, or a node stopped in a
/// transaction past `idle_in_transaction_session_timeout`): the statement
/// that finds out fails, and the next one runs on a new connection instead
/// of every one failing until the daemon restarts.
#[test]
fn a_connection_the_server_closed_is_opened_again() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let mut pg = connect(&url).unwrap();
    pg.commit_raws(&[&incoming(1)]).unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // Several rounds: the client learns of the end in different ways (the
    // server's FATAL 57P01, a reset socket, a closed client).
    for round in 2..8 {
        let ended: i64 = admin
            .query_one(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(ended, 1, "the store's one connection");
        // At most one failure; then the store works again.
        let first = pg.commit_raws(&[&incoming(round)]);
        if let Err(error) = first {
            pg.commit_raws(&[&incoming(round)])
                .unwrap_or_else(|e| panic!("round {round}: after {error}, still {e}"));
        }
        assert_eq!(pg.backlog().unwrap(), round as u64);
    }
}

/// What a newcomer meets first on PostgreSQL: a database not created yet,
/// a `backup` meant for SQLite, and the same error as JSON under
/// `--log-format json`. Each says the server's words once and the fix.
#[test]
fn postgresql_errors_say_the_server_s_words_once_and_the_fix() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let missing = cluster.url("no_such_desk");
    let out = crate::util::abuse_inbox(&["--db", &missing, "stats"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.matches("does not exist").count(), 1, "{said}");
    assert!(
        said.contains("SQLSTATE 3D000") && said.contains("createdb"),
        "{said}"
    );
    assert!(!said.contains("db error"), "{said}");

    let out = crate::util::abuse_inbox(&["--log-format", "json", "--db", &missing, "stats"]);
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let line: serde_json::Value = serde_json::from_str(&last).expect("the fatal error is JSON");
    assert_eq!(line["level"], "ERROR");
    assert!(line["fields"]["message"]
        .as_str()
        .unwrap()
        .contains("SQLSTATE 3D000"));

    let url = cluster.create_db();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy.db");
    let out = crate::util::abuse_inbox(&["--db", &url, "backup", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
    assert!(!target.exists(), "nothing is created");
}

#[test]
fn a_claim_stays_within_the_byte_budget_but_always_takes_one() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let mut pg = connect(&url).unwrap();
    let messages: Vec<Incoming> = (0..5).map(incoming).collect();
    let refs: Vec<&Incoming> = messages.iter().collect();
    pg.commit_raws(&refs).unwrap();
    let size = messages[0].bytes.len() as u64;
    let batch = pg
        .claim_unprocessed("a", 10, size * 2, Duration::from_secs(60))
        .unwrap();
    assert_eq!(batch.len(), 2, "two messages fit in the budget");
    let batch = pg
        .claim_unprocessed("a", 10, 1, Duration::from_secs(60))
        .unwrap();
    assert_eq!(batch.len(), 1, "one message always goes, however big");
}

#[test]
fn nodes_starting_together_migrate_a_new_database_once() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || connect(&url).map(|pg| pg.schema_version().unwrap()))
        })
        .collect();
    for start in starts {
        assert_eq!(start.join().unwrap().unwrap(), 12);
    }
}

/// Rows of a query on the store, for assertions.
fn count(url: &str, sql: &str) -> i64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client.query_one(sql, &[]).unwrap().get(0)
}

/// A cluster with a fresh database, a runtime for the test's servers (the
/// test itself blocks), and a relay sink running on it.
fn cluster_with_relay() -> Option<(
    Cluster,
    String,
    tokio::runtime::Runtime,
    crate::util::TestServer,
)> {
    let cluster = Cluster::start()?;
    let url = cluster.create_db();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sink = runtime.block_on(crate::replies::relay_sink(
        tempfile::tempdir().unwrap(),
        "127.0.0.1:0",
    ));
    Some((cluster, url, runtime, sink))
}

fn cli_json(args: &[&str]) -> serde_json::Value {
    crate::util::json(&crate::util::abuse_inbox(args))
}

#[test]
fn serve_on_postgres_takes_mail_and_every_command_reads_the_reports() {
    let Some((cluster, url, runtime, sink)) = cluster_with_relay() else {
        return;
    };
    let mut config = abuse_inbox::config::Config::default();
    config.store.path = url.clone().into();
    config.reply.from = "abuse@example.com".into();
    config.reply.relay_host = Some("127.0.0.1".into());
    config.reply.relay_port = sink.addr.port();
    config.reply.retry_min_seconds = 1;
    let server = runtime.block_on(crate::util::TestServer::start(config));
    let addr = server.addr;
    {
        let (mut c, _) = crate::util::Smtp::connect(addr);
        c.expect("EHLO reporter.example", "250");
        for (id, subject) in [
            ("pg-e2e-1", "SSH brute force"),
            ("pg-e2e-2", "more brute force"),
        ] {
            let reply = c.send_message(
                "reporter@example.net",
                "abuse@example.com",
                &crate::util::message(id, subject),
            );
            assert!(reply.starts_with("250"), "{reply}");
        }
        let phishing = b"From: someone@example.org\r\nTo: abuse@example.com\r\nSubject: Phishing page\r\nMessage-ID: <pg-e2e-3@example.org>\r\n\r\nA phishing page imitating our bank is hosted at http://login-bank.example.com/verify on your network.\r\n";
        assert!(c
            .send_message("someone@example.org", "abuse@example.com", phishing)
            .starts_with("250"));
        c.expect("QUIT", "221");
    }
    let list = crate::util::wait_for(30, "three reports on PostgreSQL", || {
        let list = cli_json(&["reports", "list", "--db", &url, "--format", "json"]);
        (list.as_array().unwrap().len() == 3).then_some(list)
    });
    let reports = list.as_array().unwrap();
    assert!(
        reports.iter().any(|r| r["abuse_type"] == "web_content"),
        "{list}"
    );
    // The operator's queries, PostgreSQL's indexes behind them.
    let by_net = cli_json(&[
        "reports",
        "list",
        "--db",
        &url,
        "--ip",
        "192.0.2.0/24",
        "--format",
        "json",
    ]);
    assert_eq!(by_net.as_array().unwrap().len(), 2, "{by_net}");
    let by_word = cli_json(&[
        "reports", "list", "--db", &url, "--search", "bank", "--format", "json",
    ]);
    assert_eq!(by_word.as_array().unwrap().len(), 1, "{by_word}");
    let stats = cli_json(&["stats", "--db", &url, "--format", "json"]);
    assert_eq!(stats["reports"], 3, "{stats}");
    assert_eq!(stats["top_networks"][0][0], "192.0.2.0/24", "{stats}");
    let cases = cli_json(&["cases", "list", "--db", &url, "--format", "json"]);
    assert_eq!(cases[0]["reports"], 2, "{cases}");
    let id = reports
        .iter()
        .find(|r| r["abuse_type"] == "network_activity")
        .unwrap()["id"]
        .to_string();
    let shown = cli_json(&["reports", "show", &id, "--db", &url, "--format", "json"]);
    assert_eq!(shown["id"].to_string(), id);
    let export = crate::util::abuse_inbox(&["export", "--format", "intelmq", "--db", &url]);
    assert!(export.status.success());
    assert!(String::from_utf8_lossy(&export.stdout).contains("192.0.2.10"));
    // Replies went out through the relay, each recorded as sent.
    crate::util::wait_for(30, "the replies sent", || {
        let pending = count(&url, "SELECT count(*) FROM outbox WHERE state <> 'sent'");
        let sent = count(&url, "SELECT count(*) FROM outbox WHERE state = 'sent'");
        (pending == 0 && sent >= 2).then_some(())
    });
    let resolved = cli_json(&["reports", "resolve", &id, "--db", &url]);
    assert_eq!(resolved["status"], "resolved");
    // A query never migrates: an empty database is refused, untouched.
    let empty = cluster.create_db();
    let out = crate::util::abuse_inbox(&["stats", "--db", &empty]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema version 0"));
    runtime.block_on(server.stop());
    runtime.block_on(sink.stop());
}

#[test]
fn two_nodes_on_one_postgres_lose_nothing_when_one_is_killed() {
    let Some((_cluster, url, runtime, sink)) = cluster_with_relay() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::test_config(
        dir.path(),
        &format!(
            "from = \"abuse@example.com\"\nrelay_host = \"127.0.0.1\"\nrelay_port = {}\n\
             retry_min_seconds = 1\nrate_limit_per_hour = 10000\n\
             rate_limit_per_domain_per_hour = 10000\nrate_limit_global_per_hour = 10000\n",
            sink.addr.port()
        ),
        "[store]\nclaim_lease_seconds = 3\n",
    );
    let config = config.to_str().unwrap();
    let start = || crate::util::Daemon::start_with(&url, &["--config", config], &[]);
    let mut nodes = [start(), start()];
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (acked, stop, addr) = (acked.clone(), stop.clone(), nodes[c % 2].addr);
            std::thread::spawn(move || {
                let (mut smtp, _) = crate::util::Smtp::connect(addr);
                smtp.cmd("EHLO load.example");
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let id = format!("node-{c}-{n}");
                    let body = crate::util::message(&id, "two nodes");
                    if !smtp
                        .cmd("MAIL FROM:<reporter@example.net>")
                        .starts_with("250")
                        || !smtp.cmd("RCPT TO:<abuse@example.com>").starts_with("250")
                        || !smtp.cmd("DATA").starts_with("354")
                    {
                        return;
                    }
                    smtp.send(&body);
                    smtp.send(b".\r\n");
                    if !smtp.reply().starts_with("250") {
                        return;
                    }
                    acked.lock().unwrap().push(format!("{id}@example.net"));
                }
            })
        })
        .collect();
    let wait_acked = |n: usize| {
        let started = std::time::Instant::now();
        while acked.lock().unwrap().len() < n && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_acked(60);
    nodes[0].child.kill().unwrap(); // SIGKILL, mid-stream
    nodes[0].child.wait().unwrap();
    wait_acked(120);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for c in clients {
        let _ = c.join();
    }
    nodes[0] = start();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 100, "only {} acknowledged", acked.len());
    // Every acknowledged message is stored once and becomes one report;
    // the dead node's claims run out and the others take its work.
    crate::util::wait_for(60, "every message processed", || {
        let waiting = count(
            &url,
            "SELECT count(*) FROM raw_messages WHERE status <> 'processed'",
        );
        let unsent = count(&url, "SELECT count(*) FROM outbox WHERE state <> 'sent'");
        (waiting == 0 && unsent == 0).then_some(())
    });
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let stored: HashSet<String> = client
        .query("SELECT message_id FROM raw_messages", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let lost: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let raws = count(&url, "SELECT count(*) FROM raw_messages");
    assert_eq!(raws as usize, stored.len(), "a message stored twice");
    assert_eq!(
        count(&url, "SELECT count(*) FROM reports"),
        raws,
        "one report each"
    );
    // One reply per report, each sent once: the relay holds each reply's
    // Message-ID once, as many as the outbox says were sent.
    let sent = count(&url, "SELECT count(*) FROM outbox WHERE state = 'sent'");
    assert_eq!(sent, raws);
    let sink_ids = crate::util::wait_for(30, "the relay has every reply", || {
        let conn = rusqlite::Connection::open(sink.db_path()).unwrap();
        let ids: Vec<String> = conn
            .prepare("SELECT message_id FROM raw_messages")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (ids.len() as i64 == sent).then_some(ids)
    });
    let unique: HashSet<_> = sink_ids.iter().collect();
    assert_eq!(unique.len(), sink_ids.len());
    // Both nodes took mail (clients 0 and 2 sent to the first, 1 and 3 to
    // the second). Which node processed what depends on who claimed first.
    for client in 0..2 {
        assert!(
            acked
                .iter()
                .any(|id| id.starts_with(&format!("node-{client}-"))),
            "node {client} took no mail"
        );
    }
    for mut node in nodes {
        node.child.kill().unwrap();
        node.child.wait().unwrap();
    }
    runtime.block_on(sink.stop());
}

#[test]
fn migrate_store_moves_a_desk_to_postgres_and_a_second_run_catches_up() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let db = db.to_str().unwrap();
    let mut fixtures: Vec<String> = Vec::new();
    for kind in
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml"))
            .unwrap()
    {
        for file in std::fs::read_dir(kind.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                fixtures.push(path.to_str().unwrap().to_owned());
            }
        }
    }
    fixtures.sort();
    let (first, rest) = fixtures.split_at(fixtures.len() - 10);
    let ingest = |files: &[String]| {
        let mut args = vec!["ingest", "--db", db];
        args.extend(files.iter().map(String::as_str));
        crate::util::abuse_inbox(&args);
    };
    ingest(first);
    let owners =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/customers.csv");
    let imported =
        crate::util::abuse_inbox(&["owners", "import", owners.to_str().unwrap(), "--db", db]);
    assert!(imported.status.success());
    let added = crate::util::abuse_inbox_stdin(
        &["users", "add", "ana", "--role", "agent", "--db", db],
        Some(b"ana-password-1\n"),
    );
    assert!(added.status.success());
    let migrate = || cli_json(&["migrate-store", "--from", db, "--to", &url]);
    let copied = migrate();
    let rows = |copied: &serde_json::Value, table: &str| {
        copied["copied"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["table"] == table)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows(&copied, "reports"), first.len() as u64, "{copied}");
    assert_eq!(rows(&copied, "operators"), 1, "{copied}");
    // The same desk, read from either store.
    let same = |args: &[&str]| {
        let mut on_sqlite = args.to_vec();
        on_sqlite.extend(["--db", db]);
        let mut on_pg = args.to_vec();
        on_pg.extend(["--db", &url]);
        let (a, b) = (
            crate::util::abuse_inbox(&on_sqlite),
            crate::util::abuse_inbox(&on_pg),
        );
        assert!(a.status.success() && b.status.success(), "{args:?}");
        // PostgreSQL text holds no NUL: it keeps U+2400 in its place.
        let a = String::from_utf8_lossy(&a.stdout).replace("\\u0000", "\u{2400}");
        let b = String::from_utf8_lossy(&b.stdout);
        if let Some((n, (x, y))) = a
            .lines()
            .zip(b.lines())
            .enumerate()
            .find(|(_, (x, y))| x != y)
        {
            panic!("{args:?} differs at line {n}: {x:?} (SQLite) vs {y:?} (PostgreSQL)");
        }
        assert_eq!(a.lines().count(), b.lines().count(), "{args:?}");
    };
    same(&["reports", "list", "--limit", "1000", "--format", "json"]);
    same(&["cases", "list", "--format", "json"]);
    for query in ["203.0.113.9", "198.51.100.5", "www.shop.example.co.uk"] {
        same(&[
            "owners",
            "lookup",
            query,
            "--at",
            "2026-10-31T23:00:00Z",
            "--format",
            "json",
        ]);
    }
    same(&["replies", "list", "--limit", "1000", "--format", "json"]);
    same(&["users", "list", "--format", "json"]);
    same(&["export", "--format", "xarf"]);
    same(&[
        "reports",
        "list",
        "--ip",
        "203.0.113.0/24",
        "--limit",
        "1000",
        "--format",
        "json",
    ]);
    // Nothing new: nothing copied. New mail on the old store: only it.
    let again = migrate();
    assert_eq!(rows(&again, "reports"), 0);
    assert_eq!(rows(&again, "operators"), 0);
    ingest(rest);
    assert_eq!(rows(&migrate(), "reports"), rest.len() as u64);
    same(&["reports", "list", "--limit", "1000", "--format", "json"]);
    same(&["stats", "--format", "json"]);
    // The new store takes mail after the copied ids.
    let more = dir.path().join("more.eml");
    std::fs::write(&more, crate::util::message("after-move", "after the move")).unwrap();
    let report = cli_json(&["ingest", "--db", &url, more.to_str().unwrap()]);
    assert_eq!(report["id"], fixtures.len() as u64 + 1, "{report}");
}

#[test]
fn the_connection_uses_tls_when_asked_and_refuses_a_certificate_it_cannot_trust() {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let Some(cluster) = Cluster::start_with_tls(&key.cert.pem(), &key.signing_key.serialize_pem())
    else {
        return;
    };
    let url = cluster.create_db();
    // A certificate no trusted CA signed: refused, not used unverified.
    let out = crate::util::abuse_inbox(&["stats", "--db", &format!("{url}?sslmode=require")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    // Without TLS (the server allows it here) the same database works.
    let plain = format!("{url}?sslmode=disable");
    let message = crate::util::message("tls-1", "over a plain connection");
    let out = crate::util::abuse_inbox_stdin(&["ingest", "--db", &plain, "-"], Some(&message));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        cli_json(&["stats", "--db", &plain, "--format", "json"])["reports"],
        1
    );
}

//! SMTP intake against a real server on port 0.

use crate::util::{count_rows, message, wait_processed, Smtp, Store, TestServer};
use abuse_inbox::config::Config;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::{Duration, Instant};

fn envelope(from: Option<&str>, to: &str) -> Envelope {
    Envelope::new(from.map(|f| f.parse().unwrap()), vec![to.parse().unwrap()]).unwrap()
}

fn mailer(server: &TestServer) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_message_is_on_disk_before_250_and_becomes_a_report() {
    let server = TestServer::default().await;
    let raw = message("lettre-1", "=?UTF-8?Q?Spam_vom_M=C3=A4rz?=");
    let response = mailer(&server)
        .send_raw(
            &envelope(Some("reporter@example.net"), "abuse@example.com"),
            &raw,
        )
        .await
        .expect("250");
    assert_eq!(response.code().to_string(), "250");
    // 250 promised durability: an independent connection must already see the row.
    assert_eq!(count_rows(&server.db_path(), "raw_messages"), 1);
    assert_eq!(wait_processed(&server.db_path()), 1);
    let db = server.db_path();
    let list = crate::util::json(&crate::util::abuse_inbox(&[
        "reports",
        "list",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let report = &list.as_array().unwrap()[0];
    assert_eq!(report["subject"], "Spam vom März");
    assert_eq!(report["message_id"], "lettre-1@example.net");
    assert_eq!(report["reporter"], "reporter@example.net");
    for key in [
        "id",
        "received_at",
        "abuse_type",
        "subtype",
        "ips",
        "urls",
        "evidence_rows",
        "missing",
        "reply",
    ] {
        assert!(
            report.get(key).is_some(),
            "report JSON lacks {key}: {report}"
        );
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (peer, from, rcpt): (String, String, String) = conn
        .query_row(
            "SELECT peer_ip, mail_from, rcpt_to FROM raw_messages",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (peer.as_str(), from.as_str(), rcpt.as_str()),
        (
            "127.0.0.1",
            "reporter@example.net",
            "[\"abuse@example.com\"]"
        )
    );
    server.stop().await;
}

on_both_stores!(relay_attempt_is_550_and_nothing_is_stored);
async fn relay_attempt_is_550_and_nothing_is_stored(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, greeting) = Smtp::connect(addr);
        assert!(greeting.starts_with("220 "), "{greeting}");
        c.expect("EHLO client.example", "250");
        c.expect("MAIL FROM:<spammer@example.org>", "250");
        let reply = c.expect("RCPT TO:<victim@example.org>", "550");
        assert!(reply.contains("5.1.1"), "{reply}");
        c.expect("RCPT TO:<postmaster@example.com>", "550");
        c.expect("DATA", "503");
    })
    .await
    .unwrap();
    assert_eq!(count_rows(&server.db_path(), "raw_messages"), 0);
    server.stop().await;
}

on_both_stores!(oversized_message_gets_one_552_and_is_not_stored);
async fn oversized_message_gets_one_552_and_is_not_stored(store: Store) {
    let mut config = Config::default();
    config.smtp.max_message_bytes = 10_000;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        let ehlo = c.expect("EHLO client.example", "250");
        assert!(ehlo.contains("SIZE 10000"), "{ehlo}");
        assert!(ehlo.contains("PIPELINING"), "{ehlo}");
        // Declared too big: refused at MAIL (RFC 1870).
        let reply = c.expect("MAIL FROM:<a@example.net> SIZE=20000", "552");
        assert!(reply.contains("5.3.4"), "{reply}");
        // Undeclared and too big: read to the end, then exactly one 552.
        let body = vec![b'x'; 30_000];
        let reply = c.send_message("a@example.net", "abuse@example.com", &body);
        assert!(reply.starts_with("552 5.3.4"), "{reply}");
        // The session is still in order afterwards.
        let reply = c.send_message(
            "a@example.net",
            "abuse@example.com",
            &crate::util::message("small", "ok"),
        );
        assert!(reply.starts_with("250 "), "{reply}");
    })
    .await
    .unwrap();
    assert_eq!(count_rows(&server.db_path(), "raw_messages"), 1);
    server.stop().await;
}

on_both_stores!(commands_out_of_order_are_503);
async fn commands_out_of_order_are_503(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("MAIL FROM:<a@example.net>", "503");
        c.expect("HELO client.example", "250");
        c.expect("RCPT TO:<abuse@example.com>", "503");
        c.expect("DATA", "503");
        c.expect("MAIL FROM:<a@example.net>", "250");
        c.expect("MAIL FROM:<a@example.net>", "503");
        c.expect("DATA", "503");
        c.expect("RSET", "250");
        c.expect("NOOP", "250");
        // Out of a transaction the chunk is read and dropped: its bytes are
        // never taken for commands.
        c.send(b"BDAT 10 LAST\r\nQUIT\r\nRSET");
        assert!(c.reply().starts_with("503"));
        c.expect("QUIT", "221");
    })
    .await
    .unwrap();
    server.stop().await;
}

on_both_stores!(duplicate_delivery_is_250_and_stored_once);
async fn duplicate_delivery_is_250_and_stored_once(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("EHLO client.example", "250");
        let body = message("dup", "twice");
        let first = c.send_message("a@example.net", "abuse@example.com", &body);
        assert!(first.starts_with("250 "), "{first}");
        let second = c.send_message("a@example.net", "abuse@example.com", &body);
        assert!(second.starts_with("250 "), "{second}");
        assert!(second.contains("already stored"), "{second}");
    })
    .await
    .unwrap();
    assert_eq!(count_rows(&server.db_path(), "raw_messages"), 1);
    assert_eq!(wait_processed(&server.db_path()), 1);
    server.stop().await;
}

on_both_stores!(null_sender_is_accepted_and_recorded_as_null);
async fn null_sender_is_accepted_and_recorded_as_null(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    mailer(&server)
        .send_raw(
            &envelope(None, "abuse@example.com"),
            &message("bounce", "Undeliverable"),
        )
        .await
        .expect("a bounce is accepted");
    let from = crate::util::raw_texts(&server.db_path(), "mail_from");
    assert_eq!(from, [Some(String::new())]);
    server.stop().await;
}

on_both_stores!(recipients_past_the_limit_get_452);
async fn recipients_past_the_limit_get_452(store: Store) {
    let mut config = Config::default();
    config.smtp.max_recipients = 2;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("EHLO client.example", "250");
        c.expect("MAIL FROM:<a@example.net>", "250");
        c.expect("RCPT TO:<abuse@example.com>", "250");
        c.expect("RCPT TO:<abuse@example.org>", "250");
        let reply = c.expect("RCPT TO:<abuse@example.net>", "452");
        assert!(reply.contains("4.5.3"), "{reply}");
        c.expect("DATA", "354");
        c.send(b"Subject: two\r\n\r\nx\r\n.\r\n");
        assert!(c.reply().starts_with("250 "));
    })
    .await
    .unwrap();
    let rcpt = crate::util::raw_texts(&server.db_path(), "rcpt_to");
    assert_eq!(
        rcpt,
        [Some(
            r#"["abuse@example.com","abuse@example.org"]"#.to_owned()
        )]
    );
    server.stop().await;
}

on_both_stores!(overlong_line_is_500_and_closes_without_buffering_it);
async fn overlong_line_is_500_and_closes_without_buffering_it(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.send(&vec![b'A'; 100_000]);
        let reply = c.reply();
        assert!(reply.starts_with("500 5.5.2"), "{reply}");
        assert!(c.is_closed());
        // Everyone else is still served.
        let (mut d, _) = Smtp::connect(addr);
        d.expect("EHLO client.example", "250");
    })
    .await
    .unwrap();
    server.stop().await;
}

on_both_stores!(bare_lf_dot_never_splits_a_message);
async fn bare_lf_dot_never_splits_a_message(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("EHLO client.example", "250");
        c.expect("MAIL FROM:<a@example.net>", "250");
        c.expect("RCPT TO:<abuse@example.com>", "250");
        c.expect("DATA", "354");
        // The classic smuggling payload: a second transaction after <LF>.<LF>.
        c.send(b"Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<abuse@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n");
        let reply = c.reply();
        assert!(reply.starts_with("250 "), "{reply}");
        c.expect("NOOP", "250");
    })
    .await
    .unwrap();
    assert_eq!(count_rows(&server.db_path(), "raw_messages"), 1);
    let bytes = crate::util::raw_bytes(&server.db_path()).remove(0);
    assert!(String::from_utf8_lossy(&bytes).contains("Subject: smuggled"));
    server.stop().await;
}

on_both_stores!(pipelined_burst_gets_replies_in_order);
async fn pipelined_burst_gets_replies_in_order(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.send(b"EHLO client.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<abuse@example.com>\r\nDATA\r\n");
        let codes: Vec<String> = (0..5).map(|_| c.reply()[..3].to_owned()).collect();
        assert_eq!(codes, ["250", "250", "550", "250", "354"]);
        c.send(b"Subject: piped\r\n\r\nx\r\n.\r\nMAIL FROM:<b@example.net>\r\nRCPT TO:<abuse@example.com>\r\nDATA\r\n");
        let codes: Vec<String> = (0..4).map(|_| c.reply()[..3].to_owned()).collect();
        assert_eq!(codes, ["250", "250", "250", "354"]);
        c.send(b"Subject: piped 2\r\n\r\ny\r\n.\r\nQUIT\r\n");
        assert!(c.reply().starts_with("250 "));
        assert!(c.reply().starts_with("221 "));
    })
    .await
    .unwrap();
    assert_eq!(count_rows(&server.db_path(), "raw_messages"), 2);
    server.stop().await;
}

on_both_stores!(garbage_probes_and_nul_bytes_get_errors_and_the_server_keeps_serving);
async fn garbage_probes_and_nul_bytes_get_errors_and_the_server_keeps_serving(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("GET / HTTP/1.1", "500");
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n"); // a TLS ClientHello
        assert!(c.reply().starts_with("500"));
        let reply = c.cmd("EHLO a\x00b");
        assert!(reply.starts_with("500 5.5.2"), "{reply}");
        c.expect("STARTTLS", "503");
        c.expect("AUTH PLAIN AGFiYwBkZWY=", "502");
        c.expect("EHLO client.example", "250");
        let reply = c.send_message(
            "a@example.net",
            "abuse@example.com",
            b"Subject: bin\r\n\r\n\x00\x01\x02\xff\xfe binary\r\n",
        );
        assert!(reply.starts_with("250 "), "{reply}");
    })
    .await
    .unwrap();
    assert_eq!(wait_processed(&server.db_path()), 1);
    server.stop().await;
}

on_both_stores!(fifty_idle_connections_do_not_delay_a_new_client);
async fn fifty_idle_connections_do_not_delay_a_new_client(store: Store) {
    let mut config = Config::default();
    config.smtp.max_connections_per_ip = 100;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let idle: Vec<_> = (0..50)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let started = Instant::now();
        let (mut c, greeting) = Smtp::connect(addr);
        assert!(greeting.starts_with("220"));
        c.expect("EHLO client.example", "250");
        let reply = c.send_message(
            "a@example.net",
            "abuse@example.com",
            &message("while-idle", "busy"),
        );
        assert!(reply.starts_with("250 "), "{reply}");
        // Generous bound: with a thread per session this would wait for an idle timeout.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        drop(idle);
    })
    .await
    .unwrap();
    server.stop().await;
}

on_both_stores!(connections_past_the_per_ip_limit_get_421);
async fn connections_past_the_per_ip_limit_get_421(store: Store) {
    let mut config = Config::default();
    config.smtp.max_connections_per_ip = 2;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (_a, g1) = Smtp::connect(addr);
        let (_b, g2) = Smtp::connect(addr);
        let (_c, g3) = Smtp::connect(addr);
        assert!(g1.starts_with("220") && g2.starts_with("220"));
        assert!(g3.starts_with("421 4.7.0"), "{g3}");
    })
    .await
    .unwrap();
    server.stop().await;
}

on_both_stores!(silent_client_gets_421_after_the_idle_timeout);
async fn silent_client_gets_421_after_the_idle_timeout(store: Store) {
    let mut config = Config::default();
    config.smtp.idle_timeout_seconds = 1;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        let reply = c.reply();
        assert!(reply.starts_with("421 4.4.2"), "{reply}");
        assert!(c.is_closed());
    })
    .await
    .unwrap();
    server.stop().await;
}

on_both_stores!(shutdown_answers_idle_sessions_421_and_stops);
async fn shutdown_answers_idle_sessions_421_and_stops(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    let (mut c, _) = tokio::task::spawn_blocking(move || Smtp::connect(addr))
        .await
        .unwrap();
    let dir = server.stop().await;
    let reply = tokio::task::spawn_blocking(move || c.reply())
        .await
        .unwrap();
    assert!(reply.starts_with("421 4.3.0"), "{reply}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener still open"
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_commit_is_451_and_the_client_can_retry() {
    let server = TestServer::default().await;
    let addr = server.addr;
    let db = server.db_path();
    // Make our own storage fail: every insert into raw_messages aborts.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER fail_intake BEFORE INSERT ON raw_messages BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
    )
    .unwrap();
    let reply = tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("EHLO client.example", "250");
        let reply = c.send_message(
            "a@example.net",
            "abuse@example.com",
            &message("retry", "first try"),
        );
        // The session is still usable for the retry.
        c.expect("NOOP", "250");
        reply
    })
    .await
    .unwrap();
    assert!(reply.starts_with("451 4.3.0"), "{reply}");
    assert!(
        !reply.contains("disk on fire"),
        "internal error text leaked: {reply}"
    );
    assert_eq!(count_rows(&db, "raw_messages"), 0);
    conn.execute_batch("DROP TRIGGER fail_intake;").unwrap();
    let retry = tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("EHLO client.example", "250");
        c.send_message(
            "a@example.net",
            "abuse@example.com",
            &message("retry", "first try"),
        )
    })
    .await
    .unwrap();
    assert!(retry.starts_with("250 "), "{retry}");
    assert_eq!(count_rows(&db, "raw_messages"), 1);
    server.stop().await;
}

/// One HTTP GET, the old-fashioned way; returns the whole response.
pub(crate) fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_healthz_are_served_when_configured() {
    let mut config = Config::default();
    config.metrics.listen = "127.0.0.1:0".into();
    let server = TestServer::start(config).await;
    let (addr, metrics) = (
        server.addr,
        server.metrics_addr().expect("metrics listener"),
    );
    let db = server.db_path();
    let text = tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("EHLO client.example", "250");
        c.expect("MAIL FROM:<a@example.net>", "250");
        c.expect("RCPT TO:<nobody@example.com>", "550");
        c.expect("RSET", "250");
        let reply = c.send_message(
            "a@example.net",
            "abuse@example.com",
            &message("metrics-1", "counted"),
        );
        assert!(reply.starts_with("250 "));
        wait_processed(&db);
        let health = http_get(metrics, "/healthz");
        assert!(
            health.starts_with("HTTP/1.1 200 OK") && health.ends_with("ok\n"),
            "{health}"
        );
        assert!(http_get(metrics, "/nope").starts_with("HTTP/1.1 404"));
        http_get(metrics, "/metrics")
    })
    .await
    .unwrap();
    // Counters are process-wide (other tests run alongside): look for the series.
    for series in [
        "abuse_inbox_messages_accepted_total",
        "abuse_inbox_messages_rejected_total{reason=\"no_such_recipient\"}",
        "abuse_inbox_reports_total{abuse_type=\"network_activity\",subtype=\"brute_force\"}",
        "abuse_inbox_commit_seconds_bucket",
        "abuse_inbox_smtp_sessions_open",
        "abuse_inbox_processing_backlog 0",
        "abuse_inbox_outbox_depth",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    // Every series the README names is served (a family with no series
    // yet is not listed: it must be registered).
    let named = crate::readme::readme_metrics();
    assert!(named.len() >= 15, "{named:?}");
    let registered = crate::readme::registered_metrics();
    for name in named {
        assert!(
            text.contains(&format!("# TYPE abuse_inbox_{name} ")) || registered.contains(&name),
            "the README names {name}; /metrics does not serve it:\n{text}"
        );
    }
    server.stop().await;
}

on_both_stores!(quoted_local_parts_sub_addresses_and_parameter_errors_get_the_rfc_codes);
async fn quoted_local_parts_sub_addresses_and_parameter_errors_get_the_rfc_codes(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    let db = server.db_path();
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("EHLO client.example", "250");
        // AUTH is not offered: 502, never 500 for a well-formed command.
        let auth = c.cmd("AUTH PLAIN AGFAYg==");
        assert!(auth.starts_with("502 5.5.1"), "{auth}");
        // An unknown MAIL parameter: 555 5.5.4.
        let param = c.cmd("MAIL FROM:<a@example.net> FOO=bar");
        assert!(param.starts_with("555 5.5.4"), "{param}");
        c.expect("RSET", "250");
        c.expect("MAIL FROM:<\"john doe\"@example.net>", "250");
        c.expect("RCPT TO:<\"abuse\"@example.com>", "250");
        c.expect("RCPT TO:<abuse+phishing@example.com>", "250");
        c.expect("RCPT TO:<ABUSE+x@Example.COM>", "250");
        c.expect("RCPT TO:<abusers@example.com>", "550");
        c.expect("DATA", "354");
        c.send(&crate::util::message("quoted", "quoted sender"));
        let reply = c.cmd(".");
        assert!(reply.starts_with("250"), "{reply}");
        c.expect("QUIT", "221");
    })
    .await
    .unwrap();
    let from = crate::util::raw_texts(&db, "mail_from");
    let rcpt = crate::util::raw_texts(&db, "rcpt_to")[0].clone().unwrap();
    assert_eq!(from, [Some("\"john doe\"@example.net".to_owned())]);
    assert!(rcpt.contains("abuse+phishing@example.com"), "{rcpt}");
    server.stop().await;
}

on_both_stores!(dsn_parameters_are_checked_and_stored_decoded_per_recipient);
async fn dsn_parameters_are_checked_and_stored_decoded_per_recipient(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    let db = server.db_path();
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        c.expect("EHLO client.example", "250");
        // Ours, badly written: 501, and the transaction did not start.
        c.expect("MAIL FROM:<a@example.net> RET=EVERYTHING", "501");
        c.expect("MAIL FROM:<a@example.net> ENVID=x+0Dy", "501");
        c.expect("RCPT TO:<abuse@example.com>", "503");
        c.expect(
            "MAIL FROM:<a@example.net> RET=HDRS ENVID=QQ314159+2Bq",
            "250",
        );
        c.expect("RCPT TO:<abuse@example.com> NOTIFY=NEVER,FAILURE", "501");
        c.expect(
            "RCPT TO:<abuse@example.com> NOTIFY=failure,delay ORCPT=rfc822;Abuse+2Bx@example.com",
            "250",
        );
        // A refused recipient leaves no DSN entry behind to misalign them.
        c.expect("RCPT TO:<nobody@example.com> NOTIFY=SUCCESS", "550");
        c.expect("RCPT TO:<abuse+two@example.com>", "250");
        c.expect("DATA", "354");
        c.send(&crate::util::message("dsn", "with dsn"));
        assert!(c.cmd(".").starts_with("250"));
        // The next transaction starts clean.
        c.expect("MAIL FROM:<b@example.net>", "250");
        c.expect("RCPT TO:<abuse@example.com>", "250");
        c.expect("DATA", "354");
        c.send(&crate::util::message("plain", "without dsn"));
        assert!(c.cmd(".").starts_with("250"));
        c.expect("QUIT", "221");
    })
    .await
    .unwrap();
    let rows = crate::util::raw_texts(&db, "dsn");
    let dsn: serde_json::Value = serde_json::from_str(rows[0].as_deref().unwrap()).unwrap();
    assert_eq!(
        dsn,
        serde_json::json!({
            "ret": "HDRS",
            "envid": "QQ314159+q",
            "recipients": [
                {"notify": "FAILURE,DELAY", "orcpt": "rfc822;Abuse+x@example.com"},
                {}
            ]
        })
    );
    assert_eq!(rows[1], None);
    server.stop().await;
}

on_both_stores!(bdat_chunks_make_one_exact_message_with_the_same_rules_as_data);
async fn bdat_chunks_make_one_exact_message_with_the_same_rules_as_data(store: Store) {
    let mut config = abuse_inbox::config::Config::default();
    config.smtp.max_message_bytes = 4096;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let addr = server.addr;
    let db = server.db_path();
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        let ehlo = c.cmd("EHLO client.example");
        assert!(ehlo.contains("250-CHUNKING"), "{ehlo}");
        // A message in three chunks; a line holding only "." is data here.
        let first = b"Subject: chunked\r\nMessage-ID: <bdat-1@example.net>\r\n\r\n";
        let second = b"line one\r\n.\r\nstill the same message\r\n";
        let third = b"2026-11-30T10:00:00Z sshd: Failed password from 192.0.2.9\r\n";
        c.expect("MAIL FROM:<a@example.net>", "250");
        c.expect("RCPT TO:<abuse@example.com>", "250");
        let mut chunk = format!("BDAT {}\r\n", first.len()).into_bytes();
        chunk.extend_from_slice(first);
        c.send(&chunk);
        assert_eq!(
            c.reply(),
            format!("250 2.0.0 {} octets received\r\n", first.len())
        );
        let mut chunk = format!("BDAT {}\r\n", second.len()).into_bytes();
        chunk.extend_from_slice(second);
        c.send(&chunk);
        assert!(c.reply().starts_with("250 2.0.0"));
        // Between chunks only BDAT, RSET, NOOP and QUIT.
        c.expect("NOOP", "250");
        c.expect("DATA", "503");
        c.expect("MAIL FROM:<b@example.net>", "503");
        let mut chunk = format!("BDAT {} LAST\r\n", third.len()).into_bytes();
        chunk.extend_from_slice(third);
        c.send(&chunk);
        let reply = c.reply();
        assert!(reply.starts_with("250 2.0.0 Ok: queued as"), "{reply}");
        // RSET in the middle drops the message; the session goes on.
        c.expect("MAIL FROM:<a@example.net>", "250");
        c.expect("RCPT TO:<abuse@example.com>", "250");
        c.send(b"BDAT 5\r\nhello");
        assert!(c.reply().starts_with("250"));
        c.expect("RSET", "250");
        // Past smtp.max_message_bytes: read, dropped, 552 at the end.
        c.expect("MAIL FROM:<a@example.net>", "250");
        c.expect("RCPT TO:<abuse@example.com>", "250");
        let big = vec![b'x'; 3000];
        for last in [false, true] {
            let mut chunk =
                format!("BDAT {}{}\r\n", big.len(), if last { " LAST" } else { "" }).into_bytes();
            chunk.extend_from_slice(&big);
            c.send(&chunk);
            let reply = c.reply();
            let expected = if last { "552" } else { "250" };
            assert!(reply.starts_with(expected), "{reply}");
        }
        // A size that cannot be read ends the session.
        let reply = c.cmd("BDAT many LAST");
        assert!(reply.starts_with("501"), "{reply}");
        assert!(c.is_closed());
    })
    .await
    .unwrap();
    let stored = crate::util::raw_bytes(&db);
    assert_eq!(stored.len(), 1, "only the complete message is stored");
    let expected = [
        &b"Subject: chunked\r\nMessage-ID: <bdat-1@example.net>\r\n\r\n"[..],
        b"line one\r\n.\r\nstill the same message\r\n",
        b"2026-11-30T10:00:00Z sshd: Failed password from 192.0.2.9\r\n",
    ]
    .concat();
    assert_eq!(stored[0], expected);
    server.stop().await;
}

on_both_stores!(smtputf8_addresses_are_offered_accepted_and_stored_exactly);
async fn smtputf8_addresses_are_offered_accepted_and_stored_exactly(store: Store) {
    let Some(server) = TestServer::on(store, Default::default()).await else {
        return;
    };
    let addr = server.addr;
    let db = server.db_path();
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        let ehlo = c.cmd("EHLO client.example");
        assert!(ehlo.contains("250-SMTPUTF8"), "{ehlo}");
        c.expect("MAIL FROM:<jörg@münchen.example> SMTPUTF8 BODY=8BITMIME", "250");
        c.expect("RCPT TO:<abuse@例え.jp>", "250");
        c.expect("RCPT TO:<störung@example.com>", "550");
        c.expect("DATA", "354");
        c.send("From: Jörg <jörg@münchen.example>\r\nSubject: Angriff von 192.0.2.7\r\nMessage-ID: <utf8-1@münchen.example>\r\n\r\nGrüße\r\n".as_bytes());
        let reply = c.cmd(".");
        assert!(reply.starts_with("250"), "{reply}");
        // Bytes that are not UTF-8 in a path: 553 5.6.7.
        c.send(b"MAIL FROM:<j\xf6rg@example.net>\r\n");
        assert!(c.reply().starts_with("553 5.6.7"));
    })
    .await
    .unwrap();
    let from = crate::util::raw_texts(&db, "mail_from");
    let rcpt = crate::util::raw_texts(&db, "rcpt_to");
    assert_eq!(from, [Some("jörg@münchen.example".to_owned())]);
    assert_eq!(rcpt, [Some("[\"abuse@例え.jp\"]".to_owned())]);
    server.stop().await;
}

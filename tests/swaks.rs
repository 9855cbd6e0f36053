//! A stranger's SMTP client against the daemon: swaks (Debian's swaks
//! package, which `.ci/run` installs) sends with PIPELINING, a quoted local
//! part as sender and a `+` sub-address as recipient. Debian's swaks
//! (20201014) has no BDAT; tests/smtp.rs covers BDAT with our own client.
//! Without swaks the test says SKIPPED.

use crate::util::TestServer;
use std::process::Command;

fn swaks_available() -> bool {
    Command::new("swaks")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn swaks(port: u16, from: &str, to: &str, body: &str) -> std::process::Output {
    Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(["--helo", "swaks.example", "--pipeline"])
        .args(["--from", from, "--to", to])
        .args(["--header", "Subject: Scan from 192.0.2.77"])
        .args(["--body", body])
        .output()
        .expect("swaks runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn swaks_pipelines_quoted_senders_and_sub_addresses_into_reports() {
    if !swaks_available() {
        crate::util::skipped("swaks is not installed here; .ci/run installs it");
        return;
    }
    let server = TestServer::default().await;
    let port = server.addr.port();
    let db = server.db_path();
    let sends = [
        ("\"john doe\"@example.net", "abuse@example.com"),
        ("reporter@example.net", "abuse+scans@example.com"),
        ("\"a.b\"@example.org", "\"abuse\"@example.com"),
    ];
    let outputs = tokio::task::spawn_blocking(move || {
        sends
            .iter()
            .enumerate()
            .map(|(i, (from, to))| {
                let body = format!(
                    "Port scan number {i} from 192.0.2.77 against our host 198.51.100.{i}:\n\
                     2026-11-30T10:0{i}:00Z 192.0.2.77 -> 198.51.100.{i}:22 SYN"
                );
                (
                    from.to_string(),
                    to.to_string(),
                    swaks(port, from, to, &body),
                )
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (from, to, out) in &outputs {
        let transcript = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{from} -> {to}:\n{transcript}");
        // swaks really pipelined (it saw the extension and used it).
        assert!(transcript.contains("PIPELINING"), "{transcript}");
        assert!(
            transcript.contains("<-  250 2.0.0 Ok: queued"),
            "{transcript}"
        );
        // MAIL, RCPT and DATA went out in one write, before any reply.
        assert!(
            transcript.contains(" -> DATA\n<-  250 2.1.0"),
            "{transcript}"
        );
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT mail_from, rcpt_to FROM raw_messages ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0].0, "\"john doe\"@example.net");
    assert!(rows[1].1.contains("abuse+scans@example.com"), "{rows:?}");
    assert_eq!(rows[2].0, "\"a.b\"@example.org");
    server.stop().await;
}

//! STARTTLS (RFC 3207) with a certificate made in the test (rcgen), spoken
//! to by two different clients: lettre (rustls) and `openssl s_client`.

use crate::util::{count_rows, message, outbox, wait_for, Smtp, TestServer};
use abuse_inbox::config::Config;
use lettre::address::Envelope;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::io::Write;
use std::process::{Command, Stdio};

/// A config offering STARTTLS with a fresh self-signed certificate for localhost.
fn tls_config(dir: &std::path::Path) -> Config {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, private) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&private, key.signing_key.serialize_pem()).unwrap();
    let mut config = Config::default();
    config.tls.cert_file = Some(cert);
    config.tls.key_file = Some(private);
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn lettre_sends_over_starttls() {
    let certs = tempfile::tempdir().unwrap();
    let server = TestServer::start(tls_config(certs.path())).await;
    let params = TlsParameters::builder("localhost".to_owned())
        .dangerous_accept_invalid_certs(true)
        .build_rustls()
        .unwrap();
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .tls(Tls::Required(params))
        .build();
    let envelope = Envelope::new(
        Some("a@example.net".parse().unwrap()),
        vec!["abuse@example.com".parse().unwrap()],
    )
    .unwrap();
    mailer
        .send_raw(&envelope, &message("tls-1", "over tls"))
        .await
        .expect("250 over TLS");
    assert_eq!(count_rows(&server.db_path(), "raw_messages"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_s_client_speaks_starttls() {
    if Command::new("openssl").arg("version").output().is_err() {
        crate::util::skipped("openssl is not installed");
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let server = TestServer::start(tls_config(certs.path())).await;
    let port = server.addr.port();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("openssl")
            .args(["s_client", "-starttls", "smtp", "-connect", &format!("127.0.0.1:{port}"), "-crlf", "-quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"EHLO openssl.example\nMAIL FROM:<a@example.net>\nRCPT TO:<abuse@example.com>\nDATA\nSubject: tls\n\nbody\n.\nQUIT\n").unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("250 2.0.0 Ok: queued as 1"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !stdout.contains("STARTTLS"),
        "STARTTLS offered again under TLS: {stdout}"
    );
    // After the 221 the server ends TLS with close_notify: OpenSSL reports
    // a cut connection otherwise.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("unexpected eof"), "{stderr}");
    assert_eq!(count_rows(&server.db_path(), "raw_messages"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_is_offered_required_when_configured_and_injection_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let mut config = tls_config(certs.path());
    config.tls.require_tls = true;
    let server = TestServer::start(config).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut c, _) = Smtp::connect(addr);
        let ehlo = c.expect("EHLO client.example", "250");
        assert!(ehlo.contains("250-STARTTLS"), "{ehlo}");
        let reply = c.expect("MAIL FROM:<a@example.net>", "530");
        assert!(reply.contains("5.7.0"), "{reply}");
        // Commands pipelined after STARTTLS were sent in clear: never run them.
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n");
        assert!(c.reply().starts_with("220"));
        assert!(c.is_closed());
    })
    .await
    .unwrap();
    server.stop().await;
}

#[test]
fn a_bad_certificate_file_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    let mut config = Config::default();
    config.tls.cert_file = Some(cert.clone());
    config.tls.key_file = Some(cert);
    let Err(problems) = abuse_inbox::runtime::Runtime::compile(config) else {
        panic!("a bad certificate compiled");
    };
    assert!(
        problems.iter().any(|p| p.starts_with("tls.cert_file:")),
        "{problems:?}"
    );
}

/// A private CA and a certificate it signed for the relay at 127.0.0.1, as
/// PEM files: (CA certificate, relay certificate, relay key).
fn private_ca(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "abuse-inbox test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let relay_key = rcgen::KeyPair::generate().unwrap();
    let relay_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&relay_key, &issuer)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("relay.pem"),
        dir.join("relay-key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, relay_cert.pem()).unwrap();
    std::fs::write(&paths.2, relay_key.serialize_pem()).unwrap();
    paths
}

/// Delivers a small report from reporter@example.net to the daemon at `addr`.
fn report_to(addr: std::net::SocketAddr, id: &str) {
    let (mut smtp, _) = Smtp::connect(addr);
    smtp.expect("EHLO reporter.example", "250");
    let reply = smtp.send_message(
        "reporter@example.net",
        "abuse@example.com",
        &message(id, "scan"),
    );
    assert!(reply.starts_with("250 "), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_go_to_a_starttls_relay_whose_certificate_a_private_ca_signed() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(certs.path());
    // The relay: another abuse-inbox that requires STARTTLS and takes mail
    // for the reporter.
    let mut relay = Config::default();
    relay.tls.cert_file = Some(cert);
    relay.tls.key_file = Some(key);
    relay.tls.require_tls = true;
    relay.smtp.recipients = vec!["reporter".into()];
    let relay = TestServer::start(relay).await;
    let daemon_with = |ca_file: Option<std::path::PathBuf>| {
        let mut config = Config::default();
        config.reply.from = "abuse@example.com".into();
        config.reply.relay_host = Some("127.0.0.1".into());
        config.reply.relay_port = relay.addr.port();
        config.reply.relay_tls = abuse_inbox::config::RelayTls::Starttls;
        config.reply.relay_ca_file = ca_file;
        config.reply.retry_min_seconds = 60;
        config
    };
    // Without the CA the relay's certificate is refused: nothing is sent in
    // clear, the reply stays pending with the reason.
    let untrusting = TestServer::start(daemon_with(None)).await;
    let (d, db) = (untrusting.addr, untrusting.db_path());
    let error = tokio::task::block_in_place(|| {
        report_to(d, "ca-1");
        wait_for(20, "a failed delivery attempt", || {
            outbox(&db)
                .into_iter()
                .find_map(|r| (r.state == "pending" && r.attempts >= 1).then_some(r.last_error))
        })
    });
    assert!(
        error
            .as_deref()
            .unwrap_or("")
            .to_lowercase()
            .contains("certificate"),
        "{error:?}"
    );
    // The error names the relay it is about.
    let relay_named = format!("relay 127.0.0.1:{}: ", relay.addr.port());
    assert!(
        error.as_deref().unwrap_or("").starts_with(&relay_named),
        "{error:?}"
    );
    // The operator's table shows when the next try is, and the whole reason.
    let table = crate::util::abuse_inbox(&["--db", db.to_str().unwrap(), "replies", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("NEXT TRY / SENT"), "{table}");
    assert!(table.contains(&relay_named), "{table}");
    untrusting.stop().await;
    assert_eq!(count_rows(&relay.db_path(), "raw_messages"), 0);
    // With it, the reply arrives over TLS.
    let trusting = TestServer::start(daemon_with(Some(ca))).await;
    let (d, relay_db) = (trusting.addr, relay.db_path());
    tokio::task::block_in_place(|| {
        report_to(d, "ca-2");
        wait_for(20, "the reply at the relay", || {
            (count_rows(&relay_db, "raw_messages") == 1).then_some(())
        });
    });
    // The daemon marks it sent right after the relay's 250.
    let daemon_db = trusting.db_path();
    tokio::task::block_in_place(|| {
        wait_for(20, "the reply marked sent", || {
            (outbox(&daemon_db)[0].state == "sent").then_some(())
        })
    });
    trusting.stop().await;
    relay.stop().await;
}

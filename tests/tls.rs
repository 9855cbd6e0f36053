//! STARTTLS (RFC 3207) with a certificate made in the test (rcgen), spoken
//! to by two different clients: lettre (rustls) and `openssl s_client`.

use crate::util::{count_rows, message, Smtp, TestServer};
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
        eprintln!("SKIPPED: openssl is not installed");
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
    let problems = config.problems();
    assert!(
        problems.iter().any(|p| p.starts_with("tls.cert_file:")),
        "{problems:?}"
    );
}

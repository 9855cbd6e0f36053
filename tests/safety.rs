//! Never a weapon: replies only to authenticated reporters (SPF, DKIM and
//! DMARC checked against a real DNS server on loopback, messages signed here
//! with a test key), follow-ups only with the report's token, rate limits
//! that case and `+tag` variants do not get around, and operator output
//! (table, log, CSV) and files that a stranger's bytes cannot abuse.

use crate::util::dns::{a, txt, DnsServer, Zone};
use crate::util::{abuse_inbox, json, wait_processed, Smtp, Store, TestServer};
use abuse_inbox::config::Config;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use std::path::Path;
use std::time::{Duration, Instant};

/// A DKIM key for `signed.example` (selector `test`), and its DNS record.
struct TestKey {
    pkcs8: Vec<u8>,
    record: String,
}

impl TestKey {
    fn new() -> TestKey {
        let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
        let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
        let record = format!(
            "v=DKIM1; k=ed25519; p={}",
            data_encoding::BASE64.encode(&key.public_key())
        );
        TestKey { pkcs8, record }
    }

    /// `message` with a DKIM-Signature of `domain` in front.
    fn sign(&self, domain: &str, message: &str) -> String {
        let key = Ed25519Key::from_pkcs8_der(&self.pkcs8).unwrap();
        let signature = DkimSigner::from_key(key)
            .domain(domain)
            .selector("test")
            .headers(["From", "To", "Subject", "Message-ID"])
            .sign(message.as_bytes())
            .unwrap();
        format!("{}{message}", signature.to_header())
    }
}

/// The test domains: `signed.example` (DKIM, DMARC reject, SPF that fails
/// from here), `spfonly.example` (SPF passes from 127.0.0.1, no DMARC),
/// `victim.example` (SPF and DMARC that a forger from here fails), each with
/// an address (it takes mail), and `nomail.example` (SPF passes from here,
/// but no MX and no address: nowhere to reply to).
fn zone(key: &TestKey) -> Zone {
    let mut zone = Zone::new();
    for domain in ["signed.example", "spfonly.example", "victim.example"] {
        a(&mut zone, domain, std::net::Ipv4Addr::new(192, 0, 2, 25));
    }
    txt(&mut zone, "nomail.example", "v=spf1 ip4:127.0.0.1 -all");
    txt(&mut zone, "test._domainkey.signed.example", &key.record);
    txt(&mut zone, "_dmarc.signed.example", "v=DMARC1; p=reject");
    txt(&mut zone, "signed.example", "v=spf1 ip4:192.0.2.1 -all");
    txt(&mut zone, "spfonly.example", "v=spf1 ip4:127.0.0.1 -all");
    txt(&mut zone, "victim.example", "v=spf1 ip4:192.0.2.1 -all");
    txt(&mut zone, "_dmarc.victim.example", "v=DMARC1; p=reject");
    zone
}

fn checked_config(dns: &DnsServer, timeout_seconds: u64) -> Config {
    let mut config = Config::default();
    config.auth.nameservers = vec![dns.addr.to_string()];
    config.auth.timeout_seconds = timeout_seconds;
    config.reply.from = "abuse@example.com".into();
    config
}

/// A hand-written report from `from`, CRLF line ends.
fn report(from: &str, id: &str, subject: &str) -> String {
    format!(
        "From: Reporter <{from}>\r\nTo: abuse@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n\
         Our server 203.0.113.50 was attacked from 192.0.2.77:\r\n\
         2026-12-01T09:58:01Z sshd[3301]: Failed password for root from 192.0.2.77 port 33410 ssh2\r\n"
    )
}

/// Sends `message` with MAIL FROM `mail_from`; returns the final reply and
/// how long the end of data took to be answered.
fn send(server: &TestServer, mail_from: &str, message: &str) -> (String, Duration) {
    let body = message.trim_end_matches("\r\n").replace("\r\n.", "\r\n..");
    let (mut c, _) = Smtp::connect(server.addr);
    c.expect("EHLO mail.example", "250");
    c.expect(&format!("MAIL FROM:<{mail_from}>"), "250");
    c.expect("RCPT TO:<abuse@example.com>", "250");
    c.expect("DATA", "354");
    c.send(body.as_bytes());
    let start = Instant::now();
    c.send(b"\r\n.\r\n");
    let reply = c.reply();
    (reply, start.elapsed())
}

/// Sends `message`, which must be accepted.
fn accepted(server: &TestServer, mail_from: &str, message: &str) {
    let (reply, _) = send(server, mail_from, message);
    assert!(reply.starts_with("250"), "{reply}");
}

/// A key, a DNS server with the test zone, and a server checking senders
/// against it.
async fn checked_server(store: Store) -> Option<(TestKey, DnsServer, TestServer)> {
    let key = TestKey::new();
    let dns = DnsServer::start(zone(&key)).await;
    let server = TestServer::on(store, checked_config(&dns, 10)).await?;
    Some((key, dns, server))
}

/// The kinds of the replies queued for the report of the `n`-th message.
fn replies_of(db: &Path, n: i64) -> Vec<Option<String>> {
    crate::util::texts(
        db,
        &format!(
            "SELECT kind FROM outbox WHERE report_id = (SELECT id FROM reports WHERE raw_id = {n})"
        ),
    )
}

/// The report of the `n`-th message received (its raw id): with several
/// worker processes, reports are numbered in the order they are stored.
fn show(db: &Path, n: i64) -> serde_json::Value {
    let id = crate::util::texts(db, &format!("SELECT id FROM reports WHERE raw_id = {n}"))
        .pop()
        .flatten()
        .unwrap_or_else(|| "0".into());
    json(&abuse_inbox(&[
        "reports",
        "show",
        &id,
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ]))
}

on_both_stores!(only_authenticated_reporters_are_answered);
async fn only_authenticated_reporters_are_answered(store: Store) {
    let Some((key, _dns, server)) = checked_server(store).await else {
        return;
    };
    let db = server.db_path();
    let server_ref = &server;
    tokio::task::block_in_place(|| {
        // 1. DKIM-signed by the From domain, which publishes DMARC: answered,
        //    although SPF fails (DMARC needs one aligned pass).
        let signed = key.sign(
            "signed.example",
            &report("soc@signed.example", "a1@signed.example", "SSH attack"),
        );
        accepted(server_ref, "soc@signed.example", &signed);
        // 2. The same text with From forged to a domain whose SPF and DMARC
        //    this host fails: no reply to the victim.
        let forged = report("ceo@victim.example", "a2@victim.example", "SSH attack");
        accepted(server_ref, "ceo@victim.example", &forged);
        // 3. No DMARC record, SPF passes for the From domain: answered.
        let spf_only = report("noc@spfonly.example", "a3@spfonly.example", "SSH attack");
        accepted(server_ref, "noc@spfonly.example", &spf_only);
        // 4. A signature of another domain does not authenticate From.
        let other = key.sign(
            "signed.example",
            &report("ceo@victim.example", "a4@victim.example", "SSH attack"),
        );
        accepted(server_ref, "soc@signed.example", &other);
        // 5. Authenticated, but its domain takes no mail.
        let nomail = report("noc@nomail.example", "a5@nomail.example", "SSH attack");
        accepted(server_ref, "noc@nomail.example", &nomail);
        assert_eq!(wait_processed(&db), 5);
    });
    let signed = show(&db, 1);
    assert_eq!(signed["reply"], "ack", "{signed}");
    assert_eq!(signed["auth"]["dkim"], "pass", "{signed}");
    assert_eq!(signed["auth"]["spf"], "fail", "{signed}");
    assert_eq!(signed["auth"]["dmarc"], "pass", "{signed}");
    assert_eq!(signed["auth"]["aligned"], true, "{signed}");
    assert!(
        signed["auth"]["summary"]
            .as_str()
            .unwrap()
            .contains("dkim=pass header.d=signed.example dmarc=pass header.from=signed.example"),
        "{signed}"
    );
    let forged = show(&db, 2);
    assert_eq!(forged["reply"], "suppressed", "{forged}");
    assert_eq!(forged["auth"]["dmarc"], "fail", "{forged}");
    assert!(
        forged["reply_reason"]
            .as_str()
            .unwrap()
            .starts_with("unauthenticated sender (spf=fail"),
        "{forged}"
    );
    let spf_only = show(&db, 3);
    assert_eq!(spf_only["reply"], "ack", "{spf_only}");
    assert_eq!(spf_only["auth"]["spf"], "pass", "{spf_only}");
    assert_eq!(spf_only["auth"]["dmarc"], "none", "{spf_only}");
    let other = show(&db, 4);
    assert_eq!(other["reply"], "suppressed", "{other}");
    assert_eq!(other["auth"]["dkim"], "pass", "{other}");
    assert_eq!(other["auth"]["aligned"], false, "{other}");
    let nomail = show(&db, 5);
    assert_eq!(nomail["auth"]["authenticated"], true, "{nomail}");
    assert_eq!(nomail["auth"]["accepts_mail"], false, "{nomail}");
    assert_eq!(
        nomail["reply_reason"],
        "the reporter's domain \"nomail.example\" has no MX or address record"
    );
    assert_eq!(signed["auth"]["accepts_mail"], true, "{signed}");
    // Only the two authenticated reporters were queued a reply.
    let queued = crate::util::outbox(&db);
    assert_eq!(queued.len(), 2, "{queued:?}");
    // The results are kept with the raw message too (reprocess reuses them).
    let kept = crate::util::raw_texts(&db, "auth")
        .iter()
        .flatten()
        .filter(|auth| serde_json::from_str::<serde_json::Value>(auth).unwrap()["dkim"] == "pass")
        .count();
    assert_eq!(kept, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dns_server_that_never_answers_delays_no_250_and_authenticates_no_one() {
    let dns = DnsServer::silent().await;
    let server = TestServer::start(checked_config(&dns, 2)).await;
    let db = server.db_path();
    let server_ref = &server;
    tokio::task::block_in_place(|| {
        for n in 0..3 {
            let (reply, took) = send(
                server_ref,
                "noc@spfonly.example",
                &report("noc@spfonly.example", &format!("t{n}@spfonly.example"), "x"),
            );
            assert!(reply.starts_with("250"), "{reply}");
            // The checks run after the commit: the 250 never waits for DNS.
            assert!(took < Duration::from_secs(2), "250 after {took:?}");
        }
        // ...and the reports do not wait for it either.
        crate::util::wait_for(5, "the reports", || {
            (crate::util::count_rows(&db, "reports") == 3).then_some(())
        });
        // The checks time out: the replies wait, never sent unchecked.
        crate::util::wait_for(30, "the checks to time out", || {
            (1..=3)
                .all(|id| {
                    show(&db, id)["reply_reason"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("dns unavailable")
                })
                .then_some(())
        });
    });
    for id in 1..=3 {
        let r = show(&db, id);
        assert_eq!(r["reply"], "pending", "{r}");
        assert_eq!(r["auth"], "pending", "{r}");
    }
    assert_eq!(crate::util::count_rows(&db, "outbox"), 0);
    server.stop().await;
}

/// DNS down: reports flow, replies wait; DNS back: they are decided, each
/// as its sender's checks say (none sent unauthenticated). A follow-up with
/// the report's token needs no DNS and merges while it is down.
#[tokio::test(flavor = "multi_thread")]
async fn replies_wait_while_dns_is_down_and_are_decided_when_it_is_back() {
    let key = TestKey::new();
    let dns = DnsServer::start(zone(&key)).await;
    let mut config = checked_config(&dns, 1);
    config.auth.retry_seconds = 2;
    let server = TestServer::start(config).await;
    let db = server.db_path();
    let server_ref = &server;
    let dns_ref = &dns;
    tokio::task::block_in_place(|| {
        // Report 1 while DNS works: authenticated, asked for the logs.
        let first = key.sign(
            "signed.example",
            "From: soc@signed.example\r\nTo: abuse@example.com\r\nSubject: hacker\r\n\
             Message-ID: <f1@signed.example>\r\n\r\nSomeone at 192.0.2.10 is hacking us.\r\n",
        );
        accepted(server_ref, "soc@signed.example", &first);
        wait_processed(&db);
        assert_eq!(show(&db, 1)["reply"], "needs_info");
        let ours = crate::util::texts(&db, "SELECT message_id FROM outbox WHERE report_id = 1")
            .remove(0)
            .unwrap();
        dns_ref.set_down(true);
        // Reports 2 (authenticated once DNS answers) and 3 (a forger of
        // victim.example) while DNS is down.
        accepted(
            server_ref,
            "noc@spfonly.example",
            &report("noc@spfonly.example", "d2@spfonly.example", "scan"),
        );
        accepted(
            server_ref,
            "x@evil.example",
            &report("ceo@victim.example", "d3@evil.example", "scan"),
        );
        // 4: the reporter's colleague answers our reply, token included.
        let logs = "2026-12-01T05:58:01Z sshd[1]: Failed password for root from 192.0.2.10 port 1 ssh2 on 203.0.113.50 port 22\r\n";
        let answer = format!(
            "From: colleague@elsewhere.example\r\nSubject: Re: logs\r\n\
             Message-ID: <c4@elsewhere.example>\r\nIn-Reply-To: <{ours}>\r\n\r\n{logs}"
        );
        accepted(server_ref, "colleague@elsewhere.example", &answer);
        crate::util::wait_for(5, "the reports", || {
            (crate::util::count_rows(&db, "reports") == 4).then_some(())
        });
        crate::util::wait_for(20, "the checks to fail for now", || {
            [2, 3]
                .iter()
                .all(|id| {
                    show(&db, *id)["reply_reason"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("dns unavailable")
                })
                .then_some(())
        });
        for id in [2, 3] {
            let r = show(&db, id);
            assert_eq!(r["reply"], "pending", "{r}");
        }
        // The token needed no DNS: the follow-up joined report 1, which is
        // complete now and acknowledged.
        let answer = show(&db, 4);
        assert_eq!(
            answer["reply_reason"], "follow-up merged into report 1",
            "{answer}"
        );
        assert_eq!(show(&db, 1)["reply"], "ack");
        assert!(replies_of(&db, 2).is_empty() && replies_of(&db, 3).is_empty());
        dns_ref.set_down(false);
        crate::util::wait_for(30, "the replies decided", || {
            (show(&db, 2)["reply"] != "pending" && show(&db, 3)["reply"] != "pending").then_some(())
        });
    });
    let good = show(&db, 2);
    assert_eq!(good["reply"], "ack", "{good}");
    assert_eq!(good["auth"]["authenticated"], true, "{good}");
    let forged = show(&db, 3);
    assert_eq!(forged["reply"], "suppressed", "{forged}");
    assert!(
        forged["reply_reason"]
            .as_str()
            .unwrap()
            .starts_with("unauthenticated sender"),
        "{forged}"
    );
    assert_eq!(replies_of(&db, 2), vec![Some("ack".to_owned())]);
    assert!(replies_of(&db, 3).is_empty(), "a forger got a reply");
    server.stop().await;
}

/// A sender whose nameservers never answer costs its own messages the
/// timeout, and nobody else anything: the others are authenticated and
/// answered at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_blackholed_sender_delays_no_other_sender() {
    let key = TestKey::new();
    let mut zone = zone(&key);
    txt(&mut zone, "blackhole.example", "v=spf1 ip4:127.0.0.1 -all");
    let dns = DnsServer::start(zone).await;
    dns.blackhole("blackhole.example");
    let server = TestServer::start(checked_config(&dns, 10)).await;
    let db = server.db_path();
    let server_ref = &server;
    let started = Instant::now();
    tokio::task::block_in_place(|| {
        for n in 0..10 {
            accepted(
                server_ref,
                "noc@blackhole.example",
                &report(
                    "noc@blackhole.example",
                    &format!("b{n}@blackhole.example"),
                    "x",
                ),
            );
            // Ten reporters (one address would meet its rate limit).
            let good = format!("noc{n}@spfonly.example");
            accepted(
                server_ref,
                &good,
                &report(&good, &format!("g{n}@spfonly.example"), "x"),
            );
        }
        // Every good sender's reply is decided well inside one timeout.
        crate::util::wait_for(8, "the good senders' replies", || {
            let decided = crate::util::texts(
                &db,
                "SELECT reply FROM reports WHERE reporter LIKE '%@spfonly.example'",
            );
            (decided.len() == 10 && decided.iter().all(|r| r.as_deref() == Some("ack")))
                .then_some(())
        });
    });
    assert!(started.elapsed() < Duration::from_secs(9));
    let blackholed = crate::util::texts(
        &db,
        "SELECT reply FROM reports WHERE reporter = 'noc@blackhole.example'",
    );
    assert_eq!(blackholed.len(), 10);
    assert!(
        blackholed.iter().all(|r| r.as_deref() == Some("pending")),
        "{blackholed:?}"
    );
    let acks = crate::util::count_rows(&db, "outbox");
    assert_eq!(
        acks, 10,
        "one ack per good report, none for the blackholed sender"
    );
    server.stop().await;
}

on_both_stores!(follow_ups_join_only_with_the_token_or_from_the_authenticated_reporter);
async fn follow_ups_join_only_with_the_token_or_from_the_authenticated_reporter(store: Store) {
    let Some((key, _dns, server)) = checked_server(store).await else {
        return;
    };
    let db = server.db_path();
    let server_ref = &server;
    tokio::task::block_in_place(|| {
        // Report 1, from an authenticated reporter, missing the logs.
        let first = key.sign(
            "signed.example",
            "From: soc@signed.example\r\nTo: abuse@example.com\r\nSubject: hacker\r\n\
             Message-ID: <f1@signed.example>\r\n\r\nSomeone at 192.0.2.10 is hacking us.\r\n",
        );
        accepted(server_ref, "soc@signed.example", &first);
        wait_processed(&db);
        let ours = crate::util::texts(&db, "SELECT message_id FROM outbox WHERE report_id = 1")
            .remove(0)
            .unwrap();
        let logs = "2026-12-01T05:58:01Z sshd[1]: Failed password for root from 192.0.2.10 port 1 ssh2 on 203.0.113.50 port 22\r\n";
        // 2. A stranger quotes the guessable id (no token), with a forged From
        //    of the reporter: stays a report of its own.
        let hijack = format!(
            "From: soc@signed.example\r\nSubject: Re: [abuse #1] more\r\n\
             Message-ID: <h1@evil.example>\r\nIn-Reply-To: <abuse-1.0@example.com>\r\n\r\n{logs}"
        );
        accepted(server_ref, "x@evil.example", &hijack);
        // 3. A message naming its own future id merges into nothing.
        let itself = format!(
            "From: a@spfonly.example\r\nSubject: [abuse #3] me\r\nMessage-ID: <s3@spfonly.example>\r\n\r\n{logs}"
        );
        accepted(server_ref, "a@spfonly.example", &itself);
        // 4. The reporter's colleague answers our reply (token included),
        //    unauthenticated: joins report 1.
        let answer = format!(
            "From: colleague@elsewhere.example\r\nSubject: Re: logs\r\n\
             Message-ID: <c4@elsewhere.example>\r\nIn-Reply-To: <{ours}>\r\n\r\n{logs}"
        );
        accepted(server_ref, "colleague@elsewhere.example", &answer);
        wait_processed(&db);
    });
    let hijack = show(&db, 2);
    assert!(hijack["ips"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("192.0.2.10")));
    assert_eq!(hijack["reply"], "suppressed", "{hijack}");
    assert!(
        !hijack["reply_reason"]
            .as_str()
            .unwrap_or("")
            .contains("merged"),
        "{hijack}"
    );
    let itself = show(&db, 3);
    assert!(
        !itself["reply_reason"]
            .as_str()
            .unwrap_or("")
            .contains("merged"),
        "{itself}"
    );
    let answer = show(&db, 4);
    assert_eq!(
        answer["reply_reason"], "follow-up merged into report 1",
        "{answer}"
    );
    let original = show(&db, 1);
    assert_eq!(original["missing"], serde_json::json!([]), "{original}");
    assert_eq!(original["reply"], "ack", "{original}");
    server.stop().await;
}

/// A follow-up hijack by header differential: one From that the sender
/// checks read (a domain whose SPF passes from here), a line without a
/// colon, then the reporter's From that a parser reading on takes. Such a
/// message authenticates nobody and never joins a report without its token.
/// And a Reply-To in another organisation under a public suffix is ignored.
#[tokio::test(flavor = "multi_thread")]
async fn a_header_differential_hijacks_nothing_and_reply_to_stays_in_the_organisation() {
    let key = TestKey::new();
    let mut zone = zone(&key);
    txt(&mut zone, "good.co.uk", "v=spf1 ip4:127.0.0.1 -all");
    a(
        &mut zone,
        "good.co.uk",
        std::net::Ipv4Addr::new(192, 0, 2, 26),
    );
    let dns = DnsServer::start(zone).await;
    let server = TestServer::start(checked_config(&dns, 10)).await;
    let db = server.db_path();
    let server_ref = &server;
    tokio::task::block_in_place(|| {
        // Report 1, from an authenticated reporter, missing the logs.
        let first = key.sign(
            "signed.example",
            "From: soc@signed.example\r\nTo: abuse@example.com\r\nSubject: hacker\r\n\
             Message-ID: <d1@signed.example>\r\n\r\nSomeone at 192.0.2.10 is hacking us.\r\n",
        );
        accepted(server_ref, "soc@signed.example", &first);
        wait_processed(&db);
        let logs = "2026-12-01T05:58:01Z sshd[1]: Failed password for root from 198.51.100.99 port 1 ssh2 on 203.0.113.50 port 22\r\n";
        for spacer in ["X-Spacer\r\n", ""] {
            let hijack = format!(
                "From: mallory@spfonly.example\r\n{spacer}From: soc@signed.example\r\n\
                 Subject: Re: [abuse #1] logs\r\nMessage-ID: <h{}@spfonly.example>\r\n\r\n{logs}",
                spacer.len()
            );
            accepted(server_ref, "mallory@spfonly.example", &hijack);
        }
        // An authenticated sender under a public suffix aims its Reply-To
        // at another organisation there.
        let aimed = "From: noc@good.co.uk\r\nReply-To: victim@bank.co.uk\r\nTo: abuse@example.com\r\n\
             Subject: scan\r\nMessage-ID: <r1@good.co.uk>\r\n\r\n\
             2026-12-01T05:58:01Z sshd[1]: Failed password for root from 192.0.2.44 port 1 ssh2 on 203.0.113.50 port 22\r\n";
        accepted(server_ref, "noc@good.co.uk", aimed);
        wait_processed(&db);
    });
    let original = show(&db, 1);
    assert!(
        !original["ips"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("198.51.100.99")),
        "{original}"
    );
    assert_eq!(original["reply"], "needs_info", "{original}");
    for n in [2, 3] {
        let hijack = show(&db, n);
        assert_eq!(hijack["auth"]["authenticated"], false, "{hijack}");
        assert!(
            !hijack["reply_reason"]
                .as_str()
                .unwrap_or("")
                .contains("merged"),
            "{hijack}"
        );
    }
    let spacer = show(&db, 2);
    assert!(
        spacer["auth"]["summary"]
            .as_str()
            .unwrap()
            .contains("a header line without a colon"),
        "{spacer}"
    );
    // Report 1's needs_info and the aimed report's ack: nothing to soc@ for
    // the hijacks, nothing to the victim.
    let recipients = crate::util::texts(&db, "SELECT recipient FROM outbox ORDER BY id");
    assert_eq!(
        recipients,
        vec![
            Some("soc@signed.example".to_owned()),
            Some("noc@good.co.uk".to_owned())
        ]
    );
    server.stop().await;
}

/// A DKIM CPU bomb: many signatures of a domain with a published key, each
/// listing thousands of headers the message lacks, among thousands of
/// filler headers. Its signatures are not verified (the limits are checked
/// before any work), and the reports behind it are decided at once, their
/// senders authenticated.
#[tokio::test(flavor = "multi_thread")]
async fn a_dkim_bomb_costs_a_scan_and_holds_no_one_up() {
    let key = TestKey::new();
    let dns = DnsServer::start(zone(&key)).await;
    let server = TestServer::start(checked_config(&dns, 10)).await;
    let db = server.db_path();
    let server_ref = &server;
    let started = Instant::now();
    tokio::task::block_in_place(|| {
        let names: Vec<String> = (0..2_000).map(|i| format!("x-missing-{i}")).collect();
        let text = report("soc@signed.example", "bomb@signed.example", "bomb");
        // The body hash is right (simple canonicalization: the body as it
        // is), so a verifier gets as far as looking up the signed headers.
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        let body_hash = {
            use sha2::Digest;
            data_encoding::BASE64.encode(&sha2::Sha256::digest(body.as_bytes()))
        };
        let signature = format!(
            "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/simple; d=signed.example; s=test;\r\n\th={}; bh={body_hash}; b=AAAA\r\n",
            names.join(":")
        );
        let mut bomb = signature.repeat(50);
        for i in 0..20_000 {
            bomb.push_str(&format!("X-Filler-{i}: y\r\n"));
        }
        bomb.push_str(&text);
        accepted(server_ref, "soc@signed.example", &bomb);
        for n in 0..5 {
            let good = format!("noc{n}@spfonly.example");
            accepted(
                server_ref,
                &good,
                &report(
                    &good,
                    &format!("after{n}@spfonly.example"),
                    "after the bomb",
                ),
            );
        }
        crate::util::wait_for(30, "the reports behind the bomb decided", || {
            let decided = crate::util::texts(
                &db,
                "SELECT reply FROM reports WHERE reporter LIKE '%@spfonly.example'",
            );
            (decided.len() == 5 && decided.iter().all(|r| r.as_deref() == Some("ack")))
                .then_some(())
        });
        wait_processed(&db);
    });
    assert!(started.elapsed() < Duration::from_secs(30));
    let bomb = show(&db, 1);
    assert!(
        bomb["auth"]["summary"]
            .as_str()
            .unwrap()
            .contains("(not verified: header block too large)"),
        "{bomb}"
    );
    assert_eq!(bomb["auth"]["dkim"], "neutral", "{bomb}");
    for n in 2..=6 {
        assert_eq!(show(&db, n)["auth"]["authenticated"], true);
    }
    server.stop().await;
}

on_both_stores!(rate_limits_count_case_and_tag_variants_as_one_and_a_global_cap_holds);
async fn rate_limits_count_case_and_tag_variants_as_one_and_a_global_cap_holds(store: Store) {
    let mut config = Config::default();
    config.reply.rate_limit_per_hour = 2;
    config.reply.rate_limit_global_per_hour = 5;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let db = server.db_path();
    let server_ref = &server;
    tokio::task::block_in_place(|| {
        // Six variants of one address: two replies.
        for (n, from) in [
            "victim@example.org",
            "Victim@example.org",
            "VICTIM@EXAMPLE.ORG",
            "victim+1@example.org",
            "victim+2@Example.org",
            "vIcTiM+x@example.ORG",
        ]
        .iter()
        .enumerate()
        {
            let msg = report(from, &format!("v{n}@example.org"), "scan");
            accepted(server_ref, from, &msg);
        }
        // Many addresses: five replies in all, the rest suppressed.
        for n in 0..6 {
            let from = format!("person{n}@site{n}.example.net");
            let msg = report(&from, &format!("g{n}@example.net"), "scan");
            accepted(server_ref, &from, &msg);
        }
        wait_processed(&db);
    });
    let to_victim = crate::util::texts(
        &db,
        "SELECT recipient FROM outbox WHERE lower(recipient) LIKE 'victim%'",
    );
    assert_eq!(to_victim.len(), 2);
    assert_eq!(crate::util::count_rows(&db, "outbox"), 5);
    let reasons: Vec<String> = crate::util::texts(
        &db,
        "SELECT reply_reason FROM reports WHERE reply = 'suppressed' ORDER BY id",
    )
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(reasons.len(), 7, "{reasons:?}");
    assert!(reasons[0].contains("to this address"), "{reasons:?}");
    assert!(reasons[6].contains("in all"), "{reasons:?}");
    server.stop().await;
}

on_both_stores!(replies_never_go_to_local_names_or_ip_literals);
async fn replies_never_go_to_local_names_or_ip_literals(store: Store) {
    let Some(server) = TestServer::on(store, Config::default()).await else {
        return;
    };
    let db = server.db_path();
    let server_ref = &server;
    tokio::task::block_in_place(|| {
        for (n, from) in [
            "root@localhost",
            "svc@internal.corp",
            "admin@[192.0.2.1]",
            "ops@printer.lan",
        ]
        .iter()
        .enumerate()
        {
            let msg = report(from, &format!("l{n}@example.net"), "scan");
            accepted(server_ref, "bounce@example.net", &msg);
        }
        wait_processed(&db);
    });
    assert_eq!(crate::util::count_rows(&db, "outbox"), 0);
    server.stop().await;
}

/// A report whose subject, Message-ID and headers carry terminal controls.
const HOSTILE: &str = "From: tom@example.net\r\n\
Subject: =?utf-8?B?b2sNCnN0YXR1czogcmVzb2x2ZWQbXTA7cHduZWQHG1sybQ==?=\r\n\
Message-ID: <x\x1b[31m@example.net>\r\n\
Auto-Submitted: auto-generated\x1b]0;owned\x07\r\n\
\r\n\
192.0.2.31 brute forcing ssh at 2026-11-26 09:58:12 UTC on 203.0.113.4 port 22\r\n";

#[test]
fn tables_logs_and_csv_show_control_characters_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let db = db.to_str().unwrap();
    let file = dir.path().join("hostile.eml");
    std::fs::write(&file, HOSTILE).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
        .args(["ingest", "--config", crate::util::default_test_config()])
        .args(["--db", db, file.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    // The JSON stays exact: the subject decodes to CR LF and ESC.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["subject"],
        "ok\r\nstatus: resolved\x1b]0;pwned\x07\x1b[2m"
    );
    // The log line of the report (its reply reason quotes Auto-Submitted).
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("report stored"), "{log}");
    assert!(log.contains("auto-generated\\x1b]0"), "{log}");
    assert!(log.contains("message_id=x\\x1b[31m@example.net"), "{log}");
    let raw_controls = |text: &str| {
        text.chars()
            .any(|c| c != '\n' && abuse_inbox::safe_text::is_unsafe(c))
    };
    assert!(!raw_controls(&log), "{log:?}");
    let table = abuse_inbox(&["reports", "show", "1", "--db", db]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(!raw_controls(&table), "{table:?}");
    assert!(
        table.contains("subject: ok\\r\\nstatus: resolved\\x1b]0;pwned\\x07"),
        "{table}"
    );
    // No line of the table is a forged field.
    assert!(
        !table.lines().any(|l| l.trim_start() == "status: resolved"),
        "{table}"
    );
    let list = abuse_inbox(&["reports", "list", "--db", db]);
    assert!(!raw_controls(&String::from_utf8_lossy(&list.stdout)));
    let csv = abuse_inbox(&["export", "--format", "csv", "--db", db]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(!raw_controls(&csv), "{csv:?}");
    assert!(csv.contains("ok\\r\\nstatus: resolved"), "{csv}");
    // --raw prints the message exactly, to a pipe.
    let raw = abuse_inbox(&["reports", "show", "1", "--raw", "--db", db]);
    assert_eq!(raw.stdout, HOSTILE.as_bytes());
}

#[test]
fn the_database_its_wal_and_backups_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let file = dir.path().join("m.eml");
    std::fs::write(&file, crate::util::message("modes", "modes")).unwrap();
    // A permissive umask in the parent: the child must not inherit its effect.
    // SAFETY: umask(2) only sets this process's file creation mask.
    let old = unsafe { libc::umask(0o022) };
    let out = abuse_inbox(&[
        "ingest",
        "--db",
        db.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let backup = dir.path().join("copy.db");
    let copied = abuse_inbox(&[
        "backup",
        backup.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    unsafe {
        libc::umask(old);
    }
    assert!(out.status.success());
    assert!(copied.status.success(), "{copied:?}");
    for path in [db.clone(), backup] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    for suffix in ["-wal", "-shm"] {
        let side = dir.path().join(format!("a.db{suffix}"));
        if let Ok(meta) = std::fs::metadata(&side) {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{suffix}");
        }
    }
}

on_both_stores!(not_on_our_network_goes_only_to_authenticated_reporters);
async fn not_on_our_network_goes_only_to_authenticated_reporters(store: Store) {
    let Some((_key, _dns, server)) = checked_server(store).await else {
        return;
    };
    let db = server.db_path();
    let owners =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/customers.csv");
    // Customers hold 203.0.113.0/24 and more; 192.0.2.77, the offender of
    // these reports, is none of theirs.
    json(&abuse_inbox(&[
        "owners",
        "import",
        owners.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let server_ref = &server;
    tokio::task::block_in_place(|| {
        // Authenticated (SPF passes for the From domain): told "not ours".
        let spf_only = report("noc@spfonly.example", "n1@spfonly.example", "SSH attack");
        accepted(server_ref, "noc@spfonly.example", &spf_only);
        // Forged: no reply of any kind.
        let forged = report("ceo@victim.example", "n2@victim.example", "SSH attack");
        accepted(server_ref, "ceo@victim.example", &forged);
        assert_eq!(wait_processed(&db), 2);
        crate::util::wait_for(20, "the sender checks", || {
            (show(&db, 1)["reply"] != "pending" && show(&db, 2)["reply"] != "pending").then_some(())
        });
    });
    let answered = show(&db, 1);
    assert_eq!(answered["ownership"], "not_ours", "{answered}");
    assert_eq!(answered["reply"], "not_ours", "{answered}");
    assert_eq!(replies_of(&db, 1), [Some("not_ours".to_owned())]);
    let forged = show(&db, 2);
    assert_eq!(forged["ownership"], "not_ours", "{forged}");
    assert_eq!(forged["reply"], "suppressed", "{forged}");
    assert_eq!(replies_of(&db, 2), Vec::<Option<String>>::new());
    server.stop().await;
}

/// What we send carries the desk's DKIM signature: a receiver checking
/// DKIM against the desk's DNS record (here: a second abuse-inbox with
/// sender checks on, and a real DNS server) sees `dkim=pass` for the domain
/// of `reply.from`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_we_send_is_dkim_signed_with_the_desks_key() {
    let desk = Ed25519Key::generate_pkcs8().unwrap();
    let public = Ed25519Key::from_pkcs8_der(&desk).unwrap().public_key();
    let mut zone = Zone::new();
    txt(
        &mut zone,
        "desk._domainkey.example.com",
        &format!(
            "v=DKIM1; k=ed25519; p={}",
            data_encoding::BASE64.encode(&public)
        ),
    );
    txt(&mut zone, "_dmarc.example.com", "v=DMARC1; p=reject");
    let dns = DnsServer::start(zone).await;
    let mut sink_config = checked_config(&dns, 10);
    sink_config.smtp.recipients = vec!["soc".into()];
    let sink = TestServer::start(sink_config).await;

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("desk.pem");
    std::fs::write(
        &key_file,
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            data_encoding::BASE64.encode(&desk)
        ),
    )
    .unwrap();
    let mut config = Config::default();
    config.reply.from = "abuse@example.com".into();
    config.reply.relay_host = Some("127.0.0.1".into());
    config.reply.relay_port = sink.addr.port();
    config.reply.dkim_key = Some(key_file.clone());
    // A key without its selector is refused by name.
    let refused = abuse_inbox::runtime::Runtime::compile(config.clone()).err();
    assert!(
        refused.is_some_and(|p| p.iter().any(|p| p.starts_with("reply.dkim_selector"))),
        "a key needs a selector"
    );
    config.reply.dkim_selector = "desk".into();
    let daemon = TestServer::start(config).await;
    let sink_db = sink.db_path();
    let daemon_ref = &daemon;
    tokio::task::block_in_place(|| {
        accepted(
            daemon_ref,
            "soc@cert.example.org",
            &report(
                "soc@cert.example.org",
                "dkim-1@cert.example.org",
                "SSH attack",
            ),
        );
        crate::util::wait_for(30, "the signed ack at the receiver", || {
            (wait_processed(&sink_db) >= 1).then_some(())
        });
    });
    let received = tokio::task::block_in_place(|| {
        crate::util::wait_for(30, "the receiver's sender checks", || {
            Some(show(&sink_db, 1)).filter(|r| r["auth"]["dkim"].is_string())
        })
    });
    assert_eq!(received["auth"]["dkim"], "pass", "{received}");
    assert_eq!(received["auth"]["dmarc"], "pass", "{received}");
    let raw = crate::util::raw_bytes(&sink_db).remove(0);
    assert!(
        String::from_utf8_lossy(&raw).contains("DKIM-Signature: v=1; a=ed25519-sha256;"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    daemon.stop().await;
    sink.stop().await;
}

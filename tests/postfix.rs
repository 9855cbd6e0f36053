//! Behind a real Postfix: a private Postfix instance (its own config, queue
//! and log in a temporary directory, listening on a loopback port) relays
//! `example.com` to `serve`, as a desk's public MX would. Mail goes in
//! through Postfix's SMTP listener and through `sendmail`: an ASCII report,
//! a UTF-8 one (UTF-8 sender and raw UTF-8 headers, which Postfix flags
//! SMTPUTF8), a 5 MB CSV, and a burst of 50. Each must arrive exactly once
//! and nothing may bounce (Postfix's own log is read). The replies go out
//! through the same Postfix, which delivers them to a Maildir: each is read
//! back and must be MIME-valid, threaded to its report, from the null
//! sender, with a Message-ID of its own (the UTF-8 reporter gets one too).
//!
//! `.ci/run` installs Postfix from Debian; where it is missing (or the test
//! does not run as root, which Postfix needs) the test says SKIPPED.

use crate::util::{free_port, wait_for, Smtp, TestServer};
use abuse_inbox::config::Config;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const POSTFIX: &str = "/usr/sbin/postfix";
const SENDMAIL: &str = "/usr/sbin/sendmail";
const BURST: usize = 50;

/// A running private Postfix instance; stopped when dropped.
struct Postfix {
    dir: PathBuf,
    port: u16,
}

impl Postfix {
    /// Starts Postfix on loopback `port`, relaying `example.com` to
    /// `relay_port` and delivering mail for the reporters' domains to one
    /// Maildir (`mail/mailbox/`).
    fn start(dir: &Path, relay_port: u16, port: u16) -> Postfix {
        use std::os::unix::fs::PermissionsExt;
        // Postfix's daemons run as the postfix user: they must reach the
        // directory, and own their data directory.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["queue", "data", "mail"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for owned in ["data", "mail"] {
            let chown = Command::new("chown")
                .args(["postfix:postfix", dir.join(owned).to_str().unwrap()])
                .status()
                .unwrap();
            assert!(chown.success(), "chown postfix");
        }
        let id = |flag: &str| -> String {
            let out = Command::new("id").args([flag, "postfix"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let d = dir.display();
        std::fs::write(
            dir.join("main.cf"),
            format!(
                "compatibility_level = 3.6\n\
                 queue_directory = {d}/queue\n\
                 data_directory = {d}/data\n\
                 mail_owner = postfix\n\
                 setgid_group = postdrop\n\
                 inet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\n\
                 myhostname = mx.postfix-test.example\n\
                 mydomain = postfix-test.example\n\
                 myorigin = $myhostname\n\
                 mydestination =\n\
                 relay_domains = example.com\n\
                 relayhost = [127.0.0.1]:{relay_port}\n\
                 mynetworks = 127.0.0.0/8\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
                 smtp_dns_support_level = disabled\n\
                 smtp_tls_security_level = none\n\
                 smtputf8_enable = yes\n\
                 alias_maps =\n\
                 alias_database =\n\
                 local_recipient_maps =\n\
                 message_size_limit = 20971520\n\
                 maillog_file_prefixes = {d}\n\
                 maillog_file = {d}/maillog\n\
                 virtual_mailbox_domains = reporter.example, example.net, csv-sender.example, münchen.example\n\
                 virtual_mailbox_base = {d}/mail\n\
                 virtual_mailbox_maps = static:mailbox/\n\
                 virtual_uid_maps = static:{uid}\n\
                 virtual_gid_maps = static:{gid}\n"
            ),
        )
        .unwrap();
        // No chroot: the instance lives in a temporary directory.
        let services = [
            ("pickup", "unix  n - n 60 1", "pickup"),
            ("cleanup", "unix  n - n - 0", "cleanup"),
            ("qmgr", "unix  n - n 300 1", "qmgr"),
            ("rewrite", "unix  - - n - -", "trivial-rewrite"),
            ("bounce", "unix  - - n - 0", "bounce"),
            ("defer", "unix  - - n - 0", "bounce"),
            ("trace", "unix  - - n - 0", "bounce"),
            ("verify", "unix  - - n - 1", "verify"),
            ("flush", "unix  n - n 1000? 0", "flush"),
            ("proxymap", "unix  - - n - -", "proxymap"),
            ("smtp", "unix  - - n - -", "smtp"),
            ("relay", "unix  - - n - -", "smtp"),
            ("showq", "unix  n - n - -", "showq"),
            ("error", "unix  - - n - -", "error"),
            ("retry", "unix  - - n - -", "error"),
            ("discard", "unix  - - n - -", "discard"),
            ("local", "unix  - n n - -", "local"),
            ("virtual", "unix  - n n - -", "virtual"),
            ("anvil", "unix  - - n - 1", "anvil"),
            ("scache", "unix  - - n - 1", "scache"),
            ("postlog", "unix-dgram n - n - 1", "postlogd"),
        ];
        let mut master = format!("127.0.0.1:{port} inet n - n - - smtpd\n");
        for (name, fields, command) in services {
            master.push_str(&format!("{name} {fields} {command}\n"));
        }
        std::fs::write(dir.join("master.cf"), master).unwrap();
        // Postfix says why a start failed in its log, not on its output;
        // on a loaded machine its master can miss the script's wait once.
        let mut started = postfix(dir, "start");
        if !started.status.success() {
            let _ = postfix(dir, "stop");
            std::thread::sleep(std::time::Duration::from_secs(1));
            started = postfix(dir, "start");
        }
        assert!(
            started.status.success(),
            "postfix start: {started:?}\n{}",
            std::fs::read_to_string(dir.join("maillog")).unwrap_or_default()
        );
        Postfix {
            dir: dir.to_owned(),
            port,
        }
    }

    /// The messages delivered to the reporters' mailbox so far.
    fn mailbox(&self) -> Vec<String> {
        let new = self.dir.join("mail/mailbox/new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// Asks Postfix to try its deferred mail now.
    fn flush(&self) {
        let _ = Command::new("/usr/sbin/postqueue")
            .args(["-c", self.dir.to_str().unwrap(), "-f"])
            .output();
    }

    /// Submits `message` with `sendmail`, as a local program would.
    fn sendmail(&self, from: &str, to: &str, message: &[u8]) {
        let mut child = Command::new(SENDMAIL)
            .args(["-C", self.dir.to_str().unwrap(), "-f", from, to])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), message).unwrap();
        assert!(child.wait().unwrap().success(), "sendmail");
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = postfix(&self.dir, "stop");
    }
}

fn postfix(dir: &Path, command: &str) -> std::process::Output {
    Command::new(POSTFIX)
        .args(["-c", dir.to_str().unwrap(), command])
        .output()
        .unwrap()
}

fn available() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    Path::new(POSTFIX).exists() && Path::new(SENDMAIL).exists() && root
}

fn csv_report(bytes: usize) -> Vec<u8> {
    let mut csv = String::new();
    let mut n = 0u32;
    while csv.len() < bytes {
        n += 1;
        csv.push_str(&format!(
            "192.0.2.{},2026-11-30T10:{:02}:{:02}Z,sshd[{n}]: Failed password for root from 192.0.2.{} port {} ssh2\n",
            n % 200 + 1,
            (n / 60) % 60,
            n % 60,
            n % 200 + 1,
            30000 + n % 30000
        ));
    }
    let encoded = data_encoding::BASE64_MIME.encode(csv.as_bytes());
    format!(
        "From: soc@csv-sender.example\r\nTo: abuse@example.com\r\nSubject: big CSV\r\n\
         Message-ID: <pf-csv@csv-sender.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         Logs attached.\r\n--b\r\nContent-Type: text/csv; name=\"events.csv\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--b--\r\n"
    )
    .into_bytes()
}

on_both_stores!(reports_relayed_by_a_real_postfix_arrive_once_and_nothing_bounces);
async fn reports_relayed_by_a_real_postfix_arrive_once_and_nothing_bounces(
    store: crate::util::Store,
) {
    if !available() {
        crate::util::skipped(
            "Postfix is not installed here (or not running as root); .ci/run installs it",
        );
        return;
    }
    // Replies leave through the same Postfix, which delivers them to the
    // reporters' mailbox.
    let mx_port = free_port();
    let mut config = Config::default();
    config.reply.from = "abuse@example.com".into();
    config.reply.relay_host = Some("127.0.0.1".into());
    config.reply.relay_port = mx_port;
    config.reply.retry_min_seconds = 1;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let db = server.db_path();
    let relay_port = server.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let postfix = Postfix::start(&dir_path, relay_port, mx_port);
        let mx: std::net::SocketAddr = format!("127.0.0.1:{}", postfix.port).parse().unwrap();
        let (mut c, _) = Smtp::connect(mx);
        c.expect("EHLO reporter.example", "250");
        let ascii = b"From: rep@reporter.example\r\nTo: abuse@example.com\r\nSubject: ascii\r\nMessage-ID: <pf-ascii@reporter.example>\r\n\r\n2026-11-30T10:00:00Z sshd: Failed password for root from 192.0.2.1 port 4000 ssh2\r\n";
        let reply = c.send_message("rep@reporter.example", "abuse@example.com", ascii);
        assert!(reply.starts_with("250"), "{reply}");
        let reply = c.send_message("soc@csv-sender.example", "abuse@example.com", &csv_report(5 * 1024 * 1024));
        assert!(reply.starts_with("250"), "{reply}");
        for i in 0..BURST {
            let reply = c.send_message(
                "burst@reporter.example",
                "abuse@example.com",
                &crate::util::message(&format!("pf-burst-{i}"), "burst"),
            );
            assert!(reply.starts_with("250"), "{reply}");
        }
        c.expect("QUIT", "221");
        // UTF-8 sender and raw UTF-8 headers, through sendmail: Postfix
        // flags the message SMTPUTF8 and needs the relay to offer it.
        postfix.sendmail(
            "jörg@münchen.example",
            "abuse@example.com",
            "From: Jörg <jörg@münchen.example>\nTo: abuse@example.com\nSubject: Angriff von 192.0.2.7 – Grüße\nMessage-ID: <pf-utf8@münchen.example>\n\nGrüße aus München\n".as_bytes(),
        );
        let expected = BURST + 3;
        wait_for(120, "every message relayed", || {
            postfix.flush();
            (crate::util::count_rows(&db, "raw_messages") as usize >= expected).then_some(())
        });
        // The replies: one to each of the three reporters (the UTF-8 one
        // too), five to the burst's (its rate limit), delivered by Postfix
        // to the mailbox.
        let replies = wait_for(60, "the replies delivered", || {
            postfix.flush();
            Some(postfix.mailbox()).filter(|m| m.len() >= 8)
        });
        // Nothing more trickles in, nothing bounced, each was sent once.
        std::thread::sleep(std::time::Duration::from_secs(1));
        let log = postfix.log();
        assert!(!log.contains("status=bounced"), "{log}");
        assert_eq!(log.matches("relay=127.0.0.1").count(), expected, "{log}");
        assert_eq!(postfix.mailbox().len(), 8, "{log}");
        let mut ids = std::collections::BTreeSet::new();
        for reply in &replies {
            let parsed = abuse_inbox::parse::parse(reply.as_bytes());
            let header = |name: &str| parsed.headers.get(name).unwrap_or_default().to_owned();
            assert_eq!(header("mime-version").trim(), "1.0", "{reply}");
            assert!(header("content-type").starts_with("text/plain; charset=utf-8"), "{reply}");
            assert_eq!(header("auto-submitted").trim(), "auto-replied", "{reply}");
            assert_eq!(header("return-path").trim(), "<>", "{reply}");
            assert!(header("in-reply-to").trim().starts_with('<'), "{reply}");
            assert!(ids.insert(parsed.message_id.clone().unwrap()), "{reply}");
            assert!(reply.contains("-- abuse-inbox --"), "{reply}");
        }
        let ascii = replies
            .iter()
            .find(|r| r.contains("In-Reply-To: <pf-ascii@reporter.example>"))
            .expect("the ASCII report's ack, threaded");
        assert!(ascii.contains("Report received"), "{ascii}");
        let stored = crate::util::count_rows(&db, "raw_messages");
        assert_eq!(stored as usize, expected);
        let utf8 = crate::util::texts(
            &db,
            "SELECT mail_from FROM raw_messages WHERE message_id LIKE '%pf-utf8@%'",
        );
        assert_eq!(utf8, [Some("jörg@münchen.example".to_owned())]);
        drop(postfix);
    })
    .await
    .unwrap();
    server.stop().await;
    drop(dir);
}

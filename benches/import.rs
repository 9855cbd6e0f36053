//! Mailbox import speed: `cargo bench --bench import`.
//!
//! Writes a Maildir and an mbox of 10,000 reports of about 5 KB each (a
//! hand-written paragraph, eight log lines as a CSV attachment), then runs
//! the built `abuse-inbox import` on each into a fresh SQLite store and
//! prints one JSON line: messages per second end to end (read, commit,
//! parse and classify in the worker processes, route, store). The target
//! (issue "Mailboxes") is 2,000 messages/s on the 2-core machine.
//!
//! Where Debian's Dovecot is installed (`.ci/run` installs it), the same
//! Maildir is served by a throwaway Dovecot on loopback and imported over
//! IMAP too (`imap://…`, in clear on loopback): the target there is 500
//! messages/s.

use std::path::Path;
use std::process::Command;

const MESSAGES: usize = 10_000;

fn report(i: usize) -> String {
    let prose = "We have observed repeated failed login attempts against our SSH service \
        from the address below. Please investigate the host, stop the abuse and let us know \
        the outcome. The attached log lines show the source, the destination and the time of \
        each attempt in UTC.\n"
        .repeat(12);
    let rows: Vec<String> = (0..8)
        .map(|k| {
            let ip = format!("203.0.113.{}", (i + k) % 200);
            format!("{ip},2026-12-03T09:{k:02}:00Z,sshd[{k}]: Failed password for root from {ip} port {} ssh2", 40_000 + k)
        })
        .collect();
    format!(
        "From: SOC Team <soc@cert.example.org>\nTo: abuse@hosting.example\n\
         Subject: SSH brute force from your network\nDate: Thu, 03 Dec 2026 10:00:00 +0000\n\
         Message-ID: <bench-{i}@cert.example.org>\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\n\
         Content-Type: text/plain; charset=utf-8\n\nHello,\n\n{prose}\n--b1\n\
         Content-Type: text/csv; name=\"events.csv\"\n\
         Content-Disposition: attachment; filename=\"events.csv\"\n\n{}\n--b1--\n",
        rows.join("\n")
    )
}

fn import(dir: &Path, kind: &str, source: &Path) -> serde_json::Value {
    import_with(dir, kind, &[kind.as_ref(), source.as_os_str()])
}

fn import_with(dir: &Path, name: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let db = dir.join(format!("{name}.db"));
    let config = dir.join("bench.toml");
    std::fs::write(&config, "[auth]\nenabled = false\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
        .arg("import")
        .args(args)
        .env("IMAP_PASSWORD", "secret")
        .arg("--db")
        .arg(&db)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A Dovecot serving `maildir` as user `desk`'s INBOX on a free loopback
/// port; the child and its port. `None` without Dovecot.
fn dovecot(dir: &Path, maildir: &Path) -> Option<(std::process::Child, u16)> {
    use std::os::unix::fs::PermissionsExt as _;
    if !Path::new("/usr/sbin/dovecot").exists() {
        return None;
    }
    let d = dir.join("dovecot");
    let home = d.join("home/desk");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    Command::new("cp")
        .arg("-a")
        .arg(maildir)
        .arg(home.join("Maildir"))
        .status()
        .unwrap();
    std::fs::write(d.join("passwd"), "desk:{PLAIN}secret\n").unwrap();
    // As root the mail belongs to Debian's `dovecot` account.
    let owner = Command::new("id").args(["-u", "dovecot"]).output().ok()?;
    let uid = String::from_utf8_lossy(&owner.stdout).trim().to_owned();
    let gid = String::from_utf8_lossy(
        &Command::new("id")
            .args(["-g", "dovecot"])
            .output()
            .ok()?
            .stdout,
    )
    .trim()
    .to_owned();
    Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(d.join("home"))
        .status()
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = d.display();
    std::fs::write(
        d.join("dovecot.conf"),
        format!(
            "base_dir = {p}/run\nstate_dir = {p}/state\nlog_path = {p}/log\nprotocols = imap\n\
             listen = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\nfirst_valid_uid = {uid}\n\
             mail_location = maildir:~/Maildir\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {p}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={p}/home/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
             inet_listener imaps {{\n    port = 0\n  }}\n  chroot =\n}}\nservice anvil {{\n  chroot =\n}}\n"
        ),
    )
    .unwrap();
    let mut child = Command::new("/usr/sbin/dovecot")
        .args(["-F", "-c"])
        .arg(d.join("dovecot.conf"))
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, port));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("Dovecot did not start; see {p}/log");
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    let mut mbox = String::new();
    let mut bytes = 0;
    for i in 0..MESSAGES {
        let text = report(i);
        bytes += text.len();
        std::fs::write(
            maildir.join(format!("new/{}.M{i}P1.bench", 1_764_000_000 + i)),
            &text,
        )
        .unwrap();
        mbox.push_str(&format!(
            "From soc@cert.example.org Mon Nov 24 10:00:00 2025\n{text}\n"
        ));
    }
    let mbox_file = dir.path().join("bench.mbox");
    std::fs::write(&mbox_file, mbox).unwrap();
    let from_maildir = import(dir.path(), "maildir", &maildir);
    let from_mbox = import(dir.path(), "mbox", &mbox_file);
    let from_imap = dovecot(dir.path(), &maildir).map(|(mut child, port)| {
        let url = format!("imap://desk@127.0.0.1:{port}/INBOX");
        let summary = import_with(
            dir.path(),
            "imap",
            &[url.as_ref(), "--tls".as_ref(), "none".as_ref()],
        );
        let _ = child.kill();
        let _ = child.wait();
        summary
    });
    println!(
        "{}",
        serde_json::json!({
            "messages": MESSAGES,
            "mean_bytes": bytes / MESSAGES,
            "maildir_messages_per_second": from_maildir["messages_per_second"],
            "mbox_messages_per_second": from_mbox["messages_per_second"],
            "maildir_stored": from_maildir["stored"],
            "mbox_stored": from_mbox["stored"],
            "imap_messages_per_second": from_imap.as_ref().map(|s| s["messages_per_second"].clone()),
            "imap_stored": from_imap.as_ref().map(|s| s["stored"].clone()),
        })
    );
}

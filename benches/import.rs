//! Mailbox import speed: `cargo bench --bench import`.
//!
//! Writes a Maildir and an mbox of 10,000 reports of about 5 KB each (a
//! hand-written paragraph, eight log lines as a CSV attachment), then runs
//! the built `abuse-inbox import` on each into a fresh SQLite store and
//! prints one JSON line: messages per second end to end (read, commit,
//! parse and classify in the worker processes, route, store). The target
//! (issue "Mailboxes") is 2,000 messages/s on the 2-core machine.

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
    let db = dir.join(format!("{kind}.db"));
    let config = dir.join("bench.toml");
    std::fs::write(&config, "[auth]\nenabled = false\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
        .args(["import", kind])
        .arg(source)
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
    println!(
        "{}",
        serde_json::json!({
            "messages": MESSAGES,
            "mean_bytes": bytes / MESSAGES,
            "maildir_messages_per_second": from_maildir["messages_per_second"],
            "mbox_messages_per_second": from_mbox["messages_per_second"],
            "maildir_stored": from_maildir["stored"],
            "mbox_stored": from_mbox["stored"],
        })
    );
}

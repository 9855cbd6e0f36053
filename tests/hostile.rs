//! Hostile input (issue 10): messages and clients built to stop the desk.
//! Each test asserts that intake keeps answering, the backlog drains, and
//! what the budgets promise: warnings recorded, database growth bounded,
//! poison messages set aside. Messages are generated here, not stored.

use crate::util::{abuse_inbox, json, wait_for, Smtp, TestServer};
use abuse_inbox::config::Config;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

fn head(subject: &str, content_type: &str) -> String {
    format!(
        "From: reporter@example.net\r\nTo: abuse@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{}@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n",
        subject.replace(' ', "-")
    )
}

fn deep_rfc822(levels: usize) -> Vec<u8> {
    let mut m = head("deep rfc822", "message/rfc822");
    m.push_str(&"Content-Type: message/rfc822\r\n\r\n".repeat(levels));
    m.push_str("Subject: innermost\r\n\r\nspam from 192.0.2.1\r\n");
    m.into_bytes()
}

/// [`deep_rfc822`] again, as an attached `.eml` file (base64, as Outlook
/// attaches mail): read as a message, with the same budget.
fn deep_eml_attachment(levels: usize) -> Vec<u8> {
    let mut m = head("deep eml", "multipart/mixed; boundary=\"e\"");
    m.push_str("--e\r\nContent-Type: text/plain\r\n\r\nthe mail is attached\r\n--e\r\n");
    m.push_str("Content-Type: application/octet-stream; name=\"fw.eml\"\r\n");
    m.push_str("Content-Disposition: attachment; filename=\"fw.eml\"\r\n");
    m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    let inner = deep_rfc822(levels);
    let encoded = data_encoding::BASE64.encode(&inner);
    for chunk in encoded.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(chunk).unwrap());
        m.push_str("\r\n");
    }
    m.push_str("--e--\r\n");
    m.into_bytes()
}

fn deep_multipart(levels: usize) -> Vec<u8> {
    let mut m = head("deep multipart", "multipart/mixed; boundary=\"b0\"");
    for i in 0..levels {
        m.push_str(&format!(
            "--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n",
            i + 1
        ));
    }
    m.push_str(&format!("--b{levels}\r\n\r\nhello 192.0.2.1\r\n"));
    m.into_bytes()
}

fn many_parts(parts: usize) -> Vec<u8> {
    let mut m = head("many parts", "multipart/mixed; boundary=\"x\"");
    for i in 0..parts {
        m.push_str(&format!("--x\r\n\r\npart {i} 192.0.2.{}\r\n", i % 250));
    }
    m.push_str("--x--\r\n");
    m.into_bytes()
}

/// Long lines, each naming ~140 distinct addresses: before the budgets, every
/// address stored its own copy of its 2 KiB line (~330x the message on disk).
fn address_lines(lines: usize) -> Vec<u8> {
    let mut m = head("scan report", "text/plain");
    let mut n: u32 = 1;
    for _ in 0..lines {
        let mut line = String::new();
        while line.len() < 1990 {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12345);
            line.push_str(&format!(
                "198.{}.{}.{} ",
                (n >> 8) & 255,
                (n >> 16) & 255,
                1 + (n >> 24) % 254
            ));
        }
        m.push_str(&line);
        m.push_str("\r\n");
    }
    m.into_bytes()
}

fn script_html(tags: usize) -> Vec<u8> {
    let mut m = head("html", "text/html; charset=utf-8");
    m.push_str("<html><body>");
    m.push_str(&"<script>x</script>a ".repeat(tags));
    m.push_str("</body></html>\r\n");
    m.into_bytes()
}

/// A zip whose headers claim each file inflates to twice its compressed
/// size; it really inflates ~1,000 times.
fn lying_zip() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for name in ["a.csv", "b.csv"] {
            zip.start_file(name, options).unwrap();
            zip.write_all(&vec![b'1'; 8 * 1024 * 1024]).unwrap();
        }
        zip.finish().unwrap();
    }
    let mut bytes = out.into_inner();
    for (signature, compressed_at, size_at) in [(b"PK\x03\x04", 18, 22), (b"PK\x01\x02", 20, 24)] {
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(4).position(|w| w == signature) {
            let start = at + i;
            let c = u32::from_le_bytes(bytes[start + compressed_at..][..4].try_into().unwrap());
            bytes[start + size_at..][..4].copy_from_slice(&(c * 2).to_le_bytes());
            at = start + 4;
        }
    }
    bytes
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn zip_bombs(count: usize) -> Vec<u8> {
    let zip = base64(&lying_zip());
    let mut m = head("lying zips", "multipart/mixed; boundary=\"z\"");
    m.push_str("--z\r\nContent-Type: text/plain\r\n\r\nsee the attached logs\r\n");
    for i in 0..count {
        m.push_str(&format!(
            "--z\r\nContent-Type: application/zip; name=\"e{i}.zip\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        ));
        for line in zip.as_bytes().chunks(76) {
            m.push_str(std::str::from_utf8(line).unwrap());
            m.push_str("\r\n");
        }
    }
    m.push_str("--z--\r\n");
    m.into_bytes()
}

/// One base64 line of `bytes` pseudo-random bytes as a text part.
fn base64_line(bytes: usize) -> Vec<u8> {
    let mut n: u64 = 7;
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (n >> 56) as u8
        })
        .collect();
    let mut m = head("one long base64 line", "multipart/mixed; boundary=\"q\"");
    m.push_str("--q\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--q\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    m.push_str(&base64(&data));
    m.push_str("\r\n--q--\r\n");
    m.into_bytes()
}

/// Dot-stuffs `body` for DATA.
fn stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    for line in body.split_inclusive(|b| *b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out
}

fn send(addr: SocketAddr, body: &[u8]) -> String {
    let (mut smtp, _) = Smtp::connect(addr);
    smtp.expect("EHLO hostile.example", "250");
    let reply = smtp.send_message("reporter@example.net", "abuse@example.com", &stuffed(body));
    smtp.cmd("QUIT");
    reply
}

fn db_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

fn raw_status(db: &Path) -> Vec<(String, Option<String>)> {
    let status = crate::util::raw_texts(db, "status");
    let error = crate::util::raw_texts(db, "error");
    status.into_iter().map(Option::unwrap).zip(error).collect()
}

fn warnings_of(db: &Path, subject: &str) -> String {
    let sql = format!(
        "SELECT parse_warnings FROM reports WHERE subject = '{}'",
        subject.replace('\'', "''")
    );
    crate::util::texts(db, &sql)
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_else(|| panic!("no report for {subject:?}"))
}

fn wait_drained(db: &Path, seconds: u64) {
    wait_for(seconds, "the backlog to drain", || {
        raw_status(db)
            .iter()
            .all(|(status, _)| status != "received")
            .then_some(())
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hostile_message_becomes_a_bounded_report_and_intake_keeps_answering() {
    let server = TestServer::default().await;
    let db = server.db_path();
    let addr = server.addr;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "deep rfc822",
            deep_rfc822(100_000),
            "multipart or message parts",
        ),
        ("deep eml", deep_eml_attachment(100_000), "has more than"),
        (
            "deep multipart",
            deep_multipart(100_000),
            "multipart or message parts",
        ),
        (
            "many parts",
            many_parts(100_000),
            "parts; the rest were skipped",
        ),
        ("scan report", address_lines(1500), "rows past the limit"),
        ("html", script_html(100_000), ""),
        ("lying zips", zip_bombs(20), "zip bomb"),
        ("one long base64 line", base64_line(3 * 1024 * 1024), ""),
    ];
    let total: usize = cases.iter().map(|(_, m, _)| m.len()).sum();
    let before = db_bytes(&db);
    let cases = tokio::task::spawn_blocking(move || {
        for (subject, message, _) in &cases {
            let reply = send(addr, message);
            assert!(reply.starts_with("250"), "{subject}: {reply}");
        }
        // A normal report after them is still taken and processed.
        let reply = send(
            addr,
            &crate::util::message("after-hostile", "after the storm"),
        );
        assert!(reply.starts_with("250"), "{reply}");
        cases
    })
    .await
    .unwrap();
    wait_drained(&db, 240);
    for (subject, _, warning) in &cases {
        let warnings = warnings_of(&db, subject);
        assert!(warnings.contains(warning), "{subject}: {warnings}");
    }
    warnings_of(&db, "after the storm");
    let grown = db_bytes(&db) - before;
    assert!(
        grown < 20 * total as u64,
        "the database grew {grown} bytes for {total} bytes of messages"
    );
    // Each message on its own stays within 20x as well: the address lines,
    // the worst case before, are ~3 MB.
    server.stop().await;
}

/// The worker child started from `binary`. Every test's server runs in this
/// process, so the binary's path (a link only this test uses) tells this
/// test's worker from the others'.
fn worker_pid(binary: &Path, except: Option<u32>) -> Option<u32> {
    let me = std::process::id();
    let tasks = std::fs::read_dir(format!("/proc/{me}/task")).ok()?;
    let argv0 = binary.as_os_str().as_encoded_bytes();
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|pid| Some(*pid) != except)
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0).next() == Some(argv0)
                    && c.windows(12).any(|w| w == b"worker-child")
            })
        })
}

/// Waits until `pid` is using the CPU (working on a message), then kills it.
fn kill_when_busy(pid: u32) {
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let start = cpu();
    wait_for(30, "the worker to be busy", || {
        (cpu() > start + 5).then_some(())
    });
    kill(pid);
}

fn kill(pid: u32) {
    // SAFETY: kill(2) with a pid we just read from /proc; no memory involved.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

on_both_stores!(a_worker_killed_twice_on_a_message_quarantines_it_and_work_goes_on);
async fn a_worker_killed_twice_on_a_message_quarantines_it_and_work_goes_on(
    store: crate::util::Store,
) {
    let links = tempfile::tempdir().unwrap();
    let binary = links.path().join("killed-twice-worker");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_abuse-inbox"), &binary).unwrap();
    let mut config = Config::default();
    config.reply.enabled = false;
    config.worker.binary = Some(binary.clone());
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let db = server.db_path();
    let addr = server.addr;
    // Warm the worker up, so its pid is known.
    tokio::task::spawn_blocking(move || send(addr, &crate::util::message("warm", "warm up")))
        .await
        .unwrap();
    wait_drained(&db, 60);
    let first = wait_for(10, "the worker child", || worker_pid(&binary, None));
    // A slow message: one long base64 line keeps the worker busy for seconds
    // in a debug build; it is killed mid-message, twice.
    let slow = base64_line(12 * 1024 * 1024);
    tokio::task::spawn_blocking(move || assert!(send(addr, &slow).starts_with("250")))
        .await
        .unwrap();
    kill_when_busy(first);
    let second = wait_for(20, "a new worker child", || {
        worker_pid(&binary, Some(first))
    });
    kill_when_busy(second);
    wait_for(60, "the poison message to be failed", || {
        raw_status(&db)
            .iter()
            .any(|(status, _)| status == "failed")
            .then_some(())
    });
    // Intake and processing go on after it.
    for i in 0..3 {
        let reply = tokio::task::spawn_blocking(move || {
            send(
                addr,
                &crate::util::message(&format!("next-{i}"), "next one"),
            )
        })
        .await
        .unwrap();
        assert!(reply.starts_with("250"), "{reply}");
    }
    wait_drained(&db, 60);
    let statuses = raw_status(&db);
    let failed: Vec<_> = statuses.iter().filter(|(s, _)| s == "failed").collect();
    assert_eq!(failed.len(), 1, "{statuses:?}");
    let error = failed[0].1.as_deref().unwrap_or("");
    assert!(error.contains("signal 9"), "{error}");
    assert_eq!(
        crate::util::count_rows(&db, "reports"),
        4,
        "the warm-up and the three after it, once each"
    );
    let _dir = server.stop().await; // a SQLite store lives in it
    let db_arg = db.to_str().unwrap();

    // The operator's view and actions.
    let listed = json(&abuse_inbox(&[
        "--db", db_arg, "raw", "list", "--status", "failed", "--format", "json",
    ]));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    let id = listed[0]["id"].as_i64().unwrap().to_string();
    let stats = json(&abuse_inbox(&["--db", db_arg, "stats", "--format", "json"]));
    assert!(stats.to_string().contains("failed"), "{stats}");
    let retried = json(&abuse_inbox(&["--db", db_arg, "raw", "retry", &id]));
    assert_eq!(retried["retried"], 1);
    assert_eq!(raw_status(&db)[1].0, "received");
    let discarded = json(&abuse_inbox(&["--db", db_arg, "raw", "discard", &id]));
    assert_eq!(discarded["discarded"], 1);
    assert_eq!(raw_status(&db)[1].0, "discarded");
    // The message itself, though it has no report: its state and error,
    // and its bytes exactly as they arrived.
    let shown = abuse_inbox(&["--db", db_arg, "raw", "show", &id]);
    assert!(shown.status.success());
    let table = String::from_utf8_lossy(&shown.stdout);
    for expected in ["discarded", "report      none", "--raw"] {
        assert!(table.contains(expected), "{expected} in {table}");
    }
    let whole = abuse_inbox(&["--db", db_arg, "raw", "show", &id, "--raw"]);
    assert!(whole.status.success());
    assert_eq!(
        whole.stdout.len() as u64,
        listed[0]["size_bytes"].as_u64().unwrap()
    );
    let shown = json(&abuse_inbox(&[
        "--db", db_arg, "raw", "show", &id, "--format", "json",
    ]));
    assert_eq!(shown["raw"]["status"], "discarded");
    assert!(shown["report_id"].is_null());
    let missing = abuse_inbox(&["--db", db_arg, "raw", "show", "999"]);
    assert_eq!(missing.status.code(), Some(1));
    // A processed message and one that does not exist: nothing to do, and
    // the command says so (exit 1).
    let nothing = abuse_inbox(&["--db", db_arg, "raw", "retry", "1", "999"]);
    assert_eq!(nothing.status.code(), Some(1));
    let said: serde_json::Value = serde_json::from_slice(&nothing.stdout).unwrap();
    assert_eq!(said["retried"], 0);
    let stderr = String::from_utf8_lossy(&nothing.stderr);
    assert!(
        stderr.contains("2 of 2 messages changed nothing"),
        "{stderr}"
    );
}

/// The worker children run from `binary` now (a link only one test uses).
fn worker_pids(binary: &Path) -> Vec<u32> {
    let argv0 = binary.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0).next() == Some(argv0)
                    && c.windows(12).any(|w| w == b"worker-child")
            })
        })
        .collect()
}

/// Several worker processes share the batches: every message becomes one
/// report, and a worker killed in the middle of a batch costs nothing (its
/// message is tried again in a fresh one, the others go on).
#[tokio::test(flavor = "multi_thread")]
async fn several_workers_process_each_message_once_and_a_killed_one_loses_nothing() {
    let links = tempfile::tempdir().unwrap();
    let binary = links.path().join("several-workers");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_abuse-inbox"), &binary).unwrap();
    let mut config = Config::default();
    config.reply.enabled = false;
    config.auth.enabled = false;
    config.worker.processes = 3;
    config.worker.binary = Some(binary.clone());
    let server = TestServer::start(config).await;
    let (db, addr) = (server.db_path(), server.addr);
    // A slow message first, then forty more in the same burst.
    let slow = base64_line(12 * 1024 * 1024);
    tokio::task::spawn_blocking(move || {
        assert!(send(addr, &slow).starts_with("250"));
        for i in 0..40 {
            let reply = send(addr, &crate::util::message(&format!("many-{i}"), "many"));
            assert!(reply.starts_with("250"), "{reply}");
        }
    })
    .await
    .unwrap();
    let busy = wait_for(30, "three workers", || {
        let pids = worker_pids(&binary);
        (pids.len() == 3).then_some(pids)
    });
    // Kill whichever child works on the slow message (the busy one), once.
    let cpu = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .nth(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // The one on the slow message is the one using the CPU without a pause.
    let before: Vec<u64> = busy.iter().map(|p| cpu(*p)).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let slowest = busy
        .iter()
        .zip(before)
        .max_by_key(|(p, was)| cpu(**p).saturating_sub(*was))
        .map(|(p, _)| *p)
        .unwrap();
    kill(slowest);
    wait_drained(&db, 120);
    let statuses = raw_status(&db);
    assert_eq!(statuses.len(), 41);
    assert!(
        statuses.iter().all(|(s, _)| s == "processed"),
        "{statuses:?}"
    );
    assert_eq!(crate::util::count_rows(&db, "reports"), 41);
    let distinct = crate::util::texts(&db, "SELECT count(DISTINCT raw_id) FROM reports");
    assert_eq!(distinct, vec![Some("41".to_owned())]);
    server.stop().await;
}

on_both_stores!(values_a_database_would_refuse_are_cut_and_the_batch_is_stored);
/// A 6,000-character From address and a 2.6 MB subject (PostgreSQL refused
/// both: a B-tree entry past 2,704 bytes, a `tsvector` past 1 MB) among five
/// ordinary messages: all seven become reports, the long values cut with a
/// warning, and nobody is answered at a cut address.
async fn values_a_database_would_refuse_are_cut_and_the_batch_is_stored(store: crate::util::Store) {
    let mut config = Config::default();
    config.auth.enabled = false;
    config.reply.require_auth = false;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let (db, addr) = (server.db_path(), server.addr);
    tokio::task::spawn_blocking(move || {
        let long_from = format!(
            "From: {}@example.net\r\nSubject: long from\r\nMessage-ID: <lf@example.net>\r\n\r\n\
             Brute force from 192.0.2.10 against 198.51.100.7 port 22.\r\n",
            "a".repeat(6_000)
        );
        let long_subject = format!(
            "From: r@example.net\r\nSubject: {}\r\nMessage-ID: <ls@example.net>\r\n\r\n\
             Brute force from 192.0.2.10 against 198.51.100.7 port 22.\r\n",
            "word ".repeat(520_000)
        );
        for (i, body) in [long_from.into_bytes(), long_subject.into_bytes()]
            .into_iter()
            .chain((0..5).map(|i| crate::util::message(&format!("innocent-{i}"), "innocent")))
            .enumerate()
        {
            assert!(send(addr, &body).starts_with("250"), "message {i}");
        }
    })
    .await
    .unwrap();
    wait_drained(&db, 60);
    let statuses = raw_status(&db);
    assert!(
        statuses.iter().all(|(s, _)| s == "processed"),
        "{statuses:?}"
    );
    assert_eq!(crate::util::count_rows(&db, "reports"), 7);
    let warnings = warnings_of(&db, "long from");
    assert!(
        warnings.contains("reporter's address is longer than 254"),
        "{warnings}"
    );
    let cut = crate::util::texts(
        &db,
        "SELECT reply_reason FROM reports WHERE subject = 'long from'",
    );
    assert_eq!(cut, vec![Some("no reporter address".to_owned())]);
    let subjects = crate::util::texts(
        &db,
        "SELECT length(subject) FROM reports WHERE subject LIKE 'word word%'",
    );
    assert_eq!(subjects.len(), 1);
    assert!(subjects[0].as_deref().unwrap().parse::<usize>().unwrap() <= 999);
    server.stop().await;
}

on_both_stores!(a_report_the_database_refuses_is_quarantined_alone_with_its_words);
/// The database refuses one report of a batch (a trigger stands in for a
/// value it cannot take): the transaction is tried report by report, the
/// others are stored, and the refused message is quarantined with the
/// database's own words (on PostgreSQL its SQLSTATE).
async fn a_report_the_database_refuses_is_quarantined_alone_with_its_words(
    store: crate::util::Store,
) {
    let mut config = Config::default();
    config.reply.enabled = false;
    let Some(server) = TestServer::on(store, config).await else {
        return;
    };
    let (db, addr) = (server.db_path(), server.addr);
    let postgres = db.to_string_lossy().starts_with("postgres");
    crate::util::execute(
        &db,
        if postgres {
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
             BEGIN
                 IF NEW.subject = 'poison' THEN
                     RAISE EXCEPTION 'poison refused' USING ERRCODE = '54000';
                 END IF;
                 RETURN NEW;
             END $$ LANGUAGE plpgsql;
             CREATE TRIGGER poison BEFORE INSERT ON reports
                 FOR EACH ROW EXECUTE FUNCTION refuse_poison();"
        } else {
            "CREATE TRIGGER poison BEFORE INSERT ON reports WHEN NEW.subject = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poison refused'); END;"
        },
    );
    tokio::task::spawn_blocking(move || {
        // One connection, no pauses: the messages tend to share transactions.
        let (mut smtp, _) = Smtp::connect(addr);
        smtp.cmd("EHLO load.example");
        for i in 0..12 {
            let subject = if i == 5 { "poison" } else { "innocent" };
            assert!(smtp.cmd("MAIL FROM:<r@example.net>").starts_with("250"));
            assert!(smtp.cmd("RCPT TO:<abuse@example.com>").starts_with("250"));
            assert!(smtp.cmd("DATA").starts_with("354"));
            smtp.send(&crate::util::message(&format!("p-{i}"), subject));
            smtp.send(b".\r\n");
            assert!(smtp.reply().starts_with("250"));
        }
    })
    .await
    .unwrap();
    wait_drained(&db, 60);
    assert_eq!(crate::util::count_rows(&db, "reports"), 11);
    let failed: Vec<_> = raw_status(&db)
        .into_iter()
        .filter(|(s, _)| s == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let why = failed[0].1.as_deref().unwrap_or("");
    assert!(why.contains("the database refused the report"), "{why}");
    assert!(why.contains("poison refused"), "{why}");
    if postgres {
        assert!(why.contains("SQLSTATE 54000"), "{why}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_past_the_daemon_wide_budget_is_452_and_the_budget_comes_back() {
    let mut config = Config::default();
    config.smtp.max_message_bytes = 1024 * 1024;
    config.smtp.max_data_bytes_in_flight = 1024 * 1024;
    let server = TestServer::start(config).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (mut holder, _) = Smtp::connect(addr);
        holder.expect("EHLO a.example", "250");
        holder.expect("MAIL FROM:<a@example.net>", "250");
        holder.expect("RCPT TO:<abuse@example.com>", "250");
        holder.expect("DATA", "354");
        let mut body = crate::util::message("holder", "holds the budget");
        body.extend(std::iter::repeat_n(b'x', 1000 * 1024 - body.len()));
        holder.send(&body);
        // The other session cannot start a message while that one is held.
        let ready = || {
            let (mut other, _) = Smtp::connect(addr);
            other.expect("EHLO b.example", "250");
            other.expect("MAIL FROM:<b@example.net>", "250");
            other.expect("RCPT TO:<abuse@example.com>", "250");
            other
        };
        let mut other = ready();
        wait_for(30, "the held message to reach the budget", || {
            let reply = other.cmd("DATA");
            if reply.starts_with("354") {
                // Too early. Sending anything now would reserve memory the
                // held message still needs (and push it over the budget),
                // so this session leaves without a byte and a new one
                // tries again.
                other = ready();
                std::thread::sleep(Duration::from_millis(50));
                return None;
            }
            assert!(reply.starts_with("452 4.3.1"), "{reply}");
            Some(())
        });
        holder.send(b"\r\n.\r\n");
        let reply = holder.reply();
        assert!(reply.starts_with("250"), "{reply}");
        // Committed: its bytes are given back.
        other.expect("DATA", "354");
        other.send(b"Subject: later\r\n\r\nx\r\n.\r\n");
        let reply = other.reply();
        assert!(reply.starts_with("250"), "{reply}");
    })
    .await
    .unwrap();
    server.stop().await;
}

/// A blocking connection from `source` (an address of 127.0.0.0/8).
fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let stream = tokio::runtime::Handle::current()
        .block_on(socket.connect(addr))
        .unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

fn greeting(stream: &mut TcpStream) -> String {
    let mut buf = [0u8; 512];
    let n = std::io::Read::read(stream, &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_network_cannot_take_every_slot_whatever_its_addresses() {
    let mut config = Config::default();
    config.smtp.max_connections_per_ip = 2;
    config.smtp.max_connections_per_network = 3;
    let server = TestServer::start(config).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
            let mut s = connect_from(source, addr);
            assert!(greeting(&mut s).starts_with("220"), "{source}");
            held.push(s);
        }
        // A fourth address of the same /24 is refused...
        let mut refused = connect_from("127.0.0.5", addr);
        assert!(greeting(&mut refused).starts_with("421 4.7.0"));
        // ...another /24 is not.
        let mut other = connect_from("127.0.1.9", addr);
        assert!(greeting(&mut other).starts_with("220"));
        drop(held);
    })
    .await
    .unwrap();
    server.stop().await;
}

/// A larger network (/16) has a cap of its own, and when idle sessions from
/// a few networks fill the server, a newcomer from another network is let
/// in: the longest-idle session of the most crowded network makes room.
#[tokio::test(flavor = "multi_thread")]
async fn a_crowd_of_idle_networks_cannot_keep_a_newcomer_out() {
    let mut config = Config::default();
    config.smtp.max_connections = 22;
    config.smtp.max_connections_per_ip = 10;
    config.smtp.max_connections_per_network = 10;
    config.smtp.max_connections_per_large_network = 10;
    let server = TestServer::start(config).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        let mut hold = |source: &str, n: usize| {
            for _ in 0..n {
                let mut s = connect_from(source, addr);
                assert!(greeting(&mut s).starts_with("220"), "{source}");
                held.push(s);
            }
        };
        hold("127.4.0.2", 10);
        // Another /24 of the same /16: the /16 is at its cap.
        let mut refused = connect_from("127.4.1.2", addr);
        assert!(greeting(&mut refused).starts_with("421 4.7.0"));
        hold("127.1.0.2", 10);
        hold("127.2.0.2", 2);
        // The server is full (22). A newcomer from a fourth network gets in...
        let mut newcomer = connect_from("127.3.0.2", addr);
        assert!(greeting(&mut newcomer).starts_with("220"));
        // ...and one idle session of a crowded network was closed for it.
        let closed: Vec<String> = held
            .iter_mut()
            .filter_map(|s| {
                s.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let reply = greeting(s);
                (!reply.is_empty()).then_some(reply)
            })
            .collect();
        assert_eq!(closed.len(), 1, "{closed:?}");
        assert!(closed[0].starts_with("421"), "{closed:?}");
        // A client of a crowded network does not evict its own kind (or a
        // network as crowded): full is full for it.
        let mut crowded = connect_from("127.1.0.3", addr);
        let reply = greeting(&mut crowded);
        assert!(reply.starts_with("421 4.7.0"), "{reply}");
    })
    .await
    .unwrap();
    server.stop().await;
}

/// Sessions that start while the server is three quarters full get a
/// quarter of the idle timeout (at least 10 s): idle clients give their
/// slots back sooner when slots are scarce.
#[tokio::test(flavor = "multi_thread")]
async fn idle_timeouts_shorten_under_pressure() {
    let mut config = Config::default();
    config.smtp.max_connections = 8;
    config.smtp.idle_timeout_seconds = 60;
    let server = TestServer::start(config).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let mut held: Vec<TcpStream> = (0..8)
            .map(|i| {
                let mut s = connect_from(&format!("127.0.{i}.2"), addr);
                assert!(greeting(&mut s).starts_with("220"));
                s
            })
            .collect();
        let started = std::time::Instant::now();
        // The last one started with one slot or none left: closed idle after
        // 15 s (a quarter of 60)...
        held[7]
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let closed = greeting(&mut held[7]);
        let after = started.elapsed();
        assert!(closed.starts_with("421 4.4.2"), "{closed}");
        assert!(
            after >= Duration::from_secs(13) && after < Duration::from_secs(25),
            "{after:?}"
        );
        // ...the first one, started with room to spare, is still open.
        held[0]
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert_eq!(greeting(&mut held[0]), "");
    })
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn below_the_free_space_floor_intake_answers_452_and_stores_nothing() {
    let mut config = Config::default();
    config.store.min_free_bytes = u64::MAX / 2; // more than any disk has
    let server = TestServer::start(config).await;
    let addr = server.addr;
    let reply = tokio::task::spawn_blocking(move || {
        send(addr, &crate::util::message("floor", "below the floor"))
    })
    .await
    .unwrap();
    assert!(reply.starts_with("452 4.3.1"), "{reply}");
    assert_eq!(
        crate::util::count_rows(&server.db_path(), "raw_messages"),
        0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_listener_is_bounded_in_connections_and_time() {
    let mut config = Config::default();
    config.metrics.listen = "127.0.0.1:0".into();
    config.metrics.max_connections = 1;
    config.metrics.timeout_seconds = 1;
    let server = TestServer::start(config).await;
    let metrics = server.metrics_addr().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut idle = TcpStream::connect(metrics).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // The only slot is taken: the next connection is closed at once.
        let mut second = TcpStream::connect(metrics).unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut second, &mut buf).unwrap_or(0);
        assert_eq!(n, 0, "a connection past the limit is closed unanswered");
        // The silent one is closed after the timeout, and its slot comes back.
        let n = std::io::Read::read(&mut idle, &mut buf).unwrap_or(0);
        assert_eq!(n, 0);
        let mut third = TcpStream::connect(metrics).unwrap();
        third.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut third, &mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    })
    .await
    .unwrap();
    server.stop().await;
}

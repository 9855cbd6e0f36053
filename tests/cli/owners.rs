//! `owners import` and `owners lookup`, on both stores, with the fixture
//! `fixtures/owners/customers.csv`.

use super::db_for;
use crate::util::{abuse_inbox, json, Store};
use std::path::{Path, PathBuf};

pub(super) fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/customers.csv")
}

pub(super) fn import(db: &str, file: &Path, more: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "owners",
        "import",
        file.to_str().unwrap(),
        "--db",
        db,
        "--format",
        "json",
        "--source",
        "billing",
    ];
    args.extend_from_slice(more);
    json(&abuse_inbox(&args))
}

fn owner(db: &str, query: &str, at: &str) -> Option<String> {
    let out = abuse_inbox(&[
        "owners", "lookup", query, "--at", at, "--db", db, "--format", "json",
    ]);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(if found["customer"].is_null() { 1 } else { 0 })
    );
    found["customer"]["reference"].as_str().map(str::to_owned)
}

on_both_stores_sync!(owners_import_is_idempotent_ends_what_is_gone_and_lookups_are_time_aware);
fn owners_import_is_idempotent_ends_what_is_gone_and_lookups_are_time_aware(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let dry = import(&db, &fixture(), &["--dry-run"]);
    assert_eq!(dry["counts"]["assignments_created"], 6, "{dry}");
    assert_eq!(dry["counts"]["customers_created"], 5);
    // A dry run writes nothing: the real import creates the same.
    let first = import(&db, &fixture(), &[]);
    assert_eq!(first["counts"], dry["counts"]);
    let again = import(&db, &fixture(), &[]);
    assert_eq!(again["counts"]["assignments_unchanged"], 6, "{again}");
    assert_eq!(again["counts"]["assignments_created"], 0);
    assert_eq!(again["counts"]["customers_updated"], 0);

    let now = "2026-12-03T12:00:00Z";
    // The /29 inside c-100's /24 is c-200's.
    assert_eq!(owner(&db, "203.0.113.9", now).as_deref(), Some("c-200"));
    assert_eq!(owner(&db, "203.0.113.77", now).as_deref(), Some("c-100"));
    // Moved on 1 November: an event of the evening before is c-300's.
    assert_eq!(
        owner(&db, "198.51.100.5", "2026-10-31T23:00:00Z").as_deref(),
        Some("c-300")
    );
    assert_eq!(owner(&db, "198.51.100.5", now).as_deref(), Some("c-400"));
    assert_eq!(owner(&db, "2001:db8:42::1", now).as_deref(), Some("c-500"));
    assert_eq!(
        owner(&db, "www.shop.example.co.uk", now).as_deref(),
        Some("c-100")
    );
    assert_eq!(owner(&db, "192.0.2.1", now), None);
    assert_eq!(owner(&db, "other.co.uk", now), None);

    // The source no longer lists the IPv6 block: it ends, and is kept.
    let fewer = dir.path().join("fewer.csv");
    let text = std::fs::read_to_string(fixture()).unwrap();
    std::fs::write(
        &fewer,
        text.replace(
            "c-500,IPv6 Customer,abuse@v6.example,pt,2001:db8:42::/48,,,\n",
            "",
        ),
    )
    .unwrap();
    let third = import(&db, &fewer, &[]);
    assert_eq!(third["counts"]["assignments_ended"], 1, "{third}");
    assert_eq!(
        owner(&db, "2001:db8:42::1", "2026-06-01T00:00:00Z").as_deref(),
        Some("c-500")
    );
    assert_eq!(owner(&db, "2001:db8:42::1", "2099-01-01T00:00:00Z"), None);
    // Exported and imported into another store: the same answers, the
    // ended block included.
    let exported = abuse_inbox(&["owners", "export", "--db", &db]);
    assert!(exported.status.success());
    let file = dir.path().join("exported.csv");
    std::fs::write(&file, &exported.stdout).unwrap();
    let other = dir.path().join("other.db");
    let other = other.to_str().unwrap();
    let loaded = import(other, &file, &[]);
    assert_eq!(loaded["counts"]["assignments_created"], 6, "{loaded}");
    for (query, at) in [
        ("203.0.113.9", now),
        ("198.51.100.5", "2026-10-31T23:00:00Z"),
        ("2001:db8:42::1", "2026-06-01T00:00:00Z"),
        ("2001:db8:42::1", "2099-01-01T00:00:00Z"),
        ("www.shop.example.co.uk", now),
    ] {
        assert_eq!(
            owner(other, query, at),
            owner(&db, query, at),
            "{query} at {at}"
        );
    }
    let shown = abuse_inbox(&["owners", "show", "c-500", "--db", &db]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("customer c-500 (IPv6 Customer)"), "{shown}");
    assert!(shown.contains("netblock 2001:db8:42::/48"), "{shown}");
    assert!(shown.contains("(billing, ended)"), "{shown}");
    let missing = abuse_inbox(&["owners", "show", "c-999", "--db", &db]);
    assert_eq!(missing.status.code(), Some(2));
    let listed = json(&abuse_inbox(&[
        "owners", "list", "--db", &db, "--format", "json",
    ]));
    let c500 = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["customer"]["reference"] == "c-500")
        .unwrap();
    assert_eq!(
        (
            c500["assignments_now"].as_u64(),
            c500["assignments"].as_u64()
        ),
        (Some(0), Some(1))
    );
    let table = abuse_inbox(&["owners", "lookup", "203.0.113.9", "--at", now, "--db", &db]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("customer c-200 (Small Reseller), by netblock 203.0.113.8/29"),
        "{table}"
    );
}

#[test]
fn a_bad_owners_file_names_every_bad_row_and_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = super::db_arg(&dir);
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "customer,name,email,language,netblock,domain,valid_from,valid_until\n\
         c-1,A,abuse@a.example,en,203.0.113.0/24,,,\n\
         c-2,B,abuse@b.example,en,203.0.113.5/24,,,\n\
         c-3,C,abuse@c.example,en,,,,\n",
    )
    .unwrap();
    let out = abuse_inbox(&["owners", "import", bad.to_str().unwrap(), "--db", &db]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv:3: 203.0.113.5/24 has host bits set"),
        "{err}"
    );
    assert!(
        err.contains("bad.csv:4: neither netblock nor domain"),
        "{err}"
    );
    assert!(err.contains("2 bad rows"), "{err}");
    // Nothing was imported, not even the good row: no store was made.
    assert!(!Path::new(&db).exists());
}

fn ingest(db: &str, name: &str) -> serde_json::Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/owners")
        .join(name);
    json(&abuse_inbox(&[
        "ingest",
        "--db",
        db,
        file.to_str().unwrap(),
    ]))
}

/// The id of `customer`'s open case (the newest).
pub(super) fn open_case(db: &str, customer: &str) -> String {
    let cases = json(&abuse_inbox(&[
        "cases",
        "list",
        "--customer",
        customer,
        "--status",
        "open",
        "--db",
        db,
        "--format",
        "json",
    ]));
    cases[0]["id"].as_i64().unwrap().to_string()
}

fn listed(db: &str, args: &[&str]) -> Vec<i64> {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--db", db, "--format", "json"]);
    json(&abuse_inbox(&all))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

on_both_stores_sync!(
    reports_are_routed_to_the_customer_of_the_events_time_and_cases_group_by_customer
);
fn reports_are_routed_to_the_customer_of_the_events_time_and_cases_group_by_customer(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    // Before any import, nothing is routed and the ordinary reply stands.
    let early = dir.path().join("early.eml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/not-ours.eml"),
    )
    .unwrap();
    std::fs::write(&early, text.replace("routing-2@", "routing-0@")).unwrap();
    let before = json(&abuse_inbox(&[
        "ingest",
        "--db",
        &db,
        early.to_str().unwrap(),
    ]));
    assert_eq!(before["ownership"], "unrouted", "{before}");
    assert_eq!(before["owners"], serde_json::json!([]));
    assert_eq!(before["reply"], "ack");

    import(&db, &fixture(), &[]);
    let report = ingest(&db, "moved-block.eml");
    let owners: Vec<(String, String, String, String)> = report["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["value"].as_str().unwrap().to_owned(),
                o["customer"].as_str().unwrap_or("-").to_owned(),
                format!(
                    "{} {}",
                    o["matched"].as_str().unwrap(),
                    o["by"].as_str().unwrap_or("")
                ),
                format!(
                    "{} {}",
                    o["at"].as_str().unwrap(),
                    o["time_from"].as_str().unwrap()
                ),
            )
        })
        .collect();
    let row = |v: &str, c: &str, m: &str, t: &str| (v.into(), c.into(), m.into(), t.into());
    assert_eq!(
        owners,
        vec![
            // 198.51.100.0/24 moved from c-300 to c-400 on 1 November: the
            // event of 31 October, reported in December, is c-300's.
            row(
                "198.51.100.7",
                "c-300",
                "netblock 198.51.100.0/24",
                "2026-10-31T23:00:00Z evidence"
            ),
            // A /29 inside c-100's /24 is the reseller's.
            row(
                "203.0.113.9",
                "c-200",
                "netblock 203.0.113.8/29",
                "2026-11-30T10:00:00Z evidence"
            ),
            row(
                "203.0.113.77",
                "c-100",
                "netblock 203.0.113.0/24",
                "2026-11-30T10:05:00Z evidence"
            ),
        ],
        "{report}"
    );
    assert_eq!(report["ownership"], "owned");
    assert_eq!(report["reply"], "ack");
    let id = report["id"].as_i64().unwrap();

    // None of ours: marked so, and answered "not on our network".
    let other = ingest(&db, "not-ours.eml");
    let other_id = other["id"].as_i64().unwrap();
    assert_eq!(other["ownership"], "not_ours", "{other}");
    assert_eq!(other["reply"], "not_ours");
    let replies = json(&abuse_inbox(&[
        "replies", "list", "--db", &db, "--format", "json",
    ]));
    let kinds: Vec<(i64, &str)> = replies
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["report_id"].as_i64().unwrap(),
                r["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(kinds.contains(&(other_id, "not_ours")), "{replies}");
    assert!(kinds.contains(&(id, "ack")), "{replies}");

    // Filters.
    let list = |args: &[&str]| listed(&db, &[&["reports", "list"][..], args].concat());
    assert_eq!(list(&["--customer", "c-300"]), vec![id]);
    assert_eq!(list(&["--customer", "c-400"]), Vec::<i64>::new());
    assert_eq!(list(&["--unowned"]), vec![other_id]);

    // One case per customer, the report in each; the unowned report in a
    // network case.
    let cases = json(&abuse_inbox(&[
        "cases", "list", "--db", &db, "--format", "json",
    ]));
    let mut groups: Vec<String> = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["customer"].as_str().unwrap_or("-"),
                c["network"].as_str().unwrap()
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        ["- 192.0.2.0/24", "c-100 ", "c-200 ", "c-300 "],
        "{cases}"
    );
    let case = open_case(&db, "c-200");
    let shown = json(&abuse_inbox(&[
        "cases", "show", &case, "--db", &db, "--format", "json",
    ]));
    assert_eq!(shown["reports"][0]["id"], id, "{shown}");

    // IntelMQ events carry the customer.
    let out = abuse_inbox(&["export", "--format", "intelmq", "--db", &db]);
    assert!(out.status.success());
    let accounts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["extra.abuse_inbox_report_id"] == id)
        .map(|e| {
            format!(
                "{} {}",
                e["source.ip"].as_str().unwrap(),
                e["source.account"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        accounts,
        [
            "198.51.100.7 c-300",
            "203.0.113.9 c-200",
            "203.0.113.77 c-100"
        ]
    );

    // An import gives 203.0.113.64/26 to a new customer: reprocess
    // re-routes the stored reports and says how many changed customer.
    let more = dir.path().join("more.csv");
    std::fs::write(
        &more,
        "customer,name,email,language,netblock,domain,valid_from,valid_until\n\
         c-600,Upper Half,abuse@upper.example,en,203.0.113.64/26,,,\n",
    )
    .unwrap();
    json(&abuse_inbox(&[
        "owners",
        "import",
        more.to_str().unwrap(),
        "--source",
        "override",
        "--db",
        &db,
        "--format",
        "json",
    ]));
    let done = json(&abuse_inbox(&["reprocess", "--all", "--db", &db]));
    assert_eq!(done["customers_changed"], 1, "{done}");
    assert_eq!(list(&["--customer", "c-600"]), vec![id]);
    assert_eq!(list(&["--customer", "c-100"]), Vec::<i64>::new());
    // Its cases are its customers' now: c-100's, left empty, is gone.
    let cases_of = |customer: &str| {
        json(&abuse_inbox(&[
            "cases",
            "list",
            "--customer",
            customer,
            "--db",
            &db,
            "--format",
            "json",
        ]))
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reports"].as_i64().unwrap())
        .collect::<Vec<_>>()
    };
    assert_eq!(cases_of("c-600"), [1]);
    assert_eq!(cases_of("c-100"), Vec::<i64>::new());
    assert_eq!(cases_of("c-300"), [1]);
}

on_both_stores_sync!(the_daemon_routes_by_the_owners_imported_while_it_runs);
fn the_daemon_routes_by_the_owners_imported_while_it_runs(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let daemon = crate::util::Daemon::start(&db);
    let deliver = |name: &str| {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/owners")
                .join(name),
        )
        .unwrap();
        let (mut c, _) = crate::util::Smtp::connect(daemon.addr);
        c.expect("EHLO routing.example", "250");
        let reply = c.send_message("soc@cert.example.org", "abuse@hosting.example", &bytes);
        assert!(reply.starts_with("250"), "{reply}");
    };
    let report_of = |message_id: &str| {
        crate::util::wait_for(20, "the report", || {
            listed(&db, &["reports", "list"])
                .into_iter()
                .find_map(|id| {
                    let r = json(&abuse_inbox(&[
                        "reports",
                        "show",
                        &id.to_string(),
                        "--db",
                        &db,
                        "--format",
                        "json",
                    ]));
                    (r["message_id"] == message_id).then_some(r)
                })
        })
    };
    deliver("not-ours.eml");
    let first = report_of("routing-2@cert.example.org");
    assert_eq!(first["ownership"], "unrouted", "{first}");

    // Imported while it runs: the next report is routed by it.
    import(&db, &fixture(), &[]);
    deliver("moved-block.eml");
    let routed = report_of("routing-1@cert.example.org");
    let customers: Vec<&str> = routed["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["customer"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(customers, ["c-300", "c-200", "c-100"], "{routed}");
    daemon.wait_for_log(5, "owners loaded for routing");
}

/// How the test's resolver answers.
#[derive(Clone, Copy)]
enum Resolver {
    /// `ipam-7` for 192.0.2.55 through November 2026; no customer for the rest.
    Answers,
    /// Waits 3 s before a word.
    Slow,
    /// Answers what is not JSON.
    Garbled,
}

/// A real HTTP server on 127.0.0.1 answering as `mode`; its URL, and the
/// request lines it was sent.
fn resolver(mode: Resolver) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/owner", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                // The rest of the head.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                log.lock().unwrap().push(request.trim().to_owned());
                let body = match mode {
                    Resolver::Answers if request.contains("address=192.0.2.55") => {
                        r#"{"customer":"ipam-7","valid_from":"2026-11-01T00:00:00Z","valid_until":"2026-12-01T00:00:00Z"}"#
                    }
                    Resolver::Answers => r#"{"customer":null}"#,
                    Resolver::Slow => {
                        std::thread::sleep(std::time::Duration::from_secs(3));
                        r#"{"customer":"too-late"}"#
                    }
                    Resolver::Garbled => "<html>owner: ipam-7</html>",
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (url, seen)
}

/// `not-ours.eml` (about 192.0.2.55 on 30 November) under `n` new
/// Message-IDs, in `dir`.
fn copies_of_not_ours(dir: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/not-ours.eml"),
    )
    .unwrap();
    (0..n)
        .map(|i| {
            let path = dir.join(format!("copy-{i}.eml"));
            std::fs::write(&path, text.replace("routing-2@", &format!("copy-{i}@"))).unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect()
}

pub(super) fn ingest_all(db: &str, config: &Path, files: &[String]) -> Vec<serde_json::Value> {
    let mut args = vec!["ingest", "--config", config.to_str().unwrap(), "--db", db];
    args.extend(files.iter().map(String::as_str));
    let out = abuse_inbox(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One JSON document per message, pretty-printed one after another.
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<serde_json::Value>()
        .map(Result::unwrap)
        .collect()
}

on_both_stores_sync!(the_http_resolver_answers_once_per_window_and_anything_else_falls_through);
fn the_http_resolver_answers_once_per_window_and_anything_else_falls_through(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let config_for = |url: &str| {
        crate::util::test_config(
            dir.path(),
            "",
            &format!("[owners]\nhttp_url = {url:?}\nhttp_timeout_ms = 300\n"),
        )
    };
    // Three reports about one address within the answer's window: one call.
    let (url, seen) = resolver(Resolver::Answers);
    let reports = ingest_all(&db, &config_for(&url), &copies_of_not_ours(dir.path(), 3));
    assert_eq!(reports.len(), 3);
    for r in &reports {
        assert_eq!(r["owners"][0]["customer"], "ipam-7", "{r}");
        assert_eq!(r["owners"][0]["matched"], "http");
        assert_eq!(r["ownership"], "owned");
    }
    let requests = seen.lock().unwrap().clone();
    assert_eq!(
        requests,
        ["GET /owner?address=192.0.2.55&at=2026-11-30T10%3A00%3A00Z HTTP/1.1"],
        "one call for the window"
    );

    // A resolver that does not answer in time, or answers garbage: the
    // imported owners decide, and nothing is lost.
    import(&db, &fixture(), &[]);
    for (n, mode) in [Resolver::Slow, Resolver::Garbled].into_iter().enumerate() {
        let (url, seen) = resolver(mode);
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/moved-block.eml"),
        )
        .unwrap();
        let file = dir.path().join("moved.eml");
        let id = format!("moved-{n}@");
        std::fs::write(&file, text.replace("routing-1@", &id)).unwrap();
        let started = std::time::Instant::now();
        let reports = ingest_all(&db, &config_for(&url), &[file.to_str().unwrap().to_owned()]);
        let customers: Vec<&str> = reports[0]["owners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["customer"].as_str().unwrap_or("-"))
            .collect();
        assert_eq!(customers, ["c-300", "c-200", "c-100"], "{}", reports[0]);
        // After the first failure it rests: one call, not three.
        let calls = seen.lock().unwrap().clone();
        assert_eq!(calls.len(), 1, "{calls:?}");
        if matches!(mode, Resolver::Slow) {
            // Not the server's 3 s: the timeout (generous for a slow machine).
            assert!(started.elapsed() < std::time::Duration::from_millis(2900));
        }
    }
}

on_both_stores_sync!(a_report_whose_events_are_all_too_old_is_told_so);
fn a_report_whose_events_are_all_too_old_is_told_so(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    import(&db, &fixture(), &[]);
    let config = crate::util::test_config(dir.path(), "", "[owners]\nmax_event_age_days = 30\n");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/moved-block.eml"),
    )
    .unwrap();
    // Every event in September: older than 30 days.
    let old = dir.path().join("old.eml");
    std::fs::write(
        &old,
        text.replace("routing-1@", "old-1@")
            .replace("2026-10-31T23:00:00Z", "2026-09-01T10:00:00Z")
            .replace("2026-11-30T10:0", "2026-09-02T10:0"),
    )
    .unwrap();
    // The fixture as it is: one event within 30 days of now.
    let recent = dir.path().join("recent.eml");
    std::fs::write(&recent, &text).unwrap();
    let reports = ingest_all(
        &db,
        &config,
        &[
            old.to_str().unwrap().to_owned(),
            recent.to_str().unwrap().to_owned(),
        ],
    );
    assert_eq!(reports[0]["reply"], "too_old", "{}", reports[0]);
    assert_eq!(reports[0]["ownership"], "owned");
    assert_eq!(reports[1]["reply"], "ack", "{}", reports[1]);
    let replies = json(&abuse_inbox(&[
        "replies", "list", "--db", &db, "--format", "json",
    ]));
    assert!(
        replies
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["report_id"] == reports[0]["id"] && r["kind"] == "too_old"),
        "{replies}"
    );
}

on_both_stores_sync!(resolving_a_customers_case_closes_the_reports_no_other_case_holds);
fn resolving_a_customers_case_closes_the_reports_no_other_case_holds(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    import(&db, &fixture(), &[]);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/not-ours.eml"),
    )
    .unwrap();
    let about_c100 = |n: usize| {
        let path = dir.path().join(format!("c100-{n}.eml"));
        std::fs::write(
            &path,
            text.replace("routing-2@", &format!("c100-{n}@"))
                .replace("192.0.2.55", "203.0.113.20"),
        )
        .unwrap();
        ingest_all(
            &db,
            &crate::util::test_config(dir.path(), "", ""),
            &[path.to_str().unwrap().to_owned()],
        )
        .remove(0)
    };
    let three = ingest(&db, "moved-block.eml"); // c-300, c-200 and c-100
    let only = about_c100(1);
    let case_of = |customer: &str| open_case(&db, customer);
    let resolve = |case: &str| {
        json(&abuse_inbox(&[
            "cases",
            "resolve",
            case,
            "--note",
            "customer cleaned the host",
            "--db",
            &db,
        ]))
    };
    let status = |r: &serde_json::Value| {
        json(&abuse_inbox(&[
            "reports",
            "show",
            &r["id"].to_string(),
            "--db",
            &db,
            "--format",
            "json",
        ]))["status"]
            .clone()
    };
    let c100 = case_of("c-100");
    let done = resolve(&c100);
    assert_eq!(done["case"]["status"], "resolved", "{done}");
    assert_eq!(done["case"]["note"], "customer cleaned the host");
    assert_eq!(
        done["reports_resolved"],
        serde_json::json!([only["id"]]),
        "{done}"
    );
    assert_eq!(done["reports_still_open"], serde_json::json!([three["id"]]));
    assert_eq!(
        (status(&only), status(&three)),
        ("resolved".into(), "open".into())
    );
    // Its reporter hears "concluded" (it was acked).
    let replies = json(&abuse_inbox(&[
        "replies", "list", "--db", &db, "--format", "json",
    ]));
    let concluded: Vec<&serde_json::Value> = replies
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "concluded")
        .map(|r| &r["report_id"])
        .collect();
    assert_eq!(concluded, [&only["id"]], "{replies}");
    // Again: nothing more.
    let again = abuse_inbox(&["cases", "resolve", &c100, "--db", &db]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already resolved"));
    // The report about three customers closes with the last of its cases.
    resolve(&case_of("c-200"));
    assert_eq!(status(&three), "open");
    resolve(&case_of("c-300"));
    assert_eq!(status(&three), "resolved");
    // A new report about c-100 opens a new case.
    about_c100(2);
    assert_ne!(case_of("c-100"), c100);
    let missing = abuse_inbox(&["cases", "resolve", "999999", "--db", &db]);
    assert!(!missing.status.success());
}

//! `reports`, `cases` and `export`: what an operator reads.

use super::{db_arg, db_for};
use crate::util::{abuse_inbox, json, message, Store};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

on_both_stores_sync!(reports_show_list_filters_and_table_output);
fn reports_show_list_filters_and_table_output(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let f = dir.path().join("m.eml");
    std::fs::write(&f, message("show-1", "shown")).unwrap();
    let ingested = json(&abuse_inbox(&["ingest", "--db", &db, f.to_str().unwrap()]));
    let id = ingested["id"].to_string();
    let shown = json(&abuse_inbox(&[
        "reports", "show", &id, "--db", &db, "--format", "json",
    ]));
    assert_eq!(shown, ingested);
    let table = abuse_inbox(&["reports", "show", &id, "--db", &db]);
    let table = String::from_utf8_lossy(&table.stdout);
    for part in [
        "subject: shown",
        "envelope: ingest",
        "evidence (",
        "replies:",
        "history:",
        "Classified as",
    ] {
        assert!(
            table.contains(part),
            "reports show lacks {part:?}:\n{table}"
        );
    }
    let listed = json(&abuse_inbox(&[
        "reports",
        "list",
        "--db",
        &db,
        "--format",
        "json",
        "--since",
        "2000-01-01T00:00:00Z",
    ]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let future = json(&abuse_inbox(&[
        "reports",
        "list",
        "--db",
        &db,
        "--format",
        "json",
        "--since",
        "2999-01-01T00:00:00+02:00",
    ]));
    assert!(future.as_array().unwrap().is_empty());
    let other_type = json(&abuse_inbox(&[
        "reports",
        "list",
        "--db",
        &db,
        "--format",
        "json",
        "--type",
        "copyright",
    ]));
    assert!(other_type.as_array().unwrap().is_empty());
    // The table has what the JSON has that an operator sorts by.
    let table = abuse_inbox(&["reports", "list", "--db", &db]);
    let table = String::from_utf8_lossy(&table.stdout);
    let header = table.lines().next().unwrap_or_default();
    for column in ["STATUS", "REPLY", "CASE", "RSIT", "FEED", "REPORTER"] {
        assert!(header.contains(column), "{column} in {header}");
    }
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|row| row.contains("  open  ")),
        "{table}"
    );
    let bad = abuse_inbox(&["reports", "list", "--db", &db, "--type", "spam"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("web_content"));
    let missing = abuse_inbox(&["reports", "show", "999", "--db", &db]);
    assert_eq!(missing.status.code(), Some(2));
}

on_both_stores_sync!(reports_list_filters_by_network_subtype_reply_reporter_and_pages);
fn reports_list_filters_by_network_subtype_reply_reporter_and_pages(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    let files: Vec<String> = [
        "csv/020-csv-basic-sshd.eml",
        "network/050-iptables-pasted-log.eml",
        "network/054-single-ip-no-logs.eml",
        "csv/022-csv-tab-ipv6.eml",
    ]
    .iter()
    .map(|f| root.join(f).to_str().unwrap().to_owned())
    .collect();
    let mut args = vec!["ingest", "--db", &db];
    args.extend(files.iter().map(String::as_str));
    assert!(abuse_inbox(&args).status.success());
    let ids = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["reports", "list", "--db", &db, "--format", "json"];
        args.extend_from_slice(extra);
        let mut subjects: Vec<String> = json(&abuse_inbox(&args))
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["message_id"].as_str().unwrap().to_owned())
            .collect();
        subjects.sort();
        subjects
    };
    // Offenders only: net-050's 192.0.2.10 is the firewall that was scanned.
    assert_eq!(
        ids(&["--ip", "192.0.2.0/24"]),
        ["csv-020@security.example.org", "net-054@example.net"]
    );
    assert_eq!(ids(&["--ip", "198.51.100.77"]), ["net-050@example.org"]);
    assert_eq!(ids(&["--ip", "2001:db8::/32"]), ["csv-022@example.net"]);
    assert_eq!(
        ids(&["--subtype", "port_scan"]),
        ["csv-022@example.net", "net-050@example.org"]
    );
    assert_eq!(ids(&["--reply", "needs_info"]), ["net-054@example.net"]);
    assert_eq!(
        ids(&["--reporter", "SECURITY.example"]),
        ["csv-020@security.example.org"]
    );
    assert_eq!(
        ids(&["--status", "open", "--type", "network_activity"]).len(),
        4
    );
    assert!(ids(&["--until", "2000-01-01T00:00:00Z"]).is_empty());
    assert_eq!(ids(&["--limit", "2", "--offset", "3"]).len(), 1);
    assert_eq!(
        ids(&["--search", "firewall"]),
        ["csv-022@example.net", "net-050@example.org"]
    );
    assert_eq!(ids(&["--search", "ufw"]), ["net-050@example.org"]);
    assert_eq!(
        ids(&["--search", "attacking SSH servers"]),
        ["csv-020@security.example.org"]
    );
    assert_eq!(
        ids(&["--search", "hacker", "--ip", "192.0.2.199"]),
        ["net-054@example.net"]
    );
    // Query syntax in the words is text, never an error.
    assert!(ids(&["--search", "\"UFW OR -x* NEAR("]).is_empty());
    let bad = abuse_inbox(&["reports", "list", "--db", &db, "--ip", "192.0.2.0/33"]);
    assert_eq!(bad.status.code(), Some(2));

    // The same data through stats.
    let stats = json(&abuse_inbox(&["stats", "--db", &db, "--format", "json"]));
    assert_eq!(
        stats["top_networks"][0],
        serde_json::json!(["192.0.2.0/24", 2]),
        "{stats}"
    );
    assert_eq!(
        stats["by_subtype"]["network_activity/port_scan"], 2,
        "{stats}"
    );
    assert_eq!(
        stats["by_day"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        4
    );
    assert_eq!(stats["top_reporters"].as_array().unwrap().len(), 4);
    assert!(
        stats["top_ips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e[0] == "2001:db8:bad::1"),
        "{stats}"
    );
    assert_eq!(stats["backlog"], 0);
    let table = abuse_inbox(&["stats", "--db", &db]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("192.0.2.0/24"));
}

on_both_stores_sync!(show_raw_prints_the_original_and_export_is_spreadsheet_safe);
fn show_raw_prints_the_original_and_export_is_spreadsheet_safe(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let f = dir.path().join("m.eml");
    let original = b"From: =cmd|' /C calc'!A0 <x@example.net>\r\nSubject: =HYPERLINK(\"http://evil.example\",\"click\")\r\nMessage-ID: <csvinj@example.net>\r\n\r\n192.0.2.5 attacked 198.51.100.1 port 22 at 2026-11-26T10:00:00Z\r\n";
    std::fs::write(&f, original).unwrap();
    let report = json(&abuse_inbox(&["ingest", "--db", &db, f.to_str().unwrap()]));
    let raw = abuse_inbox(&[
        "reports",
        "show",
        &report["id"].to_string(),
        "--raw",
        "--db",
        &db,
    ]);
    assert!(raw.status.success());
    assert_eq!(raw.stdout, original);
    let csv = abuse_inbox(&["export", "--format", "csv", "--db", &db]);
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).unwrap();
    let mut rows = ::csv::Reader::from_reader(text.as_bytes());
    let record = rows.records().next().unwrap().unwrap();
    assert!(record[3].starts_with("'=HYPERLINK"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with('=') || l.contains(",=")),
        "{text}"
    );
    // XARF v4: what our own X-ARF reader takes back in.
    let xarf = abuse_inbox(&["export", "--format", "xarf", "--db", &db]);
    let doc: serde_json::Value =
        serde_json::from_slice(xarf.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(doc["xarf_version"], "4.2.0");
    assert_eq!(
        (doc["category"].as_str(), doc["type"].as_str()),
        (Some("infrastructure"), Some("compromised_server"))
    );
    assert_eq!(doc["sender"]["contact"], "abuse@abuse-inbox.localhost");
    assert!(
        doc["reporter"]["contact"].as_str().unwrap().contains('@'),
        "{doc}"
    );
    assert_eq!(doc["source_identifier"], "192.0.2.5");
    let eml = dir.path().join("xarf.eml");
    std::fs::write(
        &eml,
        format!(
            "From: peer@example.org\r\nSubject: re-import\r\nMessage-ID: <reimport@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport attached\r\n--b\r\nContent-Type: application/json; name=xarf.json\r\n\r\n{doc}\r\n--b--\r\n"
        ),
    )
    .unwrap();
    let reimported = json(&abuse_inbox(&[
        "ingest",
        "--db",
        &db,
        eml.to_str().unwrap(),
    ]));
    assert_eq!(reimported["formats"], serde_json::json!(["xarf"]));
    assert!(
        reimported["ips"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("192.0.2.5")),
        "{reimported}"
    );
    let jsonl = abuse_inbox(&[
        "export",
        "--format",
        "jsonl",
        "--db",
        &db,
        "--since",
        "2000-01-01T00:00:00Z",
    ]);
    let line: serde_json::Value =
        serde_json::from_slice(jsonl.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["message_id"], "csvinj@example.net");
}

#[test]
fn follow_prints_new_reports_as_they_come_even_before_the_database_exists() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let mut follower = Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
        .args([
            "reports", "list", "--follow", "--format", "json", "--db", &db,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    for n in 0..2 {
        let f = dir.path().join(format!("{n}.eml"));
        std::fs::write(
            &f,
            message(&format!("follow-{n}"), &format!("followed {n}")),
        )
        .unwrap();
        assert!(abuse_inbox(&["ingest", "--db", &db, f.to_str().unwrap()])
            .status
            .success());
    }
    let mut subjects = Vec::new();
    while subjects.len() < 2 {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a followed report within 20 s");
        let report: serde_json::Value = serde_json::from_str(&line).unwrap();
        subjects.push(report["subject"].as_str().unwrap().to_owned());
    }
    assert_eq!(subjects, ["followed 0", "followed 1"]);
    follower.kill().unwrap();
    follower.wait().unwrap();
}

on_both_stores_sync!(reports_about_one_network_and_type_become_one_case);
fn reports_about_one_network_and_type_become_one_case(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let write = |name: &str, text: String| {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        f.to_str().unwrap().to_owned()
    };
    let log = |n: u8, ip: &str| {
        format!(
            "From: r{n}@example.net\r\nSubject: ssh {n}\r\nMessage-ID: <case-{n}@example.net>\r\n\r\n2026-11-26T09:00:0{n}Z sshd[1]: Failed password for root from {ip} port 4000 ssh2 on 203.0.113.9 port 22\r\n"
        )
    };
    let files = [
        write("1.eml", log(1, "192.0.2.10")),
        write("2.eml", log(2, "192.0.2.77")), // same /24, same type: same case
        write("3.eml", log(3, "198.51.100.5")), // another network: another case
        write(
            "4.eml",
            "From: r4@example.net\r\nSubject: spam\r\nMessage-ID: <case-4@example.net>\r\n\r\nSpam from 192.0.2.10, see http://spam.example/\r\n".to_owned(),
        ), // same network, another type: another case
    ];
    let mut args = vec!["ingest", "--db", &db];
    args.extend(files.iter().map(String::as_str));
    let out = abuse_inbox(&args);
    assert!(out.status.success());
    let cases_of: Vec<serde_json::Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["case_id"].clone())
        .collect();
    assert_eq!(cases_of[0], cases_of[1]);
    assert_ne!(cases_of[0], cases_of[2]);
    assert_ne!(cases_of[0], cases_of[3]);
    let cases = json(&abuse_inbox(&[
        "cases", "list", "--db", &db, "--format", "json",
    ]));
    assert_eq!(cases.as_array().unwrap().len(), 3);
    let first = cases_of[0].as_i64().unwrap().to_string();
    let shown = json(&abuse_inbox(&[
        "cases", "show", &first, "--db", &db, "--format", "json",
    ]));
    assert_eq!(shown["case"]["network"], "192.0.2.0/24");
    assert_eq!(shown["case"]["reports"], 2);
    assert_eq!(shown["reports"].as_array().unwrap().len(), 2);
}

on_both_stores_sync!(reports_explain_names_each_addresss_role_and_what_decided_it);
fn reports_explain_names_each_addresss_role_and_what_decided_it(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    for fixture in [
        "network/105-traceroute-included.eml",
        "freetext/084-es-fuerza-bruta.eml",
    ] {
        let file = root.join(fixture);
        assert!(
            abuse_inbox(&["ingest", "--db", &db, file.to_str().unwrap()])
                .status
                .success()
        );
    }
    let explained = |id: &str| {
        json(&abuse_inbox(&[
            "reports", "explain", id, "--db", &db, "--format", "json",
        ]))
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["address"].as_str().unwrap().to_owned(),
                e["role"].as_str().unwrap().to_owned(),
                e["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect::<Vec<_>>()
    };
    let traceroute = explained("1");
    let role = |list: &[(String, String, String)], address: &str| {
        list.iter()
            .find(|(a, _, _)| a == address)
            .map(|(_, role, why)| (role.clone(), why.clone()))
            .unwrap()
    };
    assert_eq!(role(&traceroute, "192.0.2.201").0, "source");
    assert_eq!(role(&traceroute, "198.51.100.1").0, "hop");
    assert!(role(&traceroute, "10.0.0.1")
        .1
        .contains("not a public address"));
    let spanish = explained("2");
    assert_eq!(
        role(&spanish, "203.0.113.33"),
        (
            "source".to_owned(),
            "the label \"desde\" before it".to_owned()
        )
    );
    let (target, why) = role(&spanish, "192.0.2.71");
    assert_eq!(target, "target");
    assert!(why.contains("line above"), "{why}");
    let table = abuse_inbox(&["reports", "explain", "2", "--db", &db]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("ROLE"));
    assert_eq!(
        abuse_inbox(&["reports", "explain", "99", "--db", &db])
            .status
            .code(),
        Some(2)
    );
}

/// A table that does not show everything says so on stderr, with the
/// option that shows the rest; a whole list says nothing.
#[test]
fn a_cut_list_says_so_and_how_to_see_more() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_arg(&dir);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    for f in [
        "csv/020-csv-basic-sshd.eml",
        "network/051-fail2ban-report.eml",
        "network/054-single-ip-no-logs.eml",
    ] {
        let out = abuse_inbox(&["ingest", "--db", &db, root.join(f).to_str().unwrap()]);
        assert!(out.status.success());
    }
    let cut = abuse_inbox(&["reports", "list", "--limit", "2", "--db", &db]);
    assert!(cut.status.success());
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(
        stderr.contains("2 shown, more match: --offset 2"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&cut.stdout).lines().count(), 3);
    let whole = abuse_inbox(&["reports", "list", "--limit", "3", "--db", &db]);
    assert!(
        whole.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let json = abuse_inbox(&[
        "reports", "list", "--limit", "2", "--db", &db, "--format", "json",
    ]);
    assert!(json.stderr.is_empty(), "stderr in JSON mode");
}

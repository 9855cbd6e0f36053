//! `owners import` and `owners lookup`, on both stores, with the fixture
//! `fixtures/owners/customers.csv`.

use super::db_for;
use crate::util::{abuse_inbox, json, Store};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/owners/customers.csv")
}

fn import(db: &str, file: &Path, more: &[&str]) -> serde_json::Value {
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

//! Operator queries on a large desk: `cargo bench --bench operator`.
//!
//! Builds a database of 1,000,000 synthetic reports (each naming two
//! addresses, one in 1% of reports inside 192.0.2.0/24; a subject and a short
//! body, one in 100 mentioning "cryptojacking"), then times, through the
//! same store functions the CLI calls:
//! `reports list --ip 192.0.2.0/24 --limit 50`, `reports list --search
//! cryptojacking --limit 50`, and `stats`. `--reports N` changes the size.

use abuse_inbox::store::{Db, ListFilter, Role};
use rusqlite::params;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: i64 = args
        .iter()
        .position(|a| a == "--reports")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    // `--keep PATH` leaves the database there, to look at its query plans.
    let path = match args
        .iter()
        .position(|a| a == "--keep")
        .and_then(|i| args.get(i + 1))
    {
        Some(keep) => std::path::PathBuf::from(keep),
        None => dir.path().join("desk.db"),
    };
    drop(Db::open(&path, Role::Cli).unwrap()); // the schema
    let started = Instant::now();
    build(&path, n);
    let built = started.elapsed().as_secs_f64();
    let db = Db::open_existing(&path).unwrap();

    let time = |what: &str, f: &dyn Fn() -> usize| {
        // The first run warms the page cache, as on a live desk; report the median of 5.
        let mut runs: Vec<f64> = (0..6)
            .map(|_| {
                let t = Instant::now();
                let rows = f();
                assert!(rows > 0, "{what} found nothing");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .skip(1)
            .collect();
        runs.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{{\"bench\":\"{what}\",\"reports\":{n},\"median_ms\":{:.1},\"max_ms\":{:.1}}}",
            runs[2], runs[4]
        );
    };
    let (first, last) = ("192.0.2.0".parse().unwrap(), "192.0.2.255".parse().unwrap());
    time("list_ip_cidr_limit_50", &|| {
        db.list_reports(&ListFilter {
            ip_range: Some((first, last)),
            limit: 50,
            ..ListFilter::default()
        })
        .unwrap()
        .len()
    });
    time("list_search_limit_50", &|| {
        db.list_reports(&ListFilter {
            search: Some("cryptojacking".into()),
            limit: 50,
            ..ListFilter::default()
        })
        .unwrap()
        .len()
    });
    time("stats", &|| db.stats().unwrap().reports as usize);
    println!("{{\"bench\":\"build\",\"reports\":{n},\"seconds\":{built:.1}}}");
}

/// Inserts `n` reports straight through SQL (the pipeline would take hours).
fn build(path: &std::path::Path, n: i64) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let types = [
        "network_activity",
        "email_abuse",
        "web_content",
        "copyright",
        "unknown",
    ];
    let subtypes = ["brute_force", "port_scan", "dos", "intrusion", "other"];
    let replies = ["ack", "needs_info", "suppressed"];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(50_000) {
        let tx = conn.transaction().unwrap();
        {
            let mut raw = tx
                .prepare("INSERT INTO raw_messages (id, received_at, origin, rcpt_to, dedup_key, size_bytes, bytes, status)
                          VALUES (?1, ?2, 'smtp', '[]', ?3, 0, x'', 'processed')")
                .unwrap();
            let mut report = tx
                .prepare("INSERT INTO reports (id, raw_id, message_id, received_at, reporter, subject, abuse_type, subtype,
                              ips, urls, evidence_rows, missing, reply, parse_warnings, processed_at)
                          VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '[]', 2, '[]', ?9, '[]', ?3)")
                .unwrap();
            let mut ip = tx
                .prepare("INSERT OR IGNORE INTO report_ips (ip_key, report_id, net_key) VALUES (?1, ?2, ?3)")
                .unwrap();
            let mut text = tx
                .prepare("INSERT INTO report_text (rowid, subject, body) VALUES (?1, ?2, ?3)")
                .unwrap();
            for &id in chunk {
                let r = rand();
                let day = id * 30 / n.max(1);
                let at = format!(
                    "2026-10-{:02}T{:02}:{:02}:00.000000Z",
                    1 + day % 30,
                    (id / 60) % 24,
                    id % 60
                );
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&id.to_le_bytes());
                raw.execute(params![id + 1, at, &key[..]]).unwrap();
                let source: std::net::Ipv4Addr = if r % 100 == 0 {
                    [192, 0, 2, (r >> 8) as u8].into()
                } else {
                    [
                        ((r >> 8) % 223 + 1) as u8,
                        (r >> 16) as u8,
                        (r >> 24) as u8,
                        (r >> 32) as u8,
                    ]
                    .into()
                };
                let target: std::net::Ipv4Addr = [198, 51, 100, (r >> 40) as u8].into();
                let t = types[(r % 5) as usize];
                let subject = format!("Abuse report {} from {source}", id + 1);
                let body = if (r >> 12) % 100 == 0 {
                    "our monitoring saw cryptojacking traffic from your customer"
                } else {
                    "failed password for root from the address above, see the log lines"
                };
                report
                    .execute(params![
                        id + 1,
                        format!("bench-{id}@example.net"),
                        at,
                        format!("soc{}@example{}.net", r % 500, r % 7),
                        subject,
                        t,
                        (t == "network_activity").then(|| subtypes[((r >> 3) % 5) as usize]),
                        format!("[\"{source}\",\"{target}\"]"),
                        replies[((r >> 5) % 3) as usize],
                    ])
                    .unwrap();
                for addr in [source, target] {
                    let key = addr.to_ipv6_mapped().octets();
                    ip.execute(params![&key[..], id + 1, &key[..15]]).unwrap();
                }
                text.execute(params![id + 1, subject, body]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

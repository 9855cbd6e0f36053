//! Operator queries on a large desk: `cargo bench --bench operator`.
//!
//! Builds a database of 1,000,000 synthetic reports (each naming two
//! addresses, one in 1% of reports inside 192.0.2.0/24; a subject and a short
//! body, one in 100 mentioning "cryptojacking"), then times, through the
//! same store functions the CLI calls:
//! `reports list --ip 192.0.2.0/24 --limit 50`, `reports list --search
//! cryptojacking --limit 50`, and `stats`. `--reports N` changes the size.

use abuse_inbox::store::{Db, ListFilter, Role};
use std::time::Instant;

mod desk;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = desk::reports_arg(&args);
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
    // Spread over October 2026, as this bench always was.
    let end = chrono::DateTime::parse_from_rfc3339("2026-10-31T00:00:00Z")
        .unwrap()
        .to_utc();
    desk::build(&path, n, end);
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

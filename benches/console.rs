//! The console on a large desk: `cargo bench --bench console`.
//!
//! Builds a SQLite store of 1,000,000 synthetic reports received over the
//! last 30 days (`benches/desk`; `--reports N` changes the size), starts
//! the console on 127.0.0.1 against it, logs in, and times requests as a
//! browser makes them (one connection each, on loopback): the dashboard,
//! the first page of the list unfiltered and by type, page 1,000 of the
//! list (by keyset), by CIDR, by words, and a report page. One JSON line per
//! case with the median and p95 of 20 requests after one to warm the cache;
//! and the process's anonymous memory before the console started and after.
//! `--pg postgres://USER@HOST:PORT/postgres` copies the same desk into a new
//! database of that server (as `migrate-store` does) and measures again;
//! `--keep` leaves that database behind (its name is printed) to look into,
//! and `--pg-kept URL` measures such a database again (migrating it first
//! when this build's schema is newer) without building anything.

use abuse_inbox::config::Config;
use abuse_inbox::model::operator::OperatorRole;
use abuse_inbox::store::{Db, Role};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

mod desk;

/// One request; its status and body.
fn get(addr: SocketAddr, path: &str, cookie: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// This process's anonymous resident memory (heap and stacks), in MB: the
/// store's file pages mapped by SQLite are the page cache's, not ours.
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = desk::reports_arg(&args);
    if let Some(url) = args
        .iter()
        .position(|a| a == "--pg-kept")
        .and_then(|i| args.get(i + 1))
    {
        measure(url, "postgres", n);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    drop(Db::open(&path, Role::Cli).unwrap());
    let started = Instant::now();
    desk::build(&path, n, chrono::Utc::now());
    println!(
        "{{\"bench\":\"build\",\"reports\":{n},\"seconds\":{:.1}}}",
        started.elapsed().as_secs_f64()
    );
    measure(&path.to_string_lossy(), "sqlite", n);
    // `--pg URL`: the same desk copied into a fresh database of that server
    // (as `migrate-store` copies), and the same pages over it.
    if let Some(url) = args
        .iter()
        .position(|a| a == "--pg")
        .and_then(|i| args.get(i + 1))
    {
        let name = format!("console_bench_{}", std::process::id());
        let mut admin = postgres::Client::connect(url, postgres::NoTls).expect("the --pg server");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let target = match url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("--pg wants a URL with a database: postgres://user@host:port/postgres"),
        };
        let started = Instant::now();
        {
            let source = Db::open_existing(&path).unwrap();
            let mode = abuse_inbox::store::Mode::ReadWrite {
                role: Role::Cli,
                create: true,
            };
            let location = abuse_inbox::store::Location::Postgres(target.clone());
            let mut pg = abuse_inbox::store::open(&location, mode).unwrap();
            source.copy_into(&mut pg, |_, _| {}).unwrap();
        }
        println!(
            "{{\"bench\":\"copy_to_postgres\",\"reports\":{n},\"seconds\":{:.1}}}",
            started.elapsed().as_secs_f64()
        );
        measure(&target, "postgres", n);
        if args.iter().any(|a| a == "--keep") {
            println!("{{\"bench\":\"kept\",\"database\":\"{target}\"}}");
        } else {
            admin
                .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .unwrap();
        }
    }
}

/// The console on the store at `store`, its pages timed; `label` names the
/// store in each line.
fn measure(store: &str, label: &str, n: i64) {
    {
        let location = abuse_inbox::store::Location::parse(std::path::Path::new(store));
        let mode = abuse_inbox::store::Mode::ReadWrite {
            role: Role::Cli,
            create: false,
        };
        let mut db = abuse_inbox::store::open(&location, mode).unwrap();
        let hash = abuse_inbox::web::session::hash_password("bench-password").unwrap();
        db.add_operator(
            "bench",
            OperatorRole::Viewer,
            &hash,
            &abuse_inbox::now_rfc3339(),
        )
        .unwrap();
    }
    let mut config = Config::default();
    config.store.path = store.into();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rss_before = rss_mb();
    let desk = abuse_inbox::web::Desk::for_config(&config).unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    runtime.spawn(abuse_inbox::web::serve(
        listener,
        std::sync::Arc::new(desk),
        stop.clone(),
    ));

    // Log in.
    let mut stream = TcpStream::connect(addr).unwrap();
    let body = "name=bench&password=bench-password";
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("logged in")
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let deep = (n - 50 * 1000).max(1);
    let cases = [
        ("dashboard", "/".to_owned()),
        ("list_page_1", "/reports".to_owned()),
        (
            "list_page_1_by_type",
            "/reports?type=network_activity".to_owned(),
        ),
        ("list_page_1000", format!("/reports?before={deep}")),
        ("list_cidr", "/reports?ip=192.0.2.0%2F24".to_owned()),
        ("list_words", "/reports?q=cryptojacking".to_owned()),
        ("report_page", format!("/reports/{}", n / 2)),
    ];
    for (name, path) in &cases {
        let mut times: Vec<f64> = (0..21)
            .map(|_| {
                let t = Instant::now();
                let (status, page) = get(addr, path, &cookie);
                assert_eq!(status, 200, "{name}: {page}");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .skip(1)
            .collect();
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{{\"bench\":\"console_{name}\",\"store\":\"{label}\",\"reports\":{n},\"median_ms\":{:.1},\"p95_ms\":{:.1}}}",
            times[10], times[18]
        );
    }
    println!(
        "{{\"bench\":\"console_rss_anon\",\"store\":\"{label}\",\"before_mb\":{rss_before:.1},\"after_mb\":{:.1}}}",
        rss_mb()
    );
    stop.cancel();
}

//! Pipeline benchmarks (not timed tests): `cargo bench --bench pipeline`.
//!
//! - `csv_10k`: one message with a 10,000-row CSV (the evidence budget per message) attachment, committed,
//!   then parsed, extracted, classified and stored (evidence rows included).
//! - `reprocess_10k`: 10,000 stored messages (the fixture corpus, each copy
//!   with its own Message-ID) processed again in place, as `reprocess --all` does:
//!   once with no owners, once routed by 200,000 assignments.
//!
//! - `store_6k`: the single writer's time per 6 KB report of the SMTP benchmark
//!   (50 CSV rows), stored in the daemon's batches.
//!
//! Each prints one JSON line. Pass `--quick` for a smoke run (CI does not run benches).

#[path = "common/owners_data.rs"]
mod owners_data;

use abuse_inbox::config::Config;
use abuse_inbox::model::{Envelope, Incoming, Origin, RawId, Sender};
use abuse_inbox::owners::route::LocalOnly;
use abuse_inbox::owners::Index;
use abuse_inbox::pipeline::Pipeline;
use abuse_inbox::store::{Db, Role};
use std::path::Path;
use std::time::Instant;

fn incoming(bytes: Vec<u8>) -> Incoming {
    Incoming {
        envelope: Envelope {
            origin: Origin::Ingest,
            peer_ip: None,
            helo: None,
            mail_from: Sender::Address("reporter@example.net".into()),
            rcpt_to: vec!["abuse@example.com".into()],
            dsn: None,
        },
        received_at: abuse_inbox::now_rfc3339(),
        bytes,
    }
}

fn csv_message(rows: usize) -> Vec<u8> {
    let mut csv = String::with_capacity(rows * 120);
    for i in 0..rows {
        let ip = format!("198.51.100.{}", i % 250 + 1);
        csv.push_str(&format!(
            "{ip},2026-11-25T{:02}:{:02}:{:02}Z,sshd[{}]: Failed password for root from {ip} port {} ssh2 on 203.0.113.9 port 22\r\n",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60,
            1000 + i % 9000,
            20000 + i % 40000
        ));
    }
    format!(
        "From: soc@security.example.org\r\nTo: abuse@example.com\r\nSubject: brute force, {rows} rows\r\nMessage-ID: <bench-csv-{rows}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nRows attached.\r\n--b\r\nContent-Type: text/csv; name=\"rows.csv\"\r\n\r\n{csv}--b--\r\n"
    )
    .into_bytes()
}

/// Commits `count` copies of `base(i)`, each with a header and a body line
/// of its own (so each has its own dedup key).
fn commit_copies<'a>(db: &mut Db, count: usize, base: impl Fn(usize) -> &'a Vec<u8>) {
    let messages: Vec<Incoming> = (0..count)
        .map(|i| {
            let mut bytes = format!("X-Bench-Copy: {i}\r\n").into_bytes();
            bytes.extend_from_slice(base(i));
            bytes.extend_from_slice(format!("\r\ncopy {i}\r\n").as_bytes());
            incoming(bytes)
        })
        .collect();
    for chunk in messages.chunks(500) {
        let refs: Vec<&Incoming> = chunk.iter().collect();
        db.commit_raws(&refs).unwrap();
    }
}

fn fixture_corpus() -> Vec<Vec<u8>> {
    fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "eml") {
                out.push(std::fs::read(p).unwrap());
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml"),
        &mut out,
    );
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = |name: &str| {
        !args.iter().any(|a| a.starts_with("--only"))
            || args.iter().any(|a| a == &format!("--only={name}"))
    };
    let dir = tempfile::tempdir().unwrap();
    // The pipeline's own cost: the sender checks wait on DNS, which a
    // benchmark machine has no fair copy of (see README, Reply safety).
    let mut config = Config::default();
    config.auth.enabled = false;
    let pipeline = Pipeline::new(&config).unwrap();

    if only("csv") {
        csv_10k(quick, &pipeline, dir.path());
    }
    if only("reprocess") {
        reprocess_10k(quick, &pipeline, dir.path());
    }
    if only("stages") {
        stages(quick, &pipeline);
    }
    if only("store") {
        store_6k(quick, &pipeline, dir.path());
    }
}

/// The single writer's cost per report: `benches/data/load-6k.eml` (50 CSV
/// rows, about 50 addresses), processed in this process first, then stored
/// in the daemon's batches (512 reports a transaction) on a connection set
/// up as the daemon's writer. Prints the writer's microseconds per report.
fn store_6k(quick: bool, pipeline: &Pipeline, dir: &Path) {
    let count = if quick { 1_000 } else { 10_000 };
    let base =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data/load-6k.eml"))
            .unwrap();
    let mut db = Db::open(&dir.join("store.db"), Role::Intake).unwrap();
    commit_copies(&mut db, count, |_| &base);
    let raws = db.raws_after(RawId(0), None, count).unwrap();
    let mut processor = abuse_inbox::pipeline::InProcess;
    let outcomes: Vec<_> = raws
        .iter()
        .map(|raw| pipeline.outcome(&mut processor, raw).unwrap())
        .collect();
    let processed_at = abuse_inbox::now_rfc3339();
    let started = Instant::now();
    for chunk in outcomes.chunks(512) {
        db.save_outcomes(chunk, &processed_at).unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"bench\":\"store_6k\",\"reports\":{count},\"seconds\":{seconds:.3},\"micros_per_report\":{:.0},\"reports_per_second\":{:.0}}}",
        seconds * 1e6 / count as f64,
        count as f64 / seconds
    );
    if let Ok(keep) = std::env::var("BENCH_KEEP_DB") {
        drop(db);
        std::fs::copy(dir.join("store.db"), keep).unwrap();
    }
}

/// Time per stage for the load generator's 6 KB report (`benches/data/load-6k.eml`,
/// written by `../shared/bench/smtp_load.py`'s message builder): what the worker
/// spends on each message the SMTP benchmark sends.
fn stages(quick: bool, pipeline: &Pipeline) {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data/load-6k.eml"))
            .unwrap();
    let rounds = if quick { 200 } else { 5_000 };
    let rules = abuse_inbox::classify::Rules::builtin();
    let (mut parse, mut extract, mut classify) = (0.0, 0.0, 0.0);
    for _ in 0..rounds {
        let t = Instant::now();
        let parsed = abuse_inbox::parse::parse(&bytes);
        parse += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let ev = abuse_inbox::evidence::extract(&parsed, chrono::Utc::now());
        extract += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let c = abuse_inbox::classify::classify(&ev, parsed.subject.as_deref(), &rules, None);
        classify += t.elapsed().as_secs_f64();
        assert_eq!(c.abuse_type, abuse_inbox::model::AbuseType::NetworkActivity);
    }
    let us = |s: f64| s * 1e6 / rounds as f64;
    let _ = pipeline;
    println!(
        "{{\"bench\":\"stages_6k\",\"bytes\":{},\"parse_us\":{:.0},\"extract_us\":{:.0},\"classify_us\":{:.0}}}",
        bytes.len(),
        us(parse),
        us(extract),
        us(classify)
    );
}

/// The worker child, as the daemon runs it.
fn worker() -> abuse_inbox::daemon::isolate::Isolated {
    abuse_inbox::daemon::isolate::Isolated::with_binary(env!("CARGO_BIN_EXE_abuse-inbox").into())
}

fn csv_10k(quick: bool, pipeline: &Pipeline, dir: &Path) {
    let rows = if quick { 5_000 } else { 10_000 };
    let path = dir.join("csv.db");
    let mut db = Db::open(&path, Role::Cli).unwrap();
    let msg = csv_message(rows);
    let size = msg.len();
    let started = Instant::now();
    let committed = db.commit_raws(&[&incoming(msg)]).unwrap()[0];
    let raw = db.raw(committed.raw_id).unwrap().unwrap();
    let stored = pipeline
        .process_and_store(
            &mut db,
            &mut worker(),
            &Index::default(),
            &mut LocalOnly,
            std::slice::from_ref(&raw),
        )
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let report = db.report(stored[0].report().unwrap().id).unwrap().unwrap();
    assert_eq!(report.evidence_rows as usize, rows);
    println!(
        "{{\"bench\":\"csv_{rows}\",\"message_bytes\":{size},\"evidence_rows\":{},\"seconds\":{seconds:.3}}}",
        report.evidence_rows
    );
}

/// Reprocessing, as `reprocess --all` does it: once with no owners, once
/// routed by 200,000 assignments (`common/owners_data.rs`); the second
/// line's `routing` says which.
fn reprocess_10k(quick: bool, pipeline: &Pipeline, dir: &Path) {
    reprocess_with(quick, pipeline, dir, &Index::default(), "none");
    let owners = Index::new(owners_data::assignments(1, &mut owners_data::Lcg(42)));
    reprocess_with(quick, pipeline, dir, &owners, "200k");
}

fn reprocess_with(quick: bool, pipeline: &Pipeline, dir: &Path, owners: &Index, label: &str) {
    let count = if quick { 500 } else { 10_000 };
    let corpus = fixture_corpus();
    let path = dir.join(format!("reprocess-{label}.db"));
    let mut db = Db::open(&path, Role::Cli).unwrap();
    commit_copies(&mut db, count, |i| &corpus[i % corpus.len()]);
    let mut after = RawId(0);
    let started = Instant::now();
    let mut done = 0;
    let mut worker = worker();
    loop {
        let batch = db.raws_after(after, None, 256).unwrap();
        let Some(last) = batch.last() else { break };
        after = last.id;
        done += pipeline
            .process_and_store(&mut db, &mut worker, owners, &mut LocalOnly, &batch)
            .unwrap()
            .len();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"bench\":\"reprocess_{count}\",\"routing\":\"{label}\",\"messages\":{done},\"seconds\":{seconds:.3},\"messages_per_second\":{:.0}}}",
        done as f64 / seconds
    );
}

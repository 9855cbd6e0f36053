//! The fixture corpus: every `fixtures/eml/**/NNN-what.eml` runs through the
//! whole pipeline (parse → evidence → classify → reply decision), as written
//! and with CRLF line ends, and must match `NNN-what.json` beside it.
//!
//! On a mismatch the actual output is written to `NNN-what.actual.json` and
//! the test fails naming both files. `UPDATE_GOLDEN=1 cargo test golden`
//! rewrites the golden files; review the diff before committing.

use abuse_inbox::config::Config;
use abuse_inbox::model::{Envelope, Origin, RawId, RawMessage};
use abuse_inbox::parse::rawmail;
use abuse_inbox::pipeline::Pipeline;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Evidence rows written into a golden file (the count covers all of them).
const GOLDEN_ROWS: usize = 12;

/// Every `.eml` file under `dir`, recursively.
pub fn fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            fixtures(&path, out);
        } else if path.extension().is_some_and(|e| e == "eml") {
            out.push(path);
        }
    }
}

/// The corpus tests what the reports say, not who sent them: the reply
/// decision is made as if every reporter were authenticated (the sender
/// checks have tests of their own, in `safety.rs`), and decided at once.
fn corpus_config() -> Config {
    let mut config = Config::default();
    config.reply.require_auth = false;
    config.auth.enabled = false;
    config
}

fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 20);
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

/// The report as the golden files hold it: everything but ids and times.
fn report(pipeline: &Pipeline, bytes: &[u8]) -> Value {
    let raw = RawMessage {
        claim: None,
        id: RawId(1),
        envelope: Envelope {
            origin: Origin::Ingest,
            peer_ip: None,
            helo: None,
            mail_from: rawmail::return_path(bytes),
            rcpt_to: vec!["abuse@example.com".into()],
            dsn: None,
        },
        received_at: "2026-11-26T12:00:00.000000Z".into(),
        bytes: bytes.to_vec(),
        auth: None,
    };
    let d = pipeline.process(&raw);
    json!({
        "message_id": d.message_id,
        "reporter": d.reporter,
        "subject": d.subject,
        "abuse_type": d.abuse_type,
        "subtype": d.subtype,
        "rsit": d.rsit,
        "feed": d.feed,
        "ips": d.ips,
        "urls": d.urls,
        "evidence_rows": d.evidence_rows,
        "missing": d.missing,
        "reply": d.reply,
        "reply_reason": d.reply_reason,
        "formats": d.formats,
        "parse_warnings": d.parse_warnings,
        "reasons": d.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "evidence": d.evidence.iter().take(GOLDEN_ROWS).collect::<Vec<_>>(),
        "language": d.language,
    })
}

#[test]
fn every_fixture_matches_its_golden_file_with_lf_and_crlf() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    let mut files = Vec::new();
    fixtures(&root, &mut files);
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus is missing: {} fixtures under {}",
        files.len(),
        root.display()
    );
    let pipeline = Pipeline::new(&corpus_config()).unwrap();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let actual = report(&pipeline, &bytes);
        let golden = file.with_extension("json");
        let actual_path = file.with_extension("actual.json");
        let as_crlf = report(&pipeline, &crlf(&bytes));
        if as_crlf != actual {
            std::fs::write(
                &actual_path,
                serde_json::to_string_pretty(&as_crlf).unwrap() + "\n",
            )
            .unwrap();
            failures.push(format!(
                "{}: CRLF gives another report, see {}",
                file.display(),
                actual_path.display()
            ));
            continue;
        }
        if update {
            std::fs::write(
                &golden,
                serde_json::to_string_pretty(&actual).unwrap() + "\n",
            )
            .unwrap();
            continue;
        }
        let expected: Value = match std::fs::read_to_string(&golden) {
            Ok(text) => {
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", golden.display()))
            }
            Err(_) => Value::Null,
        };
        if expected != actual {
            std::fs::write(
                &actual_path,
                serde_json::to_string_pretty(&actual).unwrap() + "\n",
            )
            .unwrap();
            failures.push(format!(
                "{} differs from {}",
                actual_path.display(),
                golden.display()
            ));
        } else {
            let _ = std::fs::remove_file(&actual_path);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// A small deterministic generator (xorshift64*): the same mutations every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !out.is_empty() => {
                let at = rng.below(out.len());
                out[at] = rng.next() as u8;
            }
            1 => out.truncate(rng.below(out.len() + 1)),
            2 => {
                let at = rng.below(out.len() + 1);
                let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                out.splice(at..at, junk);
            }
            3 if !out.is_empty() => {
                let from = rng.below(out.len());
                let to = (from + rng.below(400)).min(out.len());
                let chunk = out[from..to].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, chunk);
            }
            4 => {
                // Structure-aware: break MIME and CSV syntax where it hurts.
                let needles: [&[u8]; 6] = [
                    b"--",
                    b"boundary=",
                    b"\n\n",
                    b",",
                    b"Content-Transfer-Encoding: base64",
                    b"<",
                ];
                let needle = needles[rng.below(needles.len())];
                let at = rng.below(out.len() + 1);
                out.splice(at..at, needle.iter().copied());
            }
            _ => out.reverse(),
        }
    }
    out
}

/// The whole parse path on hostile input: mutated fixtures and raw noise go
/// through parse → evidence → classify → reply decision without a panic.
#[test]
fn mutated_fixtures_and_noise_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml");
    let mut files = Vec::new();
    fixtures(&root, &mut files);
    files.sort();
    assert!(!files.is_empty());
    let pipeline = Pipeline::new(&corpus_config()).unwrap();
    // `FUZZ_ROUNDS=2000 cargo test --release mutated` for a long local run.
    let rounds: usize = std::env::var("FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(12);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0042);
    let mut rng = Rng(seed);
    let mut runs = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for _ in 0..rounds {
            let input = mutate(&mut rng, &bytes);
            let _ = report(&pipeline, &input);
            runs += 1;
        }
    }
    for _ in 0..200 {
        let noise: Vec<u8> = (0..rng.below(4096)).map(|_| rng.next() as u8).collect();
        let _ = report(&pipeline, &noise);
        runs += 1;
    }
    assert!(runs > 800);
}

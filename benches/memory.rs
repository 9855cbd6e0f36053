//! Where the worker's memory goes: `cargo bench --bench memory`.
//!
//! Counts the live heap (every allocation not yet freed) of what a worker
//! child holds: the compiled pipeline (rules, feeds, the regexes of the
//! stages), then after its first message, then after every fixture once
//! (the lazily built regex caches and statics reach their working size).
//! Prints one JSON line, in KiB.

use abuse_inbox::config::Config;
use abuse_inbox::model::{Envelope, Origin, RawId, RawMessage, Sender};
use abuse_inbox::pipeline::Pipeline;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only
// the sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn kib(bytes: usize) -> usize {
    bytes / 1024
}

fn raw(id: i64, bytes: Vec<u8>) -> RawMessage {
    RawMessage {
        claim: None,
        id: RawId(id),
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
        auth: None,
    }
}

fn fixtures(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("fixtures/eml") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            fixtures(&path, out);
        } else if path.extension().is_some_and(|e| e == "eml") {
            out.push(path);
        }
    }
}

fn main() {
    let start = LIVE.load(Ordering::Relaxed);
    let config = Config::default();
    let pipeline = Pipeline::new(&config).expect("the default configuration compiles");
    let compiled = LIVE.load(Ordering::Relaxed);
    let mut files = Vec::new();
    fixtures(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml"),
        &mut files,
    );
    files.sort();
    let first = std::fs::read(&files[0]).expect("a fixture");
    let _ = pipeline.process(&raw(1, first));
    let after_first = LIVE.load(Ordering::Relaxed);
    for (i, file) in files.iter().enumerate() {
        let _ = pipeline.process(&raw(i as i64 + 2, std::fs::read(file).expect("a fixture")));
    }
    let after_all = LIVE.load(Ordering::Relaxed);
    println!(
        "{{\"bench\":\"worker_memory\",\"unit\":\"KiB\",\"pipeline_compiled\":{},\"after_first_message\":{},\"after_every_fixture\":{},\"fixtures\":{},\"peak\":{}}}",
        kib(compiled - start),
        kib(after_first - start),
        kib(after_all - start),
        files.len(),
        kib(PEAK.load(Ordering::Relaxed) - start),
    );
}

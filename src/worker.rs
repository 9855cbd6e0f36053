//! The processing worker: turns committed raw messages into reports.
//!
//! In: a doorbell rung after each commit, and the `received` rows in the
//! database (including those left by a crash, found at start-up and by a
//! periodic sweep). Out: reports, via `pipeline::process_and_store`. Runs on
//! its own thread with its own connection, so SQLite never blocks the SMTP side;
//! the parsing itself happens in a supervised child process
//! ([`crate::isolate`]), so no message can take this thread or intake down.
//! A batch is bounded by `worker.max_batch_bytes` of raw messages.

use crate::isolate::Isolated;
use crate::runtime::SharedRuntime;
use crate::store::{Db, WorkerSink};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{debug, error};

/// Raw messages read per batch, at most (fewer when they are large).
const BATCH: usize = 64;
/// How often the worker looks for work nobody rang for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// How often the worker checkpoints while there is work.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);
/// Pause after a storage error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Wakes the worker; cheap to clone, never blocks.
#[derive(Clone)]
pub struct WorkSignal {
    tx: SyncSender<()>,
}

impl WorkSignal {
    /// Says there is new work. If a wake-up is already pending this is a no-op.
    pub fn notify(&self) {
        let _ = self.tx.try_send(());
    }
}

/// The running worker thread.
pub struct Worker {
    signal: WorkSignal,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Worker {
    /// Starts the worker on `db`; it first processes whatever is pending.
    ///
    /// # Errors
    /// The OS refuses to start a thread.
    /// Reads with `db`, stores through `sink` (the single writer), and rings
    /// `replies_queued` after each batch so the reply sender looks at once.
    pub fn start(
        db: Db,
        sink: WorkerSink,
        runtime: SharedRuntime,
        replies_queued: Arc<tokio::sync::Notify>,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || run(db, sink, &runtime, &replies_queued, rx, &stop))?
        };
        Ok(Worker {
            signal: WorkSignal { tx },
            stop,
            handle,
        })
    }

    pub fn signal(&self) -> WorkSignal {
        self.signal.clone()
    }

    /// Finishes the batch in hand and stops; what is left is done at next start.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.signal.notify();
        if self.handle.join().is_err() {
            error!("pipeline worker panicked");
        }
    }
}

/// Nice value of the worker thread: under load, SMTP replies come first and
/// the backlog is worked off in the gaps (DESIGN: p99 DATA→250).
const NICENESS: libc::c_int = 10;

fn lower_priority() {
    // SAFETY: setpriority with PRIO_PROCESS and tid 0 only changes the nice
    // value of the calling thread (Linux keeps it per thread); no memory is touched.
    #[cfg(target_os = "linux")]
    unsafe {
        let _ = libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS);
    }
}

fn run(
    mut db: Db,
    mut sink: WorkerSink,
    runtime: &SharedRuntime,
    replies_queued: &tokio::sync::Notify,
    rx: Receiver<()>,
    stop: &AtomicBool,
) {
    lower_priority();
    match db.release_dead_claims() {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            claims = n,
            "took back the work of a daemon of this host that died"
        ),
        Err(error) => error!(%error, "releasing the claims of dead daemons failed"),
    }
    let mut checkpointed = Instant::now();
    let mut worker = Isolated::new();
    while !stop.load(Ordering::SeqCst) {
        // The runtime of this batch: a reload (SIGHUP) applies from the next one.
        let pipeline = runtime.current().pipeline.clone();
        let max_batch_bytes = pipeline.config().worker.max_batch_bytes;
        let batch = match db.unprocessed(BATCH, max_batch_bytes) {
            Ok(batch) => batch,
            Err(error) => {
                error!(%error, "reading pending messages failed");
                std::thread::sleep(ERROR_BACKOFF);
                continue;
            }
        };
        if checkpointed.elapsed() >= CHECKPOINT_INTERVAL {
            // Copies the WAL into the database alongside the writer (PASSIVE
            // never blocks it), so the writer's own checkpoint finds little left.
            if let Err(error) = db.checkpoint() {
                error!(%error, "checkpoint failed");
            }
            checkpointed = Instant::now();
        }
        if batch.is_empty() {
            match rx.recv_timeout(SWEEP_INTERVAL) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        debug!(batch = batch.len(), "processing");
        match pipeline.process_and_store(&mut sink, &mut worker, &batch) {
            Ok(ids) if ids.len() < batch.len() => {
                replies_queued.notify_one();
                std::thread::sleep(ERROR_BACKOFF); // no worker could be started
            }
            Ok(_) => replies_queued.notify_one(),
            Err(error) => {
                error!(%error, "storing reports failed");
                std::thread::sleep(ERROR_BACKOFF);
            }
        }
    }
}

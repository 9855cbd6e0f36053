//! The processing worker: turns committed raw messages into reports.
//!
//! In: a doorbell rung after each commit, and the `received` rows in the
//! database (including those left by a crash, found at start-up and by a
//! periodic sweep). Out: reports, via `pipeline::process_and_store`. Runs on
//! its own thread with its own connection, so SQLite never blocks the SMTP side;
//! the parsing itself happens in a supervised child process
//! ([`crate::isolate`]), so no message can take this thread or intake down.
//! A batch is bounded by `worker.max_batch_bytes` of raw messages.

use crate::daemon::checks::CheckQueue;
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
/// How often an idle worker looks for dead daemons of this host whose
/// claims it can take back at once (PostgreSQL).
const TAKE_BACK_INTERVAL: Duration = Duration::from_secs(10);
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
    /// Stored reports whose sender checks are still to be made go to `checks`.
    pub fn start(
        db: Db,
        sink: WorkerSink,
        runtime: SharedRuntime,
        replies_queued: Arc<tokio::sync::Notify>,
        checks: Option<CheckQueue>,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || {
                    run(
                        db,
                        sink,
                        &runtime,
                        &replies_queued,
                        checks.as_ref(),
                        rx,
                        &stop,
                    );
                })?
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

/// Of `claimers` (node names, `host:pid`), those that were this host's
/// and whose process is gone: a daemon restarted after a crash takes its
/// own earlier work back at once instead of waiting for the lease. Other
/// hosts' claims wait for their leases.
fn dead_local_claimers(claimers: &[String], me: &str) -> Vec<String> {
    let host = me.rsplit_once(':').map_or(me, |(h, _)| h);
    claimers
        .iter()
        .filter(|c| c.as_str() != me)
        .filter(|c| {
            c.rsplit_once(':')
                .is_some_and(|(h, pid)| h == host && pid.parse::<u32>().is_ok() && !is_alive(pid))
        })
        .cloned()
        .collect()
}

/// Whether process `pid` of this host runs: it exists and is not a zombie
/// (a killed daemon stays one until its parent reaps it).
fn is_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state …`: the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// PostgreSQL: ends the claims that daemons of this host held when they died.
fn take_back_dead_claims(db: &Db) {
    let claimers = match db.claimers() {
        Ok(claimers) => claimers,
        Err(error) => return error!(%error, "reading the claims of other daemons failed"),
    };
    for dead in dead_local_claimers(&claimers, &crate::store::node_name()) {
        match db.release_claims_of(&dead) {
            Ok(n) => tracing::info!(
                node = %dead,
                claims = n,
                "took back the work of a daemon of this host that died"
            ),
            Err(error) => error!(%error, "releasing the claims of a dead daemon failed"),
        }
    }
}

fn run(
    mut db: Db,
    mut sink: WorkerSink,
    runtime: &SharedRuntime,
    replies_queued: &tokio::sync::Notify,
    checks: Option<&CheckQueue>,
    rx: Receiver<()>,
    stop: &AtomicBool,
) {
    lower_priority();
    take_back_dead_claims(&db);
    let mut took_back = Instant::now();
    let mut checkpointed = Instant::now();
    let mut workers: Vec<Isolated> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        // The runtime of this batch: a reload (SIGHUP) applies from the next one.
        let pipeline = runtime.current().pipeline.clone();
        let max_batch_bytes = pipeline.config().worker.max_batch_bytes;
        // One worker process each (started at its first message).
        workers.resize_with(pipeline.config().worker.process_count(), Isolated::new);
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
            if took_back.elapsed() >= TAKE_BACK_INTERVAL {
                take_back_dead_claims(&db);
                took_back = Instant::now();
            }
            match rx.recv_timeout(SWEEP_INTERVAL) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        debug!(batch = batch.len(), "processing");
        let checks_enabled = pipeline.config().auth.enabled;
        match pipeline.process_and_store(&mut sink, &mut workers, &batch) {
            Ok(ids) => {
                let short = ids.len() < batch.len();
                // The stored reports' sender checks start now, beside the
                // pipeline: the next batch does not wait for their DNS.
                if let (Some(checks), true) = (checks, checks_enabled) {
                    for (raw, id) in batch.into_iter().zip(ids) {
                        if let (Some(id), None) = (id, &raw.auth) {
                            checks.submit(id, raw);
                        }
                    }
                }
                replies_queued.notify_one();
                if short {
                    std::thread::sleep(ERROR_BACKOFF); // no worker could be started
                }
            }
            Err(error) => {
                error!(%error, "storing reports failed");
                std::thread::sleep(ERROR_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_hosts_dead_daemons_lose_their_claims() {
        let me = format!("mx1:{}", std::process::id());
        let claimers = vec![
            me.clone(),
            "mx1:4000000000".to_owned(), // no such process
            "mx2:4000000000".to_owned(), // another host: its lease decides
            "mx1:notapid".to_owned(),
            "mx1:1".to_owned(), // init: alive
        ];
        assert_eq!(dead_local_claimers(&claimers, &me), ["mx1:4000000000"]);
    }
}

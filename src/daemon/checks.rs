//! Sender checks beside the pipeline: the report is stored first, its
//! SPF, DKIM and DMARC are verified here, many messages at once, and what
//! waited for them (the reply, a follow-up's merge) is decided when they end.
//!
//! In: stored reports whose checks are due, handed over by the worker
//! ([`Checks::submit`]) or found in the store (at start, after a restart, and
//! when checks that failed for now are due again). Out: [`CheckDone`]s
//! recorded through the store ([`crate::store::Db::settle_checks`]), and the
//! reply sender woken for the replies they queued.
//!
//! Two threads: `checks` runs the lookups on a runtime of its own (one
//! message's DNS never waits behind another's; `auth.max_in_flight` at once),
//! `checks-settle` records results in batches and sweeps the store for due
//! checks. Nothing here holds the pipeline: a message whose nameservers never
//! answer costs one slot for `auth.timeout_seconds`, and only that sender is
//! remembered as failing ([`crate::daemon::auth::Verifier`]). On shutdown the
//! lookups in flight are dropped: their reports stay due, and the next start
//! checks them.

use crate::config::Config;
use crate::daemon::auth::Verifier;
use crate::model::{RawMessage, ReportId};
use crate::runtime::SharedRuntime;
use crate::store::{CheckDone, Db, Settlement, WorkerSink};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{debug, error, info, warn};

/// Nice value of the checks' thread.
const CHECKS_NICENESS: libc::c_int = 10;
/// How often the store is swept for due checks.
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// Results recorded per transaction, at most.
const SETTLE_BATCH: usize = 512;
/// Jobs waiting for a slot, at most: past it, the sweep brings them later.
const QUEUE_DEPTH: usize = 1024;
/// Raw bytes held by the checks at once, queued and in flight: past it,
/// a stored report's checks are left to the sweep, which loads them later.
const MAX_BYTES_HELD: u64 = 128 * 1024 * 1024;

/// One report's checks to make. Its bytes count in the queue's budget
/// until it is dropped.
struct Job {
    report: ReportId,
    raw: RawMessage,
    held: Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for Job {
    fn drop(&mut self) {
        self.held
            .fetch_sub(self.raw.bytes.len() as u64, Ordering::SeqCst);
    }
}

/// Hands stored reports to the checks; cheap to clone, never blocks.
#[derive(Clone)]
pub struct CheckQueue {
    jobs: tokio::sync::mpsc::Sender<Job>,
    in_flight: Arc<Mutex<HashSet<ReportId>>>,
    /// Raw bytes of the jobs queued and in flight.
    held: Arc<std::sync::atomic::AtomicU64>,
}

impl CheckQueue {
    /// Queues the checks of `report`. When the queue is full, or holds
    /// [`MAX_BYTES_HELD`] already, they are left to the sweep, which finds
    /// every report whose checks are due.
    pub fn submit(&self, report: ReportId, raw: RawMessage) {
        let size = raw.bytes.len() as u64;
        if self.held.load(Ordering::SeqCst) + size > MAX_BYTES_HELD {
            return;
        }
        let mut in_flight = lock(&self.in_flight);
        if !in_flight.insert(report) {
            return;
        }
        self.held.fetch_add(size, Ordering::SeqCst);
        let job = Job {
            report,
            raw,
            held: self.held.clone(),
        };
        if self.jobs.try_send(job).is_err() {
            in_flight.remove(&report);
        }
    }

    /// Bytes the queue may still take.
    fn bytes_left(&self) -> u64 {
        MAX_BYTES_HELD.saturating_sub(self.held.load(Ordering::SeqCst))
    }
}

/// The running checks.
pub struct Checks {
    queue: CheckQueue,
    stop: Arc<AtomicBool>,
    cancel: tokio_util::sync::CancellationToken,
    checker: JoinHandle<()>,
    settler: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Checks {
    /// Starts both threads. `db` reads due checks; `sink` records results
    /// (the daemon's writer on SQLite, a connection of its own on PostgreSQL).
    ///
    /// # Errors
    /// The OS refuses a thread, or the resolver cannot be set up.
    pub fn start(
        runtime: SharedRuntime,
        db: Db,
        sink: WorkerSink,
        replies_queued: Arc<tokio::sync::Notify>,
    ) -> std::io::Result<Checks> {
        let config = runtime.current().config.clone();
        let (jobs, job_rx) = tokio::sync::mpsc::channel(QUEUE_DEPTH);
        let (done_tx, done_rx) = mpsc::channel();
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let queue = CheckQueue {
            jobs,
            in_flight: in_flight.clone(),
            held: Arc::default(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let cancel = tokio_util::sync::CancellationToken::new();
        let checker = {
            let (runtime, cancel) = (runtime.clone(), cancel.clone());
            std::thread::Builder::new()
                .name("checks".into())
                .spawn(move || check(&runtime, &config, job_rx, &done_tx, &cancel))?
        };
        let settler = {
            let (queue, stop) = (queue.clone(), stop.clone());
            std::thread::Builder::new()
                .name("checks-settle".into())
                .spawn(move || {
                    let mut settler = Settler {
                        runtime,
                        db,
                        sink,
                        queue,
                        replies_queued,
                    };
                    settler.run(&done_rx, &stop);
                })?
        };
        Ok(Checks {
            queue,
            stop,
            cancel,
            checker,
            settler,
        })
    }

    /// Where the worker hands over stored reports.
    pub fn queue(&self) -> CheckQueue {
        self.queue.clone()
    }

    /// Stops at once: lookups in flight are dropped (their reports stay
    /// due and are checked at the next start), results already in are recorded.
    pub fn stop(self) {
        self.cancel.cancel();
        self.stop.store(true, Ordering::SeqCst);
        drop(self.queue);
        if self.checker.join().is_err() {
            error!("sender checks panicked");
        }
        if self.settler.join().is_err() {
            error!("sender checks' recorder panicked");
        }
    }
}

/// The `checks` thread: every job gets a task, at most
/// `auth.max_in_flight` at once; results go to the settler.
fn check(
    runtime: &SharedRuntime,
    config: &Config,
    mut jobs: tokio::sync::mpsc::Receiver<Job>,
    done: &mpsc::Sender<CheckDone>,
    cancel: &tokio_util::sync::CancellationToken,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => return error!(%error, "sender checks cannot start their runtime"),
    };
    // Below intake and the pipeline: their CPU is DKIM and header parsing.
    crate::daemon::worker::set_niceness(CHECKS_NICENESS);
    rt.block_on(async {
        let mut current = config.clone();
        let mut verifier = match Verifier::new(&current.auth, &current.smtp.hostname) {
            Ok(v) => Arc::new(v),
            Err(error) => return error!(%error, "sender checks are off"),
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(current.auth.max_in_flight));
        loop {
            let job = tokio::select! {
                () = cancel.cancelled() => break,
                job = jobs.recv() => match job { Some(job) => job, None => break },
            };
            let permit = tokio::select! {
                () = cancel.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            // A reload that changed the checks' settings: a new verifier
            // (and fresh caches) for the jobs from here on.
            let latest_runtime = runtime.current();
            let latest = &latest_runtime.config;
            if latest.auth != current.auth || latest.smtp.hostname != current.smtp.hostname {
                match Verifier::new(&latest.auth, &latest.smtp.hostname) {
                    Ok(v) => {
                        verifier = Arc::new(v);
                        current = (**latest).clone();
                    }
                    Err(error) => warn!(%error, "reloaded sender checks refused; keeping the old"),
                }
            }
            let give_up_after = Duration::from_secs(current.auth.give_up_after_seconds);
            let (verifier, done) = (verifier.clone(), done.clone());
            crate::metrics::get().checks_in_flight.inc();
            tokio::spawn(async move {
                let auth = verifier.verify(&job.raw.envelope, &job.raw.bytes).await;
                let metrics = crate::metrics::get();
                metrics.checks_in_flight.dec();
                let outcome = if auth.is_temporary() {
                    "temporary"
                } else {
                    "final"
                };
                metrics
                    .checks
                    .get_or_create(&vec![("outcome", outcome.to_owned())])
                    .inc();
                let give_up = age(&job.raw.received_at) >= give_up_after;
                let _ = done.send(CheckDone {
                    report: job.report,
                    raw: job.raw.id,
                    auth,
                    give_up,
                });
                drop(permit);
            });
        }
    });
    // Dropping the runtime drops the lookups in flight.
    crate::metrics::get().checks_in_flight.set(0);
}

/// How long ago `received_at` (RFC 3339) was; zero when unreadable.
fn age(received_at: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(received_at)
        .ok()
        .and_then(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or_default()
}

/// The `checks-settle` thread's state.
struct Settler {
    runtime: SharedRuntime,
    db: Db,
    sink: WorkerSink,
    queue: CheckQueue,
    replies_queued: Arc<tokio::sync::Notify>,
}

impl Settler {
    fn run(&mut self, done: &mpsc::Receiver<CheckDone>, stop: &AtomicBool) {
        self.sweep();
        let mut swept = std::time::Instant::now();
        loop {
            let first = match done.recv_timeout(SWEEP_INTERVAL) {
                Ok(first) => Some(first),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch: Vec<CheckDone> = first.into_iter().collect();
            while batch.len() < SETTLE_BATCH {
                match done.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.record(batch);
            }
            if stop.load(Ordering::SeqCst) {
                // Whatever else arrives is dropped with the checker: due again
                // at the next start.
                continue;
            }
            if swept.elapsed() >= SWEEP_INTERVAL {
                self.sweep();
                swept = std::time::Instant::now();
            }
        }
    }

    fn record(&mut self, batch: Vec<CheckDone>) {
        let reports: Vec<ReportId> = batch.iter().map(|d| d.report).collect();
        let config = self.runtime.current().config.clone();
        let retry = chrono::Duration::seconds(config.auth.retry_seconds as i64);
        let now = chrono::Utc::now();
        let retry_at = (now + retry).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let now = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let reply = config.reply.clone();
        let result = self.sink.settle_checks(batch, &reply, &now, &retry_at);
        {
            let mut in_flight = lock(&self.queue.in_flight);
            for report in &reports {
                in_flight.remove(report);
            }
        }
        let settled = match result {
            Ok(settled) => settled,
            Err(error) => {
                // The reports stay due: the sweep tries them again.
                return error!(%error, reports = reports.len(), "recording sender checks failed");
            }
        };
        let mut waiting = 0;
        for (report, settlement) in reports.iter().zip(settled) {
            match settlement {
                Settlement::Waiting { reason } => {
                    waiting += 1;
                    debug!(report_id = report.0, %reason, "reply waits for the sender checks");
                }
                Settlement::Recorded {
                    reply,
                    reason,
                    merged_into,
                } => {
                    crate::metrics::get().reply(reply.as_str());
                    info!(
                        report_id = report.0,
                        reply = reply.as_str(),
                        reply_reason = %reason.as_deref().unwrap_or(""),
                        merged_into = merged_into.map(|r| r.0),
                        "sender checks done"
                    );
                }
                Settlement::Gone => {}
            }
        }
        if waiting > 0 {
            warn!(
                reports = waiting,
                retry_seconds = config.auth.retry_seconds,
                "sender checks failed for now (DNS); those replies wait"
            );
        }
        self.replies_queued.notify_one();
    }

    /// Hands the checks that are due to the checker, as many as it has room for.
    fn sweep(&mut self) {
        let room = self.queue.jobs.capacity();
        let bytes = self.queue.bytes_left();
        if room == 0 || bytes == 0 {
            return;
        }
        let skip = lock(&self.queue.in_flight).clone();
        let due = self
            .db
            .checks_due(&crate::now_rfc3339(), room, bytes, &skip);
        match due {
            Ok(jobs) => {
                for job in jobs {
                    self.queue.submit(job.report, job.raw);
                }
            }
            Err(error) => error!(%error, "reading the reports whose sender checks are due failed"),
        }
    }
}

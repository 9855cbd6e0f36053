//! The single writer: group commit for intake, and report storage in between.
//!
//! In: [`Incoming`] messages from SMTP sessions, and processed [`Outcome`]s
//! from the pipeline worker. Out: each caller's own result, sent only after
//! the transaction holding its data has committed.
//!
//! Raw messages come first: every pending one is committed in one
//! transaction (`synchronous=FULL`) before the next batch of reports is
//! stored, and a batch of reports waits until intake pauses
//! ([`INTAKE_PAUSE`]), so during a burst a 250 does not wait behind report
//! writing; past their patience the two take turns. The patience is
//! [`BURST_PATIENCE`] for the opening of a burst that follows a quiet moment
//! and [`STEADY_PATIENCE`] under a load that goes on ([`IntakeLoad`]), so a
//! burst is acknowledged at full speed and a steady load's reports keep
//! pace with it. While a transaction is being synced new requests queue
//! up, and the next transaction carries all of them: throughput grows with
//! concurrency while every acknowledgement still waits for its own commit.
//! Reports are stored with `synchronous=NORMAL` (see [`super::Role`]): they
//! can be derived again from the raw messages, and the next raw commit syncs
//! them too. One writer means no lock waits between connections.

use super::{CheckDone, Db, Error, OutboxChange, Outcome, ReportSink, Saved, Settlement};
use crate::model::{Committed, Incoming};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the writer; a full queue makes sessions wait (backpressure).
const QUEUE_DEPTH: usize = 1024;

enum Request {
    Raw {
        incoming: Incoming,
        done: oneshot::Sender<Result<Committed, Error>>,
    },
    Reports {
        outcomes: Vec<Outcome>,
        processed_at: String,
        done: oneshot::Sender<Result<Vec<Saved>, Error>>,
    },
    Outbox(OutboxRequest),
    Checks(ChecksRequest),
}

/// Ended sender checks to record, and where the result goes.
struct ChecksRequest {
    done: Vec<CheckDone>,
    config: crate::config::ReplyConfig,
    now: String,
    retry_at: String,
    reply: oneshot::Sender<Result<Vec<Settlement>, Error>>,
}

/// A change the reply sender asks for, and where its result goes.
struct OutboxRequest {
    change: OutboxChange,
    now: String,
    done: oneshot::Sender<Result<usize, Error>>,
}

/// Handle to the writer thread. Cloning is cheap; the thread ends when every
/// handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct CommitQueue {
    tx: mpsc::Sender<Request>,
    pace: Arc<Pace>,
}

/// What the writer tells the worker about intake and the reports' backlog.
struct Pace {
    /// When the last raw message was committed (milliseconds since `epoch`).
    last_raw: AtomicU64,
    /// The last reports stored were late past their patience (see
    /// [`IntakeLoad::full_pace_after`]): the worker stops holding back.
    lagging: AtomicBool,
    epoch: Instant,
}

impl Pace {
    fn raw_committed(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_raw.store(ms.max(1), Ordering::Relaxed);
    }
}

/// Intake counts as busy for this long after a raw commit.
const INTAKE_BUSY_FOR: Duration = Duration::from_millis(100);

impl CommitQueue {
    /// Starts the writer thread on `db`.
    ///
    /// # Errors
    /// The OS refuses to start a thread.
    /// If the thread dies (a bug), `on_failure` runs, so the daemon can stop
    /// instead of answering 451 forever; the thread's result is then `false`.
    /// Raw messages are refused (`452 4.3.1`) while the database's file
    /// system has less than `min_free_bytes` free.
    pub fn start(
        db: Db,
        max_batch: usize,
        min_free_bytes: u64,
        on_failure: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<(CommitQueue, JoinHandle<bool>)> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let pace = Arc::new(Pace {
            last_raw: AtomicU64::new(0),
            lagging: AtomicBool::new(false),
            epoch: Instant::now(),
        });
        let handle = std::thread::Builder::new()
            .name("commit-writer".into())
            .spawn({
                let pace = pace.clone();
                move || {
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run(db, rx, max_batch.max(1), min_free_bytes, &pace)
                    }));
                    if ran.is_err() {
                        tracing::error!("commit writer failed; stopping");
                        on_failure();
                    }
                    ran.is_ok()
                }
            })?;
        Ok((CommitQueue { tx, pace }, handle))
    }

    /// Whether reports should make way for SMTP sessions: they are
    /// committing now (a raw message was committed in the last 100 ms) and
    /// the reports are not lagging past their patience. Then reports wait,
    /// and work for them is best not done far ahead.
    pub fn intake_busy(&self) -> bool {
        let pace = &self.pace;
        let last = pace.last_raw.load(Ordering::Relaxed);
        last != 0
            && !pace.lagging.load(Ordering::Relaxed)
            && (pace.epoch.elapsed().as_millis() as u64).saturating_sub(last)
                < INTAKE_BUSY_FOR.as_millis() as u64
    }

    /// Commits `incoming` durably; returns once its transaction is on disk.
    ///
    /// # Errors
    /// The transaction failed (nothing of it was stored) or the writer is gone.
    pub async fn commit(&self, incoming: Incoming) -> Result<Committed, Error> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Raw { incoming, done })
            .await
            .map_err(|_| Error::Closed)?;
        wait.await.map_err(|_| Error::Closed)?
    }

    /// Records a change of the outbox (the reply sender's); returns the
    /// number of rows changed once it is committed.
    ///
    /// # Errors
    /// The transaction failed or the writer is gone.
    pub async fn outbox(&self, change: OutboxChange, now: String) -> Result<usize, Error> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Outbox(OutboxRequest { change, now, done }))
            .await
            .map_err(|_| Error::Closed)?;
        wait.await.map_err(|_| Error::Closed)?
    }
}

impl CommitQueue {
    /// Records ended sender checks ([`Db::settle_checks`]); waits for the
    /// commit. For plain threads (not on the runtime).
    ///
    /// # Errors
    /// The transaction failed or the writer is gone.
    pub fn settle_checks(
        &self,
        done: Vec<CheckDone>,
        config: &crate::config::ReplyConfig,
        now: &str,
        retry_at: &str,
    ) -> Result<Vec<Settlement>, Error> {
        let (reply, wait) = oneshot::channel();
        let request = Request::Checks(ChecksRequest {
            done,
            config: config.clone(),
            now: now.to_owned(),
            retry_at: retry_at.to_owned(),
            reply,
        });
        self.tx.blocking_send(request).map_err(|_| Error::Closed)?;
        wait.blocking_recv().map_err(|_| Error::Closed)?
    }
}

impl WorkerSink {
    /// Whether intake is committing now (SQLite's single writer; on
    /// PostgreSQL reports have a connection of their own: never).
    pub fn intake_busy(&self) -> bool {
        match self {
            WorkerSink::Queue(queue) => queue.intake_busy(),
            WorkerSink::Direct(_) => false,
        }
    }

    /// Records ended sender checks through the writer or on this connection.
    ///
    /// # Errors
    /// The transaction failed or the writer is gone.
    pub fn settle_checks(
        &mut self,
        done: Vec<CheckDone>,
        config: &crate::config::ReplyConfig,
        now: &str,
        retry_at: &str,
    ) -> Result<Vec<Settlement>, Error> {
        match self {
            WorkerSink::Queue(queue) => queue.settle_checks(done, config, now, retry_at),
            WorkerSink::Direct(db) => db.settle_checks(&done, config, now, retry_at),
        }
    }
}

/// Where the daemon's worker stores reports: through the single writer
/// (SQLite, one writer per file), or on a connection of its own
/// (PostgreSQL, where intake must not wait behind report storage).
pub enum WorkerSink {
    Queue(CommitQueue),
    Direct(Box<Db>),
}

/// A batch handed to a [`WorkerSink`].
pub enum WorkerPending {
    Queue(oneshot::Receiver<Result<Vec<Saved>, Error>>),
    Direct(Vec<Saved>),
}

impl ReportSink for WorkerSink {
    type Pending = WorkerPending;

    fn submit(
        &mut self,
        outcomes: Vec<Outcome>,
        processed_at: &str,
    ) -> Result<Self::Pending, Error> {
        Ok(match self {
            WorkerSink::Queue(queue) => WorkerPending::Queue(queue.submit(outcomes, processed_at)?),
            WorkerSink::Direct(db) => {
                WorkerPending::Direct(db.save_outcomes(&outcomes, processed_at)?)
            }
        })
    }

    fn finish(&mut self, pending: Self::Pending) -> Result<Vec<Saved>, Error> {
        match (self, pending) {
            (WorkerSink::Queue(queue), WorkerPending::Queue(wait)) => queue.finish(wait),
            (_, WorkerPending::Direct(stored)) => Ok(stored),
            (WorkerSink::Direct(_), WorkerPending::Queue(wait)) => {
                wait.blocking_recv().map_err(|_| Error::Closed)?
            }
        }
    }
}

/// The pipeline worker (a plain thread) stores its reports through the writer.
impl ReportSink for CommitQueue {
    type Pending = oneshot::Receiver<Result<Vec<Saved>, Error>>;

    fn submit(
        &mut self,
        outcomes: Vec<Outcome>,
        processed_at: &str,
    ) -> Result<Self::Pending, Error> {
        let (done, wait) = oneshot::channel();
        let request = Request::Reports {
            outcomes,
            processed_at: processed_at.to_owned(),
            done,
        };
        self.tx.blocking_send(request).map_err(|_| Error::Closed)?;
        Ok(wait)
    }

    fn finish(&mut self, wait: Self::Pending) -> Result<Vec<Saved>, Error> {
        wait.blocking_recv().map_err(|_| Error::Closed)?
    }
}

/// A batch of reports waits until no raw message was committed for this long,
/// so an acknowledgement does not queue behind report writing (and the fsync
/// of its commit does not carry the reports' pages) during a burst...
const INTAKE_PAUSE: Duration = Duration::from_millis(3);
/// ...unless its oldest message arrived this long ago (the patience of
/// reports from the opening of a burst; see [`IntakeLoad`]): past it,
/// reports and intake take turns, so processing is never starved and the
/// backlog stays bounded by how fast reports can be stored...
const BURST_PATIENCE: Duration = Duration::from_millis(500);
/// ...and the patience of reports under a load that goes on: they keep pace
/// with it, a fraction of a second behind their 250 (`benches/e2e.py --rate
/// 1000`: p50/p99 0.21/0.85 s, against 0.84/3.87 s with 0.5 s for all).
const STEADY_PATIENCE: Duration = Duration::from_millis(100);

/// Where intake is: a burst that began after a quiet moment, or a load
/// that goes on. Messages of the first [`BURST_GRACE`] of a burst that
/// follows at least [`QUIET_BEFORE_BURST`] without mail have intake to
/// themselves for [`BURST_PATIENCE`] (a feed's thousands of reports are
/// acknowledged at full speed); later messages, under a load that goes on,
/// have [`STEADY_PATIENCE`], so their reports keep pace with their 250s.
struct IntakeLoad {
    /// When the last raw commit ended.
    last_raw: Option<Instant>,
    burst_started: Option<Instant>,
}

const QUIET_BEFORE_BURST: Duration = Duration::from_secs(1);
const BURST_GRACE: Duration = Duration::from_secs(1);

impl IntakeLoad {
    fn new() -> IntakeLoad {
        IntakeLoad {
            last_raw: None,
            burst_started: None,
        }
    }

    /// A raw commit ended at `now`.
    fn committed(&mut self, now: Instant) {
        let quiet_before = self
            .last_raw
            .is_none_or(|t| now.saturating_duration_since(t) >= QUIET_BEFORE_BURST);
        if quiet_before {
            self.burst_started = Some(now);
        }
        self.last_raw = Some(now);
    }

    /// Whether a message that arrived at `at` came in the opening of a burst.
    fn in_burst(&self, at: Instant) -> bool {
        // A commit ends a little after its messages arrived.
        let slack = Duration::from_millis(100);
        self.burst_started
            .is_some_and(|start| at + slack >= start && at < start + BURST_GRACE)
    }

    /// How long a report batch whose oldest message arrived at `oldest`
    /// yields to intake.
    fn patience(&self, oldest: Instant) -> Duration {
        if self.in_burst(oldest) {
            BURST_PATIENCE
        } else {
            STEADY_PATIENCE
        }
    }

    /// How late past its patience that batch must be for the worker to
    /// stop holding back during intake.
    fn full_pace_after(&self, oldest: Instant) -> Duration {
        if self.in_burst(oldest) {
            BURST_FULL_PACE_AFTER
        } else {
            STEADY_FULL_PACE_AFTER
        }
    }
}

/// Checkpoint when no request came for this long.
const IDLE_CHECKPOINT_AFTER: Duration = Duration::from_millis(200);
/// Checkpoint even under load once this much has been written since the last
/// one, so the WAL stays bounded (SQLite starts it over after a checkpoint).
/// Under load the worker's concurrent PASSIVE checkpoints do most of the
/// copying; what is left costs commits a stall that grows with it (about
/// 0.3 s at 128 MiB, 0.12 s at 32 MiB while 1,000 reports a second arrive),
/// so the cap is small enough that the stall stays short.
const FORCED_CHECKPOINT_BYTES: usize = 32 * 1024 * 1024;

fn run(
    mut db: Db,
    mut rx: mpsc::Receiver<Request>,
    max_batch: usize,
    min_free_bytes: u64,
    pace: &Pace,
) {
    let mut floor = FreeSpace::new(db.file_path(), min_free_bytes);
    let mut raws: Vec<(Incoming, oneshot::Sender<Result<Committed, Error>>)> =
        Vec::with_capacity(max_batch);
    let mut reports = VecDeque::new();
    let mut outbox: Vec<OutboxRequest> = Vec::new();
    let mut checks: Vec<ChecksRequest> = Vec::new();
    let mut open = true;
    // Bytes written since the last checkpoint (an estimate: payloads, not pages).
    let mut written = 0usize;
    // When the last raw commit ended (report batches yield to intake), and
    // whether intake is a burst or a load that goes on.
    let mut load = IntakeLoad::new();
    // Only for timed waits on the queue; nothing async runs here.
    let clock = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "commit writer cannot start its timer");
            return;
        }
    };
    while open || !reports.is_empty() {
        let is_idle = raws.is_empty()
            && reports.is_empty()
            && outbox.is_empty()
            && checks.is_empty()
            && rx.is_empty();
        let mut is_quiet = false;
        if is_idle && written > 0 {
            // Nothing to do: wait a little, and checkpoint if nothing comes.
            match clock
                .block_on(async { tokio::time::timeout(IDLE_CHECKPOINT_AFTER, rx.recv()).await })
            {
                Ok(Some(request)) => {
                    sort(request, &mut raws, &mut reports, &mut outbox, &mut checks)
                }
                Ok(None) => open = false,
                Err(_elapsed) => is_quiet = true,
            }
        }
        // Not in the opening of a burst: its acknowledgements would wait.
        let forced = written >= FORCED_CHECKPOINT_BYTES && !load.in_burst(Instant::now());
        if written > 0 && (is_quiet || forced) {
            // The writer checkpoints itself: with no other writer the WAL is
            // copied completely, and the next transaction starts it over.
            let started = Instant::now();
            let result = db.checkpoint();
            tracing::debug!(micros = started.elapsed().as_micros() as u64, "checkpoint");
            if let Err(error) = result {
                tracing::error!(%error, "checkpoint failed");
            }
            written = 0;
            continue;
        }
        // Take everything already queued; wait only when there is nothing to do.
        if raws.is_empty() && reports.is_empty() && outbox.is_empty() && checks.is_empty() && open {
            match clock.block_on(rx.recv()) {
                Some(request) => sort(request, &mut raws, &mut reports, &mut outbox, &mut checks),
                None => open = false,
            }
        }
        while raws.len() < max_batch {
            match rx.try_recv() {
                Ok(request) => sort(request, &mut raws, &mut reports, &mut outbox, &mut checks),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        // The reply sender's changes are small and rare: made at once.
        for OutboxRequest { change, now, done } in outbox.drain(..) {
            written += 512;
            let _ = done.send(db.apply_outbox(&change, &now));
        }
        // So are ended sender checks: a few rows each.
        for request in checks.drain(..) {
            written += 512 * request.done.len();
            let result = db.settle_checks(
                &request.done,
                &request.config,
                &request.now,
                &request.retry_at,
            );
            let _ = request.reply.send(result);
        }
        if !raws.is_empty() {
            written += raws
                .iter()
                .map(|(incoming, _)| incoming.bytes.len() + 512)
                .sum::<usize>();
            if floor.is_below(&mut db) {
                refuse_raws(&mut raws, &floor);
            } else {
                commit_raws(&mut db, &mut raws);
            }
            let now = Instant::now();
            load.committed(now);
            pace.raw_committed();
        } else if let Some(wait) = reports.front().filter(|_| open).and_then(|batch| {
            batch.yield_to_intake(load.last_raw, Instant::now(), load.patience(batch.oldest))
        }) {
            // Sessions are committing: they keep the writer until they pause.
            match clock.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                Ok(Some(request)) => {
                    sort(request, &mut raws, &mut reports, &mut outbox, &mut checks)
                }
                Ok(None) => open = false,
                Err(_elapsed) => {}
            }
        } else if let Some(first) = reports.pop_front() {
            // Batches that queued up while the writer was busy go in one
            // transaction (group commit for reports): its pages are written
            // once for all of them.
            let late = first.late(Instant::now(), load.patience(first.oldest));
            let intake_busy = load.last_raw.is_some_and(|t| t.elapsed() < INTAKE_BUSY_FOR);
            let limit = if intake_busy {
                turn_rows(late)
            } else {
                REPORT_GROUP_ROWS
            };
            // Past its patience the backlog takes turns with intake; once
            // its turns have grown (a long burst, not the tail of a short
            // one) the worker processes go at full pace again.
            pace.lagging.store(
                load.last_raw.is_some() && late >= load.full_pace_after(first.oldest),
                Ordering::Relaxed,
            );
            let mut group = vec![first];
            let mut rows: usize = group[0].rows();
            while let Some(next) = reports.front() {
                if rows + next.rows() > limit {
                    break;
                }
                rows += next.rows();
                group.extend(reports.pop_front());
            }
            let outcomes: Vec<&Outcome> = group.iter().flat_map(|b| &b.outcomes).collect();
            written += outcomes
                .iter()
                .map(|o| {
                    o.result
                        .as_ref()
                        .map_or(64, |d| 512 + d.evidence.len() * 160)
                })
                .sum::<usize>();
            let started = Instant::now();
            let result = db.save_report_groups(
                &group
                    .iter()
                    .map(|b| (&b.outcomes[..], b.processed_at.as_str()))
                    .collect::<Vec<_>>(),
            );
            tracing::trace!(
                reports = outcomes.len(),
                batches = group.len(),
                micros = started.elapsed().as_micros() as u64,
                "reports stored"
            );
            match result {
                Ok(stored) => {
                    for (batch, stored) in group.into_iter().zip(stored) {
                        // The worker may be stopping: nothing to tell.
                        let _ = batch.done.send(Ok(stored));
                    }
                }
                Err(error) => {
                    let text = error.to_string();
                    for batch in group {
                        let _ = batch.done.send(Err(Error::Batch(text.clone())));
                    }
                }
            }
        }
    }
    if written > 0 {
        if let Err(error) = db.checkpoint() {
            tracing::error!(%error, "checkpoint failed");
        }
    }
}

/// Evidence rows one grouped transaction of report batches may hold (a
/// batch is never split, so the first can exceed it): about 20 ms of
/// writing, some 75 reports of the 6 KB benchmark's.
const REPORT_GROUP_ROWS: usize = 4096;
/// While sessions commit, the turn of reports just past their patience
/// (a few milliseconds, so the acknowledgements behind it hardly wait)...
const FIRST_TURN_ROWS: usize = 512;
/// ...which grows by itself every this long the backlog stays past its
/// patience, up to [`REPORT_GROUP_ROWS`]: with turns of 512 rows a steady
/// 1,000 messages/s outran the reports (`benches/e2e.py --rate 1000`).
const TURN_GROWS_EVERY: Duration = Duration::from_millis(100);

/// How late past its patience the backlog must be for the worker to stop
/// holding back during intake: in a burst...
const BURST_FULL_PACE_AFTER: Duration = Duration::from_millis(300);
/// ...and under a steady load.
const STEADY_FULL_PACE_AFTER: Duration = Duration::from_millis(50);

/// The rows of a report turn during intake, `past` the patience of its
/// oldest batch.
fn turn_rows(past: Duration) -> usize {
    let steps = (past.as_millis() / TURN_GROWS_EVERY.as_millis()) as usize;
    FIRST_TURN_ROWS
        .saturating_mul(steps + 1)
        .min(REPORT_GROUP_ROWS)
}

/// Reports waiting for the writer.
struct ReportBatch {
    outcomes: Vec<Outcome>,
    processed_at: String,
    done: oneshot::Sender<Result<Vec<Saved>, Error>>,
    /// When its oldest message arrived (as this clock tells it).
    oldest: Instant,
}

impl ReportBatch {
    /// Evidence rows, and one per report.
    fn rows(&self) -> usize {
        self.outcomes
            .iter()
            .map(|o| o.result.as_ref().map_or(1, |d| d.evidence.len() + 1))
            .sum()
    }

    fn new(
        outcomes: Vec<Outcome>,
        processed_at: String,
        done: oneshot::Sender<Result<Vec<Saved>, Error>>,
    ) -> ReportBatch {
        // The lag of the batch is that of its oldest message.
        let now = chrono::Utc::now();
        let lag = outcomes
            .iter()
            .filter_map(|o| chrono::DateTime::parse_from_rfc3339(&o.received_at).ok())
            .map(|at| {
                (now - at.with_timezone(&chrono::Utc))
                    .to_std()
                    .unwrap_or_default()
            })
            .max()
            .unwrap_or_default();
        let now = Instant::now();
        ReportBatch {
            outcomes,
            processed_at,
            done,
            oldest: now.checked_sub(lag).unwrap_or(now),
        }
    }

    /// How far past `patience` the batch is at `now` (zero within it).
    fn late(&self, now: Instant, patience: Duration) -> Duration {
        now.saturating_duration_since(self.oldest)
            .saturating_sub(patience)
    }

    /// How long this batch should still wait for intake to pause, when the
    /// last raw commit ended at `last_raw`, with `patience`; `None` when it
    /// runs now.
    fn yield_to_intake(
        &self,
        last_raw: Option<Instant>,
        now: Instant,
        patience: Duration,
    ) -> Option<Duration> {
        let pause_left = INTAKE_PAUSE.checked_sub(now.duration_since(last_raw?))?;
        let patience_left = (self.oldest + patience).checked_duration_since(now)?;
        Some(pause_left.min(patience_left)).filter(|wait| !wait.is_zero())
    }
}

fn sort(
    request: Request,
    raws: &mut Vec<(Incoming, oneshot::Sender<Result<Committed, Error>>)>,
    reports: &mut VecDeque<ReportBatch>,
    outbox: &mut Vec<OutboxRequest>,
    checks: &mut Vec<ChecksRequest>,
) {
    match request {
        Request::Outbox(request) => outbox.push(request),
        Request::Checks(request) => checks.push(request),
        Request::Raw { incoming, done } => raws.push((incoming, done)),
        Request::Reports {
            outcomes,
            processed_at,
            done,
        } => reports.push_back(ReportBatch::new(outcomes, processed_at, done)),
    }
}

/// The free-space floor (`store.min_free_bytes`), looked at before each group
/// commit: below it intake answers 452 while there is still room for the
/// database to work (a full disk can leave SQLite unable to write even a
/// checkpoint), and takes mail again as soon as space returns.
struct FreeSpace {
    dir: Option<std::path::PathBuf>,
    min_bytes: u64,
    last_truncate: Option<Instant>,
    free_bytes: u64,
}

/// How often, while below the floor, the WAL is checkpointed and cut back
/// to reclaim its space.
const TRUNCATE_EVERY: Duration = Duration::from_secs(5);

impl FreeSpace {
    fn new(db_file: Option<std::path::PathBuf>, min_bytes: u64) -> FreeSpace {
        FreeSpace {
            dir: db_file.and_then(|f| f.parent().map(|d| d.to_owned())),
            min_bytes,
            last_truncate: None,
            free_bytes: u64::MAX,
        }
    }

    fn is_below(&mut self, db: &mut Db) -> bool {
        if self.min_bytes == 0 {
            return false;
        }
        let Some(dir) = &self.dir else { return false };
        self.free_bytes = super::free_bytes(dir).unwrap_or(u64::MAX);
        if self.free_bytes >= self.min_bytes {
            return false;
        }
        // The WAL may hold most of what is missing: copy it into the
        // database and cut it back, then look again.
        if self
            .last_truncate
            .is_none_or(|t| t.elapsed() >= TRUNCATE_EVERY)
        {
            self.last_truncate = Some(Instant::now());
            if let Err(error) = db.checkpoint_truncate() {
                tracing::warn!(%error, "checkpoint to reclaim space failed");
            }
            self.free_bytes = super::free_bytes(dir).unwrap_or(u64::MAX);
        }
        self.free_bytes < self.min_bytes
    }
}

fn refuse_raws(
    batch: &mut Vec<(Incoming, oneshot::Sender<Result<Committed, Error>>)>,
    floor: &FreeSpace,
) {
    tracing::warn!(
        limit = "min_free_bytes",
        free_bytes = floor.free_bytes,
        min_free_bytes = floor.min_bytes,
        batch = batch.len(),
        "limit hit"
    );
    crate::metrics::get().reject("min_free_bytes");
    for (_, done) in batch.drain(..) {
        let _ = done.send(Err(Error::Commit {
            detail: format!(
                "{} bytes free, under store.min_free_bytes = {}",
                floor.free_bytes, floor.min_bytes
            ),
            is_storage_full: true,
        }));
    }
}

fn commit_raws(
    db: &mut Db,
    batch: &mut Vec<(Incoming, oneshot::Sender<Result<Committed, Error>>)>,
) {
    let started = std::time::Instant::now();
    let messages: Vec<&Incoming> = batch.iter().map(|(incoming, _)| incoming).collect();
    let result = db.commit_raws(&messages);
    crate::metrics::get()
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    tracing::trace!(
        batch = batch.len(),
        micros = started.elapsed().as_micros() as u64,
        "group commit"
    );
    match result {
        Ok(committed) => {
            for ((_, done), c) in batch.drain(..).zip(committed) {
                let _ = done.send(Ok(c)); // the session may have gone: nothing to tell
            }
        }
        Err(error) => {
            tracing::error!(%error, batch = batch.len(), "group commit failed");
            let is_storage_full = error.is_storage_full();
            for (_, done) in batch.drain(..) {
                let detail = error.to_string();
                let _ = done.send(Err(Error::Commit {
                    detail,
                    is_storage_full,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RawId;

    fn batch(received_ago: chrono::Duration) -> ReportBatch {
        let received_at = (chrono::Utc::now() - received_ago)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let outcome = Outcome {
            raw_id: RawId(1),
            received_at,
            result: Err("test".into()),
            fence: None,
        };
        ReportBatch::new(vec![outcome], crate::now_rfc3339(), oneshot::channel().0)
    }

    #[test]
    fn reports_wait_for_a_pause_in_intake_but_not_past_the_lag_limit() {
        let patience = BURST_PATIENCE;
        let fresh = batch(chrono::Duration::zero());
        let lagging = batch(chrono::Duration::from_std(patience).unwrap());
        let now = Instant::now();
        // A raw commit just ended: the batch waits, at most for the pause.
        let wait = fresh
            .yield_to_intake(Some(now), now, patience)
            .expect("waits");
        assert!(wait > Duration::ZERO && wait <= INTAKE_PAUSE, "{wait:?}");
        // Intake has paused, or never ran: the batch runs.
        assert_eq!(
            fresh.yield_to_intake(Some(now), now + INTAKE_PAUSE, patience),
            None
        );
        assert_eq!(fresh.yield_to_intake(None, now, patience), None);
        // Its messages arrived long ago: it runs even in the middle of a burst.
        assert_eq!(lagging.yield_to_intake(Some(now), now, patience), None);
        // A fresh batch stops yielding once it has waited out the lag limit.
        let later = now + patience + Duration::from_secs(1);
        assert_eq!(fresh.yield_to_intake(Some(later), later, patience), None);
    }

    #[test]
    fn a_burst_after_quiet_keeps_the_writer_and_a_load_that_goes_on_shares_it() {
        let start = Instant::now();
        let mut load = IntakeLoad::new();
        // The first commit after a quiet moment opens a burst.
        load.committed(start);
        assert_eq!(load.patience(start), BURST_PATIENCE);
        assert_eq!(load.full_pace_after(start), BURST_FULL_PACE_AFTER);
        // Commits going on: past the opening, messages are steady load.
        let mut now = start;
        for _ in 0..30 {
            now += Duration::from_millis(100);
            load.committed(now);
        }
        let late = start + BURST_GRACE + Duration::from_millis(1);
        assert_eq!(load.patience(late), STEADY_PATIENCE);
        assert_eq!(load.full_pace_after(late), STEADY_FULL_PACE_AFTER);
        assert_eq!(
            load.patience(start + Duration::from_millis(500)),
            BURST_PATIENCE
        );
        // A quiet second, and the next commit opens a burst again.
        let after_quiet = now + QUIET_BEFORE_BURST;
        load.committed(after_quiet);
        assert_eq!(load.patience(after_quiet), BURST_PATIENCE);
        assert_eq!(load.patience(late), STEADY_PATIENCE);
    }

    #[test]
    fn a_batch_of_old_messages_is_late_by_their_age_past_the_patience() {
        let now = Instant::now();
        let patience = BURST_PATIENCE;
        assert_eq!(
            batch(chrono::Duration::zero()).late(now, patience),
            Duration::ZERO
        );
        let old = batch(chrono::Duration::seconds(3));
        let late = old.late(Instant::now(), patience);
        assert!(
            late >= Duration::from_millis(2400) && late < Duration::from_secs(3),
            "{late:?}"
        );
    }

    #[test]
    fn a_report_turn_during_intake_grows_while_the_backlog_stays_late() {
        assert_eq!(turn_rows(Duration::ZERO), FIRST_TURN_ROWS);
        assert_eq!(turn_rows(TURN_GROWS_EVERY), 2 * FIRST_TURN_ROWS);
        assert_eq!(turn_rows(Duration::from_secs(3600)), REPORT_GROUP_ROWS);
    }
}

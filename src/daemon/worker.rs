//! The processing worker: turns committed raw messages into reports.
//!
//! In: a doorbell rung after each commit, and the `received` rows in the
//! database (including those left by a crash, found at start-up and by a
//! periodic sweep). Out: reports, stored through the single writer (or, on
//! PostgreSQL, a connection of its own), and their sender checks handed to
//! [`crate::daemon::checks`].
//!
//! A dispatcher thread reads pending messages and hands them to a pool of
//! `worker.processes` processor threads, each with its own supervised child
//! process ([`crate::daemon::isolate`]), so no message can take intake down and a
//! slow or hostile message holds one child, never the others: outcomes are
//! stored as they come, in transactions, while the other children go on.
//! Messages in hand are bounded by `worker.max_batch_bytes` of raw bytes.

use crate::daemon::checks::CheckQueue;
use crate::daemon::isolate::Isolated;
use crate::daemon::resolver::HttpResolver;
use crate::model::{RawId, RawMessage};
use crate::pipeline::Submitted;
use crate::runtime::SharedRuntime;
use crate::store::{Db, Outcome, WorkerPending, WorkerSink};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{debug, error, info};

/// Messages in hand per worker process, at most (fewer when they are large),
/// counting those processed and waiting for the writer...
const PER_PROCESS: usize = 64;
/// ...and while SMTP sessions are committing (a burst) and the reports are
/// within their patience: they would wait for the writer anyway, so the
/// processes do little ahead and leave intake the CPU. Past it, full pace.
const PER_PROCESS_DURING_INTAKE: usize = 4;
/// Rounds of outcomes handed to the writer and not waited for, at most: the
/// writer always has the next round while the worker hands out more work.
const ROUNDS_IN_FLIGHT: usize = 2;
/// How often the worker looks for work nobody rang for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// How often an idle worker looks for dead daemons of this host whose
/// claims it can take back at once (PostgreSQL).
const TAKE_BACK_INTERVAL: Duration = Duration::from_secs(10);
/// How often the worker checkpoints while there is work.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);
/// Pause after a storage error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Outcomes stored per round, at most: the dispatcher hands out more work
/// between rounds.
const STORE_ROUND: usize = 256;

/// What the dispatcher waits for.
enum Event {
    /// New messages were committed.
    Wake,
    /// A processor is done with a message (`None`: no worker process could
    /// be run; the message stays pending).
    Done(Box<(RawMessage, Option<Outcome>)>),
}

/// Wakes the worker; cheap to clone, never blocks.
#[derive(Clone)]
pub struct WorkSignal {
    tx: Sender<Event>,
    rung: Arc<AtomicBool>,
}

impl WorkSignal {
    /// Says there is new work. If a wake-up is already pending this is a no-op.
    pub fn notify(&self) {
        if !self.rung.swap(true, Ordering::SeqCst) {
            let _ = self.tx.send(Event::Wake);
        }
    }
}

impl crate::smtp::NewMail for WorkSignal {
    fn committed(&self) {
        self.notify();
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
    /// `replies_queued` after each round so the reply sender looks at once.
    /// Stored reports whose sender checks are still to be made go to `checks`.
    pub fn start(
        db: Db,
        sink: WorkerSink,
        runtime: SharedRuntime,
        replies_queued: Arc<tokio::sync::Notify>,
        checks: Option<CheckQueue>,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = channel();
        let rung = Arc::new(AtomicBool::new(false));
        let signal = WorkSignal { tx, rung };
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            let signal = signal.clone();
            std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || {
                    let mut dispatcher = Dispatcher {
                        db,
                        owners: OwnersCache::new(),
                        sink,
                        runtime,
                        replies_queued,
                        checks,
                        signal,
                        stop: stop.clone(),
                        pool: Vec::new(),
                        in_hand: HashMap::new(),
                        in_hand_bytes: 0,
                        queued: Vec::new(),
                        ready: Vec::new(),
                        writing: std::collections::VecDeque::new(),
                    };
                    dispatcher.run(&rx);
                })?
        };
        Ok(Worker {
            signal,
            stop,
            handle,
        })
    }

    pub fn signal(&self) -> WorkSignal {
        self.signal.clone()
    }

    /// Stores what is done, stops the processors (a message still in a
    /// child stays pending: it is done at the next start) and returns.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.signal.tx.send(Event::Wake);
        if self.handle.join().is_err() {
            error!("pipeline worker panicked");
        }
    }
}

/// One processor thread and the queue of messages it was handed.
struct Processor {
    jobs: Option<Sender<RawMessage>>,
    handle: Option<JoinHandle<()>>,
}

impl Processor {
    fn start(
        runtime: SharedRuntime,
        events: Sender<Event>,
        stop: Arc<AtomicBool>,
        n: usize,
    ) -> std::io::Result<Processor> {
        let (jobs, rx) = channel::<RawMessage>();
        let handle = std::thread::Builder::new()
            .name(format!("pipeline-{n}"))
            .spawn(move || {
                set_niceness(PROCESSOR_NICENESS);
                let mut child = Isolated::new();
                for raw in rx {
                    if stop.load(Ordering::SeqCst) {
                        return; // what is left stays pending: done at next start
                    }
                    // The runtime of this message: a reload applies from the next.
                    let pipeline = runtime.current().pipeline.clone();
                    let outcome = pipeline.outcome(&mut child, &raw);
                    if events.send(Event::Done(Box::new((raw, outcome)))).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Processor {
            jobs: Some(jobs),
            handle: Some(handle),
        })
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The routing index, rebuilt when an import changed the owners (the
/// store's import log says so). Asked before each round is stored (one
/// read of the log's last id), so a report stored after an import is
/// routed by it.
struct OwnersCache {
    version: Option<i64>,
    index: Arc<crate::owners::Index>,
    /// The HTTP resolver and the configuration it was made from (a reload
    /// that changes `[owners]` makes a new one).
    resolver: Option<(crate::config::OwnersConfig, HttpResolver)>,
    local_only: crate::owners::route::LocalOnly,
}

impl OwnersCache {
    fn new() -> OwnersCache {
        OwnersCache {
            version: None,
            index: Arc::new(crate::owners::Index::default()),
            resolver: None,
            local_only: crate::owners::route::LocalOnly,
        }
    }

    /// The resolver for this round (its time budget starts now), or none.
    fn resolver(
        &mut self,
        config: &crate::config::OwnersConfig,
    ) -> &mut dyn crate::owners::route::Resolver {
        if self.resolver.as_ref().is_none_or(|(c, _)| c != config) {
            self.resolver = HttpResolver::new(config).map(|r| (config.clone(), r));
        }
        match &mut self.resolver {
            Some((_, resolver)) => {
                resolver.begin_round();
                resolver
            }
            None => &mut self.local_only,
        }
    }

    /// The index as of the store's latest import. A store error keeps the
    /// index it had (reports are routed by it rather than held back).
    fn current(&mut self, db: &Db) -> Arc<crate::owners::Index> {
        match db.owners_version() {
            Ok(version) if Some(version) == self.version => {}
            Ok(_) => match db.owners_index() {
                Ok((version, index)) => {
                    info!(
                        version,
                        assignments = index.len(),
                        "owners loaded for routing"
                    );
                    self.version = Some(version);
                    self.index = Arc::new(index);
                }
                Err(error) => error!(%error, "cannot load the owners; routing by the last ones"),
            },
            Err(error) => {
                error!(%error, "cannot read the owners' version; routing by the last ones")
            }
        }
        self.index.clone()
    }
}

/// The dispatcher's state.
struct Dispatcher {
    db: Db,
    owners: OwnersCache,
    sink: WorkerSink,
    runtime: SharedRuntime,
    replies_queued: Arc<tokio::sync::Notify>,
    checks: Option<CheckQueue>,
    signal: WorkSignal,
    stop: Arc<AtomicBool>,
    pool: Vec<Processor>,
    /// Messages handed to a processor and not stored yet, with the
    /// processor each went to.
    in_hand: HashMap<RawId, usize>,
    in_hand_bytes: u64,
    /// Messages queued for (or in) each processor.
    queued: Vec<usize>,
    /// Outcomes waiting to be stored.
    ready: Vec<(RawMessage, Outcome)>,
    /// Rounds handed to the writer, oldest first.
    writing: std::collections::VecDeque<(Vec<RawMessage>, Submitted<WorkerPending>)>,
}

/// Nice value of the dispatcher: under load, SMTP replies come first and
/// the backlog is worked off in the gaps (DESIGN: p99 DATA→250).
const NICENESS: libc::c_int = 10;
/// Nice value of the processor threads and the worker children they start
/// (a child inherits it): several of them parse at once, and together they
/// must still leave intake the CPU it asks for.
const PROCESSOR_NICENESS: libc::c_int = 19;

fn lower_priority() {
    set_niceness(NICENESS);
}

/// Sets the nice value of the calling thread (Linux keeps it per thread;
/// a process it starts inherits it).
pub(crate) fn set_niceness(niceness: libc::c_int) {
    // SAFETY: setpriority with PRIO_PROCESS and tid 0 only changes the nice
    // value of the calling thread (Linux keeps it per thread); no memory is touched.
    #[cfg(target_os = "linux")]
    unsafe {
        let _ = libc::setpriority(libc::PRIO_PROCESS, 0, niceness);
    }
}

/// Of `claimers` (node names, `host:pid:started`), those that were this
/// host's and whose process is gone: a daemon restarted after a crash takes
/// its own earlier work back at once instead of waiting for the lease. A
/// zombie is gone, and so is a PID that now names a process started at
/// another moment (the kernel reused it). Other hosts' claims wait for their
/// leases.
fn dead_local_claimers(claimers: &[String], me: &str) -> Vec<String> {
    let host = me.split_once(':').map_or(me, |(h, _)| h);
    claimers
        .iter()
        .filter(|c| c.as_str() != me)
        .filter(|c| {
            let mut parts = c.splitn(3, ':');
            let (Some(h), Some(pid)) = (parts.next(), parts.next()) else {
                return false;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                return false;
            };
            // Names written before the start time was part of them.
            let claimed_start = parts.next().map(str::parse::<u64>);
            h == host
                && match (crate::store::process_started(pid), claimed_start) {
                    (None, _) => true,
                    (Some(now), Some(Ok(then))) => now != then,
                    _ => false,
                }
        })
        .cloned()
        .collect()
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

impl Dispatcher {
    fn run(&mut self, events: &Receiver<Event>) {
        lower_priority();
        take_back_dead_claims(&self.db);
        let mut took_back = Instant::now();
        let mut checkpointed = Instant::now();
        let mut unavailable_until: Option<Instant> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let config = self.runtime.current().config.clone();
            let processes = config.worker.process_count();
            if self.pool.len() != processes && self.in_hand.is_empty() {
                self.resize(processes);
            }
            if unavailable_until.is_some_and(|t| Instant::now() >= t) {
                unavailable_until = None;
            }
            let handed = if unavailable_until.is_none() {
                self.hand_out(processes, config.worker.max_batch_bytes)
            } else {
                0
            };
            if checkpointed.elapsed() >= CHECKPOINT_INTERVAL {
                // Copies the WAL into the database alongside the writer
                // (PASSIVE never blocks it), so the writer's own checkpoint
                // finds little left.
                if let Err(error) = self.db.checkpoint() {
                    error!(%error, "checkpoint failed");
                }
                checkpointed = Instant::now();
            }
            if self.in_hand.is_empty() && handed == 0 && took_back.elapsed() >= TAKE_BACK_INTERVAL {
                take_back_dead_claims(&self.db);
                took_back = Instant::now();
            }
            // Wait for an outcome or the doorbell; then take every outcome
            // that is in, and store them.
            let wait = if self.in_hand.is_empty() {
                SWEEP_INTERVAL
            } else {
                Duration::from_millis(200)
            };
            match events.recv_timeout(wait) {
                Ok(event) => self.take(event, &mut unavailable_until),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while self.ready.len() < STORE_ROUND {
                match events.try_recv() {
                    Ok(event) => self.take(event, &mut unavailable_until),
                    Err(_) => break,
                }
            }
            // Nothing in the children: nothing will come to overlap with.
            let drain = self.in_hand.len() == self.ready.len() + self.writing_len();
            self.store(drain);
        }
        // Stopping: what is done is stored; messages still in a child stay
        // pending (the pool is dropped: each processor finishes the message
        // it is on and ends).
        while let Ok(event) = events.try_recv() {
            self.take(event, &mut unavailable_until);
        }
        self.store(true);
        self.pool.clear();
    }

    fn resize(&mut self, processes: usize) {
        self.pool.clear();
        self.queued = vec![0; processes];
        for n in 0..processes {
            match Processor::start(
                self.runtime.clone(),
                self.signal.tx.clone(),
                self.stop.clone(),
                n,
            ) {
                Ok(p) => self.pool.push(p),
                Err(error) => error!(%error, "cannot start a pipeline thread"),
            }
        }
    }

    /// Reads pending messages not in hand yet and gives each to the
    /// processor with the least in hand; how many were handed out.
    fn hand_out(&mut self, processes: usize, max_bytes: u64) -> usize {
        let per_process = if self.sink.intake_busy() {
            PER_PROCESS_DURING_INTAKE
        } else {
            PER_PROCESS
        };
        let room = (processes * per_process).saturating_sub(self.in_hand.len());
        let bytes_left = max_bytes.saturating_sub(self.in_hand_bytes);
        if room == 0 || self.pool.is_empty() || (bytes_left == 0 && !self.in_hand.is_empty()) {
            return 0;
        }
        self.signal.rung.store(false, Ordering::SeqCst);
        // SQLite returns the messages in hand again (they are still
        // `received`); PostgreSQL skips them (this node's live claims).
        let limit = match self.db.dialect() {
            crate::store::sql::Dialect::Sqlite => room + self.in_hand.len(),
            crate::store::sql::Dialect::Postgres => room,
        };
        let batch = match self.db.unprocessed(limit, bytes_left.max(1)) {
            Ok(batch) => batch,
            Err(error) => {
                error!(%error, "reading pending messages failed");
                std::thread::sleep(ERROR_BACKOFF);
                return 0;
            }
        };
        let mut handed = 0;
        let fresh: Vec<RawMessage> = batch
            .into_iter()
            .filter(|r| !self.in_hand.contains_key(&r.id))
            .collect();
        for raw in fresh {
            if handed >= room {
                break;
            }
            let target = (0..self.pool.len())
                .min_by_key(|p| self.queued.get(*p).copied().unwrap_or(0))
                .unwrap_or(0);
            let (id, size) = (raw.id, raw.bytes.len() as u64);
            let Some(jobs) = self.pool[target].jobs.as_ref() else {
                break;
            };
            if jobs.send(raw).is_err() {
                break;
            }
            self.in_hand.insert(id, target);
            self.in_hand_bytes += size;
            if let Some(q) = self.queued.get_mut(target) {
                *q += 1;
            }
            handed += 1;
        }
        if handed > 0 {
            debug!(handed, in_hand = self.in_hand.len(), "processing");
        }
        handed
    }

    fn take(&mut self, event: Event, unavailable_until: &mut Option<Instant>) {
        let Event::Done(done) = event else { return };
        let (raw, outcome) = *done;
        if let Some(q) = self
            .in_hand
            .get(&raw.id)
            .and_then(|p| self.queued.get_mut(*p))
        {
            *q = q.saturating_sub(1);
        }
        match outcome {
            Some(outcome) => self.ready.push((raw, outcome)),
            None => {
                // No worker process could be run: the message stays pending.
                self.release(&raw);
                *unavailable_until = Some(Instant::now() + ERROR_BACKOFF);
            }
        }
    }

    /// Messages handed to the writer and not waited for.
    fn writing_len(&self) -> usize {
        self.writing.iter().map(|(raws, _)| raws.len()).sum()
    }

    fn release(&mut self, raw: &RawMessage) {
        if self.in_hand.remove(&raw.id).is_some() {
            self.in_hand_bytes = self.in_hand_bytes.saturating_sub(raw.bytes.len() as u64);
        }
    }

    /// Hands the outcomes that are in to the writer; waits for the rounds
    /// before, past [`ROUNDS_IN_FLIGHT`] (all of them when `drain`).
    fn store(&mut self, drain: bool) {
        if !self.ready.is_empty() {
            let ready = std::mem::take(&mut self.ready);
            let (raws, outcomes): (Vec<RawMessage>, Vec<Outcome>) = ready.into_iter().unzip();
            let pipeline = self.runtime.current().pipeline.clone();
            let mut outcomes = outcomes;
            let index = self.owners.current(&self.db);
            let resolver = self.owners.resolver(&pipeline.config().owners);
            pipeline.route(&index, resolver, &mut outcomes);
            match pipeline.submit_outcomes(&mut self.sink, outcomes) {
                Ok(submitted) => self.writing.push_back((raws, submitted)),
                Err(error) => {
                    for raw in &raws {
                        self.release(raw);
                    }
                    error!(%error, "storing reports failed");
                    std::thread::sleep(ERROR_BACKOFF);
                }
            }
        }
        let keep = if drain { 0 } else { ROUNDS_IN_FLIGHT - 1 };
        while self.writing.len() > keep {
            let Some((raws, submitted)) = self.writing.pop_front() else {
                break;
            };
            self.finish(raws, submitted);
        }
    }

    /// Waits for one round, then hands its reports' sender checks over.
    fn finish(&mut self, raws: Vec<RawMessage>, submitted: Submitted<WorkerPending>) {
        let pipeline = self.runtime.current().pipeline.clone();
        let checks_enabled = pipeline.config().auth.enabled;
        let result = pipeline.finish_outcomes(&mut self.sink, submitted);
        for raw in &raws {
            self.release(raw);
        }
        match result {
            Ok(ids) => {
                // The stored reports' sender checks start now, beside the
                // pipeline: no report waits for their DNS.
                if let (Some(checks), true) = (&self.checks, checks_enabled) {
                    for (raw, stored) in raws.into_iter().zip(ids) {
                        if let (Some(stored), None) = (stored.report(), &raw.auth) {
                            checks.submit(stored.id, raw);
                        }
                    }
                }
                self.replies_queued.notify_one();
            }
            Err(error) => {
                // The messages stay pending; the next round reads them again.
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
        let me = crate::store::node_name();
        let host = me.split(':').next().unwrap().to_owned();
        let init_started = crate::store::process_started(1).unwrap();
        let claimers = vec![
            me.clone(),
            format!("{host}:4000000000"), // no such process
            format!("{host}:4000000000:5"),
            "elsewhere:4000000000".to_owned(), // another host: its lease decides
            format!("{host}:notapid"),
            format!("{host}:1"),                // init, named the old way: alive
            format!("{host}:1:{init_started}"), // init: alive
            format!("{host}:1:{}", init_started + 1), // PID 1 reused: gone
        ];
        assert_eq!(
            dead_local_claimers(&claimers, &me),
            [
                format!("{host}:4000000000"),
                format!("{host}:4000000000:5"),
                format!("{host}:1:{}", init_started + 1)
            ]
        );
    }

    #[test]
    fn a_process_is_named_by_its_pid_and_start() {
        let me = crate::store::node_name();
        let parts: Vec<&str> = me.split(':').collect();
        assert_eq!(parts.len(), 3, "{me}");
        assert_eq!(parts[1], std::process::id().to_string());
        assert!(parts[2].parse::<u64>().is_ok(), "{me}");
    }
}

//! Processing in a child process: whatever a message does to the parser
//! (a stack overflow, an allocation past the memory limit, an endless loop)
//! costs the child, never the daemon that answers SMTP.
//!
//! In: raw messages, one at a time, from the worker thread, `ingest` or
//! `reprocess`. Out: a [`ReportDraft`] per message, or a [`Failure`] saying
//! how the child died. The child is `abuse-inbox worker-child` (this same
//! binary, re-executed); it gets the configuration as its first frame, then
//! answers one frame per message. It runs with `RLIMIT_AS` set to
//! `worker.max_memory_bytes`, no core dumps, and a large stack for its
//! processing thread; the parent kills it after `worker.max_seconds_per_message`.
//! A dead child is started again for the next message (after a short pause
//! when it died young, so a child that cannot start does not spin).
//!
//! Frames on both pipes are a little-endian `u32` length and that many bytes.
//! Parent to child: the `Config` as JSON; then per message a JSON [`Job`] and
//! the raw bytes. Child to parent: JSON `Result<ReportDraft, String>` (`Err`
//! is a panic the child caught: deterministic, so not retried).

use crate::config::Config;
use crate::model::{Envelope, RawId, RawMessage, ReportDraft};
use crate::pipeline::{panic_text, Failure, Pipeline, Processor};
use serde::{Deserialize, Serialize};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tracing::{error, warn};

/// Name of the hidden subcommand that runs the child.
pub const CHILD_COMMAND: &str = "worker-child";
/// Largest frame either side accepts: a corrupt length never becomes a huge
/// allocation.
const MAX_FRAME_BYTES: usize = 512 * 1024 * 1024;
/// Stack of the child's processing thread (address space, touched only as
/// used, and counted in `worker.max_memory_bytes`).
const CHILD_STACK_BYTES: usize = 64 * 1024 * 1024;
/// A child that dies sooner than this after its start makes the next start wait...
const YOUNG_DEATH: Duration = Duration::from_secs(1);
/// ...this long, so a child that cannot start does not spin the CPU.
const RESTART_PAUSE: Duration = Duration::from_millis(500);

/// One message, as the child is told about it (its bytes follow in a frame).
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    id: RawId,
    received_at: String,
    envelope: Envelope,
    /// The stored sender checks; `None`: they are still to be made (by
    /// the daemon, after the report is stored).
    auth: Option<crate::model::auth::AuthResults>,
}

/// The supervised worker child.
pub struct Isolated {
    child: Option<Running>,
    last_start: Option<Instant>,
    /// The `abuse-inbox` binary to run; `None`: this process's own.
    binary: Option<std::path::PathBuf>,
}

struct Running {
    process: Child,
    stdin: BufWriter<ChildStdin>,
    replies: Receiver<Vec<u8>>,
    /// The configuration it was started with: another one means a restart.
    config: Config,
}

impl Default for Isolated {
    fn default() -> Self {
        Isolated::new()
    }
}

impl Isolated {
    /// No child yet: the first message starts one.
    pub fn new() -> Isolated {
        Isolated {
            child: None,
            last_start: None,
            binary: None,
        }
    }

    /// Runs `binary` as the child instead of this process's own binary
    /// (benchmarks and other programs that embed the pipeline).
    pub fn with_binary(binary: std::path::PathBuf) -> Isolated {
        Isolated {
            child: None,
            last_start: None,
            binary: Some(binary),
        }
    }

    /// The process id of the running child, if any (for tests and logs).
    pub fn child_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.process.id())
    }

    fn start(&mut self, config: &Config) -> Result<&mut Running, Failure> {
        if let Some(last) = self.last_start {
            if last.elapsed() < YOUNG_DEATH {
                std::thread::sleep(RESTART_PAUSE);
            }
        }
        self.last_start = Some(Instant::now());
        let binary = match self.binary.as_ref().or(config.worker.binary.as_ref()) {
            Some(binary) => binary.clone(),
            None => own_binary()?,
        };
        let mut command = Command::new(binary);
        command
            .args(["--log-format", config.log.format.as_str(), CHILD_COMMAND])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut process = command
            .spawn()
            .map_err(|e| Failure::Unavailable(format!("cannot start: {e}")))?;
        let (Some(stdin), Some(stdout)) = (process.stdin.take(), process.stdout.take()) else {
            let _ = process.kill();
            let _ = process.wait();
            return Err(Failure::Unavailable("no pipes to the child".into()));
        };
        // A reader thread turns the child's frames into a channel, so the
        // parent can wait for a reply with a deadline.
        let (tx, replies) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("worker-reader".into())
            .spawn(move || {
                let mut stdout = BufReader::new(stdout);
                while let Ok(Some(frame)) = read_frame(&mut stdout) {
                    if tx.send(frame).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Failure::Unavailable(format!("cannot start a thread: {e}")))?;
        let mut running = Running {
            process,
            stdin: BufWriter::new(stdin),
            replies,
            config: config.clone(),
        };
        let config_json = serde_json::to_vec(config).expect("a Config always serializes");
        if let Err(error) =
            write_frame(&mut running.stdin, &config_json).and_then(|()| running.stdin.flush())
        {
            let how = running.reap(None);
            return Err(Failure::Unavailable(format!("{how} at start ({error})")));
        }
        tracing::debug!(pid = running.process.id(), "worker started");
        Ok(self.child.insert(running))
    }

    fn send(running: &mut Running, raw: &RawMessage) -> io::Result<()> {
        let job = Job {
            id: raw.id,
            received_at: raw.received_at.clone(),
            envelope: raw.envelope.clone(),
            auth: raw.auth.clone(),
        };
        let header = serde_json::to_vec(&job).expect("a Job always serializes");
        write_frame(&mut running.stdin, &header)?;
        write_frame(&mut running.stdin, &raw.bytes)?;
        running.stdin.flush()
    }

    /// Stops the child (it exits when its input closes).
    pub fn shutdown(&mut self) {
        if let Some(mut running) = self.child.take() {
            let _ = running.process.kill();
            let _ = running.process.wait();
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Running {
    /// Kills the child if needed and says how it ended.
    fn reap(&mut self, timed_out: Option<Duration>) -> String {
        let _ = self.process.kill();
        let status = self.process.wait();
        if let Some(limit) = timed_out {
            return format!("timed out after {} s", limit.as_secs());
        }
        match status {
            Ok(status) => describe_exit(status),
            Err(error) => format!("died ({error})"),
        }
    }
}

/// This very binary: on Linux through `/proc/self/exe`, which still works
/// after a package upgrade replaced the file on disk.
fn own_binary() -> Result<std::path::PathBuf, Failure> {
    let proc_exe = std::path::Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe.to_owned());
    }
    std::env::current_exe()
        .map_err(|e| Failure::Unavailable(format!("cannot find own binary: {e}")))
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                libc::SIGSEGV => "SIGSEGV (stack overflow or bad memory access)",
                libc::SIGABRT => "SIGABRT (abort: out of memory or stack overflow)",
                libc::SIGKILL => "SIGKILL",
                libc::SIGBUS => "SIGBUS",
                libc::SIGXCPU => "SIGXCPU (CPU limit)",
                _ => "a signal",
            };
            return format!("killed by signal {signal}, {name}");
        }
    }
    format!("exited with {status}")
}

impl Processor for Isolated {
    fn process(&mut self, pipeline: &Pipeline, raw: &RawMessage) -> Result<ReportDraft, Failure> {
        let config = pipeline.config();
        if self.child.as_ref().is_some_and(|c| &c.config != config) {
            self.shutdown(); // reloaded: the next child runs the new configuration
        }
        let running = match self.child.take() {
            Some(running) => self.child.insert(running),
            None => self.start(config)?,
        };
        let limit = Duration::from_secs(config.worker.max_seconds_per_message);
        let sent = Isolated::send(running, raw);
        let reply = match sent {
            Ok(()) => running.replies.recv_timeout(limit),
            Err(_) => Err(RecvTimeoutError::Disconnected),
        };
        let frame = match reply {
            Ok(frame) => frame,
            Err(waited) => {
                let timed_out = matches!(waited, RecvTimeoutError::Timeout).then_some(limit);
                let mut running = self.child.take().expect("the child is running");
                let how = running.reap(timed_out);
                warn!(raw_id = raw.id.0, how = %how, "worker lost on a message");
                crate::metrics::get().worker_restarts.inc();
                return Err(Failure::Crashed(how));
            }
        };
        match serde_json::from_slice::<Result<ReportDraft, String>>(&frame) {
            Ok(Ok(draft)) => Ok(draft),
            Ok(Err(panic)) => Err(Failure::Panicked(panic)),
            Err(error) => {
                error!(%error, "worker answered something unreadable; restarting it");
                if let Some(mut running) = self.child.take() {
                    running.reap(None);
                }
                Err(Failure::Crashed(format!("answered unreadably ({error})")))
            }
        }
    }
}

fn write_frame(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

/// The next frame, or `None` at a clean end of input.
fn read_frame(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut frame = Vec::new();
    input.take(len as u64).read_to_end(&mut frame)?;
    if frame.len() != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(frame))
}

/// The child's side: `abuse-inbox worker-child`. Reads the configuration,
/// sets its own limits, then answers message after message until its input
/// closes. Returns the process exit code.
pub fn child_main() -> u8 {
    let mut stdin = BufReader::new(io::stdin());
    let config: Config = match read_frame(&mut stdin) {
        Ok(Some(frame)) => match serde_json::from_slice(&frame) {
            Ok(config) => config,
            Err(error) => {
                error!(%error, "worker: unreadable configuration");
                return 2;
            }
        },
        _ => return 2,
    };
    let pipeline = match Pipeline::new(&config) {
        Ok(pipeline) => pipeline,
        Err(problems) => {
            error!(problems = %problems.join("; "), "worker: invalid configuration");
            return 2;
        }
    };
    pipeline.prepare();
    set_limits(&config);
    // The work runs on a thread with a large stack: deep structures that
    // the budgets miss are dropped recursively by mail-parser.
    let worker = std::thread::Builder::new()
        .name("worker".into())
        .stack_size(CHILD_STACK_BYTES)
        .spawn(move || serve_jobs(&mut stdin, &pipeline));
    match worker.map(|handle| handle.join()) {
        Ok(Ok(code)) => code,
        _ => 3,
    }
}

fn serve_jobs(stdin: &mut impl Read, pipeline: &Pipeline) -> u8 {
    let mut stdout = BufWriter::new(io::stdout().lock());
    loop {
        let job: Job = match read_frame(stdin) {
            Ok(Some(frame)) => match serde_json::from_slice(&frame) {
                Ok(job) => job,
                Err(_) => return 2,
            },
            Ok(None) => return 0,
            Err(_) => return 2,
        };
        let Ok(Some(bytes)) = read_frame(stdin) else {
            return 2;
        };
        let raw = RawMessage {
            claim: None,
            id: job.id,
            envelope: job.envelope,
            received_at: job.received_at,
            bytes,
            auth: job.auth,
        };
        let result = catch_unwind(AssertUnwindSafe(|| pipeline.process(&raw)))
            .map_err(|panic| panic_text(&*panic));
        drop(raw);
        let answer = serde_json::to_vec(&result).expect("a draft always serializes");
        if write_frame(&mut stdout, &answer)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return 0; // the parent is gone
        }
    }
}

/// The child's own limits: address space, no core files (a message's bytes
/// must not land on disk in a core dump).
fn set_limits(config: &Config) {
    #[cfg(unix)]
    {
        let set = |resource, value: u64| {
            let limit = libc::rlimit {
                rlim_cur: value as libc::rlim_t,
                rlim_max: value as libc::rlim_t,
            };
            // SAFETY: setrlimit reads the struct we pass and changes only this
            // process's limits.
            if unsafe { libc::setrlimit(resource, &limit) } != 0 {
                warn!(error = %io::Error::last_os_error(), "worker: setrlimit failed");
            }
        };
        set(libc::RLIMIT_CORE, 0);
        set(libc::RLIMIT_AS, config.worker.max_memory_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_short_one_is_an_error() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut input = &buf[..];
        assert_eq!(read_frame(&mut input).unwrap().unwrap(), b"hello");
        assert_eq!(read_frame(&mut input).unwrap().unwrap(), b"");
        assert!(read_frame(&mut input).unwrap().is_none());
        let mut short = &buf[..6];
        assert!(read_frame(&mut short).is_err());
        let huge = (u32::MAX).to_le_bytes();
        assert!(read_frame(&mut &huge[..]).is_err());
    }
}

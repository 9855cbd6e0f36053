//! `ingest` and `reprocess`: messages into the pipeline from files, standard
//! input or the stored raw messages, run to the end.

use super::render::print_json;
use super::{admin_store, pipeline};
use crate::config::Config;
use crate::daemon::isolate::Isolated;
use crate::model::{Envelope, Incoming, Origin, RawId, RawMessage, Report};
use crate::owners::route::{LocalOnly, Resolver};
use crate::owners::Index;
use crate::parse::rawmail;
use crate::pipeline::Pipeline;
use crate::store::{Db, Location, Mode, Role, Saved};
use anyhow::{bail, Context as _};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(super) fn ingest(config: &Config, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let pipeline = pipeline(config)?;
    let mut db = crate::store::open(
        &Location::parse(&config.store.path),
        Mode::ReadWrite {
            role: Role::Cli,
            create: true,
        },
    )?;
    let mut failed = false;
    let mut worker = Isolated::new();
    let (_, owners) = db.owners_index()?;
    let mut resolver = owners_resolver(config);
    let checks = if config.auth.enabled {
        Some(InlineChecks::new(config)?)
    } else {
        None
    };
    for file in files {
        match ingest_one(
            &mut db,
            &pipeline,
            &mut worker,
            (&owners, resolver.as_mut()),
            checks.as_ref(),
            file,
        ) {
            Ok(Ingested::Report(report)) => print_json(&report)?,
            Ok(Ingested::Answer(case)) => print_json(&serde_json::json!({
                "answer_to_case": case,
            }))?,
            Err(error) => {
                failed = true;
                eprintln!(
                    "abuse-inbox: {}: {}",
                    file.display(),
                    crate::describe_error(&error)
                );
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `ingest` makes the sender checks itself, before processing, so the report
/// it prints is decided (the daemon makes them after storing the report).
pub(super) struct InlineChecks {
    verifier: crate::daemon::auth::Verifier,
    runtime: tokio::runtime::Runtime,
}

impl InlineChecks {
    pub(super) fn new(config: &Config) -> anyhow::Result<InlineChecks> {
        let verifier = crate::daemon::auth::Verifier::new(&config.auth, &config.smtp.hostname)
            .map_err(anyhow::Error::msg)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the sender checks' runtime")?;
        Ok(InlineChecks { verifier, runtime })
    }

    fn run(&self, raw: &mut RawMessage) {
        if raw.auth.is_none() {
            raw.auth = Some(
                self.runtime
                    .block_on(self.verifier.verify(&raw.envelope, &raw.bytes)),
            );
        }
    }
}

/// What one ingested message became.
pub(super) enum Ingested {
    Report(Box<Report>),
    /// A customer's answer to a notice, kept on its case.
    Answer(crate::model::CaseId),
}

pub(super) fn ingest_one(
    db: &mut Db,
    pipeline: &Pipeline,
    worker: &mut Isolated,
    (owners, resolver): (&Index, &mut dyn Resolver),
    checks: Option<&InlineChecks>,
    file: &Path,
) -> anyhow::Result<Ingested> {
    let bytes = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        bytes
    } else {
        std::fs::read(file).context("reading the file")?
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        bail!("empty message");
    }
    let incoming = Incoming {
        envelope: Envelope {
            origin: Origin::Ingest,
            peer_ip: None,
            helo: None,
            mail_from: rawmail::return_path(&bytes),
            rcpt_to: Vec::new(),
            dsn: None,
        },
        received_at: crate::now_rfc3339(),
        bytes,
    };
    let committed = db.commit_raws(&[&incoming])?[0];
    if let Some(report) = db.report_for_raw(committed.raw_id)? {
        return Ok(Ingested::Report(Box::new(report))); // delivered before: one report (DESIGN rule 5)
    }
    let mut raw: RawMessage = db
        .raw(committed.raw_id)?
        .context("the stored message vanished")?;
    if let Some(checks) = checks {
        checks.run(&mut raw);
    }
    let stored =
        pipeline.process_and_store(db, worker, owners, resolver, std::slice::from_ref(&raw))?;
    let id = match stored.first() {
        Some(Saved::Report(s)) => s.id,
        Some(Saved::Answer(case)) => return Ok(Ingested::Answer(*case)),
        _ => bail!(
            "processing failed; the message is stored as raw {} (abuse-inbox raw list --status failed)",
            raw.id.0
        ),
    };
    let report = db.report(id)?.context("the stored report vanished")?;
    Ok(Ingested::Report(Box::new(report)))
}

/// Routing's resolver: the configured HTTP one, or the local owners alone.
pub(super) fn owners_resolver(config: &Config) -> Box<dyn Resolver> {
    match crate::daemon::resolver::HttpResolver::new(&config.owners) {
        Some(resolver) => Box::new(Round(resolver)),
        None => Box::new(LocalOnly),
    }
}

/// The HTTP resolver with one round's budget per call from the command
/// line (a message at a time: each may wait one timeout).
struct Round(crate::daemon::resolver::HttpResolver);

impl Resolver for Round {
    fn active(&self) -> bool {
        true
    }

    fn resolve(
        &mut self,
        query: &crate::owners::route::Query,
    ) -> Option<crate::owners::route::Answer> {
        self.0.begin_round();
        self.0.resolve(query)
    }
}

/// Messages re-processed per transaction.
pub(super) const REPROCESS_BATCH: usize = 256;

pub(super) fn reprocess(
    config: &Config,
    since: Option<String>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    if since.is_none() && !all {
        bail!("say which messages: --all, or --since RFC3339");
    }
    let pipeline = pipeline(config)?;
    let mut db = admin_store(config)?;
    let started = std::time::Instant::now();
    let (mut done, mut failed, mut after) = (0u64, 0u64, RawId(0));
    let mut rerouted = 0u64;
    let mut worker = Isolated::new();
    // Routed by the owners as they are now (after an import, that is the
    // point of reprocessing).
    let (_, owners) = db.owners_index()?;
    let mut resolver = owners_resolver(config);
    // The whole store's count is known at once; since a moment, it is not.
    let total = all.then(|| {
        db.raw_status_counts()
            .map(|c| c.iter().map(|(_, n)| n).sum())
    });
    let mut progress = super::progress::Progress::new("reprocess", "messages", total.transpose()?);
    loop {
        let batch = db.raws_after(after, since.as_deref(), REPROCESS_BATCH)?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        let stored =
            pipeline.process_and_store(&mut db, &mut worker, &owners, resolver.as_mut(), &batch)?;
        if stored.len() < batch.len() {
            bail!("no worker process could be started; {done} messages were reprocessed");
        }
        done += stored.len() as u64;
        failed += stored.iter().filter(|s| !s.is_stored()).count() as u64;
        rerouted += stored
            .iter()
            .filter_map(Saved::report)
            .filter(|s| s.customers_changed)
            .count() as u64;
        progress.set(done);
    }
    drop(progress);
    let seconds = started.elapsed().as_secs_f64();
    print_json(&serde_json::json!({
        "reprocessed": done,
        "failed": failed,
        "customers_changed": rerouted,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "messages_per_second": if seconds > 0.0 { (done as f64 / seconds).round() } else { 0.0 },
    }))?;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

//! `import maildir DIR | mbox FILE`: a mailbox's history, through the same
//! intake as SMTP (durable commit, dedup), then processed in batches like
//! `reprocess`. A run cut short is finished by running it again: what was
//! committed is not committed twice, and what was committed but not
//! processed is processed then.

use super::render::print_json;
use crate::config::Config;
use crate::daemon::isolate::Isolated;
use crate::import::{Found, Item};
use crate::model::{Incoming, Origin, RawId};
use crate::store::{Db, Location, Mode, Role, Saved};
use anyhow::Context as _;
use std::path::Path;
use std::process::ExitCode;

/// Messages committed and processed together.
const BATCH: usize = 256;
/// Bytes of messages held for one batch, at most.
const BATCH_BYTES: usize = 32 << 20;
/// Failures the summary names one by one (all are counted).
const NAMED_FAILURES: usize = 50;

/// What an import did.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    source: String,
    format: &'static str,
    dry_run: bool,
    /// Messages read from the mailbox.
    messages: u64,
    /// New reports (or answers to notices) stored.
    stored: u64,
    /// Already stored before (an earlier import, or SMTP).
    duplicates: u64,
    /// Arrived before `--since`: not imported.
    older_than_since: u64,
    failed: u64,
    failures: Vec<Failure>,
    seconds: f64,
    messages_per_second: f64,
}

#[derive(Debug, serde::Serialize)]
struct Failure {
    place: String,
    reason: String,
}

impl Summary {
    fn fail(&mut self, place: String, reason: String) {
        self.failed += 1;
        if self.failures.len() < NAMED_FAILURES {
            self.failures.push(Failure { place, reason });
        }
    }
}

/// Where `import` reads from.
pub(super) enum Source {
    Maildir(std::path::PathBuf),
    Mbox(std::path::PathBuf),
    Imap {
        address: crate::config::ImapAddress,
        options: crate::import::imap::client::Options,
    },
}

impl Source {
    /// The command line's source, checked.
    pub(super) fn parse(
        source: &str,
        path: Option<std::path::PathBuf>,
        tls: Option<crate::config::ImapTls>,
        password_file: Option<std::path::PathBuf>,
        ca_file: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Source> {
        let is_url = source.starts_with("imap://") || source.starts_with("imaps://");
        let imap_only = tls.is_some() || password_file.is_some() || ca_file.is_some();
        match (source, path) {
            ("maildir", Some(dir)) if !imap_only => Ok(Source::Maildir(dir)),
            ("mbox", Some(file)) if !imap_only => Ok(Source::Mbox(file)),
            ("maildir" | "mbox", Some(_)) => {
                anyhow::bail!("--tls, --password-file and --ca-file are for an imap:// source")
            }
            ("maildir", None) => anyhow::bail!("import maildir needs the directory: import maildir DIR"),
            ("mbox", None) => anyhow::bail!("import mbox needs the file: import mbox FILE"),
            (url, None) if is_url => {
                let address = crate::config::ImapAddress::parse(url, tls).map_err(anyhow::Error::msg)?;
                let password = read_password(password_file.as_deref())?;
                Ok(Source::Imap {
                    address,
                    options: crate::import::imap::client::Options {
                        password,
                        ca_file,
                        timeout: std::time::Duration::from_secs(60),
                    },
                })
            }
            ("imap", Some(url)) => Source::parse(
                &url.to_string_lossy(),
                None,
                tls,
                password_file,
                ca_file,
            ),
            (other, _) => anyhow::bail!(
                "{other:?} is not a source: write import maildir DIR, import mbox FILE or import imap://USER@HOST[:PORT]/FOLDER"
            ),
        }
    }
}

/// The IMAP password: the first line of `file`, else `IMAP_PASSWORD`.
pub(super) fn read_password(file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the password file {}", file.display()))?;
        let line = text.lines().next().unwrap_or_default().to_owned();
        anyhow::ensure!(
            !line.is_empty(),
            "the password file {} is empty: its first line is the password",
            file.display()
        );
        return Ok(line);
    }
    match std::env::var("IMAP_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => anyhow::bail!(
            "no IMAP password: give --password-file FILE (its first line) or set IMAP_PASSWORD; never on the command line"
        ),
    }
}

/// `import`.
pub(super) fn run(
    config: &Config,
    source: Source,
    since: Option<String>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let max = config.smtp.max_message_bytes;
    let (origin, name, items, total): (
        Origin,
        String,
        Box<dyn Iterator<Item = std::io::Result<Item>>>,
        _,
    ) = match source {
        Source::Maildir(path) => {
            let files = crate::import::maildir::list(&path)
                .with_context(|| format!("reading the Maildir {}", path.display()))?;
            let total = files.len() as u64;
            let items = files
                .into_iter()
                .map(move |f| Ok(crate::import::maildir::read(&f, max)));
            (
                Origin::Maildir,
                path.display().to_string(),
                Box::new(items),
                Some(total),
            )
        }
        Source::Mbox(path) => {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("opening the mbox {}", path.display()))?;
            let reader = crate::import::mbox::Reader::new(
                std::io::BufReader::with_capacity(1 << 20, file),
                max,
            );
            (
                Origin::Mbox,
                path.display().to_string(),
                Box::new(reader),
                None,
            )
        }
        Source::Imap { address, options } => {
            let reader = crate::import::imap::Reader::open(&address, &options, max)
                .with_context(|| format!("reading imap://{}", address.name()))?;
            let total = reader.total;
            (
                Origin::ImapImport,
                format!("imap://{}", address.name()),
                Box::new(reader),
                Some(total),
            )
        }
    };
    let since = since
        .map(|s| chrono::DateTime::parse_from_rfc3339(&s).map(|t| t.to_utc()))
        .transpose()?;
    let mut summary = Summary {
        source: name.clone(),
        format: origin.as_str(),
        dry_run,
        ..Summary::default()
    };
    let started = std::time::Instant::now();
    let mut store = if dry_run {
        None
    } else {
        Some(Importer::open(config, origin)?)
    };
    let mut progress = super::progress::Progress::new("import", "messages", total);
    let mut batch: Vec<Found> = Vec::new();
    let mut batch_bytes = 0;
    for item in items {
        let item = item.with_context(|| format!("reading {name}"))?;
        summary.messages += 1;
        progress.set(summary.messages);
        let found = match item {
            Item::Message(found) => found,
            Item::Skipped { place, reason } => {
                summary.fail(place, reason);
                continue;
            }
        };
        if let (Some(since), Some(arrived)) = (since, found.arrived) {
            if arrived < since {
                summary.older_than_since += 1;
                continue;
            }
        }
        let Some(store) = store.as_mut() else {
            continue;
        };
        batch_bytes += found.bytes.len();
        batch.push(found);
        if batch.len() >= BATCH || batch_bytes >= BATCH_BYTES {
            if let Err(e) = store.flush(std::mem::take(&mut batch), &mut summary) {
                let _ = store.finish(&mut summary);
                return Err(e);
            }
            batch_bytes = 0;
        }
    }
    if let Some(store) = store.as_mut() {
        let flushed = store.flush(batch, &mut summary);
        // What was handed over is stored whatever happened after.
        let stored = store.finish(&mut summary);
        flushed?;
        stored?;
    }
    drop(progress);
    let seconds = started.elapsed().as_secs_f64();
    summary.seconds = (seconds * 1000.0).round() / 1000.0;
    summary.messages_per_second = if seconds > 0.0 {
        (summary.messages as f64 / seconds).round()
    } else {
        0.0
    };
    print_json(&summary)?;
    Ok(if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The store side of an import: the main thread commits a batch and has
/// the workers process it while a second thread stores the batch before
/// (its own connection), so parsing and writing overlap.
struct Importer {
    db: Db,
    origin: Origin,
    pipeline: std::sync::Arc<crate::pipeline::Pipeline>,
    /// One worker process per CPU (`worker.processes`), each on its share
    /// of a batch.
    workers: Vec<Isolated>,
    owners: crate::owners::Index,
    resolver: Box<dyn crate::owners::route::Resolver>,
    /// To the storing thread: one batch waits while one is stored.
    to_store: Option<std::sync::mpsc::SyncSender<Vec<crate::store::Outcome>>>,
    storer: Option<std::thread::JoinHandle<anyhow::Result<Stored>>>,
}

/// What the storing thread stored.
#[derive(Default)]
struct Stored {
    stored: u64,
    failures: Vec<(String, String)>,
}

impl Importer {
    fn open(config: &Config, origin: Origin) -> anyhow::Result<Importer> {
        let open = || {
            crate::store::open(
                &Location::parse(&config.store.path),
                Mode::ReadWrite {
                    role: Role::Cli,
                    create: true,
                },
            )
        };
        let db = open()?;
        let (_, owners) = db.owners_index()?;
        let pipeline = std::sync::Arc::new(super::pipeline(config)?);
        let (to_store, batches) = std::sync::mpsc::sync_channel::<Vec<crate::store::Outcome>>(1);
        let mut store_db = open()?;
        let store_pipeline = pipeline.clone();
        let storer = std::thread::Builder::new()
            .name("import-store".into())
            .spawn(move || -> anyhow::Result<Stored> {
                let mut done = Stored::default();
                for outcomes in batches {
                    let ids: Vec<RawId> = outcomes.iter().map(|o| o.raw_id).collect();
                    let saved = store_pipeline.store_outcomes(&mut store_db, outcomes)?;
                    for (id, saved) in ids.into_iter().zip(saved) {
                        match saved {
                            Saved::Report(_) | Saved::Answer(_) => done.stored += 1,
                            Saved::NotStored => {
                                let why = store_db
                                    .raw_summary(id)?
                                    .and_then(|(r, _)| r.error)
                                    .unwrap_or_else(|| "not stored".into());
                                done.failures.push((format!("raw {}", id.0), why));
                            }
                        }
                    }
                }
                Ok(done)
            })?;
        Ok(Importer {
            db,
            origin,
            pipeline,
            workers: (0..config.worker.process_count().clamp(1, 8))
                .map(|_| Isolated::new())
                .collect(),
            owners,
            resolver: super::ingest::owners_resolver(config),
            to_store: Some(to_store),
            storer: Some(storer),
        })
    }

    /// Commits `batch` (one transaction), processes the messages that have
    /// no report yet and hands them to the storing thread.
    fn flush(&mut self, batch: Vec<Found>, summary: &mut Summary) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = crate::now_rfc3339();
        let incoming: Vec<Incoming> = batch
            .into_iter()
            .map(|f| Incoming {
                envelope: crate::import::envelope(&f.bytes, self.origin),
                received_at: f.arrived.map_or_else(|| now.clone(), crate::rfc3339),
                bytes: f.bytes,
            })
            .collect();
        let refs: Vec<&Incoming> = incoming.iter().collect();
        let committed = self.db.commit_raws(&refs)?;
        drop(refs);
        let mut todo: Vec<RawId> = Vec::new();
        for c in &committed {
            // Stored before and processed: a duplicate. Committed by a run
            // cut short before processing: processed now.
            let processed = c.is_duplicate
                && self
                    .db
                    .raw_summary(c.raw_id)?
                    .is_some_and(|(r, _)| r.status != crate::model::RawStatus::Received);
            // The same message twice in one batch is one message.
            if processed || todo.contains(&c.raw_id) {
                summary.duplicates += 1;
            } else {
                todo.push(c.raw_id);
            }
        }
        let raws: Vec<_> = todo
            .iter()
            .filter_map(|id| self.db.raw(*id).transpose())
            .collect::<Result<_, _>>()?;
        let mut outcomes = self.process(&raws);
        let short = outcomes.len() < raws.len();
        self.pipeline
            .route(&self.owners, self.resolver.as_mut(), &mut outcomes);
        if let Some(to_store) = &self.to_store {
            if to_store.send(outcomes).is_err() {
                // The storing thread ended: its error comes with `finish`.
                self.to_store = None;
            }
        }
        if short {
            anyhow::bail!(
                "no worker process could be started; the messages from raw {} on stay stored unprocessed (run the import again)",
                raws[raws.len() - 1].id.0
            );
        }
        Ok(())
    }

    /// Waits for the storing thread and counts what it stored.
    fn finish(&mut self, summary: &mut Summary) -> anyhow::Result<()> {
        self.to_store = None;
        let Some(storer) = self.storer.take() else {
            return Ok(());
        };
        let done = storer
            .join()
            .map_err(|_| anyhow::anyhow!("the storing thread panicked"))??;
        summary.stored += done.stored;
        for (place, reason) in done.failures {
            summary.fail(place, reason);
        }
        Ok(())
    }

    /// The outcomes of `raws`, in order, processed by the workers side by
    /// side; shorter than `raws` when a worker could not be run (from the
    /// first message it did not process on).
    fn process(&mut self, raws: &[crate::model::RawMessage]) -> Vec<crate::store::Outcome> {
        let share = raws.len().div_ceil(self.workers.len()).max(1);
        let pipeline = &*self.pipeline;
        let parts: Vec<(usize, Vec<crate::store::Outcome>)> = std::thread::scope(|scope| {
            let running: Vec<_> = self
                .workers
                .iter_mut()
                .zip(raws.chunks(share))
                .map(|(worker, chunk)| {
                    scope.spawn(move || (chunk.len(), pipeline.outcomes(worker, chunk)))
                })
                .collect();
            running
                .into_iter()
                .map(|t| t.join().unwrap_or((1, Vec::new())))
                .collect()
        });
        let mut out = Vec::with_capacity(raws.len());
        for (wanted, part) in parts {
            let whole = part.len() == wanted;
            out.extend(part);
            if !whole {
                break;
            }
        }
        out
    }
}

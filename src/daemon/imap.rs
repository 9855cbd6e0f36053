//! `[[imap]]`: IMAP mailboxes as a second way in. Each mailbox has a task
//! that reads its folder oldest first in bounded batches, commits every
//! message through the same queue as SMTP (durable, deduplicated), and
//! only then moves it to the processed folder; a message that cannot be
//! taken (too large, not a message) goes to the failed folder with the
//! reason in the log. Progress is the folder's UIDVALIDITY and the highest
//! committed UID, kept in the store — never `\Seen`, so people may read
//! the mailbox. Between rounds the task waits with IDLE (or polls), and a
//! lost connection is retried with a growing pause.

use crate::config::{Config, ImapAddress, ImapConfig};
use crate::import::imap::client::{self, Connection, Options};
use crate::import::imap::{body_chunks, not_a_message, split_by_size};
use crate::model::{Incoming, Origin};
use crate::smtp::NewMail;
use crate::store::{CommitQueue, Db, Location, Mode, Role};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The first pause after a failure; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(300);
/// Deadline of each IMAP command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One mailbox, ready to run.
struct Mailbox {
    address: ImapAddress,
    options: Options,
    config: ImapConfig,
    /// `user@host:port/folder`: the log's and the store's name for it.
    name: String,
}

/// Checks every `[[imap]]` section and reads its password.
///
/// # Errors
/// Each problem, by key.
fn mailboxes(config: &Config) -> Result<Vec<Mailbox>, Vec<String>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, imap) in config.imap.iter().enumerate() {
        let address = match ImapAddress::parse(&imap.url, imap.tls) {
            Ok(a) => a,
            Err(e) => {
                problems.push(format!("imap[{i}].url: {e}"));
                continue;
            }
        };
        let password = match &imap.password_file {
            None => Err("is not set".to_owned()),
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))
                .and_then(|text| {
                    let line = text.lines().next().unwrap_or_default().to_owned();
                    if line.is_empty() {
                        Err(format!(
                            "{} is empty: its first line is the password",
                            file.display()
                        ))
                    } else {
                        Ok(line)
                    }
                }),
        };
        match password {
            Ok(password) => out.push(Mailbox {
                name: address.name(),
                address,
                options: Options {
                    password,
                    ca_file: imap.ca_file.clone(),
                    timeout: COMMAND_TIMEOUT,
                },
                config: imap.clone(),
            }),
            Err(e) => problems.push(format!("imap[{i}].password_file: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Starts a task per `[[imap]]` mailbox; they end when `stop` is cancelled.
///
/// # Errors
/// A section is wrong or its password cannot be read.
pub fn start(
    config: &Config,
    queue: CommitQueue,
    work: Arc<dyn NewMail>,
    stop: CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, Vec<String>> {
    let store = Location::parse(&config.store.path);
    Ok(mailboxes(config)?
        .into_iter()
        .map(|mailbox| {
            info!(mailbox = %mailbox.name, "imap intake starting");
            tokio::spawn(run(
                mailbox,
                Intake {
                    queue: queue.clone(),
                    work: work.clone(),
                    store: store.clone(),
                    db: None,
                    max_bytes: config.smtp.max_message_bytes,
                },
                stop.clone(),
            ))
        })
        .collect())
}

/// What a mailbox's task commits through.
struct Intake {
    queue: CommitQueue,
    work: Arc<dyn NewMail>,
    store: Location,
    /// The task's own connection to the store, for its progress.
    db: Option<Db>,
    max_bytes: u64,
}

impl Intake {
    /// Runs `f` on the task's store connection, off the async threads.
    async fn with_db<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, crate::store::Error> + Send + 'static,
    ) -> Result<T, String> {
        let taken = self.db.take();
        let location = self.store.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut db = match taken {
                Some(db) => db,
                None => crate::store::open(
                    &location,
                    Mode::ReadWrite {
                        role: Role::Cli,
                        create: false,
                    },
                )?,
            };
            let out = f(&mut db);
            Ok::<_, crate::store::Error>((db, out))
        })
        .await
        .map_err(|_| "the store task failed".to_owned())?;
        match done {
            Ok((db, out)) => {
                self.db = Some(db);
                out.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Why a session with the server ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error(transparent)]
    Imap(#[from] client::Error),
    #[error("the store: {0}")]
    Store(String),
}

async fn run(mailbox: Mailbox, mut intake: Intake, stop: CancellationToken) {
    let mut pause = FIRST_PAUSE;
    loop {
        match session(&mailbox, &mut intake, &stop, &mut pause).await {
            Ok(()) => return,
            Err(error) => {
                crate::metrics::get()
                    .imap_errors
                    .get_or_create(&vec![("mailbox", mailbox.name.clone())])
                    .inc();
                warn!(
                    mailbox = %mailbox.name,
                    %error,
                    retry_in_seconds = pause.as_secs(),
                    "imap intake interrupted"
                );
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// One connection's life: log in, open the folder, then rounds until
/// `stop` (`Ok`) or a failure (`Err`: the caller pauses and reconnects).
async fn session(
    mailbox: &Mailbox,
    intake: &mut Intake,
    stop: &CancellationToken,
    pause: &mut Duration,
) -> Result<(), Ended> {
    let cfg = &mailbox.config;
    let mut conn = Connection::open(&mailbox.address, &mailbox.options).await?;
    conn.ensure_folder(&cfg.processed_folder).await?;
    conn.ensure_folder(&cfg.failed_folder).await?;
    let opened = conn.open_folder(&mailbox.address.folder, false).await?;
    *pause = FIRST_PAUSE;
    let name = mailbox.name.clone();
    let recorded = intake
        .with_db(move |db| db.imap_progress(&name))
        .await
        .map_err(Ended::Store)?;
    let mut last_uid = match recorded {
        Some((validity, last)) if validity == opened.uid_validity => last,
        Some((validity, _)) => {
            warn!(
                mailbox = %mailbox.name,
                was = validity,
                now = opened.uid_validity,
                "UIDVALIDITY changed: reading the folder again (what was stored before is recognised and not stored twice)"
            );
            0
        }
        None => 0,
    };
    info!(
        mailbox = %mailbox.name,
        uid_validity = opened.uid_validity,
        messages = opened.exists,
        after_uid = last_uid,
        idle = cfg.idle && conn.can_idle,
        "imap mailbox open"
    );
    let batch = cfg.batch.max(1) as usize;
    loop {
        if stop.is_cancelled() {
            conn.close().await;
            return Ok(());
        }
        // Committed before but still here (a move that failed): move now.
        let left = conn.uids_to(last_uid, batch).await?;
        if let Err(error) = conn.move_to(&left, &cfg.processed_folder).await {
            warn!(mailbox = %mailbox.name, %error, "cannot move committed messages; retried next round");
        }
        let mut new = conn.uids_from(last_uid.saturating_add(1)).await?;
        let full = new.len() >= batch;
        new.truncate(batch);
        if !new.is_empty() {
            last_uid = round(mailbox, intake, &mut conn, &new, opened.uid_validity).await?;
        }
        if full || conn.heard_of_new_mail() {
            continue;
        }
        let wait = Duration::from_secs(cfg.poll_seconds.max(1));
        if cfg.idle && conn.can_idle {
            conn = conn.idle(wait, stop).await?;
        } else {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Takes `uids` (oldest first): commits what can be taken, records the
/// progress, then moves each message where it belongs. Returns the new
/// last committed UID.
async fn round(
    mailbox: &Mailbox,
    intake: &mut Intake,
    conn: &mut Connection,
    uids: &[u32],
    uid_validity: u32,
) -> Result<u32, Ended> {
    let cfg = &mailbox.config;
    let listed = conn.list(uids).await?;
    let (fits, too_large) = split_by_size(listed, intake.max_bytes);
    let mut failed: Vec<(u32, String)> = too_large
        .iter()
        .map(|l| {
            (
                l.uid,
                format!(
                    "larger than smtp.max_message_bytes ({} > {} bytes)",
                    l.size, intake.max_bytes
                ),
            )
        })
        .collect();
    let mut committed: Vec<u32> = Vec::new();
    // Gone meanwhile (a person deleted it): nothing to do.
    let mut last = uids.last().copied().unwrap_or(0);
    'chunks: for part in body_chunks(&fits) {
        let bodies = conn.bodies(part).await?;
        let mut taking = Vec::new();
        for l in part {
            match bodies.iter().find(|(uid, _)| *uid == l.uid) {
                None => failed.push((l.uid, "the server gave no body for it".into())),
                Some((_, bytes)) => match not_a_message(bytes) {
                    Some(reason) => failed.push((l.uid, reason.into())),
                    None => taking.push((l, bytes.clone())),
                },
            }
        }
        let commits = taking.into_iter().map(|(l, bytes)| {
            let incoming = Incoming {
                envelope: crate::import::envelope(&bytes, Origin::Imap),
                received_at: crate::now_rfc3339(),
                bytes,
            };
            let queue = intake.queue.clone();
            async move { (l.uid, queue.commit(incoming).await) }
        });
        for (uid, result) in futures_util::future::join_all(commits).await {
            match result {
                Ok(done) => {
                    info!(
                        mailbox = %mailbox.name,
                        uid,
                        raw_id = done.raw_id.0,
                        is_duplicate = done.is_duplicate,
                        "message committed"
                    );
                    committed.push(uid);
                }
                Err(error) => {
                    // Not committed: not past it, so the next round takes
                    // it again.
                    warn!(mailbox = %mailbox.name, uid, %error, "commit failed; the message stays for the next round");
                    last = last.min(uid.saturating_sub(1));
                    break 'chunks;
                }
            }
        }
    }
    committed.retain(|uid| *uid <= last);
    failed.retain(|(uid, _)| *uid <= last);
    if !committed.is_empty() {
        intake.work.committed();
        crate::metrics::get().imap(&mailbox.name, "committed", committed.len() as u64);
    }
    let name = mailbox.name.clone();
    intake
        .with_db(move |db| db.set_imap_progress(&name, uid_validity, last))
        .await
        .map_err(Ended::Store)?;
    committed.sort_unstable();
    if let Err(error) = conn.move_to(&committed, &cfg.processed_folder).await {
        warn!(mailbox = %mailbox.name, %error, "cannot move committed messages; retried next round");
    }
    for (uid, reason) in &failed {
        warn!(mailbox = %mailbox.name, uid, %reason, folder = %cfg.failed_folder, "message not taken; moved to the failed folder");
    }
    if !failed.is_empty() {
        crate::metrics::get().imap(&mailbox.name, "failed", failed.len() as u64);
        let mut uids: Vec<u32> = failed.iter().map(|(uid, _)| *uid).collect();
        uids.sort_unstable();
        conn.move_to(&uids, &cfg.failed_folder).await?;
    }
    Ok(last)
}

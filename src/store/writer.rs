//! Group commit: one writer thread, many waiting sessions per transaction.
//!
//! In: [`Incoming`] messages from SMTP sessions. Out: each caller's own
//! [`Committed`] (or error), sent only after the transaction holding its
//! message has committed. While one transaction is being synced, new requests
//! queue up and the next transaction carries all of them, so throughput grows
//! with concurrency while every acknowledgement still waits for its own commit.

use super::{Db, Error};
use crate::model::{Committed, Incoming};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the writer; a full queue makes sessions wait (backpressure).
const QUEUE_DEPTH: usize = 1024;

struct Request {
    incoming: Incoming,
    done: oneshot::Sender<Result<Committed, Error>>,
}

/// Handle to the writer thread. Cloning is cheap; the thread ends when every
/// handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct CommitQueue {
    tx: mpsc::Sender<Request>,
}

impl CommitQueue {
    /// Starts the writer thread on `db`.
    ///
    /// # Errors
    /// The OS refuses to start a thread.
    pub fn start(db: Db, max_batch: usize) -> std::io::Result<(CommitQueue, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let handle = std::thread::Builder::new()
            .name("commit-writer".into())
            .spawn(move || run(db, rx, max_batch.max(1)))?;
        Ok((CommitQueue { tx }, handle))
    }

    /// Commits `incoming` durably; returns once its transaction is on disk.
    ///
    /// # Errors
    /// The transaction failed (nothing of it was stored) or the writer is gone.
    pub async fn commit(&self, incoming: Incoming) -> Result<Committed, Error> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { incoming, done })
            .await
            .map_err(|_| Error::Closed)?;
        wait.await.map_err(|_| Error::Closed)?
    }
}

fn run(mut db: Db, mut rx: mpsc::Receiver<Request>, max_batch: usize) {
    let mut batch: Vec<Request> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let messages: Vec<&Incoming> = batch.iter().map(|r| &r.incoming).collect();
        let started = std::time::Instant::now();
        let result = db.commit_raws(&messages);
        tracing::trace!(
            batch = batch.len(),
            micros = started.elapsed().as_micros() as u64,
            "group commit"
        );
        match result {
            Ok(committed) => {
                for (req, c) in batch.drain(..).zip(committed) {
                    let _ = req.done.send(Ok(c)); // the session may have gone: nothing to tell
                }
            }
            Err(error) => {
                tracing::error!(%error, batch = batch.len(), "group commit failed");
                let is_storage_full = error.is_storage_full();
                for req in batch.drain(..) {
                    let detail = error.to_string();
                    let _ = req.done.send(Err(Error::Commit {
                        detail,
                        is_storage_full,
                    }));
                }
            }
        }
    }
}

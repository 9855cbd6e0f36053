//! The heartbeat of a daemon on PostgreSQL: while it runs, its claims on
//! messages and replies are renewed every third of the lease, so a short
//! lease (`store.claim_lease_seconds`, 30 s by default) never runs out under
//! a node that is working, however long one message takes, and runs out soon
//! under one that died or stopped.

use crate::store::Db;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The running heartbeat.
pub struct Heartbeat {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Heartbeat {
    /// Renews this node's claims on `db` (its own connection) every
    /// `lease / 3`.
    ///
    /// # Errors
    /// The OS refuses a thread.
    pub fn start(db: Db, lease: Duration) -> std::io::Result<Heartbeat> {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("lease-heartbeat".into())
                .spawn(move || beat(&db, lease, &stop))?
        };
        Ok(Heartbeat { stop, handle })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.thread().unpark();
        let _ = self.handle.join();
    }
}

fn beat(db: &Db, lease: Duration, stop: &AtomicBool) {
    let node = crate::store::node_name();
    let every = (lease / 3).max(Duration::from_millis(200));
    let mut next = Instant::now() + every;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now < next {
            std::thread::park_timeout(next - now);
            continue;
        }
        next = now + every;
        match db.renew_claims(&node, lease) {
            Ok(n) => tracing::trace!(claims = n, "claims renewed"),
            Err(error) => tracing::warn!(%error, "renewing this node's claims failed"),
        }
    }
}

//! The SMTP listener: accepts connections under limits and runs one task per session.
//!
//! In: a bound `TcpListener`, the shared [`Context`], a shutdown token. Out:
//! sessions (see `conn`), which commit messages through the store's group
//! commit. An idle client holds only its own task, never a thread, so it
//! cannot stall anyone else. On shutdown the listener closes at once, idle
//! sessions get 421, sessions in a transaction get `shutdown_grace_seconds`.

pub mod budget;
mod conn;
mod dsn;
mod handler;
mod io;
mod reply;
pub mod tls;

use crate::config::Config;
use crate::store::CommitQueue;
use crate::worker::WorkSignal;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, info_span, warn, Instrument};

/// Pause after a failed accept (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// After the grace period, how long sessions get to notice the hard stop.
const HARD_STOP_WAIT: Duration = Duration::from_secs(5);

/// What every session shares.
pub struct Context {
    /// Fixed at start: the listener, `max_connections` and the grace period.
    pub config: Arc<Config>,
    /// What new sessions start with; a session keeps the runtime it
    /// started with.
    pub runtime: crate::runtime::SharedRuntime,
    pub queue: CommitQueue,
    pub work: WorkSignal,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Sessions per network (IPv4 /24, IPv6 /64), keyed by its first address.
    per_network: Mutex<HashMap<IpAddr, usize>>,
    /// DATA bytes held by all sessions (`smtp.max_data_bytes_in_flight`).
    pub data_budget: Arc<budget::DataBudget>,
}

impl Context {
    pub fn new(
        runtime: crate::runtime::SharedRuntime,
        queue: CommitQueue,
        work: WorkSignal,
    ) -> Self {
        let config = runtime.current().config.clone();
        let budget_bytes = config.smtp.max_data_bytes_in_flight;
        Context {
            config,
            runtime,
            queue,
            work,
            per_ip: Mutex::new(HashMap::new()),
            per_network: Mutex::new(HashMap::new()),
            data_budget: budget::DataBudget::new(budget_bytes),
        }
    }

    fn counts(&self, scope: Scope) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        match scope {
            Scope::Address => &self.per_ip,
            Scope::Network => &self.per_network,
        }
        .lock()
        .unwrap_or_else(|p| p.into_inner())
    }
}

/// What a connection limit counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// One client address.
    Address,
    /// The client's network: its IPv4 /24 or IPv6 /64.
    Network,
}

impl Scope {
    fn key(self, ip: IpAddr) -> IpAddr {
        match (self, ip.to_canonical()) {
            (Scope::Address, ip) => ip,
            (Scope::Network, IpAddr::V4(v4)) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
            (Scope::Network, IpAddr::V6(v6)) => {
                IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into())
            }
        }
    }

    fn limit(self, config: &Config) -> usize {
        match self {
            Scope::Address => config.smtp.max_connections_per_ip,
            Scope::Network => config.smtp.max_connections_per_network,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scope::Address => "max_connections_per_ip",
            Scope::Network => "max_connections_per_network",
        }
    }
}

/// The two stages of shutdown a session listens to.
#[derive(Clone)]
pub struct Stops {
    /// Shutdown began: sessions between transactions close with 421.
    pub soft: CancellationToken,
    /// The grace period is over: every session closes with 421.
    pub hard: CancellationToken,
}

/// Counts a client's sessions in one scope; the count drops with the guard.
struct IpSlot {
    ctx: Arc<Context>,
    scope: Scope,
    key: IpAddr,
}

impl IpSlot {
    fn acquire(ctx: &Arc<Context>, scope: Scope, ip: IpAddr) -> Option<IpSlot> {
        let key = scope.key(ip);
        let limit = scope.limit(&ctx.runtime.current().config);
        let mut map = ctx.counts(scope);
        let count = map.entry(key).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                map.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            ctx: ctx.clone(),
            scope,
            key,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.ctx.counts(self.scope);
        if let Some(count) = map.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Accepts connections until `shutdown` is cancelled, then waits for the
/// sessions (bounded by `shutdown_grace_seconds`, then a hard stop).
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(ctx.config.smtp.max_connections));
    let sessions = TaskTracker::new();
    let stops = Stops {
        soft: shutdown.clone(),
        hard: CancellationToken::new(),
    };
    let mut conn_id = 0u64;
    loop {
        let (socket, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            res = listener.accept() => match res {
                Ok(pair) => pair,
                Err(error) => {
                    warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        conn_id += 1;
        // Over a limit the client gets its 421 straight away (RFC 5321 §3.8)
        // instead of waiting unanswered; the write never blocks the loop.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!(conn_id, %peer, limit = "max_connections", "limit hit");
            crate::metrics::get().reject("max_connections");
            let _ = socket.try_write(reply::TOO_MANY_CONNECTIONS);
            continue;
        };
        let slots = [Scope::Address, Scope::Network]
            .into_iter()
            .map(|scope| IpSlot::acquire(&ctx, scope, peer.ip()).ok_or(scope))
            .collect::<Result<Vec<_>, Scope>>();
        let ip_slots = match slots {
            Ok(slots) => slots,
            Err(scope) => {
                warn!(conn_id, %peer, limit = scope.name(), "limit hit");
                crate::metrics::get().reject(scope.name());
                let _ = socket.try_write(reply::TOO_MANY_FROM_YOU);
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let (ctx, stops) = (ctx.clone(), stops.clone());
        sessions.spawn(
            async move {
                let _permit = permit; // released when the session ends
                let _ip_slots = ip_slots;
                let metrics = crate::metrics::get();
                metrics.sessions.inc();
                metrics.sessions_open.inc();
                conn::run(Box::new(socket), peer, ctx, stops).await;
                metrics.sessions_open.dec();
            }
            .instrument(info_span!("smtp", conn_id, %peer)),
        );
    }
    drop(listener);
    sessions.close();
    info!(
        sessions = sessions.len(),
        "listener closed, waiting for sessions"
    );
    let grace = Duration::from_secs(ctx.config.smtp.shutdown_grace_seconds);
    if tokio::time::timeout(grace, sessions.wait()).await.is_err() {
        warn!(
            sessions = sessions.len(),
            "grace period over, closing sessions"
        );
        stops.hard.cancel();
        if tokio::time::timeout(HARD_STOP_WAIT, sessions.wait())
            .await
            .is_err()
        {
            warn!(sessions = sessions.len(), "sessions still running at exit");
        }
    }
}

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

/// Who hears of a committed message: the worker's doorbell
/// (`daemon::worker::WorkSignal`); intake knows only that there is one.
pub trait NewMail: Send + Sync {
    /// A message was committed: there is work. Never blocks.
    fn committed(&self);
}

/// What every session shares.
pub struct Context {
    /// Fixed at start: the listener, `max_connections` and the grace period.
    pub config: Arc<Config>,
    /// What new sessions start with; a session keeps the runtime it
    /// started with.
    pub runtime: crate::runtime::SharedRuntime,
    pub queue: CommitQueue,
    pub work: Arc<dyn NewMail>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Sessions per network (IPv4 /24, IPv6 /64), keyed by its first address.
    per_network: Mutex<HashMap<IpAddr, usize>>,
    /// Sessions per larger network (IPv4 /16, IPv6 /48).
    per_large_network: Mutex<HashMap<IpAddr, usize>>,
    /// Every open session: its network, when it last read a command, and
    /// how to close it when the server is full and a newcomer waits.
    open: Mutex<HashMap<u64, OpenSession>>,
    /// When the context was made: activity times count from it.
    epoch: std::time::Instant,
    /// DATA bytes held by all sessions (`smtp.max_data_bytes_in_flight`).
    pub data_budget: Arc<budget::DataBudget>,
}

impl Context {
    pub fn new(
        runtime: crate::runtime::SharedRuntime,
        queue: CommitQueue,
        work: Arc<dyn NewMail>,
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
            per_large_network: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
            epoch: std::time::Instant::now(),
            data_budget: budget::DataBudget::new(budget_bytes),
        }
    }

    fn counts(&self, scope: Scope) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        match scope {
            Scope::Address => &self.per_ip,
            Scope::Network => &self.per_network,
            Scope::LargeNetwork => &self.per_large_network,
        }
        .lock()
        .unwrap_or_else(|p| p.into_inner())
    }

    fn open_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, OpenSession>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server is full and a client from `ip` knocks: when some network
    /// holds more sessions than the newcomer's, its longest-idle session
    /// is asked to close (it does at once between transactions), and
    /// `true` says a slot is coming. Postfix's anvil and stress mode are the
    /// model: one crowd of idle clients cannot keep everyone else out.
    fn make_room_for(&self, ip: IpAddr) -> bool {
        let open = self.open_sessions();
        let mut per_network: HashMap<IpAddr, usize> = HashMap::new();
        for session in open.values().filter(|s| !s.evict.is_cancelled()) {
            *per_network.entry(session.network).or_default() += 1;
        }
        let mine = per_network
            .get(&Scope::Network.key(ip))
            .copied()
            .unwrap_or(0);
        let Some((&crowded, &most)) = per_network.iter().max_by_key(|(_, n)| **n) else {
            return false;
        };
        if most <= mine + 1 {
            return false;
        }
        let idlest = open
            .values()
            .filter(|s| s.network == crowded && !s.evict.is_cancelled())
            .min_by_key(|s| s.active_at.load(std::sync::atomic::Ordering::Relaxed));
        match idlest {
            Some(session) => {
                session.evict.cancel();
                true
            }
            None => false,
        }
    }
}

/// One open session, as [`Context::make_room_for`] sees it.
struct OpenSession {
    network: IpAddr,
    /// Milliseconds after the context's epoch when it last read a line.
    active_at: Arc<std::sync::atomic::AtomicU64>,
    /// Cancelled to close it (its soft stop).
    evict: CancellationToken,
}

/// Registers a session while it runs.
struct Registered {
    ctx: Arc<Context>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.ctx.open_sessions().remove(&self.id);
    }
}

/// Newcomers waiting for a slot that an eviction frees, at most.
const MAX_WAITING: usize = 64;
/// How long a newcomer waits for that slot.
const ROOM_WAIT: Duration = Duration::from_secs(2);

/// What a connection limit counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// One client address.
    Address,
    /// The client's network: its IPv4 /24 or IPv6 /64.
    Network,
    /// Its larger network: the IPv4 /16 or IPv6 /48.
    LargeNetwork,
}

impl Scope {
    fn key(self, ip: IpAddr) -> IpAddr {
        match (self, ip.to_canonical()) {
            (Scope::Address, ip) => ip,
            (Scope::Network, IpAddr::V4(v4)) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
            (Scope::Network, IpAddr::V6(v6)) => {
                IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into())
            }
            (Scope::LargeNetwork, IpAddr::V4(v4)) => {
                IpAddr::V4((u32::from(v4) & 0xffff_0000).into())
            }
            (Scope::LargeNetwork, IpAddr::V6(v6)) => {
                IpAddr::V6((u128::from(v6) & !((1u128 << 80) - 1)).into())
            }
        }
    }

    fn limit(self, config: &Config) -> usize {
        match self {
            Scope::Address => config.smtp.max_connections_per_ip,
            Scope::Network => config.smtp.max_connections_per_network,
            Scope::LargeNetwork => config.smtp.max_connections_per_large_network,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scope::Address => "max_connections_per_ip",
            Scope::Network => "max_connections_per_network",
            Scope::LargeNetwork => "max_connections_per_large_network",
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
    /// Milliseconds after the context's epoch when the session last read
    /// a line (the server closes the longest-idle ones first when full).
    pub active_at: Arc<std::sync::atomic::AtomicU64>,
    /// The server was three quarters full when this session started: its
    /// idle timeout is a quarter of `smtp.idle_timeout_seconds` (at least
    /// 10 s), so idle clients give their slots back sooner.
    pub under_pressure: bool,
}

/// Under pressure, idle timeouts are divided by this...
pub const PRESSURE_IDLE_DIVISOR: u64 = 4;
/// ...down to this many seconds at least.
pub const PRESSURE_IDLE_FLOOR_SECONDS: u64 = 10;

impl Stops {
    /// The session read a line now.
    pub fn touch(&self, ctx: &Context) {
        self.active_at.store(
            ctx.epoch.elapsed().as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
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
        active_at: Arc::default(),
        under_pressure: false,
    };
    let max_connections = ctx.config.smtp.max_connections;
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
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
        // Full, but a crowded network can give up an idle session: the
        // newcomer waits (not in this loop) for the slot that frees.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_)
                if waiting.load(std::sync::atomic::Ordering::SeqCst) < MAX_WAITING
                    && ctx.make_room_for(peer.ip()) =>
            {
                None
            }
            Err(_) => {
                warn!(conn_id, %peer, limit = "max_connections", "limit hit");
                crate::metrics::get().reject("max_connections");
                let _ = socket.try_write(reply::TOO_MANY_CONNECTIONS);
                continue;
            }
        };
        let slots = [Scope::Address, Scope::Network, Scope::LargeNetwork]
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
        // The session's own stops: its soft stop also closes it alone when
        // the server makes room.
        let evict = stops.soft.child_token();
        let session_stops = Stops {
            soft: evict.clone(),
            hard: stops.hard.clone(),
            active_at: Arc::default(),
            under_pressure: permits.available_permits() * 4 < max_connections,
        };
        session_stops.touch(&ctx);
        ctx.open_sessions().insert(
            conn_id,
            OpenSession {
                network: Scope::Network.key(peer.ip()),
                active_at: session_stops.active_at.clone(),
                evict,
            },
        );
        let registered = Registered {
            ctx: ctx.clone(),
            id: conn_id,
        };
        let (ctx, permits, waiting) = (ctx.clone(), permits.clone(), waiting.clone());
        sessions.spawn(
            async move {
                let _registered = registered;
                let permit = match permit {
                    Some(permit) => permit,
                    None => {
                        waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let freed = tokio::time::timeout(ROOM_WAIT, permits.acquire_owned()).await;
                        waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        match freed {
                            Ok(Ok(permit)) => permit,
                            _ => {
                                warn!(limit = "max_connections", "limit hit");
                                crate::metrics::get().reject("max_connections");
                                let _ = socket.try_write(reply::TOO_MANY_CONNECTIONS);
                                return;
                            }
                        }
                    }
                };
                let _permit = permit; // released when the session ends
                let _ip_slots = ip_slots;
                let metrics = crate::metrics::get();
                metrics.sessions.inc();
                metrics.sessions_open.inc();
                conn::run(Box::new(socket), peer, ctx, session_stops).await;
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

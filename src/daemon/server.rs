//! The running daemon: database, group-commit writer, pipeline worker, listener.
//!
//! In: a validated [`Config`]. Out: a [`Server`] that accepts mail until
//! [`Server::shutdown`]. `serve` and the integration tests both start it here,
//! so the tests run exactly what production runs.

use crate::config::Config;
use crate::daemon::checks::Checks;
use crate::daemon::lease::Heartbeat;
use crate::daemon::worker::Worker;
use crate::runtime::{Runtime, SharedRuntime};
use crate::smtp::{self, Context};
use crate::store::{self, CommitQueue, Role};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        key: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("the commit writer failed; see the log")]
    WriterFailed,
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Applies a new configuration without dropping a connection: new sessions
/// get the new recipients, limits and certificate; the worker the new rules
/// and reply policy; the sender the new templates, all at once (one
/// [`Runtime`] swapped). What cannot change while running (listen address,
/// database, connection cap, relay) is refused.
/// What a reload cannot change: what the daemon built once at start (the
/// listeners, the store and its connections, the relay's transport, the
/// logger, the checks' slots). A restart applies it; a reload that changes
/// one is refused whole, naming it. Every name is a key of the
/// configuration (a unit test reads them against the default's keys).
pub const FIXED_KEYS: [&str; 21] = [
    "imap",
    "smtp.listen",
    "store.path",
    "smtp.max_connections",
    "smtp.max_data_bytes_in_flight",
    "smtp.shutdown_grace_seconds",
    "store.claim_lease_seconds",
    "reply.relay_host",
    "reply.relay_port",
    "reply.relay_tls",
    "reply.relay_ca_file",
    "reply.relay_username",
    "reply.relay_password_file",
    "metrics.listen",
    "metrics.max_connections",
    "metrics.timeout_seconds",
    "web.listen",
    "log.format",
    "log.level",
    "auth.enabled",
    "auth.max_in_flight",
];

#[derive(Clone)]
pub struct Reloader {
    runtime: SharedRuntime,
}

impl Reloader {
    /// Reloads swap `runtime`.
    pub fn new(runtime: SharedRuntime) -> Reloader {
        Reloader { runtime }
    }

    /// Checks and compiles `config` completely, then swaps it in; on any
    /// problem nothing changes.
    ///
    /// # Errors
    /// Every problem, by key.
    /// The configuration running now.
    pub fn running(&self) -> Config {
        (*self.runtime.current().config).clone()
    }

    pub fn reload(&self, config: Config) -> Result<Vec<String>, Vec<String>> {
        let running = self.runtime.current().config.clone();
        let changed = crate::config::changed_keys(&running, &config);
        let mut problems: Vec<String> = changed
            .iter()
            .filter(|key| FIXED_KEYS.contains(&key.as_str()))
            .map(|key| format!("{key}: cannot change while running; restart to apply it"))
            .collect();
        match Runtime::compile(config) {
            Ok(runtime) if problems.is_empty() => {
                self.runtime.swap(runtime);
                Ok(changed)
            }
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }
}

/// A started daemon.
pub struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    listener: tokio::task::JoinHandle<()>,
    writer: std::thread::JoinHandle<bool>,
    sender: Option<tokio::task::JoinHandle<()>>,
    /// The notice rounds.
    notices: tokio::task::JoinHandle<()>,
    /// The `[[imap]]` mailboxes' intake.
    imap: Vec<tokio::task::JoinHandle<()>>,
    /// Stops the reply sender, the notice rounds and the metrics listener.
    sender_stop: CancellationToken,
    reloader: Reloader,
    metrics_addr: Option<SocketAddr>,
    /// The console's address, when `web.listen` is set.
    web_addr: Option<SocketAddr>,
    worker: Worker,
    /// The sender checks, unless `auth.enabled` is off.
    checks: Option<Checks>,
    /// PostgreSQL: renews this node's claims.
    heartbeat: Option<Heartbeat>,
}

impl Server {
    /// Opens the database, starts the writer and the worker, binds the listener.
    ///
    /// # Errors
    /// The database cannot be opened or migrated, or the address cannot be bound.
    pub async fn start(config: Config) -> Result<Server, Error> {
        let runtime = SharedRuntime::new(Runtime::compile(config).map_err(Error::Invalid)?);
        let config = runtime.current().config.clone();
        raise_open_files(config.smtp.max_connections);
        let location = store::Location::parse(&config.store.path);
        // The listeners first: an address in use is refused before the
        // store is created or opened.
        let listener = TcpListener::bind(&config.smtp.listen)
            .await
            .map_err(|source| Error::Bind {
                key: "smtp.listen",
                addr: config.smtp.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            key: "smtp.listen",
            addr: config.smtp.listen.clone(),
            source,
        })?;
        let metrics_listener = if config.metrics.listen.is_empty() {
            None
        } else {
            Some(
                TcpListener::bind(&config.metrics.listen)
                    .await
                    .map_err(|source| Error::Bind {
                        key: "metrics.listen",
                        addr: config.metrics.listen.clone(),
                        source,
                    })?,
            )
        };
        let web_listener = if config.web.listen.is_empty() {
            None
        } else {
            Some(
                TcpListener::bind(&config.web.listen)
                    .await
                    .map_err(|source| Error::Bind {
                        key: "web.listen",
                        addr: config.web.listen.clone(),
                        source,
                    })?,
            )
        };
        let lease = Duration::from_secs(config.store.claim_lease_seconds);
        let checks_on = config.auth.enabled;
        let (intake_db, worker_db, reports_db, checks_dbs, heartbeat_db) =
            tokio::task::spawn_blocking(move || {
                let open =
                    |role| store::open(&location, store::Mode::ReadWrite { role, create: true });
                let intake = open(Role::Intake)?;
                let mut worker = open(Role::Pipeline)?;
                worker.set_claim_lease(lease);
                // On PostgreSQL the worker stores its reports on a connection
                // of its own: intake never waits behind them.
                let pg = intake.dialect() == store::sql::Dialect::Postgres;
                let reports = if pg {
                    Some(open(Role::Pipeline)?)
                } else {
                    None
                };
                // ...and renews its claims on another (the heartbeat).
                let heartbeat = if pg {
                    Some(open(Role::Pipeline)?)
                } else {
                    None
                };
                // The sender checks read due reports on a connection of their
                // own, and on PostgreSQL record results on another.
                let checks = if checks_on {
                    let writes = if pg {
                        Some(open(Role::Pipeline)?)
                    } else {
                        None
                    };
                    Some((open(Role::Pipeline)?, writes))
                } else {
                    None
                };
                Ok::<_, store::Error>((intake, worker, reports, checks, heartbeat))
            })
            .await
            .expect("opening the database does not panic")?;
        let shutdown = CancellationToken::new();
        let on_failure = {
            let shutdown = shutdown.clone();
            move || shutdown.cancel()
        };
        let (queue, writer) = CommitQueue::start(
            intake_db,
            config.store.max_commit_batch,
            config.store.min_free_bytes,
            on_failure,
        )
        .map_err(Error::Thread)?;
        let replies_queued = Arc::new(tokio::sync::Notify::new());
        let sink = match reports_db {
            Some(db) => store::WorkerSink::Direct(Box::new(db)),
            None => store::WorkerSink::Queue(queue.clone()),
        };
        let heartbeat = match heartbeat_db {
            Some(db) => Some(Heartbeat::start(db, lease).map_err(Error::Thread)?),
            None => None,
        };
        let checks = match checks_dbs {
            Some((reads, writes)) => {
                let sink = match writes {
                    Some(db) => store::WorkerSink::Direct(Box::new(db)),
                    None => store::WorkerSink::Queue(queue.clone()),
                };
                Some(
                    Checks::start(runtime.clone(), reads, sink, replies_queued.clone())
                        .map_err(Error::Thread)?,
                )
            }
            None => None,
        };
        let worker = Worker::start(
            worker_db,
            sink,
            runtime.clone(),
            replies_queued.clone(),
            checks.as_ref().map(Checks::queue),
        )
        .map_err(Error::Thread)?;
        let ctx = Arc::new(Context::new(
            runtime.clone(),
            queue,
            Arc::new(worker.signal()),
        ));
        let reloader = Reloader {
            runtime: runtime.clone(),
        };
        let sender_queue = ctx.queue.clone();
        // Replies go out only with a relay; without one they wait as `held`.
        let sender_stop = CancellationToken::new();
        let imap = crate::daemon::imap::start(
            &config,
            ctx.queue.clone(),
            ctx.work.clone(),
            sender_stop.clone(),
        )
        .map_err(Error::Invalid)?;
        let listener = tokio::spawn(smtp::serve(listener, ctx, shutdown.clone()));
        let relay = crate::reply::sender::relay(&config.reply, &config.smtp.hostname)
            .map_err(|p| Error::Invalid(vec![p]))?;
        // Notices are queued with or without a relay (held without one).
        let notices = tokio::spawn(crate::daemon::notices::run(
            config.store.path.clone(),
            runtime.clone(),
            replies_queued.clone(),
            sender_stop.clone(),
        ));
        let sender = relay.map(|transport| {
            tokio::spawn(crate::reply::sender::run(
                transport,
                config.store.path.clone(),
                sender_queue.clone(),
                runtime,
                replies_queued,
                sender_stop.clone(),
            ))
        });
        let metrics_addr = match metrics_listener {
            None => None,
            Some(listener) => {
                let bound = listener.local_addr().ok();
                let store = crate::store::Location::parse(&config.store.path);
                let gauges: crate::metrics::ReadGauges =
                    Arc::new(move || {
                        match crate::store::open(&store, crate::store::Mode::ReadOnly) {
                            Ok(db) => crate::metrics::StoreGauges {
                                backlog: db.backlog().ok(),
                                outbox_depth: db.outbox_depth().ok(),
                            },
                            Err(_) => crate::metrics::StoreGauges::default(),
                        }
                    });
                tokio::spawn(crate::metrics::serve(
                    listener,
                    gauges,
                    config.metrics.max_connections,
                    std::time::Duration::from_secs(config.metrics.timeout_seconds),
                    sender_stop.clone(),
                ));
                info!(listen = %config.metrics.listen, "metrics listening");
                bound
            }
        };
        let web_addr = match web_listener {
            None => None,
            Some(listener) => {
                let bound = listener.local_addr().ok();
                let desk = crate::web::Desk::new(reloader.runtime.clone())
                    .map_err(|p| Error::Invalid(vec![p]))?;
                let stop = sender_stop.clone();
                tokio::spawn(async move {
                    if let Err(error) = crate::web::serve(listener, Arc::new(desk), stop).await {
                        tracing::error!(error = %error, "the console stopped");
                    }
                });
                info!(listen = %config.web.listen, "console listening");
                bound
            }
        };
        debug!(listen = %addr, "listening");
        Ok(Server {
            web_addr,
            addr,
            shutdown,
            listener,
            writer,
            worker,
            checks,
            heartbeat,
            sender,
            notices,
            imap,
            sender_stop,
            reloader,
            metrics_addr,
        })
    }

    /// Where `/metrics` and `/healthz` are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Where the console listens, when it is on.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web_addr
    }

    /// What applies a new configuration to the running daemon (SIGHUP).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A token that starts the shutdown when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets sessions finish within the grace period, drains
    /// the commit queue and stops the worker.
    ///
    /// # Errors
    /// As [`Server::wait`].
    pub async fn shutdown(self) -> Result<(), Error> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the shutdown token is cancelled and everything has stopped.
    ///
    /// # Errors
    /// [`Error::WriterFailed`] when the commit writer died (the daemon then
    /// stopped on its own, and should exit non-zero so systemd restarts it).
    pub async fn wait(self) -> Result<(), Error> {
        if self.listener.await.is_err() {
            warn!("listener task panicked");
        }
        self.sender_stop.cancel();
        // An IMAP round in progress finishes its commits; the next is not
        // started. Each holds the queue, so the writer waits for them.
        for mut task in self.imap {
            if tokio::time::timeout(Duration::from_secs(30), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
        // A round in progress finishes its transaction; the next is not started.
        let mut notices = self.notices;
        if tokio::time::timeout(Duration::from_secs(30), &mut notices)
            .await
            .is_err()
        {
            notices.abort();
        }
        if let Some(mut sender) = self.sender {
            // Its handle to the writer must go before the writer can end.
            if tokio::time::timeout(Duration::from_secs(10), &mut sender)
                .await
                .is_err()
            {
                sender.abort();
                let _ = sender.await;
            }
        }
        // Every session is gone. The worker finishes its batch (through the
        // writer) and drops the last handle to the queue; then the writer
        // drains what is left and ends.
        let writer = self.writer;
        let worker = self.worker;
        let checks = self.checks;
        let heartbeat = self.heartbeat;
        let joined = tokio::task::spawn_blocking(move || {
            // Lookups in flight are dropped (their reports are checked at the
            // next start): DNS never holds up a shutdown.
            if let Some(checks) = checks {
                checks.stop();
            }
            worker.stop();
            if let Some(heartbeat) = heartbeat {
                heartbeat.stop();
            }
            writer.join().unwrap_or(false)
        });
        let writer_ok = match tokio::time::timeout(Duration::from_secs(30), joined).await {
            Ok(Ok(ok)) => ok,
            Ok(Err(_)) => false,
            Err(_) => {
                warn!("writer or worker still busy at exit");
                true
            }
        };
        info!("stopped");
        if writer_ok {
            Ok(())
        } else {
            Err(Error::WriterFailed)
        }
    }
}

/// Descriptors the daemon needs besides one per SMTP connection: the
/// database and its WAL, the listeners, the worker's pipes, metrics scrapes.
const OTHER_DESCRIPTORS: u64 = 64;

/// Raises the soft limit on open files to the hard one (the usual start-up
/// of a server: the soft default is 1,024), and warns when
/// `smtp.max_connections` would still not fit under it: then accept fails
/// with EMFILE before the connection limit is reached.
fn raise_open_files(max_connections: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct we own.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        limit.rlim_cur
    };
    let needed = max_connections as u64 + OTHER_DESCRIPTORS;
    if soft < needed {
        warn!(
            open_files = soft,
            needed,
            "smtp.max_connections does not fit under the open-files limit; raise LimitNOFILE"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::FIXED_KEYS;

    #[test]
    fn every_fixed_key_is_a_key_of_the_configuration() {
        let defaults = crate::config::Config::default();
        let mut changed = defaults.clone();
        // Keys come from the configuration itself: each fixed one must be
        // among them (a renamed key would otherwise slip through reloads).
        // Optional keys are written only when set.
        let mut full = defaults.clone();
        full.reply.relay_host = Some("relay.example".into());
        full.reply.relay_ca_file = Some("ca.pem".into());
        full.reply.relay_username = Some("desk".into());
        full.reply.relay_password_file = Some("password".into());
        let table = toml::Table::try_from(&full).unwrap();
        // A section's keys, or the name of a list of sections (`[[imap]]`).
        let keys: Vec<String> = table
            .iter()
            .flat_map(|(section, value)| {
                value
                    .as_table()
                    .map(|t| {
                        t.keys()
                            .map(|k| format!("{section}.{k}"))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_else(|| vec![section.clone()])
            })
            .collect();
        for key in FIXED_KEYS {
            assert!(
                keys.iter().any(|k| k == key),
                "{key} is not a configuration key"
            );
        }
        changed.smtp.shutdown_grace_seconds += 1;
        assert_eq!(
            crate::config::changed_keys(&defaults, &changed),
            ["smtp.shutdown_grace_seconds"]
        );
    }
}

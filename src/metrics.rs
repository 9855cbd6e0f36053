//! Prometheus metrics, and the optional HTTP listener for `/metrics` and `/healthz`.
//!
//! In: counts from every stage (sessions, accepted and refused messages,
//! bytes, reports by type, parse warnings by detector, replies by outcome,
//! commit latency). Out: the OpenMetrics text of `prometheus-client` at
//! `/metrics`, `ok` at `/healthz`. Labels have bounded values (types,
//! reasons, detectors), never addresses or ids. Off unless `metrics.listen`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{LazyLock, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Labels = Vec<(&'static str, String)>;

/// Every metric of the process.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub sessions_open: Gauge,
    pub sessions: Counter,
    pub accepted: Counter,
    pub rejected: Family<Labels, Counter>,
    pub bytes_received: Counter,
    pub reports: Family<Labels, Counter>,
    pub parse_warnings: Family<Labels, Counter>,
    pub replies: Family<Labels, Counter>,
    pub commit_seconds: Histogram,
    /// Worker children lost on a message (crash, memory, time limit).
    pub worker_restarts: Counter,
    /// Messages set aside as `failed` by processing.
    pub quarantined: Counter,
    /// DATA bytes held by sessions now.
    pub data_bytes_in_flight: Gauge,
    /// Sender checks running now.
    pub checks_in_flight: Gauge,
    /// Sender checks ended, by outcome (`final`, `temporary`, `domain_failing`).
    pub checks: Family<Labels, Counter>,
    /// DNS answers taken from the sender checks' caches, and lookups made.
    pub dns_cache_hits: Counter,
    pub dns_cache_misses: Counter,
    /// `[[imap]]` messages, by mailbox and outcome (`committed`, `failed`).
    pub imap_messages: Family<Labels, Counter>,
    /// `[[imap]]` connections lost or refused, by mailbox.
    pub imap_errors: Family<Labels, Counter>,
    /// Notices queued for customers by the notice rounds, by kind.
    pub notices: Family<Labels, Counter>,
    outbox_depth: Gauge,
    backlog: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("abuse_inbox")),
            sessions_open: Gauge::default(),
            sessions: Counter::default(),
            accepted: Counter::default(),
            rejected: Family::default(),
            bytes_received: Counter::default(),
            reports: Family::default(),
            parse_warnings: Family::default(),
            replies: Family::default(),
            // 50 µs … ~1.6 s
            commit_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            worker_restarts: Counter::default(),
            quarantined: Counter::default(),
            data_bytes_in_flight: Gauge::default(),
            checks_in_flight: Gauge::default(),
            checks: Family::default(),
            dns_cache_hits: Counter::default(),
            dns_cache_misses: Counter::default(),
            imap_messages: Family::default(),
            imap_errors: Family::default(),
            notices: Family::default(),
            outbox_depth: Gauge::default(),
            backlog: Gauge::default(),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
            r.register(
                "smtp_sessions_open",
                "SMTP sessions open now",
                m.sessions_open.clone(),
            );
            r.register(
                "smtp_sessions",
                "SMTP sessions since start",
                m.sessions.clone(),
            );
            r.register(
                "messages_accepted",
                "Messages answered 250 (committed)",
                m.accepted.clone(),
            );
            r.register(
                "messages_rejected",
                "Messages or sessions refused, by reason",
                m.rejected.clone(),
            );
            r.register(
                "bytes_received",
                "Message bytes committed",
                m.bytes_received.clone(),
            );
            r.register(
                "reports",
                "Reports stored, by abuse_type and subtype",
                m.reports.clone(),
            );
            r.register(
                "parse_warnings",
                "Parse warnings, by detector",
                m.parse_warnings.clone(),
            );
            r.register(
                "replies",
                "Reply decisions and deliveries, by outcome",
                m.replies.clone(),
            );
            r.register(
                "commit_seconds",
                "Group commit latency of raw messages",
                m.commit_seconds.clone(),
            );
            r.register(
                "worker_restarts",
                "Worker processes lost on a message (crash, memory or time limit)",
                m.worker_restarts.clone(),
            );
            r.register(
                "messages_quarantined",
                "Messages set aside as failed by processing",
                m.quarantined.clone(),
            );
            r.register(
                "smtp_data_bytes_in_flight",
                "DATA bytes held by SMTP sessions now",
                m.data_bytes_in_flight.clone(),
            );
            r.register(
                "sender_checks_in_flight",
                "Sender checks (SPF, DKIM, DMARC) running now",
                m.checks_in_flight.clone(),
            );
            r.register(
                "sender_checks",
                "Sender checks ended, by outcome",
                m.checks.clone(),
            );
            r.register(
                "dns_cache_hits",
                "DNS records the sender checks found in their caches",
                m.dns_cache_hits.clone(),
            );
            r.register(
                "dns_cache_misses",
                "DNS records the sender checks had to look up",
                m.dns_cache_misses.clone(),
            );
            r.register(
                "imap_messages",
                "Messages taken from [[imap]] mailboxes, by mailbox and outcome",
                m.imap_messages.clone(),
            );
            r.register(
                "imap_errors",
                "[[imap]] connections lost or refused, by mailbox",
                m.imap_errors.clone(),
            );
            r.register(
                "notices",
                "Notices queued for customers, by kind (notice, digest, reminder, escalation, case_closed)",
                m.notices.clone(),
            );
            r.register(
                "outbox_depth",
                "Replies held or pending",
                m.outbox_depth.clone(),
            );
            r.register(
                "processing_backlog",
                "Committed messages not yet processed",
                m.backlog.clone(),
            );
        }
        m
    }

    /// Counts a refusal (`max_message_bytes`, `no_such_recipient`, …).
    pub fn reject(&self, reason: &'static str) {
        self.rejected
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// Counts `n` messages of an `[[imap]]` mailbox (`committed`, `failed`).
    pub fn imap(&self, mailbox: &str, outcome: &'static str, n: u64) {
        self.imap_messages
            .get_or_create(&vec![
                ("mailbox", mailbox.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc_by(n);
    }

    /// Counts a notice queued for a customer (`notice`, `digest`, …).
    pub fn notice(&self, kind: &'static str) {
        self.notices
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc();
    }

    /// Counts a reply outcome (`ack`, `needs_info`, `suppressed`, `sent`, …).
    pub fn reply(&self, outcome: &str) {
        self.replies
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// The text exposition, with the store's gauges as read now.
    fn render(&self, gauges: StoreGauges) -> String {
        if let Some(backlog) = gauges.backlog {
            self.backlog.set(backlog as i64);
        }
        if let Some(depth) = gauges.outbox_depth {
            self.outbox_depth.set(depth as i64);
        }
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if encode(&mut text, &registry).is_err() {
            text.clear();
        }
        text
    }
}

/// The store's gauges, read at each scrape (cheap counts only: a scrape
/// must not cost a `stats` run); `None` when the store could not say.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreGauges {
    pub backlog: Option<u64>,
    pub outbox_depth: Option<u64>,
}

/// How a scrape reads the store's gauges (blocking: it runs off the runtime).
pub type ReadGauges = std::sync::Arc<dyn Fn() -> StoreGauges + Send + Sync>;

/// Serves `/metrics` and `/healthz` until `stop`. One request per
/// connection, at most `max_connections` at once (more are closed at once),
/// each closed after `timeout`.
pub async fn serve(
    listener: TcpListener,
    gauges: ReadGauges,
    max_connections: usize,
    timeout: std::time::Duration,
    stop: CancellationToken,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(max_connections));
    loop {
        let (mut socket, _) = tokio::select! {
            _ = stop.cancelled() => return,
            res = listener.accept() => match res {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(socket);
            continue;
        };
        let gauges = gauges.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(timeout, answer(&mut socket, gauges)).await;
        });
    }
}

async fn answer(socket: &mut tokio::net::TcpStream, gauges: ReadGauges) {
    {
        {
            let mut request = vec![0u8; 2048];
            let Ok(n) = socket.read(&mut request).await else {
                return;
            };
            let head = String::from_utf8_lossy(&request[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, kind, body) = match (head.starts_with("GET "), path) {
                (true, "/metrics") => {
                    let body = tokio::task::spawn_blocking(move || get().render(gauges()))
                        .await
                        .unwrap_or_default();
                    (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        body,
                    )
                }
                (true, "/healthz") => ("200 OK", "text/plain; charset=utf-8", "ok\n".to_owned()),
                _ => (
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    "not found\n".to_owned(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    }
}

//! The outbox sender: delivers queued replies through the configured relay.
//!
//! In: due outbox rows (read with its own connection), the templates. Out:
//! mail handed to the relay with lettre, and the outcome written back
//! through the daemon's single writer ([`CommitQueue::outbox`]): `sent`;
//! a temporary failure (4xx, relay unreachable) retried with capped
//! exponential backoff until `reply.give_up_after_hours`; a permanent one
//! (5xx) `failed`. Replies go out with the null envelope sender `<>` (RFC
//! 3834 §4), so they can never cause a bounce loop.
//!
//! Crash window: a reply the relay accepted just before a crash, and before
//! `sent` was written, is sent again after the restart, with the same
//! Message-ID. Nothing else is sent twice.

use super::compose;
use crate::config::{RelayTls, ReplyConfig};
use crate::store::{CommitQueue, Db, OutboxChange, Role};
use lettre::address::Envelope;
use lettre::AsyncTransport;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How often the outbox is looked at when nothing rings.
const POLL: Duration = Duration::from_secs(5);
/// Replies sent per round.
const BATCH: usize = 32;
/// Retries wait `reply.retry_min_seconds`, doubled per attempt, up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Whether a transport's error means "never retry" (RFC 5321 5yz).
pub trait SendError: std::fmt::Display {
    fn is_permanent(&self) -> bool;
}

impl SendError for lettre::transport::smtp::Error {
    fn is_permanent(&self) -> bool {
        lettre::transport::smtp::Error::is_permanent(self)
    }
}

impl SendError for lettre::transport::stub::Error {
    fn is_permanent(&self) -> bool {
        false
    }
}

/// The relay transport for `config`; `Ok(None)` without a relay.
///
/// # Errors
/// The TLS parameters cannot be built or the password file cannot be read.
pub fn relay(
    config: &ReplyConfig,
    hello_name: &str,
) -> Result<Option<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>, String> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let Some(host) = config.relay_host.as_deref() else {
        return Ok(None);
    };
    let tls = match config.relay_tls {
        RelayTls::None => Tls::None,
        mode => {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(file) = &config.relay_ca_file {
                let cant = |e: &dyn std::fmt::Display| {
                    format!("reply.relay_ca_file: cannot use {}: {e}", file.display())
                };
                let pem = std::fs::read(file).map_err(|e| cant(&e))?;
                params =
                    params.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| cant(&e))?);
            }
            let params = params
                .build()
                .map_err(|e| format!("reply.relay_tls: {e}"))?;
            if mode == RelayTls::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(host)
        .port(config.relay_port)
        // Our name, as configured (smtp.hostname), not the OS host name.
        .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
            hello_name.to_owned(),
        ))
        .tls(tls)
        .timeout(Some(Duration::from_secs(60)));
    if let (Some(user), Some(file)) = (&config.relay_username, &config.relay_password_file) {
        let password = std::fs::read_to_string(file).map_err(|e| {
            format!(
                "reply.relay_password_file: cannot read {}: {e}",
                file.display()
            )
        })?;
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.trim_end().to_owned(),
        ));
    }
    Ok(Some(builder.build()))
}

/// Sends due replies until `stop`; `wake` rings when something was queued.
/// Reads on its own connection; writes through `queue`.
pub async fn run<T>(
    transport: T,
    db_path: PathBuf,
    queue: CommitQueue,
    runtime: crate::runtime::SharedRuntime,
    wake: std::sync::Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) where
    T: AsyncTransport + Send + Sync,
    T::Error: SendError,
{
    let open = {
        let path = db_path.clone();
        tokio::task::spawn_blocking(move || {
            crate::store::open(
                &crate::store::Location::parse(&path),
                crate::store::Mode::ReadWrite {
                    role: Role::Cli,
                    create: false,
                },
            )
        })
        .await
    };
    let mut db = match open {
        Ok(Ok(mut db)) => {
            let lease = runtime.current().config.store.claim_lease_seconds;
            db.set_claim_lease(Duration::from_secs(lease));
            db
        }
        Ok(Err(error)) => return error!(%error, "reply sender cannot open the database"),
        Err(_) => return error!("reply sender failed to start"),
    };
    let mut first = true;
    loop {
        // A reply queued by a command that did not know of the relay
        // (`reports resolve` without --config) is held: with a relay here,
        // it is sent. Under review, held replies wait for an operator.
        let released = if runtime.current().config.reply.review {
            Ok(0)
        } else {
            queue
                .outbox(OutboxChange::ReleaseHeld, crate::now_rfc3339())
                .await
        };
        match released {
            Ok(released) if released > 0 && first => {
                info!(replies = released, "held replies released to the relay");
            }
            Ok(_) => {}
            Err(error) => error!(%error, "releasing held replies failed"),
        }
        first = false;
        let now = crate::now_rfc3339();
        let (back, due) = tokio::task::spawn_blocking(move || {
            let due = db.due_replies(&now, BATCH);
            (db, due)
        })
        .await
        .expect("reading the outbox does not panic");
        db = back;
        let due = due.unwrap_or_else(|error| {
            error!(%error, "reading the outbox failed");
            Vec::new()
        });
        // The templates and the reply settings (From, retries, giving up)
        // of this round, from one runtime: a reload (SIGHUP) applies whole
        // from the next round. The relay itself is fixed while running.
        let current = runtime.current();
        let templates = current.templates.clone();
        let config = current.config.reply.clone();
        let dkim = current.dkim.clone();
        drop(current);
        for draft in &due {
            let bytes = compose(&templates, &config.from, draft).and_then(|message| {
                let bytes = message.formatted();
                match &dkim {
                    Some(signer) => signer.sign(&bytes),
                    None => Ok(bytes),
                }
            });
            let result = match bytes {
                Err(problem) => Err(SendFailure::Permanent(problem)),
                Ok(bytes) => match draft.recipient.parse() {
                    Err(e) => Err(SendFailure::Permanent(format!("bad recipient: {e}"))),
                    Ok(to) => match Envelope::new(None, vec![to]) {
                        Err(e) => Err(SendFailure::Permanent(e.to_string())),
                        Ok(envelope) => transport
                            .send_raw(&envelope, &bytes)
                            .await
                            .map(|_| ())
                            .map_err(|e| {
                                let error = relay_error(&config, &e);
                                if e.is_permanent() {
                                    SendFailure::Permanent(error)
                                } else {
                                    SendFailure::Temporary(error)
                                }
                            }),
                    },
                },
            };
            db = record(db, &queue, draft, result, &config).await;
        }
        if due.len() == BATCH {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// A relay's error, naming the relay (`relay mail.example.net:587: …`), so
/// the outbox and the log say which host refused or could not be reached.
fn relay_error(config: &ReplyConfig, error: &impl std::fmt::Display) -> String {
    let host = config.relay_host.as_deref().unwrap_or("-");
    format!("relay {host}:{}: {error}", config.relay_port)
}

/// Why a reply did not go: for good (the relay refused it, or it could
/// not be written), or for now (tried again after a backoff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    Permanent(String),
    Temporary(String),
}

/// How long a reply has been tried: when it was queued and how often it
/// was tried (the store reads it).
pub struct Progress {
    pub created_at: String,
    pub attempts: i64,
}

/// What a send's result makes of the reply: sent; failed for good (a
/// permanent refusal, or tried past `reply.give_up_after_hours`); or tried
/// again after a backoff that doubles per attempt from
/// `reply.retry_min_seconds`, capped at an hour. Pure.
pub fn after_send(
    draft: &super::Draft,
    result: Result<(), SendFailure>,
    progress: &Progress,
    now: chrono::DateTime<chrono::Utc>,
    config: &ReplyConfig,
) -> OutboxChange {
    let (outbox_id, report_id) = (draft.outbox_id, draft.report_id);
    let error = match result {
        Ok(()) => {
            return OutboxChange::Sent {
                outbox_id,
                report_id,
            }
        }
        Err(SendFailure::Permanent(error)) => {
            return OutboxChange::Failed {
                outbox_id,
                report_id,
                error,
            }
        }
        Err(SendFailure::Temporary(error)) => error,
    };
    let give_up = Duration::from_secs(config.give_up_after_hours * 3600);
    let age = chrono::DateTime::parse_from_rfc3339(&progress.created_at)
        .map_or(Duration::ZERO, |c| {
            (now - c.to_utc()).to_std().unwrap_or_default()
        });
    if age >= give_up {
        return OutboxChange::Failed {
            outbox_id,
            report_id,
            error: format!("given up: {error}"),
        };
    }
    let first = Duration::from_secs(config.retry_min_seconds.max(1));
    let wait = first
        .saturating_mul(1 << progress.attempts.clamp(0, 16))
        .min(MAX_BACKOFF);
    let at = (now + chrono::Duration::from_std(wait).unwrap_or_default())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    OutboxChange::Retry {
        outbox_id,
        error,
        at,
    }
}

/// Records a send's outcome through the writer; logs one line per reply.
async fn record(
    db: Db,
    queue: &CommitQueue,
    draft: &super::Draft,
    result: Result<(), SendFailure>,
    config: &ReplyConfig,
) -> Db {
    let id = draft.outbox_id;
    let (db, progress) = tokio::task::spawn_blocking(move || {
        let progress = db.reply_progress(id);
        (db, progress)
    })
    .await
    .expect("reading a reply's progress does not panic");
    let now = chrono::Utc::now();
    let progress = match progress {
        Ok(Some((created_at, attempts))) => Progress {
            created_at,
            attempts,
        },
        _ => Progress {
            created_at: now.to_rfc3339(),
            attempts: 0,
        },
    };
    let change = after_send(draft, result, &progress, now, config);
    let (report, to) = (draft.report_id, &draft.recipient);
    let metrics = crate::metrics::get();
    match &change {
        OutboxChange::Sent { .. } => {
            info!(report_id = report.0, outbox_id = id.0, kind = %draft.kind, to = %to, "reply sent");
            metrics.reply("sent");
        }
        OutboxChange::Failed { error, .. } => {
            error!(report_id = report.0, outbox_id = id.0, to = %to, %error, "reply failed for good");
            metrics.reply("failed");
        }
        OutboxChange::Retry { error, at, .. } => {
            warn!(report_id = report.0, outbox_id = id.0, %error, retry_at = %at, "reply deferred");
            metrics.reply("deferred");
        }
        OutboxChange::ReleaseHeld => {}
    }
    let now = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    if let Err(error) = queue.outbox(change, now).await {
        error!(%error, "recording a reply's outcome failed");
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> super::super::Draft {
        super::super::Draft {
            outbox_id: crate::model::OutboxId(4),
            report_id: crate::model::ReportId(2),
            kind: crate::model::ReplyKind::Ack,
            recipient: "r@example.net".into(),
            message_id: "abuse-2.0@abuse.example".into(),
            note: None,
            subject: None,
            in_reply_to: None,
            abuse_type: crate::model::AbuseType::NetworkActivity,
            subtype: None,
            missing: vec![],
            language: crate::reply::Language::En,
            prepared: None,
        }
    }

    #[test]
    fn temporary_failures_back_off_until_the_reply_is_given_up() {
        let config = ReplyConfig {
            retry_min_seconds: 60,
            give_up_after_hours: 48,
            ..ReplyConfig::default()
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
            .unwrap()
            .to_utc();
        let progress = |created: &str, attempts| Progress {
            created_at: created.into(),
            attempts,
        };
        let fresh = progress("2026-12-02T11:00:00Z", 3);
        let temporary = || Err(SendFailure::Temporary("451 try later".to_owned()));
        assert_eq!(
            after_send(&draft(), temporary(), &fresh, now, &config),
            OutboxChange::Retry {
                outbox_id: crate::model::OutboxId(4),
                error: "451 try later".into(),
                at: "2026-12-02T12:08:00.000000Z".into(), // 60 s doubled 3 times
            }
        );
        let old = progress("2026-11-30T11:00:00Z", 30);
        assert!(matches!(
            after_send(&draft(), temporary(), &old, now, &config),
            OutboxChange::Failed { error, .. } if error.starts_with("given up")
        ));
        let refused = Err(SendFailure::Permanent("550 no".to_owned()));
        assert!(matches!(
            after_send(&draft(), refused, &fresh, now, &config),
            OutboxChange::Failed { .. }
        ));
        assert_eq!(
            after_send(&draft(), Ok(()), &fresh, now, &config),
            OutboxChange::Sent {
                outbox_id: crate::model::OutboxId(4),
                report_id: crate::model::ReportId(2),
            }
        );
    }
}

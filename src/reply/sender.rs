//! The outbox sender: delivers queued replies through the configured relay.
//!
//! In: due outbox rows (read with its own connection), the templates. Out:
//! mail handed to the relay with lettre, and the outcome written back: `sent`;
//! a temporary failure (4xx, relay unreachable) retried with capped
//! exponential backoff until `reply.give_up_after_hours`; a permanent one
//! (5xx) `failed`. Replies go out with the null envelope sender `<>` (RFC
//! 3834 §4), so they can never cause a bounce loop.
//!
//! Crash window: a reply the relay accepted just before a crash, and before
//! `sent` was written, is sent again after the restart, with the same
//! Message-ID. Nothing else is sent twice.

use super::{compose, Templates};
use crate::config::ReplyConfig;
use crate::store::{Db, Role};
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
    let tls = match config.relay_tls.as_str() {
        "none" => Tls::None,
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
            if mode == "tls" {
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
pub async fn run<T>(
    transport: T,
    db_path: PathBuf,
    config: ReplyConfig,
    templates: std::sync::Arc<std::sync::RwLock<Templates>>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) where
    T: AsyncTransport + Send + Sync,
    T::Error: SendError,
{
    let open = {
        let path = db_path.clone();
        tokio::task::spawn_blocking(move || {
            let mut db = Db::open(&path, Role::Cli)?;
            let released = db.release_held(&crate::now_rfc3339())?;
            Ok::<_, crate::store::Error>((db, released))
        })
        .await
    };
    let mut db = match open {
        Ok(Ok((db, released))) => {
            if released > 0 {
                info!(replies = released, "held replies released to the relay");
            }
            db
        }
        Ok(Err(error)) => return error!(%error, "reply sender cannot open the database"),
        Err(_) => return error!("reply sender failed to start"),
    };
    loop {
        let now = crate::now_rfc3339();
        let (back, due) = tokio::task::spawn_blocking(move || {
            // A reply queued by a command that did not know of the relay
            // (`reports resolve` without --config) is held: with a relay here,
            // it is sent.
            let due = db
                .release_held(&now)
                .and_then(|_| db.due_replies(&now, BATCH));
            (db, due)
        })
        .await
        .expect("reading the outbox does not panic");
        db = back;
        let due = due.unwrap_or_else(|error| {
            error!(%error, "reading the outbox failed");
            Vec::new()
        });
        // The templates of this round: a reload (SIGHUP) applies from the next one.
        let templates = templates.read().unwrap_or_else(|p| p.into_inner()).clone();
        for draft in &due {
            let result = match compose(&templates, &config.from, draft) {
                Err(problem) => Err((problem, true)),
                Ok(message) => {
                    let envelope = Envelope::new(
                        None,
                        vec![match draft.recipient.parse() {
                            Ok(a) => a,
                            Err(e) => {
                                db = write(
                                    db,
                                    draft,
                                    Err((format!("bad recipient: {e}"), true)),
                                    &config,
                                )
                                .await;
                                continue;
                            }
                        }],
                    );
                    match envelope {
                        Err(e) => Err((e.to_string(), true)),
                        Ok(envelope) => transport
                            .send_raw(&envelope, &message.formatted())
                            .await
                            .map(|_| ())
                            .map_err(|e| (e.to_string(), e.is_permanent())),
                    }
                }
            };
            db = write(db, draft, result, &config).await;
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

/// Records a send's outcome; logs one line per reply.
async fn write(
    mut db: Db,
    draft: &super::Draft,
    result: Result<(), (String, bool)>,
    config: &ReplyConfig,
) -> Db {
    let draft = draft.clone();
    let give_up = Duration::from_secs(config.give_up_after_hours * 3600);
    let config_retry_min_seconds = config.retry_min_seconds.max(1);
    tokio::task::spawn_blocking(move || {
        let now = crate::now_rfc3339();
        let (id, report) = (draft.outbox_id, draft.report_id);
        let written = match result {
            Ok(()) => {
                info!(report_id = report, outbox_id = id, kind = %draft.kind, to = %draft.recipient, "reply sent");
                crate::metrics::get().reply("sent");
                db.mark_sent(id, report, &now)
            }
            Err((error, true)) => {
                error!(report_id = report, outbox_id = id, to = %draft.recipient, %error, "reply refused for good");
                crate::metrics::get().reply("failed");
                db.mark_unsent(id, report, &now, &error, None)
            }
            Err((error, false)) => {
                let (created, attempts) = db.reply_progress(id).ok().flatten().unwrap_or_else(|| (now.clone(), 0));
                let age = chrono::DateTime::parse_from_rfc3339(&now)
                    .ok()
                    .zip(chrono::DateTime::parse_from_rfc3339(&created).ok())
                    .map_or(Duration::ZERO, |(n, c)| (n - c).to_std().unwrap_or_default());
                if age >= give_up {
                    error!(report_id = report, outbox_id = id, %error, "reply given up");
                    crate::metrics::get().reply("failed");
                    db.mark_unsent(id, report, &now, &format!("given up: {error}"), None)
                } else {
                    let first = Duration::from_secs(config_retry_min_seconds);
                    let wait = first.saturating_mul(1 << attempts.clamp(0, 16)).min(MAX_BACKOFF);
                    let retry_at = (chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                    warn!(report_id = report, outbox_id = id, %error, retry_in_seconds = wait.as_secs(), "reply deferred");
                    crate::metrics::get().reply("deferred");
                    db.mark_unsent(id, report, &now, &error, Some(&retry_at))
                }
            }
        };
        if let Err(error) = written {
            error!(%error, "recording a reply's outcome failed");
        }
        db
    })
    .await
    .expect("recording a reply does not panic")
}

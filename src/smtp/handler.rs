//! Our `mailin::Handler`: recipient policy and the envelope, nothing else.
//!
//! mailin calls it synchronously from the session loop, so it must never do
//! I/O: it decides, counts, and parks the envelope in a shared slot that the
//! loop reads when it has read the DATA phase itself.

use super::reply;
use crate::config::Config;
use crate::model::{Dsn, DsnRecipient};
use mailin::Response;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Stands in for the null reverse path `<>`, which mailin's parser refuses.
/// It holds a control character, which the loop refuses in any path a client
/// sends, so no client can forge it.
pub const NULL_SENDER: &str = "\u{1}null";

/// Stands in for a path with a quoted local part (`"john doe"@example.net`),
/// which mailin's parser refuses; the real path waits in the [`Slot`]. Like
/// [`NULL_SENDER`] it holds a control character no client can send.
pub const QUOTED_PATH: &str = "\u{2}quoted";

/// What the loop needs to know about the current transaction.
#[derive(Debug, Default)]
pub struct Slot {
    pub helo: Option<String>,
    /// The real path of the command being handed to mailin as [`QUOTED_PATH`].
    pub pending_quoted: Option<String>,
    /// The real reverse path, when it was quoted.
    pub quoted_from: Option<String>,
    /// The real forward paths given as [`QUOTED_PATH`], in order.
    pub quoted_rcpts: Vec<String>,
    /// The DSN parameters of the command being handed to mailin.
    pub pending_dsn: Option<PathDsn>,
    /// The DSN parameters of this transaction, recipients in order.
    pub dsn: Dsn,
    /// Set when DATA (or the first BDAT) is accepted.
    pub envelope: Option<Transaction>,
}

/// The DSN parameters of one MAIL or RCPT command.
#[derive(Debug)]
pub enum PathDsn {
    Mail(Dsn),
    Rcpt(DsnRecipient),
}

/// The envelope of an accepted transaction, real paths restored.
#[derive(Debug)]
pub struct Transaction {
    /// The reverse path, `""` for `<>`.
    pub from: String,
    pub to: Vec<String>,
    /// `None` when the client gave no DSN parameter.
    pub dsn: Option<Dsn>,
}

pub struct Handler {
    config: Arc<Config>,
    slot: Arc<Mutex<Slot>>,
    recipients: usize,
}

impl Handler {
    pub fn new(config: Arc<Config>, slot: Arc<Mutex<Slot>>) -> Self {
        Handler {
            config,
            slot,
            recipients: 0,
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // Only this session's task touches the slot; a poisoned lock means a
        // panic already ended the session, so its data is still usable.
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl mailin::Handler for Handler {
    fn helo(&mut self, _ip: IpAddr, domain: &str) -> Response {
        self.slot().helo = Some(domain.to_owned());
        mailin::response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.recipients = 0;
        let mut slot = self.slot();
        slot.envelope = None;
        slot.quoted_rcpts.clear();
        let pending = slot.pending_quoted.take();
        slot.quoted_from = if from == QUOTED_PATH { pending } else { None };
        slot.dsn = match slot.pending_dsn.take() {
            Some(PathDsn::Mail(dsn)) => dsn,
            _ => Dsn::default(),
        };
        reply::sender_ok()
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let quoted = if to == QUOTED_PATH {
            self.slot().pending_quoted.take()
        } else {
            None
        };
        let to = quoted.as_deref().unwrap_or(to);
        if self.recipients >= self.config.smtp.max_recipients {
            tracing::warn!(limit = "max_recipients", "limit hit");
            crate::metrics::get().reject("max_recipients");
            return reply::too_many_recipients();
        }
        if !self.config.accepts_rcpt(to) {
            tracing::info!(rcpt = to, "recipient refused");
            crate::metrics::get().reject("no_such_recipient");
            return reply::no_such_recipient();
        }
        self.recipients += 1;
        let mut slot = self.slot();
        if let Some(real) = quoted {
            slot.quoted_rcpts.push(real);
        }
        let dsn = match slot.pending_dsn.take() {
            Some(PathDsn::Rcpt(dsn)) => dsn,
            _ => DsnRecipient::default(),
        };
        slot.dsn.recipients.push(dsn);
        reply::rcpt_ok()
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        let mut slot = self.slot();
        let from = if from == NULL_SENDER {
            String::new()
        } else if from == QUOTED_PATH {
            slot.quoted_from.clone().unwrap_or_default()
        } else {
            from.to_owned()
        };
        let mut quoted = slot.quoted_rcpts.iter();
        let to = to
            .iter()
            .map(|t| {
                if t == QUOTED_PATH {
                    quoted.next().cloned().unwrap_or_default()
                } else {
                    t.clone()
                }
            })
            .collect();
        let dsn = std::mem::take(&mut slot.dsn);
        slot.envelope = Some(Transaction {
            from,
            to,
            dsn: dsn.is_given().then_some(dsn),
        });
        mailin::response::OK
    }
}

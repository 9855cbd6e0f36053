//! Our `mailin::Handler`: recipient policy and the envelope, nothing else.
//!
//! mailin calls it synchronously from the session loop, so it must never do
//! I/O: it decides, counts, and parks the envelope in a shared slot that the
//! loop reads when it has read the DATA phase itself.

use super::reply;
use crate::config::Config;
use mailin::Response;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Stands in for the null reverse path `<>`, which mailin's parser refuses.
/// It holds a control character, which the loop refuses in any path a client
/// sends, so no client can forge it.
pub const NULL_SENDER: &str = "\u{1}null";

/// What the loop needs to know about the current transaction.
#[derive(Debug, Default)]
pub struct Slot {
    pub helo: Option<String>,
    /// Reverse path (`""` for `<>`) and forward paths, set when DATA is accepted.
    pub envelope: Option<(String, Vec<String>)>,
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

    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.recipients = 0;
        self.slot().envelope = None;
        reply::sender_ok()
    }

    fn rcpt(&mut self, to: &str) -> Response {
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
        reply::rcpt_ok()
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        let from = if from == NULL_SENDER {
            String::new()
        } else {
            from.to_owned()
        };
        self.slot().envelope = Some((from, to.to_vec()));
        mailin::response::OK
    }
}

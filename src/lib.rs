//! abuse-inbox: an SMTP intake daemon for an abuse desk.
//!
//! ```text
//!  SMTP client ─► smtp (intake) ─► store: raw message, durably ─► 250
//!                                       │
//!              worker: a pool of supervised children (resumes after a crash)
//!                                       ▼
//!        pipeline: parse ─► evidence ─► classify ─► reply rules without DNS
//!                                       ▼
//!                                store: report ─► shown at once
//!                                       │
//!              daemon::checks: SPF, DKIM, DMARC, many at once, cached
//!                                       ▼
//!                  reply::settle ─► store: reply decided, outbox
//! ```
//!
//! `ingest` enters the same path at "store". I/O happens in `smtp`, `store`,
//! `worker`, `isolate`, `daemon`, `server`, `auth` (DNS), `metrics`,
//! `reply::sender` and `cli`; the stages inside `pipeline` and the rules in
//! `reply` (but its sender) are pure.

pub mod auth;
pub mod base64;
pub mod cases;
pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod evidence;
pub mod intelmq;
pub mod isolate;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod parse;
pub mod pipeline;
pub mod rawmail;
pub mod reply;
pub mod runtime;
pub mod safe_text;
pub mod server;
pub mod smtp;
pub mod store;
pub mod worker;
pub mod xarf;

/// An error and its causes in one line, each said once: a cause whose text
/// the message before it already holds (`cannot listen on …: Address
/// already in use`) is not repeated.
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Now, as RFC 3339 UTC with microseconds: the one timestamp format we store,
/// fixed-width so that text order is time order.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// At most the first `max_bytes` of `text`, cut back to a character boundary.
pub fn truncate_at_char(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

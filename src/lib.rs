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
//! `ingest` enters the same path at "store". The rooms follow DESIGN.md's
//! "Where code lives": I/O happens in `smtp`, `store`, `daemon` (the
//! server, the worker and its isolated children, the sender checks over
//! DNS, systemd notifications), `metrics`, `reply::sender` and `cli`; the
//! stages inside `pipeline` (`parse`, `evidence`, `classify`), the rules in
//! `reply` (but its sender) and `export` are pure.
//!
//! What storing a report does beyond its row (a follow-up's merge, the
//! case, the reply and what a refusal changes) is decided by
//! `reply::report_plan` from what the store read, and carried out by
//! `store/plans.rs`; the store decides nothing. Regexes are compiled through
//! `model::pattern`, which bounds what each may hold in memory.

pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod evidence;
pub mod export;
pub mod import;
pub mod metrics;
pub mod model;
pub mod notices;
pub mod owners;
pub mod parse;
pub mod pipeline;
pub mod reply;
pub mod runtime;
pub mod safe_text;
pub mod smtp;
pub mod store;
pub mod web;

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
    rfc3339(chrono::Utc::now())
}

/// `t` in the one timestamp format we store (see [`now_rfc3339`]).
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// At most the first `max_bytes` of `text`, cut back to a character boundary.
pub fn truncate_at_char(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

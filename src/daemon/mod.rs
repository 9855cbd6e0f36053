//! What `serve` runs: the [`server`] (intake, worker, reply sender, reload
//! and shutdown), the [`worker`] that turns stored messages into reports in
//! supervised children ([`isolate`]), the sender checks over DNS ([`auth`])
//! that run after a report is stored ([`checks`]), the `[[imap]]` mailboxes
//! read as a second way in ([`imap`]), the heartbeat that
//! renews a node's claims on PostgreSQL ([`lease`]), and systemd's
//! readiness protocol ([`notify`]).

pub mod auth;
pub mod checks;
pub mod imap;
pub mod isolate;
pub mod lease;
pub mod notices;
pub mod notify;
pub mod resolver;
pub mod server;
pub mod worker;

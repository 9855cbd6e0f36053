//! Bringing a mailbox's history in: messages read from a Maildir
//! ([`maildir`]) or an mbox file ([`mbox`]), each with what the mailbox says
//! of its arrival, for `abuse-inbox import` to commit and process like any
//! other intake (durable, deduplicated, so running it twice stores nothing
//! twice).
//!
//! In: a directory or a file. Out: [`Item`]s, oldest first where the
//! mailbox says; every read bounded by the message size limit.

pub mod imap;
pub mod maildir;
pub mod mbox;

use crate::model::{Envelope, Origin};
use chrono::{DateTime, Utc};

/// One message a mailbox holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub bytes: Vec<u8>,
    /// When it arrived, as the mailbox says (a Maildir name's time, an mbox
    /// `From ` line's); `None` when it does not.
    pub arrived: Option<DateTime<Utc>>,
    /// Where it is, for the operator (`cur/1733…:2,S`, `message 12 (line 345)`).
    pub place: String,
}

/// What reading a mailbox gives, message by message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Message(Found),
    /// Not read: why (larger than the limit, unreadable).
    Skipped {
        place: String,
        reason: String,
    },
}

/// The envelope a stored message of the mailbox had, as far as it says:
/// the sender from `Return-Path:`, the recipient from `Delivered-To:` or
/// `X-Original-To:`.
pub fn envelope(bytes: &[u8], origin: Origin) -> Envelope {
    use crate::parse::rawmail;
    let rcpt_to = ["delivered-to", "x-original-to"]
        .iter()
        .find_map(|h| rawmail::header(bytes, h))
        .map(|to| {
            to.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .chars()
                .take(320)
                .collect::<String>()
        })
        .filter(|to| !to.is_empty())
        .into_iter()
        .collect();
    Envelope {
        origin,
        peer_ip: None,
        helo: None,
        mail_from: rawmail::return_path(bytes),
        rcpt_to,
        dsn: None,
    }
}

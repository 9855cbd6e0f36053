//! A raw message's row, as both stores write and read it: the `INSERT`,
//! its values, the columns read back and their mapping. `raw.rs` (SQLite,
//! and the calls) and `pg/` (PostgreSQL's own statements) share it, so
//! neither reaches into the other.

use super::sql::Value;
use super::{parse_json_list, Error};
use crate::model::{Envelope, Incoming, Origin, RawId, RawMessage, Sender};
use crate::parse::rawmail;

/// A new raw message; one already stored (the same dedup key) is left
/// alone. Both stores run it (PostgreSQL with [`INSERT_RAW_RETURNING`]).
macro_rules! insert_raw {
    () => {
        "INSERT INTO raw_messages (received_at, origin, peer_ip, helo, mail_from, rcpt_to,
             message_id, dedup_key, size_bytes, bytes, dsn)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (dedup_key) DO NOTHING"
    };
}
pub(super) const INSERT_RAW: &str = insert_raw!();
pub(super) const INSERT_RAW_RETURNING: &str = concat!(insert_raw!(), " RETURNING id");
/// The stored message a duplicate is.
pub(super) const RAW_BY_KEY: &str = "SELECT id FROM raw_messages WHERE dedup_key = ?1";

/// The values of [`INSERT_RAW`] for `msg`, and its dedup key.
pub(super) fn insert_values(msg: &Incoming) -> ([u8; 32], [Value; 11]) {
    let key = rawmail::dedup_key(&msg.bytes);
    let env = &msg.envelope;
    let text = |s: Option<&str>| s.map_or(Value::Null, |s| Value::Text(s.to_owned()));
    let values = [
        Value::Text(msg.received_at.clone()),
        Value::Text(env.origin.as_str().to_owned()),
        text(env.peer_ip.map(|ip| ip.to_string()).as_deref()),
        text(env.helo.as_deref()),
        text(env.mail_from.as_column()),
        Value::Text(super::json_list(&env.rcpt_to)),
        text(rawmail::message_id(&msg.bytes).as_deref()),
        Value::Blob(key.to_vec()),
        Value::Int(msg.bytes.len() as i64),
        Value::Blob(msg.bytes.clone()),
        text(env.dsn.as_ref().map(super::json_text).as_deref()),
    ];
    (key, values)
}

pub(super) const RAW_COLUMNS: &str =
    "id, received_at, origin, peer_ip, helo, mail_from, rcpt_to, bytes, auth, dsn";

/// A raw message from the columns of [`RAW_COLUMNS`].
pub(super) fn read_raw(row: &super::sql::Row) -> Result<RawMessage, Error> {
    let id = row.int(0)?;
    Ok(RawMessage {
        claim: None,
        id: RawId(id),
        envelope: Envelope {
            origin: super::known("raw_messages", id, &row.text(2)?, Origin::parse)?,
            peer_ip: row.opt_text(3)?.and_then(|ip| ip.parse().ok()),
            helo: row.opt_text(4)?,
            mail_from: Sender::from_column(row.opt_text(5)?),
            rcpt_to: parse_json_list("raw_messages", id, &row.text(6)?)?,
            // Kept for the record; a value this build cannot read is left out.
            dsn: row
                .opt_text(9)?
                .and_then(|text| serde_json::from_str(&text).ok()),
        },
        received_at: row.text(1)?,
        bytes: row.blob(7)?,
        // A result this build cannot read is checked again.
        auth: row
            .opt_text(8)?
            .and_then(|text| serde_json::from_str(&text).ok()),
    })
}

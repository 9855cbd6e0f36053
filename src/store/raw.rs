//! Raw messages: the durable commit that a 250 promises, and reading them back.

use super::{parse_json_list, Db, Error};
use crate::model::{Committed, Envelope, Incoming, Origin, RawId, RawMessage, RawStatus, Sender};
use crate::rawmail;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

/// What makes two deliveries "the same message" (DESIGN rule 5): the
/// Message-ID plus the body when there is a Message-ID (so a copy that took
/// another relay path, with other `Received:` lines, still matches), else the
/// exact bytes.
pub fn dedup_key(raw: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    match rawmail::message_id(raw) {
        Some(id) => {
            hash.update(b"mid\0");
            hash.update(id.as_bytes());
            hash.update(b"\0");
            hash.update(&raw[rawmail::body_offset(raw)..]);
        }
        None => {
            hash.update(b"raw\0");
            hash.update(raw);
        }
    }
    hash.finalize().into()
}

impl Db {
    /// Commits `messages` in one transaction (`BEGIN IMMEDIATE` … `COMMIT`); a
    /// message already stored is reported as a duplicate and not written again.
    ///
    /// # Errors
    /// Any SQLite failure; then nothing of the batch was committed.
    pub fn commit_raws(&mut self, messages: &[&Incoming]) -> Result<Vec<Committed>, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(messages.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO raw_messages (received_at, origin, peer_ip, helo, mail_from, rcpt_to,
                     message_id, dedup_key, size_bytes, bytes, dsn)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (dedup_key) DO NOTHING",
            )?;
            let mut existing =
                tx.prepare_cached("SELECT id FROM raw_messages WHERE dedup_key = ?1")?;
            for msg in messages {
                let key = dedup_key(&msg.bytes);
                let env = &msg.envelope;
                let inserted = insert.execute(params![
                    msg.received_at,
                    env.origin.as_str(),
                    env.peer_ip.map(|ip| ip.to_string()),
                    env.helo,
                    env.mail_from.as_column(),
                    super::json_list(&env.rcpt_to),
                    rawmail::message_id(&msg.bytes),
                    &key[..],
                    msg.bytes.len() as i64,
                    msg.bytes,
                    env.dsn.as_ref().map(super::json_text),
                ])?;
                out.push(if inserted == 1 {
                    Committed {
                        raw_id: RawId(tx.last_insert_rowid()),
                        is_duplicate: false,
                    }
                } else {
                    let id = existing.query_row([&key[..]], |r| r.get(0))?;
                    Committed {
                        raw_id: RawId(id),
                        is_duplicate: true,
                    }
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Raw messages not yet turned into reports, oldest first: at most
    /// `limit` of them and, past the first, at most `max_bytes` together.
    pub fn unprocessed(&self, limit: usize, max_bytes: u64) -> Result<Vec<RawMessage>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RAW_COLUMNS} FROM raw_messages
             WHERE id IN (
                 SELECT id FROM (
                     SELECT id, sum(size_bytes) OVER (ORDER BY id) - size_bytes AS before
                     FROM (SELECT id, size_bytes FROM raw_messages
                           WHERE status = 'received' ORDER BY id LIMIT ?1))
                 WHERE before = 0 OR before + 0 < ?2)
             ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![limit as i64, max_bytes as i64], read_raw)?;
        rows.map(|r| r.map_err(Error::from).and_then(|r| r))
            .collect()
    }

    /// Up to `limit` raw messages with an id above `after` (and received at or
    /// after `since`), in id order: the pages `reprocess` walks.
    pub fn raws_after(
        &self,
        after: RawId,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RawMessage>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RAW_COLUMNS} FROM raw_messages
             WHERE id > ?1 AND (?2 IS NULL OR received_at >= ?2) ORDER BY id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![after.0, since, limit as i64], read_raw)?;
        rows.map(|r| r.map_err(Error::from).and_then(|r| r))
            .collect()
    }

    /// One raw message by id.
    pub fn raw(&self, id: RawId) -> Result<Option<RawMessage>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RAW_COLUMNS} FROM raw_messages WHERE id = ?1"
        ))?;
        stmt.query_row([id.0], read_raw).optional()?.transpose()
    }

    /// Number of raw messages in each processing status.
    /// Messages stored and not yet reports (the partial index answers it).
    pub fn backlog(&self) -> Result<u64, Error> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM raw_messages WHERE status = 'received'",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    pub fn raw_status_counts(&self) -> Result<Vec<(String, u64)>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT status, count(*) FROM raw_messages GROUP BY status ORDER BY status",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A raw message as `raw list` shows it: its envelope and state, not its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RawSummary {
    pub id: RawId,
    pub received_at: String,
    pub origin: String,
    pub peer_ip: Option<String>,
    pub mail_from: Option<String>,
    pub message_id: Option<String>,
    pub size_bytes: u64,
    /// `received`, `processed`, `failed` or `discarded`.
    pub status: String,
    /// Why processing failed.
    pub error: Option<String>,
}

impl Db {
    /// The newest `limit` raw messages, only those in `status` if given.
    pub fn raw_list(
        &self,
        status: Option<RawStatus>,
        limit: usize,
    ) -> Result<Vec<RawSummary>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, received_at, origin, peer_ip, mail_from, message_id, size_bytes, status, error
             FROM raw_messages WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![status.map(RawStatus::as_str), limit as i64], |r| {
            Ok(RawSummary {
                id: RawId(r.get(0)?),
                received_at: r.get(1)?,
                origin: r.get(2)?,
                peer_ip: r.get(3)?,
                mail_from: r.get(4)?,
                message_id: r.get(5)?,
                size_bytes: r.get::<_, i64>(6)? as u64,
                status: r.get(7)?,
                error: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves the raw messages `ids` that are in one of `from` to `to` (and
    /// clears their error when they go back to `received`); returns how many moved.
    pub fn set_raw_status(
        &mut self,
        ids: &[RawId],
        from: &[RawStatus],
        to: RawStatus,
    ) -> Result<u64, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut moved = 0;
        {
            let mut update = tx.prepare_cached(
                "UPDATE raw_messages
                 SET status = ?2, error = CASE WHEN ?2 = 'received' THEN NULL ELSE error END
                 WHERE id = ?1 AND status IN (SELECT value FROM json_each(?3))",
            )?;
            let from = serde_json::to_string(from).expect("statuses serialize");
            for id in ids {
                moved += update.execute(params![id.0, to.as_str(), from])? as u64;
            }
        }
        tx.commit()?;
        Ok(moved)
    }
}

const RAW_COLUMNS: &str =
    "id, received_at, origin, peer_ip, helo, mail_from, rcpt_to, bytes, auth, dsn";

fn read_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RawMessage, Error>> {
    let id: i64 = row.get(0)?;
    let origin: String = row.get(2)?;
    let peer_ip: Option<String> = row.get(3)?;
    let rcpt_to: String = row.get(6)?;
    let rcpt_to = match parse_json_list("raw_messages", id, &rcpt_to) {
        Ok(list) => list,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(RawMessage {
        id: RawId(id),
        envelope: Envelope {
            origin: if origin == "smtp" {
                Origin::Smtp
            } else {
                Origin::Ingest
            },
            peer_ip: peer_ip.and_then(|ip| ip.parse().ok()),
            helo: row.get(4)?,
            mail_from: Sender::from_column(row.get(5)?),
            rcpt_to,
            // Kept for the record; a value this build cannot read is left out.
            dsn: row
                .get::<_, Option<String>>(9)?
                .and_then(|text| serde_json::from_str(&text).ok()),
        },
        received_at: row.get(1)?,
        bytes: row.get(7)?,
        // A result this build cannot read is checked again.
        auth: row
            .get::<_, Option<String>>(8)?
            .and_then(|text| serde_json::from_str(&text).ok()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    fn incoming(bytes: &[u8]) -> Incoming {
        Incoming {
            envelope: Envelope {
                origin: Origin::Smtp,
                peer_ip: Some("192.0.2.1".parse().unwrap()),
                helo: Some("client.example".into()),
                mail_from: Sender::Null,
                rcpt_to: vec!["abuse@example.com".into()],
                dsn: None,
            },
            received_at: "2026-11-26T08:00:00Z".into(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn same_message_id_and_body_is_one_row_even_via_another_relay() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db"), Role::Cli).unwrap();
        let a = incoming(b"Received: from a\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n");
        let b = incoming(b"Received: from b\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n");
        let c = incoming(b"Message-ID: <1@x>\r\n\r\nother body\r\n");
        let out = db.commit_raws(&[&a, &b, &c]).unwrap();
        assert!(!out[0].is_duplicate);
        assert_eq!(
            out[1],
            Committed {
                raw_id: out[0].raw_id,
                is_duplicate: true
            }
        );
        assert!(!out[2].is_duplicate);
        let pending = db.unprocessed(10, u64::MAX >> 1).unwrap();
        assert_eq!(
            db.unprocessed(10, 1).unwrap().len(),
            1,
            "the first always comes"
        );
        assert_eq!(pending.len(), 2);
        assert_eq!(db.backlog().unwrap(), 2);
        assert_eq!(pending[0].envelope, a.envelope);
        assert_eq!(pending[0].bytes, a.bytes);
    }
}

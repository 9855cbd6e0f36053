//! Raw messages: the durable commit that a 250 promises, and reading them back.

use super::raw_rows::{insert_values, read_raw, INSERT_RAW, RAW_BY_KEY, RAW_COLUMNS};
use super::{Db, Error};
use crate::model::{Committed, Incoming, RawId, RawMessage, RawStatus};
use crate::sql_params;
use rusqlite::{params, TransactionBehavior};

/// How long a node holds the messages it processes and the replies it
/// sends (PostgreSQL), unless `store.claim_lease_seconds` says otherwise:
/// longer than a batch can take, short enough that a dead node's work is
/// taken over soon.
pub const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

impl Db {
    /// Commits `messages` in one transaction (`BEGIN IMMEDIATE` … `COMMIT`); a
    /// message already stored is reported as a duplicate and not written again.
    ///
    /// # Errors
    /// Any SQLite failure; then nothing of the batch was committed.
    pub fn commit_raws(&mut self, messages: &[&Incoming]) -> Result<Vec<Committed>, Error> {
        if let super::Backend::Postgres(pg) = &self.backend {
            return pg.run(|c| super::pg::commit_raws(c, messages));
        }
        let tx = self
            .lite_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(messages.len());
        {
            let mut insert = tx.prepare_cached(INSERT_RAW)?;
            let mut existing = tx.prepare_cached(RAW_BY_KEY)?;
            for msg in messages {
                let (key, values) = insert_values(msg);
                let inserted = insert.execute(rusqlite::params_from_iter(&values))?;
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
    ///
    /// On PostgreSQL they are claimed for this node for [`CLAIM_LEASE`]:
    /// other nodes leave them alone until the lease runs out (this node
    /// died), and the report's commit ends the claim.
    pub fn unprocessed(&self, limit: usize, max_bytes: u64) -> Result<Vec<RawMessage>, Error> {
        if self.dialect() == super::sql::Dialect::Postgres {
            return self.claim_unprocessed(&super::node_name(), limit, max_bytes, self.claim_lease);
        }
        let mut stmt = self.lite()?.prepare_cached(&format!(
            "SELECT {RAW_COLUMNS} FROM raw_messages
             WHERE id IN (
                 SELECT id FROM (
                     SELECT id, sum(size_bytes) OVER (ORDER BY id) - size_bytes AS before
                     FROM (SELECT id, size_bytes FROM raw_messages
                           WHERE status = 'received' ORDER BY id LIMIT ?1))
                 WHERE before = 0 OR before + 0 < ?2)
             ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![limit as i64, max_bytes as i64], |r| {
            Ok(read_raw_lite(r))
        })?;
        rows.map(|r| r.map_err(Error::from).and_then(|r| r))
            .collect()
    }

    /// PostgreSQL: the nodes holding live claims on messages or replies
    /// (none on SQLite, where there are no claims).
    pub fn claimers(&self) -> Result<Vec<String>, Error> {
        if self.dialect() != super::sql::Dialect::Postgres {
            return Ok(Vec::new());
        }
        self.read(|q| {
            q.rows(
                "SELECT DISTINCT claimed_by FROM raw_messages
                 WHERE status = 'received' AND claimed_until > now()
                 UNION SELECT DISTINCT claimed_by FROM outbox
                 WHERE state = 'pending' AND claimed_until > now()",
                &[],
            )?
            .iter()
            .filter_map(|r| r.opt_text(0).transpose())
            .collect()
        })
    }

    /// Ends every claim `node` holds on messages and replies; how many.
    pub fn release_claims_of(&self, node: &str) -> Result<u64, Error> {
        self.read(|q| {
            let mut released = 0;
            for table in ["raw_messages", "outbox"] {
                released += q.exec(
                    &format!(
                        "UPDATE {table} SET claimed_by = NULL, claimed_until = NULL
                         WHERE claimed_by = ?1"
                    ),
                    sql_params![node],
                )?;
            }
            Ok(released)
        })
    }

    /// PostgreSQL: extends every live claim `node` holds on messages and
    /// replies to `lease` from now (the heartbeat of a working node); how many.
    ///
    /// # Errors
    /// Storage errors.
    pub fn renew_claims(&self, node: &str, lease: std::time::Duration) -> Result<u64, Error> {
        if self.dialect() != super::sql::Dialect::Postgres {
            return Ok(0);
        }
        self.read(|q| {
            let mut renewed = 0;
            for (table, open) in [("raw_messages", "status = 'received'"), ("outbox", "state = 'pending'")] {
                renewed += q.exec(
                    &format!(
                        "UPDATE {table}
                         SET claimed_until = now() + make_interval(secs => (?2::bigint / 1000.0)::float8)
                         WHERE claimed_by = ?1 AND {open} AND claimed_until > now()"
                    ),
                    sql_params![node, lease.as_millis() as u64],
                )?;
            }
            Ok(renewed)
        })
    }

    /// [`Db::unprocessed`] on PostgreSQL, claimed for `node` for `lease`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] on SQLite, where one daemon owns the store.
    pub fn claim_unprocessed(
        &self,
        node: &str,
        limit: usize,
        max_bytes: u64,
        lease: std::time::Duration,
    ) -> Result<Vec<RawMessage>, Error> {
        match &self.backend {
            super::Backend::Postgres(pg) => {
                pg.run(|c| super::pg::claim_unprocessed(c, node, limit, max_bytes, lease))
            }
            super::Backend::Sqlite(_) => Err(Error::Unsupported {
                what: "claims on a SQLite store".into(),
            }),
        }
    }

    /// Up to `limit` raw messages with an id above `after` (and received at or
    /// after `since`), in id order: the pages `reprocess` walks.
    pub fn raws_after(
        &self,
        after: RawId,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RawMessage>, Error> {
        self.read(|q| {
            q.rows(
                &format!(
                    "SELECT {RAW_COLUMNS} FROM raw_messages
                     WHERE id > ?1 AND (CAST(?2 AS TEXT) IS NULL OR received_at >= ?2) ORDER BY id LIMIT ?3"
                ),
                sql_params![after, since, limit],
            )?
            .iter()
            .map(read_raw)
            .collect()
        })
    }

    /// One raw message by id.
    pub fn raw(&self, id: RawId) -> Result<Option<RawMessage>, Error> {
        self.read(|q| {
            q.row(
                &format!("SELECT {RAW_COLUMNS} FROM raw_messages WHERE id = ?1"),
                sql_params![id],
            )?
            .as_ref()
            .map(read_raw)
            .transpose()
        })
    }

    /// Messages stored and not yet reports (the partial index answers it).
    pub fn backlog(&self) -> Result<u64, Error> {
        self.read(|q| {
            q.count(
                "SELECT count(*) FROM raw_messages WHERE status = 'received'",
                &[],
            )
        })
    }

    /// Number of raw messages in each processing status.
    pub fn raw_status_counts(&self) -> Result<Vec<(String, u64)>, Error> {
        self.read(|q| {
            q.rows(
                "SELECT status, count(*) FROM raw_messages GROUP BY status ORDER BY status",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.int(1)?.max(0) as u64)))
            .collect()
        })
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
    pub status: RawStatus,
    /// Why processing failed.
    pub error: Option<String>,
}

const SUMMARY_COLUMNS: &str =
    "id, received_at, origin, peer_ip, mail_from, message_id, size_bytes, status, error";

fn read_summary(r: &super::sql::Row) -> Result<RawSummary, Error> {
    let id = r.int(0)?;
    let status = r.text(7)?;
    let Some(status) = RawStatus::parse(&status) else {
        return Err(Error::Corrupt {
            table: "raw_messages",
            id,
            detail: format!("unknown status {status:?}"),
        });
    };
    Ok(RawSummary {
        id: RawId(r.int(0)?),
        received_at: r.text(1)?,
        origin: r.text(2)?,
        peer_ip: r.opt_text(3)?,
        mail_from: r.opt_text(4)?,
        message_id: r.opt_text(5)?,
        size_bytes: r.int(6)?.max(0) as u64,
        status,
        error: r.opt_text(8)?,
    })
}

impl Db {
    /// The newest `limit` raw messages, only those in `status` if given.
    pub fn raw_list(
        &self,
        status: Option<RawStatus>,
        before: Option<RawId>,
        limit: usize,
    ) -> Result<Vec<RawSummary>, Error> {
        self.read(|q| {
            q.rows(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM raw_messages
                     WHERE (CAST(?1 AS TEXT) IS NULL OR status = ?1)
                       AND (CAST(?3 AS BIGINT) IS NULL OR id < ?3)
                     ORDER BY id DESC LIMIT ?2"
                ),
                sql_params![status.map(RawStatus::as_str), limit, before],
            )?
            .iter()
            .map(read_summary)
            .collect()
        })
    }

    /// One raw message's summary, and the report made of it (if any).
    pub fn raw_summary(&self, id: RawId) -> Result<Option<(RawSummary, Option<i64>)>, Error> {
        self.read(|q| {
            let Some(row) = q.row(
                &format!("SELECT {SUMMARY_COLUMNS} FROM raw_messages WHERE id = ?1"),
                sql_params![id],
            )?
            else {
                return Ok(None);
            };
            let summary = read_summary(&row)?;
            let report = q
                .row("SELECT id FROM reports WHERE raw_id = ?1", sql_params![id])?
                .map(|r| r.int(0))
                .transpose()?;
            Ok(Some((summary, report)))
        })
    }

    /// Moves the raw messages `ids` that are in one of `from` to `to` (and
    /// clears their error when they go back to `received`); returns how many moved.
    pub fn set_raw_status(
        &mut self,
        ids: &[RawId],
        from: &[RawStatus],
        to: RawStatus,
    ) -> Result<u64, Error> {
        self.write(|q| {
            let mut moved = 0;
            for id in ids {
                let Some(row) = q.row(
                    "SELECT status FROM raw_messages WHERE id = ?1",
                    sql_params![*id],
                )?
                else {
                    continue;
                };
                let status = row.text(0)?;
                if !from.iter().any(|f| f.as_str() == status) {
                    continue;
                }
                // On PostgreSQL a retried message is free for any node at once.
                let release = match q.dialect() {
                    super::sql::Dialect::Sqlite => "",
                    super::sql::Dialect::Postgres => ", claimed_by = NULL, claimed_until = NULL",
                };
                moved += q.exec(
                    &format!(
                        "UPDATE raw_messages
                         SET status = ?2, error = CASE WHEN ?2 = 'received' THEN NULL ELSE error END
                             {release}
                         WHERE id = ?1"
                    ),
                    sql_params![*id, to.as_str()],
                )?;
            }
            Ok(moved)
        })
    }
}

/// [`read_raw`] of a SQLite row (the worker's query, which keeps its own
/// statement).
fn read_raw_lite(row: &rusqlite::Row<'_>) -> Result<RawMessage, Error> {
    let values = (0..10)
        .map(|i| {
            Ok(match row.get_ref(i)? {
                rusqlite::types::ValueRef::Null => super::sql::Value::Null,
                rusqlite::types::ValueRef::Integer(v) => super::sql::Value::Int(v),
                rusqlite::types::ValueRef::Real(v) => super::sql::Value::Int(v as i64),
                rusqlite::types::ValueRef::Text(t) => {
                    super::sql::Value::Text(String::from_utf8_lossy(t).into_owned())
                }
                rusqlite::types::ValueRef::Blob(b) => super::sql::Value::Blob(b.to_vec()),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    read_raw(&super::sql::Row(values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Envelope, Origin, Sender};
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

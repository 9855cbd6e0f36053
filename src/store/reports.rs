//! Reports: written by the pipeline worker, read by the CLI.

use super::{json_list, parse_json_list, Db, Error};
use crate::evidence::{Kind, Row};
use crate::model::{
    AbuseType, NetworkSubtype, RawId, ReplyDecision, ReplyKind, Report, ReportDraft, ReportId,
};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::collections::BTreeMap;

/// What processing made of one raw message, ready to store.
#[derive(Debug)]
pub struct Outcome {
    pub raw_id: RawId,
    /// The raw message's arrival time, copied onto the report.
    pub received_at: String,
    /// The report, or why processing failed.
    pub result: Result<ReportDraft, String>,
}

/// A stored report and the reply decision it holds: the one processing made,
/// unless storing changed it (the rate limit, a merged follow-up) or the
/// report kept its earlier one (reprocess).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: ReportId,
    pub reply: ReplyDecision,
    pub reply_reason: Option<String>,
}

/// Where processed reports go: the database directly (one-shot commands) or
/// the daemon's single writer thread.
///
/// Storing is split in two so the caller can process the next messages while
/// a batch is being written: [`ReportSink::submit`] hands a batch over,
/// [`ReportSink::finish`] waits for its transaction.
pub trait ReportSink {
    /// A batch handed over and not yet waited for.
    type Pending;

    /// Hands `outcomes` over to be stored in one transaction.
    ///
    /// # Errors
    /// Storage errors (a direct sink stores right away); then nothing of the
    /// batch was stored.
    fn submit(
        &mut self,
        outcomes: Vec<Outcome>,
        processed_at: &str,
    ) -> Result<Self::Pending, Error>;

    /// Waits for a submitted batch; the report id of each outcome, `None`
    /// for a failure.
    ///
    /// # Errors
    /// Storage errors; then nothing of the batch was stored.
    fn finish(&mut self, pending: Self::Pending) -> Result<Vec<Option<Stored>>, Error>;
}

impl ReportSink for Db {
    type Pending = Vec<Option<Stored>>;

    fn submit(
        &mut self,
        outcomes: Vec<Outcome>,
        processed_at: &str,
    ) -> Result<Self::Pending, Error> {
        self.save_outcomes(&outcomes, processed_at)
    }

    fn finish(&mut self, stored: Self::Pending) -> Result<Vec<Option<Stored>>, Error> {
        Ok(stored)
    }
}

/// Which reports `reports list` wants.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub abuse_type: Option<AbuseType>,
    pub subtype: Option<NetworkSubtype>,
    pub reply: Option<ReplyDecision>,
    pub status: Option<crate::model::ReportStatus>,
    /// Part of the reporter's address, case-insensitive.
    pub reporter: Option<String>,
    /// RFC 3339, UTC; reports received at or after it.
    pub since: Option<String>,
    /// RFC 3339, UTC; reports received before it.
    pub until: Option<String>,
    /// Reports naming an address in this range (first, last), inclusive.
    pub ip_range: Option<(std::net::IpAddr, std::net::IpAddr)>,
    /// Words that must all appear in the subject or body (full-text).
    pub search: Option<String>,
    /// Only reports with a higher id, oldest first (`--follow`).
    pub after: Option<ReportId>,
    /// Only this RSIT type (`brute-force`, `phishing`, …).
    pub rsit_type: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// A user's words as an FTS5 query: every word quoted (so `-`, `:` and
/// quotes are text, never syntax), all of them required.
fn fts_query(words: &str) -> Option<String> {
    let terms: Vec<String> = words
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// What `prune` removed (or would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub reports: u64,
    pub raw_messages: u64,
    pub evidence_rows: u64,
    pub replies: u64,
}

/// Counts for `abuse-inbox stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub reports: u64,
    pub by_abuse_type: BTreeMap<String, u64>,
    /// `abuse_type/subtype` for network activity.
    pub by_subtype: BTreeMap<String, u64>,
    pub by_reply: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    /// Reports per day (UTC) over the last 30 days.
    pub by_day: BTreeMap<String, u64>,
    /// The most reported addresses, most first: (address, reports).
    pub top_ips: Vec<(String, u64)>,
    /// The most reported networks (/24 for IPv4, /64 for IPv6).
    pub top_networks: Vec<(String, u64)>,
    pub top_reporters: Vec<(String, u64)>,
    /// Committed messages not processed yet.
    pub backlog: u64,
    /// Raw messages by processing status.
    pub raw_messages: BTreeMap<String, u64>,
}

/// How many entries the `top_*` lists of `stats` have.
const TOP: i64 = 10;

/// A `report_ips` key (or its /24 or /64 prefix) as text.
fn key_to_text(key: &[u8]) -> String {
    let mut full = [0u8; 16];
    full[..key.len().min(16)].copy_from_slice(&key[..key.len().min(16)]);
    let v6 = std::net::Ipv6Addr::from(full);
    match (v6.to_ipv4_mapped(), key.len()) {
        (Some(v4), 16) => v4.to_string(),
        (Some(v4), _) => format!("{v4}/24"),
        (None, 16) => v6.to_string(),
        (None, _) => format!("{v6}/64"),
    }
}

impl Db {
    /// [`Db::save_outcomes`] with `synchronous=NORMAL` for the transaction:
    /// how the single writer stores reports on its FULL connection.
    pub(super) fn save_reports(
        &mut self,
        outcomes: &[Outcome],
        processed_at: &str,
    ) -> Result<Vec<Option<Stored>>, Error> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = self.save_outcomes(outcomes, processed_at);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        result
    }

    /// Stores the outcome of processing each raw message, in one transaction:
    /// a report (inserted, or replaced in place when the message is processed
    /// again) and `processed`, or `failed` with the error text.
    ///
    /// # Errors
    /// Any SQLite failure; then nothing was written.
    pub fn save_outcomes(
        &mut self,
        outcomes: &[Outcome],
        processed_at: &str,
    ) -> Result<Vec<Option<Stored>>, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(outcomes.len());
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO reports (raw_id, message_id, received_at, reporter, subject, abuse_type,
                     subtype, ips, urls, evidence_rows, missing, reply, parse_warnings, processed_at,
                     formats, reasons, reply_reason, language, auth, rsit_taxonomy, rsit_type, feed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20, ?21, ?22)
                 ON CONFLICT (raw_id) DO UPDATE SET
                     message_id = excluded.message_id, reporter = excluded.reporter,
                     subject = excluded.subject, abuse_type = excluded.abuse_type,
                     subtype = excluded.subtype, ips = excluded.ips, urls = excluded.urls,
                     evidence_rows = excluded.evidence_rows, missing = excluded.missing,
                     parse_warnings = excluded.parse_warnings,
                     processed_at = excluded.processed_at, formats = excluded.formats,
                     reasons = excluded.reasons, language = excluded.language,
                     auth = excluded.auth, rsit_taxonomy = excluded.rsit_taxonomy,
                     rsit_type = excluded.rsit_type, feed = excluded.feed
                 RETURNING id, reply, reply_reason",
            )?;
            let mut mark =
                tx.prepare_cached("UPDATE raw_messages SET status = ?2, error = ?3 WHERE id = ?1")?;
            // The sender checks are made once per message and kept with it.
            let mut keep_auth = tx.prepare_cached(
                "UPDATE raw_messages SET auth = ?2 WHERE id = ?1 AND auth IS NULL AND ?2 IS NOT NULL",
            )?;
            let mut clear = tx.prepare_cached("DELETE FROM evidence WHERE report_id = ?1")?;
            let mut existing = tx.prepare_cached(
                "SELECT r.id, r.reply, r.reply_reason, r.follow_up_of IS NOT NULL OR EXISTS (
                     SELECT 1 FROM report_events e WHERE e.report_id = r.id AND e.kind = 'follow_up')
                 FROM reports r WHERE r.raw_id = ?1",
            )?;
            let mut unindex_text = tx.prepare_cached("DELETE FROM report_text WHERE rowid = ?1")?;
            let mut index_text = tx.prepare_cached(
                "INSERT INTO report_text (rowid, subject, body) VALUES (?1, ?2, ?3)",
            )?;
            let mut add = tx.prepare_cached(
                "INSERT INTO evidence (report_id, kind, source_ip, target_ip, source_port, target_port,
                     occurred_at, url, line, origin, line_of, role)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for Outcome {
                raw_id,
                received_at,
                result: outcome,
            } in outcomes
            {
                match outcome {
                    Ok(d) => {
                        // Processed before (reprocess): the report is updated in
                        // place and keeps its reply decision; nothing is queued.
                        // A report that took in follow-ups, or was merged into
                        // another, is left as it is: its evidence and
                        // completeness come from more than this message.
                        let before = existing
                            .query_row([raw_id.0], |r| Ok((read_stored(r)?, r.get::<_, bool>(3)?)))
                            .optional()?;
                        if let Some((stored, true)) = before {
                            mark.execute(params![raw_id.0, "processed", None::<String>])?;
                            ids.push(Some(stored));
                            continue;
                        }
                        let is_new = before.is_none();
                        let auth_json = d
                            .auth
                            .as_ref()
                            .map(|a| serde_json::to_string(a).expect("auth results serialize"));
                        keep_auth.execute(params![raw_id.0, auth_json])?;
                        let mut stored = upsert.query_row(
                            params![
                                raw_id.0,
                                d.message_id,
                                received_at,
                                d.reporter,
                                d.subject,
                                d.abuse_type.as_str(),
                                d.subtype.map(NetworkSubtype::as_str),
                                json_list(&d.ips),
                                json_list(&d.urls),
                                d.evidence_rows as i64,
                                json_list(&d.missing),
                                d.reply.as_str(),
                                json_list(&d.parse_warnings),
                                processed_at,
                                json_list(&d.formats),
                                json_list(&d.reasons),
                                d.reply_reason,
                                d.language.as_str(),
                                auth_json,
                                d.rsit.taxonomy,
                                d.rsit.kind,
                                d.feed,
                            ],
                            read_stored,
                        )?;
                        let id = stored.id.0;
                        clear.execute([id])?;
                        super::index_report_ips(&tx, id, &d.ips)?;
                        unindex_text.execute([id])?;
                        index_text.execute(params![
                            id,
                            d.subject.as_deref().unwrap_or(""),
                            d.search_text
                        ])?;
                        // A line is stored once; its other rows point at it.
                        let mut lines: std::collections::HashMap<&str, i64> =
                            std::collections::HashMap::new();
                        for row in &d.evidence {
                            let line = row.line.as_deref();
                            let line_of = line.and_then(|l| lines.get(l).copied());
                            add.execute(params![
                                id,
                                row.kind.as_str(),
                                row.source_ip.map(|ip| ip.to_string()),
                                row.target_ip.map(|ip| ip.to_string()),
                                row.source_port,
                                row.target_port,
                                row.occurred_at,
                                row.url,
                                if line_of.is_some() { None } else { line },
                                row.origin,
                                line_of,
                                row.role.as_str(),
                            ])?;
                            if let (Some(line), None) = (line, line_of) {
                                lines.insert(line, tx.last_insert_rowid());
                            }
                        }
                        mark.execute(params![raw_id.0, "processed", None::<String>])?;
                        if is_new {
                            let merged = match &d.follow_up {
                                Some(claim) => super::outbox::merge_follow_up(
                                    &tx,
                                    claim.id,
                                    id,
                                    d,
                                    processed_at,
                                )?,
                                None => None,
                            };
                            if merged.is_none() {
                                if let Some(key) = crate::cases::key(d, received_at) {
                                    super::cases::assign(&tx, id, &key, received_at)?;
                                }
                            }
                            super::outbox::event(&tx, id, received_at, "received", "")?;
                            super::outbox::event(
                                &tx,
                                id,
                                processed_at,
                                "classified",
                                &d.class_label(),
                            )?;
                            let suppressed = if let Some(merge) = &merged {
                                tx.execute(
                                    "UPDATE reports SET follow_up_of = ?2, evidence_rows = 0
                                     WHERE id = ?1",
                                    params![id, merge.original],
                                )?;
                                Some(merge.follow_up_reason.clone())
                            } else if let (Some(plan), Some(kind)) =
                                (&d.reply_plan, ReplyKind::for_decision(d.reply))
                            {
                                let queued =
                                    super::outbox::queue(&tx, id, kind, plan, None, processed_at)?;
                                if let Err(reason) = &queued {
                                    super::outbox::event(
                                        &tx,
                                        id,
                                        processed_at,
                                        "reply",
                                        &crate::reply::queue::suppressed_event(reason),
                                    )?;
                                }
                                queued.err()
                            } else {
                                super::outbox::event(
                                    &tx,
                                    id,
                                    processed_at,
                                    "reply",
                                    &d.reply_event(),
                                )?;
                                None
                            };
                            if let Some(reason) = suppressed {
                                tx.execute(
                                    "UPDATE reports SET reply = ?2, reply_reason = ?3 WHERE id = ?1",
                                    params![id, ReplyDecision::Suppressed.as_str(), reason],
                                )?;
                                stored.reply = ReplyDecision::Suppressed;
                                stored.reply_reason = Some(reason);
                            }
                        }
                        ids.push(Some(stored));
                    }
                    Err(error) => {
                        mark.execute(params![raw_id.0, "failed", error])?;
                        ids.push(None);
                    }
                }
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// One report by id.
    pub fn report(&self, id: ReportId) -> Result<Option<Report>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {REPORT_COLUMNS} FROM reports WHERE id = ?1"
        ))?;
        stmt.query_row([id.0], read_report).optional()?.transpose()
    }

    /// The report made from a raw message, if it was processed.
    pub fn report_for_raw(&self, raw_id: RawId) -> Result<Option<Report>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {REPORT_COLUMNS} FROM reports WHERE raw_id = ?1"
        ))?;
        stmt.query_row([raw_id.0], read_report)
            .optional()?
            .transpose()
    }

    /// The first `per_kind` evidence rows of each kind of a report.
    pub fn evidence_sample(&self, report: ReportId, per_kind: usize) -> Result<Vec<Row>, Error> {
        let mut rows = Vec::new();
        for kind in ["feedback", "notice", "message", "log_row", "url", "ip"] {
            rows.extend(self.evidence_of_kind(report, kind, per_kind)?);
        }
        Ok(rows)
    }

    fn evidence_of_kind(
        &self,
        report: ReportId,
        kind: &str,
        limit: usize,
    ) -> Result<Vec<Row>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT kind, source_ip, target_ip, source_port, target_port, occurred_at, url,
                 {EVIDENCE_LINE}, origin, role
             FROM evidence e WHERE report_id = ?1 AND kind = ?2 ORDER BY id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![report.0, kind, limit as i64], read_evidence)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The first `limit` evidence rows of a report, in the order found.
    pub fn evidence(&self, report: ReportId, limit: usize) -> Result<Vec<Row>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT kind, source_ip, target_ip, source_port, target_port, occurred_at, url,
                 {EVIDENCE_LINE}, origin, role
             FROM evidence e WHERE report_id = ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![report.0, limit as i64], read_evidence)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Retention (the GDPR deletion path): for reports received before
    /// `before`, deletes the original message, the evidence, the replies and
    /// the history, and blanks everything that names a person or an address
    /// (reporter, subject, Message-ID, IPs, URLs, reasons). What stays is
    /// what `stats` counts: type, subtype, reply decision, status, dates and
    /// the number of evidence rows. Messages not yet processed are kept.
    /// With `dry_run` nothing changes and the counts say what would go.
    pub fn prune(&mut self, before: &str, dry_run: bool) -> Result<Pruned, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old = "SELECT r.id FROM reports r JOIN raw_messages m ON m.id = r.raw_id
                   WHERE r.received_at < ?1 AND m.status != 'pruned'";
        let count = |sql: &str| -> Result<u64, Error> {
            Ok(tx.query_row(&sql.replace("{old}", old), [before], |r| r.get::<_, i64>(0))? as u64)
        };
        let pruned = Pruned {
            reports: count("SELECT count(*) FROM ({old})")?,
            raw_messages: count("SELECT count(*) FROM raw_messages WHERE received_at < ?1 AND status IN ('processed', 'failed')")?,
            evidence_rows: count("SELECT count(*) FROM evidence WHERE report_id IN ({old})")?,
            replies: count("SELECT count(*) FROM outbox WHERE report_id IN ({old})")?,
        };
        if dry_run {
            return Ok(pruned); // the transaction rolls back on drop
        }
        for sql in [
            "DELETE FROM evidence WHERE report_id IN ({old})",
            "DELETE FROM report_ips WHERE report_id IN ({old})",
            "DELETE FROM report_text WHERE rowid IN ({old})",
            "DELETE FROM outbox WHERE report_id IN ({old})",
            "DELETE FROM report_events WHERE report_id IN ({old})",
            "UPDATE reports SET reporter = NULL, subject = NULL, message_id = NULL, ips = '[]', urls = '[]',
                 reasons = '[]', parse_warnings = '[]', reply_reason = NULL WHERE id IN ({old})",
            "UPDATE raw_messages SET bytes = x'', peer_ip = NULL, helo = NULL, mail_from = NULL,
                 rcpt_to = '[]', dsn = NULL, message_id = NULL, error = NULL, status = 'pruned'
             WHERE received_at < ?1 AND status IN ('processed', 'failed')",
        ] {
            tx.execute(&sql.replace("{old}", old), [before])?;
        }
        tx.commit()?;
        Ok(pruned)
    }

    /// Reports matching `filter`, newest first.
    pub fn list_reports(&self, filter: &ListFilter) -> Result<Vec<Report>, Error> {
        // Newest first; oldest first when following (`after`). Both walk the
        // primary key, so a LIMIT stops early on a large table.
        let order = if filter.after.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {REPORT_COLUMNS} FROM reports
             WHERE (?1 IS NULL OR abuse_type = ?1) AND (?2 IS NULL OR received_at >= ?2)
               AND (?4 IS NULL OR subtype = ?4) AND (?5 IS NULL OR reply = ?5)
               AND (?6 IS NULL OR status = ?6) AND (?7 IS NULL OR reporter LIKE '%' || ?7 || '%')
               AND (?8 IS NULL OR received_at < ?8)
               AND (?9 IS NULL OR id IN (SELECT report_id FROM report_ips WHERE ip_key BETWEEN ?9 AND ?10))
               AND (?12 IS NULL OR id IN (SELECT rowid FROM report_text WHERE report_text MATCH ?12))
               AND (?13 IS NULL OR id > ?13)
               AND (?14 IS NULL OR rsit_type = ?14)
             ORDER BY id {order} LIMIT ?3 OFFSET ?11"
        ))?;
        let range = filter
            .ip_range
            .map(|(first, last)| (super::ip_key(first).to_vec(), super::ip_key(last).to_vec()));
        let rows = stmt.query_map(
            params![
                filter.abuse_type.map(AbuseType::as_str),
                filter.since,
                filter.limit as i64,
                filter.subtype.map(NetworkSubtype::as_str),
                filter.reply.map(ReplyDecision::as_str),
                filter.status.map(crate::model::ReportStatus::as_str),
                filter.reporter,
                filter.until,
                range.as_ref().map(|r| r.0.clone()),
                range.as_ref().map(|r| r.1.clone()),
                filter.offset as i64,
                filter.search.as_deref().and_then(fts_query),
                filter.after.map(|a| a.0),
                filter.rsit_type,
            ],
            read_report,
        )?;
        rows.map(|r| r.map_err(Error::from).and_then(|r| r))
            .collect()
    }

    /// How many reports there are.
    pub fn report_count(&self) -> Result<u64, Error> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM reports", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Counts by type, by reply decision and by processing status.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut stats = Stats::default();
        // One pass over the reports for the four breakdowns.
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT abuse_type, subtype, reply, status, count(*) FROM reports
                 GROUP BY abuse_type, subtype, reply, status",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (abuse_type, subtype, reply, status): (String, Option<String>, String, String) =
                    (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
                let n = row.get::<_, i64>(4)? as u64;
                *stats.by_abuse_type.entry(abuse_type.clone()).or_default() += n;
                if let Some(subtype) = subtype {
                    *stats
                        .by_subtype
                        .entry(format!("{abuse_type}/{subtype}"))
                        .or_default() += n;
                }
                *stats.by_reply.entry(reply).or_default() += n;
                *stats.by_status.entry(status).or_default() += n;
            }
        }
        let month_ago = (chrono::Utc::now() - chrono::Duration::days(30))
            .format("%Y-%m-%d")
            .to_string();
        stats.by_day = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT substr(received_at, 1, 10) AS day, count(*) FROM reports
                 WHERE received_at >= ?1 GROUP BY day",
            )?;
            let rows = stmt.query_map([&month_ago], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let top = |sql: &str| -> Result<Vec<(Vec<u8>, u64)>, Error> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let rows = stmt.query_map([TOP], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)? as u64))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        stats.top_ips = top("SELECT ip_key, count(*) AS n FROM report_ips GROUP BY ip_key ORDER BY n DESC, ip_key LIMIT ?1")?
            .into_iter()
            .map(|(k, n)| (key_to_text(&k), n))
            .collect();
        stats.top_networks = top(
            "SELECT net_key, count(DISTINCT report_id) AS n FROM report_ips
             GROUP BY net_key ORDER BY n DESC, net_key LIMIT ?1",
        )?
        .into_iter()
        .map(|(k, n)| (key_to_text(&k), n))
        .collect();
        stats.top_reporters = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT reporter, count(*) AS n FROM reports WHERE reporter IS NOT NULL
                 GROUP BY reporter ORDER BY n DESC, reporter LIMIT ?1",
            )?;
            let rows = stmt.query_map([TOP], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        stats.raw_messages = self.raw_status_counts()?.into_iter().collect();
        stats.backlog = stats.raw_messages.get("received").copied().unwrap_or(0);
        stats.reports = stats.by_abuse_type.values().sum();
        Ok(stats)
    }
}

const REPORT_COLUMNS: &str = "id, raw_id, message_id, received_at, reporter, subject, abuse_type, \
     subtype, ips, urls, evidence_rows, missing, reply, parse_warnings, formats, reasons, reply_reason, status, case_id, language, \
     auth, rsit_taxonomy, rsit_type, feed";

/// A row's line: its own, or that of the row it points at (migration 9).
const EVIDENCE_LINE: &str =
    "COALESCE(e.line, (SELECT l.line FROM evidence l WHERE l.id = e.line_of))";

/// `id, reply, reply_reason` of a report.
fn read_stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        id: ReportId(r.get(0)?),
        reply: ReplyDecision::parse(&r.get::<_, String>(1)?).unwrap_or(ReplyDecision::None),
        reply_reason: r.get(2)?,
    })
}

fn read_evidence(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let kind: String = r.get(0)?;
    let ip = |i: usize| -> rusqlite::Result<Option<std::net::IpAddr>> {
        Ok(r.get::<_, Option<String>>(i)?.and_then(|s| s.parse().ok()))
    };
    Ok(Row {
        kind: Kind::parse(&kind).unwrap_or(Kind::Ip),
        source_ip: ip(1)?,
        target_ip: ip(2)?,
        source_port: r.get(3)?,
        target_port: r.get(4)?,
        occurred_at: r.get(5)?,
        url: r.get(6)?,
        line: r.get(7)?,
        origin: r.get(8)?,
        // Rows stored before migration 11 named offenders only as sources.
        role: r
            .get::<_, Option<String>>(9)?
            .and_then(|s| crate::evidence::roles::Role::parse(&s))
            .unwrap_or_default(),
    })
}

fn read_report(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Report, Error>> {
    let id: i64 = row.get(0)?;
    let corrupt = |detail: String| Error::Corrupt {
        table: "reports",
        id,
        detail,
    };
    let abuse_type: String = row.get(6)?;
    let subtype: Option<String> = row.get(7)?;
    let reply: String = row.get(12)?;
    let lists: [String; 6] = [
        row.get(8)?,
        row.get(9)?,
        row.get(11)?,
        row.get(13)?,
        row.get(14)?,
        row.get(15)?,
    ];
    let reply_reason: Option<String> = row.get(16)?;
    let status_text: String = row.get(17)?;
    let case_id: Option<crate::model::CaseId> = row.get(18)?;
    let language: String = row.get(19)?;
    let auth: Option<String> = row.get(20)?;
    let rsit: (Option<String>, Option<String>) = (row.get(21)?, row.get(22)?);
    let feed: Option<String> = row.get(23)?;
    let report = (|| {
        let [ips, urls, missing, warnings, formats, reasons] = lists;
        let abuse_type_parsed = AbuseType::parse(&abuse_type)
            .ok_or_else(|| corrupt(format!("unknown abuse_type {abuse_type:?}")))?;
        let subtype_parsed = match &subtype {
            None => None,
            Some(s) => Some(
                NetworkSubtype::parse(s)
                    .ok_or_else(|| corrupt(format!("unknown subtype {s:?}")))?,
            ),
        };
        Ok(Report {
            id: ReportId(id),
            raw_id: RawId(row.get(1).map_err(|e| corrupt(e.to_string()))?),
            message_id: row.get(2).map_err(|e| corrupt(e.to_string()))?,
            received_at: row.get(3).map_err(|e| corrupt(e.to_string()))?,
            reporter: row.get(4).map_err(|e| corrupt(e.to_string()))?,
            subject: row.get(5).map_err(|e| corrupt(e.to_string()))?,
            abuse_type: abuse_type_parsed,
            subtype: subtype_parsed,
            ips: parse_json_list("reports", id, &ips)?,
            urls: parse_json_list("reports", id, &urls)?,
            evidence_rows: row.get::<_, i64>(10).map_err(|e| corrupt(e.to_string()))? as u64,
            missing: parse_json_list("reports", id, &missing)?,
            reply: ReplyDecision::parse(&reply)
                .ok_or_else(|| corrupt(format!("unknown reply {reply:?}")))?,
            parse_warnings: parse_json_list("reports", id, &warnings)?,
            formats: parse_json_list("reports", id, &formats)?,
            reasons: parse_json_list("reports", id, &reasons)?,
            reply_reason,
            status: crate::model::ReportStatus::parse(&status_text)
                .ok_or_else(|| corrupt(format!("unknown status {status_text:?}")))?,
            case_id,
            language: crate::reply::Language::parse(&language)
                .ok_or_else(|| corrupt(format!("unknown language {language:?}")))?,
            auth: match auth {
                None => None,
                Some(text) => Some(
                    serde_json::from_str(&text)
                        .map_err(|e| corrupt(format!("unreadable auth: {e}")))?,
                ),
            },
            rsit: match rsit {
                (Some(taxonomy), Some(kind)) => crate::model::RsitPair { taxonomy, kind },
                // Stored before migration 12: the pair its type maps to.
                _ => crate::classify::rsit::for_type(abuse_type_parsed, subtype_parsed).into(),
            },
            feed,
        })
    })();
    Ok(report)
}

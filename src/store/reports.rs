//! Reports: written by the pipeline worker, read by the CLI.

use super::sql::{Dialect, Sql, Value};
use super::{json_list, parse_json_list, Db, Error};
use crate::evidence::{Kind, Row};
use crate::model::owner::{self, Owner, Ownership};
use crate::model::{
    AbuseType, CaseId, HistoryEvent, NetworkSubtype, RawId, RawStatus, ReplyDecision, Report,
    ReportDraft, ReportId,
};
use crate::sql_params;
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
    /// PostgreSQL: the claim the write is fenced by ([`RawMessage::claim`]).
    ///
    /// [`RawMessage::claim`]: crate::model::RawMessage::claim
    pub fence: Option<String>,
}

/// A stored report and the reply decision it holds: the one processing made,
/// unless storing changed it (the rate limit, a merged follow-up) or the
/// report kept its earlier one (reprocess).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: ReportId,
    pub reply: ReplyDecision,
    pub reply_reason: Option<String>,
    /// Processed again, and its offenders' customers are not the ones it
    /// had (`reprocess` after an import counts these).
    pub customers_changed: bool,
}

/// What became of one processed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// A report, new or processed again.
    Report(Stored),
    /// A customer's answer to a notice: kept on the case, no report.
    Answer(CaseId),
    /// Nothing: processing failed (the raw message is `failed`), or the
    /// claim ran out and another node stores it.
    NotStored,
}

impl Saved {
    /// The report, when it became one.
    pub fn report(&self) -> Option<&Stored> {
        match self {
            Saved::Report(stored) => Some(stored),
            _ => None,
        }
    }

    /// Whether it is stored (a report or an answer).
    pub fn is_stored(&self) -> bool {
        !matches!(self, Saved::NotStored)
    }
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
    fn finish(&mut self, pending: Self::Pending) -> Result<Vec<Saved>, Error>;
}

impl ReportSink for Db {
    type Pending = Vec<Saved>;

    fn submit(
        &mut self,
        outcomes: Vec<Outcome>,
        processed_at: &str,
    ) -> Result<Self::Pending, Error> {
        self.save_outcomes(&outcomes, processed_at)
    }

    fn finish(&mut self, stored: Self::Pending) -> Result<Vec<Saved>, Error> {
        Ok(stored)
    }
}

/// A report's `INSERT`, without its closing parenthesis: a new report ends
/// it there, a report processed again adds the upsert.
macro_rules! insert_report {
    () => {
        "INSERT INTO reports (raw_id, message_id, received_at, reporter, subject, abuse_type,
             subtype, ips, urls, evidence_rows, missing, reply, parse_warnings, processed_at,
             formats, reasons, reply_reason, language, auth, rsit_taxonomy, rsit_type, feed,
             pending_reply, checks_due_at, owners, ownership)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26"
    };
}

/// Stores one outcome (see [`Db::save_outcomes`]).
fn save_outcome(q: &mut dyn Sql, outcome: &Outcome, processed_at: &str) -> Result<Saved, Error> {
    let Outcome {
        raw_id,
        received_at,
        result,
        fence,
    } = outcome;
    if let Some(node) = fence {
        // The claim may have run out while this node was paused, and
        // another node taken the message: then that node writes it.
        let still_ours = q.row(
            "SELECT 1 FROM raw_messages WHERE id = ?1 AND status = 'received' AND claimed_by = ?2
             FOR UPDATE",
            sql_params![*raw_id, node],
        )?;
        if still_ours.is_none() {
            tracing::warn!(
                raw_id = raw_id.0,
                "the claim on this message ran out and another node took it; not storing"
            );
            return Ok(Saved::NotStored);
        }
    }
    let d = match result {
        Ok(d) => d,
        Err(error) => {
            mark_raw(q, *raw_id, RawStatus::Failed, Some(error))?;
            return Ok(Saved::NotStored);
        }
    };
    // A customer's answer to a notice, with the case's token: a statement
    // on the case, never a report.
    if let Some(answer) = &d.case_answer {
        if super::outbox::claim_has_case_token(q, &answer.claim)?
            && super::notices::answer(q, *raw_id, answer, received_at)?
        {
            mark_raw(q, *raw_id, RawStatus::Processed, None)?;
            return Ok(Saved::Answer(CaseId(answer.claim.id)));
        }
    }
    // Processed before (reprocess): the report is updated in place and
    // keeps its reply decision; nothing is queued.
    let before = q.row(
        // Joined by a follow-up: merged into another report, or another
        // report was merged into it. Read from the reports themselves: a
        // refused follow-up also writes a `follow_up` event, on its own
        // report, and stays a report like any other.
        "SELECT r.id, r.reply, r.reply_reason, (r.follow_up_of IS NOT NULL OR EXISTS (
             SELECT 1 FROM reports f WHERE f.follow_up_of = r.id)), r.owners
         FROM reports r WHERE r.raw_id = ?1",
        sql_params![*raw_id],
    )?;
    if let Some(row) = &before {
        if !crate::reply::follow_up::reprocess_rewrites(row.bool(3)?) {
            mark_raw(q, *raw_id, RawStatus::Processed, None)?;
            return read_stored(row).map(Saved::Report);
        }
    }
    let is_new = before.is_none();
    let customers_before = match &before {
        Some(row) => {
            let id = row.int(0)?;
            let owners: Vec<Owner> = parse_json_list("reports", id, &row.text(4)?)?;
            let mut list: Vec<String> = owner::customers(&owners)
                .into_iter()
                .map(str::to_owned)
                .collect();
            list.sort_unstable();
            list
        }
        None => Vec::new(),
    };
    let mut customers = owner::customers(&d.owners);
    customers.sort_unstable();
    let auth_json = d.auth.as_ref().map(super::json_text);
    let params = sql_params![
        *raw_id,
        d.message_id.clone(),
        received_at,
        d.reporter.clone(),
        d.subject.clone(),
        d.abuse_type.as_str(),
        d.subtype.map(NetworkSubtype::as_str),
        json_list(&d.ips),
        json_list(&d.urls),
        d.evidence_rows,
        json_list(&d.missing),
        d.reply.as_str(),
        json_list(&d.parse_warnings),
        processed_at,
        json_list(&d.formats),
        json_list(&d.reasons),
        d.reply_reason.clone(),
        d.language.as_str(),
        auth_json.clone(),
        &d.rsit.taxonomy,
        &d.rsit.kind,
        d.feed.clone(),
        d.pending_reply.as_ref().map(super::json_text),
        d.checks_pending.then_some(processed_at),
        json_list(&d.owners),
        Ownership::of(&d.owners).as_str(),
    ];
    let mut stored = if is_new {
        let id = q.insert(concat!(insert_report!(), ")"), params)?;
        Stored {
            id: ReportId(id),
            reply: d.reply,
            reply_reason: d.reply_reason.clone(),
            customers_changed: false,
        }
    } else {
        let row = q
            .row(
                concat!(
                    insert_report!(),
                    ") ON CONFLICT (raw_id) DO UPDATE SET
                 message_id = excluded.message_id, reporter = excluded.reporter,
                 subject = excluded.subject, abuse_type = excluded.abuse_type,
                 subtype = excluded.subtype, ips = excluded.ips, urls = excluded.urls,
                 evidence_rows = excluded.evidence_rows, missing = excluded.missing,
                 parse_warnings = excluded.parse_warnings,
                 processed_at = excluded.processed_at, formats = excluded.formats,
                 reasons = excluded.reasons, language = excluded.language,
                 auth = excluded.auth, rsit_taxonomy = excluded.rsit_taxonomy,
                 rsit_type = excluded.rsit_type, feed = excluded.feed,
                 owners = excluded.owners, ownership = excluded.ownership
             RETURNING id, reply, reply_reason"
                ),
                params,
            )?
            .ok_or(Error::Corrupt {
                table: "reports",
                id: raw_id.0,
                detail: "the upsert returned no row".into(),
            })?;
        let mut stored = read_stored(&row)?;
        stored.customers_changed = customers != customers_before;
        stored
    };
    let id = stored.id;
    // A new report has nothing to replace.
    if is_new {
        super::add_report_ips(q, id, &d.ips)?;
    } else {
        q.exec("DELETE FROM evidence WHERE report_id = ?1", sql_params![id])?;
        super::index_report_ips(q, id, &d.ips)?;
    }
    index_customers(q, id, &d.owners)?;
    index_text(
        q,
        id,
        d.subject.as_deref().unwrap_or(""),
        &d.search_text,
        !is_new,
    )?;
    super::evidence::insert(q, id, &d.evidence)?;
    // Processed, in one rewrite of the message's row; the sender checks
    // are made once per message and kept with it.
    q.exec(
        "UPDATE raw_messages SET status = ?2, error = NULL, auth = COALESCE(auth, ?3) WHERE id = ?1",
        sql_params![*raw_id, RawStatus::Processed.as_str(), auth_json],
    )?;
    if !is_new {
        // Processed again with other customers (an import since): its cases
        // are those of its customers now.
        if stored.customers_changed {
            let keys = crate::reply::report_plan::for_rerouted_report(d, received_at);
            super::cases::regroup(q, id, &keys, received_at)?;
        }
        return Ok(Saved::Report(stored));
    }
    let claim = super::plans::read_claim(q, d)?;
    let plan = crate::reply::report_plan::for_new_report(id, d, received_at, claim.as_ref());
    super::plans::follow_up(q, id, &plan.follow_up, d, processed_at)?;
    for key in &plan.cases {
        super::cases::assign(q, id, key, received_at)?;
    }
    super::outbox::event(q, id, received_at, HistoryEvent::Received, "")?;
    super::outbox::event(
        q,
        id,
        processed_at,
        HistoryEvent::Classified,
        &d.class_label(),
    )?;
    if let Some(ack) = &plan.merge_ack {
        super::plans::queue(q, ack, processed_at)?;
    }
    if let Some(update) = super::plans::reply(q, &plan.reply, processed_at)? {
        stored.reply = update.decision;
        stored.reply_reason = update.reason;
    }
    Ok(Saved::Report(stored))
}

/// Indexes the customers of report `id` (for `reports list --customer`),
/// replacing what was indexed for it.
pub(super) fn index_customers(
    q: &mut dyn Sql,
    id: ReportId,
    owners: &[Owner],
) -> Result<(), Error> {
    q.exec(
        "DELETE FROM report_customers WHERE report_id = ?1",
        sql_params![id],
    )?;
    for customer in owner::customers(owners) {
        q.exec(
            "INSERT INTO report_customers (customer, report_id) VALUES (?1, ?2)",
            sql_params![customer, id],
        )?;
    }
    Ok(())
}

fn mark_raw(
    q: &mut dyn Sql,
    raw: RawId,
    status: RawStatus,
    error: Option<&String>,
) -> Result<(), Error> {
    q.exec(
        "UPDATE raw_messages SET status = ?2, error = ?3 WHERE id = ?1",
        sql_params![raw, status.as_str(), error],
    )?;
    Ok(())
}

/// A report's words for the search: SQLite's FTS5 table, PostgreSQL's
/// `tsvector` column.
pub(super) fn index_text(
    q: &mut dyn Sql,
    id: ReportId,
    subject: &str,
    body: &str,
    replace: bool,
) -> Result<(), Error> {
    match q.dialect() {
        Dialect::Sqlite => {
            if replace {
                q.exec("DELETE FROM report_text WHERE rowid = ?1", sql_params![id])?;
            }
            q.exec(
                "INSERT INTO report_text (rowid, subject, body) VALUES (?1, ?2, ?3)",
                sql_params![id, subject, body],
            )?;
        }
        Dialect::Postgres => {
            q.exec(
                "UPDATE reports SET search = to_tsvector('simple', ?2 || ' ' || ?3) WHERE id = ?1",
                sql_params![id, subject, body],
            )?;
        }
    }
    Ok(())
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
    /// Only reports with a lower id, newest first: the next page of a list
    /// by keyset (the console), as fast at page 1,000 as at page 1.
    pub before: Option<ReportId>,
    /// Only this RSIT type (`brute-force`, `phishing`, …).
    pub rsit_type: Option<String>,
    /// Only reports with an offender of this customer (its reference).
    pub customer: Option<String>,
    /// Only reports whose offenders are all outside our assignments.
    pub unowned: bool,
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
    /// Several batches of outcomes in one transaction (each with its own
    /// processing time), as the single writer stores reports: on SQLite with
    /// `synchronous=NORMAL` for the transaction (its connection is FULL for
    /// intake); what each stored, batch by batch.
    pub(super) fn save_report_groups(
        &mut self,
        groups: &[(&[Outcome], &str)],
    ) -> Result<Vec<Vec<Saved>>, Error> {
        let lite = self.dialect() == Dialect::Sqlite;
        if lite {
            self.lite()?.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let grouped = self.write(|q| {
            groups
                .iter()
                .map(|(outcomes, processed_at)| {
                    outcomes
                        .iter()
                        .map(|outcome| save_outcome(q, outcome, processed_at))
                        .collect::<Result<Vec<_>, Error>>()
                })
                .collect()
        });
        let result = match grouped {
            Err(error) if error.is_refused_data() => groups
                .iter()
                .map(|(outcomes, processed_at)| self.save_one_by_one(outcomes, processed_at))
                .collect(),
            other => other,
        };
        if lite {
            self.lite()?.pragma_update(None, "synchronous", "FULL")?;
        }
        result
    }

    /// After a transaction of several reports failed on its data: each in a
    /// transaction of its own, so the innocent ones are stored; one that
    /// the database refuses again is quarantined (`failed`) with the
    /// database's own words, and logged with them.
    fn save_one_by_one(
        &mut self,
        outcomes: &[Outcome],
        processed_at: &str,
    ) -> Result<Vec<Saved>, Error> {
        let mut stored = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            match self.write(|q| save_outcome(q, outcome, processed_at)) {
                Ok(one) => stored.push(one),
                Err(error) if error.is_refused_data() => {
                    let why = format!("the database refused the report: {}", error.database_text());
                    tracing::error!(raw_id = outcome.raw_id.0, error = %why, "message quarantined as failed");
                    crate::metrics::get().quarantined.inc();
                    self.write(|q| mark_raw(q, outcome.raw_id, RawStatus::Failed, Some(&why)))?;
                    stored.push(Saved::NotStored);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(stored)
    }

    /// Stores the outcome of processing each raw message, in one transaction:
    /// a report (inserted, or replaced in place when the message is processed
    /// again) and `processed`, or `failed` with the error text.
    ///
    /// # Errors
    /// Any database failure; then nothing was written.
    pub fn save_outcomes(
        &mut self,
        outcomes: &[Outcome],
        processed_at: &str,
    ) -> Result<Vec<Saved>, Error> {
        let together = self.write(|q| {
            outcomes
                .iter()
                .map(|outcome| save_outcome(q, outcome, processed_at))
                .collect()
        });
        match together {
            Err(error) if error.is_refused_data() => self.save_one_by_one(outcomes, processed_at),
            other => other,
        }
    }

    /// One report by id.
    pub fn report(&self, id: ReportId) -> Result<Option<Report>, Error> {
        self.read(|q| {
            q.row(
                &format!("SELECT {REPORT_COLUMNS} FROM reports WHERE id = ?1"),
                sql_params![id],
            )?
            .as_ref()
            .map(read_report)
            .transpose()
        })
    }

    /// The report made from a raw message, if it was processed.
    pub fn report_for_raw(&self, raw_id: RawId) -> Result<Option<Report>, Error> {
        self.read(|q| {
            q.row(
                &format!("SELECT {REPORT_COLUMNS} FROM reports WHERE raw_id = ?1"),
                sql_params![raw_id],
            )?
            .as_ref()
            .map(read_report)
            .transpose()
        })
    }

    /// The first `per_kind` evidence rows of each kind of a report.
    pub fn evidence_sample(&self, report: ReportId, per_kind: usize) -> Result<Vec<Row>, Error> {
        let mut rows = Vec::new();
        for kind in ["feedback", "notice", "message", "log_row", "url", "ip"] {
            rows.extend(self.read(|q| {
                q.rows(
                    &format!(
                        "SELECT {EVIDENCE_COLUMNS} FROM evidence e
                         WHERE report_id = ?1 AND kind = ?2 ORDER BY id LIMIT ?3"
                    ),
                    sql_params![report, kind, per_kind],
                )?
                .iter()
                .map(read_evidence)
                .collect::<Result<Vec<_>, _>>()
            })?);
        }
        Ok(rows)
    }

    /// The first `limit` evidence rows of a report, in the order found.
    pub fn evidence(&self, report: ReportId, limit: usize) -> Result<Vec<Row>, Error> {
        self.read(|q| {
            q.rows(
                &format!(
                    "SELECT {EVIDENCE_COLUMNS} FROM evidence e WHERE report_id = ?1 ORDER BY id LIMIT ?2"
                ),
                sql_params![report, limit],
            )?
            .iter()
            .map(read_evidence)
            .collect()
        })
    }

    /// Retention (the GDPR deletion path): for reports received before
    /// `before`, deletes the original message, the evidence, the replies and
    /// the history, and blanks everything that names a person or an address
    /// (reporter, subject, Message-ID, IPs, URLs, reasons). What stays is
    /// what `stats` counts: type, subtype, reply decision, status, dates and
    /// the number of evidence rows. Messages not yet processed are kept.
    /// With `dry_run` nothing changes and the counts say what would go.
    pub fn prune(&mut self, before: &str, dry_run: bool) -> Result<Pruned, Error> {
        let old = &format!(
            "SELECT r.id FROM reports r JOIN raw_messages m ON m.id = r.raw_id
             WHERE r.received_at < ?1 AND m.status != '{}'",
            RawStatus::Pruned.as_str()
        );
        let count =
            |q: &mut dyn Sql, sql: &str| q.count(&sql.replace("{old}", old), sql_params![before]);
        let counts = |q: &mut dyn Sql| -> Result<Pruned, Error> {
            Ok(Pruned {
                reports: count(q, "SELECT count(*) FROM ({old}) o")?,
                raw_messages: count(
                    q,
                    "SELECT count(*) FROM raw_messages WHERE received_at < ?1 AND status IN ('processed', 'failed')",
                )?,
                evidence_rows: count(q, "SELECT count(*) FROM evidence WHERE report_id IN ({old})")?,
                replies: count(q, "SELECT count(*) FROM outbox WHERE report_id IN ({old})")?,
            })
        };
        if dry_run {
            return self.read(counts);
        }
        self.write(|q| {
            let pruned = counts(q)?;
            let text_index = match q.dialect() {
                Dialect::Sqlite => "DELETE FROM report_text WHERE rowid IN ({old})",
                Dialect::Postgres => "UPDATE reports SET search = NULL WHERE id IN ({old})",
            };
            for sql in [
                "DELETE FROM evidence WHERE report_id IN ({old})",
                "DELETE FROM report_ips WHERE report_id IN ({old})",
                text_index,
                "DELETE FROM outbox WHERE report_id IN ({old})",
                "DELETE FROM report_events WHERE report_id IN ({old})",
                "UPDATE reports SET reporter = NULL, subject = NULL, message_id = NULL, ips = '[]', urls = '[]',
                     reasons = '[]', parse_warnings = '[]', reply_reason = NULL, auth = NULL,
                     pending_reply = NULL, pending_follow_up = NULL, checks_due_at = NULL
                 WHERE id IN ({old})",
            ] {
                q.exec(&sql.replace("{old}", old), sql_params![before])?;
            }
            q.exec(
                "UPDATE raw_messages SET bytes = ?2, peer_ip = NULL, helo = NULL, mail_from = NULL,
                     rcpt_to = '[]', dsn = NULL, message_id = NULL, error = NULL, auth = NULL,
                     status = ?3
                 WHERE received_at < ?1 AND status IN (?4, ?5)",
                sql_params![
                    before,
                    Vec::<u8>::new(),
                    RawStatus::Pruned.as_str(),
                    RawStatus::Processed.as_str(),
                    RawStatus::Failed.as_str()
                ],
            )?;
            Ok(pruned)
        })
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
        let dialect = self.dialect();
        // The two databases index addresses and words their own way.
        let (ip_filter, search_filter, range, search) = match dialect {
            Dialect::Sqlite => (
                "(?9 IS NULL OR id IN (SELECT report_id FROM report_ips WHERE ip_key BETWEEN ?9 AND ?10))",
                "id IN (SELECT rowid FROM report_text WHERE report_text MATCH ?12)",
                filter.ip_range.map(|(first, last)| {
                    (
                        Value::Blob(super::ip_key(first).to_vec()),
                        Value::Blob(super::ip_key(last).to_vec()),
                    )
                }),
                filter.search.as_deref().and_then(fts_query),
            ),
            Dialect::Postgres => (
                "(?9::inet IS NULL OR id IN (SELECT report_id FROM report_ips WHERE ip BETWEEN ?9::inet AND ?10::inet))",
                "search @@ plainto_tsquery('simple', ?12)",
                filter.ip_range.map(|(first, last)| {
                    (
                        Value::Text(first.to_string()),
                        Value::Text(last.to_string()),
                    )
                }),
                filter.search.clone(),
            ),
        };
        let (first, last) = range.unwrap_or((Value::Null, Value::Null));
        // A plain `id < ?` when paging, so the walk down the primary key
        // starts at the page (page 1,000 costs what page 1 does).
        let before_filter = if filter.before.is_some() {
            "id < ?17"
        } else {
            "CAST(?17 AS BIGINT) IS NULL"
        };
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM reports
             WHERE (CAST(?1 AS TEXT) IS NULL OR abuse_type = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR received_at >= ?2)
               AND (CAST(?4 AS TEXT) IS NULL OR subtype = ?4)
               AND (CAST(?5 AS TEXT) IS NULL OR reply = ?5)
               AND (CAST(?6 AS TEXT) IS NULL OR status = ?6)
               AND (CAST(?7 AS TEXT) IS NULL OR lower(reporter) LIKE '%' || lower(?7) || '%')
               AND (CAST(?8 AS TEXT) IS NULL OR received_at < ?8)
               AND {ip_filter}
               AND (CAST(?12 AS TEXT) IS NULL OR {search_filter})
               AND (CAST(?13 AS BIGINT) IS NULL OR id > ?13)
               AND (CAST(?14 AS TEXT) IS NULL OR rsit_type = ?14)
               AND (CAST(?15 AS TEXT) IS NULL
                    OR id IN (SELECT report_id FROM report_customers WHERE customer = ?15))
               AND (CAST(?16 AS TEXT) IS NULL OR ownership = ?16)
               AND {before_filter}
             ORDER BY id {order} LIMIT ?3 OFFSET ?11"
        );
        let params = [
            filter.abuse_type.map(AbuseType::as_str).into(),
            filter.since.clone().into(),
            filter.limit.into(),
            filter.subtype.map(NetworkSubtype::as_str).into(),
            filter.reply.map(ReplyDecision::as_str).into(),
            filter.status.map(crate::model::ReportStatus::as_str).into(),
            filter.reporter.clone().into(),
            filter.until.clone().into(),
            first,
            last,
            filter.offset.into(),
            search.into(),
            filter.after.into(),
            filter.rsit_type.clone().into(),
            filter.customer.clone().into(),
            filter.unowned.then_some(Ownership::NotOurs.as_str()).into(),
            filter.before.into(),
        ];
        self.read(|q| q.rows(&sql, &params)?.iter().map(read_report).collect())
    }

    /// How many reports there are.
    pub fn report_count(&self) -> Result<u64, Error> {
        self.read(|q| q.count("SELECT count(*) FROM reports", &[]))
    }

    /// Counts by type, by reply decision and by processing status.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut stats = Stats::default();
        let month_ago = (chrono::Utc::now() - chrono::Duration::days(30))
            .format("%Y-%m-%d")
            .to_string();
        let dialect = self.dialect();
        self.read(|q| {
            // One pass over the reports for the four breakdowns.
            for row in q.rows(
                "SELECT abuse_type, subtype, reply, status, count(*) FROM reports
                 GROUP BY abuse_type, subtype, reply, status",
                &[],
            )? {
                let (abuse_type, subtype, reply, status) =
                    (row.text(0)?, row.opt_text(1)?, row.text(2)?, row.text(3)?);
                let n = row.int(4)?.max(0) as u64;
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
            stats.by_day = q
                .rows(
                    "SELECT substr(received_at, 1, 10) AS day, count(*) FROM reports
                     WHERE received_at >= ?1 GROUP BY day",
                    sql_params![&month_ago],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.int(1)?.max(0) as u64)))
                .collect::<Result<_, Error>>()?;
            let (ips, networks) = match dialect {
                Dialect::Sqlite => (
                    "SELECT ip_key, count(*) AS n FROM report_ips GROUP BY ip_key ORDER BY n DESC, ip_key LIMIT ?1",
                    "SELECT net_key, count(DISTINCT report_id) AS n FROM report_ips
                     GROUP BY net_key ORDER BY n DESC, net_key LIMIT ?1",
                ),
                Dialect::Postgres => (
                    "SELECT host(ip), count(*) AS n FROM report_ips GROUP BY ip ORDER BY n DESC, ip LIMIT ?1",
                    "SELECT text(net), n FROM (
                         SELECT network(set_masklen(ip, CASE WHEN family(ip) = 4 THEN 24 ELSE 64 END)) AS net,
                             count(DISTINCT report_id) AS n
                         FROM report_ips GROUP BY net) t
                     ORDER BY n DESC, net LIMIT ?1",
                ),
            };
            let top = |q: &mut dyn Sql, sql: &str| -> Result<Vec<(String, u64)>, Error> {
                q.rows(sql, sql_params![TOP])?
                    .iter()
                    .map(|r| {
                        let address = match dialect {
                            Dialect::Sqlite => key_to_text(&r.blob(0)?),
                            Dialect::Postgres => r.text(0)?,
                        };
                        Ok((address, r.int(1)?.max(0) as u64))
                    })
                    .collect()
            };
            stats.top_ips = top(q, ips)?;
            stats.top_networks = top(q, networks)?;
            stats.top_reporters = q
                .rows(
                    "SELECT reporter, count(*) AS n FROM reports WHERE reporter IS NOT NULL
                     GROUP BY reporter ORDER BY n DESC, reporter LIMIT ?1",
                    sql_params![TOP],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.int(1)?.max(0) as u64)))
                .collect::<Result<_, Error>>()?;
            Ok(())
        })?;
        stats.raw_messages = self.raw_status_counts()?.into_iter().collect();
        stats.backlog = stats.raw_messages.get("received").copied().unwrap_or(0);
        stats.reports = stats.by_abuse_type.values().sum();
        Ok(stats)
    }
}

/// What the console's dashboard shows besides its charts: each count from
/// an index, and the networks from the recent reports only, so the page
/// costs the same at a million reports as at a thousand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dashboard {
    pub reports: u64,
    pub open: u64,
    pub backlog: u64,
    pub quarantined: u64,
    pub held_replies: u64,
    /// The most reported networks among the newest reports: (network,
    /// reports).
    pub top_networks: Vec<(String, u64)>,
    /// The customers most reported among the newest reports: (customer,
    /// reports).
    pub top_customers: Vec<(String, u64)>,
}

impl Db {
    /// The dashboard's counts; its networks and customers from the newest
    /// `recent` reports.
    ///
    /// # Errors
    /// The store fails.
    pub fn dashboard(&self, recent: i64) -> Result<Dashboard, Error> {
        let dialect = self.dialect();
        self.read(|q| {
            let count = |q: &mut dyn Sql, sql: &str| q.count(sql, &[]);
            // The newest `recent` reports, whatever the desk's rate.
            let first = q
                .row("SELECT max(id) FROM reports", &[])?
                .and_then(|r| r.opt_int(0).ok().flatten())
                .map(|last| last - recent + 1);
            let networks = match dialect {
                Dialect::Sqlite => {
                    "SELECT net_key, count(DISTINCT report_id) AS n FROM report_ips INDEXED BY report_ips_report
                     WHERE report_id >= ?2 GROUP BY net_key ORDER BY n DESC, net_key LIMIT ?1"
                }
                Dialect::Postgres => {
                    "SELECT text(net), n FROM (
                         SELECT network(set_masklen(ip, CASE WHEN family(ip) = 4 THEN 24 ELSE 64 END)) AS net,
                             count(DISTINCT report_id) AS n
                         FROM report_ips WHERE report_id >= ?2 GROUP BY net) t
                     ORDER BY n DESC, net LIMIT ?1"
                }
            };
            let top_customers = match first {
                None => Vec::new(),
                Some(first) => q
                    .rows(
                        "SELECT customer, count(*) AS n FROM report_customers WHERE report_id >= ?2
                         GROUP BY customer ORDER BY n DESC, customer LIMIT ?1",
                        sql_params![TOP, first],
                    )?
                    .iter()
                    .map(|r| Ok((r.text(0)?, r.int(1)?.max(0) as u64)))
                    .collect::<Result<_, Error>>()?,
            };
            let top_networks = match first {
                None => Vec::new(),
                Some(first) => q
                    .rows(networks, sql_params![TOP, first])?
                    .iter()
                    .map(|r| {
                        let network = match dialect {
                            Dialect::Sqlite => key_to_text(&r.blob(0)?),
                            Dialect::Postgres => r.text(0)?,
                        };
                        Ok((network, r.int(1)?.max(0) as u64))
                    })
                    .collect::<Result<_, Error>>()?,
            };
            // Both totals are kept per hour and type by triggers (migration 24).
            let totals = q.row(
                "SELECT CAST(coalesce(sum(n), 0) AS BIGINT), CAST(coalesce(sum(n_open), 0) AS BIGINT)
                 FROM report_hours",
                &[],
            )?;
            let total = |i: usize| -> Result<u64, Error> {
                let n = match &totals {
                    Some(row) => row.int(i)?,
                    None => 0,
                };
                Ok(u64::try_from(n).unwrap_or(0))
            };
            Ok(Dashboard {
                reports: total(0)?,
                open: total(1)?,
                backlog: count(q, "SELECT count(*) FROM raw_messages WHERE status = 'received'")?,
                quarantined: count(q, "SELECT count(*) FROM raw_messages WHERE status = 'failed'")?,
                held_replies: count(q, "SELECT count(*) FROM outbox WHERE state = 'held'")?,
                top_networks,
                top_customers,
            })
        })
    }
}

const REPORT_COLUMNS: &str = "id, raw_id, message_id, received_at, reporter, subject, abuse_type, \
     subtype, ips, urls, evidence_rows, missing, reply, parse_warnings, formats, reasons, reply_reason, status, case_id, language, \
     auth, rsit_taxonomy, rsit_type, feed, checks_due_at, owners, ownership";

/// An evidence row's columns; its line is its own, or that of the row it
/// points at (migration 9).
const EVIDENCE_COLUMNS: &str =
    "kind, source_ip, target_ip, source_port, target_port, occurred_at, url,
     COALESCE(e.line, (SELECT l.line FROM evidence l WHERE l.id = e.line_of)), origin, role,
     e.id";

/// `id, reply, reply_reason` of a report.
fn read_stored(r: &super::sql::Row) -> Result<Stored, Error> {
    let id = r.int(0)?;
    Ok(Stored {
        id: ReportId(id),
        reply: super::known("reports", id, &r.text(1)?, ReplyDecision::parse)?,
        reply_reason: r.opt_text(2)?,
        customers_changed: false,
    })
}

fn read_evidence(r: &super::sql::Row) -> Result<Row, Error> {
    // Read with the one policy for stored values (`known`): a value this
    // build cannot read is an error naming the row, never a default.
    let id = r.int(10)?;
    let corrupt = |what: &str, text: &str| Error::Corrupt {
        table: "evidence",
        id,
        detail: format!("unreadable {what} {text:?}"),
    };
    let ip = |i: usize, what: &str| -> Result<Option<std::net::IpAddr>, Error> {
        r.opt_text(i)?
            .map(|s| s.parse().map_err(|_| corrupt(what, &s)))
            .transpose()
    };
    let port = |i: usize, what: &str| -> Result<Option<u16>, Error> {
        r.opt_int(i)?
            .map(|p| u16::try_from(p).map_err(|_| corrupt(what, &p.to_string())))
            .transpose()
    };
    Ok(Row {
        kind: super::known("evidence", id, &r.text(0)?, Kind::parse)?,
        source_ip: ip(1, "source_ip")?,
        target_ip: ip(2, "target_ip")?,
        source_port: port(3, "source_port")?,
        target_port: port(4, "target_port")?,
        occurred_at: r.opt_text(5)?,
        url: r.opt_text(6)?,
        line: r.opt_text(7)?,
        origin: r.text(8)?,
        // Rows stored before migration 11 have no role: they named
        // offenders only as sources, which the default role says.
        role: match r.opt_text(9)? {
            None => crate::evidence::roles::Role::default(),
            Some(s) => super::known("evidence", id, &s, crate::evidence::roles::Role::parse)?,
        },
    })
}

fn read_report(row: &super::sql::Row) -> Result<Report, Error> {
    let id = row.int(0)?;
    let corrupt = |detail: String| Error::Corrupt {
        table: "reports",
        id,
        detail,
    };
    let abuse_type = row.text(6)?;
    let abuse_type_parsed = AbuseType::parse(&abuse_type)
        .ok_or_else(|| corrupt(format!("unknown abuse_type {abuse_type:?}")))?;
    let subtype = match row.opt_text(7)? {
        None => None,
        Some(s) => Some(
            NetworkSubtype::parse(&s).ok_or_else(|| corrupt(format!("unknown subtype {s:?}")))?,
        ),
    };
    let list =
        |i: usize| -> Result<Vec<String>, Error> { parse_json_list("reports", id, &row.text(i)?) };
    let reply = row.text(12)?;
    let status = row.text(17)?;
    let language = row.text(19)?;
    Ok(Report {
        id: ReportId(id),
        raw_id: RawId(row.int(1)?),
        message_id: row.opt_text(2)?,
        received_at: row.text(3)?,
        reporter: row.opt_text(4)?,
        subject: row.opt_text(5)?,
        abuse_type: abuse_type_parsed,
        subtype,
        ips: list(8)?,
        urls: list(9)?,
        evidence_rows: row.int(10)?.max(0) as u64,
        missing: parse_json_list("reports", id, &row.text(11)?)?,
        reply: ReplyDecision::parse(&reply)
            .ok_or_else(|| corrupt(format!("unknown reply {reply:?}")))?,
        parse_warnings: list(13)?,
        formats: parse_json_list("reports", id, &row.text(14)?)?,
        reasons: parse_json_list("reports", id, &row.text(15)?)?,
        reply_reason: row.opt_text(16)?,
        status: crate::model::ReportStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status {status:?}")))?,
        case_id: row.opt_int(18)?.map(crate::model::CaseId),
        language: crate::reply::Language::parse(&language)
            .ok_or_else(|| corrupt(format!("unknown language {language:?}")))?,
        auth: match (row.opt_text(20)?, row.opt_text(24)?) {
            (Some(text), _) => Some(crate::model::AuthState::Checked(
                serde_json::from_str(&text)
                    .map_err(|e| corrupt(format!("unreadable auth: {e}")))?,
            )),
            (None, Some(_due)) => Some(crate::model::AuthState::Pending(
                crate::model::ChecksPending::Pending,
            )),
            (None, None) => None,
        },
        // Every row has its pair (migration 16 gave older rows theirs).
        rsit: match (row.opt_text(21)?, row.opt_text(22)?) {
            (Some(taxonomy), Some(kind)) => crate::model::RsitPair { taxonomy, kind },
            _ => return Err(corrupt("no RSIT pair".into())),
        },
        feed: row.opt_text(23)?,
        owners: parse_json_list("reports", id, &row.text(25)?)?,
        ownership: super::known("reports", id, &row.text(26)?, Ownership::parse)?,
    })
}

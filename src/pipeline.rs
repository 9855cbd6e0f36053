//! The single path from a committed raw message to a stored report, shared by
//! the SMTP worker, `ingest` and `reprocess`.
//!
//! In: raw messages read back from the store. Out: reports (with evidence)
//! written in one transaction per batch, and one INFO line per report. The
//! stages in between (parse → evidence → classify → reply decision) are pure;
//! a stage that panics marks only its own message `failed`.

use crate::classify::{self, Rules};
use crate::config::{Config, ReplyConfig};
use crate::evidence;
use crate::model::{
    AbuseType, PendingReply, RawMessage, ReplyDecision, ReplyPlan, ReportDraft, Sender,
};
use crate::owners;
use crate::parse;
use crate::reply;
use crate::store::{self, Outcome, ReportSink};
use chrono::{DateTime, Utc};
use std::panic::{catch_unwind, AssertUnwindSafe};
use tracing::{error, info};

/// Tries a message gets when the worker dies on it; then it is `failed`.
pub const MAX_ATTEMPTS: usize = 2;

/// Body text kept for full-text search, per report.
const SEARCH_TEXT_BYTES: usize = 64 * 1024;

/// What a report keeps of values that are indexed or searched, at most: a
/// database refuses longer ones (PostgreSQL's B-tree entries hold about
/// 2,700 bytes, a `tsvector` 1 MB). Longer values are cut at a character
/// boundary, marked `…`, with a parse warning.
/// The reporter's address (an SMTP path holds 256).
pub const REPORTER_BYTES: usize = 254;
/// The subject (RFC 5322 lines hold 998).
pub const SUBJECT_BYTES: usize = 998;
/// The Message-ID.
pub const MESSAGE_ID_BYTES: usize = 998;

/// Cuts the subject and Message-ID to what a report keeps.
fn cap_stored_values(parsed: &mut parse::Parsed) {
    for (value, limit, name) in [
        (&mut parsed.subject, SUBJECT_BYTES, "subject"),
        (&mut parsed.message_id, MESSAGE_ID_BYTES, "Message-ID"),
    ] {
        if let Some(long) = value.as_mut().filter(|v| v.len() > limit) {
            *long = format!("{}…", crate::truncate_at_char(long, limit));
            parsed.warnings.push(format!(
                "header: the {name} is longer than {limit} bytes; cut"
            ));
        }
    }
}

/// A transaction of reports is closed once it holds this many evidence rows
/// (so it can exceed them by one report's rows).
const ROWS_PER_TRANSACTION: usize = 2048;

fn evidence_rows(outcome: &Outcome) -> usize {
    outcome.result.as_ref().map_or(0, |d| d.evidence.len() + 1)
}

/// The compiled configuration the stages need.
#[derive(Clone)]
pub struct Pipeline {
    rules: Rules,
    feeds: classify::Feeds,
    reply: ReplyConfig,
    /// What it was built from: the worker child is started with the same.
    config: Config,
}

/// The compiled classification rules: the file's, or the built-in ones.
fn load_rules(config: &Config) -> Result<Rules, Vec<String>> {
    match &config.classify.rules_file {
        None => Ok(Rules::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
            Rules::parse(&text)
        }
    }
}

/// The known feeds: the file's, or the built-in ones.
fn load_feeds(config: &Config) -> Result<classify::Feeds, Vec<String>> {
    match &config.classify.feeds_file {
        None => Ok(classify::Feeds::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
            classify::Feeds::parse(&text)
        }
    }
}

impl Pipeline {
    /// # Errors
    /// The configured rules file cannot be read or compiled.
    pub fn new(config: &Config) -> Result<Pipeline, Vec<String>> {
        let rules = load_rules(config).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("classify.rules_file: {p}"))
                .collect::<Vec<_>>()
        })?;
        let feeds = load_feeds(config).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("classify.feeds_file: {p}"))
                .collect::<Vec<_>>()
        })?;
        Ok(Pipeline {
            rules,
            feeds,
            reply: config.reply.clone(),
            config: config.clone(),
        })
    }

    /// Compiles now what is otherwise compiled at the first message (the
    /// rules' set): a worker child does this when it starts.
    pub fn prepare(&self) {
        self.rules.prepare();
    }

    /// The replies routing may call for, as configured.
    fn routed_replies(&self) -> reply::routed::Rules {
        let owners = &self.config.owners;
        reply::routed::Rules {
            not_ours: owners.unowned_reply,
            max_event_age: (owners.max_event_age_days > 0)
                .then(|| chrono::Duration::days(owners.max_event_age_days.min(36_500) as i64)),
        }
    }

    /// The configuration this pipeline was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How a decided reply to `recipient` is queued.
    pub fn reply_plan(&self, recipient: &str) -> ReplyPlan {
        ReplyPlan {
            recipient: recipient.to_owned(),
            hold: self.reply.relay_host.is_none() || self.reply.review,
            recipient_key: reply::limits::key(recipient),
            recipient_domain: reply::limits::domain(recipient),
            limits: reply::limits::Limits {
                per_recipient: self.reply.rate_limit_per_hour,
                per_domain: self.reply.rate_limit_per_domain_per_hour,
                global: self.reply.rate_limit_global_per_hour,
            },
            domain: self
                .reply
                .from
                .rsplit('@')
                .next()
                .unwrap_or("localhost")
                .to_owned(),
        }
    }

    /// Turns one raw message into a report draft. Pure.
    pub fn process(&self, raw: &RawMessage) -> ReportDraft {
        let mut parsed = parse::parse(&raw.bytes);
        cap_stored_values(&mut parsed);
        let received_at = DateTime::parse_from_rfc3339(&raw.received_at)
            .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
        let ev = evidence::extract(&parsed, received_at);
        let envelope_sender = match &raw.envelope.mail_from {
            Sender::Address(a) => Some(a.as_str()),
            Sender::Null | Sender::Unknown => None,
        };
        let senders: Vec<&str> = parsed
            .from
            .as_deref()
            .into_iter()
            .chain(envelope_sender)
            .collect();
        // A format only feeds send is their profile whatever the subject.
        let feed = self
            .feeds
            .recognise(&senders, parsed.subject.as_deref(), &parsed.headers)
            .or_else(|| {
                ev.formats
                    .contains(&evidence::Format::DmarcAggregate)
                    .then(|| self.feeds.get("dmarc"))
                    .flatten()
            });
        let class = classify::classify(&ev, parsed.subject.as_deref(), &self.rules, feed);
        let mut reporter = parsed
            .from
            .clone()
            .or_else(|| envelope_sender.map(str::to_owned));
        // An address longer than SMTP allows is kept, cut, for the operator;
        // nobody is answered at a cut address.
        let mut reply_reporter = reporter.clone();
        if let Some(long) = reporter.as_mut().filter(|r| r.len() > REPORTER_BYTES) {
            *long = format!("{}…", crate::truncate_at_char(long, REPORTER_BYTES));
            parsed.warnings.push(format!(
                "header: the reporter's address is longer than {REPORTER_BYTES} bytes; cut"
            ));
            reply_reporter = None;
        }
        // The sender checks run after the report is stored (they wait for
        // DNS; the report does not): until then its reply waits.
        let history = raw.envelope.origin.is_history();
        let checks_pending = self.config.auth.enabled && raw.auth.is_none() && !history;
        let facts = reply::Facts {
            sender: &raw.envelope.mail_from,
            headers: &parsed.headers,
            reporter: reply_reporter.as_deref(),
            formats: &ev.formats,
            missing: &class.missing,
            auth: raw.auth.as_ref(),
            feed,
            origin: raw.envelope.origin,
            abuse_type: class.abuse_type,
        };
        let (reply, reply_reason, pending_kind) = if checks_pending {
            reply::decide_before_checks(&facts, &self.reply)
        } else {
            let (reply, reason) = reply::decide(&facts, &self.reply);
            (reply, reason.map(|r| r.to_string()), None)
        };
        let reply_to =
            reply::reply_address(reply_reporter.as_deref(), parsed.headers.get("reply-to"));
        let mut seen = std::collections::HashSet::new();
        let sources: Vec<_> = ev
            .rows
            .iter()
            .filter(|r| r.is_offender())
            .filter_map(|r| r.source_ip)
            .filter(|ip| seen.insert(*ip))
            .collect();
        let follow_up = self.follow_up(&parsed);
        let missing_by_type = match follow_up {
            Some(_) => AbuseType::ALL
                .iter()
                .map(|t| (*t, classify::missing_for(*t, &ev)))
                .collect(),
            None => Vec::new(),
        };
        let reasons = class.reasons.clone();
        let rsit = classify::rsit::for_report(class.abuse_type, class.subtype, &reasons).into();
        let own_text = parsed.texts.first().map_or("", |t| t.text.as_str());
        let language = reply::language::detect(parsed.subject.as_deref(), own_text);
        let case_answer = self
            .case_claim(&parsed)
            .map(|claim| crate::model::case::CaseAnswer {
                claim,
                sender: reporter.clone(),
                subject: parsed.subject.clone(),
                status: crate::notices::answer::status(own_text),
                text: crate::notices::answer::statement(own_text),
            });
        let mut warnings = parsed.warnings;
        warnings.extend(ev.warnings.iter().cloned());
        ReportDraft {
            message_id: parsed.message_id,
            reporter,
            subject: parsed.subject,
            abuse_type: class.abuse_type,
            subtype: class.subtype,
            ips: ev.ips(),
            urls: ev.urls(),
            evidence_rows: ev.rows.len() as u64,
            missing: class.missing,
            reply,
            reply_reason,
            parse_warnings: warnings,
            formats: ev.formats.iter().copied().collect(),
            reasons,
            evidence: ev.rows,
            reply_plan: match (reply, &reply_to) {
                (ReplyDecision::Ack | ReplyDecision::NeedsInfo, Some(to)) => {
                    Some(self.reply_plan(to))
                }
                _ => None,
            },
            follow_up_reply: follow_up
                .as_ref()
                .filter(|_| self.reply.enabled)
                .map(|_| self.reply_plan("")),
            pending_reply: match (pending_kind, &reply_to) {
                (Some(kind), Some(to)) => Some(PendingReply {
                    kind,
                    plan: self.reply_plan(to),
                }),
                _ => None,
            },
            checks_pending,
            follow_up,
            auth: raw.auth.clone(),
            rsit,
            feed: feed.map(|f| f.id.clone()),
            missing_by_type,
            search_text: crate::truncate_at_char(&ev.facts.text, SEARCH_TEXT_BYTES).to_owned(),
            sources,
            language,
            owners: Vec::new(),
            case_answer,
            history,
        }
    }

    /// The case a message answers: `In-Reply-To`/`References` naming one
    /// of our notices (`<case-ID.N.TOKEN@our-domain>`), or `[case #ID-TOKEN]`
    /// in the subject. Only a claim with a token counts; whether it is the
    /// case's is for the store to check.
    fn case_claim(&self, parsed: &parse::Parsed) -> Option<reply::token::Claim> {
        // Our own notice come back (an escalation to the desk's own
        // address): not an answer.
        if parsed.headers.get(reply::OUR_REPLY_HEADER).is_some() {
            return None;
        }
        let domain = self.reply.from.rsplit('@').next().unwrap_or("");
        let from_headers = ["in-reply-to", "references"].iter().find_map(|h| {
            let value = parsed.headers.get(h)?;
            value
                .split(['<', '>', ' ', ',', '\t', '\r', '\n'])
                .take(64)
                .find_map(|id| reply::token::case_claim_in_message_id(id, domain))
        });
        let from_subject = || {
            parsed
                .subject
                .as_deref()
                .and_then(reply::token::case_claim_in_subject)
        };
        from_headers
            .filter(|c| c.token.is_some())
            .or_else(from_subject)
            .filter(|c| c.token.is_some())
    }

    /// The report a message says it follows up: `In-Reply-To`/`References`
    /// naming one of our replies (`<abuse-ID.N.TOKEN@our-domain>`), or
    /// `[abuse #ID-TOKEN]` (or `[abuse #ID]`) in the subject. A claim with a
    /// token wins over one without.
    fn follow_up(&self, parsed: &parse::Parsed) -> Option<reply::token::Claim> {
        let domain = self.reply.from.rsplit('@').next().unwrap_or("");
        let from_headers = ["in-reply-to", "references"].iter().find_map(|h| {
            let value = parsed.headers.get(h)?;
            value
                .split(['<', '>', ' ', ',', '\t', '\r', '\n'])
                .take(64)
                .find_map(|id| reply::token::claim_in_message_id(id, domain))
        });
        let from_subject = parsed
            .subject
            .as_deref()
            .and_then(reply::token::claim_in_subject);
        match (from_headers, from_subject) {
            (Some(h), Some(s)) if h.token.is_none() && s.token.is_some() => Some(s),
            (Some(h), _) => Some(h),
            (None, s) => s,
        }
    }

    /// Processes `raws` and stores the outcomes through `sink`; returns the
    /// report id of each (`None` where processing failed and the raw row was
    /// marked `failed`).
    ///
    /// The outcomes are cut into transactions at a number
    /// of evidence rows (a report is never split): the single writer serves
    /// SMTP intake too, so each transaction stays short.
    ///
    /// When no worker can be run, the messages from there on stay pending
    /// and the list is shorter than `raws`.
    ///
    /// # Errors
    /// Only storage errors; then the raw messages of the failed transaction
    /// stay pending (earlier transactions of the batch are kept).
    pub fn process_and_store<S: ReportSink>(
        &self,
        sink: &mut S,
        processor: &mut impl Processor,
        owners: &owners::Index,
        resolver: &mut dyn owners::route::Resolver,
        raws: &[RawMessage],
    ) -> Result<Vec<store::Saved>, store::Error> {
        let mut outcomes = self.outcomes(processor, raws);
        self.route(owners, resolver, &mut outcomes);
        self.store_outcomes(sink, outcomes)
    }

    /// Says whose each report's offenders are, at each event's time (see
    /// [`owners::route`]), and turns the reply of a report about none of
    /// ours into the "not on our network" one when configured.
    pub fn route(
        &self,
        owners: &owners::Index,
        resolver: &mut dyn owners::route::Resolver,
        outcomes: &mut [Outcome],
    ) {
        for outcome in outcomes.iter_mut() {
            let Ok(draft) = &mut outcome.result else {
                continue;
            };
            let received_at = DateTime::parse_from_rfc3339(&outcome.received_at)
                .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
            let (routed, left_out) = owners::route::route(owners, resolver, draft, received_at);
            draft.owners = routed;
            if left_out > 0 {
                draft.parse_warnings.push(format!(
                    "owners: {left_out} more offenders and hosts than the {} looked up per report; not routed",
                    owners::route::MAX_LOOKUPS
                ));
            }
            reply::routed::apply(draft, received_at, self.routed_replies());
        }
    }

    /// Stores `outcomes` through `sink`, cut into transactions at a number
    /// of evidence rows (a report is never split), and logs the INFO line of
    /// each report; the report id of each (`None` for a failure).
    ///
    /// # Errors
    /// Only storage errors; then the raw messages of the failed transaction
    /// stay pending (earlier transactions are kept).
    pub fn store_outcomes<S: ReportSink>(
        &self,
        sink: &mut S,
        outcomes: Vec<Outcome>,
    ) -> Result<Vec<store::Saved>, store::Error> {
        let submitted = self.submit_outcomes(sink, outcomes)?;
        self.finish_outcomes(sink, submitted)
    }

    /// Hands `outcomes` to `sink` in transactions (as [`Self::store_outcomes`])
    /// without waiting for them: the daemon's worker goes on while the
    /// writer writes.
    ///
    /// # Errors
    /// A direct sink's storage errors.
    pub fn submit_outcomes<S: ReportSink>(
        &self,
        sink: &mut S,
        outcomes: Vec<Outcome>,
    ) -> Result<Submitted<S::Pending>, store::Error> {
        let processed_at = crate::now_rfc3339();
        let mut parts = Vec::new();
        let mut outcomes = outcomes.into_iter().peekable();
        while outcomes.peek().is_some() {
            let mut chunk = Vec::new();
            let mut rows = 0;
            while let Some(outcome) =
                outcomes.next_if(|_| chunk.is_empty() || rows < ROWS_PER_TRANSACTION)
            {
                rows += evidence_rows(&outcome);
                chunk.push(outcome);
            }
            let summaries: Vec<_> = chunk.iter().map(Summary::of).collect();
            parts.push((sink.submit(chunk, &processed_at)?, summaries));
        }
        Ok(Submitted { parts })
    }

    /// Waits for what [`Self::submit_outcomes`] handed over and logs each
    /// report's INFO line; the report id of each outcome (`None` for a failure).
    ///
    /// # Errors
    /// Storage errors; then the raw messages of the failed transaction stay
    /// pending (earlier transactions are kept).
    pub fn finish_outcomes<S: ReportSink>(
        &self,
        sink: &mut S,
        submitted: Submitted<S::Pending>,
    ) -> Result<Vec<store::Saved>, store::Error> {
        let mut ids = Vec::new();
        for (pending, summaries) in submitted.parts {
            ids.extend(stored(sink, pending, &summaries)?);
        }
        Ok(ids)
    }

    /// The outcome of each of `raws`, in order; cut short at the first
    /// message no worker could be run for.
    /// Processes `raws` in order with `processor`; shorter than `raws` when
    /// no worker could be run (the rest stay pending).
    pub fn outcomes(&self, processor: &mut impl Processor, raws: &[RawMessage]) -> Vec<Outcome> {
        raws.iter()
            .map_while(|raw| self.outcome(processor, raw))
            .collect()
    }

    /// Processes one message. A crash of the worker is tried once more in a
    /// fresh worker; a second crash, or a panic, becomes a failure recorded
    /// on the message (quarantine), never the end of the worker thread.
    /// `None` when no worker could be run: the message stays pending.
    pub fn outcome(&self, processor: &mut impl Processor, raw: &RawMessage) -> Option<Outcome> {
        let mut crashes = Vec::new();
        let result = loop {
            match processor.process(self, raw) {
                Ok(draft) => break Ok(draft),
                Err(Failure::Unavailable(why)) => {
                    error!(raw_id = raw.id.0, error = %why, "no worker; the message stays pending");
                    return None;
                }
                Err(failure) if failure.is_crash() && crashes.len() + 1 < MAX_ATTEMPTS => {
                    crashes.push(failure.describe());
                }
                Err(failure) => {
                    crashes.push(failure.describe());
                    break Err(crashes.join("; then "));
                }
            }
        };
        if let Err(why) = &result {
            error!(raw_id = raw.id.0, error = %why, "message quarantined as failed");
            crate::metrics::get().quarantined.inc();
        }
        Some(Outcome {
            raw_id: raw.id,
            received_at: raw.received_at.clone(),
            result,
            fence: raw.claim.clone(),
        })
    }
}

/// Outcomes handed to a sink and not waited for yet.
pub struct Submitted<P> {
    parts: Vec<(P, Vec<Option<Summary>>)>,
}

/// Waits for a submitted transaction and logs the INFO line of each report in it.
fn stored<S: ReportSink>(
    sink: &mut S,
    pending: S::Pending,
    summaries: &[Option<Summary>],
) -> Result<Vec<store::Saved>, store::Error> {
    let stored = sink.finish(pending)?;
    for (summary, report) in summaries.iter().zip(&stored) {
        if let (Some(s), Some(report)) = (summary, report.report()) {
            s.log(report);
        }
    }
    Ok(stored)
}

/// What the INFO line of a stored report says.
struct Summary {
    raw_id: i64,
    message_id: String,
    abuse_type: &'static str,
    subtype: &'static str,
    reporter: String,
    ips: usize,
    urls: usize,
    rows: u64,
    missing: String,
    /// `csv`, `mime`, `arf`, …: the prefix of each parse warning.
    warning_detectors: Vec<String>,
}

impl Summary {
    fn of(outcome: &Outcome) -> Option<Summary> {
        let d = outcome.result.as_ref().ok()?;
        Some(Summary {
            raw_id: outcome.raw_id.0,
            message_id: d.message_id.clone().unwrap_or_default(),
            abuse_type: d.abuse_type.as_str(),
            subtype: d.subtype.map_or("", |s| s.as_str()),
            reporter: d.reporter.clone().unwrap_or_default(),
            ips: d.ips.len(),
            urls: d.urls.len(),
            rows: d.evidence_rows,
            missing: crate::model::Missing::join(&d.missing, ","),
            warning_detectors: d
                .parse_warnings
                .iter()
                .map(|w| w.split(':').next().unwrap_or("other").to_owned())
                .collect(),
        })
    }

    /// Logs the INFO line of `report`, with the reply decision as stored.
    fn log(&self, report: &store::Stored) {
        // The message's span (STYLE §8): what follows for it carries its ids.
        let span = tracing::info_span!(
            "message",
            raw_id = self.raw_id,
            message_id = %self.message_id,
            report_id = report.id.0,
            abuse_type = self.abuse_type
        );
        let _entered = span.enter();
        let metrics = crate::metrics::get();
        let labels = vec![
            ("abuse_type", self.abuse_type.to_owned()),
            ("subtype", self.subtype.to_owned()),
        ];
        metrics.reports.get_or_create(&labels).inc();
        metrics.reply(report.reply.as_str());
        for detector in &self.warning_detectors {
            metrics
                .parse_warnings
                .get_or_create(&vec![("detector", detector.clone())])
                .inc();
        }
        info!(
            subtype = self.subtype,
            reporter = %self.reporter,
            ips = self.ips,
            urls = self.urls,
            rows = self.rows,
            missing = %self.missing,
            reply = report.reply.as_str(),
            reply_reason = %report.reply_reason.as_deref().unwrap_or(""),
            "report stored"
        );
    }
}

/// Why a message has no draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The child died or was killed while on this message (the text says
    /// how); another try in a fresh child may succeed.
    Crashed(String),
    /// The pipeline panicked on it: the same input panics again.
    Panicked(String),
    /// No child could be run (the binary is gone, the OS refused); says
    /// nothing about the message.
    Unavailable(String),
}

impl Failure {
    /// Whether a fresh child should try the message again.
    pub fn is_crash(&self) -> bool {
        matches!(self, Failure::Crashed(_))
    }

    pub fn describe(&self) -> String {
        match self {
            Failure::Crashed(how) => format!("worker {how}"),
            Failure::Panicked(what) => format!("pipeline panicked: {what}"),
            Failure::Unavailable(why) => format!("worker unavailable: {why}"),
        }
    }
}

/// Turns one raw message into a draft, or says why not.
pub trait Processor {
    fn process(&mut self, pipeline: &Pipeline, raw: &RawMessage) -> Result<ReportDraft, Failure>;
}

/// Runs the pipeline in this process, catching panics: for tests and
/// benchmarks of the pure stages. A stack overflow or abort here ends the process.
pub struct InProcess;

impl Processor for InProcess {
    fn process(&mut self, pipeline: &Pipeline, raw: &RawMessage) -> Result<ReportDraft, Failure> {
        catch_unwind(AssertUnwindSafe(|| pipeline.process(raw)))
            .map_err(|panic| Failure::Panicked(panic_text(&*panic)))
    }
}

pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

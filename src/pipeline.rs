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
use crate::model::{RawMessage, ReportDraft, ReportId, Sender};
use crate::parse;
use crate::reply;
use crate::store::{self, Db};
use chrono::{DateTime, Utc};
use std::panic::{catch_unwind, AssertUnwindSafe};
use tracing::{error, info};

/// The compiled configuration the stages need.
#[derive(Clone)]
pub struct Pipeline {
    rules: Rules,
    reply: ReplyConfig,
}

impl Pipeline {
    /// # Errors
    /// The configured rules file cannot be read or compiled.
    pub fn new(config: &Config) -> Result<Pipeline, Vec<String>> {
        Ok(Pipeline {
            rules: config.rules()?,
            reply: config.reply.clone(),
        })
    }

    /// Turns one raw message into a report draft. Pure.
    pub fn process(&self, raw: &RawMessage) -> ReportDraft {
        let parsed = parse::parse(&raw.bytes);
        let received_at = DateTime::parse_from_rfc3339(&raw.received_at)
            .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
        let ev = evidence::extract(&parsed, received_at);
        let class = classify::classify(&ev, parsed.subject.as_deref(), &self.rules);
        let reporter = parsed
            .from
            .clone()
            .or_else(|| match &raw.envelope.mail_from {
                Sender::Address(a) => Some(a.clone()),
                Sender::Null | Sender::Unknown => None,
            });
        let (reply, reply_reason) = reply::decide(
            &reply::Facts {
                sender: &raw.envelope.mail_from,
                headers: &parsed.headers,
                reporter: reporter.as_deref(),
                formats: &ev.formats,
                missing: &class.missing,
            },
            &self.reply,
        );
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
            formats: ev.formats.iter().map(|f| f.as_str().to_owned()).collect(),
            reasons: class.reasons.iter().map(|r| r.describe()).collect(),
            evidence: ev.rows,
        }
    }

    /// Processes `raws` and stores the outcomes; returns the report id of each
    /// (`None` where processing failed and the raw row was marked `failed`).
    ///
    /// # Errors
    /// Only storage errors; then nothing of the batch was stored and the raw
    /// messages stay pending.
    pub fn process_and_store(
        &self,
        db: &mut Db,
        raws: &[RawMessage],
    ) -> Result<Vec<Option<ReportId>>, store::Error> {
        let outcomes: Vec<_> = raws
            .iter()
            .map(|raw| {
                let outcome =
                    catch_unwind(AssertUnwindSafe(|| self.process(raw))).map_err(|panic| {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        error!(raw_id = raw.id.0, panic = %what, "pipeline failed");
                        format!("pipeline panicked: {what}")
                    });
                (raw, outcome)
            })
            .collect();
        let ids = db.save_outcomes(&outcomes, &crate::now_rfc3339())?;
        for ((raw, outcome), id) in outcomes.iter().zip(&ids) {
            if let (Ok(d), Some(id)) = (outcome, id) {
                info!(
                    report_id = id.0,
                    raw_id = raw.id.0,
                    message_id = d.message_id.as_deref().unwrap_or(""),
                    abuse_type = d.abuse_type.as_str(),
                    subtype = d.subtype.map_or("", |s| s.as_str()),
                    reporter = d.reporter.as_deref().unwrap_or(""),
                    ips = d.ips.len(),
                    urls = d.urls.len(),
                    rows = d.evidence_rows,
                    missing = %d.missing.join(","),
                    reply = d.reply.as_str(),
                    "report stored"
                );
            }
        }
        Ok(ids)
    }
}

//! The single path from a committed raw message to a stored report, shared by
//! the SMTP worker and `ingest`.
//!
//! In: raw messages read back from the store. Out: reports written in one
//! transaction per batch, and one INFO line per report. The stages in between
//! (parse → evidence → classify → reply decision) are pure; a stage that
//! panics marks only its own message `failed`.

use crate::model::{AbuseType, RawMessage, ReplyDecision, ReportDraft, ReportId, Sender};
use crate::parse;
use crate::store::{self, Db};
use std::panic::{catch_unwind, AssertUnwindSafe};
use tracing::{error, info};

/// Turns one raw message into a report draft. Pure.
pub fn process(raw: &RawMessage) -> ReportDraft {
    let parsed = parse::parse(&raw.bytes);
    let reporter = parsed
        .from
        .clone()
        .or_else(|| match &raw.envelope.mail_from {
            Sender::Address(a) => Some(a.clone()),
            Sender::Null | Sender::Unknown => None,
        });
    ReportDraft {
        message_id: parsed.message_id,
        reporter,
        subject: parsed.subject,
        abuse_type: AbuseType::Unknown,
        subtype: None,
        ips: Vec::new(),
        urls: Vec::new(),
        evidence_rows: 0,
        missing: vec!["abuse_type".to_owned()],
        reply: ReplyDecision::None,
        parse_warnings: parsed.warnings,
    }
}

/// Processes `raws` and stores the outcomes; returns the report id of each
/// (`None` where processing failed and the raw row was marked `failed`).
///
/// # Errors
/// Only storage errors; then nothing of the batch was stored and the raw
/// messages stay pending.
pub fn process_and_store(
    db: &mut Db,
    raws: &[RawMessage],
) -> Result<Vec<Option<ReportId>>, store::Error> {
    let outcomes: Vec<_> = raws
        .iter()
        .map(|raw| {
            let outcome = catch_unwind(AssertUnwindSafe(|| process(raw))).map_err(|panic| {
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

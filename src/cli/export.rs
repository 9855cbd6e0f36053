//! `export`: reports as JSON lines, CSV (spreadsheet-safe), XARF v4 or
//! IntelMQ events.

use super::args::ExportFormat;
use super::query_store;
use crate::config::Config;
use crate::model::{Report, ReportId};
use crate::safe_text::visible;
use crate::store::{Db, ListFilter};
use std::io::Write;
use std::process::ExitCode;

/// `export`: every report, oldest first, in one of the exchange formats.
pub(super) fn run(
    config: &Config,
    format: ExportFormat,
    since: Option<String>,
) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    export_to_stdout(&db, config, format, since)?;
    Ok(ExitCode::SUCCESS)
}

/// Evidence rows an XARF document is made from (times, ports, lines).
pub(super) const XARF_EVIDENCE_ROWS: usize = 1000;

/// Reports read per page while exporting.
pub(super) const EXPORT_PAGE: usize = 1000;

/// Writes every report (oldest first) as CSV or JSON lines.
pub(super) fn export_to_stdout(
    db: &Db,
    config: &Config,
    format: ExportFormat,
    since: Option<String>,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        ExportFormat::Dsa => {
            let since = since.unwrap_or_else(|| "0000-01-01T00:00:00Z".to_owned());
            let notices = db.dsa_notices(&since)?;
            let summary = crate::export::dsa::summary(&notices, &since, chrono::Utc::now());
            serde_json::to_writer_pretty(&mut out, &summary)?;
            writeln!(out)?;
        }
        ExportFormat::Xarf => {
            let secret = db.installation_secret()?;
            let domain = if config.export.xarf_domain.is_empty() {
                crate::reply::limits::domain(&config.reply.from)
            } else {
                config.export.xarf_domain.clone()
            };
            let sender = crate::export::xarf::Sender {
                org: &config.export.xarf_org,
                contact: &config.reply.from,
                domain: &domain,
            };
            let mut written = 0usize;
            let mut unstated: std::collections::BTreeMap<&str, usize> = Default::default();
            let mut incomplete = 0usize;
            for_each_report(db, since.as_deref(), |r| {
                let rows = db.evidence(r.id, XARF_EVIDENCE_ROWS)?;
                let uuid = crate::reply::token::report_uuid(&secret, r.id.0);
                if let Some(doc) = crate::export::xarf::document(r, &rows, &sender, &uuid) {
                    let lacking = crate::export::xarf::unstated(&doc);
                    incomplete += usize::from(!lacking.is_empty());
                    for field in lacking {
                        *unstated.entry(field).or_default() += 1;
                    }
                    serde_json::to_writer(&mut out, &doc)?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
                Ok(())
            })?;
            out.flush()?;
            if incomplete > 0 {
                let fields: Vec<String> = unstated
                    .iter()
                    .map(|(field, n)| format!("{field} {n}"))
                    .collect();
                eprintln!(
                    "note: {incomplete} of {written} documents lack fields their XARF type \
                     requires, because the reports do not state them ({})",
                    fields.join(", ")
                );
            }
        }
        ExportFormat::Intelmq => {
            for_each_report(db, since.as_deref(), |r| {
                let rows = db.evidence(r.id, crate::evidence::MAX_ROWS)?;
                for event in crate::export::intelmq::events(r, &rows) {
                    serde_json::to_writer(&mut out, &event)?;
                    out.write_all(b"\n")?;
                }
                Ok(())
            })?;
            out.flush()?;
        }
        ExportFormat::Jsonl => {
            for_each_report(db, since.as_deref(), |r| {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
                Ok(())
            })?;
            out.flush()?;
        }
        ExportFormat::Csv => {
            let mut w = ::csv::Writer::from_writer(out);
            w.write_record([
                "id",
                "received_at",
                "reporter",
                "subject",
                "abuse_type",
                "subtype",
                "reply",
                "status",
                "ips",
                "urls",
                "evidence_rows",
                "missing",
            ])?;
            for_each_report(db, since.as_deref(), |r| {
                let cells = [
                    r.id.0.to_string(),
                    r.received_at.clone(),
                    r.reporter.clone().unwrap_or_default(),
                    r.subject.clone().unwrap_or_default(),
                    r.abuse_type.as_str().to_owned(),
                    r.subtype.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    r.reply.as_str().to_owned(),
                    r.status.as_str().to_owned(),
                    r.ips.join(" "),
                    r.urls.join(" "),
                    r.evidence_rows.to_string(),
                    crate::model::Missing::join(&r.missing, " "),
                ];
                w.write_record(
                    cells
                        .iter()
                        .map(|c| spreadsheet_safe(&visible(c)).into_owned()),
                )?;
                Ok(())
            })?;
            w.flush()?;
        }
    }
    Ok(())
}

/// Calls `each` for every report received at or after `since`, in id order,
/// a page at a time (memory stays flat on a large database).
pub(super) fn for_each_report(
    db: &Db,
    since: Option<&str>,
    mut each: impl FnMut(&Report) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = ReportId(0);
    let mut progress = super::progress::Progress::new("export", "reports", None);
    loop {
        let page = db.list_reports(&ListFilter {
            after: Some(after),
            since: since.map(str::to_owned),
            limit: EXPORT_PAGE,
            ..ListFilter::default()
        })?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id;
        for report in &page {
            each(report)?;
        }
        progress.step(page.len() as u64);
    }
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
/// CR first) gets a leading `'`, as OWASP recommends against CSV injection.
pub(super) fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

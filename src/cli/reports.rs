//! `reports`: list (and follow), show, explain and resolve reports.

use super::args::{Format, ListArgs};
use super::render::{
    print_json, print_report_row, print_reports, print_reports_header, write_report_table,
    SHOWN_EVIDENCE_PER_KIND,
};
use super::{admin_store, pipeline, query_store};
use crate::config::Config;
use crate::model::ReportId;
use crate::safe_text::{clip, visible};
use crate::store::{Db, ListFilter, Location, Mode, Resolution};
use anyhow::{bail, Context as _};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// `reports list`, once or following new reports.
pub(super) fn list(
    config: &Config,
    filter: ListArgs,
    format: Format,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    if follow {
        return follow_reports(&config.store.path, filter.into_filter(), format);
    }
    let db = query_store(config)?;
    let mut filter = filter.into_filter();
    // One more than asked for says whether the list is cut.
    let page = filter.limit;
    filter.limit = page.saturating_add(1);
    let mut reports = db.list_reports(&filter)?;
    let cut = reports.len() > page;
    reports.truncate(page);
    print_reports(&reports, format)?;
    if format == Format::Table {
        // What the table does not show, on stderr (stdout is the data).
        if cut {
            eprintln!(
                "abuse-inbox: {} shown, more match: --offset {} for the next page",
                reports.len(),
                filter.offset + page
            );
        }
        let waiting = db.backlog()?;
        if waiting > 0 {
            eprintln!(
                "abuse-inbox: {waiting} messages are stored and not processed yet; they are not reports yet"
            );
        }
        let checking = db.checks_pending()?;
        if checking > 0 {
            eprintln!(
                "abuse-inbox: {checking} reports wait for their sender checks (reply \"pending\")"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `reports explain`: every address and URL with its role and why.
pub(super) fn explain(config: &Config, id: i64, format: Format) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    let Some(report) = db.report(ReportId(id))? else {
        bail!("no report {id}")
    };
    let rows = db.evidence(report.id, crate::evidence::MAX_ROWS)?;
    let mut explained = crate::evidence::explain::explain_roles(&rows);
    for e in &mut explained {
        // An address as looked up, or a URL by its host.
        let host = crate::evidence::text::url_host(&e.address)
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase());
        e.owner = report
            .owners
            .iter()
            .find(|o| o.value == e.address || Some(&o.value) == host.as_ref())
            .cloned();
    }
    match format {
        Format::Json => print_json(&explained)?,
        Format::Table => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<40}  {:<8}  {:<28}  WHY",
                "ADDRESS OR URL", "ROLE", "WHERE"
            )?;
            for e in &explained {
                writeln!(
                    out,
                    "{:<40}  {:<8}  {:<28}  {}",
                    clip(&e.address, 40),
                    e.role,
                    clip(&e.origin, 28),
                    visible(&e.why)
                )?;
            }
            super::render::write_owners(&mut out, &report.owners)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `reports show`: one report, or its original message (`--raw`).
pub(super) fn show(
    config: &Config,
    id: i64,
    format: Format,
    raw: bool,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    let Some(report) = db.report(ReportId(id))? else {
        bail!("no report {id}")
    };
    if raw {
        let message = db.raw(report.raw_id)?.context("the raw message is gone")?;
        let to_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        if to_terminal && !force && has_terminal_controls(&message.bytes) {
            bail!(
                "report {id}'s message holds control characters that would act on \
                 this terminal; pipe it (| less) or add --force"
            );
        }
        std::io::stdout().lock().write_all(&message.bytes)?;
        return Ok(ExitCode::SUCCESS);
    }
    match format {
        Format::Json => print_json(&report)?,
        Format::Table => write_report_table(
            &mut std::io::stdout().lock(),
            &report,
            db.raw(report.raw_id)?.as_ref(),
            &db.evidence_sample(report.id, SHOWN_EVIDENCE_PER_KIND)?,
            &db.replies_for(report.id)?,
            &db.events(report.id)?,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `reports resolve`: closes a report; its reporter hears once.
pub(super) fn resolve(config: &Config, id: i64, note: Option<String>) -> anyhow::Result<ExitCode> {
    let pipeline = pipeline(config)?;
    let mut db = admin_store(config)?;
    // The recipient is the report's reporter; the plan only carries the policy.
    let plan = config.reply.enabled.then(|| pipeline.reply_plan(""));
    match db.resolve(
        ReportId(id),
        note.as_deref(),
        plan.as_ref(),
        &crate::now_rfc3339(),
    )? {
        Resolution::Resolved => {}
        Resolution::AlreadyResolved { at } => {
            eprintln!("abuse-inbox: report {id} was already resolved at {at}; nothing sent again");
        }
        Resolution::NoSuchReport => bail!("no report {id}"),
    }
    print_json(&db.report(ReportId(id))?)?;
    Ok(ExitCode::SUCCESS)
}

/// How often `--follow` looks for new reports.
pub(super) const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// `reports list --follow`: the newest `limit` matching reports, then every
/// new one as it is stored. The database is reopened after an error, so a
/// daemon restart (or a database that does not exist yet) is waited out.
pub(super) fn follow_reports(
    path: &Path,
    mut filter: ListFilter,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let mut shown_header = false;
    let mut db: Option<Db> = None;
    loop {
        if db.is_none() {
            db = crate::store::open(&Location::parse(path), Mode::ReadOnly).ok();
        }
        let mut batch = Vec::new();
        if let Some(conn) = &db {
            match conn.list_reports(&filter) {
                Ok(reports) => batch = reports,
                Err(error) => {
                    tracing::warn!(%error, "reading reports failed; retrying");
                    db = None;
                }
            }
        }
        if db.is_some() && filter.after.is_none() {
            // The start: the newest ones (printed oldest first), then only new ones.
            batch.reverse();
            filter.after = Some(batch.last().map_or(ReportId(0), |r| r.id));
            filter.offset = 0;
        } else if let Some(last) = batch.last() {
            filter.after = Some(last.id);
        }
        let mut out = std::io::stdout().lock();
        for report in &batch {
            if format == Format::Json {
                serde_json::to_writer(&mut out, report)?;
                out.write_all(b"\n")?;
            } else {
                if !shown_header {
                    shown_header = true;
                    print_reports_header(&mut out)?;
                }
                print_report_row(&mut out, report)?;
            }
        }
        out.flush()?;
        drop(out);
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Control characters other than the line ends and tabs mail is made of.
pub(super) fn has_terminal_controls(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes)
        .chars()
        .any(|c| !matches!(c, '\r' | '\n' | '\t') && crate::safe_text::is_unsafe(c))
}

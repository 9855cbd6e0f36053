//! `cases`: reports of one customer (or, unowned, one network) and type,
//! handled once.

use super::args::Format;
use super::query_store;
use super::render::{print_json, print_reports};
use crate::config::Config;
use crate::model::case::{ClosedBy, FixedClock, SystemClock};
use crate::model::{CaseId, CaseStatus};
use anyhow::bail;
use std::io::Write;
use std::process::ExitCode;

/// `cases list`.
pub(super) fn list(
    config: &Config,
    customer: Option<&str>,
    status: Option<CaseStatus>,
    waiting: Option<crate::store::Waiting>,
    limit: usize,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    let cases = db.cases(customer, status, waiting, None, limit)?;
    match format {
        Format::Json => print_json(&cases)?,
        Format::Table => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>6}  {:<16}  {:<24}  {:<17}  {:>7}  {:>7}  {:<20}  LAST",
                "CASE", "TYPE", "CUSTOMER|NETWORK", "STATUS", "REPORTS", "NOTICES", "FIRST"
            )?;
            for c in &cases {
                writeln!(
                    out,
                    "{:>6}  {:<16}  {:<24}  {:<17}  {:>7}  {:>7}  {:<20}  {}",
                    c.id,
                    c.abuse_type.as_str(),
                    crate::safe_text::clip(&c.group(), 24),
                    c.status.as_str(),
                    c.reports,
                    c.notices,
                    c.first_at.get(..19).unwrap_or(&c.first_at),
                    c.last_at.get(..19).unwrap_or(&c.last_at)
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cases show`: a case, its reports, its notices, the customer's
/// answers and its history.
pub(super) fn show(config: &Config, id: i64, format: Format) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    let case_id = CaseId(id);
    let Some(case) = db.case(case_id)? else {
        bail!("no case {id}")
    };
    let reports = db.case_reports(case_id)?;
    let notices = db.case_notices(case_id)?;
    let statements = db.case_statements(case_id)?;
    let history = db.case_history(case_id)?;
    match format {
        Format::Json => print_json(&serde_json::json!({
            "case": case,
            "reports": reports,
            "notices": notices,
            "statements": statements,
            "history": history,
        }))?,
        Format::Table => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "case {} ({}): {} from {}, {} reports, {} .. {}",
                case.id,
                case.status.as_str(),
                case.abuse_type.as_str(),
                crate::safe_text::clip(&case.group(), 80),
                case.reports,
                case.first_at,
                case.last_at
            )?;
            if let Some(at) = &case.resolved_at {
                let by = case.closed_by.map_or("operator", |b| b.as_str());
                writeln!(out, "closed {at} by {by}")?;
            }
            if let Some(note) = &case.note {
                writeln!(out, "note: {}", crate::safe_text::clip(note, 500))?;
            }
            writeln!(out, "\nnotices:")?;
            for n in &notices {
                writeln!(
                    out,
                    "  {:>6}  {:<12}  {:<9}  {}  {}",
                    n.id,
                    n.kind.as_str(),
                    n.state.as_str(),
                    n.created_at.get(..19).unwrap_or(&n.created_at),
                    crate::safe_text::clip(&n.recipient, 80)
                )?;
            }
            writeln!(out, "\nthe customer's answers:")?;
            for s in &statements {
                writeln!(
                    out,
                    "  {}  {}  from {}",
                    s.received_at.get(..19).unwrap_or(&s.received_at),
                    s.status.as_str(),
                    crate::safe_text::clip(s.sender.as_deref().unwrap_or("-"), 80)
                )?;
                for line in s.text.lines().take(20) {
                    writeln!(out, "    | {}", crate::safe_text::clip(line, 200))?;
                }
            }
            writeln!(out, "\nhistory:")?;
            for h in &history {
                writeln!(
                    out,
                    "  {}  {:<17}  {:<8}  {}",
                    h.at.get(..19).unwrap_or(&h.at),
                    h.kind.as_str(),
                    h.actor,
                    crate::safe_text::clip(&h.detail, 200)
                )?;
            }
            writeln!(out)?;
            drop(out);
            print_reports(&reports, Format::Table)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cases resolve`: the case's reports are resolved (each reporter we
/// answered hears "concluded", once) unless another open case holds them;
/// then the case, and its customer is told. A run cut short is finished by
/// running it again.
pub(super) fn resolve(
    config: &Config,
    id: i64,
    note: Option<String>,
    decided: Option<crate::model::case::Decided>,
) -> anyhow::Result<ExitCode> {
    let runtime = runtime(config)?;
    let mut db = super::admin_store(config)?;
    let case_id = CaseId(id);
    let Some(case) = db.case(case_id)? else {
        bail!("no case {id}")
    };
    if case.status == CaseStatus::Resolved {
        eprintln!(
            "abuse-inbox: case {id} was already resolved at {}; nothing sent again",
            case.resolved_at.as_deref().unwrap_or("?")
        );
        print_json(&case)?;
        return Ok(ExitCode::SUCCESS);
    }
    let closed = crate::daemon::notices::close(
        &mut db,
        &runtime,
        case_id,
        ClosedBy::Operator,
        note.as_deref(),
        decided,
        chrono::Utc::now(),
    )?;
    print_json(&serde_json::json!({
        "case": db.case(case_id)?,
        "reports_resolved": closed.reports_resolved,
        "reports_still_open": closed.reports_still_open,
        "customer_told": closed.customer_told,
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// `notices run`: one notice round, at `now` or the clock's time.
pub(super) fn run_notices(
    config: &Config,
    now: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<ExitCode> {
    let runtime = runtime(config)?;
    let mut db = super::admin_store(config)?;
    let summary = match now {
        Some(at) => crate::daemon::notices::round(&mut db, &runtime, &FixedClock(at))?,
        None => crate::daemon::notices::round(&mut db, &runtime, &SystemClock)?,
    };
    print_json(&summary)?;
    Ok(ExitCode::SUCCESS)
}

/// What the configuration compiles to (rules, templates, notice policies).
fn runtime(config: &Config) -> anyhow::Result<crate::runtime::Runtime> {
    crate::runtime::Runtime::compile(config.clone())
        .map_err(|problems| anyhow::anyhow!("invalid configuration: {}", problems.join("; ")))
}

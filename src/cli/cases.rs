//! `cases`: reports of one customer (or, unowned, one network) and type,
//! handled once.

use super::args::Format;
use super::query_store;
use super::render::{print_json, print_reports};
use crate::config::Config;
use crate::model::{CaseId, CaseStatus};
use anyhow::bail;
use std::io::Write;
use std::process::ExitCode;

/// `cases list`.
pub(super) fn list(
    config: &Config,
    customer: Option<&str>,
    status: Option<CaseStatus>,
    limit: usize,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    let cases = db.cases(customer, status, limit)?;
    match format {
        Format::Json => print_json(&cases)?,
        Format::Table => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>6}  {:<16}  {:<24}  {:<8}  {:>7}  {:<20}  LAST",
                "CASE", "TYPE", "CUSTOMER|NETWORK", "STATUS", "REPORTS", "FIRST"
            )?;
            for c in &cases {
                writeln!(
                    out,
                    "{:>6}  {:<16}  {:<24}  {:<8}  {:>7}  {:<20}  {}",
                    c.id,
                    c.abuse_type.as_str(),
                    c.group(),
                    c.status.as_str(),
                    c.reports,
                    c.first_at.get(..19).unwrap_or(&c.first_at),
                    c.last_at.get(..19).unwrap_or(&c.last_at)
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cases show`: a case and its reports.
pub(super) fn show(config: &Config, id: i64, format: Format) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    let Some(case) = db.case(CaseId(id))? else {
        bail!("no case {id}")
    };
    let reports = db.case_reports(CaseId(id))?;
    match format {
        Format::Json => print_json(&serde_json::json!({ "case": case, "reports": reports }))?,
        Format::Table => {
            println!(
                "case {} ({}): {} from {}, {} reports, {} .. {}\n",
                case.id,
                case.status.as_str(),
                case.abuse_type.as_str(),
                case.group(),
                case.reports,
                case.first_at,
                case.last_at
            );
            print_reports(&reports, Format::Table)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cases resolve`: the case's reports are resolved (each reporter we
/// answered hears "concluded", once) unless another open case holds them;
/// then the case. A run cut short is finished by running it again.
pub(super) fn resolve(config: &Config, id: i64, note: Option<String>) -> anyhow::Result<ExitCode> {
    let pipeline = super::pipeline(config)?;
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
    let memberships = db.case_memberships(case_id)?;
    let (close, keep) = crate::classify::case::reports_to_close(case_id, &memberships);
    // The recipient is each report's reporter; the plan only carries the policy.
    let plan = config.reply.enabled.then(|| pipeline.reply_plan(""));
    let now = crate::now_rfc3339();
    for report in &close {
        // One already resolved by itself stays as it was.
        db.resolve(*report, note.as_deref(), plan.as_ref(), &now)?;
    }
    db.resolve_case(case_id, note.as_deref(), &now)?;
    print_json(&serde_json::json!({
        "case": db.case(case_id)?,
        "reports_resolved": close,
        "reports_still_open": keep,
    }))?;
    Ok(ExitCode::SUCCESS)
}

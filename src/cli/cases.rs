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

//! `owners`: customers and what they hold, imported and looked up.

use super::args::Format;
use super::render::print_json;
use crate::config::Config;
use crate::owners::import::{parse_csv, parse_json_lines, plan};
use crate::owners::Index;
use crate::store::{Location, Mode, Role};
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::process::ExitCode;

/// The largest owners file read (the budget of one import).
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// `owners import FILE`: exit 1 with every bad row named (nothing written).
pub(super) fn import(
    config: &Config,
    file: &Path,
    dry_run: bool,
    source: Option<String>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        bail!(
            "{} is {size} bytes; an owners file may be at most {MAX_FILE_BYTES}: split it by source",
            file.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let Ok(text) = String::from_utf8(bytes) else {
        bail!("{} is not UTF-8 text", file.display());
    };
    let json_lines = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jsonl" | "ndjson" | "json"));
    let parsed = if json_lines {
        parse_json_lines(&text)
    } else {
        parse_csv(&text)
    };
    let rows = match parsed {
        Ok(rows) => rows,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}:{}: {}", file.display(), e.line, e.problem);
            }
            let rows = if errors.len() == 1 { "row" } else { "rows" };
            eprintln!(
                "abuse-inbox: {} bad {rows} in {}; nothing was imported",
                errors.len(),
                file.display()
            );
            return Ok(ExitCode::from(1));
        }
    };
    let source = match source {
        Some(s) if !s.trim().is_empty() => s,
        _ => file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    };
    let mut db = crate::store::open(
        &Location::parse(&config.store.path),
        Mode::ReadWrite {
            role: Role::Cli,
            create: true,
        },
    )?;
    let (customers, stored) = db.owners()?;
    let now = Utc::now();
    let plan = plan(&customers, &stored, &rows, &source, now);
    if !dry_run && !plan.is_empty() {
        db.apply_owners_import(&plan, &source, now)?;
    }
    let counts = plan.counts();
    match format {
        Format::Json => print_json(&serde_json::json!({
            "source": source,
            "dry_run": dry_run,
            "rows": rows.len(),
            "counts": counts,
        }))?,
        Format::Table => println!(
            "{}{source}: {} rows; customers {} created, {} updated; assignments {} created, {} updated, {} ended, {} unchanged",
            if dry_run { "dry run, nothing written: " } else { "" },
            rows.len(),
            counts.customers_created,
            counts.customers_updated,
            counts.assignments_created,
            counts.assignments_updated,
            counts.assignments_ended,
            counts.assignments_unchanged,
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `owners lookup ADDRESS|DOMAIN`: exit 1 when nobody held it then.
pub(super) fn lookup(
    config: &Config,
    query: &str,
    at: Option<&str>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let at: DateTime<Utc> = match at {
        None => Utc::now(),
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map(|t| t.to_utc())
            .map_err(|_| {
                anyhow::anyhow!("--at {t:?} is not an RFC 3339 time (2026-12-03T10:00:00Z)")
            })?,
    };
    let db = super::query_store(config)?;
    let (customers, stored) = db.owners()?;
    let enabled: std::collections::HashSet<&str> = customers
        .iter()
        .filter(|c| c.enabled)
        .map(|c| c.reference.as_str())
        .collect();
    let index = Index::new(
        stored
            .into_iter()
            .map(|s| s.assignment)
            .filter(|a| enabled.contains(a.customer.as_str()))
            .collect(),
    );
    let found = match query.trim().parse::<std::net::IpAddr>() {
        Ok(ip) => index.address(ip, at),
        Err(_) => {
            if crate::owners::domain_key(query).is_none() {
                bail!("{query:?} is neither an IP address nor a domain");
            }
            index.domain(query, at)
        }
    };
    let customer = found.and_then(|a| customers.iter().find(|c| c.reference == a.customer));
    let time =
        |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    match format {
        Format::Json => print_json(&serde_json::json!({
            "query": query,
            "at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "customer": customer,
            "matched": found.map(|a| a.target.to_string()),
            "valid_from": found.and_then(|a| time(a.valid_from)),
            "valid_until": found.and_then(|a| time(a.valid_until)),
        }))?,
        Format::Table => match (found, customer) {
            (Some(a), Some(c)) => {
                println!(
                    "{query} at {}: customer {} ({}), by {} (valid from {} to {})",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    crate::safe_text::visible(&c.reference),
                    crate::safe_text::visible(&c.name),
                    a.target,
                    time(a.valid_from).unwrap_or_else(|| "ever".into()),
                    time(a.valid_until).unwrap_or_else(|| "now".into()),
                );
            }
            _ => println!(
                "{query} at {}: no customer held it (not ours)",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        },
    }
    Ok(if found.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

//! `owners`: customers and what they hold, imported and looked up.

use super::args::Format;
use super::render::print_json;
use crate::config::Config;
use crate::owners::import::{parse_csv, parse_json_lines, plan, REQUIRED};
use crate::owners::Index;
use crate::safe_text::visible;
use crate::store::{Location, Mode, Role};
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use std::io::Write;
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

/// `owners list`.
pub(super) fn list(config: &Config, format: Format) -> anyhow::Result<ExitCode> {
    let db = super::query_store(config)?;
    let (customers, stored) = db.owners()?;
    let now = Utc::now();
    let counts = |reference: &str| {
        let theirs = stored.iter().filter(|s| s.assignment.customer == reference);
        let current = theirs
            .clone()
            .filter(|s| s.assignment.valid_at(now))
            .count();
        (current, theirs.count())
    };
    match format {
        Format::Json => {
            let listed: Vec<serde_json::Value> = customers
                .iter()
                .map(|c| {
                    let (current, all) = counts(&c.reference);
                    serde_json::json!({
                        "customer": c,
                        "assignments_now": current,
                        "assignments": all,
                    })
                })
                .collect();
            print_json(&listed)?;
        }
        Format::Table => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<16}  {:<30}  {:<4}  {:>5}  {:>5}  EMAIL",
                "CUSTOMER", "NAME", "LANG", "NOW", "ALL"
            )?;
            for c in &customers {
                let (current, all) = counts(&c.reference);
                writeln!(
                    out,
                    "{:<16}  {:<30}  {:<4}  {:>5}  {:>5}  {}{}",
                    visible(&c.reference),
                    visible(&c.name),
                    c.language.as_str(),
                    current,
                    all,
                    visible(&c.emails.join(" ")),
                    if c.enabled { "" } else { "  (disabled)" }
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `owners show REF`: exit 2 for a customer that is not there.
pub(super) fn show(config: &Config, reference: &str, format: Format) -> anyhow::Result<ExitCode> {
    let db = super::query_store(config)?;
    let (customers, stored) = db.owners()?;
    let Some(customer) = customers.iter().find(|c| c.reference == reference) else {
        bail!("no customer {reference:?} (abuse-inbox owners list shows them)");
    };
    let theirs: Vec<_> = stored
        .iter()
        .filter(|s| s.assignment.customer == reference)
        .collect();
    let time =
        |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let now = Utc::now();
    match format {
        Format::Json => print_json(&serde_json::json!({
            "customer": customer,
            "assignments": theirs.iter().map(|s| serde_json::json!({
                "matched": s.assignment.target.to_string(),
                "valid_from": time(s.assignment.valid_from),
                "valid_until": time(s.assignment.valid_until),
                "current": s.assignment.valid_at(now),
                "source": s.source,
            })).collect::<Vec<_>>(),
        }))?,
        Format::Table => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "customer {} ({}), {}, language {}{}",
                visible(&customer.reference),
                visible(&customer.name),
                visible(&customer.emails.join(" ")),
                customer.language.as_str(),
                if customer.enabled { "" } else { ", disabled" }
            )?;
            for s in &theirs {
                writeln!(
                    out,
                    "  {:<40}  {} to {}  ({}{})",
                    s.assignment.target.to_string(),
                    time(s.assignment.valid_from).unwrap_or_else(|| "ever".into()),
                    time(s.assignment.valid_until).unwrap_or_else(|| "now".into()),
                    visible(&s.source),
                    if s.assignment.valid_at(now) {
                        ""
                    } else {
                        ", ended"
                    }
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `owners export`: in the import format, to load into another store (or
/// keep): the assignments keep their times, not their sources.
pub(super) fn export(config: &Config) -> anyhow::Result<ExitCode> {
    let db = super::query_store(config)?;
    let (customers, stored) = db.owners()?;
    let by_reference: std::collections::HashMap<&str, &crate::owners::import::Customer> = customers
        .iter()
        .map(|c| (c.reference.as_str(), c))
        .collect();
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    out.write_record(REQUIRED.iter().chain(&["policy", "enabled"]))?;
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default()
    };
    for s in &stored {
        let a = &s.assignment;
        let Some(c) = by_reference.get(a.customer.as_str()) else {
            continue;
        };
        let (netblock, domain) = match &a.target {
            crate::owners::Target::Netblock(block) => (block.to_string(), String::new()),
            crate::owners::Target::Domain(domain) => (String::new(), domain.clone()),
        };
        out.write_record([
            c.reference.as_str(),
            &c.name,
            &c.emails.join(";"),
            c.language.as_str(),
            &netblock,
            &domain,
            &time(a.valid_from),
            &time(a.valid_until),
            c.policy.as_deref().unwrap_or(""),
            if c.enabled { "true" } else { "false" },
        ])?;
    }
    out.flush()?;
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
                    visible(&c.reference),
                    visible(&c.name),
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

//! Keeping the desk: the raw messages (`raw list`, `retry`, `discard`),
//! `prune`, `backup` and `stats`.

use super::args::{Format, RawCommand};
use super::render::{print_json, print_stats_table};
use super::{admin_store, query_store};
use crate::config::Config;
use crate::model::{RawId, RawStatus};
use crate::safe_text::clip;
use crate::store::{Location, Mode, Role};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// `prune`: forgets people and addresses of old reports, keeps the counts.
pub(super) fn prune(
    config: &Config,
    older_than: u32,
    dry_run: bool,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let cutoff = (chrono::Utc::now() - chrono::Duration::days(i64::from(older_than)))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut db = admin_store(config)?;
    if !dry_run && !yes {
        let would = db.prune(&cutoff, true)?;
        if let Some(why) = prune_needs_yes(older_than, would.reports, db.report_count()?) {
            eprintln!("abuse-inbox: prune refused: {why}; see what it would do with --dry-run, and add --yes to do it");
            return Ok(ExitCode::from(1));
        }
    }
    let pruned = db.prune(&cutoff, dry_run)?;
    print_json(&serde_json::json!({ "before": cutoff, "dry_run": dry_run, "pruned": pruned }))?;
    Ok(ExitCode::SUCCESS)
}

/// Why a prune needs `--yes`, if it does: it would erase reports younger
/// than a day, or more than half of the store.
fn prune_needs_yes(older_than_days: u32, would_prune: u64, reports: u64) -> Option<String> {
    if older_than_days == 0 && would_prune > 0 {
        return Some(format!(
            "--older-than 0 erases every report's details, {would_prune} of {reports}"
        ));
    }
    (would_prune * 2 > reports).then(|| {
        format!("it would erase the details of {would_prune} of {reports} reports, more than half")
    })
}

/// `backup`: a consistent copy while the daemon runs.
pub(super) fn backup(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    if let Location::Postgres(_) = Location::parse(&config.store.path) {
        anyhow::bail!(
            "backup copies a SQLite store; back a PostgreSQL store up with its own tools: \
             pg_dump -Fc 'postgres://…' > abuse-inbox.dump (or a standby)"
        );
    }
    let db = query_store(config)?;
    db.backup_to(file)?;
    print_json(&serde_json::json!({ "backup": file, "reports": db.report_count()? }))?;
    Ok(ExitCode::SUCCESS)
}

/// `migrate-store`: everything of `from` that `to` does not have yet.
pub(super) fn migrate_store(from: &Path, to: &Path) -> anyhow::Result<ExitCode> {
    let writer = |create| Mode::ReadWrite {
        role: Role::Cli,
        create,
    };
    // An older source is migrated first: the copy reads this build's schema.
    let source = crate::store::open(&Location::parse(from), writer(false))?;
    let mut target = crate::store::open(&Location::parse(to), writer(true))?;
    let mut progress = super::progress::Progress::new("migrate-store", "rows", None);
    let mut table_now = String::new();
    let copied = source.copy_into(&mut target, |table, rows| {
        if table != table_now {
            table_now = table.to_owned();
            progress.rename(format!("migrate-store: {table}"));
        }
        progress.set(rows);
    })?;
    drop(progress);
    print_json(&serde_json::json!({ "copied": copied }))?;
    Ok(ExitCode::SUCCESS)
}

/// `stats`.
pub(super) fn stats(config: &Config, format: Format) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    let stats = db.stats()?;
    match format {
        Format::Json => print_json(&stats)?,
        Format::Table => print_stats_table(&stats)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn raw(config: &Config, command: RawCommand) -> anyhow::Result<ExitCode> {
    let ids = |ids: Vec<i64>| ids.into_iter().map(RawId).collect::<Vec<_>>();
    match command {
        RawCommand::List {
            status,
            limit,
            format,
        } => {
            let db = query_store(config)?;
            let list = db.raw_list(status, None, limit)?;
            match format {
                Format::Json => print_json(&list)?,
                Format::Table => print_raw_table(&list)?,
            }
        }
        RawCommand::Show {
            id,
            raw,
            force,
            format,
        } => return raw_show(config, RawId(id), raw, force, format),
        RawCommand::Retry { ids: given } => {
            let mut db = admin_store(config)?;
            let asked = ids(given);
            let n = db.set_raw_status(
                &asked,
                &[RawStatus::Failed, RawStatus::Discarded],
                RawStatus::Received,
            )?;
            print_json(&serde_json::json!({ "retried": n }))?;
            return Ok(all_done(n, asked.len() as u64, "failed or discarded"));
        }
        RawCommand::Discard { ids: given } => {
            let mut db = admin_store(config)?;
            let asked = ids(given);
            let n = db.set_raw_status(
                &asked,
                &[RawStatus::Failed, RawStatus::Received],
                RawStatus::Discarded,
            )?;
            print_json(&serde_json::json!({ "discarded": n }))?;
            return Ok(all_done(n, asked.len() as u64, "failed or waiting"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A stored MAIL FROM as a table shows it: the null sender (bounces,
/// auto-replies) as SMTP writes it, `<>`; none known, `-`.
fn mail_from_text(mail_from: Option<&str>) -> &str {
    match mail_from {
        Some("") => "<>",
        Some(address) => address,
        None => "-",
    }
}

/// The header lines `raw show` prints, at most (the rest: `--raw`).
const SHOWN_HEADER_LINES: usize = 60;

/// `raw show`: one message, also one that is quarantined or discarded and
/// so has no report.
fn raw_show(
    config: &Config,
    id: RawId,
    raw: bool,
    force: bool,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let db = query_store(config)?;
    let (Some((summary, report)), Some(message)) = (db.raw_summary(id)?, db.raw(id)?) else {
        eprintln!(
            "abuse-inbox: no raw message {} (abuse-inbox raw list shows them)",
            id.0
        );
        return Ok(ExitCode::from(1));
    };
    if raw {
        // A stranger's bytes must not drive the operator's terminal.
        let to_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        if to_terminal && !force && super::reports::has_terminal_controls(&message.bytes) {
            anyhow::bail!(
                "raw message {}'s bytes hold control characters that would act on this \
                 terminal; redirect it (> message.eml), pipe it (| less) or add --force",
                id.0
            );
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&message.bytes)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let header = header_text(&message.bytes);
    match format {
        Format::Json => print_json(&serde_json::json!({
            "raw": summary,
            "report_id": report,
            "header": header,
        }))?,
        Format::Table => {
            let mut out = std::io::stdout().lock();
            let mail_from = mail_from_text(summary.mail_from.as_deref());
            let rows = [
                ("raw", summary.id.0.to_string()),
                ("received", summary.received_at.clone()),
                ("status", summary.status.as_str().to_owned()),
                ("origin", summary.origin.clone()),
                (
                    "peer",
                    summary.peer_ip.clone().unwrap_or_else(|| "-".into()),
                ),
                ("mail from", mail_from.to_owned()),
                (
                    "message-id",
                    summary.message_id.clone().unwrap_or_else(|| "-".into()),
                ),
                ("bytes", summary.size_bytes.to_string()),
                ("error", summary.error.clone().unwrap_or_else(|| "-".into())),
                (
                    "report",
                    report.map_or_else(|| "none".into(), |r| r.to_string()),
                ),
            ];
            for (key, value) in rows {
                writeln!(out, "{key:<11} {}", crate::safe_text::visible(&value))?;
            }
            writeln!(out)?;
            let lines: Vec<&str> = header.lines().collect();
            for line in lines.iter().take(SHOWN_HEADER_LINES) {
                writeln!(out, "{}", crate::safe_text::visible(line))?;
            }
            if lines.len() > SHOWN_HEADER_LINES {
                writeln!(
                    out,
                    "… {} more header lines",
                    lines.len() - SHOWN_HEADER_LINES
                )?;
            }
            writeln!(
                out,
                "\n(the whole message: abuse-inbox raw show {} --raw > message.eml)",
                summary.id.0
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The message's header block as text (bytes that are not UTF-8 replaced),
/// up to the first empty line.
fn header_text(bytes: &[u8]) -> String {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| bytes.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).replace("\r\n", "\n")
}

/// Exit 0 when an action changed every message asked for; else 1, saying
/// why for the others (stderr: stdout keeps the JSON).
fn all_done(changed: u64, asked: u64, could_be: &str) -> ExitCode {
    if changed >= asked {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "abuse-inbox: {} of {asked} messages changed nothing: only {could_be} messages can be \
         (see abuse-inbox raw list --status failed), and each id must exist",
        asked - changed
    );
    ExitCode::from(1)
}

pub(super) fn print_raw_table(list: &[crate::store::RawSummary]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>7}  {:<27}  {:<9}  {:>9}  {:<30}  ERROR",
        "RAW", "RECEIVED", "STATUS", "BYTES", "MAIL FROM"
    )?;
    for r in list {
        let mail_from = mail_from_text(r.mail_from.as_deref());
        writeln!(
            out,
            "{:>7}  {:<27}  {:<9}  {:>9}  {:<30}  {}",
            r.id.0,
            clip(&r.received_at, 27),
            r.status.as_str(),
            r.size_bytes,
            clip(mail_from, 30),
            clip(r.error.as_deref().unwrap_or(""), 120)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::prune_needs_yes;

    #[test]
    fn a_prune_of_everything_recent_or_of_most_reports_needs_yes() {
        assert!(prune_needs_yes(0, 3, 10).is_some());
        assert!(prune_needs_yes(0, 0, 10).is_none());
        assert!(prune_needs_yes(30, 6, 10).is_some());
        assert!(prune_needs_yes(30, 5, 10).is_none());
        assert!(prune_needs_yes(365, 0, 0).is_none());
    }
}

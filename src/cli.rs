//! The command line: argument parsing and the commands behind it.
//!
//! In: `std::env::args`. Out: data on stdout (JSON or a table), diagnostics on
//! stderr, an exit code (0 ok, 1 some input failed, 2 fatal). The names here
//! are a contract (DESIGN.md): tests and users rely on them.

use crate::config::{self, Config};
use crate::isolate::Isolated;
use crate::model::{
    AbuseType, Envelope, Incoming, NetworkSubtype, Origin, RawId, RawMessage, RawStatus,
    ReplyDecision, Report, ReportId,
};
use crate::pipeline::Pipeline;
use crate::rawmail;
use crate::safe_text::{clip, visible};
use crate::server::Server;
use crate::store::{Db, ListFilter, Location, Mode, Resolution, Role, Stats};
use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "abuse-inbox",
    version,
    about = "SMTP intake for an abuse desk: every message becomes a classified report"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (TOML); without it the embedded default is used.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database path; overrides `store.path` of the configuration.
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Log format on stderr; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<crate::config::LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    /// XARF v4 JSON documents, one per line (reports of unknown type are skipped).
    Xarf,
    /// IntelMQ events, one per line: one per offending address and per URL.
    Intelmq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Table,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the SMTP listener and the processing worker.
    Serve {
        /// Listen address; overrides `smtp.listen`.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
    },
    /// Store and process messages from files, or `-` for standard input; prints one JSON report per message.
    Ingest {
        #[arg(required = true, value_name = "FILE.eml|-")]
        files: Vec<PathBuf>,
    },
    /// Re-run parse and classification over stored messages, in place (after
    /// a rules change). Sends no replies.
    Reprocess {
        /// Only messages received at or after this RFC 3339 time.
        #[arg(long, value_name = "RFC3339", value_parser = parse_since, conflicts_with = "all")]
        since: Option<String>,
        /// Every stored message.
        #[arg(long)]
        all: bool,
    },
    /// Cases: reports of one type about the same source network.
    Cases {
        #[command(subcommand)]
        command: CasesCommand,
    },
    /// The outbox of replies to reporters.
    Replies {
        #[command(subcommand)]
        command: RepliesCommand,
    },
    /// List and inspect reports.
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Reports as CSV (spreadsheet-safe) or JSON lines, oldest first.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Only reports received at or after this RFC 3339 time.
        #[arg(long, value_name = "RFC3339", value_parser = parse_since)]
        since: Option<String>,
    },
    /// Retention: delete what reports older than DAYS say about people and
    /// addresses, keeping the counts (the GDPR deletion path).
    Prune {
        #[arg(long, value_name = "DAYS")]
        older_than: u32,
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy the database to FILE, consistently, while the daemon runs.
    Backup {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Stored raw messages: the quarantine of those that failed processing.
    Raw {
        #[command(subcommand)]
        command: RawCommand,
    },
    /// The worker child the daemon starts to parse messages (internal).
    #[command(name = "worker-child", hide = true)]
    WorkerChild,
    /// Counts by type, reply decision and processing state.
    Stats {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportsCommand {
    /// Reports, newest first.
    List {
        #[command(flatten)]
        filter: ListArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Keep printing new reports as they are stored (JSON: one per line);
        /// waits through daemon restarts. Stop with Ctrl-C.
        #[arg(long)]
        follow: bool,
    },
    /// Close a report; the reporter is told the investigation is concluded
    /// (when their report was answered before).
    Resolve {
        id: i64,
        /// Kept in the report's history and added to the reply.
        #[arg(long)]
        note: Option<String>,
    },
    /// Every address and URL of a report: its role and what decided it.
    Explain {
        id: i64,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One report.
    Show {
        id: i64,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Print the original message exactly as it arrived, nothing else.
        #[arg(long, conflicts_with = "format")]
        raw: bool,
        /// With --raw: print to a terminal even when the message holds
        /// control characters (they could drive the terminal).
        #[arg(long, requires = "raw")]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RawCommand {
    /// Raw messages, newest first, with their processing state and error.
    List {
        /// Only this state: received, processed, failed, discarded.
        #[arg(long, value_enum)]
        status: Option<RawStatus>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Process failed (or discarded) messages again: the running daemon
    /// picks them up within seconds.
    Retry {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Never process these messages (failed or still waiting); their bytes stay stored.
    Discard {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// Cases, most recently active first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One case with its reports.
    Show {
        id: i64,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepliesCommand {
    /// Queued and sent replies, newest first.
    List {
        /// Only this state.
        #[arg(long, value_enum)]
        state: Option<crate::model::OutboxState>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Drop replies that were not sent: by id, or every held one.
    Discard {
        ids: Vec<i64>,
        /// Every reply held for want of a relay.
        #[arg(long)]
        held: bool,
    },
}

/// Which reports: every filter of `reports list` (they combine with AND).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this abuse_type.
    #[arg(long = "type", value_name = "T", value_parser = parse_abuse_type)]
    abuse_type: Option<AbuseType>,
    /// Only this network subtype (intrusion, dos, port_scan, brute_force, other).
    #[arg(long, value_parser = parse_subtype)]
    subtype: Option<NetworkSubtype>,
    /// Only this reply decision (ack, needs_info, suppressed, none).
    #[arg(long, value_parser = parse_reply)]
    reply: Option<ReplyDecision>,
    /// Only this RSIT classification type (brute-force, phishing, spam, …).
    #[arg(long, value_parser = parse_rsit)]
    rsit: Option<String>,
    /// open or resolved.
    #[arg(long, value_enum)]
    status: Option<crate::model::ReportStatus>,
    /// Reports naming this address, or an address in this network (CIDR).
    #[arg(long, value_name = "ADDR|CIDR", value_parser = parse_ip_range)]
    ip: Option<(std::net::IpAddr, std::net::IpAddr)>,
    /// Reporter address containing this text.
    #[arg(long)]
    reporter: Option<String>,
    /// Reports whose subject or text contain all these words (full-text).
    #[arg(long, value_name = "WORDS")]
    search: Option<String>,
    /// Received at or after this RFC 3339 time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_since)]
    since: Option<String>,
    /// Received before this RFC 3339 time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_since)]
    until: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Skip this many (paging: --offset 50 for the second page of 50).
    #[arg(long, default_value_t = 0)]
    offset: usize,
}

impl ListArgs {
    fn into_filter(self) -> ListFilter {
        ListFilter {
            abuse_type: self.abuse_type,
            subtype: self.subtype,
            reply: self.reply,
            status: self.status,
            reporter: self.reporter,
            since: self.since,
            until: self.until,
            ip_range: self.ip,
            search: self.search,
            after: None,
            rsit_type: self.rsit,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

fn parse_rsit(s: &str) -> Result<String, String> {
    if crate::classify::rsit::is_type(s) {
        Ok(s.to_owned())
    } else {
        let known: Vec<&str> = crate::classify::rsit::ALL.iter().map(|r| r.kind).collect();
        Err(format!(
            "unknown RSIT type {s:?}; one of {}",
            known.join(", ")
        ))
    }
}

fn parse_subtype(s: &str) -> Result<NetworkSubtype, String> {
    NetworkSubtype::parse(s).ok_or_else(|| format!("unknown subtype {s:?}"))
}

fn parse_reply(s: &str) -> Result<ReplyDecision, String> {
    ReplyDecision::parse(s).ok_or_else(|| format!("unknown reply decision {s:?}"))
}

/// `192.0.2.7` → that address; `192.0.2.0/24`, `2001:db8::/32` → the first and
/// last address of the network.
fn parse_ip_range(s: &str) -> Result<(std::net::IpAddr, std::net::IpAddr), String> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let bad = || format!("{s:?} is not an address or a network like 192.0.2.0/24");
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (
            a.parse::<IpAddr>().map_err(|_| bad())?,
            Some(b.parse::<u32>().map_err(|_| bad())?),
        ),
        None => (s.parse::<IpAddr>().map_err(|_| bad())?, None),
    };
    match (addr, bits) {
        (ip, None) => Ok((ip, ip)),
        (IpAddr::V4(v4), Some(bits)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            let first = u32::from(v4) & mask;
            Ok((
                IpAddr::V4(Ipv4Addr::from(first)),
                IpAddr::V4(Ipv4Addr::from(first | !mask)),
            ))
        }
        (IpAddr::V6(v6), Some(bits)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            let first = u128::from(v6) & mask;
            Ok((
                IpAddr::V6(Ipv6Addr::from(first)),
                IpAddr::V6(Ipv6Addr::from(first | !mask)),
            ))
        }
        _ => Err(bad()),
    }
}

fn parse_abuse_type(s: &str) -> Result<AbuseType, String> {
    AbuseType::parse(s).ok_or_else(|| {
        let names: Vec<_> = AbuseType::ALL.iter().map(|t| t.as_str()).collect();
        format!("unknown abuse type {s:?}; one of: {}", names.join(", "))
    })
}

fn parse_since(s: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        })
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-11-26T00:00:00Z"))
}

/// The configuration with the command line's overrides applied.
pub fn settings(global: &Global) -> Result<Config, config::Error> {
    let mut config = config::load(global.config.as_deref())?;
    if let Some(db) = &global.db {
        config.store.path = db.clone();
    }
    if let Some(format) = global.log_format {
        config.log.format = format;
    }
    Ok(config)
}

/// Runs the parsed command.
///
/// # Errors
/// Fatal problems (configuration, database); the caller exits with 2.
pub fn run(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { listen } => serve(config, listen, &cli.global),
        Command::Ingest { files } => ingest(&config, &files),
        Command::Reprocess { since, all } => reprocess(&config, since, all),
        Command::WorkerChild => Ok(ExitCode::from(crate::isolate::child_main())),
        Command::Raw { command } => raw(&config, command),
        Command::Reports {
            command:
                ReportsCommand::List {
                    filter,
                    format,
                    follow,
                },
        } => {
            if follow {
                return follow_reports(&config.store.path, filter.into_filter(), format);
            }
            let db = query_store(&config)?;
            let reports = db.list_reports(&filter.into_filter())?;
            print_reports(&reports, format)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reports {
            command: ReportsCommand::Explain { id, format },
        } => {
            let db = query_store(&config)?;
            let Some(report) = db.report(ReportId(id))? else {
                bail!("no report {id}")
            };
            let rows = db.evidence(report.id, crate::evidence::MAX_ROWS)?;
            let explained = explain_roles(&rows);
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
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reports {
            command:
                ReportsCommand::Show {
                    id,
                    format,
                    raw,
                    force,
                },
        } => {
            let db = query_store(&config)?;
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
                Format::Table => print_report_table(
                    &report,
                    db.raw(report.raw_id)?.as_ref(),
                    &db.evidence_sample(report.id, SHOWN_EVIDENCE_PER_KIND)?,
                    &db.replies_for(report.id)?,
                    &db.events(report.id)?,
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replies {
            command:
                RepliesCommand::List {
                    state,
                    limit,
                    format,
                },
        } => {
            let db = query_store(&config)?;
            let replies = db.replies(state, limit)?;
            match format {
                Format::Json => print_json(&replies)?,
                Format::Table => print_replies_table(&replies)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replies {
            command: RepliesCommand::Discard { ids, held },
        } => {
            if ids.is_empty() && !held {
                bail!("say which replies: their ids, or --held");
            }
            let mut db = admin_store(&config)?;
            let ids: Vec<crate::model::OutboxId> =
                ids.into_iter().map(crate::model::OutboxId).collect();
            let n = db.discard_replies(&ids, held)?;
            print_json(&serde_json::json!({ "discarded": n }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reports {
            command: ReportsCommand::Resolve { id, note },
        } => {
            let pipeline = pipeline(&config)?;
            let mut db = admin_store(&config)?;
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
                    eprintln!(
                        "abuse-inbox: report {id} was already resolved at {at}; nothing sent again"
                    );
                }
                Resolution::NoSuchReport => bail!("no report {id}"),
            }
            print_json(&db.report(ReportId(id))?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cases {
            command: CasesCommand::List { limit, format },
        } => {
            let db = query_store(&config)?;
            let cases = db.cases(limit)?;
            match format {
                Format::Json => print_json(&cases)?,
                Format::Table => {
                    let mut out = std::io::stdout().lock();
                    writeln!(
                        out,
                        "{:>6}  {:<16}  {:<22}  {:>7}  {:<20}  LAST",
                        "CASE", "TYPE", "NETWORK", "REPORTS", "FIRST"
                    )?;
                    for c in &cases {
                        writeln!(
                            out,
                            "{:>6}  {:<16}  {:<22}  {:>7}  {:<20}  {}",
                            c.id,
                            c.abuse_type,
                            c.network,
                            c.reports,
                            c.first_at.get(..19).unwrap_or(&c.first_at),
                            c.last_at.get(..19).unwrap_or(&c.last_at)
                        )?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cases {
            command: CasesCommand::Show { id, format },
        } => {
            let db = query_store(&config)?;
            let Some(case) = db.case(crate::model::CaseId(id))? else {
                bail!("no case {id}")
            };
            let reports = db.case_reports(crate::model::CaseId(id))?;
            match format {
                Format::Json => {
                    print_json(&serde_json::json!({ "case": case, "reports": reports }))?
                }
                Format::Table => {
                    println!(
                        "case {}: {} from {}, {} reports, {} .. {}\n",
                        case.id,
                        case.abuse_type,
                        case.network,
                        case.reports,
                        case.first_at,
                        case.last_at
                    );
                    print_reports(&reports, Format::Table)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { format, since } => {
            let db = query_store(&config)?;
            export(&db, &config, format, since)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Prune {
            older_than,
            dry_run,
        } => {
            let cutoff = (chrono::Utc::now() - chrono::Duration::days(i64::from(older_than)))
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let mut db = admin_store(&config)?;
            let pruned = db.prune(&cutoff, dry_run)?;
            print_json(
                &serde_json::json!({ "before": cutoff, "dry_run": dry_run, "pruned": pruned }),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { file } => {
            let db = query_store(&config)?;
            db.backup_to(&file)?;
            print_json(&serde_json::json!({ "backup": file, "reports": db.report_count()? }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { format } => {
            let db = query_store(&config)?;
            let stats = db.stats()?;
            match format {
                Format::Json => print_json(&stats)?,
                Format::Table => print_stats_table(&stats)?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(mut config: Config, listen: Option<String>, global: &Global) -> anyhow::Result<ExitCode> {
    if let Some(listen) = &listen {
        config.smtp.listen = listen.clone();
    }
    // SIGHUP re-reads the same file with the same command-line overrides.
    let reread = {
        let (path, db, log_format) = (global.config.clone(), global.db.clone(), global.log_format);
        move || -> Result<Config, Vec<String>> {
            let global = Global {
                config: path.clone(),
                db: db.clone(),
                log_format,
            };
            let mut config = settings(&global).map_err(|e| vec![e.to_string()])?;
            if let Some(listen) = &listen {
                config.smtp.listen = listen.clone();
            }
            Ok(config)
        }
    };
    if let [problem, ..] = config.problems().as_slice() {
        bail!("invalid setting: {problem}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async move {
        // Signal handlers go in before the listener opens, so a SIGTERM that
        // arrives right after start-up is a clean shutdown, not a kill.
        let signals = Signals::install()?;
        let server = Server::start(config).await?;
        // systemd (Type=notify): the listener is bound and the database open.
        crate::notify::notify(&format!(
            "READY=1\nSTATUS=accepting mail on {}",
            server.local_addr()
        ));
        let shutdown = server.shutdown_token();
        let reloader = server.reloader();
        tokio::spawn(async move {
            let mut signals = signals;
            while let Signal::Reload = signals.next().await {
                crate::notify::notify("RELOADING=1");
                match reread().and_then(|config| reloader.reload(config)) {
                    Ok(()) => tracing::info!("configuration reloaded"),
                    Err(problems) => {
                        tracing::error!(problems = %problems.join("; "), "reload refused; the running configuration stays")
                    }
                }
                crate::notify::notify("READY=1");
            }
            tracing::info!("shutdown requested");
            crate::notify::notify("STOPPING=1");
            shutdown.cancel();
        });
        server.wait().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// What a signal asks for.
enum Signal {
    /// SIGTERM (systemd) or SIGINT (Ctrl-C).
    Stop,
    /// SIGHUP (`systemctl reload`).
    Reload,
}

/// SIGTERM, SIGINT and SIGHUP, registered up front.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("watching SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("watching SIGINT")?,
                hup: signal(SignalKind::hangup()).context("watching SIGHUP")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal that matters. A SIGHUP that is already pending when a
    /// SIGTERM arrives is served first: signals are handled in the order the
    /// operator most likely sent them, and a reload is quick.
    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        tokio::select! {
            biased;
            _ = self.hup.recv() => Signal::Reload,
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}

fn raw(config: &Config, command: RawCommand) -> anyhow::Result<ExitCode> {
    let ids = |ids: Vec<i64>| ids.into_iter().map(RawId).collect::<Vec<_>>();
    match command {
        RawCommand::List {
            status,
            limit,
            format,
        } => {
            let db = query_store(config)?;
            let list = db.raw_list(status, limit)?;
            match format {
                Format::Json => print_json(&list)?,
                Format::Table => print_raw_table(&list)?,
            }
        }
        RawCommand::Retry { ids: given } => {
            let mut db = admin_store(config)?;
            let n = db.set_raw_status(
                &ids(given),
                &[RawStatus::Failed, RawStatus::Discarded],
                RawStatus::Received,
            )?;
            print_json(&serde_json::json!({ "retried": n }))?;
        }
        RawCommand::Discard { ids: given } => {
            let mut db = admin_store(config)?;
            let n = db.set_raw_status(
                &ids(given),
                &[RawStatus::Failed, RawStatus::Received],
                RawStatus::Discarded,
            )?;
            print_json(&serde_json::json!({ "discarded": n }))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_raw_table(list: &[crate::store::RawSummary]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>7}  {:<20}  {:<9}  {:>9}  {:<30}  ERROR",
        "RAW", "RECEIVED", "STATUS", "BYTES", "MAIL FROM"
    )?;
    for r in list {
        writeln!(
            out,
            "{:>7}  {:<20}  {:<9}  {:>9}  {:<30}  {}",
            r.id.0,
            clip(&r.received_at, 19),
            r.status,
            r.size_bytes,
            clip(r.mail_from.as_deref().unwrap_or("-"), 30),
            clip(r.error.as_deref().unwrap_or(""), 120)
        )?;
    }
    Ok(())
}

fn pipeline(config: &Config) -> anyhow::Result<Pipeline> {
    Pipeline::new(config).map_err(|problems| {
        anyhow::anyhow!("invalid classification rules: {}", problems.join("; "))
    })
}

/// The store for a query: read-only, never migrated, never write-locked.
fn query_store(config: &Config) -> Result<Db, crate::store::Error> {
    crate::store::open(&Location::parse(&config.store.path), Mode::ReadOnly)
}

/// The store for a command that changes it: it must exist; migrated.
fn admin_store(config: &Config) -> Result<Db, crate::store::Error> {
    crate::store::open(
        &Location::parse(&config.store.path),
        Mode::ReadWrite {
            role: Role::Cli,
            create: false,
        },
    )
}

fn ingest(config: &Config, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let pipeline = pipeline(config)?;
    let mut db = crate::store::open(
        &Location::parse(&config.store.path),
        Mode::ReadWrite {
            role: Role::Cli,
            create: true,
        },
    )?;
    let mut failed = false;
    let mut worker = Isolated::new();
    for file in files {
        match ingest_one(&mut db, &pipeline, &mut worker, file) {
            Ok(report) => print_json(&report)?,
            Err(error) => {
                failed = true;
                eprintln!("abuse-inbox: {}: {error:#}", file.display());
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn ingest_one(
    db: &mut Db,
    pipeline: &Pipeline,
    worker: &mut Isolated,
    file: &Path,
) -> anyhow::Result<Report> {
    let bytes = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        bytes
    } else {
        std::fs::read(file).context("reading the file")?
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        bail!("empty message");
    }
    let incoming = Incoming {
        envelope: Envelope {
            origin: Origin::Ingest,
            peer_ip: None,
            helo: None,
            mail_from: rawmail::return_path(&bytes),
            rcpt_to: Vec::new(),
            dsn: None,
        },
        received_at: crate::now_rfc3339(),
        bytes,
    };
    let committed = db.commit_raws(&[&incoming])?[0];
    if let Some(report) = db.report_for_raw(committed.raw_id)? {
        return Ok(report); // delivered before: one report (DESIGN rule 5)
    }
    let raw: RawMessage = db
        .raw(committed.raw_id)?
        .context("the stored message vanished")?;
    let ids = pipeline.process_and_store(db, worker, std::slice::from_ref(&raw))?;
    let Some(id) = ids.first().copied().flatten() else {
        bail!(
            "processing failed; the message is stored as raw {} (abuse-inbox raw list --status failed)",
            raw.id.0
        )
    };
    db.report(id)?.context("the stored report vanished")
}

/// How often `--follow` looks for new reports.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// `reports list --follow`: the newest `limit` matching reports, then every
/// new one as it is stored. The database is reopened after an error, so a
/// daemon restart (or a database that does not exist yet) is waited out.
fn follow_reports(path: &Path, mut filter: ListFilter, format: Format) -> anyhow::Result<ExitCode> {
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

/// Evidence rows an XARF document is made from (times, ports, lines).
const XARF_EVIDENCE_ROWS: usize = 1000;

/// Reports read per page while exporting.
const EXPORT_PAGE: usize = 1000;

/// Writes every report (oldest first) as CSV or JSON lines.
fn export(
    db: &Db,
    config: &Config,
    format: ExportFormat,
    since: Option<String>,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        ExportFormat::Xarf => {
            let secret = db.installation_secret()?;
            let domain = if config.export.xarf_domain.is_empty() {
                crate::reply::limits::domain(&config.reply.from)
            } else {
                config.export.xarf_domain.clone()
            };
            let sender = crate::xarf::Sender {
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
                if let Some(doc) = crate::xarf::document(r, &rows, &sender, &uuid) {
                    let lacking = crate::xarf::unstated(&doc);
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
                for event in crate::intelmq::events(r, &rows) {
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
fn for_each_report(
    db: &Db,
    since: Option<&str>,
    mut each: impl FnMut(&Report) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = ReportId(0);
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
    }
}

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One address or URL of a report, as `reports explain` shows it.
#[derive(Debug, serde::Serialize)]
struct Explained {
    address: String,
    role: &'static str,
    why: String,
    origin: String,
}

/// Each address (the first row naming it) and URL, with its role and why.
fn explain_roles(rows: &[crate::evidence::Row]) -> Vec<Explained> {
    use crate::evidence::roles::{why_in_line, Role};
    use crate::evidence::Kind;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for row in rows {
        let mut push = |address: String, role: Role, why: String| {
            if seen.insert(address.clone()) {
                out.push(Explained {
                    address,
                    role: role.as_str(),
                    why,
                    origin: row.origin.clone(),
                });
            }
        };
        let line = row.line.as_deref().unwrap_or("");
        if let Some(ip) = row.source_ip {
            let why = match row.kind {
                Kind::Message => "the first hop outside the reporter's network in the carried message's Received chain".to_owned(),
                Kind::Feedback => "the source field of a feedback report (ARF or X-ARF)".to_owned(),
                Kind::Notice => "the infringing address of a copyright notice".to_owned(),
                _ if line.contains("SRC=") || line.contains("src=") => "the SRC= field of a firewall log line".to_owned(),
                _ if row.origin.contains("record") => "the address column of a CSV record".to_owned(),
                Kind::LogRow if row.role == Role::Source && !line.contains(&ip.to_string()) => {
                    "the source of the log line".to_owned()
                }
                _ => why_in_line(line, ip, row.role),
            };
            push(ip.to_string(), row.role, why);
        }
        if let Some(ip) = row.target_ip {
            push(
                ip.to_string(),
                Role::Target,
                "the other end of a log line: its destination".to_owned(),
            );
        }
        if let Some(url) = &row.url {
            push(
                url.clone(),
                row.role,
                "a URL named in the report".to_owned(),
            );
        }
    }
    out
}

/// Control characters other than the line ends and tabs mail is made of.
fn has_terminal_controls(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes)
        .chars()
        .any(|c| !matches!(c, '\r' | '\n' | '\t') && crate::safe_text::is_unsafe(c))
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
/// CR first) gets a leading `'`, as OWASP recommends against CSV injection.
fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Messages re-processed per transaction.
const REPROCESS_BATCH: usize = 256;

fn reprocess(config: &Config, since: Option<String>, all: bool) -> anyhow::Result<ExitCode> {
    if since.is_none() && !all {
        bail!("say which messages: --all, or --since RFC3339");
    }
    let pipeline = pipeline(config)?;
    let mut db = admin_store(config)?;
    let started = std::time::Instant::now();
    let (mut done, mut failed, mut after) = (0u64, 0u64, RawId(0));
    let mut worker = Isolated::new();
    loop {
        let batch = db.raws_after(after, since.as_deref(), REPROCESS_BATCH)?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        let ids = pipeline.process_and_store(&mut db, &mut worker, &batch)?;
        if ids.len() < batch.len() {
            bail!("no worker process could be started; {done} messages were reprocessed");
        }
        done += ids.len() as u64;
        failed += ids.iter().filter(|id| id.is_none()).count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    print_json(&serde_json::json!({
        "reprocessed": done,
        "failed": failed,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "messages_per_second": if seconds > 0.0 { (done as f64 / seconds).round() } else { 0.0 },
    }))?;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_json<T: serde::Serialize>(value: &T) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")
}

fn print_reports(reports: &[Report], format: Format) -> std::io::Result<()> {
    if format == Format::Json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, reports)?;
        return out.write_all(b"\n");
    }
    let mut out = std::io::stdout().lock();
    print_reports_header(&mut out)?;
    for r in reports {
        print_report_row(&mut out, r)?;
    }
    Ok(())
}

fn print_reports_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>7}  {:<20}  {:<16}  {:<11}  {:<10}  {:<28}  SUBJECT",
        "ID", "RECEIVED", "TYPE", "SUBTYPE", "REPLY", "REPORTER"
    )
}

fn print_report_row(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>7}  {:<20}  {:<16}  {:<11}  {:<10}  {:<28}  {}",
        r.id.0,
        r.received_at.get(..19).unwrap_or(&r.received_at),
        r.abuse_type.as_str(),
        r.subtype.map_or("-", |s| s.as_str()),
        r.reply.as_str(),
        clip(r.reporter.as_deref().unwrap_or("-"), 28),
        clip(r.subject.as_deref().unwrap_or(""), 60),
    )
}

/// A transaction's DSN parameters as the client wrote them, decoded.
fn dsn_line(dsn: &crate::model::Dsn) -> String {
    let mut parts = Vec::new();
    if let Some(ret) = dsn.ret {
        parts.push(format!("RET={ret:?}").to_uppercase());
    }
    if let Some(envid) = &dsn.envid {
        parts.push(format!("ENVID={envid}"));
    }
    for (i, r) in dsn.recipients.iter().enumerate() {
        if let Some(notify) = &r.notify {
            parts.push(format!("rcpt {}: NOTIFY={notify}", i + 1));
        }
        if let Some(orcpt) = &r.orcpt {
            parts.push(format!("rcpt {}: ORCPT={orcpt}", i + 1));
        }
    }
    parts.join(", ")
}

/// Evidence rows of each kind `reports show` prints.
const SHOWN_EVIDENCE_PER_KIND: usize = 3;

fn print_report_table(
    r: &Report,
    raw: Option<&RawMessage>,
    evidence: &[crate::evidence::Row],
    replies: &[crate::store::OutboxEntry],
    events: &[(String, String, String)],
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(raw) = raw {
        let e = &raw.envelope;
        let from = match &e.mail_from {
            crate::model::Sender::Null => "<>".to_owned(),
            crate::model::Sender::Address(a) => visible(a).into_owned(),
            crate::model::Sender::Unknown => "-".to_owned(),
        };
        writeln!(
            out,
            "envelope: {} from {} (HELO {}), MAIL FROM {from}, RCPT TO {}, {} bytes",
            e.origin.as_str(),
            e.peer_ip.map_or("-".to_owned(), |ip| ip.to_string()),
            visible(e.helo.as_deref().unwrap_or("-")),
            visible(&e.rcpt_to.join(", ")),
            raw.bytes.len()
        )?;
        if let Some(dsn) = &e.dsn {
            writeln!(
                out,
                "  dsn (not offered, kept): {}",
                visible(&dsn_line(dsn))
            )?;
        }
        for name in ["from", "to", "date", "subject", "auto-submitted"] {
            if let Some(value) = rawmail::header(&raw.bytes, name) {
                writeln!(out, "  {name}: {}", clip(&value, 100))?;
            }
        }
        writeln!(out)?;
    }
    let none = "-".to_owned();
    let list = |v: &[String]| {
        if v.is_empty() {
            none.clone()
        } else {
            v.join(", ")
        }
    };
    let auth = r.auth.as_ref().map_or("not checked".to_owned(), |a| {
        let verdict = if a.authenticated {
            "authenticated"
        } else {
            "not authenticated"
        };
        format!("{verdict}: {}", a.summary)
    });
    let rows: [(&str, String); 16] = [
        ("id", r.id.0.to_string()),
        ("raw_id", r.raw_id.0.to_string()),
        (
            "message_id",
            r.message_id.clone().unwrap_or_else(|| none.clone()),
        ),
        ("received_at", r.received_at.clone()),
        (
            "reporter",
            r.reporter.clone().unwrap_or_else(|| none.clone()),
        ),
        ("subject", r.subject.clone().unwrap_or_else(|| none.clone())),
        ("language", r.language.as_str().to_owned()),
        ("abuse_type", r.abuse_type.as_str().to_owned()),
        (
            "subtype",
            r.subtype.map_or(none.clone(), |s| s.as_str().to_owned()),
        ),
        ("ips", list(&r.ips)),
        ("urls", list(&r.urls)),
        ("evidence_rows", r.evidence_rows.to_string()),
        ("missing", crate::model::Missing::join(&r.missing, ", ")),
        ("reply", r.reply.as_str().to_owned()),
        ("auth", auth),
        ("status", r.status.as_str().to_owned()),
    ];
    for (key, value) in rows {
        writeln!(out, "{key:>14}: {}", visible(&value))?;
    }
    if let Some(reason) = &r.reply_reason {
        writeln!(out, "{:>14}: {}", "reply_reason", visible(reason))?;
    }
    writeln!(out, "{:>14}: {}", "formats", visible(&list(&r.formats)))?;
    for w in &r.parse_warnings {
        writeln!(out, "{:>14}: {}", "warning", visible(w))?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        visible(&crate::classify::explain(
            r.abuse_type,
            r.subtype,
            &r.reasons,
            &r.missing
        ))
    )?;
    if !r.reasons.is_empty() {
        writeln!(out, "\nreasons:")?;
        for reason in &r.reasons {
            writeln!(out, "  {}", visible(reason))?;
        }
    }
    if !evidence.is_empty() {
        writeln!(
            out,
            "\nevidence (the first of each kind, {} of {}):",
            evidence.len(),
            r.evidence_rows
        )?;
        for e in evidence {
            let ip = |ip: Option<std::net::IpAddr>, port: Option<u16>| match (ip, port) {
                (Some(ip), Some(p)) => format!("{ip}:{p}"),
                (Some(ip), None) => ip.to_string(),
                (None, Some(p)) => format!("port {p}"),
                (None, None) => "-".into(),
            };
            writeln!(
                out,
                "  {:<8} {:<8} {:<20} {} -> {}  {}  {}",
                e.kind.as_str(),
                e.role.as_str(),
                e.occurred_at.as_deref().unwrap_or("-"),
                ip(e.source_ip, e.source_port),
                ip(e.target_ip, e.target_port),
                visible(e.url.as_deref().unwrap_or("")),
                clip(e.line.as_deref().unwrap_or(""), 100)
            )?;
        }
    }
    if !replies.is_empty() {
        writeln!(out, "\nreplies:")?;
        for e in replies {
            writeln!(
                out,
                "  {} {:<10} to {:<28} {:<9} tries {}{}",
                e.created_at.get(..19).unwrap_or(&e.created_at),
                e.kind,
                visible(&e.recipient),
                e.state,
                e.attempts,
                e.last_error
                    .as_deref()
                    .map(|err| format!(" ({})", visible(err)))
                    .unwrap_or_default()
            )?;
        }
    }
    if !events.is_empty() {
        writeln!(out, "\nhistory:")?;
        for (at, kind, detail) in events {
            writeln!(
                out,
                "  {}  {kind:<12} {}",
                at.get(..19).unwrap_or(at),
                visible(detail)
            )?;
        }
    }
    Ok(())
}

fn print_replies_table(replies: &[crate::store::OutboxEntry]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>6}  {:>7}  {:<10}  {:<9}  {:>3}  {:<28}  {:<20}  LAST ERROR",
        "ID", "REPORT", "KIND", "STATE", "TRY", "TO", "CREATED"
    )?;
    for r in replies {
        writeln!(
            out,
            "{:>6}  {:>7}  {:<10}  {:<9}  {:>3}  {:<28}  {:<20}  {}",
            r.id,
            r.report_id,
            r.kind,
            r.state,
            r.attempts,
            clip(&r.recipient, 28),
            r.created_at.get(..19).unwrap_or(&r.created_at),
            clip(r.last_error.as_deref().unwrap_or(""), 60)
        )?;
    }
    Ok(())
}

fn print_stats_table(s: &Stats) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "reports: {}", s.reports)?;
    writeln!(out, "backlog: {}", s.backlog)?;
    for (title, map) in [
        ("by abuse_type", &s.by_abuse_type),
        ("by subtype", &s.by_subtype),
        ("by reply", &s.by_reply),
        ("by status", &s.by_status),
        ("by day (last 30)", &s.by_day),
        ("raw messages", &s.raw_messages),
    ] {
        writeln!(out, "{title}:")?;
        for (key, count) in map {
            writeln!(out, "  {:<30} {count:>9}", visible(key))?;
        }
    }
    for (title, list) in [
        ("top addresses", &s.top_ips),
        ("top networks", &s.top_networks),
        ("top reporters", &s.top_reporters),
    ] {
        writeln!(out, "{title}:")?;
        for (key, count) in list {
            writeln!(out, "  {:<30} {count:>9}", clip(key, 30))?;
        }
    }
    Ok(())
}

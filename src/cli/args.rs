//! The command line's grammar: every command, option and value parser
//! (clap). The names are a contract (DESIGN.md).

use crate::model::*;
use crate::store::ListFilter;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Configuration file (TOML). Without it: $ABUSE_INBOX_CONFIG, else
    /// /etc/abuse-inbox/abuse-inbox.toml when it exists, else the embedded default.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Say on stderr which configuration and store are used.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
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
    /// The EU Digital Services Act figures of web-content and copyright
    /// notices (one JSON document): counts per category, receipts
    /// confirmed, decisions and grounds, the share decided automatically,
    /// median hours from notice to decision, statements of reasons sent.
    Dsa,
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
        /// Also serve the operators' console here; overrides `web.listen`.
        #[arg(long, value_name = "ADDR:PORT")]
        web: Option<String>,
    },
    /// Serve the operators' console on its own, against the store of the
    /// configuration (the daemon may run elsewhere).
    Web {
        /// Listen address; overrides `web.listen` (default 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
    },
    /// The operators' accounts for the console.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
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
    /// Bring a mailbox's history in (`import maildir DIR`, `import mbox
    /// FILE`, `import imap://USER@HOST[:PORT]/FOLDER`): every message enters
    /// the same intake as SMTP (durable, deduplicated: running it again
    /// stores nothing twice), is processed and routed, and is neither
    /// answered nor put in a case. An IMAP folder is only read (never
    /// marked, moved or deleted); its password comes from --password-file
    /// or IMAP_PASSWORD, never the command line.
    Import {
        /// `maildir`, `mbox`, or an `imap://` / `imaps://` URL.
        #[arg(value_name = "maildir|mbox|URL")]
        source: String,
        /// The Maildir directory (with cur/ and new/) or the mbox file.
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
        /// IMAP: how the connection is secured (`imaps://` means implicit).
        #[arg(long, value_enum)]
        tls: Option<crate::config::ImapTls>,
        /// IMAP: a file whose first line is the password (else IMAP_PASSWORD).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// IMAP: PEM certificates to trust besides the system's.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Only messages that arrived at or after this RFC 3339 time (as the
        /// mailbox says: a Maildir name's time, an mbox `From ` line's, an
        /// IMAP message's INTERNALDATE).
        #[arg(long, value_name = "RFC3339", value_parser = parse_since)]
        since: Option<String>,
        /// Read and count; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Cases: reports of one type about the same source network.
    Cases {
        #[command(subcommand)]
        command: CasesCommand,
    },
    /// Notices to customers about their cases, on their policies' schedule.
    Notices {
        #[command(subcommand)]
        command: NoticesCommand,
    },
    /// Customers and the netblocks and domains they hold, over time.
    Owners {
        #[command(subcommand)]
        command: OwnersCommand,
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
    /// Reports as CSV (spreadsheet-safe), JSON lines, XARF v4 or IntelMQ
    /// events, oldest first.
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
        #[arg(long, value_name = "DAYS", value_parser = parse_days)]
        older_than: u32,
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Prune even when it erases reports younger than a day
        /// (`--older-than 0`) or more than half of the store.
        #[arg(long)]
        yes: bool,
    },
    /// Move a desk to another store (SQLite to PostgreSQL), raw messages
    /// included; run it again to continue or to catch up.
    MigrateStore {
        /// The store now: a SQLite file.
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
        /// The new store: `postgres://user@host/db` (or a SQLite file).
        #[arg(long, value_name = "URL")]
        to: PathBuf,
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
        #[arg(long, default_value_t = 50, value_parser = parse_count)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One message: its envelope, state, error and report, and its header
    /// (`--raw`: the message exactly as it arrived, for a file or a mail client).
    Show {
        id: i64,
        /// The stored bytes, unchanged, on stdout.
        #[arg(long)]
        raw: bool,
        /// With --raw: print to a terminal even when the message holds
        /// control characters (they could drive the terminal).
        #[arg(long, requires = "raw")]
        force: bool,
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
pub enum OwnersCommand {
    /// Import customers and their assignments from a CSV file (header row:
    /// customer,name,email,language,netblock,domain,valid_from,valid_until)
    /// or JSON lines (`.jsonl`, `.ndjson`) with the same names. Importing
    /// the same file twice changes nothing; an assignment the source no
    /// longer lists is ended, never deleted; a bad row stops the import.
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Only say what would change.
        #[arg(long)]
        dry_run: bool,
        /// What the file stands for (default: its file name): a later
        /// import of the same source ends what it no longer lists.
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Customers, with how many assignments each holds now and in all.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One customer and every assignment they held or hold.
    Show {
        #[arg(value_name = "REF")]
        reference: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Every customer and assignment (ended ones too) as the CSV that
    /// `owners import` reads, one assignment a row: to load into another
    /// store, or keep.
    Export,
    /// Which customer held an address or a domain at a time (default: now),
    /// and what matched.
    Lookup {
        #[arg(value_name = "ADDRESS|DOMAIN")]
        query: String,
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Adds an operator. The password is asked for on a terminal, or read
    /// from the first line of standard input when it is not one.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: crate::model::operator::OperatorRole,
    },
    /// Every operator, with its role and whether it is disabled.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Disables an operator and ends its sessions.
    Disable { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CasesCommand {
    /// Cases, most recently active first.
    List {
        /// Only this customer's cases (its reference).
        #[arg(long, value_name = "REF")]
        customer: Option<String>,
        /// Only cases of this status.
        #[arg(long, value_enum)]
        status: Option<crate::model::CaseStatus>,
        /// Only cases whose customer was told and has not answered since.
        #[arg(long, conflicts_with = "customer_answered")]
        awaiting_customer: bool,
        /// Only cases (not closed) whose customer answered.
        #[arg(long)]
        customer_answered: bool,
        #[arg(long, default_value_t = 50, value_parser = parse_count)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One case: its reports, notices, the customer's answers and history.
    Show {
        id: i64,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Close a case: each of its reports closes too (its reporter is told
    /// the matter is concluded) unless it is also in another open case; the
    /// customer is told the case is closed.
    Resolve {
        id: i64,
        /// Kept with the case and its reports, and added to the replies
        /// and the customer's closing notice.
        #[arg(long)]
        note: Option<String>,
        /// What was done about the content (EU Digital Services Act,
        /// Art. 17): the closing notice to the customer is then the
        /// statement of reasons, and `export --format dsa` counts it.
        #[arg(long, value_enum)]
        decision: Option<crate::model::case::Decision>,
        /// Why: the content is illegal, or against the terms of service.
        /// Needed with a decision other than no-action.
        #[arg(long, value_enum, requires = "decision")]
        ground: Option<crate::model::case::Ground>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NoticesCommand {
    /// Runs one notice round: every notice, digest, reminder, escalation
    /// and idle close due now is queued (what `serve` does every
    /// `notices.interval_seconds`).
    Run {
        /// The time to run the round at, instead of the clock's (RFC 3339):
        /// to see what a schedule does, or to catch up.
        #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepliesCommand {
    /// Queued and sent replies, newest first.
    List {
        /// Only this state.
        #[arg(long, value_enum)]
        state: Option<crate::model::OutboxState>,
        #[arg(long, default_value_t = 50, value_parser = parse_count)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Drop replies that were not sent: by id, or every held one.
    Discard {
        ids: Vec<i64>,
        /// Every held reply.
        #[arg(long)]
        held: bool,
    },
    /// Send held replies (`reply.review`, or queued without a relay): by id,
    /// or every held one. A running daemon with a relay sends them.
    Release {
        ids: Vec<i64>,
        /// Every held reply.
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
    /// Only this reply decision (ack, needs_info, suppressed, none, pending,
    /// not_ours, too_old).
    #[arg(long, value_parser = parse_reply)]
    reply: Option<ReplyDecision>,
    /// Only this RSIT classification type (brute-force, phishing, spam, …).
    #[arg(long, value_parser = parse_rsit)]
    rsit: Option<String>,
    /// Only reports with an offender of this customer (its reference).
    #[arg(long, value_name = "REF", conflicts_with = "unowned")]
    customer: Option<String>,
    /// Only reports none of whose offenders is on our network.
    #[arg(long)]
    unowned: bool,
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
    #[arg(long, default_value_t = 50, value_parser = parse_count)]
    limit: usize,
    /// Skip this many (paging: --offset 50 for the second page of 50).
    #[arg(long, default_value_t = 0, value_parser = parse_count)]
    offset: usize,
}

impl ListArgs {
    pub(super) fn into_filter(self) -> ListFilter {
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
            before: None,
            rsit_type: self.rsit,
            customer: self.customer,
            unowned: self.unowned,
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

/// `30`, or `30d`: a whole number of days.
fn parse_days(s: &str) -> Result<u32, String> {
    let digits = s
        .trim()
        .trim_end_matches("days")
        .trim_end_matches('d')
        .trim();
    digits
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of days, e.g. 30 (or 30d)"))
}

/// A count: a whole number, 0 or more.
fn parse_count(s: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number, e.g. 50"))
}

fn parse_subtype(s: &str) -> Result<NetworkSubtype, String> {
    NetworkSubtype::parse(s).ok_or_else(|| {
        let known: Vec<&str> = NetworkSubtype::ALL.iter().map(|t| t.as_str()).collect();
        format!("unknown subtype {s:?}; one of {}", known.join(", "))
    })
}

fn parse_reply(s: &str) -> Result<ReplyDecision, String> {
    ReplyDecision::parse(s).ok_or_else(|| {
        let known: Vec<&str> = ReplyDecision::ALL.iter().map(|d| d.as_str()).collect();
        format!("unknown reply decision {s:?}; one of {}", known.join(", "))
    })
}

fn parse_ip_range(s: &str) -> Result<(std::net::IpAddr, std::net::IpAddr), String> {
    crate::model::ip_range(s)
}

fn parse_abuse_type(s: &str) -> Result<AbuseType, String> {
    AbuseType::parse(s).ok_or_else(|| {
        let names: Vec<_> = AbuseType::ALL.iter().map(|t| t.as_str()).collect();
        format!("unknown abuse type {s:?}; one of: {}", names.join(", "))
    })
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-11-26T00:00:00Z"))
}

fn parse_since(s: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        })
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-11-26T00:00:00Z"))
}

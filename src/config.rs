//! Configuration: defaults, loading from TOML, validation.
//!
//! In: an optional path to a TOML file. Out: a validated [`Config`].
//! Every key has a default (`impl Default`), documented in
//! `config/abuse-inbox.toml`; a unit test keeps the two identical.
//! Loading reports every problem at once, each with its key path.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub smtp: SmtpConfig,
    pub store: StoreConfig,
    pub tls: TlsConfig,
    pub metrics: MetricsConfig,
    pub classify: ClassifyConfig,
    pub reply: ReplyConfig,
    pub log: LogConfig,
    pub worker: WorkerConfig,
    pub auth: AuthConfig,
    pub export: ExportConfig,
    pub owners: OwnersConfig,
    pub notices: NoticesConfig,
    pub web: WebConfig,
    /// `[[imap]]`: IMAP mailboxes `serve` reads as a second way in.
    pub imap: Vec<ImapConfig>,
}

/// How an IMAP connection is secured: upgraded with STARTTLS (the
/// default), TLS from the first byte (`imaps://`, port 993), or in clear
/// (only when asked, for a server on the same host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ImapTls {
    #[default]
    Starttls,
    Implicit,
    None,
}

impl ImapTls {
    pub fn as_str(self) -> &'static str {
        match self {
            ImapTls::Starttls => "starttls",
            ImapTls::Implicit => "implicit",
            ImapTls::None => "none",
        }
    }
}

/// Where an IMAP mailbox is: parsed from `imap://USER@HOST[:PORT]/FOLDER`
/// (`imaps://` for TLS from the first byte). The user and folder may be
/// percent-encoded (`abuse%40example.net`); a URL carries no password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapAddress {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub folder: String,
    pub tls: ImapTls,
}

impl ImapAddress {
    /// Reads `url`; `tls` overrides what its scheme says, within reason.
    ///
    /// # Errors
    /// What is wrong with it, in words that say how to write it.
    pub fn parse(url: &str, tls: Option<ImapTls>) -> Result<ImapAddress, String> {
        const FORM: &str =
            "write imap://USER@HOST[:PORT]/FOLDER or imaps://USER@HOST[:PORT]/FOLDER";
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| format!("{url:?}: the percent-encoding is not UTF-8"))
        };
        let (implicit, rest) = if let Some(rest) = url.strip_prefix("imaps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("imap://") {
            (false, rest)
        } else {
            return Err(format!("{url:?} is not an IMAP URL: {FORM}"));
        };
        let tls = match (implicit, tls) {
            (true, None | Some(ImapTls::Implicit)) => ImapTls::Implicit,
            (true, Some(other)) => {
                return Err(format!(
                    "{url:?}: imaps:// means TLS from the first byte, not {}; write imap:// for that",
                    other.as_str()
                ));
            }
            (false, tls) => tls.unwrap_or_default(),
        };
        let (authority, folder) = rest.split_once('/').unwrap_or((rest, ""));
        let Some((user, server)) = authority.rsplit_once('@') else {
            return Err(format!("{url:?} names no user: {FORM}"));
        };
        if user.contains(':') {
            return Err(format!(
                "{url:?}: a password does not go in the URL; give it in a file (password_file, --password-file) or IMAP_PASSWORD"
            ));
        }
        let default_port = if tls == ImapTls::Implicit { 993 } else { 143 };
        let (host, port) = if let Some(v6) = server.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: an IPv6 address needs its closing ]"))?;
            (host, after.strip_prefix(':'))
        } else {
            match server.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (server, None),
            }
        };
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{url:?}: the port must be 1 to 65535"))?,
        };
        let user = decode(user)?;
        let folder = decode(folder.trim_end_matches('/'))?;
        if host.is_empty() || user.is_empty() {
            return Err(format!("{url:?} names no host or no user: {FORM}"));
        }
        if folder.chars().any(char::is_control) || user.chars().any(char::is_control) {
            return Err(format!("{url:?}: control characters in the user or folder"));
        }
        Ok(ImapAddress {
            host: host.to_owned(),
            port,
            user,
            folder: if folder.is_empty() {
                "INBOX".to_owned()
            } else {
                folder
            },
            tls,
        })
    }

    /// The mailbox as the logs and the progress name it (no password ever).
    pub fn name(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}@{host}:{}/{}", self.user, self.port, self.folder)
    }
}

/// One `[[imap]]` mailbox: `serve` reads it oldest first, commits each
/// message like SMTP mail, then moves it to `processed_folder` (or to
/// `failed_folder` when it cannot be taken).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// `imap://USER@HOST[:PORT]/FOLDER` or `imaps://…` (TLS from the first
    /// byte); the folder defaults to INBOX.
    pub url: String,
    /// `starttls`, `implicit` or `none`; unset: from the URL (`imaps://`
    /// implicit, `imap://` STARTTLS).
    pub tls: Option<ImapTls>,
    /// A file whose first line is the password (never the URL).
    pub password_file: Option<PathBuf>,
    /// PEM certificates trusted besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Where a committed message goes (created when missing).
    pub processed_folder: String,
    /// Where a message that cannot be taken goes (too large, not a
    /// message), with the reason in the log.
    pub failed_folder: String,
    /// Messages read per round, oldest first.
    pub batch: u32,
    /// How often the mailbox is looked at when the server has no IDLE, and
    /// at the latest between IDLE wake-ups.
    pub poll_seconds: u64,
    /// Whether to wait with IDLE when the server offers it.
    pub idle: bool,
}

impl Default for ImapConfig {
    fn default() -> ImapConfig {
        ImapConfig {
            url: String::new(),
            tls: None,
            password_file: None,
            ca_file: None,
            processed_folder: "Processed".into(),
            failed_folder: "Failed".into(),
            batch: 100,
            poll_seconds: 60,
            idle: true,
        }
    }
}

/// `[notices]`: the customer notice policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoticesConfig {
    /// A policies file in the format of `config/notices.toml`; unset: the
    /// built-in policies.
    pub file: Option<PathBuf>,
    /// Whether `serve` notifies customers of their cases (customers come
    /// from `owners import`; without any, there is nothing to do).
    pub enabled: bool,
    /// How often `serve` runs a notice round.
    pub interval_seconds: u64,
}

impl Default for NoticesConfig {
    fn default() -> NoticesConfig {
        NoticesConfig {
            file: None,
            enabled: true,
            interval_seconds: 60,
        }
    }
}

/// `[owners]`: what routing to customers does beyond recording it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OwnersConfig {
    /// A reporter whose report names no offender of ours (and owners are
    /// imported) is answered "not on our network" instead of the ack or
    /// the request for evidence; off: the ordinary reply.
    pub unowned_reply: bool,
    /// A reporter whose events are all older than this many days (by their
    /// evidence times) is answered "too old to act on"; 0: never.
    pub max_event_age_days: u64,
    /// The operator's resolver of owners (`http://` or `https://`), asked
    /// before the local assignments; empty: none.
    pub http_url: String,
    /// How long one call, and one round of reports' calls together, may
    /// wait; then the local assignments decide.
    pub http_timeout_ms: u64,
    /// How long an answer is reused (within the window it gave), at most.
    pub http_cache_seconds: u64,
}

impl Default for OwnersConfig {
    fn default() -> Self {
        OwnersConfig {
            unowned_reply: true,
            max_event_age_days: 0,
            http_url: String::new(),
            http_timeout_ms: 2000,
            http_cache_seconds: 3600,
        }
    }
}

/// `[export]`: how this desk names itself in exported reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// The organisation that sends XARF reports (XARF `sender.org`).
    pub xarf_org: String,
    /// Its domain (XARF `sender.domain`); empty: the domain of `reply.from`.
    pub xarf_domain: String,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            xarf_org: "abuse-inbox".to_owned(),
            xarf_domain: String::new(),
        }
    }
}

/// `[auth]`: sender authentication (SPF, DKIM, DMARC) of every message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Off: messages are not verified, and with `reply.require_auth` no
    /// reply is sent.
    pub enabled: bool,
    /// DNS servers (`IP` or `IP:PORT`) asked for the records; empty: those
    /// of `/etc/resolv.conf`.
    pub nameservers: Vec<String>,
    /// Time one message's checks may take, all lookups included; what has
    /// not answered by then counts as a temporary error.
    pub timeout_seconds: u64,
    /// Messages whose checks run at once (each waits on its own lookups).
    pub max_in_flight: usize,
    /// After checks failed for now (a timeout, DNS down): how long that
    /// sender counts as failing, and when its messages are checked again.
    pub retry_seconds: u64,
    /// How long a reply waits for checks that keep failing for now (DNS
    /// down); then they count as unauthenticated and it is suppressed, with
    /// the reason said.
    pub give_up_after_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: true,
            nameservers: Vec::new(),
            timeout_seconds: 10,
            max_in_flight: 256,
            retry_seconds: 60,
            give_up_after_seconds: 24 * 60 * 60,
        }
    }
}

/// `[worker]`: the process that parses and classifies, apart from intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Address space of the worker process (`RLIMIT_AS`): a message that
    /// needs more kills the worker, never the daemon.
    pub max_memory_bytes: u64,
    /// Wall-clock time one message may take before the worker is killed.
    pub max_seconds_per_message: u64,
    /// Raw bytes loaded for one batch of messages (at least one message).
    pub max_batch_bytes: u64,
    /// The `abuse-inbox` binary run as the worker; unset: the daemon's own
    /// (programs that embed the daemon, such as the test suite, name it).
    pub binary: Option<PathBuf>,
    /// Worker processes that parse and classify at once; 0: one per CPU.
    pub processes: usize,
}

impl WorkerConfig {
    /// The number of worker processes to run: `processes`, or one per CPU.
    pub fn process_count(&self) -> usize {
        match self.processes {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            max_memory_bytes: 2 * 1024 * 1024 * 1024,
            max_seconds_per_message: 10,
            max_batch_bytes: 64 * 1024 * 1024,
            binary: None,
            processes: 0,
        }
    }
}

/// `[web]`: the operators' console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// `ADDR:PORT` where `serve` also serves the console; empty: off
    /// (`abuse-inbox web` serves it on its own).
    pub listen: String,
    /// A session unused for this long ends.
    pub session_idle_minutes: u64,
    /// A session ends this long after the login, used or not.
    pub session_max_hours: u64,
    /// Failed logins allowed per client address, and per account name, in
    /// a quarter of an hour; past either, logins from there (or to that
    /// name) are refused until the quarter has passed.
    pub max_failed_logins: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: String::new(),
            session_idle_minutes: 30,
            session_max_hours: 12,
            max_failed_logins: 10,
        }
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `ADDR:PORT` for `/metrics` and `/healthz`; empty: off. Keep it on
    /// loopback (or behind a firewall): it has no authentication.
    pub listen: String,
    /// Concurrent scrapes; more are closed at once.
    pub max_connections: usize,
    /// A scrape connection is closed after this long, finished or not.
    pub timeout_seconds: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: String::new(),
            max_connections: 16,
            timeout_seconds: 5,
        }
    }
}

/// `[tls]`: STARTTLS on the SMTP listener (RFC 3207).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_file`, STARTTLS is offered.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// Refuse MAIL before STARTTLS (`530 5.7.0`). Off by default: MTAs
    /// deliver opportunistically, and reports must not be lost.
    pub require_tls: bool,
}

/// `[classify]`: the free-text rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifyConfig {
    /// A rules file in the format of `config/rules.toml`; unset: the built-in rules.
    pub rules_file: Option<PathBuf>,
    /// A feeds file in the format of `config/feeds.toml`; unset: the built-in feeds.
    pub feeds_file: Option<PathBuf>,
}

/// `[reply]`: the reply decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplyConfig {
    /// Off: every report gets `reply = "none"`.
    pub enabled: bool,
    /// Our address: replies come from it, and mail from it is never answered.
    pub from: String,
    /// Automated reporters (addresses or domains) whose ARF/X-ARF or
    /// auto-submitted reports are answered anyway.
    pub automated_allow: Vec<String>,
    /// The SMTP relay replies are sent through (plain SMTP, e.g. the local
    /// MTA on 127.0.0.1, which does TLS onwards). Unset: replies are decided
    /// and kept in the outbox as `held`.
    pub relay_host: Option<String>,
    /// Every reply and notice waits as `held` until an operator releases it
    /// (`replies release`, the console), even with a relay.
    pub review: bool,
    pub relay_port: u16,
    /// `none` (plain SMTP, for a relay on this host), `starttls` (required,
    /// port 587 usually) or `tls` (implicit TLS, port 465).
    pub relay_tls: RelayTls,
    /// AUTH user name; sent only over TLS.
    pub relay_username: Option<String>,
    /// File holding the AUTH password (kept out of the config file).
    pub relay_password_file: Option<PathBuf>,
    /// PEM file with the certificate of a private CA that signed the relay's
    /// certificate; trusted besides the Mozilla roots.
    pub relay_ca_file: Option<PathBuf>,
    /// Reply only to reporters whose address is authenticated: DMARC pass,
    /// or an SPF or DKIM pass aligned with the From domain.
    pub require_auth: bool,
    /// Domains answered without authentication (their subdomains too):
    /// reporters known to send unauthenticated mail.
    pub unauthenticated_allow: Vec<String>,
    /// Replies to one recipient per hour; more are suppressed (RFC 3834 §2).
    /// Addresses count as one whatever their case and `+tag`.
    pub rate_limit_per_hour: u32,
    /// Replies to all the addresses of one domain per hour.
    pub rate_limit_per_domain_per_hour: u32,
    /// Replies per hour in all: a burst past it is suppressed, so the desk
    /// can never be turned into a mail cannon.
    pub rate_limit_global_per_hour: u32,
    /// A reply that could not be delivered for this long is given up.
    pub give_up_after_hours: u64,
    /// First retry after a temporary failure; doubled per attempt, up to an hour.
    pub retry_min_seconds: u64,
    /// Directory with `ack.txt`, `needs_info.txt`, `concluded.txt`; a missing
    /// file falls back to the built-in one (`config/templates/`).
    pub templates_dir: Option<PathBuf>,
    /// The desk's DKIM private key (PEM: RSA, PKCS#1 or PKCS#8; Ed25519,
    /// PKCS#8): every reply and notice is signed with it for the domain of
    /// `from`. Unset: nothing is signed.
    pub dkim_key: Option<PathBuf>,
    /// The selector of that key's DNS record (`SELECTOR._domainkey.DOMAIN`).
    pub dkim_selector: String,
}

impl Default for ReplyConfig {
    fn default() -> Self {
        ReplyConfig {
            enabled: true,
            from: "abuse@abuse-inbox.localhost".to_owned(),
            automated_allow: Vec::new(),
            relay_host: None,
            review: false,
            relay_port: 25,
            relay_tls: RelayTls::None,
            relay_username: None,
            relay_password_file: None,
            relay_ca_file: None,
            require_auth: true,
            unauthenticated_allow: Vec::new(),
            rate_limit_per_hour: 5,
            rate_limit_per_domain_per_hour: 20,
            rate_limit_global_per_hour: 200,
            give_up_after_hours: 48,
            retry_min_seconds: 30,
            templates_dir: None,
            dkim_key: None,
            dkim_selector: String::new(),
        }
    }
}

/// `[smtp]`: the listener and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub listen: String,
    /// The name in the 220 greeting and the EHLO reply.
    pub hostname: String,
    /// Accepted recipients: a bare local part (`abuse`) matches it at any domain;
    /// a full address (`abuse@example.com`) matches only itself. Case-insensitive;
    /// a quoted local part (`"abuse"@…`) is the same as the bare one.
    pub recipients: Vec<String>,
    /// Sub-addressing, as Postfix's `recipient_delimiter`: with `+`,
    /// `abuse+anything@…` is `abuse@…`. Empty: off.
    pub recipient_delimiter: String,
    pub max_message_bytes: u64,
    pub max_line_bytes: usize,
    pub max_recipients: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Concurrent connections from one network: an IPv4 /24 or an IPv6 /64.
    pub max_connections_per_network: usize,
    /// Concurrent connections from one larger network: an IPv4 /16 or an
    /// IPv6 /48 (a customer's whole allocation).
    pub max_connections_per_large_network: usize,
    /// DATA bytes held by all sessions together; past it new DATA gets
    /// `452 4.3.1` and a message that would cross it is refused the same way.
    pub max_data_bytes_in_flight: u64,
    pub idle_timeout_seconds: u64,
    pub max_session_seconds: u64,
    pub shutdown_grace_seconds: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: "127.0.0.1:2525".to_owned(),
            hostname: "abuse-inbox.localhost".to_owned(),
            recipients: vec!["abuse".to_owned()],
            recipient_delimiter: "+".to_owned(),
            max_message_bytes: 25 * 1024 * 1024,
            max_line_bytes: 4096,
            max_recipients: 100,
            max_connections: 1000,
            max_connections_per_ip: 50,
            max_connections_per_network: 100,
            max_connections_per_large_network: 200,
            max_data_bytes_in_flight: 512 * 1024 * 1024,
            idle_timeout_seconds: 300,
            max_session_seconds: 600,
            shutdown_grace_seconds: 10,
        }
    }
}

/// `[store]`: the SQLite database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// A SQLite file (`sqlite:PATH` or a path), or `postgres://…`.
    pub path: PathBuf,
    /// The same, by its other name: a `postgres://` URL reads better as
    /// `url`. When set, it wins over `path`.
    pub url: Option<String>,
    /// PostgreSQL: how long a node holds the messages it processes and the
    /// replies it sends; past it (the node died) another node takes them.
    pub claim_lease_seconds: u64,
    /// Most messages one group commit may carry.
    pub max_commit_batch: usize,
    /// Free space the database's file system keeps: below it intake answers
    /// `452 4.3.1` before the disk is full, and takes mail again once
    /// space returns.
    pub min_free_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("./abuse-inbox.db"),
            url: None,
            claim_lease_seconds: 30,
            max_commit_batch: 256,
            min_free_bytes: 64 * 1024 * 1024,
        }
    }
}

/// How replies reach the relay: in clear, upgraded with STARTTLS, or over
/// TLS from the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayTls {
    #[default]
    None,
    Starttls,
    Tls,
}

/// The format of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// `[log]`: what goes to stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `abuse_inbox=debug`; `RUST_LOG` wins over it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid config {path}:\n{}", Problems(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

struct Problems<'a>(&'a [String]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// The system-wide configuration file, used when it exists and neither
/// `--config` nor `ABUSE_INBOX_CONFIG` names another.
pub const SYSTEM_PATH: &str = "/etc/abuse-inbox/abuse-inbox.toml";

/// The environment variable naming the configuration file.
pub const ENV_VAR: &str = "ABUSE_INBOX_CONFIG";

/// Where the configuration comes from: the daemon and every operator
/// command find it by the same rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--config FILE`.
    Flag(PathBuf),
    /// `ABUSE_INBOX_CONFIG=FILE`.
    Env(PathBuf),
    /// [`SYSTEM_PATH`], which exists.
    System(PathBuf),
    /// None of them: the embedded default.
    BuiltIn,
}

impl Source {
    /// `--config`, else `ABUSE_INBOX_CONFIG`, else [`SYSTEM_PATH`] when it
    /// exists, else the built-in default.
    pub fn locate(flag: Option<&Path>) -> Source {
        if let Some(path) = flag {
            return Source::Flag(path.into());
        }
        match std::env::var_os(ENV_VAR) {
            Some(path) if !path.is_empty() => Source::Env(path.into()),
            _ if Path::new(SYSTEM_PATH).exists() => Source::System(SYSTEM_PATH.into()),
            _ => Source::BuiltIn,
        }
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::Flag(p) | Source::Env(p) | Source::System(p) => Some(p),
            Source::BuiltIn => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(p) => write!(f, "{} (--config)", p.display()),
            Source::Env(p) => write!(f, "{} ({ENV_VAR})", p.display()),
            Source::System(p) => write!(f, "{}", p.display()),
            Source::BuiltIn => f.write_str("the built-in default"),
        }
    }
}

/// Loads `path`, or the embedded default when there is none.
///
/// # Errors
/// The file cannot be read, is not valid TOML for [`Config`], or fails validation
/// (every problem is listed with its key).
pub fn load(path: Option<&Path>) -> Result<Config, Error> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    let (mut config, mut problems) = parse(&text).map_err(|source| Error::Parse {
        path: path.into(),
        source,
    })?;
    if let Some(url) = &config.store.url {
        config.store.path = PathBuf::from(url);
    }
    problems.extend(config.problems());
    if let Some(binary) = &config.worker.binary {
        if !is_executable(binary) {
            problems.push(format!(
                "worker.binary: {} is not an executable file (leave it out to run this binary)",
                binary.display()
            ));
        }
    }
    match problems {
        problems if problems.is_empty() => Ok(config),
        problems => Err(Error::Invalid {
            path: path.into(),
            problems,
        }),
    }
}

/// The keys (`section.key`) whose values differ between `a` and `b`.
pub fn changed_keys(a: &Config, b: &Config) -> Vec<String> {
    let flat = |c: &Config| -> std::collections::BTreeMap<String, String> {
        let table = toml::Table::try_from(c).unwrap_or_default();
        let mut out = std::collections::BTreeMap::new();
        for (section, keys) in table {
            match keys {
                toml::Value::Table(keys) => {
                    for (key, value) in keys {
                        out.insert(format!("{section}.{key}"), value.to_string());
                    }
                }
                other => {
                    out.insert(section, other.to_string());
                }
            }
        }
        out
    };
    let (a, b) = (flat(a), flat(b));
    let mut keys: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(b.keys().filter(|k| !a.contains_key(*k)).cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The configuration in `text`, and a problem for each key that is unknown
/// or of the wrong type (each key is read on its own, so all are found at
/// once; the configuration is built from the others).
///
/// # Errors
/// `text` is not TOML at all.
fn parse(text: &str) -> Result<(Config, Vec<String>), toml::de::Error> {
    let doc: toml::Table = toml::from_str(text)?;
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    let mut kept = toml::Table::new();
    let mut problems = Vec::new();
    for (section, value) in doc {
        if !defaults.contains_key(&section) {
            let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
            problems.push(format!(
                "{section}: unknown section, expected one of {}",
                known.join(", ")
            ));
            continue;
        }
        let toml::Value::Table(keys) = value else {
            let one = toml::Table::from_iter([(section.clone(), value.clone())]);
            match toml::Value::Table(one).try_into::<Config>() {
                Ok(_) => {
                    kept.insert(section, value);
                }
                Err(error) => problems.push(format!("{section}: {}", plain(&error))),
            }
            continue;
        };
        let mut good = toml::Table::new();
        for (key, value) in keys {
            let one = toml::Table::from_iter([(
                section.clone(),
                toml::Value::Table(toml::Table::from_iter([(key.clone(), value.clone())])),
            )]);
            match toml::Value::Table(one).try_into::<Config>() {
                Ok(_) => {
                    good.insert(key, value);
                }
                Err(error) => {
                    let default = defaults
                        .get(&section)
                        .and_then(|s| s.get(&key))
                        .map(|d| format!(" (the default is {d})"))
                        .unwrap_or_default();
                    problems.push(format!("{section}.{key}: {}{default}", plain(&error)));
                }
            }
        }
        kept.insert(section, toml::Value::Table(good));
    }
    // What is left deserializes: each key did on its own.
    let config = toml::Value::Table(kept)
        .try_into::<Config>()
        .unwrap_or_default();
    Ok((config, problems))
}

/// serde's message in words an operator knows.
fn plain(error: &toml::de::Error) -> String {
    let message = error.message().trim().to_owned();
    let kinds = [
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number up to 65535"),
        ("expected usize", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
        ("expected a string", "expected a quoted string"),
        (
            "expected a sequence",
            "expected a list, e.g. [\"a\", \"b\"]",
        ),
    ];
    kinds
        .iter()
        .fold(message, |m, (from, to)| m.replace(from, to))
}

/// Whether `filter` is levels and `target=level` pairs (stricter than
/// `tracing`, which takes any word for a target and then logs nothing).
fn log_level_ok(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    let target = |t: &str| {
        let t = t.trim();
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    !filter.trim().is_empty()
        && filter
            .split(',')
            .all(|directive| match directive.split_once('=') {
                Some((t, l)) => target(t) && level(l),
                None => level(directive),
            })
        && tracing_subscriber::EnvFilter::try_new(filter).is_ok()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Config {
    /// Every validation problem, as `key.path: what is wrong`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &str, what: &str| {
            if !ok {
                problems.push(format!("{key}: {what}"));
            }
        };
        let owners = &self.owners;
        let url = owners.http_url.trim();
        check(
            url.is_empty()
                || ((url.starts_with("http://") || url.starts_with("https://"))
                    && !url.contains(char::is_whitespace)),
            "owners.http_url",
            "must be empty or an http:// or https:// URL (e.g. \"http://127.0.0.1:8081/owner\")",
        );
        check(
            (1..=30_000).contains(&owners.http_timeout_ms),
            "owners.http_timeout_ms",
            "must be 1 to 30000 (a round of reports waits at most this long for the resolver)",
        );
        let selector = self.reply.dkim_selector.trim();
        check(
            self.reply.dkim_key.is_none()
                || (!selector.is_empty()
                    && selector
                        .split('.')
                        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))),
            "reply.dkim_selector",
            "with reply.dkim_key, the selector of its DNS record (letters, digits, '-', '.'), e.g. \"desk2026\"",
        );
        check(
            (1..=86_400).contains(&self.notices.interval_seconds),
            "notices.interval_seconds",
            "must be 1 to 86400 (how often serve looks for notices due)",
        );
        let mut names = std::collections::BTreeSet::new();
        for (i, imap) in self.imap.iter().enumerate() {
            let key = |k: &str| format!("imap[{i}].{k}");
            match ImapAddress::parse(&imap.url, imap.tls) {
                Ok(address) => check(
                    names.insert(address.name()),
                    &key("url"),
                    "names the same mailbox as another [[imap]] section",
                ),
                Err(e) => check(false, &key("url"), &e),
            }
            check(
                imap.password_file.is_some(),
                &key("password_file"),
                "must name a file whose first line is the password",
            );
            for (k, folder) in [
                ("processed_folder", &imap.processed_folder),
                ("failed_folder", &imap.failed_folder),
            ] {
                check(
                    !folder.trim().is_empty()
                        && !folder.chars().any(char::is_control)
                        && ImapAddress::parse(&imap.url, imap.tls)
                            .is_ok_and(|a| a.folder != *folder),
                    &key(k),
                    "must be a folder other than the one read, e.g. \"Processed\"",
                );
            }
            check(
                (1..=1000).contains(&imap.batch),
                &key("batch"),
                "must be 1 to 1000 (messages read per round, oldest first)",
            );
            check(
                (1..=3600).contains(&imap.poll_seconds),
                &key("poll_seconds"),
                "must be 1 to 3600",
            );
        }
        let smtp = &self.smtp;
        check(
            smtp.listen.parse::<SocketAddr>().is_ok(),
            "smtp.listen",
            "must be ADDR:PORT",
        );
        check(
            !smtp.hostname.trim().is_empty(),
            "smtp.hostname",
            "must not be empty",
        );
        check(
            !smtp.recipients.is_empty(),
            "smtp.recipients",
            "must name at least one recipient",
        );
        for (i, r) in smtp.recipients.iter().enumerate() {
            let ok = !r.is_empty() && !r.contains(char::is_whitespace) && !r.starts_with('@');
            check(
                ok,
                &format!("smtp.recipients[{i}]"),
                "must be a local part or an address",
            );
        }
        check(
            smtp.max_message_bytes > 0,
            "smtp.max_message_bytes",
            "must be > 0",
        );
        check(
            smtp.max_line_bytes >= 512,
            "smtp.max_line_bytes",
            "must be >= 512 (RFC 5321)",
        );
        check(
            smtp.max_recipients >= 1,
            "smtp.max_recipients",
            "must be >= 1",
        );
        check(
            smtp.max_connections >= 1,
            "smtp.max_connections",
            "must be >= 1",
        );
        check(
            smtp.max_connections_per_ip >= 1,
            "smtp.max_connections_per_ip",
            "must be >= 1",
        );
        check(
            smtp.max_connections_per_large_network >= smtp.max_connections_per_network,
            "smtp.max_connections_per_large_network",
            "must be >= smtp.max_connections_per_network",
        );
        check(
            smtp.max_connections_per_network >= smtp.max_connections_per_ip,
            "smtp.max_connections_per_network",
            "must be >= smtp.max_connections_per_ip",
        );
        check(
            smtp.max_data_bytes_in_flight >= smtp.max_message_bytes,
            "smtp.max_data_bytes_in_flight",
            "must be >= smtp.max_message_bytes",
        );
        check(
            smtp.idle_timeout_seconds >= 1,
            "smtp.idle_timeout_seconds",
            "must be >= 1",
        );
        check(
            smtp.max_session_seconds >= 1,
            "smtp.max_session_seconds",
            "must be >= 1",
        );
        check(
            !self.store.path.as_os_str().is_empty(),
            "store.path",
            "must not be empty",
        );
        check(
            self.store.max_commit_batch >= 1,
            "store.max_commit_batch",
            "must be >= 1",
        );
        check(
            self.worker.max_memory_bytes >= 512 * 1024 * 1024,
            "worker.max_memory_bytes",
            "must be >= 536870912 (512 MiB)",
        );
        check(
            self.worker.max_seconds_per_message >= 1,
            "worker.max_seconds_per_message",
            "must be >= 1",
        );
        check(
            self.worker.max_batch_bytes >= 1,
            "worker.max_batch_bytes",
            "must be >= 1",
        );
        check(
            self.auth.timeout_seconds >= 1,
            "auth.timeout_seconds",
            "must be >= 1",
        );
        check(
            self.auth.max_in_flight >= 1,
            "auth.max_in_flight",
            "must be >= 1",
        );
        check(
            self.auth.retry_seconds >= 1,
            "auth.retry_seconds",
            "must be >= 1",
        );
        check(
            self.auth.give_up_after_seconds >= 60,
            "auth.give_up_after_seconds",
            "must be >= 60",
        );
        for (i, server) in self.auth.nameservers.iter().enumerate() {
            let parsed = parse_nameserver(server);
            let what = parsed.as_ref().err().map_or("", String::as_str);
            check(parsed.is_ok(), &format!("auth.nameservers[{i}]"), what);
        }
        check(
            self.worker.processes <= 256,
            "worker.processes",
            "must be <= 256 (0: one per CPU)",
        );
        check(
            self.metrics.max_connections >= 1,
            "metrics.max_connections",
            "must be >= 1",
        );
        check(
            self.metrics.timeout_seconds >= 1,
            "metrics.timeout_seconds",
            "must be >= 1",
        );
        check(
            self.reply.from.parse::<lettre::Address>().is_ok(),
            "reply.from",
            "must be an email address",
        );
        check(self.reply.relay_port > 0, "reply.relay_port", "must be > 0");
        check(
            self.reply.retry_min_seconds >= 1,
            "reply.retry_min_seconds",
            "must be >= 1",
        );
        check(
            self.reply.relay_username.is_none() || self.reply.relay_tls != RelayTls::None,
            "reply.relay_username",
            "needs reply.relay_tls = \"starttls\" or \"tls\" (no password in clear)",
        );
        check(
            self.reply.relay_ca_file.is_none() || self.reply.relay_tls != RelayTls::None,
            "reply.relay_ca_file",
            "needs reply.relay_tls = \"starttls\" or \"tls\"",
        );
        check(
            self.reply.relay_username.is_some() == self.reply.relay_password_file.is_some(),
            "reply.relay_password_file",
            "goes together with reply.relay_username",
        );
        check(
            self.store.claim_lease_seconds >= 1,
            "store.claim_lease_seconds",
            "must be >= 1",
        );
        check(
            self.reply.give_up_after_hours >= 1,
            "reply.give_up_after_hours",
            "must be >= 1",
        );
        check(
            log_level_ok(&self.log.level),
            "log.level",
            "must be a level (error, warn, info, debug, trace, off) or TARGET=LEVEL pairs, \
             comma-separated, e.g. \"info,abuse_inbox::store=debug\"",
        );
        check(
            self.metrics.listen.is_empty() || self.metrics.listen.parse::<SocketAddr>().is_ok(),
            "metrics.listen",
            "must be ADDR:PORT, or empty for off",
        );
        check(
            self.web.listen.is_empty() || self.web.listen.parse::<SocketAddr>().is_ok(),
            "web.listen",
            "must be ADDR:PORT, or empty for off",
        );
        check(
            self.web.session_idle_minutes >= 1,
            "web.session_idle_minutes",
            "must be >= 1",
        );
        check(
            self.web.session_max_hours >= 1,
            "web.session_max_hours",
            "must be >= 1",
        );
        check(
            self.web.max_failed_logins >= 1,
            "web.max_failed_logins",
            "must be >= 1",
        );
        check(
            self.tls.cert_file.is_some() == self.tls.key_file.is_some(),
            "tls.key_file",
            "tls.cert_file and tls.key_file go together",
        );
        check(
            !self.tls.require_tls || self.tls.cert_file.is_some(),
            "tls.require_tls",
            "needs tls.cert_file and tls.key_file",
        );
        problems
    }

    /// Whether `rcpt` (an address from `RCPT TO`) is one we accept.
    pub fn accepts_rcpt(&self, rcpt: &str) -> bool {
        let rcpt = rcpt.trim();
        let (local, domain) = rcpt.rsplit_once('@').unwrap_or((rcpt, ""));
        // `"abuse"@…` is `abuse@…` (RFC 5321 §4.1.2: the quotes are syntax).
        let local = local
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or(local);
        let local = match self.smtp.recipient_delimiter.chars().next() {
            Some(delimiter) => local.split(delimiter).next().unwrap_or(local),
            None => local,
        };
        let address = format!("{local}@{domain}");
        self.smtp.recipients.iter().any(|r| {
            if r.contains('@') {
                r.eq_ignore_ascii_case(&address)
            } else {
                r.eq_ignore_ascii_case(local)
            }
        })
    }
}

/// `IP` or `IP:PORT` (port 53 when none).
///
/// # Errors
/// Anything else, naming the value (the caller names the key).
pub fn parse_nameserver(server: &str) -> Result<SocketAddr, String> {
    server
        .parse::<SocketAddr>()
        .or_else(|_| server.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| {
            format!("{server:?} is not an IP or IP:PORT (e.g. \"127.0.0.53\" or \"[::1]:53\")")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_equals_the_embedded_default() {
        let text = include_str!("../config/abuse-inbox.toml");
        let parsed: Config = toml::from_str(text).expect("config/abuse-inbox.toml parses");
        assert_eq!(parsed, Config::default());
        assert!(parsed.problems().is_empty());
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let mut config = Config::default();
        config.smtp.listen = "nowhere".into();
        config.smtp.max_message_bytes = 0;
        let problems = config.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("smtp.listen:"));
        assert!(problems[1].starts_with("smtp.max_message_bytes:"));
        // A value outside an enumeration is refused when the file is read.
        let err = toml::from_str::<Config>("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(
            err.to_string().contains("expected `text` or `json`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_all_listed_with_the_values_problems() {
        let text =
            "[smtp]\nmax_mesage_bytes = 5\nmax_message_bytes = \"25MB\"\nlisten = \"nowhere\"\n\
                    [reply]\nenabled = \"yes\"\nretry_min_seconds = 0\n[colour]\nx = 1\n\
                    [log]\nlevel = \"verbose!!\"\n";
        let (_, mut problems) = parse(text).unwrap();
        let (config, _) = parse(text).unwrap();
        problems.extend(config.problems());
        let all = problems.join("\n");
        for expected in [
            "smtp.max_mesage_bytes: unknown field `max_mesage_bytes`",
            "smtp.max_message_bytes: invalid type: string \"25MB\", expected a whole number (the default is 26214400)",
            "reply.enabled: invalid type: string \"yes\", expected true or false (the default is true)",
            "colour: unknown section, expected one of auth, classify",
            "smtp.listen: must be ADDR:PORT",
            "reply.retry_min_seconds: must be >= 1",
            "log.level:",
        ] {
            assert!(all.contains(expected), "{expected} not in:\n{all}");
        }
        assert_eq!(problems.len(), 7, "{all}");
        // The good keys are kept.
        assert_eq!(config.smtp.listen, "nowhere");
    }

    #[test]
    fn a_reload_names_the_keys_it_changes() {
        let running = Config::default();
        assert!(changed_keys(&running, &running).is_empty());
        let mut next = running.clone();
        next.smtp.recipients.push("security".into());
        next.reply.relay_host = Some("relay.example".into());
        assert_eq!(
            changed_keys(&running, &next),
            ["reply.relay_host", "smtp.recipients"]
        );
    }

    #[test]
    fn log_levels_are_levels_or_target_level_pairs() {
        for good in [
            "info",
            "debug",
            "abuse_inbox=debug,info",
            "abuse_inbox::store=trace",
            "off",
        ] {
            assert!(log_level_ok(good), "{good}");
        }
        for bad in ["verbose!!", "verbose", "info,loud", "x=loud", ""] {
            assert!(!log_level_ok(bad), "{bad}");
        }
    }

    #[test]
    fn recipients_match_local_part_at_any_domain_or_exact_address() {
        let mut config = Config::default();
        assert!(config.accepts_rcpt("abuse@example.com"));
        assert!(config.accepts_rcpt("ABUSE@other.example"));
        assert!(!config.accepts_rcpt("postmaster@example.com"));
        assert!(!config.accepts_rcpt("abuse.team@example.com"));
        config.smtp.recipients = vec!["abuse@example.com".into()];
        assert!(config.accepts_rcpt("Abuse@Example.com"));
        assert!(!config.accepts_rcpt("abuse@example.net"));
    }
}

//! Evidence as the stages hand it on: one row of what a report shows (a
//! log line, an address, a URL, a carried message), and what its address
//! is to the report. The detectors that find rows are `evidence`.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A log line (CSV row, pasted log, X-ARF evidence): source/target, ports, time.
    LogRow,
    /// An address named in text without a log line around it.
    Ip,
    Url,
    /// A carried message: forwarded spam or an ARF returned message.
    Message,
    /// An ARF or X-ARF report record.
    Feedback,
    /// A copyright notice (ACNS).
    Notice,
}

/// One piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub kind: Kind,
    pub source_ip: Option<IpAddr>,
    pub target_ip: Option<IpAddr>,
    pub source_port: Option<u16>,
    pub target_port: Option<u16>,
    /// RFC 3339, UTC.
    pub occurred_at: Option<String>,
    pub url: Option<String>,
    pub line: Option<String>,
    /// Where in the message it was found (`part 2 (reports.csv) row 7`).
    pub origin: String,
    /// What `source_ip` (or, without one, the row's address) is to the
    /// report; only `source` rows name offenders. `target_ip` is the target.
    #[serde(default)]
    pub role: Role,
}

/// What an address is to the report.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The offender: the host on our network the report is about.
    #[default]
    Source,
    /// The victim: the reporter's server, the destination of the traffic.
    Target,
    /// The reporter's own infrastructure (its public address, MX, relays).
    Reporter,
    /// A network block (CIDR, `a - b`, whois `inetnum`), not a host.
    Range,
    /// A router on a traceroute path.
    Hop,
    /// Anything else: private, loopback, link-local, multicast addresses.
    Other,
}

/// A structured format that was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Arf,
    Xarf,
    Acns,
    /// A DMARC aggregate report (RFC 7489 §7.2).
    DmarcAggregate,
    Csv,
    ForwardedMessage,
    InlineHeaders,
    Html,
    FreeText,
}

//! Evidence extraction: from a parsed message to rows an operator can act on.
//!
//! In: [`Parsed`] and the time the message arrived (for syslog stamps without
//! a year). Out: [`Evidence`]: rows (log lines, IPs, URLs, carried messages,
//! feedback and notices), the formats recognised, structured facts for the
//! classifier, and warnings for what could not be parsed. Detectors for the
//! structured formats run first (ARF, X-ARF, ACNS, CSV, carried messages);
//! then every text body is scanned, so a message no detector knows still
//! yields each IP, URL, port and timestamp in it. Pure: no I/O, no panics.
//!
//! Not offenders: the top-level `Received:` chain (the path to us) is never
//! scanned, and lines quoted back from one of our own replies are skipped.

pub use crate::model::evidence::Row;
pub use crate::model::evidence::{Format, Kind};
mod acns;
mod arf;
mod csv;
pub mod dmarc;
pub mod explain;
mod feeds;
mod forwarded;
mod prose;
pub mod roles;
pub mod text;
mod xarf;

use crate::parse::Parsed;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Rows kept per message; the surplus is counted in a warning.
pub const MAX_ROWS: usize = 10_000;
/// Text the classification rules and completeness checks read, per message:
/// a report's prose is far shorter, and the rules' Unicode word boundaries
/// make their scan slow per byte (linear, but not cheap) on a megabyte blob.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Longest `line` kept in a row, in bytes.
pub const MAX_LINE_BYTES: usize = 2048;

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LogRow => "log_row",
            Kind::Ip => "ip",
            Kind::Url => "url",
            Kind::Message => "message",
            Kind::Feedback => "feedback",
            Kind::Notice => "notice",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::LogRow,
            Kind::Ip,
            Kind::Url,
            Kind::Message,
            Kind::Feedback,
            Kind::Notice,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl Row {
    pub fn new(kind: Kind, origin: impl Into<String>) -> Row {
        Row {
            kind,
            source_ip: None,
            target_ip: None,
            source_port: None,
            target_port: None,
            occurred_at: None,
            url: None,
            line: None,
            origin: origin.into(),
            role: roles::Role::Source,
        }
    }

    /// Whether the row names an offender.
    pub fn is_offender(&self) -> bool {
        self.role == roles::Role::Source && self.source_ip.is_some()
    }

    fn with_line(mut self, line: &str) -> Row {
        self.line = Some(clip(line.trim(), MAX_LINE_BYTES));
        self
    }

    fn from_facts(kind: Kind, facts: &text::LineFacts, line: &str, origin: String) -> Row {
        Row {
            source_ip: facts.source_ip,
            target_ip: facts.target_ip,
            source_port: facts.source_port,
            target_port: facts.target_port,
            occurred_at: facts.timestamp.clone(),
            url: facts.urls.first().cloned(),
            ..Row::new(kind, origin)
        }
        .with_line(line)
    }
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Arf => "arf",
            Format::Xarf => "xarf",
            Format::Acns => "acns",
            Format::DmarcAggregate => "dmarc_aggregate",
            Format::Csv => "csv",
            Format::ForwardedMessage => "forwarded_message",
            Format::InlineHeaders => "inline_headers",
            Format::Html => "html",
            Format::FreeText => "free_text",
        }
    }
}

/// Structured facts the classifier decides on before it reads free text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// ARF `Feedback-Type`, lowercase.
    pub arf_feedback_type: Option<String>,
    /// X-ARF report types / categories as written (`login-attack`, `ddos`, …).
    pub xarf_types: Vec<String>,
    /// An ACNS `<Infringement>` notice was found.
    pub has_acns: bool,
    /// DMARC aggregate reports: how many records, how many failing.
    pub dmarc: Option<dmarc::Summary>,
    /// The message is a delivery-status notification (RFC 3464,
    /// `multipart/report; report-type=delivery-status`): a bounce that
    /// landed in the abuse box. The addresses in it are mail servers on
    /// the bounced mail's path, never offenders.
    pub is_delivery_status: bool,
    /// Feed report names (`scan_ssh`, `event4_sinkhole_http`, …) from file
    /// names and the subject.
    pub feed_reports: Vec<String>,
    /// A carried message (forwarded or returned) with a `Received:` chain.
    pub has_full_headers: bool,
    /// A carried message or pasted header block without `Received:` lines.
    pub has_partial_headers: bool,
    /// Some carried message has a body.
    pub has_carried_body: bool,
    /// All the text a reader would see (bodies, carried bodies), for the
    /// completeness checks and search.
    pub text: String,
    /// What the keyword rules read: the reporter's own words (quotes,
    /// signatures, URLs, addresses and host names left out) and carried
    /// bodies ([`prose`]).
    pub prose: String,
}

/// Everything extracted from one message.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub rows: Vec<Row>,
    pub formats: BTreeSet<Format>,
    pub facts: Facts,
    pub warnings: Vec<String>,
    /// Rows found past [`MAX_ROWS`].
    pub rows_dropped: u64,
    /// For each carried message's row: the public hops of its chain.
    carried_chains: Vec<(usize, Vec<IpAddr>)>,
}

impl Evidence {
    fn push(&mut self, row: Row) {
        if self.rows.len() < MAX_ROWS {
            self.rows.push(row);
        } else {
            self.rows_dropped += 1;
        }
    }

    /// The offending addresses (`source` role), sorted and deduplicated.
    pub fn ips(&self) -> Vec<String> {
        let set: BTreeSet<IpAddr> = self
            .rows
            .iter()
            .filter(|r| r.is_offender())
            .filter_map(|r| r.source_ip)
            .collect();
        set.into_iter().map(|ip| ip.to_string()).collect()
    }

    /// Every URL named, sorted and deduplicated.
    pub fn urls(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.rows.iter().filter_map(|r| r.url.as_deref()).collect();
        set.into_iter().map(str::to_owned).collect()
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.rows.iter().filter(|r| r.kind == kind).count()
    }
}

/// The moment that dates the report's stamps without a year (syslog): its
/// own `Date:` when that is plausible (not after it arrived, and within 30
/// days before), else when it arrived. Never a guess from "now": `reprocess`
/// a year later reads the same years.
fn reference_time(parsed: &Parsed, received_at: DateTime<Utc>) -> DateTime<Utc> {
    parsed
        .headers
        .get("date")
        .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
        .map(|d| d.with_timezone(&Utc))
        .filter(|d| *d <= received_at + chrono::Duration::hours(1))
        .filter(|d| received_at - *d <= chrono::Duration::days(30))
        .unwrap_or(received_at)
}

/// Extracts the evidence of `parsed`, which arrived at `received_at`.
pub fn extract(parsed: &Parsed, received_at: DateTime<Utc>) -> Evidence {
    let received_at = reference_time(parsed, received_at);
    let mut ev = Evidence::default();
    ev.facts.feed_reports = feeds::report_names(parsed);
    arf::extract(parsed, received_at, &mut ev);
    xarf::extract(parsed, received_at, &mut ev);
    acns::extract(parsed, received_at, &mut ev);
    dmarc::extract(parsed, &mut ev);
    let mut consumed = BTreeSet::new();
    for (i, attachment) in parsed.attachments.iter().enumerate() {
        if csv::looks_like_csv(attachment) {
            consumed.insert(i);
            csv::extract_attachment(attachment, received_at, &mut ev);
        }
    }
    forwarded::extract_carried(parsed, received_at, &mut ev);
    let mut all_text = String::new();
    let mut prose = String::new();
    // A feedback report's human-readable part restates its structured part.
    let is_feedback_report = parsed.report_type.as_deref() == Some("feedback-report")
        && ev.formats.contains(&Format::Arf);
    for text in &parsed.texts {
        if text.is_html {
            ev.formats.insert(Format::Html);
        }
        let body = strip_our_quoted_replies(&text.text);
        all_text.push_str(&body);
        all_text.push('\n');
        if prose.len() < MAX_TEXT_BYTES {
            prose.push_str(&prose::reporters_words(crate::truncate_at_char(
                &body,
                MAX_TEXT_BYTES,
            )));
        }
        if is_feedback_report {
            continue;
        }
        let body = forwarded::extract_inline(&body, &text.origin, received_at, &mut ev);
        let body = csv::extract_inline(&body, &text.origin, received_at, &mut ev);
        scan_text(&body, &text.origin, received_at, &mut ev);
    }
    // Plain-text attachments that are not a known format are evidence too (logs.txt).
    for (i, a) in parsed.attachments.iter().enumerate() {
        if consumed.contains(&i)
            || !(a.content_type.starts_with("text/")
                || a.extension().is_some_and(|e| e == "log" || e == "txt"))
        {
            continue;
        }
        if ev.rows.iter().any(|r| r.origin.starts_with(&a.origin)) {
            continue; // a detector already read it (X-ARF evidence, ACNS XML)
        }
        // A message saved as text (a spam trap's `trapped-message.txt`)
        // is a carried message like a pasted one.
        let origin = describe(&a.origin, a.name.as_deref());
        let text = a.text();
        // Only a text with a Received chain can carry one (a CSV of log
        // lines is not searched for header blocks).
        if text.contains("Received:") || text.contains("received:") {
            let rest = forwarded::extract_inline(&text, &origin, received_at, &mut ev);
            scan_text(&rest, &origin, received_at, &mut ev);
        } else {
            scan_text(&text, &origin, received_at, &mut ev);
        }
    }
    for c in &parsed.carried {
        if let Some(body) = &c.body {
            all_text.push_str(body);
            all_text.push('\n');
            if prose.len() < MAX_TEXT_BYTES {
                prose.push_str(crate::truncate_at_char(body, MAX_TEXT_BYTES));
                prose.push('\n');
            }
        }
    }
    if ev.formats.is_empty() || ev.formats.iter().all(|f| *f == Format::Html) {
        ev.formats.insert(Format::FreeText);
    }
    // A report that states the source itself (SpamCop's "Email from
    // 192.0.2.66 / date"), naming a hop of the carried message's chain, is
    // right over the first-outside-hop guess: the reporter knows its relays.
    let stated: BTreeSet<IpAddr> = ev
        .rows
        .iter()
        .filter(|r| r.kind != Kind::Message && r.is_offender())
        .filter_map(|r| r.source_ip)
        .collect();
    for (at, chain) in std::mem::take(&mut ev.carried_chains) {
        if let Some(ip) = chain.iter().find(|ip| stated.contains(ip)) {
            if let Some(row) = ev.rows.get_mut(at) {
                row.source_ip = Some(*ip);
            }
        }
    }
    ev.facts.is_delivery_status = parsed.report_type.as_deref() == Some("delivery-status");
    if ev.facts.is_delivery_status {
        for row in &mut ev.rows {
            if row.role == roles::Role::Source {
                row.role = roles::Role::Other;
            }
        }
    }
    mark_logging_hosts(&mut ev.rows);
    // Whatever a detector said: an address that cannot be a host on the
    // internet is never an offender.
    for row in &mut ev.rows {
        if row.role == roles::Role::Source && row.source_ip.is_some_and(|ip| !roles::is_public(ip))
        {
            row.role = roles::Role::Other;
        }
    }
    if ev.rows_dropped > 0 {
        ev.warnings.push(format!(
            "evidence: {} rows past the limit of {MAX_ROWS} were counted, not stored",
            ev.rows_dropped
        ));
    }
    if all_text.len() > MAX_TEXT_BYTES {
        ev.warnings.push(format!(
            "evidence: the text is {} bytes; the rules read its first {MAX_TEXT_BYTES}",
            all_text.len()
        ));
        let keep = crate::truncate_at_char(&all_text, MAX_TEXT_BYTES).len();
        all_text.truncate(keep);
    }
    ev.facts.text = all_text;
    let keep = crate::truncate_at_char(&prose, MAX_TEXT_BYTES).len();
    prose.truncate(keep);
    ev.facts.prose = prose;
    ev
}

/// The generic extractor: every line with an IP becomes a log row (when it
/// looks like a log line) or an IP row; every URL a URL row.
pub(super) fn scan_text(text: &str, origin: &str, received_at: DateTime<Utc>, ev: &mut Evidence) {
    let mut seen_ips = BTreeSet::new();
    let mut seen_urls = BTreeSet::new();
    let mut previous = "";
    let mut in_footer = false;
    for (n, line) in text.lines().enumerate() {
        if line.len() > 64 * 1024 || line.trim().is_empty() {
            previous = "";
            continue;
        }
        if line.trim_end() == "--" {
            // A signature: its links are the reporter's, not evidence.
            in_footer = true;
        }
        let mut facts = text::scan_text_line_after(line, previous, received_at);
        if in_footer {
            facts.urls.clear();
        }
        previous = line;
        if facts.is_log {
            ev.push(Row::from_facts(
                Kind::LogRow,
                &facts,
                line,
                format!("{origin} line {}", n + 1),
            ));
            seen_ips.extend(facts.ips.iter().copied());
            seen_urls.extend(facts.urls.iter().take(1).cloned());
        }
        for (ip, role) in facts.ips.iter().zip(&facts.roles) {
            if seen_ips.insert(*ip) {
                let mut row =
                    Row::new(Kind::Ip, format!("{origin} line {}", n + 1)).with_line(line);
                row.source_ip = Some(*ip);
                row.role = *role;
                row.occurred_at = facts.timestamp.clone();
                ev.push(row);
            }
        }
        for url in &facts.urls {
            if seen_urls.insert(url.clone()) {
                let mut row =
                    Row::new(Kind::Url, format!("{origin} line {}", n + 1)).with_line(line);
                row.url = Some(url.clone());
                row.occurred_at = facts.timestamp.clone();
                ev.push(row);
            }
        }
    }
}

/// The host that wrote a syslog line (`Dec  3 12:09:55 web01 sshd[1]: …`).
static SYSLOG_HOST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::model::pattern::regex(
        r"^\s*[A-Z][a-z]{2} {1,2}[0-9]{1,2} [0-9]{2}:[0-9]{2}:[0-9]{2} ([A-Za-z0-9][A-Za-z0-9.-]{0,62}) ",
    )
    .expect("valid regex")
});

/// The reporter's own machine in a forwarded alert: an address given on a
/// line that names the host which wrote the report's syslog lines
/// (`Server: web01 (public IP 198.51.100.14)` above `… web01 sshd[…]`), and
/// is not itself the source of any log line, is the reporter's.
fn mark_logging_hosts(rows: &mut [Row]) {
    let mut hosts = BTreeSet::new();
    let mut log_sources = BTreeSet::new();
    for row in rows.iter().filter(|r| r.kind == Kind::LogRow) {
        if let Some(host) = row
            .line
            .as_deref()
            .and_then(|l| SYSLOG_HOST.captures(l))
            .and_then(|c| c.get(1))
        {
            hosts.insert(host.as_str().to_ascii_lowercase());
        }
        log_sources.extend(row.source_ip);
    }
    if hosts.is_empty() {
        return;
    }
    for row in rows.iter_mut() {
        let (Some(ip), Some(line)) = (row.source_ip, row.line.as_deref()) else {
            continue;
        };
        if row.kind != Kind::Ip || row.role != roles::Role::Source || log_sources.contains(&ip) {
            continue;
        }
        let names_a_logging_host = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .any(|word| hosts.contains(&word.to_ascii_lowercase()));
        if names_a_logging_host {
            row.role = roles::Role::Reporter;
        }
    }
}

/// Our replies end with this marker line; a reporter who quotes one back
/// (`> …`) must not turn our examples into offenders.
pub const REPLY_MARKER: &str = "-- abuse-inbox --";

fn strip_our_quoted_replies(text: &str) -> String {
    if !text.contains(REPLY_MARKER) {
        return text.to_owned();
    }
    // Drop the quoted block that carries the marker.
    let mut out = String::with_capacity(text.len());
    let lines: Vec<&str> = text.lines().collect();
    let marker_quoted = |l: &str| l.trim_start().starts_with('>') && l.contains(REPLY_MARKER);
    let has_quoted_marker = lines.iter().any(|l| marker_quoted(l));
    for line in lines {
        if has_quoted_marker && line.trim_start().starts_with('>') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `lines` joined again without `lines[start..end]`: what a detector leaves
/// for the generic scanner after taking a block out.
fn without_lines(lines: &[&str], start: usize, end: usize) -> String {
    let mut rest = lines[..start].join("\n");
    rest.push('\n');
    rest.push_str(&lines[end..].join("\n"));
    rest
}

fn describe(origin: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{origin} ({name})"),
        None => origin.to_owned(),
    }
}

fn clip(s: &str, max: usize) -> String {
    crate::truncate_at_char(s, max).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reports_own_date_dates_yearless_stamps_when_plausible() {
        let received: DateTime<Utc> = "2027-01-01T00:10:00Z".parse().unwrap();
        let with_date = |date: &str| {
            let raw = format!("Date: {date}\r\nSubject: x\r\n\r\nbody\r\n");
            reference_time(&crate::parse::parse(raw.as_bytes()), received)
        };
        assert_eq!(
            with_date("Thu, 31 Dec 2026 23:50:00 +0000").to_rfc3339(),
            "2026-12-31T23:50:00+00:00"
        );
        // A date in the future or months old is not believed.
        assert_eq!(with_date("Fri, 1 Jan 2038 00:00:00 +0000"), received);
        assert_eq!(with_date("Mon, 1 Jun 2026 00:00:00 +0000"), received);
        assert_eq!(with_date("not a date"), received);
    }
}

//! Reports as XARF v4 documents (the XARF project's JSON abuse-report format).
//!
//! In: a stored report, its evidence rows, who we are, and the report's UUID.
//! Out: one document, with the core fields and the fields its type schema
//! asks for, each only when the report states it: the network protocol from
//! the log lines, first and last seen from the dated rows, ports and the
//! destination from the offending row, the URL of content. A field the
//! report does not state is left out, never guessed; [`unstated`] names the
//! ones a type requires, so the operator knows which documents a strict
//! XARF consumer will refuse. Pure.

use crate::evidence::{Kind, Row};
use crate::model::Report;
use serde_json::{json, Value};

/// Evidence lines carried in a document's text/plain evidence item.
const EVIDENCE_LINES: usize = 20;
/// The XARF version the documents follow (the schemas of tests/xarf/).
pub const VERSION: &str = "4.2.0";

/// Who sends the documents: `export.xarf_org`, `reply.from` and
/// `export.xarf_domain` (or the domain of `reply.from`).
pub struct Sender<'a> {
    pub org: &'a str,
    pub contact: &'a str,
    pub domain: &'a str,
}

/// A report's category and type in XARF v4, from its RSIT pair; copyright
/// without a URL is the peer-to-peer kind (an ACNS notice names an address).
fn category_type(report: &Report, rows: &[Row]) -> Option<(&'static str, &'static str)> {
    let (category, kind) = crate::classify::rsit::xarf_class_type(&report.rsit)?;
    if category == "copyright" && first_url(report, rows).is_none() {
        return Some((category, "p2p"));
    }
    Some((category, kind))
}

fn first_url<'a>(report: &'a Report, rows: &'a [Row]) -> Option<&'a str> {
    rows.iter()
        .filter(|r| r.kind == Kind::Url)
        .find_map(|r| r.url.as_deref())
        .or_else(|| report.urls.first().map(String::as_str))
}

/// The document of `report`; `None` for a report without a type XARF has, or
/// without a reporter address or anything to name as the source.
pub fn document(report: &Report, rows: &[Row], sender: &Sender, uuid: &str) -> Option<Value> {
    let (category, kind) = category_type(report, rows)?;
    // XARF's reporter is the complainant: without an address there is none.
    let reporter = report.reporter.as_deref().filter(|a| a.contains('@'))?;
    let offender = rows.iter().find(|e| e.is_offender());
    let source = offender
        .and_then(|e| e.source_ip.map(|ip| ip.to_string()))
        .or_else(|| report.ips.first().cloned())
        .or_else(|| first_url(report, rows).map(str::to_owned))?;
    let reporter_domain = crate::reply::limits::domain(reporter);
    let (first_seen, last_seen) = seen(rows);
    let mut doc = json!({
        "xarf_version": VERSION,
        "report_id": uuid,
        // When it happened: the first dated evidence, else when it was reported.
        "timestamp": first_seen.clone().unwrap_or_else(|| report.received_at.clone()),
        "reporter": {"org": reporter_domain, "contact": reporter, "domain": reporter_domain},
        "sender": {"org": sender.org, "contact": sender.contact, "domain": sender.domain},
        "source_identifier": source,
        "category": category,
        "type": kind,
    });
    let fields = doc.as_object_mut().expect("a JSON object");
    let mut put = |name: &str, value: Value| {
        fields.insert(name.to_owned(), value);
    };
    if let Some(subject) = &report.subject {
        put("description", json!(crate::truncate_at_char(subject, 1000)));
    }
    let lines: Vec<&str> = rows
        .iter()
        .filter_map(|e| e.line.as_deref())
        .take(EVIDENCE_LINES)
        .collect();
    if !lines.is_empty() {
        put(
            "evidence",
            json!([{
                "content_type": "text/plain",
                "description": "log lines from the report",
                "payload": crate::export::base64::encode(lines.join("\n").as_bytes()),
            }]),
        );
    }
    if let Some(port) = offender.and_then(|e| e.source_port) {
        put("source_port", json!(port));
    }
    match category {
        "connection" => {
            if let Some(protocol) = protocol(rows, kind == "vulnerability_scan") {
                put("protocol", json!(protocol));
            }
            if let Some(t) = &first_seen {
                put("first_seen", json!(t));
            }
            if let Some(t) = last_seen.filter(|t| Some(t) != first_seen.as_ref()) {
                put("last_seen", json!(t));
            }
            if let Some(ip) = offender.and_then(|e| e.target_ip) {
                put("destination_ip", json!(ip.to_string()));
            }
            if let Some(port) = offender.and_then(|e| e.target_port) {
                put("destination_port", json!(port));
            }
            if kind == "vulnerability_scan" {
                put("scan_type", json!("vulnerability_scan"));
            }
        }
        // Email abuse travels by SMTP; its envelope sender is not in our
        // evidence, so `smtp_from` stays unstated.
        "messaging" => put("protocol", json!("smtp")),
        "content" => {
            if let Some(url) = first_url(report, rows) {
                put("url", json!(url));
                if let Some(host) = hostname(url) {
                    put("domain", json!(host));
                }
            }
            if kind == "fraud" {
                // The schema's own value for a fraud it does not list.
                put("fraud_type", json!("other"));
            }
        }
        "infrastructure" => {
            if let Some(t) = &first_seen {
                put("first_seen", json!(t));
            }
            if kind == "botnet" {
                // What the reporter observed: the first evidence line, or
                // the feed's report, or their words.
                let evidence = offender
                    .and_then(|e| e.line.as_deref())
                    .map(|l| crate::truncate_at_char(l, 500).to_owned())
                    .or_else(|| report.feed.as_ref().map(|f| format!("reported by {f}")))
                    .or_else(|| report.subject.clone());
                if let Some(text) = evidence {
                    put("compromise_evidence", json!(text));
                }
            }
        }
        "copyright" => {
            if kind == "p2p" {
                put("p2p_protocol", json!(p2p_protocol(rows)));
                if let Some(hash) = info_hash(rows) {
                    put("swarm_info", json!({"info_hash": hash}));
                }
            } else if let Some(url) = first_url(report, rows) {
                put("infringing_url", json!(url));
            }
        }
        _ => {}
    }
    Some(doc)
}

/// The fields a document's type requires that it lacks (the report did not
/// state them), as the XARF v4.2.0 type schemas require them.
pub fn unstated(doc: &Value) -> Vec<&'static str> {
    let kind = doc["type"].as_str().unwrap_or("");
    let has_ip_source = doc["source_identifier"]
        .as_str()
        .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok());
    let required: &[&'static str] = match (doc["category"].as_str().unwrap_or(""), kind) {
        ("connection", "vulnerability_scan") => &["scan_type", "protocol", "first_seen"],
        ("connection", _) if has_ip_source => &["protocol", "first_seen", "source_port"],
        ("connection", _) => &["protocol", "first_seen"],
        ("messaging", _) => &["protocol", "smtp_from", "source_port"],
        ("content", "fraud") => &["url", "fraud_type"],
        ("content", _) => &["url"],
        ("infrastructure", "botnet") => &["compromise_evidence"],
        ("infrastructure", _) => &["compromise_method"],
        ("copyright", "p2p") => &["p2p_protocol", "swarm_info"],
        ("copyright", _) => &["infringing_url"],
        _ => &[],
    };
    required
        .iter()
        .copied()
        .filter(|f| doc.get(*f).is_none())
        .collect()
}

/// The earliest and latest time of the dated rows (RFC 3339 UTC strings,
/// which sort as times).
fn seen(rows: &[Row]) -> (Option<String>, Option<String>) {
    let mut times = rows.iter().filter_map(|r| r.occurred_at.as_deref());
    let Some(first) = times.next() else {
        return (None, None);
    };
    let (min, max) = times.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t)));
    (Some(min.to_owned()), Some(max.to_owned()))
}

/// Services that run over TCP, as log lines name them.
const TCP_WORDS: &[&str] = &[
    "tcp",
    "syn",
    "sshd",
    "ssh",
    "ssh2",
    "rdp",
    "smtp",
    "smtpd",
    "sasl",
    "http",
    "https",
    "ftp",
    "telnet",
    "imap",
    "pop3",
    "xmlrpc",
    "wp-login",
    "mysql",
    "postgresql",
    "vnc",
    "smb",
];
/// Ports of services that run over TCP only.
const TCP_PORTS: &[u16] = &[
    21, 22, 23, 25, 80, 110, 143, 443, 445, 465, 587, 993, 995, 1433, 3306, 3389, 5432, 5900, 8080,
    8443,
];

/// The transport protocol the offending rows state: a `PROTO=` field, a
/// protocol word, a TCP-only service or port. `None` when they say nothing,
/// or contradict each other (`"mixed"` where the type allows it).
fn protocol(rows: &[Row], mixed_allowed: bool) -> Option<&'static str> {
    let mut found: Option<&'static str> = None;
    for row in rows.iter().filter(|r| r.is_offender()) {
        let line = row.line.as_deref().unwrap_or("").to_ascii_lowercase();
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| !w.is_empty())
            .collect();
        let stated = if words.contains(&"udp") {
            Some("udp")
        } else if words.contains(&"icmp") {
            Some("icmp")
        } else if words.iter().any(|w| TCP_WORDS.contains(w))
            || line.contains("flags [s")
            || row.target_port.is_some_and(|p| TCP_PORTS.contains(&p))
        {
            Some("tcp")
        } else {
            None
        };
        match (found, stated) {
            (None, s) => found = s,
            (Some(a), Some(b)) if a != b => return mixed_allowed.then_some("mixed"),
            _ => {}
        }
    }
    found
}

/// The peer-to-peer network a copyright notice names; `"other"` when it
/// names none the schema lists.
fn p2p_protocol(rows: &[Row]) -> &'static str {
    for row in rows {
        let line = row.line.as_deref().unwrap_or("").to_ascii_lowercase();
        for (word, name) in [
            ("bittorrent", "bittorrent"),
            ("torrent", "bittorrent"),
            ("edonkey", "edonkey"),
            ("ed2k", "edonkey"),
            ("gnutella", "gnutella"),
            ("kademlia", "kademlia"),
        ] {
            if line.contains(word) {
                return name;
            }
        }
    }
    "other"
}

/// The BitTorrent info hash a notice names: 40 hex digits after `hash` or
/// in a `btih:` magnet link.
fn info_hash(rows: &[Row]) -> Option<String> {
    rows.iter().find_map(|row| {
        let line = row.line.as_deref()?.to_ascii_lowercase();
        let at = line.find("btih:").or_else(|| line.find("hash"))?;
        line[at..]
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| w.len() == 40 && w.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
    })
}

/// The host name of a URL when it is an ASCII name (not an address).
fn hostname(url: &str) -> Option<String> {
    let host = crate::evidence::text::url_host(url)?;
    let valid = host.contains('.')
        && host.parse::<std::net::IpAddr>().is_err()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| host.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: &str, port: Option<u16>) -> Row {
        let mut r = Row::new(Kind::LogRow, "body");
        r.source_ip = Some("192.0.2.7".parse().unwrap());
        r.target_port = port;
        r.line = Some(line.into());
        r
    }

    #[test]
    fn the_protocol_is_what_the_lines_state_or_nothing() {
        let sshd = row(
            "sshd[12]: Failed password for root from 192.0.2.7 port 4242 ssh2",
            None,
        );
        assert_eq!(protocol(std::slice::from_ref(&sshd), false), Some("tcp"));
        let nft = row(
            "IN=eth0 SRC=192.0.2.7 DST=198.51.100.1 PROTO=UDP DPT=123",
            None,
        );
        assert_eq!(protocol(std::slice::from_ref(&nft), false), Some("udp"));
        assert_eq!(
            protocol(&[row("192.0.2.7 hit us", Some(3389))], false),
            Some("tcp")
        );
        assert_eq!(protocol(&[row("192.0.2.7 hit us", Some(53))], false), None);
        assert_eq!(protocol(&[sshd.clone(), nft.clone()], false), None);
        assert_eq!(protocol(&[sshd, nft], true), Some("mixed"));
    }

    #[test]
    fn first_and_last_seen_span_the_dated_rows() {
        let mut a = row("x", None);
        a.occurred_at = Some("2026-11-30T10:05:00Z".into());
        let mut b = row("y", None);
        b.occurred_at = Some("2026-11-30T09:55:00Z".into());
        assert_eq!(
            seen(&[a, row("z", None), b]),
            (
                Some("2026-11-30T09:55:00Z".into()),
                Some("2026-11-30T10:05:00Z".into())
            )
        );
        assert_eq!(seen(&[]), (None, None));
    }

    #[test]
    fn host_names_of_urls() {
        assert_eq!(
            hostname("https://User@Login-Bank.example:8443/a?b").as_deref(),
            Some("login-bank.example")
        );
        assert_eq!(hostname("http://192.0.2.1/x"), None);
        assert_eq!(hostname("http://bücher.example/"), None);
    }
}

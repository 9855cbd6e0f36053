//! A notice's text: the template of its kind in the customer's language,
//! filled in; the reports it lists; and the CSV of the evidence about the
//! customer's own addresses. Pure.
//!
//! Placeholders of a notice template: `{tag}` (`[case #ID-TOKEN]`),
//! `{case_id}`, `{customer}` (their name), `{abuse_type}`, `{count}` (reports
//! in this notice), `{total}` (in the case), `{events}` (one line a report),
//! `{first_notice_at}`, `{answered_at}`, `{reason}` (escalation), `{note}`
//! and `{reasons}` (closed: the statement of reasons of a decision).
//!
//! Everything a reporter wrote that reaches the customer is the evidence
//! about the customer's own addresses, made visible text: no control or
//! reordering character, no spreadsheet formula, every field clipped. The
//! reporter's name and address are withheld unless the policy shares them.

use crate::evidence::Row;
use crate::model::owner::Looked;
use crate::model::{AbuseType, CaseId, NetworkSubtype, ReplyKind, Report, ReportId};
use crate::reply::{phrases, Language, Templates};

/// Report lines a notice's text lists; all of them are in the CSV.
pub const LISTED_IN_TEXT: usize = 100;
/// Evidence rows one notice's CSV holds at most.
pub const MAX_CSV_ROWS: usize = 20_000;
/// Characters of one CSV field at most (a log line).
const MAX_FIELD_CHARS: usize = 2_000;

/// A report as a notice lists it: only what is about the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub report: ReportId,
    pub received_at: String,
    pub subtype: Option<NetworkSubtype>,
    /// `None` when the policy withholds it.
    pub reporter: Option<String>,
    /// The customer's offending addresses and hosts in it.
    pub addresses: Vec<String>,
    /// Its evidence rows about those.
    pub rows: Vec<Row>,
}

/// What the store gives of `report` for `customer`: their addresses and the
/// evidence rows about them (an offender's row, or a row whose URL is on
/// one of their hosts).
pub fn listed(report: &Report, evidence: Vec<Row>, customer: &str, share_reporter: bool) -> Listed {
    let theirs: Vec<&crate::model::owner::Owner> = report
        .owners
        .iter()
        .filter(|o| o.customer.as_deref() == Some(customer))
        .collect();
    let is_theirs = |row: &Row| {
        let by_address = row.is_offender()
            && row.source_ip.is_some_and(|ip| {
                let ip = ip.to_string();
                theirs.iter().any(|o| o.ip_matches(&ip))
            });
        let by_host = row
            .url
            .as_deref()
            .and_then(crate::evidence::text::url_host)
            .is_some_and(|host| {
                theirs
                    .iter()
                    .any(|o| o.looked == Looked::Host && o.value.eq_ignore_ascii_case(host))
            });
        by_address || by_host
    };
    Listed {
        report: report.id,
        received_at: report.received_at.clone(),
        subtype: report.subtype,
        reporter: report.reporter.clone().filter(|_| share_reporter),
        addresses: theirs.iter().map(|o| o.value.clone()).collect(),
        rows: evidence.into_iter().filter(is_theirs).collect(),
    }
}

/// What a notice is about, besides the reports it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter<'a> {
    pub kind: ReplyKind,
    pub case: CaseId,
    /// `[case #ID-TOKEN]`.
    pub tag: &'a str,
    /// The customer's name as the greeting says it.
    pub customer: &'a str,
    pub language: Language,
    pub abuse_type: AbuseType,
    /// Reports in the case.
    pub total: u64,
    pub first_notice_at: Option<&'a str>,
    pub answered_at: Option<&'a str>,
    /// Why it is escalated.
    pub reason: Option<String>,
    pub note: Option<&'a str>,
    /// The decision a closed notice states its reasons for (DSA Art. 17).
    pub decided: Option<crate::model::case::Decided>,
}

/// A notice ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub subject: String,
    pub body: String,
    /// The evidence about the customer's addresses; `None` when the notice
    /// lists no report.
    pub csv: Option<String>,
}

/// Writes the notice `letter` listing `reports`.
pub fn write(templates: &Templates, letter: &Letter<'_>, reports: &[Listed]) -> Written {
    let language = letter.language;
    let label = phrases::label(language, letter.abuse_type.as_str(), None);
    let none = phrases::none_yet(language);
    let mut events: Vec<String> = reports
        .iter()
        .take(LISTED_IN_TEXT)
        .map(|r| event_line(language, letter.abuse_type, r))
        .collect();
    if reports.len() > LISTED_IN_TEXT {
        events.push(phrases::more_in_csv(
            language,
            reports.len() - LISTED_IN_TEXT,
        ));
    }
    let customer = crate::safe_text::clip(letter.customer, 120);
    let text = templates
        .text(language, letter.kind.as_str())
        .replace("{tag}", letter.tag)
        .replace("{case_id}", &letter.case.to_string())
        .replace("{customer}", &customer)
        .replace("{abuse_type}", &label)
        .replace("{count}", &reports.len().to_string())
        .replace("{total}", &letter.total.to_string())
        .replace("{events}", &events.join("\n"))
        .replace(
            "{first_notice_at}",
            &shown_time(letter.first_notice_at, none),
        )
        .replace("{answered_at}", &shown_time(letter.answered_at, none))
        .replace("{reason}", letter.reason.as_deref().unwrap_or(""))
        .replace(
            "{note}",
            &letter
                .note
                .map(|n| crate::safe_text::clip(n, 2_000))
                .unwrap_or_default(),
        )
        .replace(
            "{reasons}",
            &letter
                .decided
                .map(|d| phrases::statement_of_reasons(language, d, letter.total))
                .unwrap_or_default(),
        );
    // A part left empty (no note, no decision) leaves no gap.
    let mut text = text;
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    let mut body = crate::reply::wrap::wrap(&text, crate::reply::wrap::WIDTH);
    if !body.contains(crate::evidence::REPLY_MARKER) {
        body.push_str(&format!("\n{}\n", crate::evidence::REPLY_MARKER));
    }
    let subject = format!(
        "{} {}: {} {} ({label})",
        letter.tag,
        phrases::subject(language, letter.kind.as_str()),
        case_word(language),
        letter.case
    );
    Written {
        subject,
        body,
        csv: (!reports.is_empty()).then(|| csv(reports)),
    }
}

fn case_word(language: Language) -> &'static str {
    match language {
        Language::En => "case",
        Language::De => "Fall",
        Language::Es | Language::Pt => "caso",
        Language::Fr => "dossier",
    }
}

/// `2026-12-03 10:15 UTC` of an RFC 3339 time; `none` without one.
fn shown_time(at: Option<&str>, none: &str) -> String {
    match at.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => t.to_utc().format("%Y-%m-%d %H:%M UTC").to_string(),
        None => none.to_owned(),
    }
}

/// `- #12  2026-12-03 10:15 UTC  brute force  203.0.113.9 (from x@y)`.
fn event_line(language: Language, abuse_type: AbuseType, r: &Listed) -> String {
    let label = phrases::label(
        language,
        abuse_type.as_str(),
        r.subtype.map(NetworkSubtype::as_str),
    );
    let mut addresses: Vec<String> = r
        .addresses
        .iter()
        .take(5)
        .map(|a| crate::safe_text::clip(a, 80))
        .collect();
    if r.addresses.len() > 5 {
        addresses.push(format!("+{}", r.addresses.len() - 5));
    }
    let mut line = format!(
        "- #{}  {}  {label}  {}",
        r.report,
        shown_time(Some(&r.received_at), "-"),
        addresses.join(", ")
    );
    if let Some(reporter) = &r.reporter {
        line.push_str(&format!("  ({})", crate::safe_text::clip(reporter, 120)));
    }
    line
}

/// The CSV header: one row per event about the customer's addresses.
pub const CSV_HEADER: &str =
    "report,received_at,address,port,target,target_port,time,url,log_line\r\n";

/// The evidence of `reports` as CSV (RFC 4180: quoted fields, CRLF), at most
/// [`MAX_CSV_ROWS`] rows.
pub fn csv(reports: &[Listed]) -> String {
    let mut out = String::from(CSV_HEADER);
    let rows = reports
        .iter()
        .flat_map(|r| r.rows.iter().map(move |row| (r, row)))
        .take(MAX_CSV_ROWS);
    for (r, row) in rows {
        let fields = [
            r.report.to_string(),
            r.received_at.clone(),
            row.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            row.source_port.map(|p| p.to_string()).unwrap_or_default(),
            row.target_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            row.target_port.map(|p| p.to_string()).unwrap_or_default(),
            row.occurred_at.clone().unwrap_or_default(),
            row.url.clone().unwrap_or_default(),
            row.line.clone().unwrap_or_default(),
        ];
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&quoted.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One field: visible text, clipped, a leading formula character disarmed
/// (a spreadsheet would run `=HYPERLINK(…)`), quoted.
fn csv_field(value: &str) -> String {
    let mut text = crate::safe_text::clip(value, MAX_FIELD_CHARS);
    if text.starts_with(['=', '+', '-', '@']) && value.parse::<f64>().is_err() {
        text.insert(0, '\'');
    }
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::evidence::{Kind, Role};

    fn row(ip: &str, line: &str, role: Role) -> Row {
        Row {
            kind: Kind::LogRow,
            source_ip: Some(ip.parse().unwrap()),
            target_ip: Some("198.51.100.1".parse().unwrap()),
            source_port: Some(50_000),
            target_port: Some(22),
            occurred_at: Some("2026-12-01T10:00:00Z".into()),
            url: None,
            line: Some(line.into()),
            origin: "body".into(),
            role,
        }
    }

    fn listed_report() -> Listed {
        Listed {
            report: ReportId(7),
            received_at: "2026-12-01T10:05:00Z".into(),
            subtype: Some(NetworkSubtype::BruteForce),
            reporter: None,
            addresses: vec!["203.0.113.9".into()],
            rows: vec![
                row(
                    "203.0.113.9",
                    "sshd: Failed password \"root\"",
                    Role::Source,
                ),
                row(
                    "203.0.113.9",
                    "=HYPERLINK(\"http://evil\")\u{1b}[2J",
                    Role::Source,
                ),
            ],
        }
    }

    #[test]
    fn a_notice_lists_its_reports_and_attaches_their_evidence_made_safe() {
        let letter = Letter {
            kind: ReplyKind::Notice,
            case: CaseId(3),
            tag: "[case #3-abcdefgh]",
            customer: "Example Hosting",
            language: Language::En,
            abuse_type: AbuseType::NetworkActivity,
            total: 1,
            first_notice_at: None,
            answered_at: None,
            reason: None,
            note: None,
            decided: None,
        };
        let w = write(&Templates::builtin(), &letter, &[listed_report()]);
        assert_eq!(
            w.subject,
            "[case #3-abcdefgh] Abuse reports about your network: case 3 (network activity)"
        );
        assert!(w.body.contains("Hello Example Hosting,"), "{}", w.body);
        assert!(
            w.body
                .contains("- #7  2026-12-01 10:05 UTC  network activity, brute force  203.0.113.9"),
            "{}",
            w.body
        );
        assert!(w.body.contains("[case #3-abcdefgh]"), "{}", w.body);
        let csv = w.csv.unwrap();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER.trim_end());
        assert!(
            lines[1].ends_with(r#""sshd: Failed password ""root""""#),
            "{csv}"
        );
        assert!(
            lines[2].ends_with(r#""'=HYPERLINK(""http://evil"")\x1b[2J""#),
            "{csv}"
        );
        assert_eq!(lines.len(), 4, "two rows and the last CRLF: {csv}");
    }

    #[test]
    fn a_long_listing_is_cut_in_the_text_but_whole_in_the_csv() {
        let many: Vec<Listed> = (0..150)
            .map(|i| {
                let mut r = listed_report();
                r.report = ReportId(i);
                r
            })
            .collect();
        let letter = Letter {
            kind: ReplyKind::Digest,
            case: CaseId(3),
            tag: "[case #3-abcdefgh]",
            customer: "X",
            language: Language::De,
            abuse_type: AbuseType::NetworkActivity,
            total: 400,
            first_notice_at: Some("2026-12-01T00:00:00Z"),
            answered_at: None,
            reason: None,
            note: None,
            decided: None,
        };
        let w = write(&Templates::builtin(), &letter, &many);
        assert!(w.body.contains("… und 50 weitere"), "{}", w.body);
        assert!(w.body.contains("150 weitere"), "{}", w.body);
        assert_eq!(w.csv.unwrap().matches("\r\n").count(), 1 + 300);
    }

    #[test]
    fn every_notice_in_every_language_fits_its_lines_and_keeps_the_tag_whole() {
        use crate::reply::wrap::WIDTH;
        for language in [
            Language::En,
            Language::De,
            Language::Es,
            Language::Fr,
            Language::Pt,
        ] {
            for kind in ReplyKind::ALL.into_iter().filter(|k| k.is_notice()) {
                let letter = Letter {
                    kind,
                    case: CaseId(123_456),
                    tag: "[case #123456-abcdefgh]",
                    customer: "A Customer With A Rather Long Registered Company Name GmbH & Co. KG",
                    language,
                    abuse_type: AbuseType::NetworkActivity,
                    total: 1_000,
                    first_notice_at: Some("2026-12-01T00:00:00Z"),
                    answered_at: None,
                    reason: Some(phrases::escalated_by_silence(language, 48)),
                    note: Some("The customer removed the virtual machine."),
                    decided: Some(crate::model::case::Decided {
                        decision: crate::model::case::Decision::Disabled,
                        ground: Some(crate::model::case::Ground::Terms),
                    }),
                };
                let w = write(&Templates::builtin(), &letter, &[listed_report()]);
                for line in w.body.lines() {
                    let unbreakable = !line.trim().contains(' ');
                    assert!(
                        line.chars().count() <= WIDTH || unbreakable,
                        "{language:?} {kind}: {line:?}"
                    );
                    assert!(
                        !line.contains('{'),
                        "{language:?} {kind}: a placeholder left: {line}"
                    );
                }
                assert!(
                    w.body.contains("[case #123456-abcdefgh]") || kind == ReplyKind::CaseClosed,
                    "{language:?} {kind}: {}",
                    w.body
                );
                assert!(
                    w.subject.starts_with("[case #123456-abcdefgh] "),
                    "{}",
                    w.subject
                );
            }
        }
    }
}

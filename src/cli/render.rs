//! Output: JSON on stdout, and the tables people read, with reporters'
//! text made safe for a terminal.

use super::args::Format;
use crate::model::AuthState;
use crate::model::{RawMessage, Report};
use crate::parse::rawmail;
use crate::safe_text::{clip, visible};
use crate::store::Stats;
use std::io::Write;

pub(super) fn print_json<T: serde::Serialize>(value: &T) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")
}

pub(super) fn print_reports(reports: &[Report], format: Format) -> std::io::Result<()> {
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

pub(super) fn print_reports_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>7}  {:<19}  {:<16}  {:<11}  {:<8}  {:<10}  {:>5}  {:<22}  {:<12}  {:<28}  SUBJECT",
        "ID", "RECEIVED", "TYPE", "SUBTYPE", "STATUS", "REPLY", "CASE", "RSIT", "FEED", "REPORTER"
    )
}

pub(super) fn print_report_row(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>7}  {:<19}  {:<16}  {:<11}  {:<8}  {:<10}  {:>5}  {:<22}  {:<12}  {:<28}  {}",
        r.id.0,
        r.received_at
            .get(..19)
            .unwrap_or(&r.received_at)
            .replace('T', " "),
        r.abuse_type.as_str(),
        r.subtype.map_or("-", |s| s.as_str()),
        r.status.as_str(),
        r.reply.as_str(),
        r.case_id
            .map_or_else(|| "-".to_owned(), |c| c.0.to_string()),
        clip(&r.rsit.kind, 22),
        clip(r.feed.as_deref().unwrap_or("-"), 12),
        clip(r.reporter.as_deref().unwrap_or("-"), 28),
        clip(r.subject.as_deref().unwrap_or(""), 60),
    )
}

/// A transaction's DSN parameters as the client wrote them, decoded.
pub(super) fn dsn_line(dsn: &crate::model::Dsn) -> String {
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
pub(super) const SHOWN_EVIDENCE_PER_KIND: usize = 3;

/// `reports show` as a table: the envelope, the report's fields, why it
/// was classified, its evidence, its replies and its history, each a
/// section of its own.
pub(super) fn write_report_table(
    out: &mut impl Write,
    r: &Report,
    raw: Option<&RawMessage>,
    evidence: &[crate::evidence::Row],
    replies: &[crate::store::OutboxEntry],
    events: &[(String, String, String)],
) -> std::io::Result<()> {
    if let Some(raw) = raw {
        write_envelope(out, raw)?;
    }
    write_fields(out, r)?;
    write_owners(out, &r.owners)?;
    write_evidence(out, evidence, r.evidence_rows)?;
    write_replies(out, replies)?;
    write_history(out, events)
}

fn write_envelope(out: &mut impl Write, raw: &RawMessage) -> std::io::Result<()> {
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
    writeln!(out)
}

fn write_fields(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let none = "-".to_owned();
    let list = |v: &[String]| {
        if v.is_empty() {
            none.clone()
        } else {
            v.join(", ")
        }
    };
    let auth = match &r.auth {
        None => "not checked".to_owned(),
        Some(AuthState::Pending(_)) => "pending (the sender checks are running)".to_owned(),
        Some(AuthState::Checked(a)) => {
            let verdict = if a.authenticated {
                "authenticated"
            } else {
                "not authenticated"
            };
            format!("{verdict}: {}", a.summary)
        }
    };
    let rows: [(&str, String); 17] = [
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
        ("ownership", r.ownership.as_str().to_owned()),
    ];
    for (key, value) in rows {
        writeln!(out, "{key:>14}: {}", visible(&value))?;
    }
    if let Some(reason) = &r.reply_reason {
        writeln!(out, "{:>14}: {}", "reply_reason", visible(reason))?;
    }
    let formats: Vec<String> = r.formats.iter().map(|f| f.as_str().to_owned()).collect();
    writeln!(out, "{:>14}: {}", "formats", visible(&list(&formats)))?;
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
            writeln!(out, "  {}", visible(&reason.to_string()))?;
        }
    }
    Ok(())
}

/// Whose each offender is: `owners:` and one line each (the customer, what
/// matched, the time used); nothing when nothing was routed.
pub(super) fn write_owners(
    out: &mut impl Write,
    owners: &[crate::model::owner::Owner],
) -> std::io::Result<()> {
    if owners.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nowners (whose each offender was at the event's time):"
    )?;
    for o in owners {
        writeln!(
            out,
            "  {:<7} {:<40} {:<16} {:<32} at {} ({})",
            o.looked.as_str(),
            clip(&o.value, 40),
            clip(o.customer.as_deref().unwrap_or("-"), 16),
            visible(&o.why()),
            o.at,
            o.time_from.as_str()
        )?;
    }
    Ok(())
}

fn write_evidence(
    out: &mut impl Write,
    evidence: &[crate::evidence::Row],
    of: u64,
) -> std::io::Result<()> {
    if !evidence.is_empty() {
        writeln!(
            out,
            "\nevidence (the first of each kind, {} of {of}):",
            evidence.len()
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
    Ok(())
}

fn write_replies(
    out: &mut impl Write,
    replies: &[crate::store::OutboxEntry],
) -> std::io::Result<()> {
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
    Ok(())
}

fn write_history(out: &mut impl Write, events: &[(String, String, String)]) -> std::io::Result<()> {
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

pub(super) fn print_replies_table(replies: &[crate::store::OutboxEntry]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>6}  {:>7}  {:<10}  {:<9}  {:>3}  {:<28}  {:<19}  {:<19}  LAST ERROR",
        "ID", "REPORT", "KIND", "STATE", "TRY", "TO", "CREATED", "NEXT TRY / SENT"
    )?;
    let second = |t: &str| t.get(..19).unwrap_or(t).replace('T', " ");
    for r in replies {
        // A pending reply's next attempt; a sent one's moment.
        let when = match r.state {
            crate::model::OutboxState::Pending => r.next_attempt_at.as_deref(),
            _ => r.sent_at.as_deref(),
        };
        writeln!(
            out,
            "{:>6}  {:>7}  {:<10}  {:<9}  {:>3}  {:<28}  {:<19}  {:<19}  {}",
            r.id,
            r.report_id,
            r.kind,
            r.state,
            r.attempts,
            clip(&r.recipient, 28),
            second(&r.created_at),
            when.map_or_else(|| "-".to_owned(), second),
            clip(r.last_error.as_deref().unwrap_or(""), 240)
        )?;
    }
    Ok(())
}

pub(super) fn print_stats_table(s: &Stats) -> std::io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Envelope, OutboxState, RawId, ReplyKind, ReportId, Sender};

    fn text(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_envelope_names_the_null_sender_and_shows_terminal_controls() {
        let raw = RawMessage {
            id: RawId(3),
            envelope: Envelope {
                origin: crate::model::Origin::Smtp,
                peer_ip: Some("192.0.2.9".parse().unwrap()),
                helo: Some("mx\x1b[2J.example".into()),
                mail_from: Sender::Null,
                rcpt_to: vec!["abuse@example.com".into()],
                dsn: None,
            },
            received_at: "2026-12-03T10:00:00.000000Z".into(),
            bytes: b"Subject: hello\r\n\r\nbody\r\n".to_vec(),
            auth: None,
            claim: None,
        };
        let shown = text(|out| write_envelope(out, &raw));
        assert!(shown.contains("MAIL FROM <>"), "{shown}");
        assert!(shown.contains("subject: hello"), "{shown}");
        assert!(!shown.contains('\x1b'), "{shown:?}");
    }

    #[test]
    fn empty_sections_say_nothing_and_full_ones_have_a_title() {
        assert_eq!(text(|out| write_evidence(out, &[], 0)), "");
        assert_eq!(text(|out| write_replies(out, &[])), "");
        assert_eq!(text(|out| write_history(out, &[])), "");
        let mut row = crate::evidence::Row::new(crate::evidence::Kind::LogRow, "part 1 row 1");
        row.source_ip = Some("192.0.2.1".parse().unwrap());
        row.source_port = Some(4242);
        let shown = text(|out| write_evidence(out, &[row], 50));
        assert!(
            shown.contains("evidence (the first of each kind, 1 of 50):"),
            "{shown}"
        );
        assert!(shown.contains("192.0.2.1:4242"), "{shown}");
        let reply = crate::store::OutboxEntry {
            id: crate::model::OutboxId(1),
            report_id: ReportId(1),
            kind: ReplyKind::Ack,
            recipient: "soc@example.org".into(),
            message_id: "abuse-1.0.x@example.com".into(),
            state: OutboxState::Pending,
            attempts: 2,
            next_attempt_at: None,
            last_error: Some("relay 127.0.0.1:25: refused".into()),
            created_at: "2026-12-03T10:00:00.000000Z".into(),
            sent_at: None,
        };
        let shown = text(|out| write_replies(out, &[reply]));
        assert!(shown.starts_with("\nreplies:\n"), "{shown}");
        assert!(
            shown.contains("tries 2 (relay 127.0.0.1:25: refused)"),
            "{shown}"
        );
        let history = [(
            "2026-12-03T10:00:00.000000Z".to_owned(),
            "received".to_owned(),
            String::new(),
        )];
        let shown = text(|out| write_history(out, &history));
        assert!(
            shown.contains("history:\n  2026-12-03T10:00:00  received"),
            "{shown}"
        );
    }
}

//! ARF (RFC 5965): `multipart/report; report-type=feedback-report`, with a
//! `message/feedback-report` part and the returned message.

use super::forwarded::originating_ip;
use super::text::{self, parse_ip};
use super::{Evidence, Format, Kind, Row};
use crate::parse::{Headers, Parsed};
use chrono::{DateTime, Utc};

pub fn extract(parsed: &Parsed, received_at: DateTime<Utc>, ev: &mut Evidence) {
    let Some(part) = parsed
        .attachments
        .iter()
        .find(|a| a.content_type == "message/feedback-report")
    else {
        return;
    };
    let fields = Headers::parse_block(&part.text());
    let Some(feedback_type) = fields.get("feedback-type") else {
        ev.warnings
            .push(format!("arf: {} has no Feedback-Type", part.origin));
        return;
    };
    ev.formats.insert(Format::Arf);
    ev.facts.arf_feedback_type = Some(feedback_type.trim().to_ascii_lowercase());
    if let Some(version) = fields.get("version").map(str::trim) {
        if version != "1" && version != "0.1" {
            ev.warnings
                .push(format!("arf: unknown Version {version:?}, read as 1"));
        }
    }
    let returned = parsed.carried.first().map(|c| &c.headers);
    let source_ip = fields
        .get("source-ip")
        .and_then(parse_ip)
        .or_else(|| returned.and_then(originating_ip));
    let mut row = Row::new(Kind::Feedback, part.origin.clone());
    row.source_ip = source_ip;
    row.occurred_at = fields
        .get("arrival-date")
        .or_else(|| fields.get("received-date"))
        .and_then(|d| text::timestamp(d, received_at));
    let uris: Vec<String> = fields.all("reported-uri").flat_map(text::urls).collect();
    row.url = uris.first().cloned();
    let mut summary = Vec::new();
    for name in [
        "feedback-type",
        "user-agent",
        "original-mail-from",
        "original-rcpt-to",
        "reported-domain",
        "authentication-results",
    ] {
        if let Some(v) = fields.get(name) {
            summary.push(format!("{name}: {v}"));
        }
    }
    let row = row.with_line(&summary.join(" | "));
    ev.push(row);
    for uri in uris.into_iter().skip(1) {
        let mut row = Row::new(Kind::Url, part.origin.clone());
        row.url = Some(uri);
        ev.push(row);
    }
}

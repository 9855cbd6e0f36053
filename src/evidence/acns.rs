//! ACNS copyright notices: the `<Infringement>` XML, as an attachment or
//! between `Start ACNS XML` / `End ACNS XML` in a (PGP-signed) body.
//!
//! The XML is read by tag, not by a general XML parser: a DTD is never
//! processed and entities other than the five predefined ones are never
//! expanded (no billion laughs, no external entities). Bounded by
//! [`MAX_XML_BYTES`].

use super::text::{self, parse_ip};
use super::{Evidence, Format, Kind, Row};
use crate::parse::Parsed;
use chrono::{DateTime, Utc};
use regex::Regex;
use std::sync::LazyLock;

pub const MAX_XML_BYTES: usize = 1024 * 1024;

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)(?:\s[^>]*)?>([^<]*)</")
        .expect("valid regex")
});

pub fn extract(parsed: &Parsed, received_at: DateTime<Utc>, ev: &mut Evidence) {
    let mut sources: Vec<(String, String)> = Vec::new();
    for a in &parsed.attachments {
        if a.content_type.contains("xml") || a.extension().as_deref() == Some("xml") {
            let text = a.text();
            if text.contains("<Infringement") {
                sources.push((super::describe(&a.origin, a.name.as_deref()), text));
            }
        }
    }
    for t in &parsed.texts {
        if let Some(xml) = inline_xml(&t.text) {
            sources.push((format!("{} (ACNS XML)", t.origin), xml));
        }
    }
    for (origin, xml) in sources {
        if xml.len() > MAX_XML_BYTES {
            ev.warnings.push(format!(
                "acns: {origin} is larger than {MAX_XML_BYTES} bytes; not read"
            ));
            continue;
        }
        if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
            ev.warnings.push(format!(
                "acns: {origin} declares a DTD; it was ignored and no entity expanded"
            ));
        }
        notice(&xml, &origin, received_at, ev);
    }
}

/// The XML between the markers, with PGP dash-escaping (`- ` at line start) undone.
fn inline_xml(text: &str) -> Option<String> {
    let start = text.find("Start ACNS XML")?;
    let end = text[start..]
        .find("End ACNS XML")
        .map_or(text.len(), |e| start + e);
    let block = &text[start + "Start ACNS XML".len()..end];
    let xml: Vec<&str> = block
        .lines()
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect();
    let xml = xml.join("\n");
    xml.contains("<Infringement").then_some(xml)
}

fn notice(xml: &str, origin: &str, received_at: DateTime<Utc>, ev: &mut Evidence) {
    let mut fields: Vec<(String, String)> = Vec::new();
    for cap in TAG.captures_iter(xml) {
        let value = decode(cap[2].trim());
        if !value.is_empty() {
            fields.push((cap[1].to_ascii_lowercase(), value));
        }
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    ev.formats.insert(Format::Acns);
    ev.facts.has_acns = true;
    let mut row = Row::new(Kind::Notice, origin.to_owned());
    row.source_ip = get("ip_address").and_then(parse_ip);
    row.source_port = get("port").and_then(|p| p.parse().ok());
    row.occurred_at = get("timestamp").and_then(|t| text::timestamp(t, received_at));
    row.url = get("url").map(str::to_owned);
    let mut summary = Vec::new();
    for (label, tag) in [
        ("case", "id"),
        ("complainant", "entity"),
        ("contact", "contact"),
        ("email", "email"),
        ("title", "title"),
        ("file", "filename"),
        ("hash", "hash"),
        ("type", "type"),
    ] {
        if let Some(v) = get(tag) {
            summary.push(format!("{label}: {v}"));
        }
    }
    ev.push(row.with_line(&summary.join(" | ")));
}

/// The five predefined XML entities; nothing else is expanded (no DTD,
/// no external entity can reach us).
pub(super) fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_escaped_inline_xml_is_read() {
        let body = "-----BEGIN PGP SIGNED MESSAGE-----\n\nStart ACNS XML\n- <?xml version=\"1.0\"?>\n<Infringement xmlns=\"http://www.acns.net/ACNS\">\n<Case><ID>A1</ID></Case><Complainant><Entity>Studio &amp; Co</Entity><Email>anti-piracy@example.org</Email></Complainant>\n<Source><TimeStamp>2026-11-20T10:00:00Z</TimeStamp><IP_Address>192.0.2.77</IP_Address><Port>6881</Port></Source>\n<Content><Item><Title>Some Film</Title><FileName>some.film.mkv</FileName></Item></Content></Infringement>\nEnd ACNS XML\n";
        let xml = inline_xml(body).unwrap();
        let mut ev = Evidence::default();
        notice(&xml, "body", Utc::now(), &mut ev);
        let r = &ev.rows[0];
        assert_eq!(r.source_ip, Some("192.0.2.77".parse().unwrap()));
        assert_eq!(r.source_port, Some(6881));
        assert!(r
            .line
            .as_deref()
            .unwrap()
            .contains("complainant: Studio & Co"));
        assert!(r.line.as_deref().unwrap().contains("title: Some Film"));
    }
}

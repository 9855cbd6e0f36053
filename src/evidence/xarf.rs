//! X-ARF: v0.2 (`X-XARF: PLAIN` / `X-ARF: YES`, a YAML `report.txt` part) and
//! XARF v3/v4 JSON. Read leniently: key spellings and type names vary across
//! releases and senders.

use super::text::{self, parse_ip};
use super::{Evidence, Format, Kind, Row};
use crate::parse::{Headers, Parsed};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Largest JSON document read.
const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

pub fn extract(parsed: &Parsed, received_at: DateTime<Utc>, ev: &mut Evidence) {
    let flagged = parsed.headers.get("x-xarf").is_some() || parsed.headers.get("x-arf").is_some();
    // JSON (v3, v4): any JSON part or body that parses and carries XARF keys.
    let mut json_sources: Vec<(String, String)> = parsed
        .attachments
        .iter()
        .filter(|a| a.content_type.contains("json") || a.extension().as_deref() == Some("json"))
        .map(|a| (super::describe(&a.origin, a.name.as_deref()), a.text()))
        .collect();
    json_sources.extend(
        parsed
            .texts
            .iter()
            .filter(|t| t.text.trim_start().starts_with('{'))
            .map(|t| (t.origin.clone(), t.text.clone())),
    );
    for (origin, text) in json_sources {
        if text.len() > MAX_JSON_BYTES {
            ev.warnings.push(format!(
                "xarf: {origin} is larger than {MAX_JSON_BYTES} bytes; not read"
            ));
            continue;
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(doc) if is_xarf_json(&doc) => json_report(&doc, &origin, received_at, ev),
            Ok(_) => {}
            Err(e) if flagged => ev
                .warnings
                .push(format!("xarf: {origin} is not valid JSON: {e}")),
            Err(_) => {}
        }
    }
    // YAML (v0.2): a part with `Report-Type:` lines.
    let mut yaml_sources: Vec<(String, String)> = parsed
        .attachments
        .iter()
        .filter(|a| {
            (a.content_type.starts_with("text/") && !super::csv::looks_like_csv(a))
                || matches!(a.extension().as_deref(), Some("txt" | "yaml" | "yml"))
        })
        .map(|a| (super::describe(&a.origin, a.name.as_deref()), a.text()))
        .collect();
    yaml_sources.extend(
        parsed
            .texts
            .iter()
            .map(|t| (t.origin.clone(), t.text.clone())),
    );
    for (origin, text) in yaml_sources {
        if has_yaml_report(&text) {
            yaml_report(&text, &origin, received_at, ev);
        }
    }
}

fn has_yaml_report(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start().as_bytes();
        l.len() >= 12
            && (l[..12].eq_ignore_ascii_case(b"report-type:")
                || l[..12].eq_ignore_ascii_case(b"report_type:"))
    })
}

fn yaml_report(text: &str, origin: &str, received_at: DateTime<Utc>, ev: &mut Evidence) {
    // Flat `Key: value` YAML; quotes dropped. Start at the Report-Type block.
    let start = text
        .lines()
        .position(|l| l.trim_start().to_ascii_lowercase().starts_with("report"))
        .unwrap_or(0);
    let block: Vec<String> = text
        .lines()
        .skip(start.saturating_sub(10))
        .map(|l| l.trim().trim_start_matches("- ").to_owned())
        .map(|l| match l.split_once(':') {
            Some((k, v)) => format!("{k}: {}", v.trim().trim_matches(['"', '\''])),
            None => l,
        })
        .collect();
    let fields = Headers::parse_block(&block.join("\n"));
    let report_type = fields
        .get("report-type")
        .or_else(|| fields.get("report_type"))
        .map(str::to_owned);
    ev.formats.insert(Format::Xarf);
    for key in ["report-type", "report_type", "category", "type"] {
        if let Some(v) = fields.get(key) {
            ev.facts.xarf_types.push(v.to_ascii_lowercase());
        }
    }
    let mut row = Row::new(Kind::Feedback, origin.to_owned());
    row.source_ip = fields.get("source").and_then(parse_ip);
    row.target_port = fields
        .get("port")
        .or_else(|| fields.get("destination-port"))
        .and_then(|p| p.parse().ok());
    row.target_ip = fields
        .get("destination")
        .or_else(|| fields.get("destination-ip"))
        .and_then(parse_ip);
    row.occurred_at = fields
        .get("date")
        .and_then(|d| text::timestamp(d, received_at));
    row.url = fields
        .get("source")
        .filter(|s| s.contains("://"))
        .map(str::to_owned);
    let summary = format!(
        "x-arf report-type: {} | source: {} | source-type: {}",
        report_type.as_deref().unwrap_or("?"),
        fields.get("source").unwrap_or("?"),
        fields.get("source-type").unwrap_or("?")
    );
    ev.push(row.with_line(&summary));
}

fn is_xarf_json(doc: &Value) -> bool {
    let Some(obj) = doc.as_object() else {
        return false;
    };
    obj.keys().any(|k| {
        let k = norm(k);
        k == "xarfversion" || k == "reporterinfo" || k == "report" && obj.contains_key("Version")
    }) || (find(doc, "category").is_some() && find(doc, "sourceidentifier").is_some())
}

fn norm(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The first value under any key spelled like `key` (case, `-` and `_`
/// ignored), searched depth-first.
fn find<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    match doc {
        Value::Object(map) => map
            .iter()
            .find(|(k, _)| norm(k) == key)
            .map(|(_, v)| v)
            .or_else(|| map.values().find_map(|v| find(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find(v, key)),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn json_report(doc: &Value, origin: &str, received_at: DateTime<Utc>, ev: &mut Evidence) {
    ev.formats.insert(Format::Xarf);
    for key in ["category", "type", "reporttype", "reportclass"] {
        if let Some(v) = find(doc, key).and_then(as_text) {
            ev.facts.xarf_types.push(v.to_ascii_lowercase());
        }
    }
    let text_of = |keys: &[&str]| keys.iter().find_map(|k| find(doc, k).and_then(as_text));
    let mut row = Row::new(Kind::Feedback, origin.to_owned());
    let source = text_of(&["sourceidentifier", "sourceip", "ip", "source"]);
    row.source_ip = source.as_deref().and_then(parse_ip);
    row.url = source
        .as_deref()
        .filter(|s| s.contains("://"))
        .map(str::to_owned)
        .or_else(|| text_of(&["url"]));
    row.source_port = text_of(&["sourceport"]).and_then(|p| p.parse().ok());
    row.target_ip = text_of(&["destinationip", "destinationidentifier"])
        .as_deref()
        .and_then(parse_ip);
    row.target_port = text_of(&["destinationport", "port"]).and_then(|p| p.parse().ok());
    row.occurred_at = text_of(&["date", "reportedat", "firstseen", "occurrence", "start"])
        .and_then(|d| text::timestamp(&d, received_at));
    let summary = format!(
        "xarf category: {} | type: {} | source: {}",
        text_of(&["category", "reportclass"]).unwrap_or_else(|| "?".into()),
        text_of(&["type", "reporttype"]).unwrap_or_else(|| "?".into()),
        source.as_deref().unwrap_or("?")
    );
    ev.push(row.with_line(&summary));
    // v4 evidence[]: payloads are base64 (or plain) text of logs.
    if let Some(Value::Array(items)) = find(doc, "evidence") {
        for (i, item) in items.iter().enumerate() {
            let Some(payload) = find(item, "payload").and_then(as_text) else {
                continue;
            };
            let decoded = base64_decode(&payload)
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or(payload);
            for (n, line) in decoded.lines().enumerate() {
                let facts = text::scan_text_line(line, received_at);
                if !facts.ips.is_empty() {
                    ev.push(Row::from_facts(
                        Kind::LogRow,
                        &facts,
                        line,
                        format!("{origin} evidence[{i}] line {}", n + 1),
                    ));
                }
            }
        }
    }
}

/// Standard base64 with or without padding and line breaks; `None` if it is not base64.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_json_with_base64_evidence() {
        let doc: Value = serde_json::from_str(r#"{"xarf_version":"4.0.0","category":"abuse","type":"login_attack","source_identifier":"192.0.2.8","source_port":51000,"destination_port":22,"reported_at":"2026-11-26T07:00:00Z","evidence":[{"content_type":"text/plain","payload":"Tm92IDI2IDA3OjAwOjAwIGggc3NoZFsxXTogRmFpbGVkIHBhc3N3b3JkIGZvciByb290IGZyb20gMTkyLjAuMi44IHBvcnQgNTEwMDAgc3NoMg=="}]}"#).unwrap();
        assert!(is_xarf_json(&doc));
        let mut ev = Evidence::default();
        json_report(&doc, "xarf.json", Utc::now(), &mut ev);
        assert_eq!(ev.facts.xarf_types, ["abuse", "login_attack"]);
        assert_eq!(ev.rows[0].source_ip, Some("192.0.2.8".parse().unwrap()));
        assert_eq!(ev.rows[0].target_port, Some(22));
        assert_eq!(ev.rows[1].kind, Kind::LogRow);
        assert!(ev.rows[1]
            .line
            .as_deref()
            .unwrap()
            .contains("Failed password"));
    }
}

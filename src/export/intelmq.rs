//! Reports as IntelMQ events: the shape European CERTs exchange.
//!
//! In: a stored report and its evidence rows. Out: one event per offending
//! address and per URL, as IntelMQ's harmonization names the fields:
//! `source.*` is the offender (addresses with the `source` role only),
//! `destination.*` the victim from the same evidence row, `time.source` when
//! it happened, `time.observation` when the report arrived, the RSIT pair,
//! `raw` the evidence line in base64, the customer the offender belonged to
//! in `source.account`, and our report id and the routing in `extra.*`. Pure.

use crate::evidence::{Kind, Row};
use crate::model::Report;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// IntelMQ's time format: RFC 3339 with an explicit `+00:00` offset.
fn intelmq_time(t: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(t).ok()?;
    Some(
        t.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S%.f+00:00")
            .to_string(),
    )
}

/// The fields every event of `report` shares.
fn common(report: &Report) -> Map<String, Value> {
    let mut event = Map::new();
    let feed = report.feed.as_deref().unwrap_or("abuse-inbox");
    event.insert("feed.name".into(), json!(feed));
    event.insert(
        "classification.taxonomy".into(),
        json!(report.rsit.taxonomy),
    );
    event.insert("classification.type".into(), json!(report.rsit.kind));
    if let Some(t) = intelmq_time(&report.received_at) {
        event.insert("time.observation".into(), json!(t));
    }
    event.insert("extra.abuse_inbox_report_id".into(), json!(report.id.0));
    event.insert("extra.abuse_type".into(), json!(report.abuse_type.as_str()));
    if let Some(s) = report.subtype {
        event.insert("extra.subtype".into(), json!(s.as_str()));
    }
    event
}

/// Whose the event's offender was (`value`: the address or host as it
/// was looked up): the customer in `source.account`, what matched and
/// the time used in `extra.*`.
fn add_owner(event: &mut Map<String, Value>, report: &Report, value: &str) {
    let Some(owner) = report.owners.iter().find(|o| o.value == value) else {
        return;
    };
    if let Some(customer) = &owner.customer {
        event.insert("source.account".into(), json!(customer));
    }
    event.insert("extra.owner_match".into(), json!(owner.why()));
    event.insert("extra.owner_at".into(), json!(owner.at));
}

fn add_row_details(event: &mut Map<String, Value>, row: &Row) {
    if let Some(t) = row.occurred_at.as_deref().and_then(intelmq_time) {
        event.insert("time.source".into(), json!(t));
    }
    if let Some(line) = row.line.as_deref() {
        event.insert(
            "raw".into(),
            json!(crate::export::base64::encode(line.as_bytes())),
        );
    }
}

/// The events of one report.
pub fn events(report: &Report, rows: &[Row]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut seen_ips: BTreeSet<IpAddr> = BTreeSet::new();
    for row in rows.iter().filter(|r| r.is_offender()) {
        let Some(ip) = row.source_ip else { continue };
        if !seen_ips.insert(ip) {
            continue;
        }
        let mut event = common(report);
        event.insert("source.ip".into(), json!(ip.to_string()));
        add_owner(&mut event, report, &ip.to_string());
        if let Some(port) = row.source_port {
            event.insert("source.port".into(), json!(port));
        }
        if let Some(target) = row.target_ip {
            event.insert("destination.ip".into(), json!(target.to_string()));
        }
        if let Some(port) = row.target_port {
            event.insert("destination.port".into(), json!(port));
        }
        add_row_details(&mut event, row);
        out.push(Value::Object(event));
    }
    let mut seen_urls = BTreeSet::new();
    for row in rows.iter().filter(|r| r.kind == Kind::Url) {
        let Some(url) = row.url.as_deref() else {
            continue;
        };
        if !seen_urls.insert(url) {
            continue;
        }
        let mut event = common(report);
        event.insert("source.url".into(), json!(url));
        let host = crate::evidence::text::url_host(url).unwrap_or("");
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                event.insert("source.ip".into(), json!(ip.to_string()));
                add_owner(&mut event, report, &ip.to_string());
            }
            Err(_) if host.contains('.') && host.is_ascii() => {
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                add_owner(&mut event, report, &host);
                event.insert("source.fqdn".into(), json!(host));
            }
            Err(_) => {}
        }
        add_row_details(&mut event, row);
        out.push(Value::Object(event));
    }
    out
}

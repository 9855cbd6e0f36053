//! DMARC aggregate reports (RFC 7489 §7.2, appendix C): the XML a receiver
//! sends a domain's owner, attached as `.xml`, `.xml.gz` or `.zip` (the
//! archives are opened by [`crate::parse::archive`]).
//!
//! In: the message's attachments. Out: one feedback row per `<record>`: its source
//! address, message count, disposition and DKIM/SPF verdicts as the receiver
//! evaluated them, dated at the start of the report's window. A record that
//! passed neither DKIM nor SPF (DMARC failed) names a host that sent mail
//! as the domain without the right to: its source is an offender. A record
//! that passed is the domain's own mail: its address is listed, as `other`.
//!
//! The XML is read by tag, never by a general XML parser: no DTD, no
//! entities, nothing fetched. Bounded by [`MAX_XML_BYTES`] per document
//! and by the evidence's row limit.

use super::text::parse_ip;
use super::{roles::Role, Evidence, Format, Kind, Row};
use crate::parse::Parsed;
use chrono::{DateTime, Utc};

/// Largest aggregate report read (they run to a few megabytes at big
/// receivers).
pub const MAX_XML_BYTES: usize = 16 * 1024 * 1024;

/// What the classifier learns from the aggregate reports of a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// `<record>`s read.
    pub records: u64,
    /// Records whose mail failed DMARC (neither DKIM nor SPF passed).
    pub failing: u64,
}

/// Whether `text` is an aggregate report: a `<feedback>` document with
/// report metadata and records.
fn is_aggregate(text: &str) -> bool {
    let head = crate::truncate_at_char(text, 4096);
    head.contains("<feedback") && text.contains("<record") && head.contains("<report_metadata")
}

pub fn extract(parsed: &Parsed, ev: &mut Evidence) {
    for a in &parsed.attachments {
        let xmlish = a.content_type.contains("xml") || a.extension().as_deref() == Some("xml");
        if !xmlish {
            continue;
        }
        let origin = super::describe(&a.origin, a.name.as_deref());
        if a.bytes.len() > MAX_XML_BYTES {
            ev.warnings.push(format!(
                "dmarc: {origin} is larger than {MAX_XML_BYTES} bytes; not read"
            ));
            continue;
        }
        let text = a.text();
        if !is_aggregate(&text) {
            continue;
        }
        ev.formats.insert(Format::DmarcAggregate);
        read_report(&text, &origin, ev);
    }
}

fn read_report(xml: &str, origin: &str, ev: &mut Evidence) {
    let metadata = element(xml, "report_metadata").unwrap_or("");
    let org = element(metadata, "org_name").map(unescape);
    let begin = element(metadata, "begin")
        .and_then(|b| b.trim().parse::<i64>().ok())
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let published = element(xml, "policy_published").unwrap_or("");
    let domain = element(published, "domain").map(unescape);
    let mut summary = ev.facts.dmarc.unwrap_or_default();
    for (n, record) in elements(xml, "record").enumerate() {
        summary.records += 1;
        let row_xml = element(record, "row").unwrap_or(record);
        let evaluated = element(row_xml, "policy_evaluated").unwrap_or("");
        let verdict = |tag| element(evaluated, tag).map(|v| unescape(v).to_ascii_lowercase());
        let (dkim, spf) = (verdict("dkim"), verdict("spf"));
        let disposition = verdict("disposition");
        let count = element(row_xml, "count").and_then(|c| c.trim().parse::<u64>().ok());
        let header_from = element(record, "identifiers")
            .and_then(|ids| element(ids, "header_from"))
            .map(unescape);
        let source = element(row_xml, "source_ip").and_then(|ip| parse_ip(ip.trim()));
        let failed = dkim.as_deref() != Some("pass") && spf.as_deref() != Some("pass");
        if failed {
            summary.failing += 1;
        }
        let Some(ip) = source else {
            ev.warnings.push(format!(
                "dmarc: {origin} record {} has no readable source_ip",
                n + 1
            ));
            continue;
        };
        let shown = |v: Option<String>| v.unwrap_or_else(|| "?".to_owned());
        let line = format!(
            "source_ip={ip} count={} disposition={} dkim={} spf={} header_from={} policy_domain={} reporter={}",
            count.map_or("?".to_owned(), |c| c.to_string()),
            shown(disposition),
            shown(dkim),
            shown(spf),
            shown(header_from),
            shown(domain.clone()),
            shown(org.clone()),
        );
        let mut row =
            Row::new(Kind::Feedback, format!("{origin} dmarc record {}", n + 1)).with_line(&line);
        row.source_ip = Some(ip);
        row.occurred_at = begin.clone();
        row.role = if failed { Role::Source } else { Role::Other };
        ev.push(row);
    }
    ev.facts.dmarc = Some(summary);
}

/// The text inside the first `<tag>…</tag>` (attributes allowed, a
/// namespace prefix too).
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    elements(xml, tag).next()
}

/// The text inside each `<tag>…</tag>` in turn, not nested in each other.
fn elements<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> + 'a {
    let tag = tag.to_owned();
    let mut at = 0;
    std::iter::from_fn(move || {
        let (name, open_end) = open_tag(xml, &tag, at)?;
        let close = format!("</{name}>");
        let body_end = open_end + xml[open_end..].find(&close)?;
        at = body_end + close.len();
        Some(&xml[open_end..body_end])
    })
}

/// The next opening `<tag>`, `<tag attr…>` or `<ns:tag>` at or after
/// `from`: its name as written and where its `>` ends.
fn open_tag<'a>(xml: &'a str, tag: &str, from: usize) -> Option<(&'a str, usize)> {
    let mut at = from;
    while let Some(i) = xml.get(at..)?.find('<') {
        let start = at + i;
        let rest = &xml[start + 1..];
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.rsplit(':').next() == Some(tag) {
            let close = start + 1 + rest.find('>')?;
            if !xml[..close].ends_with('/') {
                return Some((name, close + 1));
            }
        }
        at = start + 1;
    }
    None
}

/// The five predefined entities (see `acns::decode`). One line of
/// at most 255 bytes: a stranger's value cannot break or flood a row.
fn unescape(text: &str) -> String {
    let text: String = crate::truncate_at_char(text.trim(), 255)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    super::acns::decode(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <report_metadata>
    <org_name>mail.example.net</org_name>
    <email>dmarc-reports@mail.example.net</email>
    <report_id>17</report_id>
    <date_range><begin>1764547200</begin><end>1764633599</end></date_range>
  </report_metadata>
  <policy_published><domain>shop.example.com</domain><p>reject</p></policy_published>
  <record>
    <row><source_ip>192.0.2.10</source_ip><count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>shop.example.com</header_from></identifiers>
    <auth_results><dkim><domain>shop.example.com</domain><result>pass</result></dkim></auth_results>
  </record>
  <record>
    <row><source_ip>203.0.113.77</source_ip><count>412</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>shop.example.com</header_from></identifiers>
    <auth_results><spf><domain>spoof.example</domain><result>pass</result></spf></auth_results>
  </record>
  <record><row><source_ip>not an address</source_ip><count>1</count></row></record>
</feedback>"#;

    #[test]
    fn failing_records_are_offenders_and_passing_ones_are_the_domains_own() {
        let mut ev = Evidence::default();
        read_report(REPORT, "part 1 (r.xml)", &mut ev);
        assert_eq!(
            ev.facts.dmarc,
            Some(Summary {
                records: 3,
                failing: 2
            })
        );
        assert_eq!(ev.rows.len(), 2, "{:?}", ev.rows);
        assert_eq!(ev.rows[0].role, Role::Other);
        let bad = &ev.rows[1];
        assert_eq!(bad.role, Role::Source);
        assert_eq!(bad.source_ip, Some("203.0.113.77".parse().unwrap()));
        assert_eq!(bad.occurred_at.as_deref(), Some("2025-12-01T00:00:00Z"));
        // The evaluated verdicts count, not the auth_results inside.
        assert_eq!(
            bad.line.as_deref(),
            Some("source_ip=203.0.113.77 count=412 disposition=reject dkim=fail spf=fail header_from=shop.example.com policy_domain=shop.example.com reporter=mail.example.net")
        );
        assert_eq!(ev.warnings.len(), 1, "{:?}", ev.warnings);
        assert_eq!(ev.ips(), ["203.0.113.77"]);
    }

    #[test]
    fn hostile_xml_is_read_by_tag_without_entities_or_panics() {
        for xml in [
            "<feedback><report_metadata></report_metadata><record>",
            "<feedback><report_metadata/><record><row><source_ip>192.0.2.1",
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><feedback><report_metadata/><record><row><source_ip>&a;</source_ip></row></record></feedback>",
            "<feedback><report_metadata><begin>99999999999999999999</begin></report_metadata><record><row><source_ip>192.0.2.1</source_ip><count>-1</count></row></record></feedback>",
            "<<<</record>>>><record/><record></record>",
        ] {
            let mut ev = Evidence::default();
            read_report(xml, "x", &mut ev);
            assert!(ev.rows.len() <= 1);
        }
    }
}

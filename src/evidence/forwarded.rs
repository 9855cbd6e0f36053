//! Carried messages: forwarded spam (`message/rfc822`), the returned message
//! of an ARF report, `text/rfc822-headers`, and header blocks pasted into a
//! body ("here are the full headers").

use super::text::{self, parse_ip};
use super::{Evidence, Format, Kind, Row};
use crate::parse::{Headers, Parsed};
use chrono::{DateTime, Utc};
use std::net::IpAddr;

/// The address a carried message came from: `X-Originating-IP`, else the
/// bracketed address in the topmost `Received:` that has one (the hop the
/// reporter's own server recorded).
pub fn originating_ip(headers: &Headers) -> Option<IpAddr> {
    let public = |ip: &IpAddr| super::roles::is_public(*ip);
    if let Some(ip) = headers
        .get("x-originating-ip")
        .and_then(parse_ip)
        .filter(public)
    {
        return Some(ip);
    }
    // The first hop from outside: hops inside the reporter's network are
    // passed over, never named: loopback and private addresses (a content
    // filter, an internal relay), and hosts of the reporter's own domains
    // (those of the receiving MX and of the recipients).
    let mut own: Vec<String> = headers
        .all("to")
        .chain(headers.all("cc"))
        .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|a| a.rsplit_once('@').map(|(_, d)| org_domain(d)))
        .collect();
    if let Some(by) = headers.all("received").next().and_then(by_host) {
        own.push(org_domain(&by));
    }
    own.retain(|d| d.contains('.'));
    headers.all("received").find_map(|received| {
        let from_part = received.split(" by ").next().unwrap_or(received);
        let ip = from_part
            .split('[')
            .skip(1)
            .find_map(|rest| rest.split(']').next().and_then(parse_ip))
            .filter(public)?;
        let inside = from_hosts(from_part)
            .iter()
            .any(|h| own.contains(&org_domain(h)));
        (!inside).then_some(ip)
    })
}

/// Every public address of a `Received:` chain, top first.
fn chain_ips(headers: &Headers) -> Vec<IpAddr> {
    headers
        .all("received")
        .take(64)
        .filter_map(|received| {
            let from_part = received.split(" by ").next().unwrap_or(received);
            from_part
                .split('[')
                .skip(1)
                .find_map(|rest| rest.split(']').next().and_then(parse_ip))
        })
        .filter(|ip| super::roles::is_public(*ip))
        .collect()
}

/// The host after `by` in a `Received:` value.
fn by_host(received: &str) -> Option<String> {
    let after = received
        .trim_start()
        .strip_prefix("by ")
        .or_else(|| received.split_once(" by ").map(|(_, a)| a))?;
    let host = after.split_whitespace().next()?;
    Some(
        host.trim_matches(|c: char| !c.is_alphanumeric())
            .to_ascii_lowercase(),
    )
}

/// The host names a `from` clause gives: the HELO name and the name in
/// parentheses (`from helo.example (rdns.example [192.0.2.1])`).
fn from_hosts(from_part: &str) -> Vec<String> {
    from_part
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == '[')
        .filter(|w| {
            w.contains('.') && w.chars().any(|c| c.is_ascii_alphabetic()) && !w.contains(']')
        })
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_ascii_lowercase()
        })
        .collect()
}

/// The organisation's domain of a host name: its last two labels, or three
/// under a two-letter country code's generic second level (`co.uk`).
fn org_domain(host: &str) -> String {
    let host = host
        .trim()
        .trim_end_matches('.')
        .trim_end_matches('>')
        .to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    let keep = match labels.as_slice() {
        [.., second, tld]
            if tld.len() == 2
                && matches!(
                    *second,
                    "co" | "com" | "org" | "net" | "ac" | "gov" | "edu" | "ne" | "or"
                ) =>
        {
            3
        }
        _ => 2,
    };
    labels[labels.len().saturating_sub(keep)..].join(".")
}

fn summary(headers: &Headers) -> String {
    let mut parts = Vec::new();
    for name in ["from", "subject", "date", "message-id"] {
        if let Some(v) = headers.get(name) {
            parts.push(format!("{name}: {v}"));
        }
    }
    parts.push(format!("received: {}", headers.all("received").count()));
    parts.join(" | ")
}

fn message_row(headers: &Headers, origin: String, received_at: DateTime<Utc>) -> Row {
    let mut row = Row::new(Kind::Message, origin).with_line(&summary(headers));
    row.source_ip = originating_ip(headers);
    row.occurred_at = headers
        .get("date")
        .and_then(|d| text::timestamp(d, received_at))
        .or_else(|| {
            headers
                .all("received")
                .next()
                .and_then(|r| r.rsplit(';').next())
                .and_then(|d| text::timestamp(d, received_at))
        });
    row
}

/// Words of a monitoring system's alert subject.
const ALERT_SUBJECT_WORDS: &[&str] = &[
    "alert",
    "alarm",
    "warning",
    "banned",
    "ban ",
    "detected",
    "intrusion",
    "attack",
    "brute",
    "fail2ban",
    "ossec",
    "wazuh",
    "snort",
    "suricata",
    "logwatch",
    "security event",
    "incident",
    "blocked",
    "firewall",
];
/// Local parts of the systems that send alerts.
const ALERT_SENDERS: &[&str] = &[
    "root",
    "fail2ban",
    "alert",
    "alerts",
    "monitoring",
    "nagios",
    "ossec",
    "wazuh",
    "ids",
    "firewall",
    "logwatch",
    "security",
    "cron",
    "zabbix",
    "icinga",
];

/// Whether a carried message is a security alert about an event (a
/// monitoring system's mail, forwarded), not the abusive mail itself: sent
/// by a system account or titled like an alert, and naming an address in
/// its body. Its body is then evidence to read, and it is no spam sample.
fn is_alert(c: &crate::parse::Carried) -> bool {
    let Some(body) = c.body.as_deref() else {
        return false;
    };
    let subject = c
        .headers
        .get("subject")
        .map(|s| s.to_lowercase())
        .unwrap_or_default();
    let sender = c
        .headers
        .get("from")
        .and_then(|f| {
            let address = f.rsplit('<').next().unwrap_or(f);
            address
                .split('@')
                .next()
                .map(|l| l.trim().to_ascii_lowercase())
        })
        .unwrap_or_default();
    let looks_like_alert = ALERT_SENDERS.contains(&sender.as_str())
        || ALERT_SUBJECT_WORDS.iter().any(|w| subject.contains(w));
    looks_like_alert && !text::ips_with_ports(crate::truncate_at_char(body, 64 * 1024)).is_empty()
}

pub fn extract_carried(parsed: &Parsed, received_at: DateTime<Utc>, ev: &mut Evidence) {
    for c in &parsed.carried {
        if c.headers.is_empty() {
            continue;
        }
        ev.formats.insert(Format::ForwardedMessage);
        if is_alert(c) {
            // A forwarded alert: what it says happened is the evidence.
            let body = c.body.as_deref().unwrap_or_default();
            super::scan_text(
                body,
                &format!("{} (forwarded alert)", c.origin),
                received_at,
                ev,
            );
            continue;
        }
        if c.headers.get("received").is_some() {
            ev.facts.has_full_headers = true;
        } else {
            ev.facts.has_partial_headers = true;
        }
        let at = ev.rows.len();
        ev.push(message_row(&c.headers, c.origin.clone(), received_at));
        if at < ev.rows.len() {
            ev.carried_chains.push((at, chain_ips(&c.headers)));
        }
        if let Some(body) = c.body.as_deref().filter(|b| !b.trim().is_empty()) {
            ev.facts.has_carried_body = true;
            for url in text::urls(body) {
                let mut row = Row::new(Kind::Url, format!("{} body", c.origin));
                row.url = Some(url);
                ev.push(row);
            }
        }
    }
}

/// Header names that make a pasted block look like a message's header.
const TELLING: [&str; 6] = [
    "received",
    "from",
    "subject",
    "message-id",
    "return-path",
    "date",
];

/// Finds a header block pasted into `body`, records it, and returns the body
/// without it (its relay hops are not offenders; its origin is in the row).
pub fn extract_inline(
    body: &str,
    origin: &str,
    received_at: DateTime<Utc>,
    ev: &mut Evidence,
) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let unquote = |l: &str| -> String { l.trim_start_matches(['>', ' ']).to_owned() };
    let is_header = |l: &str| {
        let l = unquote(l);
        match l.split_once(':') {
            Some((name, _)) => {
                !name.is_empty()
                    && name.len() < 40
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }
            None => false,
        }
    };
    let is_fold = |l: &str| {
        let stripped = l.trim_start_matches('>');
        stripped.starts_with([' ', '\t']) && !stripped.trim().is_empty()
    };
    let mut i = 0;
    while i < lines.len() {
        if !is_header(lines[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1;
        while end < lines.len() && (is_header(lines[end]) || is_fold(lines[end])) {
            end += 1;
        }
        let block: Vec<String> = lines[start..end].iter().map(|l| unquote(l)).collect();
        let block_text = block
            .iter()
            .zip(&lines[start..end])
            .map(|(u, l)| {
                if !is_header(l) && is_fold(l) {
                    format!(" {}", u.trim())
                } else {
                    u.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let headers = Headers::parse_block(&block_text);
        let telling = TELLING.iter().filter(|n| headers.get(n).is_some()).count();
        if end - start >= 3 && telling >= 2 && (headers.get("received").is_some() || telling >= 3) {
            ev.formats.insert(Format::InlineHeaders);
            if headers.get("received").is_some() {
                ev.facts.has_full_headers = true;
            } else {
                ev.facts.has_partial_headers = true;
            }
            ev.push(message_row(
                &headers,
                format!("{origin} (pasted headers)"),
                received_at,
            ));
            let rest = super::without_lines(&lines, start, end);
            if !lines[end..].iter().all(|l| l.trim().is_empty()) {
                ev.facts.has_carried_body = true;
            }
            return rest;
        }
        i = end;
    }
    body.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn originating_ip_comes_from_the_topmost_received_with_an_address() {
        let h = Headers::parse_block("Received: by mx.example.com (Postfix)\nReceived: from localhost [127.0.0.1] by mx.example.com\nReceived: from filter.example.com [10.1.2.3] by mx.example.com\nReceived: from gw.example.com (gw.example.com [198.51.100.9]) by mx.example.com\nReceived: from spam.example.org (spam.example.org [203.0.113.66]) by mx.example.com\nReceived: from [10.0.0.1] by spam.example.org\n");
        assert_eq!(originating_ip(&h), Some("203.0.113.66".parse().unwrap()));
    }

    #[test]
    fn pasted_headers_are_found_and_cut_out() {
        let body = "Please stop this spam, headers below.\n\n> Received: from bad.example.net (bad.example.net [192.0.2.99])\n>\tby mx.example.com with ESMTP; Tue, 24 Nov 2026 10:00:00 +0000\n> From: \"Win\" <win@bad.example.net>\n> Subject: You won\n> Message-ID: <x@bad.example.net>\n>\n> Click http://bad.example.net/win\n";
        let mut ev = Evidence::default();
        let rest = extract_inline(body, "body", Utc::now(), &mut ev);
        assert!(ev.facts.has_full_headers);
        assert_eq!(ev.rows[0].source_ip, Some("192.0.2.99".parse().unwrap()));
        assert_eq!(
            ev.rows[0].occurred_at.as_deref(),
            Some("2026-11-24T10:00:00Z")
        );
        assert!(!rest.contains("Received"), "{rest}");
        assert!(rest.contains("http://bad.example.net/win"));
    }
}

//! What a report of a given type still lacks (the abuse desk's evidence rules).
//!
//! - `web_content`: the `url`; for a video, a `timestamp` in it.
//! - `email_abuse`: `full_headers` of the offending mail (a Received chain)
//!   and its body (a feedback report's returned headers count on their own,
//!   and so do the records of a DMARC aggregate report).
//! - `network_activity`: `network_logs`: at least one log line with source,
//!   target (address or port) and time; an address alone is not enough.
//! - `copyright`: `copyright_notice`: work, location, contact, good-faith and
//!   accuracy statements, signature (an ACNS notice carries the first three);
//!   for a video at a URL, also the `timestamp` of the work in it.
//! - `unknown`: `abuse_type`.

use crate::evidence::{Evidence, Kind};
use crate::model::{AbuseType, Missing};
use regex::Regex;
use std::sync::LazyLock;

static VIDEO: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(
        r"(?i)\b(video|vídeo|vidéo|clip|stream|youtube|\.mp4|\.webm|film)\b",
    )
    .expect("valid regex")
});
static VIDEO_TIME: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)(\b[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?\b|\b[0-9]+\s*(min|minute|minuto|minuten|sec|second|segundo)s?\b|[?&]t=[0-9]+)").expect("valid regex")
});
/// A page that plays a video: the notice must say where in it the work is.
/// (A file to download — `.mkv`, `.mp4` — is the copy itself, whole.)
static VIDEO_URL: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(
        r"(?i)(youtube\.com/|youtu\.be/|vimeo\.com/|dailymotion\.com/|/watch\b|/video/|/videos/)",
    )
    .expect("valid regex")
});
static GOOD_FAITH: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(
        r"(?i)(good[- ]faith|gute[nm] glauben|buena fe|bonne foi|boa[- ]fé)",
    )
    .expect("valid regex")
});
static ACCURACY: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(
        r"(?i)(accurate|perjur|exactitude|exact[ao]s?\b|richtig und vollständig|an eides statt|parjure|perjurio|perjúrio)",
    )
    .expect("valid regex")
});
static SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?im)(/s/|^\s*signed?:|^\s*signature:|electronic signature|firma|signé|unterschrift|assinatura)").expect("valid regex")
});
/// A closing line ("Sincerely,") followed by a typed name: the signature
/// §512(c)(3)(A)(i) accepts.
static CLOSING: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?im)^\s*(sincerely|regards|best regards|kind regards|respectfully|respectfully submitted|yours (truly|faithfully|sincerely)|thank you|mit freundlichen grüßen|freundliche grüße|cordialement|bien à vous|atentamente|saludos( cordiales)?|atenciosamente|cumprimentos)[,.!]?\s*\n+\s*\p{Lu}[\p{L}.'-]+(\s+\p{Lu}[\p{L}.'-]*)+").expect("valid regex")
});
static WORK: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)(copyrighted work|copyrighted (material|content|recordings?|images?|photos?|software|films?|movies?)|sound recordings?|work(s)? (is|are|titled|called|listed|identified|described)|title:|original work|(our|my) (film|movie|song|album|book|software|photograph|photos?|image|video|game|article|artwork|recording|music|series|show)s?|registered (trade ?)?marks?|trade ?marks?|eingetragene[nr]? marke|marque déposée|marca registrada|urheberrechtlich geschützte|œuvre|obra protegida|obras? (protegidas?|originales?|originais))").expect("valid regex")
});
/// A telephone number or a postal address: contact details besides e-mail.
/// Digits are ASCII and a street name's letters ASCII or non-ASCII, as in
/// every stage's patterns: Unicode `\d` and bounded repeats of `\p{L}`
/// compile to megabytes ([`crate::model::pattern`]).
static PHONE_OR_POST: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)((phone|tel|telephone|telefon|téléphone|teléfono|telefone)\.?:?\s*\+?[0-9(][0-9\s().-]{6,}[0-9]|\+[0-9]{1,3}[\s.-]?\(?[0-9]{1,4}\)?[0-9\s.-]{5,}[0-9]|\b[0-9]{1,5}\s+[a-z .[^\x00-\x7F]]{2,40}\b(street|st\.|avenue|ave\.|road|rd\.|boulevard|blvd|suite|lane|drive|straße|strasse|weg|platz|rue|calle|avenida|rua)\b)").expect("valid regex")
});
static CONTACT: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(r"(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}").expect("valid regex")
});

/// At least one log line (or structured record) with an offending source
/// and a time. The target is the reporter's own system more often than not
/// and may be given by name (the syslog host, the web site) or not at all:
/// it is not required. A notice that gives the host and the time on lines
/// of their own ("Infected host: 192.0.2.44", "Last seen: 2026-11-30
/// 08:12 UTC"), as CERTs write them, counts too.
fn has_network_logs(ev: &Evidence) -> bool {
    let logged = ev.rows.iter().any(|r| {
        matches!(r.kind, Kind::LogRow | Kind::Feedback)
            && r.is_offender()
            && r.occurred_at.is_some()
    });
    logged || (ev.rows.iter().any(|r| r.is_offender()) && has_dated_field(&ev.facts.text))
}

/// A `Label: time` line ("Last seen: 2026-11-30 08:12:00 UTC"). The label's
/// letters after the first are ASCII or any non-ASCII character: a bounded
/// repeat of `\p{L}` compiles to 1.5 MB (`crate::model::pattern`).
fn has_dated_field(text: &str) -> bool {
    static FIELD: LazyLock<Regex> = LazyLock::new(|| {
        crate::model::pattern::regex(r"(?im)^\s*\p{L}[a-z _\-[^\x00-\x7F]]{1,30}:\s*\S")
            .expect("valid regex")
    });
    // Any reference will do: only whether a time is there matters.
    let reference = chrono::DateTime::UNIX_EPOCH;
    text.lines()
        .take(2000)
        .filter(|l| l.len() < 200 && FIELD.is_match(l))
        .any(|l| crate::evidence::text::timestamp(l, reference).is_some())
}

/// What a report of `abuse_type` with evidence `ev` still lacks.
pub fn missing(abuse_type: AbuseType, ev: &Evidence) -> Vec<Missing> {
    let text = &ev.facts.text;
    let mut out = Vec::new();
    match abuse_type {
        AbuseType::WebContent => {
            if ev.urls().is_empty() {
                out.push(Missing::Url);
            }
            if VIDEO.is_match(text) && !VIDEO_TIME.is_match(text) {
                out.push(Missing::Timestamp);
            }
        }
        AbuseType::EmailAbuse => {
            let is_feedback = ev.facts.arf_feedback_type.is_some() && ev.facts.has_full_headers;
            // A DMARC aggregate record is the receiver's own account of the
            // mail: source, count and verdicts, with no message to show.
            let dmarc_records = ev.facts.dmarc.is_some_and(|d| d.records > 0);
            if !(ev.facts.has_full_headers && (ev.facts.has_carried_body || is_feedback))
                && !dmarc_records
            {
                out.push(Missing::FullHeaders);
            }
        }
        AbuseType::NetworkActivity => {
            if !has_network_logs(ev) {
                out.push(Missing::NetworkLogs);
            }
        }
        AbuseType::Copyright => {
            // Where the infringing copy is: a URL, or for peer-to-peer the
            // address the work was shared from (with its port and time).
            let has_location = ev
                .rows
                .iter()
                .any(|r| r.kind == Kind::Notice && (r.source_ip.is_some() || r.url.is_some()))
                || !ev.urls().is_empty()
                || ev.rows.iter().any(|r| r.is_offender());
            let has_work = ev.facts.has_acns || WORK.is_match(text);
            let has_contact =
                ev.facts.has_acns || CONTACT.is_match(text) || PHONE_OR_POST.is_match(text);
            let complete = has_location
                && has_work
                && has_contact
                && GOOD_FAITH.is_match(text)
                && ACCURACY.is_match(text)
                && (SIGNATURE.is_match(text) || CLOSING.is_match(text));
            if !complete {
                out.push(Missing::CopyrightNotice);
            }
            // A file shared peer-to-peer is the work whole; a video at a URL
            // may carry it for a minute, and the notice must say which.
            let peer_to_peer = ev.facts.has_acns
                || ev
                    .rows
                    .iter()
                    .any(|r| r.kind == Kind::Notice && r.source_ip.is_some());
            if !peer_to_peer
                && ev.urls().iter().any(|u| VIDEO_URL.is_match(u))
                && !VIDEO_TIME.is_match(text)
            {
                out.push(Missing::Timestamp);
            }
        }
        AbuseType::Unknown => out.push(Missing::AbuseType),
    }
    out
}

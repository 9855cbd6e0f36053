//! Reply messages: templates filled in and built as RFC 5322 mail with lettre.
//!
//! In: a queued reply (kind, recipient, report fields) and the templates.
//! Out: the bytes to send. Every reply carries `Auto-Submitted: auto-replied`
//! (RFC 3834), `In-Reply-To`/`References` to the report's Message-ID, our own
//! Message-ID (the send's idempotency key), `[abuse #ID]` in the subject, and
//! ends with [`REPLY_MARKER`] so a reporter who quotes it back does not turn
//! our examples into evidence.

use crate::evidence::REPLY_MARKER;
use crate::reply::OUR_REPLY_HEADER;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::Message;
use std::path::Path;

const ACK: &str = include_str!("../../config/templates/ack.txt");
const NEEDS_INFO: &str = include_str!("../../config/templates/needs_info.txt");
const CONCLUDED: &str = include_str!("../../config/templates/concluded.txt");

/// The three reply texts. Placeholders: `{report_id}`, `{abuse_type}`,
/// `{subject}`, `{missing}` (needs_info), `{note}` (concluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    pub ack: String,
    pub needs_info: String,
    pub concluded: String,
}

impl Templates {
    /// The shipped texts (`config/templates/`).
    pub fn builtin() -> Templates {
        Templates {
            ack: ACK.to_owned(),
            needs_info: NEEDS_INFO.to_owned(),
            concluded: CONCLUDED.to_owned(),
        }
    }

    /// The texts of `dir`, each falling back to the built-in one when absent.
    ///
    /// # Errors
    /// A file exists but cannot be read or is not UTF-8.
    pub fn load(dir: Option<&Path>) -> Result<Templates, String> {
        let mut t = Templates::builtin();
        let Some(dir) = dir else { return Ok(t) };
        for (name, slot) in [
            ("ack.txt", &mut t.ack),
            ("needs_info.txt", &mut t.needs_info),
            ("concluded.txt", &mut t.concluded),
        ] {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => *slot = text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        Ok(t)
    }
}

/// A queued reply with what the text needs of its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub outbox_id: i64,
    pub report_id: i64,
    /// `ack`, `needs_info` or `concluded`.
    pub kind: String,
    pub recipient: String,
    /// Ours, without angle brackets.
    pub message_id: String,
    pub note: Option<String>,
    pub subject: Option<String>,
    /// The report's Message-ID, without angle brackets.
    pub in_reply_to: Option<String>,
    pub abuse_type: String,
    pub subtype: Option<String>,
    pub missing: Vec<String>,
}

/// How to send what is missing, per evidence name (DESIGN.md).
fn instructions(missing: &str) -> &'static str {
    match missing {
        "url" => "- the address (URL) of the content, for example https://www.example.com/page",
        "timestamp" => "- the position in the video where it appears, for example 01:23",
        "full_headers" => {
            "- the offending email with its full headers (all Received: lines), as an\n  attached .eml file or pasted below your message"
        }
        "network_logs" => {
            "- log lines with source and target IP addresses, ports and timestamps, one\n  event per line, for example as CSV: IP address, date-time in ISO 8601,\n  network log line:\n  192.0.2.1,2026-01-31T12:34:56Z,sshd[123]: Failed password for root from 192.0.2.1 port 4242 ssh2"
        }
        "copyright_notice" => {
            "- a complete notice: the work, where it is infringed (URL or IP address and\n  time), your contact details, a statement of good faith, a statement that\n  the notice is accurate, and your signature"
        }
        "abuse_type" => {
            "- which kind of abuse this is: content at a web address, spam or abusive\n  email, network activity (intrusion, denial of service, port scan, brute\n  force) or a copyright infringement"
        }
        _ => "- more details about the abuse",
    }
}

fn label(abuse_type: &str, subtype: Option<&str>) -> String {
    let base = abuse_type.replace('_', " ");
    match subtype {
        Some(s) => format!("{base}, {}", s.replace('_', " ")),
        None => base,
    }
}

/// The reply's subject: `[abuse #ID] <what> : <their subject>`.
fn subject(d: &Draft) -> String {
    let what = match d.kind.as_str() {
        "ack" => "Report received",
        "needs_info" => "More information needed",
        _ => "Investigation concluded",
    };
    match d.subject.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(theirs) => format!(
            "[abuse #{}] {what}: {}",
            d.report_id,
            theirs.chars().take(120).collect::<String>()
        ),
        None => format!("[abuse #{}] {what}", d.report_id),
    }
}

/// The body text of `d` from `templates`.
pub fn body(templates: &Templates, d: &Draft) -> String {
    let template = match d.kind.as_str() {
        "ack" => &templates.ack,
        "needs_info" => &templates.needs_info,
        _ => &templates.concluded,
    };
    let missing: Vec<&str> = d.missing.iter().map(|m| instructions(m)).collect();
    let mut text = template
        .replace("{report_id}", &d.report_id.to_string())
        .replace("{abuse_type}", &label(&d.abuse_type, d.subtype.as_deref()))
        .replace("{subject}", d.subject.as_deref().unwrap_or("(no subject)"))
        .replace("{missing}", &missing.join("\n"))
        .replace("{note}", d.note.as_deref().unwrap_or(""));
    if !text.contains(REPLY_MARKER) {
        text.push_str(&format!("\n{REPLY_MARKER}\n"));
    }
    text
}

/// Builds the message.
///
/// # Errors
/// An address lettre refuses (the recipient was not a valid address).
pub fn compose(templates: &Templates, from: &str, d: &Draft) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("reply.from: {e}"))?;
    let to: Mailbox = d
        .recipient
        .parse()
        .map_err(|e| format!("recipient {:?}: {e}", d.recipient))?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject(d))
        .message_id(Some(format!("<{}>", d.message_id)))
        .header(ContentType::TEXT_PLAIN);
    if let Some(id) = &d.in_reply_to {
        builder = builder
            .in_reply_to(format!("<{id}>"))
            .references(format!("<{id}>"));
    }
    let mut message = builder
        .body(body(templates, d))
        .map_err(|e| e.to_string())?;
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-replied".to_owned(),
    ));
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("X-Abuse-Inbox-Reply"),
        d.report_id.to_string(),
    ));
    debug_assert!(OUR_REPLY_HEADER.eq_ignore_ascii_case("X-Abuse-Inbox-Reply"));
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(kind: &str) -> Draft {
        Draft {
            outbox_id: 1,
            report_id: 42,
            kind: kind.into(),
            recipient: "reporter@example.net".into(),
            message_id: "abuse-42.0@abuse-inbox.localhost".into(),
            note: None,
            subject: Some("SSH attack".into()),
            in_reply_to: Some("orig@example.net".into()),
            abuse_type: "network_activity".into(),
            subtype: Some("brute_force".into()),
            missing: vec!["network_logs".into()],
        }
    }

    #[test]
    fn needs_info_lists_what_is_missing_with_the_csv_format() {
        let m = compose(
            &Templates::builtin(),
            "abuse@example.com",
            &draft("needs_info"),
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("Subject: [abuse #42] More information needed: SSH attack"),
            "{text}"
        );
        assert!(text.contains("In-Reply-To: <orig@example.net>"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(text.contains("IP address, date-time in ISO 8601"), "{text}");
        assert!(text.contains(REPLY_MARKER), "{text}");
    }

    #[test]
    fn shipped_templates_are_the_builtin_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
        assert_eq!(Templates::load(Some(&dir)).unwrap(), Templates::builtin());
    }
}

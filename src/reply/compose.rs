//! Reply messages: templates filled in and built as RFC 5322 mail with lettre.
//!
//! In: a queued reply (kind, recipient, report fields) and the templates.
//! Out: the bytes to send. Every reply carries `Auto-Submitted: auto-replied`
//! (RFC 3834), `In-Reply-To`/`References` to the report's Message-ID, our own
//! Message-ID (the send's idempotency key), `[abuse #ID]` in the subject, and
//! ends with [`REPLY_MARKER`] so a reporter who quotes it back does not turn
//! our examples into evidence.

use crate::evidence::REPLY_MARKER;
use crate::reply::{phrases, Language, OUR_REPLY_HEADER};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::Message;
use std::path::Path;

/// The shipped texts, per language: `config/templates/{kind}.txt` for
/// English, `{kind}.{language}.txt` for the others.
const BUILTIN: [(Language, [&str; 10]); 5] = [
    (
        Language::En,
        [
            include_str!("../../config/templates/ack.txt"),
            include_str!("../../config/templates/needs_info.txt"),
            include_str!("../../config/templates/concluded.txt"),
            include_str!("../../config/templates/not_ours.txt"),
            include_str!("../../config/templates/too_old.txt"),
            include_str!("../../config/templates/notice.txt"),
            include_str!("../../config/templates/digest.txt"),
            include_str!("../../config/templates/reminder.txt"),
            include_str!("../../config/templates/escalation.txt"),
            include_str!("../../config/templates/case_closed.txt"),
        ],
    ),
    (
        Language::De,
        [
            include_str!("../../config/templates/ack.de.txt"),
            include_str!("../../config/templates/needs_info.de.txt"),
            include_str!("../../config/templates/concluded.de.txt"),
            include_str!("../../config/templates/not_ours.de.txt"),
            include_str!("../../config/templates/too_old.de.txt"),
            include_str!("../../config/templates/notice.de.txt"),
            include_str!("../../config/templates/digest.de.txt"),
            include_str!("../../config/templates/reminder.de.txt"),
            include_str!("../../config/templates/escalation.de.txt"),
            include_str!("../../config/templates/case_closed.de.txt"),
        ],
    ),
    (
        Language::Es,
        [
            include_str!("../../config/templates/ack.es.txt"),
            include_str!("../../config/templates/needs_info.es.txt"),
            include_str!("../../config/templates/concluded.es.txt"),
            include_str!("../../config/templates/not_ours.es.txt"),
            include_str!("../../config/templates/too_old.es.txt"),
            include_str!("../../config/templates/notice.es.txt"),
            include_str!("../../config/templates/digest.es.txt"),
            include_str!("../../config/templates/reminder.es.txt"),
            include_str!("../../config/templates/escalation.es.txt"),
            include_str!("../../config/templates/case_closed.es.txt"),
        ],
    ),
    (
        Language::Fr,
        [
            include_str!("../../config/templates/ack.fr.txt"),
            include_str!("../../config/templates/needs_info.fr.txt"),
            include_str!("../../config/templates/concluded.fr.txt"),
            include_str!("../../config/templates/not_ours.fr.txt"),
            include_str!("../../config/templates/too_old.fr.txt"),
            include_str!("../../config/templates/notice.fr.txt"),
            include_str!("../../config/templates/digest.fr.txt"),
            include_str!("../../config/templates/reminder.fr.txt"),
            include_str!("../../config/templates/escalation.fr.txt"),
            include_str!("../../config/templates/case_closed.fr.txt"),
        ],
    ),
    (
        Language::Pt,
        [
            include_str!("../../config/templates/ack.pt.txt"),
            include_str!("../../config/templates/needs_info.pt.txt"),
            include_str!("../../config/templates/concluded.pt.txt"),
            include_str!("../../config/templates/not_ours.pt.txt"),
            include_str!("../../config/templates/too_old.pt.txt"),
            include_str!("../../config/templates/notice.pt.txt"),
            include_str!("../../config/templates/digest.pt.txt"),
            include_str!("../../config/templates/reminder.pt.txt"),
            include_str!("../../config/templates/escalation.pt.txt"),
            include_str!("../../config/templates/case_closed.pt.txt"),
        ],
    ),
];

/// The reply and notice kinds, in the order of [`BUILTIN`]'s texts.
const KINDS: [&str; 10] = [
    "ack",
    "needs_info",
    "concluded",
    "not_ours",
    "too_old",
    "notice",
    "digest",
    "reminder",
    "escalation",
    "case_closed",
];

/// The reply texts (to reporters) and notice texts (to customers) in each
/// language. Placeholders of a reply: `{tag}` (the report's subject tag
/// with its follow-up token), `{report_id}`, `{abuse_type}`, `{subject}`,
/// `{missing}` (needs_info), `{note}` (concluded). Those of a notice are
/// listed in [`crate::notices::compose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    /// (language, kind) → text.
    texts: std::collections::BTreeMap<(Language, &'static str), String>,
}

impl Templates {
    /// The shipped texts (`config/templates/`).
    pub fn builtin() -> Templates {
        let texts = BUILTIN
            .iter()
            .flat_map(|(language, texts)| {
                KINDS
                    .iter()
                    .zip(texts)
                    .map(|(kind, text)| ((*language, *kind), (*text).to_owned()))
            })
            .collect();
        Templates { texts }
    }

    /// The texts of `dir` (same file names as `config/templates/`), each
    /// falling back to the built-in one when absent.
    ///
    /// # Errors
    /// A file exists but cannot be read or is not UTF-8.
    pub fn load(dir: Option<&Path>) -> Result<Templates, String> {
        let mut t = Templates::builtin();
        let Some(dir) = dir else { return Ok(t) };
        for ((language, kind), slot) in &mut t.texts {
            let name = match language {
                Language::En => format!("{kind}.txt"),
                other => format!("{kind}.{}.txt", other.as_str()),
            };
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => *slot = text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        Ok(t)
    }

    /// The text of `kind` in `language`.
    pub fn text(&self, language: Language, kind: &str) -> &str {
        let kind = KINDS
            .into_iter()
            .find(|k| *k == kind)
            .unwrap_or("concluded");
        self.texts.get(&(language, kind)).map_or("", String::as_str)
    }
}

/// A queued reply with what the text needs of its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub outbox_id: crate::model::OutboxId,
    pub report_id: crate::model::ReportId,
    pub kind: crate::model::ReplyKind,
    pub recipient: String,
    /// Ours, without angle brackets.
    pub message_id: String,
    pub note: Option<String>,
    pub subject: Option<String>,
    /// The report's Message-ID, without angle brackets.
    pub in_reply_to: Option<String>,
    pub abuse_type: crate::model::AbuseType,
    pub subtype: Option<crate::model::NetworkSubtype>,
    pub missing: Vec<crate::model::Missing>,
    /// The reporter's language: the reply is written in it.
    pub language: Language,
    /// A notice to a customer: written when it was queued.
    pub prepared: Option<Prepared>,
}

/// A notice's text and CSV, as written when it was queued
/// ([`crate::notices::compose`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub case_id: crate::model::CaseId,
    pub subject: String,
    pub body: String,
    /// The evidence about the customer's addresses (`evidence.csv`).
    pub csv: Option<String>,
}

/// Characters of the reporter's subject a reply quotes, at most.
pub const QUOTED_SUBJECT_CHARS: usize = 80;

/// The reporter's subject as a reply may quote it: one line, no control or
/// reordering characters, runs of white space made one space, at most
/// [`QUOTED_SUBJECT_CHARS`] characters. Nothing else a reporter wrote goes
/// into a reply: whatever we mail under our name, a stranger must not be
/// able to choose.
pub fn quoted_subject(subject: Option<&str>) -> Option<String> {
    let words: Vec<&str> = subject?
        .split(|c: char| c.is_whitespace() || crate::safe_text::is_unsafe(c))
        .filter(|w| !w.is_empty())
        .collect();
    let line = words.join(" ");
    if line.is_empty() {
        return None;
    }
    if line.chars().count() <= QUOTED_SUBJECT_CHARS {
        return Some(line);
    }
    let mut cut: String = line.chars().take(QUOTED_SUBJECT_CHARS - 1).collect();
    cut.push('…');
    Some(cut)
}

/// The report's tag: `[abuse #ID-TOKEN]`, with the token of our Message-ID
/// (replies queued before tokens existed: `[abuse #ID]`).
fn tag(d: &Draft) -> String {
    let domain = d.message_id.rsplit('@').next().unwrap_or("");
    match super::token::claim_in_message_id(&d.message_id, domain).and_then(|c| c.token) {
        Some(token) => format!("[abuse #{}-{token}]", d.report_id),
        None => format!("[abuse #{}]", d.report_id),
    }
}

/// The reply's subject: `[abuse #ID-TOKEN] <what>: <their subject, quoted>`.
fn subject(d: &Draft) -> String {
    let what = if completes_the_report(d) {
        phrases::completed_subject(d.language)
    } else {
        phrases::subject(d.language, d.kind.as_str())
    };
    let tag = tag(d);
    match quoted_subject(d.subject.as_deref()) {
        Some(theirs) => format!("{tag} {what}: {theirs}"),
        None => format!("{tag} {what}"),
    }
}

/// The reporter's Message-ID when it is one (no space or control, a sane
/// length): a reply refers to it, and refers to nothing else.
fn referable(id: &str) -> Option<&str> {
    (id.len() <= 250
        && id.contains('@')
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>' || crate::safe_text::is_unsafe(c)))
    .then_some(id)
}

/// The note an ack queued by a merged follow-up carries: its text then
/// says the follow-up completed the report.
pub const FOLLOW_UP_NOTE: &str = "follow-up completed the report";

/// Whether `d` is the ack of a follow-up that made its report complete.
fn completes_the_report(d: &Draft) -> bool {
    d.kind == crate::model::ReplyKind::Ack && d.note.as_deref() == Some(FOLLOW_UP_NOTE)
}

/// The body text of `d` from `templates`, in the reporter's language.
pub fn body(templates: &Templates, d: &Draft) -> String {
    let missing: Vec<&str> = d
        .missing
        .iter()
        .map(|m| phrases::instruction(d.language, *m))
        .collect();
    let label = phrases::label(
        d.language,
        d.abuse_type.as_str(),
        d.subtype.map(crate::model::NetworkSubtype::as_str),
    );
    let mut text = templates
        .text(d.language, d.kind.as_str())
        .replace("{tag}", &tag(d))
        .replace("{report_id}", &d.report_id.to_string())
        .replace("{abuse_type}", &label)
        .replace(
            "{subject}",
            &quoted_subject(d.subject.as_deref()).unwrap_or_else(|| "(no subject)".into()),
        )
        .replace("{missing}", &missing.join("\n"))
        .replace("{note}", d.note.as_deref().unwrap_or(""));
    if completes_the_report(d) {
        // After the greeting: the report is complete thanks to them.
        let sentence = phrases::follow_up_added(d.language, d.report_id.0);
        // The greeting's next line ("thank you…", lower case after its
        // comma) now follows a sentence: it starts a sentence of its own.
        let (head, rest) = match text.find("\n\n") {
            Some(at) => text.split_at(at + 2),
            None => ("", text.as_str()),
        };
        let mut chars = rest.chars();
        let rest = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
            None => String::new(),
        };
        text = format!("{head}{sentence}\n\n{rest}");
    }
    let mut text = super::wrap::wrap(&text, super::wrap::WIDTH);
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
    if let Some(p) = &d.prepared {
        return notice(from, to, d, p);
    }
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject(d))
        .message_id(Some(format!("<{}>", d.message_id)))
        // A MIME message says so (RFC 2045 §4): without it strict readers
        // show the quoted-printable body raw.
        .header(lettre::message::header::MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN);

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
    // The reporter's Message-ID verbatim, UTF-8 included (RFC 6532): an
    // RFC 2047 encoded word there would break threading.
    if let Some(id) = d.in_reply_to.as_deref().and_then(referable) {
        for name in ["In-Reply-To", "References"] {
            headers.insert_raw(HeaderValue::dangerous_new_pre_encoded(
                HeaderName::new_from_ascii_str(name),
                format!("<{id}>"),
                format!("<{id}>"),
            ));
        }
    }
    Ok(message)
}

/// A notice to a customer: its text, and its CSV as an attachment.
fn notice(from: Mailbox, to: Mailbox, d: &Draft, p: &Prepared) -> Result<Message, String> {
    use lettre::message::{Attachment, MultiPart, SinglePart};
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(p.body.clone());
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(p.subject.clone())
        .message_id(Some(format!("<{}>", d.message_id)))
        .header(lettre::message::header::MIME_VERSION_1_0);
    let mut message =
        match &p.csv {
            None => builder.singlepart(text),
            Some(csv) => {
                let csv_type =
                    ContentType::parse("text/csv; charset=utf-8").map_err(|e| e.to_string())?;
                builder.multipart(MultiPart::mixed().singlepart(text).singlepart(
                    Attachment::new("evidence.csv".to_owned()).body(csv.clone(), csv_type),
                ))
            }
        }
        .map_err(|e| e.to_string())?;
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".to_owned(),
    ));
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("X-Abuse-Inbox-Reply"),
        format!("case {}", p.case_id),
    ));
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(kind: &str) -> Draft {
        Draft {
            outbox_id: crate::model::OutboxId(1),
            report_id: crate::model::ReportId(42),
            kind: crate::model::ReplyKind::parse(kind).expect("a reply kind"),
            recipient: "reporter@example.net".into(),
            message_id: "abuse-42.0@abuse-inbox.localhost".into(),
            note: None,
            subject: Some("SSH attack".into()),
            in_reply_to: Some("orig@example.net".into()),
            abuse_type: crate::model::AbuseType::NetworkActivity,
            subtype: Some(crate::model::NetworkSubtype::BruteForce),
            missing: vec![crate::model::Missing::NetworkLogs],
            language: Language::En,
            prepared: None,
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
        assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");
        assert!(
            text.contains("Content-Type: text/plain; charset=utf-8"),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(text.contains("IP address, date-time in ISO 8601"), "{text}");
        assert!(text.contains(REPLY_MARKER), "{text}");
    }

    #[test]
    fn every_body_line_fits_and_the_tag_to_keep_is_whole() {
        let mut d = draft("needs_info");
        d.report_id = crate::model::ReportId(123_456_789);
        d.message_id = "abuse-123456789.0.3f9a0c1de2b4@abuse-inbox.localhost".into();
        d.subject =
            Some("Wiederholte SSH-Anmeldeversuche von mehreren Adressen aus Ihrem Netz".repeat(2));
        d.missing = vec![
            crate::model::Missing::NetworkLogs,
            crate::model::Missing::FullHeaders,
        ];
        for language in [
            Language::En,
            Language::De,
            Language::Fr,
            Language::Es,
            Language::Pt,
        ] {
            d.language = language;
            for kind in KINDS {
                d.kind = crate::model::ReplyKind::parse(kind).unwrap();
                if d.kind.is_notice() {
                    continue; // crate::notices::compose writes those
                }
                let text = body(&Templates::builtin(), &d);
                for line in text.lines() {
                    let unbreakable = !line.trim().contains(' ');
                    assert!(
                        line.chars().count() <= super::super::wrap::WIDTH || unbreakable,
                        "{language:?} {kind}: {line:?}"
                    );
                }
                if kind != "concluded" {
                    assert!(
                        text.contains("\"[abuse #123456789-"),
                        "{language:?} {kind}: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_german_reporter_is_answered_in_german() {
        let mut d = draft("needs_info");
        d.language = Language::De;
        let text = body(&Templates::builtin(), &d);
        assert!(
            text.contains("Meldung #42 (Netzwerkaktivität, Brute Force)"),
            "{text}"
        );
        assert!(
            text.contains("- Logzeilen mit Quell- und Ziel-IP-Adressen"),
            "{text}"
        );
        assert!(text.contains("[abuse #42]"), "{text}");
        assert!(text.contains(REPLY_MARKER), "{text}");
        assert_eq!(subject(&d), "[abuse #42] Weitere Angaben nötig: SSH attack");
    }

    #[test]
    fn a_reply_reflects_one_short_clean_line_of_the_subject_and_nothing_else() {
        let mut d = draft("ack");
        let forged = format!(
            "Hello\r\n\r\nYour account is closed, call +1 555\r\n-- \r\nAbuse team\x1b[2J{}",
            "x".repeat(5_000_000)
        );
        d.subject = Some(forged);
        d.in_reply_to = Some("a b@example.net>\r\nBcc: victim@example.org".into());
        let m = compose(&Templates::builtin(), "abuse@example.com", &d).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.len() < 4096, "{} bytes", text.len());
        assert!(!text.contains('\x1b'));
        assert!(!text.contains("Bcc:"), "{text}");
        assert!(!text.contains("\n-- \r\nAbuse team"), "{text}");
        let quoted = quoted_subject(d.subject.as_deref()).unwrap();
        assert_eq!(quoted.chars().count(), QUOTED_SUBJECT_CHARS);
        assert!(quoted.starts_with("Hello Your account is closed, call +1 555 -- Abuse team"));
        assert_eq!(quoted_subject(Some(" \r\n\t")), None);
    }

    #[test]
    fn an_ack_after_a_follow_up_says_the_report_is_now_complete() {
        let mut d = draft("ack");
        d.note = Some(FOLLOW_UP_NOTE.into());
        let text = body(&Templates::builtin(), &d);
        assert!(
            text.starts_with("Hello,\n\nWe have added your additional information to report #42"),
            "{text}"
        );
        // What followed the greeting starts a sentence now, in every language.
        assert!(text.contains(".\n\nThank you for your report."), "{text}");
        assert!(!text.contains("\n\nthank you"), "{text}");
        for language in [
            crate::reply::Language::De,
            crate::reply::Language::Es,
            crate::reply::Language::Fr,
            crate::reply::Language::Pt,
        ] {
            d.language = language;
            let text = body(&Templates::builtin(), &d);
            let after = text.split("\n\n").nth(2).unwrap_or_default();
            assert!(
                after.chars().next().is_some_and(char::is_uppercase),
                "{language:?}: {text}"
            );
        }
        d.language = crate::reply::Language::En;
        // Its own subject: not the first ack's "Report received".
        let message = compose(&Templates::builtin(), "abuse@example.com", &d).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("] Report complete"), "{text}");
        d.note = None;
        assert!(!body(&Templates::builtin(), &d).contains("added your additional"));
        let message = compose(&Templates::builtin(), "abuse@example.com", &d).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("] Report received"), "{text}");
    }

    #[test]
    fn a_utf8_message_id_is_referred_to_verbatim() {
        let mut d = draft("ack");
        d.in_reply_to = Some("utf8-1@münchen.example".into());
        let m = compose(&Templates::builtin(), "abuse@example.com", &d).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("In-Reply-To: <utf8-1@münchen.example>"),
            "{text}"
        );
    }

    #[test]
    fn shipped_templates_are_the_builtin_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
        assert_eq!(Templates::load(Some(&dir)).unwrap(), Templates::builtin());
    }
}

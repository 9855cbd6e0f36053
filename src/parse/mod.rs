//! MIME parsing: raw bytes in, the parts later stages read out.
//!
//! In: a raw message. Out: [`Parsed`], borrowing from the raw bytes where it
//! can. Built on mail-parser 0.11, which decodes charsets, quoted-printable,
//! base64 and RFC 2047 words. Pure: no I/O, never panics on input; what cannot
//! be parsed becomes a warning, and the message still yields a report.

use mail_parser::{Message, MessageParser};

/// What the pipeline needs of a message.
#[derive(Debug, Default)]
pub struct Parsed {
    pub message_id: Option<String>,
    /// The `From:` address (first one), lowercased domain kept as sent.
    pub from: Option<String>,
    pub subject: Option<String>,
    pub warnings: Vec<String>,
}

/// Parses `raw`. A message mail-parser cannot read at all still gives a
/// [`Parsed`], with a warning and no fields.
pub fn parse(raw: &[u8]) -> Parsed {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Parsed {
            warnings: vec!["mime: message could not be parsed".to_owned()],
            ..Parsed::default()
        };
    };
    from_message(&message)
}

fn from_message(message: &Message<'_>) -> Parsed {
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty());
    let subject = message.subject().map(|s| s.trim().to_owned());
    Parsed {
        message_id: message.message_id().map(str::to_owned),
        from,
        subject,
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_subject_is_decoded() {
        let raw = b"From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.de>\r\nSubject: =?ISO-8859-1?Q?Besch=F6rde?=\r\nMessage-ID: <a@b>\r\n\r\nx\r\n";
        let p = parse(raw);
        assert_eq!(p.subject.as_deref(), Some("Beschörde"));
        assert_eq!(p.from.as_deref(), Some("juergen@example.de"));
        assert_eq!(p.message_id.as_deref(), Some("a@b"));
    }

    #[test]
    fn garbage_gives_an_empty_parse_not_a_panic() {
        let p = parse(b"\x00\xff\xfe garbage");
        assert!(p.subject.is_none());
    }
}

//! A cheap look at the top-level header block of raw message bytes.
//!
//! In: the bytes of a message. Out: a header's unfolded value, the body offset.
//! Used where a full MIME parse would be wasted work: the dedup key at commit
//! time and the `Return-Path:` of `ingest`. Never panics, never allocates more
//! than the value it returns.

/// Byte offset where the body starts (after the first empty line), or the
/// length of `raw` when there is no body.
pub fn body_offset(raw: &[u8]) -> usize {
    let mut at = 0;
    while at < raw.len() {
        let end = memchr::memchr(b'\n', &raw[at..]).map_or(raw.len(), |i| at + i + 1);
        let line = &raw[at..end];
        if line == b"\r\n" || line == b"\n" {
            return end;
        }
        at = end;
    }
    raw.len()
}

/// The unfolded value of the first top-level header called `name`
/// (case-insensitive), trimmed; `None` if absent.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let head = &raw[..body_offset(raw)];
    let mut lines = head.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
        {
            continue;
        }
        let mut value = String::from_utf8_lossy(line[colon + 1..].trim_ascii()).into_owned();
        while let Some(next) =
            lines.next_if(|l| l.first().is_some_and(|b| *b == b' ' || *b == b'\t'))
        {
            value.push(' ');
            value.push_str(&String::from_utf8_lossy(next.trim_ascii()));
        }
        return Some(value.trim().to_owned());
    }
    None
}

/// The Message-ID without angle brackets, if the message has a non-empty one.
pub fn message_id(raw: &[u8]) -> Option<String> {
    let value = header(raw, "message-id")?;
    let id = value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// The envelope sender an MTA recorded in `Return-Path:` (`<>` is the null
/// sender); unknown when there is no such header.
pub fn return_path(raw: &[u8]) -> crate::model::Sender {
    use crate::model::Sender;
    match header(raw, "return-path") {
        None => Sender::Unknown,
        Some(value) => {
            let addr = value
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim();
            if addr.is_empty() {
                Sender::Null
            } else {
                Sender::Address(addr.to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Return-Path: <>\r\nSubject: a\r\n  folded\r\nMessage-ID:\r\n <x@y>\r\n\r\nbody\r\nMessage-ID: <not@header>\r\n";

    #[test]
    fn finds_folded_headers_case_insensitively() {
        assert_eq!(header(MSG, "subject").as_deref(), Some("a folded"));
        assert_eq!(header(MSG, "RETURN-PATH").as_deref(), Some("<>"));
        assert_eq!(message_id(MSG).as_deref(), Some("x@y"));
        assert_eq!(header(MSG, "to"), None);
    }

    #[test]
    fn body_headers_are_not_headers() {
        let raw = b"Subject: a\n\nMessage-ID: <b@c>\n";
        assert_eq!(message_id(raw), None);
        assert_eq!(&raw[body_offset(raw)..], b"Message-ID: <b@c>\n");
    }

    #[test]
    fn garbage_is_harmless() {
        assert_eq!(header(b"", "subject"), None);
        assert_eq!(header(b"\xff\xfe:\x00", "subject"), None);
        assert_eq!(body_offset(b"no newline at all"), 17);
    }
}

//! A cheap look at the top-level header block of raw message bytes.
//!
//! In: the bytes of a message. Out: a header's unfolded value, the body
//! offset, and the message's dedup key (what counts as "the same message").
//! Used where a full MIME parse would be wasted work: the dedup key at commit
//! time and the `Return-Path:` of `ingest`. Never panics, never allocates more
//! than the value it returns. (The store keeps the key in
//! `raw_messages.dedup_key`; its first migration's comment still names the
//! function's old place, `store::raw`.)

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

/// What makes two deliveries "the same message" (DESIGN rule 5): the
/// Message-ID plus the body when there is a Message-ID (so a copy that took
/// another relay path, with other `Received:` lines, still matches), else the
/// exact bytes.
pub fn dedup_key(raw: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    match message_id(raw) {
        Some(id) => {
            hash.update(b"mid\0");
            hash.update(id.as_bytes());
            hash.update(b"\0");
            hash.update(&raw[body_offset(raw)..]);
        }
        None => {
            hash.update(b"raw\0");
            hash.update(raw);
        }
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Return-Path: <>\r\nSubject: a\r\n  folded\r\nMessage-ID:\r\n <x@y>\r\n\r\nbody\r\nMessage-ID: <not@header>\r\n";

    #[test]
    fn the_same_message_by_another_path_has_the_same_key() {
        let a = b"Received: from a\r\nMessage-ID: <m1@example.net>\r\n\r\nbody\r\n";
        let b =
            b"Received: from b\r\nReceived: from c\r\nMessage-ID: <m1@example.net>\r\n\r\nbody\r\n";
        assert_eq!(dedup_key(a), dedup_key(b));
        let other_body = b"Received: from a\r\nMessage-ID: <m1@example.net>\r\n\r\nother\r\n";
        assert_ne!(dedup_key(a), dedup_key(other_body));
        // Without a Message-ID only the exact bytes are the same message.
        let c = b"Received: from a\r\n\r\nbody\r\n";
        let d = b"Received: from b\r\n\r\nbody\r\n";
        assert_ne!(dedup_key(c), dedup_key(d));
        assert_eq!(dedup_key(c), dedup_key(c));
    }

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

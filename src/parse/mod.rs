//! MIME parsing: raw bytes in, the parts later stages read out.
//!
//! In: a raw message. Out: [`Parsed`]: decoded headers, text bodies (HTML
//! reduced to text), attachments with their type and name, and attached or
//! returned messages; the files of a zip attachment are attachments too.
//! Built on mail-parser 0.11, which decodes charsets, quoted-printable,
//! base64 and RFC 2047 words. Pure: no I/O, never panics on
//! input, bounded by [`MAX_PARTS`], [`MAX_DEPTH`] and [`MAX_DECODED_BYTES`];
//! what cannot be parsed or is cut becomes a warning.

mod archive;
mod html;
pub mod rawmail;

pub use html::html_to_text;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// MIME parts looked at per message (nested messages included).
pub const MAX_PARTS: usize = 500;
/// Attached messages inside attached messages, at most.
pub const MAX_DEPTH: usize = 4;
/// Decoded bytes kept from all parts together.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// `Content-Type: multipart/…` or `message/…` headers looked at before
/// mail-parser builds its tree: a message with more is cut before the next
/// one. Each nesting level needs one, so this bounds the depth of the tree
/// mail-parser builds (and drops recursively) whatever the message says.
pub const MAX_CONTAINERS: usize = 256;

/// A header as sent: lowercase name, unfolded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A header block: of the message itself, or of one it carries.
#[derive(Debug, Clone, Default)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a plain `Name: value` block (folded lines joined), as found in
    /// `message/feedback-report` parts and headers pasted into a body. Stops
    /// at the first empty line.
    pub fn parse_block(text: &str) -> Headers {
        let mut out: Vec<Header> = Vec::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                if out.is_empty() {
                    continue;
                }
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.value.push(' ');
                    last.value.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim();
                if !name.is_empty() && !name.contains(' ') {
                    out.push(Header {
                        name: name.to_ascii_lowercase(),
                        value: value.trim().to_owned(),
                    });
                }
            }
        }
        Headers(out)
    }
}

/// Decoded text, and where it came from.
#[derive(Debug, Clone)]
pub struct Text {
    pub origin: String,
    pub text: String,
    /// Reduced from HTML.
    pub is_html: bool,
}

/// A non-text part (or a text part that is data, such as CSV or XML).
#[derive(Debug, Clone)]
pub struct Attachment {
    pub origin: String,
    /// Lowercase `type/subtype`.
    pub content_type: String,
    pub name: Option<String>,
    pub bytes: Vec<u8>,
}

impl Attachment {
    /// The file name's extension, lowercased.
    pub fn extension(&self) -> Option<String> {
        let name = self.name.as_deref()?;
        let (_, ext) = name.rsplit_once('.')?;
        Some(ext.to_ascii_lowercase())
    }

    pub fn text(&self) -> String {
        let bytes = self
            .bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&self.bytes);
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// A message carried inside the report: `message/rfc822` (forwarded spam, the
/// returned message of an ARF report) or `text/rfc822-headers`.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    pub origin: String,
    pub headers: Headers,
    /// The header block as text, for the evidence row.
    pub header_text: String,
    pub body: Option<String>,
}

/// What the pipeline needs of a message.
#[derive(Debug, Default)]
pub struct Parsed {
    pub message_id: Option<String>,
    /// The first `From:` address.
    pub from: Option<String>,
    pub subject: Option<String>,
    pub headers: Headers,
    /// `multipart/report; report-type=…` of the top-level message, lowercase.
    pub report_type: Option<String>,
    pub texts: Vec<Text>,
    pub attachments: Vec<Attachment>,
    pub carried: Vec<Carried>,
    pub warnings: Vec<String>,
}

/// Parses `raw`. A message mail-parser cannot read at all still gives a
/// [`Parsed`], with a warning and the raw text as its body.
pub fn parse(raw: &[u8]) -> Parsed {
    let mut warnings = Vec::new();
    let raw = match nth_container_header(raw, MAX_CONTAINERS) {
        Some(cut) => {
            warnings.push(format!(
                "mime: more than {MAX_CONTAINERS} multipart or message parts; the message was read up to byte {cut}"
            ));
            &raw[..cut]
        }
        None => raw,
    };
    let mut parsed = parse_within(raw);
    warnings.append(&mut parsed.warnings);
    parsed.warnings = warnings;
    parsed
}

/// Where the `(n+1)`-th `Content-Type: multipart/…` or `message/…` header
/// line starts, if there is one. One linear pass; folded values are followed.
/// A line's header name is read as mail-parser reads it: every byte before
/// the colon that is not white space, in any case, so `Content-Type :`,
/// `Content -Type:` and ` content-type:` all count.
fn nth_container_header(raw: &[u8], n: usize) -> Option<usize> {
    let mut seen = 0;
    let mut at = 0;
    while at < raw.len() {
        let end = memchr::memchr(b'\n', &raw[at..]).map_or(raw.len(), |i| at + i + 1);
        let line = &raw[at..end];
        if let Some(value_at) = content_type_value(line) {
            // The value, possibly on the next (folded) lines.
            let mut value = &raw[at + value_at..];
            loop {
                let skip = value
                    .iter()
                    .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                    .count();
                if skip == 0 {
                    break;
                }
                value = &value[skip..];
            }
            let starts = |prefix: &[u8]| {
                value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix)
            };
            if starts(b"multipart/") || starts(b"message/") {
                seen += 1;
                if seen > n {
                    return Some(at);
                }
            }
        }
        at = end;
    }
    None
}

/// Where the value starts when `line` is a `Content-Type` header line, read
/// as mail-parser reads header names.
fn content_type_value(line: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"content-type";
    let mut matched = 0;
    for (i, &b) in line.iter().enumerate() {
        match b {
            b':' if matched == 0 => {} // mail-parser skips colons before a name
            b':' => return (matched == NAME.len()).then_some(i + 1),
            b'\n' => return None,
            b if b.is_ascii_whitespace() => {}
            b => {
                if matched == NAME.len() || !b.eq_ignore_ascii_case(&NAME[matched]) {
                    return None;
                }
                matched += 1;
            }
        }
    }
    None
}

fn parse_within(raw: &[u8]) -> Parsed {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Parsed {
            texts: vec![Text {
                origin: "raw".into(),
                text: String::from_utf8_lossy(raw).into_owned(),
                is_html: false,
            }],
            warnings: vec!["mime: message could not be parsed; its raw text was used".to_owned()],
            ..Parsed::default()
        };
    };
    let mut parsed = Parsed {
        message_id: message.message_id().map(str::to_owned),
        from: message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty()),
        subject: message.subject().map(|s| s.trim().to_owned()),
        headers: headers_of(&message),
        report_type: message
            .content_type()
            .filter(|ct| {
                ct.ctype().eq_ignore_ascii_case("multipart")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            })
            .and_then(|ct| ct.attribute("report-type"))
            .map(str::to_ascii_lowercase),
        ..Parsed::default()
    };
    let mut walk = Walk {
        parts: 0,
        bytes: 0,
        eml_files: 0,
    };
    walk.message(&message, "", 0, &mut parsed);
    // The files of zip and gzip attachments are read like attachments of their own,
    // within one budget of inflated bytes for all archives of the message.
    let mut unpacked = Vec::new();
    let mut inflate_budget = archive::MAX_TOTAL_BYTES;
    for zip in parsed.attachments.iter().filter(|a| archive::is_zip(a)) {
        unpacked.extend(archive::expand(
            zip,
            &mut inflate_budget,
            &mut parsed.warnings,
        ));
    }
    for gz in parsed.attachments.iter().filter(|a| archive::is_gzip(a)) {
        unpacked.extend(archive::gunzip(
            gz,
            &mut inflate_budget,
            &mut parsed.warnings,
        ));
    }
    parsed.attachments.extend(unpacked);
    parsed
}

/// Raw header lines of a parsed message, decoded by mail-parser where it can.
fn headers_of(message: &Message<'_>) -> Headers {
    Headers(
        message
            .headers_raw()
            .map(|(name, value)| Header {
                name: name.to_ascii_lowercase(),
                value: unfold(value),
            })
            .collect(),
    )
}

fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, line) in value.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i > 0 {
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            out.push_str(line.trim());
        }
    }
    out.trim().to_owned()
}

struct Walk {
    parts: usize,
    bytes: usize,
    /// Attached `.eml` files read as messages so far.
    eml_files: usize,
}

/// Attached mail files (`.eml`) read as carried messages, per message.
const MAX_EML_FILES: usize = 8;

/// Whether an attachment is a mail file: an `.eml` (Outlook and webmail
/// send them as `application/octet-stream`), or a `.msg` that is really
/// RFC 5322 text (a header line first).
fn is_mail_file(name: Option<&str>, bytes: &[u8]) -> bool {
    let Some(ext) = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
    else {
        return false;
    };
    let starts_with_header = || {
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        first.iter().position(|b| *b == b':').is_some_and(|colon| {
            colon > 0
                && colon < 40
                && first[..colon]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        })
    };
    ext == "eml" || (ext == "msg" && starts_with_header())
}

impl Walk {
    fn message(&mut self, message: &Message<'_>, prefix: &str, depth: usize, out: &mut Parsed) {
        for (index, part) in message.parts.iter().enumerate() {
            self.parts += 1;
            if self.parts > MAX_PARTS {
                out.warnings.push(format!(
                    "mime: more than {MAX_PARTS} parts; the rest were skipped"
                ));
                return;
            }
            let origin = if prefix.is_empty() {
                format!("part {index}")
            } else {
                format!("{prefix}.{index}")
            };
            let content_type = part
                .content_type()
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase()
                })
                .unwrap_or_else(|| "text/plain".to_owned());
            let name = part.attachment_name().map(str::to_owned);
            let size = part.len();
            if self.bytes + size > MAX_DECODED_BYTES {
                out.warnings.push(format!(
                    "mime: {origin} skipped, over {MAX_DECODED_BYTES} decoded bytes in all"
                ));
                continue;
            }
            self.bytes += size;
            if part.is_encoding_problem {
                out.warnings.push(format!(
                    "mime: {origin} ({content_type}) could not be decoded cleanly"
                ));
            }
            let is_data = is_data_type(&content_type, name.as_deref());
            match &part.body {
                PartType::Multipart(_) => {}
                PartType::Text(text) if content_type == "text/rfc822-headers" => {
                    out.carried.push(carried_headers(&origin, text));
                }
                PartType::Text(text) if !is_data && name.is_none() => {
                    out.texts.push(Text {
                        origin,
                        text: text.to_string(),
                        is_html: false,
                    });
                }
                PartType::Html(html) if name.is_none() => {
                    out.texts.push(Text {
                        origin,
                        text: html_to_text(html),
                        is_html: true,
                    });
                }
                PartType::Text(text) | PartType::Html(text) => {
                    out.attachments.push(Attachment {
                        origin,
                        content_type,
                        name,
                        bytes: text.as_bytes().to_vec(),
                    });
                }
                PartType::Binary(bytes) | PartType::InlineBinary(bytes)
                    if is_mail_file(name.as_deref(), bytes)
                        && self.eml_files < MAX_EML_FILES
                        && depth < MAX_DEPTH =>
                {
                    self.eml_files += 1;
                    // The same budget as the whole message: containers are
                    // counted before mail-parser builds anything.
                    let bytes = match nth_container_header(bytes, MAX_CONTAINERS) {
                        Some(cut) => {
                            out.warnings.push(format!(
                                "mime: {origin} has more than {MAX_CONTAINERS} multipart or message parts; read up to byte {cut}"
                            ));
                            &bytes[..cut]
                        }
                        None => &bytes[..],
                    };
                    match MessageParser::default().parse(bytes) {
                        Some(inner) => self.carried(&inner, &origin, depth, out),
                        None => out
                            .carried
                            .push(carried_headers(&origin, &String::from_utf8_lossy(bytes))),
                    }
                }
                PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                    if content_type == "message/rfc822" || content_type == "message/global" {
                        // Undecodable as a message: keep its headers at least.
                        out.carried
                            .push(carried_headers(&origin, &String::from_utf8_lossy(bytes)));
                    } else {
                        out.attachments.push(Attachment {
                            origin,
                            content_type,
                            name,
                            bytes: bytes.to_vec(),
                        });
                    }
                }
                PartType::Message(inner) => self.carried(inner, &origin, depth, out),
            }
        }
    }

    /// A message inside the report (forwarded, returned, attached as a
    /// file): its headers and body, and its own parts.
    fn carried(&mut self, inner: &Message<'_>, origin: &str, depth: usize, out: &mut Parsed) {
        if depth + 1 > MAX_DEPTH {
            out.warnings.push(format!(
                "mime: {origin} nested deeper than {MAX_DEPTH}; skipped"
            ));
            return;
        }
        let body = inner
            .body_text(0)
            .map(|t| t.into_owned())
            .or_else(|| inner.body_html(0).map(|h| html_to_text(&h)));
        let header_text = String::from_utf8_lossy(
            inner
                .raw_message
                .get(..inner.root_part().raw_body_offset() as usize)
                .unwrap_or_default(),
        )
        .into_owned();
        out.carried.push(Carried {
            origin: origin.to_owned(),
            headers: headers_of(inner),
            header_text,
            body,
        });
        // Its attachments (a CSV inside a forwarded report) count too.
        let mut sub = Parsed::default();
        self.message(inner, origin, depth + 1, &mut sub);
        out.attachments.extend(sub.attachments);
        out.carried.extend(sub.carried);
        out.warnings.extend(sub.warnings);
    }
}

fn carried_headers(origin: &str, text: &str) -> Carried {
    let head = text.split("\n\n").next().unwrap_or(text);
    let head = head.split("\r\n\r\n").next().unwrap_or(head);
    Carried {
        origin: origin.to_owned(),
        headers: Headers::parse_block(head),
        header_text: head.to_owned(),
        body: None,
    }
}

/// Text parts that are data to parse, not prose to read.
fn is_data_type(content_type: &str, name: Option<&str>) -> bool {
    let ext = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        content_type,
        "text/csv"
            | "text/comma-separated-values"
            | "text/tab-separated-values"
            | "text/xml"
            | "application/xml"
    ) || matches!(
        ext.as_deref(),
        Some("csv" | "tsv" | "xml" | "json" | "yaml" | "yml")
    )
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
        assert_eq!(p.texts.len(), 1);
    }

    #[test]
    fn container_headers_past_the_budget_cut_the_message() {
        let mut raw = b"Subject: deep\r\nContent-Type: message/rfc822\r\n\r\n".to_vec();
        for _ in 0..MAX_CONTAINERS + 10 {
            raw.extend_from_slice(b"Content-Type:\r\n message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: inner\r\n\r\nbody\r\n");
        let cut = nth_container_header(&raw, MAX_CONTAINERS).expect("over the budget");
        assert!(cut < raw.len());
        assert_eq!(nth_container_header(&raw[..cut], MAX_CONTAINERS), None);
        let p = parse(&raw);
        assert_eq!(p.subject.as_deref(), Some("deep"));
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("multipart or message parts")),
            "{:?}",
            p.warnings
        );
        // Text/plain headers do not count.
        let flat = b"Content-Type: text/plain\r\n\r\nContent-Type: multipart/mixed\r\n";
        assert_eq!(nth_container_header(flat, 1), None);
        assert_eq!(nth_container_header(flat, 0), Some(28));
    }

    #[test]
    fn container_headers_are_counted_as_the_parser_reads_their_names() {
        for spelling in [
            "Content-Type :",
            "Content -Type:",
            "content-type:",
            " CONTENT-TYPE:",
            ":Content-Type:",
            "Content-\tType\t:",
        ] {
            let line = format!("{spelling} message/rfc822\r\n\r\n");
            let raw: Vec<u8> = line.repeat(MAX_CONTAINERS + 1).into_bytes();
            assert!(
                nth_container_header(&raw, MAX_CONTAINERS).is_some(),
                "{spelling:?} not counted"
            );
        }
        for other in [
            "Content-Typed: message/rfc822",
            "X-Content-Type: message/rfc822",
        ] {
            let raw = format!("{other}\r\n").repeat(MAX_CONTAINERS + 1);
            assert_eq!(
                nth_container_header(raw.as_bytes(), MAX_CONTAINERS),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn garbage_gives_a_parse_not_a_panic() {
        let p = parse(b"\x00\xff\xfe garbage");
        assert!(p.subject.is_none());
    }

    #[test]
    fn header_blocks_unfold_and_stop_at_the_blank_line() {
        let h = Headers::parse_block(
            "\nFeedback-Type: abuse\nSource-IP: 192.0.2.1\nReceived: from a\n\tby b\n\nBody: no\n",
        );
        assert_eq!(h.get("feedback-type"), Some("abuse"));
        assert_eq!(h.get("Received"), Some("from a by b"));
        assert_eq!(h.get("body"), None);
    }
}

//! Text from reporters, made safe to show people.
//!
//! In: any string (subjects, Message-IDs, URLs, log fields). Out: the same
//! text with every character a terminal, a log viewer or a spreadsheet would
//! act on written out visibly: C0 and C1 controls and DEL (`\x1b`, `\r`,
//! `\u{85}`), line and paragraph separators, and the bidirectional overrides
//! that reorder what a reader sees. Printable text, any script, is kept.
//! JSON output needs none of this (it escapes exactly); everything an
//! operator reads as text goes through here.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` changes how a terminal or viewer shows the text around it.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line / paragraph separator
            | '\u{200e}' | '\u{200f}' // left-to-right / right-to-left mark
            | '\u{202a}'..='\u{202e}' // embeddings and overrides
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{061c}' // Arabic letter mark
        )
}

/// `s` with every unsafe character escaped; borrowed when there is none.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// `s` made visible and cut to `max` characters (an ellipsis marks the cut).
pub fn clip(s: &str, max: usize) -> String {
    let shown = visible(s);
    if shown.chars().count() <= max {
        return shown.into_owned();
    }
    let mut cut: String = shown.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The log writer: stderr, with each event made one visible line.
///
/// tracing's formatter writes an event in one `write_all` call ending in a
/// newline; a field holding `\r` or ESC would otherwise forge lines or
/// drive the terminal of whoever tails the log. In JSON logs the formatter
/// already escapes C0 controls; the rest (DEL, C1, separators, overrides)
/// become `\uXXXX` escapes, which leave the JSON value the same.
#[derive(Debug, Clone, Copy)]
pub struct SafeStderr {
    pub json: bool,
}

impl std::io::Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (text.as_ref(), ""),
        };
        let line = if self.json {
            json_escaped(body)
        } else {
            visible(body)
        };
        let mut err = std::io::stderr().lock();
        err.write_all(line.as_bytes())?;
        err.write_all(end.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SafeStderr {
    type Writer = SafeStderr;

    fn make_writer(&'a self) -> SafeStderr {
        *self
    }
}

/// Unsafe characters that a JSON encoder left raw, as `\uXXXX` escapes.
fn json_escaped(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            // Every unsafe character is in the Basic Multilingual Plane.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_separators_and_overrides_are_escaped_and_text_is_kept() {
        assert_eq!(visible("Grüße, 攻撃 report"), "Grüße, 攻撃 report");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
        assert_eq!(
            visible("a\r\nstatus: resolved\x1b]0;t\x07\u{85}\u{202e}z\u{7f}"),
            "a\\r\\nstatus: resolved\\x1b]0;t\\x07\\u{85}\\u{202e}z\\x7f"
        );
        assert_eq!(clip("ab\x1bcdef", 6), "ab\\x1…");
    }

    #[test]
    fn json_log_lines_keep_their_value_and_lose_raw_controls() {
        let line = serde_json::json!({ "subject": "a\u{85}b\u{202e}c\u{7f}" }).to_string();
        let escaped = json_escaped(&line);
        assert!(!escaped.chars().any(is_unsafe), "{escaped}");
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back["subject"], "a\u{85}b\u{202e}c\u{7f}");
    }
}

//! mbox: messages one after another, each opened by a `From ` line
//! (`From sender Thu Dec  3 10:00:00 2026`). Read as mboxrd, which also
//! reads mboxo: a body line `>From `, `>>From `, … loses one `>`. A
//! `From ` line opens a message only after an empty line (or at the start)
//! and when it looks like one (a sender and a date), so a writer that did
//! not quote a body's "From here on…" does not cut the message there. LF or
//! CRLF; no line, and no message, is held past the size limit.

use super::{Found, Item};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::io::BufRead;

/// Reads the messages of an mbox, in order.
pub struct Reader<R> {
    input: R,
    max_bytes: u64,
    /// The line read ahead: the `From ` line of the next message.
    next_from: Option<(Vec<u8>, u64)>,
    line: u64,
    number: u64,
    started: bool,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    /// Messages of at most `max_bytes` (larger ones are skipped, named).
    pub fn new(input: R, max_bytes: u64) -> Reader<R> {
        Reader {
            input,
            max_bytes,
            next_from: None,
            line: 0,
            number: 0,
            started: false,
            done: false,
        }
    }

    /// The next line into `buf` (its end kept), at most `max_bytes + 2`
    /// bytes of it: the rest of a longer line is read and dropped. `false`
    /// at the end of the input.
    fn read_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        buf.clear();
        let cap = usize::try_from(self.max_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(2);
        let mut any = false;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, end) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = cap.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..take.min(room)]);
            self.input.consume(take);
            if end {
                break;
            }
        }
        if any {
            self.line += 1;
        }
        Ok(any)
    }
}

/// Whether `line` opens a message: `From `, a sender, and a date.
fn is_from_line(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"From ") else {
        return false;
    };
    let text = String::from_utf8_lossy(rest);
    let words: Vec<&str> = text.split_whitespace().collect();
    words.len() >= 3
        && words[1..].iter().any(|w| {
            let year = w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit());
            let time = w.len() >= 5
                && w.as_bytes()[2] == b':'
                && w.bytes().all(|b| b.is_ascii_digit() || b == b':');
            year || time
        })
}

/// The time a `From ` line gives (asctime, UTC), if it parses.
fn from_line_time(line: &[u8]) -> Option<DateTime<Utc>> {
    let text = String::from_utf8_lossy(line.strip_prefix(b"From ")?);
    let words: Vec<&str> = text.split_whitespace().skip(1).collect();
    // `Thu Dec 3 10:00:00 2026`, perhaps with a zone after.
    let date = words.get(..5)?.join(" ");
    NaiveDateTime::parse_from_str(&date, "%a %b %d %H:%M:%S %Y")
        .ok()
        .map(|t| t.and_utc())
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// `>From `, `>>From `, …: the line without its first `>`.
fn unquoted(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|b| **b == b'>').count();
    if quotes > 0 && line[quotes..].starts_with(b"From ") {
        &line[1..]
    } else {
        line
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = std::io::Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        if !self.started {
            self.started = true;
            // The first line that is not empty opens the first message.
            loop {
                match self.read_line(&mut buf) {
                    Err(e) => return Some(Err(e)),
                    Ok(false) => {
                        self.done = true;
                        return None;
                    }
                    Ok(true) if buf.trim_ascii().is_empty() => continue,
                    Ok(true) if is_from_line(&buf) => {
                        self.next_from = Some((buf.clone(), self.line));
                        break;
                    }
                    Ok(true) => {
                        self.done = true;
                        return Some(Ok(Item::Skipped {
                            place: format!("line {}", self.line),
                            reason: "not an mbox: it does not start with a \"From \" line".into(),
                        }));
                    }
                }
            }
        }
        let (from, from_at) = self.next_from.take()?;
        self.number += 1;
        let place = format!("message {} (line {from_at})", self.number);
        let mut bytes: Vec<u8> = Vec::new();
        let mut oversized = false;
        let mut previous_blank = false;
        // The blank line before the next `From ` belongs to the format.
        let mut held_blank: Option<Vec<u8>> = None;
        loop {
            match self.read_line(&mut buf) {
                Err(e) => return Some(Err(e)),
                Ok(false) => {
                    self.done = true;
                    break;
                }
                Ok(true) => {}
            }
            if previous_blank && is_from_line(&buf) {
                self.next_from = Some((buf.clone(), self.line));
                break;
            }
            if let Some(blank) = held_blank.take() {
                bytes.extend_from_slice(&blank);
            }
            previous_blank = is_blank(&buf);
            if previous_blank {
                held_blank = Some(buf.clone());
                continue;
            }
            if !oversized {
                bytes.extend_from_slice(unquoted(&buf));
                if bytes.len() as u64 > self.max_bytes {
                    oversized = true;
                    bytes = Vec::new();
                }
            }
        }
        if oversized {
            return Some(Ok(Item::Skipped {
                place,
                reason: format!("more than smtp.max_message_bytes ({})", self.max_bytes),
            }));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Some(Ok(Item::Skipped {
                place,
                reason: "empty".into(),
            }));
        }
        Some(Ok(Item::Message(Found {
            bytes,
            arrived: from_line_time(&from),
            place,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(text: &str, max: u64) -> Vec<Item> {
        Reader::new(text.as_bytes(), max)
            .map(Result::unwrap)
            .collect()
    }

    fn body(item: &Item) -> String {
        match item {
            Item::Message(f) => String::from_utf8(f.bytes.clone()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_split_at_from_lines_after_a_blank_line_and_unquote_one_level() {
        let text = "From a@example.com Thu Dec  3 10:00:00 2026\n\
                    Subject: one\n\
                    \n\
                    >From the start, quoted (mboxrd).\n\
                    >>From twice quoted.\n\
                    From here on the writer did not quote, but no blank line precedes it.\n\
                    \n\
                    From the blank line above: not a date, so not a separator\n\
                    \n\
                    From b@example.com Fri Dec  4 11:30:00 2026\n\
                    Subject: two\n\
                    \n\
                    last\n";
        let got = messages(text, 10_000);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            body(&got[0]),
            "Subject: one\n\nFrom the start, quoted (mboxrd).\n>From twice quoted.\n\
             From here on the writer did not quote, but no blank line precedes it.\n\n\
             From the blank line above: not a date, so not a separator\n"
        );
        assert_eq!(body(&got[1]), "Subject: two\n\nlast\n");
        let Item::Message(first) = &got[0] else {
            panic!()
        };
        assert_eq!(
            first.arrived.unwrap().to_rfc3339(),
            "2026-12-03T10:00:00+00:00"
        );
        assert_eq!(first.place, "message 1 (line 1)");
    }

    #[test]
    fn crlf_oversized_and_not_an_mbox() {
        let text = "From a@x.example Thu Dec  3 10:00:00 2026\r\nSubject: big\r\n\r\n0123456789012345678901234567890123456789\r\n\r\n\
                    From b@x.example Thu Dec  3 10:01:00 2026\r\nSubject: small\r\n\r\nok\r\n";
        let got = messages(text, 40);
        assert!(
            matches!(&got[0], Item::Skipped { reason, .. } if reason.contains("more than")),
            "{got:?}"
        );
        assert_eq!(body(&got[1]), "Subject: small\r\n\r\nok\r\n");
        let not = messages("Subject: hello\n\nbody\n", 1000);
        assert!(
            matches!(&not[..], [Item::Skipped { reason, .. }] if reason.contains("not an mbox"))
        );
        assert!(messages("", 1000).is_empty());
        // A line with no end, longer than the limit, is not held whole.
        let long = format!(
            "From a@x.example Thu Dec  3 10:00:00 2026\nSubject: x\n\n{}",
            "y".repeat(100_000)
        );
        let got = messages(&long, 1000);
        assert!(matches!(&got[..], [Item::Skipped { .. }]), "{got:?}");
    }
}

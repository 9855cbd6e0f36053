//! Line wrapping for reply bodies: lines of at most [`WIDTH`] characters
//! (RFC 5322 §2.1.1 asks for 78), broken only at spaces, and never inside a
//! span a reporter must copy whole: a `"…"` quotation or a `[…]` tag such
//! as `"[abuse #12-3f9a0c1d]"`. A word longer than the line (a URL) stands
//! alone on its line, unbroken.

/// Characters per line a reply aims for.
pub const WIDTH: usize = 76;

/// `text` with every line longer than `width` wrapped. Continuation lines
/// keep the line's indentation, and a list item's (`- `) text stays aligned.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width.max(1));
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if line.chars().count() <= width {
            out.push_str(line);
        } else {
            wrap_line(line, width, &mut out);
        }
    }
    out
}

fn wrap_line(line: &str, width: usize, out: &mut String) {
    let indent_len = line.len() - line.trim_start_matches(' ').len();
    let (indent, body) = line.split_at(indent_len);
    let hanging = if body.starts_with("- ") || body.starts_with("* ") {
        format!("{indent}  ")
    } else {
        indent.to_owned()
    };
    let mut current = indent.to_owned();
    let mut current_len = indent.chars().count();
    let mut empty = true;
    for unit in units(body) {
        let len = unit.chars().count();
        if !empty && current_len + 1 + len > width {
            out.push_str(&current);
            out.push('\n');
            current.clone_from(&hanging);
            current_len = hanging.chars().count();
            empty = true;
        }
        if !empty {
            current.push(' ');
            current_len += 1;
        }
        current.push_str(unit);
        current_len += len;
        empty = false;
    }
    out.push_str(&current);
}

/// The line cut at spaces, except spaces inside `"…"` or `[…]`; an
/// unclosed quote or bracket protects nothing (the rest is not swallowed
/// into one unit).
fn units(body: &str) -> Vec<&str> {
    let words: Vec<(usize, &str)> = body
        .split(' ')
        .scan(0usize, |at, w| {
            let start = *at;
            *at += w.len() + 1;
            Some((start, w))
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let (start, word) = words[i];
        let mut end = i;
        if let Some(close) = closer(word) {
            if let Some(j) = (i..words.len()).find(|&j| closes(words[j].1, close, j == i)) {
                end = j;
            }
        }
        let (last_start, last) = words[end];
        out.push(&body[start..last_start + last.len()]);
        i = end + 1;
    }
    out
}

/// What closes a protected span that `word` opens, if it opens one.
fn closer(word: &str) -> Option<char> {
    let trimmed = word.trim_start_matches(['(', '"']);
    if word.starts_with('"') {
        Some('"')
    } else if trimmed.starts_with('[') {
        Some(']')
    } else {
        None
    }
}

/// Whether `word` ends the span (for the opening word: a second quote).
fn closes(word: &str, close: char, opening: bool) -> bool {
    let core = word.trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
    if opening {
        core.len() > 1 && core.ends_with(close) && (close != '"' || core[1..].contains('"'))
    } else {
        core.contains(close)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_tag_is_never_split() {
        let line = "Please reply to this message with that information and keep \
                    \"[abuse #12345-3f9a0c1d]\" in the subject.";
        let wrapped = wrap(line, 60);
        assert!(wrapped.contains("\"[abuse #12345-3f9a0c1d]\""), "{wrapped}");
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= 60),
            "{wrapped}"
        );
        // At every width the tag stays whole.
        for width in 10..90 {
            let wrapped = wrap(line, width);
            assert!(
                wrapped.contains("[abuse #12345-3f9a0c1d]"),
                "{width}: {wrapped}"
            );
            assert_eq!(wrapped.replace('\n', " "), line, "nothing is lost or added");
        }
    }

    #[test]
    fn short_lines_and_long_words_are_left_alone() {
        assert_eq!(wrap("Hello,\n\nthanks.", 76), "Hello,\n\nthanks.");
        let url = format!("see https://example.com/{}", "a".repeat(100));
        assert_eq!(wrap(&url, 20), url.replacen(' ', "\n", 1));
    }

    #[test]
    fn list_items_hang_and_unclosed_brackets_protect_nothing() {
        let item = "- the full headers of the message, or the log lines with date, time and zone";
        let wrapped = wrap(item, 40);
        assert!(
            wrapped.lines().skip(1).all(|l| l.starts_with("  ")),
            "{wrapped}"
        );
        let open = "a [b c d e f g h i j k l m n o p q r s t u v w x y z";
        assert!(wrap(open, 10).lines().all(|l| l.chars().count() <= 10));
        let unclosed = "a \"b c d e f g h i j k l m n o p q r s t u v w x y z";
        assert!(wrap(unclosed, 10).lines().all(|l| l.chars().count() <= 10));
    }
}

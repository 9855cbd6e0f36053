//! A customer's answer to a notice: what its first line says of the case.
//!
//! An answer is a reply carrying the case's token (`[case #ID-TOKEN]` in the
//! subject, or one of our notices' Message-IDs in `In-Reply-To` /
//! `References`). It is stored on the case as the customer's statement;
//! when the first line of what they wrote is one of the status keywords
//! below (any case, an optional `:` or `.` after it), the case is
//! `customer_resolved`. Pure.

/// The words that say "dealt with", in the five languages we write in.
pub const RESOLVED_KEYWORDS: [&str; 14] = [
    "resolved",
    "fixed",
    "done",
    "erledigt",
    "behoben",
    "resuelto",
    "solucionado",
    "résolu",
    "resolu",
    "corrigé",
    "corrige",
    "resolvido",
    "corrigido",
    "solved",
];

pub use crate::model::case::AnswerStatus as Status;

/// Characters of an answer kept as the statement.
pub const MAX_STATEMENT_CHARS: usize = 16_000;

/// The status `text` (what the customer wrote, their own part) states.
pub fn status(text: &str) -> Status {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let word = first.trim_end_matches(['.', ':', '!', ' ']).to_lowercase();
    if RESOLVED_KEYWORDS.contains(&word.as_str()) {
        Status::Resolved
    } else {
        Status::Statement
    }
}

/// The statement kept of `text`: what the customer wrote above the quoted
/// notice (lines from the first `>` or our reply marker on are dropped), at
/// most [`MAX_STATEMENT_CHARS`] characters.
pub fn statement(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('>') || t.contains(crate::evidence::REPLY_MARKER) {
            break;
        }
        kept.push(line);
    }
    let own = kept.join("\n");
    let own = own.trim();
    crate::truncate_at_char(own, MAX_STATEMENT_CHARS * 4)
        .chars()
        .take(MAX_STATEMENT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_states_the_status_in_any_of_the_languages() {
        for text in [
            "RESOLVED\nWe removed the VM.",
            "\n  Fixed.\n",
            "erledigt",
            "Résolu :",
            "RESOLVIDO!",
        ] {
            assert_eq!(status(text), Status::Resolved, "{text:?}");
        }
        for text in [
            "We are looking into it. Resolved soon.",
            "Not resolved",
            "",
            "resolved-ish",
        ] {
            assert_eq!(status(text), Status::Statement, "{text:?}");
        }
    }

    #[test]
    fn the_statement_is_their_own_words_above_the_quote() {
        let text = "We shut it down.\nThanks\n\n> Hello Example Hosting,\n> we received";
        assert_eq!(statement(text), "We shut it down.\nThanks");
        let long = "x".repeat(MAX_STATEMENT_CHARS + 10);
        assert_eq!(statement(&long).chars().count(), MAX_STATEMENT_CHARS);
    }
}

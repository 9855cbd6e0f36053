//! The reporter's own words, for the keyword rules.
//!
//! In: a message's text. Out: the text a reader takes as what the reporter
//! says: without the lines quoted from an earlier mail (`> …`, when the
//! reporter wrote anything of their own), without the signature or footer
//! (after `-- `), and with URLs, e-mail addresses and host names blanked, so
//! `phishing.example.net` or `abuse-hacking@…` do not read as words. Pure.

use regex::Regex;
use std::sync::LazyLock;

/// URLs (also defanged), e-mail addresses and dotted host names.
static NOT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    crate::model::pattern::regex(
        r#"(?i)\b(?:h[tx]{2}ps?|ftp)(?:://|\[://\]|\[:\]//)[^\s<>"']+|[a-z0-9._%+-]+@[a-z0-9.-]+|\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.|\[\.\]))+[a-z]{2,}\b"#,
    )
    .expect("valid regex")
});

/// Lines that open a footer: the signature delimiter (RFC 3676 §4.3) and the
/// separators mail clients and list software put before disclaimers.
fn opens_footer(line: &str) -> bool {
    let t = line.trim_end();
    t == "--"
        || t == "-- "
        || line == "-- "
        || t == "__________________________________________________"
}

/// `text` as the rules read it.
pub fn reporters_words(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let quoted = |l: &str| l.trim_start().starts_with('>');
    // Only drop quotes when the reporter wrote something of their own: a
    // message that is all quote is all there is to read.
    let own_words = lines
        .iter()
        .filter(|l| !quoted(l))
        .map(|l| l.split_whitespace().count())
        .sum::<usize>();
    let drop_quotes = own_words >= 3;
    let mut out = String::with_capacity(text.len());
    for line in lines {
        if opens_footer(line) {
            // A signature ends the reporter's text, not the message: what
            // follows a footer in a forwarded part is read again below it.
            break;
        }
        if drop_quotes && quoted(line) {
            continue;
        }
        out.push_str(&NOT_WORDS.replace_all(line, " "));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_signatures_urls_addresses_and_host_names_are_not_words() {
        let text = "Please take down https://phishing.example.net/login now.\n\
                    It is hosted at hacking-tools.example.org; write to abuse-spam@example.com.\n\
                    > You wrote: we found no malware\n\
                    -- \n\
                    ACME Anti-Phishing Team | malware research\n";
        let words = reporters_words(text);
        assert!(words.contains("Please take down"), "{words}");
        assert!(!words.contains("phishing"), "{words}");
        assert!(!words.contains("hacking"), "{words}");
        assert!(!words.contains("spam"), "{words}");
        assert!(!words.contains("malware"), "{words}");
        // All quote: nothing else to read.
        assert!(reporters_words("> spam spam spam\n").contains("spam"));
    }
}

//! HTML reduced to text for evidence extraction (webmail sends HTML only).
//!
//! Not a renderer: tags go, block tags become line breaks, `<script>` and
//! `<style>` contents go, `href`/`src` URLs are kept (in brackets after the
//! text), and the common entities are decoded. Linear time, no panics.

/// The visible text of `html`, with link targets kept.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        rest = &rest[lt..];
        let Some(gt) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if (name == "script" || name == "style") && !tag.starts_with('/') {
            let close = format!("</{name}");
            match find_ignore_case(rest, &close) {
                Some(end) => rest = &rest[end..],
                None => rest = "",
            }
            continue;
        }
        if let Some(link) = attribute(tag, "href").or_else(|| attribute(tag, "src")) {
            if link.contains("://") || link.starts_with("mailto:") {
                out.push_str(" [");
                out.push_str(&decode_entities(link));
                out.push_str("] ");
            }
        }
        if matches!(
            name.as_str(),
            "br" | "p"
                | "div"
                | "tr"
                | "li"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "pre"
                | "table"
                | "blockquote"
                | "hr"
        ) {
            out.push('\n');
        } else if matches!(name.as_str(), "td" | "th") {
            out.push(' ');
        }
    }
    out.push_str(&decode_entities(rest));
    out
}

/// Where `needle` (ASCII) first occurs in `haystack`, ignoring ASCII case.
/// Looks only at candidate first bytes, so the cost is linear in how far it
/// reads, not in the length of what follows (a `<script>` per tag used to
/// lower-case the whole rest of the page each time: quadratic).
fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    let (hay, needle) = (haystack.as_bytes(), needle.as_bytes());
    let first = *needle.first()?;
    let mut at = 0;
    while let Some(i) = memchr::memchr2(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        &hay[at..],
    ) {
        let start = at + i;
        if hay
            .get(start..start + needle.len())
            .is_some_and(|window| window.eq_ignore_ascii_case(needle))
        {
            return Some(start);
        }
        at = start + 1;
    }
    None
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        });
    }
    None
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(';').map(|i| i + 1).filter(|&i| i <= 10);
        let decoded = end.and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_links_stay_entities_decode() {
        let html = r#"<html><style>p{color:red}</style><p>Phishing at <a href="http://bad.example/login?a=1&amp;b=2">this page</a></p><script>alert(1)</script>&lt;ok&gt;&#233;</html>"#;
        let text = html_to_text(html);
        assert!(
            text.contains("Phishing at  [http://bad.example/login?a=1&b=2] this page"),
            "{text}"
        );
        assert!(!text.contains("color") && !text.contains("alert"), "{text}");
        assert!(text.contains("<ok>é"), "{text}");
    }

    #[test]
    fn closing_tags_are_found_in_any_case() {
        assert_eq!(find_ignore_case("ab</SCRIPT>", "</script"), Some(2));
        assert_eq!(find_ignore_case("é</Style", "</style"), Some(2));
        assert_eq!(find_ignore_case("</scrip", "</script"), None);
        let text = html_to_text("<script>x</ScRiPt>visible");
        assert_eq!(text, "visible");
    }

    #[test]
    fn broken_html_does_not_panic() {
        for html in [
            "<",
            "<a href=",
            "&#xffffffff;",
            "<p>é<",
            "<script>never closed",
            "&;&#;&amp",
        ] {
            let _ = html_to_text(html);
        }
    }
}

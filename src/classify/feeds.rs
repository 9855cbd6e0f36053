//! Known automated feeds: `config/feeds.toml`, compiled once.
//!
//! In: a report's sender addresses, subject and headers. Out: the first
//! [`Feed`] that recognises it: whether the sender is a machine (no reply
//! unless allow-listed) and the feed's usual type. Feeds are data: a new one
//! is an entry in the file, not code. Pure.

use crate::model::{AbuseType, NetworkSubtype};
use crate::parse::Headers;
use regex::Regex;
use serde::Deserialize;

/// The feeds shipped in the binary; identical to `config/feeds.toml`.
pub const DEFAULT_FEEDS: &str = include_str!("../../config/feeds.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    feed: Vec<FeedDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedDef {
    id: String,
    name: String,
    #[serde(default)]
    senders: Vec<String>,
    subject: Option<String>,
    header: Option<String>,
    #[serde(default)]
    automated: bool,
    abuse_type: Option<String>,
    subtype: Option<String>,
}

/// One known feed.
#[derive(Debug, Clone)]
pub struct Feed {
    pub id: String,
    pub name: String,
    pub automated: bool,
    pub abuse_type: Option<AbuseType>,
    pub subtype: Option<NetworkSubtype>,
    senders: Vec<String>,
    subject: Option<Regex>,
    header: Option<(String, Regex)>,
}

impl Feed {
    fn matches(&self, senders: &[&str], subject: Option<&str>, headers: &Headers) -> bool {
        let by_sender = senders.iter().any(|address| {
            let address = address.trim().to_ascii_lowercase();
            let domain = address.rsplit('@').next().unwrap_or("");
            self.senders.iter().any(|s| {
                if s.contains('@') {
                    *s == address
                } else {
                    domain == s || domain.ends_with(&format!(".{s}"))
                }
            })
        });
        let by_subject = match (&self.subject, subject) {
            (Some(re), Some(subject)) => re.is_match(subject),
            _ => false,
        };
        let by_header = self
            .header
            .as_ref()
            .is_some_and(|(name, re)| headers.get(name).is_some_and(|v| re.is_match(v)));
        by_sender || by_subject || by_header
    }
}

/// The compiled feed list.
#[derive(Debug, Clone, Default)]
pub struct Feeds {
    feeds: Vec<Feed>,
}

impl Feeds {
    /// The built-in feeds.
    pub fn builtin() -> Feeds {
        Feeds::parse(DEFAULT_FEEDS).expect("the built-in feeds compile (tested)")
    }

    /// Compiles a feeds file.
    ///
    /// # Errors
    /// Every problem, with its key path (`feed[2].subject: …`).
    pub fn parse(text: &str) -> Result<Feeds, Vec<String>> {
        let file: File = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        let mut feeds = Vec::new();
        for (i, def) in file.feed.into_iter().enumerate() {
            let regex = |what: &str, pattern: &str, problems: &mut Vec<String>| {
                crate::model::pattern::regex(pattern)
                    .map_err(|e| problems.push(format!("feed[{i}].{what}: {e}")))
                    .ok()
            };
            let subject = def
                .subject
                .as_deref()
                .and_then(|p| regex("subject", p, &mut problems));
            let header = match def.header.as_deref() {
                None => None,
                Some(h) => match h.split_once(':') {
                    Some((name, pattern)) if !name.trim().is_empty() => {
                        regex("header", pattern.trim(), &mut problems)
                            .map(|re| (name.trim().to_ascii_lowercase(), re))
                    }
                    _ => {
                        problems.push(format!("feed[{i}].header: {h:?} is not \"Name: regex\""));
                        None
                    }
                },
            };
            if def.senders.is_empty() && subject.is_none() && header.is_none() {
                problems.push(format!(
                    "feed[{i}]: needs senders, subject or header to recognise it"
                ));
            }
            let abuse_type = match def.abuse_type.as_deref() {
                None => None,
                Some(t) => match AbuseType::parse(t).filter(|t| *t != AbuseType::Unknown) {
                    Some(t) => Some(t),
                    None => {
                        problems.push(format!(
                            "feed[{i}].abuse_type: {t:?} is not one of the four abuse types"
                        ));
                        None
                    }
                },
            };
            let subtype = match def.subtype.as_deref() {
                None => None,
                Some(s) => {
                    let parsed = NetworkSubtype::parse(s);
                    if parsed.is_none() || abuse_type != Some(AbuseType::NetworkActivity) {
                        problems.push(format!(
                            "feed[{i}].subtype: {s:?} needs abuse_type network_activity and a known subtype"
                        ));
                    }
                    parsed
                }
            };
            feeds.push(Feed {
                id: def.id,
                name: def.name,
                automated: def.automated,
                abuse_type,
                subtype,
                senders: def
                    .senders
                    .iter()
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect(),
                subject,
                header,
            });
        }
        if problems.is_empty() {
            Ok(Feeds { feeds })
        } else {
            Err(problems)
        }
    }

    /// The first feed that recognises a message from `senders` (From and
    /// envelope sender) with `subject` and `headers`.
    pub fn recognise(
        &self,
        senders: &[&str],
        subject: Option<&str>,
        headers: &Headers,
    ) -> Option<&Feed> {
        self.feeds
            .iter()
            .find(|f| f.matches(senders, subject, headers))
    }

    /// The feed with this id, if the list has one.
    pub fn get(&self, id: &str) -> Option<&Feed> {
        self.feeds.iter().find(|f| f.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_feeds_compile_and_recognise_by_sender_subject_and_header() {
        let feeds = Feeds::builtin();
        let none = Headers::parse_block("");
        let id = |senders: &[&str], subject: Option<&str>, headers: &Headers| {
            feeds
                .recognise(senders, subject, headers)
                .map(|f| f.id.clone())
        };
        assert_eq!(
            id(&["autoreports@reports.shadowserver.org"], None, &none).as_deref(),
            Some("shadowserver")
        );
        assert_eq!(
            id(
                &["root@web2.example.org"],
                Some("[Fail2Ban] sshd: banned 192.0.2.1"),
                &none
            )
            .as_deref(),
            Some("fail2ban")
        );
        let acns = Headers::parse_block("X-ACNS-Version: 1.2\n");
        assert_eq!(id(&["x@example.com"], None, &acns).as_deref(), Some("acns"));
        assert_eq!(id(&["someone@notshadowserver.org"], None, &none), None);
    }

    #[test]
    fn a_bad_file_names_every_problem() {
        let bad = "[[feed]]\nid = 'x'\nname = 'x'\nsubject = '('\nabuse_type = 'nope'\n\n[[feed]]\nid = 'y'\nname = 'y'\n";
        let problems = Feeds::parse(bad).unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with("feed[0].subject")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("feed[0].abuse_type")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("feed[1]: needs")),
            "{problems:?}"
        );
    }
}

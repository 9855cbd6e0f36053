//! Free-text rules: `config/rules.toml` compiled into one `RegexSet`.

use crate::model::{AbuseType, NetworkSubtype};
use regex::{Regex, RegexSet};
use serde::Deserialize;
use std::sync::OnceLock;

/// The rules shipped in the binary; identical to `config/rules.toml`.
pub const DEFAULT_RULES: &str = include_str!("../../config/rules.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rule: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: String,
    abuse_type: String,
    #[serde(default)]
    subtype: Option<String>,
    pattern: String,
    weight: u32,
}

/// One compiled rule's meaning (its regex lives in the set).
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub abuse_type: AbuseType,
    pub subtype: Option<NetworkSubtype>,
    pub weight: u32,
    pattern: String,
    /// The rule's own regex, compiled the first time the rule matches (to
    /// quote what matched); most rules never do, and each costs memory.
    regex: OnceLock<Option<Regex>>,
}

impl Rule {
    /// The text this rule matched in `text`, at most 40 characters.
    pub fn matched<'t>(&self, text: &'t str) -> Option<&'t str> {
        let regex = self
            .regex
            .get_or_init(|| crate::model::pattern::regex(&self.pattern).ok())
            .as_ref()?;
        let m = regex.find(text)?;
        let end = m
            .as_str()
            .char_indices()
            .nth(40)
            .map_or(m.end(), |(i, _)| m.start() + i);
        Some(&text[m.start()..end])
    }
}

/// Compiled rules.
#[derive(Debug, Clone)]
pub struct Rules {
    patterns: Vec<String>,
    /// Compiled on first use; `None` if compiling failed (logged once).
    set: OnceLock<Option<RegexSet>>,
    rules: Vec<Rule>,
}

impl Rules {
    /// The built-in rules.
    pub fn builtin() -> Rules {
        Rules::parse(DEFAULT_RULES).expect("the built-in rules compile (tested)")
    }

    /// Compiles a rules file.
    ///
    /// # Errors
    /// Every problem, with its key path (`rule[3].pattern: …`).
    pub fn parse(text: &str) -> Result<Rules, Vec<String>> {
        let file: File = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for (i, def) in file.rule.iter().enumerate() {
            let abuse_type = AbuseType::parse(&def.abuse_type);
            if abuse_type.is_none() || abuse_type == Some(AbuseType::Unknown) {
                problems.push(format!(
                    "rule[{i}].abuse_type: {:?} is not one of the four abuse types",
                    def.abuse_type
                ));
            }
            let subtype = match def.subtype.as_deref() {
                None => None,
                Some(s) => {
                    let parsed = NetworkSubtype::parse(s);
                    if parsed.is_none() || abuse_type != Some(AbuseType::NetworkActivity) {
                        problems.push(format!("rule[{i}].subtype: {s:?} needs abuse_type network_activity and a known subtype"));
                    }
                    parsed
                }
            };
            if def.weight == 0 {
                problems.push(format!("rule[{i}].weight: must be > 0"));
            }
            if let Some(abuse_type) = abuse_type {
                rules.push(Rule {
                    id: def.id.clone(),
                    abuse_type,
                    subtype,
                    weight: def.weight,
                    pattern: def.pattern.clone(),
                    regex: OnceLock::new(),
                });
            }
        }
        // Each bad pattern is named; then the set is compiled once to be
        // sure the patterns fit together (a size limit), and dropped: the
        // daemon does not classify, its worker children keep their own
        // ([`Rules::prepare`]).
        for (i, def) in file.rule.iter().enumerate() {
            if let Err(e) = regex_syntax::Parser::new().parse(&def.pattern) {
                problems.push(format!("rule[{i}].pattern: {e}"));
            }
        }
        if problems.is_empty() {
            if let Err(e) = crate::model::pattern::regex_set(file.rule.iter().map(|r| &r.pattern)) {
                problems.push(format!(
                    "the patterns do not compile together ({e}): make them smaller or fewer"
                ));
            }
        }
        problems.sort_by_key(|p| {
            let index: usize = p
                .trim_start_matches("rule[")
                .split(']')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            (index, p.contains(".weight"))
        });
        if !problems.is_empty() {
            return Err(problems);
        }
        let patterns = file.rule.into_iter().map(|r| r.pattern).collect();
        Ok(Rules {
            patterns,
            set: OnceLock::new(),
            rules,
        })
    }

    /// Compiles the set now rather than at the first message (a worker
    /// child, when it starts).
    pub fn prepare(&self) {
        let _ = self.set();
    }

    fn set(&self) -> Option<&regex::RegexSet> {
        self.set
            .get_or_init(|| match crate::model::pattern::regex_set(&self.patterns) {
                Ok(set) => Some(set),
                Err(error) => {
                    // They compiled together at load: not reached.
                    tracing::error!(%error, "classification rules do not compile; free text is not classified");
                    None
                }
            })
            .as_ref()
    }

    /// The rules matching `text`.
    pub fn matches<'a>(&'a self, text: &str) -> impl Iterator<Item = &'a Rule> + 'a {
        let matched: Vec<usize> = self
            .set()
            .map(|s| s.matches(text).into_iter().collect())
            .unwrap_or_default();
        matched.into_iter().map(move |i| &self.rules[i])
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile() {
        assert!(Rules::builtin().len() > 20);
    }

    #[test]
    fn problems_name_the_rule() {
        let err = Rules::parse("[[rule]]\nid='a'\nabuse_type='web_content'\npattern='('\nweight=1\n[[rule]]\nid='b'\nabuse_type='spam'\npattern='x'\nweight=0\n").unwrap_err();
        assert!(err[0].starts_with("rule[0].pattern:"), "{err:?}");
        assert!(err[1].starts_with("rule[1].abuse_type:"), "{err:?}");
        assert!(err[2].starts_with("rule[1].weight:"), "{err:?}");
    }

    #[test]
    fn patterns_too_big_to_compile_are_refused_at_load_not_at_the_first_message() {
        let rule = |id: &str| {
            format!(
                "[[rule]]\nid='{id}'\nabuse_type='web_content'\npattern='\\w{{1000}}'\nweight=1\n"
            )
        };
        let err = Rules::parse(&(rule("a") + &rule("b"))).unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains("do not compile together"), "{err:?}");
    }
}

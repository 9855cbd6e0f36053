//! Notice policies as data: parsed and checked whole when the daemon
//! starts or reloads (every problem named by its key), and the one a case
//! follows chosen by the customer's policy name, the case's kind, or
//! `default`.

use crate::model::AbuseType;
use chrono::Duration;
use serde::Deserialize;

/// The shipped policies.
pub const BUILTIN: &str = include_str!("../../config/notices.toml");

/// The policy every case without another follows.
pub const DEFAULT: &str = "default";

/// What a policy applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Abuse(AbuseType),
    /// An RSIT classification type (`phishing`, `scanner`, …).
    Rsit(String),
}

/// One policy, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub types: Vec<Kind>,
    /// Events within this window go in one notice; zero: each at once.
    pub digest: Duration,
    /// A new notice at most this often while new events come; `None`: one
    /// every digest window.
    pub repeat: Option<Duration>,
    /// A reminder after this long without an answer.
    pub remind: Option<Duration>,
    pub escalate_after_events: Option<u32>,
    pub escalate_after: Option<Duration>,
    /// Where escalations go; `None`: the customer's second contact, else
    /// `reply.from`.
    pub escalate_to: Option<String>,
    /// A case idle this long closes by itself.
    pub close_after: Option<Duration>,
    /// The customer sees the reporter's name and address.
    pub share_reporter: bool,
}

impl Policy {
    /// Whether it names `abuse_type` or `rsit_type`.
    fn covers(&self, abuse_type: AbuseType, rsit_type: &str) -> bool {
        self.types.iter().any(|k| match k {
            Kind::Abuse(t) => *t == abuse_type,
            Kind::Rsit(t) => t == rsit_type,
        })
    }
}

/// Every policy of a file, in its order; one is named [`DEFAULT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    list: Vec<Policy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    policy: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    types: Vec<String>,
    digest_minutes: u32,
    repeat_hours: u32,
    remind_hours: u32,
    escalate_after_events: u32,
    escalate_after_hours: u32,
    #[serde(default)]
    escalate_to: String,
    close_after_days: u32,
    #[serde(default)]
    share_reporter: bool,
}

/// The longest window or interval a policy may set: a year.
const MAX_HOURS: u32 = 24 * 366;

fn hours(n: u32) -> Option<Duration> {
    (n > 0).then(|| Duration::hours(i64::from(n)))
}

impl Policies {
    /// The shipped policies.
    pub fn builtin() -> Policies {
        Policies::parse(BUILTIN).expect("config/notices.toml is valid")
    }

    /// Reads and checks a policies file.
    ///
    /// # Errors
    /// Every problem, each with its `policy[i].key`.
    pub fn parse(text: &str) -> Result<Policies, Vec<String>> {
        let file: File = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        let mut list: Vec<Policy> = Vec::new();
        for (i, e) in file.policy.into_iter().enumerate() {
            let at = |key: &str| format!("policy[{i}] ({:?}).{key}", e.name);
            let name = e.name.trim().to_owned();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                problems.push(format!(
                    "{}: a name of 1 to 64 printable characters",
                    at("name")
                ));
            } else if list.iter().any(|p| p.name == name) {
                problems.push(format!("{}: {name:?} is named twice", at("name")));
            }
            let mut types = Vec::new();
            for t in &e.types {
                match AbuseType::parse(t).filter(|t| *t != AbuseType::Unknown) {
                    Some(abuse) => types.push(Kind::Abuse(abuse)),
                    None if crate::classify::rsit::is_type(t) => types.push(Kind::Rsit(t.clone())),
                    None => problems.push(format!(
                        "{}: {t:?} is neither an abuse type (web_content, email_abuse, network_activity, copyright) nor an RSIT type",
                        at("types")
                    )),
                }
            }
            if e.digest_minutes > MAX_HOURS * 60 {
                problems.push(format!(
                    "{}: at most {} (a year)",
                    at("digest_minutes"),
                    MAX_HOURS * 60
                ));
            }
            for (key, value) in [
                ("repeat_hours", e.repeat_hours),
                ("remind_hours", e.remind_hours),
                ("escalate_after_hours", e.escalate_after_hours),
            ] {
                if value > MAX_HOURS {
                    problems.push(format!("{}: at most {MAX_HOURS} (a year)", at(key)));
                }
            }
            if e.close_after_days > 366 {
                problems.push(format!("{}: at most 366", at("close_after_days")));
            }
            let escalate_to = e.escalate_to.trim();
            let address_ok = escalate_to.is_empty()
                || (escalate_to.len() <= 254
                    && !escalate_to.contains(char::is_whitespace)
                    && escalate_to
                        .rsplit_once('@')
                        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.')));
            if !address_ok {
                problems.push(format!(
                    "{}: {escalate_to:?} is not an address",
                    at("escalate_to")
                ));
            }
            list.push(Policy {
                name,
                types,
                digest: Duration::minutes(i64::from(e.digest_minutes)),
                repeat: hours(e.repeat_hours),
                remind: hours(e.remind_hours),
                escalate_after_events: (e.escalate_after_events > 0)
                    .then_some(e.escalate_after_events),
                escalate_after: hours(e.escalate_after_hours),
                escalate_to: (!escalate_to.is_empty()).then(|| escalate_to.to_owned()),
                close_after: (e.close_after_days > 0)
                    .then(|| Duration::days(i64::from(e.close_after_days))),
                share_reporter: e.share_reporter,
            });
        }
        if !list.iter().any(|p| p.name == DEFAULT) {
            problems.push(format!(
                "no [[policy]] named {DEFAULT:?}: cases no other policy covers follow it"
            ));
        }
        if problems.is_empty() {
            Ok(Policies { list })
        } else {
            Err(problems)
        }
    }

    /// The policy named `name`.
    pub fn named(&self, name: &str) -> Option<&Policy> {
        self.list.iter().find(|p| p.name == name)
    }

    /// The policy a case follows: the customer's (`customer_policy`) when
    /// it names one, else the first covering the case's abuse type or RSIT
    /// type, else [`DEFAULT`]. The second value is `false` when the
    /// customer names a policy that does not exist (the caller says so).
    pub fn for_case(
        &self,
        customer_policy: Option<&str>,
        abuse_type: AbuseType,
        rsit_type: &str,
    ) -> (&Policy, bool) {
        let named = customer_policy.map(|name| self.named(name));
        if let Some(Some(policy)) = named {
            return (policy, true);
        }
        let policy = self
            .list
            .iter()
            .find(|p| p.covers(abuse_type, rsit_type))
            .or_else(|| self.named(DEFAULT))
            .unwrap_or(&self.list[0]);
        (policy, !matches!(named, Some(None)))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policies_parse_and_choose_by_customer_type_or_default() {
        let p = Policies::builtin();
        let (urgent, known) = p.for_case(None, AbuseType::WebContent, "other");
        assert_eq!((urgent.name.as_str(), known), ("urgent", true));
        assert_eq!(urgent.digest, Duration::zero());
        let (info, _) = p.for_case(None, AbuseType::NetworkActivity, "vulnerable-system");
        assert_eq!(info.name, "informational");
        assert_eq!(info.repeat, Some(Duration::hours(2160)));
        let (default, _) = p.for_case(None, AbuseType::NetworkActivity, "brute-force");
        assert_eq!(default.name, "default");
        assert_eq!(default.escalate_after_events, Some(100));
        // The customer's choice wins; an unknown one falls back, and says so.
        let (chosen, known) = p.for_case(Some("informational"), AbuseType::WebContent, "other");
        assert_eq!((chosen.name.as_str(), known), ("informational", true));
        let (fallback, known) = p.for_case(Some("gold"), AbuseType::WebContent, "other");
        assert_eq!((fallback.name.as_str(), known), ("urgent", false));
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let text = r#"
[[policy]]
name = "a"
types = ["spam", "network_activity", "spamm"]
digest_minutes = 0
repeat_hours = 99999
remind_hours = 0
escalate_after_events = 0
escalate_after_hours = 0
escalate_to = "not an address"
close_after_days = 0

[[policy]]
name = "a"
digest_minutes = 0
repeat_hours = 0
remind_hours = 0
escalate_after_events = 0
escalate_after_hours = 0
close_after_days = 400
"#;
        let problems = Policies::parse(text).unwrap_err();
        let joined = problems.join("\n");
        for needle in [
            "policy[0] (\"a\").types: \"spamm\"",
            "policy[0] (\"a\").repeat_hours: at most",
            "policy[0] (\"a\").escalate_to",
            "policy[1] (\"a\").name: \"a\" is named twice",
            "policy[1] (\"a\").close_after_days",
            "no [[policy]] named \"default\"",
        ] {
            assert!(joined.contains(needle), "{needle} in {joined}");
        }
        assert_eq!(problems.len(), 6, "{joined}");
        // A key nobody knows is refused, not ignored.
        assert!(Policies::parse("[[policy]]\nname = \"default\"\ndigest = 5\n").is_err());
    }
}

//! The people at the web desk: who they are and what they may do.

use serde::Serialize;

/// What an operator may do at the console. Every page is open to every
/// role; actions (resolve, release, discard, retry) need `agent` or
/// `admin`. `admin` is for the desk's own administration and, at the
/// console today, acts as an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OperatorRole {
    Viewer,
    Agent,
    Admin,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Viewer => "viewer",
            OperatorRole::Agent => "agent",
            OperatorRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<OperatorRole> {
        match text {
            "viewer" => Some(OperatorRole::Viewer),
            "agent" => Some(OperatorRole::Agent),
            "admin" => Some(OperatorRole::Admin),
            _ => None,
        }
    }

    /// Whether this role may change anything.
    pub fn may_act(self) -> bool {
        self >= OperatorRole::Agent
    }
}

impl std::fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account of the web desk (`users add`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operator {
    pub name: String,
    pub role: OperatorRole,
    /// When it was disabled (RFC 3339); a disabled operator cannot log in
    /// and its sessions end.
    pub disabled_at: Option<String>,
    pub created_at: String,
}

/// A name fit for an account: 1 to 64 letters, digits, `.`, `_`, `-`
/// or `@` (it is shown in the history and in logs).
pub fn is_operator_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_back_and_only_agents_and_admins_act() {
        for role in [
            OperatorRole::Viewer,
            OperatorRole::Agent,
            OperatorRole::Admin,
        ] {
            assert_eq!(OperatorRole::parse(role.as_str()), Some(role));
        }
        assert!(!OperatorRole::Viewer.may_act());
        assert!(OperatorRole::Agent.may_act() && OperatorRole::Admin.may_act());
        assert!(is_operator_name("ana.silva@desk"));
        assert!(!is_operator_name("") && !is_operator_name("a b") && !is_operator_name("<x>"));
    }
}

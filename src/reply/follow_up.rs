//! Whether a message that says it follows up a report may join it.
//!
//! In: what the store read of the original report and what the new message
//! claims. Out: yes, or why not. Pure. A stranger must not be able to add
//! evidence to someone else's report, change its type, or make us mail its
//! reporter: report ids and subject lines are easy to guess, so a follow-up
//! joins only with the report's token (sent only to its reporter, in our
//! Message-ID and subject tag) or from the original reporter's address,
//! authenticated.

use super::limits;

/// The original report, as stored.
pub struct Original<'a> {
    pub id: i64,
    pub reporter: Option<&'a str>,
    pub resolved: bool,
}

/// The message that claims to follow it up.
pub struct Claimant<'a> {
    pub id: i64,
    pub reporter: Option<&'a str>,
    pub authenticated: bool,
    /// It carried the report's valid token.
    pub has_token: bool,
}

/// `Err(reason)` when the follow-up stays a report of its own.
pub fn may_merge(original: &Original<'_>, claimant: &Claimant<'_>) -> Result<(), &'static str> {
    if original.id >= claimant.id {
        return Err("a message cannot follow up itself or a later report");
    }
    if original.resolved {
        return Err("the report it follows up is resolved");
    }
    if claimant.has_token {
        return Ok(());
    }
    let same_reporter = match (original.reporter, claimant.reporter) {
        (Some(a), Some(b)) => limits::key(a) == limits::key(b),
        _ => false,
    };
    if same_reporter && claimant.authenticated {
        Ok(())
    } else {
        Err("no valid report token, and not the report's authenticated reporter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_or_the_authenticated_reporter_joins_an_open_earlier_report() {
        let original = Original {
            id: 5,
            reporter: Some("Reporter@example.net"),
            resolved: false,
        };
        let claimant = |reporter, authenticated, has_token| Claimant {
            id: 9,
            reporter: Some(reporter),
            authenticated,
            has_token,
        };
        assert!(may_merge(&original, &claimant("x@evil.example", false, true)).is_ok());
        assert!(may_merge(&original, &claimant("reporter@example.net", true, false)).is_ok());
        // A forged From of the reporter (case changed or not) is not enough.
        assert!(may_merge(&original, &claimant("REPORTER@example.net", false, false)).is_err());
        assert!(may_merge(&original, &claimant("x@evil.example", true, false)).is_err());
        let resolved = Original {
            resolved: true,
            ..original
        };
        assert!(may_merge(&resolved, &claimant("x@evil.example", true, true)).is_err());
        let itself = Original {
            id: 9,
            reporter: Some("reporter@example.net"),
            resolved: false,
        };
        assert!(may_merge(&itself, &claimant("reporter@example.net", true, true)).is_err());
    }
}

//! What the sender checks found for one message: the verdicts as
//! `Authentication-Results` (RFC 8601) names them, and the one decision the
//! reply policy uses. The checks themselves (DNS) are `daemon::auth`; the
//! store, the reply rules and the worker's children only carry these values.

use serde::{Deserialize, Serialize};

/// One check's result, as `Authentication-Results` (RFC 8601) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::SoftFail => "softfail",
            Verdict::Neutral => "neutral",
            Verdict::None => "none",
            Verdict::TempError => "temperror",
            Verdict::PermError => "permerror",
        }
    }
}

/// What the checks found for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResults {
    pub spf: Verdict,
    pub dkim: Verdict,
    pub dmarc: Verdict,
    /// An SPF or DKIM pass for the From domain (or a parent of it).
    pub aligned: bool,
    /// The reply policy's question: is the From address the sender's?
    pub authenticated: bool,
    /// The From domain checked (none when From had no single domain).
    pub domain: Option<String>,
    /// Whether that domain takes mail: an MX (not a null MX, RFC 7505) or
    /// an address record. `None`: not known (not looked up, or DNS failed).
    #[serde(default)]
    pub accepts_mail: Option<bool>,
    /// `spf=pass smtp.mailfrom=… dkim=pass header.d=… dmarc=pass header.from=…`.
    pub summary: String,
}

impl AuthResults {
    /// Whether the checks failed for now rather than for good: not
    /// authenticated, and a lookup failed (timed out, no nameserver
    /// answered). Checking again later may authenticate the sender.
    pub fn is_temporary(&self) -> bool {
        !self.authenticated && [self.spf, self.dkim, self.dmarc].contains(&Verdict::TempError)
    }

    /// The result for a message that could not be checked at all.
    pub fn unchecked(why: Verdict, domain: Option<String>) -> AuthResults {
        let summary = format!(
            "spf={0} dkim={0} dmarc={0}{1}",
            why.as_str(),
            domain
                .as_deref()
                .map(|d| format!(" header.from={d}"))
                .unwrap_or_default()
        );
        AuthResults {
            spf: why,
            dkim: why,
            dmarc: why,
            aligned: false,
            authenticated: false,
            domain,
            accepts_mail: None,
            summary,
        }
    }
}

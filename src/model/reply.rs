//! The reply policy's values that reports and plans carry: the language we
//! answer in, the report a follow-up claims, and the rate limits. The rules
//! that decide are `reply`.

use serde::{Deserialize, Serialize};

/// A language we reply in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    De,
    Es,
    Fr,
    Pt,
}

/// The report a follow-up claims, with the token it gave (if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub id: i64,
    pub token: Option<String>,
}

/// Replies per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub per_recipient: u32,
    pub per_domain: u32,
    pub global: u32,
}

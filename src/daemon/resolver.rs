//! The operator's HTTP resolver of owners (`[owners] http_url`): asked
//! whose an address or domain was at an event's time, before the local
//! assignments.
//!
//! Protocol: `GET {http_url}?address=203.0.113.7&at=2026-11-30T10:00:00Z`
//! (or `domain=www.example.co.uk`), answered `200` with
//! `{"customer": "c-100" | null, "valid_from": RFC3339 | null,
//! "valid_until": RFC3339 | null}` (`404`: no customer). The answer is
//! cached for its window (at most `http_cache_seconds` of wall time).
//!
//! Budgets: one call waits at most `http_timeout_ms`, and so does a whole
//! round of reports together; after a failure the resolver rests for
//! [`REST_AFTER_FAILURE`]. Whatever it does not answer, the local
//! assignments decide: a report is never held back for it.

use crate::config::OwnersConfig;
use crate::model::owner::Looked;
use crate::owners::route::{Answer, Query, Resolver};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// After a failed call, calls wait this long (each report in between is
/// routed by the local assignments).
pub const REST_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// Cached answers, at most; past it the cache starts afresh.
pub const MAX_CACHED: usize = 100_000;
/// The largest answer read.
pub const MAX_ANSWER_BYTES: u64 = 16 * 1024;
/// The longest customer reference taken from an answer.
const MAX_REFERENCE_BYTES: usize = 200;

/// One cached answer: what it said, and when it was fetched.
struct Cached {
    answer: Answer,
    fetched: Instant,
}

/// The HTTP resolver with its cache; [`Resolver`] for routing.
pub struct HttpResolver {
    url: String,
    timeout: Duration,
    max_age: Duration,
    agent: ureq::Agent,
    cache: HashMap<(Looked, String), Vec<Cached>>,
    cached: usize,
    /// The end of this round's time for calls.
    round_ends: Option<Instant>,
    resting_until: Option<Instant>,
    /// Calls made (for tests and the log).
    pub calls: u64,
}

/// Why a call gave no answer.
#[derive(Debug)]
enum Failure {
    Call(String),
    Answer(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Call(why) => write!(f, "the call failed: {why}"),
            Failure::Answer(why) => write!(f, "unreadable answer: {why}"),
        }
    }
}

impl HttpResolver {
    /// The resolver `config` names; `None` without `http_url`.
    pub fn new(config: &OwnersConfig) -> Option<HttpResolver> {
        let url = config.http_url.trim();
        if url.is_empty() {
            return None;
        }
        let timeout = Duration::from_millis(config.http_timeout_ms);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Some(HttpResolver {
            url: url.to_owned(),
            timeout,
            max_age: Duration::from_secs(config.http_cache_seconds),
            agent,
            cache: HashMap::new(),
            cached: 0,
            round_ends: None,
            resting_until: None,
            calls: 0,
        })
    }

    /// Starts a round of reports: together, their calls wait at most one
    /// timeout.
    pub fn begin_round(&mut self) {
        self.round_ends = Some(Instant::now() + self.timeout);
    }

    fn cached_answer(&self, query: &Query) -> Option<Answer> {
        self.cache
            .get(&(query.looked, query.value.clone()))?
            .iter()
            .find(|c| c.fetched.elapsed() < self.max_age && c.answer.holds_at(query.at))
            .map(|c| c.answer.clone())
    }

    fn remember(&mut self, query: &Query, answer: &Answer) {
        if self.cached >= MAX_CACHED {
            self.cache.clear();
            self.cached = 0;
        }
        let entries = self
            .cache
            .entry((query.looked, query.value.clone()))
            .or_default();
        entries.retain(|c| c.fetched.elapsed() < self.max_age);
        entries.push(Cached {
            answer: answer.clone(),
            fetched: Instant::now(),
        });
        self.cached += 1;
    }

    fn call(&mut self, query: &Query, wait: Duration) -> Result<Answer, Failure> {
        let name = match query.looked {
            Looked::Address => "address",
            Looked::Host => "domain",
        };
        let at = query.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.calls += 1;
        let response = self
            .agent
            .get(&self.url)
            .query(name, &query.value)
            .query("at", &at)
            .config()
            .timeout_global(Some(wait))
            .build()
            .call()
            .map_err(|e| Failure::Call(e.to_string()))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(Answer {
                customer: None,
                valid_from: None,
                valid_until: None,
            });
        }
        if status != 200 {
            return Err(Failure::Call(format!("HTTP status {status}")));
        }
        let mut body = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(MAX_ANSWER_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| Failure::Call(e.to_string()))?;
        if body.len() as u64 > MAX_ANSWER_BYTES {
            return Err(Failure::Answer(format!(
                "longer than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        let answer = parse_answer(&body).map_err(Failure::Answer)?;
        if !answer.holds_at(query.at) {
            return Err(Failure::Answer(format!(
                "its window does not hold the time asked about ({at})"
            )));
        }
        Ok(answer)
    }
}

/// Reads an answer: `customer` a reference or null, the window's ends
/// RFC 3339 or null/absent.
fn parse_answer(body: &[u8]) -> Result<Answer, String> {
    #[derive(serde::Deserialize)]
    struct Wire {
        customer: Option<String>,
        #[serde(default)]
        valid_from: Option<String>,
        #[serde(default)]
        valid_until: Option<String>,
    }
    let wire: Wire = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let time = |t: Option<String>, name: &str| -> Result<Option<DateTime<Utc>>, String> {
        t.map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.to_utc())
                .map_err(|_| format!("{name} {t:?} is not an RFC 3339 time"))
        })
        .transpose()
    };
    let customer = match wire.customer {
        Some(c) if c.trim().is_empty() => None,
        Some(c) if c.len() > MAX_REFERENCE_BYTES || c.chars().any(char::is_control) => {
            return Err(format!(
                "the customer reference is longer than {MAX_REFERENCE_BYTES} bytes or holds control characters"
            ))
        }
        other => other.map(|c| c.trim().to_owned()),
    };
    Ok(Answer {
        customer,
        valid_from: time(wire.valid_from, "valid_from")?,
        valid_until: time(wire.valid_until, "valid_until")?,
    })
}

impl Resolver for HttpResolver {
    fn active(&self) -> bool {
        true
    }

    fn resolve(&mut self, query: &Query) -> Option<Answer> {
        if let Some(answer) = self.cached_answer(query) {
            return Some(answer);
        }
        let now = Instant::now();
        if self.resting_until.is_some_and(|t| now < t) {
            return None;
        }
        let wait = match self.round_ends {
            Some(end) => end.saturating_duration_since(now).min(self.timeout),
            None => self.timeout,
        };
        if wait.is_zero() {
            debug!(value = %query.value, "owners resolver: this round's time is spent; local owners decide");
            return None;
        }
        match self.call(query, wait) {
            Ok(answer) => {
                self.remember(query, &answer);
                Some(answer)
            }
            Err(failure) => {
                warn!(
                    url = %self.url,
                    value = %query.value,
                    error = %failure,
                    rest_seconds = REST_AFTER_FAILURE.as_secs(),
                    "owners resolver gave no answer; the local owners decide, and it is not asked again for a while"
                );
                self.resting_until = Some(Instant::now() + REST_AFTER_FAILURE);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_strictly() {
        let a = parse_answer(
            br#"{"customer":"c-1","valid_from":"2026-01-01T00:00:00Z","valid_until":null}"#,
        )
        .unwrap();
        assert_eq!(a.customer.as_deref(), Some("c-1"));
        assert!(a.valid_from.is_some() && a.valid_until.is_none());
        assert_eq!(
            parse_answer(br#"{"customer":null}"#).unwrap().customer,
            None
        );
        assert_eq!(
            parse_answer(br#"{"customer":"  "}"#).unwrap().customer,
            None
        );
        assert!(parse_answer(b"not json").is_err());
        assert!(parse_answer(br#"{"customer":"c","valid_from":"yesterday"}"#).is_err());
        assert!(parse_answer(br#"{"customer":"a\u0007b"}"#).is_err());
        let long = format!(r#"{{"customer":"{}"}}"#, "x".repeat(201));
        assert!(parse_answer(long.as_bytes()).is_err());
    }
}

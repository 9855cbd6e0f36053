//! Passwords, session tokens, CSRF tokens and the login limiter: the
//! console's rules about who is who. Pure, except for the randomness of a
//! new token and the cost of a password hash.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::time::Instant;

/// A new random token: 32 bytes from the system's generator, as hex.
///
/// # Panics
/// Never in practice: the system's random generator does not fail on
/// Linux once booted.
pub fn new_token() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random generator works");
    hex(&bytes)
}

/// What the store keeps of a session token: its SHA-256, so a copy of the
/// store logs nobody in.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two tokens are equal, in time that does not depend on where
/// they first differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// An Argon2id hash of `password` in PHC form (the crate's defaults:
/// 19 MiB, 2 passes).
///
/// # Errors
/// The password is empty or longer than 1,024 bytes.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use ring::rand::SecureRandom;
    if password.is_empty() || password.len() > 1024 {
        return Err("a password must be 1 to 1,024 bytes long".to_owned());
    }
    let mut random = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| "the system random generator failed".to_owned())?;
    let salt = SaltString::encode_b64(&random).map_err(|e| format!("cannot make a salt: {e}"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    if password.len() > 1024 {
        return false;
    }
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub absolute: Duration,
}

/// Whether a session started at `created` and last used at `last_seen` is
/// still good at `now`.
pub fn is_live(created: &str, last_seen: &str, now: DateTime<Utc>, limits: Lifetimes) -> bool {
    let parse = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|t| t.to_utc());
    match (parse(created), parse(last_seen)) {
        (Some(created), Some(seen)) => {
            now - created < limits.absolute && now - seen < limits.idle && created <= now
        }
        _ => false,
    }
}

/// The window failed logins are counted in.
pub const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Failed logins per client address and per account name, in windows of
/// [`LOGIN_WINDOW`]. At most [`LoginLimiter::MAX_KEYS`] keys are kept: past
/// that, the oldest windows are dropped first (an attacker spraying names
/// cannot grow it without bound).
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: u32,
    failures: HashMap<String, (Instant, u32)>,
}

impl LoginLimiter {
    pub const MAX_KEYS: usize = 10_000;

    pub fn new(max_failures: u32) -> LoginLimiter {
        LoginLimiter {
            max_failures,
            failures: HashMap::new(),
        }
    }

    /// Whether a login from `address` to `name` may be tried at `now`.
    pub fn allows(&self, address: &str, name: &str, now: Instant) -> bool {
        [format!("addr:{address}"), format!("name:{name}")]
            .iter()
            .all(|key| match self.failures.get(key) {
                Some((start, count)) => {
                    now.duration_since(*start) >= LOGIN_WINDOW || *count < self.max_failures
                }
                None => true,
            })
    }

    /// Counts a failed login.
    pub fn failed(&mut self, address: &str, name: &str, now: Instant) {
        if self.failures.len() >= Self::MAX_KEYS {
            self.failures
                .retain(|_, (start, _)| now.duration_since(*start) < LOGIN_WINDOW);
            if self.failures.len() >= Self::MAX_KEYS {
                let mut starts: Vec<Instant> = self.failures.values().map(|(s, _)| *s).collect();
                starts.sort();
                let cut = starts[starts.len() / 2];
                self.failures.retain(|_, (start, _)| *start > cut);
            }
        }
        for key in [format!("addr:{address}"), format!("name:{name}")] {
            let entry = self.failures.entry(key).or_insert((now, 0));
            if now.duration_since(entry.0) >= LOGIN_WINDOW {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
    }

    /// Forgets the name's failures after a good login (the address's stay).
    pub fn succeeded(&mut self, name: &str) {
        self.failures.remove(&format!("name:{name}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_and_nothing_else() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(hash_password("").is_err());
    }

    #[test]
    fn tokens_are_long_random_and_stored_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(token_hash(&a), a);
        assert!(same_token(&a, &a.clone()) && !same_token(&a, &b) && !same_token(&a, ""));
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let limits = Lifetimes {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        };
        let now = DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z")
            .unwrap()
            .to_utc();
        assert!(is_live(
            "2026-12-04T08:00:00Z",
            "2026-12-04T11:45:00Z",
            now,
            limits
        ));
        assert!(!is_live(
            "2026-12-04T08:00:00Z",
            "2026-12-04T11:00:00Z",
            now,
            limits
        ));
        assert!(!is_live(
            "2026-12-03T23:00:00Z",
            "2026-12-04T11:59:00Z",
            now,
            limits
        ));
        assert!(!is_live("garbage", "2026-12-04T11:59:00Z", now, limits));
    }

    #[test]
    fn failed_logins_are_limited_per_address_and_per_name() {
        let mut limiter = LoginLimiter::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.allows("192.0.2.1", "ana", t0));
            limiter.failed("192.0.2.1", "ana", t0);
        }
        assert!(
            !limiter.allows("192.0.2.1", "bob", t0),
            "the address is spent"
        );
        assert!(!limiter.allows("192.0.2.9", "ana", t0), "the name is spent");
        assert!(limiter.allows("192.0.2.9", "bob", t0));
        assert!(limiter.allows("192.0.2.1", "ana", t0 + LOGIN_WINDOW));
        for i in 0..(LoginLimiter::MAX_KEYS * 2) {
            limiter.failed(&format!("10.0.{}.{}", i / 256, i % 256), "x", t0);
        }
        assert!(limiter.failures.len() <= LoginLimiter::MAX_KEYS);
    }
}

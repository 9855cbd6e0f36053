//! Passwords, session tokens, CSRF tokens and the login limiter: the
//! console's rules about who is who. Pure, except for the randomness of a
//! new token and the cost of a password hash.

use chrono::{DateTime, Duration, Utc};

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

/// The keys failed logins are counted under: the client's address and
/// the name tried, each limited on its own.
pub fn login_keys(address: &str, name: &str) -> [String; 2] {
    [format!("addr:{address}"), format!("name:{name}")]
}

/// The key a good login clears: the name's (the address's failures stay).
pub fn name_key(name: &str) -> String {
    format!("name:{name}")
}

/// Windows of failed logins that began at or before this are over at `now`.
pub fn login_windows_over(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::from_std(LOGIN_WINDOW).unwrap_or(Duration::minutes(15))
}

/// Whether a login may be tried after `failures` in the current window,
/// with at most `max_failures` allowed.
pub fn login_allowed(failures: u64, max_failures: u32) -> bool {
    failures < u64::from(max_failures)
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
    fn failed_logins_are_limited_per_address_and_per_name_in_the_store() {
        // In the store, so every console process on it counts the same.
        let dir = tempfile::tempdir().unwrap();
        let mut db =
            crate::store::Db::open(&dir.path().join("s.db"), crate::store::Role::Cli).unwrap();
        let t0: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap();
        let at = |t: DateTime<Utc>| crate::rfc3339(t);
        let allowed = |db: &crate::store::Db, address: &str, name: &str, t: DateTime<Utc>| {
            let keys = login_keys(address, name);
            login_allowed(
                db.login_failures(&keys, &at(login_windows_over(t)))
                    .unwrap(),
                3,
            )
        };
        for _ in 0..3 {
            assert!(allowed(&db, "192.0.2.1", "ana", t0));
            db.count_login_failure(
                &login_keys("192.0.2.1", "ana"),
                &at(t0),
                &at(login_windows_over(t0)),
            )
            .unwrap();
        }
        assert!(
            !allowed(&db, "192.0.2.1", "bob", t0),
            "the address is spent"
        );
        assert!(!allowed(&db, "192.0.2.9", "ana", t0), "the name is spent");
        assert!(allowed(&db, "192.0.2.9", "bob", t0));
        let later = t0 + Duration::from_std(LOGIN_WINDOW).unwrap();
        assert!(
            allowed(&db, "192.0.2.1", "ana", later),
            "the window is over"
        );
        // A good login clears the name, not the address.
        db.clear_login_failures(&name_key("ana")).unwrap();
        assert!(allowed(&db, "192.0.2.9", "ana", t0));
        assert!(!allowed(&db, "192.0.2.1", "bob", t0));
        // A failure after the window starts a new one, and the windows that
        // are over leave the table.
        db.count_login_failure(
            &login_keys("198.51.100.1", "eve"),
            &at(later),
            &at(login_windows_over(later)),
        )
        .unwrap();
        assert!(allowed(&db, "192.0.2.1", "ana", later));
        assert_eq!(
            db.login_failures(&login_keys("192.0.2.1", "ana"), "0")
                .unwrap(),
            0,
            "the old windows were deleted"
        );
    }
}

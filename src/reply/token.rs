//! Follow-up tokens: which report a reply of ours belongs to, in a form only
//! the person we mailed can know.
//!
//! In: the installation's secret (random, made once per database by
//! migration 0010) and a report id. Out: a short token, an HMAC-SHA256 of
//! the id under the secret. Our Message-IDs (`abuse-ID.N.TOKEN@domain`) and
//! subject tags (`[abuse #ID-TOKEN]`) carry it; a follow-up that quotes a
//! report id without the right token is not recognised by it. Pure.

pub use crate::model::reply::Claim;
use sha2::{Digest, Sha256};

/// Characters of a token: 40 bits, base32.
pub const TOKEN_CHARS: usize = 8;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A UUID (version 4 layout) for report `id` in this installation: unique
/// across installations (the secret), the same on every export.
pub fn report_uuid(secret: &[u8], id: i64) -> String {
    let mac = hmac_sha256(secret, format!("abuse-inbox xarf report {id}").as_bytes());
    let mut b: [u8; 16] = mac[..16].try_into().expect("16 of 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The token of report `id`.
pub fn token(secret: &[u8], id: i64) -> String {
    token_of(secret, &format!("abuse-inbox report {id}"))
}

/// The token of case `id`: another message under the same secret, so a
/// report's token never opens the case of the same number.
pub fn case_token(secret: &[u8], id: i64) -> String {
    token_of(secret, &format!("abuse-inbox case {id}"))
}

fn token_of(secret: &[u8], what: &str) -> String {
    let mac = hmac_sha256(secret, what.as_bytes());
    let bits = mac[..5]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    (0..TOKEN_CHARS)
        .rev()
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// Whether `claimed` is report `id`'s token (case-insensitive, as mail
/// clients may change the case of a subject; compared in constant time).
pub fn is_valid(secret: &[u8], id: i64, claimed: &str) -> bool {
    same_token(&token(secret, id), claimed)
}

/// Whether `claimed` is case `id`'s token.
pub fn is_valid_case(secret: &[u8], id: i64, claimed: &str) -> bool {
    same_token(&case_token(secret, id), claimed)
}

fn same_token(expected: &str, claimed: &str) -> bool {
    claimed.len() == expected.len()
        && claimed
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a.to_ascii_lowercase() ^ b))
            == 0
}

/// Our Message-ID for reply number `n` of report `id`, without brackets.
pub fn message_id(secret: &[u8], id: i64, n: i64, domain: &str) -> String {
    format!("abuse-{id}.{n}.{}@{domain}", token(secret, id))
}

/// The subject tag of report `id`.
pub fn subject_tag(secret: &[u8], id: i64) -> String {
    format!("[abuse #{id}-{}]", token(secret, id))
}

/// Our Message-ID for notice `n` of case `id` (`n0`, `r0`, `e`, …),
/// without brackets.
pub fn case_message_id(secret: &[u8], id: i64, n: &str, domain: &str) -> String {
    format!("case-{id}.{n}.{}@{domain}", case_token(secret, id))
}

/// The subject tag of case `id`.
pub fn case_subject_tag(secret: &[u8], id: i64) -> String {
    format!("[case #{id}-{}]", case_token(secret, id))
}

/// The claim in one of our Message-IDs (`abuse-ID.N[.TOKEN]@domain`).
pub fn claim_in_message_id(id: &str, our_domain: &str) -> Option<Claim> {
    claim_in_our_id(id, our_domain, "abuse-")
}

/// The case claimed by one of our notices' Message-IDs
/// (`case-ID.N.TOKEN@domain`).
pub fn case_claim_in_message_id(id: &str, our_domain: &str) -> Option<Claim> {
    claim_in_our_id(id, our_domain, "case-")
}

fn claim_in_our_id(id: &str, our_domain: &str, prefix: &str) -> Option<Claim> {
    let (local, host) = id.split_once('@')?;
    if !host.eq_ignore_ascii_case(our_domain) {
        return None;
    }
    let mut parts = local.strip_prefix(prefix)?.split('.');
    let report = parts.next()?.parse().ok()?;
    let _n = parts.next()?;
    Some(Claim {
        id: report,
        token: parts.next().map(str::to_owned),
    })
}

/// The claim in a subject tag (`[abuse #ID-TOKEN]` or `[abuse #ID]`).
pub fn claim_in_subject(subject: &str) -> Option<Claim> {
    claim_in_tag(subject, "[abuse #")
}

/// The case claimed by a subject tag (`[case #ID-TOKEN]`).
pub fn case_claim_in_subject(subject: &str) -> Option<Claim> {
    claim_in_tag(subject, "[case #")
}

fn claim_in_tag(subject: &str, opening: &str) -> Option<Claim> {
    let at = subject.find(opening)?;
    let rest = &subject[at + opening.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..digits].parse().ok()?;
    let token = rest[digits..]
        .strip_prefix('-')
        .and_then(|t| t.split(']').next())
        .filter(|t| t.len() == TOKEN_CHARS)
        .map(str::to_owned);
    Some(Claim { id, token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_uuids_are_version_4_and_differ_by_report_and_installation() {
        let a = report_uuid(b"s", 1);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(a, report_uuid(b"s", 2));
        assert_ne!(a, report_uuid(b"t", 1));
        assert_eq!(a, report_uuid(b"s", 1));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tokens_differ_per_report_and_installation_and_verify() {
        let a = token(b"secret-a", 7);
        assert_eq!(a.len(), TOKEN_CHARS);
        assert_ne!(a, token(b"secret-a", 8));
        assert_ne!(a, token(b"secret-b", 7));
        assert!(is_valid(b"secret-a", 7, &a));
        assert!(is_valid(b"secret-a", 7, &a.to_ascii_uppercase()));
        assert!(!is_valid(b"secret-a", 8, &a));
        assert!(!is_valid(b"secret-a", 7, ""));
    }

    #[test]
    fn claims_are_read_from_our_message_ids_and_subject_tags() {
        let id = message_id(b"s", 42, 1, "example.com");
        let claim = claim_in_message_id(&id, "EXAMPLE.com").unwrap();
        assert_eq!(claim.id, 42);
        assert!(is_valid(b"s", 42, claim.token.as_deref().unwrap()));
        assert_eq!(claim_in_message_id(&id, "other.example"), None);
        let tag = subject_tag(b"s", 42);
        let subject = format!("Re: {tag} Acknowledged");
        let claim = claim_in_subject(&subject).unwrap();
        assert_eq!(claim.id, 42);
        assert!(is_valid(b"s", 42, claim.token.as_deref().unwrap()));
        // A case's token is not its report's, and the other way round.
        let case_tag = case_subject_tag(b"s", 42);
        let claim = case_claim_in_subject(&format!("Re: {case_tag}")).unwrap();
        assert!(is_valid_case(b"s", 42, claim.token.as_deref().unwrap()));
        assert!(!is_valid(b"s", 42, claim.token.as_deref().unwrap()));
        assert!(!is_valid_case(b"s", 42, &token(b"s", 42)));
        let case_id = case_message_id(b"s", 42, "n3", "example.com");
        assert_eq!(claim_in_message_id(&case_id, "example.com"), None);
        assert_eq!(
            case_claim_in_message_id(&case_id, "example.com").map(|c| c.id),
            Some(42)
        );
        assert_eq!(
            claim_in_subject("Re: [abuse #42] x"),
            Some(Claim {
                id: 42,
                token: None
            })
        );
    }
}

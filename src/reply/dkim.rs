//! DKIM signatures on what we send (replies to reporters, notices to
//! customers), with the desk's key (`reply.dkim_key`, `reply.dkim_selector`,
//! the domain of `reply.from`). A receiver that checks DKIM and DMARC then
//! knows the mail is the desk's, and a forger's "notice" is not.
//!
//! In: the key's PEM text (RSA, PKCS#1 or PKCS#8; Ed25519, PKCS#8) and the
//! message's bytes. Out: the bytes with a `DKIM-Signature` in front. Pure.

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

/// The headers signed, those a message of ours has (a header signed but
/// absent is still covered: adding it later breaks the signature).
const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Auto-Submitted",
    "X-Abuse-Inbox-Reply",
];

/// The desk's signer.
pub enum Signer {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signer::Rsa(_) => "Signer(rsa-sha256)",
            Signer::Ed25519(_) => "Signer(ed25519-sha256)",
        })
    }
}

impl Signer {
    /// A signer for `domain` and `selector` with the key in `pem`.
    ///
    /// # Errors
    /// The PEM is not a key we can sign with, or the domain or selector is
    /// empty; the text says which.
    pub fn new(pem: &str, domain: &str, selector: &str) -> Result<Signer, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::PrivateKeyDer;
        if domain.is_empty() || selector.is_empty() {
            return Err("a domain (from reply.from) and a selector are needed".into());
        }
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in it (a PEM \"PRIVATE KEY\" or \"RSA PRIVATE KEY\")".to_owned()
            }
            other => format!("not a readable PEM private key: {other:?}"),
        })?;
        if let PrivateKeyDer::Pkcs8(der) = &key {
            if let Ok(ed) = Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_pkcs8_der()) {
                return Ok(Signer::Ed25519(finish(
                    DkimSigner::from_key(ed),
                    domain,
                    selector,
                )));
            }
        }
        let rsa = RsaKey::<Sha256>::from_key_der(key)
            .map_err(|e| format!("neither an Ed25519 nor an RSA key: {e}"))?;
        Ok(Signer::Rsa(finish(
            DkimSigner::from_key(rsa),
            domain,
            selector,
        )))
    }

    /// `message` with its `DKIM-Signature` header in front.
    ///
    /// # Errors
    /// The message has none of the signed headers.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let signature = match self {
            Signer::Rsa(s) => s.sign(message),
            Signer::Ed25519(s) => s.sign(message),
        }
        .map_err(|e| format!("DKIM signing: {e}"))?;
        let mut out = mail_auth::common::headers::HeaderWriter::to_header(&signature).into_bytes();
        out.extend_from_slice(message);
        Ok(out)
    }
}

fn finish<T: mail_auth::common::crypto::SigningKey>(
    signer: mail_auth::dkim::DkimSigner<T, mail_auth::dkim::NeedDomain>,
    domain: &str,
    selector: &str,
) -> DkimSigner<T, Done> {
    signer
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = data_encoding::BASE64.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn an_ed25519_key_signs_and_bad_keys_are_named() {
        let der = Ed25519Key::generate_pkcs8().unwrap();
        let signer = Signer::new(&pem("PRIVATE KEY", &der), "example.com", "desk").unwrap();
        let message = b"From: abuse@example.com\r\nTo: a@b.example\r\nSubject: x\r\n\r\nbody\r\n";
        let signed = String::from_utf8(signer.sign(message).unwrap()).unwrap();
        assert!(
            signed.starts_with("DKIM-Signature: v=1; a=ed25519-sha256;"),
            "{signed}"
        );
        assert!(signed.contains("d=example.com"), "{signed}");
        assert!(signed.contains("s=desk"), "{signed}");
        assert!(signed.ends_with("\r\n\r\nbody\r\n"));
        for (text, problem) in [
            ("hello", "no private key"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "no private key",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\n%%%\n-----END PRIVATE KEY-----\n",
                "not a readable",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "neither",
            ),
        ] {
            let error = Signer::new(text, "example.com", "desk").unwrap_err();
            assert!(error.contains(problem), "{text}: {error}");
        }
        assert!(Signer::new(&pem("PRIVATE KEY", &der), "example.com", "").is_err());
    }
}

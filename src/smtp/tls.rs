//! STARTTLS: the server side of RFC 3207 with rustls.
//!
//! In: `[tls]` (PEM certificate chain and key). Out: a `TlsAcceptor`, or
//! `None` when TLS is not configured. A bad file is a start-up error naming
//! the key.

use crate::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The acceptor for `config`, or `None` without a certificate.
///
/// # Errors
/// A file cannot be read or parsed, or the key does not fit the certificate;
/// the message names `tls.cert_file` or `tls.key_file`.
pub fn acceptor(config: &TlsConfig) -> Result<Option<TlsAcceptor>, String> {
    let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) else {
        return Ok(None);
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("tls.cert_file: {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "tls.cert_file: {}: no certificate in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls.key_file: {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls.key_file: does not fit tls.cert_file: {e}"))?;
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

//! The certificate authorities an actor's outbound `https` requests trust:
//! the Mozilla roots (webpki-roots, compiled in, the same on every
//! machine), plus the private authorities the host is told to trust
//! (`troupe run --http-ca FILE`), for services inside an organisation
//! whose certificates no public authority signs.
//!
//! The platform's own store is not read: what a guest may reach then does
//! not depend on the machine the host runs on.
//!
//! The roots are the process's: [`HttpTls::install`] sets them once, before
//! any grant is made (the binary does so from `--http-ca`), and every
//! [`HttpClient`](super::HttpClient) made afterwards without roots of its
//! own ([`HttpClient::with_parts`](super::HttpClient::with_parts)) trusts
//! them. A grant is made when a manifest is read, long before an actor of
//! a host sends anything, so the roots cannot come from the host that
//! later runs the actor.

use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The roots outbound `https` trusts (see the module doc): by default the
/// Mozilla roots only. Cloning shares them.
#[derive(Clone)]
pub struct HttpTls {
    connector: tokio_rustls::TlsConnector,
    /// Private authorities added to the Mozilla roots.
    extra: usize,
}

/// A certificate authority that cannot be trusted as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsRootsError {
    /// The PEM text holds no certificate.
    #[error("{source_name}: no `BEGIN CERTIFICATE` block; give the CA's certificate in PEM")]
    NoCertificate {
        /// Where the text came from (a file name).
        source_name: String,
    },
    /// A PEM block does not decode.
    #[error("{source_name}: not valid PEM: {reason}")]
    Pem {
        /// Where the text came from.
        source_name: String,
        /// What the decoder said.
        reason: String,
    },
    /// A certificate is not one rustls can use as a root.
    #[error("{source_name}: not usable as a certificate authority: {reason}")]
    Certificate {
        /// Where the text came from.
        source_name: String,
        /// Why.
        reason: String,
    },
}

/// The process's roots (see the module doc).
static INSTALLED: OnceLock<HttpTls> = OnceLock::new();

impl Default for HttpTls {
    /// The roots [`HttpTls::install`] installed, else the Mozilla roots.
    fn default() -> Self {
        INSTALLED
            .get_or_init(|| HttpTls::with_authorities(Vec::new()).expect("the Mozilla roots alone are valid"))
            .clone()
    }
}

impl fmt::Debug for HttpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTls").field("extra_authorities", &self.extra).finish()
    }
}

impl HttpTls {
    /// The Mozilla roots plus every certificate in the PEM `text` (from
    /// `source_name`, for errors; several files are given concatenated).
    ///
    /// # Errors
    ///
    /// A [`TlsRootsError`] if `text` holds no certificate, or one that does
    /// not decode or cannot be a root.
    pub fn with_pem_authorities(text: &[u8], source_name: &str) -> Result<Self, TlsRootsError> {
        let certificates = CertificateDer::pem_slice_iter(text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsRootsError::Pem { source_name: source_name.to_string(), reason: e.to_string() })?;
        if certificates.is_empty() {
            return Err(TlsRootsError::NoCertificate { source_name: source_name.to_string() });
        }
        HttpTls::with_authorities(certificates)
            .map_err(|reason| TlsRootsError::Certificate { source_name: source_name.to_string(), reason })
    }

    fn with_authorities(extra: Vec<CertificateDer<'static>>) -> Result<Self, String> {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        let count = extra.len();
        for certificate in extra {
            roots.add(certificate).map_err(|e| e.to_string())?;
        }
        let config =
            ClientConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(HttpTls { connector: tokio_rustls::TlsConnector::from(Arc::new(config)), extra: count })
    }

    /// Makes these the roots of every client made from now on without roots
    /// of its own (see the module doc).
    ///
    /// # Errors
    ///
    /// These roots back if the process's roots were installed, or already
    /// used, before: they are set once, at start.
    pub fn install(self) -> Result<(), HttpTls> {
        INSTALLED.set(self)
    }

    /// How many private authorities are trusted beside the Mozilla roots.
    pub fn private_authorities(&self) -> usize {
        self.extra
    }

    /// The connector for a request.
    pub(crate) fn connector(&self) -> &tokio_rustls::TlsConnector {
        &self.connector
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_a_certificate_is_refused_naming_its_source() {
        let err = HttpTls::with_pem_authorities(b"not a certificate", "ca.pem").unwrap_err();
        assert_eq!(err, TlsRootsError::NoCertificate { source_name: "ca.pem".into() });
        assert_eq!(err.to_string(), "ca.pem: no `BEGIN CERTIFICATE` block; give the CA's certificate in PEM");
    }

    #[test]
    fn the_default_trusts_the_mozilla_roots_only() {
        assert_eq!(HttpTls::default().private_authorities(), 0);
    }
}

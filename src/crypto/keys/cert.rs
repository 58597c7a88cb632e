//! x509 certificate files (PEM or DER, as ocicrypt's `utils.ParseCertificate`): PKCS#7
//! recipients, and the certificates PKCS#7 decryption matches recipients with.

use std::path::Path;

use openssl::x509::X509;

use super::pem;
use crate::crypto::error::{CryptoError, Result};

/// Every certificate in a PEM file (in order), or the one DER certificate. `None` when the
/// bytes hold no certificate at all.
pub(super) fn parse_all(data: &[u8], source: &Path) -> Result<Option<Vec<X509>>> {
    if pem::is_pem(data) {
        let mut out = Vec::new();
        for block in pem::blocks(data).iter().filter(|b| b.is_certificate()) {
            out.push(X509::from_pem(block.text).map_err(|_| CryptoError::Key {
                path: source.into(),
                reason: format!(
                    "cannot parse its {} PEM block: the certificate is damaged",
                    block.label
                ),
            })?);
        }
        return Ok((!out.is_empty()).then_some(out));
    }
    Ok(X509::from_der(data).ok().map(|c| vec![c]))
}

//! JWE key wrapping as go-jose does it for ocicrypt (`keywrap/jwe/keywrapper_jwe.go`).
//! (Body: see the helper's implementation.)

use zeroize::Zeroizing;

use super::KeyWrapper;
use crate::crypto::config::{DecryptConfig, EncryptConfig};
use crate::crypto::error::{CryptoError, Result};
use crate::crypto::keys::{PrivateKey, PublicKey};

/// The `jwe` scheme.
#[derive(Debug, Clone, Copy, Default)]
pub struct JweKeyWrapper;

/// Encrypt `plaintext` for the recipients, A256GCM content encryption; the JSON serialization
/// (flattened for one recipient, general for several).
pub fn encrypt(recipients: &[&PublicKey], plaintext: &[u8]) -> Result<Vec<u8>> {
    let _ = (recipients, plaintext);
    Err(CryptoError::Jwe("not built yet".into()))
}

/// Decrypt a JWE JSON serialization with the first key that opens it.
pub fn decrypt(keys: &[&PrivateKey], jwe: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let _ = (keys, jwe);
    Err(CryptoError::Jwe("not built yet".into()))
}

impl KeyWrapper for JweKeyWrapper {
    fn scheme(&self) -> &str {
        "jwe"
    }

    fn wrap_keys(&self, ec: &EncryptConfig, opts_data: &[u8]) -> Result<Option<Vec<u8>>> {
        let recipients = ec.jwe_recipients();
        if recipients.is_empty() {
            return Ok(None);
        }
        encrypt(&recipients, opts_data).map(Some)
    }

    fn unwrap_key(&self, dc: &DecryptConfig, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let keys: Vec<&PrivateKey> = dc.private_keys().iter().collect();
        decrypt(&keys, blob)
    }

    fn no_possible_keys(&self, dc: &DecryptConfig) -> bool {
        dc.private_keys().is_empty()
    }

    fn recipients(&self, _blob: &[u8]) -> Vec<String> {
        vec!["[jwe]".to_string()]
    }
}

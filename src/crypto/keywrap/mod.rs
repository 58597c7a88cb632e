//! Key wrappers: each scheme wraps the private options JSON for its recipients and unwraps it
//! with the caller's keys (ocicrypt `keywrap.KeyWrapper`).

pub mod jwe;
pub mod keyprovider;
pub mod pgp;
pub mod pkcs11;
pub mod pkcs7;

use zeroize::Zeroizing;

use super::config::{DecryptConfig, EncryptConfig};
use super::error::Result;
use super::ANN_KEYS_PREFIX;

/// One key-wrapping scheme (`jwe`, later `pgp`, `pkcs7`, `pkcs11`, `provider.NAME`).
pub trait KeyWrapper: Send + Sync {
    /// The scheme name, the suffix of its annotation (`jwe`).
    fn scheme(&self) -> &str;

    /// The annotation that holds this scheme's wrapped keys.
    fn annotation_id(&self) -> String {
        format!("{ANN_KEYS_PREFIX}{}", self.scheme())
    }

    /// Wrap `opts_data` (the private options JSON) for every recipient of this scheme in `ec`:
    /// one blob for all of them, or `None` when `ec` has no recipient of this scheme.
    fn wrap_keys(&self, ec: &EncryptConfig, opts_data: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Unwrap one blob (already base64-decoded from the annotation) with the keys in `dc`.
    fn unwrap_key(&self, dc: &DecryptConfig, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>>;

    /// True when `dc` holds no key this scheme could use (the scheme is then skipped).
    fn no_possible_keys(&self, dc: &DecryptConfig) -> bool;

    /// The recipients of one blob, for `layerinfo` (`[jwe]` for JWE, as ocicrypt prints).
    fn recipients(&self, blob: &[u8]) -> Vec<String>;
}

/// Every key wrapper rrun knows, in the order unwrapping tries them: the built-in schemes, then
/// one `provider.NAME` wrapper per provider of `OCICRYPT_KEYPROVIDER_CONFIG`.
pub fn all() -> Vec<Box<dyn KeyWrapper>> {
    let mut out: Vec<Box<dyn KeyWrapper>> = vec![
        Box::new(jwe::JweKeyWrapper),
        Box::new(pgp::PgpKeyWrapper::default()),
        Box::new(pkcs7::Pkcs7KeyWrapper),
        Box::new(pkcs11::Pkcs11KeyWrapper),
    ];
    for w in keyprovider::KeyProviderKeyWrapper::from_env() {
        out.push(Box::new(w));
    }
    out
}

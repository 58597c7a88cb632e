//! Which keys are usable: RSA and EC on P-256/P-384/P-521, as go-jose (ocicrypt's JWE) allows.

use std::path::Path;

use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKeyRef};

use super::MIN_RSA_BITS;
use crate::crypto::error::{CryptoError, Result};

/// The EC curves a JWE ECDH-ES key may use.
const CURVES: [(Nid, &str); 3] = [
    (Nid::X9_62_PRIME256V1, "P-256"),
    (Nid::SECP384R1, "P-384"),
    (Nid::SECP521R1, "P-521"),
];

/// The JWK `crv` name of a usable curve.
pub(super) fn curve_nid(crv: &str) -> Option<Nid> {
    CURVES.iter().find(|(_, n)| *n == crv).map(|(nid, _)| *nid)
}

/// The key type, for messages: "RSA-2048", "EC P-256", "ed25519".
pub(super) fn describe<T: HasPublic>(pkey: &PKeyRef<T>) -> String {
    match pkey.id() {
        Id::RSA => format!("RSA-{}", pkey.bits()),
        Id::EC => format!("EC {}", curve_name(pkey)),
        other => type_name(other),
    }
}

/// Refuse anything but RSA and EC P-256/P-384/P-521, naming what was found.
pub(super) fn check_usable<T: HasPublic>(pkey: &PKeyRef<T>, source: &Path) -> Result<()> {
    match pkey.id() {
        Id::RSA => Ok(()),
        Id::EC => {
            let nid = pkey.ec_key().ok().and_then(|k| k.group().curve_name());
            if CURVES.iter().any(|(n, _)| Some(*n) == nid) {
                Ok(())
            } else {
                Err(unsupported(&format!("EC {}", curve_name(pkey)), source))
            }
        }
        other => Err(unsupported(&type_name(other), source)),
    }
}

/// The error for a key type rrun cannot use, naming it.
pub(super) fn unsupported(what: &str, source: &Path) -> CryptoError {
    CryptoError::Key {
        path: source.into(),
        reason: format!("{what} keys are not supported: use an RSA or EC P-256/P-384/P-521 key"),
    }
}

/// Refuse RSA recipient keys under [`MIN_RSA_BITS`] bits.
pub(super) fn check_recipient_size<T: HasPublic>(pkey: &PKeyRef<T>, source: &Path) -> Result<()> {
    if pkey.id() == Id::RSA && pkey.bits() < MIN_RSA_BITS {
        return Err(CryptoError::Key {
            path: source.into(),
            reason: format!(
                "RSA key of {} bits is too weak: recipients need at least {MIN_RSA_BITS} bits",
                pkey.bits()
            ),
        });
    }
    Ok(())
}

fn curve_name<T: HasPublic>(pkey: &PKeyRef<T>) -> String {
    let Some(nid) = pkey.ec_key().ok().and_then(|k| k.group().curve_name()) else {
        return "with explicit curve parameters".into();
    };
    if let Some((_, name)) = CURVES.iter().find(|(n, _)| *n == nid) {
        return (*name).into();
    }
    nid.short_name()
        .map(str::to_owned)
        .unwrap_or_else(|_| format!("curve {}", nid.as_raw()))
}

fn type_name(id: Id) -> String {
    match id {
        Id::ED25519 => "ed25519".into(),
        Id::ED448 => "ed448".into(),
        Id::X25519 => "x25519".into(),
        Id::X448 => "x448".into(),
        Id::DSA => "DSA".into(),
        Id::DH => "DH".into(),
        Id::RSA_PSS => "RSA-PSS (signature-only)".into(),
        other => Nid::from_raw(other.as_raw())
            .short_name()
            .map(str::to_owned)
            .unwrap_or_else(|_| format!("key type {}", other.as_raw())),
    }
}

//! The individual checks of the update workflow: signature thresholds over distinct keys,
//! expiry, version monotonicity, and the length and hashes of downloaded bytes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use super::error::{Result, TrustError};
use super::keys::PublicKey;
use super::metadata::{Dialect, Envelope, RoleKeys};

/// Outcome of checking an envelope against a role's keys.
#[derive(Debug, Clone, Default)]
pub struct SignatureCount {
    /// Distinct key ids (listed for the role) with a valid signature.
    pub valid: Vec<String>,
    /// The first listed key whose signature did not verify.
    pub bad: Option<String>,
}

/// Count distinct valid signatures of keys listed for the role. Signatures by keys not listed
/// for the role are ignored; each key counts once however often it signed.
pub fn count_signatures(
    dialect: Dialect,
    env: &Envelope,
    keys: &BTreeMap<String, PublicKey>,
    role: &RoleKeys,
) -> SignatureCount {
    let listed: BTreeSet<&str> = role.keyids.iter().map(String::as_str).collect();
    let mut valid = BTreeSet::new();
    let mut bad = None;
    for s in &env.signatures {
        if !listed.contains(s.keyid.as_str()) || valid.contains(&s.keyid) {
            continue;
        }
        let Some(key) = keys.get(&s.keyid) else {
            continue;
        };
        let ok = match (&s.sig, dialect) {
            (None, _) => false,
            (Some(sig), Dialect::Notary) => {
                key.verify_notary(s.method.as_deref().unwrap_or(""), &env.message, sig)
            }
            (Some(sig), Dialect::Tuf) => key.verify_tuf(&env.message, sig),
        };
        if ok {
            valid.insert(s.keyid.clone());
        } else if bad.is_none() {
            bad = Some(s.keyid.clone());
        }
    }
    SignatureCount {
        valid: valid.into_iter().collect(),
        bad,
    }
}

/// Require `role.threshold` distinct valid signatures; returns the key ids that signed.
/// A failing listed signature under threshold is reported as `BadSignature` (tampering),
/// otherwise as `Threshold`.
pub fn verify_threshold(
    dialect: Dialect,
    role_name: &str,
    env: &Envelope,
    keys: &BTreeMap<String, PublicKey>,
    role: &RoleKeys,
) -> Result<Vec<String>> {
    let count = count_signatures(dialect, env, keys, role);
    if (count.valid.len() as u64) >= role.threshold {
        return Ok(count.valid);
    }
    match count.bad {
        Some(keyid) => Err(TrustError::BadSignature {
            role: role_name.to_string(),
            keyid,
        }),
        None => Err(TrustError::Threshold {
            role: role_name.to_string(),
            have: count.valid.len(),
            need: role.threshold as usize,
        }),
    }
}

/// Freeze-attack protection: metadata must not be expired at `now`.
pub fn check_expiry(role: &str, expires: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    if expires <= now {
        return Err(TrustError::Expired {
            role: role.to_string(),
            expires,
        });
    }
    Ok(())
}

/// Rollback protection: `got` must not be lower than the trusted `cached` version.
pub fn check_not_older(role: &str, cached: u64, got: u64) -> Result<()> {
    if got < cached {
        return Err(TrustError::Rollback {
            role: role.to_string(),
            cached,
            got,
        });
    }
    Ok(())
}

/// Digest of `data` with a TUF hash algorithm name.
pub fn digest(alg: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match alg {
        "sha224" => Sha224::digest(data).to_vec(),
        "sha256" => Sha256::digest(data).to_vec(),
        "sha384" => Sha384::digest(data).to_vec(),
        "sha512" => Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

/// Mix-and-match protection: `data` must have the length (if given) and every listed hash.
/// Unknown hash algorithms are an error (as python-tuf does), never skipped.
pub fn check_length_and_hashes(
    what: &str,
    data: &[u8],
    length: Option<u64>,
    hashes: &[(String, Vec<u8>)],
) -> Result<()> {
    if let Some(len) = length {
        if data.len() as u64 != len {
            return Err(TrustError::LengthMismatch {
                what: what.to_string(),
                expected: len,
                actual: data.len() as u64,
            });
        }
    }
    for (alg, expected) in hashes {
        let actual = digest(alg, data).ok_or_else(|| TrustError::HashMismatch {
            what: what.to_string(),
            algorithm: alg.clone(),
            expected: hex::encode(expected),
            actual: "unsupported hash algorithm".into(),
        })?;
        if &actual != expected {
            return Err(TrustError::HashMismatch {
                what: what.to_string(),
                algorithm: alg.clone(),
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_lengths() {
        let h = vec![("sha256".to_string(), Sha256::digest(b"abc").to_vec())];
        check_length_and_hashes("x", b"abc", Some(3), &h).unwrap();
        assert!(matches!(
            check_length_and_hashes("x", b"abc", Some(4), &h),
            Err(TrustError::LengthMismatch {
                expected: 4,
                actual: 3,
                ..
            })
        ));
        assert!(matches!(
            check_length_and_hashes("x", b"abd", None, &h),
            Err(TrustError::HashMismatch { .. })
        ));
        let odd = vec![("md5".to_string(), vec![0u8; 16])];
        assert!(check_length_and_hashes("x", b"abc", None, &odd).is_err());
    }

    #[test]
    fn expiry_and_rollback() {
        let t = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        check_expiry("r", t, t - chrono::Duration::seconds(1)).unwrap();
        assert!(matches!(
            check_expiry("r", t, t),
            Err(TrustError::Expired { .. })
        ));
        check_not_older("r", 3, 3).unwrap();
        assert!(matches!(
            check_not_older("r", 3, 2),
            Err(TrustError::Rollback {
                cached: 3,
                got: 2,
                ..
            })
        ));
    }
}

//! OpenPGP ECDH (RFC 6637): the curves, the KDF, AES key wrap of the session key, for
//! Curve25519 (gpg's `cv25519`) and the NIST and Brainpool curves.

use openssl::aes::{self, AesKey};
use openssl::bn::BigNumContext;
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::hash::{Hasher, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use zeroize::Zeroizing;

use crate::crypto::error::{CryptoError, Result};

/// How a curve's points and scalars are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Curve25519: points are `0x40 || u`, scalars are stored big-endian.
    X25519,
    /// A Weierstrass curve: points are uncompressed `04 || x || y`.
    Weierstrass(Nid),
}

/// A curve OpenPGP ECDH may use.
#[derive(Debug)]
pub(super) struct Curve {
    pub name: &'static str,
    /// The DER contents of its OID, as stored in the key packet.
    pub oid: &'static [u8],
    pub kind: Kind,
}

pub(super) const CURVES: [Curve; 7] = [
    Curve {
        name: "cv25519",
        oid: &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01],
        kind: Kind::X25519,
    },
    Curve {
        name: "nistp256",
        oid: &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        kind: Kind::Weierstrass(Nid::X9_62_PRIME256V1),
    },
    Curve {
        name: "nistp384",
        oid: &[0x2b, 0x81, 0x04, 0x00, 0x22],
        kind: Kind::Weierstrass(Nid::SECP384R1),
    },
    Curve {
        name: "nistp521",
        oid: &[0x2b, 0x81, 0x04, 0x00, 0x23],
        kind: Kind::Weierstrass(Nid::SECP521R1),
    },
    Curve {
        name: "brainpoolP256r1",
        oid: &[0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07],
        kind: Kind::Weierstrass(Nid::BRAINPOOL_P256R1),
    },
    Curve {
        name: "brainpoolP384r1",
        oid: &[0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b],
        kind: Kind::Weierstrass(Nid::BRAINPOOL_P384R1),
    },
    Curve {
        name: "brainpoolP512r1",
        oid: &[0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d],
        kind: Kind::Weierstrass(Nid::BRAINPOOL_P512R1),
    },
];

/// The curve with this OID.
pub(super) fn curve_by_oid(oid: &[u8]) -> Option<&'static Curve> {
    CURVES.iter().find(|c| c.oid == oid)
}

/// The KDF parameters of RFC 6637 section 8.
fn kdf_param(curve: &Curve, kdf_hash: u8, kek_algo: u8, fingerprint: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.push(curve.oid.len() as u8);
    p.extend_from_slice(curve.oid);
    p.push(super::key::algo::ECDH);
    p.extend_from_slice(&[3, 1, kdf_hash, kek_algo]);
    p.extend_from_slice(b"Anonymous Sender    ");
    p.extend_from_slice(fingerprint);
    p
}

fn digest(kdf_hash: u8) -> Option<MessageDigest> {
    match kdf_hash {
        8 => Some(MessageDigest::sha256()),
        9 => Some(MessageDigest::sha384()),
        10 => Some(MessageDigest::sha512()),
        _ => None,
    }
}

fn kek_len(kek_algo: u8) -> Option<usize> {
    match kek_algo {
        7 => Some(16),
        8 => Some(24),
        9 => Some(32),
        _ => None,
    }
}

/// The key-encryption key: `Hash(00 00 00 01 || ZZ || Param)`, truncated (section 7).
fn kek(
    zz: &[u8],
    curve: &Curve,
    kdf_hash: u8,
    kek_algo: u8,
    fingerprint: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let md = digest(kdf_hash)?;
    let len = kek_len(kek_algo)?;
    let mut h = Hasher::new(md).ok()?;
    h.update(&[0, 0, 0, 1]).ok()?;
    h.update(zz).ok()?;
    h.update(&kdf_param(curve, kdf_hash, kek_algo, fingerprint))
        .ok()?;
    let out = h.finish().ok()?;
    Some(Zeroizing::new(out.get(..len)?.to_vec()))
}

fn unsupported(what: String) -> CryptoError {
    CryptoError::InvalidRecipient {
        spec: "pgp".into(),
        reason: what,
    }
}

/// Encrypt a session-key block to an ECDH key: the ephemeral point and the wrapped block.
pub(super) fn encrypt(
    curve: &Curve,
    recipient: &[u8],
    kdf_hash: u8,
    kek_algo: u8,
    fingerprint: &[u8],
    block: &[u8],
) -> Result<(Vec<u8>, Vec<u8>)> {
    let (ephemeral, zz) = match curve.kind {
        Kind::X25519 => {
            let Some(u) = recipient.strip_prefix(&[0x40]).filter(|u| u.len() == 32) else {
                return Err(unsupported("the cv25519 key has a malformed point".into()));
            };
            let peer = PKey::public_key_from_raw_bytes(u, Id::X25519)?;
            let eph = PKey::generate_x25519()?;
            let zz = derive(&eph, &peer)?;
            let mut point = vec![0x40];
            point.extend_from_slice(&eph.raw_public_key()?);
            (point, zz)
        }
        Kind::Weierstrass(nid) => {
            let group = EcGroup::from_curve_name(nid)?;
            let mut ctx = BigNumContext::new()?;
            let peer_point = EcPoint::from_bytes(&group, recipient, &mut ctx).map_err(|_| {
                unsupported(format!("the {} key has a malformed point", curve.name))
            })?;
            let peer = PKey::from_ec_key(EcKey::from_public_key(&group, &peer_point)?)?;
            let eph = EcKey::generate(&group)?;
            let point =
                eph.public_key()
                    .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)?;
            let zz = derive(&PKey::from_ec_key(eph)?, &peer)?;
            (point, zz)
        }
    };
    let kek = kek(&zz, curve, kdf_hash, kek_algo, fingerprint).ok_or_else(|| {
        unsupported(format!(
            "the ECDH key asks for KDF hash {kdf_hash} / key wrap {kek_algo}, which OpenPGP does not define"
        ))
    })?;
    // PKCS#5 padding to a multiple of 8 bytes (section 8).
    let pad = 8 - block.len() % 8;
    let mut padded = Zeroizing::new(block.to_vec());
    padded.extend(std::iter::repeat_n(pad as u8, pad));
    let key = AesKey::new_encrypt(&kek).map_err(|_| unsupported("bad key-wrap key".into()))?;
    let mut wrapped = vec![0u8; padded.len() + 8];
    aes::wrap_key(&key, None, &mut wrapped, &padded)
        .map_err(|_| unsupported("AES key wrap failed".into()))?;
    Ok((ephemeral, wrapped))
}

/// Recover the session-key block from an ECDH PKESK, or `None` when this key does not open it.
pub(super) fn decrypt(
    curve: &Curve,
    secret: &PKey<Private>,
    ephemeral: &[u8],
    kdf_hash: u8,
    kek_algo: u8,
    fingerprint: &[u8],
    wrapped: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let zz = match curve.kind {
        Kind::X25519 => {
            let u = ephemeral.strip_prefix(&[0x40]).filter(|u| u.len() == 32)?;
            let peer = PKey::public_key_from_raw_bytes(u, Id::X25519).ok()?;
            derive(secret, &peer).ok()?
        }
        Kind::Weierstrass(nid) => {
            let group = EcGroup::from_curve_name(nid).ok()?;
            let mut ctx = BigNumContext::new().ok()?;
            let point = EcPoint::from_bytes(&group, ephemeral, &mut ctx).ok()?;
            let peer = PKey::from_ec_key(EcKey::from_public_key(&group, &point).ok()?).ok()?;
            derive(secret, &peer).ok()?
        }
    };
    let kek = kek(&zz, curve, kdf_hash, kek_algo, fingerprint)?;
    if wrapped.len() < 16 || !wrapped.len().is_multiple_of(8) {
        return None;
    }
    let key = AesKey::new_decrypt(&kek).ok()?;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len() - 8]);
    aes::unwrap_key(&key, None, &mut out, wrapped).ok()?;
    let pad = usize::from(*out.last()?);
    if pad == 0
        || pad > 8
        || pad > out.len()
        || !out[out.len() - pad..]
            .iter()
            .all(|b| usize::from(*b) == pad)
    {
        return None;
    }
    let len = out.len() - pad;
    out.truncate(len);
    Some(out)
}

fn derive<T: openssl::pkey::HasPublic>(
    mine: &PKey<Private>,
    peer: &PKey<T>,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut d = Deriver::new(mine)?;
    d.set_peer(peer)?;
    Ok(Zeroizing::new(d.derive_to_vec()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_on_every_curve() {
        let fpr = [7u8; 20];
        let block = b"\x09an-aes-256-session-key-of-32-b!\x12\x34";
        for curve in &CURVES {
            let (secret, point) = match curve.kind {
                Kind::X25519 => {
                    let k = PKey::generate_x25519().unwrap();
                    let mut p = vec![0x40];
                    p.extend_from_slice(&k.raw_public_key().unwrap());
                    (k, p)
                }
                Kind::Weierstrass(nid) => {
                    let group = EcGroup::from_curve_name(nid).unwrap();
                    let k = EcKey::generate(&group).unwrap();
                    let mut ctx = BigNumContext::new().unwrap();
                    let p = k
                        .public_key()
                        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
                        .unwrap();
                    (PKey::from_ec_key(k).unwrap(), p)
                }
            };
            let (eph, wrapped) = encrypt(curve, &point, 8, 9, &fpr, block).unwrap();
            let back = decrypt(curve, &secret, &eph, 8, 9, &fpr, &wrapped).unwrap();
            assert_eq!(back.as_slice(), block, "{}", curve.name);
            // Another fingerprint gives another KEK: the unwrap integrity check fails.
            assert!(decrypt(curve, &secret, &eph, 8, 9, &[8u8; 20], &wrapped).is_none());
        }
    }
}

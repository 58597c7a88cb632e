//! ECDH-ES key agreement for JWE (RFC 7518 section 4.6) as go-jose does it: an ephemeral key on
//! the recipient's curve, the Concat KDF over SHA-256, and the `epk` header.

use openssl::bn::{BigNum, BigNumContext};
use openssl::derive::Deriver;
use openssl::ec::{EcGroupRef, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{HasPrivate, HasPublic, PKey, PKeyRef, Private, Public};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use super::aes_kw;
use super::b64url_decode;
use super::key_alg::KeyAlg;
use crate::crypto::error::{CryptoError, Result};

/// A curve JWE names: the `crv` value and the length of one coordinate.
#[derive(Debug)]
pub(super) struct Curve {
    pub(super) name: &'static str,
    nid: Nid,
    size: usize,
}

const CURVES: [Curve; 3] = [
    Curve {
        name: "P-256",
        nid: Nid::X9_62_PRIME256V1,
        size: 32,
    },
    Curve {
        name: "P-384",
        nid: Nid::SECP384R1,
        size: 48,
    },
    Curve {
        name: "P-521",
        nid: Nid::SECP521R1,
        size: 66,
    },
];

/// The JWE curve of an OpenSSL group; `None` for curves JWE (and go-jose) cannot use.
pub(super) fn curve_of(group: &EcGroupRef) -> Option<&'static Curve> {
    let nid = group.curve_name()?;
    CURVES.iter().find(|c| c.nid == nid)
}

/// The `epk` header: the ephemeral public key as a JWK, members in go-jose's order.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Epk {
    kty: String,
    crv: String,
    x: String,
    y: String,
}

/// Agree on a key-wrapping key with the recipient and wrap `cek` under it; returns the `epk`
/// header to send and the encrypted key. apu and apv are empty, as go-jose sends them.
pub(super) fn wrap_for<T: HasPublic>(
    recipient: &PKeyRef<T>,
    alg: KeyAlg,
    cek: &[u8],
) -> Result<(Epk, Vec<u8>)> {
    let ec = recipient.ec_key()?;
    let group = ec.group();
    let curve = curve_of(group)
        .ok_or_else(|| CryptoError::Jwe("ECDH-ES needs a P-256, P-384 or P-521 key".into()))?;
    let ephemeral = EcKey::generate(group)?;
    let mut ctx = BigNumContext::new()?;
    let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
    ephemeral
        .public_key()
        .affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
    let epk = Epk {
        kty: "EC".into(),
        crv: curve.name.into(),
        x: super::b64url(&x.to_vec_padded(curve.size as i32)?),
        y: super::b64url(&y.to_vec_padded(curve.size as i32)?),
    };
    let ephemeral = PKey::from_ec_key(ephemeral)?;
    let z = agree(&ephemeral, recipient)?;
    let kek = concat_kdf(&z, alg.name(), &[], &[], alg.kek_len());
    let encrypted_key = aes_kw::wrap(&kek, cek)?;
    Ok((epk, encrypted_key))
}

/// Recover the content encryption key of one recipient with our EC key: `None` when the header
/// does not fit this key (other curve, bad `epk`/`apu`/`apv`) or the key does not open it.
pub(super) fn unwrap_with(
    key: &PKeyRef<Private>,
    alg: KeyAlg,
    header: &Map<String, Value>,
    encrypted_key: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let ec = key.ec_key().ok()?;
    let group = ec.group();
    let curve = curve_of(group)?;
    let epk: Epk = serde_json::from_value(header.get("epk")?.clone()).ok()?;
    if epk.kty != "EC" || epk.crv != curve.name {
        return None;
    }
    let coordinate = |s: &str| {
        let bytes = b64url_decode(s)?;
        (!bytes.is_empty() && bytes.len() <= curve.size).then_some(bytes)
    };
    let (x, y) = (coordinate(&epk.x)?, coordinate(&epk.y)?);
    // This refuses points that are not on our curve (invalid-curve attacks).
    let (x, y) = (BigNum::from_slice(&x).ok()?, BigNum::from_slice(&y).ok()?);
    let peer = EcKey::<Public>::from_public_key_affine_coordinates(group, &x, &y).ok()?;
    peer.check_key().ok()?;
    let party = |name: &str| match header.get(name) {
        None => Some(Vec::new()),
        Some(Value::String(s)) => b64url_decode(s),
        Some(_) => None,
    };
    let (apu, apv) = (party("apu")?, party("apv")?);
    let peer = PKey::from_ec_key(peer).ok()?;
    let z = agree(key, &peer).ok()?;
    let kek = concat_kdf(&z, alg.name(), &apu, &apv, alg.kek_len());
    aes_kw::unwrap(&kek, encrypted_key).ok()?
}

/// The ECDH shared secret Z, left-padded to the field size as OpenSSL returns it.
fn agree<T: HasPrivate, U: HasPublic>(
    ours: &PKeyRef<T>,
    peer: &PKeyRef<U>,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut deriver = Deriver::new(ours)?;
    deriver.set_peer(peer)?;
    Ok(Zeroizing::new(deriver.derive_to_vec()?))
}

/// NIST SP 800-56A Concat KDF with SHA-256 as RFC 7518 section 4.6.2 fills it in: AlgorithmID,
/// PartyUInfo and PartyVInfo length-prefixed, SuppPubInfo the key length in bits, no
/// SuppPrivInfo.
fn concat_kdf(
    z: &[u8],
    alg_id: &str,
    apu: &[u8],
    apv: &[u8],
    key_len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut other_info = Vec::with_capacity(16 + alg_id.len() + apu.len() + apv.len());
    for part in [alg_id.as_bytes(), apu, apv] {
        other_info.extend_from_slice(&(part.len() as u32).to_be_bytes());
        other_info.extend_from_slice(part);
    }
    other_info.extend_from_slice(&((key_len * 8) as u32).to_be_bytes());
    let mut out = Zeroizing::new(Vec::with_capacity(key_len + 32));
    let mut counter = 1u32;
    while out.len() < key_len {
        let mut hasher = Sha256::new();
        hasher.update(counter.to_be_bytes());
        hasher.update(z);
        hasher.update(&other_info);
        let mut block = hasher.finalize();
        out.extend_from_slice(&block);
        block.as_mut_slice().zeroize();
        counter += 1;
    }
    out.truncate(key_len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcPoint};

    fn b64(s: &str) -> Vec<u8> {
        b64url_decode(s).unwrap()
    }

    /// RFC 7518 appendix C: Bob's key, Alice's ephemeral key, apu "Alice", apv "Bob".
    #[test]
    fn rfc7518_appendix_c_key_agreement() {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let d = BigNum::from_slice(&b64("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw")).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let mut public = EcPoint::new(&group).unwrap();
        public.mul_generator2(&group, &d, &mut ctx).unwrap();
        let bob = EcKey::from_private_components(&group, &d, &public).unwrap();
        let alice = EcKey::from_public_key_affine_coordinates(
            &group,
            &BigNum::from_slice(&b64("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0")).unwrap(),
            &BigNum::from_slice(&b64("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps")).unwrap(),
        )
        .unwrap();
        let z = agree(
            &PKey::from_ec_key(bob).unwrap(),
            &PKey::from_ec_key(alice).unwrap(),
        )
        .unwrap();
        let want_z: [u8; 32] = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        assert_eq!(z.as_slice(), want_z);
        let key = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 16);
        assert_eq!(key.as_slice(), b64("VqqN6vgjbSBcIijNcacQGg"));
    }

    #[test]
    fn kdf_output_longer_than_one_hash() {
        let k = concat_kdf(&[1u8; 32], "x", &[], &[], 48);
        assert_eq!(k.len(), 48);
        assert_eq!(&k[..32], &concat_kdf(&[1u8; 32], "x", &[], &[], 48)[..32]);
        assert_ne!(&k[..32], &concat_kdf(&[1u8; 32], "x", &[], &[], 32)[..]);
    }
}

//! OpenPGP public key packets (RFC 4880 section 5.5.2, v4): algorithms and key material,
//! fingerprints and key ids, and encrypting a session key to a key (a PKESK, section 5.1).

use openssl::bn::{BigNum, BigNumContext};
use openssl::hash::{hash, MessageDigest};
use openssl::rsa::{Padding, Rsa};

use super::ecdh::{self, Curve};
use super::packet::{self, Reader};
use super::{invalid, Parse};
use crate::crypto::error::Result;

/// Public-key algorithm ids (RFC 4880 section 9.1, RFC 6637).
pub(super) mod algo {
    pub const RSA: u8 = 1;
    pub const RSA_ENCRYPT: u8 = 2;
    pub const RSA_SIGN: u8 = 3;
    pub const ELGAMAL: u8 = 16;
    pub const DSA: u8 = 17;
    pub const ECDH: u8 = 18;
    pub const ECDSA: u8 = 19;
    pub const ELGAMAL_SIGN_ENCRYPT: u8 = 20;
    pub const EDDSA: u8 = 22;
}

/// The key material rrun can use, or none for signing-only and unknown algorithms.
#[derive(Clone)]
pub(super) enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Elgamal {
        p: Vec<u8>,
        g: Vec<u8>,
        y: Vec<u8>,
    },
    Ecdh {
        curve: &'static Curve,
        point: Vec<u8>,
        kdf_hash: u8,
        kek_algo: u8,
    },
    /// Signing-only, an unknown curve, an unknown algorithm or a key version other than 4.
    Unusable(String),
}

/// A public key or subkey (v4).
#[derive(Clone)]
pub(super) struct PublicKey {
    pub algo: u8,
    pub created: u32,
    pub material: Material,
    /// The v4 fingerprint (SHA-1), empty for other versions.
    pub fingerprint: Vec<u8>,
    /// The low 64 bits of the fingerprint.
    pub key_id: u64,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} 0x{:016x}", self.describe(), self.key_id)
    }
}

impl PublicKey {
    /// Parse the public part at the start of a key packet body; returns the key and the
    /// number of bytes it took (a secret key packet continues after them).
    pub fn parse(body: &[u8]) -> Parse<(Self, usize)> {
        let mut r = Reader::new(body);
        let version = r.u8("key version")?;
        if version != 4 {
            // v3 keys are obsolete, v5/v6 keys are not produced by the gpg versions ocicrypt
            // talks to; they are skipped, not misread.
            let key = Self {
                algo: 0,
                created: 0,
                material: Material::Unusable(format!("version {version} keys")),
                fingerprint: Vec::new(),
                key_id: 0,
            };
            return Ok((key, body.len()));
        }
        let created = r.u32("key creation time")?;
        let algo = r.u8("key algorithm")?;
        let material = match algo {
            algo::RSA | algo::RSA_ENCRYPT | algo::RSA_SIGN => {
                let n = r.mpi("RSA modulus")?.to_vec();
                let e = r.mpi("RSA exponent")?.to_vec();
                if algo == algo::RSA_SIGN {
                    Material::Unusable("sign-only RSA keys".into())
                } else {
                    Material::Rsa { n, e }
                }
            }
            algo::ELGAMAL | algo::ELGAMAL_SIGN_ENCRYPT => Material::Elgamal {
                p: r.mpi("ElGamal prime")?.to_vec(),
                g: r.mpi("ElGamal generator")?.to_vec(),
                y: r.mpi("ElGamal public value")?.to_vec(),
            },
            algo::DSA => {
                for what in ["DSA p", "DSA q", "DSA g", "DSA y"] {
                    r.mpi(what)?;
                }
                Material::Unusable("DSA (signing) keys".into())
            }
            algo::ECDH => {
                let oid = curve_oid(&mut r)?;
                let point = r.mpi("ECDH point")?.to_vec();
                let kdf_len = usize::from(r.u8("ECDH KDF parameters")?);
                let kdf = r.take(kdf_len, "ECDH KDF parameters")?;
                match (ecdh::curve_by_oid(oid), kdf) {
                    (Some(curve), [1, kdf_hash, kek_algo]) => Material::Ecdh {
                        curve,
                        point,
                        kdf_hash: *kdf_hash,
                        kek_algo: *kek_algo,
                    },
                    (None, _) => Material::Unusable(format!(
                        "ECDH keys on the curve with OID {}",
                        hex::encode(oid)
                    )),
                    _ => Material::Unusable("ECDH keys with unknown KDF parameters".into()),
                }
            }
            algo::ECDSA | algo::EDDSA => {
                curve_oid(&mut r)?;
                r.mpi("EC point")?;
                Material::Unusable("ECDSA/EdDSA (signing) keys".into())
            }
            other => {
                // The layout of unknown algorithms is unknown: the rest is taken as the key.
                r.take(r.rest().len(), "key material")?;
                Material::Unusable(format!("public-key algorithm {other}"))
            }
        };
        let used = r.pos();
        let mut hashed = vec![0x99];
        hashed.extend_from_slice(&u16::try_from(used).unwrap_or(u16::MAX).to_be_bytes());
        hashed.extend_from_slice(&body[..used]);
        let fingerprint = hash(MessageDigest::sha1(), &hashed)
            .map_err(|_| super::Invalid("cannot hash the key".into()))?
            .to_vec();
        let key_id = u64::from_be_bytes(fingerprint[12..20].try_into().unwrap_or_default());
        Ok((
            Self {
                algo,
                created,
                material,
                fingerprint,
                key_id,
            },
            used,
        ))
    }

    /// True when the algorithm can encrypt and rrun knows how.
    pub fn can_encrypt(&self) -> bool {
        !matches!(self.material, Material::Unusable(_))
    }

    /// "RSA-3072", "ECDH cv25519", ...
    pub fn describe(&self) -> String {
        match &self.material {
            Material::Rsa { n, .. } => format!("RSA-{}", bits(n)),
            Material::Elgamal { p, .. } => format!("ElGamal-{}", bits(p)),
            Material::Ecdh { curve, .. } => format!("ECDH {}", curve.name),
            Material::Unusable(what) => format!("unusable ({what})"),
        }
    }

    /// A v3 PKESK body carrying `block` (algorithm, session key, checksum) for this key.
    pub fn encrypt_session_key(&self, block: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![3];
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.push(self.algo);
        match &self.material {
            Material::Rsa { n, e } => {
                let rsa =
                    Rsa::from_public_components(BigNum::from_slice(n)?, BigNum::from_slice(e)?)?;
                let mut buf = vec![0u8; rsa.size() as usize];
                let len = rsa.public_encrypt(block, &mut buf, Padding::PKCS1)?;
                out.extend_from_slice(&packet::mpi(&buf[..len]));
            }
            Material::Elgamal { p, g, y } => {
                let (c1, c2) = elgamal_encrypt(p, g, y, block)?;
                out.extend_from_slice(&packet::mpi(&c1));
                out.extend_from_slice(&packet::mpi(&c2));
            }
            Material::Ecdh {
                curve,
                point,
                kdf_hash,
                kek_algo,
            } => {
                let (ephemeral, wrapped) =
                    ecdh::encrypt(curve, point, *kdf_hash, *kek_algo, &self.fingerprint, block)?;
                out.extend_from_slice(&packet::mpi(&ephemeral));
                out.push(u8::try_from(wrapped.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(&wrapped);
            }
            Material::Unusable(what) => {
                return Err(crate::crypto::error::CryptoError::InvalidRecipient {
                    spec: format!("pgp:0x{:016x}", self.key_id),
                    reason: format!("rrun cannot encrypt to {what}"),
                })
            }
        }
        Ok(out)
    }
}

fn curve_oid<'a>(r: &mut Reader<'a>) -> Parse<&'a [u8]> {
    let len = usize::from(r.u8("curve OID")?);
    if len == 0 || len == 0xff {
        return invalid("reserved curve OID length");
    }
    r.take(len, "curve OID")
}

fn bits(magnitude: &[u8]) -> usize {
    let v: &[u8] = {
        let start = magnitude.iter().take_while(|b| **b == 0).count();
        &magnitude[start..]
    };
    match v.first() {
        Some(b) => (v.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

/// EME-PKCS1-v1_5 encoding of `m` into `k` bytes (RFC 8017 section 7.2.1), as ElGamal needs.
fn eme_pkcs1_encode(m: &[u8], k: usize) -> Result<Vec<u8>> {
    let Some(ps_len) = k.checked_sub(m.len() + 3).filter(|l| *l >= 8) else {
        return Err(crate::crypto::error::CryptoError::InvalidRecipient {
            spec: "pgp".into(),
            reason: "the ElGamal key is too small for a session key".into(),
        });
    };
    let mut out = vec![0u8, 2];
    let mut ps = vec![0u8; ps_len];
    openssl::rand::rand_bytes(&mut ps)?;
    for b in ps.iter_mut() {
        while *b == 0 {
            let mut one = [0u8];
            openssl::rand::rand_bytes(&mut one)?;
            *b = one[0];
        }
    }
    out.extend_from_slice(&ps);
    out.push(0);
    out.extend_from_slice(m);
    Ok(out)
}

/// ElGamal encryption (RFC 4880 section 5.1): `(g^k mod p, m * y^k mod p)`.
fn elgamal_encrypt(p: &[u8], g: &[u8], y: &[u8], block: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let p = BigNum::from_slice(p)?;
    let g = BigNum::from_slice(g)?;
    let y = BigNum::from_slice(y)?;
    let m = BigNum::from_slice(&eme_pkcs1_encode(block, p.num_bytes() as usize)?)?;
    let mut ctx = BigNumContext::new()?;
    let mut range = BigNum::new()?;
    let two = BigNum::from_u32(2)?;
    range.checked_sub(&p, &two)?;
    let mut k = BigNum::new()?;
    range.rand_range(&mut k)?;
    k.add_word(1)?;
    let mut c1 = BigNum::new()?;
    c1.mod_exp(&g, &k, &p, &mut ctx)?;
    let mut s = BigNum::new()?;
    s.mod_exp(&y, &k, &p, &mut ctx)?;
    let mut c2 = BigNum::new()?;
    c2.mod_mul(&m, &s, &p, &mut ctx)?;
    Ok((c1.to_vec(), c2.to_vec()))
}

/// ElGamal decryption: `c2 * (c1^x)^-1 mod p`, then the EME-PKCS1-v1_5 decoding.
pub(super) fn elgamal_decrypt(p: &[u8], x: &[u8], c1: &[u8], c2: &[u8]) -> Option<Vec<u8>> {
    let run = || -> std::result::Result<Vec<u8>, openssl::error::ErrorStack> {
        let p = BigNum::from_slice(p)?;
        let x = BigNum::from_slice(x)?;
        let c1 = BigNum::from_slice(c1)?;
        let c2 = BigNum::from_slice(c2)?;
        let mut ctx = BigNumContext::new()?;
        let mut s = BigNum::new()?;
        s.mod_exp(&c1, &x, &p, &mut ctx)?;
        let mut inv = BigNum::new()?;
        inv.mod_inverse(&s, &p, &mut ctx)?;
        let mut m = BigNum::new()?;
        m.mod_mul(&c2, &inv, &p, &mut ctx)?;
        m.to_vec_padded(p.num_bytes())
    };
    let em = run().ok()?;
    // 00 02 PS(non-zero, >= 8) 00 M
    if em.len() < 11 || em[0] != 0 || em[1] != 2 {
        return None;
    }
    let sep = em[2..].iter().position(|b| *b == 0)? + 2;
    if sep < 10 {
        return None;
    }
    Some(em[sep + 1..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elgamal_round_trip() {
        // A small safe-prime group is enough to check the arithmetic and the padding.
        let mut p = BigNum::new().unwrap();
        p.generate_prime(512, true, None, None).unwrap();
        let g = BigNum::from_u32(2).unwrap();
        let x = BigNum::from_u32(123_456_789).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let mut y = BigNum::new().unwrap();
        y.mod_exp(&g, &x, &p, &mut ctx).unwrap();
        let block = b"\x09session-key-bytes\x01\x02";
        let (c1, c2) = elgamal_encrypt(&p.to_vec(), &g.to_vec(), &y.to_vec(), block).unwrap();
        let back = elgamal_decrypt(&p.to_vec(), &x.to_vec(), &c1, &c2).unwrap();
        assert_eq!(back, block);
        let wrong = BigNum::from_u32(7).unwrap();
        assert_ne!(
            elgamal_decrypt(&p.to_vec(), &wrong.to_vec(), &c1, &c2).as_deref(),
            Some(&block[..])
        );
    }
}

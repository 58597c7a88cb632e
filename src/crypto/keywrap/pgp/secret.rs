//! OpenPGP secret key packets (RFC 4880 section 5.5.3): the string-to-key protection gpg
//! exports with (section 3.7), the secret key material, and opening a PKESK with it.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::symm::Cipher;
use zeroize::Zeroizing;

use super::ecdh::{self, Kind};
use super::key::{self, Material, PublicKey};
use super::packet::Reader;

/// Why a secret key could not be read.
#[derive(Debug)]
pub(super) enum SecretError {
    /// The packet is malformed.
    Invalid(String),
    /// It is protected and no passphrase was given.
    NeedPassword,
    /// The passphrase does not open it (the protection checksum fails).
    WrongPassword,
    /// A protection or algorithm rrun does not implement.
    Unsupported(String),
}

impl From<super::Invalid> for SecretError {
    fn from(e: super::Invalid) -> Self {
        Self::Invalid(e.0)
    }
}

type SResult<T> = std::result::Result<T, SecretError>;

/// The secret half of a decryption key.
enum Secret {
    Rsa(Rsa<Private>),
    Elgamal { p: Vec<u8>, x: Zeroizing<Vec<u8>> },
    Ecdh(PKey<Private>),
}

/// A decryption key: public part and usable secret material (freed and wiped by OpenSSL or
/// zeroized on drop).
pub(super) struct SecretKey {
    pub public: PublicKey,
    secret: Secret,
}

/// What a secret key packet gave.
pub(super) enum Parsed {
    /// A key rrun can decrypt with.
    Usable(SecretKey),
    /// A key rrun does not use (signing-only, a gpg stub without secret), and why.
    Skipped(PublicKey, String),
}

/// Parse a secret key or subkey packet body, unprotecting it with `password` when needed.
pub(super) fn parse(body: &[u8], password: Option<&[u8]>) -> SResult<Parsed> {
    let (public, used) = PublicKey::parse(body)?;
    if !public.can_encrypt() {
        // Signing keys are never decrypted: their protection is not checked either.
        let why = public.describe();
        return Ok(Parsed::Skipped(public, why));
    }
    let mut r = Reader::new(&body[used..]);
    let usage = r.u8("S2K usage")?;
    let plain: Zeroizing<Vec<u8>> = match usage {
        0 => {
            let rest = r.rest();
            if rest.len() < 2 {
                return Err(SecretError::Invalid("truncated secret key".into()));
            }
            let (mpis, sum) = rest.split_at(rest.len() - 2);
            if sum16(mpis).to_be_bytes() != sum {
                return Err(SecretError::Invalid(
                    "the secret key checksum does not match: the key is damaged".into(),
                ));
            }
            Zeroizing::new(mpis.to_vec())
        }
        254 | 255 => {
            let sym = r.u8("protection cipher")?;
            let s2k = S2k::parse(&mut r)?;
            let S2k::Derive { hash, salt, count } = s2k else {
                return Ok(Parsed::Skipped(
                    public,
                    "a gpg stub without secret material (the secret lives elsewhere, for \
                     example on a smartcard)"
                        .into(),
                ));
            };
            let (cipher, key_len, block) = protection_cipher(sym)?;
            let iv = r.take(block, "protection IV")?;
            let Some(password) = password else {
                return Err(SecretError::NeedPassword);
            };
            let key = derive_key(hash, salt, count, password, key_len)?;
            let data = openssl::symm::decrypt(cipher, &key, Some(iv), r.rest()).map_err(|_| {
                SecretError::Unsupported(format!(
                    "this OpenSSL cannot use the protection cipher {sym} (CAST5, Blowfish and \
                     3DES need OpenSSL's legacy provider): re-export the key with \
                     `gpg --s2k-cipher-algo AES256 --export-secret-keys`"
                ))
            })?;
            let data = Zeroizing::new(data);
            if usage == 254 {
                if data.len() < 20 {
                    return Err(SecretError::WrongPassword);
                }
                let (mpis, sha) = data.split_at(data.len() - 20);
                let digest = openssl::hash::hash(MessageDigest::sha1(), mpis)
                    .map_err(|_| SecretError::Invalid("cannot hash".into()))?;
                if digest.as_ref() != sha {
                    return Err(SecretError::WrongPassword);
                }
                Zeroizing::new(mpis.to_vec())
            } else {
                if data.len() < 2 {
                    return Err(SecretError::WrongPassword);
                }
                let (mpis, sum) = data.split_at(data.len() - 2);
                if sum16(mpis).to_be_bytes() != sum {
                    return Err(SecretError::WrongPassword);
                }
                Zeroizing::new(mpis.to_vec())
            }
        }
        253 => {
            return Err(SecretError::Unsupported(
                "the key is protected with AEAD (S2K usage 253), which rrun cannot open yet: \
                 re-export it with gpg 2.2 or with `--s2k-mode 3`"
                    .into(),
            ))
        }
        _ => {
            return Err(SecretError::Unsupported(
                "the key uses the obsolete protection without a checksum (S2K usage 1-252)".into(),
            ))
        }
    };
    let secret = secret_material(&public, &plain)?;
    Ok(Parsed::Usable(SecretKey { public, secret }))
}

fn sum16(data: &[u8]) -> u16 {
    data.iter()
        .fold(0u16, |acc, b| acc.wrapping_add(u16::from(*b)))
}

/// A string-to-key specifier.
enum S2k<'a> {
    Derive {
        hash: MessageDigest,
        salt: &'a [u8],
        count: usize,
    },
    /// GnuPG's extension 101: no secret here.
    GnuStub,
}

impl<'a> S2k<'a> {
    fn parse(r: &mut Reader<'a>) -> SResult<Self> {
        let kind = r.u8("S2K type")?;
        if kind == 101 {
            return Ok(Self::GnuStub);
        }
        let hash_id = r.u8("S2K hash")?;
        let hash = match hash_id {
            1 => MessageDigest::md5(),
            2 => MessageDigest::sha1(),
            3 => MessageDigest::ripemd160(),
            8 => MessageDigest::sha256(),
            9 => MessageDigest::sha384(),
            10 => MessageDigest::sha512(),
            11 => MessageDigest::sha224(),
            other => {
                return Err(SecretError::Unsupported(format!(
                    "the key protection uses hash algorithm {other}"
                )))
            }
        };
        match kind {
            0 => Ok(Self::Derive {
                hash,
                salt: &[],
                count: 0,
            }),
            1 => Ok(Self::Derive {
                hash,
                salt: r.take(8, "S2K salt")?,
                count: 0,
            }),
            3 => {
                let salt = r.take(8, "S2K salt")?;
                let c = usize::from(r.u8("S2K count")?);
                Ok(Self::Derive {
                    hash,
                    salt,
                    count: (16 + (c & 15)) << ((c >> 4) + 6),
                })
            }
            other => Err(SecretError::Unsupported(format!(
                "the key protection uses S2K type {other}"
            ))),
        }
    }
}

/// The symmetric key from a passphrase (RFC 4880 section 3.7.1): one hash context per
/// digest-sized piece, the n-th preloaded with n zero bytes; iterated S2K hashes
/// `salt || passphrase` repeated up to `count` bytes.
fn derive_key(
    hash: MessageDigest,
    salt: &[u8],
    count: usize,
    password: &[u8],
    key_len: usize,
) -> SResult<Zeroizing<Vec<u8>>> {
    let fail = |_| SecretError::Invalid("hashing failed".into());
    let mut unit = Zeroizing::new(salt.to_vec());
    unit.extend_from_slice(password);
    let total = count.max(unit.len());
    // A chunk of whole units keeps the number of hash updates small.
    let mut chunk = Zeroizing::new(Vec::with_capacity(64 * 1024 + unit.len()));
    while chunk.len() < 64 * 1024 && !unit.is_empty() {
        chunk.extend_from_slice(&unit);
    }
    let mut key = Zeroizing::new(Vec::with_capacity(key_len + 64));
    let mut preload = 0;
    while key.len() < key_len {
        let mut h = Hasher::new(hash).map_err(fail)?;
        h.update(&vec![0u8; preload]).map_err(fail)?;
        if count == 0 {
            h.update(&unit).map_err(fail)?;
        } else {
            let mut left = total;
            while left > 0 {
                let n = left.min(chunk.len());
                h.update(&chunk[..n]).map_err(fail)?;
                left -= n;
            }
        }
        key.extend_from_slice(&h.finish().map_err(fail)?);
        preload += 1;
    }
    key.truncate(key_len);
    Ok(key)
}

/// The CFB cipher, key length and block size of a protection algorithm id.
fn protection_cipher(sym: u8) -> SResult<(Cipher, usize, usize)> {
    super::message::cfb_cipher(sym)
        .ok_or_else(|| SecretError::Unsupported(format!("the key protection uses cipher {sym}")))
}

/// Build the secret material from the decrypted MPIs.
fn secret_material(public: &PublicKey, mpis: &[u8]) -> SResult<Secret> {
    let mut r = Reader::new(mpis);
    let bad = |what: &str| SecretError::Invalid(format!("the secret {what} is not usable"));
    match &public.material {
        Material::Rsa { n, e } => {
            let d = BigNum::from_slice(r.mpi("RSA d")?).map_err(|_| bad("RSA key"))?;
            let p = BigNum::from_slice(r.mpi("RSA p")?).map_err(|_| bad("RSA key"))?;
            let q = BigNum::from_slice(r.mpi("RSA q")?).map_err(|_| bad("RSA key"))?;
            rsa_from_parts(n, e, d, p, q)
                .map_err(|_| bad("RSA key"))
                .map(Secret::Rsa)
        }
        Material::Elgamal { p, .. } => Ok(Secret::Elgamal {
            p: p.clone(),
            x: Zeroizing::new(r.mpi("ElGamal x")?.to_vec()),
        }),
        Material::Ecdh { curve, point, .. } => {
            let scalar = Zeroizing::new(r.mpi("ECDH scalar")?.to_vec());
            match curve.kind {
                Kind::X25519 => {
                    if scalar.len() > 32 {
                        return Err(bad("cv25519 scalar"));
                    }
                    // Stored big-endian (an MPI); X25519 takes it little-endian.
                    let mut le = Zeroizing::new([0u8; 32]);
                    for (i, b) in scalar.iter().rev().enumerate() {
                        le[i] = *b;
                    }
                    PKey::private_key_from_raw_bytes(&le[..], Id::X25519)
                        .map(Secret::Ecdh)
                        .map_err(|_| bad("cv25519 scalar"))
                }
                Kind::Weierstrass(nid) => {
                    let build =
                        || -> std::result::Result<PKey<Private>, openssl::error::ErrorStack> {
                            let group = EcGroup::from_curve_name(nid)?;
                            let mut ctx = BigNumContext::new()?;
                            let pub_point = EcPoint::from_bytes(&group, point, &mut ctx)?;
                            let d = BigNum::from_slice(&scalar)?;
                            let key = EcKey::from_private_components(&group, &d, &pub_point)?;
                            key.check_key()?;
                            PKey::from_ec_key(key)
                        };
                    build().map(Secret::Ecdh).map_err(|_| bad("ECDH scalar"))
                }
            }
        }
        Material::Unusable(what) => Err(SecretError::Unsupported(what.clone())),
    }
}

/// An OpenSSL RSA key from OpenPGP's `n, e, d, p, q` (the CRT values are recomputed; OpenPGP's
/// `u` is `p^-1 mod q`, OpenSSL wants `q^-1 mod p`).
fn rsa_from_parts(
    n: &[u8],
    e: &[u8],
    d: BigNum,
    p: BigNum,
    q: BigNum,
) -> std::result::Result<Rsa<Private>, openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let one = BigNum::from_u32(1)?;
    let mut p1 = BigNum::new()?;
    p1.checked_sub(&p, &one)?;
    let mut q1 = BigNum::new()?;
    q1.checked_sub(&q, &one)?;
    let mut dmp1 = BigNum::new()?;
    dmp1.nnmod(&d, &p1, &mut ctx)?;
    let mut dmq1 = BigNum::new()?;
    dmq1.nnmod(&d, &q1, &mut ctx)?;
    let mut iqmp = BigNum::new()?;
    iqmp.mod_inverse(&q, &p, &mut ctx)?;
    let rsa = Rsa::from_private_components(
        BigNum::from_slice(n)?,
        BigNum::from_slice(e)?,
        d,
        p,
        q,
        dmp1,
        dmq1,
        iqmp,
    )?;
    rsa.check_key()?;
    Ok(rsa)
}

impl SecretKey {
    /// Recover the session-key block (algorithm, key, checksum) from the algorithm-specific
    /// part of a PKESK, or `None` when this key does not open it.
    pub fn decrypt_session(&self, algo: u8, data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let mut r = Reader::new(data);
        match (&self.secret, &self.public.material) {
            (Secret::Rsa(rsa), _) if matches!(algo, key::algo::RSA | key::algo::RSA_ENCRYPT) => {
                let c = r.mpi("RSA ciphertext").ok()?;
                let size = rsa.size() as usize;
                if c.len() > size {
                    return None;
                }
                let mut padded = vec![0u8; size - c.len()];
                padded.extend_from_slice(c);
                let mut out = Zeroizing::new(vec![0u8; size]);
                let len = rsa
                    .private_decrypt(&padded, &mut out, Padding::PKCS1)
                    .ok()?;
                out.truncate(len);
                Some(out)
            }
            (Secret::Elgamal { p, x }, _)
                if matches!(algo, key::algo::ELGAMAL | key::algo::ELGAMAL_SIGN_ENCRYPT) =>
            {
                let c1 = r.mpi("ElGamal c1").ok()?;
                let c2 = r.mpi("ElGamal c2").ok()?;
                key::elgamal_decrypt(p, x, c1, c2).map(Zeroizing::new)
            }
            (
                Secret::Ecdh(secret),
                Material::Ecdh {
                    curve,
                    kdf_hash,
                    kek_algo,
                    ..
                },
            ) if algo == key::algo::ECDH => {
                let ephemeral = r.mpi("ECDH point").ok()?;
                let len = usize::from(r.u8("wrapped key length").ok()?);
                let wrapped = r.take(len, "wrapped key").ok()?;
                ecdh::decrypt(
                    curve,
                    secret,
                    ephemeral,
                    *kdf_hash,
                    *kek_algo,
                    &self.public.fingerprint,
                    wrapped,
                )
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterated_count_decoding_and_derivation_are_stable() {
        // Count byte 255 is the 65011712 bytes gpg uses by default.
        let data = [3u8, 2, 1, 2, 3, 4, 5, 6, 7, 8, 255];
        let mut r = Reader::new(&data);
        let S2k::Derive { count, salt, .. } = S2k::parse(&mut r).ok().unwrap() else {
            panic!("not a derive S2K");
        };
        assert_eq!(count, 65_011_712);
        assert_eq!(salt, &[1, 2, 3, 4, 5, 6, 7, 8]);
        // Simple S2K of "abc" with SHA-1, 16 bytes: the first 16 bytes of SHA1("abc").
        let k = derive_key(MessageDigest::sha1(), &[], 0, b"abc", 16).unwrap();
        assert_eq!(hex::encode(&k[..]), "a9993e364706816aba3e25717850c26c");
        // 32 bytes from SHA-1 need a second, zero-preloaded context.
        let k = derive_key(MessageDigest::sha1(), &[], 0, b"abc", 32).unwrap();
        let second = openssl::hash::hash(MessageDigest::sha1(), b"\0abc").unwrap();
        assert_eq!(&k[20..], &second[..12]);
    }

    #[test]
    fn gnu_stub_is_recognised() {
        let data = [101u8, 2, b'G', b'N', b'U', 1];
        assert!(matches!(
            S2k::parse(&mut Reader::new(&data)),
            Ok(S2k::GnuStub)
        ));
    }
}

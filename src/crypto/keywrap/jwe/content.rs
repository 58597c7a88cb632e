//! JWE content encryption (`enc`, RFC 7518 section 5): AES-GCM and AES-CBC with HMAC-SHA-2.
//! rrun writes A256GCM (what ocicrypt writes); it reads all six that go-jose reads.

use hmac::{Hmac, Mac};
use openssl::symm::{self, Cipher};
use sha2::{Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use crate::crypto::error::Result;

/// Length of an AES-GCM IV in JWE.
const GCM_IV_LEN: usize = 12;
/// Length of an AES-GCM tag in JWE.
const GCM_TAG_LEN: usize = 16;
/// Length of an AES-CBC IV.
const CBC_IV_LEN: usize = 16;

/// A content encryption algorithm from RFC 7518 section 5.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContentEnc {
    A128CbcHs256,
    A192CbcHs384,
    A256CbcHs512,
    A128Gcm,
    A192Gcm,
    A256Gcm,
}

impl ContentEnc {
    const ALL: [ContentEnc; 6] = [
        ContentEnc::A128CbcHs256,
        ContentEnc::A192CbcHs384,
        ContentEnc::A256CbcHs512,
        ContentEnc::A128Gcm,
        ContentEnc::A192Gcm,
        ContentEnc::A256Gcm,
    ];

    /// The `enc` header value.
    pub(super) fn name(self) -> &'static str {
        match self {
            ContentEnc::A128CbcHs256 => "A128CBC-HS256",
            ContentEnc::A192CbcHs384 => "A192CBC-HS384",
            ContentEnc::A256CbcHs512 => "A256CBC-HS512",
            ContentEnc::A128Gcm => "A128GCM",
            ContentEnc::A192Gcm => "A192GCM",
            ContentEnc::A256Gcm => "A256GCM",
        }
    }

    /// Parse an `enc` header value.
    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == s)
    }

    /// The accepted names, comma separated, for messages.
    pub(super) fn names() -> String {
        Self::ALL.map(ContentEnc::name).join(", ")
    }

    /// Length of the content encryption key (for CBC-HS, MAC key plus encryption key).
    pub(super) fn key_len(self) -> usize {
        match self {
            ContentEnc::A128Gcm => 16,
            ContentEnc::A192Gcm => 24,
            ContentEnc::A256Gcm | ContentEnc::A128CbcHs256 => 32,
            ContentEnc::A192CbcHs384 => 48,
            ContentEnc::A256CbcHs512 => 64,
        }
    }
}

/// IV, ciphertext and tag of encrypted content.
#[derive(Debug)]
pub(super) struct Sealed {
    pub(super) iv: Vec<u8>,
    pub(super) ciphertext: Vec<u8>,
    pub(super) tag: Vec<u8>,
}

/// Encrypt with A256GCM under a 32-byte `cek` and a fresh random 96-bit IV.
pub(super) fn seal_a256gcm(cek: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
    let mut iv = vec![0u8; GCM_IV_LEN];
    openssl::rand::rand_bytes(&mut iv)?;
    let mut tag = vec![0u8; GCM_TAG_LEN];
    let ciphertext = symm::encrypt_aead(
        Cipher::aes_256_gcm(),
        cek,
        Some(&iv),
        aad,
        plaintext,
        &mut tag,
    )?;
    Ok(Sealed {
        iv,
        ciphertext,
        tag,
    })
}

/// Decrypt and authenticate; `None` when the key is wrong or anything was altered.
pub(super) fn open(
    enc: ContentEnc,
    cek: &[u8],
    aad: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if cek.len() != enc.key_len() {
        return None;
    }
    match enc {
        ContentEnc::A128Gcm => open_gcm(Cipher::aes_128_gcm(), cek, aad, iv, ciphertext, tag),
        ContentEnc::A192Gcm => open_gcm(Cipher::aes_192_gcm(), cek, aad, iv, ciphertext, tag),
        ContentEnc::A256Gcm => open_gcm(Cipher::aes_256_gcm(), cek, aad, iv, ciphertext, tag),
        ContentEnc::A128CbcHs256 => {
            let ok = cbc_tag_ok::<Hmac<Sha256>>(cek, aad, iv, ciphertext, tag);
            open_cbc(ok, Cipher::aes_128_cbc(), cek, iv, ciphertext)
        }
        ContentEnc::A192CbcHs384 => {
            let ok = cbc_tag_ok::<Hmac<Sha384>>(cek, aad, iv, ciphertext, tag);
            open_cbc(ok, Cipher::aes_192_cbc(), cek, iv, ciphertext)
        }
        ContentEnc::A256CbcHs512 => {
            let ok = cbc_tag_ok::<Hmac<Sha512>>(cek, aad, iv, ciphertext, tag);
            open_cbc(ok, Cipher::aes_256_cbc(), cek, iv, ciphertext)
        }
    }
}

fn open_gcm(
    cipher: Cipher,
    cek: &[u8],
    aad: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if iv.len() != GCM_IV_LEN || tag.len() != GCM_TAG_LEN {
        return None;
    }
    symm::decrypt_aead(cipher, cek, Some(iv), aad, ciphertext, tag)
        .ok()
        .map(Zeroizing::new)
}

/// RFC 7518 5.2.2.2: the tag is the first half of HMAC(MAC_KEY, A || IV || E || AL), where
/// MAC_KEY is the first half of the key and AL the AAD length in bits (64-bit big endian).
/// Checked in constant time, and before any decryption.
fn cbc_tag_ok<M: Mac + hmac::digest::KeyInit>(
    cek: &[u8],
    aad: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> bool {
    let half = cek.len() / 2;
    if iv.len() != CBC_IV_LEN || tag.len() != half {
        return false;
    }
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(&cek[..half]) else {
        return false;
    };
    mac.update(aad);
    mac.update(iv);
    mac.update(ciphertext);
    mac.update(&((aad.len() as u64) * 8).to_be_bytes());
    mac.verify_truncated_left(tag).is_ok()
}

fn open_cbc(
    tag_ok: bool,
    cipher: Cipher,
    cek: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if !tag_ok {
        return None;
    }
    let enc_key = &cek[cek.len() / 2..];
    symm::decrypt(cipher, enc_key, Some(iv), ciphertext)
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcm_round_trip_and_tamper() {
        let cek = [3u8; 32];
        let s = seal_a256gcm(&cek, b"aad", b"hello").unwrap();
        assert_eq!((s.iv.len(), s.tag.len()), (12, 16));
        let pt = open(
            ContentEnc::A256Gcm,
            &cek,
            b"aad",
            &s.iv,
            &s.ciphertext,
            &s.tag,
        )
        .unwrap();
        assert_eq!(pt.as_slice(), b"hello");
        assert!(open(
            ContentEnc::A256Gcm,
            &cek,
            b"aaD",
            &s.iv,
            &s.ciphertext,
            &s.tag
        )
        .is_none());
        assert!(open(
            ContentEnc::A128Gcm,
            &cek,
            b"aad",
            &s.iv,
            &s.ciphertext,
            &s.tag
        )
        .is_none());
        assert!(open(
            ContentEnc::A256Gcm,
            &cek,
            b"aad",
            &s.iv,
            &s.ciphertext,
            &s.tag[..8]
        )
        .is_none());
    }

    /// RFC 7518 appendix B.1: AES_128_CBC_HMAC_SHA_256 test case.
    #[test]
    fn rfc7518_b1_a128cbc_hs256() {
        let k: Vec<u8> = (0u8..32).collect();
        let p = b"A cipher system must not be required to be secret, and it must be able to fall into the hands of the enemy without inconvenience";
        let iv = hex::decode("1af38c2dc2b96ffdd86694092341bc04").unwrap();
        let a = b"The second principle of Auguste Kerckhoffs";
        let e = hex::decode(concat!(
            "c80edfa32ddf39d5ef00c0b468834279a2e46a1b8049f792f76bfe54b903a9c9",
            "a94ac9b47ad2655c5f10f9aef71427e2fc6f9b3f399a221489f16362c7032336",
            "09d45ac69864e3321cf82935ac4096c86e133314c54019e8ca7980dfa4b9cf1b",
            "384c486f3a54c51078158ee5d79de59fbd34d848b3d69550a67646344427ade5",
            "4b8851ffb598f7f80074b9473c82e2db"
        ))
        .unwrap();
        let t = hex::decode("652c3fa36b0a7c5b3219fab3a30bc1c4").unwrap();
        let pt = open(ContentEnc::A128CbcHs256, &k, a, &iv, &e, &t).unwrap();
        assert_eq!(pt.as_slice(), &p[..]);
        let mut bad = t.clone();
        bad[15] ^= 1;
        assert!(open(ContentEnc::A128CbcHs256, &k, a, &iv, &e, &bad).is_none());
        assert!(open(ContentEnc::A128CbcHs256, &k, a, &iv, &e, &t[..1]).is_none());
    }

    #[test]
    fn names_parse_back() {
        for e in ContentEnc::ALL {
            assert_eq!(ContentEnc::parse(e.name()), Some(e));
        }
        assert_eq!(ContentEnc::parse("A256CBC"), None);
    }
}

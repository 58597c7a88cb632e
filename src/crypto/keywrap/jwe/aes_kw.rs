//! AES Key Wrap (RFC 3394, default IV), the `+A128KW`/`+A192KW`/`+A256KW` step of ECDH-ES.
//!
//! Built on OpenSSL's AES block cipher (ECB, one block at a time) so that the key schedule lives
//! in an OpenSSL context, which OpenSSL wipes when it is freed.

use openssl::symm::{Cipher, Crypter, Mode};
use zeroize::Zeroizing;

use crate::crypto::error::{CryptoError, Result};

/// The RFC 3394 section 2.2.3.1 initial value.
const DEFAULT_IV: [u8; 8] = [0xA6; 8];

/// One AES key in one direction, applied to single 16-byte blocks.
struct AesBlock(Crypter);

impl AesBlock {
    fn new(kek: &[u8], mode: Mode) -> Result<Self> {
        let cipher = match kek.len() {
            16 => Cipher::aes_128_ecb(),
            24 => Cipher::aes_192_ecb(),
            32 => Cipher::aes_256_ecb(),
            n => {
                return Err(CryptoError::Jwe(format!(
                    "key-wrapping key of {n} bytes; AES needs 16, 24 or 32"
                )))
            }
        };
        let mut crypter = Crypter::new(cipher, mode, kek, None)?;
        crypter.pad(false);
        Ok(Self(crypter))
    }

    /// Encrypt or decrypt `block` in place.
    fn apply(&mut self, block: &mut [u8; 16]) -> Result<()> {
        // Crypter wants room for one extra block; ECB without padding returns exactly 16 bytes.
        let mut out = Zeroizing::new([0u8; 32]);
        let n = self.0.update(&block[..], &mut out[..])?;
        if n != 16 {
            return Err(CryptoError::Jwe(
                "AES block operation returned a short block".into(),
            ));
        }
        block.copy_from_slice(&out[..16]);
        Ok(())
    }
}

/// Wrap `key` (a multiple of 8 bytes, at least 16) under `kek`.
pub(super) fn wrap(kek: &[u8], key: &[u8]) -> Result<Vec<u8>> {
    if key.len() < 16 || !key.len().is_multiple_of(8) {
        return Err(CryptoError::Jwe(format!(
            "cannot key-wrap {} bytes: need a multiple of 8, at least 16",
            key.len()
        )));
    }
    let mut aes = AesBlock::new(kek, Mode::Encrypt)?;
    let n = key.len() / 8;
    let mut a = DEFAULT_IV;
    let mut r = Zeroizing::new(key.to_vec());
    let mut b = Zeroizing::new([0u8; 16]);
    for j in 0..6u64 {
        for i in 1..=n {
            b[..8].copy_from_slice(&a);
            b[8..].copy_from_slice(&r[(i - 1) * 8..i * 8]);
            aes.apply(&mut b)?;
            let t = (n as u64) * j + i as u64;
            for (k, byte) in t.to_be_bytes().iter().enumerate() {
                a[k] = b[k] ^ byte;
            }
            r[(i - 1) * 8..i * 8].copy_from_slice(&b[8..]);
        }
    }
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(&a);
    out.extend_from_slice(&r);
    Ok(out)
}

/// Unwrap `wrapped` under `kek`; `None` when the integrity check fails (wrong key or altered).
pub(super) fn unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return Ok(None);
    }
    let mut aes = AesBlock::new(kek, Mode::Decrypt)?;
    let n = wrapped.len() / 8 - 1;
    let mut a = [0u8; 8];
    a.copy_from_slice(&wrapped[..8]);
    let mut r = Zeroizing::new(wrapped[8..].to_vec());
    let mut b = Zeroizing::new([0u8; 16]);
    for j in (0..6u64).rev() {
        for i in (1..=n).rev() {
            let t = (n as u64) * j + i as u64;
            for (k, byte) in t.to_be_bytes().iter().enumerate() {
                b[k] = a[k] ^ byte;
            }
            b[8..].copy_from_slice(&r[(i - 1) * 8..i * 8]);
            aes.apply(&mut b)?;
            a.copy_from_slice(&b[..8]);
            r[(i - 1) * 8..i * 8].copy_from_slice(&b[8..]);
        }
    }
    if openssl::memcmp::eq(&a, &DEFAULT_IV) {
        Ok(Some(r))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn rfc3394_vectors() {
        // RFC 3394 4.1: 128-bit KEK, 128-bit key data.
        let kek = hex("000102030405060708090A0B0C0D0E0F");
        let key = hex("00112233445566778899AABBCCDDEEFF");
        let want = hex("1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5");
        assert_eq!(wrap(&kek, &key).unwrap(), want);
        assert_eq!(unwrap(&kek, &want).unwrap().unwrap().as_slice(), key);
        // RFC 3394 4.6: 256-bit KEK, 256-bit key data.
        let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let key = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        let want = hex(
            "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21",
        );
        assert_eq!(wrap(&kek, &key).unwrap(), want);
        assert_eq!(unwrap(&kek, &want).unwrap().unwrap().as_slice(), key);
    }

    #[test]
    fn agrees_with_openssl_wrap_for_every_kek_size() {
        let cek = [0x5au8; 32];
        for len in [16, 24, 32] {
            let kek = vec![len as u8; len];
            let ours = wrap(&kek, &cek).unwrap();
            let aes = openssl::aes::AesKey::new_encrypt(&kek).unwrap();
            let mut theirs = vec![0u8; 40];
            openssl::aes::wrap_key(&aes, None, &mut theirs, &cek).unwrap();
            assert_eq!(ours, theirs, "kek {len}");
        }
    }

    #[test]
    fn altered_or_wrong_key_is_refused() {
        let kek = [1u8; 32];
        let mut w = wrap(&kek, &[9u8; 32]).unwrap();
        assert!(unwrap(&[2u8; 32], &w).unwrap().is_none());
        w[10] ^= 1;
        assert!(unwrap(&kek, &w).unwrap().is_none());
        assert!(unwrap(&kek, &w[..16]).unwrap().is_none());
        assert!(wrap(&kek, &[0u8; 12]).is_err());
        assert!(wrap(&[0u8; 7], &[0u8; 16]).is_err());
    }
}

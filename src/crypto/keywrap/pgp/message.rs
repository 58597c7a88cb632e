//! OpenPGP messages as ocicrypt writes them (go-crypto `openpgp.Encrypt`, no signature, no
//! compression): one PKESK v3 per recipient, then a SEIPD v1 packet (AES-256, CFB with a zero
//! IV, RFC 4880 section 5.13) holding a literal data packet and the MDC. Reading also accepts
//! partial lengths, compressed data (ZIP, ZLIB) and the other OpenPGP CFB ciphers.

use std::io::Read as _;

use openssl::hash::{hash, MessageDigest};
use openssl::symm::Cipher;
use zeroize::Zeroizing;

use super::key::PublicKey;
use super::packet::{self, tag, Packet, Reader};
use super::secret::SecretKey;
use super::{invalid, Invalid, Parse};
use crate::crypto::error::Result;

/// The session-key algorithm rrun writes (ocicrypt's `DefaultCipher: CipherAES256`).
const SYM_AES256: u8 = 9;
/// The most plaintext a message may expand to: the wrapped options are about 200 bytes.
const MAX_PLAINTEXT: u64 = 1 << 20;
/// Most PKESKs one message may list: each costs every key a private-key operation.
const MAX_RECIPIENTS: usize = 1024;

/// The CFB cipher, key length and block size of a symmetric algorithm id (section 9.2).
pub(super) fn cfb_cipher(sym: u8) -> Option<(Cipher, usize, usize)> {
    Some(match sym {
        2 => (Cipher::des_ede3_cfb64(), 24, 8),
        3 => (Cipher::cast5_cfb64(), 16, 8),
        4 => (Cipher::bf_cfb64(), 16, 8),
        7 => (Cipher::aes_128_cfb128(), 16, 16),
        8 => (Cipher::aes_192_cfb128(), 24, 16),
        9 => (Cipher::aes_256_cfb128(), 32, 16),
        11 => (Cipher::camellia_128_cfb128(), 16, 16),
        12 => (Cipher::camellia_192_cfb128(), 24, 16),
        13 => (Cipher::camellia_256_cfb128(), 32, 16),
        _ => return None,
    })
}

fn sum16(data: &[u8]) -> u16 {
    data.iter()
        .fold(0u16, |acc, b| acc.wrapping_add(u16::from(*b)))
}

/// Encrypt `plaintext` to every key: the binary message.
pub(super) fn encrypt(recipients: &[&PublicKey], plaintext: &[u8]) -> Result<Vec<u8>> {
    let (cipher, key_len, block) =
        cfb_cipher(SYM_AES256).unwrap_or((Cipher::aes_256_cfb128(), 32, 16));
    let mut session = Zeroizing::new(vec![0u8; key_len]);
    openssl::rand::rand_bytes(&mut session)?;
    // The session-key block: algorithm, key, two-octet checksum (section 5.1).
    let mut sk_block = Zeroizing::new(vec![SYM_AES256]);
    sk_block.extend_from_slice(&session);
    sk_block.extend_from_slice(&sum16(&session).to_be_bytes());

    let mut out = Vec::new();
    for key in recipients {
        out.extend(packet::write(
            tag::PKESK,
            &key.encrypt_session_key(&sk_block)?,
        ));
    }

    // Literal data: binary, no file name, date 0.
    let mut literal_body = Vec::with_capacity(plaintext.len() + 6);
    literal_body.extend_from_slice(&[b'b', 0, 0, 0, 0, 0]);
    literal_body.extend_from_slice(plaintext);
    let literal = packet::write(tag::LITERAL, &literal_body);

    // Random prefix with its last two octets repeated, the data, then the MDC packet whose
    // SHA-1 covers everything before it including its own header (section 5.14).
    let mut inner = Zeroizing::new(vec![0u8; block]);
    openssl::rand::rand_bytes(&mut inner)?;
    let repeat = [inner[block - 2], inner[block - 1]];
    inner.extend_from_slice(&repeat);
    inner.extend_from_slice(&literal);
    inner.extend_from_slice(&[0xd3, 0x14]);
    let mdc = hash(MessageDigest::sha1(), &inner)?;
    inner.extend_from_slice(&mdc);
    let encrypted = openssl::symm::encrypt(cipher, &session, Some(&vec![0u8; block]), &inner)?;

    let mut seipd = Vec::with_capacity(encrypted.len() + 1);
    seipd.push(1);
    seipd.extend_from_slice(&encrypted);
    out.extend(packet::write(tag::SEIPD, &seipd));
    Ok(out)
}

/// A public-key encrypted session key packet (v3).
pub(super) struct Pkesk {
    pub key_id: u64,
    pub algo: u8,
    pub data: Vec<u8>,
}

/// A message split into its session-key packets and its encrypted data packet.
pub(super) struct Message {
    pub pkesks: Vec<Pkesk>,
    data: Packet,
}

/// Parse the outer layer of a message.
pub(super) fn parse(data: &[u8]) -> Parse<Message> {
    let packets = packet::read_all(data)?;
    let mut pkesks = Vec::new();
    for p in packets {
        match p.tag {
            tag::PKESK => {
                let mut r = Reader::new(&p.body);
                let version = r.u8("PKESK version")?;
                if version != 3 {
                    return invalid(format!(
                        "PKESK version {version} (OpenPGP v6 messages) is not supported"
                    ));
                }
                let key_id =
                    u64::from_be_bytes(r.take(8, "PKESK key id")?.try_into().unwrap_or_default());
                let algo = r.u8("PKESK algorithm")?;
                pkesks.push(Pkesk {
                    key_id,
                    algo,
                    data: r.rest().to_vec(),
                });
                if pkesks.len() > MAX_RECIPIENTS {
                    return invalid(format!("more than {MAX_RECIPIENTS} recipients"));
                }
            }
            tag::SKESK => {
                return invalid("the message is encrypted with a passphrase, not to keys")
            }
            tag::MARKER | tag::PADDING => {}
            tag::SEIPD | tag::SED | tag::AEAD => {
                if pkesks.is_empty() {
                    return invalid("the message has no recipients (no PKESK packet)");
                }
                return Ok(Message { pkesks, data: p });
            }
            other => return invalid(format!("unexpected packet type {other} in a message")),
        }
    }
    invalid("the message has no encrypted data packet")
}

/// What trying the keys on a message gave.
pub(super) enum Outcome {
    /// The plaintext.
    Opened(Zeroizing<Vec<u8>>),
    /// No key opened a session key.
    NoKey,
    /// A session key was recovered but the data failed its integrity check.
    Altered(String),
}

/// Decrypt with the first key that opens a session key.
pub(super) fn decrypt(keys: &[&SecretKey], message: &Message) -> Parse<Outcome> {
    match message.data.tag {
        tag::SED => {
            return invalid(
                "the message has no integrity protection (symmetrically encrypted data without \
                 MDC): refusing it",
            )
        }
        tag::AEAD => {
            return invalid(
                "the message uses AEAD encryption (OCB packets), which rrun cannot read yet",
            )
        }
        _ => {}
    }
    match message.data.body.first() {
        Some(1) => {}
        Some(2) => {
            return invalid("the message uses SEIPD version 2 (AEAD), which rrun cannot read yet")
        }
        Some(v) => return invalid(format!("unknown SEIPD version {v}")),
        None => return invalid("empty encrypted data packet"),
    }
    let ciphertext = &message.data.body[1..];
    for pkesk in &message.pkesks {
        for key in keys
            .iter()
            .filter(|k| pkesk.key_id == 0 || k.public.key_id == pkesk.key_id)
        {
            let Some(block) = key.decrypt_session(pkesk.algo, &pkesk.data) else {
                continue;
            };
            let Some((sym, session)) = split_session_block(&block) else {
                continue;
            };
            match open_seipd(sym, &session, ciphertext)? {
                Some(Ok(plain)) => return Ok(Outcome::Opened(plain)),
                Some(Err(altered)) => return Ok(Outcome::Altered(altered)),
                None => continue,
            }
        }
    }
    Ok(Outcome::NoKey)
}

/// The algorithm and key of a session-key block whose checksum holds.
fn split_session_block(block: &[u8]) -> Option<(u8, Zeroizing<Vec<u8>>)> {
    let (&sym, rest) = block.split_first()?;
    let (_, key_len, _) = cfb_cipher(sym)?;
    if rest.len() != key_len + 2 {
        return None;
    }
    let (key, sum) = rest.split_at(key_len);
    (sum16(key).to_be_bytes() == sum).then(|| (sym, Zeroizing::new(key.to_vec())))
}

/// Decrypt a SEIPD v1 body: `None` when the key is wrong (quick check fails), `Some(Err)` when
/// the MDC fails, else the literal data.
#[allow(clippy::type_complexity)]
fn open_seipd(
    sym: u8,
    session: &[u8],
    ciphertext: &[u8],
) -> Parse<Option<std::result::Result<Zeroizing<Vec<u8>>, String>>> {
    let Some((cipher, _, block)) = cfb_cipher(sym) else {
        return Ok(None);
    };
    let plain = match openssl::symm::decrypt(cipher, session, Some(&vec![0u8; block]), ciphertext) {
        Ok(p) => Zeroizing::new(p),
        Err(_) => {
            return invalid(format!(
                "this OpenSSL cannot use the message's cipher {sym} (CAST5, Blowfish and 3DES \
                 need OpenSSL's legacy provider)"
            ))
        }
    };
    if plain.len() < block + 2 + 22 {
        return invalid("the encrypted data is too short to hold a message");
    }
    if plain[block - 2..block] != plain[block..block + 2] {
        return Ok(None);
    }
    let (covered, mdc) = plain.split_at(plain.len() - 20);
    let digest = hash(MessageDigest::sha1(), covered).map_err(|_| Invalid("cannot hash".into()))?;
    if covered[covered.len() - 2..] != [0xd3, 0x14] || digest.as_ref() != mdc {
        return Ok(Some(Err(
            "the modification detection code does not match: the message was altered".into(),
        )));
    }
    let packets = &covered[block + 2..covered.len() - 2];
    Ok(Some(literal_data(packets, 0)))
}

/// The data of the literal packet in `data`, looking inside compressed packets.
fn literal_data(data: &[u8], depth: u8) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    let packets = packet::read_all(data)
        .map_err(|e| format!("the decrypted message is malformed: {}", e.0))?;
    for p in packets {
        match p.tag {
            tag::LITERAL => {
                let body = Zeroizing::new(p.body);
                let mut r = Reader::new(&body);
                let parse = |r: &mut Reader<'_>| -> Parse<Vec<u8>> {
                    let _format = r.u8("literal format")?;
                    let name_len = usize::from(r.u8("literal file name")?);
                    r.take(name_len, "literal file name")?;
                    r.take(4, "literal date")?;
                    Ok(r.rest().to_vec())
                };
                return parse(&mut r)
                    .map(Zeroizing::new)
                    .map_err(|e| format!("the literal data packet is malformed: {}", e.0));
            }
            tag::COMPRESSED if depth < 2 => {
                let (&algo, compressed) =
                    p.body.split_first().ok_or("empty compressed data packet")?;
                let mut out = Zeroizing::new(Vec::new());
                let read = match algo {
                    0 => {
                        out.extend_from_slice(compressed);
                        Ok(compressed.len())
                    }
                    1 => flate2::read::DeflateDecoder::new(compressed)
                        .take(MAX_PLAINTEXT + 1)
                        .read_to_end(&mut out),
                    2 => flate2::read::ZlibDecoder::new(compressed)
                        .take(MAX_PLAINTEXT + 1)
                        .read_to_end(&mut out),
                    other => {
                        return Err(format!(
                            "the message is compressed with algorithm {other} (BZip2?), which \
                             rrun does not read"
                        ))
                    }
                };
                read.map_err(|e| format!("the compressed data is damaged: {e}"))?;
                if out.len() as u64 > MAX_PLAINTEXT {
                    return Err("the compressed data expands to more than 1 MiB".into());
                }
                return literal_data(&out, depth + 1);
            }
            tag::ONE_PASS_SIGNATURE | tag::SIGNATURE | tag::MARKER | tag::PADDING => {}
            other => return Err(format!("unexpected packet type {other} inside the message")),
        }
    }
    Err("the message holds no literal data".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_block_checksum_is_checked() {
        let key = [1u8; 32];
        let mut block = vec![9u8];
        block.extend_from_slice(&key);
        block.extend_from_slice(&sum16(&key).to_be_bytes());
        assert!(split_session_block(&block).is_some());
        block[5] ^= 1;
        assert!(split_session_block(&block).is_none());
        assert!(split_session_block(&[9u8, 1, 2]).is_none());
        assert!(split_session_block(&[]).is_none());
    }

    #[test]
    fn compressed_literal_data_is_read() {
        use std::io::Write as _;
        let mut lit = vec![b'b', 0, 0, 0, 0, 0];
        lit.extend_from_slice(b"{\"symkey\":\"x\"}");
        let literal = packet::write(tag::LITERAL, &lit);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&literal).unwrap();
        let mut body = vec![2u8];
        body.extend(z.finish().unwrap());
        let compressed = packet::write(tag::COMPRESSED, &body);
        assert_eq!(
            literal_data(&compressed, 0).unwrap().as_slice(),
            b"{\"symkey\":\"x\"}"
        );
    }

    #[test]
    fn a_zip_bomb_is_refused() {
        use std::io::Write as _;
        let big = vec![0u8; 3 << 20];
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&packet::write(tag::LITERAL, &big)).unwrap();
        let mut body = vec![1u8];
        body.extend(z.finish().unwrap());
        let err = literal_data(&packet::write(tag::COMPRESSED, &body), 0).unwrap_err();
        assert!(err.contains("more than 1 MiB"), "{err}");
    }
}

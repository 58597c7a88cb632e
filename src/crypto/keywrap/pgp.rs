//! OpenPGP key wrapping as ocicrypt does it (`keywrap/pgp/keywrapper_gpg.go`): recipients are
//! looked up by user id name, email or key id in the gpg public keyring (`gpg --export`), the
//! private options are encrypted into one binary OpenPGP message for all of them (PKESK per
//! recipient, SEIPD v1 with MDC, AES-256, no compression), and decryption uses exported secret
//! keyrings (`gpg --export-secret-keys`, binary or armored) with their passphrase.
//!
//! Implemented here on OpenSSL: RSA, ElGamal and ECDH (cv25519, NIST P-256/384/521,
//! Brainpool) keys, v4 keys, S2K-protected secret keys (simple, salted, iterated; SHA-1 or
//! checksum), gpg's key-less stubs. Not implemented: v5/v6 keys, SEIPD v2/AEAD messages,
//! AEAD-protected secret keys; each is refused with a message saying so.

mod armor;
mod ecdh;
mod gpghome;
mod key;
mod keyring;
mod message;
mod packet;
mod secret;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use zeroize::Zeroizing;

use self::key::PublicKey;
use self::keyring::Cert;
use self::message::Outcome;
use self::packet::tag;
use self::secret::{Parsed, SecretError, SecretKey};
use super::KeyWrapper;
use crate::crypto::config::{DecryptConfig, EncryptConfig};
use crate::crypto::error::{CryptoError, Result};

/// The annotation whose values are these messages (named in errors).
const ANNOTATION: &str = "org.opencontainers.image.enc.keys.pgp";

/// Why some bytes are not the OpenPGP expected.
#[derive(Debug)]
struct Invalid(String);

type Parse<T> = std::result::Result<T, Invalid>;

fn invalid<T>(reason: impl Into<String>) -> Parse<T> {
    Err(Invalid(reason.into()))
}

fn malformed(reason: impl Into<String>) -> CryptoError {
    CryptoError::MalformedAnnotation {
        annotation: ANNOTATION.into(),
        reason: reason.into(),
    }
}

/// `0x` and the 16 hex digits of a key id, as layerinfo prints it.
pub fn format_key_id(id: u64) -> String {
    format!("0x{id:016x}")
}

/// True when the bytes look like an OpenPGP keyring: binary key packets or ASCII armor.
pub fn is_openpgp_keyring(data: &[u8]) -> bool {
    packet::starts_with_tag(
        data,
        &[tag::SECRET_KEY, tag::PUBLIC_KEY, tag::SECRET_SUBKEY],
    ) || armor::is_armored(data)
}

/// Decryption keys read from an exported gpg secret keyring, their secrets already
/// unprotected with the passphrase (held by OpenSSL or zeroized; never printed).
pub struct GpgSecretKeys {
    source: PathBuf,
    keys: Vec<SecretKey>,
    user_ids: Vec<String>,
    world_readable: bool,
}

impl fmt::Debug for GpgSecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{} {}", k.public.describe(), format_key_id(k.public.key_id)))
            .collect();
        write!(
            f,
            "GpgSecretKeys({}, [{}], {:?})",
            self.source.display(),
            keys.join(", "),
            self.user_ids
        )
    }
}

impl GpgSecretKeys {
    /// Parse a secret keyring (binary or armored) and unprotect its decryption keys with
    /// `password`. Signing-only keys and gpg stubs are skipped; a keyring with no usable
    /// decryption key, a missing or wrong passphrase are errors naming `source`.
    pub fn parse(data: &[u8], password: Option<&[u8]>, source: &Path) -> Result<Self> {
        let key_error = |reason: String| CryptoError::Key {
            path: source.into(),
            reason,
        };
        let binary: Zeroizing<Vec<u8>> = if armor::is_armored(data) {
            let blocks = armor::decode_all(data)
                .map_err(|e| key_error(format!("damaged OpenPGP armor: {}", e.0)))?;
            let mut joined = Zeroizing::new(Vec::new());
            for b in blocks.iter().filter(|b| b.label.contains("PRIVATE KEY")) {
                joined.extend_from_slice(&b.data);
            }
            if joined.is_empty() {
                return Err(public_given(
                    source,
                    blocks.iter().any(|b| b.label.contains("PUBLIC KEY")),
                ));
            }
            joined
        } else {
            Zeroizing::new(data.to_vec())
        };
        let packets = packet::read_all(&binary)
            .map_err(|e| key_error(format!("not a valid OpenPGP keyring: {}", e.0)))?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        let mut user_ids = Vec::new();
        let mut secret_packets = 0;
        let mut public_packets = 0;
        for p in packets {
            match p.tag {
                tag::SECRET_KEY | tag::SECRET_SUBKEY => {
                    secret_packets += 1;
                    let body = Zeroizing::new(p.body);
                    match secret::parse(&body, password) {
                        Ok(Parsed::Usable(k)) => keys.push(k),
                        Ok(Parsed::Skipped(k, why)) => {
                            skipped.push(format!("{}: {why}", format_key_id(k.key_id)))
                        }
                        Err(SecretError::NeedPassword) => {
                            return Err(CryptoError::MissingPassword {
                                path: source.into(),
                            })
                        }
                        Err(SecretError::WrongPassword) => {
                            return Err(CryptoError::WrongPassword {
                                path: source.into(),
                            })
                        }
                        Err(SecretError::Unsupported(why)) => return Err(key_error(why)),
                        Err(SecretError::Invalid(why)) => {
                            return Err(key_error(format!("malformed OpenPGP secret key: {why}")))
                        }
                    }
                }
                tag::PUBLIC_KEY | tag::PUBLIC_SUBKEY => public_packets += 1,
                tag::USER_ID => user_ids.push(String::from_utf8_lossy(&p.body).into_owned()),
                _ => {}
            }
        }
        if secret_packets == 0 {
            return Err(public_given(source, public_packets > 0));
        }
        if keys.is_empty() {
            return Err(key_error(format!(
                "holds no OpenPGP key rrun can decrypt with ({}): export the encryption subkey \
                 too, with `gpg --export-secret-keys`",
                skipped.join("; ")
            )));
        }
        Ok(Self {
            source: source.into(),
            keys,
            user_ids,
            world_readable: false,
        })
    }

    /// The file the keyring was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The key ids of the usable decryption keys.
    pub fn key_ids(&self) -> Vec<u64> {
        self.keys.iter().map(|k| k.public.key_id).collect()
    }

    /// The user ids in the keyring.
    pub fn user_ids(&self) -> &[String] {
        &self.user_ids
    }

    /// True when the keyring file could be read by any user when it was loaded.
    pub fn is_world_readable(&self) -> bool {
        self.world_readable
    }

    /// Record whether the file was world-readable (set by the key loader).
    pub fn set_world_readable(&mut self, world_readable: bool) {
        self.world_readable = world_readable;
    }
}

fn public_given(source: &Path, is_public: bool) -> CryptoError {
    CryptoError::Key {
        path: source.into(),
        reason: if is_public {
            "is an OpenPGP public key; decryption needs the secret key: export it with \
             `gpg --export-secret-keys KEYID > FILE`"
                .into()
        } else {
            "holds no OpenPGP secret key".into()
        },
    }
}

/// A gpg public keyring.
pub struct PublicKeyring {
    certs: Vec<Cert>,
    source: String,
}

impl fmt::Debug for PublicKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKeyring({}, {} keys)",
            self.source,
            self.certs.len()
        )
    }
}

impl PublicKeyring {
    /// Read the public keyring of a gpg home directory (`homedir`, else `GNUPGHOME`, else
    /// `~/.gnupg`) with `gpg --batch --export`, or from its keyring file when gpg is missing.
    pub fn load(homedir: Option<&Path>) -> Result<Self> {
        let home_for_errors =
            || gpghome::resolve_home(homedir).unwrap_or_else(|| PathBuf::from("~/.gnupg"));
        let export = gpghome::export(homedir).map_err(|e| CryptoError::Key {
            path: home_for_errors(),
            reason: format!("cannot read the gpg public keyring: {e}"),
        })?;
        Self::parse(&export.data, &export.source)
    }

    /// Parse a binary keyring (the output of `gpg --export`); `source` names it in messages.
    pub fn parse(data: &[u8], source: &str) -> Result<Self> {
        let certs = keyring::parse_keyring(data).map_err(|e| CryptoError::Key {
            path: PathBuf::from(source),
            reason: format!("malformed OpenPGP public keyring: {}", e.0),
        })?;
        Ok(Self {
            certs,
            source: source.into(),
        })
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// True when it holds no key.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Resolve `pgp:` recipients (user id name or email, as ocicrypt matches them, or a key id
    /// or fingerprint): one recipient per matching key, each key once. Every query must match
    /// a key with a usable encryption key.
    pub fn resolve(&self, queries: &[&str]) -> Result<Vec<PgpRecipient>> {
        let now = keyring::now();
        let mut out: Vec<PgpRecipient> = Vec::new();
        let mut missing = Vec::new();
        for query in queries {
            let matched: Vec<&Cert> = self.certs.iter().filter(|c| c.matches(query)).collect();
            if matched.is_empty() {
                missing.push(format!("pgp:{query}"));
                continue;
            }
            for cert in matched {
                let key =
                    cert.encryption_key(now)
                        .map_err(|why| CryptoError::InvalidRecipient {
                            spec: format!("pgp:{query}"),
                            reason: format!(
                                "the key {} ({}) cannot be encrypted to: {why}",
                                format_key_id(cert.primary.key.key_id),
                                cert.user_ids
                                    .first()
                                    .map(String::as_str)
                                    .unwrap_or("no user id")
                            ),
                        })?;
                if out
                    .iter()
                    .any(|r| r.primary_fingerprint == cert.primary.key.fingerprint)
                {
                    continue;
                }
                out.push(PgpRecipient {
                    query: (*query).to_string(),
                    user_id: cert.user_ids.first().cloned().unwrap_or_default(),
                    primary_fingerprint: cert.primary.key.fingerprint.clone(),
                    key: key.clone(),
                });
            }
        }
        if !missing.is_empty() {
            return Err(CryptoError::InvalidRecipient {
                spec: missing.join(", "),
                reason: format!(
                    "no key in the gpg keyring ({}) has this user id name, email or key id: \
                     import the recipient's public key with `gpg --import`, or give \
                     --gpg-homedir",
                    self.source
                ),
            });
        }
        Ok(out)
    }

    /// The email (or user id) of the key that has this key id as primary key or subkey.
    pub fn email_for_key_id(&self, id: u64) -> Option<String> {
        self.certs
            .iter()
            .find(|c| c.has_key_id(id))
            .and_then(Cert::email)
    }
}

/// A `pgp:` recipient resolved in the keyring: the key the layer key is encrypted to.
#[derive(Clone)]
pub struct PgpRecipient {
    query: String,
    user_id: String,
    primary_fingerprint: Vec<u8>,
    key: PublicKey,
}

impl fmt::Debug for PgpRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pgp:{} ({}, {:?})", self.query, self.user_id, self.key)
    }
}

impl PgpRecipient {
    /// The key id the message names for this recipient.
    pub fn key_id(&self) -> u64 {
        self.key.key_id
    }

    /// The primary user id of the recipient's key.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
}

/// Encrypt `plaintext` into one binary OpenPGP message for all `recipients`.
pub fn encrypt(recipients: &[&PgpRecipient], plaintext: &[u8]) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(CryptoError::InvalidRecipient {
            spec: "pgp:".into(),
            reason: "no recipients to encrypt for: give at least one pgp:EMAIL".into(),
        });
    }
    let keys: Vec<&PublicKey> = recipients.iter().map(|r| &r.key).collect();
    message::encrypt(&keys, plaintext)
}

/// The key ids the message is encrypted to (0 for a hidden recipient).
pub fn recipient_key_ids(message: &[u8]) -> Result<Vec<u64>> {
    let m = message::parse(message).map_err(|e| malformed(e.0))?;
    Ok(m.pkesks.iter().map(|p| p.key_id).collect())
}

/// Decrypt a message with the first key that opens it.
pub fn decrypt(keyrings: &[&GpgSecretKeys], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let m = message::parse(data).map_err(|e| malformed(e.0))?;
    let keys: Vec<&SecretKey> = keyrings.iter().flat_map(|k| k.keys.iter()).collect();
    match message::decrypt(&keys, &m).map_err(|e| malformed(e.0))? {
        Outcome::Opened(plain) => Ok(plain),
        Outcome::Altered(why) => Err(malformed(why)),
        Outcome::NoKey => {
            let ids: Vec<String> = m.pkesks.iter().map(|p| format_key_id(p.key_id)).collect();
            Err(CryptoError::NoKeyForLayer {
                layer: format!("(pgp message to {})", ids.join(", ")),
                schemes: if keys.is_empty() {
                    "pgp (no gpg secret keyring was given)".into()
                } else {
                    format!(
                        "pgp (the given keyrings hold {})",
                        keys.iter()
                            .map(|k| format_key_id(k.public.key_id))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            })
        }
    }
}

/// The `pgp` scheme. Its gpg home directory is used only to name recipients in `layerinfo`.
#[derive(Default)]
pub struct PgpKeyWrapper {
    homedir: Option<PathBuf>,
    keyring: OnceLock<Option<PublicKeyring>>,
}

impl fmt::Debug for PgpKeyWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgpKeyWrapper({:?})", self.homedir)
    }
}

impl PgpKeyWrapper {
    /// A wrapper that names recipients from the keyring of `homedir` (`None`: gpg's default).
    pub fn new(homedir: Option<PathBuf>) -> Self {
        Self {
            homedir,
            keyring: OnceLock::new(),
        }
    }

    /// The public keyring, read once; `None` when there is none to read.
    fn keyring(&self) -> Option<&PublicKeyring> {
        self.keyring
            .get_or_init(|| PublicKeyring::load(self.homedir.as_deref()).ok())
            .as_ref()
    }
}

impl KeyWrapper for PgpKeyWrapper {
    fn scheme(&self) -> &str {
        "pgp"
    }

    fn wrap_keys(&self, ec: &EncryptConfig, opts_data: &[u8]) -> Result<Option<Vec<u8>>> {
        let recipients = ec.pgp_recipients();
        if recipients.is_empty() {
            return Ok(None);
        }
        encrypt(&recipients, opts_data).map(Some)
    }

    fn unwrap_key(&self, dc: &DecryptConfig, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let keys: Vec<&GpgSecretKeys> = dc.gpg_keys().iter().collect();
        decrypt(&keys, blob)
    }

    fn no_possible_keys(&self, dc: &DecryptConfig) -> bool {
        dc.gpg_keys().is_empty()
    }

    /// `0x<key id>` per PKESK, with the email when the public keyring knows the key
    /// (ocicrypt prints `0x<id>`; ctr-enc replaces it with the email from `gpg -k`).
    fn recipients(&self, blob: &[u8]) -> Vec<String> {
        let Ok(ids) = recipient_key_ids(blob) else {
            return vec!["[pgp: malformed]".into()];
        };
        ids.into_iter()
            .map(|id| {
                let known = if id == 0 {
                    Some("hidden recipient".to_string())
                } else {
                    self.keyring().and_then(|k| k.email_for_key_id(id))
                };
                match known {
                    Some(who) => format!("{} ({who})", format_key_id(id)),
                    None => format_key_id(id),
                }
            })
            .collect()
    }
}

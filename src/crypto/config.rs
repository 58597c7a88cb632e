//! What to encrypt for (`EncryptConfig`, from `--recipient`), what to decrypt with
//! (`DecryptConfig`, from `--key`) and how to name recipients (`LayerInfoConfig`), as
//! ocicrypt's `config.EncryptConfig`/`DecryptConfig` and `helpers/parse_helpers.go`.

use std::path::{Path, PathBuf};

use super::error::{CryptoError, Result};
use super::keys::{self, Certificate, DecryptionKey, GpgSecretKeys, PrivateKey, PublicKey};
use super::keywrap::keyprovider::{ProviderConfig, ProviderKey};
use super::keywrap::pkcs11::{Pkcs11KeyFile, Pkcs11Recipient};
use super::keywrap::{self, pgp, pkcs7, KeyWrapper};
use super::layer::Annotations;
use super::options::decode_b64;
use super::ANN_KEYS_PREFIX;

/// One `--recipient` (`--encryption-key`): `SCHEME:VALUE`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Recipient {
    /// `jwe:PUBKEY_FILE`: a PEM/DER SubjectPublicKeyInfo or a public JWK.
    Jwe(PublicKey),
    /// `pgp:EMAIL_OR_NAME_OR_KEYID`: a key of the gpg public keyring.
    Pgp(pgp::PgpRecipient),
    /// `pkcs7:CERT_FILE`: an x509 certificate with an RSA key.
    Pkcs7(Certificate),
    /// `provider:NAME[:OPAQUE]`: a keyprovider of `OCICRYPT_KEYPROVIDER_CONFIG`.
    Provider(ProviderKey),
    /// `pkcs11:KEY.yaml` (a key on a token) or `pkcs11:PUBKEY.pem` (an RSA public key).
    Pkcs11(Pkcs11Recipient),
}

/// The schemes a recipient may name, for messages.
const SCHEMES_HINT: &str = "use jwe:PUBKEY_FILE, pgp:EMAIL_OR_KEYID, pkcs7:CERT_FILE, \
                            pkcs11:KEY.yaml|PUBKEY.pem or provider:NAME[:OPAQUE]";

impl Recipient {
    /// Parse a recipient argument and load its key (`pgp:` recipients from gpg's default
    /// home directory; use [`Recipient::parse_all`] to read the keyring once for many).
    pub fn parse(spec: &str) -> Result<Self> {
        let mut all = Self::parse_all(&[spec.to_string()], None)?;
        match all.len() {
            1 => Ok(all.remove(0)),
            _ => Err(CryptoError::InvalidRecipient {
                spec: spec.into(),
                reason: format!(
                    "it names {} keys of the gpg keyring; Recipient::parse takes one (use \
                     Recipient::parse_all)",
                    all.len()
                ),
            }),
        }
    }

    /// Parse recipient arguments. The gpg public keyring of `gpg_homedir` (else `GNUPGHOME`,
    /// else `~/.gnupg`) is read once when there are `pgp:` recipients; a `pgp:` name that
    /// several keys carry gives one recipient per key, as ocicrypt does.
    pub fn parse_all(specs: &[String], gpg_homedir: Option<&Path>) -> Result<Vec<Self>> {
        let mut out = Vec::with_capacity(specs.len());
        let mut pgp_queries: Vec<&str> = Vec::new();
        let mut providers: Option<Option<ProviderConfig>> = None;
        for spec in specs {
            let invalid = |reason: &str| CryptoError::InvalidRecipient {
                spec: spec.clone(),
                reason: reason.into(),
            };
            let (scheme, value) = spec
                .split_once(':')
                .ok_or_else(|| invalid(&format!("expected SCHEME:VALUE; {SCHEMES_HINT}")))?;
            if value.is_empty() {
                return Err(invalid(&format!(
                    "{scheme}: needs a value, for example jwe:pubkey.pem, pgp:alice@example.com \
                     or pkcs7:cert.pem"
                )));
            }
            match scheme {
                "jwe" => out.push(Self::Jwe(keys::load_public_key(Path::new(value))?)),
                "pkcs7" => {
                    let cert = keys::load_certificate(Path::new(value))?;
                    pkcs7::check_recipient(&cert)?;
                    out.push(Self::Pkcs7(cert));
                }
                "pgp" => pgp_queries.push(value),
                "provider" => {
                    let config = match &providers {
                        Some(c) => c,
                        None => providers.insert(ProviderConfig::from_env()?),
                    };
                    out.push(Self::Provider(ProviderKey::parse(value, config.as_ref())?));
                }
                "pkcs11" => out.push(Self::Pkcs11(Pkcs11Recipient::load(value)?)),
                _ => return Err(invalid(&format!("unknown scheme; {SCHEMES_HINT}"))),
            }
        }
        if !pgp_queries.is_empty() {
            let keyring = pgp::PublicKeyring::load(gpg_homedir)?;
            out.extend(keyring.resolve(&pgp_queries)?.into_iter().map(Self::Pgp));
        }
        Ok(out)
    }
}

/// Recipients to wrap new layer keys for, and keys to open already encrypted layers when
/// recipients are added to them.
#[derive(Debug, Default)]
pub struct EncryptConfig {
    recipients: Vec<Recipient>,
    decrypt: DecryptConfig,
}

impl EncryptConfig {
    /// An encryption config from recipients and (for adding recipients) decryption keys.
    pub fn new(recipients: Vec<Recipient>, decrypt: DecryptConfig) -> Self {
        Self {
            recipients,
            decrypt,
        }
    }

    /// Parse `--recipient` arguments; `pgp:` recipients are looked up in the keyring of
    /// `decrypt`'s gpg home directory ([`DecryptConfig::with_gpg_homedir`]).
    pub fn from_specs(specs: &[String], decrypt: DecryptConfig) -> Result<Self> {
        let recipients = Recipient::parse_all(specs, decrypt.gpg_homedir())?;
        Ok(Self::new(recipients, decrypt))
    }

    /// All recipients.
    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    /// The JWE recipients' public keys.
    pub fn jwe_recipients(&self) -> Vec<&PublicKey> {
        self.recipients
            .iter()
            .filter_map(|r| match r {
                Recipient::Jwe(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// The OpenPGP recipients.
    pub fn pgp_recipients(&self) -> Vec<&pgp::PgpRecipient> {
        self.recipients
            .iter()
            .filter_map(|r| match r {
                Recipient::Pgp(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// The PKCS#7 recipients' certificates.
    pub fn pkcs7_recipients(&self) -> Vec<&Certificate> {
        self.recipients
            .iter()
            .filter_map(|r| match r {
                Recipient::Pkcs7(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// The keyprovider recipients (`provider:NAME[:OPAQUE]`).
    pub fn provider_recipients(&self) -> Vec<&ProviderKey> {
        self.recipients
            .iter()
            .filter_map(|r| match r {
                Recipient::Provider(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// The PKCS#11 recipients.
    pub fn pkcs11_recipients(&self) -> Vec<&Pkcs11Recipient> {
        self.recipients
            .iter()
            .filter_map(|r| match r {
                Recipient::Pkcs11(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// True when there is no recipient at all.
    pub fn is_empty(&self) -> bool {
        self.recipients.is_empty()
    }

    /// The keys used to open layers that are already encrypted.
    pub fn decrypt_config(&self) -> &DecryptConfig {
        &self.decrypt
    }
}

/// Keys to unwrap layer keys with: private keys (JWE, PKCS#7), gpg secret keyrings (pgp) and
/// x509 certificates (PKCS#7 matches its recipients with them), plus the gpg home directory
/// `pgp:` recipients are looked up in when this config is used to add recipients.
#[derive(Debug, Default)]
pub struct DecryptConfig {
    private_keys: Vec<PrivateKey>,
    gpg_keys: Vec<GpgSecretKeys>,
    certificates: Vec<Certificate>,
    provider_keys: Vec<ProviderKey>,
    pkcs11_keys: Vec<Pkcs11KeyFile>,
    gpg_homedir: Option<PathBuf>,
}

impl DecryptConfig {
    /// A decryption config holding these private keys.
    pub fn new(private_keys: Vec<PrivateKey>) -> Self {
        Self {
            private_keys,
            ..Self::default()
        }
    }

    /// Load `--key` arguments (`FILE[:pass=PW|:file=PWFILE|:fd=N|:PW]` or
    /// `provider:NAME[:OPAQUE]`), sorting each file as ocicrypt does: private key, gpg secret
    /// keyring or x509 certificate(s). Providers are looked up in `OCICRYPT_KEYPROVIDER_CONFIG`.
    pub fn from_specs(specs: &[String]) -> Result<Self> {
        let mut dc = Self::default();
        let mut providers: Option<Option<ProviderConfig>> = None;
        for spec in specs {
            if let Some(value) = spec.strip_prefix("provider:") {
                let config = match &providers {
                    Some(c) => c,
                    None => providers.insert(ProviderConfig::from_env()?),
                };
                dc.provider_keys
                    .push(ProviderKey::parse(value, config.as_ref())?);
                continue;
            }
            let key = keys::load_decryption_key(spec)?;
            if let DecryptionKey::Pkcs11(k) = &key {
                // A module the policy refuses is reported now, not as "no key opens layer".
                k.check_module()?;
            }
            dc.add(key);
        }
        Ok(dc)
    }

    /// Add a keyprovider key (`provider:NAME[:OPAQUE]`).
    pub fn add_provider_key(&mut self, key: ProviderKey) {
        self.provider_keys.push(key);
    }

    /// The keyprovider keys.
    pub fn provider_keys(&self) -> &[ProviderKey] {
        &self.provider_keys
    }

    /// The PKCS#11 key files.
    pub fn pkcs11_keys(&self) -> &[Pkcs11KeyFile] {
        &self.pkcs11_keys
    }

    /// Add one loaded key file.
    pub fn add(&mut self, key: DecryptionKey) {
        match key {
            DecryptionKey::Private { key, certificates } => {
                self.private_keys.push(key);
                self.certificates.extend(certificates);
            }
            DecryptionKey::Certificates(certs) => self.certificates.extend(certs),
            DecryptionKey::Gpg(keys) => self.gpg_keys.push(keys),
            DecryptionKey::Pkcs11(key) => self.pkcs11_keys.push(key),
        }
    }

    /// Use this gpg home directory for `pgp:` recipients (`None`: `GNUPGHOME` or `~/.gnupg`).
    pub fn with_gpg_homedir(mut self, homedir: Option<PathBuf>) -> Self {
        self.gpg_homedir = homedir;
        self
    }

    /// The gpg home directory given with [`DecryptConfig::with_gpg_homedir`].
    pub fn gpg_homedir(&self) -> Option<&Path> {
        self.gpg_homedir.as_deref()
    }

    /// The private keys (PEM, DER, JWK).
    pub fn private_keys(&self) -> &[PrivateKey] {
        &self.private_keys
    }

    /// The gpg secret keyrings.
    pub fn gpg_keys(&self) -> &[GpgSecretKeys] {
        &self.gpg_keys
    }

    /// The x509 certificates.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }

    /// True when no key that can decrypt was given (certificates alone cannot).
    pub fn is_empty(&self) -> bool {
        self.private_keys.is_empty()
            && self.gpg_keys.is_empty()
            && self.provider_keys.is_empty()
            && self.pkcs11_keys.is_empty()
    }
}

/// How `layerinfo` names recipients: the gpg home directory whose public keyring turns pgp
/// key ids into emails.
#[derive(Debug, Default, Clone)]
pub struct LayerInfoConfig {
    gpg_homedir: Option<PathBuf>,
}

impl LayerInfoConfig {
    /// Name pgp recipients from the keyring of `gpg_homedir` (`None`: gpg's default home).
    pub fn new(gpg_homedir: Option<PathBuf>) -> Self {
        Self { gpg_homedir }
    }

    /// The gpg home directory.
    pub fn gpg_homedir(&self) -> Option<&Path> {
        self.gpg_homedir.as_deref()
    }

    /// The key wrappers of [`keywrap::all`], the pgp one reading this config's keyring.
    pub fn wrappers(&self) -> Vec<Box<dyn KeyWrapper>> {
        keywrap::all()
            .into_iter()
            .map(|w| -> Box<dyn KeyWrapper> {
                if w.scheme() == "pgp" {
                    Box::new(pgp::PgpKeyWrapper::new(self.gpg_homedir.clone()))
                } else {
                    w
                }
            })
            .collect()
    }

    /// Per scheme, the recipients named in the annotations (for `layerinfo`), pgp key ids
    /// resolved in this config's keyring.
    pub fn recipients(&self, annotations: &Annotations) -> Vec<(String, Vec<String>)> {
        let wrappers = self.wrappers();
        annotations
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(ANN_KEYS_PREFIX)?, v)))
            .map(|(scheme, value)| {
                let who = match wrappers.iter().find(|w| w.scheme() == scheme) {
                    Some(w) => value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .filter_map(decode_b64)
                        .flat_map(|b| w.recipients(&b))
                        .collect(),
                    None => vec![format!("[{scheme}]")],
                };
                (scheme.to_string(), who)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(path: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/crypto")
            .join(path)
            .display()
            .to_string()
    }

    fn reason(err: &CryptoError) -> String {
        err.to_string()
    }

    #[test]
    fn pkcs7_recipients_load_certificates() {
        let specs = vec![format!("pkcs7:{}", data("pkcs7/cert1.pem"))];
        let ec = EncryptConfig::from_specs(&specs, DecryptConfig::default()).unwrap();
        assert_eq!(ec.pkcs7_recipients().len(), 1);
        assert!(ec.jwe_recipients().is_empty() && ec.pgp_recipients().is_empty());
        let err = Recipient::parse(&format!("pkcs7:{}", data("pkcs7/key1.pem"))).unwrap_err();
        assert!(reason(&err).contains("is not an x509 certificate"), "{err}");
    }

    #[test]
    fn later_and_unknown_schemes_say_what_works() {
        let text = reason(&Recipient::parse("bogus:x").unwrap_err());
        assert!(text.contains("pkcs11:KEY.yaml"), "{text}");
        assert!(text.contains("provider:NAME"), "{text}");
        for (spec, want) in [
            ("bogus:x", "unknown scheme"),
            ("no-colon", "expected SCHEME:VALUE"),
            ("pgp:", "needs a value"),
        ] {
            let text = reason(&Recipient::parse(spec).unwrap_err());
            assert!(text.contains(want), "{spec}: {text}");
        }
    }

    #[test]
    fn pgp_recipients_need_an_existing_gpg_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("missing");
        let specs = vec!["pgp:alice@example.invalid".to_string()];
        let dc = DecryptConfig::default().with_gpg_homedir(Some(home.clone()));
        assert_eq!(dc.gpg_homedir(), Some(home.as_path()));
        let err = EncryptConfig::from_specs(&specs, dc).unwrap_err();
        let text = reason(&err);
        assert!(text.contains("does not exist"), "{text}");
        assert!(text.contains("--gpg-homedir"), "{text}");
        assert!(!home.exists(), "gpg must not create the home directory");
    }

    #[test]
    fn key_files_are_sorted_like_process_private_key_files() {
        let specs = vec![
            data("pkcs7/key1.pem"),
            data("pkcs7/cert2.pem"),
            data("pgp/fixture.sec.gpg"),
            format!("{}:pass=fixture pass", data("pgp/second.sec.asc")),
        ];
        let dc = DecryptConfig::from_specs(&specs).unwrap();
        assert_eq!(dc.private_keys().len(), 1);
        assert_eq!(dc.certificates().len(), 1);
        assert_eq!(dc.gpg_keys().len(), 2);
        assert!(!dc.is_empty());
        // Certificates alone cannot decrypt.
        let only_cert = DecryptConfig::from_specs(&[data("pkcs7/cert1.pem")]).unwrap();
        assert!(only_cert.is_empty());
    }

    #[test]
    fn layerinfo_names_pgp_and_pkcs7_recipients() {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        let b64 = |p: &str| STANDARD.encode(std::fs::read(data(p)).unwrap());
        let mut a = Annotations::new();
        a.insert(
            "org.opencontainers.image.enc.keys.pgp".into(),
            format!(
                "{},{}",
                b64("pgp/skopeo-one.pgp.bin"),
                b64("pgp/sample-enc-pgp-keys.pgp.bin")
            ),
        );
        a.insert(
            "org.opencontainers.image.enc.keys.pkcs7".into(),
            b64("pkcs7/skopeo-one.pkcs7.der"),
        );
        a.insert(
            "org.opencontainers.image.enc.keys.pkcs11".into(),
            "e30=".into(),
        );
        let cfg = LayerInfoConfig::new(Some(PathBuf::from("/nonexistent-gpg-home")));
        let rows = cfg.recipients(&a);
        assert_eq!(rows[0].0, "pgp");
        assert_eq!(rows[0].1, vec!["0xe750b6f8bf8b159c", "0xfb7e9ac31693f650"]);
        assert_eq!(
            rows[1],
            ("pkcs11".to_string(), vec!["[pkcs11]".to_string()])
        );
        assert_eq!(rows[2].0, "pkcs7");
        assert!(rows[2].1[0].starts_with("[pkcs7] CN=rrun-fixture-1 serial "));
    }
}

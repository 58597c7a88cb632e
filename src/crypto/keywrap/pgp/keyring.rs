//! Transferable public keys (RFC 4880 section 11.1) as `gpg --export` writes them: primary key,
//! user ids and subkeys with what their self-signatures say (key flags, expiry, revocation),
//! recipient matching as ocicrypt does it, and the choice of the encryption key.
//!
//! Signatures are not verified: the keyring is the user's own, exported by gpg, which checks
//! self-signatures when it imports keys. Flags, expiry and revocations are read from the newest
//! self-signature of each component.

use std::time::{SystemTime, UNIX_EPOCH};

use super::key::PublicKey;
use super::packet::{self, tag, Packet, Reader};
use super::{Invalid, Parse};

/// Key flags (RFC 4880 section 5.2.3.21).
const FLAG_ENCRYPT_COMMS: u8 = 0x04;
const FLAG_ENCRYPT_STORAGE: u8 = 0x08;

/// Signature types (section 5.2.1).
mod sigtype {
    pub const CERT_GENERIC: u8 = 0x10;
    pub const CERT_POSITIVE: u8 = 0x13;
    pub const SUBKEY_BINDING: u8 = 0x18;
    pub const DIRECT_KEY: u8 = 0x1f;
    pub const KEY_REVOCATION: u8 = 0x20;
    pub const SUBKEY_REVOCATION: u8 = 0x28;
}

/// What a self-signature says about its component.
#[derive(Debug, Clone, Default)]
struct SigInfo {
    created: u32,
    flags: Option<u8>,
    /// Seconds after the key's creation; 0 or absent: never.
    expires_after: Option<u32>,
}

/// A key or subkey with what its newest self-signature says.
#[derive(Debug, Clone)]
pub(super) struct Component {
    pub key: PublicKey,
    binding: Option<SigInfo>,
    revoked: bool,
}

impl Component {
    fn new(key: PublicKey) -> Self {
        Self {
            key,
            binding: None,
            revoked: false,
        }
    }

    fn flags(&self) -> Option<u8> {
        self.binding.as_ref().and_then(|b| b.flags)
    }

    fn expired(&self, now: u64) -> bool {
        match self.binding.as_ref().and_then(|b| b.expires_after) {
            Some(0) | None => false,
            Some(after) => u64::from(self.key.created) + u64::from(after) <= now,
        }
    }

    fn can_encrypt(&self) -> bool {
        self.key.can_encrypt()
            && self
                .flags()
                .is_none_or(|f| f & (FLAG_ENCRYPT_COMMS | FLAG_ENCRYPT_STORAGE) != 0)
    }

    /// Keep the newest binding.
    fn bind(&mut self, info: SigInfo) {
        if self
            .binding
            .as_ref()
            .is_none_or(|b| b.created <= info.created)
        {
            self.binding = Some(info);
        }
    }
}

/// One transferable public key.
#[derive(Debug, Clone)]
pub(super) struct Cert {
    pub primary: Component,
    pub user_ids: Vec<String>,
    pub subkeys: Vec<Component>,
}

impl Cert {
    /// The email of the first user id that has one, else the first user id.
    pub fn email(&self) -> Option<String> {
        self.user_ids
            .iter()
            .find_map(|u| split_user_id(u).1)
            .or_else(|| self.user_ids.first().cloned())
    }

    /// True when a user id's name or email is `query` (ocicrypt compares `mail.ParseAddress`'s
    /// `Name` and `Address`; emails are compared without regard to case), or when `query` is
    /// the key id or fingerprint of the key or a subkey (`0x` prefix optional).
    pub fn matches(&self, query: &str) -> bool {
        let by_uid = self.user_ids.iter().any(|uid| {
            let (name, email) = split_user_id(uid);
            name.as_deref() == Some(query)
                || email.is_some_and(|e| e.eq_ignore_ascii_case(query))
                || uid == query
        });
        by_uid || self.keys().any(|k| key_matches(&k.key, query))
    }

    /// True when this key or a subkey has this key id.
    pub fn has_key_id(&self, id: u64) -> bool {
        self.keys().any(|k| k.key.key_id == id)
    }

    fn keys(&self) -> impl Iterator<Item = &Component> {
        std::iter::once(&self.primary).chain(&self.subkeys)
    }

    /// The key to encrypt to, as go-crypto's `EncryptionKey` picks it: the newest valid subkey
    /// flagged for encryption, else the primary key if it may encrypt. `Err` says why none.
    pub fn encryption_key(&self, now: u64) -> Result<&PublicKey, String> {
        if self.primary.revoked {
            return Err("the key is revoked".into());
        }
        if self.primary.expired(now) {
            return Err("the key has expired".into());
        }
        let best = self
            .subkeys
            .iter()
            .filter(|s| s.binding.is_some() && !s.revoked && !s.expired(now) && s.can_encrypt())
            .max_by_key(|s| s.key.created);
        if let Some(sub) = best {
            return Ok(&sub.key);
        }
        if self.primary.can_encrypt() {
            return Ok(&self.primary.key);
        }
        let unusable: Vec<String> = self
            .keys()
            .filter(|k| !k.key.can_encrypt())
            .map(|k| k.key.describe())
            .collect();
        Err(if self.subkeys.is_empty() {
            format!(
                "it has no encryption subkey (add one with `gpg --quick-add-key {} rsa3072 encr`)",
                hex::encode_upper(&self.primary.key.fingerprint)
            )
        } else if unusable.is_empty() {
            "all its encryption subkeys are revoked or expired".into()
        } else {
            format!(
                "none of its subkeys is a valid encryption key rrun can use ({})",
                unusable.join(", ")
            )
        })
    }
}

fn key_matches(key: &PublicKey, query: &str) -> bool {
    let q = query
        .strip_prefix("0x")
        .or_else(|| query.strip_prefix("0X"))
        .unwrap_or(query);
    if q.len() == 16 {
        return u64::from_str_radix(q, 16).is_ok_and(|id| id == key.key_id);
    }
    q.len() == 40 && q.eq_ignore_ascii_case(&hex::encode(&key.fingerprint))
}

/// Split `Name (comment) <email>` into its name and email, as `mail.ParseAddress` would.
pub(super) fn split_user_id(uid: &str) -> (Option<String>, Option<String>) {
    if let (Some(open), Some(close)) = (uid.rfind('<'), uid.rfind('>')) {
        if open < close {
            let email = uid[open + 1..close].trim().to_string();
            let mut name = uid[..open].trim();
            // A trailing "(comment)" is not part of the name.
            if name.ends_with(')') {
                if let Some(c) = name.rfind('(') {
                    name = name[..c].trim();
                }
            }
            let name = name.trim_matches('"').to_string();
            return (
                (!name.is_empty()).then_some(name),
                (!email.is_empty()).then_some(email),
            );
        }
    }
    let uid = uid.trim();
    if uid.contains('@') && !uid.contains(' ') {
        (None, Some(uid.to_string()))
    } else {
        ((!uid.is_empty()).then(|| uid.to_string()), None)
    }
}

/// Seconds since the epoch now.
pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Group a packet stream into certificates. Secret key packets are read for their public part;
/// unknown packets between components are skipped as gpg does.
pub(super) fn parse_certs(packets: &[Packet]) -> Parse<Vec<Cert>> {
    let mut certs: Vec<Cert> = Vec::new();
    // Where signatures go: the primary key, a user id, a user attribute or a subkey.
    enum Target {
        None,
        Primary,
        UserId,
        Other,
        Subkey,
    }
    let mut target = Target::None;
    for p in packets {
        match p.tag {
            tag::PUBLIC_KEY | tag::SECRET_KEY => {
                let (key, _) = PublicKey::parse(&p.body)?;
                certs.push(Cert {
                    primary: Component::new(key),
                    user_ids: Vec::new(),
                    subkeys: Vec::new(),
                });
                target = Target::Primary;
            }
            tag::PUBLIC_SUBKEY | tag::SECRET_SUBKEY => {
                let Some(cert) = certs.last_mut() else {
                    return Err(Invalid("a subkey comes before any primary key".into()));
                };
                let (key, _) = PublicKey::parse(&p.body)?;
                cert.subkeys.push(Component::new(key));
                target = Target::Subkey;
            }
            tag::USER_ID => {
                let Some(cert) = certs.last_mut() else {
                    return Err(Invalid("a user id comes before any primary key".into()));
                };
                cert.user_ids
                    .push(String::from_utf8_lossy(&p.body).into_owned());
                target = Target::UserId;
            }
            tag::USER_ATTRIBUTE => target = Target::Other,
            tag::SIGNATURE => {
                let Some(cert) = certs.last_mut() else {
                    continue;
                };
                let Some(sig) = Signature::parse(&p.body) else {
                    continue;
                };
                if !sig.by(&cert.primary.key) {
                    continue;
                }
                match (&target, sig.kind) {
                    (_, sigtype::KEY_REVOCATION) => cert.primary.revoked = true,
                    (Target::Primary, sigtype::DIRECT_KEY) => cert.primary.bind(sig.info),
                    (Target::UserId, k)
                        if (sigtype::CERT_GENERIC..=sigtype::CERT_POSITIVE).contains(&k) =>
                    {
                        cert.primary.bind(sig.info)
                    }
                    (Target::Subkey, sigtype::SUBKEY_BINDING) => {
                        if let Some(sub) = cert.subkeys.last_mut() {
                            sub.bind(sig.info);
                        }
                    }
                    (Target::Subkey, sigtype::SUBKEY_REVOCATION) => {
                        if let Some(sub) = cert.subkeys.last_mut() {
                            sub.revoked = true;
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(certs)
}

/// The parts of a v4 signature rrun reads.
struct Signature {
    kind: u8,
    issuer: Option<u64>,
    issuer_fpr: Option<Vec<u8>>,
    info: SigInfo,
}

impl Signature {
    fn parse(body: &[u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        if r.u8("").ok()? != 4 {
            return None;
        }
        let kind = r.u8("").ok()?;
        let _pk_algo = r.u8("").ok()?;
        let _hash_algo = r.u8("").ok()?;
        let hashed_len = usize::from(r.u16("").ok()?);
        let hashed = r.take(hashed_len, "").ok()?;
        let unhashed_len = usize::from(r.u16("").ok()?);
        let unhashed = r.take(unhashed_len, "").ok()?;
        let mut sig = Self {
            kind,
            issuer: None,
            issuer_fpr: None,
            info: SigInfo::default(),
        };
        for (area, trusted) in [(hashed, true), (unhashed, false)] {
            for (t, data) in subpackets(area)? {
                match (t, data.len(), trusted) {
                    (2, 4, true) => sig.info.created = u32::from_be_bytes(data.try_into().ok()?),
                    (9, 4, true) => {
                        sig.info.expires_after = Some(u32::from_be_bytes(data.try_into().ok()?))
                    }
                    (27, n, true) if n >= 1 => sig.info.flags = Some(data[0]),
                    (16, 8, _) => sig.issuer = Some(u64::from_be_bytes(data.try_into().ok()?)),
                    (33, 21, _) => sig.issuer_fpr = Some(data[1..].to_vec()),
                    _ => {}
                }
            }
        }
        Some(sig)
    }

    /// True when the signature says it was made by `key` (or does not say by whom).
    fn by(&self, key: &PublicKey) -> bool {
        match (&self.issuer_fpr, self.issuer) {
            (Some(fpr), _) => *fpr == key.fingerprint,
            (None, Some(id)) => id == key.key_id,
            (None, None) => true,
        }
    }
}

/// The subpackets of a signature area: `(type without the critical bit, data)`.
fn subpackets(mut area: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !area.is_empty() {
        let first = area[0];
        let (len, header): (usize, usize) = match first {
            0..=191 => (usize::from(first), 1),
            192..=254 => (
                ((usize::from(first) - 192) << 8) + usize::from(*area.get(1)?) + 192,
                2,
            ),
            255 => (
                usize::try_from(u32::from_be_bytes(area.get(1..5)?.try_into().ok()?)).ok()?,
                5,
            ),
        };
        let body = area.get(header..header.checked_add(len)?)?;
        let (&t, data) = body.split_first()?;
        out.push((t & 0x7f, data));
        area = &area[header + len..];
    }
    Some(out)
}

/// Every certificate in a binary keyring.
pub(super) fn parse_keyring(data: &[u8]) -> Parse<Vec<Cert>> {
    parse_certs(&packet::read_all(data)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_split_like_mail_parse_address() {
        assert_eq!(
            split_user_id("Alice Test <alice@example.invalid>"),
            (
                Some("Alice Test".into()),
                Some("alice@example.invalid".into())
            )
        );
        assert_eq!(
            split_user_id("Bob (work) <bob@example.invalid>"),
            (Some("Bob".into()), Some("bob@example.invalid".into()))
        );
        assert_eq!(
            split_user_id("<carol@example.invalid>"),
            (None, Some("carol@example.invalid".into()))
        );
        assert_eq!(
            split_user_id("dave@example.invalid"),
            (None, Some("dave@example.invalid".into()))
        );
        assert_eq!(
            split_user_id("Just A Name"),
            (Some("Just A Name".into()), None)
        );
    }

    #[test]
    fn subpacket_lengths() {
        let area = [5u8, 2, 0, 0, 0, 1, 2, 27, 0x0c];
        let subs = subpackets(&area).unwrap();
        assert_eq!(subs, vec![(2, &[0u8, 0, 0, 1][..]), (27, &[0x0c][..])]);
        assert!(subpackets(&[9u8, 2]).is_none());
    }
}

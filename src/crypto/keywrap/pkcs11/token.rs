//! Talking to a PKCS#11 token through `cryptoki`: load the module the policy allows, set the
//! key file's module environment, find the slot (`slot-id` or `token` label), log in with the
//! PIN, find the key object (`object` label and/or `id`) and run RSA-OAEP on it.

use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::uri::{ModulePolicy, Pkcs11KeyFile};
use super::OaepHash;
use crate::crypto::error::Result;

/// The process environment is shared: module environments are set one key at a time.
static ENV_LOCK: Mutex<()> = Mutex::new(());

/// Restores the variables a key file's `module.env` replaced.
struct EnvGuard {
    saved: Vec<(String, Option<std::ffi::OsString>)>,
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        for (k, v) in self.saved.drain(..) {
            match v {
                Some(v) => std::env::set_var(&k, v),
                None => std::env::remove_var(&k),
            }
        }
    }
}

/// An open, logged-in session on the token holding a key file's key.
pub(super) struct TokenSession<'k> {
    key: &'k Pkcs11KeyFile,
    // Field order: the session closes before the library finalizes, then the env is restored.
    session: Session,
    _ctx: Pkcs11,
    _env: EnvGuard,
    _lock: std::sync::MutexGuard<'static, ()>,
}

fn oaep(hash: OaepHash) -> Mechanism<'static> {
    let (h, mgf) = match hash {
        OaepHash::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        OaepHash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
    };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(h, mgf, PkcsOaepSource::empty()))
}

impl<'k> TokenSession<'k> {
    /// Open a session for `key`; `private` requires a PIN (a private key operation).
    pub(super) fn open(
        key: &'k Pkcs11KeyFile,
        policy: &ModulePolicy,
        private: bool,
    ) -> Result<Self> {
        let uri = key.uri();
        let pin = uri.pin().map_err(|e| key.error(e))?;
        if private && pin.is_none() {
            return Err(key.error(
                "the uri has no PIN for the private key: add pin-value=PIN or pin-source=FILE",
            ));
        }
        let module = uri.module(policy).map_err(|e| key.error(e))?;
        let lock = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut env = EnvGuard { saved: Vec::new() };
        for (k, v) in key.env() {
            env.saved.push((k.clone(), std::env::var_os(k)));
            std::env::set_var(k, v);
        }
        let p11 = |what: &str, e: cryptoki::error::Error| key.error(format!("pkcs11 {what}: {e}"));
        let ctx = Pkcs11::new(&module).map_err(|e| {
            key.error(format!(
                "cannot load pkcs11 module {}: {e}",
                module.display()
            ))
        })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => return Err(p11("initialize", e)),
        }
        let slot = find_slot(&ctx, key)?;
        let session = ctx
            .open_ro_session(slot)
            .map_err(|e| p11("open session", e))?;
        if let Some(pin) = pin {
            let auth = AuthPin::from(pin.as_str().to_string());
            session
                .login(UserType::User, Some(&auth))
                .map_err(|e| match e {
                    cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::PinIncorrect, _) => {
                        key.error("wrong PIN for the token (pin-value in the uri)")
                    }
                    e => p11("login", e),
                })?;
        }
        Ok(Self {
            key,
            session,
            _ctx: ctx,
            _env: env,
            _lock: lock,
        })
    }

    fn find(&self, class: ObjectClass) -> Result<ObjectHandle> {
        let uri = self.key.uri();
        let mut template = vec![Attribute::Class(class)];
        if let Some(label) = uri.path_attr("object") {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = uri.path_attr("id") {
            template.push(Attribute::Id(id.as_bytes().to_vec()));
        }
        let found = self
            .session
            .find_objects(&template)
            .map_err(|e| self.key.error(format!("pkcs11 find objects: {e}")))?;
        let what = if class == ObjectClass::PRIVATE_KEY {
            "private key"
        } else {
            "public key"
        };
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(self
                .key
                .error(format!("the token has no {what} {}", uri.describe()))),
            many => Err(self.key.error(format!(
                "the token has {} {what}s matching {}: name one with object= and id=",
                many.len(),
                uri.describe()
            ))),
        }
    }

    /// RSA-OAEP encrypt with the token's public key.
    pub(super) fn encrypt(&self, hash: OaepHash, data: &[u8]) -> Result<Vec<u8>> {
        let key = self.find(ObjectClass::PUBLIC_KEY)?;
        self.session.encrypt(&oaep(hash), key, data).map_err(|e| {
            self.key
                .error(format!("pkcs11 RSA-OAEP-{} encrypt: {e}", hash.name()))
        })
    }

    /// The private key handle, looked up once for several decryptions.
    pub(super) fn private_key(&self) -> Result<ObjectHandle> {
        self.find(ObjectClass::PRIVATE_KEY)
    }

    /// RSA-OAEP decrypt with the token's private key.
    pub(super) fn decrypt(
        &self,
        key: ObjectHandle,
        hash: OaepHash,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.session
            .decrypt(&oaep(hash), key, data)
            .map(Zeroizing::new)
            .map_err(|e| {
                self.key
                    .error(format!("pkcs11 RSA-OAEP-{} decrypt: {e}", hash.name()))
            })
    }
}

fn find_slot(ctx: &Pkcs11, key: &Pkcs11KeyFile) -> Result<Slot> {
    let uri = key.uri();
    if let Some(id) = uri.path_attr("slot-id") {
        let n: u64 = id
            .parse()
            .map_err(|_| key.error(format!("slot-id {id:?} is not a number")))?;
        return Slot::try_from(n).map_err(|e| key.error(format!("slot-id {n}: {e}")));
    }
    let label = uri
        .path_attr("token")
        .ok_or_else(|| key.error("the uri names no token: add token=LABEL or slot-id=N"))?;
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| key.error(format!("pkcs11 slot list: {e}")))?;
    for slot in slots {
        if ctx
            .get_token_info(slot)
            .is_ok_and(|t| t.label().trim_end() == label)
        {
            return Ok(slot);
        }
    }
    Err(key.error(format!("no token labelled {label:?} is present")))
}

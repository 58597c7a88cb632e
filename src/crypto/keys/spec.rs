//! `--key` arguments: splitting `FILE[:PASSWORD-PART]`, reading the password from where the
//! spec says (ocicrypt's `processPwdString`), and reading key files into zeroized memory.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::error::{CryptoError, Result};

/// Key files larger than this are refused: no key is that big.
const MAX_KEY_FILE: usize = 1 << 20;
/// Password files larger than this are refused.
const MAX_PASSWORD_FILE: usize = 64 << 10;
/// ocicrypt reads one `read(2)` of at most 64 bytes from `fd=N`.
const FD_PASSWORD_MAX: usize = 64;
/// Spec prefixes for keys that do not live in a file.
const UNSUPPORTED_PREFIXES: [(&str, &str); 1] = [("provider:", "keyprovider keys (provider:NAME)")];
/// The prefix of a systemd credential key: `cred:NAME[:PASSWORD-PART]`.
const CREDENTIAL_PREFIX: &str = "cred:";

/// A key file's bytes and whether any user could read it.
pub(super) struct KeyFile {
    pub data: Zeroizing<Vec<u8>>,
    pub world_readable: bool,
}

/// Split a `--key` spec into the key file and the password part after its `:`, if any.
///
/// ocicrypt splits on every `:` and takes a password only when there are exactly two parts.
/// rrun keeps that meaning and also handles `:` in file names and passwords: a spec that is an
/// existing file as a whole has no password; otherwise the file is the shortest existing prefix
/// before a `:`, and everything after that `:` is the password part.
pub(super) fn split(spec: &str) -> Result<(PathBuf, Option<&str>)> {
    if spec.is_empty() {
        return Err(CryptoError::Key {
            path: PathBuf::new(),
            reason: "empty key argument: give FILE[:pass=PW|:file=PWFILE|:fd=N|:PW]".into(),
        });
    }
    for (prefix, what) in UNSUPPORTED_PREFIXES {
        if spec.starts_with(prefix) {
            return Err(CryptoError::Key {
                path: spec.into(),
                reason: format!("{what} are not supported by this rrun build yet; give a key file"),
            });
        }
    }
    if let Some(rest) = spec.strip_prefix(CREDENTIAL_PREFIX) {
        return credential(rest, std::env::var_os("CREDENTIALS_DIRECTORY"));
    }
    if Path::new(spec).exists() {
        return Ok((spec.into(), None));
    }
    for (at, _) in spec.match_indices(':') {
        let file = &spec[..at];
        if !file.is_empty() && Path::new(file).exists() {
            return Ok((file.into(), Some(&spec[at + 1..])));
        }
    }
    // Nothing exists: name the file ocicrypt would have read, so the error says "not found".
    match spec.split_once(':') {
        Some(("", _)) => Err(CryptoError::Key {
            path: spec.into(),
            reason: "the key file name is missing before ':'".into(),
        }),
        Some((file, rest)) => Ok((file.into(), Some(rest))),
        None => Ok((spec.into(), None)),
    }
}

/// `cred:NAME[:PASSWORD-PART]`: the file `NAME` in the credentials directory systemd made for
/// the unit (`$CREDENTIALS_DIRECTORY`, from `LoadCredential=`/`LoadCredentialEncrypted=`).
fn credential(rest: &str, dir: Option<std::ffi::OsString>) -> Result<(PathBuf, Option<&str>)> {
    let (name, password) = match rest.split_once(':') {
        Some((name, pw)) => (name, Some(pw)),
        None => (rest, None),
    };
    let bad = |reason: String| CryptoError::Key {
        path: format!("{CREDENTIAL_PREFIX}{name}").into(),
        reason,
    };
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(bad(
            "a credential name is required: cred:NAME[:pass=PW|:file=PWFILE|:fd=N], NAME without '/'"
                .into(),
        ));
    }
    let Some(dir) = dir.filter(|d| !d.is_empty()) else {
        return Err(bad(format!(
            "$CREDENTIALS_DIRECTORY is not set: run rrun from a systemd unit with LoadCredentialEncrypted={name}:FILE (rrun generate systemd writes it)"
        )));
    };
    let dir = PathBuf::from(dir);
    if !dir.is_dir() {
        return Err(bad(format!(
            "the credentials directory {} does not exist: systemd did not load the unit's credentials",
            dir.display()
        )));
    }
    let file = dir.join(name);
    if !file.exists() {
        return Err(bad(format!(
            "the credential {name} is missing from {}: add LoadCredentialEncrypted={name}:FILE to the unit and check that FILE exists",
            dir.display()
        )));
    }
    Ok((file, password))
}

/// The password a password part stands for: `file=PWFILE`, `pass=PW`, `fd=N` or `PW`.
///
/// As ocicrypt does, a password file is taken byte for byte: a trailing newline is part of the
/// password (write the file with `printf '%s' PW`). `fd=N` is read once, at most 64 bytes.
pub(super) fn password(part: &str, key_path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(file) = part.strip_prefix("file=") {
        return password_file(Path::new(file));
    }
    if let Some(pw) = part.strip_prefix("pass=") {
        return Ok(Zeroizing::new(pw.as_bytes().to_vec()));
    }
    if let Some(fd) = part.strip_prefix("fd=") {
        return password_fd(fd, key_path);
    }
    Ok(Zeroizing::new(part.as_bytes().to_vec()))
}

fn password_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let file = File::open(path).map_err(|e| CryptoError::Key {
        path: path.into(),
        reason: format!("cannot read the password file: {}", io_reason(&e)),
    })?;
    let data = read_limited(file, MAX_PASSWORD_FILE, path, "password file")?;
    if data.is_empty() {
        return Err(CryptoError::Key {
            path: path.into(),
            reason: "the password file is empty".into(),
        });
    }
    Ok(data)
}

/// Read the password from an inherited descriptor through `/proc/self/fd` (no `unsafe`).
fn password_fd(fd: &str, key_path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |reason: String| CryptoError::Key {
        path: key_path.into(),
        reason,
    };
    let n: u32 = fd.parse().map_err(|_| {
        bad(format!(
            "fd={fd} is not a file descriptor number; use FILE:fd=N with N an open descriptor"
        ))
    })?;
    let mut file = File::open(format!("/proc/self/fd/{n}")).map_err(|e| {
        bad(match e.kind() {
            ErrorKind::NotFound => format!("cannot read the password from fd {n}: it is not open"),
            _ => format!("cannot read the password from fd {n}: {}", io_reason(&e)),
        })
    })?;
    let mut buf = Zeroizing::new(vec![0u8; FD_PASSWORD_MAX]);
    let got = loop {
        match file.read(&mut buf) {
            Ok(got) => break got,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(bad(format!(
                    "cannot read the password from fd {n}: {}",
                    io_reason(&e)
                )))
            }
        }
    };
    if got == 0 {
        return Err(bad(format!(
            "fd {n} gave no password (it is empty or at its end)"
        )));
    }
    buf.truncate(got);
    Ok(buf)
}

/// Read a key file, refusing directories and oversized files, and note its mode.
pub(super) fn read_key_file(path: &Path) -> Result<KeyFile> {
    let file = File::open(path).map_err(|e| CryptoError::Key {
        path: path.into(),
        reason: format!("cannot read the key file: {}", io_reason(&e)),
    })?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(CryptoError::Key {
            path: path.into(),
            reason: "is a directory, not a key file".into(),
        });
    }
    let world_readable = meta.permissions().mode() & 0o004 != 0;
    let data = read_limited(file, MAX_KEY_FILE, path, "key file")?;
    Ok(KeyFile {
        data,
        world_readable,
    })
}

/// Read all of `file` into zeroized memory; when the buffer must grow, the old one is wiped.
fn read_limited(mut file: File, max: usize, path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let hint = file
        .metadata()
        .ok()
        .and_then(|m| usize::try_from(m.len()).ok())
        .unwrap_or(0)
        .min(max);
    let mut buf = Zeroizing::new(vec![0u8; hint.max(4096) + 1]);
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len > max {
                return Err(CryptoError::Key {
                    path: path.into(),
                    reason: format!("the {what} is larger than {} KiB", max >> 10),
                });
            }
            let mut bigger = Zeroizing::new(vec![0u8; buf.len() * 2]);
            bigger[..len].copy_from_slice(&buf[..len]);
            buf = bigger;
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(got) => len += got,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(CryptoError::Key {
                    path: path.into(),
                    reason: format!("cannot read the {what}: {}", io_reason(&e)),
                })
            }
        }
    }
    if len > max {
        return Err(CryptoError::Key {
            path: path.into(),
            reason: format!("the {what} is larger than {} KiB", max >> 10),
        });
    }
    buf.truncate(len);
    Ok(buf)
}

/// An io error in lower case, without the "(os error N)" tail.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => "no such file".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            text.to_lowercase()
        }
    }
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    #[test]
    fn credential_keys_resolve_in_the_credentials_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("imagekey"), b"key").unwrap();
        let d = || Some(dir.path().as_os_str().to_owned());
        let (file, pw) = credential("imagekey", d()).unwrap();
        assert_eq!(file, dir.path().join("imagekey"));
        assert_eq!(pw, None);
        let (file, pw) = credential("imagekey:pass=secret", d()).unwrap();
        assert_eq!(file, dir.path().join("imagekey"));
        assert_eq!(pw, Some("pass=secret"));
    }

    #[test]
    fn credential_errors_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let d = || Some(dir.path().as_os_str().to_owned());
        let msg = |r: Result<(PathBuf, Option<&str>)>| r.unwrap_err().to_string();
        let unset = msg(credential("k", None));
        assert!(
            unset.contains("CREDENTIALS_DIRECTORY is not set")
                && unset.contains("LoadCredentialEncrypted=k"),
            "{unset}"
        );
        let missing = msg(credential("k", d()));
        assert!(missing.contains("credential k is missing"), "{missing}");
        let gone = msg(credential(
            "k",
            Some(dir.path().join("nope").into_os_string()),
        ));
        assert!(gone.contains("does not exist"), "{gone}");
        for name in ["", "../k", "a/b", ".."] {
            assert!(msg(credential(name, d())).contains("credential name is required"));
        }
        // The whole spec goes through split as well.
        assert!(split("cred:").is_err());
    }
}

//! Reading the public keyring of a gpg home directory: `gpg --batch --export` as ocicrypt does
//! (`gpg.go` ReadGPGPubRingFile, `gpg2` preferred), or, when no gpg is installed, the keybox
//! (`pubring.kbx`) or legacy `pubring.gpg` file directly.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{invalid, Invalid, Parse};

/// The gpg programs tried, in ocicrypt's order (`GuessGPGVersion`).
const GPG_PROGRAMS: [&str; 2] = ["gpg2", "gpg"];

/// Where a keyring came from and its bytes.
pub(super) struct Export {
    pub data: Vec<u8>,
    pub source: String,
}

/// Why the keyring could not be read.
#[derive(Debug)]
pub(super) enum ExportError {
    /// The home directory does not exist.
    NoHome(PathBuf),
    /// gpg ran and failed.
    Gpg {
        program: String,
        home: PathBuf,
        stderr: String,
    },
    /// A keyring file could not be read or parsed.
    File { path: PathBuf, reason: String },
    /// Neither gpg nor a keyring file was found.
    Nothing(PathBuf),
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoHome(h) => write!(
                f,
                "the gpg home directory {} does not exist: give --gpg-homedir DIR or set GNUPGHOME",
                h.display()
            ),
            Self::Gpg {
                program,
                home,
                stderr,
            } => write!(
                f,
                "`{program} --batch --export` failed for {}: {stderr}",
                home.display()
            ),
            Self::File { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::Nothing(h) => write!(
                f,
                "gpg is not installed and {} has no pubring.kbx or pubring.gpg: install gnupg \
                 (`make deps`) or give --gpg-homedir DIR",
                h.display()
            ),
        }
    }
}

/// The home directory gpg would use: `homedir`, else `GNUPGHOME`, else `~/.gnupg`.
pub(super) fn resolve_home(homedir: Option<&Path>) -> Option<PathBuf> {
    if let Some(h) = homedir {
        return Some(h.to_path_buf());
    }
    if let Some(h) = std::env::var_os("GNUPGHOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(h));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".gnupg"))
}

/// Export the public keyring of `homedir` (or gpg's default home).
pub(super) fn export(homedir: Option<&Path>) -> Result<Export, ExportError> {
    let home =
        resolve_home(homedir).ok_or_else(|| ExportError::NoHome(PathBuf::from("~/.gnupg")))?;
    // gpg would create a missing home directory: refuse instead of leaving one behind.
    if !home.is_dir() {
        return Err(ExportError::NoHome(home));
    }
    for program in GPG_PROGRAMS {
        let mut cmd = Command::new(program);
        if homedir.is_some() {
            cmd.arg("--homedir").arg(&home);
        }
        cmd.args(["--batch", "--no-tty", "--export"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ExportError::Gpg {
                    program: program.into(),
                    home,
                    stderr: e.to_string().to_lowercase(),
                })
            }
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr = stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ExportError::Gpg {
                program: program.into(),
                home,
                stderr,
            });
        }
        return Ok(Export {
            data: out.stdout,
            source: format!("`{program} --export` of {}", home.display()),
        });
    }
    read_files(&home)
}

/// Read `pubring.kbx` or `pubring.gpg` without gpg.
pub(super) fn read_files(home: &Path) -> Result<Export, ExportError> {
    let kbx = home.join("pubring.kbx");
    if kbx.is_file() {
        let raw = std::fs::read(&kbx).map_err(|e| ExportError::File {
            path: kbx.clone(),
            reason: e.to_string().to_lowercase(),
        })?;
        let data = keybox_keyblocks(&raw).map_err(|e| ExportError::File {
            path: kbx.clone(),
            reason: e.0,
        })?;
        return Ok(Export {
            data,
            source: kbx.display().to_string(),
        });
    }
    let gpg = home.join("pubring.gpg");
    if gpg.is_file() {
        let data = std::fs::read(&gpg).map_err(|e| ExportError::File {
            path: gpg.clone(),
            reason: e.to_string().to_lowercase(),
        })?;
        return Ok(Export {
            data,
            source: gpg.display().to_string(),
        });
    }
    Err(ExportError::Nothing(home.to_path_buf()))
}

/// Keybox blob types (GnuPG `kbx/keybox-defs.h`).
const BLOB_OPENPGP: u8 = 2;

/// The OpenPGP keyblocks of a keybox file, concatenated. Each blob starts with its length
/// (4 bytes), type and version; an OpenPGP blob (type 2) holds at offsets 8 and 12 the offset
/// and length of its keyblock, which is the key as `gpg --export` would write it.
pub(super) fn keybox_keyblocks(data: &[u8]) -> Parse<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let blob = data.get(pos..).unwrap_or_default();
        let Some(len) = blob
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            return invalid("truncated keybox blob");
        };
        if len < 6 || len > blob.len() {
            return invalid(format!(
                "keybox blob at offset {pos} has a bad length {len}"
            ));
        }
        let blob = &blob[..len];
        if blob[4] == BLOB_OPENPGP {
            let field = |at: usize| -> Parse<usize> {
                blob.get(at..at + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .ok_or_else(|| Invalid("truncated keybox blob header".into()))
            };
            let (off, klen) = (field(8)?, field(12)?);
            let block = off
                .checked_add(klen)
                .and_then(|end| blob.get(off..end))
                .ok_or_else(|| {
                    Invalid(format!("keybox blob at offset {pos} points outside itself"))
                })?;
            out.extend_from_slice(block);
        }
        pos += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: u8, keyblock: &[u8]) -> Vec<u8> {
        let header = 20usize;
        let len = header + keyblock.len();
        let mut b = Vec::new();
        b.extend_from_slice(&(len as u32).to_be_bytes());
        b.extend_from_slice(&[kind, 1, 0, 0]);
        b.extend_from_slice(&(header as u32).to_be_bytes());
        b.extend_from_slice(&(keyblock.len() as u32).to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(keyblock);
        b
    }

    #[test]
    fn keybox_openpgp_blobs_are_extracted_in_order() {
        let mut kbx = blob(1, b"");
        kbx.extend(blob(BLOB_OPENPGP, b"first"));
        kbx.extend(blob(3, b"x509"));
        kbx.extend(blob(BLOB_OPENPGP, b"second"));
        assert_eq!(keybox_keyblocks(&kbx).unwrap(), b"firstsecond");
    }

    #[test]
    fn damaged_keybox_is_refused() {
        let mut kbx = blob(BLOB_OPENPGP, b"first");
        kbx.truncate(kbx.len() - 1);
        assert!(keybox_keyblocks(&kbx).is_err());
        let mut bad = blob(BLOB_OPENPGP, b"first");
        bad[15] = 200;
        assert!(keybox_keyblocks(&bad).is_err());
    }

    #[test]
    fn missing_home_is_an_error_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("nope");
        let err = export(Some(&home)).err().unwrap();
        assert!(matches!(err, ExportError::NoHome(_)), "{err}");
        assert!(!home.exists());
    }
}

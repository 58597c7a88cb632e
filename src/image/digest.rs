//! Content digests: the validated `Digest` type (`sha256:<64 hex>`, which also makes blob paths
//! safe) and the hashing reader/writer adapters that verify or compute digests while streaming.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use super::error::{ImageError, Result};

/// A `sha256:<64 lower-case hex>` content digest. Nothing else can be built, so a `Digest`
/// is always safe to use as a file name under `blobs/sha256/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parse and validate a digest string.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: &str| ImageError::InvalidDigest {
            digest: s.chars().take(100).collect(),
            reason: reason.into(),
        };
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| bad("expected ALGORITHM:HEX"))?;
        if alg != "sha256" {
            return Err(bad("only sha256 digests are supported"));
        }
        if hex.len() != 64 {
            return Err(bad("a sha256 digest has 64 hex digits"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("the hex part must be lower-case 0-9a-f"));
        }
        Ok(Self(s.to_string()))
    }

    /// The digest of a sha256 hash value.
    pub fn from_sha256(hash: [u8; 32]) -> Self {
        Self(format!("sha256:{}", hex::encode(hash)))
    }

    /// The digest of some bytes.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(data).into())
    }

    /// The 64 hex digits (the blob's file name).
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The whole digest string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short form for messages: `sha256:0123456789ab`.
    pub fn short(&self) -> &str {
        &self.0[.."sha256:".len() + 12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A writer that hashes and counts everything written through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Hash what goes into `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The digest and length of what was written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (
            Digest::from_sha256(self.hasher.finalize().into()),
            self.len,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a [`VerifyingReader`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Reading,
    Ok,
    TooLong(u64),
    Short(u64),
    WrongDigest(Digest),
}

/// A reader that checks the size while reading (never yields a byte past the declared size)
/// and the digest at the end of the stream. A mismatch surfaces as an `io::Error` from `read`
/// and as a typed [`ImageError`] from [`VerifyingReader::finish`].
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    what: String,
    expected: Digest,
    size: u64,
    read: u64,
    verdict: Verdict,
}

impl<R: Read> VerifyingReader<R> {
    /// Verify that `inner` yields exactly `size` bytes hashing to `expected`. `what` names the
    /// content in errors.
    pub fn new(inner: R, expected: Digest, size: u64, what: impl Into<String>) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            what: what.into(),
            expected,
            size,
            read: 0,
            verdict: Verdict::Reading,
        }
    }

    fn error(&self) -> Option<ImageError> {
        match &self.verdict {
            Verdict::Reading | Verdict::Ok => None,
            Verdict::TooLong(n) => Some(ImageError::SizeMismatch {
                what: self.what.clone(),
                expected: self.size,
                actual: *n,
            }),
            Verdict::Short(n) => Some(ImageError::SizeMismatch {
                what: self.what.clone(),
                expected: self.size,
                actual: *n,
            }),
            Verdict::WrongDigest(actual) => Some(ImageError::DigestMismatch {
                what: self.what.clone(),
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            }),
        }
    }

    /// Read whatever the consumer left unread, then return the verdict: `Ok` only when the
    /// whole stream had the declared size and digest.
    pub fn finish(mut self) -> Result<()> {
        if self.verdict == Verdict::Reading {
            let mut sink = io::sink();
            if let Err(e) = io::copy(&mut self, &mut sink) {
                return Err(self.error().unwrap_or(ImageError::Io(e)));
            }
        }
        match self.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The verification error, if the stream already failed (to report it instead of the
    /// `io::Error` a consumer saw).
    pub fn failure(&self) -> Option<ImageError> {
        self.error()
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fail = |e: ImageError| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        if let Some(e) = self.error() {
            return Err(fail(e));
        }
        if self.verdict == Verdict::Ok || buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.size - self.read;
        // Ask for one byte more than remains so that an over-long blob is noticed.
        let want = buf
            .len()
            .min(usize::try_from(remaining.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            let actual = Digest::from_sha256(std::mem::take(&mut self.hasher).finalize().into());
            self.verdict = if self.read != self.size {
                Verdict::Short(self.read)
            } else if actual != self.expected {
                Verdict::WrongDigest(actual)
            } else {
                Verdict::Ok
            };
            return match self.error() {
                Some(e) => Err(fail(e)),
                None => Ok(0),
            };
        }
        if n as u64 > remaining {
            self.verdict = Verdict::TooLong(self.read + n as u64);
            return Err(self
                .error()
                .map_or_else(|| io::Error::other("blob too long"), fail));
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_valid_and_refuses_traversal_and_other_forms() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d, Digest::of_bytes(b""));
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
        for bad in [
            "sha256:../../../../etc/passwd",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
            "",
        ] {
            assert!(
                matches!(Digest::parse(bad), Err(ImageError::InvalidDigest { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn serde_refuses_bad_digest() {
        let ok: Digest = serde_json::from_str(&format!("\"{EMPTY}\"")).unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), format!("\"{EMPTY}\""));
        let err = serde_json::from_str::<Digest>("\"sha256:../x\"").unwrap_err();
        assert!(err.to_string().contains("invalid digest"), "{err}");
    }

    #[test]
    fn verifying_reader_accepts_exact_content() {
        let data = b"hello world".to_vec();
        let mut r = VerifyingReader::new(&data[..], Digest::of_bytes(&data), 11, "blob");
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        r.finish().unwrap();
    }

    #[test]
    fn verifying_reader_refuses_wrong_digest_short_and_long() {
        let data = b"hello world".to_vec();
        let mut r = VerifyingReader::new(&data[..], Digest::of_bytes(b"hello worle"), 11, "blob");
        assert!(r.read_to_end(&mut Vec::new()).is_err());
        assert!(matches!(r.finish(), Err(ImageError::DigestMismatch { .. })));

        let r = VerifyingReader::new(&data[..], Digest::of_bytes(&data), 12, "blob");
        assert!(matches!(
            r.finish(),
            Err(ImageError::SizeMismatch { actual: 11, .. })
        ));

        let mut r = VerifyingReader::new(&data[..], Digest::of_bytes(&data[..10]), 10, "blob");
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(out.len() <= 10, "never yields past the declared size");
        assert!(matches!(r.finish(), Err(ImageError::SizeMismatch { .. })));
    }

    #[test]
    fn hashing_writer_digests_what_passes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (d, n, inner) = w.finish();
        assert_eq!(n, 3);
        assert_eq!(inner, b"abc");
        assert_eq!(d, Digest::of_bytes(b"abc"));
    }
}

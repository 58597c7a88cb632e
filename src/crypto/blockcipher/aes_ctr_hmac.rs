//! `AES_256_CTR_HMAC_SHA256` as ocicrypt's `blockcipher/blockcipher_aes_ctr.go` does it:
//! AES-256-CTR whose 16-byte nonce is the whole initial counter block (Go's `cipher.NewCTR`),
//! then HMAC-SHA256 keyed with the same key over the ciphertext only. No header, no padding:
//! the ciphertext is exactly as long as the plaintext, and the HMAC travels in `pubopts`.
//!
//! Each pass also yields the SHA-256 of the plaintext and of the ciphertext, so callers never
//! hash a layer twice. The work is spread over threads by [`super::pipeline`].

use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

use super::pipeline::{self, Chunk, Direction, CHUNK};
use crate::crypto::error::{CryptoError, Result};
use crate::crypto::options::{SymmetricKey, NONCE_LEN};
use crate::crypto::ANN_PUBOPTS;

/// Length of an HMAC-SHA256 tag.
pub const HMAC_LEN: usize = 32;

/// Plaintext held back from the consumer until the HMAC has been checked. ocicrypt's Go
/// `DelayedReader` holds back 10 KiB; rrun holds back at least one whole chunk (1 MiB, or two
/// chunks when the last one is short), so a truncated or altered layer never ends cleanly.
pub const HOLD_BACK: usize = CHUNK;

/// What one pass over a layer stream computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDigests {
    /// HMAC-SHA256 of the ciphertext, keyed with the layer key.
    pub hmac: [u8; 32],
    /// SHA-256 of the plaintext.
    pub plain_sha256: [u8; 32],
    /// SHA-256 of the ciphertext.
    pub cipher_sha256: [u8; 32],
    /// Number of bytes (ciphertext and plaintext have the same length).
    pub len: u64,
}

/// Encrypt `input` into `output`, and flush `output` at the end.
pub fn encrypt<R: Read + Send, W: Write>(
    key: &SymmetricKey,
    nonce: &[u8; NONCE_LEN],
    input: R,
    mut output: W,
) -> Result<StreamDigests> {
    let (digests, held) = pipeline::run(key, nonce, Direction::Encrypt, false, input, |chunk| {
        Ok(output.write_all(chunk.bytes())?)
    })?;
    for chunk in held {
        output.write_all(chunk.bytes())?;
    }
    output.flush()?;
    Ok(digests)
}

/// Decrypt `input` into `output`, failing with `HmacMismatch` at the end of the stream if the
/// ciphertext was altered. At least the last [`HOLD_BACK`] bytes of plaintext are written only
/// after the HMAC matched; bytes written before that are unauthenticated: discard them on
/// error.
pub fn decrypt<R: Read + Send, W: Write>(
    key: &SymmetricKey,
    nonce: &[u8; NONCE_LEN],
    expected_hmac: &[u8],
    input: R,
    mut output: W,
) -> Result<StreamDigests> {
    check_expected_hmac(expected_hmac)?;
    let (digests, held) = pipeline::run(key, nonce, Direction::Decrypt, true, input, |chunk| {
        Ok(output.write_all(chunk.bytes())?)
    })?;
    verify_hmac(expected_hmac, &digests)?;
    for chunk in held {
        output.write_all(chunk.bytes())?;
    }
    output.flush()?;
    Ok(digests)
}

/// Refuse an expected HMAC that can never match, before any work is done. ocicrypt fails an
/// empty one up front ("HMAC is not provided for decryption process").
fn check_expected_hmac(expected: &[u8]) -> Result<()> {
    let reason = match expected.len() {
        HMAC_LEN => return Ok(()),
        0 => "no hmac given for decryption: the layer's pubopts must carry it".to_string(),
        n => format!("hmac is {n} bytes; HMAC-SHA256 has {HMAC_LEN}"),
    };
    Err(CryptoError::MalformedAnnotation {
        annotation: ANN_PUBOPTS.into(),
        reason,
    })
}

/// Compare the computed HMAC with the expected one in constant time.
fn verify_hmac(expected: &[u8], digests: &StreamDigests) -> Result<()> {
    if expected.len() == HMAC_LEN && openssl::memcmp::eq(expected, &digests.hmac) {
        return Ok(());
    }
    Err(CryptoError::HmacMismatch {
        expected: hex::encode(expected),
        actual: hex::encode(digests.hmac),
    })
}

/// What the decrypting thread tells the reader.
enum Msg {
    Data(Arc<Chunk>),
    Done(StreamDigests),
    Failed(CryptoError),
}

/// Where a [`DecryptReader`] stands.
#[derive(Debug)]
enum State {
    Running,
    Done(StreamDigests),
    /// The HMAC did not match; every further read says so again.
    Mismatch {
        expected: String,
        actual: String,
    },
    /// Any other failure, kept as kind and message to repeat on further reads.
    Failed(io::ErrorKind, String),
}

/// A decrypting `Read` adapter that holds back the last chunk until the HMAC has been checked.
///
/// A background thread (with helpers) decrypts ahead of the reader, a few MiB at most. At
/// least the final [`HOLD_BACK`] bytes of plaintext are released only after the HMAC
/// matched. On a mismatch `read` fails with an `io::Error` of kind `InvalidData` whose inner
/// error is [`CryptoError::HmacMismatch`] (`err.get_ref()` then
/// `downcast_ref::<CryptoError>()`), and the held-back bytes are never returned. Everything
/// returned before that is unauthenticated. An input error comes back as that `io::Error`.
///
/// Dropping the reader early never blocks: the threads notice within a chunk or two and exit
/// (once the input's current `read` call, if any, returns).
pub struct DecryptReader<R> {
    rx: Option<Receiver<Msg>>,
    current: Option<Arc<Chunk>>,
    offset: usize,
    state: State,
    _input: PhantomData<fn(R)>,
}

impl<R> std::fmt::Debug for DecryptReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptReader")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Send + 'static> DecryptReader<R> {
    /// Start decrypting `input` in the background. A bad expected HMAC (empty, or not 32
    /// bytes) or a failure to start the thread is reported by the first `read`.
    pub fn new(
        key: &SymmetricKey,
        nonce: &[u8; NONCE_LEN],
        expected_hmac: &[u8],
        input: R,
    ) -> Self {
        let mut reader = Self {
            rx: None,
            current: None,
            offset: 0,
            state: State::Running,
            _input: PhantomData,
        };
        if let Err(e) = check_expected_hmac(expected_hmac) {
            reader.fail(e);
            return reader;
        }
        // Two chunks in flight to the reader are enough to keep the pipeline busy.
        let (tx, rx) = mpsc::sync_channel::<Msg>(2);
        let key = key.clone();
        let nonce = *nonce;
        let expected = expected_hmac.to_vec();
        let spawned = std::thread::Builder::new()
            .name("rrun-decrypt".into())
            .spawn(move || {
                let run = pipeline::run(&key, &nonce, Direction::Decrypt, true, input, |chunk| {
                    // The reader was dropped: stop the pipeline.
                    tx.send(Msg::Data(chunk)).map_err(|_| {
                        CryptoError::Io(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "decrypt reader dropped",
                        ))
                    })
                });
                let end = match run {
                    Ok((digests, held)) => match verify_hmac(&expected, &digests) {
                        Ok(()) => {
                            for chunk in held {
                                if tx.send(Msg::Data(chunk)).is_err() {
                                    return;
                                }
                            }
                            Msg::Done(digests)
                        }
                        Err(e) => Msg::Failed(e),
                    },
                    Err(e) => Msg::Failed(e),
                };
                let _ = tx.send(end);
            });
        match spawned {
            Ok(_) => reader.rx = Some(rx),
            Err(e) => {
                reader.fail(CryptoError::Io(e));
            }
        }
        reader
    }
}

impl<R> DecryptReader<R> {
    /// The digests of the whole stream, once `read` has returned end of stream (which means
    /// the HMAC matched).
    pub fn digests(&self) -> Option<&StreamDigests> {
        match &self.state {
            State::Done(d) => Some(d),
            _ => None,
        }
    }

    /// Record a failure and turn it into the error `read` returns.
    fn fail(&mut self, e: CryptoError) -> io::Error {
        self.rx = None;
        self.current = None;
        match e {
            CryptoError::HmacMismatch { expected, actual } => {
                self.state = State::Mismatch {
                    expected: expected.clone(),
                    actual: actual.clone(),
                };
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    CryptoError::HmacMismatch { expected, actual },
                )
            }
            CryptoError::Io(e) => {
                self.state = State::Failed(e.kind(), e.to_string());
                e
            }
            other => {
                self.state = State::Failed(io::ErrorKind::InvalidData, other.to_string());
                io::Error::new(io::ErrorKind::InvalidData, other)
            }
        }
    }
}

impl<R> Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(chunk) = &self.current {
                let rest = &chunk.bytes()[self.offset..];
                if !rest.is_empty() {
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.offset += n;
                    return Ok(n);
                }
                self.current = None;
            }
            match &self.state {
                State::Running => {}
                State::Done(_) => return Ok(0),
                State::Mismatch { expected, actual } => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        CryptoError::HmacMismatch {
                            expected: expected.clone(),
                            actual: actual.clone(),
                        },
                    ))
                }
                State::Failed(kind, msg) => return Err(io::Error::new(*kind, msg.clone())),
            }
            let msg = self.rx.as_ref().and_then(|rx| rx.recv().ok());
            match msg {
                Some(Msg::Data(chunk)) => {
                    self.current = Some(chunk);
                    self.offset = 0;
                }
                Some(Msg::Done(digests)) => {
                    self.rx = None;
                    self.state = State::Done(digests);
                }
                Some(Msg::Failed(e)) => return Err(self.fail(e)),
                None => {
                    return Err(self.fail(CryptoError::Io(io::Error::other(
                        "layer decryption thread stopped without a result",
                    ))))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
    use sha2::{Digest, Sha256};
    use std::path::Path;
    use std::process::Command;
    use std::time::{Duration, Instant};

    const MIB: usize = 1 << 20;

    fn random(n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        getrandom::getrandom(&mut v).unwrap();
        v
    }

    fn key_nonce() -> (SymmetricKey, [u8; 16]) {
        let key = SymmetricKey::random().unwrap();
        let nonce: [u8; 16] = random(16).try_into().unwrap();
        (key, nonce)
    }

    fn sha256(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    /// Reference AES-256-CTR with a 128-bit big-endian counter (RustCrypto `ctr`).
    fn ctr_reference(key: &SymmetricKey, nonce: &[u8; 16], data: &[u8]) -> Vec<u8> {
        let mut c = ctr::Ctr128BE::<aes::Aes256>::new(key.as_bytes().into(), nonce.into());
        let mut out = data.to_vec();
        c.apply_keystream(&mut out);
        out
    }

    fn enc(key: &SymmetricKey, nonce: &[u8; 16], data: &[u8]) -> (Vec<u8>, StreamDigests) {
        let mut out = Vec::new();
        let d = encrypt(key, nonce, data, &mut out).unwrap();
        (out, d)
    }

    fn openssl_cli(args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("this test needs the openssl command line tool (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn openssl_cli_encrypt(key: &SymmetricKey, nonce: &[u8; 16], plain: &Path) -> Vec<u8> {
        let out = plain.with_extension("enc");
        let (k, iv) = (hex::encode(key.as_bytes()), hex::encode(nonce));
        let (inp, outp) = (plain.to_str().unwrap(), out.to_str().unwrap());
        openssl_cli(&[
            "enc",
            "-aes-256-ctr",
            "-K",
            &k,
            "-iv",
            &iv,
            "-in",
            inp,
            "-out",
            outp,
        ]);
        std::fs::read(out).unwrap()
    }

    fn openssl_cli_hmac(key: &SymmetricKey, file: &Path) -> String {
        let macopt = format!("hexkey:{}", hex::encode(key.as_bytes()));
        let out = openssl_cli(&[
            "dgst",
            "-sha256",
            "-mac",
            "HMAC",
            "-macopt",
            &macopt,
            "-r",
            file.to_str().unwrap(),
        ]);
        let text = String::from_utf8(out).unwrap();
        text.split_whitespace().next().unwrap().to_string()
    }

    #[test]
    fn matches_openssl_cli_for_many_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, 1, 15, 16, 17, MIB - 1, MIB, MIB + 3, 3 * MIB + 5] {
            let (key, nonce) = key_nonce();
            let plain = random(size);
            let path = dir.path().join(format!("plain-{size}"));
            std::fs::write(&path, &plain).unwrap();

            let (cipher, d) = enc(&key, &nonce, &plain);
            assert_eq!(cipher.len(), size, "ciphertext length for {size}");
            let cli_cipher = openssl_cli_encrypt(&key, &nonce, &path);
            assert!(
                cipher == cli_cipher,
                "ciphertext differs from openssl at {size}"
            );
            let cli_hmac = openssl_cli_hmac(&key, &path.with_extension("enc"));
            assert_eq!(hex::encode(d.hmac), cli_hmac, "hmac at {size}");
            assert_eq!(d.len, size as u64);
            assert_eq!(d.plain_sha256, sha256(&plain));
            assert_eq!(d.cipher_sha256, sha256(&cipher));
        }
    }

    #[test]
    fn counter_wraps_from_all_ones_to_zero() {
        // Go's cipher.NewCTR increments the whole block: ff..ff is followed by 00..00.
        let key = SymmetricKey::from_slice(&[0x42; 32]).unwrap();
        let nonce = [0xff; 16];
        let (keystream, _) = enc(&key, &nonce, &[0u8; 48]);
        let aes = aes::Aes256::new(key.as_bytes().into());
        let mut one = [0u8; 16];
        one[15] = 1;
        for (i, counter) in [[0xffu8; 16], [0u8; 16], one].iter().enumerate() {
            let mut block = aes::Block::clone_from_slice(counter);
            aes.encrypt_block(&mut block);
            assert_eq!(
                &keystream[i * 16..i * 16 + 16],
                block.as_slice(),
                "block {i}"
            );
        }
    }

    #[test]
    fn counter_carries_across_words_and_chunks() {
        let (key, _) = key_nonce();
        let blocks_per_chunk = (CHUNK / 16) as u32;
        let mut low32_wraps_at_chunk_edge = [0u8; 16];
        low32_wraps_at_chunk_edge[12..]
            .copy_from_slice(&(0u32.wrapping_sub(blocks_per_chunk)).to_be_bytes());
        let mut low64_all_ones = [0u8; 16];
        low64_all_ones[8..].copy_from_slice(&[0xff; 8]);
        let mut high_all_ones = [0xffu8; 16];
        high_all_ones[15] = 0xf0;
        for nonce in [low32_wraps_at_chunk_edge, low64_all_ones, high_all_ones] {
            let plain = random(2 * CHUNK + 100);
            let (cipher, _) = enc(&key, &nonce, &plain);
            assert!(
                cipher == ctr_reference(&key, &nonce, &plain),
                "nonce {}",
                hex::encode(nonce)
            );
        }
    }

    #[test]
    fn round_trip_with_digests() {
        for size in [0, 5, CHUNK, 2 * CHUNK + 1] {
            let (key, nonce) = key_nonce();
            let plain = random(size);
            let (cipher, e) = enc(&key, &nonce, &plain);
            let mut back = Vec::new();
            let d = decrypt(&key, &nonce, &e.hmac, cipher.as_slice(), &mut back).unwrap();
            assert!(back == plain, "round trip at {size}");
            assert_eq!(d, e, "both directions report the same digests");
        }
    }

    #[test]
    fn flipped_ciphertext_byte_is_hmac_mismatch() {
        let (key, nonce) = key_nonce();
        let plain = random(2 * MIB + 7);
        let (mut cipher, e) = enc(&key, &nonce, &plain);
        cipher[MIB / 2] ^= 1;
        let mut out = Vec::new();
        let err = decrypt(&key, &nonce, &e.hmac, cipher.as_slice(), &mut out).unwrap_err();
        match err {
            CryptoError::HmacMismatch { expected, actual } => {
                assert_eq!(expected, hex::encode(e.hmac));
                assert_ne!(actual, expected);
                assert_eq!(actual.len(), 64);
            }
            other => panic!("expected HmacMismatch, got {other}"),
        }
        assert!(
            out.len() <= plain.len() - HOLD_BACK,
            "held-back tail was written: {} bytes",
            out.len()
        );
    }

    #[test]
    fn wrong_key_is_hmac_mismatch() {
        let (key, nonce) = key_nonce();
        let (cipher, e) = enc(&key, &nonce, b"layer");
        let (other, _) = key_nonce();
        let err = decrypt(&other, &nonce, &e.hmac, cipher.as_slice(), io::sink()).unwrap_err();
        assert!(matches!(err, CryptoError::HmacMismatch { .. }), "{err}");
    }

    #[test]
    fn bad_expected_hmac_fails_up_front() {
        let (key, nonce) = key_nonce();
        for hmac in [&[][..], &[0u8; 31][..], &[0u8; 33][..]] {
            // The input must not even be read.
            let input = FailingReader;
            let err = decrypt(&key, &nonce, hmac, input, io::sink()).unwrap_err();
            match err {
                CryptoError::MalformedAnnotation { annotation, reason } => {
                    assert_eq!(annotation, ANN_PUBOPTS);
                    assert!(reason.contains("hmac"), "{reason}");
                }
                other => panic!("expected MalformedAnnotation, got {other}"),
            }
            let mut r = DecryptReader::new(&key, &nonce, hmac, FailingReader);
            let err = r.read(&mut [0u8; 8]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("hmac"), "{err}");
        }
    }

    struct FailingReader;
    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("input should not have been read"))
        }
    }

    #[test]
    fn input_error_is_reported_not_truncated() {
        let (key, nonce) = key_nonce();
        let input = io::Read::chain(&[0u8; 3 * MIB][..], FailingReader);
        let err = encrypt(&key, &nonce, input, io::sink()).unwrap_err();
        assert!(
            err.to_string().contains("should not have been read"),
            "{err}"
        );
    }

    #[test]
    fn output_error_stops_the_pipeline() {
        struct FullDisk(usize);
        impl Write for FullDisk {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 >= 2 * MIB {
                    return Err(io::Error::other("disk full"));
                }
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (key, nonce) = key_nonce();
        let input = io::repeat(0).take(1 << 40);
        let err = encrypt(&key, &nonce, input, FullDisk(0)).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }

    /// Reads `r` with reads of at most `step` bytes until EOF or error.
    fn read_in_steps(r: &mut impl Read, step: usize) -> (Vec<u8>, Option<io::Error>) {
        let mut out = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn decrypt_reader_small_reads() {
        for size in [0, 1, 4097, 2 * MIB + 3] {
            let (key, nonce) = key_nonce();
            let plain = random(size);
            let (cipher, e) = enc(&key, &nonce, &plain);
            let mut r = DecryptReader::new(&key, &nonce, &e.hmac, std::io::Cursor::new(cipher));
            assert!(r.digests().is_none());
            let step = if size > MIB { 4093 } else { 7 };
            let (out, err) = read_in_steps(&mut r, step);
            assert!(err.is_none(), "{err:?}");
            assert!(out == plain, "plaintext at {size}");
            assert_eq!(r.digests(), Some(&e));
            assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0, "eof stays eof");
        }
    }

    #[test]
    fn decrypt_reader_tampered_never_yields_the_tail() {
        for size in [100, MIB + 10, 3 * MIB] {
            let (key, nonce) = key_nonce();
            let plain = random(size);
            let (mut cipher, e) = enc(&key, &nonce, &plain);
            let last = cipher.len() - 1;
            cipher[last] ^= 0x80;
            let mut r = DecryptReader::new(&key, &nonce, &e.hmac, std::io::Cursor::new(cipher));
            let (out, err) = read_in_steps(&mut r, 1000);
            let err = err.expect("a tampered stream must fail");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let inner = err.get_ref().and_then(|e| e.downcast_ref::<CryptoError>());
            assert!(
                matches!(inner, Some(CryptoError::HmacMismatch { .. })),
                "{err}"
            );
            assert!(
                out.len() + HOLD_BACK.min(size) <= size,
                "{} of {size} bytes released before the hmac check",
                out.len()
            );
            assert!(plain.starts_with(&out));
            assert!(r.digests().is_none());
            let again = r.read(&mut [0u8; 16]).unwrap_err();
            assert!(again
                .into_inner()
                .and_then(|e| e.downcast::<CryptoError>().ok())
                .is_some_and(|e| matches!(*e, CryptoError::HmacMismatch { .. })));
        }
    }

    #[test]
    fn decrypt_reader_truncated_stream_fails() {
        let (key, nonce) = key_nonce();
        let plain = random(2 * MIB);
        let (cipher, e) = enc(&key, &nonce, &plain);
        let cut = cipher[..MIB + 5].to_vec();
        let mut r = DecryptReader::new(&key, &nonce, &e.hmac, std::io::Cursor::new(cut));
        let (out, err) = read_in_steps(&mut r, 65536);
        assert!(err.is_some());
        assert!(out.len() <= 5, "{} bytes released", out.len());
    }

    #[test]
    fn decrypt_reader_input_error_is_returned() {
        let (key, nonce) = key_nonce();
        let input = io::Read::chain(io::Cursor::new(vec![0u8; 2 * MIB]), FailingReader);
        let mut r = DecryptReader::new(&key, &nonce, &[0u8; 32], input);
        let (out, err) = read_in_steps(&mut r, 65536);
        let err = err.expect("the input error must reach the reader");
        assert!(
            err.to_string().contains("should not have been read"),
            "{err}"
        );
        assert!(out.len() <= MIB, "{} bytes released", out.len());
        assert!(r.read(&mut [0u8; 4]).is_err(), "the failure is sticky");
    }

    /// An endless input that says when it is dropped (its thread exited).
    struct Endless(mpsc::Sender<()>);
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(0);
            Ok(buf.len())
        }
    }
    impl Drop for Endless {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    #[test]
    fn decrypt_reader_dropped_early_stops_its_threads() {
        let (key, nonce) = key_nonce();
        for read_first in [0, 10, 3 * MIB] {
            let (tx, dropped) = mpsc::channel();
            let mut r = DecryptReader::new(&key, &nonce, &[1u8; 32], Endless(tx));
            let mut buf = vec![0u8; read_first];
            r.read_exact(&mut buf).unwrap();
            let t = Instant::now();
            drop(r);
            assert!(t.elapsed() < Duration::from_millis(200), "drop blocked");
            dropped
                .recv_timeout(Duration::from_secs(20))
                .expect("the decrypting threads did not stop after the reader was dropped");
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = SymmetricKey::from_slice(&[0xab; 32]).unwrap();
        let r = DecryptReader::new(&key, &[0; 16], &[0; 32], io::empty());
        let s = format!("{r:?}");
        assert!(!s.contains("ab, ab") && !s.contains("abab"), "{s}");
    }
}

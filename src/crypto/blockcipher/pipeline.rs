//! The threaded engine behind `AES_256_CTR_HMAC_SHA256`: reads a stream in 1 MiB chunks, runs
//! AES-256-CTR on one thread and the three SHA-256 passes on two others (HMAC and SHA-256 of
//! the ciphertext interleaved on one, SHA-256 of the plaintext on the other), and hands the
//! output chunks, in order, to a sink on the calling thread.
//!
//! Memory stays constant: chunks come from two small pools of recycled buffers, and a chunk
//! goes back to its pool when the last thread holding it lets go (see [`Chunk`]'s `Drop`).
//! Every blocking step is a channel operation whose other side either makes progress or hangs
//! up, so an error anywhere (input, output, a dropped consumer) winds every thread down.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use openssl::symm::{Cipher, Crypter, Mode};
use sha2::{Digest, Sha256};

use super::aes_ctr_hmac::StreamDigests;
use crate::crypto::error::{CryptoError, Result};
use crate::crypto::options::{SymmetricKey, NONCE_LEN};

/// Bytes per chunk. A multiple of the AES block size, so no counter block straddles two chunks.
pub(crate) const CHUNK: usize = 1 << 20;
/// Buffers in the input pool (plaintext when encrypting, ciphertext when decrypting).
const INPUT_BUFFERS: usize = 4;
/// Buffers in the output pool. `run` holds back at most two of them at a time (one whole
/// chunk plus a short last one), so this must stay well above that for the pipeline to move.
const OUTPUT_BUFFERS: usize = 6;
/// Room that OpenSSL's `EVP_CipherUpdate` wants past the input length.
const CIPHER_SLACK: usize = 16;

/// Which way the stream goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Encrypt,
    Decrypt,
}

/// One chunk of stream data, shared read-only between the threads that need it. Dropping the
/// last `Arc<Chunk>` returns the buffer to its pool.
pub(crate) struct Chunk {
    data: Vec<u8>,
    len: usize,
    home: Sender<Vec<u8>>,
}

impl Chunk {
    /// The chunk's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} bytes)", self.len)
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // The pool is gone once the stream is over; then the buffer is simply freed.
        let _ = self.home.send(std::mem::take(&mut self.data));
    }
}

/// A fixed number of buffers, allocated on first use and recycled after that.
struct Pool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    allocated: usize,
    max: usize,
    size: usize,
}

impl Pool {
    fn new(max: usize, size: usize) -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            tx,
            rx,
            allocated: 0,
            max,
            size,
        }
    }

    /// A free buffer, waiting for one to come back if all are in use.
    fn take(&mut self) -> Vec<u8> {
        if let Ok(buf) = self.rx.try_recv() {
            return buf;
        }
        if self.allocated < self.max {
            self.allocated += 1;
            return vec![0u8; self.size];
        }
        // The pool keeps a sender itself, so this cannot hang up; every buffer out there is
        // held by a thread that either finishes with it or exits (dropping it).
        self.rx.recv().unwrap_or_else(|_| vec![0u8; self.size])
    }

    fn wrap(&self, data: Vec<u8>, len: usize) -> Arc<Chunk> {
        Arc::new(Chunk {
            data,
            len,
            home: self.tx.clone(),
        })
    }
}

/// Size of the staging buffer `fill` reads through.
const STAGE: usize = 64 << 10;

/// Read until `buf` is full or the input ends; returns the number of bytes read.
///
/// Reads go through a small staging buffer that stays in cache and are then copied into
/// `buf`: measured on this project's build machine, `read(2)` from the page cache into a small
/// hot buffer plus a memcpy costs a third of the CPU of `read(2)` straight into a 1 MiB buffer
/// that another core has just hashed.
fn fill<R: Read>(input: &mut R, stage: &mut [u8], buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let want = stage.len().min(buf.len() - n);
        match input.read(&mut stage[..want]) {
            Ok(0) => break,
            Ok(k) => {
                buf[n..n + k].copy_from_slice(&stage[..k]);
                n += k;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The error a thread reports when the thread it feeds has gone away. It never reaches the
/// caller: whoever went away first has the real error.
fn hung_up() -> CryptoError {
    CryptoError::Io(io::Error::new(
        io::ErrorKind::BrokenPipe,
        "layer cipher pipeline stopped",
    ))
}

fn worker_panicked() -> CryptoError {
    CryptoError::Io(io::Error::other("layer cipher worker thread panicked"))
}

/// Bytes fed to one hash before switching to the other in [`CipherHashes`]: one SHA-256
/// block. SHA-NI rounds are latency bound, so alternating two independent states block by
/// block lets the CPU overlap them. Measured on the 2-core AMD EPYC build machine (SHA-NI):
/// one state 1.56 GB/s; two states alternating every 64 bytes 2.1 GB/s together, every 128
/// bytes 2.0 GB/s, every 1 MiB 1.57 GB/s. OpenSSL's SHA-256 and HMAC run at the same
/// 1.56 GB/s as `sha2` and `hmac` for one state, so the pure-Rust crates are used.
const INTERLEAVE: usize = 64;

/// A running hash over one side of the stream, fed chunk by chunk on its own thread.
trait StreamHash: Send {
    type Output: Send;
    fn update(&mut self, data: &[u8]);
    fn finish(self) -> Self::Output;
}

/// SHA-256 of the plaintext.
struct PlainHash(Sha256);

impl StreamHash for PlainHash {
    type Output = [u8; 32];
    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }
    fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// HMAC-SHA256 and SHA-256 of the ciphertext, computed in step.
struct CipherHashes {
    hmac: Hmac<Sha256>,
    sha: Sha256,
}

impl StreamHash for CipherHashes {
    /// `(hmac, sha256)`.
    type Output = ([u8; 32], [u8; 32]);
    fn update(&mut self, data: &[u8]) {
        for piece in data.chunks(INTERLEAVE) {
            Mac::update(&mut self.hmac, piece);
            Digest::update(&mut self.sha, piece);
        }
    }
    fn finish(self) -> Self::Output {
        (
            self.hmac.finalize().into_bytes().into(),
            self.sha.finalize().into(),
        )
    }
}

/// A hashing thread: where to send it chunks, and how to collect its result.
type HasherThread<'scope, T> = (
    SyncSender<Arc<Chunk>>,
    std::thread::ScopedJoinHandle<'scope, T>,
);

/// Spawn a thread that feeds every chunk it receives to `hash` and returns the result.
fn spawn_hasher<'scope, H: StreamHash + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    mut hash: H,
) -> io::Result<HasherThread<'scope, H::Output>> {
    let (tx, rx) = mpsc::sync_channel::<Arc<Chunk>>(INPUT_BUFFERS.max(OUTPUT_BUFFERS));
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, move || {
            for chunk in rx {
                hash.update(chunk.bytes());
            }
            hash.finish()
        })?;
    Ok((tx, handle))
}

/// Run `input` through AES-256-CTR in `direction`, handing each output chunk, in order, to
/// `sink` on the calling thread. With `hold_back`, the last [`CHUNK`] bytes or more (the last
/// chunk, and the one before it if the last is short) are not given to `sink` but returned
/// with the digests, so the caller can check the HMAC before releasing them. An error from
/// `sink` stops the pipeline and is returned as is.
pub(crate) fn run<R, S>(
    key: &SymmetricKey,
    nonce: &[u8; NONCE_LEN],
    direction: Direction,
    hold_back: bool,
    input: R,
    mut sink: S,
) -> Result<(StreamDigests, Vec<Arc<Chunk>>)>
where
    R: Read + Send,
    S: FnMut(Arc<Chunk>) -> Result<()>,
{
    std::thread::scope(|scope| {
        let hmac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
            .map_err(|_| io::Error::other("hmac rejected a 32-byte key"))?;
        let cipher_hashes = CipherHashes {
            hmac,
            sha: Sha256::new(),
        };
        let (cipher_tx, cipher_join) = spawn_hasher(scope, "rrun-hmac", cipher_hashes)?;
        let (plain_tx, plain_join) = spawn_hasher(scope, "rrun-sha", PlainHash(Sha256::new()))?;
        let (sink_tx, sink_rx) = mpsc::sync_channel::<Arc<Chunk>>(OUTPUT_BUFFERS);

        let (input_hasher, output_hasher) = match direction {
            Direction::Encrypt => (plain_tx, cipher_tx),
            Direction::Decrypt => (cipher_tx, plain_tx),
        };
        let source = std::thread::Builder::new()
            .name("rrun-aes-ctr".into())
            .spawn_scoped(scope, move || {
                source(
                    key,
                    nonce,
                    direction,
                    input,
                    input_hasher,
                    output_hasher,
                    sink_tx,
                )
            })?;

        // Held chunks live in this closure so that an early return drops them (and the
        // receiver) before the scope joins the threads, which may be waiting for buffers.
        let hold_back = if hold_back { CHUNK } else { 0 };
        let mut held = std::collections::VecDeque::<Arc<Chunk>>::new();
        let mut held_bytes = 0usize;
        for chunk in sink_rx {
            held_bytes += chunk.bytes().len();
            held.push_back(chunk);
            while let Some(front) = held.front() {
                let front_len = front.bytes().len();
                if held_bytes - front_len < hold_back {
                    break;
                }
                held_bytes -= front_len;
                if let Some(front) = held.pop_front() {
                    sink(front)?;
                }
            }
        }
        let len = source.join().map_err(|_| worker_panicked())??;
        let (hmac, cipher_sha256) = cipher_join.join().map_err(|_| worker_panicked())?;
        let plain_sha256 = plain_join.join().map_err(|_| worker_panicked())?;
        let digests = StreamDigests {
            hmac,
            plain_sha256,
            cipher_sha256,
            len,
        };
        Ok((digests, held.into()))
    })
}

/// The reading thread: fill an input chunk, pass it to its hashers, run AES-CTR into an output
/// chunk, pass that to its hashers and the sink. Returns the stream length.
fn source<R: Read>(
    key: &SymmetricKey,
    nonce: &[u8; NONCE_LEN],
    direction: Direction,
    mut input: R,
    input_hasher: SyncSender<Arc<Chunk>>,
    output_hasher: SyncSender<Arc<Chunk>>,
    sink: SyncSender<Arc<Chunk>>,
) -> Result<u64> {
    // ocicrypt uses Go's cipher.NewCTR(aes, nonce): the nonce is the whole initial counter
    // block, incremented as one 128-bit big-endian number. OpenSSL's CTR mode counts the same
    // way (carrying out of the low 32 bits into the upper 96), and runs faster here than the
    // `ctr` crate (6.5 GB/s against 4.3 GB/s).
    let mode = match direction {
        Direction::Encrypt => Mode::Encrypt,
        Direction::Decrypt => Mode::Decrypt,
    };
    let mut aes = Crypter::new(
        Cipher::aes_256_ctr(),
        mode,
        key.as_bytes(),
        Some(nonce.as_slice()),
    )?;
    let mut input_pool = Pool::new(INPUT_BUFFERS, CHUNK);
    let mut output_pool = Pool::new(OUTPUT_BUFFERS, CHUNK + CIPHER_SLACK);
    let mut stage = vec![0u8; STAGE];
    let mut total: u64 = 0;
    loop {
        let mut buf = input_pool.take();
        let n = fill(&mut input, &mut stage, &mut buf[..CHUNK])?;
        if n == 0 {
            break;
        }
        total += n as u64;
        let in_chunk = input_pool.wrap(buf, n);
        input_hasher
            .send(Arc::clone(&in_chunk))
            .map_err(|_| hung_up())?;

        let mut out = output_pool.take();
        let written = aes.update(in_chunk.bytes(), &mut out)?;
        drop(in_chunk);
        if written != n {
            return Err(CryptoError::Io(io::Error::other(format!(
                "aes-ctr produced {written} bytes for {n}"
            ))));
        }
        let out_chunk = output_pool.wrap(out, n);
        output_hasher
            .send(Arc::clone(&out_chunk))
            .map_err(|_| hung_up())?;
        sink.send(out_chunk).map_err(|_| hung_up())?;
        if n < CHUNK {
            break;
        }
    }
    Ok(total)
}

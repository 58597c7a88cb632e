//! `rrun decoder`: containerd's stream processor for encrypted layers (imgcrypt's ctd-decoder
//! contract): ciphertext on stdin, plaintext on stdout, payload on fd 3, exit non-zero on error.

use std::os::fd::AsFd as _;

use anyhow::Context as _;
use zeroize::Zeroizing;

use rrun::crypto::decoder::{self, Payload, MAX_PAYLOAD, MEDIA_TYPE_ENV, PAYLOAD_FD};

use crate::cli::args::DecoderArgs;

/// Run the command.
pub fn run(args: DecoderArgs) -> anyhow::Result<()> {
    let bytes = read_payload()?;
    let payload = Payload::parse(&bytes)?;
    drop(bytes);
    let Payload {
        keys: mut dc,
        key_count,
        descriptor,
    } = payload;
    let mut sources = vec![format!("{key_count} key(s) from the containerd payload")];
    if let Some(dir) = &args.decryption_keys_path {
        let n = decoder::add_key_dir(dir, &mut dc)?;
        sources.push(format!("{n} key file(s) in {}", dir.display()));
    } else {
        sources.push("no --decryption-keys-path".into());
    }
    // containerd names the media type it matched in `accepts`; the descriptor's is the same.
    let media_type =
        std::env::var(MEDIA_TYPE_ENV).unwrap_or_else(|_| descriptor.media_type.clone());
    // Straight to fd 1: `Stdout` is line-buffered, which only slows a binary stream down.
    let stdout = std::fs::File::from(
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot use stdout")?,
    );
    decoder::decode(
        &dc,
        &sources.join(" and "),
        &media_type,
        &descriptor,
        std::io::stdin(),
        stdout,
    )
    // Flattened to text: a closed stdout must fail the decoder too (containerd got only part
    // of the layer), not pass as the broken pipe that `main` treats as success.
    .map_err(|e| anyhow::anyhow!("cannot decrypt layer {}: {e}", descriptor.digest))?;
    Ok(())
}

/// Read fd 3 to its end (containerd writes the payload into a pipe there).
fn read_payload() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    let mut buf = Zeroizing::new(vec![0u8; 64 << 10]);
    loop {
        match nix::unistd::read(PAYLOAD_FD, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                if out.len() + n > MAX_PAYLOAD {
                    anyhow::bail!(
                        "the payload on fd {PAYLOAD_FD} is larger than {MAX_PAYLOAD} bytes: \
                         it is not containerd's"
                    );
                }
                if out.len() + n > out.capacity() {
                    // Grow by hand: a reallocating Vec would free its old buffer unzeroized.
                    let want = (out.len() + n).max(2 * out.capacity());
                    let mut bigger = Zeroizing::new(Vec::with_capacity(want));
                    bigger.extend_from_slice(&out);
                    out = bigger;
                }
                out.extend_from_slice(&buf[..n]);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EBADF) => anyhow::bail!(
                "no payload on fd {PAYLOAD_FD}: rrun decoder is run by containerd as a stream \
                 processor (io.containerd.ocicrypt.decoder.v1.tar and .tar.gzip), which passes \
                 the layer descriptor there during a CRI image pull"
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the payload on fd {PAYLOAD_FD}"))
            }
        }
    }
}

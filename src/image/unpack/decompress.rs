//! Layer decompression chosen by media type, after checking the stream's first bytes against it.

use std::io::{self, BufReader, Cursor, Read};

use crate::image::error::{ImageError, Result};
use crate::image::media_type::{self, LayerKind};

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    Tar,
    Gzip,
    Zstd,
}

impl Compression {
    /// Name for messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Compression::Tar => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A zstd skippable frame starts with 0x184D2A5? little-endian.
fn is_zstd(head: &[u8]) -> bool {
    head.starts_with(&ZSTD_MAGIC)
        || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
}

/// The compression a plain layer media type names; encrypted and non-filesystem types are
/// refused.
pub(super) fn compression_of(media_type: &str) -> Result<Compression> {
    match media_type::layer_kind(media_type)? {
        LayerKind::Encrypted { .. } => Err(ImageError::EncryptedLayer {
            media_type: media_type.to_string(),
        }),
        LayerKind::PassThrough => Err(ImageError::malformed(
            "layer media type",
            format!("{media_type} is not a filesystem layer rrun unpacks"),
        )),
        LayerKind::Plain { .. } => Ok(if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::Tar
        }),
    }
}

/// Describe the first bytes of a stream for an error message.
fn describe(head: &[u8]) -> String {
    if head.is_empty() {
        return "the blob is empty".into();
    }
    let kind = if head.starts_with(&GZIP_MAGIC) {
        " (gzip data)"
    } else if is_zstd(head) {
        " (zstd data)"
    } else {
        " (it may be encrypted or mislabelled)"
    };
    format!("it starts with bytes {}{kind}", hex::encode(head))
}

/// The uncompressed tar stream of a layer blob: the media type picks the decoder, and the
/// blob's magic bytes must agree with it.
pub(super) fn decompress<'a>(
    mut reader: impl Read + 'a,
    media_type: &str,
) -> Result<(Box<dyn Read + 'a>, Compression)> {
    let compression = compression_of(media_type)?;
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ImageError::Io(e)),
        }
    }
    let head = &head[..got];
    let mismatch = |expected: &str| ImageError::CompressionMismatch {
        media_type: media_type.to_string(),
        expected: expected.to_string(),
        found: describe(head),
    };
    let ok = match compression {
        Compression::Gzip => head.starts_with(&GZIP_MAGIC),
        Compression::Zstd => is_zstd(head),
        Compression::Tar => !head.is_empty() && !head.starts_with(&GZIP_MAGIC) && !is_zstd(head),
    };
    if !ok {
        return Err(mismatch(match compression {
            Compression::Tar => "uncompressed tar",
            other => other.name(),
        }));
    }
    let whole = Cursor::new(head.to_vec()).chain(reader);
    let out: Box<dyn Read + 'a> = match compression {
        Compression::Tar => Box::new(whole),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(
            BufReader::with_capacity(256 << 10, whole),
        )),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(256 << 10, whole))
                .map_err(|e| ImageError::Decompress {
                    format: "zstd".into(),
                    source: e,
                })?,
        ),
    };
    Ok((out, compression))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::media_type::*;

    #[test]
    fn media_types_pick_the_decoder_and_encrypted_is_refused() {
        assert_eq!(compression_of(OCI_LAYER_GZIP).unwrap(), Compression::Gzip);
        assert_eq!(
            compression_of(DOCKER_LAYER_GZIP).unwrap(),
            Compression::Gzip
        );
        assert_eq!(compression_of(OCI_LAYER_ZSTD).unwrap(), Compression::Zstd);
        assert_eq!(compression_of(DOCKER_LAYER_TAR).unwrap(), Compression::Tar);
        assert_eq!(compression_of(OCI_ND_TAR).unwrap(), Compression::Tar);
        for enc in [OCI_LAYER_GZIP_ENC, OCI_LAYER_TAR_ENC, OCI_LAYER_ZSTD_ENC] {
            assert!(matches!(
                compression_of(enc),
                Err(ImageError::EncryptedLayer { .. })
            ));
        }
        assert!(compression_of(IN_TOTO).is_err());
        assert!(matches!(
            compression_of("application/x-tar"),
            Err(ImageError::UnknownMediaType { .. })
        ));
    }

    #[test]
    fn magic_must_match_the_media_type() {
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, b"hello").unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(&b"hello"[..], 1).unwrap();
        let mut out = Vec::new();
        decompress(&gz[..], OCI_LAYER_GZIP)
            .unwrap()
            .0
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        out.clear();
        decompress(&zst[..], OCI_LAYER_ZSTD)
            .unwrap()
            .0
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        for (data, mt) in [
            (&gz[..], OCI_LAYER_ZSTD),
            (&gz[..], OCI_LAYER_TAR),
            (&zst[..], OCI_LAYER_GZIP),
            (&zst[..], DOCKER_LAYER_TAR),
            (&b"plain tar bytes"[..], OCI_LAYER_GZIP),
            (&b""[..], OCI_LAYER_TAR),
        ] {
            let err = decompress(data, mt).err().unwrap();
            assert!(
                matches!(err, ImageError::CompressionMismatch { .. }),
                "{mt}: {err}"
            );
        }
    }
}

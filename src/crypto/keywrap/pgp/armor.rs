//! ASCII armor (RFC 4880 section 6): decoding `-----BEGIN PGP ...-----` blocks, checking the
//! CRC-24 when present, as `gpg --armor --export-secret-keys` writes them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::{invalid, Invalid, Parse};

const BEGIN: &str = "-----BEGIN PGP ";

/// True when the bytes hold an armored OpenPGP block.
pub(super) fn is_armored(data: &[u8]) -> bool {
    data.windows(BEGIN.len()).any(|w| w == BEGIN.as_bytes())
}

/// One decoded block.
pub(super) struct Block {
    /// The label after `BEGIN PGP `, for example `PRIVATE KEY BLOCK`.
    pub label: String,
    /// The binary packets (zeroized: they may be secret keys).
    pub data: Zeroizing<Vec<u8>>,
}

/// Decode every armored block in `text`, in order.
pub(super) fn decode_all(text: &[u8]) -> Parse<Vec<Block>> {
    let text = std::str::from_utf8(text)
        .map_err(|_| Invalid("the armored text is not valid UTF-8".into()))?;
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(|l| l.trim_end_matches([' ', '\t', '\r']));
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim_start()
            .strip_prefix(BEGIN)
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let label = label.to_string();
        let end = format!("-----END PGP {label}-----");
        // Armor headers ("Version: ...", "Comment: ...") end at the first empty line.
        let mut body = Zeroizing::new(String::new());
        let mut crc = None;
        let mut in_headers = true;
        let mut closed = false;
        for line in lines.by_ref() {
            let line = line.trim();
            if line == end {
                closed = true;
                break;
            }
            if in_headers {
                if line.is_empty() {
                    in_headers = false;
                    continue;
                }
                if line.contains(": ") {
                    continue;
                }
                // No header block at all: this line is already data.
                in_headers = false;
            }
            if let Some(sum) = line.strip_prefix('=') {
                if sum.len() == 4 {
                    crc = Some(sum.to_string());
                    continue;
                }
            }
            body.push_str(line);
        }
        if !closed {
            return invalid(format!("the armored {label} has no END line"));
        }
        let data = Zeroizing::new(
            STANDARD
                .decode(body.as_bytes())
                .map_err(|_| Invalid(format!("the armored {label} is not valid base64")))?,
        );
        if let Some(sum) = crc {
            let want = STANDARD
                .decode(sum.as_bytes())
                .map_err(|_| Invalid(format!("the armored {label} has a malformed checksum")))?;
            if want.len() != 3 || crc24(&data).to_be_bytes()[1..] != want[..] {
                return invalid(format!(
                    "the armored {label} fails its CRC-24 checksum: the file is damaged"
                ));
            }
        }
        blocks.push(Block { label, data });
    }
    Ok(blocks)
}

/// The CRC-24 of RFC 4880 section 6.1.
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00b7_04ce;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4cfb;
            }
        }
    }
    crc & 0x00ff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armor(label: &str, data: &[u8], with_crc: bool) -> String {
        let crc = crc24(data).to_be_bytes();
        let mut s = format!("-----BEGIN PGP {label}-----\nComment: test\n\n");
        s.push_str(&STANDARD.encode(data));
        s.push('\n');
        if with_crc {
            s.push_str(&format!("={}\n", STANDARD.encode(&crc[1..])));
        }
        s.push_str(&format!("-----END PGP {label}-----\n"));
        s
    }

    #[test]
    fn decodes_with_and_without_checksum() {
        for with_crc in [true, false] {
            let text = armor("PRIVATE KEY BLOCK", b"\x95\x01\x02hello", with_crc);
            let blocks = decode_all(text.as_bytes()).unwrap();
            assert_eq!(blocks.len(), 1);
            assert_eq!(blocks[0].label, "PRIVATE KEY BLOCK");
            assert_eq!(blocks[0].data.as_slice(), b"\x95\x01\x02hello");
        }
    }

    #[test]
    fn a_damaged_block_fails_its_checksum() {
        let text = armor("PUBLIC KEY BLOCK", b"0123456789", true).replace("MDEy", "MDEz");
        let err = decode_all(text.as_bytes()).err().unwrap();
        assert!(err.0.contains("CRC-24"), "{}", err.0);
    }

    #[test]
    fn crc24_known_value() {
        // CRC-24 of the empty string is the initial value.
        assert_eq!(crc24(b""), 0xb704ce);
    }

    #[test]
    fn unterminated_block_is_refused() {
        let text = "-----BEGIN PGP MESSAGE-----\n\nAAAA\n";
        assert!(decode_all(text.as_bytes()).is_err());
    }
}

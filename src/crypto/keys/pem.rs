//! PEM armour: finding the `-----BEGIN LABEL-----` blocks of a key file, so that the right
//! block is chosen in files holding several (`EC PARAMETERS` before `EC PRIVATE KEY`, a
//! certificate next to its key).

const BEGIN: &[u8] = b"-----BEGIN ";
const DASHES: &[u8] = b"-----";

/// One complete PEM block.
#[derive(Debug)]
pub(super) struct Block<'a> {
    /// The label, for example `RSA PRIVATE KEY`.
    pub label: &'a str,
    /// The whole block, from `-----BEGIN` to the end of the `-----END ...-----` marker.
    pub text: &'a [u8],
}

impl Block<'_> {
    /// True for a label that holds a private key (possibly encrypted).
    pub fn is_private_key(&self) -> bool {
        matches!(
            self.label,
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY"
        )
    }

    /// True for an x509 certificate.
    pub fn is_certificate(&self) -> bool {
        matches!(
            self.label,
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
        )
    }
}

/// True when the bytes contain PEM armour (ocicrypt's `pem.Decode` looks for the same marker).
pub(super) fn is_pem(data: &[u8]) -> bool {
    find(data, BEGIN, 0).is_some()
}

/// Every complete block, in file order. Text outside blocks is ignored, as `pem.Decode` does.
pub(super) fn blocks(data: &[u8]) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = find(data, BEGIN, pos) {
        let label_start = start + BEGIN.len();
        let Some(label_end) = find(data, DASHES, label_start) else {
            break;
        };
        let label = &data[label_start..label_end];
        let Ok(label) = std::str::from_utf8(label) else {
            pos = label_start;
            continue;
        };
        if label.contains(['\n', '\r']) {
            pos = label_start;
            continue;
        }
        let mut end_marker = b"-----END ".to_vec();
        end_marker.extend_from_slice(label.as_bytes());
        end_marker.extend_from_slice(DASHES);
        let Some(end) = find(data, &end_marker, label_end + DASHES.len()) else {
            pos = label_end;
            continue;
        };
        let stop = end + end_marker.len();
        out.push(Block {
            label,
            text: &data[start..stop],
        });
        pos = stop;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks_in_order_and_skips_text_between() {
        let data =
            b"junk\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                     comment\n-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let b = blocks(data);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].label, "EC PARAMETERS");
        assert_eq!(b[1].label, "EC PRIVATE KEY");
        assert!(b[1].is_private_key());
        assert!(b[1].text.starts_with(b"-----BEGIN EC PRIVATE KEY-----"));
        assert!(b[1].text.ends_with(b"-----END EC PRIVATE KEY-----"));
    }

    #[test]
    fn an_unterminated_block_is_not_a_block() {
        let data = b"-----BEGIN PRIVATE KEY-----\nAAAA\n";
        assert!(is_pem(data));
        assert!(blocks(data).is_empty());
    }

    #[test]
    fn mismatched_end_label_is_not_a_block() {
        let data = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(blocks(data).is_empty());
    }
}

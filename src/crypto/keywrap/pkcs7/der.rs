//! A small ASN.1 reader (DER, plus the BER forms CMS writers use: indefinite lengths and
//! constructed OCTET STRINGs) and a DER writer: exactly what CMS EnvelopedData needs.

/// Most nesting the reader follows inside an indefinite-length value.
const MAX_DEPTH: usize = 32;

pub(super) const SEQUENCE: u8 = 0x30;
pub(super) const SET: u8 = 0x31;
pub(super) const INTEGER: u8 = 0x02;
pub(super) const OCTET_STRING: u8 = 0x04;
pub(super) const OID: u8 = 0x06;

/// Why some bytes are not the ASN.1 expected.
#[derive(Debug)]
pub(super) struct Invalid(pub String);

pub(super) type Parse<T> = std::result::Result<T, Invalid>;

fn invalid<T>(reason: impl Into<String>) -> Parse<T> {
    Err(Invalid(reason.into()))
}

/// One tag-length-value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tlv<'a> {
    /// The identifier octet (single-byte tags only).
    pub tag: u8,
    /// The contents; for an indefinite length, the bytes before the end-of-contents marker.
    pub content: &'a [u8],
    /// The whole encoding, header included.
    pub raw: &'a [u8],
}

impl Tlv<'_> {
    /// True for a constructed encoding.
    pub fn is_constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// The class and number without the constructed bit.
    pub fn number(&self) -> u8 {
        self.tag & !0x20
    }
}

/// Reads consecutive TLVs from a byte string.
#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The tag of the next TLV, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// The next TLV.
    pub fn next(&mut self) -> Parse<Tlv<'a>> {
        let (tlv, used) = read_tlv(self.data, 0)?;
        self.data = &self.data[used..];
        Ok(tlv)
    }

    /// The next TLV, which must have `tag`; returns its contents.
    pub fn expect(&mut self, tag: u8, what: &str) -> Parse<&'a [u8]> {
        let tlv = self
            .next()
            .map_err(|e| Invalid(format!("{what}: {}", e.0)))?;
        if tlv.tag != tag {
            return invalid(format!(
                "{what}: expected tag 0x{tag:02x}, found 0x{:02x}",
                tlv.tag
            ));
        }
        Ok(tlv.content)
    }

    /// Fail unless everything was read.
    pub fn finish(&self, what: &str) -> Parse<()> {
        if self.data.is_empty() {
            Ok(())
        } else {
            invalid(format!("{} trailing bytes after {what}", self.data.len()))
        }
    }
}

/// Parse one TLV at the start of `data`; returns it and the bytes it used.
fn read_tlv(data: &[u8], depth: usize) -> Parse<(Tlv<'_>, usize)> {
    if depth > MAX_DEPTH {
        return invalid("nested too deeply");
    }
    let Some(&tag) = data.first() else {
        return invalid("truncated: expected a value");
    };
    if tag & 0x1f == 0x1f {
        return invalid(format!("unsupported multi-byte tag 0x{tag:02x}"));
    }
    let Some(&first) = data.get(1) else {
        return invalid("truncated length");
    };
    let (len, header) = match first {
        0x80 => {
            if tag & 0x20 == 0 {
                return invalid("indefinite length on a primitive value");
            }
            // Indefinite: children up to the end-of-contents marker 00 00.
            let mut pos = 2;
            loop {
                if data.get(pos..pos + 2) == Some(&[0, 0]) {
                    let tlv = Tlv {
                        tag,
                        content: &data[2..pos],
                        raw: &data[..pos + 2],
                    };
                    return Ok((tlv, pos + 2));
                }
                let (_, used) = read_tlv(&data[pos..], depth + 1)?;
                pos += used;
            }
        }
        n if n < 0x80 => (usize::from(n), 2),
        n => {
            let count = usize::from(n & 0x7f);
            if count > 4 {
                return invalid("length too large");
            }
            let bytes = data
                .get(2..2 + count)
                .ok_or_else(|| Invalid("truncated length".into()))?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + count)
        }
    };
    let end = header
        .checked_add(len)
        .filter(|end| *end <= data.len())
        .ok_or_else(|| {
            Invalid(format!(
                "truncated: a value of {len} bytes runs past the end"
            ))
        })?;
    Ok((
        Tlv {
            tag,
            content: &data[header..end],
            raw: &data[..end],
        },
        end,
    ))
}

/// The bytes of an OCTET STRING in primitive form or constructed from segments (BER).
pub(super) fn octets(tlv: &Tlv<'_>) -> Parse<Vec<u8>> {
    if !tlv.is_constructed() {
        return Ok(tlv.content.to_vec());
    }
    let mut out = Vec::new();
    let mut r = Reader::new(tlv.content);
    while !r.is_empty() {
        let part = r.next()?;
        if part.number() != OCTET_STRING {
            return invalid("a constructed OCTET STRING holds a value of another type");
        }
        out.extend_from_slice(&octets(&part)?);
    }
    Ok(out)
}

/// An INTEGER's contents without redundant leading zero bytes (for comparing serials).
pub(super) fn integer_magnitude(content: &[u8]) -> &[u8] {
    let mut c = content;
    while c.len() > 1 && c[0] == 0 {
        c = &c[1..];
    }
    c
}

/// A small non-negative INTEGER.
pub(super) fn small_int(content: &[u8], what: &str) -> Parse<u64> {
    if content.is_empty() || content.len() > 8 || content[0] & 0x80 != 0 {
        return invalid(format!("{what} is not a small non-negative integer"));
    }
    Ok(content
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Encode a TLV in DER.
pub(super) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Encode a constructed value from already encoded parts.
pub(super) fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// A DER INTEGER from a small number.
pub(super) fn int(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = bytes.iter().take_while(|b| **b == 0).count().min(7);
    if bytes[start] & 0x80 != 0 {
        start -= 1;
    }
    tlv(INTEGER, &bytes[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536] {
            let enc = tlv(OCTET_STRING, &vec![7u8; len]);
            let mut r = Reader::new(&enc);
            assert_eq!(r.expect(OCTET_STRING, "x").unwrap().len(), len);
            r.finish("x").unwrap();
        }
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(int(0), [2, 1, 0]);
        assert_eq!(int(16), [2, 1, 16]);
        assert_eq!(int(128), [2, 2, 0, 128]);
        assert_eq!(int(256), [2, 2, 1, 0]);
        assert_eq!(integer_magnitude(&[0, 0x80]), [0x80]);
    }

    #[test]
    fn indefinite_length_and_segmented_octets() {
        // [0] constructed, indefinite, holding two OCTET STRING segments.
        let data = [
            0xa0, 0x80, 0x04, 0x02, 1, 2, 0x04, 0x01, 3, 0, 0, 0x05, 0x00,
        ];
        let mut r = Reader::new(&data);
        let t = r.next().unwrap();
        assert_eq!(octets(&t).unwrap(), [1, 2, 3]);
        assert_eq!(t.raw.len(), 11);
        assert_eq!(r.expect(0x05, "null").unwrap(), &[] as &[u8]);
        r.finish("all").unwrap();
    }

    #[test]
    fn truncated_and_hostile_inputs_are_refused() {
        for bad in [
            &[0x30, 0x05, 0x02][..],
            &[0x30][..],
            &[0x30, 0x85, 1, 1, 1, 1, 1][..],
            &[0x1f, 0x01, 0x00][..],
            &[0x04, 0x80, 0, 0][..],
            &[0x30, 0x80, 0x02, 0x01][..],
        ] {
            assert!(Reader::new(bad).next().is_err(), "{bad:?}");
        }
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        assert!(Reader::new(&deep).next().is_err());
    }
}

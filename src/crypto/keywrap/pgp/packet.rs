//! OpenPGP packet framing (RFC 4880 section 4.2): old- and new-format headers with definite,
//! partial (new format) and indeterminate (old format) body lengths; new-format headers with
//! definite lengths on output; multiprecision integers (section 3.2).

use super::{invalid, Parse};

/// Packet tags rrun reads or writes.
pub(super) mod tag {
    pub const PKESK: u8 = 1;
    pub const SIGNATURE: u8 = 2;
    pub const SKESK: u8 = 3;
    pub const ONE_PASS_SIGNATURE: u8 = 4;
    pub const SECRET_KEY: u8 = 5;
    pub const PUBLIC_KEY: u8 = 6;
    pub const SECRET_SUBKEY: u8 = 7;
    pub const COMPRESSED: u8 = 8;
    pub const SED: u8 = 9;
    pub const MARKER: u8 = 10;
    pub const LITERAL: u8 = 11;
    pub const USER_ID: u8 = 13;
    pub const PUBLIC_SUBKEY: u8 = 14;
    pub const USER_ATTRIBUTE: u8 = 17;
    pub const SEIPD: u8 = 18;
    pub const AEAD: u8 = 20;
    pub const PADDING: u8 = 21;
}

/// One packet: its tag and its whole body (partial-length chunks joined).
#[derive(Debug)]
pub(super) struct Packet {
    pub tag: u8,
    pub body: Vec<u8>,
}

/// Most packets one stream may hold: keyrings of thousands of keys stay far below.
const MAX_PACKETS: usize = 1 << 20;

/// Split a packet stream into packets.
pub(super) fn read_all(data: &[u8]) -> Parse<Vec<Packet>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        if out.len() >= MAX_PACKETS {
            return invalid("too many packets");
        }
        let (packet, used) = read_one(&data[pos..]).map_err(|e| {
            super::Invalid(format!("packet {} at offset {pos}: {}", out.len(), e.0))
        })?;
        out.push(packet);
        pos += used;
    }
    Ok(out)
}

/// True when `data` starts like an OpenPGP packet of one of `tags`.
pub(super) fn starts_with_tag(data: &[u8], tags: &[u8]) -> bool {
    match data.first() {
        Some(&b) if b & 0x80 != 0 => {
            let t = if b & 0x40 != 0 {
                b & 0x3f
            } else {
                (b >> 2) & 0x0f
            };
            tags.contains(&t)
        }
        _ => false,
    }
}

fn read_one(data: &[u8]) -> Parse<(Packet, usize)> {
    let ctb = data[0];
    if ctb & 0x80 == 0 {
        return invalid(format!("not an OpenPGP packet header (0x{ctb:02x})"));
    }
    if ctb & 0x40 == 0 {
        // Old format: tag in bits 5-2, length type in bits 1-0.
        let tag = (ctb >> 2) & 0x0f;
        let (len, header) = match ctb & 3 {
            0 => (usize::from(*byte(data, 1)?), 2),
            1 => (usize::from(u16::from_be_bytes(array(data, 1)?)), 3),
            2 => (to_usize(u32::from_be_bytes(array(data, 1)?)), 5),
            _ => (data.len() - 1, 1),
        };
        let body = slice(data, header, len)?.to_vec();
        return Ok((Packet { tag, body }, header + len));
    }
    let tag = ctb & 0x3f;
    let mut body = Vec::new();
    let mut pos = 1;
    loop {
        let first = *byte(data, pos)?;
        let (len, partial, header) = match first {
            0..=191 => (usize::from(first), false, 1),
            192..=223 => {
                let second = *byte(data, pos + 1)?;
                (
                    ((usize::from(first) - 192) << 8) + usize::from(second) + 192,
                    false,
                    2,
                )
            }
            224..=254 => (1usize << (first & 0x1f), true, 1),
            255 => (
                to_usize(u32::from_be_bytes(array(data, pos + 1)?)),
                false,
                5,
            ),
        };
        pos += header;
        body.extend_from_slice(slice(data, pos, len)?);
        pos += len;
        if !partial {
            return Ok((Packet { tag, body }, pos));
        }
    }
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn byte(data: &[u8], at: usize) -> Parse<&u8> {
    data.get(at)
        .ok_or_else(|| super::Invalid("truncated packet header".into()))
}

fn array<const N: usize>(data: &[u8], at: usize) -> Parse<[u8; N]> {
    data.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| super::Invalid("truncated packet header".into()))
}

fn slice(data: &[u8], at: usize, len: usize) -> Parse<&[u8]> {
    at.checked_add(len)
        .and_then(|end| data.get(at..end))
        .ok_or_else(|| {
            super::Invalid(format!(
                "truncated: a body of {len} bytes runs past the end of the data"
            ))
        })
}

/// A new-format packet with a definite length.
pub(super) fn write(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(0xc0 | tag);
    let len = body.len();
    if len < 192 {
        out.push(len as u8);
    } else if len < 8384 {
        let l = len - 192;
        out.push(((l >> 8) + 192) as u8);
        out.push((l & 0xff) as u8);
    } else {
        out.push(0xff);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// A cursor over a packet body.
#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    pub fn take(&mut self, n: usize, what: &str) -> Parse<&'a [u8]> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or_else(|| super::Invalid(format!("truncated {what}")))?;
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self, what: &str) -> Parse<u8> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> Parse<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &str) -> Parse<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A multiprecision integer: its magnitude bytes (big-endian, as stored).
    pub fn mpi(&mut self, what: &str) -> Parse<&'a [u8]> {
        let bits = usize::from(self.u16(what)?);
        self.take(bits.div_ceil(8), what)
    }
}

/// Encode a multiprecision integer from big-endian magnitude bytes.
pub(super) fn mpi(value: &[u8]) -> Vec<u8> {
    let start = value.iter().take_while(|b| **b == 0).count();
    let v = &value[start..];
    let bits = match v.first() {
        Some(b) => (v.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    };
    let mut out = Vec::with_capacity(v.len() + 2);
    out.extend_from_slice(&u16::try_from(bits).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_lengths_round_trip() {
        for len in [0usize, 1, 191, 192, 8383, 8384, 100_000] {
            let body = vec![0x5a; len];
            let enc = write(tag::LITERAL, &body);
            let packets = read_all(&enc).unwrap();
            assert_eq!(packets.len(), 1);
            assert_eq!(packets[0].tag, tag::LITERAL);
            assert_eq!(packets[0].body, body);
        }
    }

    #[test]
    fn partial_lengths_are_joined() {
        // 512-byte partial chunk, then a final 3-byte chunk.
        let mut data = vec![0xc0 | tag::SEIPD, 0xe9];
        data.extend(std::iter::repeat_n(1u8, 512));
        data.push(3);
        data.extend_from_slice(&[2, 2, 2]);
        let p = read_all(&data).unwrap();
        assert_eq!(p[0].body.len(), 515);
    }

    #[test]
    fn old_format_headers() {
        // Old format tag 6, one-octet length; then tag 13, two-octet length; then
        // indeterminate length to the end.
        let mut data = vec![0x98, 2, 9, 9, 0xb5, 0, 1, 7, 0xaf];
        data.extend_from_slice(b"rest");
        let p = read_all(&data).unwrap();
        assert_eq!((p[0].tag, p[0].body.as_slice()), (6, &[9u8, 9][..]));
        assert_eq!((p[1].tag, p[1].body.as_slice()), (13, &[7u8][..]));
        assert_eq!((p[2].tag, p[2].body.as_slice()), (11, &b"rest"[..]));
    }

    #[test]
    fn truncated_packets_are_refused() {
        for bad in [
            &[0xc1, 10, 1, 2][..],
            &[0xc1][..],
            &[0xc1, 0xe9, 1][..],
            &[0x01, 0][..],
            &[0xc1, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert!(read_all(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mpis_drop_leading_zeros() {
        assert_eq!(mpi(&[0, 0, 1]), [0, 1, 1]);
        assert_eq!(mpi(&[0x80, 0]), [0, 16, 0x80, 0]);
        let enc = mpi(&[0x40; 32]);
        assert_eq!(Reader::new(&enc).mpi("x").unwrap(), &[0x40; 32]);
    }
}

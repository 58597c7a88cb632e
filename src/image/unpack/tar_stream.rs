//! A bounded streaming tar reader: 512-byte framing, ustar/GNU/PAX headers, GNU long names and
//! sparse maps, with caps on every size it reads into memory, hashing every uncompressed byte
//! (the layer's diff_id) as it goes.
//!
//! Framing follows Go's `archive/tar` (what builds and reads most images): header-only types
//! (links, devices, directories, fifos) carry no data whatever their size field says, PAX
//! records override the header, global PAX headers are ignored, and the archive ends at a zero
//! block (a second zero block, or EOF, must follow it). Unlike Go, a stream that stops at a
//! header boundary without that zero block is truncated, not finished.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::decompress::Compression;
use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};

const BLOCK: usize = 512;
/// Largest PAX header or GNU long name/link accepted (Go's `maxSpecialFileSize`).
pub(super) const MAX_EXTENSION: u64 = 1 << 20;
/// Largest number of segments in one GNU sparse map.
pub(super) const MAX_SPARSE_SEGMENTS: usize = 1 << 16;
/// Read size from the decompressor.
const BUF: usize = 256 << 10;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
}

/// One tar entry's header, extensions merged.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Name as stored (PAX `path` > GNU long name > ustar prefix/name).
    pub path: Vec<u8>,
    /// Link target for links (PAX `linkpath` > GNU long link > header).
    pub link: Vec<u8>,
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    /// File size (the full size of a sparse file).
    pub size: u64,
    /// Data segments `(offset, length)` of a sparse file, in order.
    pub sparse: Option<Vec<(u64, u64)>>,
    /// Device major and minor.
    pub device: (u32, u32),
    /// `SCHILY.xattr.*` PAX records: name and value.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Offset of the entry's header in the tar, for messages.
    pub offset: u64,
}

impl Entry {
    /// The name for messages.
    pub(super) fn display(&self) -> String {
        String::from_utf8_lossy(&self.path)
            .chars()
            .take(300)
            .collect()
    }
}

/// A tar stream over an uncompressed layer.
pub(super) struct TarStream<'a> {
    inner: Box<dyn Read + 'a>,
    compression: Compression,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    hasher: Sha256,
    /// Bytes pulled from `inner` (all hashed).
    consumed: u64,
    /// Bytes handed to the parser: the position in the tar.
    offset: u64,
    max_bytes: u64,
    /// Archive bytes of the current entry's data not yet read.
    data_left: u64,
    /// Padding after the current entry's data.
    pad_left: u64,
}

impl std::fmt::Debug for TarStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarStream")
            .field("offset", &self.offset)
            .field("consumed", &self.consumed)
            .finish_non_exhaustive()
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// A numeric header field: octal text (NUL/space padded; empty is 0) or GNU base-256.
fn number(field: &[u8]) -> std::result::Result<i128, String> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            // GNU base-256: big-endian two's complement over the bits after the marker bit.
            // Fields are at most 12 bytes, so 95 bits always fit.
            let mut v: i128 = 0;
            for (i, b) in field.iter().enumerate() {
                let b = if i == 0 { b & 0x7f } else { *b };
                v = v * 256 + i128::from(b);
            }
            if first & 0x40 != 0 {
                v -= 1i128 << (field.len() * 8 - 1);
            }
            return Ok(v);
        }
    }
    let text: Vec<u8> = field.iter().copied().take_while(|b| *b != 0).collect();
    let text = std::str::from_utf8(&text).map_err(|_| "numeric field is not text")?;
    let text = text.trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    i128::from_str_radix(text, 8).map_err(|_| format!("numeric field {text:?} is not octal"))
}

/// A NUL-terminated string field.
fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|b| *b == 0) {
        Some(n) => &field[..n],
        None => field,
    }
}

/// Strip the trailing NULs GNU tar puts after long names.
fn strip_nuls(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

/// A PAX decimal time: `SECONDS[.FRACTION]`, possibly negative.
fn pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: u32 = digits.parse().ok()?;
    Some(match (neg, nanos) {
        (false, n) => (secs, n),
        (true, 0) => (-secs, 0),
        (true, n) => (-secs - 1, 1_000_000_000 - n),
    })
}

fn pax_u64(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl<'a> TarStream<'a> {
    /// Read a tar from `inner` (already decompressed), refusing more than `max_bytes` of it.
    pub(super) fn new(inner: Box<dyn Read + 'a>, compression: Compression, max_bytes: u64) -> Self {
        Self {
            inner,
            compression,
            buf: vec![0; BUF],
            pos: 0,
            end: 0,
            eof: false,
            hasher: Sha256::new(),
            consumed: 0,
            offset: 0,
            max_bytes,
            data_left: 0,
            pad_left: 0,
        }
    }

    fn malformed(&self, offset: u64, reason: impl Into<String>) -> ImageError {
        ImageError::MalformedTar {
            offset,
            reason: reason.into(),
        }
    }

    fn truncated(reason: impl Into<String>) -> ImageError {
        ImageError::TruncatedLayer {
            reason: reason.into(),
        }
    }

    fn inner_error(&self, e: io::Error) -> ImageError {
        match self.compression {
            Compression::Tar => ImageError::Io(e),
            c if e.kind() == io::ErrorKind::UnexpectedEof => {
                Self::truncated(format!("the {} stream ends early", c.name()))
            }
            c => ImageError::Decompress {
                format: c.name().into(),
                source: e,
            },
        }
    }

    /// Make buffered bytes available; false at the end of the stream.
    fn fill(&mut self) -> Result<bool> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.hasher.update(&self.buf[..n]);
                    self.consumed += n as u64;
                    if self.consumed > self.max_bytes {
                        return Err(ImageError::UnpackLimit {
                            what: "uncompressed bytes".into(),
                            limit: self.max_bytes,
                        });
                    }
                    self.pos = 0;
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.inner_error(e)),
            }
        }
    }

    /// Up to `max` buffered bytes (empty only at the end of the stream).
    fn take(&mut self, max: u64) -> Result<&[u8]> {
        if max == 0 || !self.fill()? {
            return Ok(&[]);
        }
        let n = (self.end - self.pos).min(usize::try_from(max).unwrap_or(usize::MAX));
        let start = self.pos;
        self.pos += n;
        self.offset += n as u64;
        Ok(&self.buf[start..start + n])
    }

    /// Fill `out`; returns how many bytes were read (fewer only at the end of the stream).
    fn read_into(&mut self, out: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < out.len() {
            let chunk = self.take((out.len() - got) as u64)?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            out[got..got + n].copy_from_slice(chunk);
            got += n;
        }
        Ok(got)
    }

    fn skip(&mut self, mut n: u64, what: &str) -> Result<()> {
        while n > 0 {
            let got = self.take(n)?.len() as u64;
            if got == 0 {
                return Err(Self::truncated(format!("the tar ends inside {what}")));
            }
            n -= got;
        }
        Ok(())
    }

    /// One header block; false at a clean end of stream.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool> {
        match self.read_into(block)? {
            0 => Ok(false),
            BLOCK => Ok(true),
            _ => Err(Self::truncated("the tar ends inside a header block")),
        }
    }

    /// The data of an extension header, capped.
    fn read_extension(&mut self, size: u64, offset: u64) -> Result<Vec<u8>> {
        if size > MAX_EXTENSION {
            return Err(ImageError::UnpackLimit {
                what: format!(
                    "bytes in one tar extension header (the one at byte {offset} declares {size})"
                ),
                limit: MAX_EXTENSION,
            });
        }
        let mut data = vec![0; size as usize];
        if self.read_into(&mut data)? != data.len() {
            return Err(Self::truncated("the tar ends inside an extension header"));
        }
        self.skip(padding(size), "header padding")?;
        Ok(data)
    }

    /// The next entry, or `None` after the end-of-archive block. Unread data of the previous
    /// entry is skipped.
    pub(super) fn next_entry(&mut self) -> Result<Option<Entry>> {
        let rest = self.data_left + self.pad_left;
        self.data_left = 0;
        self.pad_left = 0;
        self.skip(rest, "an entry's data")?;

        let mut pax: Option<Vec<u8>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let offset = self.offset;
            let mut block = [0u8; BLOCK];
            if !self.read_block(&mut block)? {
                return Err(Self::truncated(
                    "the tar ends without its end-of-archive blocks",
                ));
            }
            if block.iter().all(|b| *b == 0) {
                if pax.is_some() || long_name.is_some() || long_link.is_some() {
                    return Err(
                        self.malformed(offset, "an extension header is not followed by an entry")
                    );
                }
                let mut second = [0u8; BLOCK];
                if self.read_block(&mut second)? && second.iter().any(|b| *b != 0) {
                    return Err(self.malformed(
                        offset + BLOCK as u64,
                        "a header follows the end-of-archive block",
                    ));
                }
                return Ok(None);
            }
            self.check_checksum(&block, offset)?;
            let typ = block[156];
            let size = self.field(&block[124..136], offset, "size")?;
            match typ {
                b'x' | b'g' | b'L' | b'K' => {
                    let data = self.read_extension(size, offset)?;
                    let slot = match typ {
                        b'x' => &mut pax,
                        b'L' => &mut long_name,
                        b'K' => &mut long_link,
                        _ => continue, // global PAX headers are ignored, as Go and containerd do
                    };
                    if slot.is_some() {
                        return Err(self.malformed(
                            offset,
                            "two extension headers of the same kind describe one entry",
                        ));
                    }
                    *slot = Some(if typ == b'x' { data } else { strip_nuls(data) });
                }
                _ => {
                    return self
                        .entry(&block, offset, size, pax, long_name, long_link)
                        .map(Some)
                }
            }
        }
    }

    fn check_checksum(&self, block: &[u8; BLOCK], offset: u64) -> Result<()> {
        let stored = number(&block[148..156]).map_err(|e| self.malformed(offset, e))?;
        let mut unsigned: i64 = 0;
        let mut signed: i64 = 0;
        for (i, b) in block.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { *b };
            unsigned += i64::from(b);
            signed += i64::from(b as i8);
        }
        if stored != i128::from(unsigned) && stored != i128::from(signed) {
            return Err(
                self.malformed(offset, "header checksum mismatch (not a tar, or corrupted)")
            );
        }
        Ok(())
    }

    fn field(&self, bytes: &[u8], offset: u64, name: &str) -> Result<u64> {
        let v = number(bytes).map_err(|e| self.malformed(offset, format!("{name}: {e}")))?;
        u64::try_from(v).map_err(|_| self.malformed(offset, format!("{name} is negative")))
    }

    fn entry(
        &mut self,
        block: &[u8; BLOCK],
        offset: u64,
        header_size: u64,
        pax: Option<Vec<u8>>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<Entry> {
        let typ = block[156];
        let ustar = &block[257..263] == b"ustar\0";
        let gnu = &block[257..265] == b"ustar  \0";
        let mut path = match long_name {
            Some(n) => n,
            None => {
                let name = cstr(&block[0..100]);
                let prefix = if ustar {
                    cstr(&block[345..500])
                } else {
                    &[][..]
                };
                if prefix.is_empty() {
                    name.to_vec()
                } else {
                    [prefix, b"/", name].concat()
                }
            }
        };
        let mut link = long_link.unwrap_or_else(|| cstr(&block[157..257]).to_vec());
        let mode = self.field(&block[100..108], offset, "mode")? as u32 & 0o7777;
        let mut uid = self.field(&block[108..116], offset, "uid")?;
        let mut gid = self.field(&block[116..124], offset, "gid")?;
        let mtime =
            number(&block[136..148]).map_err(|e| self.malformed(offset, format!("mtime: {e}")))?;
        let mut mtime = (
            i64::try_from(mtime).map_err(|_| self.malformed(offset, "mtime out of range"))?,
            0u32,
        );
        let mut size = header_size;
        let mut xattrs = Vec::new();
        if let Some(pax) = &pax {
            for rec in tar::PaxExtensions::new(pax) {
                let rec =
                    rec.map_err(|e| self.malformed(offset, format!("bad PAX record: {e}")))?;
                let (k, v) = (rec.key_bytes(), rec.value_bytes());
                let bad = |what: &str| {
                    self.malformed(
                        offset,
                        format!("bad PAX {what} {:?}", String::from_utf8_lossy(v)),
                    )
                };
                match k {
                    b"path" => path = v.to_vec(),
                    b"linkpath" => link = v.to_vec(),
                    b"size" => size = pax_u64(v).ok_or_else(|| bad("size"))?,
                    b"uid" => uid = pax_u64(v).ok_or_else(|| bad("uid"))?,
                    b"gid" => gid = pax_u64(v).ok_or_else(|| bad("gid"))?,
                    b"mtime" => mtime = pax_time(v).ok_or_else(|| bad("mtime"))?,
                    _ if k.starts_with(b"SCHILY.xattr.") => {
                        xattrs.push((k[b"SCHILY.xattr.".len()..].to_vec(), v.to_vec()))
                    }
                    _ if k.starts_with(b"GNU.sparse.") => {
                        return Err(self.malformed(
                            offset,
                            "PAX sparse files (GNU.sparse.*) are not supported; re-create the layer without --sparse",
                        ))
                    }
                    _ => {}
                }
            }
        }
        let kind = match typ {
            // Old (V7) archives mark directories by a trailing slash on a type-NUL entry.
            b'\0' if path.ends_with(b"/") => Kind::Dir,
            b'0' | b'\0' | b'7' | b'S' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' | b'D' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => {
                return Err(self.malformed(
                    offset,
                    format!("unsupported entry type {:?}", char::from(other)),
                ))
            }
        };
        let device = if matches!(kind, Kind::Char | Kind::Block) {
            let major = self.field(&block[329..337], offset, "device major")?;
            let minor = self.field(&block[337..345], offset, "device minor")?;
            (
                u32::try_from(major)
                    .map_err(|_| self.malformed(offset, "device major out of range"))?,
                u32::try_from(minor)
                    .map_err(|_| self.malformed(offset, "device minor out of range"))?,
            )
        } else {
            (0, 0)
        };
        // Header-only types carry no data whatever their size field says (as in Go).
        let header_only = matches!(typ, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
        let (data, sparse) = if typ == b'S' {
            if !gnu {
                return Err(self.malformed(offset, "a GNU sparse entry without a GNU header"));
            }
            let (segments, real) = self.sparse_map(block, offset, header_size)?;
            size = real;
            (header_size, Some(segments))
        } else if header_only {
            (0, None)
        } else if kind == Kind::Dir {
            (header_size, None)
        } else {
            (size, None)
        };
        self.data_left = data;
        self.pad_left = padding(data);
        Ok(Entry {
            path,
            link,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size: if kind == Kind::File { size } else { 0 },
            sparse,
            device,
            xattrs,
            offset,
        })
    }

    /// The segments of an old-GNU sparse file (header map, then extension blocks), checked:
    /// in order, not overlapping, inside the real size, and adding up to the stored data.
    fn sparse_map(
        &mut self,
        block: &[u8; BLOCK],
        offset: u64,
        stored: u64,
    ) -> Result<(Vec<(u64, u64)>, u64)> {
        let real = self.field(&block[483..495], offset, "sparse real size")?;
        let mut segments = Vec::new();
        let mut add = |this: &Self, entry: &[u8]| -> Result<()> {
            let off = this.field(&entry[..12], offset, "sparse offset")?;
            let len = this.field(&entry[12..24], offset, "sparse length")?;
            if off == 0 && len == 0 && entry.iter().all(|b| *b == 0) {
                return Ok(());
            }
            if segments.len() >= MAX_SPARSE_SEGMENTS {
                return Err(ImageError::UnpackLimit {
                    what: "segments in one sparse file".into(),
                    limit: MAX_SPARSE_SEGMENTS as u64,
                });
            }
            segments.push((off, len));
            Ok(())
        };
        for i in 0..4 {
            add(self, &block[386 + 24 * i..386 + 24 * (i + 1)])?;
        }
        let mut extended = block[482] != 0;
        while extended {
            let mut ext = [0u8; BLOCK];
            if !self.read_block(&mut ext)? {
                return Err(Self::truncated("the tar ends inside a sparse map"));
            }
            for i in 0..21 {
                add(self, &ext[24 * i..24 * (i + 1)])?;
            }
            extended = ext[504] != 0;
        }
        let mut end = 0u64;
        let mut total = 0u64;
        for &(off, len) in &segments {
            let seg_end = off
                .checked_add(len)
                .ok_or_else(|| self.malformed(offset, "sparse segment overflows"))?;
            if off < end || seg_end > real {
                return Err(self.malformed(
                    offset,
                    "sparse segments overlap, are out of order or pass the file size",
                ));
            }
            end = seg_end;
            total += len;
        }
        if total != stored {
            return Err(self.malformed(
                offset,
                format!("sparse segments hold {total} bytes but the entry stores {stored}"),
            ));
        }
        Ok((segments, real))
    }

    /// The next chunk (at most `max` bytes) of the current entry's data; empty when it is
    /// all read.
    pub(super) fn data(&mut self, max: u64) -> Result<&[u8]> {
        if self.data_left == 0 || max == 0 {
            return Ok(&[]);
        }
        let want = self.data_left.min(max);
        let n = self.take(want)?.len();
        if n == 0 {
            return Err(Self::truncated("the tar ends inside an entry's data"));
        }
        self.data_left -= n as u64;
        let start = self.pos - n;
        Ok(&self.buf[start..self.pos])
    }

    /// Read (and hash) whatever follows the end-of-archive blocks; the diff_id and length of
    /// the whole uncompressed stream.
    pub(super) fn finish(mut self) -> Result<(Digest, u64)> {
        self.pos = self.end;
        while self.fill()? {
            self.pos = self.end;
        }
        Ok((
            Digest::from_sha256(self.hasher.finalize().into()),
            self.consumed,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(data: &[u8]) -> TarStream<'_> {
        TarStream::new(Box::new(data), Compression::Tar, u64::MAX)
    }

    fn header(name: &str, typ: u8, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::new(typ));
        h.set_size(size);
        h.set_mode(0o640);
        h.set_uid(1000);
        h.set_gid(100);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        h
    }

    #[test]
    fn numbers_octal_base256_and_empty() {
        assert_eq!(number(b"0000644\0").unwrap(), 0o644);
        assert_eq!(number(b"   17 \0").unwrap(), 0o17);
        assert_eq!(number(b"\0\0\0\0").unwrap(), 0);
        assert_eq!(
            number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap(),
            256
        );
        assert_eq!(number(&[0xff; 8]).unwrap(), -1);
        assert!(number(b"9\0").is_err());
    }

    #[test]
    fn pax_times() {
        assert_eq!(pax_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(pax_time(b"1.5"), Some((1, 500_000_000)));
        assert_eq!(pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(pax_time(b"1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(pax_time(b"x"), None);
        assert_eq!(pax_time(b"1.-5"), None);
    }

    #[test]
    fn reads_entries_hashes_everything_and_ignores_header_only_sizes() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header("dir/", b'5', 0);
        b.append(&h, &[][..]).unwrap();
        h = header("dir/f", b'0', 5);
        b.append(&h, &b"hello"[..]).unwrap();
        // A symlink whose size field claims data: Go ignores it, so do we (no data follows).
        let mut raw = header("dir/l", b'2', 0);
        raw.set_link_name("f").unwrap();
        raw.set_size(0);
        raw.set_cksum();
        b.append(&raw, &[][..]).unwrap();
        let tar = b.into_inner().unwrap();
        let mut s = stream(&tar);
        let e = s.next_entry().unwrap().unwrap();
        assert_eq!(
            (e.kind, &e.path[..], e.mode, e.uid, e.gid),
            (Kind::Dir, &b"dir/"[..], 0o640, 1000, 100)
        );
        let e = s.next_entry().unwrap().unwrap();
        assert_eq!((e.kind, e.size), (Kind::File, 5));
        assert_eq!(s.data(u64::MAX).unwrap(), b"hello");
        assert!(s.data(u64::MAX).unwrap().is_empty());
        let e = s.next_entry().unwrap().unwrap();
        assert_eq!((e.kind, &e.link[..]), (Kind::Symlink, &b"f"[..]));
        assert!(s.next_entry().unwrap().is_none());
        let (d, n) = s.finish().unwrap();
        assert_eq!(d, Digest::of_bytes(&tar));
        assert_eq!(n, tar.len() as u64);
    }

    #[test]
    fn pax_and_gnu_long_names_and_xattrs() {
        let long = format!("{}/{}", "a".repeat(150), "b".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"x"[..]).unwrap();
        b.append_pax_extensions([
            ("path", long.as_bytes()),
            ("mtime", &b"12.5"[..]),
            ("SCHILY.xattr.user.k", &b"v\0w"[..]),
            ("uid", &b"4294967296"[..]),
        ])
        .unwrap();
        let h = header("short", b'0', 0);
        b.append(&h, &[][..]).unwrap();
        let tar = b.into_inner().unwrap();
        let mut s = stream(&tar);
        let e = s.next_entry().unwrap().unwrap();
        assert_eq!(e.path, long.as_bytes());
        let e = s.next_entry().unwrap().unwrap();
        assert_eq!(e.path, long.as_bytes());
        assert_eq!(e.mtime, (12, 500_000_000));
        assert_eq!(e.uid, 1 << 32);
        assert_eq!(e.xattrs, vec![(b"user.k".to_vec(), b"v\0w".to_vec())]);
        assert!(s.next_entry().unwrap().is_none());
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let mut b = tar::Builder::new(Vec::new());
        let h = header("f", b'0', 1000);
        b.append(&h, &[7u8; 1000][..]).unwrap();
        let tar = b.into_inner().unwrap();
        // Cut inside the data.
        let mut s = stream(&tar[..700]);
        s.next_entry().unwrap().unwrap();
        let mut err = None;
        loop {
            match s.data(100) {
                Ok([]) => break,
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(
            matches!(err, Some(ImageError::TruncatedLayer { .. })),
            "{err:?}"
        );
        // Cut at the header boundary after the entry: no end-of-archive blocks.
        let mut s = stream(&tar[..512 + 1024]);
        s.next_entry().unwrap().unwrap();
        assert!(matches!(
            s.next_entry(),
            Err(ImageError::TruncatedLayer { .. })
        ));
        // Cut inside a header.
        let mut s = stream(&tar[..100]);
        assert!(matches!(
            s.next_entry(),
            Err(ImageError::TruncatedLayer { .. })
        ));
        // Not a tar.
        let junk = vec![b'x'; 2048];
        let mut s = stream(&junk);
        assert!(matches!(
            s.next_entry(),
            Err(ImageError::MalformedTar { .. })
        ));
        // A header after the first zero block.
        let mut odd = vec![0u8; 512];
        odd.extend_from_slice(&tar[..512]);
        let mut s = stream(&odd);
        assert!(matches!(
            s.next_entry(),
            Err(ImageError::MalformedTar { .. })
        ));
    }

    #[test]
    fn byte_limit_counts_the_uncompressed_stream() {
        let mut b = tar::Builder::new(Vec::new());
        let h = header("f", b'0', 4096);
        b.append(&h, &[0u8; 4096][..]).unwrap();
        let tar = b.into_inner().unwrap();
        let mut s = TarStream::new(Box::new(&tar[..]), Compression::Tar, 1000);
        let err = s.next_entry().err().unwrap();
        assert!(
            matches!(err, ImageError::UnpackLimit { limit: 1000, .. }),
            "{err}"
        );
    }

    #[test]
    fn oversized_extension_header_is_refused_before_reading_it() {
        let mut h = header("././@PaxHeader", b'x', MAX_EXTENSION + 1);
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.extend_from_slice(&[b'a'; 1024]);
        let mut s = stream(&tar);
        let err = s.next_entry().err().unwrap();
        assert!(matches!(err, ImageError::UnpackLimit { .. }), "{err}");
    }
}

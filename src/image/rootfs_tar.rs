//! A deterministic tar of a root filesystem directory: entries sorted by name (parents first),
//! numeric uid/gid with no user names, modes and mtimes kept, symlinks stored as links (never
//! followed), hardlinks as links to the first path, device nodes and fifos as such.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::error::{ImageError, Result};

/// A reader that fails unless it yields exactly `remaining` bytes (a file that shrinks while
/// it is archived would otherwise corrupt the tar stream).
struct Exact<R> {
    inner: R,
    remaining: u64,
    path: PathBuf,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while it was being archived", self.path.display()),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Linux `major()`/`minor()` of a `st_rdev`.
fn dev_major_minor(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    (major as u32, minor as u32)
}

/// Tar the content of `root` (not `root` itself) into `out`.
pub fn write_dir_tar<W: Write>(root: &Path, out: W) -> Result<W> {
    let mut builder = tar::Builder::new(out);
    let mut links = HashMap::new();
    walk(root, Path::new(""), &mut builder, &mut links)?;
    builder.into_inner().map_err(|e| ImageError::io_at(root, e))
}

fn walk<W: Write>(
    root: &Path,
    rel: &Path,
    builder: &mut tar::Builder<W>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| ImageError::io_at(&dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| ImageError::io_at(&dir, e))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let rel = rel.join(&name);
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(|e| ImageError::io_at(&path, e))?;
        let mut h = tar::Header::new_gnu();
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        h.set_mode(meta.mode() & 0o7777);
        h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        h.set_size(0);
        let ft = meta.file_type();
        let io_err = |e| ImageError::io_at(&path, e);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            let mut name = rel.as_os_str().as_bytes().to_vec();
            name.push(b'/');
            builder
                .append_data(
                    &mut h,
                    Path::new(std::ffi::OsStr::from_bytes(&name)),
                    io::empty(),
                )
                .map_err(io_err)?;
            walk(root, &rel, builder, links)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err)?;
            h.set_entry_type(tar::EntryType::Symlink);
            append_link(builder, &mut h, &rel, &target).map_err(io_err)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    append_link(builder, &mut h, &rel, first).map_err(io_err)?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), rel.clone());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let file = File::open(&path).map_err(io_err)?;
            let data = Exact {
                inner: BufReader::with_capacity(256 << 10, file),
                remaining: meta.len(),
                path: path.clone(),
            };
            builder.append_data(&mut h, &rel, data).map_err(io_err)?;
        } else if ft.is_char_device() || ft.is_block_device() {
            let (major, minor) = dev_major_minor(meta.rdev());
            h.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            h.set_device_major(major).map_err(io_err)?;
            h.set_device_minor(minor).map_err(io_err)?;
            builder
                .append_data(&mut h, &rel, io::empty())
                .map_err(io_err)?;
        } else if ft.is_fifo() {
            h.set_entry_type(tar::EntryType::Fifo);
            builder
                .append_data(&mut h, &rel, io::empty())
                .map_err(io_err)?;
        }
        // Sockets cannot be archived and mean nothing in an image (GNU tar skips them too).
    }
    Ok(())
}

/// Append a symlink or hardlink, keeping a short target byte for byte (the tar crate would
/// normalise it) and using the GNU long-link extension for long ones.
fn append_link<W: Write>(
    builder: &mut tar::Builder<W>,
    h: &mut tar::Header,
    rel: &Path,
    target: &Path,
) -> io::Result<()> {
    let bytes = target.as_os_str().as_bytes();
    if bytes.len() < 100 {
        h.set_link_name_literal(bytes)?;
        builder.append_data(h, rel, io::empty())
    } else {
        builder.append_link(h, rel, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_decode_like_glibc() {
        fn makedev(major: u64, minor: u64) -> u64 {
            ((major & 0xffff_f000) << 32)
                | ((major & 0xfff) << 8)
                | ((minor & 0xffff_ff00) << 12)
                | (minor & 0xff)
        }
        assert_eq!(dev_major_minor(makedev(0x12345, 65537)), (0x12345, 65537));
        let null = fs::metadata("/dev/null").unwrap();
        assert_eq!(dev_major_minor(null.rdev()), (1, 3));
    }

    #[test]
    fn same_tree_gives_same_bytes_and_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("b/c/f"), b"data").unwrap();
        fs::write(root.join("a"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", root.join("escape")).unwrap();
        let a = write_dir_tar(&root, Vec::new()).unwrap();
        let b = write_dir_tar(&root, Vec::new()).unwrap();
        assert_eq!(a, b);
        let mut ar = tar::Archive::new(&a[..]);
        let names: Vec<(String, tar::EntryType)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), tar::EntryType::Regular),
                ("b/".into(), tar::EntryType::Directory),
                ("b/c/".into(), tar::EntryType::Directory),
                ("b/c/f".into(), tar::EntryType::Regular),
                ("escape".into(), tar::EntryType::Symlink),
            ]
        );
    }
}

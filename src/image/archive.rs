//! `oci-archive:` tar files: safe extraction of a layout archive (regular files and directories
//! only, no `..`, no absolute names, no links) and deterministic packing of a layout directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use super::error::{ImageError, Result};
use super::layout;

/// The entry name as clean relative components, or why it is refused.
fn clean_name(raw: &[u8]) -> std::result::Result<Vec<String>, String> {
    let name = std::str::from_utf8(raw).map_err(|_| "the name is not UTF-8".to_string())?;
    if name.starts_with('/') {
        return Err("absolute names are not allowed".into());
    }
    if name.contains('\0') {
        return Err("the name holds a NUL byte".into());
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("'..' is not allowed".into()),
            p => parts.push(p.to_string()),
        }
    }
    Ok(parts)
}

/// Open an archive, transparently gunzipping it when it starts with the gzip magic.
fn open_archive(path: &Path) -> Result<Box<dyn Read>> {
    let mut file = BufReader::new(File::open(path).map_err(|e| ImageError::io_at(path, e))?);
    let magic = {
        use io::BufRead;
        file.fill_buf()
            .map_err(|e| ImageError::io_at(path, e))?
            .get(..2)
            .map(<[u8]>::to_vec)
    };
    if magic.as_deref() == Some(&[0x1f, 0x8b][..]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Ok(Box::new(file))
    }
}

/// Extract an OCI layout archive into the empty directory `dest`. Only regular files and
/// directories are extracted; links, devices, fifos, absolute names, `..` and duplicate files
/// are refused with [`ImageError::HostileArchive`].
pub fn extract(archive: &Path, dest: &Path) -> Result<()> {
    let hostile = |entry: &str, reason: &str| ImageError::HostileArchive {
        archive: archive.into(),
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    let mut tar = tar::Archive::new(open_archive(archive)?);
    let entries = tar.entries().map_err(|e| ImageError::io_at(archive, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ImageError::io_at(archive, e))?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let parts = clean_name(&raw).map_err(|r| hostile(&shown, &r))?;
        let kind = entry.header().entry_type();
        let target: PathBuf = parts.iter().fold(dest.to_path_buf(), |p, c| p.join(c));
        match kind {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).map_err(|e| ImageError::io_at(&target, e))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if parts.is_empty() {
                    return Err(hostile(&shown, "a file entry without a name"));
                }
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(|e| ImageError::io_at(parent, e))?;
                }
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| match e.kind() {
                        io::ErrorKind::AlreadyExists => hostile(&shown, "duplicate entry"),
                        _ => ImageError::io_at(&target, e),
                    })?;
                io::copy(&mut entry, &mut file).map_err(|e| ImageError::io_at(archive, e))?;
            }
            // PAX global headers carry no file.
            tar::EntryType::XGlobalHeader => {}
            other => {
                return Err(hostile(
                    &shown,
                    &format!(
                        "{} entries are not allowed in an OCI archive (only regular files and directories)",
                        entry_kind_name(other)
                    ),
                ))
            }
        }
    }
    Ok(())
}

fn entry_kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symlink",
        tar::EntryType::Link => "hardlink",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "fifo",
        _ => "special",
    }
}

/// The files and directories of a layout, relative, sorted, directories before their content;
/// leftover temp files are skipped.
fn layout_entries(root: &Path) -> Result<Vec<(PathBuf, bool)>> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<()> {
        let dir = root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| ImageError::io_at(&dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(|e| ImageError::io_at(&dir, e))?;
        names.sort();
        for name in names {
            if name.to_string_lossy().starts_with(".rrun-tmp-") {
                continue;
            }
            let rel = rel.join(&name);
            let meta =
                fs::symlink_metadata(root.join(&rel)).map_err(|e| ImageError::io_at(&rel, e))?;
            if meta.is_dir() {
                out.push((rel.clone(), true));
                walk(root, &rel, out)?;
            } else if meta.is_file() {
                out.push((rel, false));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out)?;
    Ok(out)
}

/// Tar the layout directory `root` into `archive`, atomically: a temp file next to the archive,
/// fsync, rename. Entries are sorted with fixed owner, mode and time, so the same layout always
/// gives the same archive.
pub fn pack(root: &Path, archive: &Path) -> Result<()> {
    let dir = match archive.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".rrun-tmp-")
        .tempfile_in(dir)
        .map_err(|e| ImageError::io_at(dir, e))?;
    let mut builder = tar::Builder::new(BufWriter::with_capacity(256 << 10, tmp));
    for (rel, is_dir) in layout_entries(root)? {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        if is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            // Directory names end with '/', as GNU tar and skopeo write them.
            let name = format!("{}/", rel.display());
            builder
                .append_data(&mut header, name, io::empty())
                .map_err(|e| ImageError::io_at(archive, e))?;
        } else {
            let path = root.join(&rel);
            let file = File::open(&path).map_err(|e| ImageError::io_at(&path, e))?;
            let len = file
                .metadata()
                .map_err(|e| ImageError::io_at(&path, e))?
                .len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(len);
            builder
                .append_data(&mut header, &rel, BufReader::new(file).take(len))
                .map_err(|e| ImageError::io_at(archive, e))?;
        }
    }
    let buffered = builder
        .into_inner()
        .map_err(|e| ImageError::io_at(archive, e))?;
    let tmp = buffered
        .into_inner()
        .map_err(|e| ImageError::io_at(archive, e.into_error()))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| ImageError::io_at(tmp.path(), e))?;
    layout::set_public_mode(tmp.as_file(), tmp.path())?;
    tmp.persist(archive)
        .map_err(|e| ImageError::io_at(archive, e.error))?;
    layout::sync_dir(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar with one raw entry whose name and type are set byte by byte (the tar crate
    /// refuses to build hostile names itself).
    fn raw_tar(name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_old();
        {
            let old = header.as_old_mut();
            old.name[..name.len()].copy_from_slice(name);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header, data).unwrap();
        b.into_inner().unwrap()
    }

    fn extract_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<()>) {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("a.tar");
        fs::write(&archive, bytes).unwrap();
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        let r = extract(&archive, &out);
        (tmp, r)
    }

    #[test]
    fn hostile_entries_are_refused() {
        use tar::EntryType::*;
        let cases: [(&[u8], tar::EntryType, &[u8], &str); 8] = [
            (b"../evil", Regular, b"", "'..'"),
            (b"blobs/../../evil", Regular, b"", "'..'"),
            (b"/etc/evil", Regular, b"", "absolute"),
            (b"index.json", Symlink, b"/etc/passwd", "symlink"),
            (b"blobs/sha256/x", Link, b"/etc/shadow", "hardlink"),
            (b"dev", Char, b"", "character device"),
            (b"fifo", Fifo, b"", "fifo"),
            (b"blk", Block, b"", "block device"),
        ];
        for (name, kind, link, why) in cases {
            let (tmp, r) = extract_bytes(&raw_tar(name, kind, link, b"x"));
            let err = r.unwrap_err();
            assert!(
                matches!(err, ImageError::HostileArchive { .. }),
                "{}: {err}",
                String::from_utf8_lossy(name)
            );
            assert!(err.to_string().contains(why), "{err}");
            assert!(!tmp.path().join("evil").exists());
            assert!(!tmp.path().parent().unwrap().join("evil").exists());
        }
    }

    #[test]
    fn duplicate_files_are_refused() {
        let mut bytes = raw_tar(b"index.json", tar::EntryType::Regular, b"", b"a");
        bytes.truncate(bytes.len() - 1024); // drop the end-of-archive blocks
        bytes.extend(raw_tar(b"./index.json", tar::EntryType::Regular, b"", b"b"));
        let (_tmp, r) = extract_bytes(&bytes);
        assert!(r.unwrap_err().to_string().contains("duplicate"));
    }

    #[test]
    fn pack_then_extract_round_trips_and_is_deterministic() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("layout");
        fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        fs::write(root.join("oci-layout"), layout::OCI_LAYOUT_JSON).unwrap();
        fs::write(root.join("index.json"), b"{}").unwrap();
        fs::write(root.join("blobs/sha256/ab"), b"blob").unwrap();
        fs::write(root.join("blobs/sha256/.rrun-tmp-x"), b"partial").unwrap();
        let a1 = tmp.path().join("a1.tar");
        let a2 = tmp.path().join("a2.tar");
        pack(&root, &a1).unwrap();
        pack(&root, &a2).unwrap();
        assert_eq!(fs::read(&a1).unwrap(), fs::read(&a2).unwrap());
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        extract(&a1, &out).unwrap();
        assert_eq!(fs::read(out.join("blobs/sha256/ab")).unwrap(), b"blob");
        assert_eq!(fs::read(out.join("index.json")).unwrap(), b"{}");
        assert!(!out.join("blobs/sha256/.rrun-tmp-x").exists());
        let listing = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&a1)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&listing.stdout),
            "blobs/\nblobs/sha256/\nblobs/sha256/ab\nindex.json\noci-layout\n"
        );
    }
}

//! Where an `ImageRef` is read from and written to: a `Source` resolves `oci:`/`oci-archive:`
//! (or a store name, under the store lock) to a layout and its `index.json` entry; a
//! `Destination` stages blobs into a layout and, on commit only, updates `index.json` (and
//! re-packs an archive), so a failure changes nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::archive;
use super::error::{ImageError, Result};
use super::layout::Layout;
use super::manifest::{Descriptor, Index, ANN_REF_NAME};
use super::reference::ImageRef;
use super::stage::Stage;
use super::store::{self, StoreLock};

/// An image to read.
#[derive(Debug)]
pub struct Source {
    layout: Layout,
    image: String,
    tag: Option<String>,
    /// The entry a store name resolved to (under the lock below).
    pinned: Option<Descriptor>,
    _extracted: Option<TempDir>,
    _lock: Option<StoreLock>,
}

/// The tags of an index, for messages.
fn list_tags(index: &Index) -> String {
    let tags: Vec<String> = index
        .manifests
        .iter()
        .map(|d| match d.ref_name() {
            Some(t) => t.to_string(),
            None => format!("untagged {}", d.digest.short()),
        })
        .collect();
    if tags.is_empty() {
        "none".into()
    } else {
        tags.join(", ")
    }
}

impl Source {
    /// Open the layout (extracting an archive into a temp directory first).
    pub fn open(r: &ImageRef) -> Result<Self> {
        let (mut pinned, mut lock) = (None, None);
        let (layout, extracted) = match r {
            ImageRef::Oci { path, .. } => (Layout::open(path)?, None),
            ImageRef::OciArchive { path, .. } => {
                if !path.is_file() {
                    return Err(ImageError::io_at(
                        path,
                        io::Error::new(io::ErrorKind::NotFound, "no such archive"),
                    ));
                }
                let temp = tempfile::Builder::new()
                    .prefix("rrun-oci-archive-")
                    .tempdir()
                    .map_err(|e| ImageError::io_at(std::env::temp_dir(), e))?;
                archive::extract(path, temp.path())?;
                let layout = Layout::open(temp.path()).map_err(|e| match e {
                    ImageError::NotALayout { .. } => ImageError::NotALayout { path: path.clone() },
                    other => other,
                })?;
                (layout, Some(temp))
            }
            ImageRef::Store { root, name } => {
                let (layout, entry, guard) = store::open_source(root, name)?;
                (pinned, lock) = (Some(entry), Some(guard));
                (layout, None)
            }
            ImageRef::Docker(reference) => {
                return Err(ImageError::DockerNotSupported {
                    reference: reference.to_string(),
                })
            }
        };
        Ok(Self {
            layout,
            image: r.to_string(),
            tag: r.tag().map(str::to_string),
            pinned,
            _extracted: extracted,
            _lock: lock,
        })
    }

    /// The layout the image is in.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The reference, for messages.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The `index.json` entry the reference names: the one with the tag, or the only one.
    pub fn resolve(&self) -> Result<Descriptor> {
        if let Some(entry) = &self.pinned {
            return Ok(entry.clone());
        }
        let index = self.layout.read_index()?;
        resolve_in(&index, &self.image, self.tag.as_deref())
    }
}

/// Pick the entry of `index` named by `tag` (or the only entry when there is no tag).
pub fn resolve_in(index: &Index, image: &str, tag: Option<&str>) -> Result<Descriptor> {
    match tag {
        Some(tag) => {
            let found: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| d.ref_name() == Some(tag))
                .collect();
            let Some(first) = found.first() else {
                return Err(ImageError::TagNotFound {
                    image: image.to_string(),
                    tag: tag.to_string(),
                    available: list_tags(index),
                });
            };
            if found.iter().any(|d| d.digest != first.digest) {
                return Err(ImageError::malformed(
                    format!("index.json of {image}"),
                    format!("tag {tag:?} names several different images"),
                ));
            }
            Ok((*first).clone())
        }
        None => match index.manifests.as_slice() {
            [] => Err(ImageError::malformed(
                format!("index.json of {image}"),
                "it lists no image",
            )),
            [only] => Ok(only.clone()),
            _ => Err(ImageError::AmbiguousImage {
                image: image.to_string(),
                tags: list_tags(index),
            }),
        },
    }
}

/// Put `desc` into `index` under `tag`: it replaces the entry with the same tag (in place), or
/// without a tag is added unless an untagged entry for the same digest exists.
pub fn put_entry(index: &mut Index, mut desc: Descriptor, tag: Option<&str>) {
    let mut annotations = desc.annotations();
    annotations.remove(ANN_REF_NAME);
    match tag {
        Some(tag) => {
            annotations.insert(ANN_REF_NAME.into(), tag.into());
            desc.set_annotations(annotations);
            match index
                .manifests
                .iter()
                .position(|d| d.ref_name() == Some(tag))
            {
                Some(pos) => {
                    index.manifests[pos] = desc;
                    let mut i = 0;
                    index.manifests.retain(|d| {
                        i += 1;
                        i - 1 == pos || d.ref_name() != Some(tag)
                    });
                }
                None => index.manifests.push(desc),
            }
        }
        None => {
            desc.set_annotations(annotations);
            let exists = index
                .manifests
                .iter()
                .any(|d| d.ref_name().is_none() && d.digest == desc.digest);
            if !exists {
                index.manifests.push(desc);
            }
        }
    }
}

/// An archive to write when the destination is committed.
#[derive(Debug)]
struct ArchiveOut {
    path: PathBuf,
    temp: TempDir,
}

/// Directories created for a destination, removed again unless disarmed.
#[derive(Debug, Default)]
struct CreatedDirs(Option<PathBuf>);

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        if let Some(top) = self.0.take() {
            let _ = fs::remove_dir_all(top);
        }
    }
}

/// An image being written.
#[derive(Debug)]
pub struct Destination {
    // Field order is drop order: staged blobs go first, then the archive's temp directory,
    // then any parent directories created for the archive, then the store lock.
    stage: Stage,
    archive: Option<ArchiveOut>,
    created: CreatedDirs,
    tag: Option<String>,
    image: String,
    lock: Option<StoreLock>,
}

/// Create the missing parents of `path`; return the topmost one created.
fn create_parents(path: &Path) -> Result<CreatedDirs> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(CreatedDirs(None));
    };
    if parent.exists() {
        return Ok(CreatedDirs(None));
    }
    let mut top = parent.to_path_buf();
    while let Some(p) = top.parent() {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        top = p.to_path_buf();
    }
    fs::create_dir_all(parent).map_err(|e| ImageError::io_at(parent, e))?;
    Ok(CreatedDirs(Some(top)))
}

impl Destination {
    /// Prepare to write to `r`: an `oci:` layout is opened or created; an `oci-archive:` is
    /// built in a temp directory next to it, starting from its current content if it exists.
    pub fn open(r: &ImageRef) -> Result<Self> {
        let tag = r.tag().map(str::to_string);
        let image = r.to_string();
        match r {
            ImageRef::Oci { path, .. } => Ok(Self {
                stage: Stage::open_or_create(path)?,
                archive: None,
                created: CreatedDirs::default(),
                tag,
                image,
                lock: None,
            }),
            ImageRef::Store { root, name } => {
                let (stage, ref_name, lock) = store::open_destination(root, name)?;
                Ok(Self {
                    stage,
                    archive: None,
                    created: CreatedDirs::default(),
                    tag: Some(ref_name),
                    image,
                    lock: Some(lock),
                })
            }
            ImageRef::Docker(reference) => Err(ImageError::DockerNotSupported {
                reference: reference.to_string(),
            }),
            ImageRef::OciArchive { path, .. } => {
                if path.is_dir() {
                    return Err(ImageError::io_at(
                        path,
                        io::Error::other("is a directory; an oci-archive destination is a file"),
                    ));
                }
                let created = create_parents(path)?;
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let temp = tempfile::Builder::new()
                    .prefix(".rrun-tmp-archive-")
                    .tempdir_in(&dir)
                    .map_err(|e| ImageError::io_at(&dir, e))?;
                let root = temp.path().join("layout");
                if path.is_file() {
                    fs::create_dir(&root).map_err(|e| ImageError::io_at(&root, e))?;
                    archive::extract(path, &root)?;
                    Layout::open(&root).map_err(|e| match e {
                        ImageError::NotALayout { .. } => {
                            ImageError::NotALayout { path: path.clone() }
                        }
                        other => other,
                    })?;
                }
                Ok(Self {
                    stage: Stage::open_or_create(&root)?,
                    archive: Some(ArchiveOut {
                        path: path.clone(),
                        temp,
                    }),
                    created,
                    tag,
                    image,
                    lock: None,
                })
            }
        }
    }

    /// The staged writes.
    pub fn stage(&mut self) -> &mut Stage {
        &mut self.stage
    }

    /// The layout being written.
    pub fn layout(&self) -> &Layout {
        self.stage.layout()
    }

    /// The reference, for messages.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Record `top` in `index.json` under the destination tag and make everything permanent.
    pub fn commit(self, top: Descriptor) -> Result<()> {
        let Self {
            stage,
            archive,
            mut created,
            tag,
            lock,
            ..
        } = self;
        stage.commit(|mut index| {
            put_entry(&mut index, top, tag.as_deref());
            index
        })?;
        if let Some(out) = &archive {
            archive::pack(&out.temp.path().join("layout"), &out.path)?;
        }
        created.0 = None;
        drop(lock);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::Digest;

    fn d(data: &[u8], tag: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(
            crate::image::media_type::OCI_MANIFEST,
            Digest::of_bytes(data),
            data.len() as u64,
        );
        if let Some(t) = tag {
            let mut a = d.annotations();
            a.insert(ANN_REF_NAME.into(), t.into());
            d.set_annotations(a);
        }
        d
    }

    #[test]
    fn resolve_by_tag_or_single_entry() {
        let mut index = Index::empty();
        index.manifests.push(d(b"1", Some("latest")));
        assert_eq!(
            resolve_in(&index, "oci:x", None).unwrap(),
            index.manifests[0]
        );
        index.manifests.push(d(b"2", Some("v2")));
        index.manifests.push(d(b"3", None));
        assert_eq!(
            resolve_in(&index, "oci:x", Some("v2")).unwrap(),
            index.manifests[1]
        );
        let err = resolve_in(&index, "oci:x", None).unwrap_err();
        assert!(matches!(err, ImageError::AmbiguousImage { .. }));
        let msg = err.to_string();
        assert!(msg.contains("latest, v2, untagged sha256:"), "{msg}");
        let err = resolve_in(&index, "oci:x", Some("nope")).unwrap_err();
        assert!(matches!(err, ImageError::TagNotFound { .. }));
        assert!(err.to_string().contains("latest, v2"), "{err}");
        index.manifests.push(d(b"4", Some("v2")));
        assert!(resolve_in(&index, "oci:x", Some("v2")).is_err());
        assert!(resolve_in(&Index::empty(), "oci:x", None).is_err());
    }

    #[test]
    fn put_entry_replaces_the_same_tag_in_place() {
        let mut index = Index::empty();
        put_entry(&mut index, d(b"1", None), Some("a"));
        put_entry(&mut index, d(b"2", None), Some("b"));
        put_entry(&mut index, d(b"3", Some("old-name")), Some("a"));
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(index.manifests[0].digest, Digest::of_bytes(b"3"));
        assert_eq!(index.manifests[0].ref_name(), Some("a"));
        assert_eq!(index.manifests[1].ref_name(), Some("b"));
        put_entry(&mut index, d(b"4", Some("x")), None);
        put_entry(&mut index, d(b"4", None), None);
        assert_eq!(index.manifests.len(), 3);
        assert_eq!(index.manifests[2].ref_name(), None);
        assert!(index.manifests[2].annotations.is_none());
    }
}

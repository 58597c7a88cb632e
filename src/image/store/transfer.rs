//! Images in and out of the store: how `transport` reads and writes store names (under the
//! store lock), a verified copy between any two image references, and `image save`/`load`.

use std::path::Path;

use crate::image::error::{ImageError, Result};
use crate::image::layout::Layout;
use crate::image::manifest::Descriptor;
use crate::image::media_type::{self, LayerKind};
use crate::image::name::Reference;
use crate::image::reference::ImageRef;
use crate::image::stage::Stage;
use crate::image::transport::{Destination, Source};
use crate::image::tree::{self, TreeNode};

use super::lock::{LockMode, StoreLock};
use super::resolve::{parse_new_name, store_name};
use super::Store;

/// For `transport::Source`: the store's layout, the entry `name` resolves to, and a shared
/// lock to hold while the image is read.
pub(crate) fn open_source(root: &Path, name: &str) -> Result<(Layout, Descriptor, StoreLock)> {
    let store = Store::open_existing(root)?;
    let lock = store.lock(LockMode::Shared)?;
    let entry = store.resolve(name)?;
    Ok((store.layout().clone(), entry, lock))
}

/// For `transport::Destination`: a stage on the store's layout, the `ref.name` to record, and
/// the exclusive lock to hold until the destination is committed or dropped.
pub(crate) fn open_destination(root: &Path, name: &str) -> Result<(Stage, String, StoreLock)> {
    let reference = parse_new_name(name)?;
    let store = Store::open(root)?;
    let lock = store.lock(LockMode::Exclusive)?;
    // A corrupted index.json is reported now, in the store's words, before any blob is written.
    store.read_index()?;
    let stage = Stage::open_or_create(root)?;
    Ok((stage, store_name(&reference), lock))
}

/// Copy the image `src` names into `dst` (layouts, archives and store names on either side),
/// every blob verified on the way; returns the image's top descriptor.
pub fn copy_image(src: &ImageRef, dst: &ImageRef) -> Result<Descriptor> {
    let source = Source::open(src)?;
    let top = source.resolve()?;
    copy_resolved(&source, &top, dst)?;
    Ok(top)
}

fn copy_resolved(source: &Source, top: &Descriptor, dst: &ImageRef) -> Result<()> {
    let tree = tree::load(source.layout(), top)?;
    let mut dest = Destination::open(dst)?;
    copy_node(&tree, source.layout(), dest.stage())?;
    dest.commit(top.clone())
}

fn copy_node(node: &TreeNode, src: &Layout, stage: &mut Stage) -> Result<()> {
    match node {
        TreeNode::Manifest(m) => {
            let config = &m.manifest.config;
            stage.copy_blob(src, config, &format!("config {}", config.digest))?;
            for layer in &m.manifest.layers {
                // A foreign layer is fetched from its URLs and need not be stored.
                let foreign = layer.urls.as_ref().is_some_and(|u| !u.is_empty())
                    && !src.has_blob(&layer.digest)
                    && media_type::layer_kind(&layer.media_type)? == LayerKind::PassThrough;
                if !foreign {
                    stage.copy_blob(src, layer, &format!("layer {}", layer.digest))?;
                }
            }
            stage.put_bytes(&m.raw)?;
        }
        TreeNode::Index(ix) => {
            for child in &ix.children {
                copy_node(child, src, stage)?;
            }
            stage.put_bytes(&ix.raw)?;
        }
    }
    Ok(())
}

/// Refuse anything but `oci:` and `oci-archive:` for save and load.
fn layout_only(r: &ImageRef, verb: &str) -> Result<()> {
    match r {
        ImageRef::Oci { .. } | ImageRef::OciArchive { .. } => Ok(()),
        other => Err(ImageError::InvalidReference {
            reference: other.to_string(),
            reason: format!("image {verb} works with oci:PATH[:TAG] or oci-archive:PATH[:TAG]"),
        }),
    }
}

impl Store {
    /// `image save`: copy the image `name` to an `oci:` layout or `oci-archive:`. Without a
    /// tag in `dst` the image is tagged there with its store name, so `load` gets it back.
    pub fn save(&self, name: &str, dst: &ImageRef) -> Result<Descriptor> {
        layout_only(dst, "save")?;
        let source = Source::open(&ImageRef::Store {
            root: self.root().to_path_buf(),
            name: name.to_string(),
        })?;
        let top = source.resolve()?;
        let default_tag = top.ref_name().map(str::to_string);
        let dst = match dst.clone() {
            ImageRef::Oci { path, tag } => ImageRef::Oci {
                path,
                tag: tag.or(default_tag),
            },
            ImageRef::OciArchive { path, tag } => ImageRef::OciArchive {
                path,
                tag: tag.or(default_tag),
            },
            other => other,
        };
        copy_resolved(&source, &top, &dst)?;
        Ok(top)
    }

    /// `image load`: copy the image `src` names (an `oci:` layout or `oci-archive:`) into the
    /// store as `name`, or under its tag there when that is an image name
    /// (`docker.io/library/busybox:latest`, `app:1`). Returns the store name and the entry.
    pub fn load(&self, src: &ImageRef, name: Option<&str>) -> Result<(String, Descriptor)> {
        layout_only(src, "load")?;
        let given = name.map(parse_new_name).transpose()?;
        let source = Source::open(src)?;
        let top = source.resolve()?;
        let reference = match given {
            Some(r) => r,
            None => tag_as_name(src, top.ref_name())?,
        };
        copy_resolved(&source, &top, &ImageRef::store(self.root(), &reference))?;
        Ok((store_name(&reference), top))
    }
}

/// The image name a loaded image's tag gives: only a tag that looks like a name (holds a `/`
/// or `:`), since a bare `latest` or `v1` says nothing about the repository.
fn tag_as_name(src: &ImageRef, tag: Option<&str>) -> Result<Reference> {
    let refuse = |reason: String| ImageError::InvalidImageName {
        name: tag.unwrap_or_default().to_string(),
        reason,
    };
    let Some(tag) = tag else {
        return Err(refuse(format!(
            "the image in {src} has no tag to name it by: give a NAME"
        )));
    };
    if !tag.contains(['/', ':']) {
        return Err(refuse(format!(
            "the tag in {src} is not an image name: give a NAME (for example {tag}:latest or example.com/{tag})"
        )));
    }
    parse_new_name(tag).map_err(|e| {
        refuse(format!(
            "the tag in {src} is not an image name ({e}): give a NAME"
        ))
    })
}

//! Names of stored images: `tag` adds one, `remove` (rmi) takes names away; an image with no
//! name left is no longer in `index.json` and its blobs wait for `image prune`.

use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::manifest::Descriptor;
use crate::image::name::Reference;
use crate::image::transport::put_entry;

use super::resolve::{names_of, parse_new_name, resolve_in, store_name};
use super::Store;

/// What `remove` did for one argument.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    /// The names taken away.
    pub untagged: Vec<String>,
    /// The image id, when its last name went (the image left the store's index).
    pub deleted: Option<Digest>,
}

/// True when `arg` named `entry` by one of its names rather than by id or digest.
fn named_by_name(arg: &str, entry: &Descriptor) -> bool {
    let Some(name) = entry.ref_name() else {
        return false;
    };
    name == arg
        || arg
            .parse::<Reference>()
            .is_ok_and(|r| r.digest().is_none() && r.to_string() == name)
}

impl Store {
    /// Give the image `src` (any form [`Store::resolve`] takes) the name `dst`; an image that
    /// had that name loses it. Returns the image's entry.
    pub fn tag(&self, src: &str, dst: &str) -> Result<Descriptor> {
        let reference = parse_new_name(dst)?;
        if reference.digest().is_some() {
            return Err(ImageError::InvalidImageName {
                name: dst.to_string(),
                reason: "a tag cannot hold a digest; give REPOSITORY[:TAG]".into(),
            });
        }
        let name = store_name(&reference);
        let root = self.root().to_path_buf();
        self.edit_index(|index| {
            let entry = resolve_in(index, src, &root)?;
            put_entry(index, entry.clone(), Some(&name));
            Ok(entry)
        })
    }

    /// `rmi`: remove each image name in `args`, or all names of an image given by id (an
    /// image with several names only with `force`). All or nothing: if one argument fails,
    /// nothing is removed. Blobs stay until [`Store::prune`].
    pub fn remove(&self, args: &[&str], force: bool) -> Result<Vec<Removed>> {
        let root = self.root().to_path_buf();
        self.edit_index(|index| {
            let mut out = Vec::new();
            for arg in args {
                let entry = resolve_in(index, arg, &root)?;
                let untagged = if named_by_name(arg, &entry) {
                    let name = entry.ref_name().unwrap_or_default().to_string();
                    index
                        .manifests
                        .retain(|d| d.ref_name() != Some(name.as_str()));
                    vec![name]
                } else {
                    let names = names_of(index, &entry);
                    if names.len() > 1 && !force {
                        return Err(ImageError::ImageHasNames {
                            id: entry.digest.hex()[..12].to_string(),
                            names: names.join(", "),
                        });
                    }
                    index.manifests.retain(|d| d.digest != entry.digest);
                    names
                };
                let gone = !index.manifests.iter().any(|d| d.digest == entry.digest);
                out.push(Removed {
                    untagged,
                    deleted: gone.then(|| entry.digest.clone()),
                });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_count_as_names() {
        let mut d = Descriptor::new(
            crate::image::media_type::OCI_MANIFEST,
            Digest::of_bytes(b"x"),
            1,
        );
        let mut a = d.annotations();
        a.insert(
            crate::image::manifest::ANN_REF_NAME.into(),
            "docker.io/library/busybox:latest".into(),
        );
        d.set_annotations(a);
        assert!(named_by_name("busybox", &d));
        assert!(named_by_name("docker.io/library/busybox:latest", &d));
        assert!(!named_by_name(&d.digest.hex()[..12], &d));
        assert!(!named_by_name(&format!("busybox@{}", d.digest), &d));
    }
}

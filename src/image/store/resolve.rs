//! Which stored image an argument names: an exact `ref.name`, a full image id, a docker name
//! (normalised: `busybox` is `docker.io/library/busybox:latest`), or a unique id prefix; and
//! the `ref.name` a new image gets.

use std::collections::BTreeSet;
use std::path::Path;

use crate::image::error::{ImageError, Result};
use crate::image::manifest::{Descriptor, Index};
use crate::image::name::Reference;

/// Id prefixes shorter than this are not looked up (a short word is more likely a name).
pub const MIN_ID_PREFIX: usize = 3;

/// The `ref.name` an image stored as `r` gets: the full normalised name with its tag; the
/// digest is dropped unless it is all there is (`domain/repo@sha256:...`).
pub fn store_name(r: &Reference) -> String {
    match r.tag() {
        Some(tag) => format!("{}:{tag}", r.name()),
        None => r.to_string(),
    }
}

/// Parse a name for a new or moved image; image ids cannot be names.
pub fn parse_new_name(name: &str) -> Result<Reference> {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if hex.len() == 64 && is_hex(hex) {
        return Err(ImageError::InvalidImageName {
            name: name.to_string(),
            reason: "an image id cannot be used as a name; give REPOSITORY[:TAG]".into(),
        });
    }
    name.parse::<Reference>()
        .map_err(|e| ImageError::InvalidImageName {
            name: name.to_string(),
            reason: match e {
                ImageError::InvalidReference { reason, .. } => reason,
                other => other.to_string(),
            },
        })
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The names of the image with the digest of `entry`, sorted.
pub fn names_of(index: &Index, entry: &Descriptor) -> Vec<String> {
    let names: BTreeSet<&str> = index
        .manifests
        .iter()
        .filter(|d| d.digest == entry.digest)
        .filter_map(Descriptor::ref_name)
        .collect();
    names.into_iter().map(str::to_string).collect()
}

/// Find the `index.json` entry `arg` names (see the module doc for the order of the rules).
pub fn resolve_in(index: &Index, arg: &str, root: &Path) -> Result<Descriptor> {
    let entries = &index.manifests;
    let first = |pred: &dyn Fn(&Descriptor) -> bool| entries.iter().find(|d| pred(d)).cloned();
    let not_found = || ImageError::ImageNotFound {
        name: arg.to_string(),
        root: root.to_path_buf(),
    };
    if let Some(d) = first(&|d| d.ref_name() == Some(arg)) {
        return Ok(d);
    }
    let hex = arg.strip_prefix("sha256:").unwrap_or(arg);
    let id_like = is_hex(hex) && hex.len() >= MIN_ID_PREFIX;
    if id_like && hex.len() == 64 {
        return first(&|d| d.digest.hex() == hex).ok_or_else(not_found);
    }
    if let Ok(r) = arg.parse::<Reference>() {
        let found = match r.digest() {
            Some(digest) => first(&|d| {
                d.digest == *digest
                    && d.ref_name()
                        .and_then(|n| n.parse::<Reference>().ok())
                        .is_some_and(|n| n.name() == r.name())
            })
            .or_else(|| first(&|d| d.digest == *digest)),
            None => {
                let full = r.to_string();
                first(&|d| d.ref_name() == Some(full.as_str()))
            }
        };
        if let Some(d) = found {
            return Ok(d);
        }
    }
    if !id_like {
        return Err(not_found());
    }
    let matching: BTreeSet<&str> = entries
        .iter()
        .map(|d| d.digest.hex())
        .filter(|h| h.starts_with(hex))
        .collect();
    match matching.len() {
        0 => Err(not_found()),
        1 => first(&|d| d.digest.hex().starts_with(hex)).ok_or_else(not_found),
        _ => Err(ImageError::AmbiguousImageId {
            prefix: arg.to_string(),
            candidates: matching
                .iter()
                .map(|h| &h[..(hex.len() + 4).clamp(12, 64)])
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

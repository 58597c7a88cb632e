//! A runnable root filesystem from a stored image (DESIGN.md section 2, `run` steps 1-3).
//!
//! [`RunImage::open`] resolves the image in the store and reads its manifest for the platform
//! and its config; [`RunImage::authorize`] is the key gate of `run`: the keys must unwrap the
//! key of every encrypted layer, before anything is decrypted or mounted; [`RunImage::assemble`]
//! mounts an overlay at `<dir>/rootfs`:
//!
//! * plain image: the lower dirs are the layers' snapshots (made once, under the store), the
//!   upper and work dirs are `<dir>/upper` and `<dir>/work`;
//! * image with encrypted layers (sealed mode): a private tmpfs at `<dir>/sealed` holds each
//!   encrypted layer, streamed from the store through decryption, decompression and the safe
//!   unpacker without any plaintext touching a disk, and the upper and work dirs; plain layers
//!   of the image still come from snapshots.
//!
//! The caller hands [`Assembled::mounts`] to the runtime, which unmounts them (in that order)
//! when the container is removed, and removes `dir` with them.

mod error;
mod mount;

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use crate::crypto::layer as crypto_layer;
use crate::crypto::options::PrivateOptions;
use crate::crypto::{CryptoError, DecryptConfig};
use crate::image::digest::Digest;
use crate::image::error::{ImageError, LockedLayer};
use crate::image::layout::MAX_CONFIG_SIZE;
use crate::image::manifest::{ContainerConfig, Descriptor, ImageConfig, Manifest};
use crate::image::media_type::{self, LayerKind};
use crate::image::platform::Platform;
use crate::image::store::{LockMode, Store};
use crate::image::tree;
use crate::image::unpack::{self, Durability, UnpackOptions};

pub use error::{Result, RootfsError};

/// A stored image, read for running.
#[derive(Debug)]
pub struct RunImage {
    store: Store,
    name: String,
    manifest: Manifest,
    config: ImageConfig,
}

/// The layer keys the gate unwrapped, by layer digest. Zeroized when dropped.
#[derive(Debug, Default)]
pub struct Authorization {
    keys: BTreeMap<Digest, PrivateOptions>,
}

/// A mounted root filesystem.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The container's root: the overlay mount point, `<dir>/rootfs`.
    pub rootfs: PathBuf,
    /// What to unmount, in order, when the container goes.
    pub mounts: Vec<PathBuf>,
    /// The per-container directory (removed after the unmounts).
    pub dir: PathBuf,
    /// True when encrypted layers live in the private tmpfs.
    pub sealed: bool,
}

impl Assembled {
    /// Unmount and remove everything (for a run that failed before the runtime took over).
    pub fn teardown(&self) {
        teardown(&self.mounts, &self.dir);
    }
}

/// Unmount `mounts` in order, then remove `dir` when every unmount worked.
fn teardown(mounts: &[PathBuf], dir: &Path) {
    let unmounted = mounts.iter().all(|m| mount::unmount(m).is_ok());
    if unmounted {
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl RunImage {
    /// Resolve `name` in the store at `root` and read its manifest for `platform` (default:
    /// this host) and its config.
    pub fn open(root: &Path, name: &str, platform: Option<&Platform>) -> Result<Self> {
        let store = Store::open_existing(root).map_err(|e| match e {
            ImageError::NoStore { .. } => ImageError::ImageNotFound {
                name: name.to_string(),
                root: root.to_path_buf(),
            },
            other => other,
        })?;
        let entry = store.resolve(name)?;
        let _lock = store.lock(LockMode::Shared)?;
        let tree = tree::load(store.layout(), &entry)?;
        let wanted = platform.cloned().unwrap_or_else(Platform::host);
        let manifests = tree.manifests();
        let node = manifests
            .iter()
            .find(|m| wanted.matches(&m.platform))
            .ok_or_else(|| ImageError::NoMatchingPlatform {
                image: name.to_string(),
                wanted: wanted.to_string(),
                available: manifests
                    .iter()
                    .map(|m| m.platform.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let manifest = node.manifest.clone();
        let what = format!("config {} of {name}", manifest.config.digest);
        if manifest.config.media_type != media_type::OCI_CONFIG
            && manifest.config.media_type != media_type::DOCKER_CONFIG
        {
            return Err(ImageError::malformed(
                &what,
                format!(
                    "media type {} is not an image config: this is not a runnable image",
                    manifest.config.media_type
                ),
            )
            .into());
        }
        let raw = store
            .layout()
            .read_blob(&manifest.config, MAX_CONFIG_SIZE, &what)?;
        let config: ImageConfig = serde_json::from_slice(&raw)
            .map_err(|e| ImageError::malformed(&what, e.to_string()))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::malformed(
                &what,
                format!(
                    "{} rootfs.diff_ids for {} layers: the image cannot be unpacked safely",
                    config.rootfs.diff_ids.len(),
                    manifest.layers.len()
                ),
            )
            .into());
        }
        Ok(RunImage {
            store,
            name: name.to_string(),
            manifest,
            config,
        })
    }

    /// The image's `config` object (Entrypoint, Cmd, Env, WorkingDir, User...).
    pub fn container_config(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }

    /// The layers with ocicrypt encryption.
    pub fn encrypted_layers(&self) -> Vec<&Descriptor> {
        self.manifest
            .layers
            .iter()
            .filter(|l| {
                matches!(
                    media_type::layer_kind(&l.media_type),
                    Ok(LayerKind::Encrypted { .. })
                )
            })
            .collect()
    }

    /// The key gate of `run`: unwrap the key of every encrypted layer with `keys`, reading no
    /// layer data. Any layer no key opens: [`RootfsError::NotAuthorized`] naming all of them.
    pub fn authorize(&self, keys: &DecryptConfig) -> Result<Authorization> {
        let mut auth = Authorization::default();
        let mut locked = Vec::new();
        for layer in self.encrypted_layers() {
            if auth.keys.contains_key(&layer.digest) {
                continue;
            }
            let annotations = layer.annotations();
            let name = layer.digest.to_string();
            let opened = crypto_layer::public_options(&annotations)
                .and_then(|_| crypto_layer::unwrap_layer(keys, &name, &annotations));
            match opened {
                Ok(opts) => {
                    auth.keys.insert(layer.digest.clone(), opts);
                }
                Err(e) => locked.push(LockedLayer {
                    layer: name,
                    schemes: crypto_layer::schemes(&annotations),
                    reason: match e {
                        CryptoError::NoKeyForLayer { .. } => {
                            "none of the given keys is a recipient".into()
                        }
                        CryptoError::MissingPrivateKey => "no --key was given".into(),
                        other => other.to_string(),
                    },
                }),
            }
        }
        if locked.is_empty() {
            Ok(auth)
        } else {
            Err(RootfsError::NotAuthorized {
                image: self.name.clone(),
                layers: locked,
            })
        }
    }

    /// Mount the root filesystem under `dir` (created here, mode 0700; it must not exist).
    /// On error nothing stays mounted and `dir` is removed.
    pub fn assemble(&self, auth: &Authorization, dir: &Path) -> Result<Assembled> {
        std::fs::DirBuilder::new()
            .recursive(false)
            .mode(0o700)
            .create(dir)
            .map_err(|e| ImageError::io_at(dir, e))?;
        let sealed = !self.encrypted_layers().is_empty();
        let mut mounts = Vec::new();
        let result = self.mount_all(auth, dir, sealed, &mut mounts);
        match result {
            Ok(rootfs) => Ok(Assembled {
                rootfs,
                mounts,
                dir: dir.to_path_buf(),
                sealed,
            }),
            Err(e) => {
                teardown(&mounts, dir);
                Err(e)
            }
        }
    }

    /// The body of [`Self::assemble`]: `mounts` collects what was mounted, in unmount order.
    fn mount_all(
        &self,
        auth: &Authorization,
        dir: &Path,
        sealed: bool,
        mounts: &mut Vec<PathBuf>,
    ) -> Result<PathBuf> {
        let private = if sealed {
            let tmpfs = dir.join("sealed");
            mkdir(&tmpfs)?;
            mount::sealed_tmpfs(&tmpfs)?;
            mounts.push(tmpfs.clone());
            tmpfs
        } else {
            dir.to_path_buf()
        };
        let (upper, work) = (private.join("upper"), private.join("work"));
        mkdir(&upper)?;
        mkdir(&work)?;
        // Snapshots must not be pruned while they are found or made.
        let _lock = self.store.lock(LockMode::Shared)?;
        let mut lowers = Vec::new();
        for (i, layer) in self.manifest.layers.iter().enumerate() {
            let diff_id = &self.config.rootfs.diff_ids[i];
            lowers.push(match media_type::layer_kind(&layer.media_type)? {
                LayerKind::Plain { .. } => self.snapshot(layer, diff_id)?,
                LayerKind::Encrypted { plain } => {
                    let layers = private.join("layers");
                    if !layers.exists() {
                        mkdir(&layers)?;
                    }
                    let dest = layers.join(i.to_string());
                    self.unpack_sealed(auth, layer, plain, diff_id, &dest)?;
                    dest
                }
                LayerKind::PassThrough => {
                    return Err(RootfsError::UnsupportedLayer {
                        image: self.name.clone(),
                        layer: layer.digest.to_string(),
                        media_type: layer.media_type.clone(),
                    })
                }
            });
        }
        if lowers.is_empty() {
            let empty = dir.join("empty");
            mkdir(&empty)?;
            lowers.push(empty);
        }
        lowers.reverse();
        let rootfs = dir.join("rootfs");
        mkdir(&rootfs)?;
        mount::overlay(&lowers, &upper, &work, &rootfs)?;
        mounts.insert(0, rootfs.clone());
        Ok(rootfs)
    }

    /// The snapshot of a plain layer, made now if missing.
    fn snapshot(&self, layer: &Descriptor, diff_id: &Digest) -> Result<PathBuf> {
        let layout = self.store.layout();
        let what = format!("layer {} of {}", layer.digest, self.name);
        Ok(unpack::ensure_snapshot(self.store.root(), diff_id, || {
            let reader = layout.open_blob(layer, &what)?;
            Ok((
                Box::new(reader) as Box<dyn std::io::Read>,
                layer.media_type.clone(),
            ))
        })?)
    }

    /// Stream an encrypted layer from the store through decryption (HMAC checked at the end),
    /// decompression and the safe unpacker into `dest`, inside the sealed tmpfs; the diff_id
    /// of the plaintext tar must be the config's.
    fn unpack_sealed(
        &self,
        auth: &Authorization,
        layer: &Descriptor,
        plain_type: &str,
        diff_id: &Digest,
        dest: &Path,
    ) -> Result<()> {
        let opts = auth
            .keys
            .get(&layer.digest)
            .ok_or_else(|| RootfsError::NotAuthorized {
                image: self.name.clone(),
                layers: vec![LockedLayer {
                    layer: layer.digest.to_string(),
                    schemes: crypto_layer::schemes(&layer.annotations()),
                    reason: "its key was not unwrapped".into(),
                }],
            })?;
        let what = format!("layer {} of {}", layer.digest, self.name);
        let blob = self.store.layout().open_blob(layer, &what)?;
        let plain = crypto_layer::decrypt_reader(opts, &layer.annotations(), blob)
            .map_err(ImageError::from)?;
        let uo = UnpackOptions {
            diff_id: Some(diff_id.clone()),
            durability: Durability::NoSync,
            ..UnpackOptions::default()
        };
        match unpack::unpack_layer(plain, plain_type, dest, &uo) {
            Ok(_) => Ok(()),
            Err(e) => Err(match crypto_cause(e) {
                Ok(source) => RootfsError::Decrypt {
                    image: self.name.clone(),
                    layer: layer.digest.to_string(),
                    source,
                },
                Err(e) => e.into(),
            }),
        }
    }
}

/// The crypto failure behind an unpack error (the decrypting reader reports it as an i/o
/// error of the stream), or the error as it was.
fn crypto_cause(e: ImageError) -> std::result::Result<CryptoError, ImageError> {
    match e {
        ImageError::Crypto(c) => Ok(c),
        ImageError::Io(io) if io.get_ref().is_some_and(|r| r.is::<CryptoError>()) => {
            let kind = io.kind();
            match io.into_inner().map(|b| b.downcast::<CryptoError>()) {
                Some(Ok(c)) => Ok(*c),
                _ => Err(ImageError::Io(std::io::Error::from(kind))),
            }
        }
        other => Err(other),
    }
}

/// Create a private directory.
fn mkdir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| ImageError::io_at(dir, e).into())
}

//! One handler per verb, and the resolution of raw arguments they share.

pub mod decrypt;
pub mod encrypt;
pub mod import;
pub mod layerinfo;

use anyhow::Context as _;

use rrun::crypto::DecryptConfig;
use rrun::image::crypt::LayerFilter;
use rrun::image::platform::Platform;
use rrun::image::reference::ImageRef;

use super::args::{FilterArgs, KeyArgs};
use super::log;

/// Parse an image argument.
pub fn image_ref(arg: &str) -> anyhow::Result<ImageRef> {
    arg.parse::<ImageRef>().map_err(anyhow::Error::from)
}

/// Parse a platform argument.
pub fn platform(arg: &str) -> anyhow::Result<Platform> {
    arg.parse::<Platform>().with_context(|| {
        format!("invalid platform {arg:?}: use os/arch[/variant], e.g. linux/amd64")
    })
}

/// Resolve `--layer` and `--platform`.
pub fn filter(args: &FilterArgs) -> anyhow::Result<LayerFilter> {
    let platforms = args
        .platforms
        .iter()
        .map(|p| platform(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(LayerFilter {
        layers: args.layers.clone(),
        platforms,
    })
}

/// Load `--key` arguments, warning about key files every user can read.
pub fn decrypt_config(args: &KeyArgs) -> anyhow::Result<DecryptConfig> {
    let dc = DecryptConfig::from_specs(&args.keys)?;
    for key in dc.private_keys() {
        log::info(format!("loaded private key {key:?}"));
        if key.is_world_readable() {
            log::warn(format!(
                "{} is readable by every user of this machine; protect it with chmod 600",
                key.source().display()
            ));
        }
    }
    Ok(dc)
}

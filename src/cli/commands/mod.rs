//! One handler per verb, and the resolution of raw arguments they share.

pub mod decoder;
pub mod decrypt;
pub mod encrypt;
pub mod images;
pub mod import;
pub mod inspect;
pub mod layerinfo;
pub mod load;
pub mod prune;
pub mod rmi;
pub mod save;
pub mod tag;
pub mod trust;
pub mod trust_passphrase;
pub mod trust_sign;
pub mod trust_tuf;

// --- containers (runtime) ---
pub mod exec;
pub mod generate;
pub mod info;
pub mod kill;
pub mod logs;
pub mod ps;
pub mod rm;
pub mod run;
pub mod stop;

/// A container's exit status that `rrun` exits with (run, exec): not an rrun error.
#[derive(Debug)]
pub struct ContainerExit(pub u8);

impl std::fmt::Display for ContainerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the container exited with code {}", self.0)
    }
}

impl std::error::Error for ContainerExit {}

/// Return a container's exit code as the process's (0 is success).
pub fn container_exit(code: i32) -> anyhow::Result<()> {
    match code {
        0 => Ok(()),
        c => Err(ContainerExit((c & 0xff) as u8).into()),
    }
}
// --- end containers ---
pub mod login;
pub mod logout;
pub mod pull;
pub mod push;
pub mod transfer_progress;

use anyhow::Context as _;

use rrun::crypto::DecryptConfig;
use rrun::image::crypt::LayerFilter;
use rrun::image::platform::Platform;
use rrun::image::reference::ImageRef;
use rrun::image::store::Store;

use super::args::{FilterArgs, Globals, KeyArgs};
use super::log;

/// Parse an image argument; store names refer to the store at `--root`.
pub fn image_ref(arg: &str, globals: &Globals) -> anyhow::Result<ImageRef> {
    ImageRef::parse_in(arg, &globals.root).map_err(anyhow::Error::from)
}

/// Open the store at `--root` for a command that writes (creating it if needed).
pub fn store(globals: &Globals) -> anyhow::Result<Store> {
    Store::open(&globals.root)
        .with_context(|| format!("cannot open the image store at {}", globals.root.display()))
}

/// One line per row, columns padded to their widest cell and separated by three spaces.
pub fn write_table(
    out: &mut impl std::io::Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
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

/// Load `--key` arguments (and `--gpg-homedir`), warning about key files every user can read.
pub fn decrypt_config(args: &KeyArgs) -> anyhow::Result<DecryptConfig> {
    let dc = DecryptConfig::from_specs(&args.keys)?.with_gpg_homedir(args.gpg_homedir.clone());
    let world_readable = |path: &std::path::Path| {
        log::warn(format!(
            "{} is readable by every user of this machine; protect it with chmod 600",
            path.display()
        ))
    };
    for key in dc.private_keys() {
        log::info(format!("loaded private key {key:?}"));
        if key.is_world_readable() {
            world_readable(key.source());
        }
    }
    for keys in dc.gpg_keys() {
        log::info(format!("loaded gpg secret keys {keys:?}"));
        if keys.is_world_readable() {
            world_readable(keys.source());
        }
    }
    for cert in dc.certificates() {
        log::info(format!("loaded certificate {cert:?}"));
    }
    Ok(dc)
}

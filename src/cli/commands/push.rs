//! `rrun push`: push an image from the store (or an OCI layout) to a registry, optionally
//! encrypting its layers for recipients on the way out.

use anyhow::Context as _;

use rrun::crypto::EncryptConfig;
use rrun::image::crypt::LayerFilter;
use rrun::image::reference::ImageRef;
use rrun::image::registry::{self, PushOptions};

use super::pull::{client_options, registry_ref};
use super::transfer_progress::{count, TransferProgress};
use crate::cli::args::{Globals, PushArgs};

/// Run the command.
pub fn run(globals: &Globals, args: PushArgs) -> anyhow::Result<()> {
    let source = super::image_ref(&args.image, globals)?;
    let hint = match &source {
        ImageRef::Store { name, .. } => Some(registry_ref(name)?),
        _ => None,
    };
    rrun::image::transport::Source::open(&source)
        .and_then(|s| s.resolve())
        .with_context(|| {
            format!("cannot push {source}: pull or import it first, or give oci:PATH[:TAG]")
        })?;
    let dest = match (&args.dest, &hint) {
        (Some(d), _) => registry_ref(d)?,
        (None, Some(h)) => h.clone(),
        (None, None) => anyhow::bail!(
            "pushing {} needs a destination: rrun push {} REGISTRY/NAME[:TAG]",
            args.image,
            args.image
        ),
    };
    if args.recipients.is_empty() && !args.layers.is_empty() {
        anyhow::bail!("--layer selects layers to encrypt: give --recipient too");
    }
    if args.recipients.is_empty() && !args.keys.keys.is_empty() {
        anyhow::bail!(
            "--key opens already encrypted layers to add --recipient to them: give --recipient too"
        );
    }
    let ec = if args.recipients.is_empty() {
        None
    } else {
        let dc = super::decrypt_config(&args.keys)?;
        Some(EncryptConfig::from_specs(&args.recipients, dc)?)
    };
    let filter = LayerFilter {
        layers: args.layers.clone(),
        platforms: Vec::new(),
    };
    let progress = TransferProgress::new(args.quiet, "push");
    let opts = PushOptions {
        client: client_options(&args.tls),
        encrypt: ec.as_ref().map(|ec| (ec, &filter)),
        mount_hint: hint,
        temp_dir: matches!(source, ImageRef::Store { .. }).then(|| globals.root.join("tmp")),
        jobs: registry::pull::DEFAULT_JOBS,
        notifier: Some(progress.notifier()),
    };
    let result = registry::push(&source, &dest, &opts, progress.as_ref());
    progress.finish();
    let summary = result.with_context(|| format!("push of {} to {dest} failed", args.image))?;
    if args.quiet {
        println!("{}", summary.digest);
    } else {
        let encrypted = if summary.encrypted_layers > 0 {
            format!(", {} encrypted", count(summary.encrypted_layers, "layer"))
        } else {
            String::new()
        };
        println!(
            "pushed {} ({}; {} uploaded, {} already there, {} mounted{encrypted})",
            summary.destination,
            summary.digest,
            count(summary.uploaded, "blob"),
            summary.skipped,
            summary.mounted
        );
    }
    Ok(())
}

//! `rrun push`: push an image from the store (or an OCI layout) to a registry, optionally
//! encrypting its layers for recipients on the way out.

use anyhow::Context as _;

use rrun::crypto::EncryptConfig;
use rrun::image::crypt::LayerFilter;
use rrun::image::reference::ImageRef;
use rrun::image::registry::{self, PushOptions};

use rrun::image::name::Reference;
use rrun::image::registry::client::Client;

use super::pull::{client_options, registry_ref};
use super::transfer_progress::{count, TransferProgress};
use super::trust::{content_trust_from_env, TrustOpts};
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
    let sign = args.sign || content_trust_from_env();
    // Checked before anything is uploaded: only a tag can be signed.
    let tag = match (sign, dest.tag(), dest.digest()) {
        (false, _, _) => None,
        (true, Some(tag), None) => Some(tag.to_string()),
        (true, _, _) => anyhow::bail!(
            "--sign signs a tag: push to {}:TAG without @DIGEST (or drop --sign and unset {})",
            dest.name(),
            super::trust::CONTENT_TRUST_ENV
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
    let signed = match &tag {
        Some(tag) => Some(sign_pushed(globals, &args, &dest, tag, &summary.digest)?),
        None => None,
    };
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
        if let Some((digest, size, roles)) = &signed {
            println!(
                "signed {}:{} as {digest} ({size} bytes) in {roles}",
                dest.name(),
                tag.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `--sign`: read the pushed manifest back by its digest (checked against it), then sign the
/// tag with that digest and length. Returns (digest, size, roles signed in).
fn sign_pushed(
    globals: &Globals,
    args: &PushArgs,
    dest: &Reference,
    tag: &str,
    digest: &str,
) -> anyhow::Result<(String, u64, String)> {
    let not_signed = || {
        format!("{dest} was pushed but not signed; sign it with rrun trust sign {dest} --digest {digest} --size BYTES")
    };
    let client = Client::new(dest, client_options(&args.tls)).with_context(not_signed)?;
    let pushed = client
        .get_manifest(dest.repository(), digest, None)
        .with_context(not_signed)?;
    let size = pushed.desc.size;
    let opts = TrustOpts {
        trust_server: args.trust.trust_server.clone(),
        tls_ca: args.tls.tls_ca.clone(),
        trust_root: args.trust.trust_root.clone(),
        ..TrustOpts::default()
    };
    let out = super::trust_sign::sign_tag(globals, dest, tag, digest, size, &opts).with_context(
        || format!("{dest} was pushed but not signed; fix the cause and run rrun trust sign {dest} --digest {digest} --size {size}"),
    )?;
    if out.initialized {
        eprintln!(
            "rrun: created the trust data of {} (root and repository keys in {})",
            dest.name(),
            super::trust::trust_dir(globals).join("private").display()
        );
    }
    Ok((digest.to_string(), size, out.roles.join(", ")))
}

//! `rrun pull`: pull an image from a registry into the store, with the key gate.

use anyhow::Context as _;

use rrun::image::digest::Digest;
use rrun::image::name::Reference;
use rrun::image::registry::{self, ClientOptions, PullOptions, TlsVerify};
use rrun::trust::TrustedTarget;

use super::transfer_progress::{count, TransferProgress};
use super::trust::{verify_tag, TrustOpts};
use crate::cli::args::{Globals, PullArgs, TlsArgs};
use crate::cli::log;

/// Parse a registry image name (`docker://` optional).
pub fn registry_ref(arg: &str) -> anyhow::Result<Reference> {
    let name = arg.strip_prefix("docker://").unwrap_or(arg);
    name.parse::<Reference>()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{arg} is not a registry image name such as 127.0.0.1:5000/app:1"))
}

/// Resolve `--tls-verify` and `--tls-ca`.
pub fn client_options(tls: &TlsArgs) -> ClientOptions {
    ClientOptions {
        tls_verify: if tls.tls_verify {
            TlsVerify::Verify
        } else {
            TlsVerify::Insecure
        },
        ca_file: tls.tls_ca.clone(),
        ..ClientOptions::default()
    }
}

/// Content trust of a pull: with a signed target, the reference to fetch (pinned to the
/// signed digest, the tag kept so that the store names the image with it) and the signed
/// length; without, the reference as given.
fn trusted_reference(
    reference: Reference,
    target: Option<&TrustedTarget>,
) -> anyhow::Result<(Reference, Option<u64>)> {
    let Some(t) = target else {
        return Ok((reference, None));
    };
    let digest = Digest::parse(&t.digest).with_context(|| {
        format!(
            "the signed target {}:{} has an unusable digest; re-sign it with rrun trust sign",
            reference.name(),
            t.tag
        )
    })?;
    Ok((reference.with_digest(digest), Some(t.size)))
}

/// Run the command.
pub fn run(globals: &Globals, args: PullArgs) -> anyhow::Result<()> {
    let reference = registry_ref(&args.image)?;
    let trust = TrustOpts::from_verify_args(
        &args.verify,
        args.tls.tls_ca.as_deref(),
        args.tls.tls_verify,
    );
    let target = verify_tag(globals, &reference, &trust)
        .with_context(|| format!("content trust refused {reference}; nothing was pulled"))?;
    let (reference, manifest_size) = trusted_reference(reference, target.as_ref())?;
    let platform = args.platform.as_deref().map(super::platform).transpose()?;
    let keys = if args.keys.keys.is_empty() {
        None
    } else {
        Some(super::decrypt_config(&args.keys)?)
    };
    let progress = TransferProgress::new(args.quiet, "pull");
    let opts = PullOptions {
        client: client_options(&args.tls),
        platform,
        keys: keys.as_ref(),
        jobs: registry::pull::DEFAULT_JOBS,
        notifier: Some(progress.notifier()),
        unpack: registry::pull::Unpack::Snapshots,
        manifest_size,
    };
    let result = registry::pull(&globals.root, &reference, &opts, progress.as_ref());
    progress.finish();
    let summary =
        result.with_context(|| format!("pull of {reference} failed; the store is unchanged"))?;
    if summary.unchecked_ciphertext {
        log::warn(format!(
            "{} of the {} of {} encrypted: stored as ciphertext without a key check; \
             give --key to check the keys before download",
            summary.encrypted_layers,
            count(summary.layers, "layer"),
            summary.name
        ));
    }
    if args.quiet {
        println!("{}", summary.manifest_digest);
    } else {
        let signed = target
            .as_ref()
            .map(|t| format!("; signed by {} ({})", t.signers.join(", "), t.role))
            .unwrap_or_default();
        println!(
            "pulled {} ({}, manifest {}; {}: {} downloaded, {} already stored{signed})",
            summary.name,
            summary.platform,
            summary.manifest_digest,
            count(summary.layers, "layer"),
            summary.downloaded,
            summary.already_stored
        );
    }
    Ok(())
}

//! The signing verbs of `rrun trust`: `key generate`, `sign`, `revoke`, `signer add` and
//! `signer remove`, publishing to the trust server with keys from the trust dir.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use rrun::image::digest::Digest;
use rrun::image::name::Reference;
use rrun::image::transport::Source;
use rrun::trust::{KeyStore, NotarySigner, SignOutcome};

use super::trust::{
    client_for, parse_image, parse_tagged, trust_dir, warn_exposed_keys, TrustOpts,
};
use super::trust_passphrase::with_passphrases;
use crate::cli::args::{
    Globals, TrustKeyGenerateArgs, TrustRevokeArgs, TrustSignArgs, TrustSignerAddArgs,
    TrustSignerRemoveArgs,
};

/// Run a signing operation on `reference`'s repository with the keys of the trust dir,
/// asking for passphrases as needed; `what` names the operation in errors.
fn with_signer<T>(
    globals: &Globals,
    reference: &Reference,
    opts: &TrustOpts,
    what: &str,
    op: impl Fn(&NotarySigner<'_>, &str) -> rrun::trust::Result<T>,
) -> anyhow::Result<T> {
    let dir = trust_dir(globals);
    warn_exposed_keys(&dir);
    let client = client_for(globals, reference, opts)?;
    let gun = reference.name();
    let out = with_passphrases(|pass| op(&NotarySigner::new(&client, &dir, pass.clone()), &gun))
        .with_context(|| format!("cannot {what} on {}", client.server()))?;
    warn_exposed_keys(&dir);
    Ok(out)
}

/// Sign `reference`'s tag as `digest`/`size` on its trust server (also for `rrun push --sign`);
/// creates the repository on first use.
pub(crate) fn sign_tag(
    globals: &Globals,
    reference: &Reference,
    tag: &str,
    digest: &str,
    size: u64,
    opts: &TrustOpts,
) -> anyhow::Result<SignOutcome> {
    let what = format!("sign {}:{tag}", reference.name());
    with_signer(globals, reference, opts, &what, |signer, gun| {
        signer.sign(gun, tag, digest, size)
    })
}

/// Digest and size to sign: `--digest`/`--size`, else the top manifest of `--from`, else of
/// the image in the store.
fn what_to_sign(
    globals: &Globals,
    reference: &Reference,
    args: &TrustSignArgs,
) -> anyhow::Result<(String, u64)> {
    if let (Some(digest), Some(size)) = (&args.digest, args.size) {
        let d = Digest::parse(digest).context("--digest takes sha256:<64 hex digits>")?;
        return Ok((d.to_string(), size));
    }
    let (source, hint) = match &args.from {
        Some(from) => (super::image_ref(from, globals)?, String::new()),
        None => (
            super::image_ref(&reference.to_string(), globals)?,
            format!(
                " (the store at {}); give --digest and --size, or --from oci:PATH:TAG",
                globals.root.display()
            ),
        ),
    };
    let desc = Source::open(&source)
        .and_then(|s| s.resolve())
        .with_context(|| format!("cannot find the manifest of {source} to sign{hint}"))?;
    Ok((desc.digest.to_string(), desc.size))
}

/// `rrun trust sign IMAGE:TAG`
pub fn sign(globals: &Globals, args: TrustSignArgs) -> anyhow::Result<()> {
    let (reference, tag) = parse_tagged(&args.image, "trust sign")?;
    let (digest, size) = what_to_sign(globals, &reference, &args)?;
    let opts = TrustOpts::from_server_args(&args.server);
    let out = sign_tag(globals, &reference, &tag, &digest, size, &opts)?;
    if out.initialized {
        eprintln!(
            "rrun: created the trust data of {} (root and repository keys in {})",
            reference.name(),
            trust_dir(globals).join("private").display()
        );
    }
    println!(
        "signed {}:{tag} as {digest} ({size} bytes) in {}",
        reference.name(),
        out.roles.join(", ")
    );
    Ok(())
}

/// `rrun trust revoke IMAGE:TAG`
pub fn revoke(globals: &Globals, args: TrustRevokeArgs) -> anyhow::Result<()> {
    let (reference, tag) = parse_tagged(&args.image, "trust revoke")?;
    let opts = TrustOpts::from_server_args(&args.server);
    let what = format!("revoke {}:{tag}", reference.name());
    let out = with_signer(globals, &reference, &opts, &what, |signer, gun| {
        signer.revoke(gun, &tag)
    })?;
    println!(
        "revoked {}:{tag} from {}",
        reference.name(),
        out.roles.join(", ")
    );
    Ok(())
}

/// `rrun trust key generate NAME`: prints the path of the public key.
pub fn key_generate(globals: &Globals, args: TrustKeyGenerateArgs) -> anyhow::Result<()> {
    let out_dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot find the current directory")?,
    };
    let public_path = out_dir.join(format!("{}.pub", args.name));
    // Check before a key is made, so that a refusal leaves nothing behind.
    if public_path.exists() {
        anyhow::bail!(
            "{} already exists: remove it or choose another --dir",
            public_path.display()
        );
    }
    let dir = trust_dir(globals);
    warn_exposed_keys(&dir);
    let public = with_passphrases(|pass| KeyStore::new(&dir).generate_signer(&args.name, pass))
        .with_context(|| format!("cannot generate the key {}", args.name))?;
    write_new(&public_path, &public)?;
    println!("{}", public_path.display());
    Ok(())
}

/// Create `path` with `bytes`; never replaces a file.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The repositories of `signer add/remove` arguments.
fn repositories(images: &[String]) -> anyhow::Result<Vec<Reference>> {
    images.iter().map(|i| Ok(parse_image(i)?.0)).collect()
}

/// `rrun trust signer add --key PUB NAME IMAGE...`
pub fn signer_add(globals: &Globals, args: TrustSignerAddArgs) -> anyhow::Result<()> {
    let pem = read_public_key(&args.key)?;
    let opts = TrustOpts::from_server_args(&args.server);
    for reference in repositories(&args.images)? {
        let what = format!("add signer {} to {}", args.name, reference.name());
        let out = with_signer(globals, &reference, &opts, &what, |signer, gun| {
            signer.add_signer(gun, &args.name, &pem)
        })?;
        if out.initialized {
            eprintln!("rrun: created the trust data of {}", reference.name());
        }
        println!("added signer {} to {}", args.name, reference.name());
    }
    Ok(())
}

/// `rrun trust signer remove NAME IMAGE...`
pub fn signer_remove(globals: &Globals, args: TrustSignerRemoveArgs) -> anyhow::Result<()> {
    let opts = TrustOpts::from_server_args(&args.server);
    for reference in repositories(&args.images)? {
        let what = format!("remove signer {} from {}", args.name, reference.name());
        with_signer(globals, &reference, &opts, &what, |signer, gun| {
            signer.remove_signer(gun, &args.name)
        })?;
        println!("removed signer {} from {}", args.name, reference.name());
    }
    Ok(())
}

/// A signer's public key file (small, PEM).
fn read_public_key(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the public key {}", path.display()))?;
    if meta.len() > 64 * 1024 {
        anyhow::bail!("{} is too large to be a public key PEM", path.display());
    }
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the public key {}", path.display()))?;
    if String::from_utf8_lossy(&pem).contains("PRIVATE KEY") {
        anyhow::bail!(
            "{} holds a private key: give the public key (rrun trust key generate writes NAME.pub)",
            path.display()
        );
    }
    Ok(pem)
}

//! `rrun trust ...`: dispatch, what the trust verbs share (trust dir under the store root, the
//! Notary client of an image), the content-trust decision of pull (`verify_tag`), `inspect` and
//! `lookup`.
//!
//! Layout under `--root`: `trust/private/` holds the encrypted signing keys (`KeyStore`),
//! `trust/tuf/<GUN>/` the verified Notary metadata with the root pinned on first use.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use rrun::image::name::Reference;
use rrun::trust::policy::{Policy, Requirement, DEFAULT_POLICY_PATH};
use rrun::trust::{
    default_trust_server, HttpOptions, KeyStore, NotaryClient, NotaryRepo, PlainHttp, TrustError,
    TrustRoot, TrustedTarget,
};

use crate::cli::args::{
    Format, Globals, TrustCommand, TrustInspectArgs, TrustLookupArgs, TrustServerArgs, VerifyArgs,
};
use crate::cli::log;

/// Environment variable that turns content trust on for pulls (`DOCKER_CONTENT_TRUST`'s rule:
/// any value but empty or a false boolean).
pub(crate) const CONTENT_TRUST_ENV: &str = "RRUN_CONTENT_TRUST";

/// Run a `rrun trust` command.
pub fn run(globals: &Globals, command: TrustCommand) -> anyhow::Result<()> {
    use super::{trust_sign, trust_tuf};
    use crate::cli::args::{TrustKeyCommand, TrustSignerCommand};
    match command {
        TrustCommand::Inspect(a) => inspect(globals, a),
        TrustCommand::Lookup(a) => lookup(globals, a),
        TrustCommand::Sign(a) => trust_sign::sign(globals, a),
        TrustCommand::Revoke(a) => trust_sign::revoke(globals, a),
        TrustCommand::Key(TrustKeyCommand::Generate(a)) => trust_sign::key_generate(globals, a),
        TrustCommand::Signer(TrustSignerCommand::Add(a)) => trust_sign::signer_add(globals, a),
        TrustCommand::Signer(TrustSignerCommand::Remove(a)) => {
            trust_sign::signer_remove(globals, a)
        }
        TrustCommand::Tuf(a) => trust_tuf::run(a),
    }
}

/// Content-trust settings of one command, resolved from its arguments.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustOpts {
    /// `--verify`: resolve tags through signed metadata even where the policy does not ask.
    pub verify: bool,
    /// `--trust-server` (the policy's `trustServer` wins over it).
    pub trust_server: Option<String>,
    /// `--tls-ca` for the trust server (the policy's `tlsCa` wins over it).
    pub tls_ca: Option<PathBuf>,
    /// `--trust-root` (the policy's `trustRoot` wins over it).
    pub trust_root: Option<PathBuf>,
    /// `--policy`; `None` reads /etc/rrun/policy.json when it exists.
    pub policy: Option<PathBuf>,
    /// Plain http to the trust server: loopback only unless `--tls-verify=false`.
    pub plain_http: PlainHttp,
}

impl TrustOpts {
    /// From pull-style arguments: `VerifyArgs` plus the command's `--tls-ca` and `--tls-verify`.
    pub(crate) fn from_verify_args(
        args: &VerifyArgs,
        tls_ca: Option<&Path>,
        tls_verify: bool,
    ) -> Self {
        TrustOpts {
            verify: args.verify,
            trust_server: args.source.trust_server.clone(),
            tls_ca: tls_ca.map(Path::to_path_buf),
            trust_root: args.source.trust_root.clone(),
            policy: args.policy.clone(),
            plain_http: if tls_verify {
                PlainHttp::LoopbackOnly
            } else {
                PlainHttp::Anywhere
            },
        }
    }

    /// From the server options of the `rrun trust` verbs.
    pub(crate) fn from_server_args(args: &TrustServerArgs) -> Self {
        TrustOpts {
            trust_server: args.trust_server.clone(),
            tls_ca: args.tls_ca.clone(),
            trust_root: args.trust_root.clone(),
            ..TrustOpts::default()
        }
    }
}

/// The trust dir: signing keys under `private/`.
pub(crate) fn trust_dir(globals: &Globals) -> PathBuf {
    globals.root.join(rrun::image::store::TRUST_DIR)
}

/// The verified Notary metadata, per GUN.
fn cache_dir(globals: &Globals) -> PathBuf {
    trust_dir(globals).join("tuf")
}

/// A registry image argument (`docker://` optional) and whether it named a tag explicitly
/// (`Reference` fills in `latest` otherwise).
pub(crate) fn parse_image(arg: &str) -> anyhow::Result<(Reference, bool)> {
    let name = arg.strip_prefix("docker://").unwrap_or(arg);
    let reference = name.parse::<Reference>().with_context(|| {
        format!("{arg} is not a registry image name such as 127.0.0.1:5000/app:1")
    })?;
    let before_digest = name.split('@').next().unwrap_or(name);
    let last = before_digest.rsplit('/').next().unwrap_or(before_digest);
    Ok((reference, last.contains(':')))
}

/// A parsed `IMAGE:TAG` argument whose tag must be given and no digest: (reference, tag).
pub(crate) fn parse_tagged(arg: &str, verb: &str) -> anyhow::Result<(Reference, String)> {
    let (reference, explicit) = parse_image(arg)?;
    if reference.digest().is_some() {
        anyhow::bail!("{verb} takes IMAGE:TAG without @DIGEST, got {arg}");
    }
    match reference.tag() {
        Some(tag) if explicit => {
            let tag = tag.to_string();
            Ok((reference, tag))
        }
        _ => anyhow::bail!(
            "{verb} needs a tag: give IMAGE:TAG, e.g. {}:latest",
            reference.name()
        ),
    }
}

/// The Notary client for `reference`'s repository: explicit settings first, then the trust
/// server of the registry host, root pinned on first use.
pub(crate) fn notary_client(
    globals: &Globals,
    reference: &Reference,
    server: Option<&str>,
    tls_ca: Option<&Path>,
    trust_root: Option<&Path>,
    plain_http: PlainHttp,
) -> anyhow::Result<NotaryClient> {
    let server = server
        .map(str::to_string)
        .unwrap_or_else(|| default_trust_server(reference.domain()));
    let opts = HttpOptions {
        ca_file: tls_ca.map(Path::to_path_buf),
        plain_http,
        ..HttpOptions::default()
    };
    let client = NotaryClient::https(&server, &cache_dir(globals), &opts)
        .with_context(|| format!("cannot set up a client of the trust server {server}"))?;
    Ok(match trust_root {
        Some(path) => client.with_trust_root(TrustRoot::Pinned(path.to_path_buf())),
        None => client,
    })
}

/// The client for a `rrun trust` verb on `reference`.
pub(crate) fn client_for(
    globals: &Globals,
    reference: &Reference,
    opts: &TrustOpts,
) -> anyhow::Result<NotaryClient> {
    notary_client(
        globals,
        reference,
        opts.trust_server.as_deref(),
        opts.tls_ca.as_deref(),
        opts.trust_root.as_deref(),
        opts.plain_http,
    )
}

/// Download and verify the repository's metadata, printing skipped delegations as warnings.
pub(crate) fn update(client: &NotaryClient, reference: &Reference) -> anyhow::Result<NotaryRepo> {
    let gun = reference.name();
    let repo = client.update(&gun).with_context(|| {
        format!(
            "cannot verify the trust data of {gun} from {}",
            client.server()
        )
    })?;
    for w in &repo.warnings {
        log::warn(format!("{gun}: {w}"));
    }
    Ok(repo)
}

/// Warn about private key files in the trust dir that other users can read (invariant 7).
pub(crate) fn warn_exposed_keys(trust_dir: &Path) {
    for path in KeyStore::new(trust_dir).exposed_key_files() {
        log::warn(format!(
            "{} is readable by other users of this machine; protect it with chmod 600",
            path.display()
        ));
    }
}

/// True when `RRUN_CONTENT_TRUST` turns content trust on.
pub(crate) fn content_trust_from_env() -> bool {
    match std::env::var(CONTENT_TRUST_ENV) {
        Ok(v) => !matches!(v.trim(), "" | "0" | "f" | "F" | "false" | "FALSE" | "False"),
        Err(std::env::VarError::NotPresent) => false,
        // A value that is not UTF-8 is not a false boolean.
        Err(std::env::VarError::NotUnicode(_)) => true,
    }
}

/// The policy of `--policy`, else /etc/rrun/policy.json when it exists, else accept-all.
fn load_policy(explicit: Option<&Path>) -> anyhow::Result<(Policy, String)> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from(DEFAULT_POLICY_PATH);
            let exists = p
                .try_exists()
                .with_context(|| format!("cannot check for the policy {}", p.display()))?;
            if !exists {
                return Ok((Policy::default(), "(no policy file)".into()));
            }
            p
        }
    };
    let policy = Policy::load(&path).context("fix the policy file or point --policy at another")?;
    Ok((policy, path.display().to_string()))
}

/// Decide whether content trust applies to pulling `reference` (`--verify`,
/// `RRUN_CONTENT_TRUST`, or the policy) and, if so, resolve it through verified Notary
/// metadata.
///
/// * `Ok(None)`: trust does not apply; pull by the reference as given.
/// * `Ok(Some(target))`: fetch the manifest by `target.digest` only (never by tag) and check
///   its length against `target.size` (`TrustedTarget::verify_content` does both).
/// * `Err`: the policy rejects the repository, or verification failed: pull nothing.
///
/// A reference with a tag resolves that tag (and, with a digest too, the signed digest must be
/// that digest); a digest-only reference is accepted when some signed tag names that digest.
pub(crate) fn verify_tag(
    globals: &Globals,
    reference: &Reference,
    opts: &TrustOpts,
) -> anyhow::Result<Option<TrustedTarget>> {
    let (policy, policy_name) = load_policy(opts.policy.as_deref())?;
    let name = reference.name();
    // What turned trust on, and so how to turn it off for an unsigned repository.
    let (server, root, ca, off) = match policy.requirement(&name) {
        Requirement::Reject => {
            anyhow::bail!("policy {policy_name} rejects images from {name}")
        }
        Requirement::Accept if opts.verify => (None, None, None, "pull without --verify".into()),
        Requirement::Accept if content_trust_from_env() => {
            (None, None, None, format!("unset {CONTENT_TRUST_ENV}"))
        }
        Requirement::Accept => return Ok(None),
        Requirement::NotarySigned { server, root, ca } => {
            log::info(format!(
                "policy {policy_name} requires signatures for {name}"
            ));
            (
                server,
                root,
                ca,
                format!("change the policy {policy_name}, which requires signatures"),
            )
        }
    };
    let client = notary_client(
        globals,
        reference,
        server.as_deref().or(opts.trust_server.as_deref()),
        ca.as_deref().or(opts.tls_ca.as_deref()),
        root.as_deref().or(opts.trust_root.as_deref()),
        opts.plain_http,
    )?;
    let repo = update(&client, reference).map_err(|e| {
        if matches!(
            e.downcast_ref::<TrustError>(),
            Some(TrustError::NoTrustData { .. })
        ) {
            e.context(format!(
                "{name} is not signed: sign it (rrun trust sign {name}:TAG, or rrun push --sign), \
                 or {off}"
            ))
        } else {
            e
        }
    })?;
    let target = match (reference.tag(), reference.digest()) {
        (Some(tag), pinned) => {
            let t = repo
                .resolve(tag)
                .with_context(|| format!("{name}:{tag} has no valid signature"))?;
            if let Some(d) = pinned {
                if d.as_str() != t.digest {
                    anyhow::bail!(
                        "{reference}: the signed digest of tag {tag} is {}, not {d}",
                        t.digest
                    );
                }
            }
            t
        }
        (None, Some(d)) => repo
            .list()
            .into_iter()
            .find(|t| t.digest == d.as_str())
            .with_context(|| format!("no signed tag of {name} has the digest {d}"))?,
        (None, None) => anyhow::bail!("{reference} names neither a tag nor a digest"),
    };
    log::info(format!(
        "{name}:{} is signed by {} ({}): {} ({} bytes)",
        target.tag,
        target.signers.join(", "),
        target.role,
        target.digest,
        target.size
    ));
    Ok(Some(target))
}

/// `rrun trust lookup`: what pull would fetch, through `verify_tag`.
fn lookup(globals: &Globals, args: TrustLookupArgs) -> anyhow::Result<()> {
    let (reference, _) = parse_image(&args.image)?;
    let opts = TrustOpts::from_verify_args(&args.verify, args.tls_ca.as_deref(), true);
    let target = verify_tag(globals, &reference, &opts)?;
    let mut out = std::io::stdout().lock();
    match (args.format, &target) {
        (Format::Json, _) => {
            serde_json::to_writer_pretty(&mut out, &target)?;
            writeln!(out)?;
        }
        (Format::Table, Some(t)) => super::write_table(
            &mut out,
            &["IMAGE", "DIGEST", "SIZE", "ROLE", "SIGNERS"],
            &[vec![
                format!("{}:{}", reference.name(), t.tag),
                t.digest.clone(),
                t.size.to_string(),
                t.role.clone(),
                t.signers.join(", "),
            ]],
        )?,
        (Format::Table, None) => writeln!(
            out,
            "{reference}: content trust does not apply (no --verify, {CONTENT_TRUST_ENV} or policy \
             requirement); pull would use the tag unverified"
        )?,
    }
    out.flush()?;
    Ok(())
}

/// One signed tag, in the shape of `docker trust inspect` plus size, role and expiry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SignedTag {
    signed_tag: String,
    /// Hex digest of the manifest, without `sha256:` (as docker prints it).
    digest: String,
    size: u64,
    role: String,
    signers: Vec<String>,
    expires: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct KeyId {
    #[serde(rename = "ID")]
    id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct NamedKeys {
    name: String,
    keys: Vec<KeyId>,
}

/// `docker trust inspect`'s report of one repository.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Report {
    name: String,
    signed_tags: Vec<SignedTag>,
    signers: Vec<NamedKeys>,
    administrative_keys: Vec<NamedKeys>,
}

impl Report {
    fn new(name: String, repo: &NotaryRepo, only_tag: Option<&str>) -> Report {
        let signed_tags = repo
            .list()
            .into_iter()
            .filter(|t| only_tag.is_none_or(|only| t.tag == only))
            .map(|t| SignedTag {
                digest: t
                    .digest
                    .strip_prefix("sha256:")
                    .unwrap_or(&t.digest)
                    .to_string(),
                signed_tag: t.tag,
                size: t.size,
                role: t.role,
                signers: t.signers,
                expires: t.expires,
            })
            .collect();
        let keys = |ids: &[String]| ids.iter().map(|id| KeyId { id: id.clone() }).collect();
        let signers = repo
            .targets
            .get("targets")
            .and_then(|t| t.meta.delegations.as_ref())
            .map(|d| {
                d.roles
                    .iter()
                    .filter_map(|r| {
                        let signer = r.name.strip_prefix("targets/")?;
                        (signer != "releases" && !signer.contains('/')).then(|| NamedKeys {
                            name: signer.to_string(),
                            keys: keys(&r.keys.keyids),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let admin = |label: &str, role: &str| NamedKeys {
            name: label.to_string(),
            keys: repo
                .root
                .meta
                .role(role)
                .map(|r| keys(&r.keyids))
                .unwrap_or_default(),
        };
        Report {
            name,
            signed_tags,
            signers,
            administrative_keys: vec![admin("Root", "root"), admin("Repository", "targets")],
        }
    }

    fn write_pretty(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        if self.signed_tags.is_empty() {
            writeln!(out, "\nNo signatures for {}\n", self.name)?;
        } else {
            writeln!(out, "\nSignatures for {}\n", self.name)?;
            let rows: Vec<Vec<String>> = self
                .signed_tags
                .iter()
                .map(|t| {
                    vec![
                        t.signed_tag.clone(),
                        t.digest.clone(),
                        t.size.to_string(),
                        t.role.clone(),
                        t.signers.join(", "),
                        t.expires.to_rfc3339_opts(SecondsFormat::Secs, true),
                    ]
                })
                .collect();
            super::write_table(
                out,
                &["SIGNED TAG", "DIGEST", "SIZE", "ROLE", "SIGNERS", "EXPIRES"],
                &rows,
            )?;
        }
        let short = |k: &[KeyId]| {
            k.iter()
                .map(|k| k.id.chars().take(12).collect::<String>())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.signers.is_empty() {
            writeln!(out, "\nList of signers and their keys for {}\n", self.name)?;
            let rows: Vec<Vec<String>> = self
                .signers
                .iter()
                .map(|s| vec![s.name.clone(), short(&s.keys)])
                .collect();
            super::write_table(out, &["SIGNER", "KEYS"], &rows)?;
        }
        writeln!(out, "\nAdministrative keys for {}\n", self.name)?;
        for k in self.administrative_keys.iter().rev() {
            writeln!(out, "  {} Key:\t{}", k.name, short(&k.keys))?;
        }
        Ok(())
    }
}

/// `rrun trust inspect`
fn inspect(globals: &Globals, args: TrustInspectArgs) -> anyhow::Result<()> {
    let opts = TrustOpts::from_server_args(&args.server);
    let mut reports = Vec::new();
    for image in &args.images {
        let (reference, explicit_tag) = parse_image(image)?;
        let client = client_for(globals, &reference, &opts)?;
        let repo = update(&client, &reference)?;
        let only_tag = reference.tag().filter(|_| explicit_tag);
        let name = match only_tag {
            Some(t) => format!("{}:{t}", reference.name()),
            None => reference.name(),
        };
        reports.push(Report::new(name, &repo, only_tag));
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &reports)?;
            writeln!(out)?;
        }
        Format::Table => {
            for r in &reports {
                r.write_pretty(&mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globals(root: &Path) -> Globals {
        Globals {
            root: root.to_path_buf(),
            state: root.join("state"),
        }
    }

    #[test]
    fn image_arguments_and_explicit_tags() {
        let (r, tagged) = parse_image("busybox").unwrap();
        assert_eq!(
            (r.name().as_str(), tagged),
            ("docker.io/library/busybox", false)
        );
        let (r, tagged) = parse_image("docker://127.0.0.1:5000/app:1").unwrap();
        assert_eq!(
            (r.name().as_str(), r.tag(), tagged),
            ("127.0.0.1:5000/app", Some("1"), true)
        );
        assert!(!parse_image("127.0.0.1:5000/app").unwrap().1);
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert!(
            !parse_image(&format!("127.0.0.1:5000/app@{digest}"))
                .unwrap()
                .1
        );
        assert_eq!(parse_tagged("example.com/a:v1", "sign").unwrap().1, "v1");
        let e = parse_tagged("example.com/a", "sign").unwrap_err();
        assert!(e.to_string().contains("needs a tag"), "{e}");
        let e = parse_tagged(&format!("example.com/a:v1@{digest}"), "sign").unwrap_err();
        assert!(e.to_string().contains("without @DIGEST"), "{e}");
        assert!(parse_image("Bad/Name").is_err());
    }

    #[test]
    fn policy_reject_and_accept_decide_before_any_network_access() {
        let d = tempfile::tempdir().unwrap();
        let policy = d.path().join("policy.json");
        std::fs::write(
            &policy,
            r#"{"default": "insecureAcceptAnything",
                "transports": {"docker": {"127.0.0.1:1/blocked": "reject"}}}"#,
        )
        .unwrap();
        let opts = TrustOpts {
            policy: Some(policy.clone()),
            ..TrustOpts::default()
        };
        let g = globals(d.path());
        let blocked: Reference = "127.0.0.1:1/blocked:1".parse().unwrap();
        let e = verify_tag(&g, &blocked, &opts).unwrap_err();
        assert!(
            e.to_string()
                .contains("rejects images from 127.0.0.1:1/blocked"),
            "{e}"
        );
        let open: Reference = "127.0.0.1:1/open:1".parse().unwrap();
        if !content_trust_from_env() {
            assert!(verify_tag(&g, &open, &opts).unwrap().is_none());
        }
        // an invalid policy is an error, never "accept"
        std::fs::write(&policy, r#"{"default": "accept"}"#).unwrap();
        let e = verify_tag(&g, &open, &opts).unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown requirement type"),
            "{e:#}"
        );
    }

    #[test]
    fn verification_fails_closed_when_the_trust_server_is_unreachable() {
        let d = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = TrustOpts {
            verify: true,
            trust_server: Some(format!("http://127.0.0.1:{port}")),
            policy: Some(d.path().join("none.json")),
            ..TrustOpts::default()
        };
        let r: Reference = "127.0.0.1:5000/app:1".parse().unwrap();
        // a missing --policy file is an error too
        assert!(verify_tag(&globals(d.path()), &r, &opts).is_err());
        let policy = d.path().join("policy.json");
        std::fs::write(&policy, r#"{"default": "insecureAcceptAnything"}"#).unwrap();
        let opts = TrustOpts {
            policy: Some(policy),
            ..opts
        };
        let e = verify_tag(&globals(d.path()), &r, &opts).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot verify the trust data of 127.0.0.1:5000/app"),
            "{e:#}"
        );
    }

    #[test]
    fn tables_are_aligned() {
        let mut out = Vec::new();
        crate::cli::commands::write_table(
            &mut out,
            &["A", "LONGER"],
            &[vec!["wide cell".into(), "x".into()]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A           LONGER\nwide cell   x\n"
        );
    }
}

//! `rrun trust tuf init|refresh|download`: plain TUF 1.0 repositories through the
//! tuf-conformance client-under-test protocol (CLIENT-CLI.md): exit 0 on success, 1 on any
//! failure, only verified metadata under non-versioned names in `--metadata-dir`.

use std::fmt;

use anyhow::Context as _;

use rrun::trust::{tuf_download, tuf_init, tuf_refresh, HttpOptions, HttpTransport, SystemClock};

use crate::cli::args::{TufArgs, TufCommand};

/// Exit code of a failed `trust tuf` command (the conformance protocol's).
pub const EXIT_TUF_FAILURE: u8 = 1;

/// A failed `trust tuf` command: the binary exits with [`EXIT_TUF_FAILURE`], not 125.
#[derive(Debug)]
pub struct TufFailure(anyhow::Error);

impl fmt::Display for TufFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for TufFailure {}

/// Run the command; every failure is a [`TufFailure`].
pub fn run(args: TufArgs) -> anyhow::Result<()> {
    run_inner(args).map_err(|e| anyhow::Error::new(TufFailure(e)))
}

fn run_inner(args: TufArgs) -> anyhow::Result<()> {
    let metadata_dir = args
        .metadata_dir
        .as_deref()
        .context("--metadata-dir DIR is required")?;
    let metadata_url = || {
        args.metadata_url
            .as_deref()
            .context("--metadata-url URL is required")
    };
    let transport = || {
        HttpTransport::new(&HttpOptions {
            ca_file: args.tls_ca.clone(),
            ..HttpOptions::default()
        })
        .context("cannot set up the HTTP client")
    };
    match &args.command {
        TufCommand::Init { root_json } => {
            let bytes = std::fs::read(root_json)
                .with_context(|| format!("cannot read {}", root_json.display()))?;
            tuf_init(metadata_dir, &bytes, &SystemClock)
                .with_context(|| format!("{} is not a usable trusted root", root_json.display()))?;
            println!(
                "trusted root {} in {}",
                root_json.display(),
                metadata_dir.display()
            );
        }
        TufCommand::Refresh => {
            let url = metadata_url()?;
            tuf_refresh(metadata_dir, url, &transport()?, &SystemClock)
                .with_context(|| format!("refresh from {url} failed"))?;
            println!("refreshed {} from {url}", metadata_dir.display());
        }
        TufCommand::Download => {
            let url = metadata_url()?;
            if args.target_names.is_empty() {
                anyhow::bail!("--target-name NAME is required (repeatable)");
            }
            let base = args
                .target_base_url
                .as_deref()
                .context("--target-base-url URL is required")?;
            let target_dir = args
                .target_dir
                .as_deref()
                .context("--target-dir DIR is required")?;
            let names: Vec<&str> = args.target_names.iter().map(String::as_str).collect();
            let stored = tuf_download(
                metadata_dir,
                url,
                &names,
                base,
                target_dir,
                &transport()?,
                &SystemClock,
            )
            .with_context(|| format!("download of {} failed", names.join(", ")))?;
            for path in stored {
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

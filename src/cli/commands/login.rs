//! `rrun login`: check credentials against a registry, then store them in docker's
//! config.json (or `$REGISTRY_AUTH_FILE`). The password is never printed.

use std::io::Read as _;

use anyhow::Context as _;
use zeroize::Zeroizing;

use rrun::image::registry::{AuthFiles, Client, CredentialSource, Credentials};

use super::pull::client_options;
use crate::cli::args::LoginArgs;
use crate::cli::log;

/// The registry argument without a scheme or trailing slash.
pub fn registry_arg(arg: &str) -> String {
    let r = arg
        .strip_prefix("https://")
        .or_else(|| arg.strip_prefix("http://"))
        .unwrap_or(arg);
    let r = r.trim_end_matches('/');
    match r {
        "index.docker.io/v1" | "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// Run the command.
pub fn run(args: LoginArgs) -> anyhow::Result<()> {
    let registry = registry_arg(&args.registry);
    let Some(username) = args.username.clone() else {
        anyhow::bail!("give the user name with -u USER (and the password with --password-stdin)");
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(p), _) => {
            log::warn(
                "a password on the command line is visible to other users; use --password-stdin",
            );
            Zeroizing::new(p.clone())
        }
        (None, true) => {
            let mut text = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the password from standard input")?;
            Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string())
        }
        (None, false) => anyhow::bail!("give the password with --password-stdin (or -p PASSWORD)"),
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    let creds = Credentials::new(username, password.as_str());
    let mut opts = client_options(&args.tls);
    opts.credentials = CredentialSource::Given(creds.clone());
    let client = Client::for_registry(&registry, opts)?;
    client.check_login()?;
    let file = AuthFiles::from_env()?.store(&registry, &creds)?;
    log::info(format!("credentials stored in {}", file.display()));
    println!("Login Succeeded");
    Ok(())
}

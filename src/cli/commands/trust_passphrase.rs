//! Passphrases of the trust keys: from `RRUN_TRUST_ROOT_PASSPHRASE` /
//! `RRUN_TRUST_REPOSITORY_PASSPHRASE`, else asked on the terminal (no echo) only when an
//! operation turns out to need one; without a terminal, a clear error naming the variable.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use rrun::trust::sign::ROOT_PASSPHRASE_ENV;
use rrun::trust::{Passphrases, TrustError};

/// Wrong passphrases typed before giving up (per key kind).
const ATTEMPTS: usize = 3;

/// Run `op` with the passphrases from the environment; when it reports a missing passphrase
/// and standard input is a terminal, ask for it and run `op` again. A passphrase that came
/// from the environment and is wrong is an error at once.
pub(crate) fn with_passphrases<T>(
    mut op: impl FnMut(&Passphrases) -> rrun::trust::Result<T>,
) -> anyhow::Result<T> {
    let mut pass = Passphrases::from_env();
    // how often each kind (root, repository) was asked for
    let mut asked = [0usize; 2];
    loop {
        let err = match op(&pass) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let TrustError::Passphrase { path, env } = &err else {
            return Err(err.into());
        };
        let (slot, i, kind) = if *env == ROOT_PASSPHRASE_ENV {
            (&mut pass.root, 0, "root")
        } else {
            (&mut pass.repository, 1, "repository")
        };
        if (slot.is_some() && asked[i] == 0) || asked[i] >= ATTEMPTS {
            return Err(err.into());
        }
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "{}: the {kind} key needs a passphrase: set {env}, or run on a terminal to be asked",
                path.display()
            );
        }
        if asked[i] > 0 {
            eprintln!("rrun: wrong passphrase for {}", path.display());
        }
        *slot = Some(ask(kind, path, !path.exists())?);
        asked[i] += 1;
    }
}

/// Ask for a passphrase on the terminal; a new key's passphrase is asked twice.
fn ask(kind: &str, path: &Path, new: bool) -> anyhow::Result<Zeroizing<String>> {
    for _ in 0..ATTEMPTS {
        let what = if new { "new " } else { "" };
        let p = read_hidden(&format!(
            "Enter passphrase for {what}{kind} key {}: ",
            path.display()
        ))?;
        if p.is_empty() {
            eprintln!("rrun: the passphrase must not be empty");
            continue;
        }
        if new && *read_hidden("Repeat passphrase: ")? != *p {
            eprintln!("rrun: the passphrases do not match");
            continue;
        }
        return Ok(p);
    }
    anyhow::bail!("no usable passphrase for {}", path.display())
}

/// Terminal echo turned off for as long as this lives.
struct EchoOff;

impl EchoOff {
    fn new() -> anyhow::Result<EchoOff> {
        stty("-echo").map_err(|e| {
            anyhow::anyhow!(
                "cannot turn off terminal echo with stty ({e}): set the passphrase variables instead"
            )
        })?;
        Ok(EchoOff)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = stty("echo");
    }
}

/// `stty MODE` on the terminal that standard input is.
fn stty(mode: &str) -> std::io::Result<()> {
    let status = Command::new("stty")
        .arg(mode)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("stty {mode}: {status}")))
    }
}

/// Print `prompt` on stderr and read one line from the terminal without echo.
fn read_hidden(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    // echo goes off before the prompt shows, so nothing typed after the prompt is echoed
    let echo = EchoOff::new()?;
    {
        let mut err = std::io::stderr().lock();
        write!(err, "{prompt}")?;
        err.flush()?;
    }
    // enough room that the line is not reallocated (and copied) while it is read
    let mut line = Zeroizing::new(String::with_capacity(1024));
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    eprintln!();
    if read? == 0 {
        anyhow::bail!("no passphrase given (end of input)");
    }
    while line.ends_with(['\n', '\r']) {
        line.pop();
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_errors_pass_through_untouched() {
        let e =
            with_passphrases(|_| -> rrun::trust::Result<()> { Err(TrustError::Key("bad".into())) })
                .unwrap_err();
        assert_eq!(e.to_string(), "bad key: bad");
        assert_eq!(with_passphrases(|_| Ok(7)).unwrap(), 7);
    }
}

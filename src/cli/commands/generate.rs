//! `rrun generate systemd`: print a systemd unit that runs a container as a (sealed) service.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Args, CommandFactory as _, FromArgMatches as _, Parser};

use rrun::runtime::sdnotify::{self, Mode};

use super::run::{resolve, Target};
use crate::cli::args::{GenerateSystemdArgs, Globals, RunArgs};

/// The options that shape the unit rather than the container.
#[derive(Debug, Args)]
struct UnitOptions {
    /// Restart= policy: no, on-success, on-failure, on-abnormal, on-watchdog, on-abort or
    /// always.
    #[arg(long, value_name = "POLICY", default_value = "on-failure")]
    restart: String,

    /// Directory of the encrypted credentials: each --key cred:NAME becomes
    /// LoadCredentialEncrypted=NAME:DIR/NAME.
    #[arg(
        long = "cred-dir",
        value_name = "DIR",
        default_value = "/etc/credstore.encrypted"
    )]
    cred_dir: PathBuf,

    /// Description= of the unit.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
}

/// The whole command line of `rrun generate systemd`.
#[derive(Debug, Parser)]
#[command(
    name = "rrun generate systemd",
    about = "Print a systemd unit (Type=notify) that runs a container; --key cred:NAME keys \
             become LoadCredentialEncrypted= lines. Save it as /etc/systemd/system/NAME.service.",
    override_usage = "rrun generate systemd [--restart POLICY] [--cred-dir DIR] [run options] IMAGE [CMD...]"
)]
struct GenerateCli {
    #[command(flatten)]
    unit: UnitOptions,
    #[command(flatten)]
    run: RunArgs,
}

/// The id of the `--key` argument that `generate` adds when `rrun run` has none.
const KEY_ID: &str = "generate_key";

const RESTART_POLICIES: [&str; 7] = [
    "no",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-watchdog",
    "on-abort",
    "always",
];

/// Extra seconds systemd waits after rrun's own stop timeout, for rrun to clean up.
const STOP_GRACE_SECS: u64 = 10;

/// The command line parser: `rrun run`'s arguments plus the unit's, and `--key` (taken from
/// `rrun run` when it has it, so both always accept the same key arguments).
fn parser() -> (clap::Command, clap::Id) {
    let mut cmd = GenerateCli::command();
    let key = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some("key"))
        .map(|a| a.get_id().clone());
    let key = match key {
        Some(id) => id,
        None => {
            cmd = cmd.arg(
                Arg::new(KEY_ID)
                    .long("key")
                    .visible_alias("decryption-key")
                    .value_name("KEY")
                    .action(ArgAction::Append)
                    .help("Decryption key, FILE[:pass=...] or cred:NAME[:pass=...] (repeatable)"),
            );
            clap::Id::from(KEY_ID)
        }
    };
    (cmd.disable_help_flag(false), key)
}

/// What the unit is made from.
#[derive(Debug)]
struct Unit {
    /// The absolute rrun path.
    rrun: PathBuf,
    /// rrun's global options (absolute `--root`, `--state`).
    globals: Vec<String>,
    /// The `run` arguments, in order, options first.
    run_args: Vec<String>,
    /// `--name`.
    name: Option<String>,
    /// The image (or the rootfs directory).
    what: String,
    description: Option<String>,
    restart: String,
    credentials: Vec<(String, PathBuf)>,
    sdnotify: Mode,
    stop_timeout_secs: u64,
    host_network: bool,
}

/// Run the command: parse, check, print the unit.
pub fn systemd(globals: &Globals, a: GenerateSystemdArgs) -> anyhow::Result<()> {
    let (cmd, key_id) = parser();
    let argv = std::iter::once(OsString::from("rrun generate systemd"))
        .chain(a.args.iter().map(OsString::from));
    let matches = match cmd.try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) if !e.use_stderr() => {
            e.print()?;
            return Ok(());
        }
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            anyhow::bail!(
                "{}; see rrun generate systemd --help",
                first.trim_start_matches("error: ")
            );
        }
    };
    let cwd = std::env::current_dir()?;
    let unit = build(globals, &matches, &key_id, &cwd)?;
    let rrun = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find the rrun executable: {e}"))?;
    let unit = Unit { rrun, ..unit };
    let mut out = std::io::stdout().lock();
    out.write_all(render(&unit).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Check the arguments as `rrun run` would and collect what the unit needs.
fn build(globals: &Globals, m: &ArgMatches, key_id: &clap::Id, cwd: &Path) -> anyhow::Result<Unit> {
    let cli = GenerateCli::from_arg_matches(m)?;
    let UnitOptions {
        restart,
        cred_dir,
        description,
    } = cli.unit;
    if !RESTART_POLICIES.contains(&restart.as_str()) {
        anyhow::bail!(
            "invalid --restart {restart:?}: use one of {}",
            RESTART_POLICIES.join(", ")
        );
    }
    if !cred_dir.is_absolute() {
        anyhow::bail!("--cred-dir must be an absolute path (systemd needs one)");
    }
    let run_args = run_arguments(m, key_id, cwd, true)?;
    // rrun run checks everything but the keys: cred: keys exist only inside the unit.
    let keyless = run_arguments(m, key_id, cwd, false)?;
    let check = GenerateCli::try_parse_from(
        std::iter::once("rrun generate systemd".into()).chain(keyless),
    )?;
    let (opts, target) = resolve(check.run)?;
    if opts.detach || opts.tty || opts.interactive {
        anyhow::bail!("a unit runs rrun in the foreground without a terminal: drop -d, -i and -t");
    }
    let what = match &target {
        Target::Rootfs(dir) => absolute(cwd, &dir.display().to_string()),
        _ => {
            let image = positional(m)?.into_iter().next().unwrap_or_default();
            if image.starts_with('-') {
                anyhow::bail!("unknown option {image:?}: see rrun generate systemd --help");
            }
            image
        }
    };
    let mut credentials = Vec::new();
    for key in m.get_raw(key_id.as_str()).into_iter().flatten() {
        let key = key.to_string_lossy();
        if let Some(rest) = key.strip_prefix("cred:") {
            let name = rest.split(':').next().unwrap_or_default();
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                anyhow::bail!(
                    "invalid --key {key:?}: use cred:NAME[:pass=PW] with NAME without '/'"
                );
            }
            if !credentials.iter().any(|(n, _)| n == name) {
                credentials.push((name.to_owned(), cred_dir.join(name)));
            }
        }
    }
    Ok(Unit {
        rrun: PathBuf::from("/usr/local/bin/rrun"),
        globals: vec![
            format!(
                "--root={}",
                absolute(cwd, &globals.root.display().to_string())
            ),
            format!(
                "--state={}",
                absolute(cwd, &globals.state.display().to_string())
            ),
        ],
        run_args,
        name: opts.name.as_ref().map(|n| n.to_string()),
        what,
        description,
        restart,
        credentials,
        sdnotify: opts.sdnotify,
        stop_timeout_secs: opts
            .stop_timeout
            .unwrap_or(sdnotify::DEFAULT_STOP_TIMEOUT)
            .as_secs(),
        host_network: opts.network == rrun::runtime::options::NetworkMode::Host,
    })
}

/// `path` made absolute against `cwd` (a unit runs with `/` as its working directory).
fn absolute(cwd: &Path, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        cwd.join(path).display().to_string()
    }
}

/// A key argument with a relative key file made absolute (`cred:` and `provider:` stay).
fn absolute_key(cwd: &Path, key: &str) -> String {
    if key.starts_with("cred:") || key.starts_with("provider:") || key.starts_with('/') {
        return key.to_owned();
    }
    absolute(cwd, key)
}

/// The raw values of an argument (a unit holds text only).
fn raw_values(m: &ArgMatches, id: &clap::Id) -> anyhow::Result<Vec<String>> {
    m.get_raw(id.as_str())
        .into_iter()
        .flatten()
        .map(|v| {
            v.to_str().map(str::to_owned).ok_or_else(|| {
                anyhow::anyhow!("argument {v:?} is not UTF-8; a unit cannot hold it")
            })
        })
        .collect()
}

/// IMAGE [CMD...] (or CMD... with --rootfs).
fn positional(m: &ArgMatches) -> anyhow::Result<Vec<String>> {
    let (cmd, _) = parser();
    let id = cmd
        .get_arguments()
        .find(|a| a.is_positional())
        .map(|a| a.get_id().clone());
    match id {
        Some(id) => raw_values(m, &id),
        None => Ok(Vec::new()),
    }
}

/// The `rrun run` arguments the user gave, re-spelled as `--long=value` (so that a value that
/// starts with `-` stays a value), relative paths made absolute, `--rm` added; the positional
/// IMAGE [CMD...] (or CMD... with --rootfs) last. `--key`s only `with_keys`.
fn run_arguments(
    m: &ArgMatches,
    key_id: &clap::Id,
    cwd: &Path,
    with_keys: bool,
) -> anyhow::Result<Vec<String>> {
    let unit_ids: Vec<clap::Id> = UnitOptions::augment_args(clap::Command::new("unit"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect();
    let (cmd, _) = parser();
    let mut out = Vec::new();
    let mut positional = Vec::new();
    let mut has_rm = false;
    for arg in cmd.get_arguments() {
        let id = arg.get_id();
        if unit_ids.contains(id)
            || (id == key_id && !with_keys)
            || m.value_source(id.as_str()) != Some(clap::parser::ValueSource::CommandLine)
        {
            continue;
        }
        let raw = raw_values(m, id)?;
        if arg.is_positional() {
            positional = raw;
            continue;
        }
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(l), _) => format!("--{l}"),
            (None, Some(s)) => format!("-{s}"),
            (None, None) => continue,
        };
        if !arg.get_action().takes_values() {
            has_rm |= arg.get_long() == Some("rm");
            out.push(flag);
            continue;
        }
        for v in raw {
            let v = match arg.get_long() {
                Some("rootfs" | "env-file") => absolute(cwd, &v),
                Some("security-opt") => match v.strip_prefix("seccomp=") {
                    Some(f) if f != "unconfined" => format!("seccomp={}", absolute(cwd, f)),
                    _ => v,
                },
                _ if id == key_id => absolute_key(cwd, &v),
                _ => v,
            };
            out.push(format!("{flag}={v}"));
        }
    }
    if !has_rm {
        // A restarted service starts a fresh container; the old one must not keep the name.
        out.insert(0, "--rm".into());
    }
    out.extend(positional);
    Ok(out)
}

/// Quote one word for a systemd command line: `%` and `$` escaped (specifiers and variable
/// expansion), double quotes when needed, C escapes inside them.
fn systemd_word(w: &str) -> String {
    if w == ";" {
        return "\\;".into();
    }
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@".contains(c));
    if plain {
        return w.to_owned();
    }
    let mut q = String::with_capacity(w.len() + 2);
    q.push('"');
    for c in w.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '%' => q.push_str("%%"),
            '$' => q.push_str("$$"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                q.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// A unit setting's value on one line: `%` escaped (specifiers), no newlines.
fn setting(v: &str) -> String {
    v.replace('%', "%%").replace(['\n', '\r'], " ")
}

fn command_line(words: impl IntoIterator<Item = String>) -> String {
    words
        .into_iter()
        .map(|w| systemd_word(&w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The unit file.
fn render(u: &Unit) -> String {
    let rrun = u.rrun.display().to_string();
    let base = || std::iter::once(rrun.clone()).chain(u.globals.iter().cloned());
    let description = u.description.clone().unwrap_or_else(|| match &u.name {
        Some(n) => format!("rrun container {n} ({})", u.what),
        None => format!("rrun container ({})", u.what),
    });
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(format!(
        "# Generated by `rrun generate systemd` (rrun {}).",
        env!("CARGO_PKG_VERSION")
    ));
    line("# Save as /etc/systemd/system/NAME.service, then: systemctl daemon-reload; systemctl enable --now NAME".into());
    line("[Unit]".into());
    line(format!("Description={}", setting(&description)));
    if u.host_network {
        line("Wants=network-online.target".into());
        line("After=network-online.target".into());
    } else {
        line("After=local-fs.target".into());
    }
    line(String::new());
    line("[Service]".into());
    line(match u.sdnotify {
        Mode::Ignore => "Type=exec".into(),
        _ => "Type=notify".into(),
    });
    if u.sdnotify == Mode::Container {
        // READY=1 comes from a process of the container, not from rrun.
        line("NotifyAccess=all".into());
    }
    for (name, file) in &u.credentials {
        line(format!(
            "LoadCredentialEncrypted={}:{}",
            setting(name),
            setting(&file.display().to_string())
        ));
    }
    if let Some(name) = &u.name {
        // A container left behind by a killed rrun would keep the name.
        line(format!(
            "ExecStartPre=-{}",
            command_line(base().chain(["rm".into(), "-f".into(), name.clone()]))
        ));
    }
    line(format!(
        "ExecStart={}",
        command_line(
            base()
                .chain(std::iter::once("run".to_owned()))
                .chain(u.run_args.iter().cloned())
        )
    ));
    line(format!("Restart={}", u.restart));
    line("RestartSec=1".into());
    // SIGTERM goes to rrun, which forwards it and sends SIGKILL after its --stop-timeout;
    // systemd kills the rest of the cgroup only if rrun itself hangs.
    line("KillMode=mixed".into());
    line(format!(
        "TimeoutStopSec={}",
        u.stop_timeout_secs + STOP_GRACE_SECS
    ));
    line("SuccessExitStatus=143".into());
    // The container's cgroup goes below the service's (rrun run does this under a delegated unit).
    line("Delegate=yes".into());
    // Hardening that leaves rrun working: no core dumps of a process holding keys, private new
    // files. Options that add a mount namespace, a device policy or a syscall filter that the
    // container would inherit (ProtectSystem, PrivateTmp, PrivateDevices, ProtectHostname,
    // NoNewPrivileges, SystemCallFilter, ...) would break mounts, AppArmor or the container.
    line("LimitCORE=0".into());
    line("UMask=0077".into());
    line("RestrictRealtime=yes".into());
    line(String::new());
    line("[Install]".into());
    line("WantedBy=multi-user.target".into());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_for(args: &[&str]) -> anyhow::Result<String> {
        let (cmd, key) = parser();
        let m = cmd.try_get_matches_from(
            std::iter::once("rrun generate systemd").chain(args.iter().copied()),
        )?;
        let globals = Globals {
            root: "/var/lib/rrun".into(),
            state: "run/rrun".into(),
        };
        let u = build(&globals, &m, &key, Path::new("/srv/app"))?;
        Ok(render(&Unit {
            rrun: "/opt/my rrun/rrun".into(),
            ..u
        }))
    }

    fn value<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .collect()
    }

    #[test]
    fn a_sealed_service_unit() {
        let u = unit_for(&[
            "--name",
            "web",
            "--key",
            "cred:imagekey",
            "--key=cred:other:pass=x",
            "--memory",
            "64m",
            "-e",
            "GREETING=hello world",
            "--restart",
            "always",
            "--rootfs",
            "rootfs",
            "sh",
            "-c",
            "echo \"$HOME\" 100% ; done",
        ])
        .unwrap();
        assert_eq!(value(&u, "Type"), ["notify"]);
        assert_eq!(value(&u, "Restart"), ["always"]);
        assert_eq!(value(&u, "TimeoutStopSec"), ["20"]);
        assert_eq!(value(&u, "KillMode"), ["mixed"]);
        assert_eq!(value(&u, "Delegate"), ["yes"]);
        assert!(value(&u, "NotifyAccess").is_empty());
        assert_eq!(
            value(&u, "LoadCredentialEncrypted"),
            [
                "imagekey:/etc/credstore.encrypted/imagekey",
                "other:/etc/credstore.encrypted/other"
            ]
        );
        assert_eq!(
            value(&u, "Description"),
            ["rrun container web (/srv/app/rootfs)"]
        );
        assert_eq!(
            value(&u, "ExecStartPre"),
            ["-\"/opt/my rrun/rrun\" --root=/var/lib/rrun --state=/srv/app/run/rrun rm -f web"]
        );
        let exec = value(&u, "ExecStart")[0];
        assert_eq!(
            exec,
            "\"/opt/my rrun/rrun\" --root=/var/lib/rrun --state=/srv/app/run/rrun run --rm \
             --name=web \"--env=GREETING=hello world\" --memory=64m --rootfs=/srv/app/rootfs \
             --key=cred:imagekey --key=cred:other:pass=x sh -c \
             \"echo \\\"$$HOME\\\" 100%% ; done\""
        );
        assert!(u.contains("\n[Install]\nWantedBy=multi-user.target\n"));
    }

    #[test]
    fn systemd_words_round_trip_through_systemd_rules() {
        assert_eq!(systemd_word("plain/path-1.2:x=y"), "plain/path-1.2:x=y");
        assert_eq!(systemd_word(""), "\"\"");
        assert_eq!(systemd_word(";"), "\\;");
        assert_eq!(systemd_word("a b"), "\"a b\"");
        assert_eq!(systemd_word("it's"), "\"it's\"");
        assert_eq!(systemd_word("back\\slash"), "\"back\\\\slash\"");
        assert_eq!(systemd_word("%h$X"), "\"%%h$$X\"");
        assert_eq!(systemd_word("l1\nl2\x01"), "\"l1\\nl2\\x01\"");
    }

    #[test]
    fn notify_modes_and_existing_rm() {
        let u = unit_for(&["--sdnotify=container", "--rm", "--rootfs", "/r", "true"]).unwrap();
        assert_eq!(value(&u, "Type"), ["notify"]);
        assert_eq!(value(&u, "NotifyAccess"), ["all"]);
        let exec = value(&u, "ExecStart")[0];
        assert!(
            exec.ends_with("run --rm --rootfs=/r --sdnotify=container true"),
            "{exec}"
        );
        assert!(value(&u, "ExecStartPre").is_empty());
        let u = unit_for(&[
            "--sdnotify",
            "ignore",
            "--stop-timeout",
            "3",
            "--rootfs",
            "/r",
            "true",
        ])
        .unwrap();
        assert_eq!(value(&u, "Type"), ["exec"]);
        assert_eq!(value(&u, "TimeoutStopSec"), ["13"]);
        let u = unit_for(&["--network", "host", "img:1"]).unwrap();
        assert_eq!(value(&u, "After"), ["network-online.target"]);
        assert!(value(&u, "ExecStart")[0].ends_with("run --rm --network=host img:1"));
    }

    #[test]
    fn relative_key_files_become_absolute() {
        let u = unit_for(&["--key", "keys/priv.pem:pass=x", "img"]).unwrap();
        assert!(value(&u, "ExecStart")[0].contains("--key=/srv/app/keys/priv.pem:pass=x"));
        assert!(value(&u, "LoadCredentialEncrypted").is_empty());
    }

    #[test]
    fn bad_arguments_are_refused() {
        let err = |args: &[&str]| unit_for(args).unwrap_err().to_string();
        assert!(err(&["-d", "img"]).contains("drop -d"));
        assert!(err(&["-t", "img"]).contains("foreground"));
        assert!(err(&["--restart", "sometimes", "img"]).contains("on-failure"));
        assert!(err(&["--cred-dir", "creds", "img"]).contains("absolute"));
        assert!(err(&["--key", "cred:", "img"]).contains("cred:NAME"));
        assert!(err(&["--sdnotify", "maybe", "img"]).contains("conmon"));
        assert!(err(&[]).contains("image"));
        assert!(err(&["--no-such-option", "img"]).contains("no-such-option"));
    }
}

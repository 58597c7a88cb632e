//! clap types for the command line: types only, no behaviour.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// rrun: a daemonless container runtime with image encryption built in.
#[derive(Debug, Parser)]
#[command(name = "rrun", version, about, propagate_version = true)]
pub struct Cli {
    /// Log level: error, warn, info or debug.
    #[arg(
        long,
        global = true,
        value_name = "LEVEL",
        default_value = "warn",
        env = "RRUN_LOG_LEVEL"
    )]
    pub log_level: LogLevel,

    /// Root of the image store (an OCI image layout plus snapshots).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/var/lib/rrun",
        env = "RRUN_ROOT"
    )]
    pub root: std::path::PathBuf,

    /// Directory for runtime state.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/run/rrun",
        env = "RRUN_STATE"
    )]
    pub state: std::path::PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

/// Settings every command may need, resolved once from the global options.
#[derive(Debug, Clone)]
pub struct Globals {
    /// `--root`.
    pub root: std::path::PathBuf,
    /// `--state`.
    pub state: std::path::PathBuf,
}

/// How much rrun says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with images: encrypt, decrypt, layerinfo, import.
    #[command(subcommand)]
    Image(ImageCommand),

    // --- containers (runtime) ---
    /// Run a command in a new container.
    Run(Box<RunArgs>),
    /// List containers.
    Ps(PsArgs),
    /// Stop running containers: SIGTERM, then SIGKILL after a grace period.
    Stop(StopArgs),
    /// Send a signal to running containers.
    Kill(KillArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Show the output of a detached container.
    Logs(LogsArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Show what confinement this host supports and where rrun keeps its data.
    Info(InfoArgs),
    /// Internal: wait for a detached container and record its exit.
    #[command(hide = true)]
    ContainerMonitor(ContainerMonitorArgs),
    // --- end containers ---
}

/// `rrun image ...`
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Encrypt an image's layers for recipients (or add recipients to encrypted layers).
    Encrypt(EncryptArgs),
    /// Decrypt an image's encrypted layers.
    Decrypt(DecryptArgs),
    /// List an image's layers with their encryption and recipients.
    Layerinfo(LayerinfoArgs),
    /// Build a one-layer image from a root filesystem directory or tar.
    Import(ImportArgs),
}

/// Which layers and platforms a command works on.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Layer index to work on: 0 is the bottom layer, -1 the top (repeatable; default all).
    #[arg(long = "layer", value_name = "N", allow_negative_numbers = true)]
    pub layers: Vec<i64>,

    /// Platform to work on, as os/arch[/variant] (repeatable; default all).
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platforms: Vec<String>,
}

/// Private keys for decryption.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Private key: FILE[:pass=PW|:file=PWFILE|:fd=N|:PW] (repeatable).
    #[arg(long = "key", visible_alias = "decryption-key", value_name = "KEY")]
    pub keys: Vec<String>,
}

/// `rrun image encrypt`
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Recipient: jwe:PUBKEY_FILE (repeatable).
    #[arg(
        long = "recipient",
        visible_alias = "encryption-key",
        value_name = "R",
        required = true
    )]
    pub recipients: Vec<String>,

    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// Source image: oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub src: String,

    /// Destination image: oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub dst: String,
}

/// `rrun image decrypt`
#[derive(Debug, Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// Source image: oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub src: String,

    /// Destination image: oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub dst: String,
}

/// Output format of listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// `rrun image layerinfo`
#[derive(Debug, Args)]
pub struct LayerinfoArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// The image: oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub image: String,
}

/// `rrun image import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Command of the image (repeatable, one argument each; default /bin/sh).
    #[arg(long = "cmd", value_name = "ARG")]
    pub cmd: Vec<String>,

    /// Entrypoint of the image (repeatable, one argument each).
    #[arg(long = "entrypoint", value_name = "ARG")]
    pub entrypoint: Vec<String>,

    /// Environment variable KEY=VALUE (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Working directory of the image.
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Platform of the image, os/arch[/variant] (default: this host).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// A root filesystem directory, a tar, or a gzip-compressed tar.
    pub source: std::path::PathBuf,

    /// Destination image: oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub dst: String,
}

// --- containers (runtime) ---

/// `rrun run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,

    /// Run in the background; output goes to the container's log (rrun logs).
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Name of the container (unique; default its short id).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Environment variable KEY=VALUE, or KEY to copy rrun's (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// File of KEY=VALUE lines (repeatable).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,

    /// Bind mount SRC:DST[:ro] (repeatable).
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,

    /// tmpfs mount DST[:OPTIONS] (repeatable).
    #[arg(long = "tmpfs", value_name = "DST[:OPTS]")]
    pub tmpfs: Vec<String>,

    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// User: UID[:GID] or NAME[:GROUP] (names from the container's /etc/passwd and /etc/group).
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,

    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,

    /// Hostname of the container.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Network: none (loopback only, the default) or host.
    #[arg(long, value_name = "MODE", default_value = "none")]
    pub network: String,

    /// Memory limit, e.g. 256m or 1g.
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,

    /// CPU quota in CPUs, e.g. 0.5.
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,

    /// Maximum number of processes (-1 for no limit).
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,

    /// Add a capability, or ALL (repeatable).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a capability, or ALL (repeatable).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// seccomp=FILE|unconfined, apparmor=NAME|unconfined, no-new-privileges (repeatable).
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,

    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Allocate a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Run this root filesystem directory instead of an image; CMD is then required.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<std::path::PathBuf>,

    /// IMAGE [CMD...], or with --rootfs: CMD...
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

/// `rrun ps`
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones.
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `rrun stop`
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub time: u64,

    /// Containers (names, ids or id prefixes).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `rrun kill`
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal name or number.
    #[arg(
        short = 's',
        long = "signal",
        value_name = "SIGNAL",
        default_value = "KILL"
    )]
    pub signal: String,

    /// Containers (names, ids or id prefixes).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `rrun rm`
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill running containers first.
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Containers (names, ids or id prefixes).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `rrun logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing output until the container exits.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `rrun exec`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Allocate a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Environment variable KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// User: UID[:GID] or NAME[:GROUP].
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,

    /// Working directory.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// The command and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// `rrun info`
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `rrun container-monitor` (internal)
#[derive(Debug, Args)]
pub struct ContainerMonitorArgs {
    /// The container id.
    pub id: String,
}
// --- end containers ---

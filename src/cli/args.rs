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

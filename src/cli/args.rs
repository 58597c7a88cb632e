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
    #[allow(
        dead_code,
        reason = "read by the container verbs, which land with the runtime"
    )]
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
    /// Work with images: encrypt, decrypt, layerinfo, import, prune, save, load.
    #[command(subcommand)]
    Image(ImageCommand),
    /// List the images in the store.
    Images(ImagesArgs),
    /// Remove image names from the store (blobs stay until image prune).
    Rmi(RmiArgs),
    /// Give a stored image another name.
    Tag(TagArgs),
    /// Show stored images as JSON: manifests, configs, layers and their encryption.
    Inspect(InspectArgs),
    /// Content trust: sign and inspect tags (Notary v1) and plain TUF repositories.
    #[command(subcommand)]
    Trust(TrustCommand),

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
    /// Generate files for other tools: systemd units.
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Internal: wait for a detached container and record its exit.
    #[command(hide = true)]
    ContainerMonitor(ContainerMonitorArgs),
    // --- end containers ---
    /// Pull an image from a registry into the store.
    Pull(PullArgs),
    /// Push an image from the store (or an OCI layout) to a registry.
    Push(PushArgs),
    /// Log in to a registry: check the credentials, then store them in docker's config.json.
    Login(LoginArgs),
    /// Log out of a registry: remove its stored credentials.
    Logout(LogoutArgs),
    /// containerd stream processor (a drop-in for imgcrypt's ctd-decoder): encrypted layer on
    /// stdin, plain layer on stdout, layer descriptor and keys from containerd on fd 3.
    Decoder(DecoderArgs),
}

/// `rrun generate ...`
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Print a systemd unit that runs a container (a sealed service with cred: keys):
    /// rrun generate systemd [--restart P] [--cred-dir DIR] [run options] IMAGE [CMD...]
    #[command(disable_help_flag = true)]
    Systemd(GenerateSystemdArgs),
}

/// `rrun generate systemd`: its own options and `rrun run`'s, parsed by the handler (see
/// `rrun generate systemd --help`).
#[derive(Debug, Args)]
pub struct GenerateSystemdArgs {
    /// [--restart POLICY] [--cred-dir DIR] [--description TEXT] [run options] IMAGE [CMD...]
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
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
    /// Remove the blobs and snapshots no stored image needs.
    Prune(PruneArgs),
    /// Copy a stored image to an OCI layout or archive.
    Save(SaveArgs),
    /// Copy an image from an OCI layout or archive into the store.
    Load(LoadArgs),
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
    /// Decryption key: a private key, gpg secret keyring or x509 certificate file,
    /// FILE[:pass=PW|:file=PWFILE|:fd=N|:PW] (repeatable).
    #[arg(long = "key", visible_alias = "decryption-key", value_name = "KEY")]
    pub keys: Vec<String>,

    /// gpg home directory whose public keyring pgp: recipients are looked up in
    /// (default: $GNUPGHOME, else ~/.gnupg).
    #[arg(long = "gpg-homedir", value_name = "DIR")]
    pub gpg_homedir: Option<std::path::PathBuf>,
}

/// `rrun image encrypt`
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Recipient: jwe:PUBKEY_FILE, pgp:EMAIL_OR_KEYID or pkcs7:CERT_FILE (repeatable).
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

    /// Source image: a store name or id, oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub src: String,

    /// Destination image: a store name, oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub dst: String,
}

/// `rrun image decrypt`
#[derive(Debug, Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// Source image: a store name or id, oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub src: String,

    /// Destination image: a store name, oci:PATH[:TAG] or oci-archive:PATH[:TAG].
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

    /// gpg home directory whose keyring names pgp recipients (default: $GNUPGHOME, else ~/.gnupg).
    #[arg(long = "gpg-homedir", value_name = "DIR")]
    pub gpg_homedir: Option<std::path::PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// The image: a store name or id, oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub image: String,
}

/// `rrun image import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Command of the image (repeatable, one argument each; default /bin/sh).
    #[arg(long = "cmd", value_name = "ARG", allow_hyphen_values = true)]
    pub cmd: Vec<String>,

    /// Entrypoint of the image (repeatable, one argument each).
    #[arg(long = "entrypoint", value_name = "ARG", allow_hyphen_values = true)]
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

    /// Destination image: a store name (app:1), oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub dst: String,
}

/// `rrun images`
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Print only the image ids.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `rrun rmi`
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove every name of an image given by id, even when it has several.
    #[arg(short, long)]
    pub force: bool,

    /// Images: names, ids or id prefixes.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `rrun tag`
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: a name, id or id prefix.
    pub src: String,

    /// New names, REPOSITORY[:TAG].
    #[arg(required = true, value_name = "DST")]
    pub dst: Vec<String>,
}

/// `rrun inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images: names, ids or id prefixes.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `rrun image prune`
#[derive(Debug, Args)]
pub struct PruneArgs {}

/// `rrun image save`
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The stored image: a name, id or id prefix.
    pub image: String,

    /// Where to: oci:PATH[:TAG] or oci-archive:PATH[:TAG] (default tag: the store name).
    pub dst: String,
}

/// `rrun image load`
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The image: oci:PATH[:TAG] or oci-archive:PATH[:TAG].
    pub src: String,

    /// Name in the store (default: the image's tag, when it is a name like app:1).
    pub name: Option<String>,
}

// --- content trust (`rrun trust ...` and the `--verify` options of pull) ---

/// `rrun trust ...`
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// List the signed tags of images: digests, sizes, roles, signers, expiry.
    Inspect(TrustInspectArgs),
    /// Show what `rrun pull` with the same options would fetch: the signed digest of a tag.
    Lookup(TrustLookupArgs),
    /// Sign a tag: publish its manifest digest and size to the trust server.
    Sign(TrustSignArgs),
    /// Remove the signatures of a tag from every role this trust dir can sign.
    Revoke(TrustRevokeArgs),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(TrustKeyCommand),
    /// Manage who may sign a repository (delegations).
    #[command(subcommand)]
    Signer(TrustSignerCommand),
    /// Plain TUF 1.0 repositories (the tuf-conformance client protocol: exit 0 or 1).
    Tuf(TufArgs),
}

/// How to reach and anchor a trust server.
#[derive(Debug, Args)]
pub struct TrustServerArgs {
    /// Trust server URL (default: https://<registry host>, https://notary.docker.io for Docker Hub).
    #[arg(long, value_name = "URL", env = "RRUN_CONTENT_TRUST_SERVER")]
    pub trust_server: Option<String>,

    /// PEM file with the CA certificate(s) of the trust server.
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// The repository's root.json to pin, instead of trusting the first root seen.
    #[arg(long, value_name = "FILE")]
    pub trust_root: Option<std::path::PathBuf>,
}

/// Content-trust options of `rrun pull` (flattened there; `--tls-ca` comes from the pull's own
/// TLS options and is used for the trust server too).
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Resolve the tag only through signed trust data (also RRUN_CONTENT_TRUST=1).
    #[arg(long)]
    pub verify: bool,

    #[command(flatten)]
    pub source: TrustSourceArgs,

    /// Policy file saying which registries and repositories need signatures
    /// (default: /etc/rrun/policy.json when it exists).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
}

/// Where the trust data of a pull or `push --sign` comes from (`--tls-ca` is the command's own).
#[derive(Debug, Args)]
pub struct TrustSourceArgs {
    /// Trust server URL (default: https://<registry host>, https://notary.docker.io for Docker Hub).
    #[arg(long, value_name = "URL", env = "RRUN_CONTENT_TRUST_SERVER")]
    pub trust_server: Option<String>,

    /// The repository's root.json to pin, instead of trusting the first root seen.
    #[arg(long, value_name = "FILE")]
    pub trust_root: Option<std::path::PathBuf>,
}

/// `rrun trust inspect`
#[derive(Debug, Args)]
pub struct TrustInspectArgs {
    #[command(flatten)]
    pub server: TrustServerArgs,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Images: a repository (all signed tags) or IMAGE:TAG (that tag only).
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `rrun trust lookup`
#[derive(Debug, Args)]
pub struct TrustLookupArgs {
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// PEM file with the CA certificate(s) of the trust server.
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// The image, IMAGE[:TAG][@DIGEST].
    pub image: String,
}

/// `rrun trust sign`
#[derive(Debug, Args)]
pub struct TrustSignArgs {
    #[command(flatten)]
    pub server: TrustServerArgs,

    /// Digest of the manifest (or index) to sign, sha256:<hex> (with --size).
    #[arg(
        long,
        value_name = "DIGEST",
        requires = "size",
        conflicts_with = "from"
    )]
    pub digest: Option<String>,

    /// Size in bytes of the manifest (or index) to sign (with --digest).
    #[arg(long, value_name = "BYTES", requires = "digest")]
    pub size: Option<u64>,

    /// Take digest and size from this image's top manifest: oci:PATH[:TAG] or
    /// oci-archive:PATH[:TAG] (default: the image in the store).
    #[arg(long, value_name = "IMAGE")]
    pub from: Option<String>,

    /// The tag to sign, IMAGE:TAG.
    pub image: String,
}

/// `rrun trust revoke`
#[derive(Debug, Args)]
pub struct TrustRevokeArgs {
    #[command(flatten)]
    pub server: TrustServerArgs,

    /// The tag whose signatures to remove, IMAGE:TAG.
    pub image: String,
}

/// `rrun trust key ...`
#[derive(Debug, Subcommand)]
pub enum TrustKeyCommand {
    /// Generate a signing key; the private half stays (encrypted) in the trust dir.
    Generate(TrustKeyGenerateArgs),
}

/// `rrun trust key generate`
#[derive(Debug, Args)]
pub struct TrustKeyGenerateArgs {
    /// Directory to write the public key NAME.pub to (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,

    /// Name of the signer (lower-case letters, digits, '_' and '-').
    pub name: String,
}

/// `rrun trust signer ...`
#[derive(Debug, Subcommand)]
pub enum TrustSignerCommand {
    /// Let a signer sign tags of repositories (targets/releases and targets/NAME).
    Add(TrustSignerAddArgs),
    /// Remove a signer from repositories.
    Remove(TrustSignerRemoveArgs),
}

/// `rrun trust signer add`
#[derive(Debug, Args)]
pub struct TrustSignerAddArgs {
    #[command(flatten)]
    pub server: TrustServerArgs,

    /// The signer's public key (PUBLIC KEY or CERTIFICATE PEM).
    #[arg(long, value_name = "FILE", required = true)]
    pub key: std::path::PathBuf,

    /// Name of the signer.
    pub name: String,

    /// Repositories.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `rrun trust signer remove`
#[derive(Debug, Args)]
pub struct TrustSignerRemoveArgs {
    #[command(flatten)]
    pub server: TrustServerArgs,

    /// Name of the signer.
    pub name: String,

    /// Repositories.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `rrun trust tuf ...`: options may stand before or after the command, as the
/// tuf-conformance harness puts them before.
#[derive(Debug, Args)]
pub struct TufArgs {
    /// Directory of the trusted metadata.
    #[arg(long, value_name = "DIR", global = true)]
    pub metadata_dir: Option<std::path::PathBuf>,

    /// Base URL of the repository's metadata.
    #[arg(long, value_name = "URL", global = true)]
    pub metadata_url: Option<String>,

    /// Target path to download (repeatable).
    #[arg(long = "target-name", value_name = "NAME", global = true)]
    pub target_names: Vec<String>,

    /// Base URL of the repository's targets.
    #[arg(long, value_name = "URL", global = true)]
    pub target_base_url: Option<String>,

    /// Directory to store verified targets in.
    #[arg(long, value_name = "DIR", global = true)]
    pub target_dir: Option<std::path::PathBuf>,

    /// PEM file with the CA certificate(s) of the repository server.
    #[arg(long = "tls-ca", value_name = "FILE", global = true)]
    pub tls_ca: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: TufCommand,
}

/// `rrun trust tuf init|refresh|download`
#[derive(Debug, Subcommand)]
pub enum TufCommand {
    /// Trust ROOT_JSON (a self-signed root.json) as the repository's initial root.
    Init {
        /// The initial trusted root.json.
        root_json: std::path::PathBuf,
    },
    /// Update the top-level metadata (root, timestamp, snapshot, targets).
    Refresh,
    /// Refresh, then download and verify the --target-name files into --target-dir.
    Download,
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

    /// Keys for an encrypted image: they must open every encrypted layer (sealed run).
    #[command(flatten)]
    pub keys: KeyArgs,

    /// Platform of a multi-platform image, os/arch[/variant] (default: this host).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Under systemd (Type=notify): conmon (rrun sends READY=1 once the container started),
    /// container (the container gets NOTIFY_SOCKET and notifies itself) or ignore.
    #[arg(long, value_name = "MODE", default_value = "conmon")]
    pub sdnotify: String,

    /// Seconds a forwarded SIGTERM/SIGINT may take before rrun sends SIGKILL.
    #[arg(long = "stop-timeout", value_name = "SECONDS")]
    pub stop_timeout: Option<u64>,

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
/// How to reach a registry.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Check TLS certificates; with false, also use plain HTTP when the registry does not
    /// speak TLS (loopback registries always may).
    #[arg(
        long = "tls-verify",
        value_name = "BOOL",
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub tls_verify: bool,

    /// PEM file with the CA certificates to trust for the registry.
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
}

/// `rrun pull`
#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub keys: KeyArgs,

    /// Platform to pull from a multi-platform image, os/arch[/variant] (default: this host).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,

    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,

    /// The image: a registry name such as 127.0.0.1:5000/app:1 or busybox (docker:// optional).
    pub image: String,
}

/// `rrun push`
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Encrypt the layers for this recipient on the way out: jwe:PUBKEY_FILE (repeatable).
    #[arg(long = "recipient", visible_alias = "encryption-key", value_name = "R")]
    pub recipients: Vec<String>,

    /// With --recipient: the layer to encrypt, 0 the bottom, -1 the top (repeatable; default all).
    #[arg(long = "layer", value_name = "N", allow_negative_numbers = true)]
    pub layers: Vec<i64>,

    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// After the push, sign the tag with the pushed manifest's digest and length on the trust
    /// server (also RRUN_CONTENT_TRUST=1, as docker push does; --tls-ca is used for the trust
    /// server too); passphrases from RRUN_TRUST_ROOT_PASSPHRASE /
    /// RRUN_TRUST_REPOSITORY_PASSPHRASE or a prompt.
    #[arg(long)]
    pub sign: bool,

    #[command(flatten)]
    pub trust: TrustSourceArgs,

    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,

    /// The image: a name in the store, or oci:PATH[:TAG] / oci-archive:PATH[:TAG].
    pub image: String,

    /// Where to push it, a registry name (default: the image's own name).
    pub dest: Option<String>,
}

/// `rrun decoder`
#[derive(Debug, Args)]
pub struct DecoderArgs {
    /// Directory of decryption keys (private keys, gpg secret keyrings, x509 certificates
    /// without passwords); every file under it is loaded, as ctd-decoder does.
    #[arg(long = "decryption-keys-path", value_name = "DIR")]
    pub decryption_keys_path: Option<std::path::PathBuf>,
}

/// `rrun login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name.
    #[arg(short, long)]
    pub username: Option<String>,

    /// Password (visible to other users in the process list: prefer --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,

    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// The registry, host[:port] (docker.io for Docker Hub).
    pub registry: String,
}

/// `rrun logout`
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry, host[:port].
    pub registry: String,
}

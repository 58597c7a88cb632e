//! `rrun run`: resolve the options, prepare the rootfs, run the container, pass on its exit code.

use std::ffi::OsString;
use std::io::Write as _;

use anyhow::Context as _;

use rrun::crypto::DecryptConfig;
use rrun::image::manifest::ContainerConfig;
use rrun::image::rootfs::RunImage;
use rrun::image::Platform;
use rrun::runtime::options::{self, Cpus, NetworkMode, SecurityOptions, Tmpfs, Volume};
use rrun::runtime::{
    lifecycle, ContainerId, ImageConfigView, Launch, MonitorCommand, PreparedRootfs, RunOptions,
    RunOutcome, StateDir,
};

use crate::cli::args::{ContainerMonitorArgs, Globals, RunArgs};

/// What `rrun run` runs: an exploded root filesystem, or an image.
#[derive(Debug)]
pub enum Target {
    /// `--rootfs DIR`: the image config is empty, the command is required.
    Rootfs(std::path::PathBuf),
    /// The IMAGE argument.
    Image(Box<ImageTarget>),
}

/// An image to run, with what opens and selects it.
#[derive(Debug)]
pub struct ImageTarget {
    /// IMAGE as given.
    pub name: String,
    /// `--platform`.
    pub platform: Option<Platform>,
    /// `--key`s (empty when none were given).
    pub keys: DecryptConfig,
}

/// Run the command.
pub fn run(globals: &Globals, a: RunArgs) -> anyhow::Result<()> {
    let (opts, target) = resolve(a)?;
    match target {
        Target::Rootfs(dir) => {
            let image_name = dir.display().to_string();
            let rootfs = PreparedRootfs::directory(&dir)?;
            launch(
                globals,
                Launch {
                    image_name,
                    image: ImageConfigView::default(),
                    rootfs,
                    options: opts,
                },
            )
        }
        Target::Image(target) => run_image(globals, *target, opts),
    }
}

/// `run IMAGE`: resolve the image, apply the key gate, mount its rootfs (sealed for an
/// encrypted image), launch; the runtime unmounts the rootfs when the container is removed.
fn run_image(globals: &Globals, target: ImageTarget, opts: RunOptions) -> anyhow::Result<()> {
    let image = RunImage::open(&globals.root, &target.name, target.platform.as_ref())?;
    let auth = image.authorize(&target.keys)?;
    drop(target.keys);
    let view = config_view(image.container_config());
    if view.entrypoint.is_empty() && view.cmd.is_empty() && opts.command.is_empty() {
        anyhow::bail!(
            "image {} has no command (no Entrypoint or Cmd in its config): give one, rrun run {} CMD [ARG...]",
            target.name,
            target.name
        );
    }
    let state = StateDir::new(&globals.state);
    state.ensure()?;
    let parent = state.rootfs_dirs();
    create_private_dir(&parent)?;
    let dir = parent.join(random_name()?);
    let assembled = image.assemble(&auth, &dir)?;
    drop(auth);
    let rootfs = match PreparedRootfs::mounted(&assembled.rootfs, assembled.mounts.clone()) {
        Ok(r) => r,
        Err(e) => {
            assembled.teardown();
            return Err(e.into());
        }
    };
    let result = launch(
        globals,
        Launch {
            image_name: target.name,
            image: view,
            rootfs,
            options: opts,
        },
    );
    // A container that never started leaves nothing behind (teardown is idempotent: the
    // runtime may already have unmounted); a container's exit code is not such a failure.
    if let Err(e) = &result {
        if e.downcast_ref::<super::ContainerExit>().is_none() {
            assembled.teardown();
        }
    }
    result
}

/// The parts of an image config that shape a container.
fn config_view(c: ContainerConfig) -> ImageConfigView {
    let user = c
        .extra
        .get("User")
        .and_then(|u| u.as_str())
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    ImageConfigView {
        entrypoint: c.entrypoint,
        cmd: c.cmd,
        env: c.env,
        working_dir: c.working_dir.filter(|w| !w.is_empty()),
        user,
    }
}

/// Create `dir` (mode 0700) unless it exists.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
}

/// A fresh random directory name (16 hex digits).
fn random_name() -> anyhow::Result<String> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    Ok(hex::encode(b))
}

/// Run a prepared launch (shared by --rootfs and the image path): print the id of a detached
/// container, or exit with the container's code.
pub fn launch(globals: &Globals, launch: Launch) -> anyhow::Result<()> {
    let state = StateDir::new(&globals.state);
    let monitor = monitor_command(globals)?;
    match lifecycle::run(&state, launch, Some(&monitor))? {
        RunOutcome::Detached { id } => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{id}")?;
            out.flush()?;
            Ok(())
        }
        RunOutcome::Exited { code, .. } => super::container_exit(code),
    }
}

/// The hidden `container-monitor` verb: rrun itself, with the same state directory.
fn monitor_command(globals: &Globals) -> anyhow::Result<MonitorCommand> {
    let program = std::env::current_exe().context("cannot find the rrun executable")?;
    Ok(MonitorCommand {
        program,
        args: vec![
            OsString::from("--state"),
            globals.state.clone().into_os_string(),
            OsString::from("container-monitor"),
        ],
    })
}

/// The monitor of a detached container.
pub fn monitor(globals: &Globals, a: ContainerMonitorArgs) -> anyhow::Result<()> {
    let id: ContainerId = a.id.parse()?;
    let state = StateDir::new(&globals.state);
    lifecycle::monitor_main(&state, &id)?;
    Ok(())
}

/// Resolve the raw arguments into run options and what to run, checking every value.
pub fn resolve(a: RunArgs) -> anyhow::Result<(RunOptions, Target)> {
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(options::read_env_file(f)?);
    }
    for e in &a.env {
        env.extend(options::parse_env(e)?);
    }
    let mut security = SecurityOptions::default();
    for s in &a.security_opt {
        security.apply(s)?;
    }
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Options end at the image (or, with --rootfs, the command): an unknown option is not one.
    if let Some(first) = a.args.first().filter(|f| f.starts_with('-')) {
        anyhow::bail!(
            "unknown option {first:?}: options go before the image; see 'rrun run --help'"
        );
    }
    let (target, command) = match a.rootfs {
        Some(dir) => {
            if !a.keys.keys.is_empty() || a.platform.is_some() {
                anyhow::bail!(
                    "--key and --platform are for images, not for --rootfs: drop them or run an IMAGE"
                );
            }
            if a.args.is_empty() {
                anyhow::bail!(
                    "a command is required with --rootfs: rrun run --rootfs DIR CMD [ARG...]"
                );
            }
            (Target::Rootfs(dir), a.args)
        }
        None => {
            let mut args = a.args.into_iter();
            let Some(image) = args.next() else {
                anyhow::bail!(
                    "an image or --rootfs DIR is required: rrun run [OPTIONS] IMAGE [CMD...]"
                );
            };
            let target = ImageTarget {
                name: image,
                platform: a.platform.as_deref().map(super::platform).transpose()?,
                keys: if a.keys.keys.is_empty() {
                    DecryptConfig::default()
                } else {
                    super::decrypt_config(&a.keys)?
                },
            };
            (Target::Image(Box::new(target)), args.collect())
        }
    };
    let opts = RunOptions {
        name: a.name.as_deref().map(str::parse).transpose()?,
        command,
        env,
        volumes: a
            .volumes
            .iter()
            .map(|v| Volume::parse(v))
            .collect::<Result<_, _>>()?,
        tmpfs: a
            .tmpfs
            .iter()
            .map(|t| Tmpfs::parse(t))
            .collect::<Result<_, _>>()?,
        workdir: a.workdir,
        user: a.user,
        read_only: a.read_only,
        hostname: a
            .hostname
            .as_deref()
            .map(options::parse_hostname)
            .transpose()?,
        network: NetworkMode::parse(&a.network)?,
        memory: a.memory.as_deref().map(options::parse_memory).transpose()?,
        cpus: a
            .cpus
            .as_deref()
            .map(|c| Cpus::parse(c, available))
            .transpose()?,
        pids_limit: a
            .pids_limit
            .as_deref()
            .map(options::parse_pids_limit)
            .transpose()?
            .flatten(),
        cap_add: a.cap_add,
        cap_drop: a.cap_drop,
        security,
        interactive: a.interactive,
        tty: a.tty,
        detach: a.detach,
        auto_remove: a.rm,
        sdnotify: rrun::runtime::sdnotify::Mode::parse(&a.sdnotify)?,
        stop_timeout: a.stop_timeout.map(std::time::Duration::from_secs),
    };
    // Capability names are checked now so that a typo fails before anything is created.
    rrun::runtime::caps::resolve(&opts.cap_add, &opts.cap_drop)?;
    Ok((opts, target))
}

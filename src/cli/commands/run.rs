//! `rrun run`: resolve the options, prepare the rootfs, run the container, pass on its exit code.

use std::ffi::OsString;
use std::io::Write as _;

use anyhow::Context as _;

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
    Image(String),
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
        // The image path plugs in here: resolve the image in the store, mount its rootfs
        // (PreparedRootfs::mounted, so that rm unmounts it), fill the ImageConfigView from the
        // image config, then `launch` as above.
        Target::Image(image) => anyhow::bail!(
            "cannot run image {image:?}: running images is not available in this build yet; pass --rootfs DIR and a command"
        ),
    }
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
    let (target, command) = match a.rootfs {
        Some(dir) => {
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
            (Target::Image(image), args.collect())
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

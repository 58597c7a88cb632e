//! rrun command line interface: parse, dispatch to one handler per verb, map errors to exit codes.

mod args;
mod commands;
mod log;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use args::{Cli, Command, ImageCommand};

/// Exit code of an rrun error (podman's convention: the container's own codes stay free).
pub const EXIT_ERROR: u8 = 125;

/// Run the command line and return the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    log::set_level(cli.log_level);
    rrun::image::store::set_lock_notice(|msg| {
        if log::enabled(args::LogLevel::Warn) {
            eprintln!("rrun: {msg}");
        }
    });
    let globals = args::Globals {
        root: cli.root,
        state: cli.state,
    };
    match run(&globals, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        // A container's own exit status (run, exec) passes through unchanged.
        Err(err) if err.downcast_ref::<commands::ContainerExit>().is_some() => ExitCode::from(
            err.downcast_ref::<commands::ContainerExit>()
                .map_or(EXIT_ERROR, |c| c.0),
        ),
        Err(err) => {
            let msg = format!("{err:#}").replace('\n', " ");
            let _ = writeln!(std::io::stderr(), "rrun: error: {msg}");
            // `trust tuf` speaks the tuf-conformance protocol: any failure is exit 1.
            if err.is::<commands::trust_tuf::TufFailure>() {
                return ExitCode::from(commands::trust_tuf::EXIT_TUF_FAILURE);
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(globals: &args::Globals, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Image(ImageCommand::Encrypt(a)) => commands::encrypt::run(globals, a),
        Command::Image(ImageCommand::Decrypt(a)) => commands::decrypt::run(globals, a),
        Command::Image(ImageCommand::Layerinfo(a)) => commands::layerinfo::run(globals, a),
        Command::Image(ImageCommand::Import(a)) => commands::import::run(globals, a),
        Command::Image(ImageCommand::Prune(a)) => commands::prune::run(globals, a),
        Command::Image(ImageCommand::Save(a)) => commands::save::run(globals, a),
        Command::Image(ImageCommand::Load(a)) => commands::load::run(globals, a),
        Command::Images(a) => commands::images::run(globals, a),
        Command::Rmi(a) => commands::rmi::run(globals, a),
        Command::Tag(a) => commands::tag::run(globals, a),
        Command::Inspect(a) => commands::inspect::run(globals, a),
        Command::Trust(c) => commands::trust::run(globals, c),
        // --- containers (runtime) ---
        Command::Run(a) => commands::run::run(globals, *a),
        Command::Ps(a) => commands::ps::run(globals, a),
        Command::Stop(a) => commands::stop::run(globals, a),
        Command::Kill(a) => commands::kill::run(globals, a),
        Command::Rm(a) => commands::rm::run(globals, a),
        Command::Logs(a) => commands::logs::run(globals, a),
        Command::Exec(a) => commands::exec::run(globals, a),
        Command::Info(a) => commands::info::run(globals, a),
        Command::ContainerMonitor(a) => commands::run::monitor(globals, a),
        Command::Generate(args::GenerateCommand::Systemd(a)) => {
            commands::generate::systemd(globals, a)
        }
        // --- end containers ---
        Command::Pull(a) => commands::pull::run(globals, a),
        Command::Push(a) => commands::push::run(globals, a),
        Command::Login(a) => commands::login::run(a),
        Command::Logout(a) => commands::logout::run(a),
    }
}

/// A closed stdout (`rrun ... | head`) is not an error (ripgrep's convention).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

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
    let globals = args::Globals {
        root: cli.root,
        state: cli.state,
    };
    match run(&globals, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let msg = format!("{err:#}").replace('\n', " ");
            let _ = writeln!(std::io::stderr(), "rrun: error: {msg}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(_globals: &args::Globals, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Image(ImageCommand::Encrypt(a)) => commands::encrypt::run(a),
        Command::Image(ImageCommand::Decrypt(a)) => commands::decrypt::run(a),
        Command::Image(ImageCommand::Layerinfo(a)) => commands::layerinfo::run(a),
        Command::Image(ImageCommand::Import(a)) => commands::import::run(a),
    }
}

/// A closed stdout (`rrun ... | head`) is not an error (ripgrep's convention).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

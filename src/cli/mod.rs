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
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(EXIT_ERROR);
        }
        Err(e) => {
            let line = usage_error_line(&e.render().to_string());
            let _ = writeln!(std::io::stderr(), "rrun: error: {line}");
            return ExitCode::from(EXIT_ERROR);
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
        Command::Decoder(a) => commands::decoder::run(a),
    }
}

/// clap's multi-line usage error as one line: the message (with the values clap lists below
/// it), then the usage and where to read more.
fn usage_error_line(rendered: &str) -> String {
    let mut message = Vec::new();
    let mut usage = None;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(m) = line.strip_prefix("error: ") {
            message.push(m);
        } else if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u);
        } else if line.starts_with("tip:") || line.starts_with("For more information") {
            continue;
        } else if usage.is_none() {
            message.push(line);
        }
    }
    let mut out = message.join(" ");
    if usage.is_none() {
        out.push_str(" (see 'rrun --help')");
    }
    if let Some(u) = usage {
        let verb: Vec<&str> = u
            .split_whitespace()
            .take_while(|w| !w.starts_with(['[', '<', '-']))
            .collect();
        out.push_str(&format!(" (usage: {u}; see '{} --help')", verb.join(" ")));
    }
    out
}

/// A closed stdout (`rrun ... | head`) is not an error (ripgrep's convention).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::usage_error_line;

    #[test]
    fn usage_errors_become_one_line() {
        let rendered = "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\nUsage: rrun pull [OPTIONS] <IMAGE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error_line(rendered),
            "unexpected argument '--bogus' found (usage: rrun pull [OPTIONS] <IMAGE>; see 'rrun pull --help')"
        );
        let rendered = "error: the following required arguments were not provided:\n  <IMAGE>\n\nUsage: rrun pull <IMAGE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error_line(rendered),
            "the following required arguments were not provided: <IMAGE> (usage: rrun pull <IMAGE>; see 'rrun pull --help')"
        );
    }
}

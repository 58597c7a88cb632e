//! The `rrun` binary: parses the command line, runs the command, maps errors to exit codes.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

//! rrun command line interface.

/// Run the command line and return the process exit code.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}

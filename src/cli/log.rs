//! Leveled messages on stderr for the binary (the library never prints).

use std::sync::atomic::{AtomicU8, Ordering};

use super::args::LogLevel;

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);

/// Set the level from `--log-level`.
pub fn set_level(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// True when messages at `level` are shown.
pub fn enabled(level: LogLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// A warning line on stderr.
pub fn warn(msg: impl std::fmt::Display) {
    if enabled(LogLevel::Warn) {
        eprintln!("rrun: warning: {msg}");
    }
}

/// An informational line on stderr.
pub fn info(msg: impl std::fmt::Display) {
    if enabled(LogLevel::Info) {
        eprintln!("rrun: {msg}");
    }
}

//! The container runtime: a prepared rootfs plus an image config view and run options become a
//! confined container through youki's libcontainer (DESIGN.md sections 2, 5.6 and 6).
//!
//! This module imports no other rrun module. The CLI's image path calls [`lifecycle::run`] with
//! a [`lifecycle::Launch`]: a [`lifecycle::PreparedRootfs`] (a directory, or a mount it made and
//! that the runtime unmounts on removal), the image's [`options::ImageConfigView`] and the
//! [`options::RunOptions`]. Spec building is in [`spec`], confinement data in [`caps`],
//! [`seccomp`]/[`seccomp_default`] and [`apparmor`], state on disk in [`state`], the other verbs
//! in [`manage`], host probing in [`info`].

pub mod apparmor;
pub mod caps;
pub mod error;
pub mod id;
pub mod info;
pub mod lifecycle;
pub mod manage;
pub mod options;
pub mod sdnotify;
pub mod seccomp;
pub mod seccomp_default;
pub mod spec;
pub mod state;
pub mod user;

mod container;
mod etc_files;
mod netns;
mod stdio;
mod workdir;

pub use error::{Result, RuntimeError};
pub use id::{ContainerId, ContainerName};
pub use lifecycle::{ExecOptions, Launch, MonitorCommand, PreparedRootfs, RunOutcome};
pub use options::{ImageConfigView, RunOptions};
pub use state::StateDir;

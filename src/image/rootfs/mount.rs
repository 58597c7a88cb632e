//! The two mounts of a container root filesystem: the overlay of the layers, and the private
//! tmpfs that holds everything of a sealed run (decrypted layers, upper and work directories).

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use super::error::{Result, RootfsError};

/// The most bytes of mount options the kernel accepts (one page).
const MAX_MOUNT_DATA: usize = 4095;

/// Mount a private tmpfs (`mode=0700`, never swapped out when the kernel knows `noswap`) at
/// `target`, an existing directory.
pub fn sealed_tmpfs(target: &Path) -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let mount = |data: &str| {
        nix::mount::mount(
            Some("rrun-sealed"),
            target,
            Some("tmpfs"),
            flags,
            Some(data),
        )
    };
    // `noswap` exists since Linux 6.4; older kernels refuse the unknown option with EINVAL.
    match mount("mode=0700,noswap") {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => mount("mode=0700"),
        Err(e) => Err(e),
    }
    .map_err(|e| RootfsError::Mount {
        what: "the sealed tmpfs",
        target: target.to_path_buf(),
        reason: e.desc().to_lowercase(),
    })
}

/// The overlay options for `lowers` (top first), `upper` and `work`.
fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    let mut all: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
    all.extend([upper, work]);
    for p in &all {
        let s = p.to_string_lossy();
        if s.contains([',', ':', '\\']) || s.contains('\n') {
            return Err(RootfsError::Mount {
                what: "the overlay",
                target: p.to_path_buf(),
                reason: "the path holds a ',', ':' or '\\', which overlay options cannot carry; use a --root and --state without them".into(),
            });
        }
    }
    let lower = lowers
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join(":");
    Ok(format!(
        "lowerdir={lower},upperdir={},workdir={}",
        upper.display(),
        work.display()
    ))
}

/// Mount an overlay of `lowers` (top first) with `upper` and `work` at `target`.
pub fn overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let data = overlay_options(lowers, upper, work)?;
    if data.len() > MAX_MOUNT_DATA {
        return Err(RootfsError::Mount {
            what: "the overlay",
            target: target.to_path_buf(),
            reason: format!(
                "the image has {} layers, more than one overlay mount can name with these paths; use a shorter --root",
                lowers.len()
            ),
        });
    }
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| RootfsError::Mount {
        what: "the overlay",
        target: target.to_path_buf(),
        reason: e.desc().to_lowercase(),
    })
}

/// Unmount `target` (lazily, so that a busy mount still disappears from the tree). A path that
/// is not a mount point is fine.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_list_lowers_top_first() {
        let o = overlay_options(
            &[PathBuf::from("/s/top"), PathBuf::from("/s/bottom")],
            Path::new("/c/upper"),
            Path::new("/c/work"),
        )
        .unwrap();
        assert_eq!(
            o,
            "lowerdir=/s/top:/s/bottom,upperdir=/c/upper,workdir=/c/work"
        );
    }

    #[test]
    fn overlay_options_refuse_separators_in_paths() {
        let err = overlay_options(
            &[PathBuf::from("/s/a,b")],
            Path::new("/c/upper"),
            Path::new("/c/work"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("overlay options cannot carry"),
            "{err}"
        );
    }
}

//! AppArmor: detect it, generate and load the `rrun-default` profile, and decide which profile
//! a container gets. A profile that was asked for and cannot be applied is an error.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use super::error::{Result, RuntimeError};
use super::options::AppArmorChoice;

/// The profile rrun confines containers with when AppArmor is enabled.
pub const DEFAULT_PROFILE: &str = "rrun-default";

const ENABLED_FILE: &str = "/sys/module/apparmor/parameters/enabled";
const PROFILES_FILE: &str = "/sys/kernel/security/apparmor/profiles";

/// Whether the kernel enforces AppArmor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppArmorStatus {
    /// `/sys/module/apparmor/parameters/enabled` reads `Y`.
    Enabled,
    /// Not enabled, with the reason.
    Disabled(String),
}

/// Read the kernel's AppArmor switch.
pub fn status() -> AppArmorStatus {
    match std::fs::read_to_string(ENABLED_FILE) {
        Ok(s) if s.trim() == "Y" => AppArmorStatus::Enabled,
        Ok(s) => AppArmorStatus::Disabled(format!("{ENABLED_FILE} reads {:?}", s.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            AppArmorStatus::Disabled("the kernel has no AppArmor module".into())
        }
        Err(e) => AppArmorStatus::Disabled(format!("{ENABLED_FILE}: {e}")),
    }
}

/// The text of a docker-default-like profile named `name`: network, capabilities and files are
/// governed by the other layers; it denies mounts, writes to most of /proc and /sys, reading
/// /proc/kcore, /sys/firmware and the security fs, and signals/ptrace across profiles.
pub fn profile_text(name: &str) -> String {
    format!(
        r#"#include <tunables/global>

profile {name} flags=(attach_disconnected,mediate_deleted) {{
  #include <abstractions/base>

  network,
  capability,
  file,
  umount,

  signal (receive) peer=unconfined,
  signal (send,receive) peer={name},
  ptrace (trace,read,tracedby,readby) peer={name},

  deny mount,
  deny @{{PROC}}/* w,
  deny @{{PROC}}/{{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}}/** w,
  deny @{{PROC}}/sys/[^k]** w,
  deny @{{PROC}}/sys/kernel/{{?,??,[^s][^h][^m]**}} w,
  deny @{{PROC}}/sysrq-trigger rwklx,
  deny @{{PROC}}/kcore rwklx,
  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/devices/virtual/powercap/** rwklx,
  deny /sys/kernel/security/** rwklx,
}}
"#
    )
}

/// Whether the kernel already has a profile of this name loaded.
fn is_loaded(name: &str) -> bool {
    std::fs::read_to_string(PROFILES_FILE)
        .map(|t| t.lines().any(|l| l.split(" (").next() == Some(name)))
        .unwrap_or(false)
}

/// Load `rrun-default` with `apparmor_parser -Kr` unless it is loaded already; the profile text
/// is also written to `dir` for the record.
pub fn ensure_default_loaded(dir: &Path) -> Result<()> {
    if is_loaded(DEFAULT_PROFILE) {
        return Ok(());
    }
    let text = profile_text(DEFAULT_PROFILE);
    let file = dir.join(DEFAULT_PROFILE);
    std::fs::create_dir_all(dir).map_err(|e| RuntimeError::io_at(dir, e))?;
    std::fs::write(&file, &text).map_err(|e| RuntimeError::io_at(&file, e))?;
    let fail = |reason: String| RuntimeError::AppArmorLoad {
        profile: DEFAULT_PROFILE.into(),
        reason,
    };
    let mut child = Command::new("apparmor_parser")
        .arg("-Kr")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run apparmor_parser ({e}): install the apparmor package"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(())
}

/// The profile to put in the spec for a choice, given the host's status. `dir` receives the
/// generated profile when it must be loaded.
pub fn resolve(
    choice: &AppArmorChoice,
    host: &AppArmorStatus,
    dir: &Path,
) -> Result<Option<String>> {
    match (choice, host) {
        (AppArmorChoice::Unconfined, _) => Ok(None),
        (AppArmorChoice::Default, AppArmorStatus::Disabled(_)) => Ok(None),
        (AppArmorChoice::Default, AppArmorStatus::Enabled) => {
            ensure_default_loaded(dir)?;
            Ok(Some(DEFAULT_PROFILE.into()))
        }
        (AppArmorChoice::Profile(name), AppArmorStatus::Disabled(reason)) => {
            Err(RuntimeError::AppArmorUnavailable {
                profile: name.clone(),
                reason: reason.clone(),
            })
        }
        (AppArmorChoice::Profile(name), AppArmorStatus::Enabled) => {
            if name == DEFAULT_PROFILE {
                ensure_default_loaded(dir)?;
            } else if !is_loaded(name) {
                return Err(RuntimeError::AppArmorLoad {
                    profile: name.clone(),
                    reason: "no such profile is loaded: load it with apparmor_parser first".into(),
                });
            }
            Ok(Some(name.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_for_profile_without_apparmor_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let off = AppArmorStatus::Disabled("the kernel has no AppArmor module".into());
        assert_eq!(
            resolve(&AppArmorChoice::Default, &off, dir.path()).unwrap(),
            None
        );
        assert_eq!(
            resolve(&AppArmorChoice::Unconfined, &off, dir.path()).unwrap(),
            None
        );
        let e = resolve(&AppArmorChoice::Profile("x".into()), &off, dir.path()).unwrap_err();
        assert!(e.to_string().contains("not enabled"), "{e}");
    }

    #[test]
    fn default_profile_denies_mounts_and_kcore() {
        let t = profile_text(DEFAULT_PROFILE);
        assert!(t.contains("profile rrun-default flags=(attach_disconnected,mediate_deleted) {"));
        assert!(t.contains("deny mount,"));
        assert!(t.contains("deny @{PROC}/kcore rwklx,"));
        assert!(t.contains("peer=rrun-default"));
    }
}

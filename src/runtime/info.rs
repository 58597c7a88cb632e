//! `rrun info`: what confinement this host can give containers (cgroups, seccomp, AppArmor,
//! landlock, user namespaces) and where rrun keeps its data.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::apparmor::{self, AppArmorStatus};
use super::seccomp::kernel_version;

/// Everything `rrun info` reports.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// Kernel release.
    pub kernel: String,
    /// The container runtime library.
    pub runtime: String,
    /// cgroups.
    pub cgroups: CgroupInfo,
    /// seccomp.
    pub seccomp: SeccompInfo,
    /// AppArmor.
    pub apparmor: AppArmorInfo,
    /// landlock.
    pub landlock: LandlockInfo,
    /// Active Linux security modules.
    pub lsm: Vec<String>,
    /// Where the list of security modules comes from.
    pub lsm_source: String,
    /// User namespaces.
    pub user_namespaces: UserNsInfo,
    /// The image store root.
    pub store: PathBuf,
    /// The runtime state directory.
    pub state: PathBuf,
}

/// cgroups.
#[derive(Debug, Clone, Serialize)]
pub struct CgroupInfo {
    /// 1 or 2: the hierarchy containers are managed in.
    pub version: u8,
    /// `legacy` (v1), `hybrid` (v1 plus a v2 tree) or `unified` (v2).
    pub mode: String,
    /// Controllers of that hierarchy.
    pub controllers: Vec<String>,
}

/// seccomp.
#[derive(Debug, Clone, Serialize)]
pub struct SeccompInfo {
    /// The kernel supports seccomp filters.
    pub kernel: bool,
    /// rrun's libcontainer is built with its libseccomp feature (without it, filters would be
    /// silently skipped; rrun always builds it in).
    pub libseccomp_feature: bool,
    /// The libseccomp library version in use.
    pub libseccomp_version: String,
    /// The filter actions the kernel offers.
    pub actions: Vec<String>,
    /// The default profile.
    pub default_profile: String,
}

/// AppArmor.
#[derive(Debug, Clone, Serialize)]
pub struct AppArmorInfo {
    /// Whether the kernel enforces AppArmor.
    pub enabled: bool,
    /// Why not, or which profile containers get.
    pub detail: String,
}

/// landlock.
#[derive(Debug, Clone, Serialize)]
pub struct LandlockInfo {
    /// Whether landlock is an active LSM.
    pub enabled: bool,
    /// The landlock ABI this kernel's version provides (from the version number, not a probe).
    pub abi: Option<u32>,
}

/// User namespaces.
#[derive(Debug, Clone, Serialize)]
pub struct UserNsInfo {
    /// `user.max_user_namespaces`.
    pub max: Option<u64>,
    /// Whether unprivileged users may create them (Debian's sysctl; absent means yes).
    pub unprivileged: bool,
}

fn read_trim(p: &str) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

fn cgroups() -> CgroupInfo {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    let unified_root = statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if unified_root {
        let controllers = read_trim("/sys/fs/cgroup/cgroup.controllers")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        return CgroupInfo {
            version: 2,
            mode: "unified".into(),
            controllers,
        };
    }
    let hybrid = statfs("/sys/fs/cgroup/unified")
        .map(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    // /proc/cgroups: name, hierarchy id, number of cgroups, enabled.
    let controllers = std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[1] != "0" && f[3] == "1").then(|| f[0].to_owned())
        })
        .collect();
    CgroupInfo {
        version: 1,
        mode: if hybrid { "hybrid" } else { "legacy" }.into(),
        controllers,
    }
}

/// The active LSMs: securityfs's list when it is mounted, else the kernel command line's
/// `lsm=`, else the build's CONFIG_LSM from /proc/config.gz.
fn lsm_list() -> (Vec<String>, String) {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if let Some(l) = read_trim("/sys/kernel/security/lsm") {
        return (split(&l), "/sys/kernel/security/lsm".into());
    }
    if let Some(cmd) = read_trim("/proc/cmdline") {
        if let Some(l) = cmd.split_whitespace().find_map(|w| w.strip_prefix("lsm=")) {
            return (split(l), "kernel command line lsm=".into());
        }
    }
    if let Ok(f) = std::fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        use std::io::Read as _;
        if flate2::read::GzDecoder::new(f)
            .take(4 << 20)
            .read_to_string(&mut text)
            .is_ok()
        {
            if let Some(l) = text.lines().find_map(|l| l.strip_prefix("CONFIG_LSM=")) {
                return (
                    split(l.trim_matches('"')),
                    "CONFIG_LSM in /proc/config.gz (securityfs is not mounted)".into(),
                );
            }
        }
    }
    (Vec::new(), "unknown (securityfs is not mounted)".into())
}

/// The landlock ABI a kernel version provides (ABI 1 in 5.13, 2 in 5.19, 3 in 6.2, 4 in 6.7,
/// 5 in 6.10, 6 in 6.12, 7 in 6.15).
fn landlock_abi(kernel: (u32, u32)) -> Option<u32> {
    [
        (6, 15, 7),
        (6, 12, 6),
        (6, 10, 5),
        (6, 7, 4),
        (6, 2, 3),
        (5, 19, 2),
        (5, 13, 1),
    ]
    .iter()
    .find(|(maj, min, _)| kernel >= (*maj, *min))
    .map(|(_, _, abi)| *abi)
}

/// Probe the host.
pub fn probe(store: &Path, state: &Path) -> HostInfo {
    let (lsm, lsm_source) = lsm_list();
    let landlock_on = lsm.iter().any(|l| l == "landlock");
    let seccomp_kernel = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
        .unwrap_or(false);
    let v = libseccomp::ScmpVersion::current().ok();
    let apparmor = match apparmor::status() {
        AppArmorStatus::Enabled => AppArmorInfo {
            enabled: true,
            detail: format!("containers get profile {}", apparmor::DEFAULT_PROFILE),
        },
        AppArmorStatus::Disabled(reason) => AppArmorInfo {
            enabled: false,
            detail: format!("{reason}; containers run without an AppArmor profile, and asking for one is an error"),
        },
    };
    let kernel = kernel_version();
    HostInfo {
        kernel: rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned(),
        runtime: "libcontainer 0.7 (youki), embedded".into(),
        cgroups: cgroups(),
        seccomp: SeccompInfo {
            kernel: seccomp_kernel,
            libseccomp_feature: true,
            libseccomp_version: v
                .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
                .unwrap_or_else(|| "unknown".into()),
            actions: read_trim("/proc/sys/kernel/seccomp/actions_avail")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            default_profile: "rrun default (Docker's default allow list, EPERM otherwise)".into(),
        },
        apparmor,
        landlock: LandlockInfo {
            enabled: landlock_on,
            abi: landlock_on.then(|| landlock_abi(kernel)).flatten(),
        },
        lsm,
        lsm_source,
        user_namespaces: UserNsInfo {
            max: read_trim("/proc/sys/user/max_user_namespaces").and_then(|s| s.parse().ok()),
            unprivileged: read_trim("/proc/sys/kernel/unprivileged_userns_clone")
                .map(|s| s != "0")
                .unwrap_or(true),
        },
        store: store.to_path_buf(),
        state: state.to_path_buf(),
    }
}

impl HostInfo {
    /// The text form.
    pub fn to_text(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let mut s = String::new();
        let _ = writeln!(s, "kernel:           {}", self.kernel);
        let _ = writeln!(s, "runtime:          {}", self.runtime);
        let _ = writeln!(
            s,
            "cgroups:          v{} ({}), controllers: {}",
            self.cgroups.version,
            self.cgroups.mode,
            self.cgroups.controllers.join(" ")
        );
        let _ = writeln!(
            s,
            "seccomp:          kernel {}, libseccomp {} (feature {}), actions: {}",
            yes(self.seccomp.kernel),
            self.seccomp.libseccomp_version,
            if self.seccomp.libseccomp_feature {
                "on"
            } else {
                "off"
            },
            self.seccomp.actions.join(" ")
        );
        let _ = writeln!(
            s,
            "apparmor:         {}: {}",
            if self.apparmor.enabled {
                "enabled"
            } else {
                "disabled"
            },
            self.apparmor.detail
        );
        let _ = writeln!(
            s,
            "landlock:         {}{}",
            if self.landlock.enabled {
                "enabled"
            } else {
                "disabled"
            },
            self.landlock
                .abi
                .map(|a| format!(", ABI {a} (by kernel version)"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "lsm:              {} (from {})",
            self.lsm.join(","),
            self.lsm_source
        );
        let _ = writeln!(
            s,
            "user namespaces:  max {}, unprivileged {}",
            self.user_namespaces
                .max
                .map(|m| m.to_string())
                .unwrap_or_else(|| "unknown".into()),
            yes(self.user_namespaces.unprivileged)
        );
        let _ = writeln!(s, "store:            {}", self.store.display());
        let _ = writeln!(s, "state:            {}", self.state.display());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landlock_abi_by_kernel() {
        assert_eq!(landlock_abi((5, 10)), None);
        assert_eq!(landlock_abi((5, 15)), Some(1));
        assert_eq!(landlock_abi((6, 1)), Some(2));
        assert_eq!(landlock_abi((6, 13)), Some(6));
        assert_eq!(landlock_abi((6, 18)), Some(7));
    }

    #[test]
    fn probe_reports_paths() {
        let i = probe(Path::new("/var/lib/rrun"), Path::new("/run/rrun"));
        let t = i.to_text();
        assert!(t.contains("store:            /var/lib/rrun"));
        assert!(t.contains("cgroups:"));
        assert!(
            serde_json::to_value(&i).unwrap()["seccomp"]["libseccomp_feature"]
                .as_bool()
                .unwrap()
        );
    }
}

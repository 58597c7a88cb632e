//! Seccomp filters for the spec: rrun's default profile resolved for the container's
//! capabilities and architecture, or a user's profile file in Docker's or the OCI format.

use std::path::Path;

use libcontainer::oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use super::caps::CapSet;
use super::error::{Result, RuntimeError};
use super::seccomp_default::{self as table, Action, ArgTest};

/// The seccomp architectures a filter covers on this host: the native one and its 32-bit
/// compat ABI (i386 on x86_64, arm on aarch64), with the same allow list as Docker's arch map.
/// Unlike Docker, x32 is left out: x32 processes are killed on their first system call (no
/// distribution kernel enables x32, and each extra architecture costs milliseconds per start).
pub fn host_architectures() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        _ => vec![Arch::ScmpArchNative],
    }
}

/// rrun's default profile for a container with these capabilities on this architecture.
pub fn default_profile(caps: &CapSet) -> LinuxSeccomp {
    let arch = std::env::consts::ARCH;
    let mut syscalls = Vec::new();
    for rule in table::RULES {
        if !rule.arches.is_empty() && !rule.arches.contains(&arch) {
            continue;
        }
        if !rule.needs_caps.is_empty() && !rule.needs_caps.iter().any(|c| caps.contains(c)) {
            continue;
        }
        if rule.unless_caps.iter().any(|c| caps.contains(c)) {
            continue;
        }
        let names: Vec<String> = rule.names.split_whitespace().map(str::to_owned).collect();
        let args = rule.args.iter().map(|(i, t)| oci_arg(*i, *t)).collect();
        syscalls.push(syscall(names, rule.action, args));
    }
    let mut s = LinuxSeccomp::default();
    s.set_default_action(LinuxSeccompAction::ScmpActErrno);
    s.set_default_errno_ret(Some(table::DEFAULT_ERRNO));
    s.set_architectures(Some(host_architectures()));
    s.set_syscalls(Some(syscalls));
    s
}

fn syscall(names: Vec<String>, action: Action, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut sc = LinuxSyscall::default();
    sc.set_names(names);
    match action {
        Action::Allow => sc.set_action(LinuxSeccompAction::ScmpActAllow),
        Action::Errno(e) => {
            sc.set_action(LinuxSeccompAction::ScmpActErrno);
            sc.set_errno_ret(Some(e))
        }
    };
    if !args.is_empty() {
        sc.set_args(Some(args));
    }
    sc
}

/// One argument condition in the form libcontainer 0.7 loads: its masked-equal comparison takes
/// the expected value from `value` and the mask from `valueTwo` (libseccomp-rs order), the
/// reverse of Docker's and runc's profile files, which put the mask in `value`.
fn oci_arg(index: u32, test: ArgTest) -> LinuxSeccompArg {
    let (op, value, value_two) = match test {
        ArgTest::Eq(v) => (LinuxSeccompOperator::ScmpCmpEq, v, None),
        ArgTest::Ne(v) => (LinuxSeccompOperator::ScmpCmpNe, v, None),
        ArgTest::Lt(v) => (LinuxSeccompOperator::ScmpCmpLt, v, None),
        ArgTest::Le(v) => (LinuxSeccompOperator::ScmpCmpLe, v, None),
        ArgTest::Gt(v) => (LinuxSeccompOperator::ScmpCmpGt, v, None),
        ArgTest::Ge(v) => (LinuxSeccompOperator::ScmpCmpGe, v, None),
        ArgTest::MaskedEq { mask, value } => {
            (LinuxSeccompOperator::ScmpCmpMaskedEq, value, Some(mask))
        }
    };
    let mut b = LinuxSeccompArgBuilder::default()
        .index(index as usize)
        .value(value)
        .op(op);
    if let Some(v2) = value_two {
        b = b.value_two(v2);
    }
    b.build().expect("every field of a seccomp argument is set")
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<FileArchMap>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    syscalls: Option<Vec<FileSyscall>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileSyscall {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<FileArg>>,
    #[serde(default)]
    includes: Option<FileCond>,
    #[serde(default)]
    excludes: Option<FileCond>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileCond {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Docker's name for this architecture, as profile `includes.arches` use it.
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn seccomp_arch_name() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// Load a profile file (Docker's format with `archMap`/`includes`/`excludes`, or the OCI
/// `linux.seccomp` format) and resolve it for the container's capabilities and this host.
pub fn load_profile(path: &Path, caps: &CapSet) -> Result<LinuxSeccomp> {
    let bad = |reason: String| RuntimeError::BadSeccompProfile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| RuntimeError::io_at(path, e))?;
    let file: FileProfile =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a seccomp profile: {e}")))?;
    let action = |a: &str| -> Result<LinuxSeccompAction> {
        let act = a
            .parse::<LinuxSeccompAction>()
            .map_err(|_| bad(format!("unknown action {a:?}")))?;
        if matches!(
            act,
            LinuxSeccompAction::ScmpActNotify | LinuxSeccompAction::ScmpActTrace
        ) {
            return Err(bad(format!(
                "action {a} needs a seccomp agent, which rrun does not run"
            )));
        }
        Ok(act)
    };
    let mut out = LinuxSeccomp::default();
    out.set_default_action(action(&file.default_action)?);
    out.set_default_errno_ret(file.default_errno_ret);

    let arch_names: Vec<String> = if let Some(a) = file.architectures {
        a
    } else if let Some(map) = file.arch_map {
        map.into_iter()
            .find(|m| m.architecture == seccomp_arch_name())
            .map(|m| {
                std::iter::once(m.architecture)
                    .chain(m.sub_architectures.unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let arches = arch_names
        .iter()
        .map(|a| {
            a.parse::<Arch>()
                .map_err(|_| bad(format!("unknown architecture {a:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if !arches.is_empty() {
        out.set_architectures(Some(arches));
    }
    if let Some(flags) = file.flags {
        let flags = flags
            .iter()
            .map(|f| {
                f.parse::<LinuxSeccompFilterFlag>()
                    .map_err(|_| bad(format!("unknown flag {f:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        out.set_flags(Some(flags));
    }

    let kernel = kernel_version();
    let mut syscalls = Vec::new();
    for sc in file.syscalls.unwrap_or_default() {
        if !condition_holds(sc.includes.as_ref(), caps, kernel)
            || excluded(sc.excludes.as_ref(), caps)
        {
            continue;
        }
        let mut names = sc.names;
        names.extend(sc.name);
        if names.is_empty() {
            return Err(bad("a syscalls entry has no names".into()));
        }
        let mut args = Vec::new();
        for a in sc.args.unwrap_or_default() {
            let test = match a.op.as_str() {
                "SCMP_CMP_EQ" => ArgTest::Eq(a.value),
                "SCMP_CMP_NE" => ArgTest::Ne(a.value),
                "SCMP_CMP_LT" => ArgTest::Lt(a.value),
                "SCMP_CMP_LE" => ArgTest::Le(a.value),
                "SCMP_CMP_GT" => ArgTest::Gt(a.value),
                "SCMP_CMP_GE" => ArgTest::Ge(a.value),
                // Profile files put the mask in `value` and the expected value in `valueTwo`.
                "SCMP_CMP_MASKED_EQ" => ArgTest::MaskedEq {
                    mask: a.value,
                    value: a.value_two.unwrap_or(0),
                },
                other => return Err(bad(format!("unknown argument operator {other:?}"))),
            };
            if a.index > 5 {
                return Err(bad(format!("argument index {} is more than 5", a.index)));
            }
            args.push(oci_arg(a.index, test));
        }
        let mut s = LinuxSyscall::default();
        s.set_names(names);
        s.set_action(action(&sc.action)?);
        s.set_errno_ret(sc.errno_ret);
        if !args.is_empty() {
            s.set_args(Some(args));
        }
        syscalls.push(s);
    }
    out.set_syscalls(Some(syscalls));
    Ok(out)
}

/// Whether an `includes` block holds: every listed kind must match.
fn condition_holds(c: Option<&FileCond>, caps: &CapSet, kernel: (u32, u32)) -> bool {
    let Some(c) = c else { return true };
    if let Some(cs) = &c.caps {
        if !cs.is_empty() && !cs.iter().any(|x| has_cap(caps, x)) {
            return false;
        }
    }
    if let Some(a) = &c.arches {
        if !a.is_empty() && !a.iter().any(|x| x == docker_arch()) {
            return false;
        }
    }
    if let Some(k) = &c.min_kernel {
        if let Some(min) = parse_kernel(k) {
            if kernel < min {
                return false;
            }
        }
    }
    true
}

/// Whether an `excludes` block applies: any listed match excludes the rule.
fn excluded(c: Option<&FileCond>, caps: &CapSet) -> bool {
    let Some(c) = c else { return false };
    c.caps.iter().flatten().any(|x| has_cap(caps, x))
        || c.arches.iter().flatten().any(|x| x == docker_arch())
}

fn has_cap(caps: &CapSet, name: &str) -> bool {
    let bare = name.strip_prefix("CAP_").unwrap_or(name);
    caps.contains(bare)
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The running kernel's major.minor.
pub fn kernel_version() -> (u32, u32) {
    let u = rustix::system::uname();
    parse_kernel(&u.release().to_string_lossy()).unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::caps;

    fn allowed(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn default_profile_denies_namespace_and_kernel_calls() {
        let set = caps::resolve(&[], &[]).unwrap();
        let p = default_profile(&set);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        let names = allowed(&p);
        assert!(names.len() > 300, "{}", names.len());
        for n in ["read", "write", "execve", "clone3", "chroot"] {
            let present = names.iter().any(|x| x == n);
            assert_eq!(present, n != "clone3", "{n}");
        }
        for n in table::NEVER_WITHOUT_CAPS {
            assert!(
                !names.iter().any(|x| x == n),
                "{n} must not be allowed by default"
            );
        }
        // clone is allowed only without namespace flags; clone3 answers ENOSYS.
        let clone = p
            .syscalls()
            .iter()
            .flatten()
            .find(|s| s.names().contains(&"clone".to_string()))
            .unwrap();
        let arg = &clone.args().as_ref().unwrap()[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(arg.value_two(), Some(table::CLONE_NAMESPACE_FLAGS));
        assert!(p
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.names() == &["clone3".to_string()] && s.errno_ret() == Some(38)));
    }

    #[test]
    fn sys_admin_unlocks_mount_and_unrestricted_clone() {
        let set = caps::resolve(&["SYS_ADMIN".into()], &[]).unwrap();
        let p = default_profile(&set);
        let names = allowed(&p);
        for n in ["mount", "unshare", "setns", "clone", "clone3"] {
            assert!(names.iter().any(|x| x == n), "{n}");
        }
    }

    #[test]
    fn docker_format_file_resolves_includes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.json");
        std::fs::write(
            &f,
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},
                           {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
                "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                            {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                            {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2114060288,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        let set = caps::resolve(&[], &[]).unwrap();
        let p = load_profile(&f, &set).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(p.architectures().as_ref().unwrap().len(), 2);
        let sc = p.syscalls().as_ref().unwrap();
        assert_eq!(sc.len(), 2, "the CAP_SYS_ADMIN rule is left out");
        let arg = &sc[1].args().as_ref().unwrap()[0];
        assert_eq!((arg.value(), arg.value_two()), (0, Some(2114060288)));
        std::fs::write(&f, "{\"defaultAction\":\"SCMP_ACT_BOGUS\"}").unwrap();
        assert!(load_profile(&f, &set)
            .unwrap_err()
            .to_string()
            .contains("SCMP_ACT_BOGUS"));
        std::fs::write(&f, "not json").unwrap();
        assert!(load_profile(&f, &set).is_err());
    }
}

//! The OCI runtime `Spec` of a container, built from the image config view and the run options
//! with rrun's confinement defaults (DESIGN.md section 5.6).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    LinuxBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};

use super::caps;
use super::error::{Result, RuntimeError};
use super::id::ContainerId;
use super::options::{ImageConfigView, NetworkMode, NoNewPrivileges, RunOptions, SeccompChoice};
use super::seccomp;
use super::user::{self, ResolvedUser};

/// The default PATH when neither the image nor the options set one (Docker's).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// /proc and /sys paths hidden from the container (Docker's list).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// /proc paths the container sees read-only (Docker's list).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Host files rrun writes for the container and bind-mounts over its /etc files.
#[derive(Debug, Clone)]
pub struct EtcFiles {
    /// Source of /etc/hosts.
    pub hosts: PathBuf,
    /// Source of /etc/hostname.
    pub hostname: PathBuf,
    /// Source of /etc/resolv.conf.
    pub resolv_conf: PathBuf,
}

/// What the spec builder needs besides the options.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    /// The container's id (names its cgroup).
    pub id: &'a ContainerId,
    /// The prepared root filesystem (absolute).
    pub rootfs: &'a Path,
    /// The image's config.
    pub image: &'a ImageConfigView,
    /// The run options.
    pub options: &'a RunOptions,
    /// The /etc files to bind-mount.
    pub etc: &'a EtcFiles,
    /// The container's hostname.
    pub hostname: &'a str,
    /// The AppArmor profile, already resolved against the host (see `apparmor::resolve`).
    pub apparmor_profile: Option<String>,
    /// Whether the host's memory cgroup accounts swap (then swap is limited to twice the memory).
    pub swap_accounting: bool,
}

/// The process arguments: the entrypoint followed by the command of the run, or else the
/// image's cmd.
pub fn command(image: &ImageConfigView, options: &RunOptions) -> Result<Vec<String>> {
    let tail = if options.command.is_empty() {
        &image.cmd
    } else {
        &options.command
    };
    let args: Vec<String> = image.entrypoint.iter().chain(tail).cloned().collect();
    if args.is_empty() || args[0].is_empty() {
        return Err(RuntimeError::MissingCommand);
    }
    Ok(args)
}

/// The environment: PATH default, the image's, HOSTNAME, TERM with a tty, HOME of the user,
/// then the options' (later entries replace earlier ones with the same key, order kept).
pub fn environment(
    image: &ImageConfigView,
    options: &RunOptions,
    hostname: &str,
    user: &ResolvedUser,
) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, String> = HashMap::new();
    let mut set = |entry: &str| {
        let (k, _) = entry.split_once('=').unwrap_or((entry, ""));
        if !values.contains_key(k) {
            order.push(k.to_owned());
        }
        values.insert(k.to_owned(), entry.to_owned());
    };
    set(DEFAULT_PATH);
    set(&format!("HOSTNAME={hostname}"));
    if options.tty {
        set("TERM=xterm");
    }
    set(&format!("HOME={}", user.home.as_deref().unwrap_or("/")));
    for e in &image.env {
        set(e);
    }
    for e in &options.env {
        set(e);
    }
    order
        .into_iter()
        .filter_map(|k| values.remove(&k))
        .collect()
}

fn mount(dst: &str, typ: &str, src: &str, opts: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dst)
        .typ(typ)
        .source(src)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| RuntimeError::option("--volume", dst, e.to_string()))
}

/// The container's mounts: /proc, a minimal /dev, /sys read-only, the cgroup tree read-only,
/// the /etc files, then tmpfs and volumes in the order given.
pub fn mounts(options: &RunOptions, etc: &EtcFiles) -> Result<Vec<Mount>> {
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];
    let etc_mode = if options.read_only { "ro" } else { "rw" };
    for (dst, src) in [
        ("/etc/hosts", &etc.hosts),
        ("/etc/hostname", &etc.hostname),
        ("/etc/resolv.conf", &etc.resolv_conf),
    ] {
        m.push(mount(
            dst,
            "bind",
            &src.to_string_lossy(),
            &["rbind", "rprivate", "nosuid", "nodev", "noexec", etc_mode],
        )?);
    }
    for t in &options.tmpfs {
        let mut opts: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
        opts.extend(t.options.iter().map(String::as_str));
        m.push(mount(&t.destination, "tmpfs", "tmpfs", &opts)?);
    }
    for v in &options.volumes {
        let mode = if v.read_only { "ro" } else { "rw" };
        m.push(mount(
            &v.destination,
            "bind",
            &v.source.to_string_lossy(),
            &["rbind", "rprivate", mode],
        )?);
    }
    Ok(m)
}

/// Build the spec. The user is resolved against the rootfs's own /etc/passwd and /etc/group.
pub fn build(input: &SpecInput<'_>) -> Result<Spec> {
    let o = input.options;
    let args = command(input.image, o)?;
    let user_spec = o
        .user
        .as_deref()
        .or(input.image.user.as_deref())
        .filter(|u| !u.is_empty());
    let user = match user_spec {
        Some(u) => user::resolve(u, input.rootfs)?,
        None => ResolvedUser::root(),
    };
    let cwd = o
        .workdir
        .as_deref()
        .or(input.image.working_dir.as_deref())
        .filter(|w| !w.is_empty())
        .unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(RuntimeError::option(
            "--workdir",
            cwd,
            "the working directory must be an absolute path",
        ));
    }
    let capset = caps::resolve(&o.cap_add, &o.cap_drop)?;
    let seccomp = match &o.security.seccomp {
        SeccompChoice::Default => Some(seccomp::default_profile(&capset)),
        SeccompChoice::Profile(p) => Some(seccomp::load_profile(p, &capset)?),
        SeccompChoice::Unconfined => None,
    };

    let oci_user = UserBuilder::default()
        .uid(user.uid)
        .gid(user.gid)
        .additional_gids(user.additional_gids.clone())
        .build()
        .map_err(|e| RuntimeError::option("--user", "", e.to_string()))?;
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(oci_user)
        .args(args)
        .env(environment(input.image, o, input.hostname, &user))
        .cwd(cwd)
        .capabilities(caps::to_oci(&capset)?)
        .build()
        .map_err(|e| RuntimeError::option("--user", "", e.to_string()))?;
    // Some(false) would make libcontainer load seccomp after dropping capabilities without
    // no_new_privs, which the kernel refuses: "unset" is None.
    process.set_no_new_privileges(match o.security.no_new_privileges {
        NoNewPrivileges::Set => Some(true),
        NoNewPrivileges::Unset => None,
    });
    process.set_apparmor_profile(input.apparmor_profile.clone());

    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Cgroup,
    ];
    if o.network == NetworkMode::None {
        namespaces.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|t| {
            LinuxNamespaceBuilder::default()
                .typ(t)
                .build()
                .map_err(|e| RuntimeError::option("--network", "", e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;

    let deny_all_devices = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(|e| RuntimeError::option("--device", "", e.to_string()))?;
    let mut resources = LinuxResourcesBuilder::default().devices(vec![deny_all_devices]);
    if let Some(limit) = o.memory {
        let mut mem = LinuxMemoryBuilder::default().limit(limit);
        if input.swap_accounting {
            mem = mem.swap(limit.saturating_mul(2));
        }
        resources = resources.memory(
            mem.build()
                .map_err(|e| RuntimeError::option("--memory", "", e.to_string()))?,
        );
    }
    if let Some(c) = o.cpus {
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .quota(c.quota)
                .period(c.period)
                .build()
                .map_err(|e| RuntimeError::option("--cpus", "", e.to_string()))?,
        );
    }
    if let Some(p) = o.pids_limit {
        resources = resources.pids(
            LinuxPidsBuilder::default()
                .limit(p)
                .build()
                .map_err(|e| RuntimeError::option("--pids-limit", "", e.to_string()))?,
        );
    }
    let resources = resources
        .build()
        .map_err(|e| RuntimeError::option("--memory", "", e.to_string()))?;

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(format!("/rrun/{}", input.id)))
        .resources(resources)
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .rootfs_propagation("private")
        .build()
        .map_err(|e| RuntimeError::option("--security-opt", "", e.to_string()))?;
    linux.set_seccomp(seccomp);

    let root = RootBuilder::default()
        .path(input.rootfs)
        .readonly(o.read_only)
        .build()
        .map_err(|e| RuntimeError::option("--read-only", "", e.to_string()))?;

    let mut spec = Spec::default();
    spec.set_version("1.0.2".into());
    spec.set_process(Some(process));
    spec.set_root(Some(root));
    spec.set_hostname(Some(input.hostname.to_owned()));
    spec.set_mounts(Some(mounts(o, input.etc)?));
    spec.set_linux(Some(linux));
    spec.set_annotations(None);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::options::{SecurityOptions, Tmpfs, Volume};
    use libcontainer::oci_spec::runtime::{Capability, LinuxSeccompAction};

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:web:/var/www:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nweb:x:33:\nstaff:x:50:web\n",
        )
        .unwrap();
        d
    }

    fn etc() -> EtcFiles {
        EtcFiles {
            hosts: "/s/hosts".into(),
            hostname: "/s/hostname".into(),
            resolv_conf: "/s/resolv.conf".into(),
        }
    }

    fn build_with(image: &ImageConfigView, o: &RunOptions, root: &Path) -> Result<Spec> {
        let id = ContainerId::generate().unwrap();
        let etc = etc();
        build(&SpecInput {
            id: &id,
            rootfs: root,
            image,
            options: o,
            etc: &etc,
            hostname: "h1",
            apparmor_profile: None,
            swap_accounting: true,
        })
    }

    #[test]
    fn defaults_confine_the_container() {
        let r = rootfs();
        let o = RunOptions {
            command: vec!["/bin/true".into()],
            ..Default::default()
        };
        let spec = build_with(&ImageConfigView::default(), &o, r.path()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        for t in [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Cgroup,
        ] {
            assert!(ns.contains(&t), "{t:?}");
        }
        assert!(!ns.contains(&LinuxNamespaceType::User));
        assert!(linux.cgroups_path().as_ref().unwrap().starts_with("/rrun/"));
        let masked = linux.masked_paths().as_ref().unwrap();
        for p in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ] {
            assert!(masked.iter().any(|m| m == p), "{p}");
        }
        let ro = linux.readonly_paths().as_ref().unwrap();
        for p in [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ] {
            assert!(ro.iter().any(|m| m == p), "{p}");
        }
        let seccomp = linux.seccomp().as_ref().unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.apparmor_profile(), &None);
        let eff = p
            .capabilities()
            .as_ref()
            .unwrap()
            .effective()
            .as_ref()
            .unwrap();
        assert_eq!(eff.len(), 14);
        assert!(!eff.contains(&Capability::SysAdmin));
        assert_eq!(p.user().uid(), 0);
        assert_eq!(p.cwd(), Path::new("/"));
        let env = p.env().as_ref().unwrap();
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert!(env.contains(&"HOSTNAME=h1".to_string()));
        let dsts: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().clone())
            .collect();
        for d in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/sys",
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
        ] {
            assert!(dsts.contains(&PathBuf::from(d)), "{d}");
        }
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));
        assert_eq!(spec.hostname().as_deref(), Some("h1"));
    }

    #[test]
    fn options_are_applied() {
        let r = rootfs();
        let mut security = SecurityOptions::default();
        security.apply("seccomp=unconfined").unwrap();
        security.apply("no-new-privileges=false").unwrap();
        let image = ImageConfigView {
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec!["echo image".into()],
            env: vec!["A=image".into(), "B=image".into()],
            working_dir: Some("/srv".into()),
            user: Some("root".into()),
        };
        let o = RunOptions {
            command: vec!["echo run".into()],
            env: vec!["B=run".into(), "C=run".into()],
            volumes: vec![Volume::parse("/tmp:/data:ro").unwrap()],
            tmpfs: vec![Tmpfs::parse("/scratch:size=1m").unwrap()],
            workdir: Some("/data".into()),
            user: Some("web:staff".into()),
            read_only: true,
            network: NetworkMode::Host,
            memory: Some(64 << 20),
            cpus: Some(crate::runtime::options::Cpus::parse("0.5", 2).unwrap()),
            pids_limit: Some(20),
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["CHOWN".into()],
            security,
            tty: true,
            ..Default::default()
        };
        let spec = build_with(&image, &o, r.path()).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["/bin/sh", "-c", "echo run"]);
        assert_eq!((p.user().uid(), p.user().gid()), (33, 50));
        assert_eq!(p.cwd(), Path::new("/data"));
        let env = p.env().as_ref().unwrap();
        assert!(
            env.contains(&"A=image".into())
                && env.contains(&"B=run".into())
                && env.contains(&"C=run".into())
        );
        assert!(env.contains(&"TERM=xterm".into()) && env.contains(&"HOME=/var/www".into()));
        assert_eq!(env.iter().filter(|e| e.starts_with("B=")).count(), 1);
        assert_eq!(p.no_new_privileges(), None);
        let eff = p
            .capabilities()
            .as_ref()
            .unwrap()
            .effective()
            .as_ref()
            .unwrap();
        assert!(eff.contains(&Capability::NetAdmin) && !eff.contains(&Capability::Chown));
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert!(!linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network));
        let res = linux.resources().as_ref().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.memory().as_ref().unwrap().swap(), Some(128 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(res.pids().as_ref().unwrap().limit(), 20);
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let mounts = spec.mounts().as_ref().unwrap();
        let data = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/data"))
            .unwrap();
        assert!(data.options().as_ref().unwrap().contains(&"ro".to_string()));
        let scratch = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/scratch"))
            .unwrap();
        assert!(scratch
            .options()
            .as_ref()
            .unwrap()
            .contains(&"size=1m".to_string()));
        let hosts = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/etc/hosts"))
            .unwrap();
        assert!(hosts
            .options()
            .as_ref()
            .unwrap()
            .contains(&"ro".to_string()));
    }

    #[test]
    fn missing_command_and_bad_inputs() {
        let r = rootfs();
        let e = build_with(
            &ImageConfigView::default(),
            &RunOptions::default(),
            r.path(),
        )
        .unwrap_err();
        assert!(matches!(e, RuntimeError::MissingCommand));
        let o = RunOptions {
            command: vec!["true".into()],
            user: Some("nobody".into()),
            ..Default::default()
        };
        let e = build_with(&ImageConfigView::default(), &o, r.path()).unwrap_err();
        assert!(e.to_string().contains("nobody"), "{e}");
        let o = RunOptions {
            command: vec!["true".into()],
            workdir: Some("relative".into()),
            ..Default::default()
        };
        assert!(build_with(&ImageConfigView::default(), &o, r.path()).is_err());
        let o = RunOptions {
            command: vec!["true".into()],
            cap_add: vec!["BOGUS".into()],
            ..Default::default()
        };
        assert!(build_with(&ImageConfigView::default(), &o, r.path()).is_err());
    }
}

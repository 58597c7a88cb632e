//! Containers through the CLI (needs root): isolation and confinement defaults, limits, options,
//! lifecycle verbs, signals, exit codes, bad input, `rrun info`.

use std::process::Stdio;
use std::time::Duration;

use crate::runtime_util::{status_field, wait_until, wait_with_timeout, Env};

#[test]
fn root_container_is_pid1_with_its_own_hostname_and_confined_by_default() {
    let env = Env::new();
    let out = env.sh(
        &["--hostname", "box1"],
        "echo pid=$$; hostname; cat /proc/self/status",
    );
    let text = out.ok();
    assert!(text.contains("pid=1\n"), "{text}");
    assert!(text.contains("\nbox1\n"), "{text}");
    assert_ne!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "box1"
    );
    assert_eq!(status_field(text, "Seccomp"), "2");
    assert_eq!(status_field(text, "NoNewPrivs"), "1");
    let eff = u64::from_str_radix(status_field(text, "CapEff"), 16).unwrap();
    assert_eq!(
        eff & (1 << 21),
        0,
        "CAP_SYS_ADMIN must not be effective: {eff:x}"
    );
    assert_eq!(
        eff.count_ones(),
        14,
        "Docker's 14 default capabilities: {eff:x}"
    );
    // rrun blocks the signals it forwards and ignores SIGPIPE; the container's first process
    // (exec'd by rrun, no shell in between) gets neither. (Signals ignored by rrun's own parent
    // stay ignored, as with runc: only SIGPIPE, which Rust ignores, is checked.)
    let first = env.run(&[], &["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]);
    let first = first.ok();
    assert_eq!(
        u64::from_str_radix(status_field(first, "SigBlk"), 16).unwrap(),
        0,
        "{first}"
    );
    let ign = u64::from_str_radix(status_field(first, "SigIgn"), 16).unwrap();
    assert_eq!(
        ign & (1 << (13 - 1)),
        0,
        "SIGPIPE must not be ignored: {first}"
    );
    // Without --hostname the hostname is the short id.
    let h = env.run(&[], &["hostname"]);
    let h = h.ok().trim();
    assert_eq!(h.len(), 12, "{h}");
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit()), "{h}");
}

#[test]
fn root_mount_unshare_and_keyctl_are_denied() {
    let env = Env::new();
    let out = env.sh(
        &[],
        "mount -t tmpfs none /mnt 2>&1; echo mount=$?; unshare -U true 2>&1; echo unshare=$?; unshare -n true 2>&1; echo unshare_net=$?",
    );
    let text = out.ok();
    for probe in ["mount=", "unshare=", "unshare_net="] {
        let line = text.lines().find(|l| l.starts_with(probe)).unwrap();
        assert_ne!(line, format!("{probe}0"), "{text}");
    }
    // unshare(CLONE_NEWUSER) needs no capability: only seccomp stops it.
    assert!(text.contains("Operation not permitted"), "{text}");

    #[cfg(target_arch = "x86_64")]
    {
        // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0): EPERM under the profile.
        crate::runtime_util::install_probe(&env, "keyctl-probe", 250, [0, (-3i32) as u32, 0]);
        let denied = env.run(&[], &["/bin/keyctl-probe"]);
        assert_eq!(denied.code, 1, "keyctl must fail with EPERM: {denied:?}");
        let unconfined = env.run(
            &["--security-opt", "seccomp=unconfined"],
            &["/bin/keyctl-probe"],
        );
        assert_ne!(
            unconfined.code, 1,
            "without seccomp keyctl is not EPERM: {unconfined:?}"
        );
    }
}

#[test]
fn root_masked_and_readonly_proc_paths() {
    let env = Env::new();
    let mut checked = 0;
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ] {
        // Paths the host kernel does not have cannot leak; the spec masks them all (unit test).
        if !std::path::Path::new(p).exists() {
            eprintln!("note: host has no {p}; checking the others");
            continue;
        }
        let out = env.sh(&[], &format!("stat -c %t:%T {p}; wc -c < {p}"));
        assert_eq!(
            out.ok(),
            "1:3\n0\n",
            "{p} must be /dev/null inside: {out:?}"
        );
        checked += 1;
    }
    assert!(checked >= 1, "no masked /proc path exists on this host");
    let out = env.sh(
        &[],
        "ls -A /sys/firmware | wc -l; echo x > /proc/sys/kernel/domainname 2>&1; echo rc=$?; echo 1 > /proc/sysrq-trigger; echo rc=$?",
    );
    let text = out.ok();
    assert!(text.starts_with("0\n"), "{text}");
    assert!(!text.contains("rc=0"), "{text}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
}

#[test]
fn root_minimal_dev_and_loopback_network() {
    let env = Env::new();
    let out = env.sh(&[], "ls /dev | sort | tr '\\n' ' '; echo; ls /sys/class/net; cat /sys/class/net/lo/operstate; cat /etc/hosts; cat /etc/hostname");
    let text = out.ok();
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm",
    ] {
        assert!(
            text.lines().next().unwrap().split(' ').any(|x| x == d),
            "/dev/{d}: {text}"
        );
    }
    assert!(!text.contains("sda") && !text.contains("kmsg"), "{text}");
    let mut lines = text.lines().skip(1);
    assert_eq!(
        lines.next(),
        Some("lo"),
        "only lo in a --network none container: {text}"
    );
    assert_eq!(
        lines.next(),
        Some("unknown"),
        "lo is up (loopback reports unknown): {text}"
    );
    assert!(text.contains("127.0.0.1\tlocalhost"), "{text}");
    let host = env.run(&["--network", "host"], &["ls", "/sys/class/net"]);
    assert!(
        host.ok().lines().count() > 1,
        "the host's interfaces: {host:?}"
    );
}

#[test]
fn root_memory_limit_oom_kills_with_137() {
    let env = Env::new();
    // tail buffers an endless line of /dev/zero until the cgroup's OOM killer stops it.
    let out = env.run(&["--memory", "32m"], &["tail", "/dev/zero"]);
    assert_eq!(out.code, 137, "{out:?}");
}

#[test]
fn root_cgroup_limits_are_set_in_the_containers_own_cgroup() {
    let env = Env::new();
    let v1 = std::path::Path::new("/sys/fs/cgroup/cpu").exists();
    let script = if v1 {
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    } else {
        "cut -d' ' -f1 /sys/fs/cgroup/cpu.max; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
    };
    let out = env.sh(
        &["--cpus", "0.5", "--memory", "64m", "--pids-limit", "33"],
        script,
    );
    assert_eq!(out.ok(), "50000\n67108864\n33\n");
    // The cgroup namespace shows the container its own cgroup as the root.
    let cg = env.run(&[], &["cat", "/proc/self/cgroup"]);
    assert!(cg.ok().lines().all(|l| l.ends_with(":/")), "{cg:?}");
}

#[test]
fn root_pids_limit_stops_a_fork_loop() {
    let env = Env::new();
    // busybox sh gives up the script when fork fails.
    let out = env.sh(
        &["--pids-limit", "10"],
        "for i in $(seq 1 40); do sleep 1 & done; wait",
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("can't fork"), "{out:?}");
    let unlimited = env.sh(
        &[],
        "for i in $(seq 1 40); do sleep 0.2 & done; wait; echo done",
    );
    assert_eq!(unlimited.ok(), "done\n", "{unlimited:?}");
}

#[test]
fn root_read_only_rootfs_volumes_and_tmpfs() {
    let env = Env::new();
    let ro_dir = env.path("ro");
    let rw_dir = env.path("rw");
    std::fs::create_dir_all(&ro_dir).unwrap();
    std::fs::create_dir_all(&rw_dir).unwrap();
    std::fs::write(ro_dir.join("in"), "from-host\n").unwrap();
    let ro = format!("{}:/ro:ro", ro_dir.display());
    let rw = format!("{}:/rw", rw_dir.display());
    let out = env.sh(
        &["--read-only", "-v", &ro, "-v", &rw, "--tmpfs", "/scratch:size=1m"],
        "cat /ro/in; touch /ro/x 2>&1; echo ro=$?; touch /x 2>&1; echo root=$?; echo out > /rw/out; echo rw=$?; echo t > /scratch/t; echo tmpfs=$?",
    );
    let text = out.ok();
    assert!(text.contains("from-host\n"), "{text}");
    assert!(text.contains("ro=1"), "{text}");
    assert!(text.contains("root=1"), "{text}");
    assert!(text.contains("rw=0") && text.contains("tmpfs=0"), "{text}");
    assert!(text.contains("Read-only file system"), "{text}");
    assert_eq!(
        std::fs::read_to_string(rw_dir.join("out")).unwrap(),
        "out\n"
    );
    assert!(!ro_dir.join("x").exists());
    // Without --read-only the rootfs directory itself is the writable layer.
    env.sh(&[], "echo w > /written").ok();
    assert!(env.rootfs().join("written").exists());
}

#[test]
fn root_env_workdir_and_user() {
    let env = Env::new();
    let env_file = env.path("env.list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=f1\nSHARED=file\n").unwrap();
    let ef = env_file.to_str().unwrap();
    let out = env.sh(
        &[
            "-e",
            "A=1",
            "--env-file",
            ef,
            "-e",
            "SHARED=flag",
            "-w",
            "/tmp",
            "-u",
            "app",
        ],
        "echo $A $FROM_FILE $SHARED $HOME; pwd; id",
    );
    assert_eq!(
        out.ok(),
        "1 f1 flag /home/app\n/tmp\nuid=1000(app) gid=1000(app) groups=50(staff)\n"
    );
    let by_id = env.run(&["-u", "1000:50"], &["id"]);
    assert_eq!(by_id.ok(), "uid=1000(app) gid=50(staff)\n");
    let nobody = env.run(&["-u", "nobody:nogroup"], &["id", "-u"]);
    assert_eq!(nobody.ok(), "65534\n");
    env.run(&["-u", "ghost"], &["id"]).rrun_error("ghost");
    // A working directory the image lacks is created (as Docker does), a file is refused.
    let made = env.run(&["-w", "/new/dir", "-u", "app"], &["pwd"]);
    assert_eq!(made.ok(), "/new/dir\n");
    env.run(&["-w", "/etc/passwd"], &["pwd"])
        .rrun_error("/etc/passwd is not a directory in the container");
}

#[test]
fn root_exit_codes_pass_through() {
    let env = Env::new();
    assert_eq!(env.sh(&[], "exit 42").code, 42);
    assert_eq!(env.run(&[], &["true"]).code, 0);
    assert_eq!(env.run(&[], &["false"]).code, 1);
    // A missing executable is an rrun error before the container runs.
    env.run(&[], &["/no/such/binary"]).rrun_error("not found");
    env.run(&[], &["nosuchcmd"])
        .rrun_error("cannot run the command: executable 'nosuchcmd' not found in $PATH");
    env.run(&[], &["/etc/passwd"])
        .rrun_error("does not have correct permissions");
}

/// Start a foreground `rrun run` of `script` (which prints `ready` once it may be signalled),
/// wait for `ready`, and return the child with its stdout still to read.
fn spawn_foreground(env: &Env, options: &[&str], script: &str) -> std::process::Child {
    let root = env.rootfs();
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--rootfs", root.to_str().unwrap(), "sh", "-c", script]);
    let mut cmd = env.cmd(&args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    child.stdout = Some(stdout);
    child
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

#[test]
fn root_sigterm_and_sigint_to_rrun_reach_the_container() {
    use nix::sys::signal::Signal;
    let env = Env::new();
    for (sig, name, code) in [(Signal::SIGTERM, "TERM", 5), (Signal::SIGINT, "INT", 6)] {
        let script = format!(
            "trap 'echo got-{name}; exit {code}' {name}; echo ready; while :; do sleep 0.05; done"
        );
        let child = spawn_foreground(&env, &["--rm"], &script);
        signal(child.id(), sig);
        let out = wait_with_timeout(child, Duration::from_secs(20));
        assert_eq!(out.code, code, "{sig}: {out:?}");
        assert_eq!(out.stdout, format!("got-{name}\n"), "{sig}");
    }
    env.assert_no_containers();
}

#[test]
fn root_foreground_container_killed_from_outside_exits_137() {
    let env = Env::new();
    let child = spawn_foreground(&env, &["--name", "fg"], "echo ready; sleep 100");
    env.rrun(&["kill", "-s", "KILL", "fg"]).ok();
    let out = wait_with_timeout(child, Duration::from_secs(20));
    assert_eq!(out.code, 137, "{out:?}");
    let v: serde_json::Value =
        serde_json::from_str(env.rrun(&["ps", "-a", "--format", "json"]).ok()).unwrap();
    assert_eq!(v[0]["exit_code"], 137, "{v}");
    // An exited container keeps its name until it is removed.
    let root = env.rootfs();
    let root = root.to_str().unwrap();
    env.rrun(&["run", "--name", "fg", "--rootfs", root, "true"])
        .rrun_error("already in use");
    env.rrun(&["rm", "fg"]).ok();
    env.rrun(&["run", "--rm", "--name", "fg", "--rootfs", root, "true"])
        .ok();
}

#[test]
fn root_detach_logs_exec_ps_stop_rm() {
    let env = Env::new();
    let root = env.rootfs();
    let root = root.to_str().unwrap();
    let script = "echo started; trap 'echo got-term; exit 3' TERM; while :; do sleep 0.05; done";
    let id = env.rrun(&[
        "run", "-d", "--name", "web", "--rootfs", root, "sh", "-c", script,
    ]);
    let id = id.ok().trim().to_owned();
    assert_eq!(id.len(), 64, "{id}");
    // Names are unique.
    env.rrun(&["run", "-d", "--name", "web", "--rootfs", root, "true"])
        .rrun_error("already in use");

    let ps = env.rrun(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(ps.ok()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], "web");
    assert_eq!(v[0]["state"], "running");
    assert!(env.rrun(&["ps"]).ok().contains(&id[..12]));

    assert!(wait_until(Duration::from_secs(5), || env
        .rrun(&["logs", "web"])
        .ok()
        == "started\n"));

    let exec = env.rrun(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "web",
        "sh",
        "-c",
        "echo $$ $X; pwd; hostname",
    ]);
    let text = exec.ok();
    assert!(
        !text.starts_with("1 "),
        "exec is not the init process: {text}"
    );
    assert!(text.contains(" 1\n/tmp\n"), "{text}");
    assert_eq!(
        env.rrun(&["exec", "-u", "app", "web", "id", "-u"]).ok(),
        "1000\n"
    );
    assert_eq!(env.rrun(&["exec", "web", "sh", "-c", "exit 7"]).code, 7);

    let stop = env.rrun(&["stop", "--time", "5", "web"]);
    assert_eq!(stop.ok(), "web\n");
    let ps = env.rrun(&["ps", "-a", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(ps.ok()).unwrap();
    assert_eq!(v[0]["state"], "exited");
    assert_eq!(v[0]["exit_code"], 3);
    assert_eq!(env.rrun(&["ps", "--format", "json"]).ok().trim(), "[]");
    assert_eq!(env.rrun(&["logs", "web"]).ok(), "started\ngot-term\n");
    env.rrun(&["exec", "web", "true"]).rrun_error("not running");
    env.rrun(&["rm", "web"]).ok();
    env.assert_no_containers();
    assert!(!env.state().join("containers").join(&id).exists());
    assert!(!std::path::Path::new("/sys/fs/cgroup/pids/rrun")
        .join(&id)
        .exists());
    env.rrun(&["logs", "web"]).rrun_error("no such container");
}

#[test]
fn root_kill_rm_force_and_logs_follow() {
    let env = Env::new();
    let root = env.rootfs();
    let root = root.to_str().unwrap();
    // PID 1 ignores SIGTERM without a handler: stop falls back to SIGKILL after --time.
    env.rrun(&[
        "run", "-d", "--name", "stubborn", "--rootfs", root, "sleep", "100",
    ])
    .ok();
    env.rrun(&["rm", "stubborn"]).rrun_error("is running");
    env.rrun(&["kill", "-s", "KILL", "stubborn"]).ok();
    assert!(wait_until(Duration::from_secs(5), || {
        env.rrun(&["ps", "-a"]).ok().contains("Exited (137)")
    }));
    env.rrun(&["kill", "stubborn"]).rrun_error("not running");
    env.rrun(&["rm", "stubborn"]).ok();

    env.rrun(&[
        "run", "-d", "--name", "gone", "--rootfs", root, "sleep", "100",
    ])
    .ok();
    env.rrun(&["rm", "-f", "gone"]).ok();
    env.assert_no_containers();

    env.rrun(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "counter",
        "--rootfs",
        root,
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.1; done",
    ])
    .ok();
    // --rm removes it when it exits; logs -f may find it gone already, which is fine.
    let follow = env.rrun(&["logs", "-f", "counter"]);
    if follow.code == 0 {
        assert_eq!(follow.stdout, "1\n2\n3\n");
    } else {
        follow.rrun_error("no such container");
    }
    assert!(wait_until(Duration::from_secs(5), || {
        env.rrun(&["ps", "-a", "--format", "json"]).ok().trim() == "[]"
    }));
}

#[test]
fn root_state_of_a_crashed_rrun_is_reported_and_cleaned() {
    let env = Env::new();
    let root = env.rootfs();
    let id = env.rrun(&[
        "run",
        "-d",
        "--name",
        "orphan",
        "--rootfs",
        root.to_str().unwrap(),
        "sleep",
        "100",
    ]);
    let id = id.ok().trim().to_owned();
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.state().join("containers").join(&id).join("record.json")).unwrap(),
    )
    .unwrap();
    let monitor = record["monitor"]["pid"].as_i64().unwrap() as i32;
    let init = record["init"]["pid"].as_i64().unwrap() as i32;
    // The monitor dies first (as if rrun crashed), then the container.
    for pid in [monitor, init] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    assert!(wait_until(Duration::from_secs(5), || {
        env.rrun(&["ps", "-a"]).ok().contains("rrun died")
    }));
    let v: serde_json::Value =
        serde_json::from_str(env.rrun(&["ps", "-a", "--format", "json"]).ok()).unwrap();
    assert_eq!(v[0]["state"], "exited");
    assert!(std::path::Path::new("/sys/fs/cgroup/pids/rrun")
        .join(&id)
        .exists());
    rm_leaves_nothing(&env, "orphan", &id);
}

/// `rrun rm NAME` succeeds and leaves no cgroup, libcontainer state, record or listing behind.
#[track_caller]
fn rm_leaves_nothing(env: &Env, name: &str, id: &str) {
    env.rrun(&["rm", name]).ok();
    assert!(!std::path::Path::new("/sys/fs/cgroup/pids/rrun")
        .join(id)
        .exists());
    assert!(!env.state().join("libcontainer").join(id).exists());
    assert!(!env.state().join("containers").join(id).exists());
    env.assert_no_containers();
}

#[test]
fn root_state_of_a_killed_foreground_rrun_is_reported_and_cleaned() {
    let env = Env::new();
    let mut child = spawn_foreground(&env, &["--rm", "--name", "fg"], "echo ready; sleep 100");
    signal(child.id(), nix::sys::signal::Signal::SIGKILL);
    // (Not wait_with_timeout: the container still holds the output pipes.)
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "rrun was killed: {status:?}");
    // The container outlives its rrun; ps still finds it, and stop ends it.
    let v: serde_json::Value =
        serde_json::from_str(env.rrun(&["ps", "--format", "json"]).ok()).unwrap();
    assert_eq!(v[0]["name"], "fg", "{v}");
    assert_eq!(v[0]["state"], "running", "{v}");
    let id = v[0]["id"].as_str().unwrap().to_owned();
    env.rrun(&["stop", "--time", "1", "fg"]).ok();
    // Nobody recorded the exit: ps says so, and --rm could not run.
    assert!(
        env.rrun(&["ps", "-a"]).ok().contains("rrun died"),
        "{:?}",
        env.rrun(&["ps", "-a"])
    );
    // rrun can die while libcontainer rewrites its state file: rm copes with a cut one.
    let lc_state = env
        .state()
        .join("libcontainer")
        .join(&id)
        .join("state.json");
    std::fs::write(&lc_state, "").unwrap();
    rm_leaves_nothing(&env, "fg", &id);
}

#[test]
fn root_logs_follow_streams_until_the_container_exits() {
    let env = Env::new();
    let root = env.rootfs();
    env.rrun(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "--rootfs",
        root.to_str().unwrap(),
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.3; done; echo err >&2",
    ])
    .ok();
    let started = std::time::Instant::now();
    let follow = env.rrun(&["logs", "-f", "ticker"]);
    assert_eq!(follow.ok(), "1\n2\n3\nerr\n");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "logs -f returned before the container exited"
    );
    // A second follow of an exited container returns at once with the whole log.
    assert_eq!(env.rrun(&["logs", "-f", "ticker"]).ok(), "1\n2\n3\nerr\n");
    env.rrun(&["rm", "ticker"]).ok();
}

#[test]
fn root_apparmor_request_fails_without_apparmor_and_seccomp_choices_work() {
    let env = Env::new();
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let aa = env.run(&["--security-opt", "apparmor=rrun-test-profile"], &["true"]);
    if enabled {
        aa.rrun_error("no such profile is loaded");
    } else {
        aa.rrun_error("AppArmor is not enabled");
        // Asking for no profile is fine, as is the default.
        env.run(&["--security-opt", "apparmor=unconfined"], &["true"])
            .ok();
    }

    let un = env.sh(
        &["--security-opt", "seccomp=unconfined"],
        "grep Seccomp: /proc/self/status",
    );
    assert!(un.ok().contains("Seccomp:\t0"), "{un:?}");

    let profile = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/runtime/seccomp/deny-mkdir.json"
    );
    let opt = format!("seccomp={profile}");
    let out = env.sh(
        &["--security-opt", &opt],
        "mkdir /tmp/d 2>&1; echo mkdir=$?; touch /tmp/f; echo touch=$?",
    );
    let text = out.ok();
    assert!(
        text.contains("Operation not permitted") && text.contains("mkdir=1"),
        "{text}"
    );
    assert!(text.contains("touch=0"), "{text}");
}

#[test]
fn root_devnull_stdout_does_not_break_container_writes() {
    // Regression: libcontainer reopens a /dev/null stdio fd read-only, so writes failed EBADF.
    let env = Env::new();
    let root = env.rootfs();
    let mut cmd = env.cmd(&[
        "run",
        "--rm",
        "--rootfs",
        root.to_str().unwrap(),
        "sh",
        "-c",
        "echo to-null || exit 3; echo to-null >&2 || exit 4; cat /etc/passwd >/dev/stdout || exit 5",
    ]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let status = cmd.status().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "a write to the /dev/null stdout failed"
    );
}

#[test]
fn root_tty_gives_a_terminal() {
    let env = Env::new();
    let out = env.sh(
        &["-t"],
        "test -t 0 && test -t 1 && echo is-a-tty; stty size; echo $TERM",
    );
    assert_eq!(out.ok().replace('\r', ""), "is-a-tty\n24 80\nxterm\n");
    let no = env.sh(&[], "test -t 1 || echo not-a-tty");
    assert_eq!(no.ok(), "not-a-tty\n");
    let mut cmd = env.cmd(&[
        "run",
        "--rm",
        "-i",
        "--rootfs",
        env.rootfs().to_str().unwrap(),
        "cat",
    ]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"through stdin\n").unwrap();
    let out = wait_with_timeout(child, Duration::from_secs(20));
    assert_eq!(out.ok(), "through stdin\n");
}

#[test]
fn root_tty_on_a_real_terminal() {
    let env = Env::new();
    let root = env.rootfs();
    let root = root.to_str().unwrap();
    // -it: the terminal's size, typed input, a resize, and the terminal restored afterwards.
    let script = "test -t 0 && test -t 1 && echo tty-ok; stty size; read x; echo got-$x; \
                  while [ \"$(stty size)\" != '40 120' ]; do sleep 0.05; done; echo resized; exit 3";
    let run = env.on_pty(
        &[
            ("expect", "tty-ok"),
            ("expect", "30 100"),
            ("send", "hello\r"),
            ("expect", "got-hello"),
            ("resize", "40x120"),
            ("expect", "resized"),
        ],
        &["run", "--rm", "-it", "--rootfs", root, "sh", "-c", script],
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.out.contains("tty-ok\n30 100\n"), "{run:?}");
    assert!(run.modes_restored, "rrun left the terminal raw: {run:?}");
    // -it: ^C is a byte for the container's terminal, which interrupts the container.
    // -t alone: ^C interrupts rrun itself, which passes SIGINT on.
    let trap = "trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 0.05; done";
    for flag in ["-it", "-t"] {
        let steps = [
            ("expect", "ready"),
            ("send", "\u{3}"),
            ("expect", "got-int"),
        ];
        let run = env.on_pty(
            &steps,
            &["run", "--rm", flag, "--rootfs", root, "sh", "-c", trap],
        );
        assert_eq!(run.code, 9, "{flag}: {run:?}");
        assert!(run.modes_restored, "{flag}: {run:?}");
    }
    // exec -it into a detached container gets a terminal of the caller's size too.
    env.rrun(&[
        "run", "-d", "--name", "bg", "--rootfs", root, "sleep", "100",
    ])
    .ok();
    let script = "test -t 0 && echo exec-tty; stty size; read x; echo got-$x; exit 4";
    let run = env.on_pty(
        &[("expect", "30 100"), ("send", "in\r"), ("expect", "got-in")],
        &["exec", "-it", "bg", "sh", "-c", script],
    );
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.out.contains("exec-tty\n30 100\n"), "{run:?}");
    assert!(run.modes_restored, "{run:?}");
    env.rrun(&["rm", "-f", "bg"]).ok();
}

#[test]
fn root_bad_input_is_exit_125_with_a_clear_message() {
    let env = Env::new();
    let root = env.rootfs();
    let root = root.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--memory", "lots"], "--memory"),
        (&["--memory", "1k"], "minimum"),
        (&["--cpus", "0"], "--cpus"),
        (&["--cpus", "999"], "CPUs"),
        (&["--pids-limit", "0"], "--pids-limit"),
        (&["--network", "bridge"], "--network"),
        (&["-v", "relative:/x"], "absolute"),
        (&["-v", "/nonexistent-rrun-src:/x"], "does not exist"),
        (&["--tmpfs", "/t:bogus"], "tmpfs option"),
        (&["--cap-add", "FLY"], "unknown capability"),
        (&["--security-opt", "label=disable"], "--security-opt"),
        (
            &["--security-opt", "seccomp=/nonexistent.json"],
            "does not exist",
        ),
        (&["--hostname", "-bad"], "--hostname"),
        (&["--name", "bad/name"], "container name"),
        (&["-w", "relative"], "absolute"),
        (&["-e", "=x"], "--env"),
    ];
    for (opts, what) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["--rootfs", root, "true"]);
        env.rrun(&args).rrun_error(what);
    }
    env.rrun(&["run", "--rm", "--rootfs", root])
        .rrun_error("command is required");
    env.rrun(&["run", "--rm"])
        .rrun_error("an image or --rootfs DIR is required");
    env.rrun(&["run", "--rm", "--bogus", "busybox"])
        .rrun_error("unknown option");
    env.rrun(&["run", "--rm", "--rootfs", "/nonexistent-rootfs", "true"])
        .rrun_error("not a directory");
    env.rrun(&["run", "--rm", "-d", "-t", "--rootfs", root, "true"])
        .rrun_error("attach");
    // A flag without its value is refused by the argument parser, also with 125.
    let missing = env.rrun(&["run", "--rm", "--rootfs", root, "--memory"]);
    assert_eq!(missing.code, 125, "{missing:?}");
    assert!(
        missing
            .stderr
            .lines()
            .next()
            .unwrap_or("")
            .contains("'--memory <BYTES>'"),
        "{missing:?}"
    );
    env.rrun(&["kill", "-s", "NOPE", "x"])
        .rrun_error("invalid signal");
    env.rrun(&["stop", "nothing-here"])
        .rrun_error("no such container");
    // Nothing was left behind by the failures.
    env.assert_no_containers();
    assert_eq!(
        std::fs::read_dir(env.state().join("containers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn root_info_text_and_json() {
    let env = Env::new();
    let text = env.rrun(&["info"]);
    let text = text.ok();
    for key in [
        "cgroups:",
        "seccomp:",
        "apparmor:",
        "landlock:",
        "user namespaces:",
        "store:",
        "state:",
    ] {
        assert!(text.contains(key), "{key}: {text}");
    }
    assert!(text.contains(env.state().to_str().unwrap()), "{text}");
    let json = env.rrun(&["info", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.ok()).unwrap();
    assert!(matches!(v["cgroups"]["version"].as_u64(), Some(1 | 2)));
    assert!(!v["cgroups"]["controllers"].as_array().unwrap().is_empty());
    assert_eq!(v["seccomp"]["kernel"], true);
    assert_eq!(v["seccomp"]["libseccomp_feature"], true);
    let aa_enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    assert_eq!(v["apparmor"]["enabled"], aa_enabled);
    assert!(v["landlock"]["enabled"].is_boolean());
    assert_eq!(v["state"], env.state().to_str().unwrap());
}

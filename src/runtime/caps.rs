//! Capability sets: Docker's default set, `--cap-add`/`--cap-drop` math, and OCI conversion.

use std::collections::{BTreeSet, HashSet};

use libcontainer::oci_spec::runtime::{Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};

use super::error::{Result, RuntimeError};

/// Every Linux capability, in kernel bit order (CAP_CHOWN is bit 0).
pub const ALL: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capability set (what `docker run` grants without `--cap-add`).
pub const DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A set of capability names without the `CAP_` prefix, upper case.
pub type CapSet = BTreeSet<&'static str>;

/// Normalise a user's capability name (`net_admin`, `CAP_NET_ADMIN`) or `ALL`.
pub fn normalize(name: &str) -> Result<&'static str> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" {
        return Ok("ALL");
    }
    ALL.iter()
        .find(|c| **c == bare)
        .copied()
        .ok_or_else(|| RuntimeError::UnknownCapability {
            name: name.to_owned(),
        })
}

/// The capabilities a container gets from Docker's default set and `--cap-add`/`--cap-drop`:
/// `--cap-add ALL` grants everything but the drops; `--cap-drop ALL` keeps only the adds;
/// otherwise the defaults minus the drops plus the adds.
pub fn resolve(add: &[String], drop: &[String]) -> Result<CapSet> {
    let add = add
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>>>()?;
    let drop = drop
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>>>()?;
    let set: CapSet = if add.contains(&"ALL") {
        ALL.iter().copied().filter(|c| !drop.contains(c)).collect()
    } else if drop.contains(&"ALL") {
        add.iter().copied().collect()
    } else {
        DEFAULT
            .iter()
            .copied()
            .filter(|c| !drop.contains(c))
            .chain(add.iter().copied())
            .collect()
    };
    Ok(set)
}

/// The kernel bit number of a capability name.
pub fn bit(name: &str) -> Option<u32> {
    ALL.iter().position(|c| *c == name).map(|p| p as u32)
}

/// The OCI process capabilities for a set: bounding, effective and permitted hold the set;
/// inheritable and ambient stay empty (as Docker does since 20.10).
pub fn to_oci(set: &CapSet) -> Result<LinuxCapabilities> {
    let caps: HashSet<Capability> = set
        .iter()
        .map(|c| {
            c.parse::<Capability>()
                .map_err(|_| RuntimeError::UnknownCapability {
                    name: (*c).to_owned(),
                })
        })
        .collect::<Result<_>>()?;
    LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(|e| RuntimeError::option("--cap-add", "", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_set_is_dockers() {
        let set = resolve(&[], &[]).unwrap();
        assert_eq!(set.len(), 14);
        assert!(set.contains("NET_BIND_SERVICE"));
        assert!(!set.contains("SYS_ADMIN"));
        assert!(!set.contains("NET_ADMIN"));
    }

    #[test]
    fn add_and_drop() {
        let set = resolve(
            &s(&["net_admin", "CAP_SYS_TIME"]),
            &s(&["cap_chown", "mknod"]),
        )
        .unwrap();
        assert!(set.contains("NET_ADMIN") && set.contains("SYS_TIME"));
        assert!(!set.contains("CHOWN") && !set.contains("MKNOD"));
        assert_eq!(set.len(), 14);
        let only = resolve(&s(&["kill"]), &s(&["ALL"])).unwrap();
        assert_eq!(only.into_iter().collect::<Vec<_>>(), vec!["KILL"]);
        let all = resolve(&s(&["all"]), &s(&["sys_admin"])).unwrap();
        assert_eq!(all.len(), 40);
        assert!(!all.contains("SYS_ADMIN"));
        let e = resolve(&s(&["NET_FOO"]), &[]).unwrap_err();
        assert!(e.to_string().contains("NET_FOO"));
    }

    #[test]
    fn oci_conversion_and_bits() {
        let set = resolve(&[], &[]).unwrap();
        let oci = to_oci(&set).unwrap();
        assert_eq!(oci.bounding().as_ref().unwrap().len(), 14);
        assert!(oci.inheritable().as_ref().unwrap().is_empty());
        assert_eq!(bit("SYS_ADMIN"), Some(21));
        assert_eq!(bit("CHOWN"), Some(0));
        for c in ALL {
            assert!(c.parse::<Capability>().is_ok(), "{c}");
        }
    }
}

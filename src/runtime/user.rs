//! `-u UID[:GID]` or `name[:group]` resolved against the container's own /etc/passwd and /etc/group.

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use super::error::{Result, RuntimeError};

/// The ids the container process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups: the groups of /etc/group that list the user.
    pub additional_gids: Vec<u32>,
    /// Home directory from /etc/passwd, if the user is listed.
    pub home: Option<String>,
}

impl ResolvedUser {
    /// root, the default.
    pub fn root() -> Self {
        ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: Some("/root".into()),
        }
    }
}

/// One line of /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One line of /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_owned(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_owned(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// Resolve a user spec from the texts of /etc/passwd and /etc/group (either may be empty).
pub fn resolve_in(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp.is_some_and(str::is_empty) {
        return Err(RuntimeError::option(
            "--user",
            spec,
            "use UID[:GID] or NAME[:GROUP]",
        ));
    }
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let entry = match user.parse::<u32>() {
        Ok(uid) => users
            .iter()
            .find(|e| e.uid == uid)
            .cloned()
            .or(Some(PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
                home: "/".into(),
            })),
        Err(_) => users.iter().find(|e| e.name == user).cloned(),
    }
    .ok_or_else(|| RuntimeError::UnknownUser {
        kind: "user",
        name: user.to_owned(),
        file: "/etc/passwd",
    })?;
    let gid = match grp {
        None => entry.gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| RuntimeError::UnknownUser {
                    kind: "group",
                    name: g.to_owned(),
                    file: "/etc/group",
                })?,
        },
    };
    let mut additional_gids: Vec<u32> = if entry.name.is_empty() {
        Vec::new()
    } else {
        groups
            .iter()
            .filter(|g| g.members.contains(&entry.name) && g.gid != gid)
            .map(|g| g.gid)
            .collect()
    };
    additional_gids.dedup();
    Ok(ResolvedUser {
        uid: entry.uid,
        gid,
        additional_gids,
        home: Some(entry.home).filter(|h| !h.is_empty()),
    })
}

/// Resolve a user spec against the files of a root filesystem. Missing files count as empty;
/// symlinks in the rootfs are followed inside it, never out to the host.
pub fn resolve(spec: &str, rootfs: &Path) -> Result<ResolvedUser> {
    let passwd = read_in_rootfs(rootfs, "/etc/passwd")?.unwrap_or_default();
    let group = read_in_rootfs(rootfs, "/etc/group")?.unwrap_or_default();
    resolve_in(spec, &passwd, &group)
}

/// Read a small text file of a rootfs, resolving symlinks as if `rootfs` were `/`.
/// `Ok(None)` when it does not exist.
pub fn read_in_rootfs(rootfs: &Path, path: &str) -> Result<Option<String>> {
    let Some(host) = resolve_in_rootfs(rootfs, path)? else {
        return Ok(None);
    };
    // The last component was resolved already; refuse a symlink swapped in since then.
    let fd: OwnedFd = match rustix::fs::open(
        &host,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(RuntimeError::io_at(&host, e.into())),
    };
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut text)
        .map_err(|e| RuntimeError::io_at(&host, e))?;
    Ok(Some(text))
}

/// The host path of `path` inside `rootfs`, following symlinks within the rootfs
/// (at most 40). `Ok(None)` when a component does not exist.
pub fn resolve_in_rootfs(rootfs: &Path, path: &str) -> Result<Option<PathBuf>> {
    let mut todo: Vec<String> = components(path);
    todo.reverse();
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let mut host = rootfs.to_path_buf();
        host.extend(&cur);
        host.push(&c);
        match std::fs::symlink_metadata(&host) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RuntimeError::io_at(&host, e)),
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(RuntimeError::io_at(
                        &host,
                        std::io::Error::other("too many levels of symbolic links"),
                    ));
                }
                let target =
                    std::fs::read_link(&host).map_err(|e| RuntimeError::io_at(&host, e))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    cur.clear();
                }
                let mut more = components(&target);
                more.reverse();
                todo.extend(more);
            }
            Ok(_) => cur.push(c),
        }
    }
    let mut host = rootfs.to_path_buf();
    host.extend(&cur);
    Ok(Some(host))
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\nnogroup:x:65534:\n";

    #[test]
    fn names_and_ids_resolve() {
        let a = resolve_in("alice", PASSWD, GROUP).unwrap();
        assert_eq!((a.uid, a.gid), (1000, 1000));
        assert_eq!(a.additional_gids, vec![10]);
        assert_eq!(a.home.as_deref(), Some("/home/alice"));
        let b = resolve_in("alice:nogroup", PASSWD, GROUP).unwrap();
        assert_eq!((b.uid, b.gid), (1000, 65534));
        let c = resolve_in("1000:10", PASSWD, GROUP).unwrap();
        assert_eq!((c.uid, c.gid), (1000, 10));
        // A numeric uid that /etc/passwd does not list runs with gid 0 (runc's rule).
        let d = resolve_in("4242", PASSWD, GROUP).unwrap();
        assert_eq!((d.uid, d.gid), (4242, 0));
        assert!(d.additional_gids.is_empty());
        let e = resolve_in("nobody", "", "").unwrap_err();
        assert!(e.to_string().contains("/etc/passwd"), "{e}");
        let f = resolve_in("alice:staff", PASSWD, GROUP).unwrap_err();
        assert!(f.to_string().contains("/etc/group"), "{f}");
        assert!(resolve_in("", PASSWD, GROUP).is_err());
        assert!(resolve_in("alice:", PASSWD, GROUP).is_err());
    }

    #[test]
    fn symlinks_stay_inside_the_rootfs() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(root.path().join("real-passwd"), PASSWD).unwrap();
        // An absolute symlink points into the rootfs, not to the host's /etc/passwd.
        std::os::unix::fs::symlink("/real-passwd", etc.join("passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc/shadow", etc.join("group")).unwrap();
        let u = resolve("alice", root.path()).unwrap();
        assert_eq!(u.uid, 1000);
        assert_eq!(read_in_rootfs(root.path(), "/etc/group").unwrap(), None);
    }
}

//! Container state on disk: `<state>/containers/<id>/record.json`, unique names, lookups, and
//! the status of a container whose rrun died (its recorded pid is gone or reused).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{Result, RuntimeError};
use super::id::{ContainerId, ContainerName};

/// The lifecycle status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Prepared; its process does not run yet.
    Created,
    /// Its init process runs.
    Running,
    /// Its init process is gone.
    Exited,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        })
    }
}

/// A process identified by pid and start time (so that a reused pid is not mistaken for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    /// Host pid.
    pub pid: i32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start_time: u64,
}

impl ProcessRef {
    /// The current identity of a live pid.
    pub fn of(pid: i32) -> Option<Self> {
        let (state, start_time) = stat(pid)?;
        (state != 'Z' && state != 'X').then_some(ProcessRef { pid, start_time })
    }

    /// This process.
    pub fn current() -> Option<Self> {
        Self::of(std::process::id() as i32)
    }

    /// Whether this process still runs (not a zombie, and the pid was not reused).
    pub fn is_alive(&self) -> bool {
        matches!(stat(self.pid), Some((s, t)) if t == self.start_time && s != 'Z' && s != 'X')
    }
}

fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// What rrun knows about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The id.
    pub id: ContainerId,
    /// The unique name.
    pub name: ContainerName,
    /// The image it runs (or the rootfs path for `--rootfs`).
    pub image: String,
    /// The process arguments.
    pub command: Vec<String>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When its process started.
    #[serde(default)]
    pub started: Option<DateTime<Utc>>,
    /// When its process exited.
    #[serde(default)]
    pub finished: Option<DateTime<Utc>>,
    /// The recorded status (see `live_status` for what is true now).
    pub status: Status,
    /// The init process.
    #[serde(default)]
    pub init: Option<ProcessRef>,
    /// The rrun process that waits for the init process (the foreground rrun or the monitor).
    #[serde(default)]
    pub monitor: Option<ProcessRef>,
    /// The exit code: the process's own, or 128 + signal.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// Mounts the caller made for the rootfs, unmounted (innermost first) on removal.
    #[serde(default)]
    pub teardown_mounts: Vec<PathBuf>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `-d`.
    pub detached: bool,
    /// Where a detached container's output goes.
    #[serde(default)]
    pub log_path: Option<PathBuf>,
}

impl ContainerRecord {
    /// The status as it is now: a running or created container whose recorded process is gone
    /// (rrun crashed or was killed before it could record the exit) counts as exited.
    pub fn live_status(&self) -> Status {
        match self.status {
            Status::Exited => Status::Exited,
            Status::Running => match self.init {
                Some(p) if p.is_alive() => Status::Running,
                _ => Status::Exited,
            },
            Status::Created => match self.monitor {
                Some(m) if m.is_alive() => Status::Created,
                None => Status::Created,
                _ => Status::Exited,
            },
        }
    }

    /// Whether the container's process is alive now.
    pub fn is_running(&self) -> bool {
        self.live_status() == Status::Running
    }

    /// A one-line status for `ps`: `Up 5 seconds`, `Exited (0) 2 minutes ago`, `Created`.
    pub fn status_line(&self, now: DateTime<Utc>) -> String {
        match self.live_status() {
            Status::Created => "Created".into(),
            Status::Running => format!("Up {}", ago(self.started.unwrap_or(self.created), now)),
            Status::Exited => match (self.exit_code, self.finished) {
                (Some(c), Some(f)) => format!("Exited ({c}) {} ago", ago(f, now)),
                (Some(c), None) => format!("Exited ({c})"),
                // The recorded status was not exited: rrun died before it saw the exit.
                (None, _) => "Exited (unknown: rrun died before the container exited)".into(),
            },
        }
    }
}

fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..=1 => "about a second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "about a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "about an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86400),
    }
}

/// The state directory (`--state`, default /run/rrun).
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where container directories live.
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// One container's directory: record, bundle config, /etc files, log.
    pub fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.containers().join(id.as_str())
    }

    /// Where the image path assembles root filesystems: `rootfs/<dir>/rootfs` per container,
    /// `<dir>` removed with the container once its mounts are gone.
    pub fn rootfs_dirs(&self) -> PathBuf {
        self.root.join("rootfs")
    }

    /// The `rootfs/<dir>` that holds `rootfs` when the image path assembled it here.
    pub fn assembled_dir_of(&self, rootfs: &Path) -> Option<PathBuf> {
        let parent = rootfs.parent()?;
        let dirs = std::fs::canonicalize(self.rootfs_dirs()).ok()?;
        (parent.parent() == Some(dirs.as_path())).then(|| parent.to_path_buf())
    }

    /// libcontainer's own state root.
    pub fn libcontainer_root(&self) -> PathBuf {
        self.root.join("libcontainer")
    }

    fn names(&self) -> PathBuf {
        self.root.join("names")
    }

    fn record_path(&self, id: &ContainerId) -> PathBuf {
        self.container_dir(id).join("record.json")
    }

    /// Create the directories, readable by root only (specs hold the containers' environment).
    pub fn ensure(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        for d in [self.containers(), self.libcontainer_root(), self.names()] {
            std::fs::create_dir_all(&d).map_err(|e| RuntimeError::io_at(&d, e))?;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| RuntimeError::io_at(&d, e))?;
        }
        Ok(())
    }

    /// Claim a name for a container. The claim is a symlink `names/<name> -> <id>`, created
    /// atomically; a claim whose container directory is gone is stale and taken over.
    pub fn reserve_name(&self, name: &ContainerName, id: &ContainerId) -> Result<()> {
        let link = self.names().join(name.as_str());
        for _ in 0..2 {
            match std::os::unix::fs::symlink(id.as_str(), &link) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner =
                        std::fs::read_link(&link).map_err(|e| RuntimeError::io_at(&link, e))?;
                    let owner = owner.to_string_lossy().into_owned();
                    let stale = owner
                        .parse::<ContainerId>()
                        .map(|o| !self.container_dir(&o).exists())
                        .unwrap_or(true);
                    if !stale {
                        return Err(RuntimeError::NameInUse {
                            name: name.to_string(),
                            id: owner,
                        });
                    }
                    let _ = std::fs::remove_file(&link);
                }
                Err(e) => return Err(RuntimeError::io_at(&link, e)),
            }
        }
        Err(RuntimeError::NameInUse {
            name: name.to_string(),
            id: "(another rrun is creating it)".into(),
        })
    }

    /// Release a name if `id` holds it.
    pub fn release_name(&self, name: &ContainerName, id: &ContainerId) {
        let link = self.names().join(name.as_str());
        if std::fs::read_link(&link).is_ok_and(|o| o.as_os_str() == id.as_str()) {
            let _ = std::fs::remove_file(&link);
        }
    }

    /// Write a record atomically (temp file and rename).
    pub fn save(&self, rec: &ContainerRecord) -> Result<()> {
        let path = self.record_path(&rec.id);
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        let json = serde_json::to_vec_pretty(rec).map_err(|e| RuntimeError::BadRecord {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&tmp, json).map_err(|e| RuntimeError::io_at(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| RuntimeError::io_at(&path, e))
    }

    /// Read a record.
    pub fn load(&self, id: &ContainerId) -> Result<ContainerRecord> {
        let path = self.record_path(id);
        let text = std::fs::read(&path).map_err(|e| RuntimeError::io_at(&path, e))?;
        serde_json::from_slice(&text).map_err(|e| RuntimeError::BadRecord {
            path,
            reason: e.to_string(),
        })
    }

    /// Every container with a readable record, oldest first.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let dir = self.containers();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RuntimeError::io_at(&dir, e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|err| RuntimeError::io_at(&dir, err))?;
            let Ok(id) = e.file_name().to_string_lossy().parse::<ContainerId>() else {
                continue;
            };
            // A directory without a record is a container being created or removed.
            if let Ok(rec) = self.load(&id) {
                out.push(rec);
            }
        }
        out.sort_by_key(|r| r.created);
        Ok(out)
    }

    /// Find a container by exact name, full id, or unique id prefix.
    pub fn find(&self, query: &str) -> Result<ContainerRecord> {
        let all = self.list()?;
        if let Some(r) = all
            .iter()
            .find(|r| r.name.as_str() == query || r.id.as_str() == query)
        {
            return Ok(r.clone());
        }
        let matches: Vec<&ContainerRecord> = if query.is_empty() {
            Vec::new()
        } else {
            all.iter()
                .filter(|r| r.id.as_str().starts_with(query))
                .collect()
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(RuntimeError::NoSuchContainer {
                query: query.to_owned(),
            }),
            many => Err(RuntimeError::AmbiguousContainer {
                query: query.to_owned(),
                count: many.len(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &StateDir, name: &str) -> ContainerRecord {
        let id = ContainerId::generate().unwrap();
        std::fs::create_dir_all(state.container_dir(&id)).unwrap();
        ContainerRecord {
            id,
            name: name.parse().unwrap(),
            image: "img".into(),
            command: vec!["true".into()],
            created: Utc::now(),
            started: None,
            finished: None,
            status: Status::Running,
            init: None,
            monitor: None,
            exit_code: None,
            rootfs: "/".into(),
            teardown_mounts: vec![],
            auto_remove: false,
            detached: false,
            log_path: None,
        }
    }

    #[test]
    fn names_are_unique_and_stale_claims_are_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path());
        s.ensure().unwrap();
        let a = record(&s, "web");
        s.reserve_name(&a.name, &a.id).unwrap();
        let b = record(&s, "web");
        let e = s.reserve_name(&b.name, &b.id).unwrap_err();
        assert!(matches!(e, RuntimeError::NameInUse { .. }), "{e}");
        std::fs::remove_dir_all(s.container_dir(&a.id)).unwrap();
        s.reserve_name(&b.name, &b.id).unwrap();
        s.release_name(&a.name, &a.id);
        assert!(s.reserve_name(&a.name, &a.id).is_err(), "b still holds it");
    }

    #[test]
    fn find_by_name_id_and_prefix() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path());
        s.ensure().unwrap();
        let a = record(&s, "alpha");
        s.save(&a).unwrap();
        assert_eq!(s.find("alpha").unwrap().id, a.id);
        assert_eq!(s.find(a.id.as_str()).unwrap().id, a.id);
        assert_eq!(s.find(&a.id.as_str()[..6]).unwrap().id, a.id);
        assert!(matches!(
            s.find("nope"),
            Err(RuntimeError::NoSuchContainer { .. })
        ));
        assert!(s.find("").is_err());
    }

    #[test]
    fn a_dead_pid_reads_as_exited() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path());
        let mut r = record(&s, "x");
        r.init = ProcessRef::current();
        assert_eq!(r.live_status(), Status::Running);
        // Same pid, other start time: a reused pid is not our container.
        r.init = Some(ProcessRef {
            pid: std::process::id() as i32,
            start_time: 1,
        });
        assert_eq!(r.live_status(), Status::Exited);
        assert!(r.status_line(Utc::now()).contains("unknown"));
        r.init = None;
        r.status = Status::Exited;
        r.exit_code = Some(3);
        assert!(r.status_line(Utc::now()).starts_with("Exited (3)"));
    }
}

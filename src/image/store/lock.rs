//! The store lock `<root>/lock`: shared for readers, exclusive for writers, one open file per
//! store and process so that nested guards in one process never wait for each other.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use crate::image::error::{ImageError, Result};

/// Name of the lock file in the store root.
pub const LOCK_FILE: &str = "lock";

/// How a guard holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Readers, and writers that only add content-addressed blobs: any number at once.
    Shared,
    /// Writers of `index.json`, prune, leftover cleanup: nobody else at the same time.
    Exclusive,
}

/// Called with a one-line message when a lock is not free and rrun starts waiting for it.
static WAIT_NOTICE: OnceLock<fn(&str)> = OnceLock::new();

/// Set the function that tells the user rrun is waiting for the store lock (the library
/// never prints; the CLI sets this once). Later calls are ignored.
pub fn set_lock_notice(notice: fn(&str)) {
    let _ = WAIT_NOTICE.set(notice);
}

/// How many guards of each mode this process holds on one store.
#[derive(Debug, Default)]
struct Held {
    shared: usize,
    exclusive: usize,
}

/// The open lock file of one store, shared by every guard of this process.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
    file: File,
    held: Mutex<Held>,
}

/// Lock files by canonical store root, so that two `Store`s on one root share one.
static OPEN: Mutex<Vec<(PathBuf, Weak<LockFile>)>> = Mutex::new(Vec::new());

impl LockFile {
    /// The lock file of the store at `root` (canonical), created if missing.
    pub(crate) fn for_root(root: &Path) -> Result<Arc<Self>> {
        let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|(_, w)| w.strong_count() > 0);
        if let Some(found) = open
            .iter()
            .find(|(r, _)| r == root)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(found);
        }
        let path = root.join(LOCK_FILE);
        let file = open_lock_file(&path)?;
        let lock = Arc::new(Self {
            path,
            file,
            held: Mutex::new(Held::default()),
        });
        open.push((root.to_path_buf(), Arc::downgrade(&lock)));
        Ok(lock)
    }

    /// Take the lock in `mode`; returns true when this call made the process the exclusive
    /// holder (the moment to clean up leftovers).
    pub(crate) fn acquire(&self, mode: LockMode) -> Result<bool> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let newly_exclusive = match mode {
            LockMode::Shared => {
                if held.shared == 0 && held.exclusive == 0 {
                    self.wait_for(LockMode::Shared)?;
                }
                held.shared += 1;
                false
            }
            LockMode::Exclusive => {
                let newly = held.exclusive == 0;
                if newly {
                    // Holding it shared: flock converts the lock (not atomically; a waiting
                    // writer may run in between, which is why staged blobs carry a lease).
                    self.wait_for(LockMode::Exclusive)?;
                }
                held.exclusive += 1;
                newly
            }
        };
        Ok(newly_exclusive)
    }

    /// Block until the kernel lock is held in `mode`, telling the user if that takes a while.
    fn wait_for(&self, mode: LockMode) -> Result<()> {
        let tried = match mode {
            LockMode::Shared => self.file.try_lock_shared(),
            LockMode::Exclusive => self.file.try_lock(),
        };
        match tried {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(ImageError::io_at(&self.path, e)),
        }
        if let Some(notice) = WAIT_NOTICE.get() {
            let what = match mode {
                LockMode::Shared => "another rrun process is changing the store",
                LockMode::Exclusive => "another rrun process is using the store",
            };
            notice(&format!(
                "waiting for the store lock {} ({what})",
                self.path.display()
            ));
        }
        match mode {
            LockMode::Shared => self.file.lock_shared(),
            LockMode::Exclusive => self.file.lock(),
        }
        .map_err(|e| ImageError::io_at(&self.path, e))
    }

    fn release(&self, mode: LockMode) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match mode {
            LockMode::Shared => held.shared -= 1,
            LockMode::Exclusive => held.exclusive -= 1,
        }
        // Best effort: a failed unlock is released when the file is closed anyway.
        if held.exclusive == 0 && held.shared == 0 {
            let _ = self.file.unlock();
        } else if mode == LockMode::Exclusive && held.exclusive == 0 {
            // Back to shared for the guards still alive (flock converts in place).
            let _ = self.file.lock_shared();
        }
    }
}

/// Open (or create, `rw-r--r--`) the lock file; read-only when the user may not write it
/// (a shared lock needs only an open file).
fn open_lock_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
    {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            File::open(path).map_err(|e| ImageError::io_at(path, e))
        }
        Err(e) => Err(ImageError::io_at(path, e)),
    }
}

/// A held store lock; released (or, for an exclusive guard inside a shared one, turned back
/// into a shared lock) when dropped.
#[derive(Debug)]
pub struct StoreLock {
    file: Arc<LockFile>,
    mode: LockMode,
}

impl StoreLock {
    pub(crate) fn new(file: Arc<LockFile>, mode: LockMode) -> Self {
        Self { file, mode }
    }

    /// The mode this guard was taken in.
    pub fn mode(&self) -> LockMode {
        self.mode
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        self.file.release(self.mode);
    }
}

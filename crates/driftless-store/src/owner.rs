//! Telling a live writer's `running` syncs from a dead one's.
//!
//! Every [`Store`](crate::Store) handle takes an *owner id* (pid, start time, counter) and
//! holds an exclusive OS file lock on `<data_dir>/owners/<owner>.lock` for as long as it
//! lives; `begin_sync` stamps the owner id on the sync. The OS releases the lock when the
//! process dies, however it dies (kill -9 included), so "the lock file is missing or can be
//! locked" means "no live process can still finish these syncs". That is what
//! [`Store::mark_interrupted`](crate::Store::mark_interrupted) checks, and why it is safe for
//! the CLI to run it while a daemon is syncing.
//!
//! The lock file is created and locked under a temporary name and then renamed into place,
//! so a sweeper can never see an unlocked `.lock` file that belongs to a live owner.
//! A handle dropped normally deletes its file; a crashed one leaves it unlocked, and the next
//! sweep deletes it.
//!
//! Limit: OS file locks are not reliable on some network file systems; keep the data
//! directory on a local disk (SQLite's WAL mode needs that anyway).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A held liveness lock; released (and its file removed) on drop.
pub(crate) struct OwnerLock {
    id: String,
    path: PathBuf,
    file: Option<File>,
}

impl OwnerLock {
    /// Creates and locks a fresh owner file in `dir`.
    pub(crate) fn acquire(dir: &Path) -> Result<OwnerLock> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = format!(
            "{}-{nanos:x}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = dir.join(format!("{id}.tmp"));
        let path = lock_path(dir, &id);
        let lock_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Lock { path, source }
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(lock_err(&tmp))?;
        file.lock().map_err(lock_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(lock_err(&path))?;
        Ok(OwnerLock {
            id,
            path,
            file: Some(file),
        })
    }

    /// The owner id stamped on syncs this handle begins.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        // Remove first, unlock second: a checker that opened the file in between still
        // finds it locked and errs on the side of "alive".
        let _ = fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

fn lock_path(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{owner}.lock"))
}

/// Whether the owner `owner` still holds its lock in `dir`.
pub(crate) fn is_alive(dir: &Path, owner: &str) -> Result<bool> {
    // Owner ids come from the database; never let one name a path outside `dir`.
    if owner.is_empty() || owner.contains(['/', '\\']) || owner.starts_with('.') {
        return Ok(false);
    }
    let path = lock_path(dir, owner);
    // Read-only is enough to take a lock, and works on files another user created.
    let file = match OpenOptions::new().read(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(Error::Lock { path, source }),
    };
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(source)) => Err(Error::Lock { path, source }),
    }
}

/// Deletes the lock files of dead owners (best effort: a failure leaves a stray file).
pub(crate) fn sweep(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("lock") {
            continue;
        }
        let Ok(file) = OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = fs::remove_file(&path);
        }
    }
}

//! The store's error type.
//!
//! Every variant names what it concerns (the database file, the application, the sync id) so
//! the message alone tells a user where to look. [`Error::is_retryable`] classifies errors by
//! what the caller should do next.

use std::io;
use std::path::PathBuf;

use crate::SyncId;

/// Result alias for store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data directory could not be created or secured.
    #[error("cannot prepare store directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A liveness lock file could not be created, locked or inspected.
    #[error("store lock file {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// SQLite failed; `operation` says what the store was doing (and for which app).
    #[error("store database {path}: {operation}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done, e.g. `begin sync for app web`.
        operation: String,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer driftless with a schema this one does not know.
    #[error(
        "store database {path} has schema version {found}, but this driftless supports up to \
         {supported}; upgrade driftless or point it at another data directory"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// `user_version` found in the file.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// No sync with this id exists for this application.
    #[error("app {app}: sync {id} not found")]
    SyncNotFound {
        /// Application name.
        app: String,
        /// The id asked for.
        id: SyncId,
    },
    /// No sync with this id exists in this store (for any application).
    #[error("sync {id} not found in this store")]
    UnknownSync {
        /// The id asked for.
        id: SyncId,
    },
    /// The sync was already finished; its outcome is not overwritten.
    #[error("app {app}: sync {id} already finished as {outcome}")]
    AlreadyFinished {
        /// Application name.
        app: String,
        /// The sync.
        id: SyncId,
        /// Its recorded outcome.
        outcome: crate::SyncOutcome,
    },
    /// A caller passed a value the store refuses (empty app name, `running` as a final
    /// outcome, an object reference without kind or name, ...).
    #[error("app {app}: {reason}")]
    Invalid {
        /// Application name (may be empty when the app name itself is invalid).
        app: String,
        /// What is wrong.
        reason: String,
    },
    /// A stored row could not be decoded (written by a damaged or foreign program).
    #[error("store database {path}: corrupt record ({what}): {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which record, e.g. `sync #4 of app web`.
        what: String,
        /// What could not be decoded.
        reason: String,
    },
}

impl Error {
    /// `true` when retrying soon may succeed: the database was busy or locked by another
    /// process for longer than the busy timeout.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

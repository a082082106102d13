//! [`StoreError`]: what can go wrong with the store, each case with its fix,
//! and the translation of redb's and the OS's errors into it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the store could not do what was asked. Cloneable, so that one failed
/// commit can fail each of the batches in it with the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another store in this one) has the data
    /// directory or database open.
    #[error(
        "another troupe host{} has `{}` open; stop it, or give this one another `--data-dir`",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        path.display()
    )]
    Locked {
        /// The directory or database file that is taken.
        path: PathBuf,
        /// The process holding it, when known.
        holder: Option<u32>,
    },
    /// The disk holding the store has no room left (`ENOSPC`, or a quota).
    #[error(
        "the disk holding `{}` is full; free space on it (or move `--data-dir` to a larger disk): \
         writes fail until then, and everything committed before stays",
        path.display()
    )]
    DiskFull {
        /// The store's directory or database file.
        path: PathBuf,
    },
    /// An I/O error other than a full disk.
    #[error("{what}: {source}; check the disk and the permissions of the data directory")]
    Io {
        /// What the store was doing, e.g. "committing to `…/store.redb`".
        what: String,
        /// The OS's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The database file is damaged beyond what redb's repair on open
    /// recovers.
    #[error(
        "`{}` is corrupt ({detail}); restore it from a backup, or move it aside to start with an empty store",
        path.display()
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// redb's description of the damage.
        detail: String,
    },
    /// The writer that commits for everyone has stopped, so nothing more
    /// can be made durable.
    #[error("the store's writer has stopped; restart the host")]
    Closed,
    /// No data directory was given and none can be derived from the
    /// environment.
    #[error("neither $XDG_STATE_HOME nor $HOME is set to an absolute path; pass `--data-dir`")]
    NoDefaultDataDir,
    /// Another host has taken over what this one was writing: a store
    /// shared by the hosts of a cluster refuses the write of a host whose
    /// fencing token is older than the one last written (see
    /// [`crate::store::Store::acquire`]).
    #[error("`{partition}` is no longer this host's to write: {reason}")]
    Fenced {
        /// The actor (the partition of the store) written.
        partition: String,
        /// Who holds it now, or why this host does not.
        reason: String,
    },
    /// A store on other machines (the cluster's) did not answer or
    /// refused the operation.
    #[error("the cluster's store: {0}; check that the NATS servers are up and have JetStream")]
    Unreachable(String),
    /// A host name that is not usable as a directory name.
    #[error(
        "a host's name names its data directory, so `{name}` must be one path component (no `/`, not `.` or `..`); choose another name, or pass `--data-dir`"
    )]
    BadHostName {
        /// The name given.
        name: String,
    },
}

impl StoreError {
    /// An error from the OS while `what`, at `path`: a full disk is
    /// [`StoreError::DiskFull`], anything else [`StoreError::Io`].
    pub(crate) fn io(error: io::Error, path: &Path, what: impl FnOnce() -> String) -> Self {
        if is_disk_full(&error) {
            StoreError::DiskFull { path: path.to_owned() }
        } else {
            StoreError::Io { what: what(), source: Arc::new(error) }
        }
    }

    /// An error from redb while `what`, on the database at `path`.
    pub(crate) fn redb(error: ::redb::Error, path: &Path, what: impl FnOnce() -> String) -> Self {
        match error {
            ::redb::Error::DatabaseAlreadyOpen | ::redb::Error::LockProtocolMismatch => {
                StoreError::Locked { path: path.to_owned(), holder: None }
            }
            ::redb::Error::Io(error) => StoreError::io(error, path, what),
            ::redb::Error::Corrupted(detail) => StoreError::Corrupt { path: path.to_owned(), detail },
            ::redb::Error::RepairAborted => {
                StoreError::Corrupt { path: path.to_owned(), detail: "the repair after a crash was aborted".into() }
            }
            ::redb::Error::UpgradeRequired(version) => StoreError::Corrupt {
                path: path.to_owned(),
                detail: format!("file format version {version} needs a manual upgrade"),
            },
            ::redb::Error::DatabaseClosed => StoreError::Closed,
            // The remaining errors (a previous I/O error, a backend's own
            // error, a poisoned transaction) are failures to reach the data:
            // I/O errors by their nature, with redb's text as the detail.
            other => StoreError::Io { what: what(), source: Arc::new(io::Error::other(other.to_string())) },
        }
    }
}

/// Whether `error` means the disk (or the user's quota on it) is full.
fn is_disk_full(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_disk_full_and_names_the_fix() {
        let error = StoreError::io(io::Error::from_raw_os_error(libc_enospc()), Path::new("/data/store.redb"), || {
            "committing".into()
        });
        assert!(matches!(&error, StoreError::DiskFull { path } if path == Path::new("/data/store.redb")));
        assert!(error.to_string().contains("free space"), "{error}");
    }

    #[test]
    fn locked_names_the_path_the_holder_and_the_fix() {
        let error = StoreError::Locked { path: "/data".into(), holder: Some(42) };
        assert_eq!(
            error.to_string(),
            "another troupe host (pid 42) has `/data` open; stop it, or give this one another `--data-dir`"
        );
        let error = StoreError::Locked { path: "/data".into(), holder: None };
        assert_eq!(
            error.to_string(),
            "another troupe host has `/data` open; stop it, or give this one another `--data-dir`"
        );
    }

    #[test]
    fn other_io_errors_keep_their_source() {
        let error = StoreError::io(io::Error::other("bad sector"), Path::new("/d"), || "reading `/d`".into());
        assert!(matches!(&error, StoreError::Io { what, .. } if what == "reading `/d`"));
        assert!(std::error::Error::source(&error).is_some());
        assert!(error.to_string().starts_with("reading `/d`: bad sector;"), "{error}");
    }

    /// ENOSPC on Linux (and every other Unix troupe runs on).
    fn libc_enospc() -> i32 {
        rustix::io::Errno::NOSPC.raw_os_error()
    }
}

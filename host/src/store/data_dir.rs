//! [`DataDir`]: the directory a host keeps its store in, and the lock that
//! keeps a second host out of it.
//!
//! The lock is an exclusive `flock` on `<dir>/troupe.lock`, held for as
//! long as the `DataDir` lives. The kernel releases it when the process
//! exits, however it exits (`kill -9` included), so a crashed host never
//! leaves a stale lock behind; the pid written into the file only serves
//! to name the holder in the error a second host gets.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use super::StoreError;

/// The lock file in a data directory.
const LOCK_FILE: &str = "troupe.lock";

/// The database file in a data directory.
const DATABASE_FILE: &str = "store.redb";

/// An open, locked data directory. Dropping it releases the lock.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holds the `flock`; closing it releases the lock.
    _lock: File,
}

impl DataDir {
    /// `$XDG_STATE_HOME/troupe/<host>` or `$HOME/.local/state/troupe/<host>`.
    /// The host's name is in the path so that two hosts never share a
    /// directory by accident.
    ///
    /// # Errors
    ///
    /// [`StoreError::NoDefaultDataDir`] when neither variable is set to an
    /// absolute path (the XDG spec says to ignore a relative one);
    /// [`StoreError::BadHostName`] when `host` is not one path component.
    pub fn default_path(host: &str) -> Result<PathBuf, StoreError> {
        default_path_in(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"), host)
    }

    /// Creates the directory (and its parents), takes an exclusive,
    /// non-blocking `flock` on `<dir>/troupe.lock` and writes our pid into
    /// it. Released when dropped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] (naming the pid that holds it) when another
    /// process, or another `DataDir` in this one, has the directory;
    /// [`StoreError::Io`] or [`StoreError::DiskFull`] when the directory or
    /// the lock file cannot be created.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let failed = |what: &'static str| {
            move |error: std::io::Error| StoreError::io(error, path, || format!("{what} `{}`", path.display()))
        };
        std::fs::create_dir_all(path).map_err(failed("creating the data directory"))?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(failed("opening the lock file in"))?;
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(StoreError::Locked { path: path.to_owned(), holder: holder(&mut lock) });
            }
            Err(error) => return Err(failed("locking")(error.into())),
        }
        lock.set_len(0)
            .and_then(|()| lock.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(failed("writing our pid into the lock file in"))?;
        Ok(Self { path: path.to_owned(), _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database file in it: `<dir>/store.redb`.
    pub fn database(&self) -> PathBuf {
        self.path.join(DATABASE_FILE)
    }

    /// The database file of the data directory `path`, open or not.
    pub fn database_in(path: &Path) -> PathBuf {
        path.join(DATABASE_FILE)
    }
}

/// [`DataDir::default_path`] with the environment passed in.
fn default_path_in(
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
    host: &str,
) -> Result<PathBuf, StoreError> {
    let one_component = Path::new(host).components().count() == 1 && Path::new(host).file_name().is_some();
    if !one_component || host.contains(['/', '\\']) {
        return Err(StoreError::BadHostName { name: host.to_owned() });
    }
    let absolute = |value: Option<OsString>| value.map(PathBuf::from).filter(|path| path.is_absolute());
    let state_home = absolute(xdg_state_home)
        .or_else(|| absolute(home).map(|home| home.join(".local").join("state")))
        .ok_or(StoreError::NoDefaultDataDir)?;
    Ok(state_home.join("troupe").join(host))
}

/// The pid the holder of `lock` wrote into it, if it has written one.
fn holder(lock: &mut File) -> Option<u32> {
    let mut text = String::new();
    lock.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_path_is_under_xdg_state_home_then_home_and_names_the_host() {
        let path = default_path_in(Some("/state".into()), Some("/home/u".into()), "web-1").unwrap();
        assert_eq!(path, Path::new("/state/troupe/web-1"));
        let path = default_path_in(None, Some("/home/u".into()), "web-1").unwrap();
        assert_eq!(path, Path::new("/home/u/.local/state/troupe/web-1"));
        let path = default_path_in(Some("relative".into()), Some("/home/u".into()), "web-1").unwrap();
        assert_eq!(path, Path::new("/home/u/.local/state/troupe/web-1"), "a relative XDG_STATE_HOME is ignored");
    }

    #[test]
    fn without_state_home_or_home_there_is_no_default_path() {
        assert!(matches!(default_path_in(None, None, "h"), Err(StoreError::NoDefaultDataDir)));
        assert!(matches!(default_path_in(Some("".into()), Some("x".into()), "h"), Err(StoreError::NoDefaultDataDir)));
    }

    #[test]
    fn a_host_name_that_is_not_one_path_component_is_refused() {
        for name in ["", ".", "..", "a/b", "/abs", "a\\b"] {
            assert!(
                matches!(default_path_in(Some("/s".into()), None, name), Err(StoreError::BadHostName { .. })),
                "{name:?}"
            );
        }
    }

    #[test]
    fn open_creates_the_directory_and_its_parents_and_writes_our_pid() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("a").join("b");
        let dir = DataDir::open(&path).unwrap();
        assert_eq!(dir.path(), path);
        assert_eq!(dir.database(), path.join("store.redb"));
        let pid = std::fs::read_to_string(path.join("troupe.lock")).unwrap();
        assert_eq!(pid, format!("{}\n", std::process::id()));
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused_with_locked_naming_the_holder() {
        let temp = tempfile::tempdir().unwrap();
        let first = DataDir::open(temp.path()).unwrap();
        match DataDir::open(temp.path()) {
            Err(StoreError::Locked { path, holder }) => {
                assert_eq!(path, temp.path());
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        DataDir::open(temp.path()).expect("the lock is released when the DataDir is dropped");
    }
}

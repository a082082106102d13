//! What an actor may reach outside its sandbox, and the WASI context that
//! enforces it.
//!
//! Nothing is granted by default: no environment variables, no files, no
//! network, no stdio, and clocks that read zero. The manifest (or `troupe
//! spawn`) grants directories (read-only or read-write, through wasmtime-wasi
//! preopens, which use cap-std so that `..`, absolute paths and symlinks
//! cannot leave them), named environment variables, the real clocks, and
//! forwarding of stdout/stderr into the host's log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

use crate::message::Address;

/// Access granted to one actor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Grants {
    /// Host directories the actor may open.
    pub dirs: Vec<DirGrant>,
    /// Environment variables the actor sees.
    pub env: BTreeMap<String, String>,
    /// Forward the actor's stdout and stderr, line by line, into the host's
    /// log (tagged with its address). Off: output is discarded.
    pub stdio: bool,
    /// Give the actor the real wall and monotonic clocks. Off: both read
    /// zero, so time cannot be used as a side channel or a source of
    /// nondeterminism.
    pub clocks: bool,
}

/// One granted directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the actor sees it (e.g. `/data`).
    pub guest: String,
    /// Read-only (the default) or read-write.
    #[serde(default)]
    pub mode: DirMode,
}

/// Access mode of a granted directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirMode {
    /// Read files and list directories.
    #[default]
    #[serde(alias = "ro")]
    ReadOnly,
    /// Also create, write and delete.
    #[serde(alias = "rw")]
    ReadWrite,
}

/// A grant that cannot be honoured.
#[derive(Debug, thiserror::Error)]
#[error("cannot grant directory `{}` as `{guest}`: {reason}", host.display())]
pub struct GrantError {
    /// The host directory.
    pub host: PathBuf,
    /// The guest path.
    pub guest: String,
    /// Why.
    pub reason: String,
}

impl Grants {
    /// Checks that every granted directory exists and is a directory, so a
    /// broken manifest fails at load rather than at the actor's start.
    ///
    /// # Errors
    ///
    /// [`GrantError`] for the first directory that cannot be granted.
    pub fn validate(&self) -> Result<(), GrantError> {
        for dir in &self.dirs {
            let err = |reason: String| GrantError { host: dir.host.clone(), guest: dir.guest.clone(), reason };
            match std::fs::metadata(&dir.host) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(err("it is not a directory".into())),
                Err(e) => return Err(err(e.to_string())),
            }
            if dir.guest.is_empty() {
                return Err(err("the guest path is empty".into()));
            }
        }
        Ok(())
    }

    /// Builds the WASI context of one incarnation of the actor at `address`.
    ///
    /// # Errors
    ///
    /// [`GrantError`] if a granted directory cannot be opened.
    pub fn wasi_ctx(&self, address: &Address) -> Result<WasiCtx, GrantError> {
        let mut b = base_builder(self.stdio, self.clocks, address);
        for (k, v) in &self.env {
            b.env(k, v);
        }
        for dir in &self.dirs {
            let perms = match dir.mode {
                DirMode::ReadOnly => FsPerms::ReadOnly,
                DirMode::ReadWrite => FsPerms::ReadWrite,
            };
            b.preopened_dir(&dir.host, &dir.guest, perms).map_err(|e| GrantError {
                host: dir.host.clone(),
                guest: dir.guest.clone(),
                reason: format!("{e:#}"),
            })?;
        }
        Ok(b.build())
    }

    /// Does building the WASI context take more than the two flags of
    /// [`plain_wasi_ctx`]: directories to open (which can fail, and should
    /// fail the start) or variables to copy? If not, it can wait for the
    /// guest's first WASI call, which most actors never make.
    pub fn need_wasi_ctx_up_front(&self) -> bool {
        !self.dirs.is_empty() || !self.env.is_empty()
    }
}

/// The WASI context of an actor granted at most `stdio` and `clocks`:
/// what [`Grants::wasi_ctx`] builds when no directory or variable is
/// granted, and cannot fail.
pub fn plain_wasi_ctx(stdio: bool, clocks: bool, address: &Address) -> WasiCtx {
    base_builder(stdio, clocks, address).build()
}

/// A builder granting no network, with stdio and clocks as granted.
fn base_builder(stdio: bool, clocks: bool, address: &Address) -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    b.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    if stdio {
        b.stdout(LogStream { address: address.clone(), stream: "stdout" });
        b.stderr(LogStream { address: address.clone(), stream: "stderr" });
    }
    if !clocks {
        b.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
    }
    b
}

/// A clock that always reads zero: what an actor without the `clocks` grant sees.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Longest line forwarded to the log; longer output is split.
const MAX_LOG_LINE: usize = 4096;

/// Forwards an actor's output stream into the host log, a line at a time.
struct LogStream {
    address: Address,
    stream: &'static str,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineLogger { address: self.address.clone(), stream: self.stream, buf: Vec::new() })
    }
}

struct LineLogger {
    address: Address,
    stream: &'static str,
    buf: Vec<u8>,
}

impl LineLogger {
    fn emit(&mut self, upto: usize) {
        let line: Vec<u8> = self.buf.drain(..upto).collect();
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        tracing::info!(target: "troupe::guest", actor = %self.address, stream = self.stream, "{text}");
    }
}

impl AsyncWrite for LineLogger {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        self.buf.extend_from_slice(data);
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            self.emit(nl + 1);
        }
        while self.buf.len() >= MAX_LOG_LINE {
            self.emit(MAX_LOG_LINE);
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.buf.is_empty() {
            let n = self.buf.len();
            self.emit(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let n = self.buf.len();
            self.emit(n);
        }
    }
}

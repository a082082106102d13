//! What an actor may reach outside its sandbox, and the WASI context that
//! enforces it.
//!
//! Nothing is granted by default: no environment variables, no files, no
//! network, no stdio, and clocks that read zero. The manifest (or `troupe
//! spawn`) grants directories (read-only or read-write, through wasmtime-wasi
//! preopens, which use cap-std so that `..`, absolute paths and symlinks
//! cannot leave them), named environment variables, the real clocks, and
//! forwarding of stdout/stderr into the host's log, and outbound HTTP to
//! an allow-list of URLs (see [`super::http_port`]).
//!
//! Whatever is granted, the last [`STDERR_TAIL_BYTES`] a guest writes to
//! stderr during a message are kept ([`StderrTail`]): if the message
//! fails, they go into the failure report, so that a panic's message or an
//! uncaught exception reaches the caller, `troupe ps` and the `failed`
//! event. Nothing of it leaves the host otherwise.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::clocks::{MonotonicClock, WallClock};
use wasmtime_wasi::p2::pipe::AsyncWriteStream;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

use super::tape::{Tape, TapedClocks, TapedRandom};

use crate::message::Address;
use crate::sync::Mutex;

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
    /// Outbound HTTP (`wasi:http/outgoing-handler`) to the URLs of an
    /// allow-list, under limits (see `crate::outbound`). Written as
    /// `grants = { http = [...] }`, which the manifest and the spawn paths
    /// turn into this handle; `None`: no outbound HTTP.
    #[serde(skip)]
    pub http: Option<super::http_port::HttpAccess>,
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
    pub fn wasi_ctx(&self, address: &Address, stderr: &mut StderrTail) -> Result<WasiCtx, GrantError> {
        self.wasi_ctx_taped(address, stderr, None)
    }

    /// [`Grants::wasi_ctx`], with clocks and random read through `tape`
    /// if given (a durable actor that journals).
    pub(crate) fn wasi_ctx_taped(
        &self,
        address: &Address,
        stderr: &mut StderrTail,
        tape: Option<&Tape>,
    ) -> Result<WasiCtx, GrantError> {
        let mut b = base_builder(self.stdio, self.clocks, address, stderr, tape);
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

    /// Does building the WASI context take more than the two flags
    /// `stdio` and `clocks`: directories to open (which can fail, and should
    /// fail the start) or variables to copy? If not, it can wait for the
    /// guest's first WASI call, which most actors never make.
    pub fn need_wasi_ctx_up_front(&self) -> bool {
        !self.dirs.is_empty() || !self.env.is_empty()
    }
}

/// The WASI context of an actor granted at most `stdio` and `clocks`:
/// what [`Grants::wasi_ctx`] builds when no directory or variable is
/// granted, and cannot fail.
pub(crate) fn plain_wasi_ctx(
    stdio: bool,
    clocks: bool,
    address: &Address,
    stderr: &mut StderrTail,
    tape: Option<&Tape>,
) -> WasiCtx {
    base_builder(stdio, clocks, address, stderr, tape).build()
}

/// A builder granting no network, with stdio and clocks as granted, and
/// stderr kept in `tail`; with a `tape`, clocks and random read through it.
fn base_builder(
    stdio: bool,
    clocks: bool,
    address: &Address,
    tail: &mut StderrTail,
    tape: Option<&Tape>,
) -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    b.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    let log = |stream| stdio.then(|| LogStream { address: address.clone(), stream });
    if let Some(stdout) = log("stdout") {
        b.stdout(stdout);
    }
    b.stderr(Stderr { tail: tail.share(), log: log("stderr") });
    match (tape, clocks) {
        (None, true) => {}
        (None, false) => {
            b.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        (Some(tape), true) => {
            b.wall_clock(TapedClocks { clock: WallClock, tape: tape.clone() });
            b.monotonic_clock(TapedClocks { clock: MonotonicClock::default(), tape: tape.clone() });
        }
        (Some(tape), false) => {
            b.wall_clock(TapedClocks { clock: FrozenClock, tape: tape.clone() });
            b.monotonic_clock(TapedClocks { clock: FrozenClock, tape: tape.clone() });
        }
    }
    if let Some(tape) = tape {
        b.secure_random(TapedRandom { source: wasmtime_wasi::thread_rng(), tape: tape.clone() });
        b.insecure_random(TapedRandom { source: wasmtime_wasi::thread_rng(), tape: tape.clone() });
        // A seed, not a call: the same in every incarnation, so that what
        // it seeds (hash maps' order) replays as it ran.
        b.insecure_random_seed(seed_of(address));
    }
    b
}

/// A seed that depends on the address only, and is stable across hosts
/// and versions.
fn seed_of(address: &Address) -> u128 {
    let hash = blake3::hash(address.as_bytes());
    let mut seed = [0u8; 16];
    seed.copy_from_slice(&hash.as_bytes()[..16]);
    u128::from_le_bytes(seed)
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

/// How much of what a guest writes to stderr during a message is kept for
/// its failure report: the end, where a panic message or a traceback's last
/// line is.
pub const STDERR_TAIL_BYTES: usize = 2048;

/// The last [`STDERR_TAIL_BYTES`] an incarnation wrote to stderr since the
/// current message began. The WASI stream and the incarnation share it;
/// nothing is allocated until the guest's WASI context is built (most
/// actors never make a WASI call).
#[derive(Debug, Clone, Default)]
pub struct StderrTail(Option<Arc<Mutex<VecDeque<u8>>>>);

impl StderrTail {
    /// A handle on the same tail for a WASI stream, allocating it first.
    pub fn share(&mut self) -> StderrTail {
        StderrTail(Some(self.0.get_or_insert_with(Arc::default).clone()))
    }

    /// Forgets what was written: a new message begins.
    pub fn clear(&self) {
        if let Some(tail) = &self.0 {
            let mut tail = tail.lock();
            if !tail.is_empty() {
                tail.clear();
            }
        }
    }

    /// Takes what was written, as text, if anything was.
    pub fn take(&self) -> Option<String> {
        let bytes: Vec<u8> = std::mem::take(&mut *self.0.as_ref()?.lock()).into();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{fffd}');
        (!text.is_empty()).then(|| text.to_string())
    }

    fn push(&self, data: &[u8]) {
        let Some(tail) = &self.0 else { return };
        let mut tail = tail.lock();
        let data = &data[data.len().saturating_sub(STDERR_TAIL_BYTES)..];
        let overflow = (tail.len() + data.len()).saturating_sub(STDERR_TAIL_BYTES);
        tail.drain(..overflow);
        tail.extend(data);
    }
}

/// A guest's stderr: kept in its tail, and forwarded to the log if granted.
struct Stderr {
    tail: StderrTail,
    log: Option<LogStream>,
}

impl IsTerminal for Stderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Stderr {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        let log = self.log.as_ref().map(|l| Box::into_pin(l.async_stream()));
        Box::new(TailWriter { tail: self.tail.clone(), log })
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        match &self.log {
            // On to the log as well: through the log writer's task.
            Some(_) => Box::new(AsyncWriteStream::new(LOG_STREAM_BUFFER, Pin::from(self.async_stream()))),
            // Kept only: written in place. The adapter above would hand
            // every write to a task of its own and wait for it, a round trip
            // between threads on the path of a failing message.
            None => Box::new(TailStream(self.tail.clone())),
        }
    }
}

/// The buffer of a WASI stream forwarded to the log (wasmtime-wasi's own
/// default).
const LOG_STREAM_BUFFER: usize = 8192;

/// A WASI output stream into a [`StderrTail`], written synchronously.
struct TailStream(StderrTail);

#[wasmtime_wasi::async_trait]
impl OutputStream for TailStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.0.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Any amount: the tail keeps the end of it.
        Ok(LOG_STREAM_BUFFER)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for TailStream {
    async fn ready(&mut self) {}
}

/// Writes into a [`StderrTail`], and on to the log if granted.
struct TailWriter {
    tail: StderrTail,
    log: Option<Pin<Box<dyn AsyncWrite + Send + Sync>>>,
}

impl AsyncWrite for TailWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        if let Some(log) = &mut self.log {
            // The log writer takes everything at once (see `LineLogger`).
            let _ = log.as_mut().poll_write(cx, data);
        }
        self.tail.push(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.log {
            Some(log) => log.as_mut().poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.log {
            Some(log) => log.as_mut().poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stderr_tail_keeps_the_end_of_what_was_written() {
        let tail = StderrTail::default().share();
        tail.push(b"first line\n");
        tail.push(&vec![b'x'; STDERR_TAIL_BYTES]);
        tail.push(b"\npanicked at src/lib.rs: boom\n");
        let kept = tail.take().unwrap();
        assert!(kept.ends_with("panicked at src/lib.rs: boom"), "{kept}");
        assert!(!kept.contains("first line"));
        assert!(kept.len() <= STDERR_TAIL_BYTES);
        assert_eq!(tail.take(), None, "taken, not copied");
    }

    #[test]
    fn a_cleared_tail_holds_nothing_from_the_message_before() {
        let mut kept = StderrTail::default();
        let tail = kept.share();
        tail.push(b"old\n");
        tail.clear();
        tail.push(b"new\n");
        assert_eq!(kept.take().as_deref(), Some("new"), "both handles see one tail");
        tail.push(b"  \n");
        assert_eq!(tail.take(), None, "blank output is nothing to report");
    }
}

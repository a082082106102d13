//! The control plane: a local endpoint through which the `troupe` CLI (or
//! any client speaking its JSON-lines protocol) drives a running host.
//!
//! The endpoint is a Unix socket, by default
//! `$XDG_RUNTIME_DIR/troupe/control.sock` (or `/tmp/troupe-$UID/control.sock`),
//! in a directory only its owner can enter, and the socket itself is
//! owner-only: any process that can connect can do anything the CLI can,
//! so only the user who started the host can. See SECURITY.md.
//!
//! Each connection carries requests and responses as one JSON object per
//! line ([`Request`], [`Response`]).

mod client;
mod protocol;
mod server;

pub use client::{Client, ClientError};
pub use protocol::{ErrorBody, LimitOverrides, Numbered, Request, Response, SpawnReply, StateFile};
pub use server::{ControlServer, ServeError, answer, respawn_durable, respawner};

use std::path::PathBuf;

/// The control socket path used when neither `--control` nor
/// `TROUPE_CONTROL` is given.
pub fn default_socket_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("troupe").join("control.sock");
    }
    let uid = rustix::process::getuid().as_raw();
    PathBuf::from(format!("/tmp/troupe-{uid}")).join("control.sock")
}

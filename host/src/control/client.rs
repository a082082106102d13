//! A client for the control endpoint, as the CLI uses it.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::protocol::{ErrorBody, Request, Response};

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No host listens at the path.
    #[error(
        "no troupe host is running at {path} ({reason}); start one with `troupe run`, or point to it with `--control PATH`"
    )]
    NotRunning {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The connection broke.
    #[error("lost the connection to the host at {path}: {reason}")]
    Connection {
        /// The socket path.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// The host answered with an error.
    #[error("{}", .0.message)]
    Host(ErrorBody),
}

/// A connection to a host's control endpoint.
pub struct Client {
    path: PathBuf,
    stream: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the host at `path`.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRunning`] if nothing listens there.
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| ClientError::NotRunning { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(Client { path: path.to_path_buf(), stream: BufReader::new(stream) })
    }

    /// Subscribes to lifecycle events and calls `each` with every one until
    /// the host goes away or `each` returns false.
    ///
    /// # Errors
    ///
    /// [`ClientError::Connection`].
    pub async fn events(&mut self, mut each: impl FnMut(serde_json::Value) -> bool) -> Result<(), ClientError> {
        let broken = |reason: String| ClientError::Connection { path: self.path.clone(), reason };
        let mut line = serde_json::to_vec(&Request::Events).map_err(|e| broken(e.to_string()))?;
        line.push(b'\n');
        self.stream.get_mut().write_all(&line).await.map_err(|e| broken(e.to_string()))?;
        loop {
            let mut answer = String::new();
            let n = self.stream.read_line(&mut answer).await.map_err(|e| broken(e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            let response: Response = serde_json::from_str(&answer).map_err(|e| broken(format!("bad event: {e}")))?;
            if let Some(error) = response.error {
                return Err(ClientError::Host(error));
            }
            if !each(response.ok.unwrap_or_default()) {
                return Ok(());
            }
        }
    }

    /// Sends `request` and returns the host's `ok` value.
    ///
    /// # Errors
    ///
    /// [`ClientError::Host`] with the host's error, or
    /// [`ClientError::Connection`].
    pub async fn request(&mut self, request: &Request) -> Result<serde_json::Value, ClientError> {
        let broken = |reason: String| ClientError::Connection { path: self.path.clone(), reason };
        let mut line = serde_json::to_vec(request).map_err(|e| broken(e.to_string()))?;
        line.push(b'\n');
        self.stream.get_mut().write_all(&line).await.map_err(|e| broken(e.to_string()))?;
        let mut answer = String::new();
        let n = self.stream.read_line(&mut answer).await.map_err(|e| broken(e.to_string()))?;
        if n == 0 {
            return Err(broken("the host closed the connection".into()));
        }
        let response: Response = serde_json::from_str(&answer).map_err(|e| broken(format!("bad response: {e}")))?;
        match (response.ok, response.error) {
            (_, Some(error)) => Err(ClientError::Host(error)),
            (Some(ok), None) => Ok(ok),
            (None, None) => Err(broken("empty response".into())),
        }
    }
}

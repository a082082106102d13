//! The JetStream KV buckets and object store the cluster keeps, made so
//! that nats-server 2.9 (Debian's) takes them.
//!
//! async-nats 0.51's `create_key_value` first reads the account's
//! JetStream limits in a form 2.9 does not send, and fails. A KV bucket
//! is only a stream with a known shape, so [`kv_bucket`] creates that
//! stream (`KV_<bucket>`, subjects `$KV.<bucket>.>`) itself and then
//! opens the bucket. Creating a stream that exists with the same
//! configuration succeeds, so every host does it as it joins.
//!
//! A JetStream cluster that has just started, or is busy (electing the
//! leader of a replicated stream on a loaded machine), may let a request
//! time out: a host joining keeps trying for [`OPEN_PATIENCE`] before it
//! gives up, as a host started beside its NATS servers must.

use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::kv;
use async_nats::jetstream::object_store::{self, ObjectStore};
use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};

use tracing::warn;

use super::ClusterError;

/// How long a host keeps trying to open a bucket whose requests time out.
pub const OPEN_PATIENCE: Duration = Duration::from_secs(30);

/// Runs `open` until it succeeds, fails for good, or has timed out for
/// [`OPEN_PATIENCE`]: a request that timed out (or found no server to
/// answer it) is tried again.
pub(super) async fn patiently<T, F>(name: &str, mut open: impl FnMut() -> F) -> Result<T, ClusterError>
where
    F: std::future::Future<Output = Result<T, ClusterError>>,
{
    let deadline = std::time::Instant::now() + OPEN_PATIENCE;
    loop {
        match open().await {
            Err(ClusterError::Bucket { reason, .. })
                if (reason.contains("timed out") || reason.contains("request error"))
                    && std::time::Instant::now() < deadline =>
            {
                warn!(bucket = %name, %reason, "JetStream did not answer in time; trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            done => return done,
        }
    }
}

/// What a bucket keeps: how many revisions per key, how long an entry
/// lives (zero: for ever).
#[derive(Debug, Clone, Copy)]
pub struct BucketShape {
    /// Revisions kept per key.
    pub history: i64,
    /// Age after which an entry is removed; zero keeps entries.
    pub max_age: Duration,
}

/// Opens the KV bucket `name`, creating its stream first if needed, with
/// `replicas` copies.
///
/// # Errors
///
/// [`ClusterError::Bucket`] naming the bucket and what the server said.
pub async fn kv_bucket(
    js: &Context,
    name: &str,
    shape: BucketShape,
    replicas: usize,
) -> Result<kv::Store, ClusterError> {
    patiently(name, || open_kv_bucket(js, name, shape, replicas)).await
}

/// One try of [`kv_bucket`].
async fn open_kv_bucket(
    js: &Context,
    name: &str,
    shape: BucketShape,
    replicas: usize,
) -> Result<kv::Store, ClusterError> {
    let failed = |e: &dyn std::fmt::Display| ClusterError::Bucket { bucket: name.to_string(), reason: e.to_string() };
    let config = Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: shape.history,
        max_age: shape.max_age,
        discard: DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        storage: StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    match js.get_stream(&config.name).await {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            js.create_stream(config).await.map_err(|e| failed(&e))?;
        }
        Err(e) => return Err(failed(&e)),
    }
    js.get_key_value(name).await.map_err(|e| failed(&e))
}

/// Opens the object store `name`, creating it if needed.
///
/// # Errors
///
/// [`ClusterError::Bucket`] naming the store and what the server said.
pub async fn object_store(js: &Context, name: &str, replicas: usize) -> Result<ObjectStore, ClusterError> {
    patiently(name, || open_object_store(js, name, replicas)).await
}

/// One try of [`object_store`].
async fn open_object_store(js: &Context, name: &str, replicas: usize) -> Result<ObjectStore, ClusterError> {
    let failed = |e: &dyn std::fmt::Display| ClusterError::Bucket { bucket: name.to_string(), reason: e.to_string() };
    match js.get_object_store(name).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: name.to_string(),
                num_replicas: replicas,
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e)),
    }
}

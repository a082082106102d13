//! The JetStream KV buckets and object store the cluster keeps, made so
//! that nats-server 2.9 (Debian's) takes them.
//!
//! async-nats 0.51's `create_key_value` first reads the account's
//! JetStream limits in a form 2.9 does not send, and fails. A KV bucket
//! is only a stream with a known shape, so [`kv_bucket`] creates that
//! stream (`KV_<bucket>`, subjects `$KV.<bucket>.>`) itself and then
//! opens the bucket. Creating a stream that exists with the same
//! configuration succeeds, so every host does it as it joins.

use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::kv;
use async_nats::jetstream::object_store::{self, ObjectStore};
use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};

use super::ClusterError;

/// What a bucket keeps: how many revisions per key, how long an entry
/// lives (zero: for ever).
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

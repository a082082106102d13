//! The store the hosts of a cluster share: [`SharedStore`], the store
//! layer's [`Store`] on a replicated JetStream stream, where the durable
//! keys of virtual components commit, so that a key whose host died
//! activates on another host with every acknowledged change.
//!
//! # Layout
//!
//! Each partition of the store (one actor's keys: [`partition_of`]) is a
//! subject of the stream `TROUPE_STATE` (`troupe.state.<escaped
//! partition>`), and its messages, in order, are its writes: each one the
//! operations of the batches one commit wrote to it, applied together or
//! not at all (a message is stored whole or not). Every so often, and
//! whenever a host acquires the partition, a host writes an *image* (every
//! key of the partition) as a rollup, which removes the messages before
//! it: a partition is read with a handful of requests however long it has
//! lived. The stream has as many replicas as the cluster has servers, up
//! to three: a commit is acknowledged once a majority has it.
//!
//! # Fencing
//!
//! Each write carries the fencing token of the host that makes it (the
//! revision at which it won the key's claim, `keys.rs`; greater for each
//! host that takes the key over) and is published on the condition that
//! the partition's last message is the one the writer read last
//! (`Nats-Expected-Last-Subject-Sequence`). A host that acquires a
//! partition reads it and writes an image with its own token under that
//! condition; from then on a host that held it before finds, at its next
//! write, the condition failing, reads the partition again, sees a greater
//! token than its own, and is refused ([`StoreError::Fenced`]): it can
//! never commit again, and nothing it commits is acknowledged after
//! another host took over. A host that does not hold its cluster lease, or
//! the key's claim, writes nothing either.
//!
//! # What it keeps in memory
//!
//! The partitions it has read, up to [`MAX_CACHED`] (then it forgets some:
//! a write to one forgotten reads it again, under the same condition).
//! Scans across partitions (a prefix of addresses, the whole store) list
//! the stream's subjects and read every partition in range.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_ROLLUP};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::{Config, DirectGetErrorKind, DiscardPolicy, StorageType, Stream};
use async_nats::jetstream::{self, Context, ErrorCode, context::GetStreamErrorKind};
use bytes::Bytes;
use futures_util::StreamExt as _;

use super::ClusterError;
use crate::actor::BoxFuture;
use crate::store::{Batch, KeyValues, Op, Store, StoreError, Table, partition_of};

/// The stream holding the shared store.
pub const STATE_STREAM: &str = "TROUPE_STATE";

/// The subjects of its partitions start with this.
const SUBJECT_PREFIX: &str = "troupe.state.";

/// The header carrying a write's fencing token.
const FENCE: &str = "Troupe-Fence";

/// The header marking an image (every key of the partition).
const IMAGE: &str = "Troupe-Image";

/// Writes to a partition after which its writer writes an image, so that
/// reading it takes at most this many requests and one.
const IMAGE_EVERY: u32 = 64;

/// Most partitions kept in memory.
pub const MAX_CACHED: usize = 10_000;

/// How many times a write whose condition failed reads the partition again
/// and retries (a replica answering a read may lag the leader for a moment).
const RETRIES: u32 = 5;

/// The fencing token this host writes `partition` with, or why it may not
/// write it (it does not hold the key, or its lease lapsed).
pub type Fencing = Arc<dyn Fn(&str) -> Result<u64, String> + Send + Sync>;

/// One partition as last read or written.
#[derive(Debug, Default, Clone)]
struct Partition {
    /// Its keys, by table.
    keys: BTreeMap<(u8, Vec<u8>), Vec<u8>>,
    /// The stream sequence of its last message (0: none).
    last: u64,
    /// The greatest fencing token written to it.
    fence: u64,
    /// Messages since its last image.
    since_image: u32,
}

impl Partition {
    /// Applies one message's operations.
    fn apply(&mut self, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Put { table, key, value } => {
                    self.keys.insert((table_index(*table), key.clone()), value.clone());
                }
                Op::Delete { table, key } => {
                    self.keys.remove(&(table_index(*table), key.clone()));
                }
                Op::DeleteRange { table, start, end } => {
                    if start < end {
                        let t = table_index(*table);
                        let doomed: Vec<_> =
                            self.keys.range((t, start.clone())..(t, end.clone())).map(|(k, _)| k.clone()).collect();
                        for key in doomed {
                            self.keys.remove(&key);
                        }
                    }
                }
            }
        }
    }

    /// Every key, as puts: an image.
    fn image(&self) -> Vec<Op> {
        self.keys
            .iter()
            .map(|((t, key), value)| Op::Put { table: Table::ALL[*t as usize], key: key.clone(), value: value.clone() })
            .collect()
    }
}

fn table_index(table: Table) -> u8 {
    Table::ALL.iter().position(|t| *t == table).unwrap_or(0) as u8
}

/// The store the hosts of a cluster share (see the module doc).
pub struct SharedStore {
    /// Its own runtime and NATS connection: the store's methods block,
    /// and may be called from the host's runtime's threads.
    runtime: Option<tokio::runtime::Runtime>,
    inner: Arc<Inner>,
}

struct Inner {
    js: Context,
    stream: Stream,
    fencing: Fencing,
    cache: tokio::sync::Mutex<HashMap<Vec<u8>, Partition>>,
}

impl SharedStore {
    /// Connects to the NATS servers `servers` (comma-separated URLs) and
    /// opens the stream, creating it with `replicas` copies if needed.
    /// Writes are made with the tokens `fencing` gives.
    ///
    /// # Errors
    ///
    /// A [`ClusterError`] naming the problem.
    pub async fn open(servers: &str, replicas: usize, fencing: Fencing) -> Result<SharedStore, ClusterError> {
        let (names, addresses) = (servers.to_string(), super::server_addresses(servers)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("troupe-shared-store")
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Nats(format!("cannot start the shared store's runtime: {e}")))?;
        let opened = runtime.spawn(async move {
            let connect =
                |e: &dyn std::fmt::Display| ClusterError::Connect { servers: names.clone(), reason: e.to_string() };
            let client = async_nats::ConnectOptions::new()
                .name("troupe shared store")
                .connect(addresses)
                .await
                .map_err(|e| connect(&e))?;
            let js = jetstream::new(client);
            let stream = super::buckets::patiently(STATE_STREAM, || state_stream(&js, replicas)).await?;
            Ok::<_, ClusterError>((js, stream))
        });
        let (js, stream) = match opened.await.map_err(|e| ClusterError::Nats(e.to_string())).and_then(|r| r) {
            Ok(opened) => opened,
            Err(e) => {
                // Dropped in place, a runtime would wait for its tasks,
                // which an async caller may not.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let inner = Arc::new(Inner { js, stream, fencing, cache: Default::default() });
        Ok(SharedStore { runtime: Some(runtime), inner })
    }

    /// Removes every partition: every durable key's state, for every host
    /// of the cluster. For tests, and to start a cluster's state afresh
    /// while no host runs.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unreachable`] if the stream could not be purged.
    pub fn purge_all(&self) -> Result<(), StoreError> {
        self.run(|inner| {
            Box::pin(async move {
                inner.stream.purge().await.map_err(|e| unreachable("purging", e))?;
                inner.cache.lock().await.clear();
                Ok(())
            })
        })
    }

    /// Runs `work` on the store's runtime and waits for it, from any
    /// thread.
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(Arc<Inner>) -> BoxFuture<'static, Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(runtime) = &self.runtime else { return Err(StoreError::Closed) };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let inner = self.inner.clone();
        runtime.spawn(async move {
            let _ = tx.send(work(inner).await);
        });
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }
}

impl Drop for SharedStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Opens the stream, creating it if needed.
async fn state_stream(js: &Context, replicas: usize) -> Result<Stream, ClusterError> {
    let failed =
        |e: &dyn std::fmt::Display| ClusterError::Bucket { bucket: STATE_STREAM.into(), reason: e.to_string() };
    match js.get_stream(STATE_STREAM).await {
        Ok(stream) => Ok(stream),
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            let config = Config {
                name: STATE_STREAM.into(),
                subjects: vec![format!("{SUBJECT_PREFIX}>")],
                allow_rollup: true,
                allow_direct: true,
                discard: DiscardPolicy::Old,
                storage: StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            };
            js.create_stream(config).await.map_err(|e| failed(&e))
        }
        Err(e) => Err(failed(&e)),
    }
}

/// The subject of `partition`: its bytes escaped (letters, digits, `-`, `_`
/// and `/` stay; every other byte is `=` and two hex digits), after a `_`
/// so that the empty partition has a token too.
fn subject_of(partition: &[u8]) -> String {
    let mut subject = format!("{SUBJECT_PREFIX}_");
    for &byte in partition {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'/') {
            subject.push(byte as char);
        } else {
            subject.push_str(&format!("={byte:02x}"));
        }
    }
    subject
}

/// The partition of `subject`, if [`subject_of`] made it.
fn partition_of_subject(subject: &str) -> Option<Vec<u8>> {
    let token = subject.strip_prefix(SUBJECT_PREFIX)?.strip_prefix('_')?;
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'=' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    Some(bytes)
}

/// `ops` as one message's payload: for each, a tag (put, delete, delete a
/// range), the table, and its one or two byte strings, each after its
/// length (4 bytes, big-endian).
fn encode(ops: &[Op]) -> Vec<u8> {
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    }
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Put { table, key, value } => {
                out.extend_from_slice(&[0, table_index(*table)]);
                bytes(&mut out, key);
                bytes(&mut out, value);
            }
            Op::Delete { table, key } => {
                out.extend_from_slice(&[1, table_index(*table)]);
                bytes(&mut out, key);
            }
            Op::DeleteRange { table, start, end } => {
                out.extend_from_slice(&[2, table_index(*table)]);
                bytes(&mut out, start);
                bytes(&mut out, end);
            }
        }
    }
    out
}

/// The operations [`encode`] wrote, or what is wrong with `payload`.
fn decode(mut payload: &[u8]) -> Result<Vec<Op>, String> {
    fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if input.len() < n {
            return Err("a message of the shared store ends early".into());
        }
        let (head, tail) = input.split_at(n);
        *input = tail;
        Ok(head)
    }
    fn bytes(input: &mut &[u8]) -> Result<Vec<u8>, String> {
        let len = u32::from_be_bytes(take(input, 4)?.try_into().map_err(|_| "a length")?) as usize;
        Ok(take(input, len)?.to_vec())
    }
    let mut ops = Vec::new();
    while !payload.is_empty() {
        let head = take(&mut payload, 2)?;
        let table = *Table::ALL.get(head[1] as usize).ok_or("an unknown table")?;
        ops.push(match head[0] {
            0 => Op::Put { table, key: bytes(&mut payload)?, value: bytes(&mut payload)? },
            1 => Op::Delete { table, key: bytes(&mut payload)? },
            2 => Op::DeleteRange { table, start: bytes(&mut payload)?, end: bytes(&mut payload)? },
            tag => return Err(format!("an unknown operation {tag}")),
        });
    }
    Ok(ops)
}

fn unreachable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unreachable(format!("{what}: {e}"))
}

impl Inner {
    /// Reads `partition` from the stream: its image and the writes after.
    async fn read(&self, partition: &[u8]) -> Result<Partition, StoreError> {
        let subject = subject_of(partition);
        let mut read = Partition::default();
        let mut next = 1;
        loop {
            let message = match self.stream.direct_get_next_for_subject(subject.as_str(), Some(next)).await {
                Ok(message) => message,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(read),
                Err(e) => return Err(unreachable("reading a partition", e)),
            };
            let ops = decode(&message.payload).map_err(|e| unreachable("reading a partition", e))?;
            if message.headers.get(IMAGE).is_some() {
                read.keys.clear();
                read.since_image = 0;
            } else {
                read.since_image += 1;
            }
            read.apply(&ops);
            read.last = message.sequence;
            let fence = message.headers.get(FENCE).and_then(|v| v.as_str().parse().ok()).unwrap_or(0);
            read.fence = read.fence.max(fence);
            next = message.sequence + 1;
        }
    }

    /// The fencing token this host writes `partition` with.
    fn token(&self, partition: &[u8]) -> Result<u64, StoreError> {
        let name = String::from_utf8_lossy(partition).into_owned();
        (self.fencing)(&name).map_err(|reason| StoreError::Fenced { partition: name, reason })
    }

    /// Publishes `ops` to `partition` after its message `last`, with
    /// `token`; an image replaces what was before. `Ok(None)`: the
    /// condition failed (someone wrote since).
    async fn publish(
        &self,
        partition: &[u8],
        ops: &[Op],
        last: u64,
        token: u64,
        image: bool,
    ) -> Result<Option<u64>, StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, last.to_string().as_str());
        headers.insert(FENCE, token.to_string().as_str());
        if image {
            headers.insert(NATS_ROLLUP, "sub");
            headers.insert(IMAGE, "1");
        }
        let payload = Bytes::from(encode(ops));
        let ack = self
            .js
            .publish_with_headers(subject_of(partition), headers, payload)
            .await
            .map_err(|e| unreachable("writing", e))?;
        match ack.await {
            Ok(ack) => Ok(Some(ack.sequence)),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(None),
            Err(e) => Err(unreachable("writing", e)),
        }
    }

    /// Writes `ops` to `partition` (an image if `image`) with this host's
    /// token, reading the partition again while the condition fails;
    /// refused if a greater token was written since.
    async fn write(&self, partition: &[u8], ops: Vec<Op>, image: bool) -> Result<(), StoreError> {
        let token = self.token(partition)?;
        let fenced = |held: u64| StoreError::Fenced {
            partition: String::from_utf8_lossy(partition).into_owned(),
            reason: format!("another host took it over (fencing token {held}, this host's {token})"),
        };
        let mut cache = self.cache.lock().await;
        for attempt in 0..RETRIES {
            let current = match cache.get(partition) {
                Some(current) if attempt == 0 => current.clone(),
                _ => self.read(partition).await?,
            };
            if current.fence > token {
                cache.remove(partition);
                return Err(fenced(current.fence));
            }
            let mut next = current.clone();
            let ops = if image {
                next.apply(&ops);
                next.image()
            } else {
                ops.clone()
            };
            match self.publish(partition, &ops, current.last, token, image).await? {
                Some(sequence) => {
                    if image {
                        next.since_image = 0;
                    } else {
                        next.apply(&ops);
                        next.since_image += 1;
                    }
                    next.last = sequence;
                    next.fence = token;
                    let emptied = next.keys.is_empty() && !image;
                    let due = next.since_image >= IMAGE_EVERY;
                    if cache.len() >= MAX_CACHED && !cache.contains_key(partition) {
                        forget_some(&mut cache);
                    }
                    cache.insert(partition.to_vec(), next);
                    drop(cache);
                    if emptied {
                        // Nothing left (the actor was forgotten): the
                        // subject goes, so that counting subjects counts
                        // actors with a state.
                        self.forget(partition).await;
                        return Ok(());
                    }
                    if due {
                        // Not needed for this write: one that fails is
                        // tried again after the next.
                        if let Err(e) = Box::pin(self.write(partition, Vec::new(), true)).await {
                            tracing::debug!(error = %e, "an image of a partition was not written");
                        }
                    }
                    return Ok(());
                }
                None => tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await,
            }
        }
        Err(unreachable("writing", "the partition kept changing under this host"))
    }

    /// Removes the subject of `partition`, which holds no key (a host that
    /// writes it later starts it again, with its token).
    async fn forget(&self, partition: &[u8]) {
        let purged = self.stream.purge().filter(subject_of(partition)).await;
        if let Err(e) = purged {
            tracing::debug!(error = %e, "an emptied partition was not purged");
        }
        self.cache.lock().await.remove(partition);
    }

    /// `partition` as cached, or read.
    async fn cached(&self, partition: &[u8]) -> Result<Partition, StoreError> {
        if let Some(found) = self.cache.lock().await.get(partition) {
            return Ok(found.clone());
        }
        self.read(partition).await
    }

    /// Every partition the stream has.
    async fn partitions(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut subjects = self
            .stream
            .info_with_subjects(format!("{SUBJECT_PREFIX}>"))
            .await
            .map_err(|e| unreachable("listing the partitions", e))?;
        let mut partitions = Vec::new();
        while let Some(subject) = subjects.next().await {
            let (subject, _count) = subject.map_err(|e| unreachable("listing the partitions", e))?;
            partitions.extend(partition_of_subject(&subject));
        }
        partitions.sort();
        Ok(partitions)
    }
}

/// Forgets half the cached partitions, to make room.
fn forget_some(cache: &mut HashMap<Vec<u8>, Partition>) {
    let doomed: Vec<Vec<u8>> = cache.keys().step_by(2).cloned().collect();
    for key in doomed {
        cache.remove(&key);
    }
}

/// The ops of `batches`, grouped by partition in the order each partition
/// first appears.
fn by_partition(batches: &[Batch]) -> Vec<(Vec<u8>, Vec<Op>)> {
    let mut groups: Vec<(Vec<u8>, Vec<Op>)> = Vec::new();
    for op in batches.iter().flat_map(Batch::ops) {
        let (table, key) = match op {
            Op::Put { table, key, .. } | Op::Delete { table, key } => (*table, key),
            Op::DeleteRange { table, start, .. } => (*table, start),
        };
        let partition = partition_of(table, key);
        match groups.iter_mut().find(|(p, _)| p == partition) {
            Some((_, ops)) => ops.push(op.clone()),
            None => groups.push((partition.to_vec(), vec![op.clone()])),
        }
    }
    groups
}

impl Store for SharedStore {
    /// Each partition's writes in one message, the partitions one after
    /// the other: a commit across partitions may stop part way (and then
    /// fails), which the journal never asks for (each of its batches
    /// writes one actor).
    fn commit(&self, batches: &[Batch]) -> Result<(), StoreError> {
        let groups = by_partition(batches);
        self.run(move |inner| {
            Box::pin(async move {
                for (partition, ops) in groups {
                    inner.write(&partition, ops, false).await?;
                }
                Ok(())
            })
        })
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (partition, key) = (partition_of(table, key).to_vec(), key.to_vec());
        self.run(move |inner| {
            Box::pin(async move {
                let found = inner.cached(&partition).await?;
                Ok(found.keys.get(&(table_index(table), key)).cloned())
            })
        })
    }

    fn range(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KeyValues, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let (start, end) = (start.to_vec(), end.to_vec());
        self.run(move |inner| {
            Box::pin(async move {
                let one = partition_of(table, &start);
                let partitions =
                    if one == partition_of(table, &end) { vec![one.to_vec()] } else { inner.partitions().await? };
                let t = table_index(table);
                let mut found = Vec::new();
                for partition in partitions {
                    let read = inner.cached(&partition).await?;
                    found.extend(
                        read.keys.range((t, start.clone())..(t, end.clone())).map(|((_, k), v)| (k.clone(), v.clone())),
                    );
                }
                found.sort();
                Ok(found)
            })
        })
    }

    /// Across partitions, counts each partition in range once, by its
    /// subject, without reading it (`count` sees the partition's name):
    /// a partition that holds no key has no subject (see
    /// `Inner::write`).
    fn count_keys(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        count: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<u64, StoreError> {
        if start >= end {
            return Ok(0);
        }
        if partition_of(table, start) == partition_of(table, end) {
            return Ok(self.range(table, start, end)?.iter().filter(|(key, _)| count(key)).count() as u64);
        }
        let partitions = self.run(|inner| Box::pin(async move { inner.partitions().await }))?;
        Ok(partitions.iter().filter(|p| p.as_slice() >= start && p.as_slice() < end && count(p)).count() as u64)
    }

    /// Reads the partition afresh and writes an image of it with this
    /// host's token: no host with an older one writes it again.
    fn acquire(&self, partition: &[u8]) -> Result<(), StoreError> {
        let partition = partition.to_vec();
        self.run(move |inner| {
            Box::pin(async move {
                inner.cache.lock().await.remove(&partition);
                inner.write(&partition, Vec::new(), true).await
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_trip_through_a_message() {
        let ops = vec![
            Op::Put { table: Table::Inbox, key: b"user/1\0\0".to_vec(), value: b"v".to_vec() },
            Op::Delete { table: Table::Meta, key: b"sent\0user/1".to_vec() },
            Op::DeleteRange { table: Table::Timers, start: b"a".to_vec(), end: Vec::new() },
        ];
        assert_eq!(decode(&encode(&ops)), Ok(ops));
        assert!(decode(&[0, 1, 0, 0]).is_err(), "a message cut short");
        assert!(decode(&[9, 1]).is_err(), "an unknown operation");
    }

    #[test]
    fn partitions_have_subjects_of_their_own_and_back() {
        for partition in [&b"user/42"[..], b"", b"a.b", b"\xff\x00"] {
            let subject = subject_of(partition);
            assert!(!subject.contains(' ') && !subject[SUBJECT_PREFIX.len()..].contains('.'), "{subject}");
            assert_eq!(partition_of_subject(&subject).as_deref(), Some(partition));
        }
        assert_ne!(subject_of(b"a.b"), subject_of(b"a=2eb"));
    }

    #[test]
    fn a_partition_applies_writes_in_order_and_its_image_holds_every_key() {
        let mut partition = Partition::default();
        partition.apply(&[
            Op::Put { table: Table::Inbox, key: b"a\0\x01".to_vec(), value: b"1".to_vec() },
            Op::Put { table: Table::Inbox, key: b"a\0\x02".to_vec(), value: b"2".to_vec() },
            Op::Put { table: Table::Snapshots, key: b"a\0\x01".to_vec(), value: b"s".to_vec() },
            Op::DeleteRange { table: Table::Inbox, start: b"a\0\x00".to_vec(), end: b"a\0\x02".to_vec() },
        ]);
        let image = partition.image();
        assert_eq!(
            image,
            [
                Op::Put { table: Table::Snapshots, key: b"a\0\x01".to_vec(), value: b"s".to_vec() },
                Op::Put { table: Table::Inbox, key: b"a\0\x02".to_vec(), value: b"2".to_vec() },
            ]
        );
    }

    #[test]
    fn a_commit_is_grouped_by_the_actor_each_write_belongs_to() {
        let mut first = Batch::new();
        first.put(Table::Inbox, b"a\0\x01".to_vec(), b"1".to_vec()).put(Table::Meta, b"taken\0b\0a".to_vec(), b"o");
        let mut second = Batch::new();
        second.delete_range(Table::Inbox, b"a\0".to_vec(), b"a\x01".to_vec());
        let groups = by_partition(&[first, second]);
        let names: Vec<&[u8]> = groups.iter().map(|(p, _)| p.as_slice()).collect();
        assert_eq!(names, [&b"a"[..], b"b"]);
        assert_eq!(groups[0].1.len(), 2, "a's put and a's range, in order");
    }
}

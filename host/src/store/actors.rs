//! The journal of durable actors on the store: the key layout of each
//! table, and [`DurableStore`], which implements the actor layer's
//! [`Journal`] port over a [`GroupCommit`].
//!
//! | table | key | value |
//! |---|---|---|
//! | `snapshots` | address, `0`, place in the journal (8 bytes, big-endian): the newest and the one before | watermark (8 bytes, big-endian), version length (4), version, state |
//! | `inbox` | address, `0`, tell number (8 bytes, big-endian) | the tell as a JSON [`WireMessage`] |
//! | `actors` | address | how to start it again (opaque) |
//! | `timers` | address, `0`, timer id (8 bytes, big-endian) | the timer as JSON |
//! | `handled` | address, `0`, entry number (8 bytes, big-endian; each after the last) | a message handled after the older snapshot, as a JSON [`Handled`] |
//! | `outbox` | address, `0`, origin (8 + 4 bytes, big-endian) | a tell the actor made, committed and not yet delivered, as a JSON [`Outgoing`] |
//! | `dead_letters` | address, `0`, tell number (8 bytes, big-endian) | the dead letter as JSON |
//! | `meta` | `taken`, `0`, address, `0`, sender | the origin of the last tell taken from that durable sender: its number (8 bytes, big-endian) and index (4) |
//! | `meta` | `sent`, `0`, address | the origin of the last tell the actor made (as above) |
//! | `meta` | `code`, `0`, address | the code a hot swap left the actor running (opaque) |
//!
//! Addresses never contain a `0` or `1` byte, so the inbox entries of one
//! actor form one key range, in the order of their numbers, and so do the
//! senders it took tells from; and every key belongs to one actor, its
//! *partition* ([`partition_of`]), which a store shared by several hosts
//! writes as a unit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::{Batch, DEFAULT_CACHE_BYTES, DataDir, GroupCommit, GroupCommitConfig, RedbStore, Store, StoreError, Table};
use crate::actor::BoxFuture;
use crate::actor::Snapshot;
use crate::actor::durable::{
    Checkpoint, DeadLetter, DurableTimer, Handled, Journal, JournalError, Origin, Outbox, Outgoing, Recovered,
};
use crate::message::{Address, WireMessage};

/// A durable actors' journal on a store: a redb store in a locked data
/// directory, or a store the hosts of a cluster share.
pub struct DurableStore {
    pub(super) commits: GroupCommit,
    /// The data directory of an embedded store; none for a shared one.
    dir: Option<DataDir>,
}

impl std::fmt::Debug for DurableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStore").field("dir", &self.path()).finish()
    }
}

impl DurableStore {
    /// Opens (creating if needed) the store in the data directory `dir`.
    ///
    /// # Errors
    ///
    /// A [`StoreError`]: another host has the directory, it cannot be
    /// created, or the database is corrupt.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`DurableStore::open`], with at most `cache_bytes` of the database's
    /// pages cached in memory.
    ///
    /// # Errors
    ///
    /// As [`DurableStore::open`].
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let dir = DataDir::open(dir)?;
        let store: Arc<dyn Store> = Arc::new(RedbStore::open_with_cache(&dir.database(), cache_bytes)?);
        Ok(Self::on(store, dir))
    }

    /// The journal over `store`, in the (locked) directory `dir`.
    pub fn on(store: Arc<dyn Store>, dir: DataDir) -> Self {
        DurableStore { commits: GroupCommit::start(store, GroupCommitConfig::default()), dir: Some(dir) }
    }

    /// The journal over `store`, which other hosts share (it has no data
    /// directory here).
    pub fn shared(store: Arc<dyn Store>) -> Self {
        DurableStore { commits: GroupCommit::start(store, GroupCommitConfig::default()), dir: None }
    }

    /// Its data directory, for an embedded store.
    pub fn path(&self) -> Option<&Path> {
        self.dir.as_ref().map(DataDir::path)
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> super::GroupCommitStats {
        self.commits.stats()
    }

    fn submit(&self, batch: Batch) -> BoxFuture<'static, Result<(), JournalError>> {
        let committed = self.commits.submit(batch);
        Box::pin(async move { committed.await.map_err(journal_error) })
    }

    /// Submits the batch `build` writes, unless it fails.
    fn submit_built(
        &self,
        build: impl FnOnce(&mut Batch) -> Result<(), JournalError>,
    ) -> BoxFuture<'static, Result<(), JournalError>> {
        let mut batch = Batch::new();
        match build(&mut batch) {
            Ok(()) => self.submit(batch),
            Err(e) => failed(e),
        }
    }
}

/// The prefixes of the `meta` keys that name an actor after them.
const META_PREFIXES: [&[u8]; 3] = [b"taken\0", b"sent\0", b"code\0"];

/// The actor `key` of `table` belongs to (its address's bytes): the key up
/// to its first `0` or `1` byte, after the prefix of a `meta` key. Every
/// key of one actor maps to its address, and so does each end of a key
/// range that covers that actor's keys only (a range's end is the first
/// key past them, e.g. the address and a `1`).
pub fn partition_of(table: Table, key: &[u8]) -> &[u8] {
    let rest = match table {
        Table::Meta => META_PREFIXES.iter().find_map(|prefix| key.strip_prefix(*prefix)).unwrap_or(key),
        _ => key,
    };
    let end = rest.iter().position(|&b| b < 2).unwrap_or(rest.len());
    &rest[..end]
}

/// A write that failed before it was submitted.
fn failed(e: JournalError) -> BoxFuture<'static, Result<(), JournalError>> {
    Box::pin(std::future::ready(Err(e)))
}

/// `value` as a stored JSON value.
fn to_json(value: &impl serde::Serialize, what: &str) -> Result<Vec<u8>, JournalError> {
    serde_json::to_vec(value).map_err(|e| JournalError(format!("cannot encode the {what}: {e}")))
}

fn journal_error(e: StoreError) -> JournalError {
    JournalError(e.to_string())
}

/// The first key of `actor`'s inbox entries numbered `seq` or more.
pub(super) fn inbox_key(actor: &Address, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(actor.len() + 9);
    key.extend_from_slice(actor.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The key just past all of `actor`'s inbox entries.
pub(super) fn inbox_end(actor: &Address) -> Vec<u8> {
    let mut key = Vec::with_capacity(actor.len() + 1);
    key.extend_from_slice(actor.as_bytes());
    key.push(1);
    key
}

/// The key prefix of what `actor` took from durable senders.
fn taken_prefix(actor: &Address) -> Vec<u8> {
    let mut key = b"taken\0".to_vec();
    key.extend_from_slice(actor.as_bytes());
    key.push(0);
    key
}

/// The key just past [`taken_prefix`]'s range.
fn taken_end(actor: &Address) -> Vec<u8> {
    let mut key = taken_prefix(actor);
    if let Some(last) = key.last_mut() {
        *last = 1;
    }
    key
}

/// The key of `actor`'s last sent origin.
fn sent_key(actor: &Address) -> Vec<u8> {
    let mut key = b"sent\0".to_vec();
    key.extend_from_slice(actor.as_bytes());
    key
}

/// The key of `actor`'s outbox entry `origin`.
fn outbox_key(actor: &Address, origin: Origin) -> Vec<u8> {
    let mut key = inbox_key(actor, origin.seq);
    key.extend_from_slice(&origin.index.to_be_bytes());
    key
}

/// Adds `outbox` to `actor`'s outbox and records its last origin.
fn put_outbox(batch: &mut Batch, actor: &Address, outbox: &Outbox) -> Result<(), JournalError> {
    for outgoing in &outbox.tells {
        batch.put(Table::Outbox, outbox_key(actor, outgoing.origin), to_json(outgoing, "outgoing tell")?);
    }
    if let Some(last) = outbox.last {
        batch.put(Table::Meta, sent_key(actor), encode_origin(last));
    }
    Ok(())
}

fn encode_origin(origin: Origin) -> Vec<u8> {
    let mut value = origin.seq.to_be_bytes().to_vec();
    value.extend_from_slice(&origin.index.to_be_bytes());
    value
}

fn decode_origin(value: &[u8]) -> Option<Origin> {
    let seq = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let index = u32::from_be_bytes(value.get(8..12)?.try_into().ok()?);
    Some(Origin { seq, index })
}

/// A committed state as stored.
pub(super) fn encode_state(checkpoint: &Checkpoint) -> Vec<u8> {
    let version = checkpoint.state.version.as_bytes();
    let mut value = Vec::with_capacity(12 + version.len() + checkpoint.state.bytes.len());
    value.extend_from_slice(&checkpoint.watermark.to_be_bytes());
    value.extend_from_slice(&(version.len() as u32).to_be_bytes());
    value.extend_from_slice(version);
    value.extend_from_slice(&checkpoint.state.bytes);
    value
}

/// A stored state, or why it cannot be read.
fn decode_state(value: &[u8]) -> Result<(Snapshot, u64), String> {
    let watermark = value.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    let version_len = value.get(8..12).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
    let (Some(watermark), Some(version_len)) = (watermark, version_len) else {
        return Err(format!("a committed state of {} bytes is too short", value.len()));
    };
    let end = 12 + version_len as usize;
    let version = value.get(12..end).ok_or("a committed state's version is cut short")?;
    let version = String::from_utf8(version.to_vec()).map_err(|_| "a committed state's version is not UTF-8")?;
    Ok((Snapshot { version, bytes: value[end..].to_vec() }, watermark))
}

impl Journal for DurableStore {
    fn commit_times(&self) -> Option<crate::metrics::HistogramSnapshot> {
        Some(self.commits.commit_times())
    }

    fn accept(
        &self,
        actor: &Address,
        seq: u64,
        message: WireMessage,
        origin: Option<Origin>,
        timer: Option<u64>,
    ) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit_built(|batch| {
            batch.put(Table::Inbox, inbox_key(actor, seq), to_json(&message, "tell")?);
            if let (Some(origin), Some(sender)) = (origin, &message.from) {
                let mut key = taken_prefix(actor);
                key.extend_from_slice(sender.as_bytes());
                batch.put(Table::Meta, key, encode_origin(origin));
            }
            if let Some(timer) = timer {
                batch.delete(Table::Timers, inbox_key(actor, timer));
            }
            Ok(())
        })
    }

    fn set_timer(&self, actor: &Address, timer: DurableTimer) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit_built(|batch| {
            batch.put(Table::Timers, inbox_key(actor, timer.id), to_json(&timer, "timer")?);
            Ok(())
        })
    }

    fn cancel_timer(&self, actor: &Address, id: u64) -> BoxFuture<'static, Result<(), JournalError>> {
        let mut batch = Batch::new();
        batch.delete(Table::Timers, inbox_key(actor, id));
        self.submit(batch)
    }

    fn dead_letter(&self, actor: &Address, letter: DeadLetter) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit_built(|batch| {
            batch.delete(Table::Inbox, inbox_key(actor, letter.seq));
            batch.put(Table::DeadLetters, inbox_key(actor, letter.seq), to_json(&letter, "dead letter")?);
            Ok(())
        })
    }

    fn dead_letters(&self, actor: Option<&Address>) -> Result<Vec<DeadLetter>, JournalError> {
        let (start, end) = match actor {
            Some(actor) => (inbox_key(actor, 0), inbox_end(actor)),
            None => (Vec::new(), vec![0xff]),
        };
        let rows = self.commits.store().range(Table::DeadLetters, &start, &end).map_err(journal_error)?;
        rows.into_iter()
            .map(|(_, value)| {
                serde_json::from_slice(&value).map_err(|e| JournalError(format!("a dead letter cannot be read: {e}")))
            })
            .collect()
    }

    fn remove_dead_letter(&self, actor: &Address, seq: u64) -> BoxFuture<'static, Result<(), JournalError>> {
        let mut batch = Batch::new();
        batch.delete(Table::DeadLetters, inbox_key(actor, seq));
        self.submit(batch)
    }

    fn checkpoint(&self, actor: &Address, checkpoint: Checkpoint) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit_built(|batch| checkpointing(batch, actor, &checkpoint))
    }

    fn append(
        &self,
        actor: &Address,
        number: u64,
        handled: &Handled,
        outbox: &Outbox,
    ) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit_built(|batch| {
            batch.put(Table::Handled, inbox_key(actor, number), to_json(handled, "handled message")?);
            let consumed = inbox_key(actor, handled.watermark.saturating_add(1));
            batch.delete_range(Table::Inbox, inbox_key(actor, 0), consumed);
            put_outbox(batch, actor, outbox)
        })
    }

    fn sent(&self, actor: &Address, through: Origin) -> BoxFuture<'static, Result<(), JournalError>> {
        let mut batch = Batch::new();
        let past = match through.index.checked_add(1) {
            Some(index) => outbox_key(actor, Origin { index, ..through }),
            None => inbox_key(actor, through.seq.saturating_add(1)),
        };
        batch.delete_range(Table::Outbox, inbox_key(actor, 0), past);
        self.submit(batch)
    }

    fn recover(&self, actor: &Address) -> Result<Recovered, JournalError> {
        let store = self.commits.store();
        store.acquire(actor.as_bytes()).map_err(journal_error)?;
        // The newest snapshot that can be read, and its place in the journal.
        let mut snapshots: Vec<(u64, Vec<u8>)> = store
            .range(Table::Snapshots, &snapshot_key(actor, 0), &inbox_end(actor))
            .map_err(journal_error)?
            .into_iter()
            .map(|(key, value)| (key_number(&key), value))
            .collect();
        if let Some(legacy) = store.get(Table::Snapshots, actor.as_bytes()).map_err(journal_error)? {
            snapshots.insert(0, (0, legacy));
        }
        let mut chosen = None;
        for (position, value) in snapshots.iter().rev() {
            match decode_state(value) {
                Ok((state, watermark)) => {
                    chosen = Some((state, watermark, *position));
                    break;
                }
                Err(e) => {
                    tracing::error!(%actor, position, error = %e, "a snapshot cannot be read; trying the one before")
                }
            }
        }
        let (state, watermark, position) = match chosen {
            Some((state, watermark, position)) => (Some(state), watermark, position),
            None if snapshots.is_empty() => (None, 0, 0),
            None => return Err(JournalError(format!("`{actor}`: no snapshot of it can be read"))),
        };
        let mut replay = Vec::new();
        let mut journal_end = position;
        for (key, value) in
            store.range(Table::Handled, &inbox_key(actor, position + 1), &inbox_end(actor)).map_err(journal_error)?
        {
            let number = key_number(&key);
            let handled: Handled = serde_json::from_slice(&value)
                .map_err(|e| JournalError(format!("`{actor}`: journal entry {number} cannot be read: {e}")))?;
            replay.push(handled);
            journal_end = number;
        }
        let watermark = replay.last().map_or(watermark, |last| last.watermark);
        let rows = store
            .range(Table::Inbox, &inbox_key(actor, watermark.saturating_add(1)), &inbox_end(actor))
            .map_err(journal_error)?;
        let mut pending = Vec::with_capacity(rows.len());
        for (key, value) in rows {
            let seq = key_number(&key);
            let message: WireMessage = serde_json::from_slice(&value)
                .map_err(|e| JournalError(format!("`{actor}`: tell {seq} cannot be read: {e}")))?;
            pending.push((seq, message));
        }
        let prefix = taken_prefix(actor);
        let mut taken = Vec::new();
        for (key, value) in store.range(Table::Meta, &prefix, &taken_end(actor)).map_err(journal_error)? {
            let sender = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let origin = decode_origin(&value).ok_or_else(|| {
                JournalError(format!("`{actor}`: the last tell taken from `{sender}` cannot be read"))
            })?;
            taken.push((Address::from(sender), origin));
        }
        let mut timers = Vec::new();
        for (_, value) in store.range(Table::Timers, &inbox_key(actor, 0), &inbox_end(actor)).map_err(journal_error)? {
            let timer: DurableTimer = serde_json::from_slice(&value)
                .map_err(|e| JournalError(format!("`{actor}`: a timer cannot be read: {e}")))?;
            timers.push(timer);
        }
        let mut outbox = Vec::new();
        for (_, value) in store.range(Table::Outbox, &inbox_key(actor, 0), &inbox_end(actor)).map_err(journal_error)? {
            let outgoing: Outgoing = serde_json::from_slice(&value)
                .map_err(|e| JournalError(format!("`{actor}`: an outgoing tell cannot be read: {e}")))?;
            outbox.push(outgoing);
        }
        let last_sent = match store.get(Table::Meta, &sent_key(actor)).map_err(journal_error)? {
            Some(value) => Some(
                decode_origin(&value)
                    .ok_or_else(|| JournalError(format!("`{actor}`: the origin of its last tell cannot be read")))?,
            ),
            None => None,
        };
        Ok(Recovered { state, replay, position, journal_end, watermark, pending, taken, timers, outbox, last_sent })
    }

    fn record_spawn(&self, actor: &Address, how: Vec<u8>) -> BoxFuture<'static, Result<(), JournalError>> {
        let mut batch = Batch::new();
        batch.put(Table::Actors, actor.as_bytes(), how);
        self.submit(batch)
    }

    fn spawned(&self) -> Result<Vec<(Address, Vec<u8>)>, JournalError> {
        let rows = self.commits.store().range(Table::Actors, &[], &[0xff]).map_err(journal_error)?;
        Ok(rows
            .into_iter()
            .map(|(key, how)| (Address::from(String::from_utf8_lossy(&key).into_owned()), how))
            .collect())
    }

    fn waiting_under(&self, prefix: &str) -> Result<Vec<Address>, JournalError> {
        let store = self.commits.store();
        let (start, mut end) = (prefix.as_bytes().to_vec(), prefix.as_bytes().to_vec());
        end.push(0xff);
        let mut waiting = std::collections::BTreeSet::new();
        for table in [Table::Inbox, Table::Timers, Table::Outbox] {
            for (key, _) in store.range(table, &start, &end).map_err(journal_error)? {
                let address = key.split(|b| *b == 0).next().unwrap_or_default();
                waiting.insert(String::from_utf8_lossy(address).into_owned());
            }
        }
        Ok(waiting.into_iter().map(Address::from).collect())
    }

    fn stored_under(&self, prefix: &str, skip: &dyn Fn(&str) -> bool) -> Result<u64, JournalError> {
        let (start, mut end) = (prefix.as_bytes().to_vec(), prefix.as_bytes().to_vec());
        end.push(0xff);
        // An actor has one or two snapshots, keyed by its address and their
        // place: count addresses, not keys.
        let mut last: Vec<u8> = Vec::new();
        let mut new_key = |key: &[u8]| {
            let address = key.split(|b| *b == 0).next().unwrap_or_default();
            let name = &address[prefix.len().min(address.len())..];
            if address == last.as_slice() || name.contains(&b'/') {
                return false;
            }
            last = address.to_vec();
            !skip(&String::from_utf8_lossy(address))
        };
        self.commits.store().count_keys(Table::Snapshots, &start, &end, &mut new_key).map_err(journal_error)
    }

    fn forget(&self, actor: &Address) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(forgetting(actor))
    }

    fn import(&self, actor: &Address, state: Snapshot) -> BoxFuture<'static, Result<(), JournalError>> {
        let mut batch = forgetting(actor);
        batch.put(
            Table::Snapshots,
            snapshot_key(actor, 0),
            encode_state(&Checkpoint::only(state, 0, Outbox::default(), 0)),
        );
        self.submit(batch)
    }

    fn commit_code(
        &self,
        actor: &Address,
        checkpoint: Checkpoint,
        code: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit_built(|batch| {
            checkpointing(batch, actor, &checkpoint)?;
            batch.put(Table::Meta, code_key(actor), code);
            Ok(())
        })
    }

    fn code(&self, actor: &Address) -> Result<Option<Vec<u8>>, JournalError> {
        self.commits.store().get(Table::Meta, &code_key(actor)).map_err(journal_error)
    }
}

/// The key of the code a hot swap left `actor` running.
fn code_key(actor: &Address) -> Vec<u8> {
    let mut key = b"code\0".to_vec();
    key.extend_from_slice(actor.as_bytes());
    key
}

/// The writes of a checkpoint of `actor`: its state and watermark at its
/// place in the journal; the inbox entries the state contains gone; the
/// snapshots before the previous one and the journal up to it gone (the
/// previous one stays, with the journal after it); its outbox added.
fn checkpointing(batch: &mut Batch, actor: &Address, checkpoint: &Checkpoint) -> Result<(), JournalError> {
    let previous = checkpoint.previous.min(checkpoint.position);
    batch.put(Table::Snapshots, snapshot_key(actor, checkpoint.position), encode_state(checkpoint));
    batch.delete(Table::Snapshots, actor.as_bytes());
    batch.delete_range(Table::Snapshots, snapshot_key(actor, 0), snapshot_key(actor, previous));
    let consumed = inbox_key(actor, checkpoint.watermark.saturating_add(1));
    batch.delete_range(Table::Inbox, inbox_key(actor, 0), consumed);
    batch.delete_range(Table::Handled, inbox_key(actor, 0), inbox_key(actor, previous.saturating_add(1)));
    put_outbox(batch, actor, &checkpoint.outbox)
}

/// The key of `actor`'s snapshot at `position` in its journal. (A store
/// written before snapshots were kept in pairs has one at `actor` itself,
/// read as position 0.)
pub(super) fn snapshot_key(actor: &Address, position: u64) -> Vec<u8> {
    inbox_key(actor, position)
}

/// The number at the end of a key made by [`inbox_key`].
pub(super) fn key_number(key: &[u8]) -> u64 {
    key.len().checked_sub(8).and_then(|at| key[at..].try_into().ok()).map_or(0, u64::from_be_bytes)
}

/// The writes that forget everything about `actor`.
fn forgetting(actor: &Address) -> Batch {
    let mut batch = Batch::new();
    batch.delete(Table::Snapshots, actor.as_bytes());
    batch.delete_range(Table::Snapshots, snapshot_key(actor, 0), inbox_end(actor));
    batch.delete(Table::Actors, actor.as_bytes());
    batch.delete_range(Table::Inbox, inbox_key(actor, 0), inbox_end(actor));
    batch.delete_range(Table::Handled, inbox_key(actor, 0), inbox_end(actor));
    batch.delete_range(Table::Outbox, inbox_key(actor, 0), inbox_end(actor));
    batch.delete(Table::Meta, sent_key(actor));
    batch.delete_range(Table::Meta, taken_prefix(actor), taken_end(actor));
    batch.delete_range(Table::Timers, inbox_key(actor, 0), inbox_end(actor));
    batch.delete_range(Table::DeadLetters, inbox_key(actor, 0), inbox_end(actor));
    batch.delete(Table::Meta, code_key(actor));
    batch
}

/// A [`DurableStore`] opened on first use: a host that runs no durable
/// actor never touches its data directory, so several such hosts can share
/// a user's default one. The first use that cannot open it (another host
/// has it) fails with the reason, and so does every later one.
pub struct LazyStore {
    path: PathBuf,
    cache_bytes: usize,
    opened: OnceLock<Result<DurableStore, StoreError>>,
}

impl LazyStore {
    /// The store in `path`, opened on first use, caching at most
    /// `cache_bytes` of its pages.
    pub fn new(path: PathBuf, cache_bytes: usize) -> Self {
        LazyStore { path, cache_bytes, opened: OnceLock::new() }
    }

    /// Its data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Does the directory hold a store already (durable actors to recover)?
    pub fn exists(&self) -> bool {
        DataDir::database_in(&self.path).is_file()
    }

    /// Opens it now if it is not open yet.
    ///
    /// # Errors
    ///
    /// The [`StoreError`] that kept it from opening.
    pub fn open(&self) -> Result<&DurableStore, StoreError> {
        self.opened
            .get_or_init(|| DurableStore::open_with_cache(&self.path, self.cache_bytes))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn with<T>(&self, f: impl FnOnce(&DurableStore) -> Result<T, JournalError>) -> Result<T, JournalError> {
        f(self.open().map_err(journal_error)?)
    }

    fn submit(
        &self,
        f: impl FnOnce(&DurableStore) -> BoxFuture<'static, Result<(), JournalError>>,
    ) -> BoxFuture<'static, Result<(), JournalError>> {
        match self.open() {
            Ok(store) => f(store),
            Err(e) => failed(journal_error(e)),
        }
    }
}

impl Journal for LazyStore {
    /// Once open: a store not opened yet has committed nothing.
    fn commit_times(&self) -> Option<crate::metrics::HistogramSnapshot> {
        self.opened.get()?.as_ref().ok()?.commit_times()
    }

    fn accept(
        &self,
        actor: &Address,
        seq: u64,
        message: WireMessage,
        origin: Option<Origin>,
        timer: Option<u64>,
    ) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.accept(actor, seq, message, origin, timer))
    }

    fn set_timer(&self, actor: &Address, timer: DurableTimer) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.set_timer(actor, timer))
    }

    fn cancel_timer(&self, actor: &Address, id: u64) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.cancel_timer(actor, id))
    }

    fn dead_letter(&self, actor: &Address, letter: DeadLetter) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.dead_letter(actor, letter))
    }

    fn dead_letters(&self, actor: Option<&Address>) -> Result<Vec<DeadLetter>, JournalError> {
        self.with(|s| s.dead_letters(actor))
    }

    fn remove_dead_letter(&self, actor: &Address, seq: u64) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.remove_dead_letter(actor, seq))
    }

    fn checkpoint(&self, actor: &Address, checkpoint: Checkpoint) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.checkpoint(actor, checkpoint))
    }

    fn append(
        &self,
        actor: &Address,
        number: u64,
        handled: &Handled,
        outbox: &Outbox,
    ) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.append(actor, number, handled, outbox))
    }

    fn sent(&self, actor: &Address, through: Origin) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.sent(actor, through))
    }

    fn recover(&self, actor: &Address) -> Result<Recovered, JournalError> {
        self.with(|s| s.recover(actor))
    }

    fn record_spawn(&self, actor: &Address, how: Vec<u8>) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.record_spawn(actor, how))
    }

    fn spawned(&self) -> Result<Vec<(Address, Vec<u8>)>, JournalError> {
        self.with(|s| s.spawned())
    }

    fn waiting_under(&self, prefix: &str) -> Result<Vec<Address>, JournalError> {
        self.with(|s| s.waiting_under(prefix))
    }

    fn stored_under(&self, prefix: &str, skip: &dyn Fn(&str) -> bool) -> Result<u64, JournalError> {
        self.with(|s| s.stored_under(prefix, skip))
    }

    fn forget(&self, actor: &Address) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.forget(actor))
    }

    fn import(&self, actor: &Address, state: Snapshot) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.import(actor, state))
    }

    fn commit_code(
        &self,
        actor: &Address,
        checkpoint: Checkpoint,
        code: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), JournalError>> {
        self.submit(|s| s.commit_code(actor, checkpoint, code))
    }

    fn code(&self, actor: &Address) -> Result<Option<Vec<u8>>, JournalError> {
        self.with(|s| s.code(actor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::suite;

    fn state(text: &str) -> Snapshot {
        Snapshot { version: "v1".into(), bytes: text.as_bytes().to_vec() }
    }

    #[test]
    fn every_key_of_an_actor_and_the_ends_of_its_ranges_belong_to_its_partition() {
        let actor: Address = "user/4.2".into();
        let keys = [
            (Table::Inbox, inbox_key(&actor, 7)),
            (Table::Inbox, inbox_end(&actor)),
            (Table::Snapshots, snapshot_key(&actor, 0)),
            (Table::Snapshots, actor.as_bytes().to_vec()),
            (Table::Outbox, outbox_key(&actor, Origin { seq: 3, index: 1 })),
            (Table::Actors, actor.as_bytes().to_vec()),
            (Table::Meta, taken_prefix(&actor)),
            (Table::Meta, taken_end(&actor)),
            (Table::Meta, sent_key(&actor)),
            (Table::Meta, code_key(&actor)),
        ];
        for (table, key) in keys {
            assert_eq!(partition_of(table, &key), actor.as_bytes(), "{table:?} {key:?}");
        }
        assert_eq!(partition_of(Table::Inbox, b"user/4"), b"user/4", "a neighbour is its own partition");
    }

    #[test]
    fn a_state_reads_back_as_it_was_committed() {
        let checkpoint = Checkpoint::only(state("forty-two"), 42, Outbox::default(), 0);
        let (read, watermark) = decode_state(&encode_state(&checkpoint)).unwrap();
        assert_eq!((read.version.as_str(), read.bytes.as_slice(), watermark), ("v1", &b"forty-two"[..], 42));
        assert!(decode_state(&[0; 5]).unwrap_err().contains("too short"));
    }

    /// Journals on redb stores in temporary directories.
    #[derive(Default)]
    struct OnRedb {
        dir: Option<tempfile::TempDir>,
    }

    impl suite::Opener for OnRedb {
        fn fresh(&mut self) -> DurableStore {
            let dir = self.dir.insert(tempfile::tempdir().unwrap());
            DurableStore::open(dir.path()).unwrap()
        }

        fn reopen(&mut self) -> DurableStore {
            DurableStore::open(self.dir.as_ref().unwrap().path()).unwrap()
        }
    }

    #[test]
    fn recovery_returns_the_committed_state_and_only_the_tells_after_it() {
        suite::recovery_returns_the_committed_state_and_only_the_tells_after_it(&mut OnRedb::default());
    }

    #[test]
    fn a_tell_written_after_the_state_that_contains_it_is_ignored() {
        suite::a_tell_written_after_the_state_that_contains_it_is_ignored(&mut OnRedb::default());
    }

    #[test]
    fn what_was_committed_survives_the_store_being_closed_and_spawns_are_listed_until_forgotten() {
        suite::what_was_committed_survives_the_store_being_closed_and_spawns_are_listed_until_forgotten(
            &mut OnRedb::default(),
        );
    }

    #[test]
    fn the_last_tell_taken_from_each_durable_sender_is_recovered_and_forgotten_with_the_actor() {
        suite::the_last_tell_taken_from_each_durable_sender_is_recovered_and_forgotten_with_the_actor(
            &mut OnRedb::default(),
        );
    }

    #[test]
    fn the_journal_after_the_newest_snapshot_is_replayed_and_the_one_before_is_kept_with_its_journal() {
        suite::the_journal_after_the_newest_snapshot_is_replayed_and_the_one_before_is_kept_with_its_journal(
            &mut OnRedb::default(),
        );
    }

    #[test]
    fn an_unreadable_newest_snapshot_falls_back_to_the_one_before_and_its_journal() {
        suite::an_unreadable_newest_snapshot_falls_back_to_the_one_before_and_its_journal(&mut OnRedb::default());
    }

    #[test]
    fn a_snapshot_written_by_an_earlier_version_is_read_and_replaced() {
        suite::a_snapshot_written_by_an_earlier_version_is_read_and_replaced(&mut OnRedb::default());
    }

    #[test]
    fn the_outbox_commits_with_the_message_and_keeps_what_was_not_sent() {
        suite::the_outbox_commits_with_the_message_and_keeps_what_was_not_sent(&mut OnRedb::default());
    }

    #[test]
    fn the_actors_with_work_waiting_under_a_prefix_are_listed_once_each() {
        suite::the_actors_with_work_waiting_under_a_prefix_are_listed_once_each(&mut OnRedb::default());
    }

    #[test]
    fn a_lazy_store_opens_on_first_use_and_names_the_host_that_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = LazyStore::new(dir.path().to_path_buf(), DEFAULT_CACHE_BYTES);
        assert!(!first.exists(), "nothing is created before it is used");
        first.recover(&"a".into()).unwrap();
        assert!(first.exists());
        let second = LazyStore::new(dir.path().to_path_buf(), DEFAULT_CACHE_BYTES);
        let refused = second.recover(&"a".into()).unwrap_err();
        assert!(refused.0.contains("another troupe host"), "{refused}");
    }
}

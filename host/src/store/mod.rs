//! The durable store: byte keys and byte values in a fixed set of tables,
//! written in atomic, fsync'd batches. Durable actors journal through it;
//! the store itself knows nothing about actors (the key layout of each
//! table is the actor layer's).
//!
//! # The durability contract
//!
//! A [`Batch`] is a list of writes ([`Op`]) that commit together or not at
//! all. [`Store::commit`] takes several batches and commits them in **one**
//! transaction, and it returns `Ok` only once that transaction is durable:
//!
//! * a crash, `kill -9` or a power loss **after** `commit` returns `Ok`
//!   keeps every one of its batches;
//! * one **before** it returns keeps all of them or none of them, never a
//!   part of a batch, and never a later commit without an earlier one;
//! * `Err` means the batches may or may not have been made durable before
//!   the failure (a power loss right after the fsync reached the disk is
//!   indistinguishable from one just before); it never means "partly".
//!   Whoever acknowledges on top of the store must therefore acknowledge
//!   only on `Ok`.
//!
//! Reads ([`Store::get`], [`Store::range`]) see every committed batch.
//!
//! The embedded implementation is [`RedbStore`] (redb: copy-on-write
//! B-trees, one file, each commit checksummed and fsync'd, torn commits
//! rolled back on open). [`GroupCommit`] puts one writer thread in front of
//! a store, so that many concurrent committers share each fsync.
//! [`DataDir`] is the directory a host keeps its store in, locked so that
//! two hosts never share it.
//!
//! # Failures
//!
//! A full disk, an I/O error or a corrupt file is a [`StoreError`] naming
//! the problem and its fix. A failed commit leaves the store usable: the
//! next commit may succeed (once the disk has room again), and nothing
//! committed before is lost.
//!
//! Under `cfg(test)` or the `fuzzing` feature, `faulty` provides
//! `FaultyDisk`, a storage backend that models a volatile disk cache, power
//! loss, I/O errors and a full disk, on which the tests check the contract
//! above.
//!
//! [`Batch`]: crate::store::Batch
//! [`Op`]: crate::store::Op
//! [`Store::commit`]: crate::store::Store::commit
//! [`Store::get`]: crate::store::Store::get
//! [`Store::range`]: crate::store::Store::range
//! [`RedbStore`]: crate::store::RedbStore
//! [`GroupCommit`]: crate::store::GroupCommit
//! [`DataDir`]: crate::store::DataDir
//! [`StoreError`]: crate::store::StoreError

// The links are spelled from the crate root: rustdoc resolves this doc
// together with the one-line doc on `pub mod store` in lib.rs, from there.

mod actors;
mod data_dir;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod faulty;
mod group_commit;
mod redb;
#[cfg(any(test, feature = "fuzzing"))]
pub mod suite;

pub use actors::{DurableStore, LazyStore, partition_of};
pub use data_dir::DataDir;
pub use error::StoreError;
pub use group_commit::{DEFAULT_MAX_BATCHES, GroupCommit, GroupCommitConfig, GroupCommitStats};
pub use redb::{DEFAULT_CACHE_BYTES, RedbStore};

/// The tables of the store; each is a redb table from byte keys to byte values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Facts about the store itself (format version, host identity).
    Meta,
    /// One record per durable actor (what to start, where in the tree).
    Actors,
    /// Actor state snapshots.
    Snapshots,
    /// Durable inboxes: acknowledged messages not yet handled.
    Inbox,
    /// Durable actors' journals: the messages each handled since its last
    /// snapshot, with what its host calls returned, for replay.
    Handled,
    /// The transactional outbox: tells committed with the effect of the
    /// message that made them, to deliver after the commit.
    Outbox,
    /// Messages that failed too often to be retried.
    DeadLetters,
    /// Durable timers.
    Timers,
}

impl Table {
    /// Every table, in declaration order; [`RedbStore`] creates each on open.
    pub const ALL: [Table; 8] = [
        Table::Meta,
        Table::Actors,
        Table::Snapshots,
        Table::Inbox,
        Table::Handled,
        Table::Outbox,
        Table::DeadLetters,
        Table::Timers,
    ];

    /// The table's name in the redb file, e.g. `"inbox"`. Part of the file
    /// format: never rename one.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Actors => "actors",
            Table::Snapshots => "snapshots",
            Table::Inbox => "inbox",
            Table::Handled => "handled",
            Table::Outbox => "outbox",
            Table::DeadLetters => "dead_letters",
            Table::Timers => "timers",
        }
    }
}

/// One write in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` to `value`, replacing any value it had.
    Put {
        /// The table written.
        table: Table,
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Removes `key`; removing a key that is absent is not an error.
    Delete {
        /// The table written.
        table: Table,
        /// The key.
        key: Vec<u8>,
    },
    /// Deletes every key in `start..end` (half-open).
    DeleteRange {
        /// The table written.
        table: Table,
        /// The first key deleted (inclusive).
        start: Vec<u8>,
        /// The first key kept after the range (exclusive). A range with
        /// `end <= start` is empty.
        end: Vec<u8>,
    },
}

/// Writes that commit together or not at all, applied in the order they
/// were added (a put after a delete of the same key leaves the key set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a write of `value` at `key` in `table`.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Put { table, key: key.into(), value: value.into() });
        self
    }

    /// Adds a removal of `key` from `table`.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Delete { table, key: key.into() });
        self
    }

    /// Adds a removal of every key of `table` in `start..end` (half-open).
    pub fn delete_range(&mut self, table: Table, start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::DeleteRange { table, start: start.into(), end: end.into() });
        self
    }

    /// Whether the batch has no writes.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The writes, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Appends the writes of `other` after this batch's, so that both
    /// commit together.
    pub fn extend(&mut self, other: Batch) {
        self.ops.extend(other.ops);
    }
}

impl From<Vec<Op>> for Batch {
    fn from(ops: Vec<Op>) -> Self {
        Self { ops }
    }
}

/// A durable key-value store. `commit` returns only once the batches are
/// durable (fsync'd): a crash or a power loss after it returns keeps them
/// all; one before it keeps all or none of them (see the module doc).
///
/// Every method blocks on disk I/O: call them from a thread that may block
/// (such as [`GroupCommit`]'s writer), or through `spawn_blocking`.
pub trait Store: Send + Sync + 'static {
    /// Commits every batch of `batches`, in order, in one transaction, and
    /// returns once it is durable. An empty slice commits nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::DiskFull`], [`StoreError::Io`] or
    /// [`StoreError::Corrupt`] when the transaction could not be made
    /// durable; the store stays usable for later commits.
    fn commit(&self, batches: &[Batch]) -> Result<(), StoreError>;

    /// The value at `key` in `table`, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] or [`StoreError::Corrupt`] when the store cannot
    /// be read.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keys in `start..end`, in key order (bytewise), with their values. A
    /// range with `end <= start` is empty.
    ///
    /// # Errors
    ///
    /// As [`Store::get`].
    fn range(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KeyValues, StoreError>;

    /// This host is about to read and write the keys of `partition` (one
    /// actor's: see [`partition_of`]) as their only writer. A store that
    /// several hosts share reads them afresh and makes sure that no host
    /// that wrote them before can write them again (it fences them off);
    /// an embedded store has nothing to do.
    ///
    /// # Errors
    ///
    /// [`StoreError::Fenced`] if another host holds the partition now;
    /// [`StoreError::Unreachable`] if the shared store did not answer.
    fn acquire(&self, partition: &[u8]) -> Result<(), StoreError> {
        let _ = partition;
        Ok(())
    }

    /// How many keys in `start..end` `count` accepts, read in key order
    /// without their values (a scan that may cover a million keys).
    ///
    /// # Errors
    ///
    /// As [`Store::get`].
    fn count_keys(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        count: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<u64, StoreError> {
        Ok(self.range(table, start, end)?.iter().filter(|(key, _)| count(key)).count() as u64)
    }
}

/// Keys with their values, in key order: what [`Store::range`] returns.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_distinct_and_every_table_is_listed_once() {
        let names: std::collections::BTreeSet<_> = Table::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Table::ALL.len());
        assert_eq!(Table::Inbox.name(), "inbox");
        assert_eq!(Table::DeadLetters.name(), "dead_letters");
    }

    #[test]
    fn a_batch_keeps_its_writes_in_order_and_extend_appends() {
        let mut batch = Batch::new();
        assert!(batch.is_empty());
        batch.put(Table::Inbox, b"a".as_slice(), b"1".as_slice()).delete(Table::Inbox, b"b".as_slice());
        let mut other = Batch::new();
        other.delete_range(Table::Timers, b"x".as_slice(), b"y".as_slice());
        batch.extend(other);
        assert_eq!(batch.len(), 3);
        assert_eq!(
            batch.ops(),
            [
                Op::Put { table: Table::Inbox, key: b"a".to_vec(), value: b"1".to_vec() },
                Op::Delete { table: Table::Inbox, key: b"b".to_vec() },
                Op::DeleteRange { table: Table::Timers, start: b"x".to_vec(), end: b"y".to_vec() },
            ]
        );
    }
}

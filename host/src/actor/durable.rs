//! Durable actors, as the actor layer sees them: a [`Durability`] setting,
//! and the [`Journal`] port through which a durable actor's accepted tells
//! and committed states reach stable storage. The store layer
//! (`crate::store`) implements the port; the actor layer never names it.
//!
//! # The protocol
//!
//! Every tell to a durable actor gets the next number of that actor's
//! sequence, is queued in its mailbox in that order, and is written to its
//! durable inbox under that number ([`Journal::accept`]); a sender that
//! waits for the acknowledgement ([`ActorRef::send`]) hears `ok` only once
//! that write is durable.
//!
//! After each message, the cell takes the actor's `snapshot()` and commits
//! it with the number of the last tell the actor has consumed (handled, or
//! dropped because it failed), its *watermark* ([`Journal::checkpoint`]).
//! The reply to an ask is released only after that commit: persist, then
//! reply. Tells are consumed in sequence order (the mailbox is FIFO and
//! numbering and queueing happen under one lock), so the watermark is a
//! count the cell keeps, and one committed pair (state, watermark) says
//! exactly which tells the state contains.
//!
//! Recovery ([`Journal::recover`]) restores the committed state and queues
//! again the inbox entries above the watermark: they were acknowledged but
//! their effect was not committed.
//!
//! # Snapshots every N messages, a journal in between
//!
//! Committing the whole state after every message costs as much as the
//! state is large. With `snapshot-every` (or `snapshot-interval`), the
//! cell commits a snapshot only that often; after each message in
//! between it appends to the actor's journal what it [`Handled`]: the
//! message, the watermark after it, and what every host call the message
//! made returned ([`Recorded`]: clocks, random bytes, ask replies, the
//! results of tells, spawns and timers), in one commit with the removal
//! of the tell from the inbox ([`Journal::append`]). A snapshot drops, in
//! the same transaction, the snapshots before the one it follows and the
//! journal up to that one: the store keeps two snapshots, and the journal
//! after the older, so that an unreadable newest snapshot falls back to
//! the one before. Recovery restores the newest
//! snapshot and replays the journal after it, at most `snapshot-every`
//! entries: each message runs again on the state it first ran on, its
//! host calls answered from the record and without effect (no tell, ask,
//! spawn or timer happens twice), so that the replay reaches exactly the
//! state that was acknowledged. A replay that calls the host differently
//! from the record (the code is not deterministic in a way the host
//! cannot see) fails the actor rather than invent a state.
//!
//! A message whose effect was committed is never run again for its
//! effects: it is either in the snapshot or replayed without them.
//!
//! # The outbox: effects leave with the commit
//!
//! A tell a durable actor makes while handling a message is not sent
//! then: it is type-checked, kept, and committed in the same transaction
//! as the message's effect (its state or journal entry), in the actor's
//! outbox, as an [`Outgoing`] stamped with its [`Origin`] (the sender's
//! watermark and a count: unique and increasing per sender). Once the
//! commit is durable, the actor's courier delivers the outbox in order,
//! and deletes what was delivered ([`Journal::sent`]). So a message whose
//! effect was not committed (a crash, a failed commit) told nobody, and
//! when it runs again its tells are made once. Recovery hands the outbox
//! left undelivered to the courier again: a tell delivered before a crash
//! but not yet deleted is delivered twice, and a durable receiver drops
//! the second. It keeps, per sender, the last origin it took, committed
//! with the tell itself, and takes no tell whose origin is not past it.
//!
//! A tell that fails [`POISON_ATTEMPTS`] times in a row is moved from the
//! inbox to the actor's dead letters, where `troupe dead-letters` lists it
//! and `troupe redeliver` sends it again.
//!
//! A durable actor's `send-after` timers are committed when set and
//! re-armed by recovery; the tell a timer makes commits together with the
//! timer's removal, so it fires once, late if its time passed while the
//! host was down.
//!
//! [`ActorRef::send`]: super::ActorRef::send

use serde::{Deserialize, Serialize};

use super::system::BoxFuture;
use crate::actor::Snapshot;
use crate::message::{Address, WireMessage};

/// Whether an actor's state and accepted messages outlive its host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Durability {
    /// State in memory only: lost with the host (the default).
    #[default]
    InMemory,
    /// State, acknowledged tells and the actor's place in the tree are
    /// committed to the host's store and survive a crash of the host.
    Durable,
}

impl Durability {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::InMemory => "in-memory",
            Durability::Durable => "durable",
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why stable storage did not take a write or could not be read. The text
/// names the problem and the fix (the disk is full, another host holds the
/// data directory, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JournalError(pub String);

/// Where a tell made by a durable actor comes from (see the module doc).
/// Ordered: a sender's tells are made in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The number of the tell the sender was handling.
    pub seq: u64,
    /// The place of this tell among those that message made (from 0).
    pub index: u32,
}

/// A tell a durable actor made while handling a message, in its outbox:
/// committed with the message's effect, delivered after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Its place in the sender's tells.
    pub origin: Origin,
    /// The tell (`from` is the sender).
    pub message: WireMessage,
}

/// What a commit adds to a durable actor's outbox: the tells its messages
/// made since the last commit, and the origin of the last effect (tell or
/// spawn) it made, so that its next effects are numbered after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbox {
    /// The tells, in order.
    pub tells: Vec<Outgoing>,
    /// The origin of its last effect, if it made one.
    pub last: Option<Origin>,
}

/// What one host call returned while a durable actor handled a message,
/// as recorded for replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The call (`ask`, `wall-clock`, `random`, ...).
    pub call: String,
    /// What it returned.
    pub result: serde_json::Value,
}

/// A message a durable actor handled after its last snapshot, as its
/// journal keeps it for replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handled {
    /// The message (a tell or an ask).
    pub message: WireMessage,
    /// The number of the last tell the state contains after it.
    pub watermark: u64,
    /// What the host calls it made returned, in order.
    pub recorded: Vec<Recorded>,
}

impl Handled {
    /// About how many bytes its journal entry takes.
    pub fn size(&self) -> u64 {
        let recorded: usize = self.recorded.iter().map(|r| r.call.len() + r.result.to_string().len()).sum();
        (self.message.message.len() + recorded) as u64
    }
}

/// A durable actor's committed state: what a crash leaves of it.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Its last committed snapshot, if it ever committed one.
    pub state: Option<Snapshot>,
    /// The messages it handled after that snapshot, to replay on it.
    pub replay: Vec<Handled>,
    /// The snapshot's place in the journal (see [`Checkpoint::position`]).
    pub position: u64,
    /// The number of its last journal entry (at least `position`).
    pub journal_end: u64,
    /// The number of the last tell its state contains (0: none): the
    /// snapshot's, or the last replayed message's.
    pub watermark: u64,
    /// The tells accepted after it, in order: acknowledged, not yet
    /// handled.
    pub pending: Vec<(u64, WireMessage)>,
    /// For each durable sender it took tells from, the origin of the last.
    pub taken: Vec<(Address, Origin)>,
    /// Its timers that had not fired.
    pub timers: Vec<DurableTimer>,
    /// The tells it made that were committed and not yet delivered, in
    /// order.
    pub outbox: Vec<Outgoing>,
    /// The origin of the last effect (tell or spawn) it made (`None`: it
    /// never made one).
    pub last_sent: Option<Origin>,
}

/// How many times in a row a durable actor's tell may fail before it is
/// moved to the actor's dead letters, so that neither the actor nor its
/// recovery wedges on it.
pub const POISON_ATTEMPTS: u32 = 3;

/// A tell that failed [`POISON_ATTEMPTS`] times in a row, kept aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its number in its actor's sequence.
    pub seq: u64,
    /// The tell.
    pub message: WireMessage,
    /// Why it failed, the last time.
    pub error: String,
    /// How many times it failed in a row.
    pub attempts: u32,
    /// When it was set aside, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// A durable actor's `send-after` timer, as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableTimer {
    /// Its id, as `send-after` returned it.
    pub id: u64,
    /// When it fires, in milliseconds since the Unix epoch (wall clock:
    /// a timer whose time passed while the host was down fires at once).
    pub due_ms: u64,
    /// The tell it makes to its actor.
    pub message: WireMessage,
}

impl Recovered {
    /// The number the next accepted tell gets.
    pub fn next_seq(&self) -> u64 {
        self.pending.last().map_or(self.watermark, |(seq, _)| *seq) + 1
    }
}

/// What a durable actor commits after a message.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Its state after the message.
    pub state: Snapshot,
    /// The number of the last tell the state contains.
    pub watermark: u64,
    /// The tells made since the last commit, for the outbox.
    pub outbox: Outbox,
    /// Its place in the journal: the number of the last journal entry the
    /// state contains (0: none).
    pub position: u64,
    /// The position of the snapshot it follows, which the store keeps
    /// beside it with the journal after it (a second way back, should the
    /// new one be unreadable); older ones go. Its own `position` keeps
    /// only this one.
    pub previous: u64,
}

impl Checkpoint {
    /// A checkpoint of `state` that keeps no older snapshot: the first, or
    /// one made outside the journal's order (an import, a hot swap).
    pub fn only(state: Snapshot, watermark: u64, outbox: Outbox, position: u64) -> Self {
        Checkpoint { state, watermark, outbox, position, previous: position }
    }
}

/// Stable storage for durable actors. Writes resolve once durable (or with
/// the error that kept them from being so); they are applied in the order
/// they were submitted, which the futures capture when they are created,
/// not when they are first polled.
pub trait Journal: Send + Sync + 'static {
    /// How long the store's commits took so far, if it times them (the
    /// metrics' `troupe_store_commit_seconds`). By default, not timed.
    fn commit_times(&self) -> Option<crate::metrics::HistogramSnapshot> {
        None
    }

    /// Writes tell number `seq` to `actor`'s durable inbox; for a tell
    /// from a durable actor (`message.from`), its origin as the last taken
    /// from that sender; for a tell a timer made, the timer's removal.
    fn accept(
        &self,
        actor: &Address,
        seq: u64,
        message: WireMessage,
        origin: Option<Origin>,
        timer: Option<u64>,
    ) -> BoxFuture<'static, Result<(), JournalError>>;

    /// Records a `send-after` timer of `actor`.
    fn set_timer(&self, actor: &Address, timer: DurableTimer) -> BoxFuture<'static, Result<(), JournalError>>;

    /// Forgets timer `id` of `actor` (cancelled).
    fn cancel_timer(&self, actor: &Address, id: u64) -> BoxFuture<'static, Result<(), JournalError>>;

    /// Moves tell `letter.seq` of `actor` from its inbox to its dead
    /// letters, in one commit.
    fn dead_letter(&self, actor: &Address, letter: DeadLetter) -> BoxFuture<'static, Result<(), JournalError>>;

    /// The dead letters of `actor`, or of every actor, in address and
    /// sequence order.
    ///
    /// # Errors
    ///
    /// The store could not be read.
    fn dead_letters(&self, actor: Option<&Address>) -> Result<Vec<DeadLetter>, JournalError>;

    /// Removes dead letter `seq` of `actor` (it was delivered again).
    fn remove_dead_letter(&self, actor: &Address, seq: u64) -> BoxFuture<'static, Result<(), JournalError>>;

    /// Commits `actor`'s state and watermark and adds its outbox, and drops
    /// the inbox entries the state now contains, the snapshots before
    /// `checkpoint.previous` and the journal up to it, in one transaction.
    fn checkpoint(&self, actor: &Address, checkpoint: Checkpoint) -> BoxFuture<'static, Result<(), JournalError>>;

    /// Appends what `actor` handled to its journal as entry `number` (each
    /// after the last, never reused), adds `outbox` to its outbox, and
    /// drops the inbox entries its state now contains, in one transaction.
    fn append(
        &self,
        actor: &Address,
        number: u64,
        handled: &Handled,
        outbox: &Outbox,
    ) -> BoxFuture<'static, Result<(), JournalError>>;

    /// Deletes `actor`'s outbox entries up to and including `through`:
    /// they were delivered.
    fn sent(&self, actor: &Address, through: Origin) -> BoxFuture<'static, Result<(), JournalError>>;

    /// Reads what is committed for `actor` (nothing, for an actor never
    /// seen).
    ///
    /// # Errors
    ///
    /// The store could not be read.
    fn recover(&self, actor: &Address) -> Result<Recovered, JournalError>;

    /// Records `actor` as started at run time, with what it takes to start
    /// it again when the host restarts (opaque to the journal).
    fn record_spawn(&self, actor: &Address, how: Vec<u8>) -> BoxFuture<'static, Result<(), JournalError>>;

    /// The actors recorded with [`Journal::record_spawn`] and not
    /// forgotten since, in address order.
    ///
    /// # Errors
    ///
    /// The store could not be read.
    fn spawned(&self) -> Result<Vec<(Address, Vec<u8>)>, JournalError>;

    /// The actors whose address starts with `prefix` and that have work
    /// waiting in the store: acknowledged tells not handled, timers, or
    /// tells in their outbox not delivered. In address order.
    ///
    /// # Errors
    ///
    /// The store could not be read.
    fn waiting_under(&self, prefix: &str) -> Result<Vec<Address>, JournalError>;

    /// How many actors at `prefix` followed by a name without `/` (the
    /// keys of a virtual component, `prefix` ending in `/`) have a
    /// committed state, not counting those `skip` accepts. Reads every
    /// such key's entry.
    ///
    /// # Errors
    ///
    /// The store could not be read.
    fn stored_under(&self, prefix: &str, skip: &dyn Fn(&str) -> bool) -> Result<u64, JournalError>;

    /// Forgets everything about `actor`: it was stopped for good by a user.
    fn forget(&self, actor: &Address) -> BoxFuture<'static, Result<(), JournalError>>;

    /// Makes `state` what `actor` has committed, in place of anything it
    /// had (state, tells, timers, dead letters): an actor spawned durable at
    /// that address next starts from it (`troupe state import`).
    fn import(&self, actor: &Address, state: Snapshot) -> BoxFuture<'static, Result<(), JournalError>>;

    /// Commits `actor`'s state and watermark together with the code it
    /// runs from now on (opaque to the journal: what a hot swap records so
    /// that recovery starts the swapped-in code), in one transaction.
    fn commit_code(
        &self,
        actor: &Address,
        checkpoint: Checkpoint,
        code: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), JournalError>>;

    /// The code last committed with [`Journal::commit_code`] for `actor`,
    /// if any and not forgotten since.
    ///
    /// # Errors
    ///
    /// The store could not be read.
    fn code(&self, actor: &Address) -> Result<Option<Vec<u8>>, JournalError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(n: u64) -> WireMessage {
        WireMessage { to: "a".into(), from: None, message: format!("incr({n})"), ask: false, waiting: Vec::new() }
    }

    #[test]
    fn the_next_tell_follows_the_last_pending_one_or_the_watermark() {
        let fresh = Recovered::default();
        assert_eq!(fresh.next_seq(), 1);
        let committed = Recovered { watermark: 7, ..Recovered::default() };
        assert_eq!(committed.next_seq(), 8);
        let pending = Recovered { watermark: 7, pending: vec![(8, wire(1)), (9, wire(2))], ..Recovered::default() };
        assert_eq!(pending.next_seq(), 10);
    }

    #[test]
    fn durability_reads_as_the_manifest_writes_it() {
        assert_eq!(Durability::Durable.to_string(), "durable");
        assert_eq!(Durability::default(), Durability::InMemory);
        let parsed: Durability = serde_json::from_str("\"in-memory\"").expect("a known value");
        assert_eq!(parsed, Durability::InMemory);
    }
}

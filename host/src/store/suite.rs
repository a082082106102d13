//! The journal's contract, as checks any store a [`DurableStore`] runs on
//! must pass: the embedded store (the unit tests) and the store the hosts
//! of a cluster share (`tests/all/cluster_store.rs`) run the same ones.
//! Each check takes an [`Opener`], which gives it an empty journal and
//! opens it again.

use super::actors::{encode_state, inbox_end, inbox_key, key_number, snapshot_key};
use super::{Batch, DurableStore, Table};
use crate::actor::Snapshot;
use crate::actor::durable::{Checkpoint, DurableTimer, Handled, Journal, Origin, Outbox, Outgoing};
use crate::message::{Address, WireMessage};

/// How a check gets its journal.
pub trait Opener {
    /// A journal over a store with nothing committed.
    fn fresh(&mut self) -> DurableStore;
    /// The journal [`Opener::fresh`] last gave, opened again: what its
    /// store kept (the one it gave is dropped first).
    fn reopen(&mut self) -> DurableStore;
}

/// Runs every check on journals from `opener`, one after the other.
pub fn run_all(opener: &mut dyn Opener) {
    recovery_returns_the_committed_state_and_only_the_tells_after_it(opener);
    a_tell_written_after_the_state_that_contains_it_is_ignored(opener);
    what_was_committed_survives_the_store_being_closed_and_spawns_are_listed_until_forgotten(opener);
    the_last_tell_taken_from_each_durable_sender_is_recovered_and_forgotten_with_the_actor(opener);
    the_journal_after_the_newest_snapshot_is_replayed_and_the_one_before_is_kept_with_its_journal(opener);
    an_unreadable_newest_snapshot_falls_back_to_the_one_before_and_its_journal(opener);
    a_snapshot_written_by_an_earlier_version_is_read_and_replaced(opener);
    the_outbox_commits_with_the_message_and_keeps_what_was_not_sent(opener);
    the_actors_with_work_waiting_under_a_prefix_are_listed_once_each(opener);
}

fn tell(n: u64) -> WireMessage {
    WireMessage { to: "a".into(), from: None, message: format!("incr({n})"), ask: false, waiting: Vec::new() }
}

fn state(text: &str) -> Snapshot {
    Snapshot { version: "v1".into(), bytes: text.as_bytes().to_vec() }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(future)
}

fn handled(n: u64, watermark: u64) -> Handled {
    let recorded = vec![crate::actor::durable::Recorded { call: "ask".into(), result: n.into() }];
    Handled { message: tell(n), watermark, recorded }
}

fn outgoing(seq: u64, index: u32) -> Outgoing {
    Outgoing { origin: Origin { seq, index }, message: WireMessage { to: "b".into(), ..tell(seq) } }
}

/// A checkpoint of `text` at journal `position`, after the snapshot at
/// `previous`.
fn at(text: &str, watermark: u64, position: u64, previous: u64) -> Checkpoint {
    Checkpoint { state: state(text), watermark, outbox: Outbox::default(), position, previous }
}

/// A check of the journal's contract.
pub fn recovery_returns_the_committed_state_and_only_the_tells_after_it(opener: &mut dyn Opener) {
    let store = opener.fresh();
    let (a, b): (Address, Address) = ("a".into(), "a/b".into());
    block_on(async {
        for seq in 1..=5 {
            store.accept(&a, seq, tell(seq), None, None).await.unwrap();
        }
        store.accept(&b, 1, tell(100), None, None).await.unwrap();
        store.checkpoint(&a, Checkpoint::only(state("after 3"), 3, Outbox::default(), 0)).await.unwrap();
    });
    let recovered = store.recover(&a).unwrap();
    assert_eq!(recovered.state.unwrap().bytes, b"after 3");
    assert_eq!(recovered.watermark, 3);
    let pending: Vec<_> = recovered.pending.iter().map(|(seq, m)| (*seq, m.message.as_str())).collect();
    assert_eq!(pending, [(4, "incr(4)"), (5, "incr(5)")], "another actor's tells stay apart");
    assert_eq!(store.recover(&b).unwrap().pending.len(), 1);
}

/// A check of the journal's contract.
pub fn a_tell_written_after_the_state_that_contains_it_is_ignored(opener: &mut dyn Opener) {
    // A tell is queued before it is written: the actor may handle it
    // and commit before the tell's own write lands.
    let store = opener.fresh();
    let a: Address = "a".into();
    block_on(async {
        store.checkpoint(&a, Checkpoint::only(state("after 1"), 1, Outbox::default(), 0)).await.unwrap();
        store.accept(&a, 1, tell(1), None, None).await.unwrap();
    });
    let recovered = store.recover(&a).unwrap();
    assert!(recovered.pending.is_empty(), "{:?}", recovered.pending);
    assert_eq!(recovered.next_seq(), 2);
}

/// A check of the journal's contract.
pub fn what_was_committed_survives_the_store_being_closed_and_spawns_are_listed_until_forgotten(
    opener: &mut dyn Opener,
) {
    let a: Address = "a".into();
    {
        let store = opener.fresh();
        block_on(async {
            store.record_spawn(&a, b"how".to_vec()).await.unwrap();
            store.accept(&a, 1, tell(1), None, None).await.unwrap();
        });
    }
    let store = opener.reopen();
    assert_eq!(store.spawned().unwrap(), vec![(a.clone(), b"how".to_vec())]);
    assert_eq!(store.recover(&a).unwrap().pending.len(), 1);
    block_on(store.forget(&a)).unwrap();
    assert!(store.spawned().unwrap().is_empty());
    let recovered = store.recover(&a).unwrap();
    assert!(recovered.state.is_none() && recovered.pending.is_empty());
}

/// A check of the journal's contract.
pub fn the_last_tell_taken_from_each_durable_sender_is_recovered_and_forgotten_with_the_actor(opener: &mut dyn Opener) {
    let store = opener.fresh();
    let b: Address = "b".into();
    let from = |sender: &str, n: u64| WireMessage { from: Some(sender.into()), ..tell(n) };
    block_on(async {
        store.accept(&b, 1, from("a", 1), Some(Origin { seq: 7, index: 0 }), None).await.unwrap();
        store.accept(&b, 2, from("a", 2), Some(Origin { seq: 7, index: 1 }), None).await.unwrap();
        store.accept(&b, 3, from("a/c", 3), Some(Origin { seq: 2, index: 0 }), None).await.unwrap();
        store.accept(&b, 4, from("cli", 4), None, None).await.unwrap();
    });
    let taken = store.recover(&b).unwrap().taken;
    assert_eq!(taken, vec![("a".into(), Origin { seq: 7, index: 1 }), ("a/c".into(), Origin { seq: 2, index: 0 })]);
    block_on(store.forget(&b)).unwrap();
    assert!(store.recover(&b).unwrap().taken.is_empty());
}

/// A check of the journal's contract.
pub fn the_journal_after_the_newest_snapshot_is_replayed_and_the_one_before_is_kept_with_its_journal(
    opener: &mut dyn Opener,
) {
    let store = opener.fresh();
    let a: Address = "a".into();
    block_on(async {
        for seq in 1..=6 {
            store.accept(&a, seq, tell(seq), None, None).await.unwrap();
        }
        store.checkpoint(&a, at("after 1", 1, 0, 0)).await.unwrap();
        store.append(&a, 1, &handled(2, 2), &Outbox::default()).await.unwrap();
        store.append(&a, 2, &handled(3, 3), &Outbox::default()).await.unwrap();
    });
    let recovered = store.recover(&a).unwrap();
    assert_eq!(recovered.state.unwrap().bytes, b"after 1");
    assert_eq!(recovered.replay, vec![handled(2, 2), handled(3, 3)]);
    assert_eq!((recovered.position, recovered.journal_end), (0, 2));
    assert_eq!(recovered.watermark, 3, "the last journaled message's");
    let pending: Vec<u64> = recovered.pending.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(pending, [4, 5, 6], "a journaled tell leaves the inbox");

    // A snapshot at entry 2, then one more entry: nothing before the
    // newest snapshot is replayed.
    block_on(async {
        store.checkpoint(&a, at("after 4", 4, 2, 0)).await.unwrap();
        store.append(&a, 3, &handled(5, 5), &Outbox::default()).await.unwrap();
    });
    let recovered = store.recover(&a).unwrap();
    assert_eq!(recovered.state.unwrap().bytes, b"after 4");
    assert_eq!(recovered.replay, vec![handled(5, 5)]);
    assert_eq!((recovered.position, recovered.journal_end, recovered.watermark), (2, 3, 5));

    // The next snapshot drops the first and the journal up to the second.
    block_on(store.checkpoint(&a, at("after 6", 6, 3, 2))).unwrap();
    let snapshots = store.commits.store().range(Table::Snapshots, &snapshot_key(&a, 0), &inbox_end(&a)).unwrap();
    let kept: Vec<u64> = snapshots.iter().map(|(key, _)| key_number(key)).collect();
    assert_eq!(kept, [2, 3], "two snapshots, the newest and the one before");
    let journal = store.commits.store().range(Table::Handled, &inbox_key(&a, 0), &inbox_end(&a)).unwrap();
    let entries: Vec<u64> = journal.iter().map(|(key, _)| key_number(key)).collect();
    assert_eq!(entries, [3], "the journal after the older snapshot");
    let recovered = store.recover(&a).unwrap();
    assert!(recovered.replay.is_empty() && recovered.pending.is_empty());
    assert_eq!(recovered.watermark, 6);
}

/// A check of the journal's contract.
pub fn an_unreadable_newest_snapshot_falls_back_to_the_one_before_and_its_journal(opener: &mut dyn Opener) {
    let store = opener.fresh();
    let a: Address = "a".into();
    block_on(async {
        store.checkpoint(&a, at("after 1", 1, 0, 0)).await.unwrap();
        store.append(&a, 1, &handled(2, 2), &Outbox::default()).await.unwrap();
        store.checkpoint(&a, at("after 2", 2, 1, 0)).await.unwrap();
        let mut torn = Batch::new();
        torn.put(Table::Snapshots, snapshot_key(&a, 1), vec![1, 2, 3]);
        store.commits.commit(torn).await.unwrap();
    });
    let recovered = store.recover(&a).unwrap();
    assert_eq!(recovered.state.unwrap().bytes, b"after 1", "the one before");
    assert_eq!(recovered.replay, vec![handled(2, 2)], "and the journal after it");
    assert_eq!(recovered.watermark, 2);
}

/// A check of the journal's contract.
pub fn a_snapshot_written_by_an_earlier_version_is_read_and_replaced(opener: &mut dyn Opener) {
    let store = opener.fresh();
    let a: Address = "a".into();
    block_on(async {
        let mut legacy = Batch::new();
        legacy.put(Table::Snapshots, a.as_bytes(), encode_state(&at("old", 3, 0, 0)));
        store.commits.commit(legacy).await.unwrap();
    });
    let recovered = store.recover(&a).unwrap();
    assert_eq!((recovered.state.unwrap().bytes, recovered.watermark), (b"old".to_vec(), 3));
    block_on(store.checkpoint(&a, at("new", 4, 0, 0))).unwrap();
    assert_eq!(store.commits.store().get(Table::Snapshots, a.as_bytes()).unwrap(), None, "replaced");
    assert_eq!(store.recover(&a).unwrap().state.unwrap().bytes, b"new");
}

/// A check of the journal's contract.
pub fn the_outbox_commits_with_the_message_and_keeps_what_was_not_sent(opener: &mut dyn Opener) {
    let store = opener.fresh();
    let a: Address = "a".into();
    block_on(async {
        let outbox = Outbox { tells: vec![outgoing(1, 0), outgoing(1, 1)], last: Some(Origin { seq: 1, index: 1 }) };
        store.checkpoint(&a, Checkpoint::only(state("s"), 1, outbox, 0)).await.unwrap();
        let outbox = Outbox { tells: vec![outgoing(2, 0)], last: Some(Origin { seq: 2, index: 0 }) };
        store.append(&a, 1, &handled(2, 2), &outbox).await.unwrap();
        store.sent(&a, Origin { seq: 1, index: 0 }).await.unwrap();
    });
    let recovered = store.recover(&a).unwrap();
    assert_eq!(recovered.outbox, vec![outgoing(1, 1), outgoing(2, 0)], "delivered ones are gone, in order");
    assert_eq!(recovered.last_sent, Some(Origin { seq: 2, index: 0 }));
    block_on(store.sent(&a, Origin { seq: 2, index: u32::MAX })).unwrap();
    assert!(store.recover(&a).unwrap().outbox.is_empty());
    block_on(store.forget(&a)).unwrap();
    assert_eq!(store.recover(&a).unwrap().last_sent, None);
}

/// A check of the journal's contract.
pub fn the_actors_with_work_waiting_under_a_prefix_are_listed_once_each(opener: &mut dyn Opener) {
    let store = opener.fresh();
    let (a, b, c, other): (Address, Address, Address, Address) =
        ("user/a".into(), "user/b".into(), "user/c".into(), "users/x".into());
    let timer = DurableTimer { id: 1, due_ms: 0, message: tell(1) };
    block_on(async {
        store.accept(&a, 1, tell(1), None, None).await.unwrap();
        store.accept(&a, 2, tell(2), None, None).await.unwrap();
        store.set_timer(&b, timer).await.unwrap();
        store.checkpoint(&c, Checkpoint::only(state("idle"), 0, Outbox::default(), 0)).await.unwrap();
        store.accept(&other, 1, tell(1), None, None).await.unwrap();
    });
    assert_eq!(store.waiting_under("user/").unwrap(), vec![a, b], "tells and timers; not a state alone");
}

//! The store the hosts of a cluster share (`SharedStore`, on a replicated
//! JetStream stream): what the store contract promises a journal (writes
//! read back, by any host; ranges; deletes), fencing (a host that another
//! took a key over from can never write it again), and a durable actor's
//! journal recovered on another host; and the journal's whole contract,
//! the checks the embedded store passes (`troupe::store::suite`). Real
//! three-node nats-server clusters, as in `cluster.rs`.

use std::sync::Arc;

use troupe::actor::Snapshot;
use troupe::actor::durable::{Checkpoint, Journal, Outbox};
use troupe::cluster::SharedStore;
use troupe::message::WireMessage;
use troupe::store::suite::{self, Opener};
use troupe::store::{Batch, DurableStore, Store, StoreError, Table};

use crate::cluster::Nats;

/// A host's view of the shared store, writing with fencing token `token`.
struct Shared {
    store: Arc<SharedStore>,
    _runtime: tokio::runtime::Runtime,
}

fn open(nats: &Nats, token: u64) -> Shared {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime
        .block_on(SharedStore::open(&nats.urls, 3, Arc::new(move |_| Ok(token))))
        .expect("the shared store opens");
    Shared { store: Arc::new(store), _runtime: runtime }
}

fn batch(build: impl FnOnce(&mut Batch)) -> Batch {
    let mut batch = Batch::new();
    build(&mut batch);
    batch
}

/// Key `n` of `actor`'s inbox, as the journal lays keys out.
fn inbox(actor: &str, n: u8) -> Vec<u8> {
    let mut key = actor.as_bytes().to_vec();
    key.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, n]);
    key
}

fn end_of(actor: &str) -> Vec<u8> {
    let mut key = actor.as_bytes().to_vec();
    key.push(1);
    key
}

#[test]
fn writes_read_back_by_key_and_range_from_any_host_and_deletes_remove_exactly_what_they_name() {
    let nats = Nats::start();
    let a = open(&nats, 1);
    a.store
        .commit(&[
            batch(|b| {
                b.put(Table::Inbox, inbox("user/1", 1), *b"one").put(Table::Inbox, inbox("user/1", 2), *b"two");
            }),
            batch(|b| {
                b.put(Table::Inbox, inbox("user/1", 3), *b"three").put(Table::Snapshots, inbox("user/1", 0), *b"s");
            }),
            batch(|b| {
                b.put(Table::Inbox, inbox("user/2", 1), *b"other");
            }),
        ])
        .unwrap();
    assert_eq!(a.store.get(Table::Inbox, &inbox("user/1", 2)).unwrap(), Some(b"two".to_vec()));
    assert_eq!(a.store.get(Table::Timers, &inbox("user/1", 2)).unwrap(), None, "tables are separate");
    a.store
        .commit(&[batch(|b| {
            b.delete(Table::Inbox, inbox("user/1", 3)).delete_range(
                Table::Inbox,
                inbox("user/1", 0),
                inbox("user/1", 2),
            );
        })])
        .unwrap();
    // Another host reads what was committed, one actor or all of them.
    let b = open(&nats, 1);
    assert_eq!(
        b.store.range(Table::Inbox, &inbox("user/1", 0), &end_of("user/1")).unwrap(),
        [(inbox("user/1", 2), b"two".to_vec())]
    );
    let all = b.store.range(Table::Inbox, b"user/", b"user0").unwrap();
    assert_eq!(all, [(inbox("user/1", 2), b"two".to_vec()), (inbox("user/2", 1), b"other".to_vec())]);
    assert_eq!(b.store.get(Table::Snapshots, &inbox("user/1", 0)).unwrap(), Some(b"s".to_vec()));
}

#[test]
fn a_host_another_took_a_key_over_from_can_never_write_it_again() {
    let nats = Nats::start();
    let old = open(&nats, 1);
    old.store.acquire(b"user/9").unwrap();
    old.store
        .commit(&[batch(|b| {
            b.put(Table::Inbox, inbox("user/9", 1), *b"before");
        })])
        .unwrap();
    // The key's next holder won a later claim: its token is greater.
    let new = open(&nats, 2);
    new.store.acquire(b"user/9").unwrap();
    assert_eq!(new.store.get(Table::Inbox, &inbox("user/9", 1)).unwrap(), Some(b"before".to_vec()));
    let refused = old.store.commit(&[batch(|b| {
        b.put(Table::Inbox, inbox("user/9", 2), *b"stale");
    })]);
    assert!(matches!(&refused, Err(StoreError::Fenced { partition, .. }) if partition == "user/9"), "{refused:?}");
    assert!(old.store.acquire(b"user/9").is_err(), "nor take it back with its older token");
    new.store
        .commit(&[batch(|b| {
            b.put(Table::Inbox, inbox("user/9", 2), *b"after");
        })])
        .unwrap();
    let third = open(&nats, 2);
    assert_eq!(
        third.store.range(Table::Inbox, &inbox("user/9", 0), &end_of("user/9")).unwrap(),
        [(inbox("user/9", 1), b"before".to_vec()), (inbox("user/9", 2), b"after".to_vec())]
    );
}

#[test]
fn a_partition_written_many_times_reads_back_whole_from_its_images() {
    let nats = Nats::start();
    let writer = open(&nats, 1);
    writer.store.acquire(b"user/5").unwrap();
    for n in 0..200u8 {
        writer
            .store
            .commit(&[batch(|b| {
                b.put(Table::Inbox, inbox("user/5", n), vec![n]);
                if n >= 10 {
                    b.delete(Table::Inbox, inbox("user/5", n - 10));
                }
            })])
            .unwrap();
    }
    let reader = open(&nats, 1);
    let kept = reader.store.range(Table::Inbox, &inbox("user/5", 0), &end_of("user/5")).unwrap();
    let expected: Vec<_> = (190..200u8).map(|n| (inbox("user/5", n), vec![n])).collect();
    assert_eq!(kept, expected);
}

fn tell(n: u64) -> WireMessage {
    WireMessage { to: "user/3".into(), from: None, message: format!("incr({n})"), ask: false, waiting: Vec::new() }
}

#[test]
fn a_durable_actors_journal_on_the_shared_store_recovers_on_another_host() {
    let nats = Nats::start();
    let first = open(&nats, 1);
    let journal = DurableStore::shared(first.store.clone());
    let actor = "user/3".into();
    journal.recover(&actor).unwrap();
    first._runtime.block_on(async {
        for seq in 1..=3 {
            journal.accept(&actor, seq, tell(seq), None, None).await.unwrap();
        }
        let state = Snapshot { version: "v1".into(), bytes: b"three".to_vec() };
        journal.checkpoint(&actor, Checkpoint::only(state, 2, Outbox::default(), 0)).await.unwrap();
    });
    let second = open(&nats, 2);
    let recovered = DurableStore::shared(second.store.clone()).recover(&actor).unwrap();
    assert_eq!(recovered.state.map(|s| s.bytes), Some(b"three".to_vec()));
    assert_eq!(recovered.watermark, 2);
    assert_eq!(recovered.pending, [(3, tell(3))], "the tell acknowledged after the state");
    let late = first._runtime.block_on(journal.accept(&actor, 4, tell(4), None, None));
    assert!(late.is_err(), "the first host was fenced off by the second's recovery");
}

#[test]
fn counting_across_actors_counts_those_with_keys_and_forgets_an_emptied_one() {
    let nats = Nats::start();
    let store = open(&nats, 1);
    for actor in ["user/1", "user/2", "other/1"] {
        store
            .store
            .commit(&[batch(|b| {
                b.put(Table::Snapshots, inbox(actor, 0), *b"s");
            })])
            .unwrap();
    }
    let count =
        |store: &Shared| store.store.count_keys(Table::Snapshots, b"user/", b"user/\xff", &mut |_| true).unwrap();
    assert_eq!(count(&store), 2);
    store
        .store
        .commit(&[batch(|b| {
            b.delete_range(Table::Snapshots, inbox("user/1", 0), end_of("user/1"));
        })])
        .unwrap();
    assert_eq!(count(&store), 1, "user/1 holds nothing any more");
    assert_eq!(count(&open(&nats, 1)), 1, "as another host counts too");
}

/// Journals on the shared store of one NATS cluster, emptied for each
/// check.
struct OnShared<'a> {
    nats: &'a Nats,
    open: Option<Shared>,
}

impl Opener for OnShared<'_> {
    fn fresh(&mut self) -> DurableStore {
        let shared = open(self.nats, 1);
        shared.store.purge_all().unwrap();
        let journal = DurableStore::shared(shared.store.clone());
        self.open = Some(shared);
        journal
    }

    fn reopen(&mut self) -> DurableStore {
        self.open = None;
        let shared = open(self.nats, 1);
        let journal = DurableStore::shared(shared.store.clone());
        self.open = Some(shared);
        journal
    }
}

#[test]
fn the_journal_contract_the_embedded_store_passes_holds_on_the_shared_store() {
    let nats = Nats::start();
    suite::run_all(&mut OnShared { nats: &nats, open: None });
}

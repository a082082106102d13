//! The mailbox queue's guarantees, checked over every interleaving of a
//! receiver and one or two senders. Capacities are one or two items and
//! each thread does a handful of operations: loom's search grows
//! exponentially with both, and every bug these models look for shows
//! with two items.

use loom::future::block_on;
use loom::thread;

use crate::queue::{SendError, queue};
use crate::sync::Arc;
use crate::sync::atomic::{AtomicUsize, Ordering};

/// An item that counts its drops, as an envelope resolves its caller's
/// acknowledgement or reply (as an error) when dropped unhandled.
#[derive(Debug)]
struct Letter {
    id: usize,
    drops: Arc<AtomicUsize>,
}

impl Drop for Letter {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_waiting_receiver_is_woken_by_a_concurrent_send() {
    loom::model(|| {
        let (queue, rx) = queue(1);
        let sender = thread::spawn(move || queue.send(7));
        // A lost wake-up leaves `block_on` waiting for ever: loom reports
        // the deadlock.
        assert_eq!(block_on(rx.recv()), 7);
        assert_eq!(sender.join().unwrap(), Ok(()));
    });
}

#[test]
fn a_receiver_waiting_twice_is_woken_for_each_item() {
    loom::model(|| {
        let (queue, rx) = queue(2);
        let sender = thread::spawn(move || [queue.send(1), queue.send(2)]);
        assert_eq!([block_on(rx.recv()), block_on(rx.recv())], [1, 2]);
        assert_eq!(sender.join().unwrap(), [Ok(()), Ok(())]);
        assert!(rx.is_empty());
    });
}

#[test]
fn a_receiver_is_woken_by_whichever_of_two_senders_comes_first() {
    let mut model = loom::model::Builder::new();
    // Three threads blocking and waking explode loom's search unbounded;
    // three forced switches let both senders slip in anywhere around the
    // receiver's look, its registration and its second look.
    model.preemption_bound = Some(3);
    model.check(|| {
        let (queue, rx) = queue(2);
        let senders = [1, 2].map(|n| {
            let queue = queue.clone();
            thread::spawn(move || queue.send(n))
        });
        let first = block_on(rx.recv());
        assert!(first == 1 || first == 2);
        for sender in senders {
            assert_eq!(sender.join().unwrap(), Ok(()));
        }
        assert_eq!(queue.len(), 1);
    });
}

#[test]
fn concurrent_senders_never_overfill_the_bound() {
    loom::model(|| {
        let (queue, rx) = queue(1);
        let senders: Vec<_> = [1, 2]
            .map(|n| {
                let queue = queue.clone();
                thread::spawn(move || queue.send(n))
            })
            .into_iter()
            .collect();
        let received = rx.try_recv();
        assert!(queue.len() <= queue.capacity(), "{} items in a queue of 1", queue.len());
        let results: Vec<_> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(SendError::Full))), "{results:?}");
        let left = std::iter::from_fn(|| rx.try_recv()).count();
        assert!(left <= 1);
        assert_eq!(accepted, usize::from(received.is_some()) + left, "every accepted item is received once");
        assert!(accepted >= 1, "one of two senders always finds room");
    });
}

#[test]
fn a_send_racing_close_is_either_refused_or_received() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (queue, rx) = queue(2);
        let letter = Letter { id: 1, drops: drops.clone() };
        let sender = {
            let queue = queue.clone();
            thread::spawn(move || queue.send(letter))
        };
        rx.close();
        let drained: Vec<_> = std::iter::from_fn(|| rx.try_recv()).collect();
        match sender.join().unwrap() {
            Ok(()) => assert_eq!(drained.iter().map(|l| l.id).collect::<Vec<_>>(), [1], "queued before the close"),
            Err(SendError::Closed) => {
                assert!(drained.is_empty());
                assert_eq!(drops.load(Ordering::SeqCst), 1, "the refused item went back to its sender");
            }
            Err(SendError::Full) => panic!("a queue of 2 refused its first item as full"),
        }
        let late = Letter { id: 2, drops: drops.clone() };
        assert_eq!(queue.send(late), Err(SendError::Closed), "a closed queue stays closed");
        assert!(rx.try_recv().is_none());
    });
}

#[test]
fn dropping_the_receiver_resolves_every_item_queued_or_racing_in() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (queue, rx) = queue(2);
        let senders: Vec<_> = [1, 2]
            .map(|id| {
                let (queue, letter) = (queue.clone(), Letter { id, drops: drops.clone() });
                thread::spawn(move || queue.send(letter))
            })
            .into_iter()
            .collect();
        drop(rx);
        for sender in senders {
            let result = sender.join().unwrap();
            assert!(matches!(result, Ok(()) | Err(SendError::Closed)), "{result:?}");
        }
        // `queue` (a sender's handle) is still alive: an item accepted
        // after the receiver's last look would still be held here, and its
        // caller never answered.
        assert_eq!(drops.load(Ordering::SeqCst), 2, "every item was dropped, refused or with the queue");
        assert_eq!(queue.len(), 0);
    });
}

#[test]
fn a_run_taken_and_put_back_stays_ahead_of_concurrent_sends() {
    loom::model(|| {
        let (queue, rx) = queue(4);
        queue.send(1).unwrap();
        queue.send(2).unwrap();
        let sender = {
            let queue = queue.clone();
            thread::spawn(move || {
                queue.send(3).unwrap();
                queue.send(4).unwrap();
            })
        };
        let mut run = Vec::new();
        rx.take_while(3, &mut run, |n| *n < 4);
        assert!(run.starts_with(&[1, 2]), "a run starts at the front: {run:?}");
        rx.put_back(run.into_iter());
        sender.join().unwrap();
        let drained: Vec<_> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(drained, [1, 2, 3, 4]);
    });
}

#[test]
fn the_length_matches_the_items_once_every_thread_is_done() {
    loom::model(|| {
        let (queue, rx) = queue(1);
        let sender = {
            let queue = queue.clone();
            thread::spawn(move || [queue.send(1), queue.send(2)])
        };
        let first = rx.try_recv();
        // Giving the buffer back races the sends: no item may go with it.
        rx.shrink();
        let accepted = sender.join().unwrap().iter().filter(|r| r.is_ok()).count();
        let waiting = queue.len();
        let rest: Vec<_> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(rest.len(), waiting, "len() counts exactly the items waiting");
        let received: Vec<_> = first.into_iter().chain(rest).collect();
        assert_eq!(received, [1, 2][..accepted], "in order, none lost");
        assert_eq!((queue.len(), rx.is_empty()), (0, true));
    });
}

#[test]
fn a_send_racing_a_passivation_is_either_queued_or_handed_back() {
    loom::model(|| {
        let (queue, rx) = queue(2);
        let closed_by = Arc::new(AtomicUsize::new(0));
        let sender = {
            let queue = queue.clone();
            thread::spawn(move || queue.send_or_return(7))
        };
        let seen = closed_by.clone();
        let closed = queue.close_if_empty(move || seen.store(1, Ordering::SeqCst));
        let sent = sender.join().unwrap();
        match (closed, sent) {
            // The item came first: the queue stays open, and holds it.
            (false, Ok(())) => assert_eq!(rx.try_recv(), Some(7)),
            // The close came first: the item is refused, handed back, and
            // the closing had run before the sender could see it closed.
            (true, Err((SendError::Closed, 7))) => {
                assert_eq!(closed_by.load(Ordering::SeqCst), 1);
                assert!(rx.is_empty());
            }
            other => panic!("a send and a close interleaved into {other:?}"),
        }
    });
}

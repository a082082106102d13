//! The two queues into an actor's loop: its mailbox (bounded, messages)
//! and its control queue (unbounded, requests of its supervisor, the host
//! and linked actors, handled between messages).
//!
//! A `VecDeque` under a lock, with its length beside it for lock-free
//! reads. It allocates nothing until the first item arrives and can hand
//! its buffer back once empty, which matters for actors that spend most of
//! their life idle or hibernating: tokio's channels allocate a block of 32
//! slots and a cache-padded header up front (2 KB for a mailbox: two
//! fifths of what a hibernating actor cost with it), and keep them. Only
//! the actor's loop takes items out, so the lock is contended by senders
//! alone.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::Poll;

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, AtomicWaker, Mutex};

/// Why an item was not queued (it is dropped).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The queue holds its capacity.
    Full,
    /// The actor's loop has ended.
    Closed,
}

/// The queue, shared by its senders and its receiving half.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    // The queue's length, readable without the lock: the loop looks for
    // control requests before every message, and `troupe ps` and the
    // least-loaded router read mailbox lengths.
    len: AtomicUsize,
    // The waiting loop. The receiver registers, then looks at `len` again,
    // and a sender wakes after it has set `len`: no item is missed.
    waker: AtomicWaker,
    capacity: usize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// Creates a queue of at most `capacity` items and its receiving half
/// (which closes it when dropped).
pub(crate) fn queue<T>(capacity: usize) -> (Arc<Queue<T>>, Receiver<T>) {
    let queue = Arc::new(Queue {
        state: Mutex::new(State { items: VecDeque::new(), closed: false }),
        len: AtomicUsize::new(0),
        waker: AtomicWaker::new(),
        capacity,
    });
    (queue.clone(), Receiver(queue))
}

impl<T> Queue<T> {
    /// Queues `item` unless the queue is full or closed.
    pub fn send(&self, item: T) -> Result<(), SendError> {
        self.send_or_return(item).map_err(|(why, _)| why)
    }

    /// [`Queue::send`], handing the item back when it is refused: a
    /// sender whose receiver passivated sends it on to the next one.
    pub fn send_or_return(&self, item: T) -> Result<(), (SendError, T)> {
        let mut state = self.state.lock();
        if state.closed {
            return Err((SendError::Closed, item));
        }
        if state.items.len() >= self.capacity {
            return Err((SendError::Full, item));
        }
        state.items.push_back(item);
        self.len.store(state.items.len(), Ordering::Release);
        drop(state);
        self.waker.wake();
        Ok(())
    }

    /// Closes the queue if it holds nothing, atomically with respect to
    /// senders: either an item arrived first (and the queue stays open),
    /// or every later one is refused, and sees what `closing` did.
    /// Returns whether it closed.
    pub fn close_if_empty(&self, closing: impl FnOnce()) -> bool {
        let mut state = self.state.lock();
        if state.closed || !state.items.is_empty() {
            return false;
        }
        closing();
        state.closed = true;
        true
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// How many items it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn pop(&self) -> Option<T> {
        if self.len() == 0 {
            return None;
        }
        let mut state = self.state.lock();
        let item = state.items.pop_front();
        self.len.store(state.items.len(), Ordering::Release);
        item
    }
}

/// The receiving half, owned by the actor's loop.
#[derive(Debug)]
pub(crate) struct Receiver<T>(Arc<Queue<T>>);

impl<T> Receiver<T> {
    /// The next item. Cancel safe: an item is taken only when this
    /// resolves.
    pub async fn recv(&self) -> T {
        poll_fn(|cx| {
            if let Some(item) = self.0.pop() {
                return Poll::Ready(item);
            }
            self.0.waker.register(cx.waker());
            match self.0.pop() {
                Some(item) => Poll::Ready(item),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// The next item, if one is waiting.
    pub fn try_recv(&self) -> Option<T> {
        self.0.pop()
    }

    /// Moves items from the front into `out` while they satisfy `fits`,
    /// until `out` holds `max`: the run of messages one batch entry
    /// delivers, taken under one lock.
    pub fn take_while(&self, max: usize, out: &mut Vec<T>, mut fits: impl FnMut(&T) -> bool) {
        if self.0.len() == 0 || out.len() >= max {
            return;
        }
        let mut state = self.0.state.lock();
        while out.len() < max && state.items.front().is_some_and(&mut fits) {
            out.extend(state.items.pop_front());
        }
        self.0.len.store(state.items.len(), Ordering::Release);
    }

    /// Puts items taken from this queue back at its front, in their order,
    /// ahead of anything that arrived since. They already counted against
    /// the bound, so it is not checked again.
    pub fn put_back(&self, items: impl DoubleEndedIterator<Item = T>) {
        let mut state = self.0.state.lock();
        for item in items.rev() {
            state.items.push_front(item);
        }
        self.0.len.store(state.items.len(), Ordering::Release);
    }

    /// Is nothing waiting?
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// Refuses further items; those queued can still be taken.
    pub fn close(&self) {
        self.0.state.lock().closed = true;
    }

    /// Gives back the buffer of an empty queue (it grew to the longest
    /// queue seen); the next item allocates a small one again.
    pub fn shrink(&self) {
        let mut state = self.0.state.lock();
        if state.items.is_empty() {
            state.items = VecDeque::new();
        }
    }
}

impl<T> Drop for Receiver<T> {
    /// The loop ended: later items are refused, and queued ones dropped
    /// (which resolves the acknowledgements and replies they carry as
    /// errors).
    fn drop(&mut self) {
        let queued = {
            let mut state = self.0.state.lock();
            state.closed = true;
            self.0.len.store(0, Ordering::Release);
            std::mem::take(&mut state.items)
        };
        drop(queued);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn items_arrive_in_order_including_those_sent_before_the_wait() {
        let (queue, rx) = queue(usize::MAX);
        queue.send(1).unwrap();
        queue.send(2).unwrap();
        assert_eq!(rx.recv().await, 1);
        assert_eq!(rx.recv().await, 2);
        assert!(rx.is_empty());
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        queue.send(3).unwrap();
        assert_eq!(waiter.await.unwrap(), 3, "a waiting receiver is woken");
    }

    #[test]
    fn a_bounded_queue_refuses_one_more_until_one_is_taken() {
        let (queue, rx) = queue(2);
        queue.send(1).unwrap();
        queue.send(2).unwrap();
        assert_eq!(queue.send(3), Err(SendError::Full));
        assert_eq!((queue.len(), queue.capacity()), (2, 2));
        assert_eq!(rx.try_recv(), Some(1));
        queue.send(3).unwrap();
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), None);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_closed_queue_refuses_items_and_hands_out_what_it_holds() {
        let (queue, rx) = queue(4);
        queue.send(1).unwrap();
        rx.close();
        assert_eq!(queue.send(2), Err(SendError::Closed));
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn a_queue_closes_when_empty_only_and_hands_a_refused_item_back() {
        let (queue, rx) = queue(4);
        queue.send(1).unwrap();
        let mut closings = 0;
        assert!(!queue.close_if_empty(|| closings += 1), "an item is waiting");
        queue.send(2).unwrap();
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.try_recv(), Some(2));
        assert!(queue.close_if_empty(|| closings += 1));
        assert!(!queue.close_if_empty(|| closings += 1), "closed already");
        assert_eq!(closings, 1);
        assert_eq!(queue.send_or_return(3), Err((SendError::Closed, 3)));
    }

    #[test]
    fn shrinking_an_empty_queue_gives_its_buffer_back() {
        let (queue, rx) = queue(usize::MAX);
        for n in 0..100 {
            queue.send(n).unwrap();
        }
        rx.shrink();
        assert_eq!(queue.len(), 100, "a queue that holds items is not shrunk");
        while rx.try_recv().is_some() {}
        rx.shrink();
        assert_eq!(queue.state.lock().items.capacity(), 0);
        queue.send(7).unwrap();
        assert_eq!(rx.try_recv(), Some(7));
    }

    #[test]
    fn concurrent_senders_never_overfill_a_bounded_queue() {
        let (queue, rx) = queue(1000);
        let accepted: usize = std::thread::scope(|s| {
            let senders: Vec<_> = (0..4)
                .map(|_| {
                    let queue = queue.clone();
                    s.spawn(move || (0..1000).filter(|n| queue.send(*n).is_ok()).count())
                })
                .collect();
            senders.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(accepted, 1000);
        assert_eq!(queue.len(), 1000);
        drop(rx);
    }

    #[tokio::test]
    async fn after_the_receiver_is_gone_items_are_refused_and_queued_acks_resolve() {
        let (queue, rx) = queue(usize::MAX);
        let (ack, done) = oneshot::channel::<()>();
        queue.send(ack).unwrap();
        drop(rx);
        assert!(done.await.is_err(), "the queued item was dropped");
        let (ack, _) = oneshot::channel::<()>();
        assert_eq!(queue.send(ack), Err(SendError::Closed));
    }

    #[test]
    fn a_run_is_taken_while_items_fit_and_put_back_in_order() {
        let (queue, rx) = queue(6);
        for n in [2, 4, 6, 7, 8, 10] {
            queue.send(n).unwrap();
        }
        let mut run = Vec::new();
        rx.take_while(10, &mut run, |n| n % 2 == 0);
        assert_eq!(run, [2, 4, 6], "stops at the first item that does not fit");
        assert_eq!(queue.len(), 3);
        let mut short = vec![0];
        rx.take_while(2, &mut short, |_| true);
        assert_eq!(short, [0, 7], "stops when the run holds `max`");
        queue.send(12).unwrap();
        rx.put_back(run.into_iter());
        assert_eq!(queue.len(), 6, "put back beyond the bound: they were counted when sent");
        let drained: Vec<_> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(drained, [2, 4, 6, 8, 10, 12]);
    }
}

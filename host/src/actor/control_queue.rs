//! An actor's control queue: the requests of its supervisor, the host and
//! linked actors (stop, restart, swap, `down` notices...), handled between
//! messages.
//!
//! Unbounded and rarely used. tokio's unbounded channel allocates a block
//! of 32 slots plus a cache-padded header (1.5 KB) when it is created; this
//! queue allocates nothing until a request arrives, which is a sixth of a
//! hibernating actor's memory.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures_util::task::AtomicWaker;

use super::Control;

/// The queue both halves share.
#[derive(Debug, Default)]
pub(crate) struct ControlQueue {
    state: Mutex<State>,
    // The queue's length, readable without the lock: the message loop
    // looks for requests before every message and whenever it waits, and
    // there rarely are any.
    len: AtomicUsize,
    // The waiting loop. The receiver registers, then looks at `len` again,
    // and a sender wakes after it has set `len`: no request is missed.
    waker: AtomicWaker,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Control>,
    closed: bool,
}

impl ControlQueue {
    /// A queue and its receiving half (which closes it when dropped).
    pub fn new() -> (Arc<ControlQueue>, ControlInbox) {
        let queue = Arc::new(ControlQueue::default());
        (queue.clone(), ControlInbox(queue))
    }

    /// Queues `control`; false if the actor's loop has ended.
    pub fn send(&self, control: Control) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return false;
        }
        state.queue.push_back(control);
        self.len.store(state.queue.len(), Ordering::Release);
        drop(state);
        self.waker.wake();
        true
    }

    fn pop(&self) -> Option<Control> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let control = state.queue.pop_front();
        self.len.store(state.queue.len(), Ordering::Release);
        control
    }
}

/// The receiving half, owned by the actor's loop.
#[derive(Debug)]
pub(crate) struct ControlInbox(Arc<ControlQueue>);

impl ControlInbox {
    /// The next request. Cancel safe: a request is taken only when this
    /// resolves.
    pub async fn recv(&self) -> Control {
        poll_fn(|cx| {
            if let Some(control) = self.0.pop() {
                return Poll::Ready(control);
            }
            self.0.waker.register(cx.waker());
            match self.0.pop() {
                Some(control) => Poll::Ready(control),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Is nothing waiting?
    pub fn is_empty(&self) -> bool {
        self.0.len.load(Ordering::Acquire) == 0
    }
}

impl Drop for ControlInbox {
    /// The loop ended: later requests are refused, and queued ones dropped,
    /// which resolves their acknowledgements as errors.
    fn drop(&mut self) {
        let queued = {
            let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            state.closed = true;
            self.0.len.store(0, Ordering::Release);
            std::mem::take(&mut state.queue)
        };
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn requests_arrive_in_order_including_those_sent_before_the_wait() {
        let (queue, inbox) = ControlQueue::new();
        assert!(queue.send(Control::Exit));
        assert!(queue.send(Control::SwapCommit));
        assert!(matches!(inbox.recv().await, Control::Exit));
        assert!(matches!(inbox.recv().await, Control::SwapCommit));
        assert!(inbox.is_empty());
        let waiter = tokio::spawn(async move { matches!(inbox.recv().await, Control::Exit) });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(queue.send(Control::Exit));
        assert!(waiter.await.unwrap(), "a waiting receiver is woken");
    }

    #[tokio::test]
    async fn after_the_receiver_is_gone_requests_are_refused_and_queued_acks_resolve() {
        let (queue, inbox) = ControlQueue::new();
        let (ack, done) = oneshot::channel();
        assert!(queue.send(Control::Stop { ack: Some(ack) }));
        drop(inbox);
        assert!(done.await.is_err(), "the queued request was dropped");
        assert!(!queue.send(Control::Exit));
    }
}

//! Requests to an actor that bypass its mailbox and are handled between
//! messages: its supervisor's directives, link signals, `down` notices,
//! hot swaps, hibernation. [`Control`] is private to the actor layer;
//! supervisors and the host use the methods on [`ActorRef`] below.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::cell::{SwapError, SwapOptions, SwapReport};
use super::component::ActorComponent;
use super::host_api::Snapshot;
use super::{ActorRef, DownNotice, Failure};
use crate::message::Address;

/// A request handled between messages.
#[derive(Debug)]
pub(crate) enum Control {
    /// Stop for good after the current message: not an exit, nobody
    /// restarts it. `ack` resolves once it has stopped.
    Stop { ack: Option<oneshot::Sender<()>> },
    /// Drop the incarnation (a sibling failed) and wait, down, for a
    /// restart or a stop.
    Terminate { ack: oneshot::Sender<()> },
    /// Start a new incarnation after `delay`; `ack` gets the outcome.
    Restart { delay: Duration, ack: Option<oneshot::Sender<Result<(), Failure>>> },
    /// Fail now (a linked actor failed, or the children's supervisor gave
    /// up); `chain` is the link path so far.
    Fail { failure: Box<Failure>, chain: Box<[Address]> },
    /// The guest stopped itself: a normal exit after the current message.
    Exit,
    /// Deliver a `down` notice to the `watcher` export.
    Down(Box<DownNotice>),
    /// Hot-swap between messages (see [`super::cell::swap`]).
    Swap(Box<SwapRequest>),
    /// Hibernate now if idle and able to (the host needs its instance
    /// slot); `ack` says whether it did.
    Hibernate { ack: oneshot::Sender<bool> },
    /// Keep the new code of a held swap.
    SwapCommit,
    /// Reinstate the old code of a held swap.
    SwapRollback { ack: oneshot::Sender<()> },
}

/// A hot swap to `component`. With `hold`, the old code is kept after
/// probation until a `SwapCommit` or `SwapRollback` (rolling swaps). With
/// `state`, that state is restored instead of the old code's snapshot
/// (operator restores, fuzzing).
#[derive(Debug)]
pub(crate) struct SwapRequest {
    pub component: Arc<ActorComponent>,
    pub options: SwapOptions,
    pub hold: bool,
    pub state: Option<Snapshot>,
    pub ack: oneshot::Sender<Result<SwapReport, SwapError>>,
}

impl ActorRef {
    /// Queues a control request; false if the actor's loop has ended.
    pub(crate) fn control(&self, control: Control) -> bool {
        self.0.control.send(control).is_ok()
    }

    /// Is a control request waiting to be handled between messages?
    pub(crate) fn control_pending(&self) -> bool {
        self.0.control.len() > 0
    }

    /// Asks the actor to stop for good after its current message, without
    /// consulting its supervisor (use [`Host::stop`](crate::Host::stop) to
    /// also remove it from its supervisor). Its children stop first, in
    /// reverse start order; queued messages become dead letters (asks get
    /// [`CallError::Stopped`](crate::CallError::Stopped)). Returns at once;
    /// use [`ActorRef::stopped`] to wait.
    pub fn stop(&self) {
        if !self.status().is_terminal() {
            self.control(Control::Stop { ack: None });
        }
    }

    /// Stops the actor for good and waits until it has stopped.
    pub(crate) async fn stop_and_wait(&self) {
        let (ack, done) = oneshot::channel();
        if self.control(Control::Stop { ack: Some(ack) }) {
            let _ = done.await;
        }
    }

    /// Ends the actor's incarnation (its supervisor restarts it later) and
    /// waits until it is down.
    pub(crate) async fn terminate(&self) {
        let (ack, done) = oneshot::channel();
        if self.control(Control::Terminate { ack }) {
            let _ = done.await;
        }
    }

    /// Restarts the actor after `delay`; with `wait`, resolves once the new
    /// incarnation has started (or failed to).
    pub(crate) async fn restart(&self, delay: Duration, wait: bool) {
        if !wait {
            self.control(Control::Restart { delay, ack: None });
            return;
        }
        let (ack, done) = oneshot::channel();
        if self.control(Control::Restart { delay, ack: Some(ack) }) {
            let _ = done.await;
        }
    }

    /// Fails the actor now with `failure`: a linked actor failed (`chain`
    /// is the link path so far), or its children's supervisor gave up.
    pub(crate) fn fail(&self, failure: Failure, chain: Box<[Address]>) {
        self.control(Control::Fail { failure: Box::new(failure), chain });
    }

    /// The actor stopped itself: a normal exit after its current message.
    pub(crate) fn exit(&self) {
        self.control(Control::Exit);
    }

    /// Hands the actor a `down` notice for its `watcher` export.
    pub(crate) fn notify(&self, notice: DownNotice) {
        self.control(Control::Down(Box::new(notice)));
    }

    /// Asks an idle actor to hibernate now; resolves to whether it did
    /// within `patience`.
    pub(crate) async fn hibernate_now(&self, patience: Duration) -> bool {
        let (ack, slept) = oneshot::channel();
        self.control(Control::Hibernate { ack }) && matches!(tokio::time::timeout(patience, slept).await, Ok(Ok(true)))
    }

    /// Swaps the actor's code to `component` between two messages and
    /// waits for the outcome (after probation). With `hold`, the old code
    /// is kept after probation until [`ActorRef::commit_swap`] or
    /// [`ActorRef::roll_back_swap`]; with `state`, that state is restored
    /// instead of the old code's snapshot.
    pub(crate) async fn swap(
        &self,
        component: Arc<ActorComponent>,
        options: SwapOptions,
        hold: bool,
        state: Option<Snapshot>,
    ) -> Result<SwapReport, SwapError> {
        let (ack, done) = oneshot::channel();
        let request = SwapRequest { component, options, hold, state, ack };
        if !self.control(Control::Swap(Box::new(request))) {
            return Err(SwapError::Stopped(self.address().clone()));
        }
        done.await.unwrap_or_else(|_| Err(SwapError::Stopped(self.address().clone())))
    }

    /// Keeps the new code of a held swap.
    pub(crate) fn commit_swap(&self) {
        self.control(Control::SwapCommit);
    }

    /// Reinstates the old code of a held swap and waits.
    pub(crate) async fn roll_back_swap(&self) {
        let (ack, done) = oneshot::channel();
        if self.control(Control::SwapRollback { ack }) {
            let _ = done.await;
        }
    }
}

#[cfg(test)]
mod tests {
    /// Requests sit in a `VecDeque`, whose buffer starts at 4 and doubles;
    /// small requests keep an actor that was ever stopped or swapped small.
    #[test]
    fn a_control_request_takes_at_most_32_bytes() {
        let size = std::mem::size_of::<super::Control>();
        assert!(size <= 32, "Control is {size} bytes; box the payload of the variant that grew");
    }
}

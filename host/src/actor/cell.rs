//! The message loop of one actor: the task that owns its mailbox and its
//! current incarnation, handles messages one at a time, replaces a failed
//! incarnation, and shuts the actor down in order.

use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::component::Loader;
use super::host_api::Snapshot;
use super::incarnation::Incarnation;
use super::{ActorRef, ActorSpec, ActorStatus, ActorSystem, Control, Inbox, RestartFrom};
use crate::engine::{Failure, FailureKind};
use crate::message::{CallError, DeadLetterReason, Envelope};
use crate::protocol::payload_size;

/// Starts the loop of an actor created with [`ActorRef::create`]. The returned
/// receiver resolves once its first incarnation has started (or failed to).
pub(crate) fn start(
    me: ActorRef,
    inbox: Inbox,
    spec: ActorSpec,
    system: Arc<dyn ActorSystem>,
    loader: Arc<Loader>,
) -> oneshot::Receiver<Result<(), Failure>> {
    let (started_tx, started_rx) = oneshot::channel();
    // A root span: a child's messages are not part of its spawner's.
    let span = info_span!(parent: None, "actor", actor = %spec.address, component = %spec.component.name);
    let cell = Cell { me, spec, system, loader, inbox, last_snapshot: None, since_snapshot: 0 };
    tokio::spawn(cell.run(started_tx).instrument(span));
    started_rx
}

struct Cell {
    me: ActorRef,
    spec: ActorSpec,
    system: Arc<dyn ActorSystem>,
    loader: Arc<Loader>,
    inbox: Inbox,
    last_snapshot: Option<Snapshot>,
    since_snapshot: u32,
}

impl Cell {
    async fn run(mut self, started: oneshot::Sender<Result<(), Failure>>) {
        let mut inc = match self.incarnate(false).await {
            Ok(inc) => {
                let _ = started.send(Ok(()));
                inc
            }
            Err(failure) => {
                self.me.record_failure(&failure);
                let _ = started.send(Err(failure));
                self.finish(ActorStatus::Failed).await;
                return;
            }
        };
        info!("started");
        let status = loop {
            tokio::select! {
                biased;
                control = self.inbox.control.recv() => match control {
                    Some(Control::Stop) | None => break ActorStatus::Stopped,
                },
                envelope = self.inbox.mailbox.recv() => {
                    let Some(envelope) = envelope else { break ActorStatus::Stopped };
                    if let Err(failure) = self.deliver(&mut inc, envelope).await {
                        error!(kind = %failure.kind, detail = %failure.detail, "cannot restart; stopping");
                        break ActorStatus::Failed;
                    }
                }
            }
        };
        drop(inc);
        self.finish(status).await;
    }

    /// Starts an incarnation: from the last snapshot if `after_failure` and
    /// the policy says so, else fresh with `init`.
    async fn incarnate(&mut self, after_failure: bool) -> Result<Incarnation, Failure> {
        let number = self.me.stats().next_incarnation();
        debug!(incarnation = number, "instantiating");
        let mut inc = Incarnation::instantiate(&self.spec, &self.me, &self.system, &self.loader).await?;
        let snapshot = match self.spec.restart {
            RestartFrom::Snapshot if after_failure && inc.persistent() => self.last_snapshot.clone(),
            _ => None,
        };
        match snapshot {
            Some(state) => {
                inc.restore(&self.me, &state).await?;
                debug!(incarnation = number, bytes = state.bytes.len(), "restored from snapshot");
            }
            None => inc.init(&self.me, &self.spec.config).await?,
        }
        self.me.set_status(ActorStatus::Running);
        Ok(inc)
    }

    /// Handles one message; on failure, reports it and replaces the
    /// incarnation. `Err` means no new incarnation could be started.
    async fn deliver(&mut self, inc: &mut Incarnation, envelope: Envelope) -> Result<(), Failure> {
        let Envelope { call, reply, waiting, from } = envelope;
        let function = self.me.component().protocol().function(call.func).name.clone();
        let span = tracing::debug_span!("message", function = %function, from = from.as_ref().map(|a| a.as_str()));
        let outcome = inc.handle(&self.me, &call, waiting).instrument(span).await;
        match outcome {
            Ok(result) => {
                self.me.stats().handled();
                if let Some(reply) = reply {
                    let limit = self.me.limits().max_message_bytes;
                    let size = result.as_ref().map(payload_size).unwrap_or(0);
                    let _ = reply.send(if size > limit {
                        Err(CallError::ReplyTooLarge { size, limit })
                    } else {
                        Ok(result)
                    });
                }
                self.maybe_snapshot(inc).await
            }
            Err(mut failure) => {
                self.explain(&mut failure);
                self.me.record_failure(&failure);
                error!(
                    function = %function,
                    kind = %failure.kind,
                    detail = %failure.detail,
                    backtrace = ?failure.backtrace,
                    "message failed; restarting the actor"
                );
                self.system.dead_letter(self.me.address(), &function, DeadLetterReason::Failed);
                if let Some(reply) = reply {
                    let _ = reply.send(Err(CallError::ActorFailed { address: self.me.address().clone(), failure }));
                }
                self.restart(inc).await
            }
        }
    }

    /// Replaces wasmtime's terse text for budget overruns with the limit
    /// that was hit.
    fn explain(&self, failure: &mut Failure) {
        let limits = self.me.limits();
        match failure.kind {
            FailureKind::Deadline => {
                failure.detail =
                    format!("ran past its CPU budget of {} ms per message (`deadline-ms`)", limits.deadline.as_millis())
            }
            FailureKind::OutOfFuel => {
                failure.detail =
                    format!("used up its budget of {} fuel per message (`fuel`)", limits.fuel.unwrap_or_default())
            }
            _ => {}
        }
    }

    async fn restart(&mut self, inc: &mut Incarnation) -> Result<(), Failure> {
        self.me.set_status(ActorStatus::Restarting);
        self.me.stats().restarted();
        match self.incarnate(true).await {
            Ok(fresh) => {
                *inc = fresh;
                Ok(())
            }
            Err(failure) => {
                self.me.record_failure(&failure);
                Err(failure)
            }
        }
    }

    /// Takes a snapshot if the restart policy wants one now.
    async fn maybe_snapshot(&mut self, inc: &mut Incarnation) -> Result<(), Failure> {
        if self.spec.restart != RestartFrom::Snapshot || !inc.persistent() {
            return Ok(());
        }
        self.since_snapshot += 1;
        if self.since_snapshot < self.spec.snapshot_every.max(1) {
            return Ok(());
        }
        self.since_snapshot = 0;
        match inc.snapshot(&self.me).await {
            Ok(state) => {
                self.last_snapshot = state;
                Ok(())
            }
            Err(failure) => {
                self.me.record_failure(&failure);
                error!(kind = %failure.kind, detail = %failure.detail, "snapshot failed; restarting the actor");
                self.restart(inc).await
            }
        }
    }

    /// Stops children (reverse start order), refuses what is still queued,
    /// and leaves the address space.
    async fn finish(&mut self, status: ActorStatus) {
        self.me.set_status(ActorStatus::Stopping);
        self.me.cancel_all_timers();
        for child in self.me.children().iter().rev() {
            if let Some(child) = self.system.lookup(child.as_str()) {
                child.stop();
                child.stopped().await;
            }
        }
        self.inbox.mailbox.close();
        let mut dropped = 0usize;
        while let Ok(envelope) = self.inbox.mailbox.try_recv() {
            dropped += 1;
            let name = self.me.component().protocol().function(envelope.call.func).name.clone();
            self.system.dead_letter(self.me.address(), &name, DeadLetterReason::Stopped);
            if let Some(reply) = envelope.reply {
                let _ = reply.send(Err(CallError::Stopped(self.me.address().clone())));
            }
        }
        if dropped > 0 {
            warn!(dropped, "stopped with messages still queued");
        }
        self.system.unregister(&self.me);
        self.me.set_status(status);
        self.me.mark_done();
        info!(?status, "stopped");
    }
}

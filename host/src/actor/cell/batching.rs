//! Batch delivery inside the cell: which queued tells go into the guest
//! together in one call of a batch entry point (see `crate::batch`),
//! and what happens when one of them fails. The incarnation owns the entry
//! points; this decides what makes a run.

use std::time::Instant;

use tracing::Instrument;

use super::Cell;
use crate::actor::incarnation::Incarnation;
use crate::actor::{Failure, RestartFrom};
use crate::batch::{self, RunEntry};
use crate::message::Envelope;

/// What goes into the guest next: one message, or a run of tells for a
/// batch entry point.
pub(super) enum Gathered {
    /// A message on its own.
    One(Envelope),
    /// At least two tells, and the entry point that takes them.
    Run(Vec<Envelope>, RunEntry),
}

impl Cell {
    /// How many messages, `envelope` first, may go into the guest in one
    /// call; `None` when `envelope` goes alone. Only tells qualify. With
    /// snapshots taken every N messages, a run ends where a snapshot is
    /// due, so that a restart finds the state it would have found.
    pub(super) fn run_limit(&self, inc: &Incarnation, envelope: &Envelope, batch: usize) -> Option<usize> {
        // A durable actor commits after each message; while tracing is on
        // each message has a span of its own.
        if envelope.is_ask()
            || crate::trace::active()
            || envelope.call.generation != self.generation
            || self.inbox.mailbox.is_empty()
            || self.me.is_durable()
        {
            return None;
        }
        let func = envelope.call.func;
        if !inc.batch().serves(func) {
            return None;
        }
        let mut limit = batch;
        let policy = &self.spec.policy;
        if policy.restore == RestartFrom::Snapshot && inc.persistent() {
            match (policy.snapshot_every, policy.snapshot_interval) {
                (Some(n), _) => limit = limit.min(self.snapshots.until_due(n)),
                (None, None) => return None,
                (None, Some(_)) => {}
            }
        }
        (limit >= 2).then_some(limit)
    }

    /// Takes the run that goes into the guest with `first`, at most `limit`
    /// messages: the tells to its function queued behind it, for its own
    /// entry point; or, when the next tell is to another function, the
    /// tells to any function the mixed entry point serves. `first` alone
    /// when nothing queued behind it can join it.
    pub(super) fn gather(&self, inc: &Incarnation, first: Envelope, limit: usize) -> Gathered {
        let (func, generation) = (first.call.func, first.call.generation);
        let batch = inc.batch();
        let own = batch.own_capacity(func).min(limit);
        let mixed = batch.mixed_capacity(func).min(limit);
        let mut run = Vec::with_capacity(own.max(mixed));
        run.push(first);
        if own >= 2 {
            self.inbox
                .mailbox
                .take_while(own, &mut run, |e| !e.is_ask() && e.call.func == func && e.call.generation == generation);
        }
        if mixed > 0 && run.len() == 1 {
            self.inbox.mailbox.take_while(mixed, &mut run, |e| {
                !e.is_ask() && e.call.generation == generation && batch.mixes(e.call.func)
            });
            if run.len() > 1 {
                return Gathered::Run(run, RunEntry::Mixed);
            }
        }
        if run.len() == 1 {
            return Gathered::One(run.swap_remove(0));
        }
        Gathered::Run(run, RunEntry::Own(func))
    }

    /// Handles a run of tells in one call of a batch entry point. If one of
    /// them fails, those before it count as handled and those after it go
    /// back to the front of the mailbox, for the next incarnation: the same
    /// outcome as delivering them one by one. A control request arriving
    /// meanwhile ends the call between two messages, and the rest go back
    /// to the mailbox too.
    pub(super) async fn deliver_run(
        &mut self,
        inc: &mut Incarnation,
        mut run: Vec<Envelope>,
        entry: RunEntry,
    ) -> Result<(), Failure> {
        let component = self.spec.component.clone();
        let protocol = component.protocol();
        let func = entry.function();
        let Some(lowered) = inc.batch().lower(protocol, &mut run, entry) else {
            // Not expected (the run was gathered for an entry point, and its
            // calls are type-checked); one at a time is still right.
            for envelope in run {
                Box::pin(self.deliver(inc, envelope)).await?;
            }
            return Ok(());
        };
        let span = tracing::debug_span!(
            "messages",
            function = func.map_or("(several)", |f| protocol.function(f).name.as_str()),
            count = run.len()
        );
        if let Some(times) = self.me.times() {
            times.begin(Instant::now());
        }
        let outcome = inc.handle_run(&self.me, &lowered).instrument(span).await;
        if let Some(times) = self.me.times() {
            // One call for the messages that went in: each at its share.
            times.end(match &outcome {
                Ok(handled) => *handled,
                Err((started, _)) => (*started).clamp(1, run.len()),
            });
        }
        batch::give_back(&mut run, lowered);
        match outcome {
            Ok(handled) => {
                self.me.stats().handled_batch(handled as u64);
                if handled < run.len() {
                    // Cut short for a control request: the rest wait for it.
                    self.inbox.mailbox.put_back(run.into_iter().skip(handled));
                }
                self.snapshot_if_due(inc, handled).await
            }
            Err((started, failure)) => {
                let failed = started.clamp(1, run.len()) - 1;
                self.me.stats().handled_batch(failed as u64);
                let failure = self.message_failed(&protocol.function(run[failed].call.func).name, None, failure);
                self.inbox.mailbox.put_back(run.into_iter().skip(failed + 1));
                Err(failure)
            }
        }
    }
}

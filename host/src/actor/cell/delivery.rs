//! Handing messages to the incarnation, one at a time: the reply to an
//! ask, and what a failed message costs its sender (an `actor-failed`
//! error, a dead letter, a log line with the wasm backtrace).
//!
//! A message that fails takes its incarnation with it (the store is
//! poisoned); the messages queued behind it stay in the mailbox for the
//! next incarnation.
//!
//! Each message is handled in a span: `actor.handle` while tracing is on
//! (see [`crate::trace`]: the child of an asker's span, or linked to a
//! teller's), otherwise the log's `message` span at debug level. On a
//! host whose metrics time messages, its handling time (and an ask's
//! mailbox wait) goes into the actor's histograms.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{Instrument, Span, error};

use super::batching::Gathered;
use super::phase::Phase;
use super::swap::Trial;
use super::{Cell, MESSAGE_BATCH};
use crate::actor::incarnation::Incarnation;
use crate::actor::{Failure, FailureKind};
use crate::message::{Address, CallError, DeadLetterReason, Envelope, Reply};
use crate::protocol::{Call, payload_size};
use crate::trace::{self, Follows, TraceContext};

/// Runs `handling` in `span` and records its outcome there: a message's
/// handling while tracing is on (boxed by the caller, so that the
/// untraced delivery's future does not grow by the span it keeps).
async fn traced<T, E>(handling: impl Future<Output = Result<T, E>>, span: Span) -> Result<T, E> {
    let mut handling = std::pin::pin!(handling.instrument(span));
    let outcome = handling.as_mut().await;
    handling.span().record("outcome", if outcome.is_ok() { "ok" } else { "failed" });
    outcome
}

impl Cell {
    /// What a running actor becomes once it has handled a batch (see
    /// [`Cell::handle_messages`]): still running, or down with the
    /// failure of the message that failed.
    pub(super) fn running_after(&mut self, inc: Incarnation, outcome: Result<(), Failure>) -> Phase {
        match outcome {
            Ok(()) => Phase::Running(inc),
            Err(failure) => {
                drop(inc);
                self.go_down(failure, &[])
            }
        }
    }

    /// Handles `first` on code that is on probation after a swap: a failure
    /// before the window passed rolls back to the old code and its state.
    pub(super) async fn deliver_on_probation(
        &mut self,
        mut inc: Incarnation,
        trial: Box<Trial>,
        first: Envelope,
    ) -> Phase {
        let on_trial = !trial.passed();
        match self.handle_messages(&mut inc, first, on_trial).await {
            Ok(()) => Phase::Probation(inc, trial),
            Err(failure) if on_trial => {
                drop(inc);
                Phase::Running(self.roll_back(trial, Some(failure)))
            }
            Err(failure) => {
                drop((inc, trial));
                self.go_down(failure, &[])
            }
        }
    }

    /// Handles `first` and what is queued behind it, up to a batch, without
    /// going back through `select!` as long as no control request waits.
    /// (The transition that calls this boxes it: one allocation per batch,
    /// kept small by boxing `deliver_run`, the rarer path, apart.)
    /// A run of tells to one function goes into the guest in one call when
    /// the function has a batch entry point. On trial (a swap's probation),
    /// one message at a time, so that a failure rolls back at once.
    pub(super) async fn handle_messages(
        &mut self,
        inc: &mut Incarnation,
        first: Envelope,
        on_trial: bool,
    ) -> Result<(), Failure> {
        let mut envelope = first;
        let mut budget = MESSAGE_BATCH;
        loop {
            let limit = if on_trial { None } else { self.run_limit(inc, &envelope, budget) };
            let next = match limit {
                Some(limit) => self.gather(inc, envelope, limit),
                None => Gathered::One(envelope),
            };
            let handled = match next {
                Gathered::One(envelope) => {
                    self.deliver(inc, envelope).await?;
                    1
                }
                Gathered::Run(run, entry) => {
                    let len = run.len();
                    Box::pin(self.deliver_run(inc, run, entry)).await?;
                    len
                }
            };
            budget = budget.saturating_sub(handled);
            if budget == 0 || on_trial || !self.inbox.control.is_empty() {
                return Ok(());
            }
            match self.inbox.mailbox.try_recv() {
                Some(queued) => envelope = queued,
                None => return Ok(()),
            }
        }
    }

    /// Handles one message. `Err` means the incarnation failed (and is
    /// poisoned); the failure has been reported to the sender.
    pub(super) async fn deliver(&mut self, inc: &mut Incarnation, mut envelope: Envelope) -> Result<(), Failure> {
        let http = envelope.take_http();
        let (sender, queued) = envelope.observed();
        let (mut call, from, reply, waiting) = envelope.into_parts();
        let tell = reply.is_none();
        if tell {
            self.took_tell();
        }
        if call.generation != self.generation
            && let Err(e) = self.me.current_call(&mut call)
        {
            // Checked against code that a hot swap replaced, and gone from
            // the new code: refuse it as the sender would have been refused.
            self.system.dead_letter(self.address(), "?", DeadLetterReason::Failed);
            if let Some(reply) = reply {
                let _ = reply.send(Err(CallError::BadMessage(e)));
            }
            return Ok(());
        }
        let durable = self.me.is_durable();
        if durable {
            // Its tells wait for the commit of what the message did.
            let (watermark, last) = (self.watermark(), self.durable().last_sent);
            inc.collect_effects(watermark, last);
        }
        // Read only if someone measures: a clock reading costs about as
        // much as a small handler takes. Nothing of it is kept across the
        // call below: this future is allocated for every batch, and must
        // stay small enough for the allocator's per-thread cache.
        let now = (queued.is_some() || self.me.times().is_some()).then(Instant::now);
        let waited = queued.zip(now).map(|(queued, now)| now.saturating_duration_since(queued));
        if let Some(times) = self.me.times()
            && let Some(now) = now
        {
            times.begin(now);
            if let Some(waited) = waited {
                times.mailbox_wait.observe(waited);
            }
        }
        let how = if reply.is_some() { Follows::ChildOf } else { Follows::LinkedTo };
        let span = self.message_span(&call, from.as_ref(), sender.map(|cx| (cx, how)), waited);
        let outcome = if let Some(exchange) = http {
            // Rare beside the common path, and this future is in every delivery.
            Box::pin(inc.handle_http(&self.me, &call, exchange).instrument(span)).await
        } else if trace::active() {
            Box::pin(traced(inc.handle(&self.me, &call, waiting), span)).await
        } else {
            inc.handle(&self.me, &call, waiting).instrument(span).await
        };
        if let Some(times) = self.me.times() {
            times.end(1);
        }
        match outcome {
            Ok(result) => {
                self.me.stats().handled();
                let reply = reply.map(|reply| (reply, self.checked_reply(result)));
                if durable {
                    // Persist, then reply. Boxed: rare beside the common
                    // path, and this future is in every delivery.
                    return Box::pin(self.commit_then_reply(inc, reply, &call, from.as_ref())).await;
                }
                if let Some((reply, value)) = reply {
                    let _ = reply.send(value);
                }
                self.snapshot_if_due(inc, 1).await
            }
            Err(failure) => {
                let function = &self.spec.component.protocol().function(call.func).name;
                let failure = self.message_failed(function, reply, failure);
                if durable && tell {
                    Box::pin(self.durable_tell_failed(call, from, &failure)).await;
                }
                Err(failure)
            }
        }
    }

    /// The span `call` is handled in (see the module docs): `sender` is the
    /// sender's trace context and how this span follows it, `waited` how
    /// long the message was queued, if known.
    fn message_span(
        &self,
        call: &Call,
        from: Option<&Address>,
        sender: Option<(TraceContext, Follows)>,
        waited: Option<Duration>,
    ) -> Span {
        let function = &self.spec.component.protocol().function(call.func).name;
        if !trace::active() {
            return tracing::debug_span!("message", function = %function, from = from.map(|a| a.as_str()));
        }
        // A root of its own (not within the actor's long-lived span): its
        // parent, if any, is its asker's.
        let span = tracing::info_span!(
            target: trace::TARGET,
            parent: None,
            "actor.handle",
            actor = %self.address(),
            component = %self.spec.component.name,
            function = %function,
            from = from.map(|a| a.as_str()),
            mailbox_wait_us = waited.map(|w| w.as_micros() as u64),
            outcome = tracing::field::Empty,
        );
        if let Some((cx, how)) = sender {
            trace::follow(&span, cx, how);
        }
        span
    }

    /// The reply to an ask that returned `result`: the result, unless it
    /// is larger than the actor may send.
    fn checked_reply(&self, result: Option<wasmtime::component::Val>) -> Reply {
        let limit = self.me.limits().max_message_bytes;
        let size = result.as_ref().map(payload_size).unwrap_or(0);
        if size > limit { Err(CallError::ReplyTooLarge { size, limit }) } else { Ok(result) }
    }

    /// Replaces wasmtime's terse text for budget overruns with the limit
    /// that was hit.
    pub(super) fn explain(&self, mut failure: Failure) -> Failure {
        let limits = self.me.limits();
        match failure.kind {
            // The ceiling's own explanation is kept (see `budget.rs`).
            FailureKind::Deadline if !failure.detail.contains(crate::actor::budget::CEILING) => {
                failure.detail = format!(
                    "ran past its deadline of {} ms per message (`deadline-ms`; time spent waiting on asks \
                     does not count)",
                    limits.deadline.as_millis()
                )
            }
            FailureKind::OutOfFuel => {
                failure.detail =
                    format!("used up its budget of {} fuel per message (`fuel`)", limits.fuel.unwrap_or_default())
            }
            _ => {}
        }
        failure
    }

    /// The actor failed before it could handle `envelope`: the sender
    /// learns it as it would of a failure handling it.
    pub(super) fn refuse(&mut self, envelope: Envelope, failure: &Failure) {
        if !envelope.is_ask() {
            self.took_tell();
        }
        let function = self.function_name(&envelope.call);
        self.report_failed(&function, envelope.into_parts().2, failure);
    }

    /// A message to `function` failed, and its incarnation with it: log
    /// it, count the dead letter and tell the asker, if any. Returns the
    /// failure as explained to them.
    pub(super) fn message_failed(
        &self,
        function: &str,
        reply: Option<oneshot::Sender<Reply>>,
        failure: Failure,
    ) -> Failure {
        let failure = self.explain(failure);
        error!(
            function = %function,
            kind = %failure.kind,
            detail = %failure.detail,
            backtrace = ?failure.backtrace,
            "message failed"
        );
        self.report_failed(function, reply, &failure);
        failure
    }

    /// A message to `function` failed: count the dead letter and tell the
    /// asker, if any.
    pub(super) fn report_failed(&self, function: &str, reply: Option<oneshot::Sender<Reply>>, failure: &Failure) {
        self.me.stats().message_failed();
        self.system.dead_letter(self.address(), function, DeadLetterReason::Failed);
        if let Some(reply) = reply {
            let _ =
                reply.send(Err(CallError::ActorFailed { address: self.address().clone(), failure: failure.clone() }));
        }
    }

    /// The name of the function `call` calls, for dead letters. A call
    /// checked against code that a swap replaced is not remapped here.
    pub(super) fn function_name(&self, call: &Call) -> String {
        let protocol = self.spec.component.protocol();
        match protocol.functions().get(call.func as usize) {
            Some(f) if call.generation == self.generation => f.name.clone(),
            _ => "?".into(),
        }
    }
}

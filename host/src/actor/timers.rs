//! `send-after` timers: a tell an actor sends itself after a delay. A
//! durable actor's timers are committed when set, re-armed when the actor
//! is recovered, and removed in the same commit as the tell they make
//! (see [`super::durable`]), so each fires once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::durable::DurableTimer;
use super::{ActorRef, ActorSystem};
use crate::message::{CallError, DeadLetterReason, WireMessage};
use crate::protocol::Call;

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl ActorRef {
    /// Arms a timer that tells this actor `call` after `delay`, if the
    /// `max-timers` quota allows; returns its id. For a durable actor the
    /// timer is committed first (the returned future waits for that).
    pub(crate) async fn set_timer(
        &self,
        delay: Duration,
        call: Call,
        system: Arc<dyn ActorSystem>,
    ) -> Result<Option<u64>, CallError> {
        let message = self.journal().map(|_| self.timer_message(&call));
        let Some(id) = self.arm_timer(None, delay, call, system) else { return Ok(None) };
        if let (Some(journal), Some(message)) = (self.journal(), message) {
            let timer = DurableTimer { id, due_ms: now_ms().saturating_add(delay.as_millis() as u64), message };
            journal.set_timer(self.address(), timer).await.map_err(|e| self.not_durable(e))?;
        }
        Ok(Some(id))
    }

    /// Arms a recovered durable timer, late or not.
    pub(crate) fn rearm_timer(&self, timer: &DurableTimer, call: Call, system: Arc<dyn ActorSystem>) -> bool {
        let delay = Duration::from_millis(timer.due_ms.saturating_sub(now_ms()));
        self.arm_timer(Some(timer.id), delay, call, system).is_some()
    }

    /// Cancels timer `id`; returns whether it was pending.
    pub(crate) fn cancel_timer(&self, id: u64) -> bool {
        let pending = self.remove_timer(id, true);
        if pending && let Some(journal) = self.journal() {
            // Not waited for: a cancelled timer that fires after a crash
            // is a late tell, as if cancelled just after it fired.
            tokio::spawn(journal.cancel_timer(self.address(), id));
        }
        pending
    }

    fn timer_message(&self, call: &Call) -> WireMessage {
        WireMessage {
            to: self.address().clone(),
            from: Some(self.address().clone()),
            message: self.wave(call),
            ask: false,
            waiting: Vec::new(),
        }
    }

    fn arm_timer(&self, id: Option<u64>, delay: Duration, call: Call, system: Arc<dyn ActorSystem>) -> Option<u64> {
        let me = self.clone();
        self.add_timer(id, std::time::Instant::now() + delay, |id| {
            let fire = async move {
                tokio::time::sleep(delay).await;
                me.remove_timer(id, false);
                let name = me.component().protocol().function(call.func).name.clone();
                match me.tell_from_timer(call, id) {
                    Ok(()) => {}
                    Err(CallError::MailboxFull(_)) => {
                        system.dead_letter(me.address(), &name, DeadLetterReason::MailboxFull)
                    }
                    Err(_) => system.dead_letter(me.address(), &name, DeadLetterReason::UnknownAddress),
                }
            };
            tokio::spawn(fire).abort_handle()
        })
    }
}

//! The host's recent events, kept by the gateway for actors' pages: an
//! event that happened before a page was opened (the failure that made
//! someone open it) is still there to see.

use std::collections::VecDeque;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::AbortHandle;

use crate::events::Event;
use crate::message::Address;
use crate::sync::Mutex;
use std::sync::Arc;

/// How many events are kept, of all actors together: the oldest go first.
/// A few pages of history for a busy actor, bounded memory for any host.
pub const RECENT_EVENTS: usize = 1024;

/// The last [`RECENT_EVENTS`] events of the host since the gateway
/// started, kept by a task that follows the event bus and ends when this
/// is dropped. Events a slow follower missed (the bus is bounded) are
/// missed here too.
pub struct RecentEvents {
    events: Arc<Mutex<VecDeque<Event>>>,
    follower: AbortHandle,
}

impl RecentEvents {
    /// Starts following the events `receiver` receives (from
    /// [`Host::events`](crate::Host::events)). Must be called within a
    /// tokio runtime.
    pub fn follow(mut receiver: broadcast::Receiver<Event>) -> RecentEvents {
        let events = Arc::new(Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)));
        let kept = events.clone();
        let follower = tokio::spawn(async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        let mut kept = kept.lock();
                        if kept.len() == RECENT_EVENTS {
                            kept.pop_front();
                        }
                        kept.push_back(event);
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                }
            }
        })
        .abort_handle();
        RecentEvents { events, follower }
    }

    /// The kept events about `address`, oldest first, at most `limit` (the
    /// newest).
    pub fn of(&self, address: &Address, limit: usize) -> Vec<Event> {
        let kept = self.events.lock();
        let mut of: Vec<Event> = kept.iter().rev().filter(|e| &e.address == address).take(limit).cloned().collect();
        of.reverse();
        of
    }
}

impl Drop for RecentEvents {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventBus, EventKind};

    /// Waits until `recent` has seen the event `address` `Exited`.
    async fn settled(recent: &RecentEvents, address: &Address) {
        while !recent.of(address, 1).iter().any(|e| e.kind == EventKind::Exited) {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn an_actors_events_come_oldest_first_and_only_the_newest_are_kept() {
        let bus = EventBus::default();
        let recent = RecentEvents::follow(bus.subscribe());
        let (a, b, end) = (Address::from("a"), Address::from("b"), Address::from("end"));
        for incarnation in 1..=RECENT_EVENTS as u64 + 10 {
            let address = if incarnation % 2 == 0 { &a } else { &b };
            bus.publish(address, EventKind::Started { incarnation, phases: None });
        }
        bus.publish(&end, EventKind::Exited);
        settled(&recent, &end).await;
        let incarnations = |address| -> Vec<u64> {
            let events = recent.of(address, usize::MAX);
            events
                .iter()
                .map(|e| match e.kind {
                    EventKind::Started { incarnation, .. } => incarnation,
                    _ => 0,
                })
                .collect()
        };
        // The oldest 11 of all (the bus's first 11) made room.
        let of_a = incarnations(&a);
        assert_eq!((of_a.first(), of_a.last(), of_a.len()), (Some(&12), Some(&1034), 512));
        assert_eq!(incarnations(&b).len(), RECENT_EVENTS - 1 - 512);
        let newest_three: Vec<u64> = recent
            .of(&a, 3)
            .iter()
            .map(|e| match e.kind {
                EventKind::Started { incarnation, .. } => incarnation,
                _ => 0,
            })
            .collect();
        assert_eq!(newest_three, [1030, 1032, 1034]);
    }
}

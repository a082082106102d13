//! The host's recent events, kept by the gateway for actors' pages: an
//! event that happened before a page was opened (the failure that made
//! someone open it) is still there to see.

use std::collections::VecDeque;

use tokio::sync::broadcast::error::RecvError;
use tokio::task::AbortHandle;

use crate::events::Event;
use crate::host::Host;
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
    /// Starts following `host`'s events. Must be called within a tokio
    /// runtime.
    pub fn follow(host: &Host) -> RecentEvents {
        let events = Arc::new(Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)));
        let mut receiver = host.events();
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

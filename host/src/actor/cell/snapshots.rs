//! The state a restart starts from: with `restore = "snapshot"`, the
//! cell takes the incarnation's `snapshot()` every `snapshot-every`
//! messages and/or every `snapshot-interval`, and a restarted incarnation
//! is `restore`d from the last one instead of `init`ed.
//!
//! The snapshot taken when an actor hibernates, or before a hot swap, is
//! the actor's latest state too, so it becomes the restart state as well;
//! while an actor sleeps its state is kept once, in its phase, not here.
//!
//! A durable actor that journals between snapshots (see
//! [`crate::actor::durable`]) restarts from its last snapshot *and* the
//! messages it handled since, replayed: its `tail`, the same entries as
//! its journal in the store. A new snapshot empties it.

use std::time::Instant;

use tracing::error;

use super::Cell;
use crate::actor::durable::Handled;
use crate::actor::host_api::Snapshot;
use crate::actor::incarnation::Incarnation;
use crate::actor::{ActorPolicy, Failure, RestartFrom};

/// The last snapshot and what counts towards the next one.
pub(super) struct Snapshots {
    last: Option<Snapshot>,
    /// For a durable actor that journals: the messages handled after
    /// `last` (or after the state it sleeps with), in order.
    tail: Vec<Handled>,
    /// Messages handled since the last snapshot.
    since: u32,
    /// When the last snapshot was taken (or the cell started).
    at: Instant,
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots { last: None, tail: Vec::new(), since: 0, at: Instant::now() }
    }
}

impl Snapshots {
    /// The state a restart restores, if there is one.
    pub fn last(&self) -> Option<&Snapshot> {
        self.last.as_ref()
    }

    /// Keeps `state`, taken just now, as the state a restart restores, if
    /// the policy restores from snapshots: it contains every message
    /// handled so far.
    pub fn keep_for_restart(&mut self, policy: &ActorPolicy, state: Snapshot) {
        if policy.restore == RestartFrom::Snapshot {
            self.last = Some(state);
            self.tail.clear();
        }
    }

    /// Puts back the state an actor slept with as the restart state; the
    /// messages handled after it, if any, still follow it.
    pub fn put_back(&mut self, policy: &ActorPolicy, state: Snapshot) {
        if policy.restore == RestartFrom::Snapshot {
            self.last = Some(state);
        }
    }

    /// Forgets the restart state: while the actor sleeps, its phase holds
    /// the one copy (and the tail stays here, following it).
    pub fn forget(&mut self) {
        self.last = None;
    }

    /// The messages handled after the restart state, to replay on it.
    pub fn tail(&self) -> &[Handled] {
        &self.tail
    }

    /// Adds a message handled after the restart state; returns its number
    /// in the journal (from 1).
    pub fn journaled(&mut self, handled: Handled) -> u32 {
        self.tail.push(handled);
        self.tail.len() as u32
    }

    /// Starts the tail over from `replay` (what a recovery read).
    pub fn set_tail(&mut self, replay: Vec<Handled>) {
        self.tail = replay;
    }

    /// Counts one message towards the next snapshot, for a durable actor
    /// that journals: is a snapshot due now (or `forced`)? Either way, the
    /// count starts again.
    pub fn snapshot_due(&mut self, policy: &ActorPolicy, forced: bool) -> bool {
        let due = self.due(policy, 1) || forced;
        if due {
            self.since = 0;
            self.at = Instant::now();
        }
        due
    }

    /// Takes the tail out to replay it; [`Snapshots::set_tail`] puts it back.
    pub fn take_tail(&mut self) -> Vec<Handled> {
        std::mem::take(&mut self.tail)
    }

    /// How many more messages may be handled before a snapshot every
    /// `every` messages is due.
    pub fn until_due(&self, every: u32) -> usize {
        every.max(1).saturating_sub(self.since) as usize
    }

    /// Counts `handled` messages and says whether a snapshot is due now.
    fn due(&mut self, policy: &ActorPolicy, handled: usize) -> bool {
        self.since = self.since.saturating_add(handled as u32);
        let by_count = match (policy.snapshot_every, policy.snapshot_interval) {
            (Some(n), _) => self.since >= n.max(1),
            (None, None) => true,
            (None, Some(_)) => false,
        };
        // With no snapshot yet, one is overdue.
        let by_time = policy.snapshot_interval.is_some_and(|i| self.last.is_none() || self.at.elapsed() >= i);
        if by_count || by_time {
            self.since = 0;
            self.at = Instant::now();
        }
        by_count || by_time
    }
}

impl Cell {
    /// Takes a snapshot after `handled` messages if the restore policy
    /// wants one now. `Err` means `snapshot` failed, and the incarnation
    /// with it.
    pub(super) async fn snapshot_if_due(&mut self, inc: &mut Incarnation, handled: usize) -> Result<(), Failure> {
        if self.spec.policy.restore != RestartFrom::Snapshot || !inc.persistent() {
            return Ok(());
        }
        if !self.snapshots.due(&self.spec.policy, handled) {
            return Ok(());
        }
        match inc.snapshot(&self.me).await {
            Ok(state) => {
                self.snapshots.last = state;
                Ok(())
            }
            Err(mut failure) => {
                failure.detail = format!("in `snapshot`: {}", failure.detail);
                error!(kind = %failure.kind, detail = %failure.detail, "snapshot failed");
                Err(failure)
            }
        }
    }
}

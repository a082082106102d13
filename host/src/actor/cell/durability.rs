//! A durable actor's side of the journal protocol (see
//! [`crate::actor::durable`]): which tells its state contains (the
//! watermark), and the commit after each message that an ask's reply
//! waits for.
//!
//! A commit the store refuses (a full disk, an I/O error) fails the
//! acknowledgement, not the actor: the asker hears `not-durable`, the
//! actor goes on from its state in memory, and its next commit that
//! succeeds makes that state durable, with the watermark that goes with
//! it. State and watermark always commit together, so a crash in between
//! leaves a state and exactly the tells it has not seen yet.
//!
//! A tell that fails is tried again by the next incarnation, first, until
//! it has failed [`POISON_ATTEMPTS`] times in a row; then it is moved to
//! the actor's dead letters, committed, so that neither the actor nor its
//! recovery wedges on it.

use tokio::sync::oneshot;
use tracing::{debug, error};

use super::Cell;
use crate::actor::courier::{Courier, Parcel};
use crate::actor::data::{Effects, Told};
use crate::actor::durable::{Checkpoint, DeadLetter, Handled, JournalError, Origin, Outbox, Outgoing, POISON_ATTEMPTS};
use crate::actor::incarnation::Incarnation;
use crate::actor::timers::now_ms;
use crate::actor::{Failure, FailureKind, Snapshot};
use crate::events::EventKind;
use crate::message::{Address, CallError, Envelope, Reply, WireMessage};
use crate::protocol::Call;

/// What the cell of a durable actor keeps for its commits.
#[derive(Default)]
pub(super) struct DurableCell {
    /// The number of the last tell it took from its mailbox: its state
    /// contains every tell up to it.
    pub watermark: u64,
    /// Its state in memory may differ from its committed one (a commit
    /// failed since).
    pub unsaved: bool,
    /// For an actor that journals: the code generation of its committed
    /// snapshot while the store holds exactly its restart state (that
    /// snapshot, then the snapshots' tail), so that the next message may be
    /// appended to the journal; `None` (or another generation, after a
    /// swap): the next commit must be a snapshot.
    pub journal_base: Option<u32>,
    /// The origin of the last effect (tell or spawn) it made.
    pub last_sent: Option<Origin>,
    /// Tells made by messages whose commit has not succeeded yet; they go
    /// with the next commit.
    pub unsent: Vec<Parcel>,
    /// Once it made tells: the task delivering them.
    pub courier: Option<Courier>,
    /// The number of the tell that failed last, and how many times in a
    /// row (0: none).
    pub failing: (u64, u32),
    /// The size of the journal entries committed since the last snapshot.
    pub journal_bytes: u64,
    /// The place in the journal of its newest committed snapshot.
    pub snapshot_position: u64,
    /// The number of the last journal entry it wrote (or tried to): the
    /// next gets the next, and a snapshot contains them all.
    pub journal_written: u64,
}

impl DurableCell {
    /// A checkpoint of `state` at the end of the journal, after the newest
    /// snapshot, which the store keeps beside it.
    fn checkpoint(&self, state: Snapshot, watermark: u64, outbox: Outbox) -> Checkpoint {
        Checkpoint { state, watermark, outbox, position: self.journal_written, previous: self.snapshot_position }
    }
}

impl Cell {
    /// What this durable actor keeps for its commits (made on first use
    /// if the actor was not created durable, which the host never does).
    pub(super) fn durable(&mut self) -> &mut DurableCell {
        self.durable.get_or_insert_with(Box::default)
    }

    /// The number of the last tell the state contains (0 for an actor in
    /// memory).
    pub(super) fn watermark(&self) -> u64 {
        self.durable.as_ref().map_or(0, |d| d.watermark)
    }

    /// Notes that a tell left the mailbox (to be handled, or refused): for
    /// a durable actor, its number is the new watermark.
    pub(super) fn took_tell(&mut self) {
        if let Some(seq) = self.me.take_tell_number() {
            self.durable().watermark = seq;
        }
    }

    /// Commits what a message did, then releases its reply: the state
    /// after it, or, for an actor that journals and whose snapshot is not
    /// due, the message and what its host calls returned (`call`, `from`).
    /// `Err` means `snapshot` failed, and the incarnation with it.
    pub(super) async fn commit_then_reply(
        &mut self,
        inc: &mut Incarnation,
        reply: Option<(oneshot::Sender<Reply>, Reply)>,
        call: &Call,
        from: Option<&Address>,
    ) -> Result<(), Failure> {
        let recorded = inc.take_recorded();
        if let Some(effects) = inc.take_effects() {
            self.stamp(effects);
        }
        if self.spec.policy.journals() {
            let (generation, limit) = (self.generation, self.spec.policy.journal_bytes_limit());
            let durable = self.durable();
            let forced = durable.journal_base != Some(generation) || durable.journal_bytes >= limit;
            if !self.snapshots.snapshot_due(&self.spec.policy, forced) {
                let message = WireMessage {
                    to: self.address().clone(),
                    from: from.cloned(),
                    message: self.me.wave(call),
                    ask: reply.is_some(),
                    waiting: Vec::new(),
                };
                let watermark = self.watermark();
                self.append_then_reply(Handled { message, watermark, recorded }, reply).await;
                return Ok(());
            }
        }
        self.snapshot_then_reply(inc, reply).await
    }

    /// Adds the tells a message made to those waiting for a commit.
    fn stamp(&mut self, effects: Effects) {
        self.durable().last_sent = effects.last();
        for (told, origin) in effects.tells {
            let (to, text, live) = match told {
                Told::Here(target, call) => (target.address().clone(), target.wave(&call), Some((target, call))),
                // Looked up by the courier: on another host.
                Told::Elsewhere { to, message } => (Address::from(to), message, None),
            };
            let message =
                WireMessage { to, from: Some(self.address().clone()), message: text, ask: false, waiting: Vec::new() };
            self.durable().unsent.push(Parcel { live, outgoing: Outgoing { origin, message } });
        }
    }

    /// The tells waiting for a commit and the origin of the last effect,
    /// as the outbox stores them.
    pub(super) fn outbox(&self) -> Outbox {
        match &self.durable {
            Some(d) => {
                Outbox { tells: d.unsent.iter().map(|parcel| parcel.outgoing.clone()).collect(), last: d.last_sent }
            }
            None => Outbox::default(),
        }
    }

    /// The commit succeeded: the tells that waited for it go to the
    /// courier.
    pub(super) fn dispatch(&mut self) {
        let Some(journal) = self.me.journal().cloned() else { return };
        let (address, system) = (self.me.address().clone(), self.system.clone());
        let durable = self.durable();
        if durable.unsent.is_empty() {
            return;
        }
        let parcels = std::mem::take(&mut durable.unsent);
        let courier = durable.courier.get_or_insert_with(|| Courier::start(address, journal, system, Vec::new()));
        courier.send(parcels);
    }

    /// What follows a commit of the state up to tell `watermark` (a
    /// snapshot at `snapshot`, its place in the journal, or a journal
    /// entry): once durable, the tells that waited for it leave and the
    /// reply is released; if the store refused it, the actor is marked
    /// unsaved (its next commit is a snapshot) and the asker hears
    /// `not-durable`.
    fn after_commit(
        &mut self,
        committed: Result<(), JournalError>,
        watermark: u64,
        snapshot: Option<u64>,
        reply: Option<(oneshot::Sender<Reply>, Reply)>,
    ) {
        let generation = self.generation;
        match &committed {
            Ok(()) => {
                if let Some(position) = snapshot {
                    let durable = self.durable();
                    durable.unsaved = false;
                    durable.journal_base = Some(generation);
                    durable.journal_bytes = 0;
                    durable.snapshot_position = position;
                }
                self.me.set_committed(watermark);
                self.dispatch();
            }
            Err(e) => {
                let durable = self.durable();
                durable.unsaved = true;
                durable.journal_base = None;
                error!(error = %e, "commit failed: the actor's state is ahead of its store");
                self.me.set_unsaved(e);
            }
        }
        if let Some((reply, value)) = reply {
            let _ = reply.send(match committed {
                Ok(()) => value,
                Err(e) => Err(self.me.not_durable(e)),
            });
        }
    }

    /// For a durable actor that journals, with messages journaled since
    /// its last snapshot: commits `state` (its state now) as a snapshot,
    /// so that recovery replays nothing. Taken when it hibernates and when
    /// it stops; a failure leaves the journal to replay, as after a crash.
    pub(super) async fn snapshot_journal(&mut self, state: &Snapshot) {
        let generation = self.generation;
        let Some(durable) = &self.durable else { return };
        if !self.spec.policy.journals()
            || (durable.journal_base == Some(generation) && self.snapshots.tail().is_empty())
        {
            return;
        }
        let Some(journal) = self.me.journal().cloned() else { return };
        let watermark = self.watermark();
        let outbox = self.outbox();
        let checkpoint = self.durable().checkpoint(state.clone(), watermark, outbox);
        let position = checkpoint.position;
        let committed = journal.checkpoint(self.address(), checkpoint).await;
        if committed.is_ok() {
            self.snapshots.set_tail(Vec::new());
        }
        self.after_commit(committed, watermark, Some(position), None);
    }

    /// Appends `handled` to the journal, then releases the reply.
    async fn append_then_reply(&mut self, handled: Handled, reply: Option<(oneshot::Sender<Reply>, Reply)>) {
        let watermark = handled.watermark;
        let index = self.snapshots.journaled(handled);
        let durable = self.durable();
        durable.journal_written += 1;
        let number = durable.journal_written;
        let appended = match self.me.journal() {
            Some(journal) => {
                let outbox = self.outbox();
                let handled = &self.snapshots.tail()[index as usize - 1];
                let size = handled.size();
                let appended = journal.append(self.address(), number, handled, &outbox).await;
                self.durable().journal_bytes += size;
                appended
            }
            None => Ok(()),
        };
        self.after_commit(appended, watermark, None, reply);
    }

    /// Replays the messages handled after the restart state, on `inc`
    /// just restored from it (see [`crate::actor::durable`]).
    pub(super) async fn replay_tail(&mut self, inc: &mut Incarnation) -> Result<(), Failure> {
        let tail = self.snapshots.take_tail();
        let count = tail.len();
        let mut replayed = Ok(());
        for (index, handled) in tail.iter().enumerate() {
            let entry = || format!("replaying message {} of {count} from the journal", index + 1);
            let call = match self.me.parse(&handled.message.message) {
                Ok(call) => call,
                Err(e) => {
                    replayed = Err(Failure::new(FailureKind::HostCall, format!("{}: {e}", entry())));
                    break;
                }
            };
            if let Err(mut failure) = inc.replay(&self.me, &call, handled.recorded.clone()).await {
                failure.detail = format!("{}: {}", entry(), failure.detail);
                replayed = Err(failure);
                break;
            }
        }
        self.snapshots.set_tail(tail);
        if replayed.is_ok() && count > 0 {
            debug!(messages = count, "replayed the journal");
            self.system.events().publish(self.address(), EventKind::Replayed { messages: count as u64 });
        }
        replayed
    }

    /// Commits the state after a message, then releases its reply.
    async fn snapshot_then_reply(
        &mut self,
        inc: &mut Incarnation,
        reply: Option<(oneshot::Sender<Reply>, Reply)>,
    ) -> Result<(), Failure> {
        let state = match inc.snapshot(&self.me).await {
            Ok(Some(state)) => state,
            // Durable actors are spawned only if they export `persistence`.
            Ok(None) => {
                let failure = Failure::new(FailureKind::HostCall, "a durable actor without `snapshot`".to_string());
                return Err(self.reply_failed(reply, failure));
            }
            Err(mut failure) => {
                failure.detail = format!("in `snapshot`: {}", failure.detail);
                error!(kind = %failure.kind, detail = %failure.detail, "snapshot failed");
                return Err(self.reply_failed(reply, failure));
            }
        };
        let watermark = self.watermark();
        // A message that changed nothing (a read) has nothing to commit.
        let durable = self.durable();
        let unchanged = !durable.unsaved
            && durable.unsent.is_empty()
            && self.me.committed_seq() == Some(watermark)
            && self.snapshots.last().is_some_and(|last| last.version == state.version && last.bytes == state.bytes);
        match self.me.journal().cloned() {
            Some(journal) if !unchanged => {
                self.snapshots.keep_for_restart(&self.spec.policy, state.clone());
                let outbox = self.outbox();
                let checkpoint = self.durable().checkpoint(state, watermark, outbox);
                let position = checkpoint.position;
                let committed = journal.checkpoint(self.address(), checkpoint).await;
                self.after_commit(committed, watermark, Some(position), reply);
            }
            _ => self.after_commit(Ok(()), watermark, None, reply),
        }
        Ok(())
    }

    /// A tell to this durable actor failed (its incarnation with it): put
    /// back first in the mailbox for the next incarnation, or, at the last
    /// attempt, moved to its dead letters.
    pub(super) async fn durable_tell_failed(&mut self, call: Call, from: Option<Address>, failure: &Failure) {
        let seq = self.watermark();
        let failing = &mut self.durable().failing;
        let attempts = if failing.0 == seq { failing.1 + 1 } else { 1 };
        if attempts < POISON_ATTEMPTS {
            *failing = (seq, attempts);
            self.inbox.mailbox.put_back(std::iter::once(Envelope::tell(call, from)));
            self.me.untake_tell(seq);
            return;
        }
        *failing = (0, 0);
        let Some(journal) = self.me.journal() else { return };
        let message = WireMessage {
            to: self.address().clone(),
            from,
            message: self.me.wave(&call),
            ask: false,
            waiting: Vec::new(),
        };
        let letter = DeadLetter { seq, message, error: failure.to_string(), attempts, at_ms: now_ms() };
        match journal.dead_letter(self.address(), letter).await {
            Ok(()) => error!(seq, attempts, "a tell failed {attempts} times in a row: moved to the dead letters"),
            Err(e) => error!(seq, error = %e, "a poison tell could not be moved to the dead letters"),
        }
    }

    /// The state after a message could not be taken: the asker learns it
    /// as the failure of its message. Returns the failure.
    fn reply_failed(&self, reply: Option<(oneshot::Sender<Reply>, Reply)>, failure: Failure) -> Failure {
        if let Some((reply, _)) = reply {
            let _ =
                reply.send(Err(CallError::ActorFailed { address: self.address().clone(), failure: failure.clone() }));
        }
        failure
    }
}

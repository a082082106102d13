//! The courier of a durable actor: delivers the tells in its committed
//! outbox (see [`crate::actor::durable`]), in the order they were made, at
//! least once, and deletes each batch from the store once delivered.
//!
//! A courier is a task of its own, started with the actor's first outbox
//! (or with what recovery found in it), so that the actor goes on with its
//! next message while its tells are on their way, and so that waiting on
//! a receiver never holds the sender's instance. Deliveries wait until
//! every durable actor is recovered: a recovered outbox may tell actors
//! that are not back yet.
//!
//! A receiver on another host of a cluster is reached through
//! [`RemoteActors`], with the tell's origin; one that cannot be reached
//! (its host does not answer) is tried again, since the tell may or may
//! not have arrived. A receiver that cannot take a tell now (its mailbox
//! is full, its store refused the write) gets it again after a backoff; one that is gone
//! (stopped, not restarted) is looked up again a few times, then the tell
//! becomes a dead letter. A durable receiver acknowledges and drops a tell
//! whose origin it took already: what makes redelivery after a crash safe.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{Instrument, error, info_span, warn};

use super::durable::{Journal, Outgoing};
use super::remote::RemoteActors;
use super::{ActorRef, ActorSystem};
use crate::message::{Address, CallError, DeadLetterReason};
use crate::protocol::Call;

/// A tell on its way: the committed entry, and, for one made by this
/// incarnation of the host, its receiver and checked call.
pub(crate) struct Parcel {
    /// The receiver and the call, when known; else looked up and parsed.
    pub live: Option<(ActorRef, Call)>,
    /// The outbox entry.
    pub outgoing: Outgoing,
}

/// The sending side of a durable actor's courier.
pub(crate) struct Courier {
    parcels: mpsc::UnboundedSender<Vec<Parcel>>,
    /// Batches handed over and not yet deleted from the outbox.
    pending: Arc<AtomicUsize>,
}

/// The first wait before a tell is tried again.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How many times a receiver that is gone is looked up again before the
/// tell becomes a dead letter.
const GONE_ATTEMPTS: u32 = 8;

impl Courier {
    /// Starts the courier of the actor at `sender`, with `recovered` (the
    /// outbox a crash left) first in line.
    pub fn start(
        sender: Address,
        journal: Arc<dyn Journal>,
        system: Arc<dyn ActorSystem>,
        recovered: Vec<Outgoing>,
    ) -> Courier {
        let (parcels, queue) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let span = info_span!(parent: None, "courier", actor = %sender);
        tokio::spawn(run(sender, journal, system, queue, pending.clone()).instrument(span));
        let courier = Courier { parcels, pending };
        courier.send(recovered.into_iter().map(|outgoing| Parcel { live: None, outgoing }).collect());
        courier
    }

    /// Hands over the tells of one commit, to deliver after those before.
    pub fn send(&self, parcels: Vec<Parcel>) {
        if !parcels.is_empty() {
            self.pending.fetch_add(1, Ordering::AcqRel);
            // The task ends only once this side is dropped.
            let _ = self.parcels.send(parcels);
        }
    }

    /// Has it delivered (and deleted from the outbox) every tell handed
    /// over?
    pub fn is_idle(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }
}

async fn run(
    sender: Address,
    journal: Arc<dyn Journal>,
    system: Arc<dyn ActorSystem>,
    mut queue: mpsc::UnboundedReceiver<Vec<Parcel>>,
    pending: Arc<AtomicUsize>,
) {
    system.recovered().await;
    while let Some(parcels) = queue.recv().await {
        let Some(last) = parcels.last().map(|p| p.outgoing.origin) else { continue };
        for parcel in parcels {
            deliver(&sender, system.as_ref(), parcel).await;
        }
        if let Err(e) = journal.sent(&sender, last).await {
            // Left in the store: delivered again after a restart, and
            // dropped by durable receivers as taken already.
            warn!(error = %e, "delivered tells could not be deleted from the outbox");
        }
        pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Delivers one tell, trying again while the receiver cannot take it.
async fn deliver(sender: &Address, system: &dyn ActorSystem, parcel: Parcel) {
    let Parcel { mut live, outgoing } = parcel;
    let to = &outgoing.message.to;
    let (mut backoff, mut gone) = (FIRST_BACKOFF, 0);
    loop {
        match try_once(sender, system, live.take(), &outgoing).await {
            Try::Delivered => return,
            Try::Again(known) => live = known,
            Try::Gone => {
                gone += 1;
                if gone >= GONE_ATTEMPTS {
                    error!(to = %to, "the receiver of a committed tell is gone: dead letter");
                    system.dead_letter(to, "?", DeadLetterReason::UnknownAddress);
                    return;
                }
            }
            Try::Refused(why) => {
                error!(to = %to, %why, "a committed tell was refused: dead letter");
                system.dead_letter(to, "?", DeadLetterReason::Failed);
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// What one try to deliver a tell came to.
enum Try {
    Delivered,
    /// The receiver cannot take it now: again later, to the same one if
    /// known.
    Again(Option<(ActorRef, Call)>),
    /// No receiver at its address (stopped, or not restarted yet).
    Gone,
    /// The receiver refused it for good, for this reason.
    Refused(String),
}

/// Tries once to deliver `outgoing`, to `live` if known, else to whoever
/// is at its address now.
async fn try_once(
    sender: &Address,
    system: &dyn ActorSystem,
    live: Option<(ActorRef, Call)>,
    outgoing: &Outgoing,
) -> Try {
    let (target, call) = match live {
        Some(known) => known,
        None => {
            let Some(target) = system.lookup(&outgoing.message.to) else {
                return match system.remote() {
                    Some(remote) => try_remote(sender, remote, outgoing).await,
                    None => Try::Gone,
                };
            };
            match target.parse(&outgoing.message.message) {
                Ok(call) => (target, call),
                Err(e) => return Try::Refused(format!("it no longer fits its receiver: {e}")),
            }
        }
    };
    let from = Some(sender.clone());
    let delivered = if target.is_durable() {
        target.send_from(call.clone(), from, Some(outgoing.origin)).await
    } else {
        target.tell(call.clone(), from)
    };
    match delivered {
        Ok(()) => Try::Delivered,
        Err(CallError::MailboxFull(_) | CallError::NotDurable { .. }) => Try::Again(Some((target, call))),
        // Stopped or restarted under a new reference: look it up again.
        Err(CallError::Stopped(_) | CallError::UnknownAddress(_)) => Try::Gone,
        Err(e) => Try::Refused(e.to_string()),
    }
}

/// Tries once to deliver `outgoing` to its receiver on another host of the
/// cluster, with its origin: a durable receiver drops it if it took it
/// already.
async fn try_remote(sender: &Address, remote: &dyn RemoteActors, outgoing: &Outgoing) -> Try {
    let message = &outgoing.message;
    match remote.tell(message.to.as_str(), &message.message, Some(sender), Some(outgoing.origin)).await {
        Ok(()) => Try::Delivered,
        Err(CallError::UnknownAddress(_)) => Try::Gone,
        // Whether it arrived is unknown: again, and dropped if it did.
        Err(
            CallError::MailboxFull(_)
            | CallError::NotDurable { .. }
            | CallError::Unreachable { .. }
            | CallError::Timeout(_),
        ) => Try::Again(None),
        Err(e) => Try::Refused(e.to_string()),
    }
}

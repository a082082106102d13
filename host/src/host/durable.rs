//! Starting durable actors: what a durable spawn needs (a store, the
//! `persistence` export, no directory grants), and the code, committed
//! state and acknowledged tells it starts from (see
//! [`crate::actor::durable`]).

use std::path::Path;
use std::sync::Arc;

use tracing::{info, warn};

use super::HostInner;
use super::{ROOT, TreeNode};
use crate::actor::ActorSystem;
use crate::actor::durable::Durability;
use crate::actor::durable::{DurableTimer, Journal};
use crate::actor::{ActorSpec, Committed, DurableStart, RestartFrom, SpawnError, SwappedCode};
use crate::message::{Address, CallError, DeadLetterReason, Envelope, WireMessage};
use crate::protocol::{Call, Hook};

/// What a durable actor starts from.
pub(super) struct DurableBoot {
    /// Its handle's journal and tell numbers.
    pub start: DurableStart,
    /// Its committed state.
    pub committed: Committed,
    /// The tells acknowledged and not yet handled, in order.
    pub pending: Vec<Envelope>,
    /// Its timers that had not fired, with the tells they make.
    pub timers: Vec<(DurableTimer, Call)>,
}

impl HostInner {
    /// Checks that `spec` can be durable, makes it restart from its
    /// committed state and run the code a hot swap left it running, and
    /// reads what it committed before.
    pub(super) fn durable_boot(&self, spec: &mut ActorSpec) -> Result<DurableBoot, SpawnError> {
        let address = spec.address.clone();
        let refuse = |reason: String| SpawnError::NotDurable { address: address.clone(), reason };
        let Some(journal) = &self.journal_for(address.as_str()) else {
            return Err(refuse(
                "this host has no store (run it with `troupe run`, or give `HostConfig` a journal)".into(),
            ));
        };
        self.swapped_code(journal.as_ref(), spec).map_err(refuse)?;
        let hooks = spec.component.protocol().hooks();
        if !(hooks.contains(&Hook::Snapshot) && hooks.contains(&Hook::Restore)) {
            return Err(refuse(format!(
                "`{}` does not export `troupe:actor/persistence` (`snapshot` and `restore`), through which a durable \
                 actor's state is committed; export it, or spawn the actor in memory",
                spec.component.name
            )));
        }
        if !spec.policy.grants.dirs.is_empty() {
            return Err(refuse(
                "a durable actor may not be granted directories: what it wrote there would not be part of its \
                 committed state; keep that data in its state, or spawn it in memory"
                    .into(),
            ));
        }
        spec.policy.restore = RestartFrom::Snapshot;
        let recovered = journal
            .recover(&spec.address)
            .map_err(|e| refuse(format!("its committed state could not be read: {e}")))?;
        // A tell that no longer fits the protocol (its code changed since)
        // is a dead letter.
        let protocol = spec.component.protocol();
        let max_bytes = spec.policy.limits.max_message_bytes;
        let parse = |message: &WireMessage, what: &str| match protocol.parse(&message.message, max_bytes) {
            Ok(call) => Some(call),
            Err(e) => {
                warn!(error = %e, "{what} no longer fits the actor's protocol");
                self.dead_letter(&spec.address, "?", DeadLetterReason::Failed);
                None
            }
        };
        let (mut queued, mut pending) = (Vec::new(), Vec::new());
        for (seq, message) in &recovered.pending {
            if let Some(call) = parse(message, "an acknowledged tell") {
                queued.push(*seq);
                pending.push(Envelope::tell(call, message.from.clone()));
            }
        }
        let next_seq = recovered.next_seq();
        let timers = recovered
            .timers
            .into_iter()
            .filter_map(|timer| parse(&timer.message, "a timer's tell").map(|call| (timer, call)))
            .collect();
        Ok(DurableBoot {
            start: DurableStart {
                journal: Arc::clone(journal) as Arc<dyn Journal>,
                next_seq,
                queued,
                committed: recovered.watermark,
                taken: recovered.taken,
            },
            committed: Committed {
                state: recovered.state,
                replay: recovered.replay,
                position: recovered.position,
                journal_end: recovered.journal_end,
                watermark: recovered.watermark,
                outbox: recovered.outbox,
                last_sent: recovered.last_sent,
            },
            pending,
            timers,
        })
    }

    /// Puts in `spec` the code a hot swap of its actor committed, if any
    /// and if `spec` still names the code that swap replaced (a manifest or
    /// spawn that names other code since wins).
    fn swapped_code(&self, journal: &dyn Journal, spec: &mut ActorSpec) -> Result<(), String> {
        let recorded = journal.code(&spec.address).map_err(|e| format!("its code could not be read: {e}"))?;
        let Some(code) = recorded.as_deref().and_then(SwappedCode::decode) else { return Ok(()) };
        let named = spec.component.hash.to_hex();
        if code.base != named.as_str() {
            if code.hash != named.as_str() {
                info!(swapped = %code.source, "the code it names changed since its last swap: starting that code");
            }
            return Ok(());
        }
        if code.hash == named.as_str() {
            return Ok(());
        }
        let component = self
            .catalog
            .load(&code.name, Path::new(&code.source), code.version.clone())
            .map_err(|e| format!("the code it was swapped to cannot be loaded: {e}; put it back, or stop it"))?;
        if component.hash.to_hex().as_str() != code.hash {
            warn!(path = %code.source, "the code it was swapped to changed on disk since: starting what is there now");
        }
        spec.component = component;
        Ok(())
    }
}

impl HostInner {
    /// Stops the actor or supervisor at `address` for good and waits; the
    /// durable actors at or under it, and the run-time supervisors
    /// recorded with them, are forgotten once stopped.
    pub(super) async fn stop_for_good(&self, address: &str) -> Result<(), CallError> {
        let recorded = self.recorded_under(address);
        let parent = self.tree.parent_of(address);
        if let Some(node) = self.tree.named(address) {
            match parent {
                Some(parent) => {
                    parent.stop_child(node.address()).await;
                }
                None => node.stop().await,
            }
        } else {
            let Some(actor) = self.registry.get(address) else {
                // A passivated key of a virtual component: only its state
                // is left to forget.
                return match self.forget_passivated_key(address) {
                    true => self.forget_durable(&[Address::from(address)]).await,
                    false => Err(CallError::UnknownAddress(address.into())),
                };
            };
            let stopped = match parent {
                Some(parent) => parent.stop_child(actor.address()).await,
                None => false,
            };
            if !stopped {
                actor.stop();
            }
            actor.stopped().await;
        }
        self.forget_durable(&recorded).await
    }

    /// Forgets the committed state of each of `recorded`, if the host has
    /// a store.
    async fn forget_durable(&self, recorded: &[Address]) -> Result<(), CallError> {
        for record in recorded {
            let Some(journal) = self.journal_for(record.as_str()) else { continue };
            journal.forget(record).await.map_err(|e| CallError::NotDurable {
                address: record.clone(),
                reason: format!("stopped, but its state stays: {e}"),
            })?;
        }
        Ok(())
    }

    /// The durable actors at `address` or under it, and, if there are
    /// any, the supervisors there (recorded with them): what stopping
    /// `address` for good forgets.
    fn recorded_under(&self, address: &str) -> Vec<Address> {
        fn walk(
            node: &TreeNode,
            address: &str,
            inside: bool,
            actors: &mut Vec<Address>,
            supervisors: &mut Vec<Address>,
        ) {
            let (here, nodes) = match node {
                TreeNode::Supervisor { info, nodes } => (&info.address, nodes),
                TreeNode::Actor { info, nodes, .. } => (&info.address, nodes),
            };
            let inside = inside || here.as_str() == address;
            if inside {
                match node {
                    TreeNode::Actor { info, .. } if info.durability == Durability::Durable => {
                        actors.push(info.address.clone())
                    }
                    TreeNode::Supervisor { info, .. } => supervisors.push(info.address.clone()),
                    TreeNode::Actor { .. } => {}
                }
            }
            for node in nodes {
                walk(node, address, inside, actors, supervisors);
            }
        }
        if self.journal.is_none() {
            return Vec::new();
        }
        let Some(tree) = self.tree.view(ROOT) else { return Vec::new() };
        let (mut actors, mut supervisors) = (Vec::new(), Vec::new());
        walk(&tree, address, false, &mut actors, &mut supervisors);
        if !actors.is_empty() {
            actors.append(&mut supervisors);
        }
        actors
    }
}

//! Hot swaps as the host runs them: checking the new code against the old
//! protocol and compiling it off the actor's path, then asking the actor to
//! swap between two messages; rolling swaps over every actor of a
//! template, one at a time, rolled back together at the first failure. The
//! actor's side (state transfer, probation, rollback) is in
//! `crate::actor`'s `cell/swap.rs`, which also commits a durable actor's
//! new code with its state.

use std::sync::Arc;
use std::time::Duration;

use super::Host;
use crate::actor::{ActorComponent, ActorRef, Snapshot, SwapError, SwapOptions, SwapReport};
use crate::protocol::Hook;

impl Host {
    /// Hot-swaps the code of the actor at `address` to `component`; see
    /// [`crate::actor::SwapReport`]. Waits for the probation window.
    ///
    /// # Errors
    ///
    /// A [`SwapError`]: unknown actor, incompatible protocol (unless
    /// forced), unloadable component, or the new code failed to start or
    /// during probation (then the old code is back).
    pub async fn swap(
        &self,
        address: &str,
        component: Arc<ActorComponent>,
        options: SwapOptions,
    ) -> Result<SwapReport, SwapError> {
        self.swap_one(address, component, options, false, None).await
    }

    /// Restores `state` into the actor at `address`: a new instance of its
    /// current code starts from it, between two messages. If `restore`
    /// refuses the state or traps, the actor keeps running as it was.
    ///
    /// # Errors
    ///
    /// [`SwapError::Start`] with the refusal; [`SwapError::UnknownTarget`].
    pub async fn restore(&self, address: &str, state: Snapshot) -> Result<SwapReport, SwapError> {
        let actor = self.inner.registry.get(address).ok_or_else(|| SwapError::UnknownTarget(address.to_string()))?;
        let options = SwapOptions { force: false, probation: Duration::ZERO };
        self.swap_one(address, actor.component(), options, false, Some(state)).await
    }

    async fn swap_one(
        &self,
        address: &str,
        component: Arc<ActorComponent>,
        options: SwapOptions,
        hold: bool,
        state: Option<Snapshot>,
    ) -> Result<SwapReport, SwapError> {
        let actor = self.inner.registry.get(address).ok_or_else(|| SwapError::UnknownTarget(address.to_string()))?;
        if component.imports_outgoing_http() && !actor.has_http_grant() {
            // As at spawn: code that sends HTTP requests needs the grant.
            let refusal = crate::actor::SpawnError::HttpNotGranted(actor.address().clone());
            let failure = crate::actor::Failure::new(crate::actor::FailureKind::Instantiate, refusal.to_string());
            return Err(SwapError::Start { address: actor.address().clone(), failure });
        }
        let old = actor.component();
        let diff = old.protocol().diff(component.protocol());
        if !diff.is_compatible() && !options.force {
            return Err(SwapError::Incompatible { address: actor.address().clone(), diff });
        }
        let hooks = component.protocol().hooks();
        if actor.is_durable() && !(hooks.contains(&Hook::Snapshot) && hooks.contains(&Hook::Restore)) {
            return Err(SwapError::NotDurable {
                address: actor.address().clone(),
                reason: format!(
                    "`{}` does not export `troupe:actor/persistence` (`snapshot` and `restore`), through which a \
                     durable actor's state is committed",
                    component.name
                ),
            });
        }
        // Compile and link for the actor's engine here, off its path.
        component.compiled(self.inner.catalog.loader(), actor.limits().engine_kind())?;
        actor.swap(component, options, hold, state).await
    }

    /// Swaps `target`: one actor, or every actor started from the template
    /// named `target` (a manifest entry, or a virtual component's active
    /// keys), one at a time. A rolling swap keeps every swapped actor's old
    /// code until all have passed probation (the first, the canary, for
    /// `canary` if given), stops at the first failure, and rolls back what
    /// it changed.
    ///
    /// # Errors
    ///
    /// As [`Host::swap`]; [`SwapError::RolledBack`] for a rolling swap that
    /// failed part-way.
    pub async fn swap_target(
        &self,
        target: &str,
        component: Arc<ActorComponent>,
        options: SwapOptions,
        canary: Option<Duration>,
    ) -> Result<Vec<SwapReport>, SwapError> {
        if self.inner.registry.get(target).is_some() {
            return Ok(vec![self.swap(target, component, options).await?]);
        }
        let held = self.swap_held(target, component, options, canary).await?;
        Ok(self.commit_swap(held))
    }

    /// [`Host::swap_target`]'s first half: swaps `target` and holds every
    /// swapped actor's old code, for [`Host::commit_swap`] or
    /// [`HeldSwap::roll_back`] to settle (a swap across the hosts of a
    /// cluster holds each host's until every host's passed). A virtual
    /// component with no active key here holds nothing, and its next
    /// activations start from the new code once committed.
    ///
    /// # Errors
    ///
    /// As [`Host::swap_target`]; what it swapped before a failure is rolled
    /// back already.
    pub async fn swap_held(
        &self,
        target: &str,
        component: Arc<ActorComponent>,
        options: SwapOptions,
        canary: Option<Duration>,
    ) -> Result<HeldSwap, SwapError> {
        if !self.is_swap_target(target) {
            return Err(SwapError::UnknownTarget(target.to_string()));
        }
        let group: Vec<ActorRef> = match self.inner.registry.get(target) {
            Some(actor) => vec![actor],
            None => self.inner.registry.all().into_iter().filter(|a| a.group() == Some(target)).collect(),
        };
        let mut held = HeldSwap { target: target.to_string(), component, swapped: Vec::new(), reports: Vec::new() };
        for (i, actor) in group.iter().enumerate() {
            let probation = match canary {
                Some(c) if i == 0 => c,
                _ => options.probation,
            };
            let options = SwapOptions { probation, ..options };
            let swapped = self.swap_one(actor.address().as_str(), held.component.clone(), options, true, None).await;
            match swapped {
                Ok(report) => {
                    held.swapped.push(actor.clone());
                    held.reports.push(report);
                }
                // A swap of one actor fails with that actor's error, as
                // `Host::swap` does: there is nothing to roll back.
                Err(cause) if group.len() == 1 => return Err(cause),
                Err(cause) => {
                    let rolled_back = held.swapped.len();
                    held.roll_back().await;
                    return Err(SwapError::RolledBack {
                        at: actor.address().clone(),
                        rolled_back,
                        cause: Box::new(cause),
                    });
                }
            }
        }
        Ok(held)
    }

    /// Whether a swap of `target` has something to change here: an actor
    /// of that address, actors of that group, or a template or virtual
    /// component of that name (whose later actors get the new code).
    pub fn is_swap_target(&self, target: &str) -> bool {
        self.inner.registry.get(target).is_some()
            || self.template(target).is_some()
            || self.is_virtual_component(target)
            || self.inner.registry.all().iter().any(|a| a.group() == Some(target))
    }

    /// Settles `held` for good: the swapped actors drop their old code, and
    /// the actors started from the template later (or spawned by guests,
    /// or activated as keys of the virtual component) run the new code
    /// too. Its reports.
    pub fn commit_swap(&self, held: HeldSwap) -> Vec<SwapReport> {
        for actor in &held.swapped {
            actor.commit_swap();
        }
        if let Some(mut template) = self.template(&held.target) {
            template.component = held.component.clone();
            self.define(&held.target, template);
        }
        self.inner.redefine_virtual(&held.target, held.component);
        held.reports
    }
}

/// A swap whose actors passed and hold their old code until it is
/// committed ([`Host::commit_swap`]) or rolled back.
pub struct HeldSwap {
    target: String,
    component: Arc<ActorComponent>,
    swapped: Vec<ActorRef>,
    reports: Vec<SwapReport>,
}

impl HeldSwap {
    /// How many actors it swapped.
    pub fn swapped(&self) -> usize {
        self.swapped.len()
    }

    /// The reports of the actors it swapped.
    pub fn reports(&self) -> &[SwapReport] {
        &self.reports
    }

    /// Reinstates the old code of every actor it swapped, with its state
    /// from the start of the swap, the last swapped first.
    pub async fn roll_back(self) {
        for actor in self.swapped.iter().rev() {
            actor.roll_back_swap().await;
        }
    }
}

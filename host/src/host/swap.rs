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
    /// named `target`, one at a time. A rolling swap keeps every swapped
    /// actor's old code until all have passed probation (the first, the
    /// canary, for `canary` if given), stops at the first failure, and
    /// rolls back what it changed.
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
        let group: Vec<ActorRef> =
            self.inner.registry.all().into_iter().filter(|a| a.group() == Some(target)).collect();
        if group.is_empty() {
            return Err(SwapError::UnknownTarget(target.to_string()));
        }
        let mut swapped: Vec<&ActorRef> = Vec::new();
        let mut reports = Vec::new();
        for (i, actor) in group.iter().enumerate() {
            let probation = match canary {
                Some(c) if i == 0 => c,
                _ => options.probation,
            };
            let options = SwapOptions { probation, ..options };
            match self.swap_one(actor.address().as_str(), component.clone(), options, true, None).await {
                Ok(report) => {
                    swapped.push(actor);
                    reports.push(report);
                }
                Err(cause) => {
                    for done in swapped.iter().rev() {
                        done.roll_back_swap().await;
                    }
                    return Err(SwapError::RolledBack {
                        at: actor.address().clone(),
                        rolled_back: swapped.len(),
                        cause: Box::new(cause),
                    });
                }
            }
        }
        for actor in &swapped {
            actor.commit_swap();
        }
        // Actors started from the template later (or spawned by guests)
        // run the new code too.
        if let Some(mut template) = self.template(target) {
            template.component = component;
            self.define(target, template);
        }
        Ok(reports)
    }
}

//! The other hosts of a cluster, as the control plane sees them: the
//! [`Peers`] port, implemented by `crate::cluster`, through which
//! `troupe ps --cluster` and `troupe tree --cluster` show every host and
//! `troupe swap --cluster` swaps every host's actors in turn.

use std::sync::Arc;
use std::time::Duration;

use crate::actor::{ActorComponent, BoxFuture, SwapOptions};
use crate::error_code::{ErrorCode, HasErrorCode};

/// What the control plane asks every host of a cluster for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostView {
    /// Its actors, as the control protocol's `ps` gives them.
    Ps,
    /// Its supervision tree, as the control protocol's `tree` gives it.
    Tree,
}

impl HostView {
    /// The view's name, as requests carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostView::Ps => "ps",
            HostView::Tree => "tree",
        }
    }

    /// The view named `name`.
    pub fn parse(name: &str) -> Option<HostView> {
        [HostView::Ps, HostView::Tree].into_iter().find(|v| v.as_str() == name)
    }
}

/// What one host of a cluster answered: `{"node": .., "answer": {..}}` or
/// `{"node": .., "error": ".."}` in JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeView {
    /// The host's node name.
    pub node: String,
    /// Its answer.
    #[serde(flatten)]
    pub answer: NodeAnswer,
}

/// A host's answer.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeAnswer {
    /// The view, as the control protocol gives it for one host.
    Answer(serde_json::Value),
    /// Why it gave none.
    Error(String),
}

/// The hosts of the cluster this host joined.
pub trait Peers: Send + Sync + 'static {
    /// This host's node name.
    fn node(&self) -> &str;

    /// Every member's `view`, this host's included, by node name.
    fn gather(&self, view: HostView) -> BoxFuture<'_, Result<Vec<NodeView>, String>>;

    /// Swaps `swap.target` on every member, this host first, one host and
    /// one actor at a time; every host holds its old code until all have
    /// passed, and the first failure rolls back every host's. Each host's
    /// reports (`{"reports": [..]}`), by node name.
    fn swap(&self, swap: ClusterSwap) -> BoxFuture<'_, Result<Vec<NodeView>, ClusterSwapError>>;

    /// The component with content hash `code` (hex) from the cluster's
    /// shared code, loaded into this host as `name`: what a host without
    /// the file an actor was started from runs it with.
    fn fetch_code<'a>(&'a self, code: &'a str, name: &'a str) -> BoxFuture<'a, Result<Arc<ActorComponent>, String>>;
}

/// A hot swap of every host's actors of one target.
#[derive(Clone)]
pub struct ClusterSwap {
    /// An actor's address, a manifest entry or a virtual component.
    pub target: String,
    /// The new code.
    pub component: Arc<ActorComponent>,
    /// How each actor is swapped.
    pub options: SwapOptions,
    /// The probation of the first actor swapped in the cluster, if not
    /// `options.probation`.
    pub canary: Option<Duration>,
}

/// Why a swap across the cluster did not happen, or was undone.
#[derive(Debug, thiserror::Error)]
pub enum ClusterSwapError {
    /// No host has an actor, entry or virtual component of that name.
    #[error("no host of the cluster has an actor, manifest entry or virtual component named `{0}`")]
    UnknownTarget(String),
    /// A host failed to swap: every host's swapped actors are back on
    /// their old code.
    #[error(
        "the swap stopped on host `{node}` and rolled back {rolled_back} actor(s) on the hosts before it \
         (and that host's own): {reason}"
    )]
    RolledBack {
        /// The host that failed.
        node: String,
        /// The actors swapped on the hosts before it, rolled back.
        rolled_back: usize,
        /// The code of that host's error (`unreachable` if it did not
        /// answer).
        code: ErrorCode,
        /// What that host said.
        reason: String,
    },
    /// The cluster's members could not be listed, or the code shared.
    #[error("the cluster could not be asked: {0}")]
    Unreachable(String),
}

impl HasErrorCode for ClusterSwapError {
    fn code(&self) -> ErrorCode {
        match self {
            ClusterSwapError::UnknownTarget(_) => ErrorCode::UnknownAddress,
            // Refused before anything changed: the refusal's own code.
            ClusterSwapError::RolledBack { rolled_back: 0, code, .. } => *code,
            ClusterSwapError::RolledBack { .. } => ErrorCode::RolledBack,
            ClusterSwapError::Unreachable(_) => ErrorCode::Unreachable,
        }
    }
}

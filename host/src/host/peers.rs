//! The other hosts of a cluster, as the control plane sees them: the
//! [`Peers`] port, implemented by `crate::cluster`, through which
//! `troupe ps --cluster` lists every host's actors.

use crate::actor::BoxFuture;

/// What one host of a cluster answered: `{"node": .., "ps": {..}}` or
/// `{"node": .., "error": ".."}` in JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeActors {
    /// The host's node name.
    pub node: String,
    /// Its answer.
    #[serde(flatten)]
    pub answer: NodeAnswer,
}

/// A host's answer to `ps`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeAnswer {
    /// What the control protocol's `ps` gives: `actors`, `dead_letters`.
    Ps(serde_json::Value),
    /// Why it gave none.
    Error(String),
}

/// The hosts of the cluster this host joined.
pub trait Peers: Send + Sync + 'static {
    /// This host's node name.
    fn node(&self) -> &str;

    /// Every member's `ps` answer, this host's included, by node name.
    fn ps(&self) -> BoxFuture<'_, Result<Vec<NodeActors>, String>>;
}

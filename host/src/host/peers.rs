//! The other hosts of a cluster, as the control plane sees them: the
//! [`Peers`] port, implemented by `crate::cluster`, through which
//! `troupe ps --cluster` and `troupe tree --cluster` show every host.

use crate::actor::BoxFuture;

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
}

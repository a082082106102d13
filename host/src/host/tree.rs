//! The supervision tree, stored once: every supervisor with its ordered
//! children, and for every child the supervisor it sits under, behind one
//! lock.
//!
//! Supervisors are tasks (see [`super::supervisor`]) that make their
//! decisions one event at a time; what they decide about is here, where
//! `troupe tree`, quotas and the host's lookups read it too. Nobody keeps a
//! copy: a supervisor's task holds only its handle.

use std::collections::HashMap;

use serde::Serialize;

use super::children::Children;
use super::supervisor::SupervisorRef;
use crate::actor::{ActorInfo, ActorRef, Failure};
use crate::message::Address;
use crate::supervision::{BackoffState, RestartLog, RestartType, RootPolicy, Strategy};
use crate::sync::Mutex;

/// Every supervisor and child of a host.
#[derive(Default)]
pub(crate) struct Tree {
    state: Mutex<TreeState>,
}

/// What the tree's lock guards.
#[derive(Default)]
pub(crate) struct TreeState {
    /// Every live supervisor (the root, named ones, and those that actors
    /// own for their children, under their owner's address), by address.
    supervisors: HashMap<Address, Node>,
    /// The supervisor each child (actor or supervisor) sits under.
    parents: HashMap<Address, Address>,
}

/// Where a supervisor sits.
#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    /// The host's root supervisor.
    Root(RootPolicy),
    /// A named supervisor under another one.
    Named,
    /// The supervisor of an actor's children; the actor has the same address.
    Owned(ActorRef),
}

/// A supervisor's own state, as `troupe tree` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeStatus {
    /// Supervising.
    Running,
    /// It escalated and terminated its children; its own supervisor
    /// decides what next.
    Down,
    /// Stopped for good.
    Stopped,
}

/// One supervisor in the tree.
pub(crate) struct Node {
    pub handle: SupervisorRef,
    pub kind: NodeKind,
    pub status: NodeStatus,
    /// In start order.
    pub children: Children<Child>,
    /// Its recent restarts, against its intensity.
    pub log: RestartLog,
}

/// One child of a supervisor.
pub(crate) struct Child {
    pub child: ChildRef,
    pub restart: RestartType,
    pub backoff: BackoffState,
    /// Restarts by this supervisor.
    pub restarts: u64,
    /// The last failure this supervisor saw.
    pub last_failure: Option<Failure>,
    /// Has an incarnation (or, for a supervisor, is running).
    pub up: bool,
}

/// A child: an actor, or a supervisor.
#[derive(Debug, Clone)]
pub(crate) enum ChildRef {
    Actor(ActorRef),
    Supervisor(SupervisorRef),
}

impl ChildRef {
    fn kind(&self) -> &'static str {
        match self {
            ChildRef::Actor(_) => "actor",
            ChildRef::Supervisor(_) => "supervisor",
        }
    }
}

impl Child {
    /// A new child, up, never restarted.
    pub fn new(child: ChildRef, restart: RestartType) -> Self {
        Child { child, restart, backoff: BackoffState::default(), restarts: 0, last_failure: None, up: true }
    }
}

/// A supervisor's children as `troupe tree` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct ChildInfo {
    /// The child's address.
    pub address: Address,
    /// `actor` or `supervisor`.
    pub kind: &'static str,
    /// Its restart type.
    pub restart: RestartType,
    /// Restarts by this supervisor.
    pub restarts: u64,
    /// The last failure this supervisor saw.
    pub last_failure: Option<Failure>,
}

/// A supervisor's state as `troupe tree` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisorInfo {
    /// Its address.
    pub address: Address,
    /// Its strategy.
    pub strategy: Strategy,
    /// Restarts within the current intensity window.
    pub recent_restarts: usize,
    /// Restarts allowed within the window.
    pub intensity: u32,
    /// The window, in milliseconds.
    pub period_ms: u64,
    /// Running, down (escalated, waiting for its supervisor) or stopped.
    pub status: NodeStatus,
    /// Its children, in start order.
    pub children: Vec<ChildInfo>,
}

/// One node of `troupe tree`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum TreeNode {
    /// A supervisor and its children.
    Supervisor {
        /// The supervisor.
        #[serde(flatten)]
        info: SupervisorInfo,
        /// Its children as tree nodes.
        nodes: Vec<TreeNode>,
    },
    /// An actor, and the children it supervises.
    Actor {
        /// The actor.
        #[serde(flatten)]
        info: Box<ActorInfo>,
        /// Its restart type under its supervisor.
        restart: RestartType,
        /// Restarts by its supervisor.
        restarts_by_supervisor: u64,
        /// The children it supervises.
        nodes: Vec<TreeNode>,
    },
}

impl Tree {
    /// Runs `f` with the tree locked. Keep `f` short and never await in it.
    pub fn with<R>(&self, f: impl FnOnce(&mut TreeState) -> R) -> R {
        f(&mut self.state.lock())
    }

    /// The supervisor at `address` (an actor's address names the
    /// supervisor of its own children, if it has spawned any).
    pub fn supervisor(&self, address: &str) -> Option<SupervisorRef> {
        self.with(|t| t.supervisors.get(address).map(|n| n.handle.clone()))
    }

    /// The named supervisor (or the root) called `name`: not one an actor owns.
    pub fn named(&self, name: &str) -> Option<SupervisorRef> {
        self.with(|t| {
            t.supervisors.get(name).filter(|n| !matches!(n.kind, NodeKind::Owned(_))).map(|n| n.handle.clone())
        })
    }

    /// The supervisor `child` sits under.
    pub fn parent_of(&self, child: &str) -> Option<SupervisorRef> {
        self.with(|t| t.parents.get(child).and_then(|p| t.supervisors.get(p)).map(|n| n.handle.clone()))
    }

    /// The supervisor's state and children, if it exists.
    pub fn info(&self, address: &str) -> Option<SupervisorInfo> {
        self.with(|t| t.supervisors.get(address).map(|n| n.info()))
    }

    /// The whole tree from `root`, with each actor's current state.
    pub fn view(&self, root: &str) -> Option<TreeNode> {
        self.with(|t| t.view_of_supervisor(root))
    }
}

impl TreeState {
    /// The supervisor at `address`.
    pub fn node(&mut self, address: &str) -> Option<&mut Node> {
        self.supervisors.get_mut(address)
    }

    /// Adds a supervisor that is not a child of anyone (the root, or one an
    /// actor owns). False if the address is taken.
    pub fn add_supervisor(&mut self, node: Node) -> bool {
        let address = node.handle.address().clone();
        if self.supervisors.contains_key(&address) {
            return false;
        }
        self.supervisors.insert(address, node);
        true
    }

    /// Adds `child` last in `parent`'s start order. False if `parent` is
    /// gone.
    pub fn add_child(&mut self, parent: &str, address: Address, child: Child) -> bool {
        let Some(node) = self.supervisors.get_mut(parent) else { return false };
        // An address is registered until its old entry is removed, so it
        // cannot be here twice; if it were, the old entry goes.
        node.children.push(address.clone(), child);
        self.parents.insert(address, node.handle.address().clone());
        true
    }

    /// Removes `child` from `parent` (and the parent index), returning it.
    pub fn remove_child(&mut self, parent: &str, child: &str) -> Option<Child> {
        let removed = self.supervisors.get_mut(parent)?.children.remove(child)?;
        if self.parents.get(child).is_some_and(|p| p.as_str() == parent) {
            self.parents.remove(child);
        }
        Some(removed)
    }

    /// Removes the supervisor at `handle`'s address if it is still that
    /// supervisor (a new one may have taken the name since).
    pub fn remove_supervisor(&mut self, handle: &SupervisorRef) {
        if self.supervisors.get(handle.address()).is_some_and(|n| n.handle.same(handle)) {
            self.supervisors.remove(handle.address());
        }
    }

    /// Does any supervisor (not one an actor owns) use this address?
    pub fn names_a_supervisor(&self, address: &str) -> bool {
        self.supervisors.get(address).is_some_and(|n| !matches!(n.kind, NodeKind::Owned(_)))
    }

    /// The number of children of the supervisor at `address`.
    pub fn child_count(&self, address: &str) -> usize {
        self.supervisors.get(address).map_or(0, |n| n.children.len())
    }

    /// The first child of the supervisor at `address`.
    pub fn first_child(&self, address: &str) -> Option<&ChildRef> {
        self.supervisors.get(address)?.children.first().map(|(_, c)| &c.child)
    }

    fn view_of_supervisor(&self, address: &str) -> Option<TreeNode> {
        let node = self.supervisors.get(address)?;
        let nodes = node
            .children
            .iter()
            .filter_map(|(address, child)| match &child.child {
                ChildRef::Supervisor(_) => self.view_of_supervisor(address),
                ChildRef::Actor(actor) => Some(self.view_of_actor(actor, child)),
            })
            .collect();
        Some(TreeNode::Supervisor { info: node.info(), nodes })
    }

    fn view_of_actor(&self, actor: &ActorRef, child: &Child) -> TreeNode {
        let nodes = match self.supervisors.get(actor.address()) {
            Some(owned) => owned
                .children
                .iter()
                .filter_map(|(_, c)| match &c.child {
                    ChildRef::Actor(a) => Some(self.view_of_actor(a, c)),
                    ChildRef::Supervisor(_) => None,
                })
                .collect(),
            None => Vec::new(),
        };
        TreeNode::Actor {
            info: Box::new(actor.info()),
            restart: child.restart,
            restarts_by_supervisor: child.restarts,
            nodes,
        }
    }
}

impl Node {
    /// A supervisor with no children yet.
    pub fn new(handle: SupervisorRef, kind: NodeKind) -> Self {
        Node { handle, kind, status: NodeStatus::Running, children: Children::default(), log: RestartLog::default() }
    }

    /// Its state and children, as `troupe tree` shows them.
    pub fn info(&self) -> SupervisorInfo {
        let spec = self.handle.spec();
        SupervisorInfo {
            address: self.handle.address().clone(),
            strategy: spec.strategy,
            recent_restarts: self.log.len(),
            intensity: spec.intensity,
            period_ms: spec.period.as_millis() as u64,
            status: self.status,
            children: self
                .children
                .iter()
                .map(|(address, c)| ChildInfo {
                    address: address.clone(),
                    kind: c.child.kind(),
                    restart: c.restart,
                    restarts: c.restarts,
                    last_failure: c.last_failure.clone(),
                })
                .collect(),
        }
    }
}

//! How a new protocol differs from an old one, for hot swap: which
//! functions changed type, went missing or were added, and where each old
//! function is in the new protocol.

use std::fmt;

use serde::Serialize;

use super::{Function, Protocol};

/// How a new protocol differs from an old one, for hot swap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProtocolDiff {
    /// Functions whose signature changed: (old, new).
    pub changed: Vec<(String, String)>,
    /// Old functions the new protocol lacks.
    pub missing: Vec<String>,
    /// New functions (allowed).
    pub added: Vec<String>,
}

impl ProtocolDiff {
    /// Can the new protocol serve every message the old one accepted?
    pub fn is_compatible(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty()
    }
}

impl fmt::Display for ProtocolDiff {
    /// A unified-diff-like listing: `-` old, `+` new.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (old, new) in &self.changed {
            writeln!(f, "- {old}")?;
            writeln!(f, "+ {new}")?;
        }
        for old in &self.missing {
            writeln!(f, "- {old}    (missing)")?;
        }
        for new in &self.added {
            writeln!(f, "+ {new}    (added)")?;
        }
        Ok(())
    }
}

impl Protocol {
    /// How `new` differs from this protocol: changed signatures, missing
    /// and added functions. Functions match by interface (any version) and
    /// name; parameter names may change, types may not.
    pub fn diff(&self, new: &Protocol) -> ProtocolDiff {
        let mut diff = ProtocolDiff::default();
        let label = |f: &Function| match &f.interface {
            Some(iface) => format!("{iface}.{}", f.signature()),
            None => f.signature(),
        };
        for old in &self.functions {
            match new.functions.iter().find(|n| n.key() == old.key()) {
                Some(n) if n.same_type(old) => {}
                Some(n) => diff.changed.push((label(old), label(n))),
                None => diff.missing.push(label(old)),
            }
        }
        for n in &new.functions {
            if !self.functions.iter().any(|old| old.key() == n.key()) {
                diff.added.push(label(n));
            }
        }
        diff
    }

    /// For each function of this protocol, the index of the same function
    /// (same interface and name, same types) in `new`, if it has one.
    pub fn remap(&self, new: &Protocol) -> Vec<Option<u32>> {
        self.functions
            .iter()
            .map(|old| new.functions.iter().position(|n| n.key() == old.key() && n.same_type(old)).map(|i| i as u32))
            .collect()
    }
}

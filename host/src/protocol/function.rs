//! One function of a protocol: its interface, name and types, and whether
//! it can be called as a message.

use std::fmt::Write as _;

use serde::Serialize;
use wasmtime::component::Type;
use wasmtime::component::types::ComponentFunc;

use super::TypeDisplay;

/// One function of a protocol.
#[derive(Debug, Clone)]
pub struct Function {
    /// The exported interface it belongs to (`acme:counter/api@0.1.0`), or
    /// `None` for a function exported at the top level of the world.
    pub interface: Option<String>,
    /// The function's name (`incr`).
    pub name: String,
    /// Parameter names and types.
    pub params: Vec<(String, Type)>,
    /// The result type, if the function has one.
    pub result: Option<Type>,
    /// Why it cannot be called as a message, if it cannot.
    pub unsupported: Option<String>,
    /// Can an argument hold a record? Only then can a message name a
    /// field its type lacks, which parsing must look for.
    pub(super) takes_records: bool,
}

impl Function {
    /// The fully qualified name, `iface.func`, or `func` for top-level ones.
    pub fn qualified_name(&self) -> String {
        match &self.interface {
            Some(iface) => format!("{iface}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The signature in WIT-like syntax: `incr(by: u64) -> u64`.
    pub fn signature(&self) -> String {
        let mut s = format!("{}(", self.name);
        for (i, (name, ty)) in self.params.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{name}: {}", TypeDisplay(ty));
        }
        s.push(')');
        if let Some(result) = &self.result {
            let _ = write!(s, " -> {}", TypeDisplay(result));
        }
        s
    }

    /// The identity of the function across versions: its interface
    /// without version, and its name.
    pub(super) fn key(&self) -> (Option<&str>, &str) {
        let iface = self.interface.as_deref().map(|i| i.split('@').next().unwrap_or(i));
        (iface, &self.name)
    }

    /// Do the two functions take and return the same types?
    pub fn same_type(&self, other: &Function) -> bool {
        self.result == other.result
            && self.params.len() == other.params.len()
            && self.params.iter().zip(&other.params).all(|((_, a), (_, b))| a == b)
    }

    /// Does `query` (as written by a sender) name this function? Accepts
    /// `func`, `iface.func`, `ns:pkg/iface.func` and the same with a version.
    pub(super) fn answers_to(&self, qualifier: Option<&str>) -> bool {
        let (Some(q), Some(iface)) = (qualifier, &self.interface) else {
            return qualifier.is_none();
        };
        if iface == q {
            return true;
        }
        let unversioned = iface.split('@').next().unwrap_or(iface);
        let short = unversioned.rsplit('/').next().unwrap_or(unversioned);
        q == unversioned || q == short
    }

    pub(super) fn new(interface: Option<&str>, name: &str, func: &ComponentFunc) -> Self {
        let params: Vec<(String, Type)> = func.params().map(|(n, t)| (n.to_string(), t)).collect();
        let result = func.results().next();
        let unsupported = if func.async_() {
            Some("it is an async (WASIp3) function; troupe calls synchronous exports".to_string())
        } else if params.iter().map(|(_, t)| t).chain(result.iter()).any(has_handle) {
            Some("it passes a resource handle, which cannot leave its actor".to_string())
        } else {
            None
        };
        let takes_records = params.iter().any(|(_, ty)| super::explain::may_hold_record(ty));
        Function {
            interface: interface.map(str::to_string),
            name: name.to_string(),
            params,
            result,
            unsupported,
            takes_records,
        }
    }
}

/// Does a value of `ty` hold a handle (a resource, a stream, ...), which
/// cannot leave its actor?
fn has_handle(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) | Type::Stream(_) | Type::Future(_) | Type::ErrorContext => true,
        Type::List(l) => has_handle(&l.ty()),
        Type::FixedLengthList(l) => has_handle(&l.ty()),
        Type::Record(r) => r.fields().any(|f| has_handle(&f.ty)),
        Type::Tuple(t) => t.types().any(|t| has_handle(&t)),
        Type::Variant(v) => v.cases().any(|c| c.ty.as_ref().is_some_and(has_handle)),
        Type::Option(o) => has_handle(&o.ty()),
        Type::Result(r) => r.ok().as_ref().is_some_and(has_handle) || r.err().as_ref().is_some_and(has_handle),
        Type::Map(m) => has_handle(&m.key()) || has_handle(&m.value()),
        _ => false,
    }
}

/// A protocol function as shown by `troupe ps --json` and the control API.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionInfo {
    /// Qualified name.
    pub name: String,
    /// Signature.
    pub signature: String,
}

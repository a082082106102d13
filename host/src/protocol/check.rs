//! Type checking of values built by the library API rather than parsed
//! from text, and what a size limit on messages counts.

use wasmtime::component::{Type, Val};

use super::{MessageError, Protocol, TypeDisplay};

impl Protocol {
    /// typed values rather than text, e.g. by the library API).
    ///
    /// # Errors
    ///
    /// [`MessageError::IllTyped`] naming the first argument that does not fit.
    pub fn check(&self, func: u32, args: &[Val]) -> Result<(), MessageError> {
        let f = self.function(func);
        let ill = |reason: String| MessageError::IllTyped { signature: f.signature(), reason };
        if args.len() != f.params.len() {
            return Err(ill(format!("expected {} argument(s), got {}", f.params.len(), args.len())));
        }
        for ((name, ty), val) in f.params.iter().zip(args) {
            if !val_has_type(val, ty) {
                return Err(ill(format!("argument `{name}` is not a {}", TypeDisplay(ty))));
            }
        }
        Ok(())
    }
}

/// Does `val` have type `ty`? Structural, for values built by the library
/// API rather than parsed from text.
pub fn val_has_type(val: &Val, ty: &Type) -> bool {
    match (val, ty) {
        (Val::Bool(_), Type::Bool)
        | (Val::S8(_), Type::S8)
        | (Val::U8(_), Type::U8)
        | (Val::S16(_), Type::S16)
        | (Val::U16(_), Type::U16)
        | (Val::S32(_), Type::S32)
        | (Val::U32(_), Type::U32)
        | (Val::S64(_), Type::S64)
        | (Val::U64(_), Type::U64)
        | (Val::Float32(_), Type::Float32)
        | (Val::Float64(_), Type::Float64)
        | (Val::Char(_), Type::Char)
        | (Val::String(_), Type::String) => true,
        (Val::List(items), Type::List(l)) => {
            let elem = l.ty();
            items.iter().all(|v| val_has_type(v, &elem))
        }
        (Val::Record(fields), Type::Record(r)) => {
            fields.len() == r.fields().len()
                && fields.iter().zip(r.fields()).all(|((n, v), f)| n == f.name && val_has_type(v, &f.ty))
        }
        (Val::Tuple(items), Type::Tuple(t)) => {
            items.len() == t.types().len() && items.iter().zip(t.types()).all(|(v, ty)| val_has_type(v, &ty))
        }
        (Val::Variant(case, payload), Type::Variant(v)) => v.cases().any(|c| {
            c.name == case
                && match (payload, &c.ty) {
                    (None, None) => true,
                    (Some(p), Some(ty)) => val_has_type(p, ty),
                    _ => false,
                }
        }),
        (Val::Enum(case), Type::Enum(e)) => e.names().any(|n| n == case),
        (Val::Option(v), Type::Option(o)) => v.as_deref().is_none_or(|v| val_has_type(v, &o.ty())),
        (Val::Result(r), Type::Result(rt)) => match r {
            Ok(v) => payload_fits(v.as_deref(), rt.ok()),
            Err(v) => payload_fits(v.as_deref(), rt.err()),
        },
        (Val::Flags(set), Type::Flags(f)) => set.iter().all(|s| f.names().any(|n| n == s)),
        _ => false,
    }
}

fn payload_fits(val: Option<&Val>, ty: Option<Type>) -> bool {
    match (val, ty) {
        (None, None) => true,
        (Some(v), Some(t)) => val_has_type(v, &t),
        _ => false,
    }
}

/// The size of a value's payload in bytes: what a size limit on typed
/// messages counts (string and list contents, and 8 bytes per scalar).
pub fn payload_size(val: &Val) -> u64 {
    match val {
        Val::String(s) => s.len() as u64,
        Val::List(items) | Val::Tuple(items) => items.iter().map(payload_size).sum::<u64>() + 8,
        Val::Record(fields) => fields.iter().map(|(_, v)| payload_size(v)).sum::<u64>() + 8,
        Val::Variant(_, Some(v)) => payload_size(v) + 8,
        Val::Option(Some(v)) => payload_size(v) + 8,
        Val::Result(Ok(Some(v)) | Err(Some(v))) => payload_size(v) + 8,
        Val::Flags(f) => f.len() as u64 * 8,
        _ => 8,
    }
}

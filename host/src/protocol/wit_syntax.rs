//! WIT syntax for the types wit-parser resolves: what `troupe inspect`
//! prints, and what the batch adapter's interface declares.

use wit_parser::{Resolve, Type, TypeDefKind, TypeId};

/// `ty` in WIT syntax. A named type is written as `named` says (its name,
/// escaped, or `None` to refuse it, which refuses the whole type);
/// anonymous types are spelled out around their parts.
pub(crate) fn render(
    resolve: &Resolve,
    ty: &Type,
    named: &mut dyn FnMut(TypeId, &str) -> Option<String>,
) -> Option<String> {
    Some(match ty {
        Type::Bool => "bool".into(),
        Type::U8 => "u8".into(),
        Type::U16 => "u16".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::S8 => "s8".into(),
        Type::S16 => "s16".into(),
        Type::S32 => "s32".into(),
        Type::S64 => "s64".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => "error-context".into(),
        Type::Id(id) => {
            let def = &resolve.types[*id];
            if let Some(name) = &def.name {
                return named(*id, name);
            }
            let mut part = |t: &Type| render(resolve, t, named);
            match &def.kind {
                TypeDefKind::List(t) => format!("list<{}>", part(t)?),
                TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", part(t)?),
                TypeDefKind::Map(k, v) => format!("map<{}, {}>", part(k)?, part(v)?),
                TypeDefKind::Option(t) => format!("option<{}>", part(t)?),
                TypeDefKind::Result(r) => match (&r.ok, &r.err) {
                    (None, None) => "result".into(),
                    (Some(ok), None) => format!("result<{}>", part(ok)?),
                    (ok, err) => {
                        let ok = ok.as_ref().map_or(Some("_".into()), &mut part)?;
                        let err = err.as_ref().map_or(Some("_".into()), &mut part)?;
                        format!("result<{ok}, {err}>")
                    }
                },
                TypeDefKind::Tuple(t) => {
                    format!("tuple<{}>", t.types.iter().map(&mut part).collect::<Option<Vec<_>>>()?.join(", "))
                }
                TypeDefKind::Handle(wit_parser::Handle::Own(t)) => part(&Type::Id(*t))?,
                TypeDefKind::Handle(wit_parser::Handle::Borrow(t)) => format!("borrow<{}>", part(&Type::Id(*t))?),
                TypeDefKind::Future(t) => format!("future<{}>", t.as_ref().map_or(Some("_".into()), &mut part)?),
                TypeDefKind::Stream(t) => format!("stream<{}>", t.as_ref().map_or(Some("_".into()), &mut part)?),
                TypeDefKind::Type(t) => part(t)?,
                _ => "<anonymous>".into(),
            }
        }
    })
}

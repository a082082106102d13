//! Component types in WIT-like syntax, for signatures and error messages.

use std::fmt;

use wasmtime::component::Type;

/// Renders a component type in WIT-like syntax. Named types are rendered
/// structurally (`record { x: u32 }`): the engine's types carry no names.
pub struct TypeDisplay<'a>(pub &'a Type);

impl fmt::Display for TypeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &mut dyn Iterator<Item = Type>| -> fmt::Result {
            for (i, t) in items.enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}", TypeDisplay(&t))?;
            }
            Ok(())
        };
        match self.0 {
            Type::Bool => f.write_str("bool"),
            Type::S8 => f.write_str("s8"),
            Type::U8 => f.write_str("u8"),
            Type::S16 => f.write_str("s16"),
            Type::U16 => f.write_str("u16"),
            Type::S32 => f.write_str("s32"),
            Type::U32 => f.write_str("u32"),
            Type::S64 => f.write_str("s64"),
            Type::U64 => f.write_str("u64"),
            Type::Float32 => f.write_str("f32"),
            Type::Float64 => f.write_str("f64"),
            Type::Char => f.write_str("char"),
            Type::String => f.write_str("string"),
            Type::List(l) => write!(f, "list<{}>", TypeDisplay(&l.ty())),
            Type::FixedLengthList(l) => write!(f, "list<{}, {}>", TypeDisplay(&l.ty()), l.len()),
            Type::Map(m) => write!(f, "map<{}, {}>", TypeDisplay(&m.key()), TypeDisplay(&m.value())),
            Type::Record(r) => {
                f.write_str("record { ")?;
                for (i, field) in r.fields().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", field.name, TypeDisplay(&field.ty))?;
                }
                f.write_str(" }")
            }
            Type::Tuple(t) => {
                f.write_str("tuple<")?;
                list(f, &mut t.types())?;
                f.write_str(">")
            }
            Type::Variant(v) => {
                f.write_str("variant { ")?;
                for (i, case) in v.cases().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match &case.ty {
                        Some(ty) => write!(f, "{}({})", case.name, TypeDisplay(ty))?,
                        None => f.write_str(case.name)?,
                    }
                }
                f.write_str(" }")
            }
            Type::Enum(e) => write!(f, "enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
            Type::Flags(fl) => write!(f, "flags {{ {} }}", fl.names().collect::<Vec<_>>().join(", ")),
            Type::Option(o) => write!(f, "option<{}>", TypeDisplay(&o.ty())),
            Type::Result(r) => match (r.ok(), r.err()) {
                (None, None) => f.write_str("result"),
                (Some(ok), None) => write!(f, "result<{}>", TypeDisplay(&ok)),
                (None, Some(err)) => write!(f, "result<_, {}>", TypeDisplay(&err)),
                (Some(ok), Some(err)) => {
                    write!(f, "result<{}, {}>", TypeDisplay(&ok), TypeDisplay(&err))
                }
            },
            Type::Own(_) => f.write_str("own<resource>"),
            Type::Borrow(_) => f.write_str("borrow<resource>"),
            Type::Stream(_) => f.write_str("stream"),
            Type::Future(_) => f.write_str("future"),
            Type::ErrorContext => f.write_str("error-context"),
        }
    }
}

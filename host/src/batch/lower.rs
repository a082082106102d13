//! Messages' values as entry points' flat arguments: the host's half of
//! the canonical ABI's flattening, done at run time for each message that
//! goes through an entry point, and the lifting of the call entry point's
//! result.
//!
//! A value flattens into `u32`, `u64`, `f32` and `f64` values
//! ([`FlatType`]'s four types), which the adapter hands on to the function
//! unchanged, and the component model lifts as the function's parameter
//! types again.

use wasmtime::component::{Type, Val};

use super::{FlatResult, FlatType};

/// Appends the flat types of a parameter of type `ty` to `out`, for the
/// types the host lowers into an entry point's registers; returns `false`
/// for any other type (its function has no such entry point).
pub fn flat_types(ty: &Type, out: &mut Vec<FlatType>) -> bool {
    match ty {
        Type::Bool
        | Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::Char
        | Type::Enum(_) => out.push(FlatType::I32),
        Type::S64 | Type::U64 => out.push(FlatType::I64),
        Type::Float32 => out.push(FlatType::F32),
        Type::Float64 => out.push(FlatType::F64),
        Type::Flags(flags) => out.extend((0..flags.names().len().div_ceil(32)).map(|_| FlatType::I32)),
        Type::Record(record) => return record.fields().all(|f| flat_types(&f.ty, out)),
        Type::Tuple(tuple) => return tuple.types().all(|t| flat_types(&t, out)),
        _ => return false,
    }
    true
}

/// Appends the flat values of `val` (of type `ty`, for which
/// [`flat_types`] succeeds) to `out`. Returns `false` if `val` does not
/// have the type.
pub fn flatten(ty: &Type, val: &Val, out: &mut Vec<Val>) -> bool {
    flatten_into(ty, val, &mut |flat| out.push(flat))
}

/// [`flatten`], handing each flat value to `push`.
pub(super) fn flatten_into(ty: &Type, val: &Val, push: &mut impl FnMut(Val)) -> bool {
    let flat = match (ty, val) {
        (Type::Bool, Val::Bool(v)) => Val::U32(u32::from(*v)),
        // Signed values travel sign-extended, as the canonical ABI lowers them.
        (Type::S8, Val::S8(v)) => Val::U32(i32::from(*v) as u32),
        (Type::U8, Val::U8(v)) => Val::U32(u32::from(*v)),
        (Type::S16, Val::S16(v)) => Val::U32(i32::from(*v) as u32),
        (Type::U16, Val::U16(v)) => Val::U32(u32::from(*v)),
        (Type::S32, Val::S32(v)) => Val::U32(*v as u32),
        (Type::U32, Val::U32(v)) => Val::U32(*v),
        (Type::S64, Val::S64(v)) => Val::U64(*v as u64),
        (Type::U64, Val::U64(v)) => Val::U64(*v),
        (Type::Float32, Val::Float32(v)) => Val::Float32(*v),
        (Type::Float64, Val::Float64(v)) => Val::Float64(*v),
        (Type::Char, Val::Char(v)) => Val::U32(u32::from(*v)),
        (Type::Enum(e), Val::Enum(name)) => match e.names().position(|n| n == name) {
            Some(i) => Val::U32(i as u32),
            None => return false,
        },
        (Type::Flags(flags), Val::Flags(set)) => {
            let names: Vec<&str> = flags.names().collect();
            let mut words = vec![0u32; names.len().div_ceil(32)];
            for name in set {
                let Some(bit) = names.iter().position(|n| n == name) else { return false };
                words[bit / 32] |= 1 << (bit % 32);
            }
            words.into_iter().for_each(|word| push(Val::U32(word)));
            return true;
        }
        (Type::Record(record), Val::Record(fields)) => {
            return record.fields().all(|field| {
                fields.iter().find(|(n, _)| n == field.name).is_some_and(|(_, v)| flatten_into(&field.ty, v, push))
            });
        }
        (Type::Tuple(tuple), Val::Tuple(vals)) => {
            return tuple.types().len() == vals.len()
                && tuple.types().zip(vals).all(|(t, v)| flatten_into(&t, v, push));
        }
        _ => return false,
    };
    push(flat);
    true
}

/// A zero of flat type `ty`, as an entry point takes it: what fills the
/// places of the messages a call does not use.
pub(super) fn zero(ty: FlatType) -> Val {
    match ty {
        FlatType::I32 => Val::U32(0),
        FlatType::I64 => Val::U64(0),
        FlatType::F32 => Val::Float32(0.0),
        FlatType::F64 => Val::Float64(0.0),
    }
}

/// The WIT type through which an entry point takes a value of flat type
/// `ty`.
pub(super) fn param_type(ty: FlatType) -> Type {
    match ty {
        FlatType::I32 => Type::U32,
        FlatType::I64 => Type::U64,
        FlatType::F32 => Type::Float32,
        FlatType::F64 => Type::Float64,
    }
}

/// The flat value `val` (as [`flatten`] makes it) in a place of type
/// `joined`: the host's half of the join, which the adapter undoes.
pub(super) fn to_join(val: Val, joined: FlatType) -> Val {
    match (val, joined) {
        (Val::Float32(f), FlatType::I32) => Val::U32(f.to_bits()),
        (Val::U32(x), FlatType::I64) => Val::U64(u64::from(x)),
        (Val::Float32(f), FlatType::I64) => Val::U64(u64::from(f.to_bits())),
        (Val::Float64(f), FlatType::I64) => Val::U64(f.to_bits()),
        (val, _) => val,
    }
}

/// The flat value `val` (as [`flatten`] makes it) as the call entry point
/// takes it; the adapter undoes it.
pub(super) fn to_call_arg(val: &Val) -> u64 {
    match val {
        Val::U32(x) => u64::from(*x),
        Val::U64(x) => *x,
        Val::Float32(f) => u64::from(f.to_bits()),
        Val::Float64(f) => f.to_bits(),
        _ => 0,
    }
}

impl FlatResult {
    /// How a function with result type `ty` returns through the call entry
    /// point, if it can.
    pub fn of(ty: Option<&Type>) -> Option<Self> {
        Some(match ty {
            None => FlatResult::Nothing,
            Some(Type::Bool) => FlatResult::Bool,
            Some(Type::S8) => FlatResult::S8,
            Some(Type::U8) => FlatResult::U8,
            Some(Type::S16) => FlatResult::S16,
            Some(Type::U16) => FlatResult::U16,
            Some(Type::S32) => FlatResult::S32,
            Some(Type::U32) => FlatResult::U32,
            Some(Type::S64) => FlatResult::S64,
            Some(Type::U64) => FlatResult::U64,
            Some(Type::Float32) => FlatResult::F32,
            Some(Type::Float64) => FlatResult::F64,
            Some(_) => return None,
        })
    }

    /// The result `raw` stands for (`None` for a function without one).
    pub fn lift(self, raw: u64) -> Option<Val> {
        // Truncation keeps the low bits, as lifting a narrow integer from
        // its core `i32` does.
        Some(match self {
            FlatResult::Nothing => return None,
            FlatResult::Bool => Val::Bool(raw as u32 != 0),
            FlatResult::S8 => Val::S8(raw as i8),
            FlatResult::U8 => Val::U8(raw as u8),
            FlatResult::S16 => Val::S16(raw as i16),
            FlatResult::U16 => Val::U16(raw as u16),
            FlatResult::S32 => Val::S32(raw as i32),
            FlatResult::U32 => Val::U32(raw as u32),
            FlatResult::S64 => Val::S64(raw as i64),
            FlatResult::U64 => Val::U64(raw),
            FlatResult::F32 => Val::Float32(f32::from_bits(raw as u32)),
            FlatResult::F64 => Val::Float64(f64::from_bits(raw)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_flatten_as_the_canonical_abi_lowers_them() {
        let engine = wasmtime::Engine::default();
        let wat = wat::parse_str(
            r#"(component
                 (type $e (enum "a" "b" "c"))
                 (export $e2 "e" (type $e))
                 (type $f (flags "x" "y"))
                 (export $f2 "f" (type $f))
                 (type $r (record (field "s" s8) (field "e" $e2) (field "f" $f2) (field "c" char) (field "w" s64)))
                 (export $r2 "r" (type $r))
                 (core module $m (func (export "g") (param i32 i32 i32 i32 i64 f32)))
                 (core instance $i (instantiate $m))
                 (func (export "g") (param "r" $r2) (param "t" f32) (canon lift (core func $i "g"))))"#,
        )
        .unwrap();
        let component = wasmtime::component::Component::new(&engine, wat).unwrap();
        let ty = component.component_type();
        let (_, item) = ty.exports(&engine).find(|(n, _)| *n == "g").unwrap();
        let wasmtime::component::types::ComponentItem::ComponentFunc(func) = item.ty else { panic!() };
        let params: Vec<Type> = func.params().map(|(_, t)| t).collect();
        let mut types = Vec::new();
        assert!(params.iter().all(|t| flat_types(t, &mut types)));
        use FlatType::{F32, I32, I64};
        assert_eq!(types, [I32, I32, I32, I32, I64, F32]);
        let record = Val::Record(vec![
            ("s".into(), Val::S8(-2)),
            ("e".into(), Val::Enum("c".into())),
            ("f".into(), Val::Flags(vec!["y".into()])),
            ("c".into(), Val::Char('é')),
            ("w".into(), Val::S64(-1)),
        ]);
        let mut flat = Vec::new();
        assert!(flatten(&params[0], &record, &mut flat));
        assert!(flatten(&params[1], &Val::Float32(0.5), &mut flat));
        assert_eq!(
            flat,
            [
                Val::U32(-2i32 as u32),
                Val::U32(2),
                Val::U32(0b10),
                Val::U32(0xe9),
                Val::U64(u64::MAX),
                Val::Float32(0.5)
            ]
        );
        assert!(!flatten(&params[0], &Val::Bool(true), &mut flat), "a value of another type does not flatten");
        let zeros: Vec<Val> = types.iter().map(|&t| zero(t)).collect();
        assert_eq!(zeros, [Val::U32(0), Val::U32(0), Val::U32(0), Val::U32(0), Val::U64(0), Val::Float32(0.0)]);
        assert!(!flat_types(&Type::String, &mut types), "a string does not travel in registers");
    }

    #[test]
    fn joined_values_carry_their_bits() {
        assert_eq!(to_join(Val::Float32(1.5), FlatType::I32), Val::U32(1.5f32.to_bits()));
        assert_eq!(to_join(Val::U32(u32::MAX), FlatType::I64), Val::U64(u64::from(u32::MAX)));
        assert_eq!(to_join(Val::Float64(-2.0), FlatType::I64), Val::U64((-2.0f64).to_bits()));
        assert_eq!(to_join(Val::U32(7), FlatType::I32), Val::U32(7));
        assert_eq!(to_call_arg(&Val::Float32(1.0)), u64::from(1.0f32.to_bits()));
    }

    #[test]
    fn results_lift_as_the_canonical_abi_lifts_them() {
        assert_eq!(FlatResult::S8.lift(0x1_80), Some(Val::S8(-128)), "the low bits");
        assert_eq!(FlatResult::Bool.lift(2), Some(Val::Bool(true)));
        assert_eq!(FlatResult::F64.lift(2.5f64.to_bits()), Some(Val::Float64(2.5)));
        assert_eq!(FlatResult::Nothing.lift(9), None);
        assert_eq!(FlatResult::of(Some(&Type::Char)), None, "a char is not served");
    }
}

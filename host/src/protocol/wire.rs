//! The compact binary encoding of WIT values that messages take between
//! hosts (see `crate::cluster`).
//!
//! The encoding is directed by the type both sides know, the receiver's
//! protocol: it carries no type tags, no field or case names, only what
//! the type leaves open. Decoding is therefore also the receiver's type
//! check: bytes that do not decode as exactly one value of the expected
//! type are refused, and a peer cannot smuggle in an ill-typed value.
//!
//! | type | bytes |
//! |---|---|
//! | `bool` | one byte, 0 or 1 |
//! | `u8`, `s8` | one byte |
//! | `u16` .. `u64` | unsigned LEB128 |
//! | `s16` .. `s64` | zigzag, then unsigned LEB128 |
//! | `f32`, `f64` | the IEEE bits, little-endian (NaN payloads kept) |
//! | `char` | its scalar value, unsigned LEB128 |
//! | `string` | byte length (LEB128), then UTF-8 |
//! | `list<T>` | element count (LEB128), then the elements |
//! | `list<T, N>` | the `N` elements |
//! | `map<K, V>` | entry count (LEB128), then each key and its value |
//! | record, tuple | the fields or elements in declaration order |
//! | variant, enum | case index (LEB128), then the case's payload if it has one |
//! | `option<T>` | 0, or 1 and the value |
//! | `result<T, E>` | 0 and the ok payload, or 1 and the error payload (each if typed) |
//! | flags | a bit set, one bit per flag in declaration order, `ceil(n / 8)` bytes |
//!
//! Resources, futures and streams cannot leave their host and are refused.
//! A decoder allocates at most a bounded number of values per byte it
//! reads (a list of a million empty records fits in a few bytes), see
//! [`decode`].

use wasmtime::component::{Type, Val};

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The value does not have the type it is encoded as.
    #[error("the value does not have the type it is sent as: {0}")]
    Mismatch(String),
    /// The type has no wire form (resources, futures, streams).
    #[error("values of type {0} cannot leave their host")]
    Unsupported(&'static str),
    /// The bytes end before the value does.
    #[error("the message ends in the middle of a value")]
    Truncated,
    /// The bytes do not form a value of the expected type.
    #[error("malformed value: {0}")]
    Malformed(String),
    /// Bytes are left after the value.
    #[error("{0} byte(s) left after the value")]
    Trailing(usize),
    /// The bytes describe more values than they could carry.
    #[error("the value has more parts than its {0} bytes allow")]
    TooManyParts(usize),
}

/// How many values a decoder may build per byte of input, plus a constant:
/// a bound on the memory a small, hostile message can make a host allocate.
const PARTS_PER_BYTE: usize = 4;
const PARTS_BASE: usize = 1024;

/// Appends the encoding of `val`, of type `ty`, to `out`.
///
/// # Errors
///
/// [`WireError::Mismatch`] if `val` does not have type `ty`;
/// [`WireError::Unsupported`] for resources, futures and streams.
pub fn encode(val: &Val, ty: &Type, out: &mut Vec<u8>) -> Result<(), WireError> {
    let mismatch = || WireError::Mismatch(format!("expected {}", super::TypeDisplay(ty)));
    match (val, ty) {
        (Val::Bool(b), Type::Bool) => out.push(u8::from(*b)),
        (Val::U8(n), Type::U8) => out.push(*n),
        (Val::S8(n), Type::S8) => out.push(n.to_le_bytes()[0]),
        (Val::U16(n), Type::U16) => put_u64(out, u64::from(*n)),
        (Val::U32(n), Type::U32) => put_u64(out, u64::from(*n)),
        (Val::U64(n), Type::U64) => put_u64(out, *n),
        (Val::S16(n), Type::S16) => put_i64(out, i64::from(*n)),
        (Val::S32(n), Type::S32) => put_i64(out, i64::from(*n)),
        (Val::S64(n), Type::S64) => put_i64(out, *n),
        (Val::Float32(x), Type::Float32) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        (Val::Float64(x), Type::Float64) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        (Val::Char(c), Type::Char) => put_u64(out, u64::from(u32::from(*c))),
        (Val::String(s), Type::String) => {
            put_u64(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        (Val::List(items), Type::List(list)) => {
            let elem = list.ty();
            put_u64(out, items.len() as u64);
            for item in items {
                encode(item, &elem, out)?;
            }
        }
        (Val::FixedLengthList(items), Type::FixedLengthList(list)) => {
            if items.len() != list.len() as usize {
                return Err(mismatch());
            }
            let elem = list.ty();
            for item in items {
                encode(item, &elem, out)?;
            }
        }
        (Val::Map(entries), Type::Map(map)) => {
            let (key, value) = (map.key(), map.value());
            put_u64(out, entries.len() as u64);
            for (k, v) in entries {
                encode(k, &key, out)?;
                encode(v, &value, out)?;
            }
        }
        (Val::Record(fields), Type::Record(record)) => {
            if fields.len() != record.fields().len() {
                return Err(mismatch());
            }
            for ((name, v), field) in fields.iter().zip(record.fields()) {
                if name != field.name {
                    return Err(mismatch());
                }
                encode(v, &field.ty, out)?;
            }
        }
        (Val::Tuple(items), Type::Tuple(tuple)) => {
            if items.len() != tuple.types().len() {
                return Err(mismatch());
            }
            for (v, ty) in items.iter().zip(tuple.types()) {
                encode(v, &ty, out)?;
            }
        }
        (Val::Variant(name, payload), Type::Variant(variant)) => {
            let (index, case) = variant.cases().enumerate().find(|(_, c)| c.name == name).ok_or_else(mismatch)?;
            put_u64(out, index as u64);
            encode_payload(payload.as_deref(), case.ty.as_ref(), out).map_err(|_| mismatch())?;
        }
        (Val::Enum(name), Type::Enum(cases)) => {
            let index = cases.names().position(|n| n == name).ok_or_else(mismatch)?;
            put_u64(out, index as u64);
        }
        (Val::Option(v), Type::Option(option)) => match v {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                encode(v, &option.ty(), out)?;
            }
        },
        (Val::Result(r), Type::Result(result)) => match r {
            Ok(v) => {
                out.push(0);
                encode_payload(v.as_deref(), result.ok().as_ref(), out)?;
            }
            Err(v) => {
                out.push(1);
                encode_payload(v.as_deref(), result.err().as_ref(), out)?;
            }
        },
        (Val::Flags(set), Type::Flags(flags)) => {
            let names: Vec<&str> = flags.names().collect();
            let mut bits = vec![0u8; names.len().div_ceil(8)];
            for flag in set {
                let i = names.iter().position(|n| n == flag).ok_or_else(mismatch)?;
                bits[i / 8] |= 1 << (i % 8);
            }
            out.extend_from_slice(&bits);
        }
        (_, Type::Own(_) | Type::Borrow(_)) => return Err(WireError::Unsupported("resource")),
        (_, Type::Future(_)) => return Err(WireError::Unsupported("future")),
        (_, Type::Stream(_)) => return Err(WireError::Unsupported("stream")),
        (_, Type::ErrorContext) => return Err(WireError::Unsupported("error-context")),
        _ => return Err(mismatch()),
    }
    Ok(())
}

fn encode_payload(val: Option<&Val>, ty: Option<&Type>, out: &mut Vec<u8>) -> Result<(), WireError> {
    match (val, ty) {
        (None, None) => Ok(()),
        (Some(v), Some(ty)) => encode(v, ty, out),
        _ => Err(WireError::Mismatch("a payload where the type has none, or none where it has one".into())),
    }
}

/// Decodes exactly one value of type `ty` from `bytes`.
///
/// # Errors
///
/// A [`WireError`] if `bytes` are not exactly the encoding of one value of
/// type `ty`, or describe more values than a few per byte (a bound on what a hostile message can
/// make the host allocate).
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Val, WireError> {
    let mut reader = Reader::new(bytes);
    let val = reader.value(ty)?;
    reader.finish()?;
    Ok(val)
}

/// Decodes the values of `types`, one after another, from `bytes`, which
/// must hold exactly those.
///
/// # Errors
///
/// As [`decode`].
pub fn decode_all<'a>(bytes: &[u8], types: impl IntoIterator<Item = &'a Type>) -> Result<Vec<Val>, WireError> {
    let mut reader = Reader::new(bytes);
    let vals = types.into_iter().map(|ty| reader.value(ty)).collect::<Result<Vec<_>, _>>()?;
    reader.finish()?;
    Ok(vals)
}

/// A cursor over an encoded message, with the budget of values left to
/// build.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    parts_left: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let parts_left = bytes.len().saturating_mul(PARTS_PER_BYTE).saturating_add(PARTS_BASE);
        Reader { bytes, at: 0, parts_left }
    }

    fn finish(&self) -> Result<(), WireError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            left => Err(WireError::Trailing(left)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or(WireError::Truncated)?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(WireError::Malformed("integer over 64 bits".into()));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::Malformed("integer over 64 bits".into()))
    }

    fn i64(&mut self) -> Result<i64, WireError> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn narrow<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, WireError> {
        let n = self.u64()?;
        T::try_from(n).map_err(|_| WireError::Malformed(format!("{n} is out of range for {what}")))
    }

    fn narrow_signed<T: TryFrom<i64>>(&mut self, what: &str) -> Result<T, WireError> {
        let n = self.i64()?;
        T::try_from(n).map_err(|_| WireError::Malformed(format!("{n} is out of range for {what}")))
    }

    fn len(&mut self) -> Result<usize, WireError> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| WireError::Malformed(format!("length {n}")))
    }

    fn index(&mut self, count: usize, what: &str) -> Result<usize, WireError> {
        let i = self.len()?;
        if i < count { Ok(i) } else { Err(WireError::Malformed(format!("{what} {i} of {count}"))) }
    }

    fn spend(&mut self, parts: usize) -> Result<(), WireError> {
        self.parts_left = self.parts_left.checked_sub(parts).ok_or(WireError::TooManyParts(self.bytes.len()))?;
        Ok(())
    }

    fn value(&mut self, ty: &Type) -> Result<Val, WireError> {
        self.spend(1)?;
        Ok(match ty {
            Type::Bool => match self.byte()? {
                0 => Val::Bool(false),
                1 => Val::Bool(true),
                b => return Err(WireError::Malformed(format!("bool byte {b}"))),
            },
            Type::U8 => Val::U8(self.byte()?),
            Type::S8 => Val::S8(i8::from_le_bytes([self.byte()?])),
            Type::U16 => Val::U16(self.narrow("u16")?),
            Type::U32 => Val::U32(self.narrow("u32")?),
            Type::U64 => Val::U64(self.u64()?),
            Type::S16 => Val::S16(self.narrow_signed("s16")?),
            Type::S32 => Val::S32(self.narrow_signed("s32")?),
            Type::S64 => Val::S64(self.i64()?),
            Type::Float32 => Val::Float32(f32::from_bits(u32::from_le_bytes(self.array()?))),
            Type::Float64 => Val::Float64(f64::from_bits(u64::from_le_bytes(self.array()?))),
            Type::Char => {
                let n: u32 = self.narrow("char")?;
                Val::Char(char::from_u32(n).ok_or_else(|| WireError::Malformed(format!("{n:#x} is no char")))?)
            }
            Type::String => {
                let len = self.len()?;
                let text = std::str::from_utf8(self.take(len)?)
                    .map_err(|e| WireError::Malformed(format!("string is not UTF-8: {e}")))?;
                Val::String(text.to_string())
            }
            Type::List(list) => {
                let count = self.len()?;
                // Charged up front: the vector is allocated before its items.
                self.spend(count)?;
                let elem = list.ty();
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(&elem)?);
                }
                Val::List(items)
            }
            Type::FixedLengthList(list) => {
                let count = list.len() as usize;
                self.spend(count)?;
                let elem = list.ty();
                Val::FixedLengthList((0..count).map(|_| self.value(&elem)).collect::<Result<_, WireError>>()?)
            }
            Type::Map(map) => {
                let count = self.len()?;
                self.spend(count.saturating_mul(2))?;
                let (key, value) = (map.key(), map.value());
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let k = self.value(&key)?;
                    entries.push((k, self.value(&value)?));
                }
                Val::Map(entries)
            }
            Type::Record(record) => Val::Record(
                record.fields().map(|field| Ok((field.name.to_string(), self.value(&field.ty)?))).collect::<Result<
                    _,
                    WireError,
                >>(
                )?,
            ),
            Type::Tuple(tuple) => {
                Val::Tuple(tuple.types().map(|ty| self.value(&ty)).collect::<Result<_, WireError>>()?)
            }
            Type::Variant(variant) => {
                let index = self.index(variant.cases().len(), "case")?;
                let case = variant.cases().nth(index).ok_or(WireError::Truncated)?;
                let payload = match &case.ty {
                    Some(ty) => Some(Box::new(self.value(ty)?)),
                    None => None,
                };
                Val::Variant(case.name.to_string(), payload)
            }
            Type::Enum(cases) => {
                let index = self.index(cases.names().len(), "case")?;
                Val::Enum(cases.names().nth(index).unwrap_or_default().to_string())
            }
            Type::Option(option) => match self.byte()? {
                0 => Val::Option(None),
                1 => Val::Option(Some(Box::new(self.value(&option.ty())?))),
                b => return Err(WireError::Malformed(format!("option byte {b}"))),
            },
            Type::Result(result) => {
                let side = self.byte()?;
                let payload = |reader: &mut Self, ty: Option<Type>| -> Result<Option<Box<Val>>, WireError> {
                    ty.map(|ty| reader.value(&ty).map(Box::new)).transpose()
                };
                match side {
                    0 => Val::Result(Ok(payload(self, result.ok())?)),
                    1 => Val::Result(Err(payload(self, result.err())?)),
                    b => return Err(WireError::Malformed(format!("result byte {b}"))),
                }
            }
            Type::Flags(flags) => {
                let names: Vec<&str> = flags.names().collect();
                let bits = self.take(names.len().div_ceil(8))?;
                let mut set = Vec::new();
                for (i, byte) in bits.iter().enumerate() {
                    for bit in 0..8 {
                        if byte & (1 << bit) != 0 {
                            let name = names.get(i * 8 + bit).ok_or_else(|| {
                                WireError::Malformed(format!("flag {} of {}", i * 8 + bit, names.len()))
                            })?;
                            set.push(name.to_string());
                        }
                    }
                }
                Val::Flags(set)
            }
            Type::Own(_) | Type::Borrow(_) => return Err(WireError::Unsupported("resource")),
            Type::Future(_) => return Err(WireError::Unsupported("future")),
            Type::Stream(_) => return Err(WireError::Unsupported("stream")),
            Type::ErrorContext => return Err(WireError::Unsupported("error-context")),
        })
    }
}

/// Appends `n` as unsigned LEB128.
pub fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends `n` zigzag-encoded, as unsigned LEB128.
pub fn put_i64(out: &mut Vec<u8>, n: i64) {
    put_u64(out, ((n << 1) ^ (n >> 63)) as u64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;
    use crate::protocol::kinds::protocol;

    /// The arguments of the WAVE call `wave` and their types.
    fn call(wave: &str) -> (Vec<Val>, Vec<Type>) {
        let p: &Protocol = protocol();
        let call = p.parse(wave, u64::MAX).unwrap_or_else(|e| panic!("{wave}: {e}"));
        let types = p.function(call.func).params.iter().map(|(_, ty)| ty.clone()).collect();
        (call.args.into_vec(), types)
    }

    fn encoded(vals: &[Val], types: &[Type]) -> Vec<u8> {
        let mut out = Vec::new();
        for (v, ty) in vals.iter().zip(types) {
            encode(v, ty, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn every_kind_of_value_comes_back_as_it_was_sent() {
        for wave in [
            "integers(-128, 255, -32768, 65535, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615)",
            "integers(0, 0, 0, 0, 0, 0, 0, 0)",
            "integers(-1, 1, -1, 1, -1, 1, -1, 1)",
            "floats(-0.5, 1e300)",
            "floats(nan, -inf)",
            r#"text(true, '☃', "héllo \u{0}")"#,
            r#"greet({name: "ada", age: 36, tags: ["a", ""], home: some({street: "s", city: "c"}), nick: none})"#,
            "group([])",
            "bytes([0, 1, 255])",
            r#"pair((7, "x", false))"#,
            "nested(some(none), some(some(none)))",
            "nested(none, some(some(some(\"deep\"))))",
            r#"outcome(ok(5), err, ok("x"), err("e"))"#,
            r#"outcome(err("no"), ok, err, ok)"#,
            r#"paint(blue, label("l"), {read, exec})"#,
            "paint(red, dot, {})",
            "paint(green, maybe(some(3)), {read, write, exec})",
            "tick()",
        ] {
            let (vals, types) = call(wave);
            let bytes = encoded(&vals, &types);
            let back = decode_all(&bytes, &types).unwrap_or_else(|e| panic!("{wave}: {e}"));
            // NaN != NaN: compare the WAVE text of both; flags are a set,
            // in any order.
            let text = |vs: &[Val]| {
                vs.iter()
                    .map(|v| match v {
                        Val::Flags(set) => {
                            let mut set = set.clone();
                            set.sort();
                            Val::Flags(set).to_wave().unwrap()
                        }
                        v => v.to_wave().unwrap(),
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(text(&back), text(&vals), "{wave}");
        }
    }

    #[test]
    fn small_values_take_few_bytes() {
        let (vals, types) = call("integers(0, 1, 2, 3, 4, 5, 6, 7)");
        assert_eq!(encoded(&vals, &types).len(), 8);
        let (vals, types) = call(r#"paint(blue, dot, {read, exec})"#);
        assert_eq!(encoded(&vals, &types), vec![2, 0, 0b101]);
    }

    #[test]
    fn a_value_of_another_type_is_refused_by_the_encoder() {
        let (_, types) = call("tick()");
        let (vals, other) = call("floats(1.0, 2.0)");
        assert!(types.is_empty());
        let mut out = Vec::new();
        assert!(matches!(encode(&vals[0], &other[1], &mut out), Err(WireError::Mismatch(_))));
        let (_, paint) = call("paint(red, dot, {})");
        assert!(matches!(encode(&Val::Enum("purple".into()), &paint[0], &mut out), Err(WireError::Mismatch(_))));
        assert!(matches!(encode(&Val::Flags(vec!["fly".into()]), &paint[2], &mut out), Err(WireError::Mismatch(_))));
    }

    #[test]
    fn bytes_that_are_not_one_value_of_the_type_are_refused() {
        let (_, text) = call(r#"text(true, 'a', "")"#);
        let (_, paint) = call("paint(red, dot, {})");
        let (_, ints) = call("integers(0, 0, 0, 0, 0, 0, 0, 0)");
        let (_, bytes) = call("bytes([])");
        assert_eq!(decode(&[2], &text[0]), Err(WireError::Malformed("bool byte 2".into())));
        assert_eq!(decode(&[], &text[0]), Err(WireError::Truncated));
        assert_eq!(decode(&[1, 0], &text[0]), Err(WireError::Trailing(1)));
        assert!(matches!(decode(&[0x80, 0x80, 0x80, 0x80, 0x10], &text[1]), Err(WireError::Malformed(_))));
        assert!(matches!(decode(&[0x80, 0xb0, 0x03], &text[1]), Err(WireError::Malformed(_))), "a surrogate");
        assert!(matches!(decode(&[2, 0xc3, 0x28], &text[2]), Err(WireError::Malformed(_))), "not UTF-8");
        assert_eq!(decode(&[5, b'a'], &text[2]), Err(WireError::Truncated));
        assert!(matches!(decode(&[3], &paint[0]), Err(WireError::Malformed(_))), "no fourth color");
        assert!(matches!(decode(&[9], &paint[1]), Err(WireError::Malformed(_))), "no tenth case");
        assert!(matches!(decode(&[0b1000], &paint[2]), Err(WireError::Malformed(_))), "no fourth flag");
        assert!(matches!(decode(&[0x80, 0x80, 0x04], &ints[3]), Err(WireError::Malformed(_))), "65536 is no u16");
        assert!(matches!(decode(&[0xff; 11], &ints[7]), Err(WireError::Malformed(_))), "over 64 bits");
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff, 0x0f], &bytes[0]), Err(WireError::TooManyParts(5)));
    }

    #[test]
    fn resources_cannot_be_sent() {
        let hold = protocol().function(protocol().resolve("hold").unwrap());
        let mut out = Vec::new();
        assert_eq!(encode(&Val::Bool(true), &hold.params[0].1, &mut out), Err(WireError::Unsupported("resource")));
        assert_eq!(decode(&[0], &hold.params[0].1), Err(WireError::Unsupported("resource")));
    }
}

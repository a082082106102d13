//! The JSON mapping of WIT values: a message's arguments from JSON, a
//! reply to JSON.
//!
//! One mapping, the same in both directions, for clients that speak JSON
//! rather than WAVE (the HTTP gateway). Decoding needs the WIT type: it
//! says which of the forms below a JSON value must take, and the value is
//! checked against it as WAVE text is. Encoding needs only the value: a
//! [`Val`] carries its shape.
//!
//! # The mapping
//!
//! | WIT | JSON | e.g. |
//! |-----|------|------|
//! | `bool` | `true` / `false` | `true` |
//! | `s8` … `u32` | a number | `-7` |
//! | `s64`, `u64` | a number if \|n\| ≤ 2^53, else a decimal string | `42`, `"18446744073709551615"` |
//! | `f32`, `f64` | a number; `"NaN"`, `"Infinity"`, `"-Infinity"` | `0.5`, `"NaN"` |
//! | `char` | a string of one character (one Unicode scalar value) | `"é"` |
//! | `string` | a string | `"ada"` |
//! | `list<T>` (`list<u8>` too), `list<T, N>` | an array | `[1, 2, 3]` |
//! | `tuple<…>` | an array, one element per type | `[1, "a"]` |
//! | `record` | an object, keys as the WIT field names (kebab-case) | `{"first-name": "ada"}` |
//! | `option<T>` | `null` or the value of `T` | `null`, `5` |
//! | `option<option<T>>` | `null`, or `{"some": v}` with `v` the inner option | `{"some": null}` |
//! | `result<T, E>` | `{"ok": v}` or `{"err": v}`; `v` is `null` without a payload type | `{"ok": null}` |
//! | `variant` | `{"case": payload}`; a case without payload is `"case"` | `{"circle": 2}`, `"dot"` |
//! | `enum` | the case name | `"red"` |
//! | `flags` | an array of the names set | `["read", "write"]` |
//! | `map<K, V>` | an array of `[key, value]` pairs | `[["a", 1]]` |
//! | `own`, `borrow`, `stream`, `future`, `error-context` | none: refused ([`JsonError::Handle`]) | |
//!
//! What a strict reader needs to know beyond the table:
//!
//! * **Integers.** 64-bit integers beyond ±2^53 are written as decimal
//!   strings because a JSON number is a double to most readers
//!   (JavaScript's `JSON.parse` among them), which would silently round
//!   them; 2^53 itself is still a number (a double holds it exactly, and
//!   2^53 + 1 is a string, so a number received means what it says). On
//!   input a 64-bit integer may take either form, and any integer type
//!   accepts a number with a zero fraction (`3.0`), as JSON does not tell
//!   `3` from `3.0`. A number with a fraction, one out of the type's
//!   range, and a number written with an exponent that a double cannot
//!   hold exactly (beyond 2^53, e.g. `1e19`) are refused. Decimal strings
//!   are `-?[0-9]+`, nothing else (no `+`, spaces, hex or exponent).
//! * **Floats.** A number too large for `f32` is refused rather than made
//!   infinite. An `f32` is written with the fewest digits that read back
//!   as the same `f32` (`0.1`, not `0.10000000149011612`); negative zero
//!   keeps its sign.
//! * **`list<u8>`** is an array of numbers like any other list, not
//!   base64: a client that can write a `list<T>` can write it with no
//!   special case, a reply has the same form as the request, and WAVE
//!   writes it the same way (`[1, 2, 3]`). Accepting base64 as well would
//!   mean a reply's form differs from what was sent, and base64 has
//!   dialects (padding, URL-safe) to pick among. The price is size (about
//!   four bytes of JSON per byte): bulk bytes belong in a binary content
//!   type of the gateway, not in a second form here.
//! * **Records.** Every field of the type must be given, except that a
//!   missing `option` field is `none` (as WAVE has it); a key the type
//!   lacks is refused rather than dropped, since it is most often a
//!   misspelt field. Keys are the WIT names exactly: no camelCase
//!   aliases. Objects are unordered: fields are written in no promised
//!   order.
//! * **Nested options.** `some(v)` of an `option<T>` is written as `v`
//!   itself, unless `T` is itself an option: then `null` would be
//!   ambiguous (`none`, or `some(none)`?), so that `some` is written
//!   `{"some": v}`. The rule depends on the type, never on the value:
//!   `option<option<u8>>` is always `null` or `{"some": …}` (`{"some":
//!   5}`, `{"some": null}`), and `option<option<option<u8>>>` nests
//!   `{"some": {"some": …}}`. No other WIT value is written as `null`, so
//!   no other type needs the wrapper, and none accepts it.
//! * **Results and variants** are objects of exactly one key. A variant
//!   case without payload is written as the bare string `"case"`, and
//!   `{"case": null}` is accepted too. A result without payload type is
//!   written `{"ok": null}` (it has no case names of its own to write bare),
//!   and the bare strings `"ok"` and `"err"` are accepted for the side
//!   that has no payload type.
//! * **Flags** are written in the order the value holds them and read in
//!   any order; a name given twice is refused. They are decoded sorted by
//!   name, as the WAVE parser does, so the same message decodes to the
//!   same value either way.
//! * **`map<K, V>`** (which troupe's engine does not enable yet) is an array
//!   of pairs because a key may be of any type, and a JSON object's keys
//!   are strings.
//!
//! # Errors
//!
//! A value that does not fit is refused with where (a path through the
//! JSON from the argument: `user.tags[2]`, `result.ok.name`, or the empty
//! path for the whole value), what was expected there in WIT syntax (see
//! [`TypeDisplay`]) and the JSON given: see [`JsonError`].
//!
//! # A call, and a reply
//!
//! [`Protocol::call_from_json`] reads the arguments of a call as a JSON
//! object keyed by parameter name or an array in order, and builds the
//! same [`Call`] that [`Protocol::parse`] builds from the WAVE text of the
//! same values. [`reply_to_json`] writes a reply.

use std::fmt;
use std::io;

use serde_json::{Map, Number, Value as Json};
use wasmtime::component::{Type, Val};

use super::explain::QUOTED_BYTES;
use super::parse::truncate;
use super::{Call, MessageError, Protocol, TypeDisplay};

/// The largest magnitude up to which a 64-bit integer is written as a
/// JSON number: 2^53, where the run of consecutive integers a double
/// holds exactly ends.
pub const MAX_EXACT_JSON_INTEGER: u64 = 1 << 53;

/// Why JSON could not be mapped to or from a WIT value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// A JSON value does not fit the WIT type expected at its place.
    #[error("{} expects {expected}, got `{given}`: {misfit}", Spot(*.place, .path))]
    Misfit {
        /// Where: a path through the JSON, from the argument's name if it
        /// has one (`user.tags[2]`), empty for the whole value.
        path: String,
        /// What kind of place `path` names.
        place: Place,
        /// The type expected there, in WIT syntax.
        expected: String,
        /// The JSON found there (cut to a few dozen bytes).
        given: String,
        /// What is wrong with it (boxed: it is the largest part, and
        /// errors travel in `Result`s along every step of a walk).
        misfit: Box<Misfit>,
    },
    /// A handle (a resource, a stream, a future, an error context), which
    /// has no JSON form: it cannot leave its actor.
    #[error("{} is a handle ({kind}), which has no JSON form: a handle cannot leave its actor", Spot(*.place, .path))]
    Handle {
        /// Where, as in [`JsonError::Misfit`].
        path: String,
        /// What kind of place `path` names.
        place: Place,
        /// The kind of handle, in WIT syntax (`borrow<resource>`, `stream`;
        /// a value says only `resource`, not whether it is owned).
        kind: String,
    },
}

/// What kind of place a [`JsonError`]'s path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The whole value (the path is empty).
    Value,
    /// A whole argument of a call (the path is its parameter's name).
    Argument,
    /// A record field (`user.name`).
    Field,
    /// A list, tuple or flags element, or a map pair (`tags[2]`).
    Element,
    /// The payload of an option, result or variant case, under its key
    /// (`outcome.ok`, `shape.circle`, `nested.some`).
    Payload,
}

/// What is wrong with a JSON value where it stands ([`JsonError::Misfit`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Misfit {
    /// The wrong kind of JSON value (a string for a number, ...).
    #[error("expected {0}")]
    Kind(&'static str),
    /// A number with a fraction for an integer type.
    #[error("not an integer")]
    NotAnInteger,
    /// An integer or float outside its type's range.
    #[error("out of range ({0})")]
    OutOfRange(&'static str),
    /// A 64-bit integer beyond 2^53 given as a JSON number that a double
    /// may have rounded (one written with a fraction or an exponent).
    #[error("beyond 2^53 a JSON number may have lost digits: give the integer as a decimal string")]
    Inexact,
    /// A `char` given as a string of more or fewer than one character.
    #[error("a char is one character, got {0}")]
    NotOneCharacter(usize),
    /// A tuple or fixed-length list of the wrong length.
    #[error("expected {expected} element(s), got {given}")]
    Length {
        /// The type's length.
        expected: usize,
        /// The array's.
        given: usize,
    },
    /// A record field the object lacks, with its type.
    #[error("missing field `{path}` ({ty})")]
    MissingField {
        /// The field's path.
        path: String,
        /// Its type, in WIT syntax.
        ty: String,
    },
    /// A key the record type has no field for.
    #[error("unknown field `{path}`; the record has {known}")]
    UnknownField {
        /// The key's path.
        path: String,
        /// The record's fields, listed.
        known: String,
    },
    /// An enum, variant or result case the type lacks.
    #[error("unknown case `{0}`")]
    UnknownCase(String),
    /// A flag the type lacks.
    #[error("unknown flag `{0}`")]
    UnknownFlag(String),
    /// A flag named twice.
    #[error("flag `{0}` is given twice")]
    DuplicateFlag(String),
    /// A case with a payload type, given without a payload.
    #[error("case `{0}` takes a payload")]
    PayloadRequired(String),
    /// A case without a payload type, given a payload.
    #[error("case `{0}` takes no payload")]
    NoPayload(String),
    /// An object for a variant or result with other than one key.
    #[error("one case is an object of one key, got {0} keys")]
    NotOneCase(usize),
}

/// A place said for an error: "argument `p`", "field `p.name`", "the value".
struct Spot<'a>(Place, &'a str);

impl fmt::Display for Spot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Spot(place, path) = *self;
        match place {
            Place::Value => f.write_str("the value"),
            Place::Argument => write!(f, "argument `{path}`"),
            Place::Field => write!(f, "field `{path}`"),
            Place::Element => write!(f, "element `{path}`"),
            Place::Payload => write!(f, "payload `{path}`"),
        }
    }
}

/// A path through JSON being walked, and what kind of place it names.
struct Path {
    text: String,
    place: Place,
}

/// One step down into JSON.
enum Step<'a> {
    /// A key of an object: a record field, or a case of an option, result
    /// or variant (see [`Place`]).
    Key(&'a str, Place),
    /// An index of an array.
    Index(usize),
}

impl Path {
    /// The path of a whole value: an argument named `root`, or, if `root`
    /// is empty, an unnamed one.
    fn new(root: &str) -> Path {
        let place = if root.is_empty() { Place::Value } else { Place::Argument };
        Path { text: root.to_string(), place }
    }

    /// The path one `step` further down, as text.
    fn joined(&self, step: &Step<'_>) -> String {
        let mut text = self.text.clone();
        push(&mut text, step);
        text
    }

    /// Runs `walk` one `step` further down, then comes back up.
    fn within<T>(&mut self, step: Step<'_>, walk: impl FnOnce(&mut Path) -> T) -> T {
        let (len, place) = (self.text.len(), self.place);
        push(&mut self.text, &step);
        self.place = match step {
            Step::Key(_, place) => place,
            Step::Index(_) => Place::Element,
        };
        let out = walk(self);
        self.text.truncate(len);
        self.place = place;
        out
    }

    /// A misfit of `given`, expected to be of type `ty`, here.
    fn misfit(&self, ty: &Type, given: &Json, misfit: Misfit) -> JsonError {
        JsonError::Misfit {
            path: self.text.clone(),
            place: self.place,
            expected: TypeDisplay(ty).to_string(),
            given: truncate(&given.to_string(), QUOTED_BYTES),
            misfit: Box::new(misfit),
        }
    }

    /// A handle of kind `kind` here.
    fn handle(&self, kind: String) -> JsonError {
        JsonError::Handle { path: self.text.clone(), place: self.place, kind }
    }
}

fn push(text: &mut String, step: &Step<'_>) {
    match step {
        Step::Key(key, _) => {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(key);
        }
        Step::Index(i) => {
            text.push('[');
            text.push_str(&i.to_string());
            text.push(']');
        }
    }
}

/// `val` as JSON (see the [module documentation](self) for the mapping).
///
/// # Errors
///
/// [`JsonError::Handle`] if `val` holds a handle.
pub fn to_json(val: &Val) -> Result<Json, JsonError> {
    encode(val, &mut Path::new(""))
}

/// A reply as JSON: `null` for no result, the value for one, an array of
/// the values for several. (A component function returns at most one
/// value today; a caller who knows the signature knows which to expect,
/// and can tell a function without result from a `none`.)
///
/// # Errors
///
/// [`JsonError::Handle`] if a result holds a handle; the path then starts
/// at the result's index (`[0].x`) when there are several.
pub fn reply_to_json(results: &[Val]) -> Result<Json, JsonError> {
    match results {
        [] => Ok(Json::Null),
        [one] => to_json(one),
        many => {
            let mut path = Path::new("");
            let items = many
                .iter()
                .enumerate()
                .map(|(i, val)| path.within(Step::Index(i), |path| encode(val, path)))
                .collect::<Result<_, _>>()?;
            Ok(Json::Array(items))
        }
    }
}

fn encode(val: &Val, path: &mut Path) -> Result<Json, JsonError> {
    let list = |items: &[Val], path: &mut Path| -> Result<Json, JsonError> {
        let items = items
            .iter()
            .enumerate()
            .map(|(i, val)| path.within(Step::Index(i), |path| encode(val, path)))
            .collect::<Result<_, _>>()?;
        Ok(Json::Array(items))
    };
    let keyed = |key: &str, val: Option<&Val>, path: &mut Path| -> Result<Json, JsonError> {
        let payload = match val {
            Some(val) => path.within(Step::Key(key, Place::Payload), |path| encode(val, path))?,
            None => Json::Null,
        };
        Ok(Json::Object(Map::from_iter([(key.to_string(), payload)])))
    };
    Ok(match val {
        Val::Bool(b) => Json::Bool(*b),
        Val::S8(n) => Json::from(*n),
        Val::U8(n) => Json::from(*n),
        Val::S16(n) => Json::from(*n),
        Val::U16(n) => Json::from(*n),
        Val::S32(n) => Json::from(*n),
        Val::U32(n) => Json::from(*n),
        Val::S64(n) if n.unsigned_abs() <= MAX_EXACT_JSON_INTEGER => Json::from(*n),
        Val::S64(n) => Json::String(n.to_string()),
        Val::U64(n) if *n <= MAX_EXACT_JSON_INTEGER => Json::from(*n),
        Val::U64(n) => Json::String(n.to_string()),
        Val::Float32(x) => float(shortest_f64(*x)),
        Val::Float64(x) => float(*x),
        Val::Char(c) => Json::String(c.to_string()),
        Val::String(s) => Json::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => list(items, path)?,
        Val::Map(pairs) => {
            let pairs = pairs
                .iter()
                .enumerate()
                .map(|(i, (key, val))| {
                    path.within(Step::Index(i), |path| {
                        let key = path.within(Step::Index(0), |path| encode(key, path))?;
                        let val = path.within(Step::Index(1), |path| encode(val, path))?;
                        Ok(Json::Array(vec![key, val]))
                    })
                })
                .collect::<Result<_, _>>()?;
            Json::Array(pairs)
        }
        Val::Record(fields) => {
            let mut object = Map::new();
            for (name, val) in fields {
                let json = path.within(Step::Key(name, Place::Field), |path| encode(val, path))?;
                object.insert(name.clone(), json);
            }
            Json::Object(object)
        }
        Val::Variant(case, None) | Val::Enum(case) => Json::String(case.clone()),
        Val::Variant(case, Some(payload)) => keyed(case, Some(payload), path)?,
        Val::Option(None) => Json::Null,
        // The payload is itself an option: wrapped, so that `null` means
        // only the outer `none`.
        Val::Option(Some(inner)) if matches!(**inner, Val::Option(_)) => keyed("some", Some(inner), path)?,
        Val::Option(Some(inner)) => encode(inner, path)?,
        Val::Result(Ok(payload)) => keyed("ok", payload.as_deref(), path)?,
        Val::Result(Err(payload)) => keyed("err", payload.as_deref(), path)?,
        Val::Flags(names) => Json::Array(names.iter().map(|n| Json::String(n.clone())).collect()),
        Val::Resource(_) => return Err(path.handle("resource".into())),
        Val::Future(_) => return Err(path.handle("future".into())),
        Val::Stream(_) => return Err(path.handle("stream".into())),
        Val::ErrorContext(_) => return Err(path.handle("error-context".into())),
    })
}

/// A float as JSON: a number, or one of the three strings JSON numbers
/// cannot say.
fn float(x: f64) -> Json {
    match Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("NaN".into()),
        None if x > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

/// The double with the fewest decimal digits that reads back as `x`:
/// `0.1f32` is `0.1`, not the `0.10000000149011612` that widening gives.
/// Rust prints an `f32` with the fewest digits that read back as the same
/// `f32`, and that decimal read as a double then narrows back to `x`.
fn shortest_f64(x: f32) -> f64 {
    if !x.is_finite() {
        return f64::from(x);
    }
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// The value of type `ty` that `json` stands for (see the [module
/// documentation](self) for the mapping).
///
/// # Errors
///
/// A [`JsonError`] saying where (the path from the whole value, empty at
/// the top), what type was expected there and what was given.
pub fn from_json(json: &Json, ty: &Type) -> Result<Val, JsonError> {
    decode(json, ty, &mut Path::new(""))
}

fn decode(json: &Json, ty: &Type, path: &mut Path) -> Result<Val, JsonError> {
    let misfit = |path: &Path, misfit: Misfit| path.misfit(ty, json, misfit);
    let kind = |path: &Path, wanted: &'static str| path.misfit(ty, json, Misfit::Kind(wanted));
    let int = |path: &Path, range: Range| integer(json, range).map_err(|m| misfit(path, m));
    Ok(match ty {
        Type::Bool => Val::Bool(json.as_bool().ok_or_else(|| kind(path, "true or false"))?),
        Type::S8 => Val::S8(int(path, Range::S8)? as i8),
        Type::U8 => Val::U8(int(path, Range::U8)? as u8),
        Type::S16 => Val::S16(int(path, Range::S16)? as i16),
        Type::U16 => Val::U16(int(path, Range::U16)? as u16),
        Type::S32 => Val::S32(int(path, Range::S32)? as i32),
        Type::U32 => Val::U32(int(path, Range::U32)? as u32),
        Type::S64 => Val::S64(int(path, Range::S64)? as i64),
        Type::U64 => Val::U64(int(path, Range::U64)? as u64),
        Type::Float32 => {
            let x = float_from(json).ok_or_else(|| kind(path, FLOAT))?;
            let narrow = x as f32;
            if narrow.is_infinite() && x.is_finite() {
                return Err(misfit(path, Misfit::OutOfRange("beyond ±3.4028235e38")));
            }
            Val::Float32(narrow)
        }
        Type::Float64 => Val::Float64(float_from(json).ok_or_else(|| kind(path, FLOAT))?),
        Type::Char => {
            let s = json.as_str().ok_or_else(|| kind(path, "a one-character string"))?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(misfit(path, Misfit::NotOneCharacter(s.chars().count()))),
            }
        }
        Type::String => Val::String(json.as_str().ok_or_else(|| kind(path, "a string"))?.to_string()),
        Type::List(list) => {
            let items = json.as_array().ok_or_else(|| kind(path, "an array"))?;
            Val::List(decode_all(items, std::iter::repeat(list.ty()), path)?)
        }
        Type::FixedLengthList(list) => {
            let items = json.as_array().ok_or_else(|| kind(path, "an array"))?;
            let expected = list.len() as usize;
            if items.len() != expected {
                return Err(misfit(path, Misfit::Length { expected, given: items.len() }));
            }
            Val::FixedLengthList(decode_all(items, std::iter::repeat(list.ty()), path)?)
        }
        Type::Tuple(tuple) => {
            let items = json.as_array().ok_or_else(|| kind(path, "an array"))?;
            let expected = tuple.types().len();
            if items.len() != expected {
                return Err(misfit(path, Misfit::Length { expected, given: items.len() }));
            }
            Val::Tuple(decode_all(items, tuple.types(), path)?)
        }
        Type::Map(map) => {
            let pairs = json.as_array().ok_or_else(|| kind(path, "an array of [key, value] pairs"))?;
            let pair_type = [map.key(), map.value()];
            let mut decoded = Vec::with_capacity(pairs.len());
            for (i, pair) in pairs.iter().enumerate() {
                let two = path.within(Step::Index(i), |path| match pair.as_array() {
                    Some(two) if two.len() == 2 => decode_all(two, pair_type.iter().cloned(), path),
                    _ => Err(path.misfit(ty, pair, Misfit::Kind("a [key, value] pair"))),
                })?;
                let [key, val]: [Val; 2] = two.try_into().map_err(|_| kind(path, "a [key, value] pair"))?;
                decoded.push((key, val));
            }
            Val::Map(decoded)
        }
        Type::Record(record) => {
            let object = json.as_object().ok_or_else(|| kind(path, "an object"))?;
            if let Some(key) = object.keys().find(|key| record.fields().all(|f| f.name != key.as_str())) {
                let known: Vec<String> = record.fields().map(|f| format!("`{}`", f.name)).collect();
                let known = if known.is_empty() { "no fields".to_string() } else { known.join(", ") };
                let path_of_key = path.joined(&Step::Key(key, Place::Field));
                return Err(misfit(path, Misfit::UnknownField { path: path_of_key, known }));
            }
            let mut fields = Vec::with_capacity(record.fields().len());
            for field in record.fields() {
                let val = match object.get(field.name) {
                    Some(json) => {
                        path.within(Step::Key(field.name, Place::Field), |path| decode(json, &field.ty, path))?
                    }
                    None if matches!(field.ty, Type::Option(_)) => Val::Option(None),
                    None => {
                        let field_path = path.joined(&Step::Key(field.name, Place::Field));
                        let ty = TypeDisplay(&field.ty).to_string();
                        return Err(misfit(path, Misfit::MissingField { path: field_path, ty }));
                    }
                };
                fields.push((field.name.to_string(), val));
            }
            Val::Record(fields)
        }
        Type::Variant(variant) => {
            let (case, payload) = one_case(json).map_err(|m| misfit(path, m))?;
            let Some(case_type) = variant.cases().find(|c| c.name == case) else {
                return Err(misfit(path, Misfit::UnknownCase(case.to_string())));
            };
            let payload = decode_payload(case, case_type.ty.as_ref(), payload, path)
                .map_err(|m| m.unwrap_or_else(|m| misfit(path, m)))?;
            Val::Variant(case.to_string(), payload)
        }
        Type::Enum(cases) => {
            let case = json.as_str().ok_or_else(|| kind(path, "a case name"))?;
            if cases.names().all(|n| n != case) {
                return Err(misfit(path, Misfit::UnknownCase(case.to_string())));
            }
            Val::Enum(case.to_string())
        }
        Type::Option(option) => {
            let inner = option.ty();
            match json {
                Json::Null => Val::Option(None),
                _ if matches!(inner, Type::Option(_)) => {
                    let payload = match json.as_object() {
                        Some(object) if object.len() == 1 => object.get("some"),
                        _ => None,
                    };
                    let payload = payload.ok_or_else(|| kind(path, r#"null or {"some": ...}"#))?;
                    let val = path.within(Step::Key("some", Place::Payload), |path| decode(payload, &inner, path))?;
                    Val::Option(Some(Box::new(val)))
                }
                _ => Val::Option(Some(Box::new(decode(json, &inner, path)?))),
            }
        }
        Type::Result(result) => {
            let (case, payload) = one_case(json).map_err(|m| misfit(path, m))?;
            let payload_type = match case {
                "ok" => result.ok(),
                "err" => result.err(),
                other => return Err(misfit(path, Misfit::UnknownCase(other.to_string()))),
            };
            let payload = decode_payload(case, payload_type.as_ref(), payload, path)
                .map_err(|m| m.unwrap_or_else(|m| misfit(path, m)))?;
            Val::Result(if case == "ok" { Ok(payload) } else { Err(payload) })
        }
        Type::Flags(flags) => {
            let items = json.as_array().ok_or_else(|| kind(path, "an array of flag names"))?;
            let mut names: Vec<String> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.within(Step::Index(i), |path| {
                    let name = item.as_str().ok_or_else(|| path.misfit(ty, item, Misfit::Kind("a flag name")))?;
                    if flags.names().all(|n| n != name) {
                        return Err(path.misfit(ty, item, Misfit::UnknownFlag(name.to_string())));
                    }
                    if names.iter().any(|n| n == name) {
                        return Err(path.misfit(ty, item, Misfit::DuplicateFlag(name.to_string())));
                    }
                    names.push(name.to_string());
                    Ok(())
                })?;
            }
            // As the WAVE parser orders them, so that both decode a
            // message to the same value.
            names.sort_unstable();
            Val::Flags(names)
        }
        Type::Own(_) | Type::Borrow(_) | Type::Stream(_) | Type::Future(_) | Type::ErrorContext => {
            return Err(path.handle(TypeDisplay(ty).to_string()));
        }
    })
}

/// Decodes `items` as values of `types`, in order, each at its index.
fn decode_all(items: &[Json], types: impl Iterator<Item = Type>, path: &mut Path) -> Result<Vec<Val>, JsonError> {
    items
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (json, ty))| path.within(Step::Index(i), |path| decode(json, &ty, path)))
        .collect()
}

/// The case a variant or result value names, and its payload if it is
/// given as an object: `"case"` or `{"case": payload}`.
fn one_case(json: &Json) -> Result<(&str, Option<&Json>), Misfit> {
    match json {
        Json::String(case) => Ok((case, None)),
        Json::Object(object) => match object.iter().next() {
            Some((case, payload)) if object.len() == 1 => Ok((case, Some(payload))),
            _ => Err(Misfit::NotOneCase(object.len())),
        },
        _ => Err(Misfit::Kind(r#""case" or {"case": payload}"#)),
    }
}

/// The payload of `case`, given as `payload` (`None` for the bare case
/// name), of type `ty` (`None` for a case without payload). A misfit of
/// the case itself is an `Err(Err(_))`, said by the caller at the case's
/// place; one inside the payload is an `Err(Ok(_))`, said where it lies.
fn decode_payload(
    case: &str,
    ty: Option<&Type>,
    payload: Option<&Json>,
    path: &mut Path,
) -> Result<Option<Box<Val>>, Result<JsonError, Misfit>> {
    match (ty, payload) {
        (None, None | Some(Json::Null)) => Ok(None),
        (None, Some(_)) => Err(Err(Misfit::NoPayload(case.to_string()))),
        (Some(_), None) => Err(Err(Misfit::PayloadRequired(case.to_string()))),
        (Some(ty), Some(json)) => path
            .within(Step::Key(case, Place::Payload), |path| decode(json, ty, path))
            .map(|val| Some(Box::new(val)))
            .map_err(Ok),
    }
}

/// What a float may be given as.
const FLOAT: &str = r#"a number, "NaN", "Infinity" or "-Infinity""#;

fn float_from(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// The range of an integer type, and whether it may be given as a
/// decimal string (the 64-bit types).
#[derive(Clone, Copy)]
enum Range {
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
}

impl Range {
    fn bounds(self) -> (i128, i128, &'static str) {
        match self {
            Range::S8 => (i8::MIN.into(), i8::MAX.into(), "-128 to 127"),
            Range::U8 => (0, u8::MAX.into(), "0 to 255"),
            Range::S16 => (i16::MIN.into(), i16::MAX.into(), "-32768 to 32767"),
            Range::U16 => (0, u16::MAX.into(), "0 to 65535"),
            Range::S32 => (i32::MIN.into(), i32::MAX.into(), "-2147483648 to 2147483647"),
            Range::U32 => (0, u32::MAX.into(), "0 to 4294967295"),
            Range::S64 => (i64::MIN.into(), i64::MAX.into(), "-9223372036854775808 to 9223372036854775807"),
            Range::U64 => (0, u64::MAX.into(), "0 to 18446744073709551615"),
        }
    }

    fn wide(self) -> bool {
        matches!(self, Range::S64 | Range::U64)
    }
}

/// The integer `json` stands for, within `range`.
fn integer(json: &Json, range: Range) -> Result<i128, Misfit> {
    let (min, max, said) = range.bounds();
    let n: i128 = match json {
        Json::Number(n) => {
            if let Some(n) = n.as_u64() {
                n.into()
            } else if let Some(n) = n.as_i64() {
                n.into()
            } else {
                // Written with a fraction or an exponent: a double.
                let x = n.as_f64().unwrap_or(f64::NAN);
                if x.fract() != 0.0 {
                    return Err(Misfit::NotAnInteger);
                }
                if x.abs() > MAX_EXACT_JSON_INTEGER as f64 {
                    return Err(if range.wide() && x.abs() <= u64::MAX as f64 {
                        Misfit::Inexact
                    } else {
                        Misfit::OutOfRange(said)
                    });
                }
                x as i128
            }
        }
        Json::String(s) if range.wide() => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Misfit::Kind("an integer (a number, or a decimal string)"));
            }
            // Only too many digits fail to parse once the form is checked.
            s.parse().map_err(|_| Misfit::OutOfRange(said))?
        }
        _ if range.wide() => return Err(Misfit::Kind("an integer (a number, or a decimal string)")),
        _ => return Err(Misfit::Kind("an integer")),
    };
    if n < min || n > max {
        return Err(Misfit::OutOfRange(said));
    }
    Ok(n)
}

/// Counts the bytes written to it.
struct ByteCount(u64);

impl io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The size of `json` written compactly: what a size limit on a JSON
/// message counts (the text a sender wrote, less its whitespace).
fn compact_size(json: &Json) -> u64 {
    let mut count = ByteCount(0);
    // Writing a `serde_json::Value` to a sink that takes everything cannot
    // fail.
    let _ = serde_json::to_writer(&mut count, json);
    count.0
}

impl Protocol {
    /// Reads a call of `function` (named as for [`Protocol::resolve`])
    /// with arguments in JSON, and type-checks it: the same [`Call`] that
    /// [`Protocol::parse`] makes of the same values in WAVE.
    ///
    /// `args` is either an object keyed by parameter name (a missing
    /// `option` parameter is `none`) or an array of the arguments in order
    /// (trailing `option` arguments may be left out, as in WAVE). A
    /// function of one parameter takes `{"name": v}` or `[v]` too, never
    /// the bare value: a bare array or object could be either the
    /// argument or the list of arguments. A function without parameters
    /// takes `{}` or `[]`.
    ///
    /// `max_bytes` limits the size of `args` written compactly, as it
    /// limits the length of a WAVE message.
    ///
    /// # Errors
    ///
    /// [`MessageError::TooLarge`], [`MessageError::UnknownFunction`],
    /// [`MessageError::Ambiguous`], [`MessageError::Unsupported`] as for
    /// WAVE, and [`MessageError::IllTyped`] with the expected signature
    /// and the first argument that does not fit (a [`JsonError`] rooted at
    /// its parameter's name).
    pub fn call_from_json(&self, function: &str, args: &Json, max_bytes: u64) -> Result<Call, MessageError> {
        let size = compact_size(args);
        if size > max_bytes {
            return Err(MessageError::TooLarge { size, limit: max_bytes });
        }
        let func = self.resolve(function)?;
        let f = self.function(func);
        if let Some(reason) = &f.unsupported {
            return Err(MessageError::Unsupported { signature: f.signature(), reason: reason.clone() });
        }
        let ill = |reason: String| MessageError::IllTyped { signature: f.signature(), reason };
        let decode_arg = |json: &Json, (name, ty): &(String, Type)| {
            decode(json, ty, &mut Path::new(name)).map_err(|e| ill(e.to_string()))
        };
        let args = match args {
            Json::Array(given) => {
                let left_out = f.params.get(given.len()..).unwrap_or_default();
                if given.len() > f.params.len() || left_out.iter().any(|(_, ty)| !matches!(ty, Type::Option(_))) {
                    return Err(ill(format!("expected {} argument(s), got {}", f.params.len(), given.len())));
                }
                let mut args = Vec::with_capacity(f.params.len());
                for (json, param) in given.iter().zip(&f.params) {
                    args.push(decode_arg(json, param)?);
                }
                args.extend(left_out.iter().map(|_| Val::Option(None)));
                args
            }
            Json::Object(given) => {
                if let Some(key) = given.keys().find(|key| f.params.iter().all(|(name, _)| name != *key)) {
                    let known: Vec<String> = f.params.iter().map(|(name, _)| format!("`{name}`")).collect();
                    let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                    return Err(ill(format!("unknown argument `{key}`; the parameters are {known}")));
                }
                let mut args = Vec::with_capacity(f.params.len());
                for param @ (name, ty) in &f.params {
                    args.push(match given.get(name) {
                        Some(json) => decode_arg(json, param)?,
                        None if matches!(ty, Type::Option(_)) => Val::Option(None),
                        None => return Err(ill(format!("missing argument `{name}` ({})", TypeDisplay(ty)))),
                    });
                }
                args
            }
            other => {
                return Err(ill(format!(
                    "the arguments are an object keyed by parameter name or an array in order, got `{}`",
                    truncate(&other.to_string(), QUOTED_BYTES)
                )));
            }
        };
        Ok(Call { func, args: args.into_boxed_slice(), generation: 0 })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn protocol() -> &'static Protocol {
        super::super::kinds::protocol()
    }

    /// The type of parameter `param` of function `func`.
    fn ty(func: &str, param: &str) -> Type {
        let f = protocol().function(protocol().resolve(func).unwrap());
        f.params.iter().find(|(name, _)| name == param).map(|(_, ty)| ty.clone()).unwrap()
    }

    /// The arguments of the WAVE call `wave`, as the WAVE parser makes them.
    fn wave_args(wave: &str) -> Box<[Val]> {
        protocol().parse(wave, u64::MAX).unwrap_or_else(|e| panic!("{wave}: {e}")).args
    }

    /// Why the JSON call of `func` with `args` is refused: the reason of
    /// the ill-typed message error it must be.
    fn refusal(func: &str, args: Json) -> String {
        match protocol().call_from_json(func, &args, u64::MAX) {
            Err(MessageError::IllTyped { reason, .. }) => reason,
            other => panic!("{func}({args}) should be ill-typed, got {other:?}"),
        }
    }

    /// The misfit `json` is for parameter `param` of `func`, decoded alone.
    fn misfit(json: Json, func: &str, param: &str) -> Misfit {
        match from_json(&json, &ty(func, param)) {
            Err(JsonError::Misfit { misfit, .. }) => *misfit,
            other => panic!("{json} should not fit {func}'s `{param}`, got {other:?}"),
        }
    }

    /// Each call, in WAVE and with its arguments as a JSON array: the
    /// mapping of every kind of WIT type, its edge cases included.
    fn same_calls() -> Vec<(&'static str, Json)> {
        let p53 = 9_007_199_254_740_992_i64;
        vec![
            (
                "integers(-128, 255, -32768, 65535, -2147483648, 4294967295, 0, 0)",
                json!([-128, 255, -32768, 65535, -2_147_483_648_i64, 4_294_967_295_u32, 0, 0]),
            ),
            ("integers(0, 0, 0, 0, 0, 0, -9007199254740992, 9007199254740992)", json!([0, 0, 0, 0, 0, 0, -p53, p53])),
            (
                "integers(0, 0, 0, 0, 0, 0, -9007199254740993, 9007199254740993)",
                json!([0, 0, 0, 0, 0, 0, "-9007199254740993", "9007199254740993"]),
            ),
            (
                "integers(0, 0, 0, 0, 0, 0, -9223372036854775808, 18446744073709551615)",
                json!([0, 0, 0, 0, 0, 0, "-9223372036854775808", "18446744073709551615"]),
            ),
            ("floats(0.1, 1e300)", json!([0.1, 1e300])),
            ("floats(-0.0, -2.5)", json!([-0.0, -2.5])),
            ("floats(nan, inf)", json!(["NaN", "Infinity"])),
            ("floats(-inf, nan)", json!(["-Infinity", "NaN"])),
            (r#"text(true, 'é', "ada \"the first\"")"#, json!([true, "é", "ada \"the first\""])),
            (
                r#"greet({name: "ada", age: 36, tags: ["x", "y"], home: some({street: "s", city: "c"}), nick: none})"#,
                json!([{"name": "ada", "age": 36, "tags": ["x", "y"], "home": {"street": "s", "city": "c"}, "nick": null}]),
            ),
            (
                r#"group([{name: "b", age: 0, tags: [], home: none, nick: some("bee")}])"#,
                json!([[{"name": "b", "age": 0, "tags": [], "home": null, "nick": "bee"}]]),
            ),
            ("bytes([0, 1, 255])", json!([[0, 1, 255]])),
            ("bytes([])", json!([[]])),
            (r#"pair((7, "a", false))"#, json!([[7, "a", false]])),
            ("nested(none, none)", json!([null, null])),
            ("nested(some(none), some(none))", json!([{"some": null}, {"some": null}])),
            ("nested(some(some(5)), some(some(none)))", json!([{"some": 5}, {"some": {"some": null}}])),
            (r#"nested(none, some(some(some("x"))))"#, json!([null, {"some": {"some": "x"}}])),
            (r#"outcome(ok(1), ok, ok("x"), err("e"))"#, json!([{"ok": 1}, {"ok": null}, {"ok": "x"}, {"err": "e"}])),
            (r#"outcome(err("no"), err, err, ok)"#, json!([{"err": "no"}, {"err": null}, {"err": null}, {"ok": null}])),
            ("paint(red, dot, {})", json!(["red", "dot", []])),
            ("paint(blue, circle(3), {exec, read})", json!(["blue", {"circle": 3}, ["exec", "read"]])),
            (r#"paint(green, label("hi"), {write})"#, json!(["green", {"label": "hi"}, ["write"]])),
            ("paint(green, maybe(none), {})", json!(["green", {"maybe": null}, []])),
            ("paint(green, maybe(some(2)), {})", json!(["green", {"maybe": 2}, []])),
            ("tick()", json!([])),
        ]
    }

    #[test]
    fn every_kind_of_value_maps_to_its_json_and_back() {
        for (wave, json) in same_calls() {
            let args = wave_args(wave);
            let f = protocol().function(protocol().parse(wave, u64::MAX).unwrap().func);
            let given = json.as_array().unwrap();
            assert_eq!(args.len(), given.len(), "{wave}");
            for ((val, json), (name, ty)) in args.iter().zip(given).zip(&f.params) {
                assert_eq!(&to_json(val).unwrap(), json, "{wave}: `{name}` to JSON");
                assert_eq!(&from_json(json, ty).unwrap(), val, "{wave}: `{name}` from {json}");
            }
        }
    }

    #[test]
    fn a_json_call_is_the_call_its_wave_text_makes() {
        for (wave, json) in same_calls() {
            let name = &wave[..wave.find('(').unwrap()];
            let from_wave = protocol().parse(wave, u64::MAX).unwrap();
            let by_position = protocol().call_from_json(name, &json, u64::MAX).unwrap();
            assert_eq!(
                (by_position.func, &by_position.args, by_position.generation),
                (from_wave.func, &from_wave.args, 0)
            );
            // The same arguments keyed by parameter name.
            let f = protocol().function(from_wave.func);
            let keyed: Map<String, Json> =
                f.params.iter().map(|(name, _)| name.clone()).zip(json.as_array().unwrap().iter().cloned()).collect();
            let by_name = protocol().call_from_json(name, &Json::Object(keyed), u64::MAX).unwrap();
            assert_eq!(by_name.args, from_wave.args, "{wave} by name");
            // And the qualified name resolves as in WAVE.
            let qualified = protocol().call_from_json(&format!("api.{name}"), &json, u64::MAX).unwrap();
            assert_eq!(qualified.func, from_wave.func);
        }
        // Flags in any order, as WAVE takes them.
        let json = protocol().call_from_json("paint", &json!(["red", "dot", ["write", "read"]]), u64::MAX).unwrap();
        assert_eq!(json.args, wave_args("paint(red, dot, {write, read})"));
    }

    #[test]
    fn a_64_bit_integer_is_a_number_up_to_2_to_the_53_and_a_decimal_string_beyond() {
        let p53 = MAX_EXACT_JSON_INTEGER;
        assert_eq!(to_json(&Val::U64(p53)).unwrap(), json!(9_007_199_254_740_992_u64));
        assert_eq!(to_json(&Val::U64(p53 + 1)).unwrap(), json!("9007199254740993"));
        assert_eq!(to_json(&Val::S64(-(p53 as i64))).unwrap(), json!(-9_007_199_254_740_992_i64));
        assert_eq!(to_json(&Val::S64(-(p53 as i64) - 1)).unwrap(), json!("-9007199254740993"));
        assert_eq!(to_json(&Val::S64(i64::MIN)).unwrap(), json!("-9223372036854775808"));
        // On input, either form, as long as nothing was rounded.
        let u64_type = ty("integers", "h");
        for given in [json!(9_007_199_254_740_993_u64), json!("9007199254740993")] {
            assert_eq!(from_json(&given, &u64_type), Ok(Val::U64(p53 + 1)), "{given}");
        }
        assert_eq!(from_json(&json!(u64::MAX), &u64_type), Ok(Val::U64(u64::MAX)));
        assert_eq!(from_json(&json!("007"), &u64_type), Ok(Val::U64(7)));
        assert_eq!(from_json(&json!(1e15), &u64_type), Ok(Val::U64(1_000_000_000_000_000)));
        assert_eq!(misfit(json!(1e19), "integers", "h"), Misfit::Inexact);
        assert_eq!(misfit(json!(1e20), "integers", "h"), Misfit::OutOfRange("0 to 18446744073709551615"));
        assert_eq!(
            misfit(json!("18446744073709551616"), "integers", "h"),
            Misfit::OutOfRange("0 to 18446744073709551615")
        );
        assert_eq!(misfit(json!("-1"), "integers", "h"), Misfit::OutOfRange("0 to 18446744073709551615"));
        assert_eq!(
            misfit(json!("9223372036854775808"), "integers", "g"),
            Misfit::OutOfRange("-9223372036854775808 to 9223372036854775807")
        );
        for not_decimal in ["+5", " 5", "0x5", "1e3", "", "-", "5.0"] {
            assert_eq!(
                misfit(json!(not_decimal), "integers", "h"),
                Misfit::Kind("an integer (a number, or a decimal string)"),
                "{not_decimal:?}"
            );
        }
    }

    #[test]
    fn a_narrow_integer_is_a_number_in_its_range_with_no_fraction() {
        assert_eq!(from_json(&json!(3.0), &ty("integers", "b")), Ok(Val::U8(3)));
        assert_eq!(misfit(json!(3.5), "integers", "b"), Misfit::NotAnInteger);
        assert_eq!(misfit(json!(256), "integers", "b"), Misfit::OutOfRange("0 to 255"));
        assert_eq!(misfit(json!(-1), "integers", "b"), Misfit::OutOfRange("0 to 255"));
        assert_eq!(misfit(json!(-129), "integers", "a"), Misfit::OutOfRange("-128 to 127"));
        assert_eq!(misfit(json!(1e300), "integers", "f"), Misfit::OutOfRange("0 to 4294967295"));
        // Only the 64-bit types take decimal strings.
        assert_eq!(misfit(json!("5"), "integers", "b"), Misfit::Kind("an integer"));
        assert_eq!(
            from_json(&json!(300), &ty("integers", "b")).unwrap_err().to_string(),
            "the value expects u8, got `300`: out of range (0 to 255)"
        );
    }

    #[test]
    fn an_f32_is_written_with_the_fewest_digits_and_reads_back_exactly() {
        assert_eq!(to_json(&Val::Float32(0.1)).unwrap().to_string(), "0.1");
        assert_eq!(to_json(&Val::Float32(-0.0)).unwrap().to_string(), "-0.0");
        let f32_type = ty("floats", "x");
        let samples = [f32::MAX, f32::MIN, f32::MIN_POSITIVE, f32::from_bits(1), f32::EPSILON, 1.0 / 3.0, 16_777_217.0];
        let stepped = (0..u32::MAX).step_by(65_521).map(f32::from_bits);
        for x in samples.into_iter().chain(stepped).filter(|x| x.is_finite()) {
            let back = from_json(&to_json(&Val::Float32(x)).unwrap(), &f32_type).unwrap();
            assert_eq!(back, Val::Float32(x), "{x:e} ({:#x})", x.to_bits());
        }
        assert_eq!(misfit(json!(1e39), "floats", "x"), Misfit::OutOfRange("beyond ±3.4028235e38"));
        assert_eq!(misfit(json!("nan"), "floats", "x"), Misfit::Kind(FLOAT));
        assert_eq!(misfit(json!(null), "floats", "y"), Misfit::Kind(FLOAT));
    }

    #[test]
    fn a_char_is_a_string_of_exactly_one_character() {
        assert_eq!(from_json(&json!("🦀"), &ty("text", "c")), Ok(Val::Char('🦀')));
        assert_eq!(misfit(json!("ab"), "text", "c"), Misfit::NotOneCharacter(2));
        assert_eq!(misfit(json!(""), "text", "c"), Misfit::NotOneCharacter(0));
        assert_eq!(misfit(json!(97), "text", "c"), Misfit::Kind("a one-character string"));
    }

    #[test]
    fn a_tuple_is_an_array_of_exactly_its_length() {
        assert_eq!(misfit(json!([1, "a"]), "pair", "t"), Misfit::Length { expected: 3, given: 2 });
        assert_eq!(misfit(json!([1, "a", true, 4]), "pair", "t"), Misfit::Length { expected: 3, given: 4 });
    }

    #[test]
    fn an_option_inside_an_option_takes_only_null_or_the_some_object() {
        let wanted = Misfit::Kind(r#"null or {"some": ...}"#);
        assert_eq!(misfit(json!(5), "nested", "o"), wanted);
        assert_eq!(misfit(json!({"some": 5, "none": null}), "nested", "o"), wanted);
        assert_eq!(misfit(json!({"sum": 5}), "nested", "o"), wanted);
        // An option of anything else never takes the wrapper.
        assert_eq!(misfit(json!({"some": 5}), "lookup", "fallback"), Misfit::Kind("an integer"));
        let err = refusal("nested", json!([{"some": "5"}]));
        assert_eq!(err, r#"payload `o.some` expects u32, got `"5"`: expected an integer"#);
        let err = refusal("nested", json!([null, {"some": {"some": 1}}]));
        assert_eq!(err, "payload `deep.some.some` expects string, got `1`: expected a string");
    }

    #[test]
    fn a_result_is_one_key_and_a_side_without_payload_type_takes_null_or_the_bare_name() {
        let bare = ty("outcome", "bare");
        for given in [json!("ok"), json!({"ok": null})] {
            assert_eq!(from_json(&given, &bare), Ok(Val::Result(Ok(None))), "{given}");
        }
        assert_eq!(from_json(&json!("err"), &ty("outcome", "only-ok")), Ok(Val::Result(Err(None))));
        assert_eq!(misfit(json!({"ok": 5}), "outcome", "bare"), Misfit::NoPayload("ok".into()));
        assert_eq!(misfit(json!("ok"), "outcome", "r"), Misfit::PayloadRequired("ok".into()));
        assert_eq!(misfit(json!({"ok": null}), "outcome", "r"), Misfit::Kind("an integer"));
        assert_eq!(misfit(json!({"okay": 1}), "outcome", "r"), Misfit::UnknownCase("okay".into()));
        assert_eq!(misfit(json!({}), "outcome", "r"), Misfit::NotOneCase(0));
        assert_eq!(misfit(json!({"ok": 1, "err": "e"}), "outcome", "r"), Misfit::NotOneCase(2));
        assert_eq!(misfit(json!(1), "outcome", "r"), Misfit::Kind(r#""case" or {"case": payload}"#));
        let err = refusal("outcome", json!([{"err": 5}, "ok", {"ok": "x"}, "ok"]));
        assert_eq!(err, "payload `r.err` expects string, got `5`: expected a string");
    }

    #[test]
    fn a_variant_case_without_payload_is_its_name_or_an_object_of_null() {
        let shape = ty("paint", "s");
        for given in [json!("dot"), json!({"dot": null})] {
            assert_eq!(from_json(&given, &shape), Ok(Val::Variant("dot".into(), None)), "{given}");
        }
        assert_eq!(misfit(json!({"dot": 1}), "paint", "s"), Misfit::NoPayload("dot".into()));
        assert_eq!(misfit(json!("circle"), "paint", "s"), Misfit::PayloadRequired("circle".into()));
        assert_eq!(misfit(json!("square"), "paint", "s"), Misfit::UnknownCase("square".into()));
        assert_eq!(misfit(json!("purple"), "paint", "c"), Misfit::UnknownCase("purple".into()));
        assert_eq!(misfit(json!({"red": null}), "paint", "c"), Misfit::Kind("a case name"));
        let err = refusal("paint", json!(["red", {"circle": -1}, []]));
        assert_eq!(err, "payload `s.circle` expects u32, got `-1`: out of range (0 to 4294967295)");
    }

    #[test]
    fn flags_are_names_in_any_order_each_known_and_given_once() {
        let perms = ty("paint", "p");
        let sorted = Val::Flags(vec!["exec".into(), "read".into()]);
        assert_eq!(from_json(&json!(["read", "exec"]), &perms), Ok(sorted.clone()));
        assert_eq!(from_json(&json!(["exec", "read"]), &perms), Ok(sorted));
        assert_eq!(misfit(json!(["read", "sudo"]), "paint", "p"), Misfit::UnknownFlag("sudo".into()));
        assert_eq!(misfit(json!(["read", "read"]), "paint", "p"), Misfit::DuplicateFlag("read".into()));
        assert_eq!(misfit(json!("read"), "paint", "p"), Misfit::Kind("an array of flag names"));
        let err = refusal("paint", json!(["red", "dot", ["write", "sudo"]]));
        assert_eq!(err, r#"element `p[1]` expects flags { read, write, exec }, got `"sudo"`: unknown flag `sudo`"#);
    }

    const USER: &str = "record { name: string, age: u8, tags: list<string>, \
                        home: option<record { street: string, city: string }>, nick: option<string> }";

    #[test]
    fn a_misfit_is_said_with_its_path_the_type_expected_and_the_json_given() {
        let err = refusal("greet", json!({"u": {"name": "a", "age": 3, "tags": ["x", 5]}}));
        assert_eq!(err, "element `u.tags[1]` expects string, got `5`: expected a string");
        let err = refusal("greet", json!([{"name": "a", "age": 300, "tags": []}]));
        assert_eq!(err, "field `u.age` expects u8, got `300`: out of range (0 to 255)");
        let err = refusal("greet", json!([{"name": "a"}]));
        assert_eq!(err, format!(r#"argument `u` expects {USER}, got `{{"name":"a"}}`: missing field `u.age` (u8)"#));
        let err = refusal("greet", json!([{"name": "a", "age": 3, "tags": [], "agee": 4}]));
        assert!(
            err.ends_with(": unknown field `u.agee`; the record has `name`, `age`, `tags`, `home`, `nick`"),
            "{err}"
        );
        let home = json!({"name": "a", "age": 3, "tags": [], "home": {"street": "s"}});
        let err =
            refusal("group", json!([[home.clone(), {"name": "b", "age": 4, "tags": [], "home": {"street": "s"}}]]));
        assert_eq!(
            err,
            r#"field `people[0].home` expects record { street: string, city: string }, got `{"street":"s"}`: missing field `people[0].home.city` (string)"#
        );
        let err = refusal("greet", json!([{"name": "a", "age": 3, "tags": [], "nick": 7}]));
        assert_eq!(err, "field `u.nick` expects string, got `7`: expected a string");
        // Long values are cut where they are quoted.
        let err = refusal("text", json!([true, "c", ["a very long array that goes on and on", 1]]));
        assert_eq!(
            err,
            r#"argument `s` expects string, got `["a very long array that goes on and on"…`: expected a string"#
        );
        // The error carries its parts too.
        let Err(JsonError::Misfit { path, place, expected, given, misfit }) =
            from_json(&json!({"name": "a", "age": 3, "tags": [1]}), &ty("greet", "u"))
        else {
            panic!("a number in `tags` must not fit");
        };
        assert_eq!(
            (path.as_str(), place, expected.as_str(), given.as_str(), misfit),
            ("tags[0]", Place::Element, "string", "1", Box::new(Misfit::Kind("a string")))
        );
    }

    #[test]
    fn a_record_field_of_option_type_may_be_left_out_and_no_other() {
        let user = from_json(&json!({"name": "a", "age": 3, "tags": []}), &ty("greet", "u")).unwrap();
        let Val::Record(fields) = user else { panic!("{user:?}") };
        assert_eq!(fields[3], ("home".to_string(), Val::Option(None)));
        assert_eq!(fields[4], ("nick".to_string(), Val::Option(None)));
        assert_eq!(
            misfit(json!({"name": "a", "age": 3}), "greet", "u"),
            Misfit::MissingField { path: "tags".into(), ty: "list<string>".into() }
        );
        assert_eq!(
            misfit(json!({"name": "a", "age": null, "tags": []}), "greet", "u"),
            Misfit::Kind("an integer"),
            "null is not a missing field"
        );
    }

    #[test]
    fn a_call_takes_its_arguments_by_name_or_in_order_and_nothing_else() {
        let lookup = |args: Json| protocol().call_from_json("lookup", &args, u64::MAX).map(|c| c.args);
        let expected = wave_args(r#"lookup("k", none)"#);
        for args in [json!({"key": "k"}), json!({"key": "k", "fallback": null}), json!(["k"]), json!(["k", null])] {
            assert_eq!(lookup(args.clone()).as_ref(), Ok(&expected), "{args}");
        }
        assert_eq!(lookup(json!({"fallback": 5, "key": "k"})), Ok(wave_args(r#"lookup("k", some(5))"#)));
        assert_eq!(
            refusal("lookup", json!({"key": "k", "default": 1})),
            "unknown argument `default`; the parameters are `key`, `fallback`"
        );
        assert_eq!(refusal("lookup", json!({"fallback": 1})), "missing argument `key` (string)");
        assert_eq!(refusal("lookup", json!([])), "expected 2 argument(s), got 0");
        assert_eq!(refusal("lookup", json!(["k", 1, 2])), "expected 2 argument(s), got 3");
        assert_eq!(refusal("tick", json!({"now": 1})), "unknown argument `now`; the parameters are none");
        // A function of one parameter does not take the bare value.
        assert_eq!(
            refusal("bytes", json!("AAEC")),
            r#"the arguments are an object keyed by parameter name or an array in order, got `"AAEC"`"#
        );
        assert_eq!(refusal("bytes", json!([1, 2])), "expected 1 argument(s), got 2");
        // The signature is named as for WAVE.
        let Err(MessageError::IllTyped { signature, .. }) =
            protocol().call_from_json("bytes", &json!([[256]]), u64::MAX)
        else {
            panic!("256 is not a u8")
        };
        assert_eq!(signature, "bytes(data: list<u8>) -> list<u8>");
    }

    #[test]
    fn a_call_is_refused_as_wave_is_for_its_name_its_size_and_its_handles() {
        let wave = protocol().parse("grete()", u64::MAX).unwrap_err();
        assert_eq!(protocol().call_from_json("grete", &json!([]), u64::MAX).unwrap_err(), wave);
        assert!(matches!(wave, MessageError::UnknownFunction { .. }), "{wave:?}");
        let args = json!([[1, 2, 3]]);
        assert_eq!(
            protocol().call_from_json("bytes", &args, 8).unwrap_err(),
            MessageError::TooLarge { size: 9, limit: 8 },
            "`[[1,2,3]]` is 9 bytes"
        );
        assert!(protocol().call_from_json("bytes", &args, 9).is_ok());
        let Err(MessageError::Unsupported { signature, .. }) = protocol().call_from_json("hold", &json!([0]), u64::MAX)
        else {
            panic!("a handle cannot be sent")
        };
        assert_eq!(signature, "hold(c: borrow<resource>)");
        assert_eq!(
            from_json(&json!(0), &ty("hold", "c")).unwrap_err().to_string(),
            "the value is a handle (borrow<resource>), which has no JSON form: a handle cannot leave its actor"
        );
    }

    #[test]
    fn a_reply_is_null_the_value_or_an_array_of_values() {
        assert_eq!(reply_to_json(&[]), Ok(Json::Null));
        let user = Val::Record(vec![
            ("name".into(), Val::String("ada".into())),
            ("age".into(), Val::U8(36)),
            ("tags".into(), Val::List(vec![])),
            ("home".into(), Val::Option(None)),
            ("nick".into(), Val::Option(Some(Box::new(Val::String("a".into()))))),
        ]);
        let found = Val::Option(Some(Box::new(user)));
        let json = json!({"name": "ada", "age": 36, "tags": [], "home": null, "nick": "a"});
        assert_eq!(reply_to_json(std::slice::from_ref(&found)), Ok(json.clone()));
        assert_eq!(reply_to_json(&[Val::Option(None)]), Ok(Json::Null));
        assert_eq!(reply_to_json(&[found, Val::U64(u64::MAX)]), Ok(json!([json, "18446744073709551615"])));
    }
}

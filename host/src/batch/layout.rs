//! The layout of a composed component's entry points: what the generator
//! built, written into the component, read back by the host.
//!
//! # Encoding
//!
//! The layout is one custom section named [`LAYOUT_SECTION`]
//! (`troupe-batch-layout`) at the top level of the composed component (a
//! nested component's custom sections are not read). Its contents are a
//! UTF-8 JSON object; version [`LAYOUT_VERSION`] (1) reads:
//!
//! ```json
//! {
//!   "version": 1,
//!   "entries": [
//!     { "interface": "acme:counter/api@0.1.0", "function": "incr", "export": "run0",
//!       "messages": 15, "arguments": { "in": "registers", "flat": ["i64"] } },
//!     { "interface": "acme:counter/api@0.1.0", "function": "rename", "export": "run1",
//!       "messages": 15, "arguments": { "in": "memory" } }
//!   ],
//!   "mixed": { "export": "mixed", "members": [0, 2], "joins": ["i64"], "slots": 7 },
//!   "call": { "export": "call", "members": [{ "entry": 0, "result": "u64" }] }
//! }
//! ```
//!
//! * `entries`: the functions with an entry point of their own. A function
//!   is named by the exact name of the interface that exports it (version
//!   included) and its name; `export` is the entry point's name in
//!   [`DELIVER_INTERFACE`](super::DELIVER_INTERFACE); `messages` is how
//!   many messages one call takes. Arguments travel `in` `registers`, as
//!   `flat` values per message (each `i32`, `i64`, `f32` or `f64`, as the
//!   canonical ABI flattens them; the entry point takes a `u32` count, then
//!   `messages` groups of them, each `i32` as `u32` and `i64` as `u64`),
//!   or `in` `memory`, as one `list<tuple<arguments>>`.
//! * `mixed` (or `null`): the entry point taking interleaved tells to
//!   several functions. `members` are places in `entries`; a message's tag
//!   is its function's place in `members`. Per call it takes a `u32`
//!   count, then `slots` groups of a `u32` tag and one value per `joins`
//!   type.
//! * `call` (or `null`): the entry point taking one message to any of its
//!   `members`: its tag (the member's place in `members`) and
//!   [`CALL_WIDTH`](super::CALL_WIDTH) `u64`s, returning one `u64`, which
//!   the host lifts as `result` says (see [`FlatResult`]).
//!
//! Readers refuse any other `version`: a change to the meaning of a field
//! raises it (and [`ADAPTER_VERSION`](super::ADAPTER_VERSION), so that a
//! cache never mixes the two).

use serde::{Deserialize, Serialize};

/// The name of the custom section holding the layout.
pub const LAYOUT_SECTION: &str = "troupe-batch-layout";

/// The version of the encoding this host writes and reads.
pub const LAYOUT_VERSION: u32 = 1;

/// What the adapter of a composed component serves, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The encoding's version: [`LAYOUT_VERSION`].
    pub version: u32,
    /// The functions with an entry point of their own.
    pub entries: Vec<Entry>,
    /// The entry point taking interleaved tells to several functions.
    pub mixed: Option<MixedLayout>,
    /// The entry point taking one message to any function it serves.
    pub call: Option<CallLayout>,
}

/// A function's own entry point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The interface exporting the function, exactly as exported
    /// (`acme:counter/api@0.1.0`).
    pub interface: String,
    /// The function (`incr`).
    pub function: String,
    /// The entry point's name in the adapter's interface.
    pub export: String,
    /// How many messages one call delivers at most.
    pub messages: usize,
    /// How each message's arguments travel.
    pub arguments: Arguments,
}

/// How a message's arguments travel into an entry point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "lowercase")]
pub enum Arguments {
    /// As flat values, each a parameter of the entry point.
    Registers {
        /// One message's flat values, in order.
        flat: Vec<FlatType>,
    },
    /// As one element of a `list<tuple<arguments>>` that the host lowers
    /// into the adapter's memory.
    Memory,
}

/// The mixed entry point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixedLayout {
    /// Its name in the adapter's interface.
    pub export: String,
    /// The functions it serves, as places in [`Layout::entries`]; a tag is
    /// a place here.
    pub members: Vec<usize>,
    /// The type of each value after a message's tag.
    pub joins: Vec<FlatType>,
    /// Messages per call.
    pub slots: usize,
}

/// The call entry point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLayout {
    /// Its name in the adapter's interface.
    pub export: String,
    /// The functions it serves; a tag is a place here.
    pub members: Vec<CallMember>,
}

/// A function the call entry point serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallMember {
    /// Its place in [`Layout::entries`].
    pub entry: usize,
    /// How its result comes back.
    pub result: FlatResult,
}

/// A core wasm value type, as the canonical ABI flattens arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlatType {
    /// `i32`: passed as a `u32`.
    I32,
    /// `i64`: passed as a `u64`.
    I64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl FlatType {
    /// The canonical ABI's join of two flat types: the type a place holds
    /// when either travels in it.
    pub fn join(self, other: FlatType) -> FlatType {
        match (self, other) {
            _ if self == other => self,
            (FlatType::I32, FlatType::F32) | (FlatType::F32, FlatType::I32) => FlatType::I32,
            _ => FlatType::I64,
        }
    }

    /// The core type it is.
    pub(super) fn val_type(self) -> wasm_encoder::ValType {
        match self {
            FlatType::I32 => wasm_encoder::ValType::I32,
            FlatType::I64 => wasm_encoder::ValType::I64,
            FlatType::F32 => wasm_encoder::ValType::F32,
            FlatType::F64 => wasm_encoder::ValType::F64,
        }
    }

    /// The flat type a core type is, if it is a number.
    pub(super) fn of(ty: wasm_encoder::ValType) -> Option<FlatType> {
        Some(match ty {
            wasm_encoder::ValType::I32 => FlatType::I32,
            wasm_encoder::ValType::I64 => FlatType::I64,
            wasm_encoder::ValType::F32 => FlatType::F32,
            wasm_encoder::ValType::F64 => FlatType::F64,
            _ => return None,
        })
    }
}

/// The result of a function the call entry point serves, and how the host
/// lifts it from the `u64` the entry point returns: as the canonical ABI
/// lifts the core value it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlatResult {
    /// The function returns nothing.
    Nothing,
    /// `bool`: any value but 0 is `true`.
    Bool,
    /// `s8` and the other integers: the low bits, as the type is wide.
    S8,
    /// `u8`.
    U8,
    /// `s16`.
    S16,
    /// `u16`.
    U16,
    /// `s32`.
    S32,
    /// `u32`.
    U32,
    /// `s64`.
    S64,
    /// `u64`.
    U64,
    /// `f32`, by its bits.
    F32,
    /// `f64`, by its bits.
    F64,
}

/// Why a component's layout cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The component carries no layout section.
    #[error("the component has no `{LAYOUT_SECTION}` section")]
    Missing,
    /// The component carries more than one.
    #[error("the component has more than one `{LAYOUT_SECTION}` section")]
    Duplicate,
    /// The component does not parse far enough to find it.
    #[error("the component does not parse: {0}")]
    Component(String),
    /// The section is not a layout.
    #[error("the layout is malformed: {0}")]
    Malformed(String),
    /// The section is a layout of another version.
    #[error("the layout has version {found}; this host reads version {LAYOUT_VERSION}")]
    Version {
        /// The version it has.
        found: u32,
    },
}

impl Layout {
    /// An empty layout of the current version.
    pub(super) fn new() -> Self {
        Layout { version: LAYOUT_VERSION, entries: Vec::new(), mixed: None, call: None }
    }

    /// The layout's encoding: the contents of its section.
    pub fn encode(&self) -> Vec<u8> {
        // Plain structs, strings and numbers: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The layout `bytes` (a section's contents) encode.
    ///
    /// # Errors
    ///
    /// [`LayoutError::Malformed`] or [`LayoutError::Version`].
    pub fn decode(bytes: &[u8]) -> Result<Layout, LayoutError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        // The version first: another version may not parse as this one.
        let Versioned { version } = serde_json::from_slice(bytes).map_err(|e| LayoutError::Malformed(e.to_string()))?;
        if version != LAYOUT_VERSION {
            return Err(LayoutError::Version { found: version });
        }
        serde_json::from_slice(bytes).map_err(|e| LayoutError::Malformed(e.to_string()))
    }

    /// The layout a composed component carries.
    ///
    /// # Errors
    ///
    /// A [`LayoutError`] saying why there is no layout to read.
    pub fn read(component: &[u8]) -> Result<Layout, LayoutError> {
        Layout::decode(section(component)?)
    }
}

/// The contents of the layout section at the top level of `component`.
///
/// # Errors
///
/// [`LayoutError::Missing`], [`LayoutError::Duplicate`] or
/// [`LayoutError::Component`].
pub(super) fn section(component: &[u8]) -> Result<&[u8], LayoutError> {
    use wasmparser::{Chunk, Parser, Payload};
    let mut parser = Parser::new(0);
    let mut rest = component;
    let mut found = None;
    loop {
        let Chunk::Parsed { consumed, payload } =
            parser.parse(rest, true).map_err(|e| LayoutError::Component(e.to_string()))?
        else {
            return Err(LayoutError::Component("it ends early".into()));
        };
        rest = &rest[consumed..];
        match payload {
            Payload::CustomSection(section) if section.name() == LAYOUT_SECTION => {
                if found.is_some() {
                    return Err(LayoutError::Duplicate);
                }
                found = Some(section.data());
            }
            // Only the outer component's sections describe it: the parser
            // has already stepped over a nested one; so must the input.
            Payload::ModuleSection { unchecked_range, .. } | Payload::ComponentSection { unchecked_range, .. } => {
                rest = component
                    .get(unchecked_range.end..)
                    .ok_or_else(|| LayoutError::Component("a nested section overruns it".into()))?;
            }
            Payload::End(_) => return found.ok_or(LayoutError::Missing),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            version: LAYOUT_VERSION,
            entries: vec![
                Entry {
                    interface: "acme:x/api@0.1.0".into(),
                    function: "add".into(),
                    export: "run0".into(),
                    messages: 15,
                    arguments: Arguments::Registers { flat: vec![FlatType::I64] },
                },
                Entry {
                    interface: "acme:x/api@0.1.0".into(),
                    function: "name".into(),
                    export: "run1".into(),
                    messages: 15,
                    arguments: Arguments::Memory,
                },
            ],
            mixed: Some(MixedLayout { export: "mixed".into(), members: vec![0], joins: vec![FlatType::I64], slots: 7 }),
            call: Some(CallLayout {
                export: "call".into(),
                members: vec![CallMember { entry: 0, result: FlatResult::U64 }],
            }),
        }
    }

    /// A component of nothing but a custom section per `(name, data)`.
    fn with_sections(sections: &[(&str, &[u8])]) -> Vec<u8> {
        use wasm_encoder::ComponentSection as _;
        let mut bytes = wasm_encoder::Component::new().finish();
        for (name, data) in sections {
            wasm_encoder::CustomSection { name: (*name).into(), data: (*data).into() }.append_to_component(&mut bytes);
        }
        bytes
    }

    #[test]
    fn a_layout_round_trips_through_its_section() {
        let encoded = layout().encode();
        assert_eq!(Layout::decode(&encoded), Ok(layout()));
        let component = with_sections(&[("version", b"1.0"), (LAYOUT_SECTION, &encoded)]);
        assert_eq!(Layout::read(&component), Ok(layout()));
    }

    #[test]
    fn the_encoding_is_the_documented_json() {
        let json: serde_json::Value = serde_json::from_slice(&layout().encode()).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["entries"][0]["arguments"], serde_json::json!({"in": "registers", "flat": ["i64"]}));
        assert_eq!(json["entries"][1]["arguments"], serde_json::json!({"in": "memory"}));
        assert_eq!(json["mixed"]["members"], serde_json::json!([0]));
        assert_eq!(json["call"]["members"][0], serde_json::json!({"entry": 0, "result": "u64"}));
    }

    #[test]
    fn a_missing_duplicate_malformed_or_foreign_layout_is_refused() {
        assert_eq!(Layout::read(&with_sections(&[("version", b"1.0")])), Err(LayoutError::Missing));
        let encoded = layout().encode();
        let twice = with_sections(&[(LAYOUT_SECTION, &encoded), (LAYOUT_SECTION, &encoded)]);
        assert_eq!(Layout::read(&twice), Err(LayoutError::Duplicate));
        assert!(matches!(Layout::decode(b"not json"), Err(LayoutError::Malformed(_))));
        assert!(matches!(Layout::decode(br#"{"version": 1, "entries": 3}"#), Err(LayoutError::Malformed(_))));
        assert_eq!(Layout::decode(br#"{"version": 2, "whatever": []}"#), Err(LayoutError::Version { found: 2 }));
        assert!(matches!(Layout::read(b"\0asm\x0d\0\x01\0\x00"), Err(LayoutError::Component(_))));
    }
}

//! Batch delivery: several queued messages go into an actor's component
//! in one call, each still handled on its own.
//!
//! # Why
//!
//! Every call from the host into a component pays wasmtime a fixed price
//! that does not depend on what the callee does: a fiber switch, entering
//! and leaving wasm, and finding the export's function again. For a
//! trivial message handler that fixed price is most of the cost of a
//! message (see BENCHMARKS.md). Calls *between* components in one
//! composition pay none of it: wasmtime compiles them into direct calls
//! through a fused adapter.
//!
//! # The adapter
//!
//! So when a component is loaded, [`compose`] composes it with a small
//! generated *adapter* component, as siblings inside a new outer component
//! that imports and exports what the actor's component does, plus the
//! adapter's [`DELIVER_INTERFACE`]. (Siblings, because the component model
//! forbids a component to call into the component that encloses it, which
//! is on the stack.) Nothing in the actor's own code changes, in any
//! language; troupe's own exports (`init`, `stop`, ...) are hooks, not
//! messages, and get no entry points. The adapter exports three kinds of
//! entry point:
//!
//! * **A function's own.** For an exported interface function whose
//!   canonical-ABI arguments are plain numbers (numbers, `bool`, `char`,
//!   enums, flags, and records or tuples of those: no pointers, at most
//!   one flat result), `(n: u32, arguments of message 0, arguments of
//!   message 1, ...)` calls the function once for each of the first `n`
//!   argument groups, in order: as many groups as fit in the canonical
//!   ABI's 16 flat parameters ([`messages_per_entry`]).
//! * **The mixed one.** When two or more such functions have at most
//!   [`MIXED_MAX_FLAT`] flat parameters, one entry point takes interleaved
//!   tells to any of them: each message carries a tag saying which
//!   function, and its arguments in the canonical ABI's join of the types
//!   the members pass in that place (an `f32` as `i32` bits, anything mixed
//!   with 64-bit values as `i64`), which the adapter undoes.
//! * **The call entry point.** The same functions, when their result is a
//!   number, a `bool` or nothing, are also served one message at a time
//!   through a fixed signature: a tag and [`CALL_WIDTH`] `u64`s in, one
//!   `u64` out. Its fixed signature lets the host call it as a `TypedFunc`,
//!   which lowers and lifts plain integers instead of `Val`s: an ask, or a
//!   tell with nothing queued behind it, costs less that way.
//!
//! With [`BatchDelivery::All`],
//! functions whose arguments live in memory (strings, lists, options,
//! results, variants) get entry points too, taking the run as one list
//! that the host lowers into a memory the adapter then has (see
//! `memory.rs`).
//!
//! Before each message the adapter calls the host's
//! [`PROGRESS_INTERFACE`]`.next`, so that the host gives every message its
//! own CPU and fuel budget, knows which one failed if one does, and can
//! end the call between two messages when a control request (a stop, say)
//! waits. If a message fails, it fails alone: those before it were
//! handled, those behind it go back to the mailbox.
//!
//! # One source of truth: the layout
//!
//! The generator decides which functions get which entry points, and
//! writes that decision, the [`Layout`] (export names, message counts,
//! flat argument types, the mixed entry's tags and joins, the call entry's
//! members and result kinds, whether arguments travel in memory), into the
//! composed component as a custom section (`layout.rs` documents the
//! encoding). wasmtime's compiled artifacts keep no custom sections, so
//! the compile cache keeps the layout beside the artifact. The host reads
//! the layout back and never derives it again.
//!
//! Before it uses an entry point, the host checks the layout against the
//! component's real exports (`dispatch.rs`): every entry point it names
//! exists, with exactly the parameters and results the layout implies for
//! the protocol function it serves, and every function's arguments lower
//! into what the layout says. A missing layout, an unreadable one, or one
//! that does not fit means the component runs without batch delivery, one
//! call per message. What no type check can see, which function a tag
//! reaches inside the adapter, rests on where layouts come from: the
//! generator writes them into the component it builds, only the host
//! writes its cache, and a component that imports or exports
//! `troupe:batch/...` itself is refused ([`reserved_name`]).
//!
//! # Where things are
//!
//! * `plan.rs`: which functions get which entry points, from the
//!   component's WIT;
//! * `layout.rs`: the layout and its encoding;
//! * `adapter.rs`: the adapter's WIT world and core module;
//! * `memory.rs`: entry points for arguments that live in memory;
//! * `compose.rs`: the outer component around the actor and the adapter;
//! * `compile.rs`: composing and compiling, through the compile cache;
//! * `lower.rs`: messages' values as entry points' flat arguments;
//! * `dispatch.rs`: the host's tables of checked entry points, and an
//!   incarnation's handles on them.

mod adapter;
mod compile;
mod compose;
mod dispatch;
mod layout;
mod lower;
mod memory;
mod plan;

pub use compose::{Composed, compose};
pub use layout::{Arguments, CallLayout, CallMember, Entry, FlatResult, FlatType, LAYOUT_SECTION, LAYOUT_VERSION};
pub use layout::{Layout, LayoutError, MixedLayout};
pub use lower::{flat_types, flatten};
pub use plan::{layout_of, messages_per_entry};

pub(crate) use compile::compile;
pub(crate) use dispatch::{Dispatch, Lowered, RunEntry, Tables, give_back};

use crate::protocol::is_adapter_interface;

/// The interface of the entry points the adapter exports.
pub const DELIVER_INTERFACE: &str = "troupe:batch/deliver@0.1.0";

/// The host interface the adapter calls before each message.
pub const PROGRESS_INTERFACE: &str = "troupe:batch/progress@0.1.0";

/// The function of [`PROGRESS_INTERFACE`].
pub const PROGRESS_FUNCTION: &str = "next";

/// The version of the adapter, part of the compile cache's tag: raise it
/// with any change to what [`compose`] builds or to the [`Layout`] it
/// writes, or caches keep serving the old build.
pub const ADAPTER_VERSION: u32 = 14;

/// The canonical ABI passes at most this many flat parameters in
/// registers; one of them is the message count.
const MAX_FLAT_PARAMS: usize = 16;

/// The most messages one entry point delivers per call.
pub const MAX_MESSAGES_PER_ENTRY: usize = MAX_FLAT_PARAMS - 1;

/// Functions with at most this many flat parameters share the mixed
/// entry point: with one more for each message's tag, five messages fit
/// in a call.
pub const MIXED_MAX_FLAT: usize = 2;

/// The flat arguments the call entry point takes after its tag, each as a
/// `u64`: as many as a function with an entry point of its own can have
/// (one with more would fit one message per call, and gets none).
pub const CALL_WIDTH: usize = 7;

/// The call entry point's parameters, as the host's typed function takes
/// them: the tag, then [`CALL_WIDTH`] flat arguments.
pub type CallArgs = (u32, u64, u64, u64, u64, u64, u64, u64);

/// The first import or export of `component` in the `troupe:batch`
/// package, which is reserved for the adapter: a component that imported
/// the progress hook itself could refill its own CPU budget.
pub fn reserved_name(component: &[u8]) -> Option<String> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0u32;
    for payload in Parser::new(0).parse_all(component) {
        match payload.ok()? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth > 0 => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section.into_iter().flatten() {
                    if is_adapter_interface(import.name.name) {
                        return Some(import.name.name.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section.into_iter().flatten() {
                    if is_adapter_interface(export.name.name) {
                        return Some(export.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// Which functions of a component take several queued tells in one call
/// into the guest. The host's loader composes each component accordingly
/// before compiling it ([`HostConfig::batch_delivery`](crate::HostConfig::batch_delivery)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum BatchDelivery {
    /// None: every message is a call of its own.
    Off,
    /// Functions whose arguments travel in registers (numbers, enums, flags).
    ///
    /// That is numbers, `bool`, `char`, enums, flags, and records or tuples
    /// of those. Queued tells share a call into the guest; each awake actor
    /// holds the adapter's small instance beside its own (BENCHMARKS.md has
    /// both figures).
    #[default]
    Registers,
    /// Also functions taking strings and lists, through the adapter's memory.
    ///
    /// Such tells share calls too, but each awake actor of such a component
    /// also holds the adapter's memory, its shims and a table page, and the
    /// adapter's memory counts against the actor's memory limit.
    All,
}

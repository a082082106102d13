//! Runs of tells that go into the guest in one call of a batch entry
//! point (see [`crate::engine::batch`]): which entry point, and the
//! arguments it takes for the run. The message loop (`cell`) decides what
//! makes a run; this lays it out.

use wasmtime::component::Val;

use crate::engine::batch;
use crate::message::Envelope;
use crate::protocol::{Batching, Protocol};

/// Which batch entry point a run of tells goes through.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RunEntry {
    /// The function's own: every message is a call of it.
    Own(u32),
    /// The mixed one: each message says which function.
    Mixed,
}

/// The arguments of the batch entry point for `run`, or `None` if an
/// argument does not lower (not expected: calls are type-checked).
pub(crate) fn lower_run(
    batching: &Batching,
    protocol: &Protocol,
    run: &[Envelope],
    entry: RunEntry,
) -> Option<Vec<Val>> {
    let flatten = |envelope: &Envelope, out: &mut Vec<Val>| {
        let params = &protocol.function(envelope.call.func).params;
        params.len() == envelope.call.args.len()
            && params.iter().zip(&envelope.call.args).all(|((_, ty), v)| batch::flatten(ty, v, out))
    };
    match entry {
        RunEntry::Own(func) => {
            let own = batching.entries.get(func as usize)?.as_ref()?;
            if run.len() > own.per_entry {
                return None;
            }
            let mut args = Vec::with_capacity(1 + own.per_entry * own.zeros.len());
            args.push(Val::U32(run.len() as u32));
            for envelope in run {
                flatten(envelope, &mut args).then_some(())?;
            }
            // Each message's arguments must fill exactly its slot.
            if args.len() != 1 + run.len() * own.zeros.len() {
                return None;
            }
            for _ in run.len()..own.per_entry {
                args.extend_from_slice(&own.zeros);
            }
            Some(args)
        }
        RunEntry::Mixed => {
            let mixed = batching.mixed.as_ref()?;
            if run.len() > mixed.slots {
                return None;
            }
            let width = mixed.joins.len();
            let mut args = Vec::with_capacity(1 + mixed.slots * (1 + width));
            args.push(Val::U32(run.len() as u32));
            let mut flat = Vec::with_capacity(width);
            for envelope in run {
                args.push(Val::U32((*mixed.tags.get(envelope.call.func as usize)?)?));
                flat.clear();
                flatten(envelope, &mut flat).then_some(())?;
                let used = flat.len();
                if used > width {
                    return None;
                }
                args.extend(flat.drain(..).zip(mixed.joins.iter()).map(|(v, &j)| batch::to_join(v, j)));
                args.extend(mixed.joins[used..].iter().map(|&j| batch::zero(j)));
            }
            for _ in run.len()..mixed.slots {
                args.push(Val::U32(0));
                args.extend(mixed.joins.iter().map(|&j| batch::zero(j)));
            }
            Some(args)
        }
    }
}

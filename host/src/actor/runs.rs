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
///
/// Arguments that travel in memory are moved out of the envelopes into
/// the list the entry point takes; [`give_back`] returns them.
pub(crate) fn lower_run(
    batching: &Batching,
    protocol: &Protocol,
    run: &mut [Envelope],
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
            if own.in_memory {
                return Some(vec![take_args(run)]);
            }
            let mut args = Vec::with_capacity(1 + own.per_entry * own.zeros.len());
            args.push(Val::U32(run.len() as u32));
            for envelope in run.iter() {
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
            for envelope in run.iter() {
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

/// The run's arguments as the list a memory entry point takes, moved out
/// of the envelopes.
fn take_args(run: &mut [Envelope]) -> Val {
    Val::List(run.iter_mut().map(|e| Val::Tuple(std::mem::take(&mut e.call.args).into_vec())).collect())
}

/// Puts the arguments that [`lower_run`] moved into a list back into the
/// envelopes (the ones that go back to the mailbox need them).
pub(crate) fn give_back(run: &mut [Envelope], args: Vec<Val>) {
    let Some(Val::List(list)) = args.into_iter().next() else { return };
    for (envelope, tuple) in run.iter_mut().zip(list) {
        if let Val::Tuple(values) = tuple
            && envelope.call.args.is_empty()
        {
            envelope.call.args = values.into_boxed_slice();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Call;

    fn tell(args: Vec<Val>) -> Envelope {
        Envelope::tell(Call { func: 0, args: args.into(), generation: 0 }, None)
    }

    #[test]
    fn arguments_moved_into_a_list_come_back_to_their_envelopes() {
        let mut run =
            vec![tell(vec![Val::String("a".into()), Val::U32(1)]), tell(vec![Val::String("b".into()), Val::U32(2)])];
        let list = take_args(&mut run);
        assert_eq!(
            list,
            Val::List(vec![
                Val::Tuple(vec![Val::String("a".into()), Val::U32(1)]),
                Val::Tuple(vec![Val::String("b".into()), Val::U32(2)]),
            ])
        );
        assert!(run.iter().all(|e| e.call.args.is_empty()), "moved, not copied");
        give_back(&mut run, vec![list]);
        assert_eq!(&*run[0].call.args, &[Val::String("a".into()), Val::U32(1)]);
        assert_eq!(&*run[1].call.args, &[Val::String("b".into()), Val::U32(2)]);
    }
}

//! What a durable actor saw outside itself while handling a message: the
//! results of its host calls, recorded as it runs so that its journal can
//! replay the message later to exactly the same state (see
//! [`crate::actor::durable`]).
//!
//! A [`Tape`] belongs to one incarnation of an actor that journals
//! between snapshots; other actors have none and pay nothing. It records
//! while the actor handles live messages. While the cell replays a
//! journal entry it plays back that entry's record instead: each host call
//! returns what it returned the first time, and has no effect (the tell,
//! ask, spawn or timer happened already). The WASI clocks and random
//! sources of such an actor read through the tape too ([`TapedClocks`],
//! [`TapedRandom`]).
//!
//! A replay that makes a call the record does not have next has diverged:
//! the message took another path than the first time. The tape remembers
//! it, and the replay fails with the reason when the message ends
//! ([`Tape::end_replay`]); a host call that can trap fails at once.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use super::durable::Recorded;
use crate::sync::{Arc, Mutex};

/// The record of one incarnation's host calls, shared with its WASI
/// clocks and random sources.
#[derive(Clone)]
pub(crate) struct Tape(Arc<Mutex<Reel>>);

impl Default for Tape {
    fn default() -> Self {
        Tape(Arc::new(Mutex::new(Reel::default())))
    }
}

enum Reel {
    /// Handling live messages: each call's result is added.
    Recording(Vec<Recorded>),
    /// Replaying a journal entry: each call takes the next result.
    Replaying {
        left: VecDeque<Recorded>,
        /// Why the replay diverged, once it has.
        diverged: Option<String>,
    },
}

impl Default for Reel {
    fn default() -> Self {
        Reel::Recording(Vec::new())
    }
}

impl Tape {
    /// What the current message's calls returned so far; the tape starts
    /// recording the next message.
    pub fn take(&self) -> Vec<Recorded> {
        match std::mem::take(&mut *self.0.lock()) {
            Reel::Recording(recorded) => recorded,
            Reel::Replaying { .. } => Vec::new(),
        }
    }

    /// Plays `recorded` back to the calls of the message about to be
    /// replayed.
    pub fn replay(&self, recorded: Vec<Recorded>) {
        *self.0.lock() = Reel::Replaying { left: recorded.into(), diverged: None };
    }

    /// Ends the replay of a message and goes back to recording. `Err`
    /// says how the replay diverged from the record.
    pub fn end_replay(&self) -> Result<(), String> {
        match std::mem::take(&mut *self.0.lock()) {
            Reel::Replaying { diverged: Some(why), .. } => Err(why),
            Reel::Replaying { left, .. } => match left.front() {
                Some(next) => Err(format!(
                    "the message made fewer host calls than when it was handled: it did not call `{}` (and {} \
                     more)",
                    next.call,
                    left.len() - 1
                )),
                None => Ok(()),
            },
            Reel::Recording(_) => Ok(()),
        }
    }

    /// Is a message being replayed?
    pub fn replaying(&self) -> bool {
        matches!(*self.0.lock(), Reel::Replaying { .. })
    }

    /// While replaying, the result `call` returned the first time (`Err`
    /// if the record says otherwise); `None` while recording.
    pub fn played<T: DeserializeOwned>(&self, call: &str) -> Option<Result<T, String>> {
        let mut reel = self.0.lock();
        let Reel::Replaying { left, diverged } = &mut *reel else { return None };
        if let Some(why) = diverged {
            return Some(Err(why.clone()));
        }
        let result = match left.pop_front() {
            Some(next) if next.call == call => serde_json::from_value(next.result)
                .map_err(|e| format!("the recorded result of `{call}` cannot be read: {e}")),
            Some(next) => {
                Err(format!("the message called `{call}` where, when it was handled, it called `{}`", next.call))
            }
            None => Err(format!("the message called `{call}` more often than when it was handled")),
        };
        if let Err(why) = &result {
            *diverged = Some(why.clone());
        }
        Some(result)
    }

    /// Records what `call` returned, if recording.
    pub fn record<T: Serialize>(&self, call: &str, result: &T) {
        if let Reel::Recording(recorded) = &mut *self.0.lock() {
            // The types recorded here all serialize.
            if let Ok(result) = serde_json::to_value(result) {
                recorded.push(Recorded { call: call.to_string(), result });
            }
        }
    }

    /// `live()` recorded, or, replaying, what it returned the first time.
    /// For sources that cannot fail the guest: a divergence is remembered
    /// and the live value used.
    fn through<T: Serialize + DeserializeOwned>(&self, call: &str, live: impl FnOnce() -> T) -> T {
        match self.played(call) {
            Some(Ok(value)) => value,
            Some(Err(_)) => live(),
            None => {
                let value = live();
                self.record(call, &value);
                value
            }
        }
    }
}

/// The WASI clocks of an actor with a tape: the host's (or the frozen
/// ones, without the `clocks` grant), read through the tape.
pub(crate) struct TapedClocks<C> {
    /// The clock read while recording.
    pub clock: C,
    /// The actor's tape.
    pub tape: Tape,
}

impl<C: HostWallClock> HostWallClock for TapedClocks<C> {
    fn resolution(&self) -> Duration {
        self.clock.resolution()
    }
    fn now(&self) -> Duration {
        self.tape.through("wall-clock", || self.clock.now())
    }
}

impl<C: HostMonotonicClock> HostMonotonicClock for TapedClocks<C> {
    fn resolution(&self) -> u64 {
        self.clock.resolution()
    }
    fn now(&self) -> u64 {
        self.tape.through("monotonic-clock", || self.clock.now())
    }
}

/// The WASI random source of an actor with a tape: the host's, read
/// through the tape.
pub(crate) struct TapedRandom {
    /// The source read while recording.
    pub source: Box<dyn wasmtime_wasi::Rng + Send>,
    /// The actor's tape.
    pub tape: Tape,
}

impl rand_core::TryRng for TapedRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.tape.clone().through("random", || self.source.next_u32()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.tape.clone().through("random", || self.source.next_u64()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let tape = self.tape.clone();
        let bytes = tape.through("random", || {
            let mut bytes = vec![0; dst.len()];
            self.source.fill_bytes(&mut bytes);
            hex::encode(bytes)
        });
        match hex::decode(&bytes) {
            Ok(bytes) if bytes.len() == dst.len() => dst.copy_from_slice(&bytes),
            // A record of another length: the replay has diverged already.
            _ => self.source.fill_bytes(dst),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_returns_what_each_call_returned_when_recorded() {
        let tape = Tape::default();
        tape.record("ask", &"7".to_string());
        tape.record("wall-clock", &Duration::from_secs(3));
        let recorded = tape.take();
        assert_eq!(recorded.len(), 2);
        tape.replay(recorded);
        assert!(tape.replaying());
        assert_eq!(tape.played::<String>("ask"), Some(Ok("7".to_string())));
        assert_eq!(tape.through("wall-clock", || Duration::from_secs(99)), Duration::from_secs(3));
        assert_eq!(tape.end_replay(), Ok(()));
        assert!(!tape.replaying());
    }

    #[test]
    fn a_recording_tape_plays_nothing_back() {
        let tape = Tape::default();
        assert_eq!(tape.played::<String>("ask"), None);
        assert_eq!(tape.through("monotonic-clock", || 5u64), 5);
        assert_eq!(tape.take(), vec![Recorded { call: "monotonic-clock".into(), result: 5.into() }]);
        assert!(tape.take().is_empty(), "taking starts a new record");
    }

    #[test]
    fn a_call_out_of_order_is_a_divergence_reported_at_the_end() {
        let tape = Tape::default();
        tape.record("ask", &"1".to_string());
        tape.replay(tape.take());
        assert_eq!(tape.through("wall-clock", || Duration::from_secs(1)), Duration::from_secs(1), "the live value");
        let why = tape.end_replay().unwrap_err();
        assert!(why.contains("called `wall-clock` where, when it was handled, it called `ask`"), "{why}");
    }

    #[test]
    fn a_replay_that_skips_a_call_or_makes_one_more_diverges() {
        let tape = Tape::default();
        tape.record("ask", &"1".to_string());
        tape.replay(tape.take());
        assert!(tape.end_replay().unwrap_err().contains("did not call `ask`"));

        tape.replay(Vec::new());
        let extra = tape.played::<String>("ask").expect("replaying");
        assert!(extra.unwrap_err().contains("more often"));
    }

    #[test]
    fn random_bytes_replay_exactly() {
        let tape = Tape::default();
        let mut random = TapedRandom { source: Box::new(rand_core::UnwrapErr(FixedBytes(1))), tape: tape.clone() };
        let mut first = [0u8; 5];
        rand_core::Rng::fill_bytes(&mut random, &mut first);
        tape.replay(tape.take());
        random.source = Box::new(rand_core::UnwrapErr(FixedBytes(200)));
        let mut again = [0u8; 5];
        rand_core::Rng::fill_bytes(&mut random, &mut again);
        assert_eq!(first, again);
        assert_eq!(tape.end_replay(), Ok(()));
    }

    /// A source that fills with one byte value.
    struct FixedBytes(u8);

    impl rand_core::TryRng for FixedBytes {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(u32::from(self.0))
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(u64::from(self.0))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.fill(self.0);
            Ok(())
        }
    }
}

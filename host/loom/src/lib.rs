//! Loom models of troupe's hand-rolled concurrent code: the mailbox
//! queue (`host/src/actor/queue.rs`, a `VecDeque` under a lock, its length
//! in an atomic beside it, and an `AtomicWaker` for the waiting loop).
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p troupe-loom --release --target-dir target/loom
//! ```
//!
//! (`scripts/test` runs exactly this.) The crate holds nothing but its
//! tests, and only under `--cfg loom`: built otherwise, it is empty.
//!
//! # Why a crate of its own
//!
//! `--cfg loom` applies to every crate in a build, and tokio, wasmtime and
//! others change under it; building troupe that way would rebuild
//! wasmtime and fail in tokio. So this crate compiles the queue's source
//! file and `host/src/sync.rs` (through which the queue takes its lock,
//! atomics, `Arc` and waker) by `#[path]`, next to the models, and
//! depends on loom alone. Under `--cfg loom`, `sync.rs` hands out loom's
//! instrumented types, so the model runs troupe's code as written. A
//! separate target directory keeps the `--cfg loom` build from
//! invalidating the normal one.
//!
//! # Why loom rather than shuttle
//!
//! The queue's correctness rests on memory orderings: a receiver reads the
//! length without the lock (`Acquire`) after registering its waker, and a
//! sender publishes it (`Release`) before waking. Loom explores every
//! interleaving of a small model exhaustively and models the C11 memory
//! model for atomics, so a missing re-check or a too-weak ordering is
//! found for certain. Shuttle samples interleavings at random under
//! sequential consistency: faster for big systems, but it could not see
//! an ordering bug, and the queue is small enough for loom.
//!
//! The waker itself is loom's mock of `AtomicWaker` (its contract, not
//! `futures_util`'s implementation of it, which its authors model).
#![cfg(all(loom, test))]

#[path = "../../src/sync.rs"]
#[allow(dead_code, reason = "the models use the mailbox's primitives, not the host's other locks")]
mod sync;

#[path = "../../src/actor/queue.rs"]
mod queue;

mod queue_model;

//! The synchronisation primitives troupe's own concurrent code is built on:
//! a [`Mutex`] and an [`RwLock`] whose guards come back directly, and the
//! atomics, [`Arc`] and [`AtomicWaker`] of the mailbox queue.
//!
//! Lock poisoning is handled here, once: `lock()`, `read()` and `write()`
//! return the guard even after a thread panicked while holding it. That is
//! sound for troupe because every value kept behind these locks is plain
//! data (maps, lists, counters) that is valid between any two writes: no
//! invariant spans a panic point. And it is necessary: a panic in one
//! actor's host call (a bug, not a guest's doing) must fail that call, not
//! disable every later use of the host's shared state.
//!
//! Built with `--cfg loom` (only the `troupe-loom` model crate is), the
//! same names are loom's instrumented types, so that a model explores
//! every interleaving of the code above them.

#[cfg(not(loom))]
mod imp {
    pub(crate) use futures_util::task::AtomicWaker;
    pub(crate) use std::sync::atomic;
    pub(crate) use std::sync::{Arc, MutexGuard, RwLockReadGuard, RwLockWriteGuard};
    pub(crate) use std::sync::{Mutex as RawMutex, RwLock as RawRwLock};
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic;
    pub(crate) use loom::sync::{Arc, MutexGuard, RwLockReadGuard, RwLockWriteGuard};
    pub(crate) use loom::sync::{Mutex as RawMutex, RwLock as RawRwLock};

    /// loom's mock waker under the name and signature of the one troupe
    /// uses (`futures_util::task::AtomicWaker`, which registers by
    /// reference).
    #[derive(Debug, Default)]
    pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

    impl AtomicWaker {
        pub(crate) fn new() -> Self {
            Self(loom::future::AtomicWaker::new())
        }

        pub(crate) fn register(&self, waker: &std::task::Waker) {
            self.0.register_by_ref(waker);
        }

        pub(crate) fn wake(&self) {
            self.0.wake();
        }
    }
}

pub(crate) use imp::{Arc, AtomicWaker, MutexGuard, RwLockReadGuard, RwLockWriteGuard, atomic};

/// A mutual-exclusion lock whose [`lock`](Mutex::lock) cannot fail: a
/// poisoned lock is recovered (see the module doc for why that is sound).
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(imp::RawMutex<T>);

impl<T> Mutex<T> {
    /// A lock holding `value`.
    pub(crate) fn new(value: T) -> Self {
        Self(imp::RawMutex::new(value))
    }

    /// Waits for the lock and returns its guard.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A reader-writer lock whose [`read`](RwLock::read) and
/// [`write`](RwLock::write) cannot fail: a poisoned lock is recovered (see
/// the module doc for why that is sound).
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(imp::RawRwLock<T>);

impl<T> RwLock<T> {
    /// A lock holding `value`.
    pub(crate) fn new(value: T) -> Self {
        Self(imp::RawRwLock::new(value))
    }

    /// Waits for shared access and returns its guard.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for exclusive access and returns its guard.
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panicking_holder_still_hands_out_its_value() {
        let mutex = Arc::new(Mutex::new(vec![1]));
        let rwlock = Arc::new(RwLock::new(7));
        let (m, r) = (mutex.clone(), rwlock.clone());
        let panicked = std::thread::spawn(move || {
            let mut items = m.lock();
            items.push(2);
            let _writing = r.write();
            panic!("a bug in a host call");
        })
        .join();
        assert!(panicked.is_err(), "the holder panicked");
        assert!(mutex.0.is_poisoned() && rwlock.0.is_poisoned());
        assert_eq!(*mutex.lock(), [1, 2], "the write before the panic is kept");
        assert_eq!(*rwlock.read(), 7);
        *rwlock.write() = 8;
        assert_eq!(*rwlock.read(), 8);
    }
}

//! The one place that chooses between `std` and `loom` synchronisation types.
//!
//! Everything else in the crate imports `crate::loom::sync::…` and `crate::loom::thread`, so a
//! `--cfg loom` build models every lock, atomic and thread the scheduler uses, and a normal
//! build pays nothing for it (the pattern of tokio's `src/loom/mod.rs`).

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    }
}

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    // loom's locks report poisoning with std's error type.
    pub(crate) use std::sync::PoisonError;

    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    }
}

pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{Builder, JoinHandle};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{Builder, JoinHandle};
}

//! A reader-writer lock whose readers on different threads write different cache lines.
//!
//! A table's committed data is read by every worker (each `get`, each lookup of a reducer's
//! transaction takes the lock for reading) and written only by an apply. With one lock word,
//! every read is a read-modify-write of a cache line that all the workers share, and on two
//! cores running short reducers over one table that line moves between them on almost every
//! lookup. Here each thread takes one of several locks, each on its own cache line, for reading;
//! a writer takes all of them, in order. Reads stay on the reader's core; a write pays one lock
//! per shard, which suits tables read many times per write.
//!
//! `crossbeam_utils::sync::ShardedLock` does the same with std locks, but has no guards that
//! own an `Arc` of the lock, which a [`ReadView`](crate::ReadView)'s table references need.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::lock_api::RawRwLock as _;

/// One shard's lock, alone on its cache line (128 bytes: two lines, for adjacent-line
/// prefetching).
#[repr(align(128))]
struct Shard(parking_lot::RawRwLock);

/// A reader-writer lock over `T` with one read lock per thread slot.
pub(crate) struct ShardedRwLock<T> {
    shards: Box<[Shard]>,
    data: UnsafeCell<T>,
}

// SAFETY: as `RwLock<T>`: the lock hands out `&T` to several threads only while no `&mut T`
// exists, so sharing it needs `T: Send + Sync`, and moving it needs `T: Send`.
unsafe impl<T: Send> Send for ShardedRwLock<T> {}
unsafe impl<T: Send + Sync> Sync for ShardedRwLock<T> {}

/// The number of shards: the machine's threads rounded up to a power of two, 4 to 64. More
/// threads than shards share them, which costs only contention.
fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(4, usize::from)
            .next_power_of_two()
            .clamp(4, 64)
    })
}

/// This thread's slot, given out in the order threads first read a sharded lock.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.with(|slot| {
        let mut s = slot.get();
        if s == usize::MAX {
            s = NEXT.fetch_add(1, Ordering::Relaxed);
            slot.set(s);
        }
        s
    })
}

impl<T> ShardedRwLock<T> {
    pub fn new(value: T) -> Self {
        let shards = (0..shard_count())
            .map(|_| Shard(parking_lot::RawRwLock::INIT))
            .collect();
        ShardedRwLock {
            shards,
            data: UnsafeCell::new(value),
        }
    }

    fn lock_shared(&self) -> usize {
        // The count is a power of two.
        let shard = thread_slot() & (self.shards.len() - 1);
        self.shards[shard].0.lock_shared();
        shard
    }

    fn lock_exclusive(&self) {
        // Always in ascending order, so two writers cannot each hold a shard the other needs.
        for shard in self.shards.iter() {
            shard.0.lock_exclusive();
        }
    }

    /// # Safety
    /// The caller holds every shard exclusively.
    unsafe fn unlock_exclusive(&self) {
        for shard in self.shards.iter().rev() {
            // SAFETY: the caller holds it.
            unsafe { shard.0.unlock_exclusive() };
        }
    }

    /// Locks for reading. Like `parking_lot::RwLock::read`, not recursive: a thread that reads
    /// again while a writer waits for its shard deadlocks.
    pub fn read(&self) -> ReadGuard<'_, T> {
        let shard = self.lock_shared();
        ReadGuard {
            lock: self,
            shard,
            _not_send: PhantomData,
        }
    }

    pub fn write(&self) -> WriteGuard<'_, T> {
        self.lock_exclusive();
        WriteGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// [`read`](Self::read), holding the lock through an `Arc` instead of a borrow.
    pub fn read_arc(self: &Arc<Self>) -> ArcReadGuard<T> {
        let shard = self.lock_shared();
        ArcReadGuard {
            lock: self.clone(),
            shard,
            _not_send: PhantomData,
        }
    }

    /// [`write`](Self::write), holding the lock through an `Arc` instead of a borrow.
    pub fn write_arc(self: &Arc<Self>) -> ArcWriteGuard<T> {
        self.lock_exclusive();
        ArcWriteGuard {
            lock: self.clone(),
            _not_send: PhantomData,
        }
    }
}

/// Shared access; unlocks its shard when dropped. Not `Send`, like `parking_lot`'s guards.
pub(crate) struct ReadGuard<'a, T> {
    lock: &'a ShardedRwLock<T>,
    shard: usize,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a shard is held shared, so no writer (which needs every shard) holds `&mut T`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard locked this shard shared, once.
        unsafe { self.lock.shards[self.shard].0.unlock_shared() };
    }
}

/// Exclusive access; unlocks every shard when dropped.
pub(crate) struct WriteGuard<'a, T> {
    lock: &'a ShardedRwLock<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: every shard is held exclusively.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: every shard is held exclusively, and `&mut self` makes this the only borrow.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard locked every shard exclusively.
        unsafe { self.lock.unlock_exclusive() };
    }
}

/// [`ReadGuard`] owning an `Arc` of the lock.
pub(crate) struct ArcReadGuard<T> {
    lock: Arc<ShardedRwLock<T>>,
    shard: usize,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for ArcReadGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: as `ReadGuard::deref`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for ArcReadGuard<T> {
    fn drop(&mut self) {
        // SAFETY: this guard locked this shard shared, once.
        unsafe { self.lock.shards[self.shard].0.unlock_shared() };
    }
}

/// [`WriteGuard`] owning an `Arc` of the lock.
pub(crate) struct ArcWriteGuard<T> {
    lock: Arc<ShardedRwLock<T>>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for ArcWriteGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: as `WriteGuard::deref`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for ArcWriteGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as `WriteGuard::deref_mut`.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for ArcWriteGuard<T> {
    fn drop(&mut self) {
        // SAFETY: this guard locked every shard exclusively.
        unsafe { self.lock.unlock_exclusive() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writers keep two fields equal, changing one then the other; a reader that ever saw them
    /// differ would have read during a write.
    #[test]
    fn readers_never_see_a_write_half_done() {
        let lock = Arc::new(ShardedRwLock::new((0u64, 0u64)));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    let mut torn = 0;
                    for i in 0..20_000u64 {
                        if (i + t) % 8 == 0 {
                            let mut w = lock.write();
                            w.0 += 1;
                            std::hint::black_box(&mut *w);
                            w.1 += 1;
                        } else if i % 2 == 0 {
                            let r = lock.read();
                            torn += usize::from(r.0 != r.1);
                        } else {
                            let r = lock.read_arc();
                            torn += usize::from(r.0 != r.1);
                        }
                    }
                    torn
                })
            })
            .collect();
        let torn: usize = threads
            .into_iter()
            .map(|t| t.join().expect("no thread panics"))
            .sum();
        assert_eq!(torn, 0, "a reader saw a write half done");
        let (a, b) = *lock.read();
        assert_eq!(a, b);
        assert_eq!(a, 4 * 20_000 / 8, "every write counted once");
    }
}

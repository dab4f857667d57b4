//! Epoch-based reclamation of JIT'd code that may still be running.
//!
//! When a stub is repointed (hot redefinition, tier-up) the old body can
//! still be executing on other threads. The rule this module implements:
//!
//! > Code retired at epoch E is freed only when no thread that entered JIT'd
//! > code before E is still inside it.
//!
//! Threads announce that they are inside JIT'd code by holding a
//! [`PinGuard`] (the `Jit` facade pins around every call it makes into JIT'd
//! code; pins nest). Retiring bumps the global epoch *after* the stub has
//! been repointed, so a thread that pins later can only reach the new code
//! through the stub. A retired item is freed once every active pin is newer
//! than the item. Threads that call raw JIT'd function pointers without
//! pinning opt out of this protection.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// A thread's announcement: 0 when not inside JIT'd code, otherwise the
/// epoch at which it entered.
#[derive(Default)]
struct ThreadSlot {
    pinned_at: AtomicU64,
    depth: AtomicU64,
}

struct Retired {
    epoch: u64,
    free: Box<dyn FnOnce() + Send>,
}

struct Inner {
    id: u64,
    epoch: AtomicU64,
    slots: Mutex<Vec<Weak<ThreadSlot>>>,
    retired: Mutex<Vec<Retired>>,
}

/// Defers freeing code until no thread can be running it. Clone is cheap.
#[derive(Clone)]
pub struct Reclaimer {
    inner: Arc<Inner>,
}

thread_local! {
    /// This thread's slot in each reclaimer it has pinned (by reclaimer id).
    static SLOTS: RefCell<Vec<(u64, Arc<ThreadSlot>)>> = const { RefCell::new(Vec::new()) };
}

impl Default for Reclaimer {
    fn default() -> Self {
        Self::new()
    }
}

impl Reclaimer {
    /// A reclaimer at epoch 1 with nothing retired.
    pub fn new() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Reclaimer {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                epoch: AtomicU64::new(1),
                slots: Mutex::new(Vec::new()),
                retired: Mutex::new(Vec::new()),
            }),
        }
    }

    fn slot(&self) -> Arc<ThreadSlot> {
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            if let Some((_, slot)) = slots.iter().find(|(id, _)| *id == self.inner.id) {
                return slot.clone();
            }
            let slot = Arc::new(ThreadSlot::default());
            slots.push((self.inner.id, slot.clone()));
            let mut all = self.inner.slots.lock();
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&slot));
            slot
        })
    }

    /// Announces that this thread is entering JIT'd code until the guard is
    /// dropped. Nested pins keep the outermost epoch.
    pub fn pin(&self) -> PinGuard {
        let slot = self.slot();
        if slot.depth.fetch_add(1, Ordering::SeqCst) == 0 {
            slot.pinned_at
                .store(self.inner.epoch.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        PinGuard {
            slot,
            reclaimer: self.clone(),
        }
    }

    /// Schedules `free` to run once no thread pinned before now is still
    /// pinned. Call it only after the code has become unreachable through
    /// stubs. Runs what can already be freed.
    pub fn retire(&self, free: impl FnOnce() + Send + 'static) {
        let epoch = self.inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.retired.lock().push(Retired {
            epoch,
            free: Box::new(free),
        });
        self.collect();
    }

    /// Frees every retired item no pinned thread can still be using.
    /// Returns how many were freed.
    pub fn collect(&self) -> usize {
        self.free_up_to(self.free_bound())
    }

    /// The newest retirement epoch that is safe to free now: no thread
    /// pinned before it is still pinned.
    ///
    /// The epoch is read *before* the pins. An item retired after that read
    /// is above the bound, so it waits for a later collect: a thread could
    /// pin after this look at the pins (so unseen here), reach the code
    /// through its stub before the stub was repointed, and be running it
    /// when the item is retired. (Without the cap, a collect racing such a
    /// retirement freed code a pinned thread was running: a tier-0 loop
    /// crashed on its return from the trip handler.)
    fn free_bound(&self) -> u64 {
        let now = self.inner.epoch.load(Ordering::SeqCst);
        let oldest_pin = {
            let slots = self.inner.slots.lock();
            slots
                .iter()
                .filter_map(Weak::upgrade)
                .map(|s| s.pinned_at.load(Ordering::SeqCst))
                .filter(|e| *e != 0)
                .min()
                .unwrap_or(u64::MAX)
        };
        now.min(oldest_pin)
    }

    /// Frees the retired items of epochs up to `bound`.
    fn free_up_to(&self, bound: u64) -> usize {
        let ready: Vec<Retired> = {
            let mut retired = self.inner.retired.lock();
            let (ready, keep) = std::mem::take(&mut *retired)
                .into_iter()
                .partition(|r| r.epoch <= bound);
            *retired = keep;
            ready
        };
        let n = ready.len();
        for item in ready {
            (item.free)();
        }
        n
    }

    /// Retired items not yet freed.
    pub fn n_pending(&self) -> usize {
        self.inner.retired.lock().len()
    }

    /// Frees everything retired, whoever is pinned. Only for shutdown, when
    /// no JIT'd code can run any more.
    pub fn free_all(&self) {
        let all: Vec<Retired> = std::mem::take(&mut *self.inner.retired.lock());
        for item in all {
            (item.free)();
        }
    }
}

impl std::fmt::Debug for Reclaimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reclaimer")
            .field("epoch", &self.inner.epoch.load(Ordering::Relaxed))
            .field("pending", &self.n_pending())
            .finish()
    }
}

/// Held while a thread may be running JIT'd code. See [`Reclaimer::pin`].
pub struct PinGuard {
    slot: Arc<ThreadSlot>,
    reclaimer: Reclaimer,
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if self.slot.depth.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.slot.pinned_at.store(0, Ordering::SeqCst);
            if self.reclaimer.inner.retired.lock().is_empty() {
                return;
            }
            self.reclaimer.collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counter() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
        let c = Arc::new(AtomicUsize::new(0));
        let c2 = c.clone();
        (c, move || {
            c2.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn unpinned_retire_frees_at_once() {
        let r = Reclaimer::new();
        let (freed, f) = counter();
        r.retire(f);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
        assert_eq!(r.n_pending(), 0);
    }

    #[test]
    fn a_pin_older_than_the_retirement_delays_it() {
        let r = Reclaimer::new();
        let guard = r.pin();
        let (freed, f) = counter();
        r.retire(f);
        assert_eq!(
            freed.load(Ordering::SeqCst),
            0,
            "the pinned thread may run the old code"
        );
        // A nested pin keeps the old epoch.
        drop(r.pin());
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        drop(guard);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn pins_newer_than_the_retirement_do_not_delay_it() {
        let r = Reclaimer::new();
        let (freed, f) = counter();
        let r2 = r.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            let _g = r2.pin();
            tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        rx.recv().unwrap();
        // Retired while the other thread is pinned: wait for it.
        r.retire(f);
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        // This thread pins after the retirement: no obstacle.
        let mine = r.pin();
        go_tx.send(()).unwrap();
        other.join().unwrap();
        r.collect();
        assert_eq!(freed.load(Ordering::SeqCst), 1);
        drop(mine);
    }

    #[test]
    fn a_collect_frees_nothing_retired_after_it_looked_at_the_pins() {
        let r = Reclaimer::new();
        // A collect (on another thread, say) looks at the pins: none.
        let bound = r.free_bound();
        // Before it frees anything, this thread pins and reaches the code
        // through its stub; then the stub is repointed and the code
        // retired.
        let guard = r.pin();
        let (freed, f) = counter();
        r.retire(f);
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        // The first collect goes on with what it saw.
        assert_eq!(r.free_up_to(bound), 0);
        assert_eq!(
            freed.load(Ordering::SeqCst),
            0,
            "the pinned thread may still be running the retired code"
        );
        drop(guard);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }
}

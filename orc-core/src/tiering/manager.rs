//! Adaptive tiering: which functions to recompile with the optimizing tier,
//! and when.
//!
//! Each registered function gets a counter that its tier-0 code bumps on
//! entry and on every loop back-edge (the tier-0 layer emits that code; the
//! counters live here, at stable addresses). When a bump brings the count to
//! the function's trip value ([`TierPolicy::check_interval`]), the tier-0
//! code calls the manager ([`TripCounter::on_trip`]), on the thread running
//! it: the manager folds the counter into the function's total, resets it,
//! and asks the [`TierPolicy`] whether the function is hot. Hot functions
//! are queued, and a task on the tier-up dispatcher takes everything queued
//! at once, adds the functions the policy lets join a starting batch
//! ([`TierPolicy::joins_batch`]; for [`ThresholdPolicy`], those at a quarter
//! of the threshold) and promotes them: through the [`BatchPromoteFn`] if one is set (so
//! several functions can share one tier-1 compile), else through each
//! function's `promote` callback (compile with tier 1, link, repoint the
//! stub). No thread polls: a process with nothing hot has no tiering thread
//! awake, and a function is queued the moment it reaches the threshold.
//! Tier-1 code has no counters, so it pays nothing. A failed promotion
//! leaves the function in tier 0 and is reported once through the session's
//! error reporter.
//!
//! With an in-place dispatcher the promotion runs inside the trip call, on
//! the thread that made the function hot (synchronous tier-up).
//!
//! The manager knows no IR: what promoting means is the registrant's
//! business.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::dispatch::{Dispatcher, Task};
use crate::error::{Error, Result};
use crate::memory::JitCells;
use crate::reclaim::Reclaimer;
use crate::session::ExecutionSession;
use crate::tiering::{TierEvent, TierTrace};

/// Decides when a function is hot enough for the optimizing tier.
pub trait TierPolicy: Send + Sync {
    /// Whether `function`, whose tier-0 code has counted `count` entries
    /// and loop back-edges since it was (re)defined, should be promoted now.
    fn should_tier_up(&self, function: &str, count: u64) -> bool;

    /// How many counts apart the tier-0 code asks [`Self::should_tier_up`]
    /// (at least 1). The default, 1,000, asks often enough for any
    /// threshold-like policy without the asking costing anything.
    fn check_interval(&self) -> u64 {
        1000
    }

    /// Whether `function`, not hot yet at `count`, should join a tier-1
    /// batch that is starting anyway. Functions that work together turn
    /// hot moments apart; compiling the nearly hot ones with the first
    /// saves a second compile and the tier-0 time spent waiting for it.
    /// The default: no.
    fn joins_batch(&self, function: &str, count: u64) -> bool {
        let _ = (function, count);
        false
    }
}

/// Promotes a function once its count reaches a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThresholdPolicy {
    /// The count (entries plus loop back-edges) that makes a function hot.
    pub threshold: u64,
}

impl TierPolicy for ThresholdPolicy {
    fn should_tier_up(&self, _function: &str, count: u64) -> bool {
        count >= self.threshold
    }

    /// The threshold itself: the code asks exactly when it is reached.
    fn check_interval(&self) -> u64 {
        self.threshold.max(1)
    }

    /// At a quarter of the threshold, a function rides along with a batch.
    /// (many_small: the first of its 13 hot functions used to go alone, the
    /// other 12 a few milliseconds later in a second compile.)
    fn joins_batch(&self, _function: &str, count: u64) -> bool {
        count.saturating_mul(4) >= self.threshold
    }
}

/// What a function's tier-0 code needs to count for the manager: see
/// [`TierManager::trip_counter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TripCounter {
    /// Address of the function's `u64` counter, bumped on entry and on
    /// every loop back-edge.
    pub counter: u64,
    /// When a bump makes the counter at least this, the code calls
    /// `on_trip`, then reloads the counter (the call resets it).
    pub trip: u64,
    /// Address of the manager's `extern "C" fn(context: u64, counter: u64)`.
    pub on_trip: u64,
    /// The first argument for `on_trip`.
    pub context: u64,
}

/// What a successful promotion reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Promotion {
    /// Time spent compiling and linking the tier-1 code (for a function
    /// compiled in a batch, its share of the batch's time).
    pub compile_time: Duration,
    /// Whether the result was used (false when the function was redefined
    /// while it compiled, so the result was thrown away).
    pub installed: bool,
}

/// Compiles a function with the optimizing tier and repoints its stub.
pub type PromoteFn = Arc<dyn Fn() -> Result<Promotion> + Send + Sync>;

/// Promotes several functions (by registered name) together, for example
/// in one tier-1 module; returns one result per name, in order. A result
/// missing from the end counts as a failure.
pub type BatchPromoteFn = Arc<dyn Fn(&[&str]) -> Vec<Result<Promotion>> + Send + Sync>;

/// Where a function stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierState {
    /// Running tier-0 code, counting.
    Counting,
    /// Hot; waiting for a tier-up thread.
    Queued,
    /// Being compiled by tier 1.
    Compiling,
    /// Running tier-1 code.
    Promoted,
    /// Tier 1 failed; stays in tier 0.
    Failed,
}

impl TierState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => TierState::Counting,
            1 => TierState::Queued,
            2 => TierState::Compiling,
            3 => TierState::Promoted,
            _ => TierState::Failed,
        }
    }
}

/// Tiering statistics of one function.
#[derive(Clone, Debug)]
pub struct FunctionTierStats {
    /// The registered name (the tier-0 body's symbol).
    pub name: String,
    /// Entries plus back-edges counted in tier 0 (at promotion, or now).
    pub count: u64,
    /// Where it stands.
    pub state: TierState,
    /// Time between being queued and a tier-up thread starting on it.
    pub queued_for: Option<Duration>,
    /// Tier-1 compile (and link) time.
    pub tier1_compile_time: Option<Duration>,
}

struct Entry {
    name: String,
    counter: *const AtomicU64,
    /// Set by [`TierManager::unregister`]: a queued promotion is dropped.
    retired: AtomicBool,
    /// Counts already taken out of the counter by trips.
    base: AtomicU64,
    state: AtomicU8,
    promote: PromoteFn,
    stats: Mutex<EntryStats>,
}

// SAFETY: `counter` points into a counter chunk owned by the manager that
// outlives every entry; it is only accessed atomically.
unsafe impl Send for Entry {}
// SAFETY: as above.
unsafe impl Sync for Entry {}

#[derive(Default)]
struct EntryStats {
    count_at_promotion: Option<u64>,
    queued_at: Option<Instant>,
    queued_for: Option<Duration>,
    compile_time: Option<Duration>,
}

impl Entry {
    /// Everything counted: what trips folded in, what the counter holds,
    /// and what an executor took out of it and has not yet reported.
    fn count(&self) -> u64 {
        // SAFETY: `counter` is the count of a cell in one of the manager's
        // chunks, which outlive the entry (see the `Send` impl).
        let cell = unsafe { CounterCell::of(self.counter) };
        self.base
            .load(Ordering::Relaxed)
            .wrapping_add(cell.count.load(Ordering::Relaxed))
            .wrapping_add(cell.carried.load(Ordering::Relaxed))
    }
}

const CHUNK: usize = 512;

/// A function's counter as the tier-0 code sees it (at the cell's address),
/// and beside it two words the code never touches, for an executor (see
/// `on_trip`): `quiet`, non-zero once the manager no longer needs the
/// counter's trips (the function is queued, promoted or given up on), so
/// the executor stops reporting trips that would only cost the controller
/// a wake-up; and `carried`, where the executor moves the count at each
/// trip (so the code goes on counting from zero at once) until the
/// manager takes it with the next report. The manager reads it with the
/// rest: a function warm enough to join a starting batch is seen so
/// between reports, as it is in process (without it, eight of
/// `many_small.kal`'s thirteen functions missed the first batch under
/// `--oop` and ran 7 ms longer in tier 0).
#[repr(C)]
struct CounterCell {
    count: AtomicU64,
    quiet: AtomicU64,
    carried: AtomicU64,
}

// SAFETY: three atomic integers: zero is a valid value, shared mutation
// only.
unsafe impl crate::memory::ZeroCell for CounterCell {}

impl CounterCell {
    /// The cell whose `count` is at `counter`.
    ///
    /// # Safety
    /// `counter` must be the address of a live `CounterCell`'s count (one
    /// the manager handed out, its chunk alive).
    unsafe fn of<'a>(counter: *const AtomicU64) -> &'a CounterCell {
        // SAFETY: `count` is the first field of a `repr(C)` cell, so its
        // address is the cell's (the caller guarantees the cell lives).
        unsafe { &*counter.cast::<CounterCell>() }
    }
}

/// Set in the context that tier-0 code passes to its trip handler when the
/// manager promotes in place (on the thread that tripped, which waits):
/// an executor then waits for a counter's first trip to be handled, as
/// that thread would in process. Contexts are `Inner` addresses, so the
/// bit is free.
pub(crate) const CONTEXT_IN_PLACE: u64 = 1;

struct Inner {
    session: ExecutionSession,
    policy: Arc<dyn TierPolicy>,
    dispatcher: Arc<dyn Dispatcher>,
    chunks: Mutex<Vec<JitCells<CounterCell>>>,
    n_counters: AtomicUsize,
    /// Counters of unregistered functions whose code is gone, for reuse.
    free_counters: Mutex<Vec<usize>>,
    /// Defers a counter's reuse until no thread can be running the code
    /// that bumps it; without one, counters are not reused.
    reclaimer: RwLock<Option<Reclaimer>>,
    /// What [`TierManager::keep_until_unreachable`] keeps without a
    /// reclaimer.
    kept: Mutex<Vec<Box<dyn std::any::Any + Send>>>,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    /// The same entries by counter address, for trips.
    by_counter: RwLock<HashMap<usize, Arc<Entry>>>,
    /// Hot entries waiting for a tier-up task.
    queue: Mutex<Vec<Arc<Entry>>>,
    batch: RwLock<Option<BatchPromoteFn>>,
    /// Entries queued or compiling.
    pending: AtomicUsize,
    idle: (Mutex<()>, Condvar),
    stop: AtomicBool,
    /// Calls from tier-0 code whose count reached its trip value.
    trips: AtomicU64,
    /// This `Inner`, for the trip handler (which gets a plain pointer).
    me: std::sync::Weak<Inner>,
    /// Where hot, queued and failed functions are logged, if anywhere.
    trace: RwLock<Option<Arc<TierTrace>>>,
}

/// Watches counters and promotes hot functions. See the module docs.
pub struct TierManager {
    inner: Arc<Inner>,
}

impl TierManager {
    /// A manager reporting errors through `session`, deciding with `policy`,
    /// promoting on `dispatcher` (typically a pool of background threads;
    /// with an in-place dispatcher, promotions run on the thread whose code
    /// tripped).
    pub fn new(
        session: &ExecutionSession,
        policy: Arc<dyn TierPolicy>,
        dispatcher: Arc<dyn Dispatcher>,
    ) -> Self {
        let manager = TierManager {
            inner: Arc::new_cyclic(|me| Inner {
                session: session.clone(),
                policy,
                dispatcher,
                chunks: Mutex::new(Vec::new()),
                n_counters: AtomicUsize::new(0),
                free_counters: Mutex::new(Vec::new()),
                reclaimer: RwLock::new(None),
                kept: Mutex::new(Vec::new()),
                entries: RwLock::new(HashMap::new()),
                by_counter: RwLock::new(HashMap::new()),
                queue: Mutex::new(Vec::new()),
                batch: RwLock::new(None),
                pending: AtomicUsize::new(0),
                idle: (Mutex::new(()), Condvar::new()),
                stop: AtomicBool::new(false),
                trips: AtomicU64::new(0),
                me: me.clone(),
                trace: RwLock::new(None),
            }),
        };
        crate::remote::add_context(Arc::as_ptr(&manager.inner) as u64);
        manager
    }

    /// Registers (or re-registers, after a redefinition) `name` with a fresh
    /// zero counter; `promote` is called once when it turns hot. Returns the
    /// counter's address for the tier-0 code to bump (see
    /// [`Self::trip_counter`] for the rest of what the code needs).
    pub fn register(&self, name: &str, promote: PromoteFn) -> u64 {
        let counter = self.inner.allocate_counter();
        let entry = Arc::new(Entry {
            name: name.to_owned(),
            counter,
            retired: AtomicBool::new(false),
            base: AtomicU64::new(0),
            state: AtomicU8::new(0),
            promote,
            stats: Mutex::new(EntryStats::default()),
        });
        // A replaced entry's counter is not reused: old code may still bump
        // it (and trip on it) until it is reclaimed.
        let replaced = self
            .inner
            .entries
            .write()
            .insert(name.to_owned(), entry.clone());
        let mut by_counter = self.inner.by_counter.write();
        if let Some(old) = replaced {
            by_counter.remove(&(old.counter as usize));
        }
        by_counter.insert(counter as usize, entry);
        counter as u64
    }

    /// Forgets `name` (a superseded version's tier-0 body, once its stub
    /// no longer leads to it): its entry goes, a queued promotion of it is
    /// dropped, and its counter is reused once no thread can still be
    /// running its code (after a grace period of the reclaimer given to
    /// [`Self::set_reclaimer`]; without one the counter is not reused).
    /// Returns whether `name` was registered.
    pub fn unregister(&self, name: &str) -> bool {
        let Some(entry) = self.inner.entries.write().remove(name) else {
            return false;
        };
        entry.retired.store(true, Ordering::Release);
        self.inner
            .by_counter
            .write()
            .remove(&(entry.counter as usize));
        if let Some(index) = self.inner.counter_index(entry.counter) {
            if let Some(reclaimer) = &*self.inner.reclaimer.read() {
                let weak = Arc::downgrade(&self.inner);
                reclaimer.retire(move || {
                    if let Some(inner) = weak.upgrade() {
                        inner.free_counters.lock().push(index);
                    }
                });
            }
        }
        true
    }

    /// Keeps `value` (state old code may still use, such as a superseded
    /// version's on-stack-replacement slots) until no thread can be running
    /// code from before now: with a reclaimer (see [`Self::set_reclaimer`]),
    /// until its grace period ends; without one, as long as the manager.
    pub fn keep_until_unreachable(&self, value: impl Send + 'static) {
        match &*self.inner.reclaimer.read() {
            Some(reclaimer) => reclaimer.retire(move || drop(value)),
            None => self.inner.kept.lock().push(Box::new(value)),
        }
    }

    /// Lets unregistered functions' counters be reused once `reclaimer`
    /// says no thread can be running their code (see [`Self::unregister`]).
    pub fn set_reclaimer(&self, reclaimer: Reclaimer) {
        *self.inner.reclaimer.write() = Some(reclaimer);
    }

    /// Logs hot and queued functions and failed promotions to `trace`.
    pub fn set_trace(&self, trace: Arc<TierTrace>) {
        *self.inner.trace.write() = Some(trace);
    }

    /// How many functions are registered (for tests and statistics).
    pub fn registered(&self) -> usize {
        self.inner.entries.read().len()
    }

    /// What `name`'s tier-0 code needs to count and trip: its counter, the
    /// policy's check interval, and the manager's trip handler. The handler
    /// and its context stay valid while the manager lives; code bumping the
    /// counter must not run after that (as for the counter itself).
    pub fn trip_counter(&self, name: &str) -> Option<TripCounter> {
        let counter = self.inner.entries.read().get(name)?.counter as u64;
        let mut context = Arc::as_ptr(&self.inner) as u64;
        if self.inner.dispatcher.runs_in_place() {
            context |= CONTEXT_IN_PLACE;
        }
        Some(TripCounter {
            counter,
            trip: self.inner.policy.check_interval().max(1),
            on_trip: on_trip as extern "C" fn(u64, u64) as usize as u64,
            context,
        })
    }

    /// What tier-0 code calls when a function's count reaches its trip
    /// value, as [`TripCounter::on_trip`] would (for tests and for code
    /// that counts some other way).
    pub fn tripped(&self, counter: u64) {
        self.inner.tripped(counter as *const AtomicU64);
    }

    /// Promotes everything that is hot at the same time with one call of
    /// `batch` instead of each function's own callback.
    pub fn set_batch_promoter(&self, batch: BatchPromoteFn) {
        *self.inner.batch.write() = Some(batch);
    }

    /// The counter address of a registered function.
    pub fn counter_address(&self, name: &str) -> Option<u64> {
        self.inner
            .entries
            .read()
            .get(name)
            .map(|e| e.counter as u64)
    }

    /// Where `name` stands.
    pub fn state(&self, name: &str) -> Option<TierState> {
        let entries = self.inner.entries.read();
        entries
            .get(name)
            .map(|e| TierState::from_u8(e.state.load(Ordering::Acquire)))
    }

    /// Waits until nothing is queued or compiling (or `timeout` passes);
    /// returns whether it is idle.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.inner.idle.0.lock();
        while self.inner.pending.load(Ordering::Acquire) != 0 {
            if self
                .inner
                .idle
                .1
                .wait_until(&mut guard, deadline)
                .timed_out()
            {
                return self.inner.pending.load(Ordering::Acquire) == 0;
            }
        }
        true
    }

    /// How many times tier-0 code has called the manager because a count
    /// reached its trip value.
    pub fn trips(&self) -> u64 {
        self.inner.trips.load(Ordering::Relaxed)
    }

    /// Asks the policy about every function still counting now, instead of
    /// at their next trip (for policies whose answer changes with time or
    /// outside state).
    pub fn sample_now(&self) {
        self.inner.sample();
    }

    /// Per-function statistics, sorted by name.
    pub fn stats(&self) -> Vec<FunctionTierStats> {
        let entries = self.inner.entries.read();
        let mut out: Vec<FunctionTierStats> = entries
            .values()
            .map(|e| {
                let stats = e.stats.lock();
                FunctionTierStats {
                    name: e.name.clone(),
                    count: stats.count_at_promotion.unwrap_or_else(|| e.count()),
                    state: TierState::from_u8(e.state.load(Ordering::Acquire)),
                    queued_for: stats.queued_for,
                    tier1_compile_time: stats.compile_time,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Stops queueing promotions and waits for those in flight.
    /// Idempotent.
    pub fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.wait_idle(Duration::from_secs(60));
    }
}

/// A trip the executor reported, its count in the cell's `carried` word
/// (see [`crate::remote::serve_trip`], which checked that `context` is a
/// live manager's, without [`CONTEXT_IN_PLACE`]).
pub(crate) fn trip_from_executor(context: u64, counter: u64) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `context` is a live manager's `Inner` (checked by the
        // caller against the registered contexts).
        let inner = unsafe { &*(context as *const Inner) };
        if let Some(inner) = inner.me.upgrade() {
            inner.tripped_with(counter as *const AtomicU64, true);
        }
    });
}

impl Drop for Inner {
    fn drop(&mut self) {
        crate::remote::remove_context(self as *const Inner as u64);
    }
}

impl Drop for TierManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for TierManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierManager")
            .field("functions", &self.inner.entries.read().len())
            .field("pending", &self.inner.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl Inner {
    /// A fresh zero counter. Chunks are never freed or moved while the
    /// manager lives, so the address stays valid for the code that bumps it.
    fn allocate_counter(&self) -> *const AtomicU64 {
        let mut chunks = self.chunks.lock();
        if let Some(index) = self.free_counters.lock().pop() {
            let cell = &chunks[index / CHUNK][index % CHUNK];
            cell.count.store(0, Ordering::Relaxed);
            cell.quiet.store(0, Ordering::Relaxed);
            cell.carried.store(0, Ordering::Relaxed);
            return &cell.count as *const AtomicU64;
        }
        let index = self.n_counters.fetch_add(1, Ordering::Relaxed);
        if index / CHUNK >= chunks.len() {
            match JitCells::new(CHUNK) {
                Ok(chunk) => chunks.push(chunk),
                Err(e) => {
                    // Without memory for counters the JIT cannot go on
                    // (tier-0 code already points at this counter).
                    eprintln!("orc: cannot allocate tiering counters: {e}");
                    std::process::abort()
                }
            }
        }
        &chunks[index / CHUNK][index % CHUNK].count as *const AtomicU64
    }

    /// A trip: `counter`'s count reached its trip value. Folds the counter
    /// into its function's total, resets it, and queues the function if the
    /// policy calls it hot. Counters of replaced registrations are reset and
    /// otherwise ignored.
    fn tripped(self: &Arc<Self>, counter: *const AtomicU64) {
        self.tripped_with(counter, false);
    }

    /// [`Self::tripped`]; `from_executor`: an executor's report, whose
    /// count the executor moved to the cell's `carried` word.
    fn tripped_with(self: &Arc<Self>, counter: *const AtomicU64, from_executor: bool) {
        self.trips.fetch_add(1, Ordering::Relaxed);
        let entry = self.by_counter.read().get(&(counter as usize)).cloned();
        let Some(entry) = entry else {
            // Not one of our live counters: if it is a stale one, reset it
            // so its old code stops tripping on every count.
            if !from_executor && self.is_our_counter(counter) {
                // SAFETY: an address inside one of our chunks, which live as
                // long as the manager.
                unsafe { &*counter }.store(0, Ordering::Relaxed);
            }
            return;
        };
        // SAFETY: a registered entry's counter is in one of our chunks.
        let cell = unsafe { CounterCell::of(entry.counter) };
        let taken = if from_executor {
            cell.carried.swap(0, Ordering::Relaxed)
        } else {
            cell.count.swap(0, Ordering::Relaxed)
        };
        let count = entry
            .base
            .fetch_add(taken, Ordering::Relaxed)
            .wrapping_add(taken);
        if entry.state.load(Ordering::Relaxed) != 0 || self.stop.load(Ordering::Relaxed) {
            return;
        }
        if self.policy.should_tier_up(&entry.name, count) {
            self.emit(|| TierEvent::Hot {
                body: entry.name.clone(),
                count,
            });
            self.queue_hot(vec![entry]);
        }
    }

    /// Reports an event to the trace, if one is set.
    fn emit(&self, event: impl FnOnce() -> TierEvent) {
        if let Some(trace) = &*self.trace.read() {
            trace.emit(event());
        }
    }

    /// The index of `counter` among ours (chunk by chunk), if it is one.
    fn counter_index(&self, counter: *const AtomicU64) -> Option<usize> {
        let addr = counter as usize;
        let size = std::mem::size_of::<CounterCell>();
        self.chunks
            .lock()
            .iter()
            .enumerate()
            .find_map(|(i, chunk)| {
                let start = chunk.as_ptr() as usize;
                let end = start + chunk.len() * size;
                ((start..end).contains(&addr) && (addr - start) % size == 0)
                    .then(|| i * CHUNK + (addr - start) / size)
            })
    }

    /// Whether `counter` points at a counter in one of our chunks.
    fn is_our_counter(&self, counter: *const AtomicU64) -> bool {
        self.counter_index(counter).is_some()
    }

    /// Asks the policy about every function still counting.
    fn sample(self: &Arc<Self>) {
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        let hot: Vec<Arc<Entry>> = {
            let entries = self.entries.read();
            entries
                .values()
                .filter(|e| e.state.load(Ordering::Relaxed) == 0)
                .filter(|e| self.policy.should_tier_up(&e.name, e.count()))
                .cloned()
                .collect()
        };
        self.queue_hot(hot);
    }

    /// Queues those of `hot` still counting, with the functions the
    /// policy lets join them, and starts a tier-up task.
    ///
    /// The warm ones join now as well as when the task starts (`drain`):
    /// out of process, trips arrive as reports, and functions that count
    /// together cross the threshold within a report's latency of each
    /// other; queued one by one as their reports came, those that came
    /// after the task took the queue waited for a second batch (8 of
    /// `many_small.kal`'s 13 functions, 4-7 ms more in tier 0).
    fn queue_hot(self: &Arc<Self>, hot: Vec<Arc<Entry>>) {
        let mut queued = 0;
        for entry in hot {
            if !self.mark_queued(&entry) {
                continue;
            }
            self.queue.lock().push(entry);
            queued += 1;
        }
        if queued > 0 {
            let joining = self.warm();
            let mut queue = self.queue.lock();
            queue.extend(joining.into_iter().filter(|e| self.mark_queued(e)));
            drop(queue);
            let inner = self.clone();
            self.dispatcher
                .dispatch(Task::new(format!("tier up {queued}"), move || {
                    inner.drain();
                }));
        }
    }

    /// The functions still counting that the policy lets join a batch
    /// (none once stopped).
    fn warm(&self) -> Vec<Arc<Entry>> {
        if self.stop.load(Ordering::Relaxed) {
            return Vec::new();
        }
        self.entries
            .read()
            .values()
            .filter(|e| e.state.load(Ordering::Relaxed) == 0)
            .filter(|e| self.policy.joins_batch(&e.name, e.count()))
            .cloned()
            .collect()
    }

    /// Marks `entry` queued, if it was still counting.
    fn mark_queued(&self, entry: &Entry) -> bool {
        if entry
            .state
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        // Its trips no longer matter (see `CounterCell`).
        // SAFETY: a registered entry's counter is in one of our chunks.
        unsafe { CounterCell::of(entry.counter) }
            .quiet
            .store(1, Ordering::Relaxed);
        let mut stats = entry.stats.lock();
        stats.count_at_promotion = Some(entry.count());
        stats.queued_at = Some(Instant::now());
        drop(stats);
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.emit(|| TierEvent::Queued {
            body: entry.name.clone(),
        });
        true
    }

    /// Promotes everything queued (an earlier task may have taken it all),
    /// with the functions the policy lets join the batch.
    fn drain(&self) {
        let mut batch: Vec<Arc<Entry>> = std::mem::take(&mut *self.queue.lock());
        // Unregistered while queued: nothing to promote.
        batch.retain(|entry| {
            let keep = !entry.retired.load(Ordering::Acquire);
            if !keep {
                entry.state.store(4, Ordering::Release);
                let _guard = self.idle.0.lock();
                self.pending.fetch_sub(1, Ordering::AcqRel);
                self.idle.1.notify_all();
            }
            keep
        });
        if batch.is_empty() {
            return;
        }
        let joining = self.warm();
        batch.extend(joining.into_iter().filter(|e| self.mark_queued(e)));
        for entry in &batch {
            entry.state.store(2, Ordering::Release);
            let mut stats = entry.stats.lock();
            stats.queued_for = stats.queued_at.map(|t| t.elapsed());
        }
        let batch_fn = self.batch.read().clone();
        let results: Vec<Result<Promotion>> = match batch_fn {
            Some(promote) => {
                let names: Vec<&str> = batch.iter().map(|e| e.name.as_str()).collect();
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| promote(&names)));
                outcome.unwrap_or_else(|_| Vec::new())
            }
            None => batch
                .iter()
                .map(|entry| {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        (entry.promote)()
                    }));
                    outcome.unwrap_or_else(|_| Err(Error::other("panic while promoting")))
                })
                .collect(),
        };
        let mut results = results.into_iter();
        for entry in &batch {
            let result = results
                .next()
                .unwrap_or_else(|| Err(Error::other("panic while promoting")));
            self.finish(entry, result);
        }
    }

    fn finish(&self, entry: &Entry, result: Result<Promotion>) {
        match result {
            Ok(promotion) => {
                entry.stats.lock().compile_time = Some(promotion.compile_time);
                entry.state.store(3, Ordering::Release);
            }
            // Superseded while compiling: its promotion no longer matters.
            Err(_) if entry.retired.load(Ordering::Acquire) => {
                entry.state.store(4, Ordering::Release);
            }
            Err(e) => {
                entry.state.store(4, Ordering::Release);
                self.emit(|| TierEvent::PromotionFailed {
                    body: entry.name.clone(),
                    error: e.to_string(),
                });
                self.session.report_error(&Error::other(format!(
                    "tier-1 compile of '{}' failed; it stays in tier 0: {e}",
                    entry.name
                )));
            }
        }
        let _guard = self.idle.0.lock();
        self.pending.fetch_sub(1, Ordering::AcqRel);
        self.idle.1.notify_all();
    }
}

/// The trip handler tier-0 code calls (see [`TripCounter`]).
extern "C" fn on_trip(context: u64, counter: u64) {
    // In an executor, the manager lives in the controller: move the count
    // to where the manager reads it, so the code goes on at once, and tell
    // it, unless it said it needs no more.
    if let Some(controller) = crate::remote::controller() {
        // SAFETY: `counter` is the address this code bumps: a counter cell
        // in the arena, mapped read-write here while the code can run.
        let cell = unsafe { CounterCell::of(counter as *const AtomicU64) };
        let count = cell.count.swap(0, Ordering::Relaxed);
        if cell.quiet.load(Ordering::Relaxed) == 0 {
            cell.carried.fetch_add(count, Ordering::Relaxed);
            controller.trip(context, counter);
        }
        return;
    }
    let context = context & !CONTEXT_IN_PLACE;
    // Nothing may unwind into JIT'd code.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `context` is the address of the `Inner` of the manager
        // whose `trip_counter` gave it to this code, and the code runs only
        // while that manager lives (see `TierManager::trip_counter`).
        let inner = unsafe { &*(context as *const Inner) };
        if let Some(inner) = inner.me.upgrade() {
            inner.tripped(counter as *const AtomicU64);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{InPlaceDispatcher, ThreadPoolDispatcher};

    fn manager(threshold: u64) -> TierManager {
        let es = ExecutionSession::new();
        let pool = Arc::new(ThreadPoolDispatcher::new(1).unwrap());
        TierManager::new(&es, Arc::new(ThresholdPolicy { threshold }), pool)
    }

    fn load(addr: u64) -> u64 {
        // SAFETY: `addr` is a counter address handed out by the manager.
        unsafe { &*(addr as *const AtomicU64) }.load(Ordering::Relaxed)
    }

    /// Asks the policy about every function, then waits for the promotions
    /// that starts.
    fn sample_and_settle(tm: &TierManager) {
        tm.sample_now();
        assert!(tm.wait_idle(Duration::from_secs(10)));
    }

    fn bump(addr: u64, n: u64) {
        // SAFETY: `addr` is a counter address handed out by the manager.
        let counter = unsafe { &*(addr as *const AtomicU64) };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    #[test]
    fn unregistered_functions_go_and_their_counters_are_reused_after_grace() {
        let tm = manager(100);
        let reclaimer = Reclaimer::new();
        tm.set_reclaimer(reclaimer.clone());
        let never: PromoteFn = Arc::new(|| Err(Error::other("not hot")));
        let a = tm.register("a$t0", never.clone());
        let b = tm.register("b$t0", never.clone());
        assert_eq!(tm.registered(), 2);
        // A thread still inside `a`'s code keeps its counter from reuse.
        let pin = reclaimer.pin();
        assert!(tm.unregister("a$t0"));
        assert!(!tm.unregister("a$t0"));
        assert_eq!((tm.registered(), tm.state("a$t0")), (1, None));
        let c = tm.register("c$t0", never.clone());
        assert!(c != a && c != b);
        drop(pin);
        reclaimer.collect();
        // The grace period is over: the next registration reuses `a`'s.
        assert_eq!(tm.register("d$t0", never), a);
        assert_eq!(load(a), 0);
        assert_eq!(tm.registered(), 3);
    }

    #[test]
    fn hot_functions_are_promoted_once_cold_ones_never() {
        let tm = manager(100);
        let promoted = Arc::new(AtomicUsize::new(0));
        let p = promoted.clone();
        let hot = tm.register(
            "hot",
            Arc::new(move || {
                p.fetch_add(1, Ordering::SeqCst);
                Ok(Promotion {
                    compile_time: Duration::from_millis(1),
                    installed: true,
                })
            }),
        );
        let cold = tm.register("cold", Arc::new(|| Err(Error::other("never called"))));
        // Below a quarter of the threshold: not even warm enough to join.
        bump(cold, 24);
        bump(hot, 100);
        sample_and_settle(&tm);
        bump(hot, 1000);
        sample_and_settle(&tm);
        assert_eq!(promoted.load(Ordering::SeqCst), 1);
        assert_eq!(tm.state("hot"), Some(TierState::Promoted));
        assert_eq!(tm.state("cold"), Some(TierState::Counting));
        let stats = tm.stats();
        assert_eq!(stats[1].name, "hot");
        assert_eq!(stats[1].count, 100);
        assert!(stats[1].tier1_compile_time.is_some());
    }

    #[test]
    fn a_failed_promotion_is_reported_once_and_stays_in_tier_0() {
        let es = ExecutionSession::new();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let r = reports.clone();
        es.set_error_reporter(move |e| r.lock().push(e.to_string()));
        let pool = Arc::new(ThreadPoolDispatcher::new(1).unwrap());
        let tm = TierManager::new(&es, Arc::new(ThresholdPolicy { threshold: 1 }), pool);
        let f = tm.register("f", Arc::new(|| Err(Error::other("llvm said no"))));
        bump(f, 5);
        for _ in 0..5 {
            sample_and_settle(&tm);
        }
        assert_eq!(tm.state("f"), Some(TierState::Failed));
        let reports = reports.lock();
        assert_eq!(reports.len(), 1);
        assert!(reports[0].contains("'f'") && reports[0].contains("llvm said no"));
    }

    #[test]
    fn functions_hot_at_once_are_promoted_in_one_batch() {
        let tm = manager(10);
        let calls = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let c = calls.clone();
        tm.set_batch_promoter(Arc::new(move |names: &[&str]| {
            c.lock().push(names.iter().map(|n| n.to_string()).collect());
            names
                .iter()
                .map(|n| match *n {
                    "bad" => Err(Error::other("no tier 1 for you")),
                    _ => Ok(Promotion::default()),
                })
                .collect()
        }));
        let unused: PromoteFn = Arc::new(|| Err(Error::other("not called with a batch promoter")));
        let a = tm.register("a", unused.clone());
        let b = tm.register("b", unused.clone());
        let bad = tm.register("bad", unused.clone());
        let later = tm.register("later", unused);
        for counter in [a, b, bad] {
            bump(counter, 10);
        }
        sample_and_settle(&tm);
        bump(later, 10);
        sample_and_settle(&tm);
        let mut calls = calls.lock().clone();
        calls[0].sort();
        assert_eq!(calls, [vec!["a", "b", "bad"], vec!["later"]]);
        assert_eq!(tm.state("a"), Some(TierState::Promoted));
        assert_eq!(tm.state("bad"), Some(TierState::Failed));
        assert_eq!(tm.state("later"), Some(TierState::Promoted));
    }

    #[test]
    fn warm_functions_join_a_starting_batch() {
        let tm = manager(100);
        let calls = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let c = calls.clone();
        tm.set_batch_promoter(Arc::new(move |names: &[&str]| {
            let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            names.sort();
            c.lock().push(names.clone());
            names.iter().map(|_| Ok(Promotion::default())).collect()
        }));
        let unused: PromoteFn = Arc::new(|| Err(Error::other("not called with a batch promoter")));
        let hot = tm.register("hot", unused.clone());
        let warm = tm.register("warm", unused.clone());
        let cool = tm.register("cool", unused);
        bump(warm, 25);
        bump(cool, 24);
        bump(hot, 100);
        tm.tripped(hot);
        assert!(tm.wait_idle(Duration::from_secs(10)));
        // A quarter of the threshold rides along; less stays counting.
        assert_eq!(*calls.lock(), [vec!["hot", "warm"]]);
        assert_eq!(tm.state("warm"), Some(TierState::Promoted));
        assert_eq!(tm.state("cool"), Some(TierState::Counting));
        let stats = tm.stats();
        let warm_stats = stats.iter().find(|s| s.name == "warm").unwrap();
        assert_eq!(warm_stats.count, 25);
        // A policy that keeps the default lets nothing join.
        assert!(!EveryFourth.joins_batch("f", u64::MAX));
        tm.shutdown();
    }

    /// Holds dispatched tasks until the test runs them.
    #[derive(Default)]
    struct Held(Mutex<Vec<Task>>);

    impl crate::Dispatcher for Held {
        fn dispatch(&self, task: Task) {
            self.0.lock().push(task);
        }
        fn shutdown(&self) {}
    }

    #[test]
    fn warm_functions_join_when_another_is_queued_and_carried_counts_count() {
        let es = ExecutionSession::new();
        let held = Arc::new(Held::default());
        let tm = TierManager::new(
            &es,
            Arc::new(ThresholdPolicy { threshold: 100 }),
            held.clone(),
        );
        let calls = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let c = calls.clone();
        tm.set_batch_promoter(Arc::new(move |names: &[&str]| {
            c.lock().push(names.iter().map(|n| n.to_string()).collect());
            names.iter().map(|_| Ok(Promotion::default())).collect()
        }));
        let unused: PromoteFn = Arc::new(|| Err(Error::other("not called with a batch promoter")));
        let hot = tm.register("hot", unused.clone());
        let warm = tm.register("warm", unused.clone());
        let cold = tm.register("cold", unused);
        // What an executor took out of `warm`'s counter and has not
        // reported yet counts (a quarter of the threshold: warm).
        // SAFETY: `warm` is a counter the manager handed out.
        unsafe { CounterCell::of(warm as *const AtomicU64) }
            .carried
            .store(25, Ordering::Relaxed);
        bump(cold, 24);
        bump(hot, 100);
        tm.sample_now();
        // Queued with the hot one, before any tier-up task has run (so a
        // report of its own that comes meanwhile starts no second batch).
        assert_eq!(tm.state("warm"), Some(TierState::Queued));
        assert_eq!(tm.state("cold"), Some(TierState::Counting));
        let tasks = std::mem::take(&mut *held.0.lock());
        assert_eq!(tasks.len(), 1);
        for task in tasks {
            task.run();
        }
        let mut calls = calls.lock().clone();
        calls[0].sort();
        assert_eq!(calls, [vec!["hot", "warm"]]);
        assert_eq!(
            tm.stats().iter().find(|s| s.name == "warm").unwrap().count,
            25
        );
    }

    /// Hot at 12, asked every 4 counts; keeps the default `joins_batch`.
    struct EveryFourth;
    impl TierPolicy for EveryFourth {
        fn should_tier_up(&self, _: &str, count: u64) -> bool {
            count >= 12
        }
        fn check_interval(&self) -> u64 {
            4
        }
    }

    #[test]
    fn a_trip_queues_a_hot_function_at_once() {
        let tm = manager(10);
        let f = tm.register("f", Arc::new(|| Ok(Promotion::default())));
        let trip = tm.trip_counter("f").unwrap();
        assert_eq!((trip.counter, trip.trip), (f, 10));
        // What tier-0 code does when its count reaches 10: call the handler
        // it was given, then go on from the reset counter.
        bump(f, 10);
        let on_trip: extern "C" fn(u64, u64) =
            // SAFETY: `on_trip` is the address of a function of this type.
            unsafe { std::mem::transmute(trip.on_trip as *const ()) };
        on_trip(trip.context, trip.counter);
        assert_eq!(tm.trips(), 1);
        assert_eq!(load(f), 0);
        assert!(tm.wait_idle(Duration::from_secs(10)));
        assert_eq!(tm.state("f"), Some(TierState::Promoted));
        assert_eq!(tm.stats()[0].count, 10);
        tm.shutdown();
    }

    #[test]
    fn counts_add_up_across_trips_until_the_policy_says_hot() {
        let es = ExecutionSession::new();
        let tm = TierManager::new(&es, Arc::new(EveryFourth), Arc::new(InPlaceDispatcher));
        let f = tm.register("f", Arc::new(|| Ok(Promotion::default())));
        for expected in [4, 8] {
            bump(f, 4);
            tm.tripped(f);
            assert_eq!(tm.state("f"), Some(TierState::Counting), "at {expected}");
            assert_eq!(tm.stats()[0].count, expected);
        }
        bump(f, 4);
        // With an in-place dispatcher the promotion runs inside the trip.
        tm.tripped(f);
        assert_eq!(tm.state("f"), Some(TierState::Promoted));
        assert_eq!(tm.stats()[0].count, 12);
        assert_eq!(tm.trips(), 3);
    }

    #[test]
    fn a_replaced_registration_trips_harmlessly() {
        let tm = manager(5);
        let old = tm.register("f", Arc::new(|| Ok(Promotion::default())));
        let new = tm.register("f", Arc::new(|| Ok(Promotion::default())));
        assert_ne!(old, new);
        bump(old, 5);
        tm.tripped(old);
        assert_eq!(load(old), 0);
        assert_eq!(tm.state("f"), Some(TierState::Counting));
        // An address that is no counter of ours is left alone.
        let stray = AtomicU64::new(7);
        tm.tripped(&stray as *const AtomicU64 as u64);
        assert_eq!(stray.load(Ordering::Relaxed), 7);
        tm.shutdown();
    }

    #[test]
    fn a_queued_function_s_counter_goes_quiet_and_a_reused_counter_does_not() {
        // The word beside each counter tells an executor whether the
        // manager still wants the counter's trips.
        let quiet = |counter: u64| load(counter + 8);
        let tm = manager(100);
        let reclaimer = Reclaimer::new();
        tm.set_reclaimer(reclaimer.clone());
        let promote: PromoteFn = Arc::new(|| Ok(Promotion::default()));
        let hot = tm.register("hot", promote.clone());
        let cold = tm.register("cold", promote.clone());
        assert_eq!((quiet(hot), quiet(cold)), (0, 0));
        bump(hot, 100);
        sample_and_settle(&tm);
        assert_eq!(tm.state("hot"), Some(TierState::Promoted));
        assert_ne!(quiet(hot), 0);
        assert_eq!(quiet(cold), 0);
        assert!(tm.unregister("hot"));
        reclaimer.collect();
        let again = tm.register("again", promote);
        assert_eq!(again, hot, "the counter is reused");
        assert_eq!(quiet(again), 0);
    }

    #[test]
    fn the_trip_context_says_whether_promotions_run_in_place() {
        let es = ExecutionSession::new();
        let policy = Arc::new(ThresholdPolicy { threshold: 10 });
        let background = manager(10);
        background.register("f", Arc::new(|| Ok(Promotion::default())));
        let c = background.trip_counter("f").unwrap();
        assert_eq!(c.context & CONTEXT_IN_PLACE, 0);
        let in_place = TierManager::new(&es, policy, Arc::new(InPlaceDispatcher));
        let promoted = Arc::new(AtomicUsize::new(0));
        let p = promoted.clone();
        let f = in_place.register(
            "f",
            Arc::new(move || {
                p.fetch_add(1, Ordering::SeqCst);
                Ok(Promotion::default())
            }),
        );
        let c = in_place.trip_counter("f").unwrap();
        assert_ne!(c.context & CONTEXT_IN_PLACE, 0);
        // The handler, called as tier-0 code calls it, finds its manager
        // through the marked context and promotes right then.
        bump(f, 10);
        // SAFETY: the handler the manager gave for this counter, with its
        // context, while the manager lives.
        let handler = unsafe { std::mem::transmute::<u64, extern "C" fn(u64, u64)>(c.on_trip) };
        handler(c.context, c.counter);
        assert_eq!(promoted.load(Ordering::SeqCst), 1);
        assert_eq!(in_place.state("f"), Some(TierState::Promoted));
    }
}

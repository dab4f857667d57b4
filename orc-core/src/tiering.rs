//! Adaptive tiering: which functions to recompile with the optimizing tier,
//! and when.
//!
//! Each registered function gets a counter that its tier-0 code bumps on
//! entry and on every loop back-edge (the tier-0 layer emits that code; the
//! counters live here, at stable addresses). A sampler thread looks at the
//! counters every few hundred microseconds (less often while none moves)
//! and asks the [`TierPolicy`]
//! whether a function is hot; hot functions are queued, and a task on the
//! tier-up dispatcher takes everything queued at once and promotes it:
//! through the [`BatchPromoteFn`] if one is set (so several functions can
//! share one tier-1 compile), else through each function's `promote`
//! callback (compile with tier 1, link, repoint the stub). Tier-1 code has no counters, so it
//! pays nothing. A failed promotion leaves the function in tier 0 and is
//! reported once through the session's error reporter.
//!
//! The manager knows no IR: what promoting means is the registrant's
//! business.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::dispatch::{Dispatcher, Task};
use crate::error::{Error, Result};
use crate::session::ExecutionSession;

/// Decides when a function is hot enough for the optimizing tier.
pub trait TierPolicy: Send + Sync {
    /// Whether `function`, whose tier-0 code has counted `count` entries
    /// and loop back-edges since it was (re)defined, should be promoted now.
    fn should_tier_up(&self, function: &str, count: u64) -> bool;
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
    fn count(&self) -> u64 {
        // SAFETY: see the `Send` impl: the chunk outlives the entry.
        unsafe { &*self.counter }.load(Ordering::Relaxed)
    }
}

const CHUNK: usize = 512;

/// The longest the sampler waits, in sampling intervals, while no counter
/// moves.
const MAX_BACKOFF: u32 = 64;

/// Samples in a row with no counter moving before the sampler backs off
/// (50 ms at the default 500 µs interval).
const IDLE_SAMPLES: u32 = 100;

struct Inner {
    session: ExecutionSession,
    policy: Arc<dyn TierPolicy>,
    dispatcher: Arc<dyn Dispatcher>,
    chunks: Mutex<Vec<Box<[AtomicU64]>>>,
    n_counters: AtomicUsize,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    /// Hot entries waiting for a tier-up task.
    queue: Mutex<Vec<Arc<Entry>>>,
    batch: RwLock<Option<BatchPromoteFn>>,
    /// Entries queued or compiling.
    pending: AtomicUsize,
    idle: (Mutex<()>, Condvar),
    stop: AtomicBool,
    wake: (Mutex<bool>, Condvar),
    interval: Duration,
    /// Times the sampler has looked at the counters by itself.
    wakeups: AtomicU64,
    /// Set when a function is registered: the sampler stops backing off.
    kick: AtomicBool,
}

/// Watches counters and promotes hot functions. See the module docs.
pub struct TierManager {
    inner: Arc<Inner>,
    sampler: Mutex<Option<JoinHandle<()>>>,
}

impl TierManager {
    /// A manager reporting errors through `session`, deciding with `policy`,
    /// promoting on `dispatcher` (typically a pool of background threads),
    /// sampling counters every `interval`.
    pub fn new(
        session: &ExecutionSession,
        policy: Arc<dyn TierPolicy>,
        dispatcher: Arc<dyn Dispatcher>,
        interval: Duration,
    ) -> Result<Self> {
        let inner = Arc::new(Inner {
            session: session.clone(),
            policy,
            dispatcher,
            chunks: Mutex::new(Vec::new()),
            n_counters: AtomicUsize::new(0),
            entries: RwLock::new(HashMap::new()),
            queue: Mutex::new(Vec::new()),
            batch: RwLock::new(None),
            pending: AtomicUsize::new(0),
            idle: (Mutex::new(()), Condvar::new()),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(false), Condvar::new()),
            interval,
            wakeups: AtomicU64::new(0),
            kick: AtomicBool::new(false),
        });
        let sampler_inner = inner.clone();
        let sampler = std::thread::Builder::new()
            .name("orc-tier-sampler".into())
            .spawn(move || sampler_inner.sample_loop())
            .map_err(|e| Error::other(format!("cannot start the tiering sampler: {e}")))?;
        Ok(TierManager {
            inner,
            sampler: Mutex::new(Some(sampler)),
        })
    }

    /// Registers (or re-registers, after a redefinition) `name` with a fresh
    /// zero counter; `promote` is called once when it turns hot. Returns the
    /// counter's address for the tier-0 code to bump.
    pub fn register(&self, name: &str, promote: PromoteFn) -> u64 {
        let counter = self.inner.allocate_counter();
        let entry = Arc::new(Entry {
            name: name.to_owned(),
            counter,
            state: AtomicU8::new(0),
            promote,
            stats: Mutex::new(EntryStats::default()),
        });
        // A replaced entry's counter is not reused: old code may still bump
        // it until it is reclaimed.
        self.inner.entries.write().insert(name.to_owned(), entry);
        // No wake-up (registering thousands of functions must not make
        // thousands of system calls): the sampler sees it at its next look.
        self.inner.kick.store(true, Ordering::Relaxed);
        counter as u64
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

    /// How many times the sampler thread has woken up to look at the
    /// counters.
    pub fn sampler_wakeups(&self) -> u64 {
        self.inner.wakeups.load(Ordering::Relaxed)
    }

    /// Checks the counters now instead of waiting for the sampler.
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

    /// Stops sampling and waits for promotions in flight. Idempotent.
    pub fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        {
            let mut woken = self.inner.wake.0.lock();
            *woken = true;
            self.inner.wake.1.notify_all();
        }
        if let Some(sampler) = self.sampler.lock().take() {
            let _ = sampler.join();
        }
        self.wait_idle(Duration::from_secs(60));
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
        let index = self.n_counters.fetch_add(1, Ordering::Relaxed);
        if index / CHUNK >= chunks.len() {
            chunks.push((0..CHUNK).map(|_| AtomicU64::new(0)).collect());
        }
        &chunks[index / CHUNK][index % CHUNK] as *const AtomicU64
    }

    /// Samples every `interval` while tier-0 code is counting. After
    /// [`IDLE_SAMPLES`] samples in a row with no counter moving it backs off
    /// (doubling the wait, up to [`MAX_BACKOFF`] times the interval), so an
    /// idle process (a REPL at its prompt, a program whose hot code is all
    /// promoted) is not woken thousands of times a second; a counter moving
    /// or a function being registered brings it back to full rate. The
    /// wait before backing off covers a program's start-up (parsing and
    /// first compiles, when nothing counts yet): promotions there must not
    /// be late.
    fn sample_loop(self: Arc<Self>) {
        let mut last_total = 0;
        let mut idle = 0u32;
        let mut wait = self.interval;
        while !self.stop.load(Ordering::SeqCst) {
            self.wakeups.fetch_add(1, Ordering::Relaxed);
            let total = self.sample();
            let kicked = self.kick.swap(false, Ordering::Relaxed);
            if total != last_total || kicked {
                idle = 0;
                wait = self.interval;
            } else if idle < IDLE_SAMPLES {
                idle += 1;
            } else {
                wait = (wait * 2).min(self.interval * MAX_BACKOFF);
            }
            last_total = total;
            let mut woken = self.wake.0.lock();
            if !*woken {
                self.wake.1.wait_for(&mut woken, wait);
            }
        }
    }

    /// Queues what the policy finds hot; returns the sum of the counts of
    /// the functions still counting (to tell whether anything ran).
    fn sample(self: &Arc<Self>) -> u64 {
        let mut total = 0u64;
        let hot: Vec<Arc<Entry>> = {
            let entries = self.entries.read();
            entries
                .values()
                .filter(|e| e.state.load(Ordering::Relaxed) == 0)
                .filter(|e| {
                    let count = e.count();
                    total = total.wrapping_add(count);
                    self.policy.should_tier_up(&e.name, count)
                })
                .cloned()
                .collect()
        };
        let mut queued = 0;
        for entry in hot {
            if entry
                .state
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            {
                let mut stats = entry.stats.lock();
                stats.count_at_promotion = Some(entry.count());
                stats.queued_at = Some(Instant::now());
            }
            self.pending.fetch_add(1, Ordering::AcqRel);
            self.queue.lock().push(entry);
            queued += 1;
        }
        if queued > 0 {
            let inner = self.clone();
            self.dispatcher
                .dispatch(Task::new(format!("tier up {queued}"), move || {
                    inner.drain();
                }));
        }
        total
    }

    /// Promotes everything queued (an earlier task may have taken it all).
    fn drain(&self) {
        let batch: Vec<Arc<Entry>> = std::mem::take(&mut *self.queue.lock());
        if batch.is_empty() {
            return;
        }
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
            Err(e) => {
                entry.state.store(4, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::ThreadPoolDispatcher;

    fn manager(threshold: u64) -> TierManager {
        let es = ExecutionSession::new();
        let pool = Arc::new(ThreadPoolDispatcher::new(1).unwrap());
        TierManager::new(
            &es,
            Arc::new(ThresholdPolicy { threshold }),
            pool,
            Duration::from_millis(1),
        )
        .unwrap()
    }

    fn bump(addr: u64, n: u64) {
        // SAFETY: `addr` is a counter address handed out by the manager.
        let counter = unsafe { &*(addr as *const AtomicU64) };
        counter.fetch_add(n, Ordering::Relaxed);
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
        bump(cold, 99);
        bump(hot, 100);
        tm.sample_now();
        assert!(tm.wait_idle(Duration::from_secs(10)));
        bump(hot, 1000);
        tm.sample_now();
        assert!(tm.wait_idle(Duration::from_secs(10)));
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
        let tm = TierManager::new(
            &es,
            Arc::new(ThresholdPolicy { threshold: 1 }),
            pool,
            Duration::from_millis(1),
        )
        .unwrap();
        let f = tm.register("f", Arc::new(|| Err(Error::other("llvm said no"))));
        bump(f, 5);
        for _ in 0..5 {
            tm.sample_now();
            assert!(tm.wait_idle(Duration::from_secs(10)));
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
        tm.sample_now();
        assert!(tm.wait_idle(Duration::from_secs(10)));
        bump(later, 10);
        tm.sample_now();
        assert!(tm.wait_idle(Duration::from_secs(10)));
        let mut calls = calls.lock().clone();
        calls[0].sort();
        assert_eq!(calls, [vec!["a", "b", "bad"], vec!["later"]]);
        assert_eq!(tm.state("a"), Some(TierState::Promoted));
        assert_eq!(tm.state("bad"), Some(TierState::Failed));
        assert_eq!(tm.state("later"), Some(TierState::Promoted));
    }

    #[test]
    fn the_sampler_finds_hot_functions_by_itself() {
        let tm = manager(10);
        let f = tm.register("f", Arc::new(|| Ok(Promotion::default())));
        bump(f, 10);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tm.state("f") != Some(TierState::Promoted) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(tm.state("f"), Some(TierState::Promoted));
        tm.shutdown();
    }

    #[test]
    fn the_sampler_backs_off_while_nothing_runs_and_still_sees_new_work() {
        let tm = manager(10);
        let f = tm.register("f", Arc::new(|| Ok(Promotion::default())));
        // 1,000 intervals of 1 ms with no counter moving: 100 samples, then
        // waits doubling up to 64 ms, so about 120 wake-ups instead of 1,000.
        std::thread::sleep(Duration::from_millis(1000));
        let idle = tm.sampler_wakeups();
        assert!(idle < 300, "{idle} wake-ups in 1,000 idle intervals");
        bump(f, 10);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tm.state("f") != Some(TierState::Promoted) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(tm.state("f"), Some(TierState::Promoted));
        tm.shutdown();
    }
}

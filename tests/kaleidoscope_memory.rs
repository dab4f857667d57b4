//! A long embedding session does not grow. After a warm-up, top-level
//! evaluations and redefinitions (each round is one of each) leave the
//! live heap where it stood (counted by this binary's allocator), resident
//! memory within 2 MB of it, and the session's interned names back at
//! their count.
//!
//! The windows are 350 rounds each by default (a debug build runs about 30
//! rounds a second); `ORC_MEMORY_ROUNDS=20000` runs the count in
//! each (best with `--release`).
//! Before the fix, each round left ~210 bytes of heap behind (the
//! compilers' per-function reports and the names of old bodies).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use orc::core::SymbolStringPool;
use orc::{Jit, KaleidoscopeJit, Tier};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc`/`realloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Resident memory in bytes (`/proc/self/statm`'s second field, in pages).
fn resident_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: i64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i64;
    pages * page
}

/// One top-level evaluation and two redefinitions (one of a function with
/// a loop, which has on-stack-replacement slots under adaptive tiering);
/// round `i` finds the definitions round `i - 1` made.
fn round(kjit: &mut KaleidoscopeJit, i: usize) {
    assert_eq!(
        kjit.eval("f(2) + g(3);").unwrap(),
        vec![2.0 + (i % 7) as f64]
    );
    let k = (i + 1) % 7;
    kjit.eval(&format!("def f(x) x + {k};")).unwrap();
    kjit.eval(&format!("def g(x) for i = 0, i < x + {k} in 0;"))
        .unwrap();
}

/// The names the session's pool holds, then those still in use.
fn names(kjit: &KaleidoscopeJit) -> (usize, usize) {
    let pool = kjit.jit().session().symbol_string_pool();
    let held = pool.len();
    pool.clear_dead_entries();
    (held, pool.len())
}

fn rounds() -> usize {
    std::env::var("ORC_MEMORY_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(350)
}

/// The live heap, resident memory and live interned names now, after
/// freeing what the reclaimer holds.
fn measure(kjit: &KaleidoscopeJit) -> (i64, i64, (usize, usize), Option<usize>) {
    kjit.jit().reclaimer().collect();
    (
        LIVE.load(Ordering::Relaxed),
        resident_bytes(),
        names(kjit),
        kjit.jit().tier_manager().map(|tiers| tiers.registered()),
    )
}

fn session_does_not_grow(tier: Tier) {
    let mut kjit = KaleidoscopeJit::new(Jit::builder().tier(tier).build().unwrap());
    kjit.eval("def f(x) x + 0;\ndef g(x) for i = 0, i < x in 0;")
        .unwrap();
    // Warm-up: caches and pools fill, the compilers' report lists reach
    // their cap (three functions a round).
    let warm_up = 400;
    for i in 0..warm_up {
        round(&mut kjit, i);
    }
    // Two windows of `n` rounds: a leak grows the heap in both; a table
    // doubling its capacity once does not.
    let n = rounds();
    let mut points = vec![measure(&kjit)];
    for window in 0..2 {
        let start = warm_up + window * n;
        for i in start..start + n {
            round(&mut kjit, i);
        }
        points.push(measure(&kjit));
    }
    let slopes: Vec<f64> = points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) as f64 / n as f64)
        .collect();
    eprintln!("{tier:?}: {n} rounds twice: heap, resident, names: {points:?}; {slopes:?} B/round");
    let (_, rss0, names0, registered0) = points[0];
    let (_, rss2, names2, registered2) = points[2];
    // One tier-0 registration per live function, not per version.
    assert_eq!(registered2, registered0);
    assert!(registered2.is_none_or(|n| n <= 3), "{registered2:?}");
    // The pool sweeps itself: it holds at most twice its live names (or
    // its sweep threshold), and the live ones return to their count.
    assert!(names2.0 <= 2 * SymbolStringPool::SWEEP_MIN, "{names2:?}");
    assert_eq!(
        names2.1, names0.1,
        "interned names must return to their count"
    );
    // Each round left ~200 bytes before the fix; a few bytes of slack
    // allow for allocator noise.
    let slope = slopes.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(slope < 16.0, "the heap grows {slope:.1} bytes a round");
    assert!(
        rss2 - rss0 < 2 << 20,
        "resident memory grew {} bytes",
        rss2 - rss0
    );
}

/// One test for both tiers: the heap count is process-wide, so the two
/// sessions must not run at the same time.
#[test]
fn a_long_session_does_not_grow_in_tier0_or_adaptive() {
    session_does_not_grow(Tier::Zero);
    session_does_not_grow(Tier::Adaptive);
}

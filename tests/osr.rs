//! On-stack replacement: a tier-0 frame looping in a function that tiers up
//! moves to tier-1 code at its loop's next iteration, with every variable
//! (shadowed ones included) and every operand already evaluated carried
//! over, so the result is bit-identical to running in one tier.
//!
//! The programs call a host function `osrsync(x)` (returning `x`) from
//! inside a loop: in the adaptive runs it blocks until the function being
//! run has been promoted, so the transfer happens deterministically at the
//! next loop iteration rather than depending on how fast the tier-1
//! compile is.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orc::{Jit, KaleidoscopeJit, Tier};
use orc_core::{
    absolute_symbols, ExecutorAddr, ExecutorSymbolDef, SymbolFlags, SymbolMap, TierManager,
    TierState,
};

thread_local! {
    /// What `osrsync` waits for on this thread: a tier manager and the
    /// tier-0 body that must be promoted.
    static WAIT_FOR: RefCell<Option<(Arc<TierManager>, String)>> = const { RefCell::new(None) };
    /// A barrier `osr_sync` passes once, on its first call, before waiting.
    static MEET: RefCell<Option<Arc<std::sync::Barrier>>> = const { RefCell::new(None) };
}

extern "C" fn osr_sync(x: f64) -> f64 {
    if let Some(barrier) = MEET.with(|m| m.borrow_mut().take()) {
        barrier.wait();
    }
    WAIT_FOR.with(|w| {
        if let Some((tiers, body)) = &*w.borrow() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while tiers.state(body) != Some(TierState::Promoted) && Instant::now() < deadline {
                tiers.sample_now();
                tiers.wait_idle(Duration::from_millis(20));
            }
        }
    });
    x
}

fn jit(tier: Tier) -> KaleidoscopeJit {
    let jit = Jit::builder().tier(tier).tier_threshold(1).build().unwrap();
    let es = jit.session().clone();
    let flags = SymbolFlags::EXPORTED | SymbolFlags::CALLABLE;
    let sync = ExecutorSymbolDef::new(ExecutorAddr::from_ptr(osr_sync as *const u8), flags);
    jit.host_dylib()
        .define(
            absolute_symbols(SymbolMap::from([(es.intern("osrsync"), sync)])),
            None,
        )
        .unwrap();
    KaleidoscopeJit::new(jit)
}

/// Runs `main` (one argument) of `src` in tier 0, then adaptively with
/// `osrsync` waiting for `main`'s promotion; asserts equal bits and that
/// the adaptive frame moved over. Returns the value.
/// How many frames moved from `main`'s tier-0 loops to tier 1.
fn main_transfers(kjit: &KaleidoscopeJit) -> u64 {
    kjit.osr_transfers()
        .iter()
        .filter(|(body, _)| body == "main$t0")
        .map(|(_, n)| n)
        .sum()
}

fn same_after_osr(src: &str, arg: f64) -> f64 {
    let src = format!("extern osrsync(x);\ndef binary : 1 (x y) y;\n{src}");
    let mut tier0 = jit(Tier::Zero);
    tier0.eval(&src).unwrap();
    let expected = tier0.function::<(f64,)>("main").unwrap().call((arg,));

    let mut adaptive = jit(Tier::Adaptive);
    adaptive.eval(&src).unwrap();
    let tiers = adaptive.jit().tier_manager().unwrap().clone();
    WAIT_FOR.with(|w| *w.borrow_mut() = Some((tiers.clone(), "main$t0".to_owned())));
    let got = adaptive.function::<(f64,)>("main").unwrap().call((arg,));
    WAIT_FOR.with(|w| *w.borrow_mut() = None);

    assert_eq!(
        tiers.state("main$t0"),
        Some(TierState::Promoted),
        "main was promoted while it ran"
    );
    let moved = main_transfers(&adaptive);
    assert_eq!(moved, 1, "the running frame moved to tier 1 once");
    assert_eq!(
        got.to_bits(),
        expected.to_bits(),
        "{got} after OSR, {expected} in tier 0"
    );
    got
}

#[test]
fn a_frame_moves_from_a_simple_loop() {
    let v = same_after_osr(
        "def main(n) var s = 0 in (for i = 0, i < n in s = s + osrsync(i) * 0.5) : s;",
        1000.0,
    );
    // Chapter 7's loop runs its body for i = 0..=n.
    assert_eq!(v, 250_250.0);
}

#[test]
fn shadowed_variables_and_pending_operands_are_carried_over() {
    // The inner loop is entered with the outer `t` shadowed and the outer
    // `t` of `t + (...)` already evaluated and waiting.
    same_after_osr(
        "def main(n)
           var s = 0, t = 1 in
             (s = t + (for i = 0, i < n in
                 (var t = i * 2 in
                    (for j = 0, j < 3, osrsync(1) in s = s + t * j + i)))) : s * 1000 + t;",
        200.0,
    );
}

#[test]
fn loops_inside_call_arguments_and_steps_are_entered_correctly() {
    // Loop 0 is main's outer loop; loop 1 sits in its step, after the end
    // value, as the second argument of `pick` with the first one pending.
    same_after_osr(
        "def pick(a b) a * 3 + b;
         def main(n)
           var acc = 0.25 in
             (for k = 0, k < n, pick(1, for m = 0, m < 2 in acc = acc + osrsync(m) + k) - 2 in
                acc = acc * 0.999) : acc;",
        300.0,
    );
}

#[test]
fn a_frame_in_a_later_loop_moves_and_finishes_the_function() {
    same_after_osr(
        "def main(n)
           var a = 0, b = 0 in
             (for i = 0, i < 10 in a = a + i) :
             (for j = 0, j < n in b = b + osrsync(j) * a) :
             (for k = 0, k < 5 in b = b - k) : a * 1000000 + b;",
        500.0,
    );
}

#[test]
fn frames_on_several_threads_move_over_together() {
    let src = "extern osrsync(x);\ndef binary : 1 (x y) y;\n\
               def main(n) var s = 0.5, t = 1 in \
                 (for i = 0, i < n in (var t = i * 3 in s = s + osrsync(t) * 0.25 - i)) : s * t;";
    let mut tier0 = jit(Tier::Zero);
    tier0.eval(src).unwrap();
    let main0 = tier0.function::<(f64,)>("main").unwrap();
    let expected: Vec<f64> = (0..6).map(|k| main0.call((400.0 + k as f64,))).collect();

    let mut adaptive = jit(Tier::Adaptive);
    adaptive.eval(src).unwrap();
    let tiers = adaptive.jit().tier_manager().unwrap().clone();
    let stub = adaptive.function::<(f64,)>("main").unwrap().address();
    let reclaimer = adaptive.jit().reclaimer().clone();
    // All six meet inside the tier-0 loop before any waits for the
    // promotion, so all six are in tier-0 frames when the entry appears.
    let meet = Arc::new(std::sync::Barrier::new(6));
    let threads: Vec<_> = (0..6)
        .map(|k| {
            let tiers = tiers.clone();
            let reclaimer = reclaimer.clone();
            let meet = meet.clone();
            std::thread::spawn(move || {
                WAIT_FOR.with(|w| *w.borrow_mut() = Some((tiers, "main$t0".to_owned())));
                MEET.with(|m| *m.borrow_mut() = Some(meet));
                let _pinned = reclaimer.pin();
                // SAFETY: `main` is a Kaleidoscope function of one f64.
                let f: extern "C" fn(f64) -> f64 =
                    unsafe { std::mem::transmute(stub.to_ptr::<u8>()) };
                f(400.0 + k as f64)
            })
        })
        .collect();
    let got: Vec<f64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let moved = main_transfers(&adaptive);
    assert_eq!(moved, 6, "every thread's frame moved to tier 1");
}

#[test]
fn tier_0_alone_has_no_osr_checks() {
    let mut kjit = jit(Tier::Zero);
    kjit.eval(
        "def binary : 1 (x y) y;\ndef main(n) var s = 0 in (for i = 0, i < n in s = s + i) : s;",
    )
    .unwrap();
    assert_eq!(kjit.function::<(f64,)>("main").unwrap().call((10.0,)), 55.0);
    assert!(kjit.osr_transfers().is_empty());
}

//! Adaptive tiering end to end: hot functions move to tier 1 without the
//! program noticing, loop-hot functions entered once are promoted too, a
//! failing tier-1 compile leaves the function in tier 0 (reported once),
//! and threads calling through repoints always get right answers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orc::{Jit, KaleidoscopeJit, Tier};
use orc_core::{TierPolicy, TierState};

fn adaptive(threshold: u64) -> KaleidoscopeJit {
    KaleidoscopeJit::new(
        Jit::builder()
            .tier(Tier::Adaptive)
            .tier_threshold(threshold)
            .build()
            .unwrap(),
    )
}

fn wait_for(kjit: &KaleidoscopeJit, body: &str, state: TierState) {
    let tiers = kjit.jit().tier_manager().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tiers.state(body) != Some(state) && Instant::now() < deadline {
        tiers.sample_now();
        tiers.wait_idle(Duration::from_millis(100));
    }
    assert_eq!(tiers.state(body), Some(state), "{body}");
}

/// Whether `name`'s stub jumps to its tier-1 body.
fn runs_tier_1(kjit: &KaleidoscopeJit, name: &str) -> bool {
    let t1 = kjit
        .jit()
        .bodies_dylib()
        .lookup_symbol(&format!("{name}$t1"))
        .unwrap()
        .addr;
    stub_target(kjit, name) == t1
}

fn stub_target(kjit: &KaleidoscopeJit, name: &str) -> orc_core::ExecutorAddr {
    let es = kjit.jit().session();
    kjit.jit()
        .lazy_reexports()
        .current_target(kjit.jit().main_dylib(), &es.intern(name))
        .unwrap()
}

#[test]
fn a_hot_function_moves_to_tier_1_and_keeps_its_results() {
    let mut kjit = adaptive(50);
    kjit.eval("def poly(x) x * x * 3 + x * 2 + 1;").unwrap();
    let poly = kjit.function::<(f64,)>("poly").unwrap();
    let before: Vec<f64> = (0..40).map(|i| poly.call((i as f64 * 0.37,))).collect();
    assert_eq!(
        kjit.jit().tier_manager().unwrap().state("poly$t0"),
        Some(TierState::Counting)
    );
    for i in 0..100 {
        poly.call((i as f64,));
    }
    wait_for(&kjit, "poly$t0", TierState::Promoted);
    // The stub now jumps to the tier-1 body...
    assert!(runs_tier_1(&kjit, "poly"));
    // ...and the tier-0 body is gone from the dylib.
    assert!(kjit.jit().bodies_dylib().lookup_symbol("poly$t0").is_err());
    let after: Vec<f64> = (0..40).map(|i| poly.call((i as f64 * 0.37,))).collect();
    assert_eq!(before, after, "both tiers compute bit-identical results");
}

#[test]
fn the_call_that_reaches_the_threshold_queues_the_function() {
    // No sampling from here: the tier-0 code itself reports the trip.
    let mut kjit = adaptive(100);
    kjit.eval("def poly(x) x * x * 3 + x * 2 + 1;").unwrap();
    let poly = kjit.function::<(f64,)>("poly").unwrap();
    let tiers = kjit.jit().tier_manager().unwrap();
    for i in 0..99 {
        poly.call((i as f64,));
    }
    assert!(tiers.wait_idle(Duration::from_secs(1)));
    assert_eq!(tiers.state("poly$t0"), Some(TierState::Counting));
    assert_eq!(tiers.trips(), 0);
    poly.call((1.0,));
    assert_eq!(tiers.trips(), 1);
    assert!(tiers.wait_idle(Duration::from_secs(30)));
    assert_eq!(tiers.state("poly$t0"), Some(TierState::Promoted));
    assert_eq!(tiers.stats()[0].count, 100);
}

#[test]
fn with_no_tier_up_threads_the_tripping_call_promotes_in_place() {
    let jit = Jit::builder()
        .tier(Tier::Adaptive)
        .tier_threshold(100)
        .tier_up_threads(0)
        .build()
        .unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    kjit.eval("def fib(n) if n < 2 then n else fib(n - 1) + fib(n - 2);")
        .unwrap();
    let fib = kjit.function::<(f64,)>("fib").unwrap();
    // fib(15) makes 1,973 calls: the 100th promotes fib while 15 frames of
    // tier-0 code are on this thread's stack; the rest run tier 1.
    assert_eq!(fib.call((15.0,)), 610.0);
    let tiers = kjit.jit().tier_manager().unwrap();
    // Already done when the call returned: nothing ran in the background.
    assert_eq!(tiers.state("fib$t0"), Some(TierState::Promoted));
    assert!(runs_tier_1(&kjit, "fib"));
    assert_eq!(fib.call((20.0,)), 6765.0);
    assert_eq!(tiers.trips(), 1, "tier-1 code does not count");
}

#[test]
fn tier_1_code_calls_itself_directly_and_other_functions_through_stubs() {
    let jit = Jit::builder()
        .tier(Tier::Adaptive)
        .tier_threshold(100)
        .tier_up_threads(0)
        .llvm_config(orc::llvm::LlvmConfig {
            capture_ir: true,
            ..orc::llvm::LlvmConfig::default()
        })
        .build()
        .unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    let ir = Arc::new(Mutex::new(String::new()));
    let seen = ir.clone();
    kjit.jit()
        .llvm_layer()
        .unwrap()
        .set_observer(move |compiled| {
            for f in &compiled.functions {
                seen.lock()
                    .unwrap()
                    .push_str(f.ir.as_deref().unwrap_or_default());
            }
        });
    kjit.eval("def step(n) n - 1;\ndef fib(n) if n < 2 then n else fib(step(n)) + fib(n - 2);")
        .unwrap();
    let fib = kjit.function::<(f64,)>("fib").unwrap();
    assert_eq!(fib.call((15.0,)), 610.0);
    let tiers = kjit.jit().tier_manager().unwrap();
    assert_eq!(tiers.state("fib$t0"), Some(TierState::Promoted));
    let ir = ir.lock().unwrap().clone();
    assert!(ir.contains("call double @\"fib$t1\"("), "{ir}");
    assert!(!ir.contains("@fib("), "{ir}");
    // `step` is another function: reached through its stub, by name.
    assert!(ir.contains("@step("), "{ir}");
    // Redefining `fib` reaches the next call from outside.
    kjit.eval("def fib(n) n * 10;").unwrap();
    let fib = kjit.function::<(f64,)>("fib").unwrap();
    assert_eq!(fib.call((15.0,)), 150.0);
}

#[test]
fn an_eager_program_tiers_up_too() {
    let jit = Jit::builder()
        .tier(Tier::Adaptive)
        .tier_threshold(50)
        .lazy(false)
        .build()
        .unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    kjit.eval("def poly(x) x * x * 3 + x * 2 + 1;\ndef other(x) x;")
        .unwrap();
    let poly = kjit.function::<(f64,)>("poly").unwrap();
    let before: Vec<f64> = (0..100).map(|i| poly.call((i as f64 * 0.37,))).collect();
    wait_for(&kjit, "poly$t0", TierState::Promoted);
    assert!(runs_tier_1(&kjit, "poly"));
    let after: Vec<f64> = (0..100).map(|i| poly.call((i as f64 * 0.37,))).collect();
    assert_eq!(before, after);
    // The shared tier-0 module stays for `other`, which still runs it.
    assert_eq!(kjit.function::<(f64,)>("other").unwrap().call((2.5,)), 2.5);
}

#[test]
fn a_function_entered_once_that_loops_hot_is_promoted() {
    let mut kjit = adaptive(10_000);
    let values = kjit
        .eval("def binary : 1 (x y) y;\ndef spin(n) var s = 0 in (for i = 0, i < n in s = s + i) : s;\nspin(100000);")
        .unwrap();
    assert_eq!(values, vec![5_000_050_000.0]);
    // One entry, ~100,000 back-edges: hot without a second call.
    wait_for(&kjit, "spin$t0", TierState::Promoted);
    let spin = kjit.function::<(f64,)>("spin").unwrap();
    assert_eq!(spin.call((10.0,)), 55.0, "its next entry runs tier 1");
}

#[test]
fn a_first_call_does_not_wait_behind_a_tier_up_compile() {
    // One compile thread, as on a two-core machine.
    let jit = Jit::builder()
        .tier(Tier::Adaptive)
        .tier_threshold(10)
        .compile_threads(1)
        .build()
        .unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    kjit.eval("def hot(x) x + 1;\ndef cold(x) x * 2;").unwrap();
    // Hold every tier-1 compile inside the LLVM layer until released.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    kjit.jit().llvm_layer().unwrap().set_observer(move |_| {
        let _ = started_tx.send(());
        let _ = release_rx.lock().unwrap().recv();
    });
    let hot = kjit.function::<(f64,)>("hot").unwrap();
    // Its stub only: `cold`'s body is compiled on its first call.
    let cold = kjit.function::<(f64,)>("cold").unwrap();
    for i in 0..100 {
        assert_eq!(hot.call((i as f64,)), i as f64 + 1.0);
    }
    kjit.jit().tier_manager().unwrap().sample_now();
    started_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the tier-up compile started");
    // `cold` has never been called: its first call compiles it with tier 0
    // while `hot`'s tier-1 compile is still held.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = done_tx.send(cold.call((21.0,)));
        });
        let first_call = done_rx.recv_timeout(Duration::from_secs(10));
        // Let the tier-up finish either way, so the scope can end.
        drop(release_tx);
        assert_eq!(
            first_call,
            Ok(42.0),
            "the first call of a cold function waited for the tier-up compile"
        );
    });
    wait_for(&kjit, "hot$t0", TierState::Promoted);
    assert_eq!(hot.call((1.0,)), 2.0);
}

#[test]
fn a_failing_tier_1_compile_leaves_tier_0_running_and_is_reported_once() {
    // An invalid LLVM pass pipeline makes every tier-1 compile fail.
    let report = tier_up_failure_report("no-such-pass");
    assert!(report.contains("no-such-pass"), "{report}");
}

#[test]
fn a_fatal_llvm_error_in_tier_up_leaves_tier_0_running_and_is_reported_once() {
    // The verifier pass reports the module `trigger-verifier-error` broke
    // with LLVM's `report_fatal_error`, which used to end the process.
    let report = tier_up_failure_report("trigger-verifier-error,verify");
    assert!(
        report.contains("llvm fatal error while optimizing"),
        "{report}"
    );
    assert!(report.contains("Broken module found"), "{report}");
}

/// Runs a hot function with every tier-1 compile failing under `pipeline`;
/// checks it keeps running in tier 0 and that the failure is reported
/// exactly once; returns that report.
fn tier_up_failure_report(pipeline: &str) -> String {
    let jit = Jit::builder()
        .tier(Tier::Adaptive)
        .tier_threshold(5)
        .llvm_config(orc_llvm::LlvmConfig {
            pipeline: Some(pipeline.into()),
            ..Default::default()
        })
        .build()
        .unwrap();
    let reports = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = reports.clone();
    jit.session()
        .set_error_reporter(move |e| sink.lock().unwrap().push(e.to_string()));
    let mut kjit = KaleidoscopeJit::new(jit);
    kjit.eval("def twice(x) x * 2;").unwrap();
    let twice = kjit.function::<(f64,)>("twice").unwrap();
    assert_eq!(twice.call((1.0,)), 2.0);
    // The tier-0 symbol is the entry-counting thunk, and the stub goes
    // through it while the function counts.
    let thunk = kjit
        .jit()
        .bodies_dylib()
        .lookup_symbol("twice$t0")
        .unwrap()
        .addr;
    assert_eq!(stub_target(&kjit, "twice"), thunk);
    for i in 0..50 {
        assert_eq!(twice.call((i as f64,)), 2.0 * i as f64);
    }
    wait_for(&kjit, "twice$t0", TierState::Failed);
    let tiers = kjit.jit().tier_manager().unwrap();
    let counted = |tiers: &orc_core::TierManager| tiers.stats()[0].count;
    let count_after_failing = counted(tiers);
    for i in 0..50 {
        assert_eq!(twice.call((i as f64,)), 2.0 * i as f64, "still tier 0");
    }
    if orc_core::TripCounter::preserve_all_trip().is_some() {
        // Once queued, the stub skipped the thunk: the tier-0 body runs
        // without counting entries nobody will act on.
        assert_ne!(stub_target(&kjit, "twice"), thunk);
        assert_eq!(counted(tiers), count_after_failing);
    }
    kjit.jit().tier_manager().unwrap().sample_now();
    let reports = reports.lock().unwrap();
    let tier_reports: Vec<&String> = reports
        .iter()
        .filter(|r| r.contains("tier-1 compile of 'twice$t0'"))
        .collect();
    assert_eq!(tier_reports.len(), 1, "{reports:?}");
    assert!(tier_reports[0].contains("stays in tier 0"));
    tier_reports[0].clone()
}

#[test]
fn a_fatal_llvm_error_under_tier_1_is_an_eval_error() {
    let jit = Jit::builder()
        .tier(Tier::One)
        .llvm_config(orc_llvm::LlvmConfig {
            pipeline: Some("trigger-verifier-error,verify".into()),
            ..Default::default()
        })
        .build()
        .unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    for _ in 0..2 {
        let err = kjit.eval("def twice(x) x * 2;\ntwice(4);").unwrap_err();
        let err = err.to_string();
        assert!(err.contains("llvm fatal error while optimizing"), "{err}");
    }
}

#[test]
fn custom_policies_choose_what_tiers_up() {
    struct OnlyNamed(&'static str);
    impl TierPolicy for OnlyNamed {
        fn should_tier_up(&self, function: &str, count: u64) -> bool {
            function.starts_with(self.0) && count >= 1
        }
    }
    let jit = Jit::builder()
        .tier(Tier::Adaptive)
        .tier_policy(Arc::new(OnlyNamed("chosen")))
        .build()
        .unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    kjit.eval("def chosen(x) x + 1;\ndef other(x) x + 2;\nchosen(1) + other(1);")
        .unwrap();
    wait_for(&kjit, "chosen$t0", TierState::Promoted);
    let tiers = kjit.jit().tier_manager().unwrap();
    tiers.sample_now();
    assert!(tiers.wait_idle(Duration::from_secs(10)));
    assert_eq!(tiers.state("other$t0"), Some(TierState::Counting));
}

/// Hot once `open` is set, so every function counted so far turns hot at
/// the same check.
struct Gate(Arc<std::sync::atomic::AtomicBool>);
impl TierPolicy for Gate {
    fn should_tier_up(&self, _function: &str, count: u64) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst) && count >= 1
    }
}

fn gated() -> (KaleidoscopeJit, Arc<std::sync::atomic::AtomicBool>) {
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let jit = Jit::builder()
        .tier(Tier::Adaptive)
        .tier_policy(Arc::new(Gate(open.clone())))
        .build()
        .unwrap();
    (KaleidoscopeJit::new(jit), open)
}

/// Asks the policy about every function once (with the gate open, all
/// counted ones turn hot together, in one batch), then waits until they are
/// promoted.
fn wait_all_promoted(kjit: &KaleidoscopeJit, bodies: &[&str]) {
    let tiers = kjit.jit().tier_manager().unwrap();
    tiers.sample_now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while bodies
        .iter()
        .any(|b| tiers.state(b) != Some(TierState::Promoted))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    for b in bodies {
        assert_eq!(tiers.state(b), Some(TierState::Promoted), "{b}");
    }
}

#[test]
fn functions_hot_together_share_one_tier_1_module() {
    let (mut kjit, open) = gated();
    kjit.eval("def p(x) x * 2;\ndef q(x) x + 1;\ndef r(x) p(x) - q(x);")
        .unwrap();
    let r = kjit.function::<(f64,)>("r").unwrap();
    let before: Vec<f64> = (0..20).map(|i| r.call((i as f64 * 0.3,))).collect();
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_all_promoted(&kjit, &["p$t0", "q$t0", "r$t0"]);
    let stats = kjit.jit().llvm_layer_if_created().unwrap().stats();
    assert_eq!(stats.modules, 1, "one tier-1 compile for the three");
    assert_eq!(stats.functions.len(), 3);
    let after: Vec<f64> = (0..20).map(|i| r.call((i as f64 * 0.3,))).collect();
    assert_eq!(before, after);
    for f in ["p", "q", "r"] {
        assert!(runs_tier_1(&kjit, f), "{f} runs tier 1");
    }
    // Redefining one function of the batch keeps the others' code.
    kjit.eval("def q(x) x + 100;").unwrap();
    let r = kjit.function::<(f64,)>("r").unwrap();
    assert_eq!(r.call((1.0,)), 2.0 - 101.0);
    assert_eq!(kjit.function::<(f64,)>("p").unwrap().call((4.0,)), 8.0);
}

#[test]
fn a_batch_that_cannot_compile_together_falls_back_to_one_by_one() {
    // Two functions that each compile, but not in one LLVM module: they
    // declare the C function `sin` with different arities (the extra
    // argument is ignored by the callee).
    let (mut kjit, open) = gated();
    kjit.eval("extern sin(x);\ndef one(x) sin(x);").unwrap();
    kjit.eval("extern sin(x y);\ndef two(x) sin(x, x);")
        .unwrap();
    let one = kjit.function::<(f64,)>("one").unwrap();
    let two = kjit.function::<(f64,)>("two").unwrap();
    assert_eq!(one.call((3.0,)), 3.0f64.sin());
    assert_eq!(two.call((3.0,)), 3.0f64.sin());
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_all_promoted(&kjit, &["one$t0", "two$t0"]);
    let stats = kjit.jit().llvm_layer_if_created().unwrap().stats();
    assert_eq!(stats.failures, 1, "the batch failed as a whole");
    assert_eq!(stats.modules, 2, "then each compiled alone");
    assert_eq!(one.call((3.0,)), 3.0f64.sin());
    assert_eq!(two.call((3.0,)), 3.0f64.sin());
}

#[test]
fn redefinition_during_tiering_wins() {
    let mut kjit = adaptive(1);
    kjit.eval("def f(x) x + 1;\nf(1);").unwrap();
    wait_for(&kjit, "f$t0", TierState::Promoted);
    kjit.eval("def f(x) x + 100;").unwrap();
    let f = kjit.function::<(f64,)>("f").unwrap();
    assert_eq!(f.call((1.0,)), 101.0);
    // The new version counts and is promoted on its own.
    wait_for(&kjit, "f$t0.1", TierState::Promoted);
    assert_eq!(f.call((1.0,)), 101.0);
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// 8 threads call hot functions for seconds while they tier up: each is
/// promoted to tier 1 and its stub repointed while the threads run through
/// it (recursion included), and the tier-0 bodies are reclaimed. Every
/// result must be right and memory must stay bounded.
#[test]
fn eight_threads_call_through_repoints_for_seconds() {
    let mut kjit = adaptive(200);
    kjit.eval("def a(x) x * 2 + 1;\ndef b(x) a(x) + a(x + 1);\ndef c(x) if x < 1 then 1 else c(x - 1) + b(x);").unwrap();
    let run_for = Duration::from_secs(3);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // c(x) = 1 + sum_{k=1..x} b(k), b(k) = 4k + 4.
    let expect = |x: f64| 1.0 + (1..=x as u64).map(|k| 4.0 * k as f64 + 4.0).sum::<f64>();
    let mut rss_samples = Vec::new();
    let c = kjit.function::<(f64,)>("c").unwrap();
    let b = kjit.function::<(f64,)>("b").unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (c, b, stop, calls) = (&c, &b, stop.clone(), calls.clone());
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let x = ((i + t) % 20) as f64;
                    assert_eq!(c.call((x,)), expect(x), "c({x})");
                    assert_eq!(b.call((x,)), 4.0 * x + 4.0, "b({x})");
                    calls.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        let start = Instant::now();
        while start.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(300));
            rss_samples.push(rss_kib());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let tiers = kjit.jit().tier_manager().unwrap();
    tiers.sample_now();
    assert!(tiers.wait_idle(Duration::from_secs(30)));
    let promoted = tiers
        .stats()
        .iter()
        .filter(|f| f.state == TierState::Promoted)
        .count();
    assert_eq!(promoted, 3, "{:?}", tiers.stats());
    assert!(calls.load(std::sync::atomic::Ordering::Relaxed) > 1000);
    // Bounded memory: the last samples are not much above the first.
    let (first, last) = (rss_samples[1], *rss_samples.last().unwrap());
    assert!(
        last < first + 64 * 1024,
        "RSS grew from {first} KiB to {last} KiB"
    );
}

#[test]
fn repeated_redefinition_under_load_reclaims_old_bodies() {
    redefine_under_load(|k| format!("def g(x) x + {k};"));
}

/// The same with a body that loops, so promotions build OSR entries and
/// frames move to them while versions come and go.
#[test]
fn repeated_redefinition_of_a_looping_function_under_load() {
    redefine_under_load(|k| {
        format!(
            "def binary : 1 (x y) y;\n\
             def g(x) var s = 0 in (for i = 0, i < 50 in s = s + 1) : x + {k} + s - 51;"
        )
    });
}

/// Redefines `g` (version `k` returns `x + k`) 199 times while a thread
/// calls it; checks every result, that old bodies are freed and that RSS
/// stays bounded.
fn redefine_under_load(version: impl Fn(usize) -> String) {
    let mut kjit = adaptive(20);
    kjit.eval(&version(0)).unwrap();
    let reclaimer = kjit.jit().reclaimer().clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stub = kjit.function::<(f64,)>("g").unwrap().address();
    let caller = {
        let (stop, reclaimer) = (stop.clone(), reclaimer.clone());
        std::thread::spawn(move || {
            // SAFETY: `g` is a Kaleidoscope function of one f64 throughout.
            let g: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(stub.to_ptr::<u8>()) };
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _pin = reclaimer.pin();
                // Every version returns x + k for some k in 0..200.
                let r = g(1000.0);
                assert!((1000.0..1200.0).contains(&r), "{r}");
                n += 1;
            }
            n
        })
    };
    let mut rss = Vec::new();
    for k in 1..200 {
        kjit.eval(&version(k)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        if k % 40 == 0 {
            rss.push(rss_kib());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(caller.join().unwrap() > 0);
    kjit.jit()
        .tier_manager()
        .unwrap()
        .wait_idle(Duration::from_secs(30));
    reclaimer.collect();
    assert!(
        reclaimer.n_pending() <= 2,
        "old bodies are freed, {} pending",
        reclaimer.n_pending()
    );
    assert!(rss.last().unwrap() < &(rss[0] + 32 * 1024), "RSS {rss:?}");
}

#[test]
fn environment_variables_select_the_policy() {
    let prog = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs/kaleidoscope/mandel.kal");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orc"))
        .args(["run", "--stats"])
        .arg(&prog)
        .env("ORC_TIER", "adaptive")
        .env("ORC_TIER_THRESHOLD", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tier-0 count"),
        "adaptive stats expected: {stderr}"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_orc"))
        .arg("run")
        .arg(&prog)
        .env("ORC_TIER_THRESHOLD", "lots")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ORC_TIER_THRESHOLD: 'lots'"));
}

#[test]
fn adaptive_tier_0_compiles_unoptimized_unless_told_otherwise() {
    use orc::cranelift::OptLevel;
    let level = |builder: orc::JitBuilder| {
        let jit = builder.build().unwrap();
        jit.cranelift_layer().compiler().config().opt_level
    };
    // A fixed tier 0 keeps its code: it is optimized.
    assert_eq!(level(Jit::builder().tier(Tier::Zero)), OptLevel::Speed);
    // Adaptive tier 0 is a baseline: LLVM recompiles what runs hot.
    assert_eq!(level(Jit::builder().tier(Tier::Adaptive)), OptLevel::None);
    // A level the embedder sets wins either way.
    assert_eq!(
        level(
            Jit::builder()
                .tier(Tier::Adaptive)
                .opt_level(OptLevel::Speed)
        ),
        OptLevel::Speed
    );
    assert_eq!(
        level(Jit::builder().tier(Tier::Zero).opt_level(OptLevel::None)),
        OptLevel::None
    );
    // Unoptimized tier-0 code with loop counting and OSR still computes
    // the same results as optimized code.
    let src = "def binary : 1 (x y) y;\n\
               def f(n) var s = 0 in (for i = 0, i < n in s = s + i * 0.5) : s;";
    let mut speed = KaleidoscopeJit::new(
        Jit::builder()
            .tier(Tier::Adaptive)
            .opt_level(OptLevel::Speed)
            .build()
            .unwrap(),
    );
    let mut none = KaleidoscopeJit::new(Jit::builder().tier(Tier::Adaptive).build().unwrap());
    speed.eval(src).unwrap();
    none.eval(src).unwrap();
    let (f_speed, f_none) = (
        speed.function::<(f64,)>("f").unwrap(),
        none.function::<(f64,)>("f").unwrap(),
    );
    for n in [0.0, 1.0, 10.0, 50_000.0] {
        assert_eq!(f_speed.call((n,)), f_none.call((n,)), "f({n})");
    }
    // Kaleidoscope checks the end condition before the step: i = 0..=4.
    assert_eq!(f_none.call((4.0,)), 5.0);
}

/// Code already compiled calls a function with the arity it had; the API
/// refuses a redefinition that changes it (as the REPL does), and nothing
/// of the refused program is defined.
#[test]
fn an_arity_changing_redefinition_through_the_api_is_refused() {
    for tier in [Tier::Zero, Tier::One, Tier::Adaptive] {
        let mut kjit = KaleidoscopeJit::new(Jit::builder().tier(tier).build().unwrap());
        kjit.eval("def f(x) x + 1; def g(x) f(x) * 2;").unwrap();
        let err = kjit.eval("def h(x) x; def f(x y) x + y;").unwrap_err();
        match err {
            orc::KaleidoscopeError::Arity {
                name,
                expected,
                given,
            } => assert_eq!((name.as_str(), expected, given), ("f", 1, 2), "{tier:?}"),
            other => panic!("{tier:?}: {other}"),
        }
        assert_eq!(
            kjit.arity("h"),
            None,
            "{tier:?}: the refused program defined h"
        );
        assert_eq!(kjit.eval("extern g(x); g(4);").unwrap(), [10.0], "{tier:?}");
        // Same arity: fine, and compiled callers see it.
        kjit.eval("def f(x) x + 2;").unwrap();
        assert_eq!(kjit.eval("extern g(x); g(4);").unwrap(), [12.0], "{tier:?}");
    }
}

//! Laziness benchmarks (issue 5), measured in one run and printed as
//! ratios against their targets:
//!
//! - time to first result of a 2,000-function program, lazy vs eager
//!   (target: lazy at least 5x faster);
//! - cost per call through a resolved stub vs a direct call to the body
//!   (target: within about 1 ns);
//! - stub creation cost per function (target: under 1 microsecond);
//! - lazy cost per function at 10,000 functions vs at 100 (target: at most
//!   1.2x, i.e. no super-linear bookkeeping).
//!
//! Run with `cargo bench --bench laziness`. Each figure is the best of
//! several repetitions; the machine is shared, so compare ratios, not
//! absolute times.

use std::time::{Duration, Instant};

mod stats;
use stats::*;

use orc::{Jit, KaleidoscopeJit};
use orc_core::lazy::IndirectStubsManager;
use orc_core::ExecutorAddr;

fn program(n: usize) -> String {
    let mut src = String::with_capacity(n * 32);
    for i in 0..n {
        src.push_str(&format!("def f{i}(x) x * {i} + 1;\n"));
    }
    src.push_str(&format!(
        "def main() f7(1) + f{}(2) + f{}(3);\nmain();\n",
        n / 2,
        n - 1
    ));
    src
}

/// From nothing to main's value: build the JIT, define everything, run.
fn time_to_first_result(src: &str, lazy: bool) -> Duration {
    let start = Instant::now();
    let mut kjit = KaleidoscopeJit::new(Jit::builder().lazy(lazy).build().unwrap());
    let values = kjit.eval(src).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(values.len(), 1);
    elapsed
}

/// The number of functions every sample of [`lazy_cost_per_function`]
/// defines, whatever the size of one JIT.
const FUNCTIONS_PER_SAMPLE: usize = 10_000;

/// The lazy cost per function when each JIT holds `per_jit` functions:
/// `add_program` of the functions, then a lookup of each stub (which
/// materializes its lazy re-export). Building a JIT is not timed.
///
/// Every sample defines [`FUNCTIONS_PER_SAMPLE`] functions: in one JIT of
/// 10,000, or in 100 JITs of 100, each built just before its functions are
/// timed and kept until the sample ends. The programs and the lookup names
/// are all prepared first. So both sizes are measured the same way: the
/// same work and total timed length per sample (a lone 0.2 ms sample can
/// dodge the interrupts and preemptions of a shared machine that a 20 ms
/// one cannot, which biased a best-of-N towards the small size), the same
/// memory in use (the allocator hands out equally fresh memory), the same
/// freshly built JIT, and inputs equally far from the cache (a 100-function
/// program parsed just before its timing is still in cache, which a
/// 10,000-function one cannot be). What still differs is how many
/// functions share one JIT's tables, which is what the ratio is about.
fn lazy_cost_per_function(per_jit: usize) -> Duration {
    let n_jits = FUNCTIONS_PER_SAMPLE / per_jit;
    let programs: Vec<_> = (0..n_jits)
        .map(|_| orc_kaleidoscope::parse_and_check(&program(per_jit)).unwrap())
        .collect();
    let names: Vec<Vec<String>> = (0..n_jits)
        .map(|_| (0..per_jit).map(|i| format!("f{i}")).collect())
        .collect();
    let mut jits = Vec::with_capacity(n_jits);
    let mut elapsed = Duration::ZERO;
    for (ast, names) in programs.iter().zip(&names) {
        let mut kjit = KaleidoscopeJit::new(Jit::builder().build().unwrap());
        let start = Instant::now();
        kjit.add_program(ast).unwrap();
        // Look every stub up, so the lazy re-exports are materialized too.
        for name in names {
            kjit.jit().lookup(name).unwrap();
        }
        elapsed += start.elapsed();
        jits.push(kjit);
    }
    drop(jits);
    elapsed / FUNCTIONS_PER_SAMPLE as u32
}

extern "C" fn id(x: f64) -> f64 {
    x
}

/// Nanoseconds per call of `f`, over `n` calls.
fn per_call_ns(f: extern "C" fn(f64) -> f64, n: u64) -> f64 {
    let start = Instant::now();
    let mut acc = 0.0;
    for i in 0..n {
        acc += f(std::hint::black_box(i as f64));
    }
    std::hint::black_box(acc);
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// In a child process: define `n` lazy functions in one JIT and look each
/// stub up (or only set up, to measure the baseline), then exit. Used under
/// callgrind, and with `perf` by hand: `ORC_LAZINESS_CHILD=10000` runs one
/// pass, `ORC_LAZINESS_CHILD=10000:setup` only the set-up.
fn child(spec: &str) {
    let mut parts = spec.split(':');
    let n: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let setup_only = parts.next() == Some("setup");
    let src = program(n);
    let ast = orc_kaleidoscope::parse_and_check(&src).unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
    let mut kjit = KaleidoscopeJit::new(Jit::builder().build().unwrap());
    if !setup_only {
        kjit.add_program(&ast).unwrap();
        for name in &names {
            kjit.jit().lookup(name).unwrap();
        }
    }
    std::process::exit(0);
}

/// Instructions (counted by callgrind) to define one lazy function at `n`
/// functions, or `None` without valgrind.
fn instructions_per_function(n: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let count = |spec: String| -> Option<f64> {
        let out = std::process::Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .env("ORC_LAZINESS_CHILD", spec)
            .output()
            .ok()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr.lines().find(|l| l.contains("Collected"))?;
        line.rsplit(':')
            .next()?
            .trim()
            .replace(',', "")
            .parse()
            .ok()
    };
    let full = count(format!("{n}"))?;
    let base = count(format!("{n}:setup"))?;
    Some((full - base) / n as f64)
}

fn main() {
    if let Ok(spec) = std::env::var("ORC_LAZINESS_CHILD") {
        return child(&spec);
    }
    // Accept and ignore the flags cargo bench passes (e.g. --bench).
    let reps = 7;
    println!("orc laziness benchmarks (best of {reps} runs)\n");

    let src = program(2000);
    let lazy = best((0..reps).map(|_| time_to_first_result(&src, true)));
    let eager = best((0..reps).map(|_| time_to_first_result(&src, false)));
    let ratio = eager.as_secs_f64() / lazy.as_secs_f64();
    println!("time to first result, 2,000 functions: lazy {lazy:?}, eager {eager:?}");
    println!(
        "  eager / lazy = {ratio:.1}x (target >= 5x): {}\n",
        verdict(ratio >= 5.0)
    );

    // A resolved stub vs the body it jumps to.
    let mut kjit = KaleidoscopeJit::new(Jit::builder().build().unwrap());
    kjit.eval("def ident(x) x;").unwrap();
    let f = kjit.function::<(f64,)>("ident").unwrap();
    f.call((1.0,)); // resolve the stub
    let stub = f.address();
    let body = kjit
        .jit()
        .bodies_dylib()
        .lookup_symbol(&orc::body_symbol("ident"))
        .unwrap()
        .addr;
    // SAFETY: both addresses are the Kaleidoscope function `ident`, f64 -> f64.
    let via_stub: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(stub.to_ptr::<u8>()) };
    // SAFETY: as above.
    let direct: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(body.to_ptr::<u8>()) };
    let n = 20_000_000;
    let t_stub = min_f64((0..reps).map(|_| per_call_ns(via_stub, n)));
    let t_direct = min_f64((0..reps).map(|_| per_call_ns(direct, n)));
    let extra = t_stub - t_direct;
    println!("call through a resolved stub: {t_stub:.2} ns, direct: {t_direct:.2} ns");
    println!(
        "  stub overhead = {extra:.2} ns per call (target <= ~1 ns): {}\n",
        verdict(extra <= 1.0)
    );

    // Raw stub creation from the pool.
    let stubs_per_run = 100_000;
    let per_stub = best((0..reps).map(|_| {
        let pool = IndirectStubsManager::new();
        let target = ExecutorAddr::from_ptr(id as *const u8);
        let start = Instant::now();
        for _ in 0..stubs_per_run {
            pool.create_stub(target).unwrap();
        }
        start.elapsed() / stubs_per_run
    }));
    println!(
        "stub creation: {:.1} ns per stub (target < 1000 ns): {}",
        per_stub.as_secs_f64() * 1e9,
        verdict(per_stub < Duration::from_micros(1))
    );
    // A whole lazy function: body unit, lazy re-export, stub, trampoline.
    // One untimed round warms the allocator and the code; then the sizes
    // alternate, so a change in the machine's load hits both alike.
    lazy_cost_per_function(100);
    lazy_cost_per_function(10_000);
    let (mut small, mut large) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        small.push(lazy_cost_per_function(100));
        large.push(lazy_cost_per_function(10_000));
    }
    let (per_fn_100, per_fn_10k) = (best(small), best(large));
    println!(
        "lazy function (unit + stub + trampoline + lookup), best of {reps} samples of {FUNCTIONS_PER_SAMPLE} functions: {:.2} us each with 100 per JIT, {:.2} us with 10,000",
        per_fn_100.as_secs_f64() * 1e6,
        per_fn_10k.as_secs_f64() * 1e6
    );
    let scale = per_fn_10k.as_secs_f64() / per_fn_100.as_secs_f64();
    println!(
        "  10,000 / 100 per-function wall time = {scale:.2}x (target <= 1.2x): {}",
        verdict(scale <= 1.2)
    );
    match (
        instructions_per_function(100),
        instructions_per_function(10_000),
    ) {
        (Some(small), Some(large)) => {
            let ratio = large / small;
            let kind = if ratio <= 1.2 {
                "linear"
            } else {
                "SUPER-LINEAR"
            };
            println!(
                "  instructions per function (callgrind): {small:.0} at 100, {large:.0} at 10,000 = {ratio:.3}x: bookkeeping is {kind}"
            );
        }
        _ => println!("  (install valgrind to count instructions per function as well)"),
    }
    // Direct calls also benefit from `id` staying referenced.
    std::hint::black_box(id as extern "C" fn(f64) -> f64);
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

//! Tier-1 code from the one lowering (Kaleidoscope's CLIF translated to
//! LLVM IR) against Cranelift tier 0, on the CPU-heavy Kaleidoscope
//! programs, from one run, printed as ratios.
//!
//! The hand-written LLVM lowering Kaleidoscope had (`lower_llvm.rs`) was
//! deleted once the translation measured within 1.05x of it: at commit
//! 53ca116 this bench compared the two (`git checkout 53ca116 && cargo
//! bench --bench translation`); three runs there gave translated / hand
//! at worst 1.032x, 1.010x and 1.018x over fib, numeric, nested_loops and
//! many_small (see ARCHITECTURE.md).
//!
//! Each program is loaded into a JIT of each kind; its top-level
//! expressions become functions `__bench_N`, compiled before timing; the
//! time is that of calling them all, the median of several rounds, rounds
//! interleaved across the kinds so that machine noise hits each alike.
//! Program output goes to /dev/null while timing.
//!
//! Target (issue 21): tier 1 at least 1.5x faster than tier 0 on the
//! numeric kernels.
//!
//! Run with `cargo bench --bench translation` (`ORC_BENCH_ROUNDS=N`,
//! default 7).

use std::sync::Arc;
use std::time::{Duration, Instant};

use orc::kaleidoscope::{parse_and_check, Function};
use orc::{Jit, KalFunction, KaleidoscopeJit, Tier};

const PROGRAMS: [&str; 4] = ["fib", "numeric", "nested_loops", "many_small"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tier0,
    Translated,
}

const KINDS: [Kind; 2] = [Kind::Tier0, Kind::Translated];

/// A program loaded, compiled, and ready to time.
struct Loaded {
    kjit: KaleidoscopeJit,
    n_exprs: usize,
}

fn load(src: &str, kind: Kind) -> Loaded {
    let tier = match kind {
        Kind::Tier0 => Tier::Zero,
        Kind::Translated => Tier::One,
    };
    let jit = Jit::builder().tier(tier).lazy(false).build().unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    let program = parse_and_check(src).unwrap();
    kjit.add_program(&program).unwrap();
    let exprs: Vec<Arc<Function>> = program
        .top_level_exprs()
        .enumerate()
        .map(|(i, e)| {
            let mut f = e.clone();
            f.proto.name = format!("__bench_{i}");
            Arc::new(f)
        })
        .collect();
    for f in &exprs {
        kjit.define(f).unwrap();
    }
    Loaded {
        kjit,
        n_exprs: exprs.len(),
    }
}

impl Loaded {
    fn run(&self) -> Duration {
        let funcs: Vec<KalFunction<'_, ()>> = (0..self.n_exprs)
            .map(|i| self.kjit.function::<()>(&format!("__bench_{i}")).unwrap())
            .collect();
        // Compile (eager JIT: already compiled) and warm the stubs.
        let quiet = Quiet::new();
        let start = Instant::now();
        for f in &funcs {
            std::hint::black_box(f.call(()));
        }
        let elapsed = start.elapsed();
        drop(quiet);
        elapsed
    }
}

/// Sends C's stdout to /dev/null while it lives.
struct Quiet(libc::c_int);

impl Quiet {
    fn new() -> Self {
        orc::host::flush_stdout();
        // SAFETY: dup and open only create descriptors; dup2 replaces fd 1
        // with /dev/null, which `drop` undoes with the saved copy. The
        // path is a NUL-terminated literal.
        unsafe {
            let saved = libc::dup(1);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            libc::dup2(null, 1);
            libc::close(null);
            Quiet(saved)
        }
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        orc::host::flush_stdout();
        // SAFETY: `self.0` is the descriptor `new` saved from fd 1; putting
        // it back and closing the copy touches nothing else.
        unsafe {
            libc::dup2(self.0, 1);
            libc::close(self.0);
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let rounds: usize = std::env::var("ORC_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/kal");
    println!(
        "Kaleidoscope, steady-state run time of each program's top-level expressions, median of {rounds} interleaved rounds\n"
    );
    println!(
        "{:<14} {:>10} {:>14} | {:>12}",
        "program", "tier 0 ms", "translated ms", "t0/transl"
    );
    for name in PROGRAMS {
        let src = std::fs::read_to_string(dir.join(format!("{name}.kal"))).unwrap();
        let loaded: Vec<Loaded> = KINDS.iter().map(|&k| load(&src, k)).collect();
        // One untimed run each: first calls, page faults.
        for l in &loaded {
            l.run();
        }
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); KINDS.len()];
        for _ in 0..rounds {
            for (i, l) in loaded.iter().enumerate() {
                times[i].push(l.run());
            }
        }
        let [t0, translated] = [0, 1].map(|i| median(times[i].clone()));
        println!(
            "{:<14} {:>10.2} {:>14.2} | {:>11.2}x",
            name,
            ms(t0),
            ms(translated),
            ms(t0) / ms(translated)
        );
    }
}

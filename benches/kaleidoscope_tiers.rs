//! Tier 1 (lower_llvm + LLVM `default<O2>`) against tier 0 (lower_clif +
//! Cranelift `speed`) on the shared Kaleidoscope programs, from one run,
//! printed as ratios:
//!
//! - compile time per function: every `def` and top-level expression
//!   compiled alone to an object (the unit of lazy compilation), median of
//!   several compiles each, summed per program;
//! - run time: every top-level expression called again after the program
//!   ran once (so nothing is compiled while timing), median of several.
//!
//! Run with `cargo bench -p orc-llvm --bench kaleidoscope_tiers`.

#[path = "../tests/layers/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use orc_cranelift::{CraneliftCompiler, CraneliftConfig};
use orc_kaleidoscope::{parse_and_check, Function, KaleidoscopeLlvmModule};
use orc_llvm::{LlvmCompiler, LlvmConfig};
use support::{programs, take_output, ClifModule, Session, Tier};

const COMPILES: usize = 9;
const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let clif = CraneliftCompiler::new(CraneliftConfig::default()).unwrap();
    let llvm = LlvmCompiler::new(LlvmConfig::default()).unwrap();
    println!("compile: per function, alone, median of {COMPILES}; run: all top-level expressions, median of {RUNS}\n");
    println!(
        "{:<14} {:>6} {:>11} {:>11} {:>8} | {:>11} {:>11} {:>8}",
        "program", "funcs", "t0 compile", "t1 compile", "t1/t0", "t0 run", "t1 run", "t1/t0"
    );
    let (mut all0, mut all1) = (Duration::ZERO, Duration::ZERO);
    let mut per_fn_ratios = Vec::new();
    for (name, src, _) in programs() {
        let program = parse_and_check(&src).unwrap();
        let funcs: Vec<&Function> = program
            .functions()
            .chain(program.top_level_exprs())
            .collect();
        let (mut c0, mut c1) = (Duration::ZERO, Duration::ZERO);
        for f in &funcs {
            let t0 = median(
                (0..COMPILES)
                    .map(|_| {
                        let module = Box::new(ClifModule {
                            name: f.proto.name.clone(),
                            functions: vec![(*f).clone()],
                        });
                        let start = Instant::now();
                        clif.compile(module).unwrap();
                        start.elapsed()
                    })
                    .collect(),
            );
            let t1 = median(
                (0..COMPILES)
                    .map(|_| {
                        let module =
                            KaleidoscopeLlvmModule::new(f.proto.name.clone(), vec![(*f).clone()]);
                        let start = Instant::now();
                        llvm.compile(module).unwrap();
                        start.elapsed()
                    })
                    .collect(),
            );
            per_fn_ratios.push(t1.as_secs_f64() / t0.as_secs_f64());
            c0 += t0;
            c1 += t1;
        }
        all0 += c0;
        all1 += c1;

        let mut run_times = [Duration::ZERO; 2];
        for (i, tier) in [Tier::Zero, Tier::One].into_iter().enumerate() {
            let session = Session::new(tier);
            session.run(&program);
            let entries: Vec<extern "C" fn() -> f64> = program
                .top_level_exprs()
                .map(|e| {
                    let addr = session.bodies.lookup_symbol(&e.proto.name).unwrap().addr;
                    // SAFETY: top-level expressions are `extern "C" fn() -> f64`.
                    unsafe { std::mem::transmute(addr.to_ptr::<u8>()) }
                })
                .collect();
            run_times[i] = median(
                (0..RUNS)
                    .map(|_| {
                        let start = Instant::now();
                        for f in &entries {
                            std::hint::black_box(f());
                        }
                        let t = start.elapsed();
                        take_output();
                        t
                    })
                    .collect(),
            );
            session.es.end_session().unwrap();
        }
        println!(
            "{:<14} {:>6} {:>8.3} ms {:>8.3} ms {:>8.1} | {:>8.3} ms {:>8.3} ms {:>8.2}",
            name,
            funcs.len(),
            ms(c0),
            ms(c1),
            c1.as_secs_f64() / c0.as_secs_f64(),
            ms(run_times[0]),
            ms(run_times[1]),
            run_times[1].as_secs_f64() / run_times[0].as_secs_f64(),
        );
    }
    per_fn_ratios.sort_by(f64::total_cmp);
    println!(
        "\nall programs: tier-0 compile {:.3} ms, tier-1 compile {:.3} ms, ratio {:.1}; \
         per-function ratio median {:.1} (min {:.1}, max {:.1})",
        ms(all0),
        ms(all1),
        all1.as_secs_f64() / all0.as_secs_f64(),
        per_fn_ratios[per_fn_ratios.len() / 2],
        per_fn_ratios[0],
        per_fn_ratios[per_fn_ratios.len() - 1],
    );
}

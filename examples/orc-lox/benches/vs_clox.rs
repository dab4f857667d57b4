//! `lox` in every tier against clox on the book's kind of benchmarks
//! (`benches/lox/`), from one run.
//!
//! Each program prints its results, then `elapsed:` and the processor time
//! its main work took (measured with `clock()` inside the program, as the
//! book's benchmarks do, so process start-up is not counted; compiles
//! during the work are, including LLVM compiles on tier-up threads, since
//! `clock()` is the process's CPU time). Every program runs
//! `LOX_BENCH_RUNS` times (default 3) per tier (`--tier interp`, `0`, `1`,
//! `adaptive`, with default thresholds) and the best time counts; every
//! tier's results must equal the interpreter's. When `CLOX` names a clox
//! binary, clox runs the same programs, its results must equal ours, and
//! each tier's speed-up over clox (clox time / lox time: above 1 is
//! faster than clox) is printed; otherwise the comparison is skipped with
//! a note.
//!
//! ```text
//! gcc -O2 -std=c99 -w -o /tmp/clox ../shared/peers/clox/*.c
//! CLOX=/tmp/clox cargo bench -p orc-lox --bench vs_clox
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// The statistics every bench shares (the workspace's `benches/stats/`).
#[path = "../../../benches/stats/mod.rs"]
mod stats;

const LOX: &str = env!("CARGO_BIN_EXE_lox");

const BENCHMARKS: [&str; 6] = [
    "fib",
    "method_call",
    "instantiation",
    "properties",
    "binary_trees",
    "string_equality",
];

/// Runs `binary` on `program` and returns (results before `elapsed:`, seconds).
fn run(binary: &str, args: &[&str], program: &Path) -> Result<(String, f64), String> {
    let out = Command::new(binary)
        .args(args)
        .arg(program)
        .env_remove("LOX_GC_STRESS")
        .output()
        .map_err(|e| format!("cannot run {binary}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{binary} {}: {:?}\n{}",
            program.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (results, elapsed) = stdout
        .split_once("elapsed:\n")
        .ok_or_else(|| format!("{}: no `elapsed:` line", program.display()))?;
    let seconds = elapsed
        .trim()
        .parse::<f64>()
        .map_err(|e| format!("{}: bad time {elapsed:?}: {e}", program.display()))?;
    Ok((results.to_string(), seconds))
}

fn best_of(
    runs: usize,
    binary: &str,
    args: &[&str],
    program: &Path,
) -> Result<(String, f64), String> {
    let mut results: Option<String> = None;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (out, t) = run(binary, args, program)?;
        if results.as_ref().is_some_and(|prev| *prev != out) {
            return Err(format!(
                "{}: results differ between runs",
                program.display()
            ));
        }
        results = Some(out);
        times.push(t);
    }
    let results = results.ok_or_else(|| "no runs".to_string())?;
    Ok((results, stats::min_f64(times)))
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("vs_clox: {e}");
        std::process::exit(1);
    }
}

fn bench() -> Result<(), String> {
    let runs: usize = std::env::var("LOX_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/lox");
    let clox = std::env::var("CLOX").ok();
    if clox.is_none() {
        println!("note: CLOX is not set; the comparison against clox is skipped");
    }
    const TIERS: [&str; 4] = ["interp", "0", "1", "adaptive"];
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9}   clox/lox: {:>6} {:>6} {:>6} {:>6}",
        "benchmark",
        "clox",
        "interp",
        "tier 0",
        "tier 1",
        "adaptive",
        "interp",
        "t0",
        "t1",
        "adapt"
    );
    for name in BENCHMARKS {
        let program = dir.join(format!("{name}.lox"));
        let mut times = Vec::new();
        let mut reference: Option<String> = None;
        for tier in TIERS {
            let (ours, t) = best_of(runs, LOX, &["--tier", tier], &program)?;
            match &reference {
                Some(r) if *r != ours => {
                    return Err(format!(
                        "{name}: --tier {tier} differs from the interpreter\n  {ours:?}\n  {r:?}"
                    ))
                }
                Some(_) => {}
                None => reference = Some(ours),
            }
            times.push(t);
        }
        let ours = reference.unwrap_or_default();
        let cell = |t: f64| format!("{t:>8.3}s");
        let lox_cells: Vec<String> = times.iter().map(|&t| cell(t)).collect();
        match &clox {
            Some(clox) => {
                let (theirs, t_clox) = best_of(runs, clox, &[], &program)?;
                if ours != theirs {
                    return Err(format!(
                        "{name}: results differ\n  lox:  {ours:?}\n  clox: {theirs:?}"
                    ));
                }
                let ratios: Vec<String> = times
                    .iter()
                    .map(|&t| format!("{:>5.2}x", t_clox / t))
                    .collect();
                println!(
                    "{name:<16} {} {}   clox/lox: {}",
                    cell(t_clox),
                    lox_cells.join(" "),
                    ratios.join(" ")
                );
            }
            None => println!("{name:<16} {:>9} {}", "-", lox_cells.join(" ")),
        }
    }
    Ok(())
}

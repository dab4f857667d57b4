//! `lox` against clox on the book's kind of benchmarks (`benches/lox/`).
//!
//! Each program prints its results, then `elapsed:` and the processor time
//! its main work took (measured with `clock()` inside the program, as the
//! book's benchmarks do, so process start-up is not counted). Every program
//! runs `LOX_BENCH_RUNS` times (default 3) and the best time counts. When
//! `CLOX` names a clox binary, clox runs the same programs, its results
//! must equal ours, and the ratio is printed; otherwise the comparison is
//! skipped with a note.
//!
//! ```text
//! gcc -O2 -std=c99 -w -o /tmp/clox ../shared/peers/clox/*.c
//! CLOX=/tmp/clox cargo bench -p orc-lox --bench vs_clox
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

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
    let mut best: Option<(String, f64)> = None;
    for _ in 0..runs {
        let (results, t) = run(binary, args, program)?;
        if let Some((prev, _)) = &best {
            if *prev != results {
                return Err(format!(
                    "{}: results differ between runs",
                    program.display()
                ));
            }
        }
        if best.as_ref().is_none_or(|(_, b)| t < *b) {
            best = Some((results, t));
        }
    }
    best.ok_or_else(|| "no runs".to_string())
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
    println!(
        "{:<16} {:>12} {:>12} {:>14}",
        "benchmark", "lox interp", "clox", "clox / lox"
    );
    for name in BENCHMARKS {
        let program = dir.join(format!("{name}.lox"));
        let (ours, t_lox) = best_of(runs, LOX, &["--tier", "interp"], &program)?;
        match &clox {
            Some(clox) => {
                let (theirs, t_clox) = best_of(runs, clox, &[], &program)?;
                if ours != theirs {
                    return Err(format!(
                        "{name}: results differ\n  lox:  {ours:?}\n  clox: {theirs:?}"
                    ));
                }
                println!(
                    "{name:<16} {:>11.3}s {:>11.3}s {:>13.2}x",
                    t_lox,
                    t_clox,
                    t_clox / t_lox
                );
            }
            None => println!("{name:<16} {t_lox:>11.3}s {:>12} {:>14}", "-", "-"),
        }
    }
    Ok(())
}

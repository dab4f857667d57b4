//! Tiering benchmark (issue 7): total wall time of `orc run` for each
//! CPU-heavy program under `--tier 0`, `--tier 1` and `--tier adaptive`,
//! from one run, printed as ratios; then a sweep of tier-up thresholds,
//! the measurement behind `DEFAULT_TIER_THRESHOLD`.
//!
//! Targets: adaptive within 1.05x of the better of the other two on every
//! program, and clearly better than `--tier 1` (here: below 0.9x) on
//! programs that run under 100 ms in every tier.
//!
//! Run with `cargo bench --bench tiering`. Each figure is the best of
//! several runs (the machine is shared; the minimum is least disturbed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 7;

fn programs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/kal");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "kal"))
        .collect();
    files.sort();
    files
}

fn run(prog: &Path, args: &[&str]) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_orc"))
        .arg("run")
        .args(args)
        .arg(prog)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        prog.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, out.stdout)
}

fn best(prog: &Path, args: &[&str]) -> (Duration, Vec<u8>) {
    let mut results: Vec<(Duration, Vec<u8>)> = (0..RUNS).map(|_| run(prog, args)).collect();
    results.sort_by_key(|r| r.0);
    results.swap_remove(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    println!("tiering: best of {RUNS} runs of `orc run`, whole process\n");
    println!(
        "{:<14} {:>9} {:>9} {:>9} | {:>12} {:>12}  verdict",
        "program", "tier 0", "tier 1", "adaptive", "ad/best", "ad/tier 1"
    );
    let mut all_ok = true;
    for prog in programs() {
        let name = prog.file_stem().unwrap().to_string_lossy().into_owned();
        let (t0, out0) = best(&prog, &["--tier", "0"]);
        let (t1, out1) = best(&prog, &["--tier", "1"]);
        let (ta, outa) = best(&prog, &["--tier", "adaptive"]);
        assert!(
            out0 == out1 && out0 == outa,
            "{name}: the tiers printed different output"
        );
        let better = t0.min(t1);
        let vs_best = ta.as_secs_f64() / better.as_secs_f64();
        let vs_t1 = ta.as_secs_f64() / t1.as_secs_f64();
        // "Programs that run under 100 ms" are those that do in every tier:
        // start-up-bound programs, where tier 1's compile time is what
        // adaptive should save. A compute-heavy program that only tier 1
        // finishes quickly (numeric: ~340 ms in tier 0) cannot be clearly
        // better than tier 1; for it the 1.05x bound is the target.
        let short = t0.max(t1) < Duration::from_millis(100);
        let ok = vs_best <= 1.05 && (!short || vs_t1 < 0.9);
        all_ok &= ok;
        println!(
            "{:<14} {:>6.1} ms {:>6.1} ms {:>6.1} ms | {:>11.2}x {:>11.2}x  {}",
            name,
            ms(t0),
            ms(t1),
            ms(ta),
            vs_best,
            vs_t1,
            if ok { "ok" } else { "MISSED" }
        );
    }
    println!(
        "\n{}",
        if all_ok {
            "all targets met"
        } else {
            "some targets missed (see MISSED)"
        }
    );

    println!("\nthreshold sweep: adaptive total over all programs (best of {RUNS} each)");
    for threshold in [1u64, 100, 1_000, 10_000, 100_000, 1_000_000] {
        let t = threshold.to_string();
        let total: Duration = programs()
            .iter()
            .map(|p| best(p, &["--tier", "adaptive", "--tier-threshold", &t]).0)
            .sum();
        println!("  threshold {:>9}: {:>8.1} ms", threshold, ms(total));
    }
}

//! What debugger and profiler support cost (issue 24): total wall time of
//! `orc run --tier adaptive` on the tiering bench's programs with the GDB
//! JIT interface off and on and perf support off and on, from one run,
//! printed as paired ratios against everything off.
//!
//! Targets: no measurable cost when off; at most 5% when on.
//!
//! Method (as `benches/tiering.rs`): the configurations run interleaved,
//! one run of each per round in an order that rotates from round to round;
//! the verdict is the median over rounds of the ratio of a configuration's
//! run to the all-off run of the same round. With `ORC_BENCH_BASELINE=PATH`
//! (an `orc` built before the plugins existed) a row compares all-off with
//! it: the cost of the plugin mechanism itself. Run with `cargo bench
//! --bench debug_overhead` (`ORC_BENCH_ROUNDS=N`, default 11).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod stats;
use stats::*;

fn rounds() -> usize {
    std::env::var("ORC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(11)
}

struct Config {
    label: &'static str,
    binary: PathBuf,
    args: &'static [&'static str],
}

fn run(config: &Config, prog: &Path) -> Duration {
    let start = Instant::now();
    let out = Command::new(&config.binary)
        .args(["run", "--tier", "adaptive"])
        .args(config.args)
        .arg(prog)
        // The flags decide, not the environment.
        .env_remove("ORC_GDB")
        .env_remove("ORC_PERF")
        .env("ORC_NO_CACHE", "1")
        .env("JITDUMPDIR", std::env::temp_dir())
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{} {}: {}",
        config.label,
        prog.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// In process: the time to compile and link `n` small functions (one
/// object each, through their first calls) with the given options.
fn link_time(n: usize, debugger: bool, perf: bool) -> Duration {
    let jit = orc::Jit::builder()
        .tier(orc::Tier::Zero)
        .debugger(debugger)
        .perf(perf)
        .build()
        .unwrap();
    let mut kjit = orc::KaleidoscopeJit::new(jit);
    let mut defs = String::new();
    for i in 0..n {
        defs.push_str(&format!("def f{i}(x) x * {i} + 1;\n"));
    }
    kjit.eval(&defs).unwrap();
    let calls: Vec<String> = (0..n).map(|i| format!("f{i}(2)")).collect();
    let call = format!("{};", calls.join(" + "));
    let start = Instant::now();
    kjit.eval(&call).unwrap();
    start.elapsed()
}

/// The per-link cost of each option, in process (the JIT'd code is the
/// same with and without them: all they add is work per linked object).
fn link_costs(rounds: usize) {
    const N: usize = 200;
    let configs = [
        ("off", false, false),
        ("gdb", true, false),
        ("perf", false, true),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    link_time(N, false, false);
    for round in 0..rounds * 3 {
        for i in 0..configs.len() {
            let at = (i + round) % configs.len();
            let (_, gdb, perf) = configs[at];
            times[at].push(link_time(N, gdb, perf).as_secs_f64());
        }
    }
    let off = &times[0];
    print!(
        "  in process, {N} functions compiled and linked: off {:.1} us each",
        median_f64(off.clone()) * 1e6 / N as f64
    );
    for ((label, _, _), t) in configs.iter().zip(&times).skip(1) {
        let ratios: Vec<f64> = t.iter().zip(off).map(|(a, b)| a / b).collect();
        let extra: Vec<f64> = t
            .iter()
            .zip(off)
            .map(|(a, b)| (a - b) * 1e6 / N as f64)
            .collect();
        print!(
            "  {label}: {:.3}x ({:+.1} us per function)",
            median_f64(ratios),
            median_f64(extra)
        );
    }
    println!();
}

fn main() {
    link_costs(rounds());
    let orc = PathBuf::from(env!("CARGO_BIN_EXE_orc"));
    let mut configs = vec![
        Config {
            label: "all off",
            binary: orc.clone(),
            args: &["--no-debugger"],
        },
        Config {
            label: "gdb on",
            binary: orc.clone(),
            args: &[],
        },
        Config {
            label: "perf on",
            binary: orc.clone(),
            args: &["--no-debugger", "--perf"],
        },
        Config {
            label: "gdb+perf on",
            binary: orc.clone(),
            args: &["--perf"],
        },
    ];
    if let Some(base) = std::env::var_os("ORC_BENCH_BASELINE") {
        configs.push(Config {
            label: "baseline",
            binary: PathBuf::from(base),
            args: &[],
        });
    }
    let rounds = rounds();
    println!(
        "debug_overhead: {rounds} rounds, `orc run --tier adaptive`; paired median ratio to `all off` (rounds slower)"
    );
    let mut worst_on: f64 = 0.0;
    for prog in kal_programs() {
        // Warm-up: page cache, first-run effects.
        for c in &configs {
            run(c, &prog);
        }
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); configs.len()];
        for round in 0..rounds {
            for i in 0..configs.len() {
                let at = (i + round) % configs.len();
                times[at].push(run(&configs[at], &prog));
            }
        }
        let name = prog.file_stem().unwrap().to_string_lossy().into_owned();
        let off = &times[0];
        let off_median = median_f64(off.iter().map(Duration::as_secs_f64));
        print!("  {name:<13} off {:>7.1} ms", off_median * 1e3);
        for (c, t) in configs.iter().zip(&times).skip(1) {
            let ratios: Vec<f64> = t
                .iter()
                .zip(off)
                .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
                .collect();
            let slower = t.iter().zip(off).filter(|(a, b)| a > b).count();
            let ratio = median_f64(ratios);
            if c.label != "baseline" {
                worst_on = worst_on.max(ratio);
            }
            print!("  {}: {ratio:.3}x ({slower}/{rounds})", c.label);
        }
        println!();
    }
    println!(
        "  worst on/off ratio {worst_on:.3}x: {}",
        if worst_on <= 1.05 {
            "within the 5% target"
        } else {
            "ABOVE the 5% target"
        }
    );
}

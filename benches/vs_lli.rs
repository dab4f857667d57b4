//! `orc run PROG.ll` against `lli-19` and the `gcc -O2` binary on the C
//! test programs (tests/ir_c/), from one run, printed as ratios of median wall
//! times (whole process: start, load, compile, run, exit). The runs of one
//! program alternate between the commands, so load from other processes
//! spreads over all of them.
//!
//! Run with `cargo bench --bench vs_lli`. `ORC_BENCH_RUNS`
//! sets the runs per configuration (default 7).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod stats;
use stats::*;

fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir_c")
}

/// (IR file, gcc binary) for a program made of `sources`.
fn build(dir: &Path, name: &str, sources: &[&str]) -> (PathBuf, PathBuf) {
    let mut lls = Vec::new();
    for src in sources {
        let ll = dir.join(format!("{name}-{}.ll", lls.len()));
        check(
            Command::new("clang-19")
                .args(["-O2", "-ffp-contract=off", "-S", "-emit-llvm", "-o"])
                .arg(&ll)
                .arg(c_dir().join(src)),
        );
        lls.push(ll);
    }
    let ir = dir.join(format!("{name}.ll"));
    check(
        Command::new("llvm-link-19")
            .arg("-S")
            .args(&lls)
            .arg("-o")
            .arg(&ir),
    );
    let bin = dir.join(format!("{name}-gcc"));
    check(
        Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&bin)
            .args(sources.iter().map(|s| c_dir().join(s)))
            .arg("-lm"),
    );
    (ir, bin)
}

/// Runs `cmd` once (output discarded) and returns its wall time; the
/// programs' own exit statuses are theirs, only a crash is refused.
fn time_once(cmd: Command) -> Duration {
    let shown = format!("{cmd:?}");
    let (t, status) = time_status(cmd);
    assert!(status.code().is_some(), "{shown} crashed");
    t
}

/// The median wall time of each command over `runs` rounds. Each round
/// runs every command once, in turn, so a change of load on a shared
/// machine affects all of them alike instead of whichever ran then.
fn median_times(runs: usize, commands: &[&dyn Fn() -> Command]) -> Vec<Duration> {
    median_of_rounds(runs, commands.len(), |k| time_once(commands[k]()))
}

fn main() {
    let runs: usize = std::env::var("ORC_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let dir = std::env::temp_dir().join(format!("orc-bench-vs-lli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let programs: [(&str, &[&str], &[&str]); 6] = [
        ("interp", &["interp.c"], &[]),
        ("hashmap", &["hashmap.c"], &[]),
        ("sort", &["sort.c"], &[]),
        ("strings", &["strings.c"], &["one", "two words"]),
        ("fpkernel", &["fpkernel.c"], &[]),
        (
            "multi",
            &[
                "multi/main.c",
                "multi/list.c",
                "multi/shapes.c",
                "multi/util.c",
            ],
            &[],
        ),
    ];
    let orc = env!("CARGO_BIN_EXE_orc");
    // Tier 1 (LLVM; IR runs adaptive by default, see `ir_tiers`), which
    // does code generation only by default, like lli;
    // `--llvm-opt-level O2` adds the `default<O2>` IR pipeline.
    let configs: [(&str, &[&str]); 4] = [
        ("lazy", &[]),
        ("lazy default<O2>", &["--llvm-opt-level", "O2"]),
        ("eager", &["--eager"]),
        ("eager default<O2>", &["--eager", "--llvm-opt-level", "O2"]),
    ];
    println!(
        "median of {runs} runs, whole process; ratios < 1 mean orc is faster\n\n{:<9} {:>7} {:>9} {:>7} | {:<19} {:>7} {:>7} {:>7}",
        "program", "lli ms", "lazy-lli", "gcc ms", "orc run", "ms", "vs lli", "vs gcc"
    );
    for (name, sources, args) in programs {
        let (ir, bin) = build(&dir, name, sources);
        let lli = || {
            let mut c = Command::new("lli-19");
            c.arg(&ir).args(args);
            c
        };
        let lli_lazy = || {
            let mut c = Command::new("lli-19");
            c.arg("-jit-kind=orc-lazy").arg(&ir).args(args);
            c
        };
        let gcc = || {
            let mut c = Command::new(&bin);
            c.args(args);
            c
        };
        let orc_runs: Vec<Box<dyn Fn() -> Command>> = configs
            .iter()
            .map(|(_, flags)| {
                let ir = ir.clone();
                Box::new(move || {
                    let mut c = Command::new(orc);
                    c.env("ORC_NO_CACHE", "1")
                        .arg("run")
                        .args(["--tier", "1"])
                        .args(*flags)
                        .arg(&ir)
                        .arg("--")
                        .args(args);
                    c
                }) as Box<dyn Fn() -> Command>
            })
            .collect();
        let mut commands: Vec<&dyn Fn() -> Command> = vec![&lli, &lli_lazy, &gcc];
        commands.extend(orc_runs.iter().map(|c| c.as_ref()));
        let times = median_times(runs, &commands);
        let (lli, lli_lazy, gcc) = (times[0], times[1], times[2]);
        for (i, ((label, _), t)) in configs.iter().zip(&times[3..]).enumerate() {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let (p, l, ll, g) = if i == 0 {
                (
                    name.to_string(),
                    format!("{:.1}", ms(lli)),
                    format!("{:.1}", ms(lli_lazy)),
                    format!("{:.1}", ms(gcc)),
                )
            } else {
                Default::default()
            };
            println!(
                "{p:<9} {l:>7} {ll:>9} {g:>7} | {label:<19} {:>7.1} {:>7.2} {:>7.1}",
                ms(*t),
                t.as_secs_f64() / lli.as_secs_f64(),
                t.as_secs_f64() / gcc.as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

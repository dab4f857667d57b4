//! Out-of-process execution against in-process, from one run (issue 26's
//! benchmark). Three parts, whole `orc` processes, the compared commands
//! taking turns in each round (see `stats`):
//!
//! 1. **Lazy calls across the boundary**: a generated C program of
//!    `ORC_BENCH_FUNCTIONS` functions (default 1000) whose `main` calls
//!    each once, under `--tier 0` (every first call goes through its
//!    trampoline: compile, link, continue), less the same process with a
//!    program that makes no lazy call; divided by the functions: what one
//!    lazy call costs in process and with `--oop`, where it is a call back
//!    from the executor to the controller, whose link makes its own
//!    requests of the executor (page protections, unwind registration).
//!    The executor's start-up is printed too.
//! 2. **Total time of CPU-heavy programs**: the tiering benches'
//!    Kaleidoscope programs and `benches/ir/kernels.c` under the default
//!    adaptive tiering, in process and with `--oop`. The verdict is on the
//!    median over rounds of each round's ratio. Target: within 1.05x.
//!    Programs whose probe runs finish under 100 ms get four times as many
//!    rounds (as in the tiering bench): what `--oop` adds to one is about
//!    a millisecond, and a 25 ms program's runs move by more than that from
//!    one round to the next here.
//!    `short.kal` (a program of a few milliseconds, there to measure
//!    start-up) is printed apart, with what `--oop` adds in milliseconds:
//!    a fixed cost (the executor's start, each lazy call's crossing), not
//!    a share of the work.
//! 3. **Object cache under `--oop`**: the large program's start-up under
//!    `--oop --tier 1 --eager` with a cold cache (emptied before each run)
//!    and a warm one. Target: warm at most 0.2x cold.
//!
//! Run with `cargo bench --bench oop`; `ORC_BENCH_ROUNDS` sets the rounds
//! (default 7), `ORC_BENCH_PARTS` which parts run (default `123`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod stats;
use stats::*;

const ORC: &str = env!("CARGO_BIN_EXE_orc");

/// The tiering benches' short program: it runs for a few milliseconds,
/// mostly start-up (see part 2).
const START_UP_PROGRAM: &str = "short.kal";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// `orc run [--oop] ARGS FILE [-- PROG_ARGS]`, compiling everything (no
/// cache).
fn orc(oop: bool, args: &[&str], file: &Path, prog_args: &[&str]) -> Command {
    let mut c = Command::new(ORC);
    c.env("ORC_NO_CACHE", "1").env_remove("ORC_TIER").arg("run");
    if oop {
        c.arg("--oop");
    }
    c.args(args).arg(file);
    if !prog_args.is_empty() {
        c.arg("--").args(prog_args);
    }
    c
}

fn to_ir(c_source: &Path, ll: &Path) {
    check(
        Command::new("clang-19")
            .args(["-O2", "-ffp-contract=off", "-S", "-emit-llvm", "-o"])
            .arg(ll)
            .arg(c_source),
    );
}

fn main() {
    let rounds = env_or("ORC_BENCH_ROUNDS", 7);
    let functions = env_or("ORC_BENCH_FUNCTIONS", 1000);
    let parts = std::env::var("ORC_BENCH_PARTS").unwrap_or_else(|_| "123".into());
    let dir: PathBuf = std::env::temp_dir().join(format!("orc-bench-oop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let generate = |name: &str, call_all: bool| {
        let c = dir.join(format!("{name}.c"));
        std::fs::write(&c, large_c_program(functions, call_all)).unwrap();
        let ll = dir.join(format!("{name}.ll"));
        to_ir(&c, &ll);
        ll
    };
    println!("{rounds} rounds; in-process and --oop take turns in each\n");
    if parts.contains('1') {
        let all = generate("call-all", true);
        let trivial = dir.join("trivial.c");
        std::fs::write(&trivial, "int main(void) { return 0; }\n").unwrap();
        let trivial_ll = dir.join("trivial.ll");
        to_ir(&trivial, &trivial_ll);
        let configs: [(bool, &Path); 4] = [
            (false, &trivial_ll),
            (true, &trivial_ll),
            (false, &all),
            (true, &all),
        ];
        let t = median_of_rounds(rounds, configs.len(), |k| {
            let (oop, file) = configs[k];
            time_once(orc(oop, &["--tier", "0"], file, &[]))
        });
        let per_call = |with: Duration, without: Duration| {
            with.saturating_sub(without).as_secs_f64() * 1e6 / functions as f64
        };
        let (inp, oop) = (per_call(t[2], t[0]), per_call(t[3], t[1]));
        println!(
            "1. lazy calls: {functions} functions each called once, orc run --tier 0\n  \
             start-up, no lazy call:  in process {:>8.1} ms   --oop {:>8.1} ms  (executor: +{:.1} ms)\n  \
             per lazy call (compile, link, continue): in process {inp:>7.1} us   --oop {oop:>7.1} us  \
             ({:.2}x; the boundary adds {:.1} us)",
            ms(t[0]),
            ms(t[1]),
            ms(t[1].saturating_sub(t[0])),
            oop / inp,
            oop - inp,
        );
    }
    if parts.contains('2') {
        let kernels_c = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ir/kernels.c");
        let kernels = dir.join("kernels.ll");
        to_ir(&kernels_c, &kernels);
        let mut programs: Vec<(String, PathBuf, Vec<&str>)> = kal_programs()
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, p, vec!["--tier", "adaptive"])
            })
            .collect();
        programs.push(("kernels.c (IR)".into(), kernels, vec![]));
        println!(
            "\n2. total time, default adaptive tiering: median of per-round ratios --oop / in process"
        );
        let mut worst: f64 = 0.0;
        let mut start_up_bound = Vec::new();
        for (name, file, args) in &programs {
            let prog_args: &[&str] = if name.starts_with("kernels") {
                &["3"]
            } else {
                &[]
            };
            let probe = |oop| time_once(orc(oop, args, file, prog_args));
            let short = probe(false).max(probe(true)) < Duration::from_millis(100);
            let n = if short { 4 * rounds } else { rounds };
            let times = stats::rounds(n, 2, |k| time_once(orc(k == 1, args, file, prog_args)));
            let ratios = times[0]
                .iter()
                .zip(&times[1])
                .map(|(i, o)| o.as_secs_f64() / i.as_secs_f64());
            let ratio = median_f64(ratios);
            let (inp, oop) = (
                median(times[0].iter().copied()),
                median(times[1].iter().copied()),
            );
            let line = format!(
                "  {name:<18} in process {:>8.1} ms   --oop {:>8.1} ms   {ratio:>5.3}x  ({n} rounds)",
                ms(inp),
                ms(oop),
            );
            if name == START_UP_PROGRAM {
                start_up_bound.push(format!("{line}   (+{:.1} ms)", ms(oop.saturating_sub(inp))));
                continue;
            }
            worst = worst.max(ratio);
            println!("{line}");
        }
        println!(
            "  worst {worst:.3}x (target <= 1.05x): {}",
            if worst <= 1.05 { "met" } else { "NOT met" }
        );
        for line in start_up_bound {
            println!("  start-up bound, not CPU-heavy (a fixed cost, not a ratio):\n{line}");
        }
    }
    if parts.contains('3') {
        let large = generate("large", false);
        let cache = dir.join("cache");
        let make = || {
            let mut c = Command::new(ORC);
            c.args(["run", "--oop", "--tier", "1", "--eager", "--cache"])
                .arg(&cache)
                .arg(&large);
            c
        };
        let times = median_of_rounds(rounds, 2, |k| {
            if k == 0 {
                let _ = std::fs::remove_dir_all(&cache);
            }
            time_once(make())
        });
        let ratio = times[1].as_secs_f64() / times[0].as_secs_f64();
        println!(
            "\n3. object cache: {functions} functions, orc run --oop --tier 1 --eager\n  \
             cold cache {:>9.1} ms\n  warm cache {:>9.1} ms {ratio:>7.2}x cold (target <= 0.2x): {}",
            ms(times[0]),
            ms(times[1]),
            if ratio <= 0.2 { "met" } else { "NOT met" }
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! Tier-0 benchmarks (issue 4), printed from one run:
//!
//! - compile throughput: functions per second through Cranelift, the object
//!   writer, our linker and the session lookup, on a generated
//!   2,000-function program, one object per function (the lazy path) and
//!   one object for all (the eager path);
//! - wall time of `orc run` for each shared Kaleidoscope program under
//!   tier 0 (lazy and eager), tier 1 and adaptive, with tier 0 / tier 1.
//!
//! Run with `cargo bench --bench tier0`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod stats;
use stats::*;

use orc::{Jit, KaleidoscopeJit};

const N: usize = 2000;

/// Functions with loops, branches and calls, so each is real work for the
/// code generator.
fn program(n: usize) -> String {
    let mut src = String::from("def binary : 1 (x y) y;\n");
    for i in 0..n {
        let callee = if i == 0 {
            "x".to_owned()
        } else {
            format!("f{}(x - 1)", i - 1)
        };
        src.push_str(&format!(
            "def f{i}(x) var acc = 0 in (for j = 0, j < 3 in acc = acc + j * x) : if x < 1 then acc else acc + {callee};\n"
        ));
    }
    src
}

/// Compile + link + lookup of every function; returns the time for all.
fn compile_all(src: &str, lazy: bool) -> Duration {
    let ast = orc_kaleidoscope::parse_and_check(src).unwrap();
    let mut kjit = KaleidoscopeJit::new(Jit::builder().lazy(lazy).build().unwrap());
    let start = Instant::now();
    kjit.add_program(&ast).unwrap();
    if lazy {
        // Looking a body up compiles and links its unit.
        let bodies = kjit.jit().bodies_dylib().clone();
        for i in 0..N {
            bodies
                .lookup_symbol(&orc::body_symbol(&format!("f{i}")))
                .unwrap();
        }
    }
    let elapsed = start.elapsed();
    // Every f body (eager also compiles the `:` operator).
    assert!(kjit.jit().cranelift_layer().stats().functions.len() >= N);
    elapsed
}

fn time_orc(args: &[&str], reps: usize) -> Duration {
    best((0..reps).map(|_| {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_orc"))
            .env("ORC_NO_CACHE", "1")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "orc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        start.elapsed()
    }))
}

fn main() {
    let src = program(N);
    let per_fn = best((0..3).map(|_| compile_all(&src, true)));
    let one_obj = best((0..3).map(|_| compile_all(&src, false)));
    println!("tier-0 compile throughput ({N} functions, compile + link + lookup):");
    println!(
        "  one object per function: {:>8.0} functions/s ({per_fn:?})",
        N as f64 / per_fn.as_secs_f64()
    );
    println!(
        "  one object for all:      {:>8.0} functions/s ({one_obj:?})\n",
        N as f64 / one_obj.as_secs_f64()
    );

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/kaleidoscope");
    let mut programs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "kal"))
        .collect();
    programs.sort();
    println!("orc run wall time (best of 5):");
    println!(
        "  {:<12} {:>9} {:>12} {:>9} {:>9} {:>9}",
        "program", "tier 0", "tier 0 eager", "tier 1", "adaptive", "t0 / t1"
    );
    for prog in programs {
        let path = prog.to_str().unwrap();
        let lazy = time_orc(&["run", "--tier", "0", path], 5);
        let eager = time_orc(&["run", "--tier", "0", "--eager", path], 5);
        let t1 = time_orc(&["run", "--tier", "1", path], 5);
        let adaptive = time_orc(&["run", "--tier", "adaptive", path], 5);
        let name = prog.file_stem().unwrap().to_string_lossy();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "  {:<12} {:>6.1} ms {:>9.1} ms {:>6.1} ms {:>6.1} ms {:>8.2}x",
            name,
            ms(lazy),
            ms(eager),
            ms(t1),
            ms(adaptive),
            lazy.as_secs_f64() / t1.as_secs_f64()
        );
    }
}

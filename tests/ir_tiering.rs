//! LLVM IR programs on the tiered layer (`orc run --tier 0|adaptive
//! x.ll`): hot functions move to tier 1, a long loop moves mid-way by
//! on-stack replacement, and a function the translation to CLIF does not
//! take runs in tier 1 only, named in `--stats`, without failing the
//! program. Sources are compiled with clang-19 at test time.

use std::path::PathBuf;
use std::process::{Command, Output};

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orc-ir-tiering-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Compiles C (or C++ with `cxx`) source `src` to IR and natively; returns
/// (ir, native binary).
fn build(test: &str, src: &str, cxx: bool) -> (PathBuf, PathBuf) {
    let dir = scratch(test);
    let (ext, compiler) = if cxx {
        ("cpp", "clang++-19")
    } else {
        ("c", "clang-19")
    };
    let file = dir.join(format!("{test}.{ext}"));
    std::fs::write(&file, src).unwrap();
    let ir = dir.join(format!("{test}.ll"));
    let bin = dir.join(test);
    for (out, extra) in [(&ir, &["-S", "-emit-llvm"][..]), (&bin, &[][..])] {
        let o = run(Command::new(compiler)
            .args(["-O2", "-o"])
            .arg(out)
            .args(extra)
            .arg(&file));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    (ir, bin)
}

fn orc(ir: &PathBuf, flags: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_orc"))
        .env_remove("ORC_TIER")
        .arg("run")
        .args(flags)
        .arg(ir))
}

fn same_output(native: &Output, jit: &Output, what: &str) {
    assert_eq!(
        (jit.status.code(), String::from_utf8_lossy(&jit.stdout)),
        (
            native.status.code(),
            String::from_utf8_lossy(&native.stdout)
        ),
        "{what}: {}",
        String::from_utf8_lossy(&jit.stderr)
    );
}

const LONG_LOOP: &str = r#"
#include <stdio.h>
__attribute__((noinline)) static unsigned long step(unsigned long h, long i) {
  return (h ^ (unsigned long)i) * 1099511628211UL;
}
int main(void) {
  unsigned long h = 1469598103934665603UL, g = 7;
  for (long i = 0; i < 30000000L; i++) {
    h ^= (unsigned long)i;
    h *= 1099511628211UL;
    g += h >> 61;
  }
  for (long i = 0; i < 3000; i++) h = step(h, i);
  printf("%lu %lu\n", h, g);
  return (int)(g & 63);
}
"#;

#[test]
fn a_long_loop_moves_to_tier_1_by_osr_and_hot_functions_are_promoted() {
    let (ir, bin) = build("osr", LONG_LOOP, false);
    let native = run(&mut Command::new(&bin));
    let out = orc(
        &ir,
        &[
            "--tier",
            "adaptive",
            "--tier-threshold",
            "200",
            "--tier-up-threads",
            "0",
            "--stats",
        ],
    );
    same_output(&native, &out, "adaptive");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let moved = stderr
        .lines()
        .find_map(|l| l.strip_prefix("orc: stats: on-stack replacement: "))
        .unwrap_or_else(|| panic!("no OSR line: {stderr}"));
    let frames: u64 = moved.split(' ').next().unwrap().parse().unwrap();
    assert!(frames >= 1, "{stderr}");
    assert!(moved.contains("main "), "{stderr}");
    // `step` was called 3000 times: promoted.
    let step = stderr
        .lines()
        .find(|l| l.contains("step") && l.starts_with("orc: stats: "))
        .unwrap_or_else(|| panic!("no stats for step: {stderr}"));
    let fields: Vec<&str> = step.split_whitespace().collect();
    assert_eq!(fields.get(4), Some(&"1"), "{step}");
    let t0 = orc(&ir, &["--tier", "0"]);
    same_output(&native, &t0, "tier 0");
}

const MIXED: &str = r#"
#include <cstdio>
#include <csetjmp>
#include <stdexcept>
static std::jmp_buf env;
__attribute__((noinline)) static int jumper(int x) { if (x > 3) std::longjmp(env, x); return x * 2; }
__attribute__((noinline)) static int with_setjmp(int x) {
  int r = setjmp(env);
  if (r) return 100 + r;
  return jumper(x);
}
__attribute__((noinline)) static int thrower(int x) { if (x == 2) throw std::runtime_error("two"); return x; }
__attribute__((noinline)) static int catcher(int x) {
  try { return thrower(x); } catch (const std::exception &e) { std::printf("caught %s\n", e.what()); return -1; }
}
int main() {
  int s = 0;
  for (int i = 0; i < 6; i++) s += with_setjmp(i) + catcher(i);
  std::printf("%d\n", s);
  return s & 0x7f;
}
"#;

#[test]
fn functions_the_translation_does_not_take_run_in_tier_1_and_are_named() {
    let (ir, bin) = build("mixed", MIXED, true);
    let native = run(&mut Command::new(&bin));
    for flags in [
        &["--tier", "0", "--stats"][..],
        &["--tier", "0", "--eager", "--stats"][..],
        &[
            "--tier",
            "adaptive",
            "--tier-threshold",
            "2",
            "--tier-up-threads",
            "0",
            "--stats",
        ][..],
    ] {
        let out = orc(&ir, flags);
        same_output(&native, &out, &format!("{flags:?}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tier1_only: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("runs in tier 1 only"))
            .collect();
        // setjmp's caller (returns_twice) and the function with invoke.
        assert!(
            tier1_only.iter().any(|l| l.contains("with_setjmp")),
            "{flags:?}: {stderr}"
        );
        assert!(
            tier1_only.iter().any(|l| l.contains("catcher")),
            "{flags:?}: {stderr}"
        );
        // The others are tiered.
        assert!(
            !tier1_only
                .iter()
                .any(|l| l.contains("'jumper'") || l.contains(".jumper'")),
            "{flags:?}: {stderr}"
        );
    }
}

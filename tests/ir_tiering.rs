//! LLVM IR programs on the tiered layer (`orc run --tier 0|adaptive
//! x.ll`): hot functions move to tier 1, a long loop moves mid-way by
//! on-stack replacement, and a function the translation to CLIF does not
//! take runs in tier 1 only, named in `--stats`, without failing the
//! program. Sources are compiled with clang-19 at test time.

use std::path::PathBuf;
use std::process::{Command, Output};

use orc_test_support::{build_source, run, scratch};

/// Compiles C (or C++ with `cxx`) source `src` to IR and natively; returns
/// (ir, native binary).
fn build(test: &str, src: &str, cxx: bool) -> (PathBuf, PathBuf) {
    let p = build_source(&scratch("ir-tiering"), test, src, cxx, &["-O2"]);
    (p.ir, p.native)
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
        // Every line is a statistics line (an `invoke` printed in a reason
        // used to spill onto a line of its own).
        assert!(
            stderr.lines().all(|l| l.starts_with("orc: stats: ")),
            "{flags:?}: {stderr}"
        );
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

const COMPUTED_GOTO: &str = r#"
#include <stdio.h>
__attribute__((noinline)) static long run(const unsigned char *code, long n) {
  static void *table[] = { &&op_inc, &&op_dbl, &&op_mod, &&op_loop, &&op_halt };
  long acc = 1, i = 0;
  const unsigned char *pc = code;
  goto *table[*pc++];
op_inc: acc++; goto *table[*pc++];
op_dbl: acc *= 3; goto *table[*pc++];
op_mod: acc %= 1000003; goto *table[*pc++];
op_loop: if (++i < n) pc = code; goto *table[*pc++];
op_halt: return acc;
}
int main(void) {
  unsigned char prog[] = {0, 1, 2, 0, 3, 4};
  long s = 0;
  for (int k = 0; k < 300; k++) s += run(prog, 200 + k);
  printf("%ld\n", s);
  return (int)(s % 100);
}
"#;

/// A computed-goto interpreter runs in tier 0 (its table of block
/// addresses is a private copy in tier-0 terms) and, once hot, in tier 1
/// (whose module keeps a private copy of the real table).
#[test]
fn a_computed_goto_interpreter_runs_in_tier_0_and_is_promoted() {
    let (ir, bin) = build("cgoto", COMPUTED_GOTO, false);
    let native = run(&mut Command::new(&bin));
    for flags in [
        &["--tier", "0", "--stats"][..],
        &["--tier", "0", "--eager", "--stats"][..],
        &[
            "--tier",
            "adaptive",
            "--tier-threshold",
            "20",
            "--tier-up-threads",
            "0",
            "--stats",
        ][..],
        &[
            "--tier",
            "adaptive",
            "--tier-threshold",
            "20",
            "--eager",
            "--tier-up-threads",
            "0",
            "--stats",
        ][..],
    ] {
        let out = orc(&ir, flags);
        same_output(&native, &out, &format!("{flags:?}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("IR functions: 2 tiered, 0 in tier 1 only"),
            "{flags:?}: {stderr}"
        );
        if flags.contains(&"adaptive") {
            let line = stderr
                .lines()
                .find(|l| l.contains(".run ") && l.starts_with("orc: stats: "))
                .unwrap_or_else(|| panic!("no stats for run: {stderr}"));
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.get(4), Some(&"1"), "{flags:?}: {line}");
        }
    }
}

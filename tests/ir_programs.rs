//! C programs of our own (tests/c/), compiled at test time with
//! `clang-19 -O2 -ffp-contract=off -S -emit-llvm`, run through the IR
//! frontend lazily and eagerly (with `orc run`, so stdout and the exit
//! status are the process's own) must behave exactly like the
//! natively compiled program and like `lli-19`.
//!
//! `-ffp-contract=off`: clang's default turns `a * b + c` into
//! `llvm.fmuladd`, which a JIT targeting an FMA-capable host fuses while a
//! baseline x86-64 binary does not; every runner would still be "right",
//! but their printed bits would differ.

use std::path::{Path, PathBuf};
use std::process::Command;

use orc_test_support::{build_program, describe, run, scratch};

const FLAGS: [&str; 2] = ["-O2", "-ffp-contract=off"];

fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir_c")
}

/// Compiles `sources` to one IR file (`llvm-link-19` when several) and to a
/// native binary; returns (ir, binary).
fn build(test: &str, sources: &[&str], ext: &str) -> (PathBuf, PathBuf) {
    let sources: Vec<PathBuf> = sources.iter().map(|s| c_dir().join(s)).collect();
    let p = build_program(&scratch("ir-programs"), test, &sources, &FLAGS, ext, &[]);
    (p.ir, p.native)
}

/// Runs the program natively, with lli-19, and with `orc run` lazily and
/// eagerly; all four must print the same and exit the same.
fn same_everywhere(test: &str, sources: &[&str], ext: &str, args: &[&str], status: i32) {
    let (ir, bin) = build(test, sources, ext);
    let native = describe(&run(Command::new(&bin).args(args)));
    assert_eq!(native.0, Some(status), "{test}: native exit status");
    assert!(native.1.len() > 100, "{test}: too little output");
    let lli = describe(&run(Command::new("lli-19").arg(&ir).args(args)));
    assert_eq!(
        lli, native,
        "{test}: lli-19 differs from the native program"
    );
    // Options go before the file; arguments after it (and after `--`).
    for mode in [
        &[][..],
        &["--eager"][..],
        &["--compile-threads", "2"][..],
        &["--lazy-units", "function"][..],
        &["--tier", "0"][..],
        &["--tier", "0", "--eager"][..],
        &["--tier", "adaptive", "--tier-threshold", "50"][..],
        &["--tier", "adaptive", "--tier-threshold", "50", "--eager"][..],
    ] {
        let out = run(Command::new(env!("CARGO_BIN_EXE_orc"))
            .env_remove("ORC_TIER")
            .arg("run")
            .args(mode)
            .arg(&ir)
            .arg("--")
            .args(args));
        let orc = describe(&out);
        assert_eq!(
            orc,
            native,
            "{test} {mode:?}: orc differs from the native program; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{test} {mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if let Some(dir) = ir.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn interpreter_with_a_switch_dispatch_loop() {
    same_everywhere("interp", &["interp.c"], "ll", &[], 107);
}

#[test]
fn hash_maps_with_atexit_and_destructors() {
    same_everywhere("hashmap", &["hashmap.c"], "ll", &[], 0);
}

#[test]
fn qsort_and_bsearch_with_jit_callbacks() {
    same_everywhere("sort", &["sort.c"], "ll", &[], 7);
}

#[test]
fn string_processing_with_arguments() {
    same_everywhere(
        "strings",
        &["strings.c"],
        "ll",
        &["one", "two words", ""],
        14,
    );
}

#[test]
fn floating_point_kernels_are_bit_identical() {
    same_everywhere("fpkernel", &["fpkernel.c"], "ll", &[], 0);
}

#[test]
fn multi_file_program_joined_with_llvm_link_as_bitcode() {
    same_everywhere(
        "multi",
        &[
            "multi/main.c",
            "multi/list.c",
            "multi/shapes.c",
            "multi/util.c",
        ],
        "bc",
        &[],
        42,
    );
}

#[test]
fn invalid_ir_prints_the_diagnostic_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("orc-llvm-ir-runner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.ll");
    std::fs::write(&file, "define i32 @main() {\n  ret i64 0\n}\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orc"))
        .arg("run")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:2:", file.display())),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// IR runs in every tier: `--tier` and `ORC_TIER` pick it (the flag
/// wins), and tier 0 and adaptive really run translated code (`--stats`
/// counts the functions the tiered layer took).
#[test]
fn ir_runs_in_every_tier_chosen_by_flag_or_environment() {
    let dir = std::env::temp_dir().join(format!("orc-llvm-ir-tiers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("seven.ll");
    std::fs::write(
        &file,
        "define i32 @seven(i32 %x) {\n  %y = add i32 %x, 4\n  ret i32 %y\n}\n\
         define i32 @main() {\n  %r = call i32 @seven(i32 3)\n  ret i32 %r\n}\n",
    )
    .unwrap();
    let orc = |tier: Option<&str>, env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orc"));
        cmd.args(["run", "--stats"]).env_remove("ORC_TIER");
        if let Some(tier) = tier {
            cmd.args(["--tier", tier]);
        }
        if let Some(env) = env {
            cmd.env("ORC_TIER", env);
        }
        let out = run(cmd.arg(&file));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let tiered = "IR functions: 2 tiered, 0 in tier 1 only";
    for (tier, env, tier0) in [
        (Some("0"), None, true),
        (Some("adaptive"), None, true),
        (None, Some("adaptive"), true),
        (None, Some("0"), true),
        (Some("1"), None, false),
        (Some("1"), Some("adaptive"), false),
        (Some("0"), Some("1"), true),
    ] {
        let (status, stderr) = orc(tier, env);
        assert_eq!(status, Some(7), "{tier:?} {env:?}: {stderr}");
        assert_eq!(stderr.contains(tiered), tier0, "{tier:?} {env:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

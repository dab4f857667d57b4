//! `orc test` and `orc run` on CLIF files, through the real binary: the
//! run-test files under tests/clif under every tier, the kernels program
//! against its expected output, and how failures and bad files are
//! reported (line, directive, exit status).
//!
//! Tier 1 runs on the CLIF-to-LLVM translation, which does not cover every
//! opcode yet: under tier 1 a directive may fail only with the
//! translation's error (naming what it lacks), never with a wrong result.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ORC: &str = env!("CARGO_BIN_EXE_orc");

fn clif_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clif")
}

/// Every run-test file under tests/clif, sorted.
fn run_test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(clif_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "clif"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "run-test files missing: {files:?}");
    files
}

/// The number of `; run` and `; print` directives in `files`, counted
/// from the text.
fn n_directives(files: &[PathBuf]) -> usize {
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| {
                    let l = l.trim_start_matches([';', ' ']);
                    l.starts_with("run") || l.starts_with("print")
                })
                .count()
        })
        .sum()
}

fn orc(args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(ORC)
        .args(args)
        .args(files)
        .output()
        .expect("cannot run orc")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The counts of the last line, `N passed, M failed`.
fn tally(out: &Output) -> (usize, usize) {
    let text = stdout(out);
    let last = text.lines().last().unwrap_or_default();
    let mut words = last.split_whitespace();
    let passed = words.next().and_then(|w| w.parse().ok());
    let failed = words.nth(1).and_then(|w| w.parse().ok());
    match (passed, failed, last.ends_with(" failed")) {
        (Some(p), Some(f), true) => (p, f),
        _ => panic!("no 'N passed, M failed' line:\n{text}\n{}", stderr(out)),
    }
}

/// A scratch file for one test.
fn scratch_file(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("clif_cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn tier0_passes_every_run_test() {
    let files = run_test_files();
    let out = orc(&["test", "--tier", "0"], &files);
    let expected = n_directives(&files);
    assert_eq!(
        tally(&out),
        (expected, 0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0));
}

/// Tier 1 translates every function of the run tests: every directive
/// passes, none falls back to tier 0.
#[test]
fn tier1_passes_every_run_test() {
    let files = run_test_files();
    let out = orc(&["test", "--tier", "1"], &files);
    assert_eq!(
        tally(&out),
        (n_directives(&files), 0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

fn kernels() -> PathBuf {
    clif_dir().join("programs/kernels.clif")
}

fn run_kernels(tier: &str) -> Output {
    orc(&["run", "--tier", tier], &[kernels()])
}

#[test]
fn kernels_print_the_expected_output_in_every_tier() {
    let expected = std::fs::read_to_string(clif_dir().join("programs/kernels.out")).unwrap();
    for tier in ["0", "1"] {
        let out = run_kernels(tier);
        assert_eq!(out.status.code(), Some(0), "tier {tier}: {}", stderr(&out));
        assert_eq!(stdout(&out), expected, "tier {tier}");
    }
}

#[test]
fn the_kernels_bench_entry_agrees_between_tiers() {
    let statuses: Vec<Option<i32>> = ["0", "1", "adaptive"]
        .iter()
        .map(|tier| {
            let out = orc(&["run", "--tier", tier, "--entry", "bench"], &[kernels()]);
            assert!(stdout(&out).is_empty(), "tier {tier}: {}", stdout(&out));
            assert!(stderr(&out).is_empty(), "tier {tier}: {}", stderr(&out));
            out.status.code()
        })
        .collect();
    assert!(statuses[0].is_some());
    assert_eq!(statuses[0], statuses[1]);
    assert_eq!(statuses[0], statuses[2]);
}

/// Adaptive tiering runs CLIF like any frontend's code: with threshold 1
/// every function is promoted at once (on the program's own thread, so
/// deterministically), with the default some are, with 10^9 none; the
/// output is the same, and `--stats` shows the promotions.
#[test]
fn kernels_under_adaptive_tiering_promote_hot_functions_and_print_the_same() {
    let expected = std::fs::read_to_string(clif_dir().join("programs/kernels.out")).unwrap();
    for threshold in ["1", "10000", "1000000000"] {
        let out = orc(
            &[
                "run",
                "--tier",
                "adaptive",
                "--tier-threshold",
                threshold,
                "--tier-up-threads",
                "0",
                "--stats",
            ],
            &[kernels()],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "threshold {threshold}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), expected, "threshold {threshold}");
        let stats = stderr(&out);
        let promoted: usize = stats
            .lines()
            .find_map(|l| {
                let rest = l.split(" functions, ").nth(1)?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no promotion count in --stats:\n{stats}"));
        match threshold {
            "1000000000" => assert_eq!(promoted, 0, "{stats}"),
            // fib, sieve, dot, collatz_len, mandel_point... are hot.
            _ => assert!(promoted >= 4, "threshold {threshold}: {stats}"),
        }
        assert!(!stats.contains("stays in tier 0"), "{stats}");
    }
}

#[test]
fn adaptive_passes_every_run_test() {
    let files = run_test_files();
    for threshold in ["1", "1000000000"] {
        let out = orc(
            &["test", "--tier", "adaptive", "--tier-threshold", threshold],
            &files,
        );
        assert_eq!(
            tally(&out),
            (n_directives(&files), 0),
            "threshold {threshold}:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(out.status.code(), Some(0));
    }
}

const ADD: &str = "test run
function %add(i32, i32) -> i32 {
block0(v0: i32, v1: i32):
    v2 = iadd v0, v1
    return v2
}
; run: %add(1, 2) == 3
; run: %add(1, 1) == 3
; run: %add(2, 2) != 4
";

#[test]
fn a_failing_directive_is_reported_with_its_line() {
    let file = scratch_file("failing.clif", ADD);
    let name = file.display().to_string();
    for tier in ["0", "1"] {
        let out = orc(&["test", "--tier", tier], std::slice::from_ref(&file));
        let text = stdout(&out);
        assert_eq!(tally(&out), (1, 2), "{text}");
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text.contains(&format!(
                "{name}:8: run: %add(1, 1) == 3: got 2, expected 3\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{name}:9: run: %add(2, 2) != 4: got 4, expected anything but 4\n"
            )),
            "{text}"
        );
    }
}

#[test]
fn a_parse_error_names_file_and_line() {
    let file = scratch_file(
        "bad.clif",
        "function %f() -> i32 {\nblock0:\n    v0 = iconst.i32 1\n    v1 = bogus v0\n    return v1\n}\n",
    );
    let out = orc(&["test"], std::slice::from_ref(&file));
    assert_eq!(out.status.code(), Some(65));
    assert!(
        stderr(&out).contains(&format!("{}:4: parse error:", file.display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(tally(&out), (0, 0));
    let run = orc(&["run"], &[file]);
    assert_eq!(run.status.code(), Some(65));
    assert!(
        stderr(&run).contains(":4: parse error:"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn run_exits_with_the_entry_result() {
    let file = scratch_file(
        "exit.clif",
        "function %main() -> i32 system_v {\nblock0:\n    v0 = iconst.i32 7\n    return v0\n}\n\
         function %other() -> i64 {\nblock0:\n    v0 = iconst.i64 3\n    return v0\n}\n\
         function %takes(i64) {\nblock0(v0: i64):\n    return\n}\n",
    );
    assert_eq!(
        orc(&["run"], std::slice::from_ref(&file)).status.code(),
        Some(7)
    );
    let other = orc(&["run", "--entry", "other"], std::slice::from_ref(&file));
    assert_eq!(other.status.code(), Some(3));
    let missing = orc(&["run", "--entry", "nope"], std::slice::from_ref(&file));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no function nope"),
        "{}",
        stderr(&missing)
    );
    let takes = orc(&["run", "--entry", "takes"], &[file]);
    assert_eq!(takes.status.code(), Some(1));
    assert!(
        stderr(&takes).contains("expected 0 arguments, got 1"),
        "{}",
        stderr(&takes)
    );
}

#[test]
fn files_for_other_architectures_are_skipped() {
    let other = scratch_file(
        "aarch64_only.clif",
        "test run\ntarget aarch64\nfunction %f() -> i32 {\nblock0:\n    v0 = iconst.i32 1\n    return v0\n}\n; run: %f() == 2\n",
    );
    let out = orc(&["test"], &[other.clone(), clif_dir().join("int_div.clif")]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{}: skipped:", other.display())),
        "{text}"
    );
    let last = text.lines().last().unwrap_or_default();
    let n = n_directives(&[clif_dir().join("int_div.clif")]);
    assert_eq!(last, format!("{n} passed, 0 failed, 1 skipped"));
    assert_eq!(out.status.code(), Some(0));
}

/// Coverage is visible: under `--tier 1` a function the translation does
/// not cover fails its directives with the translator's error, which names
/// the instruction.
#[test]
fn under_tier_1_an_untranslatable_instruction_fails_by_name() {
    let file = scratch_file(
        "untranslatable.clif",
        "test run
function %div128(i64, i64) -> i64 tail {
block0(v0: i64, v1: i64):
    v2 = uextend.i128 v0
    v3 = uextend.i128 v1
    v4 = udiv v2, v3
    v5 = ireduce.i64 v4
    return v5
}
; run: %div128(7, 2) == 3

function %add(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = iadd v0, v1
    return v2
}
; run: %add(7, 2) == 9
",
    );
    let out = orc(&["test", "--tier", "1"], std::slice::from_ref(&file));
    let text = stdout(&out);
    assert_eq!(tally(&out), (1, 1), "{text}");
    let failure = text
        .lines()
        .find(|l| l.contains("div128"))
        .unwrap_or_default();
    assert!(failure.contains(":10:"), "{text}");
    assert!(failure.contains("udiv on i128"), "{text}");
    assert_eq!(out.status.code(), Some(1));
}

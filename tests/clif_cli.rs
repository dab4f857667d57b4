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

/// The file whose functions use tail calls, which Cranelift's x86-64
/// backend compiles only with `preserve_frame_pointers` (not set by orc's
/// tier-0 compiler).
const TAIL_CALLS: &str = "tail_calls.clif";

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
    let files: Vec<PathBuf> = run_test_files()
        .into_iter()
        .filter(|p| !p.ends_with(TAIL_CALLS))
        .collect();
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

#[test]
fn tier0_reports_tail_calls_it_cannot_compile() {
    let file = clif_dir().join(TAIL_CALLS);
    let out = orc(&["test", "--tier", "0"], std::slice::from_ref(&file));
    let text = stdout(&out);
    let n = n_directives(std::slice::from_ref(&file));
    assert_eq!(tally(&out), (0, n), "{text}");
    assert_eq!(out.status.code(), Some(1));
    assert!(!text.contains(": got "), "a wrong result:\n{text}");
    assert!(
        text.contains("return_call needs preserve_frame_pointers"),
        "{text}"
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn tier1_never_gives_a_wrong_result() {
    let files = run_test_files();
    let out = orc(&["test", "--tier", "1"], &files);
    let text = stdout(&out);
    let (passed, failed) = tally(&out);
    assert_eq!(passed + failed, n_directives(&files), "{text}");
    assert!(passed > 0, "{text}");
    for line in text.lines().filter(|l| l.contains(".clif:")) {
        assert!(
            line.contains("cannot translate"),
            "tier 1 failed other than with a translation error:\n{line}"
        );
    }
    assert_eq!(out.status.code(), Some(if failed == 0 { 0 } else { 1 }));
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

// ADAPTIVE-CLIF: replace with the expected output once `--tier adaptive`
// runs CLIF programs.
#[test]
fn adaptive_is_refused_cleanly_until_wired() {
    let out = run_kernels("adaptive");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("--tier adaptive is not yet supported for CLIF programs"),
        "{}",
        stderr(&out)
    );
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

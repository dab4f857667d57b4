//! The programs of LLVM's Kaleidoscope tutorial (chapters 2-7), as its
//! chapters write them, under `tests/programs/tutorial/`: `NAME.kal` must
//! print exactly `NAME.out` (with `--print-results`, the tutorial REPL's
//! `Evaluated to %f` lines) through `orc run` in every tier, and through
//! `orc repl` (the tutorial's own driver: one item at a time) too.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tutorial_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/tutorial")
}

fn programs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(tutorial_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "kal"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "the tutorial programs are missing");
    files
}

fn expected(kal: &Path) -> String {
    std::fs::read_to_string(kal.with_extension("out"))
        .unwrap_or_else(|e| panic!("{} has no .out file: {e}", kal.display()))
}

fn orc(args: &[&str], stdin: Option<&str>) -> Output {
    orc_test_support::run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_orc")).args(args),
        stdin.unwrap_or(""),
    )
}

fn check(failures: &mut Vec<String>, what: String, out: &Output, expected: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || stdout != expected {
        failures.push(format!(
            "{what}: status {:?}\n--- stdout\n{stdout}--- expected\n{expected}--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

#[test]
fn every_chapter_program_runs_in_every_tier() {
    let mut failures = Vec::new();
    for kal in programs() {
        let expected = expected(&kal);
        for tier in ["0", "1", "adaptive"] {
            let path = kal.to_str().unwrap();
            let out = orc(&["run", "--print-results", "--tier", tier, path], None);
            check(
                &mut failures,
                format!("{path} --tier {tier}"),
                &out,
                &expected,
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() && !stderr.is_empty() {
                failures.push(format!("{path} --tier {tier}: stderr: {stderr}"));
            }
        }
        // Adaptive with every function promoted at once: tier 1 code and
        // on-stack replacement run the chapters too.
        let path = kal.to_str().unwrap();
        let args = [
            "run",
            "--print-results",
            "--tier",
            "adaptive",
            "--tier-threshold",
            "1",
            path,
        ];
        check(
            &mut failures,
            format!("{path} {args:?}"),
            &orc(&args, None),
            &expected,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_chapter_program_runs_in_the_repl() {
    let mut failures = Vec::new();
    for kal in programs() {
        let source = std::fs::read_to_string(&kal).unwrap();
        let out = orc(&["repl"], Some(&source));
        check(
            &mut failures,
            format!("repl < {}", kal.display()),
            &out,
            &expected(&kal),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("error") {
            failures.push(format!("repl < {}: {stderr}", kal.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Chapter 4's REPL session that redefines `foo`: each expression sees the
/// definition in effect when it runs.
#[test]
fn chapter4_redefinition_session_in_the_repl() {
    let session = "def foo(x) x + 1;\nfoo(2);\ndef foo(x) x + 2;\nfoo(2);\n";
    for tier in ["0", "1", "adaptive"] {
        let out = orc(&["repl", "--tier", tier], Some(session));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Evaluated to 3.000000\nEvaluated to 4.000000\n",
            "--tier {tier}"
        );
    }
}

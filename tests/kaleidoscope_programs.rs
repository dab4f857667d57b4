//! Every shared Kaleidoscope program through the `orc` binary: `NAME.kal`
//! must print exactly `NAME.out` in every mode, and `errors/NAME.kal` must
//! fail as `NAME.err` says. The tests walk the folders, so new files join
//! by themselves.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/kaleidoscope")
}

fn orc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orc"))
        .args(args)
        .output()
        .expect("run orc")
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{ext} files in {}", dir.display());
    files
}

/// The modes every program must agree under.
const MODES: &[&[&str]] = &[
    &["--tier", "0"],
    &["--tier", "0", "--eager"],
    &["--tier", "0", "--compile-threads", "2"],
    &["--tier", "0", "--opt-level", "none"],
    &["--tier", "1"],
    &["--tier", "1", "--eager"],
    &["--tier", "1", "--llvm-opt-level", "O0"],
    &["--tier", "adaptive"],
    &["--tier", "adaptive", "--tier-threshold", "1"],
    &["--tier", "adaptive", "--tier-threshold", "1000000000"],
    &["--tier", "adaptive", "--tier-threshold", "1", "--eager"],
    // Out of process: every lazy compile and tier-up trip is a call back
    // from the executor to the controller.
    &["--oop", "--tier", "0"],
    &["--oop", "--tier", "1"],
    &["--oop", "--tier", "adaptive", "--tier-threshold", "1"],
];

#[test]
fn every_program_prints_its_expected_output_in_every_mode() {
    let mut failures = Vec::new();
    for kal in files_with_ext(&programs_dir(), "kal") {
        let expected = std::fs::read_to_string(kal.with_extension("out"))
            .unwrap_or_else(|e| panic!("{} has no .out file: {e}", kal.display()));
        for mode in MODES {
            let mut args = vec!["run", "--print-results"];
            args.extend_from_slice(mode);
            let path = kal.to_str().unwrap();
            args.push(path);
            let out = orc(&args);
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || stdout != expected {
                failures.push(format!(
                    "{} {:?}: status {:?}\n--- stdout\n{stdout}--- expected\n{expected}--- stderr\n{}",
                    kal.display(),
                    mode,
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_error_program_fails_with_its_diagnostic() {
    let mut failures = Vec::new();
    for kal in files_with_ext(&programs_dir().join("errors"), "kal") {
        let expected = std::fs::read_to_string(kal.with_extension("err")).unwrap();
        let expected = expected.trim();
        let out = orc(&["run", "--print-results", kal.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = out.status.code() == Some(1) && out.stdout.is_empty() && stderr.contains(expected);
        if !ok {
            failures.push(format!(
                "{}: status {:?}, stderr {stderr:?}, expected {expected:?}",
                kal.display(),
                out.status.code()
            ));
        }
        // The message starts with the file name, as `FILE:LINE:COL: error:`.
        if !stderr.starts_with(kal.to_str().unwrap()) {
            failures.push(format!(
                "{}: diagnostic does not start with the path: {stderr:?}",
                kal.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unreadable_files_and_bad_flags_are_clear_errors() {
    let out = orc(&["run", "/nonexistent/prog.kal"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read '/nonexistent/prog.kal'"));
    let out = orc(&["run", "--tier", "7", "x.kal"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown tier '7'"));
}

fn repl(input: &str, extra: &[&str]) -> (String, String) {
    let out = orc_test_support::run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_orc"))
            .arg("repl")
            .args(extra),
        input,
    );
    assert!(out.status.success(), "repl exited with {:?}", out.status);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn repl_redefinition_reaches_existing_callers() {
    for mode in [
        &[][..],
        &["--eager"][..],
        &["--tier", "1"][..],
        &["--tier", "adaptive", "--tier-threshold", "1"][..],
    ] {
        let (stdout, stderr) = repl(
            "def f(x) x + 1;\ndef g(x) f(x) * 2;\ng(1);\ndef f(x) x + 10;\ng(1);\n",
            mode,
        );
        assert_eq!(
            stdout, "Evaluated to 4.000000\nEvaluated to 22.000000\n",
            "{mode:?}"
        );
        assert!(stderr.contains("ready> "), "the prompt goes to stderr");
    }
}

#[test]
fn repl_reports_errors_and_goes_on() {
    let (stdout, stderr) = repl(
        "1 +;\nfoo(2);\ndef sq(x) x * x;\nsq(3);\nsq(1, 2);\nextern sin(x);\nsin(0);\n",
        &[],
    );
    assert_eq!(stdout, "Evaluated to 9.000000\nEvaluated to 0.000000\n");
    assert!(stderr.contains("<stdin>:1:"), "{stderr}");
    assert!(stderr.contains("<stdin>:2:1: error"), "{stderr}");
    assert!(stderr.contains("<stdin>:5:1: error"), "{stderr}");
}

#[test]
fn dump_and_stats_go_to_stderr() {
    let prog = programs_dir().join("recursion.kal");
    let out = orc(&["run", "--dump", "clif", "--stats", prog.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("; CLIF of "), "{stderr}");
    assert!(
        stderr.contains("function ") && stderr.contains("compile (us)"),
        "{stderr}"
    );
    assert!(stderr.contains("bytes of code"), "{stderr}");
    // stdout carries only the program's own output.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("CLIF"));
}

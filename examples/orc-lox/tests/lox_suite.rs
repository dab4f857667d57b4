//! The Lox test suite: every `tests/lox/**/*.lox` program runs through the
//! `lox` binary, normally and with `LOX_GC_STRESS=1`, and its stdout,
//! stderr and exit code are checked against the expectations written in
//! its comments, as the book's test runner reads them:
//!
//! - `// expect: OUTPUT`: the next line of stdout;
//! - `// expect runtime error: MESSAGE`: stderr starts with MESSAGE and
//!   `[line N]` (the comment's line); exit code 70;
//! - `// Error at 'x': MESSAGE` (or `// Error: ...`, `// Error at end: ...`):
//!   the compile error `[line N] Error at 'x': MESSAGE` for the comment's
//!   line; `// [line N] Error...`: that error verbatim; exit code 65.
//!
//! When `CLOX` names a clox binary, every program also runs through it and
//! the two must agree byte for byte (stdout, stderr, exit code).
//!
//! Every check runs under every tier (`--tier interp|0|1|adaptive`); the
//! adaptive runs use thresholds of 1 (VM) and 20 (orc's tier-0 counter),
//! so functions and loops are compiled at once and hot ones reach LLVM.
//! `LOX_JIT_DEBUG=1` makes a function the JIT cannot compile print a line
//! on stderr, which fails the check: every function must compile.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const LOX: &str = env!("CARGO_BIN_EXE_lox");

#[derive(Debug, Default)]
struct Expected {
    output: Vec<String>,
    compile_errors: Vec<String>,
    runtime_error: Option<(String, usize)>,
}

fn parse_expectations(source: &str) -> Expected {
    let mut e = Expected::default();
    for (i, line) in source.lines().enumerate() {
        let line_no = i + 1;
        let Some(pos) = line.find("// ") else {
            continue;
        };
        let comment = &line[pos + 3..];
        if let Some(rest) = comment.strip_prefix("expect: ") {
            e.output.push(rest.to_string());
        } else if comment == "expect:" {
            e.output.push(String::new());
        } else if let Some(rest) = comment.strip_prefix("expect runtime error: ") {
            e.runtime_error = Some((rest.to_string(), line_no));
        } else if comment.starts_with("Error") {
            e.compile_errors.push(format!("[line {line_no}] {comment}"));
        } else if comment.starts_with("[line ") && comment.contains("] Error") {
            e.compile_errors.push(comment.to_string());
        }
    }
    e
}

const TIERS: [&str; 4] = ["interp", "0", "1", "adaptive"];

fn run(binary: &str, path: &Path, stress: bool) -> Output {
    run_tier(binary, path, stress, None)
}

fn run_tier(binary: &str, path: &Path, stress: bool, tier: Option<&str>) -> Output {
    let mut cmd = Command::new(binary);
    if let Some(tier) = tier {
        cmd.args(["--tier", tier])
            .env("LOX_JIT_THRESHOLD", "1")
            .env("LOX_TIER1_THRESHOLD", "20")
            .env("LOX_JIT_DEBUG", "1");
    }
    cmd.arg(path).stdin(Stdio::null());
    if stress {
        cmd.env("LOX_GC_STRESS", "1");
    } else {
        cmd.env_remove("LOX_GC_STRESS");
    }
    cmd.output().expect("run the interpreter")
}

/// Checks one run against the expectations; returns the failures.
fn check(path: &Path, expected: &Expected, out: &Output) -> Vec<String> {
    let mut failures = Vec::new();
    let name = path.display();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let got: Vec<&str> = stdout.lines().collect();
    if got != expected.output {
        failures.push(format!(
            "{name}: stdout\n  expected {:?}\n  got      {:?}",
            expected.output, got
        ));
    }
    let err_lines: Vec<&str> = stderr.lines().collect();
    let code = out.status.code();
    if !expected.compile_errors.is_empty() {
        if err_lines != expected.compile_errors {
            failures.push(format!(
                "{name}: compile errors\n  expected {:?}\n  got      {:?}",
                expected.compile_errors, err_lines
            ));
        }
        if code != Some(65) {
            failures.push(format!("{name}: exit code {code:?}, expected 65"));
        }
    } else if let Some((message, line)) = &expected.runtime_error {
        let trace = format!("[line {line}]");
        if err_lines.first() != Some(&message.as_str())
            || !err_lines.get(1).is_some_and(|l| l.starts_with(&trace))
        {
            failures.push(format!(
                "{name}: runtime error\n  expected {message:?} at {trace}\n  got      {err_lines:?}"
            ));
        }
        if code != Some(70) {
            failures.push(format!("{name}: exit code {code:?}, expected 70"));
        }
    } else {
        if !err_lines.is_empty() {
            failures.push(format!("{name}: unexpected stderr {err_lines:?}"));
        }
        if code != Some(0) {
            failures.push(format!("{name}: exit code {code:?}, expected 0"));
        }
    }
    failures
}

fn lox_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read the test directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "lox") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lox"),
        &mut files,
    );
    files.sort();
    files
}

fn run_suite(stress: bool, tier: &str) {
    let files = lox_files();
    assert!(files.len() >= 60, "the suite has {} programs", files.len());
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &files {
        let source = std::fs::read_to_string(path).expect("read a test program");
        let expected = parse_expectations(&source);
        let out = run_tier(LOX, path, stress, Some(tier));
        failures.extend(
            check(path, &expected, &out)
                .into_iter()
                .map(|f| format!("[--tier {tier}] {f}")),
        );
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} programs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn suite_interp() {
    run_suite(false, "interp");
}

#[test]
fn suite_tier0() {
    run_suite(false, "0");
}

#[test]
fn suite_tier1() {
    run_suite(false, "1");
}

#[test]
fn suite_adaptive() {
    run_suite(false, "adaptive");
}

#[test]
fn suite_gc_stress_interp() {
    run_suite(true, "interp");
}

#[test]
fn suite_gc_stress_tier0() {
    run_suite(true, "0");
}

#[test]
fn suite_gc_stress_tier1() {
    run_suite(true, "1");
}

#[test]
fn suite_gc_stress_adaptive() {
    run_suite(true, "adaptive");
}

#[test]
fn expectations_are_read_as_the_book_writes_them() {
    let e = parse_expectations(
        "print 1; // expect: 1\nprint \"\"; // expect: \nx; // Error at 'x': Bad.\n// [line 9] Error: Odd.\nf(); // expect runtime error: Boom.\n",
    );
    assert_eq!(e.output, vec!["1".to_string(), String::new()]);
    assert_eq!(
        e.compile_errors,
        vec![
            "[line 3] Error at 'x': Bad.".to_string(),
            "[line 9] Error: Odd.".to_string()
        ]
    );
    assert_eq!(e.runtime_error, Some(("Boom.".to_string(), 5)));
}

/// Every program through clox too, when `CLOX` names a clox binary: the
/// two must agree exactly.
#[test]
fn differential_against_clox() {
    let Ok(clox) = std::env::var("CLOX") else {
        eprintln!("note: CLOX is not set; skipping the differential check against clox");
        return;
    };
    let mut failures = Vec::new();
    for (path, tier) in lox_files()
        .into_iter()
        .flat_map(|p| TIERS.map(|t| (p.clone(), t)))
    {
        let ours = run_tier(LOX, &path, false, Some(tier));
        let theirs = run(&clox, &path, false);
        if ours.stdout != theirs.stdout
            || ours.stderr != theirs.stderr
            || ours.status.code() != theirs.status.code()
        {
            failures.push(format!(
                "{} (--tier {tier}):\n  lox:  {:?} {:?} {:?}\n  clox: {:?} {:?} {:?}",
                path.display(),
                ours.status.code(),
                String::from_utf8_lossy(&ours.stdout),
                String::from_utf8_lossy(&ours.stderr),
                theirs.status.code(),
                String::from_utf8_lossy(&theirs.stdout),
                String::from_utf8_lossy(&theirs.stderr),
            ));
        }
    }
    assert!(failures.is_empty(), "differences:\n{}", failures.join("\n"));
}

#[test]
fn runtime_errors_print_the_whole_stack() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lox/functions/stack_trace.lox");
    for tier in TIERS {
        let out = run_tier(LOX, &path, false, Some(tier));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "Operands must be two numbers or two strings.\n[line 2] in inner()\n[line 5] in outer()\n[line 7] in script\n",
            "--tier {tier}"
        );
        assert_eq!(out.status.code(), Some(70), "--tier {tier}");
    }
}

fn run_with_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(LOX)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lox");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for lox")
}

#[test]
fn repl_keeps_globals_and_survives_errors() {
    let out = run_with_stdin(
        &[],
        "var a = 1;\nprint a + 1;\nprint nope;\nprint a;\nvar = ;\nfun f() { return a * 10; }\nprint f();\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "> > 2\n> > 1\n> > > 10\n> \n"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Undefined variable 'nope'.\n[line 1] in script\n[line 1] Error at '=': Expect variable name.\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn usage_and_tiers() {
    let out = run_with_stdin(&["a.lox", "b.lox"], "");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: lox"));

    let out = run_with_stdin(&["--tier", "fast"], "");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tier must be one of"));

    // Every tier runs the REPL, whose lines define and call functions.
    for tier in ["interp", "0", "1", "adaptive"] {
        let out = run_with_stdin(
            &["--tier", tier],
            "fun f(x) { return x * 2; }\nprint f(21);\nfun g() { return f(1) + nope; }\nprint g();\nprint f(2);\n",
        );
        assert_eq!(out.status.code(), Some(0), "tier {tier}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "> > 42\n> > > 4\n> \n",
            "tier {tier}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "Undefined variable 'nope'.\n[line 1] in g()\n[line 1] in script\n",
            "tier {tier}"
        );
    }

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lox/functions/basic.lox");
    let out = Command::new(LOX)
        .args(["--tier", "interp"])
        .arg(&path)
        .output()
        .expect("run lox");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("3\nnil\n"));

    let out = run_with_stdin(&["/nonexistent/file.lox"], "");
    assert_eq!(out.status.code(), Some(74));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Could not open file \"/nonexistent/file.lox\".\n"
    );
}

#[test]
fn dump_lists_the_bytecode_of_every_function() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lox/closures/counter.lox");
    let out = Command::new(LOX)
        .arg("--dump")
        .arg(&path)
        .output()
        .expect("run lox");
    assert_eq!(out.status.code(), Some(0));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.starts_with("== <script> =="), "{listing}");
    assert!(listing.contains("== makeCounter == (arity 0, upvalues 0, max_slots 4)"));
    assert!(listing.contains("== count == (arity 0, upvalues 1, max_slots 3)"));
    assert!(listing.contains("OP_GET_UPVALUE      0"));
    assert!(listing.contains("local 1"));
    // Nothing ran.
    assert!(!listing.contains("\n1\n"));

    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lox/errors/multiple.lox");
    let out = Command::new(LOX)
        .arg("--dump")
        .arg(&bad)
        .output()
        .expect("run lox");
    assert_eq!(out.status.code(), Some(65));
}

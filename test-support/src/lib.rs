//! Test helpers that orc's crates share (a dev-dependency of each): the
//! scaffolding of tests that compile C and C++ at test time and run
//! programs as processes. What a test checks stays in the test; how it
//! gets a scratch directory, runs a tool with a useful failure message,
//! builds a program natively and as LLVM IR, or feeds a process its
//! standard input lives here once.
//!
//! ```
//! use std::process::Command;
//! use orc_test_support::{check, describe, run, scratch};
//!
//! let dir = scratch("doc-example");
//! check(Command::new("sh").arg("-c").arg("echo hi > out.txt").current_dir(&dir));
//! let out = run(Command::new("cat").arg(dir.join("out.txt")));
//! assert_eq!(describe(&out), (Some(0), "hi\n".to_string()));
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh scratch directory for one test, under the system's temporary
/// directory, unique to this process and call: `orc-TAG-PID-N`.
pub fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("orc-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Runs `cmd` to completion; a command that cannot start fails the test
/// naming it (a missing tool says which).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd`, which must succeed; fails the test with its stderr
/// otherwise. Returns its output.
pub fn check(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    out
}

/// Runs `cmd` with `stdin` as its standard input, capturing its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(mut input) = child.stdin.take() {
        // A process that exits without reading all of it is not an error
        // of the test's making.
        let _ = input.write_all(stdin.as_bytes());
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Bytes of a process's output as text (lossy).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a test compares between two runs of a program: the exit status
/// and standard output.
pub fn describe(out: &Output) -> (Option<i32>, String) {
    (out.status.code(), text(&out.stdout))
}

/// Whether `source` is C++ (by extension: `.cpp`, `.cc`, `.cxx`).
pub fn is_cxx(source: &Path) -> bool {
    matches!(
        source.extension().and_then(|e| e.to_str()),
        Some("cpp" | "cc" | "cxx")
    )
}

/// clang-19 or clang++-19 for `source`.
pub fn clang_for(source: &Path) -> &'static str {
    if is_cxx(source) {
        "clang++-19"
    } else {
        "clang-19"
    }
}

/// A program compiled at test time, natively and to LLVM IR, from the
/// same sources with the same flags.
#[derive(Clone, Debug)]
pub struct Program {
    /// The LLVM IR (`.ll` text or `.bc` bitcode, joined with
    /// `llvm-link-19` when there are several sources).
    pub ir: PathBuf,
    /// The native executable.
    pub native: PathBuf,
}

/// Compiles `sources` with clang-19 (clang++-19 for C++, by the first
/// source) and `flags` into `dir`: to IR named `NAME.EXT` (`ext` is `ll`
/// or `bc`) and to the executable `NAME`, linked with `-lpthread -lm` and
/// `native_libs` (`-lNAME` each).
pub fn build_program(
    dir: &Path,
    name: &str,
    sources: &[PathBuf],
    flags: &[&str],
    ext: &str,
    native_libs: &[&str],
) -> Program {
    assert!(!sources.is_empty(), "build_program: no sources");
    let mut irs = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("src");
        let ll = dir.join(format!("{stem}.{i}.ll"));
        check(
            Command::new(clang_for(src))
                .args(flags)
                .args(["-S", "-emit-llvm", "-o"])
                .arg(&ll)
                .arg(src),
        );
        irs.push(ll);
    }
    let ir = dir.join(format!("{name}.{ext}"));
    let mut link = Command::new("llvm-link-19");
    if ext == "ll" {
        link.arg("-S");
    }
    check(link.args(&irs).arg("-o").arg(&ir));
    let native = dir.join(name);
    check(
        Command::new(clang_for(&sources[0]))
            .args(flags)
            .arg("-o")
            .arg(&native)
            .args(sources)
            .args(["-lpthread", "-lm"])
            .args(native_libs.iter().map(|l| format!("-l{l}"))),
    );
    Program { ir, native }
}

/// Writes `source` to `dir/NAME.c` (`.cpp` with `cxx`) and builds it with
/// [`build_program`] (`.ll` IR).
pub fn build_source(dir: &Path, name: &str, source: &str, cxx: bool, flags: &[&str]) -> Program {
    let file = dir.join(format!("{name}.{}", if cxx { "cpp" } else { "c" }));
    std::fs::write(&file, source).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    build_program(dir, name, &[file], flags, "ll", &[])
}

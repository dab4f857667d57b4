//! Shared by the `orc link` tests that compare against native programs
//! (`link_tls.rs`, `link_far_data.rs`): compile C/C++ sources with a
//! given compiler and flags, link them natively and under `orc link`, and
//! compare standard output and exit status (on the scaffolding of
//! `orc-test-support`).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const ORC: &str = env!("CARGO_BIN_EXE_orc");

/// A fresh, empty directory for one test case's files.
pub fn work_dir(group: &str, name: &str) -> PathBuf {
    orc_test_support::scratch(&format!("{group}-{name}"))
}

/// Runs a build tool in `dir`; a missing tool or a failure fails the test
/// with the reason.
pub fn tool(dir: &Path, program: &str, args: &[&str]) {
    orc_test_support::check(Command::new(program).args(args).current_dir(dir));
}

/// What a program run printed and how it exited.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub status: i32,
}

/// Runs `program` in `dir`; returns its outcome and stderr.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> (Outcome, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(status) = out.status.code() else {
        panic!(
            "{program} {args:?} was killed ({}); stderr:\n{stderr}",
            out.status
        );
    };
    assert!(
        !stderr.contains("panicked"),
        "{program} {args:?} panicked:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (Outcome { stdout, status }, stderr)
}

/// Compiles each of `sources` (paths) with `compiler` and the flags of
/// `flags_of(source)` into `dir`, links them natively (`-no-pie`, with
/// `libs`) and under `orc link`, runs both with `args`, and asserts the
/// same stdout and status. Returns the native outcome.
pub fn same_as_native(
    dir: &Path,
    compiler: &str,
    sources: &[PathBuf],
    flags_of: &dyn Fn(&Path) -> Vec<&'static str>,
    libs: &[&str],
    args: &[&str],
) -> Outcome {
    let mut objects = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let object = format!("{i}.o");
        let mut cmd = vec!["-c", "-g0", "-Wall"];
        let flags = flags_of(src);
        cmd.extend(flags.iter().copied());
        cmd.extend([src.to_str().unwrap(), "-o", &object]);
        tool(dir, compiler, &cmd);
        objects.push(object);
    }
    let mut link: Vec<&str> = objects.iter().map(String::as_str).collect();
    link.extend(["-no-pie", "-o", "native", "-lpthread"]);
    tool(dir, compiler, &link);
    let (native, _) = run(dir, "./native", args);
    let mut orc_args: Vec<String> = vec!["link".into()];
    orc_args.extend(objects.iter().cloned());
    orc_args.extend(libs.iter().map(|l| l.to_string()));
    orc_args.push("--".into());
    orc_args.extend(args.iter().map(|a| a.to_string()));
    let orc_args: Vec<&str> = orc_args.iter().map(String::as_str).collect();
    let (jit, stderr) = run(dir, ORC, &orc_args);
    assert_eq!(
        jit,
        native,
        "{compiler} {:?} {}: orc link differs from the native program; stderr:\n{stderr}",
        sources.first().map(|s| flags_of(s)),
        dir.display()
    );
    native
}

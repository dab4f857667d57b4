//! `orc run` on IR that passes the verifier but that LLVM's code generator
//! gives up on with a fatal error ("Cannot select"): the failure is an error
//! for the unit that holds the function, never an abort of the process.
//! Lazily, the program runs until it first calls the function, which then
//! fails like any lazy compile (stderr names the function and the cause,
//! exit status 70); a run that never calls it is unaffected (lazy mode
//! tries to compile it along with `main`, which calls it, then compiles
//! `main` alone). Eagerly, the
//! whole module is one unit: a clear error and exit status 1 before `main`.

use std::path::PathBuf;
use std::process::Output;

/// `main` calls `good` and prints its result, then calls `bad` (an AArch64
/// intrinsic x86 cannot select) when given an argument.
const PROGRAM: &str = r#"
@.fmt = private unnamed_addr constant [10 x i8] c"good: %d\0A\00"

declare i32 @printf(ptr, ...)
declare i32 @llvm.aarch64.crc32b(i32, i32)

define i32 @good(i32 %x) {
  %r = mul i32 %x, 3
  ret i32 %r
}

define i32 @bad(i32 %a, i32 %b) {
  %r = call i32 @llvm.aarch64.crc32b(i32 %a, i32 %b)
  ret i32 %r
}

define i32 @main(i32 %argc, ptr %argv) {
entry:
  %g = call i32 @good(i32 14)
  %n = call i32 (ptr, ...) @printf(ptr @.fmt, i32 %g)
  %call_bad = icmp sgt i32 %argc, 1
  br i1 %call_bad, label %bad, label %done
bad:
  %b = call i32 @bad(i32 1, i32 2)
  ret i32 %b
done:
  ret i32 0
}
"#;

fn program_file(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orc-ir-fail-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cannot_select.ll");
    std::fs::write(&file, PROGRAM).unwrap();
    file
}

fn orc_run(options: &[&str], file: &PathBuf, args: &[&str]) -> Output {
    // Tier 1: these are LLVM's failures (tier 0 compiles the same code).
    std::process::Command::new(env!("CARGO_BIN_EXE_orc"))
        .env_remove("ORC_TIER")
        .args(["run", "--tier", "1"])
        .args(options)
        .arg(file)
        .arg("--")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn lazy_backend_failure_exits_70_naming_the_function_after_earlier_output() {
    let file = program_file("lazy");
    let out = orc_run(&[], &file, &["call-bad"]);
    let stderr = text(&out.stderr);
    // An exit status, not a signal: the process ended on purpose.
    assert_eq!(out.status.code(), Some(70), "{stderr}");
    assert_eq!(text(&out.stdout), "good: 42\n");
    assert!(
        stderr.contains("lazy compile of 'bad$t1' failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("llvm fatal error while generating code for function 'bad$t1'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Cannot select: intrinsic %llvm.aarch64.crc32b"),
        "{stderr}"
    );
    assert!(!stderr.contains("PLEASE submit a bug report"), "{stderr}");
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[test]
fn lazy_run_that_never_calls_the_failing_function_is_unaffected() {
    let file = program_file("uncalled");
    for options in [&[][..], &["--compile-threads", "2"][..]] {
        let out = orc_run(options, &file, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "good: 42\n");
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[test]
fn eager_backend_failure_is_an_error_exit_1_before_main() {
    let file = program_file("eager");
    let out = orc_run(&["--eager"], &file, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "main never ran");
    assert!(
        stderr.starts_with(&format!(
            "orc: error: {}: llvm fatal error while generating code for module",
            file.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("Cannot select: intrinsic %llvm.aarch64.crc32b"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

//! The command line against a user's shared library, as a new user tries
//! it: `orc link main.o libfoo.so` with a bare file name, `orc run -L DIR
//! -l NAME` and `orc run --load LIB` for IR, and what a missing symbol does
//! lazily and eagerly (one message naming it, the same exit status).

use std::path::Path;
use std::process::{Command, Output};

use orc_test_support::{check, run, scratch};

/// Writes the library `libfoo.so` (`foo(x) = 3x`) and a program calling it
/// (`main.o`, `main.ll`) into `dir`.
fn build(dir: &Path) {
    std::fs::write(dir.join("foo.c"), "int foo(int x) { return x * 3; }\n").unwrap();
    std::fs::write(
        dir.join("main.c"),
        "#include <stdio.h>\nint foo(int);\nint main(void) { printf(\"%d\\n\", foo(14)); return 5; }\n",
    )
    .unwrap();
    check(Command::new("gcc").current_dir(dir).args([
        "-shared",
        "-fPIC",
        "-o",
        "libfoo.so",
        "foo.c",
    ]));
    check(
        Command::new("gcc")
            .current_dir(dir)
            .args(["-c", "-o", "main.o", "main.c"]),
    );
    check(Command::new("clang-19").current_dir(dir).args([
        "-O1",
        "-S",
        "-emit-llvm",
        "-o",
        "main.ll",
        "main.c",
    ]));
}

fn orc(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orc"));
    cmd.current_dir(dir).env_remove("ORC_TIER");
    cmd
}

fn assert_ran(out: &Output, what: &str) {
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(5), "42\n"),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_library_is_found_by_bare_name_by_directory_and_by_path() {
    let dir = scratch("found");
    build(&dir);
    let out = run(orc(&dir).args(["link", "main.o", "libfoo.so"]));
    assert_ran(&out, "orc link main.o libfoo.so");
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::rename(dir.join("libfoo.so"), dir.join("lib/libfoo.so")).unwrap();
    let out = run(orc(&dir).args(["run", "-L", "lib", "-l", "foo", "main.ll"]));
    assert_ran(&out, "orc run -L lib -l foo");
    let out = run(orc(&dir).args(["run", "--load", "lib/libfoo.so", "main.ll"]));
    assert_ran(&out, "orc run --load lib/libfoo.so");
    let out = run(orc(&dir).args(["run", "--load", "nowhere/libfoo.so", "main.ll"]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--load nowhere/libfoo.so: no such file"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_symbol_is_reported_once_with_one_status_lazy_or_eager() {
    let dir = scratch("missing");
    build(&dir);
    let mut statuses = Vec::new();
    for eager in [false, true] {
        let mut cmd = orc(&dir);
        cmd.args(["run", "--tier", "1"]);
        if eager {
            cmd.arg("--eager");
        }
        let out = run(cmd.arg("main.ll"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.stdout.is_empty(), "eager {eager}");
        assert_eq!(
            stderr.matches("undefined symbol foo").count(),
            1,
            "eager {eager}: {stderr}"
        );
        assert!(
            !stderr.contains("no main function"),
            "eager {eager}: {stderr}"
        );
        statuses.push(out.status.code());
    }
    assert_eq!(statuses, [Some(70), Some(70)]);
    let _ = std::fs::remove_dir_all(&dir);
}

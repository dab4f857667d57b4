//! `orc run -` reads the program from standard input, telling
//! Kaleidoscope, LLVM IR and CLIF apart by their content, and names it
//! `<stdin>` in diagnostics.

use std::process::{Command, Output};

use orc_test_support::run_with_stdin;

fn run_stdin(args: &[&str], program: &str) -> Output {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_orc"))
            .arg("run")
            .args(args)
            .arg("-")
            .env_remove("ORC_TIER"),
        program,
    )
}

#[test]
fn kaleidoscope_ir_and_clif_run_from_standard_input() {
    let out = run_stdin(&[], "extern printd(x);\ndef f(x) x * 2;\nprintd(f(21));\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42.000000\n");
    assert_eq!(out.status.code(), Some(0));

    let out = run_stdin(&["--tier", "1"], "define i32 @main() {\n  ret i32 7\n}\n");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let clif = "function %main() -> i32 system_v {\nblock0:\n  v0 = iconst.i32 5\n  return v0\n}\n";
    for tier in ["0", "1", "adaptive"] {
        let out = run_stdin(&["--tier", tier], clif);
        assert_eq!(out.status.code(), Some(5), "tier {tier}");
    }
}

#[test]
fn errors_in_a_program_from_standard_input_name_stdin() {
    let out = run_stdin(&[], "def f(x) y;\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("<stdin>:1:10: error: unknown variable 'y'"),
        "{stderr}"
    );
}

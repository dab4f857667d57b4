//! The `orc` tool and traps: `orc run` reports a trap (stdout flushed,
//! exit status 70) instead of dying of a signal, and `orc repl` reports it
//! and goes on.

use std::path::PathBuf;
use std::process::{Command, Output};

use orc_test_support::text;

fn file(test: &str, name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orc-embed-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn orc(args: &[&str], path: Option<&PathBuf>, stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orc"));
    cmd.args(args);
    if let Some(p) = path {
        cmd.arg(p);
    }
    orc_test_support::run_with_stdin(&mut cmd, stdin)
}

const CLIF: &str = "function %div(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = sdiv v0, v1
    return v2
}

function %main() -> i64 {
    fn0 = %div(i64, i64) -> i64
block0:
    v0 = iconst.i64 7
    v1 = iconst.i64 0
    v2 = call fn0(v0, v1)
    return v2
}
";

#[test]
fn orc_run_clif_reports_a_trap_and_exits_70() {
    let path = file("clif", "trap.clif", CLIF);
    for tier in ["0", "1", "adaptive"] {
        let out = orc(&["run", "--tier", tier], Some(&path), "");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(70), "tier {tier}: {stderr}");
        assert!(
            stderr.contains("trap in JIT'd function 'div'")
                && stderr.contains("integer division by zero"),
            "tier {tier}: {stderr}"
        );
    }
}

#[test]
fn orc_run_kaleidoscope_stack_overflow_flushes_stdout_and_exits_70() {
    let path = file(
        "kal",
        "overflow.kal",
        "extern putchard(x);\ndef f(x) 1 + f(x);\nputchard(65);\nputchard(10);\nf(1);\n",
    );
    for tier in ["0", "1"] {
        let out = orc(&["run", "--tier", tier], Some(&path), "");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(70), "tier {tier}: {stderr}");
        assert_eq!(text(&out.stdout), "A\n", "tier {tier}: {stderr}");
        // Reported once, at the top-level expression that overflowed.
        assert!(
            stderr.contains("overflow.kal:5:1: error: stack overflow")
                && stderr.matches("stack overflow").count() == 1,
            "tier {tier}: {stderr}"
        );
    }
}

#[test]
fn orc_repl_reports_traps_and_goes_on() {
    let input = "def f(x) 1 + f(x);\nf(1);\n2 + 2;\nf(2);\n3;\n";
    let out = orc(&["repl"], None, input);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        text(&out.stdout),
        "Evaluated to 4.000000\nEvaluated to 3.000000\n",
        "{stderr}"
    );
    assert_eq!(stderr.matches("stack overflow").count(), 2, "{stderr}");
}

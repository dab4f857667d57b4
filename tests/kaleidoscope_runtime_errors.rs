//! Runtime errors of Kaleidoscope programs name the source line: a call of
//! a function declared `extern` but defined nowhere fails when the function
//! making it is compiled (lazily: at its first call), and is reported once,
//! as `FILE:LINE:COL: error: ...` at that call, without internal symbol
//! names, under `orc run` (every tier, lazy and eager) and `orc repl`.

use std::path::PathBuf;
use std::process::{Command, Output};

use orc_test_support::run_with_stdin;

fn orc(args: &[&str], stdin: &str) -> Output {
    run_with_stdin(Command::new(env!("CARGO_BIN_EXE_orc")).args(args), stdin)
}

fn write_program(name: &str, src: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orc-kal-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, src).unwrap();
    path
}

const PROGRAM: &str = "extern printd(x);\n\
                       extern nosuch(x);\n\
                       def helper(x) x * 2;\n\
                       def broken(x) helper(x) + nosuch(x);\n\
                       printd(1);\n\
                       broken(2);\n\
                       printd(3);\n";

/// Exactly one line on stderr, naming the call of `nosuch` in `broken` at
/// line 4, column 27, and no internal names.
fn assert_one_located_error(stderr: &str, file: &str) {
    let expected = format!(
        "{file}:4:27: error: call of undefined function 'nosuch': it is declared but \
         defined nowhere, not even in the host ('broken' cannot be compiled)\n"
    );
    assert_eq!(stderr, expected);
    assert!(!stderr.contains('$') && !stderr.contains("main.impl"));
}

#[test]
fn a_lazy_call_that_cannot_be_linked_names_its_line_once() {
    let path = write_program("lazy.kal", PROGRAM);
    let file = path.to_str().unwrap();
    for tier in ["0", "1", "adaptive"] {
        let out = orc(&["run", "--tier", tier, file], "");
        assert_eq!(out.status.code(), Some(70), "--tier {tier}: {out:?}");
        // What ran before the failure printed; nothing after it ran.
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1.000000\n");
        assert_one_located_error(&String::from_utf8_lossy(&out.stderr), file);
    }
}

#[test]
fn an_eager_program_that_cannot_be_linked_names_the_line() {
    let path = write_program("eager.kal", PROGRAM);
    let file = path.to_str().unwrap();
    for tier in ["0", "1"] {
        let out = orc(&["run", "--eager", "--tier", tier, file], "");
        assert_eq!(out.status.code(), Some(1), "--tier {tier}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert_one_located_error(&String::from_utf8_lossy(&out.stderr), file);
    }
}

#[test]
fn a_top_level_call_that_cannot_be_linked_names_its_line() {
    let path = write_program(
        "top.kal",
        "extern printd(x);\nextern nosuch(x);\nprintd(1);\n  1 + nosuch(2);\n",
    );
    let file = path.to_str().unwrap();
    let out = orc(&["run", file], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.000000\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{file}:4:7: error: call of undefined function 'nosuch': it is declared but \
             defined nowhere, not even in the host (a top-level expression cannot be compiled)\n"
        )
    );
}

#[test]
fn the_repl_names_the_input_line() {
    let out = orc(&["repl"], PROGRAM);
    assert_eq!(out.status.code(), Some(70), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1.000000\nEvaluated to 0.000000\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .split("ready> ")
        .filter(|s| s.contains("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("<stdin>:4:27: error: call of undefined function 'nosuch'"),
        "{stderr}"
    );
}

/// Runaway recursion overflows the stack: reported at the top-level
/// expression that ran it, once, with status 70 (the REPL goes on),
/// instead of an abort.
/// (Not a tail call: LLVM turns `def f(x) f(x + 1)` into a loop.)
#[test]
fn a_stack_overflow_names_the_top_level_expression() {
    let src = "extern printd(x);\ndef f(x) f(x + 1) + 1;\nprintd(5);\n  f(0);\nprintd(6);\n";
    let path = write_program("overflow.kal", src);
    let file = path.to_str().unwrap();
    for tier in ["0", "1", "adaptive"] {
        let out = orc(&["run", "--tier", tier, file], "");
        assert_eq!(out.status.code(), Some(70), "--tier {tier}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "5.000000\n");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "{file}:4:3: error: stack overflow: the recursion is too deep \
                 (in this top-level expression)\n"
            ),
            "--tier {tier}"
        );
    }
    // The REPL reports it at the line and goes on (the next line runs).
    let out = orc(&["repl"], src);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("<stdin>:4:3: error: ") && stderr.contains("stack overflow"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("6.000000"),
        "{out:?}"
    );
}

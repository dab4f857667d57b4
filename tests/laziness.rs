//! Compile on demand through the library API and the CLI: only called
//! functions are compiled, lazy and eager agree, and a failed lazy compile
//! is contained.

use std::process::Command;

use orc::{Jit, KaleidoscopeJit};
use orc_core::ExecutorAddr;

/// `n` functions `f0..f{n-1}`, a `main` calling three of them, and a
/// top-level call of `main`.
fn big_program(n: usize) -> String {
    let mut src = String::new();
    for i in 0..n {
        src.push_str(&format!("def f{i}(x) x * {i} + 1;\n"));
    }
    src.push_str(&format!(
        "def main() f7(1) + f{}(2) + f{}(3);\nmain();\n",
        n / 2,
        n - 1
    ));
    src
}

#[test]
fn two_thousand_functions_compile_only_the_three_called() {
    let mut kjit = KaleidoscopeJit::new(Jit::builder().build().unwrap());
    let values = kjit.eval(&big_program(2000)).unwrap();
    // f7(1) = 8, f1000(2) = 2001, f1999(3) = 5998.
    assert_eq!(values, vec![8.0 + 2001.0 + 5998.0]);
    let stats = kjit.jit().cranelift_layer().stats();
    let mut bodies: Vec<&str> = stats
        .functions
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| n.starts_with('f') && n.ends_with("$t0"))
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["f1000$t0", "f1999$t0", "f7$t0"]);
    // Plus main's body and the top-level expression: nothing else.
    assert_eq!(
        stats.functions.len(),
        5,
        "{:?}",
        stats.functions.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
}

#[test]
fn lazy_and_eager_print_the_same() {
    let dir = std::env::temp_dir().join(format!("orc-lazy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.kal");
    std::fs::write(&path, big_program(2000)).unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_orc"))
            .args(["run", "--print-results"])
            .args(extra)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let lazy = run(&[]);
    assert_eq!(lazy, "Evaluated to 8007.000000\n");
    assert_eq!(run(&["--eager"]), lazy);
    std::fs::remove_dir_all(&dir).unwrap();
}

extern "C" fn on_lazy_failure(_x: f64) -> f64 {
    -1.0
}

#[test]
fn failed_lazy_compile_goes_to_the_handler_and_others_work() {
    let jit = Jit::builder()
        .lazy_failure_handler(ExecutorAddr::from_ptr(on_lazy_failure as *const u8))
        .build()
        .unwrap();
    let reported = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = reported.clone();
    jit.session()
        .set_error_reporter(move |e| sink.lock().unwrap().push(e.to_string()));
    let mut kjit = KaleidoscopeJit::new(jit);
    // `nosuch` passes the checker (it is declared) but links nowhere.
    kjit.eval("extern nosuch(x);\ndef broken(x) nosuch(x) + 1;\ndef fine(x) x * 3;\n")
        .unwrap();
    let broken = kjit.function::<(f64,)>("broken").unwrap();
    let fine = kjit.function::<(f64,)>("fine").unwrap();
    assert_eq!(broken.call((2.0,)), -1.0);
    assert_eq!(fine.call((2.0,)), 6.0);
    let all = reported.lock().unwrap().join("\n");
    assert!(all.contains("broken") && all.contains("nosuch"), "{all}");
}

#[test]
fn failed_lazy_compile_exits_70_naming_the_function() {
    let dir = std::env::temp_dir().join(format!("orc-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fail.kal");
    std::fs::write(&path, "extern printd(x);\nextern nosuch(x);\ndef broken(x) nosuch(x);\nprintd(42);\nbroken(1);\nprintd(43);\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_orc"))
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(70));
    // Output before the failure is flushed; nothing after it runs.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42.000000\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Once, at the call that cannot be linked, in source terms.
    assert!(
        stderr.contains("fail.kal:3:15: error: call of undefined function 'nosuch'")
            && stderr.contains("'broken' cannot be compiled")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression: redefining a function whose stub was never looked up (so
/// never materialized) failed with "'f' is not a materialized lazy
/// re-export of 'main'" (`def f(x) x + 1; def f(x) x + 10;` in the REPL).
#[test]
fn redefining_a_function_never_looked_up() {
    for lazy in [true, false] {
        let mut kjit = KaleidoscopeJit::new(Jit::builder().lazy(lazy).build().unwrap());
        kjit.eval("def f(x) x + 1;").unwrap();
        assert_eq!(kjit.eval("def f(x) x + 10; f(1);").unwrap(), vec![11.0]);
    }
}

/// A program's new functions are defined before its redefinitions, so a
/// redefinition (compiled at once) may call a function the same program
/// introduces; a name defined twice in one (unchecked) program is a
/// redefinition of the first.
#[test]
fn add_program_defines_new_functions_before_redefining() {
    for lazy in [true, false] {
        let mut kjit = KaleidoscopeJit::new(Jit::builder().lazy(lazy).build().unwrap());
        kjit.eval("def f(x) x + 1;").unwrap();
        let values = kjit
            .eval("def g(x) f(x) * 2; def f(x) h(x) + 10; def h(x) x; g(1);")
            .unwrap();
        assert_eq!(values, vec![22.0], "lazy: {lazy}");
        let twice = orc_kaleidoscope::parse_program("def k(x) 1; def k(x) 2;").unwrap();
        kjit.add_program(&twice).unwrap();
        assert_eq!(kjit.function::<(f64,)>("k").unwrap().call((0.0,)), 2.0);
    }
}

#[test]
fn typed_calls_check_arity() {
    let mut kjit = KaleidoscopeJit::new(Jit::builder().build().unwrap());
    kjit.eval("def add3(a b c) a + b + c;").unwrap();
    let add3 = kjit.function::<(f64, f64, f64)>("add3").unwrap();
    assert_eq!(add3.call((1.0, 2.0, 3.0)), 6.0);
    let err = kjit.function::<(f64,)>("add3").err().unwrap();
    assert_eq!(err.to_string(), "function 'add3' takes 3 arguments, not 1");
    assert!(kjit.function::<()>("missing").is_err());
}

#[test]
fn sixteen_threads_call_one_uncompiled_function() {
    let mut kjit = KaleidoscopeJit::new(Jit::builder().build().unwrap());
    kjit.eval(
        "def binary : 1 (a b) b;\ndef work(x) var s = 0 in (for i = 0, i < 1000 in s = s + x) : s;",
    )
    .unwrap();
    let work = kjit.function::<(f64,)>("work").unwrap();
    let barrier = std::sync::Barrier::new(16);
    std::thread::scope(|s| {
        for t in 0..16 {
            let (work, barrier) = (&work, &barrier);
            s.spawn(move || {
                barrier.wait();
                // Chapter 7's loop runs the body for i = 0..=1000.
                assert_eq!(work.call((t as f64,)), 1001.0 * t as f64);
            });
        }
    });
    let compiled = kjit
        .jit()
        .cranelift_layer()
        .stats()
        .functions
        .iter()
        .filter(|f| f.name == "work$t0")
        .count();
    assert_eq!(compiled, 1);
}

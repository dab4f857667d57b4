//! The embedding API keeps what earlier `eval` calls defined: functions,
//! `extern` declarations and operators, as the tutorial's REPL does.

use orc::KaleidoscopeError;
use orc::{Jit, KaleidoscopeJit};

fn kjit(lazy: bool) -> KaleidoscopeJit {
    KaleidoscopeJit::new(Jit::builder().lazy(lazy).build().unwrap())
}

#[test]
fn eval_sees_the_functions_of_earlier_calls() {
    for lazy in [true, false] {
        let mut kjit = kjit(lazy);
        assert_eq!(kjit.eval("def foo(x) x;").unwrap(), Vec::<f64>::new());
        assert_eq!(kjit.eval("foo(2);").unwrap(), vec![2.0], "lazy: {lazy}");
        assert_eq!(kjit.eval("foo(3) + foo(4);").unwrap(), vec![7.0]);
        // A later function calls an earlier one; a redefinition reaches it.
        kjit.eval("def bar(x) foo(x) * 10;").unwrap();
        kjit.eval("def foo(x) x + 1;").unwrap();
        assert_eq!(kjit.eval("bar(2);").unwrap(), vec![30.0]);
    }
}

#[test]
fn eval_keeps_externs_and_operators() {
    let mut kjit = kjit(true);
    kjit.eval("extern sin(x);").unwrap();
    assert_eq!(kjit.eval("sin(0);").unwrap(), vec![0.0]);
    kjit.eval("def binary : 1 (x y) y;\ndef unary-(v) 0 - v;")
        .unwrap();
    assert_eq!(kjit.eval("1 : -5;").unwrap(), vec![-5.0]);
    // Operators defined through `define` count too.
    let program = orc_kaleidoscope::parse_program("def binary | 5 (a b) a + b;").unwrap();
    kjit.add_program(&program).unwrap();
    assert_eq!(kjit.eval("1 | 2;").unwrap(), vec![3.0]);
}

#[test]
fn eval_refuses_an_arity_change_and_a_refused_text_changes_nothing() {
    let mut kjit = kjit(true);
    kjit.eval("def foo(x) x;").unwrap();
    let err = kjit.eval("def foo(x y) x;").unwrap_err();
    let KaleidoscopeError::Arity {
        name,
        expected,
        given,
    } = &err
    else {
        panic!("an arity error: {err}")
    };
    assert_eq!((name.as_str(), *expected, *given), ("foo", 1, 2));
    // Declaring a defined function with another arity is a source error.
    let err = kjit.eval("extern foo(a b c);").unwrap_err();
    let KaleidoscopeError::Source(diags) = &err else {
        panic!("a source error: {err}")
    };
    assert!(
        diags[0]
            .message
            .contains("conflicting declaration of 'foo'"),
        "{diags:?}"
    );
    // An external function may be declared again with another arity.
    kjit.eval("extern sin(x);").unwrap();
    kjit.eval("extern sin(x y);").unwrap();
    // `bar` is defined by a text that fails its check: it stays unknown.
    assert!(kjit.eval("def bar(x) x; bar(1, 2);").is_err());
    let err = kjit.eval("bar(1);").unwrap_err();
    assert!(err.to_string().contains("unknown function 'bar'"), "{err}");
    assert_eq!(kjit.eval("foo(5);").unwrap(), vec![5.0]);
}

/// A trap in a top-level expression is an error of `eval`, and it leaves
/// nothing behind: the thread's pin is released (code retired afterwards
/// is freed at once) and the JIT goes on.
#[test]
fn a_trap_in_eval_is_an_error_and_leaks_no_pin() {
    for lazy in [true, false] {
        let mut kjit = kjit(lazy);
        kjit.eval("def down(n) down(n + 1) + 1;").unwrap();
        let err = kjit.eval("down(0);").unwrap_err();
        let KaleidoscopeError::Jit(orc::core::Error::Trap(trap)) = &err else {
            panic!("expected a trap, got {err:?}");
        };
        assert_eq!(trap.kind, orc::TrapKind::StackOverflow, "{trap}");
        assert_eq!(trap.function_name(), Some("down"), "{trap}");
        // Redefinitions retire code; with no pin left behind by the trap,
        // all of it is freed (the main thread is the only one that ran).
        for i in 0..5 {
            kjit.eval(&format!("def f(x) x + {i};")).unwrap();
            assert_eq!(kjit.eval("f(1);").unwrap(), vec![1.0 + f64::from(i)]);
        }
        let reclaimer = kjit.jit().reclaimer();
        reclaimer.collect();
        assert_eq!(reclaimer.n_pending(), 0, "lazy: {lazy}");
    }
}

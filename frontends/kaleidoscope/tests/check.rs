//! Semantic checks of whole files: one test per error kind with its exact
//! position, and the cases that must be accepted.

use orc_kaleidoscope::{check_program, parse_and_check, parse_program, Diagnostic};

fn errors(src: &str) -> Vec<Diagnostic> {
    match parse_and_check(src) {
        Ok(_) => panic!("{src}: expected errors"),
        Err(diags) => diags,
    }
}

#[track_caller]
fn assert_first_err(src: &str, line: u32, col: u32, message: &str) {
    let diags = errors(src);
    let first = &diags[0];
    assert_eq!((first.line, first.col), (line, col), "{src}: {first}");
    assert_eq!(first.message, message, "{src}");
}

#[test]
fn unknown_variable_at_its_name() {
    assert_first_err(
        "extern printd(x);\ndef f(x) y + 1;\nprintd(f(1));",
        2,
        10,
        "unknown variable 'y'",
    );
    assert_first_err(
        "def binary : 1 (x y) y;\ndef f(x) x = 1 : z = 2;",
        2,
        18,
        "unknown variable 'z'",
    );
    assert_first_err("1 + q;", 1, 5, "unknown variable 'q'");
}

#[test]
fn unknown_assignment_target_at_its_name() {
    assert_first_err("def f(x) 1 + (w = 2);", 1, 15, "unknown variable 'w'");
}

#[test]
fn unknown_function_at_its_name() {
    assert_first_err(
        "extern printd(x);\nprintd(1);\nprintd(g(3));",
        3,
        8,
        "unknown function 'g'",
    );
}

#[test]
fn wrong_argument_count_at_the_callee() {
    assert_first_err(
        "extern printd(x);\ndef f(a b) a + b;\nprintd(f(1));",
        3,
        8,
        "'f' takes 2 arguments but 1 was given",
    );
    assert_first_err(
        "extern sin(x); sin();",
        1,
        16,
        "'sin' takes 1 argument but 0 were given",
    );
}

#[test]
fn redefinition_at_the_second_name() {
    assert_first_err(
        "extern printd(x);\ndef f(x) x;\ndef f(x) x + 1;\nprintd(f(1));",
        3,
        5,
        "redefinition of 'f' (first defined at 2:5)",
    );
    assert_first_err(
        "def binary : 1 (x y) y;\ndef binary : 1 (x y) x;",
        2,
        5,
        "redefinition of 'binary:' (first defined at 1:5)",
    );
}

#[test]
fn extern_then_def_with_another_arity_conflicts() {
    assert_first_err(
        "extern odd(n);\ndef odd(n m) n;",
        2,
        5,
        "conflicting declaration of 'odd': 2 parameters here, 1 at 1:8",
    );
    assert_first_err(
        "def f(x) x;\nextern f();",
        2,
        8,
        "conflicting declaration of 'f': 0 parameters here, 1 at 1:5",
    );
}

#[test]
fn duplicate_parameter_at_the_second() {
    assert_first_err("def f(x y x) x;", 1, 11, "duplicate parameter 'x' in 'f'");
}

#[test]
fn loop_and_var_scoping() {
    // The start value cannot see the loop variable; the var initializer
    // cannot see its own variable but sees the earlier ones.
    assert_first_err(
        "def f() for i = i, i < 3 in i;",
        1,
        17,
        "unknown variable 'i'",
    );
    assert_first_err("def f() var a = a in a;", 1, 17, "unknown variable 'a'");
    assert!(parse_and_check("def f() var a = 1, b = a in b;").is_ok());
    assert!(parse_and_check("def f(a) var a = a in a;").is_ok());
    // Variables go out of scope after the body.
    assert_first_err(
        "def f() (for i = 0, i < 3 in i) + i;",
        1,
        35,
        "unknown variable 'i'",
    );
    assert_first_err("def f() (var t in t) + t;", 1, 24, "unknown variable 't'");
}

#[test]
fn all_errors_are_reported_in_source_order() {
    let diags = errors("def f(x) g(y);\ndef f(x) x;\n h(1);");
    let positions: Vec<_> = diags.iter().map(|d| (d.line, d.col)).collect();
    assert_eq!(positions, [(1, 10), (1, 12), (2, 5), (3, 2)]);
}

#[test]
fn later_definition_satisfies_earlier_extern_and_earlier_use() {
    // Functions are visible file-wide: `orc run` defines every function
    // before running any top-level expression.
    let src = "extern odd(n);\n\
               def even(n) if n < 1 then 1 else odd(n - 1);\n\
               def odd(n) if n < 1 then 0 else even(n - 1);\n\
               later(2);\n\
               def later(x) x;\n\
               extern later(y);";
    assert!(parse_and_check(src).is_ok());
}

#[test]
fn recursion_is_allowed() {
    assert!(parse_and_check("def fib(n) if n < 3 then 1 else fib(n-1) + fib(n-2);").is_ok());
}

#[test]
fn check_program_can_run_separately_from_parsing() {
    let program = parse_program("def f(x) y;").unwrap();
    let diags = check_program(&program).unwrap_err();
    assert_eq!(
        diags[0].render("a.kal"),
        "a.kal:1:10: error: unknown variable 'y'"
    );
}

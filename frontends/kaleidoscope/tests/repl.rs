//! The REPL session: items one at a time, state across items, redefinition,
//! line-oriented buffering and error recovery.

use orc_kaleidoscope::{Item, ReplEvent, ReplSession};

/// A short description of each event: `def NAME`, `extern NAME`,
/// `expr NAME` or `error LINE:COL MESSAGE`.
fn describe(events: Vec<ReplEvent>) -> Vec<String> {
    events
        .into_iter()
        .map(|event| match event {
            ReplEvent::Item(Item::Def(f)) => format!("def {}", f.proto.name),
            ReplEvent::Item(Item::Extern(p)) => format!("extern {}", p.name),
            ReplEvent::Item(Item::Expr(f)) => format!("expr {}", f.proto.name),
            ReplEvent::Error(d) => format!("error {}:{} {}", d.line, d.col, d.message),
        })
        .collect()
}

#[test]
fn definitions_and_expressions_one_line_at_a_time() {
    let mut repl = ReplSession::new();
    assert_eq!(describe(repl.feed("def f(x) x + 1;\n")), ["def f"]);
    assert_eq!(describe(repl.feed("f(2);\n")), ["expr __anon_expr_0"]);
    assert_eq!(
        describe(repl.feed("f(3); f(4);\n")),
        ["expr __anon_expr_1", "expr __anon_expr_2"]
    );
    assert_eq!(repl.function_arity("f"), Some(1));
}

#[test]
fn redefinition_is_accepted_but_not_with_another_arity() {
    let mut repl = ReplSession::new();
    repl.feed("def f(x) x;\n");
    assert_eq!(describe(repl.feed("def f(x) x * 2;\n")), ["def f"]);
    assert_eq!(
        describe(repl.feed("def f(x y) x;\n")),
        ["error 3:5 conflicting declaration of 'f': 2 parameters here, 1 at 2:5"]
    );
}

#[test]
fn a_function_must_be_known_before_use_except_for_recursion() {
    let mut repl = ReplSession::new();
    assert_eq!(
        describe(repl.feed("g(1);\n")),
        ["error 1:1 unknown function 'g'"]
    );
    assert_eq!(
        describe(repl.feed("def fib(n) if n < 3 then 1 else fib(n-1) + fib(n-2);\n")),
        ["def fib"]
    );
    // A rejected expression still used up its number; numbers are unique,
    // not dense.
    assert_eq!(
        describe(repl.feed("extern sin(x); sin(1);\n")),
        ["extern sin", "expr __anon_expr_1"]
    );
    repl.declare_host_function("printd", 1);
    assert_eq!(describe(repl.feed("printd(2);\n")), ["expr __anon_expr_2"]);
}

#[test]
fn an_unfinished_item_waits_for_more_lines() {
    let mut repl = ReplSession::new();
    assert!(repl.feed("def g(x)\n").is_empty());
    assert!(repl.has_pending_input());
    assert!(repl.feed("  if x < 1 then 0\n").is_empty());
    assert_eq!(describe(repl.feed("  else x * 3;\n")), ["def g"]);
    assert!(!repl.has_pending_input());
    // A complete item at the end of a line needs no ';'.
    assert_eq!(describe(repl.feed("g(2)\n")), ["expr __anon_expr_0"]);
    // Positions keep counting lines across chunks.
    assert_eq!(
        describe(repl.feed("\n  nope\n")),
        ["error 6:3 unknown variable 'nope'"]
    );
}

#[test]
fn finish_turns_an_unfinished_item_into_an_error() {
    let mut repl = ReplSession::new();
    assert!(repl.feed("def h(x) x +").is_empty());
    assert_eq!(
        describe(repl.finish()),
        ["error 1:13 expected an expression, found end of input"]
    );
    assert!(!repl.has_pending_input());
}

#[test]
fn operators_carry_over_only_when_their_item_is_accepted() {
    let mut repl = ReplSession::new();
    assert_eq!(
        describe(repl.feed("def binary : 1 (x y) y;\n")),
        ["def binary:"]
    );
    assert_eq!(describe(repl.feed("1 : 2;\n")), ["expr __anon_expr_0"]);
    assert_eq!(
        describe(repl.feed("def binary ^ 50 (a b) zz;\n")),
        ["error 3:23 unknown variable 'zz'"]
    );
    // `^` is not an operator, so `1` is a complete expression and `^` starts
    // a bad one, as in the tutorial.
    let events = describe(repl.feed("1 ^ 2;\n"));
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], "expr __anon_expr_1");
    assert!(
        events[1].starts_with("error 4:3 expected an expression"),
        "{events:?}"
    );
}

#[test]
fn a_syntax_error_drops_the_rest_of_the_chunk_and_the_session_goes_on() {
    let mut repl = ReplSession::new();
    let events = describe(repl.feed("1 + ; 2;\n"));
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("error 1:5"), "{events:?}");
    assert_eq!(describe(repl.feed("3;\n")), ["expr __anon_expr_0"]);
    let events = describe(repl.feed("é 4;\n"));
    assert!(
        events[0].starts_with("error 3:1 unexpected character"),
        "{events:?}"
    );
    assert_eq!(describe(repl.feed("5;\n")), ["expr __anon_expr_1"]);
}

#[test]
fn discarding_pending_input_keeps_line_numbers() {
    let mut repl = ReplSession::new();
    repl.feed("def f(x)\n");
    repl.discard_pending_input();
    assert!(!repl.has_pending_input());
    assert_eq!(
        describe(repl.feed("y;\n")),
        ["error 2:1 unknown variable 'y'"]
    );
}

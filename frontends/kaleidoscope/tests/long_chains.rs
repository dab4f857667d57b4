//! Flat binary chains are one nesting level however long: a chain of
//! 100,000 terms parses, checks, lowers and is dropped on a 2 MB thread
//! (the default test-thread stack) in a debug build, while real nesting
//! stays capped.

use cranelift_codegen::ir::{Opcode, UserExternalName};
use orc_kaleidoscope::{build_standalone, parse_and_check, ExprKind, MAX_EXPR_NODES, MAX_NESTING};

/// Runs `f` on a thread with a 2 MB stack, as a test thread has.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the thread must not overflow its stack")
}

fn count_opcode(func: &cranelift_codegen::ir::Function, opcode: Opcode) -> usize {
    func.layout
        .blocks()
        .flat_map(|b| func.layout.block_insts(b))
        .filter(|&inst| func.dfg.insts[inst].opcode() == opcode)
        .count()
}

#[test]
fn a_sum_of_257_terms_is_not_nested() {
    let src = format!("1{};", " + 1".repeat(256));
    let program = parse_and_check(&src).expect("a flat chain is one level");
    let expr = program.top_level_exprs().next().unwrap();
    assert!(matches!(expr.body.kind, ExprKind::Binary { .. }));
}

#[test]
fn a_chain_of_100000_terms_parses_checks_lowers_and_drops_on_a_small_stack() {
    let (adds, muls) = on_small_stack(|| {
        // Mixed precedences: `x + 2*x + 2*x ...`: each right operand is a
        // product, one level below the chain.
        let src = format!(
            "def binary : 1 (a b) b;\ndef f(x) x{};\nf(1) : 2{};",
            " + 2*x".repeat(50_000),
            " : 3".repeat(49_999)
        );
        let program = parse_and_check(&src).expect("long chains are accepted");
        let f = program.functions().find(|f| f.proto.name == "f").unwrap();
        let mut names = |_: &str| UserExternalName::new(0, 0);
        let clif = build_standalone(f, &mut names).expect("lowers");
        let counts = (
            count_opcode(&clif, Opcode::Fadd),
            count_opcode(&clif, Opcode::Fmul),
        );
        let top = program.top_level_exprs().next().unwrap();
        assert!(build_standalone(top, &mut names).is_ok());
        // The display walks the spine too.
        assert!(top.body.to_string().starts_with("(: (: (: "));
        drop(program);
        counts
    });
    assert_eq!((adds, muls), (50_000, 50_000));
}

#[test]
fn real_nesting_is_still_capped() {
    let ok = format!(
        "{}1{};",
        "(2 * ".repeat(MAX_NESTING as usize - 2),
        ")".repeat(MAX_NESTING as usize - 2)
    );
    assert!(parse_and_check(&ok).is_ok());
    let deep = format!("{}1{};", "(1 + ".repeat(300), ")".repeat(300));
    let errs = parse_and_check(&deep).unwrap_err();
    assert!(errs[0].message.contains("nested too deeply"), "{errs:?}");
}

#[test]
fn a_body_past_the_node_limit_is_a_clear_error() {
    let err = on_small_stack(|| {
        let src = format!("1{};", " + 1".repeat(MAX_EXPR_NODES / 2 + 1));
        parse_and_check(&src).unwrap_err()
    });
    assert!(err[0].message.contains("expression too large"), "{err:?}");
}

#[test]
fn binary_equals_takes_over_assignment_from_its_definition_on() {
    // Chapter 7: `=` assigns.
    let program = parse_and_check("def f(x) var y = 1 in y = x;").unwrap();
    let f = program.functions().next().unwrap();
    let ExprKind::Var { body, .. } = &f.body.kind else {
        panic!("a var expression")
    };
    assert!(matches!(body.kind, ExprKind::Assign { .. }));
    // Chapter 6: `binary =` is equality, at its own precedence, from its
    // definition on.
    let src = "def g(x) var y = 1 in y = x;\n\
               def binary = 9 (a b) 0;\n\
               def h(x) x = 1 < 2;";
    let program = parse_and_check(src).unwrap();
    let mut funcs = program.functions();
    let g = funcs.next().unwrap();
    let ExprKind::Var { body, .. } = &g.body.kind else {
        panic!("a var expression")
    };
    assert!(
        matches!(body.kind, ExprKind::Assign { .. }),
        "before: assignment"
    );
    let h = funcs.nth(1).unwrap();
    // Precedence 9 is below `<` (10): `x = (1 < 2)`.
    assert_eq!(h.body.to_string(), "(= x (< 1 2))");
    assert!(
        matches!(h.body.kind, ExprKind::Binary { .. }),
        "after: a call of binary="
    );
}

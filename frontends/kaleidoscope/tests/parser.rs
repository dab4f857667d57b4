//! Parser tests, one per construct, printed as S-expressions, and the
//! positions of parse-time errors.

use orc_kaleidoscope::{
    parse_program, Diagnostic, ExprKind, Item, PrototypeKind, Span, DEFAULT_PRECEDENCE,
};

/// The last top-level expression of `src`, as an S-expression.
fn last_expr(src: &str) -> String {
    let program = parse_program(src).unwrap_or_else(|d| panic!("{src}: {d}"));
    let body = program
        .top_level_exprs()
        .last()
        .expect("a top-level expression");
    body.body.to_string()
}

/// The body of the function `name` in `src`, as an S-expression.
fn body_of(src: &str, name: &str) -> String {
    let program = parse_program(src).unwrap_or_else(|d| panic!("{src}: {d}"));
    let func = program
        .functions()
        .find(|f| f.proto.name == name)
        .expect("function");
    func.body.to_string()
}

fn parse_err(src: &str) -> Diagnostic {
    match parse_program(src) {
        Ok(program) => panic!("{src}: expected a syntax error, got {program:?}"),
        Err(diag) => diag,
    }
}

#[track_caller]
fn assert_err(src: &str, line: u32, col: u32, fragment: &str) {
    let diag = parse_err(src);
    assert_eq!((diag.line, diag.col), (line, col), "{src}: {diag}");
    assert!(diag.message.contains(fragment), "{src}: {diag}");
}

#[test]
fn numbers_variables_and_calls() {
    assert_eq!(last_expr("4.5;"), "4.5");
    assert_eq!(
        last_expr("def f(x) x; f(1, 2 + 3, f(x));"),
        "(call f 1 (+ 2 3) (call f x))"
    );
    assert_eq!(last_expr("g();"), "(call g)");
    assert_eq!(last_expr("x;"), "x");
}

#[test]
fn builtin_precedence_and_left_associativity() {
    assert_eq!(last_expr("1 + 2 * 3 - 4;"), "(- (+ 1 (* 2 3)) 4)");
    assert_eq!(last_expr("(1 + 2) * (3 - 4);"), "(* (+ 1 2) (- 3 4))");
    assert_eq!(last_expr("a < b + 1;"), "(< a (+ b 1))");
    assert_eq!(last_expr("a - b - c;"), "(- (- a b) c)");
    assert_eq!(last_expr("x = (y = 1 + 2);"), "(= x (= y (+ 1 2)))");
}

#[test]
fn assignment_binds_loosest_and_needs_a_variable() {
    assert_eq!(last_expr("x = 1 < 2;"), "(= x (< 1 2))");
    assert_err(
        "def f(x) (x + 1) = 2;",
        1,
        10,
        "destination of '=' must be a variable",
    );
    // `=` is left-associative as in the tutorial, so a chain is an error at
    // the start of the left side.
    assert_err("def f(x y) x = y = 2;", 1, 12, "destination of '='");
}

#[test]
fn if_then_else() {
    assert_eq!(
        last_expr("if x < 3 then 1 else if 0 < x then 2 else 3;"),
        "(if (< x 3) 1 (if (< 0 x) 2 3))"
    );
    assert_err("if x then 1;", 1, 12, "expected 'else'");
    assert_err("if x 1 else 2;", 1, 6, "expected 'then'");
}

#[test]
fn for_loops_with_and_without_step() {
    assert_eq!(
        last_expr("for i = 1, i < n in f(i);"),
        "(for i 1 (< i n) (call f i))"
    );
    assert_eq!(
        last_expr("for j = 0, j < i, 2 in c = c + 1;"),
        "(for j 0 (< j i) 2 (= c (+ c 1)))"
    );
    assert_err(
        "for 1 = 2, 3 in 4;",
        1,
        5,
        "expected an identifier after 'for'",
    );
    assert_err(
        "for i = 1 in 4;",
        1,
        11,
        "expected ',' after the 'for' start value",
    );
    assert_err("for i = 1, 2 do 4;", 1, 14, "expected 'in' after 'for'");
}

#[test]
fn var_in_with_and_without_initializers() {
    assert_eq!(
        last_expr("var a = 1, b, c = a in a + b;"),
        "(var ((a 1) b (c a)) (+ a b))"
    );
    assert_err("var in 1;", 1, 5, "expected an identifier after 'var'");
    assert_err("var a = 1 b;", 1, 11, "expected 'in' after 'var'");
}

#[test]
fn user_binary_operator_with_precedence_applies_after_its_definition() {
    let src = "def binary | 5 (a b) if a then 1 else b;\n\
               def binary ^ 50 (b e) b;\n\
               1 + 2 ^ 3 * 2 | 0;";
    assert_eq!(last_expr(src), "(| (+ 1 (* (^ 2 3) 2)) 0)");
    let program = parse_program(src).unwrap();
    let Item::Def(func) = &program.items[0] else {
        panic!("a def")
    };
    assert_eq!(func.proto.name, "binary|");
    assert_eq!(
        func.proto.kind,
        PrototypeKind::Binary {
            op: '|',
            precedence: 5
        }
    );
    assert_eq!(func.proto.span, Span::new(1, 5));
}

#[test]
fn user_binary_operator_default_precedence_is_30() {
    let src = "def binary % (a b) a; 1 + 2 % 3 * 4;";
    assert_eq!(last_expr(src), "(+ 1 (% 2 (* 3 4)))");
    let program = parse_program(src).unwrap();
    assert_eq!(
        program.functions().next().unwrap().proto.kind,
        PrototypeKind::Binary {
            op: '%',
            precedence: DEFAULT_PRECEDENCE
        }
    );
}

#[test]
fn an_operator_is_not_usable_in_its_own_definition_or_before_it() {
    // As in the tutorial: the precedence is installed after the definition.
    assert_err("def binary ~ 9 (a b) a ~ b;", 1, 24, "");
    assert_err("1 ~ 2;\ndef binary ~ 9 (a b) a;", 1, 3, "");
}

#[test]
fn unary_operators_nest_and_bind_tighter_than_binary_ones() {
    let src = "def unary!(v) if v then 0 else 1;\n\
               def unary-(v) 0 - v;\n\
               !!x + -y * 2 - -3;";
    assert_eq!(
        last_expr(src),
        "(- (+ (unary! (unary! x)) (* (unary- y) 2)) (unary- 3))"
    );
    assert_eq!(body_of(src, "unary-"), "(- 0 v)");
}

#[test]
fn unknown_unary_operator_is_an_error_at_the_operator() {
    assert_err("def f(x) !x;", 1, 10, "no unary operator '!'");
    assert_err("def f(x) x + ;", 1, 14, "expected an expression, found ';'");
}

#[test]
fn operator_prototype_errors() {
    assert_err("def binary% 200 (a b) a;", 1, 13, "invalid precedence 200");
    assert_err(
        "def binary% 0 (a b) a;",
        1,
        13,
        "must be an integer from 1 to 100",
    );
    assert_err(
        "def binary% 2.5 (a b) a;",
        1,
        13,
        "must be an integer from 1 to 100",
    );
    assert_err(
        "def binary+ 5 (a b) a;",
        1,
        11,
        "cannot redefine built-in operator '+'",
    );
    assert_err(
        "def binary < (a b) a;",
        1,
        12,
        "cannot redefine built-in operator '<'",
    );
    assert_err(
        "def binary| (a) a;",
        1,
        5,
        "needs exactly 2 parameters, found 1",
    );
    assert_err(
        "extern unary!(a b);",
        1,
        8,
        "needs exactly 1 parameter, found 2",
    );
    assert_err(
        "def binary( (a b) a;",
        1,
        11,
        "expected an operator character",
    );
    assert_err(
        "def unary x (a) a;",
        1,
        11,
        "expected an operator character",
    );
    assert_err("def unary! 5 (a) a;", 1, 12, "expected '(' in prototype");
}

#[test]
fn prototype_errors() {
    assert_err(
        "# comment line\ndef f(x (x);",
        2,
        9,
        "expected ')' in prototype",
    );
    assert_err("def 1(x) x;", 1, 5, "expected a function name");
    assert_err("extern f x;", 1, 10, "expected '(' in prototype");
    assert_err("def f(x, y) x;", 1, 8, "expected ')' in prototype");
}

#[test]
fn call_and_paren_errors() {
    assert_err("f(1 2);", 1, 5, "expected ')' or ',' in argument list");
    assert_err("(1 + 2;", 1, 7, "expected ')'");
    assert_err("f(1,);", 1, 5, "expected an expression");
}

#[test]
fn unexpected_end_of_input_points_at_the_end() {
    assert_err("def f(x)\n  x +", 2, 6, "found end of input");
}

#[test]
fn lexical_errors_stop_parsing() {
    assert_err("def f(x) x +\n  é;", 2, 3, "unexpected character");
}

#[test]
fn items_are_kept_in_order_and_semicolons_are_optional_separators() {
    let program = parse_program(";; extern sin(x); def f(x) x 1 + 1; ;").unwrap();
    let kinds: Vec<_> = program
        .items
        .iter()
        .map(|item| match item {
            Item::Def(f) => format!("def {}", f.proto.name),
            Item::Extern(p) => format!("extern {}", p.name),
            Item::Expr(f) => format!("expr {}", f.proto.name),
        })
        .collect();
    assert_eq!(kinds, ["extern sin", "def f", "expr __anon_expr_0"]);
}

#[test]
fn spans_point_at_first_tokens() {
    let program = parse_program("def f(a b)\n  a + g(b);").unwrap();
    let func = program.functions().next().unwrap();
    assert_eq!(func.proto.span, Span::new(1, 5));
    assert_eq!(func.proto.params[1].span, Span::new(1, 9));
    let ExprKind::Binary { op_span, rhs, .. } = &func.body.kind else {
        panic!("a binary expression")
    };
    assert_eq!(func.body.span, Span::new(2, 3));
    assert_eq!(*op_span, Span::new(2, 5));
    assert_eq!(rhs.span, Span::new(2, 7));
}

#[test]
fn nesting_is_capped_without_overflowing_the_stack() {
    let deep_parens = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(parse_err(&deep_parens)
        .message
        .contains("nested too deeply"));
    // A flat chain is one level however long; a chain nested in 100,000
    // parentheses is not.
    let nested_chain = format!("{}1{}", "(1 + ".repeat(100_000), ")".repeat(100_000));
    assert!(parse_err(&nested_chain)
        .message
        .contains("nested too deeply"));
    let unary_chain = format!("def unary!(v) v; {}1;", "!".repeat(100_000));
    assert!(parse_err(&unary_chain)
        .message
        .contains("nested too deeply"));
    let deep_ifs = format!(
        "{}1{}",
        "if 1 then ".repeat(10_000),
        " else 0".repeat(10_000)
    );
    assert!(parse_err(&deep_ifs).message.contains("nested too deeply"));
    let deep_calls = format!("{}1{}", "f(".repeat(100_000), ")".repeat(100_000));
    assert!(parse_err(&deep_calls).message.contains("nested too deeply"));
}

#[test]
fn nesting_just_under_the_cap_parses() {
    let n = 200;
    let src = format!("{}1{}", "(1 + ".repeat(n), ")".repeat(n));
    assert!(parse_program(&src).is_ok());
    let chain = format!("1{}", " + 1".repeat(200));
    assert!(parse_program(&chain).is_ok());
}

//! Lowering to CLIF: the instructions chosen for each construct, calls by
//! symbol name, one function per object, and errors on unchecked input.

#[allow(dead_code)]
mod support;

use cranelift_module::{Module, ModuleError};
use orc_kaleidoscope::{
    build_function, lower_function, lower_function_as, parse_and_check, parse_program, LowerError,
    Program,
};
use support::host_module;

fn program(src: &str) -> Program {
    parse_and_check(src).unwrap_or_else(|d| panic!("{src}: {d:?}"))
}

/// The verified CLIF text of function `name` in `src`.
fn clif_of(src: &str, name: &str) -> String {
    let program = program(src);
    let func = program
        .functions()
        .chain(program.top_level_exprs())
        .find(|f| f.proto.name == name)
        .expect("function");
    let mut module = host_module("test");
    let lowered = build_function(&mut module, func).unwrap();
    cranelift_codegen::verify_function(&lowered.ctx.func, module.isa())
        .unwrap_or_else(|e| panic!("{e}\n{}", lowered.clif()));
    lowered.clif()
}

/// The names `module` declares as imports, in declaration order.
fn imports(module: &impl Module) -> Vec<String> {
    module
        .declarations()
        .get_functions()
        .filter(|(_, d)| d.linkage == cranelift_module::Linkage::Import)
        .map(|(_, d)| d.name.clone().unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn signature_is_f64s_to_f64() {
    let clif = clif_of("def f(a b c) a;", "f");
    assert!(
        clif.contains("function u0:0(f64, f64, f64) -> f64"),
        "{clif}"
    );
    let clif = clif_of("1 + 2;", "__anon_expr_0");
    assert!(clif.contains("() -> f64"), "{clif}");
}

#[test]
fn arithmetic_is_fadd_fsub_fmul() {
    let clif = clif_of("def f(a b) a + b - a * b;", "f");
    for op in ["fadd", "fsub", "fmul"] {
        assert!(clif.contains(op), "{op} missing:\n{clif}");
    }
}

#[test]
fn less_than_is_unordered_and_selects_one_or_zero() {
    let clif = clif_of("def lt(a b) a < b;", "lt");
    assert!(clif.contains("fcmp ult"), "{clif}");
    assert!(clif.contains("select"), "{clif}");
    assert!(clif.contains("f64const 0x1.0000000000000p0"), "{clif}");
}

#[test]
fn if_tests_ordered_not_equal_to_zero() {
    let clif = clif_of("def f(x) if x then 1 else 2;", "f");
    assert!(clif.contains("fcmp one"), "{clif}");
    assert!(clif.contains("brif"), "{clif}");
}

#[test]
fn a_for_loop_ending_on_a_comparison_branches_on_it() {
    let clif = clif_of(
        "def f(n) var s = 0 in (for i = 1, i < n, 2 in s = s + i) + s;",
        "f",
    );
    // `i < n` is the branch condition itself: no 1.0/0.0 select, no
    // second compare against zero.
    assert!(clif.contains("fcmp ult"), "{clif}");
    assert!(!clif.contains("select"), "{clif}");
    assert!(!clif.contains("fcmp one"), "{clif}");
    assert_eq!(clif.matches("brif").count(), 1, "{clif}");
}

#[test]
fn other_loop_and_if_conditions_test_ordered_not_equal_to_zero() {
    let clif = clif_of("def f(n) for i = 1, n - i in 0;", "f");
    assert!(clif.contains("fcmp one"), "{clif}");
    assert!(!clif.contains("fcmp ult"), "{clif}");
    // A `<` that is a value, not the condition, is still a select.
    let clif = clif_of("def g(a b) if (a < b) + 1 then 1 else 2;", "g");
    assert!(clif.contains("select"), "{clif}");
    assert!(clif.contains("fcmp one"), "{clif}");
    let clif = clif_of("def h(a b) if a < b then 1 else 2;", "h");
    assert!(!clif.contains("select"), "{clif}");
    assert!(!clif.contains("fcmp one"), "{clif}");
}

#[test]
fn operators_and_externs_are_calls_by_symbol_name() {
    let src = "extern printd(x);\n\
               def unary!(v) if v then 0 else 1;\n\
               def binary : 1 (x y) y;\n\
               def g(x) x;\n\
               def h(x) !g(x) : printd(x);";
    let program = program(src);
    let h = program.functions().find(|f| f.proto.name == "h").unwrap();
    // One function per object, as the lazy path compiles them.
    let mut module = host_module("h");
    let id = lower_function(&mut module, h).unwrap();
    let decl = module.declarations().get_function_decl(id);
    assert_eq!(decl.name.as_deref(), Some("h"));
    assert_eq!(decl.linkage, cranelift_module::Linkage::Export);
    let imports = imports(&module);
    assert_eq!(imports, ["g", "unary!", "printd", "binary:"]);
    let bytes = module.finish().emit().unwrap();
    for symbol in ["h", "g", "unary!", "printd", "binary:"] {
        assert!(contains(&bytes, symbol), "object lacks {symbol}");
    }
}

/// A driver defines a function under its own body symbol without
/// copying the tree: a recursive call still goes to the plain name (the
/// driver's stub), not to the body symbol.
#[test]
fn lower_function_as_defines_the_given_symbol() {
    let program = program("def f(x) if x < 1 then 0 else f(x - 1);");
    let f = program.functions().next().unwrap();
    let mut module = host_module("f");
    let id = lower_function_as(&mut module, f, "f$t0").unwrap();
    let decl = module.declarations().get_function_decl(id);
    assert_eq!(decl.name.as_deref(), Some("f$t0"));
    assert_eq!(decl.linkage, cranelift_module::Linkage::Export);
    let imports = imports(&module);
    assert_eq!(imports, ["f"]);
    assert_eq!(f.proto.name, "f", "the tree is left as parsed");
}

#[test]
fn a_definition_after_an_import_in_one_module_is_exported() {
    let program = program("def a(x) b(x); def b(x) x;");
    let mut module = host_module("ab");
    for func in program.functions() {
        lower_function(&mut module, func).unwrap();
    }
    let linkages: Vec<_> = module
        .declarations()
        .get_functions()
        .map(|(_, d)| (d.name.clone().unwrap(), d.linkage))
        .collect();
    assert!(
        linkages
            .iter()
            .all(|(_, l)| *l == cranelift_module::Linkage::Export),
        "{linkages:?}"
    );
    assert!(!module.finish().emit().unwrap().is_empty());
}

#[test]
fn unchecked_unknown_variable_is_an_error_not_a_panic() {
    let program = parse_program("def f(x) y;").unwrap();
    let mut module = host_module("bad");
    let err = lower_function(&mut module, program.functions().next().unwrap()).unwrap_err();
    match &err {
        LowerError::UnknownVariable {
            function,
            name,
            span,
        } => {
            assert_eq!((function.as_str(), name.as_str()), ("f", "y"));
            assert_eq!((span.line, span.col), (1, 10));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "1:10: unknown variable 'y' in function 'f'"
    );
}

#[test]
fn arity_disagreement_in_one_module_is_a_module_error() {
    let program = parse_program("def f(x) x; def g() f(1, 2);").unwrap();
    let mut module = host_module("bad");
    let mut funcs = program.functions();
    lower_function(&mut module, funcs.next().unwrap()).unwrap();
    let err = lower_function(&mut module, funcs.next().unwrap()).unwrap_err();
    let LowerError::Module { function, source } = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(function, "g");
    assert!(matches!(**source, ModuleError::IncompatibleSignature(..)));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn lower_error_is_send_sync_and_static() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<LowerError>();
}

#[test]
fn nesting_at_the_cap_lowers_without_overflowing_the_stack() {
    let n = 250;
    let nested_ifs = format!(
        "def f(x) {}x{};",
        "if x then ".repeat(n),
        " else 0".repeat(n)
    );
    let nested_parens = format!("def g(x) {}x{};", "(x + ".repeat(n), ")".repeat(n));
    for src in [nested_ifs, nested_parens] {
        let program = program(&src);
        let mut module = host_module("deep");
        for func in program.functions() {
            lower_function(&mut module, func).unwrap();
        }
        assert!(!module.finish().emit().unwrap().is_empty());
    }
}

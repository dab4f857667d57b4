//! What the translation does not cover is a `TranslateError::Unsupported`
//! naming it, from `check_translatable` and `translate_function` alike;
//! what `check_translatable` accepts, `translate_function` translates into
//! a module LLVM verifies.

mod translate_support;

use orc_llvm::inkwell::context::Context;
use orc_llvm::{
    check_translatable, default_name_resolver, translate_function, TranslateConfig, TranslateError,
};
use translate_support::{parse, symbol};

/// Both entry points reject the sole function of `text`, naming `what`.
fn assert_unsupported(text: &str, what: &str) {
    let funcs = parse(text);
    let f = funcs.last().unwrap();
    let name = symbol(f);
    let err = check_translatable(f, &name).expect_err("check_translatable must reject it");
    match &err {
        TranslateError::Unsupported { function, what: w } => {
            assert_eq!(function, &name);
            assert!(w.contains(what), "'{w}' does not name '{what}'");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let ctx = Context::create();
    let module = ctx.create_module("m");
    let err2 = translate_function(
        &module,
        &name,
        f,
        &default_name_resolver(),
        &TranslateConfig::default(),
    )
    .expect_err("translate_function must reject it");
    assert_eq!(err.to_string(), err2.to_string());
    assert!(
        err.to_string().contains(&format!("unsupported {}", what))
            || err.to_string().contains(what)
    );
}

/// The `tail` convention's second integer result goes in `rcx`, not
/// `rdx` as in LLVM's C convention.
#[test]
fn tail_calling_convention_with_two_integer_results_is_unsupported() {
    assert_unsupported(
        "function %f(i64) -> i64, i64 tail {\nblock0(v0: i64):\n    return v0, v0\n}",
        "call convention tail with 2 integer result registers",
    );
}

/// A `tail` callee pops its stack arguments; a C one does not.
#[test]
fn tail_calling_convention_with_stack_arguments_is_unsupported() {
    assert_unsupported(
        "function %f(i64, i64, i64, i64, i64, i64, i64) -> i64 tail {\nblock0(v0: i64, v1: i64, v2: i64, v3: i64, v4: i64, v5: i64, v6: i64):\n    return v6\n}",
        "call convention tail with stack arguments",
    );
}

/// LLVM's `musttail` needs the two prototypes to agree.
#[test]
fn a_tail_call_to_another_prototype_is_unsupported() {
    assert_unsupported(
        "function %f(i64) -> i64 tail {\n    fn0 = %g(i64, i64) -> i64 tail\nblock0(v0: i64):\n    return_call fn0(v0, v0)\n}",
        "return_call to a function of another signature",
    );
}

#[test]
fn windows_calling_convention_is_unsupported() {
    assert_unsupported(
        "function %f(i64) -> i64 windows_fastcall {\nblock0(v0: i64):\n    return v0\n}",
        "call convention windows_fastcall",
    );
}

#[test]
fn a_return_area_is_unsupported() {
    assert_unsupported(
        "function %f(i64) -> i64, i64, i64 {\nblock0(v0: i64):\n    return v0, v0, v0\n}",
        "return values in signature",
    );
}

#[test]
fn sret_parameters_are_unsupported() {
    assert_unsupported(
        "function %f(i64 sret) {\nblock0(v0: i64):\n    return\n}",
        "sret parameter",
    );
}

#[test]
fn a_windows_signature_in_a_callee_is_unsupported() {
    assert_unsupported(
        "function %f(i64) -> i64 {\n    fn0 = %g(i64) -> i64 windows_fastcall\nblock0(v0: i64):\n    v1 = call fn0(v0)\n    return v1\n}",
        "call convention windows_fastcall",
    );
}

#[test]
fn thread_local_symbols_are_unsupported() {
    assert_unsupported(
        "function %f() -> i64 {\n    gv0 = symbol tls %x\nblock0:\n    v0 = tls_value.i64 gv0\n    return v0\n}",
        "thread-local symbol",
    );
}

#[test]
fn pinned_registers_are_unsupported() {
    assert_unsupported(
        "function %f() -> i64 {\nblock0:\n    v0 = get_pinned_reg.i64\n    return v0\n}",
        "get_pinned_reg",
    );
}

#[test]
fn half_floats_are_unsupported() {
    assert_unsupported(
        "function %f() -> f16 {\nblock0:\n    v0 = f16const 0x1.0\n    return v0\n}",
        "type f16",
    );
}

#[test]
fn float_conversions_of_i128_are_unsupported() {
    assert_unsupported(
        "function %f(i64) -> f64 {\nblock0(v0: i64):\n    v1 = uextend.i128 v0\n    v2 = fcvt_from_uint.f64 v1\n    return v2\n}",
        "fcvt_from_uint on i128",
    );
}

#[test]
fn an_unresolvable_name_is_invalid_not_unsupported() {
    let funcs =
        parse("function %f() {\n    fn0 = colocated %g()\nblock0:\n    call fn0()\n    return\n}");
    let f = &funcs[0];
    assert!(check_translatable(f, "f").is_ok());
    let ctx = Context::create();
    let module = ctx.create_module("m");
    let resolver: orc_llvm::NameResolver = std::sync::Arc::new(|_, _| None);
    let err = translate_function(&module, "f", f, &resolver, &TranslateConfig::default())
        .expect_err("an unresolvable callee is an error");
    match err {
        TranslateError::Invalid { function, message } => {
            assert_eq!(function, "f");
            assert!(message.contains("%g"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // The failed definition left no body behind.
    assert!(module
        .get_function("f")
        .is_none_or(|f| f.count_basic_blocks() == 0));
}

/// Every function of the differential tests passes `check_translatable`
/// and then translates into a module that LLVM verifies.
#[test]
fn check_translatable_agrees_with_translate_function() {
    let sources = [
        include_str!("translate_control.rs"),
        include_str!("translate_float.rs"),
        include_str!("translate_simd.rs"),
    ];
    let mut n = 0;
    for src in sources {
        for text in clif_literals(src) {
            let Ok(funcs) = cranelift_reader::parse_functions(&text) else {
                continue;
            };
            let ctx = Context::create();
            let module = ctx.create_module("m");
            for f in &funcs {
                let name = symbol(f);
                let checked = check_translatable(f, &name);
                let translated = translate_function(
                    &module,
                    &name,
                    f,
                    &default_name_resolver(),
                    &TranslateConfig::default(),
                );
                assert_eq!(
                    checked.is_ok(),
                    translated.is_ok(),
                    "{name}: check {checked:?}, translate {:?}",
                    translated.err()
                );
                n += 1;
            }
            module
                .verify()
                .unwrap_or_else(|e| panic!("{}", e.to_string()));
        }
    }
    assert!(n >= 10, "only {n} functions found");
}

/// The CLIF texts in string literals of a test source.
fn clif_literals(src: &str) -> Vec<String> {
    src.split("let text = \"")
        .skip(1)
        .filter_map(|s| s.split("\";").next())
        .map(|s| s.replace("\\n", "\n"))
        .filter(|s| s.contains("function %"))
        .collect()
}

/// Between functions of one prototype, `return_call` is a `musttail`
/// call: guaranteed, so recursion through it runs in constant stack
/// (tests/clif/tail_calls.clif recurses a million deep under tier 1).
#[test]
fn tail_calls_between_equal_prototypes_are_musttail_calls() {
    for conv in ["", " tail"] {
        let text = format!(
            "function %f(i64) -> i64{conv} {{\n    fn0 = %g(i64) -> i64{conv}\nblock0(v0: i64):\n    return_call fn0(v0)\n}}"
        );
        let funcs = parse(&text);
        let f = funcs.last().unwrap();
        let name = symbol(f);
        check_translatable(f, &name).unwrap();
        let ctx = Context::create();
        let module = ctx.create_module("m");
        translate_function(
            &module,
            &name,
            f,
            &default_name_resolver(),
            &TranslateConfig::default(),
        )
        .unwrap();
        module.verify().unwrap();
        let ir = module.print_to_string().to_string();
        assert!(ir.contains("musttail call"), "{ir}");
    }
}

#[test]
fn big_endian_vector_accesses_are_unsupported() {
    assert_unsupported(
        "function %f(i64) -> i8x16 {\nblock0(v0: i64):\n    v1 = load.i8x16 big v0\n    return v1\n}",
        "load on i8x16",
    );
}

#[test]
fn i128_division_is_unsupported() {
    assert_unsupported(
        "function %f(i64, i64) -> i64 {\nblock0(v0: i64, v1: i64):\n    v2 = iconcat v0, v1\n    v3 = udiv v2, v2\n    v4, v5 = isplit v3\n    return v4\n}",
        "udiv on i128",
    );
}

//! Typed errors end to end: a caller tells a compile error (which
//! compiler, which function, the compiler's own error), a link error, a
//! missing symbol and a signature mismatch apart, without parsing strings.

mod embed_common;

use embed_common::{define, eager_jit, jit, parse_one};
use orc::embed::Compiler;
use orc::{Error, Tier};

/// Valid CLIF text that Cranelift's verifier rejects (a value of the
/// wrong type returned).
const INVALID: &str = "function %bad(i64) -> i32 {\nblock0(v0: i64):\n    return v0\n}\n";

#[test]
fn a_cranelift_compile_error_names_the_function_and_keeps_the_error() {
    let jit = eager_jit(Tier::Zero);
    match define(&jit, INVALID) {
        Err(e @ Error::Compile { .. }) => {
            let Error::Compile {
                compiler, function, ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(*compiler, Compiler::Cranelift);
            assert!(
                function.as_deref().is_some_and(|f| f.starts_with("bad")),
                "{e}"
            );
            let inner = e
                .compile_error::<orc::cranelift::CompileError>()
                .expect("the compiler's own error");
            assert!(
                matches!(inner, orc::cranelift::CompileError::Codegen { .. }),
                "{inner:?}"
            );
            assert!(std::error::Error::source(&e).is_some());
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

#[test]
fn an_untranslatable_function_is_an_error_of_tier1() {
    // Tier 1 only: a function the translation does not take (`tail`
    // signatures with stack arguments, per the translation's known
    // limits) is its error, not Cranelift's.
    let jit = eager_jit(Tier::One);
    let text = "function %many(i64, i64, i64, i64, i64, i64, i64, i64) -> i64 tail {\nblock0(v0: i64, v1: i64, v2: i64, v3: i64, v4: i64, v5: i64, v6: i64, v7: i64):\n    return v7\n}\n";
    match define(&jit, text) {
        Err(e @ Error::Compile { .. }) => {
            let Error::Compile { compiler, .. } = &e else {
                unreachable!()
            };
            assert_ne!(*compiler, Compiler::Cranelift, "{e}");
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

#[test]
fn a_missing_symbol_is_its_own_variant() {
    let jit = eager_jit(Tier::Zero);
    let text = "function %calls(i64) -> i64 {\n    sig0 = (i64) -> i64 system_v\n    fn0 = %nowhere_to_be_found sig0\nblock0(v0: i64):\n    v1 = call fn0(v0)\n    return v1\n}\n";
    match define(&jit, text) {
        Err(Error::SymbolNotFound { names }) => {
            assert_eq!(names, ["nowhere_to_be_found"]);
        }
        other => panic!("expected a missing symbol, got {other:?}"),
    }
}

#[test]
fn a_bad_object_is_a_link_error() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    let module = jit.module()?;
    match module.add_object("junk.o", b"not an ELF object".to_vec()) {
        Err(Error::Link(e)) => assert!(e.to_string().contains("junk.o"), "{e}"),
        other => panic!("expected a link error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn module_functions_check_signatures_too() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    let module = jit.module()?;
    module.add_function(
        "id",
        parse_one("function %id(f32) -> f32 {\nblock0(v0: f32):\n    return v0\n}\n"),
    )?;
    assert_eq!(module.function::<(f32,), f32>("id")?.call((1.5,))?, 1.5);
    match module.function::<(f64,), f64>("id") {
        Err(Error::SignatureMismatch(m)) => {
            assert!(m.expected.starts_with("(f64) -> f64"), "{m}");
            assert!(m.found.starts_with("(f32) -> f32"), "{m}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(matches!(
        module.function::<(), ()>("unknown"),
        Err(Error::UnknownSignature { .. })
    ));
    Ok(())
}

/// IR the verifier takes but x86's instruction selection cannot: an
/// AArch64 intrinsic.
const CANNOT_SELECT: &str = r#"
declare i32 @llvm.aarch64.crc32b(i32, i32)
define i32 @bad(i32 %a, i32 %b) {
  %r = call i32 @llvm.aarch64.crc32b(i32 %a, i32 %b)
  ret i32 %r
}
"#;

#[test]
fn an_llvm_fatal_error_is_its_own_variant() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    let flags = orc::core::SymbolFlags::EXPORTED | orc::core::SymbolFlags::CALLABLE;
    let module = orc::llvm::IrBufferModule::new(
        "cannot_select.ll",
        vec![("bad".to_owned(), flags)],
        CANNOT_SELECT.as_bytes(),
    );
    jit.llvm_layer()?.add(jit.bodies_dylib(), module, None)?;
    let e: Error = jit
        .bodies_dylib()
        .lookup_symbol("bad")
        .expect_err("LLVM cannot select it")
        .into();
    match &e {
        Error::LlvmFatal { function, .. } => {
            assert_eq!(function.as_deref(), Some("bad"), "{e}");
            assert!(
                e.compile_error::<orc::llvm::CompileError>()
                    .is_some_and(|c| matches!(c, orc::llvm::CompileError::Fatal { .. })),
                "{e}"
            );
        }
        other => panic!("expected an LLVM fatal error, got {other:?}"),
    }
    // The JIT goes on.
    let module = jit.module()?;
    module.add_function(
        "ok",
        parse_one("function %ok() -> i64 {\nblock0:\n    v0 = iconst.i64 1\n    return v0\n}\n"),
    )?;
    assert_eq!(module.function::<(), i64>("ok")?.call(())?, 1);
    Ok(())
}

#[test]
fn a_lazy_functions_compile_error_comes_from_its_handles_first_call() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    // Lazy: defining it compiles nothing.
    define(&jit, INVALID)?;
    let bad = jit.function::<(i64,), i32>("bad")?;
    for _ in 0..2 {
        match bad.call((1,)) {
            Err(Error::Compile {
                compiler: Compiler::Cranelift,
                function,
                ..
            }) => assert!(function.is_some_and(|f| f.starts_with("bad"))),
            other => panic!("expected a compile error, got {other:?}"),
        }
    }
    // The JIT goes on.
    define(
        &jit,
        "function %good(i64) -> i64 {\nblock0(v0: i64):\n    return v0\n}\n",
    )?;
    assert_eq!(jit.function::<(i64,), i64>("good")?.call((5,))?, 5);
    Ok(())
}

//! LLVM's fatal errors (`report_fatal_error`) during optimization or code
//! generation fail their unit with [`CompileError::Fatal`] instead of
//! ending the process; later compiles, on the same thread or another, work.

use std::sync::Arc;

use orc_core::link::ObjectLinkingLayer;
use orc_core::{ExecutionSession, JitDylib, SymbolFlags, ThreadPoolDispatcher};
use orc_llvm::{
    CompileError, CompileStage, CompiledObject, IrBufferModule, LlvmCompiler, LlvmConfig,
    LlvmLayer, LlvmOptLevel,
};

/// Passes the verifier, but x86 instruction selection cannot select an
/// AArch64 intrinsic, whatever the host's CPU and features.
const CANNOT_SELECT: &str = "
declare i32 @llvm.aarch64.crc32b(i32, i32)

define i32 @bad(i32 %a, i32 %b) {
  %r = call i32 @llvm.aarch64.crc32b(i32 %a, i32 %b)
  ret i32 %r
}
";

/// The same failure through a function's own CPU and features: an AVX2
/// intrinsic in a function compiled for baseline x86-64 without AVX2.
const FEATURE_DISABLED: &str = "
declare <4 x i32> @llvm.x86.avx2.psrlv.d(<4 x i32>, <4 x i32>)

define <4 x i32> @shift(<4 x i32> %a, <4 x i32> %b) #0 {
  %r = call <4 x i32> @llvm.x86.avx2.psrlv.d(<4 x i32> %a, <4 x i32> %b)
  ret <4 x i32> %r
}

attributes #0 = { \"target-cpu\"=\"x86-64\" \"target-features\"=\"-avx2,-avx512f\" }
";

const GOOD: &str = "
define i32 @good(i32 %a) {
  %r = mul i32 %a, 3
  ret i32 %r
}
";

fn callable() -> SymbolFlags {
    SymbolFlags::EXPORTED | SymbolFlags::CALLABLE
}

/// `CANNOT_SELECT` and `GOOD` with their functions renamed.
fn renamed(src: &str, from: &str, to: &str) -> Vec<u8> {
    src.replace(&format!("@{from}("), &format!("@{to}("))
        .into_bytes()
}

struct Fatal {
    module: String,
    function: Option<String>,
    stage: CompileStage,
    reason: String,
}

fn expect_fatal(res: Result<CompiledObject, CompileError>) -> Fatal {
    match res {
        Err(CompileError::Fatal {
            module,
            function,
            stage,
            reason,
        }) => Fatal {
            module,
            function,
            stage,
            reason,
        },
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

fn compile(
    compiler: &LlvmCompiler,
    name: &str,
    src: &[u8],
) -> Result<CompiledObject, CompileError> {
    compiler.compile(IrBufferModule::new(name, vec![], src))
}

#[test]
fn cannot_select_is_an_error_of_the_unit_and_the_compiler_goes_on() {
    let compiler = LlvmCompiler::new(LlvmConfig::default()).unwrap();
    for round in 0..3 {
        let fatal = expect_fatal(compile(&compiler, "bad.ll", CANNOT_SELECT.as_bytes()));
        assert_eq!(fatal.module, "bad.ll");
        assert_eq!(fatal.function.as_deref(), Some("bad"));
        assert_eq!(fatal.stage, CompileStage::Codegen);
        assert!(
            fatal
                .reason
                .starts_with("Cannot select: intrinsic %llvm.aarch64.crc32b"),
            "{round}: {}",
            fatal.reason
        );
        let good = compile(&compiler, "good.ll", GOOD.as_bytes()).unwrap();
        assert_eq!(good.functions[0].name, "good");
    }
    let err = expect_err_text(compile(&compiler, "bad.ll", CANNOT_SELECT.as_bytes()));
    assert_eq!(
        err,
        "llvm fatal error while generating code for function 'bad' (module 'bad.ll'): \
         Cannot select: intrinsic %llvm.aarch64.crc32b"
    );
}

fn expect_err_text(res: Result<CompiledObject, CompileError>) -> String {
    match res {
        Err(e) => e.to_string(),
        Ok(c) => panic!("expected an error, compiled {}", c.name),
    }
}

#[test]
fn a_function_compiled_without_the_features_its_intrinsic_needs_fails_alone() {
    // Also while emitting assembly (the `--dump asm` path) and at -O0.
    for (opt_level, capture_asm) in [(LlvmOptLevel::O2, false), (LlvmOptLevel::O0, true)] {
        let compiler = LlvmCompiler::new(LlvmConfig {
            opt_level,
            capture_asm,
            ..LlvmConfig::default()
        })
        .unwrap();
        let src = format!("{FEATURE_DISABLED}{GOOD}");
        let fatal = expect_fatal(compile(&compiler, "features.ll", src.as_bytes()));
        assert_eq!(fatal.module, "features.ll");
        assert_eq!(fatal.function, None, "two functions: the module is named");
        assert_eq!(fatal.stage, CompileStage::Codegen);
        assert!(
            fatal.reason.starts_with("Cannot select:"),
            "{}",
            fatal.reason
        );
        let good = compile(&compiler, "good.ll", GOOD.as_bytes()).unwrap();
        assert_eq!(good.asm.is_some(), capture_asm);
    }
}

#[test]
fn a_fatal_error_in_the_pass_pipeline_is_an_error_of_the_unit() {
    // `trigger-verifier-error` breaks the module on purpose; the verifier
    // pass after it reports that as a fatal error.
    let broken = LlvmCompiler::new(LlvmConfig {
        pipeline: Some("trigger-verifier-error,verify".into()),
        ..LlvmConfig::default()
    })
    .unwrap();
    let fine = LlvmCompiler::new(LlvmConfig::default()).unwrap();
    for _ in 0..2 {
        let fatal = expect_fatal(compile(&broken, "good.ll", GOOD.as_bytes()));
        assert_eq!(fatal.stage, CompileStage::Optimize);
        assert_eq!(fatal.function.as_deref(), Some("good"));
        assert!(
            fatal.reason.contains("Broken module found"),
            "{}",
            fatal.reason
        );
        assert!(compile(&fine, "good.ll", GOOD.as_bytes()).is_ok());
    }
}

struct Jit {
    es: ExecutionSession,
    jd: JitDylib,
    layer: Arc<LlvmLayer>,
}

/// Compiles run on a pool thread, not the looking-up thread.
fn pooled_jit() -> Jit {
    let es = ExecutionSession::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(2).unwrap()));
    let jd = es.create_jit_dylib("main").unwrap();
    let objects = ObjectLinkingLayer::new(&es);
    let layer = LlvmLayer::new(LlvmCompiler::new(LlvmConfig::default()).unwrap(), objects);
    Jit { es, jd, layer }
}

fn call_i32(jd: &JitDylib, name: &str, x: i32) -> i32 {
    let addr = jd.lookup_symbol(name).unwrap().addr;
    // SAFETY: the `good` functions of these tests are i32 -> i32.
    let f: extern "C" fn(i32) -> i32 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
    f(x)
}

#[test]
fn failing_and_working_units_interleave_on_pool_threads() {
    let j = pooled_jit();
    for i in 0..3 {
        let (bad, good) = (format!("bad{i}"), format!("good{i}"));
        let add = |name: &str, src: Vec<u8>| {
            let module =
                IrBufferModule::new(format!("{name}.ll"), vec![(name.into(), callable())], src);
            j.layer.add(&j.jd, module, None).unwrap();
        };
        add(&bad, renamed(CANNOT_SELECT, "bad", &bad));
        add(&good, renamed(GOOD, "good", &good));
        // One lookup from this thread, one from another: both compile on
        // the pool.
        let err = j.jd.lookup_symbol(&bad).unwrap_err().to_string();
        assert!(
            err.contains(&format!("function '{bad}' (module '{bad}.ll')")),
            "{err}"
        );
        assert!(
            err.contains("Cannot select: intrinsic %llvm.aarch64.crc32b"),
            "{err}"
        );
        let again = j.jd.lookup_symbol(&bad).unwrap_err().to_string();
        assert!(again.contains(&bad), "a failed unit stays failed: {again}");
        let jd = j.jd.clone();
        let value = std::thread::spawn(move || call_i32(&jd, &good, 14))
            .join()
            .unwrap();
        assert_eq!(value, 42);
    }
    let stats = j.layer.stats();
    assert_eq!((stats.failures, stats.modules), (3, 3));
    j.es.end_session().unwrap();
}

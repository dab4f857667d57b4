//! Tier 1 end to end: LLVM IR -> verified, optimized object -> the core's
//! linker -> a call; and failures that stay inside their unit.

use std::sync::Arc;

use inkwell::context::Context;
use inkwell::module::Module;
use orc_core::link::ObjectLinkingLayer;
use orc_core::{DynamicLibrarySearchGenerator, ExecutionSession, JitDylib, SymbolFlags};
use orc_llvm::inkwell;
use orc_llvm::{
    CompileError, FnLlvmModule, IrBufferModule, LlvmCompiler, LlvmConfig, LlvmLayer, LlvmOptLevel,
};

fn callable() -> SymbolFlags {
    SymbolFlags::EXPORTED | SymbolFlags::CALLABLE
}

struct Jit {
    es: ExecutionSession,
    jd: JitDylib,
    layer: Arc<LlvmLayer>,
}

fn jit_with(config: LlvmConfig) -> Jit {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let host = es.create_jit_dylib("host").unwrap();
    host.add_generator(Arc::new(
        DynamicLibrarySearchGenerator::load("libm.so.6", None).unwrap(),
    ))
    .unwrap();
    jd.add_to_link_order(&host).unwrap();
    let objects = ObjectLinkingLayer::new(&es);
    let layer = LlvmLayer::new(LlvmCompiler::new(config).unwrap(), objects);
    Jit { es, jd, layer }
}

fn jit() -> Jit {
    jit_with(LlvmConfig::default())
}

fn call_f64(jd: &JitDylib, name: &str, x: f64) -> f64 {
    let addr = jd.lookup_symbol(name).unwrap().addr;
    // SAFETY: every function these tests call this way is f64 -> f64.
    let f: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
    f(x)
}

/// `name(x) = x * factor + sum(callee(x))`, built with inkwell's builder.
fn define_fn<'ctx>(
    ctx: &'ctx Context,
    m: &Module<'ctx>,
    name: &str,
    factor: f64,
    callees: &[&str],
) -> Result<(), String> {
    let f64t = ctx.f64_type();
    let fn_type = f64t.fn_type(&[f64t.into()], false);
    let f = m.add_function(name, fn_type, None);
    let b = ctx.create_builder();
    b.position_at_end(ctx.append_basic_block(f, "entry"));
    let x = f.get_nth_param(0).unwrap().into_float_value();
    let e = |e: inkwell::builder::BuilderError| e.to_string();
    let mut v = b
        .build_float_mul(x, f64t.const_float(factor), "scaled")
        .map_err(e)?;
    for callee in callees {
        let c = m
            .get_function(callee)
            .unwrap_or_else(|| m.add_function(callee, fn_type, None));
        let r = b
            .build_call(c, &[x.into()], "r")
            .map_err(e)?
            .try_as_basic_value()
            .basic()
            .ok_or("void call")?;
        v = b
            .build_float_add(v, r.into_float_value(), "sum")
            .map_err(e)?;
    }
    b.build_return(Some(&v)).map_err(e)?;
    Ok(())
}

#[test]
fn a_hand_built_module_compiles_links_and_runs() {
    let j = jit();
    let module = FnLlvmModule::new(
        "mod",
        vec![("leaf".into(), callable()), ("caller".into(), callable())],
        |ctx| {
            let m = ctx.create_module("mod");
            define_fn(ctx, &m, "leaf", 2.0, &[])?;
            define_fn(ctx, &m, "caller", 1.0, &["leaf", "sqrt"])?;
            Ok(m)
        },
    );
    j.layer.add(&j.jd, module, None).unwrap();
    assert_eq!(
        j.layer.stats().modules,
        0,
        "nothing compiled before the lookup"
    );
    // caller(16) = 16 + leaf(16) + sqrt(16) = 16 + 32 + 4.
    assert_eq!(call_f64(&j.jd, "caller", 16.0), 52.0);
    assert_eq!(call_f64(&j.jd, "leaf", 3.0), 6.0);
    let stats = j.layer.stats();
    assert_eq!(stats.modules, 1);
    let mut names: Vec<_> = stats.functions.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["caller", "leaf"]);
    assert!(stats.functions.iter().all(|f| f.code_size > 0));
    j.es.end_session().unwrap();
}

#[test]
fn modules_link_to_each_other_by_name() {
    let j = jit();
    j.layer
        .add(
            &j.jd,
            FnLlvmModule::new("a", vec![("a".into(), callable())], |ctx| {
                let m = ctx.create_module("a");
                define_fn(ctx, &m, "a", 10.0, &["b"])?;
                Ok(m)
            }),
            None,
        )
        .unwrap();
    j.layer
        .add(
            &j.jd,
            FnLlvmModule::new("b", vec![("b".into(), callable())], |ctx| {
                let m = ctx.create_module("b");
                define_fn(ctx, &m, "b", 3.0, &[])?;
                Ok(m)
            }),
            None,
        )
        .unwrap();
    assert_eq!(call_f64(&j.jd, "a", 2.0), 26.0);
    assert_eq!(j.layer.stats().modules, 2);
    j.es.end_session().unwrap();
}

const DOMINANCE_ERROR: &str = "
define double @bad(double %x) {
entry:
  %y = fadd double %z, 1.0
  %z = fadd double %x, 1.0
  ret double %y
}
";

const GOOD: &str = "
define double @good(double %x) {
entry:
  %y = fmul double %x, 4.0
  ret double %y
}
";

#[test]
fn a_module_failing_verification_fails_only_its_unit() {
    let j = jit();
    j.layer
        .add(
            &j.jd,
            IrBufferModule::new(
                "bad.ll",
                vec![("bad".into(), callable())],
                DOMINANCE_ERROR.as_bytes(),
            ),
            None,
        )
        .unwrap();
    j.layer
        .add(
            &j.jd,
            IrBufferModule::new(
                "good.ll",
                vec![("good".into(), callable())],
                GOOD.as_bytes(),
            ),
            None,
        )
        .unwrap();
    let err = j.jd.lookup_symbol("bad").unwrap_err().to_string();
    assert!(err.contains("fails verification"), "{err}");
    assert!(err.contains("does not dominate"), "{err}");
    assert_eq!(call_f64(&j.jd, "good", 2.5), 10.0);
    let stats = j.layer.stats();
    assert_eq!((stats.failures, stats.modules), (1, 1));
    j.es.end_session().unwrap();
}

#[test]
fn ir_that_does_not_parse_is_a_frontend_error_with_a_line() {
    let compiler = LlvmCompiler::new(LlvmConfig::default()).unwrap();
    let module = IrBufferModule::new(
        "broken.ll",
        vec![],
        "define i32 @f() {\n  ret i32 %nope\n}\n".as_bytes(),
    );
    match compiler.compile(module) {
        Err(CompileError::Frontend { message, .. }) => {
            assert!(message.starts_with("broken.ll:2:"), "{message}");
            assert!(message.contains("use of undefined value"), "{message}");
        }
        other => panic!("expected a frontend error, got {other:?}"),
    }
}

#[test]
fn invalid_inline_assembly_is_an_error_not_an_exit() {
    let compiler = LlvmCompiler::new(LlvmConfig::default()).unwrap();
    let src = "
define void @f() {
  call void asm sideeffect \"this_is_not_an_instruction %eax\", \"\"()
  ret void
}
";
    let module = IrBufferModule::new("asm.ll", vec![], src.as_bytes());
    match compiler.compile(module) {
        Err(CompileError::Codegen { message, .. }) => {
            assert!(message.contains("this_is_not_an_instruction"), "{message}");
        }
        other => panic!("expected a codegen error, got {other:?}"),
    }
    // The compiler is still usable.
    let ok = IrBufferModule::new("good.ll", vec![], GOOD.as_bytes());
    assert!(compiler.compile(ok).is_ok());
}

#[test]
fn a_module_for_another_architecture_is_rejected() {
    let compiler = LlvmCompiler::new(LlvmConfig::default()).unwrap();
    let src = format!("target triple = \"aarch64-unknown-linux-gnu\"\n{GOOD}");
    match compiler.compile(IrBufferModule::new("arm.ll", vec![], src.into_bytes())) {
        Err(CompileError::ForeignTriple { triple, .. }) => {
            assert_eq!(triple, "aarch64-unknown-linux-gnu")
        }
        other => panic!("expected a foreign-triple error, got {other:?}"),
    }
}

#[test]
fn a_bad_pipeline_is_an_error() {
    let compiler = LlvmCompiler::new(LlvmConfig {
        pipeline: Some("no-such-pass".into()),
        ..LlvmConfig::default()
    })
    .unwrap();
    let err = compiler
        .compile(IrBufferModule::new("good.ll", vec![], GOOD.as_bytes()))
        .unwrap_err();
    assert!(matches!(err, CompileError::Passes { .. }), "{err:?}");
}

#[test]
fn every_opt_level_compiles_and_captures_ir_and_asm() {
    for level in ["O0", "O1", "O2", "O3"] {
        let opt_level: LlvmOptLevel = level.parse().unwrap();
        let j = jit_with(LlvmConfig {
            opt_level,
            capture_ir: true,
            capture_asm: true,
            ..LlvmConfig::default()
        });
        let seen = Arc::new(parking_lot_free::Seen::default());
        let s = seen.clone();
        j.layer.set_observer(move |c| s.record(c));
        j.layer
            .add(
                &j.jd,
                IrBufferModule::new(
                    "good.ll",
                    vec![("good".into(), callable())],
                    GOOD.as_bytes(),
                ),
                None,
            )
            .unwrap();
        assert_eq!(call_f64(&j.jd, "good", 1.5), 6.0, "{level}");
        let (ir, asm) = seen.take();
        assert!(
            ir.contains("define") && ir.contains("@good"),
            "{level}: {ir}"
        );
        assert!(asm.contains("good:"), "{level}: {asm}");
        j.es.end_session().unwrap();
    }
    assert!("O4".parse::<LlvmOptLevel>().is_err());
}

/// What the observer saw, without another dependency.
mod parking_lot_free {
    use std::sync::Mutex;

    #[derive(Default)]
    pub(crate) struct Seen(Mutex<(String, String)>);

    impl Seen {
        pub(crate) fn record(&self, c: &orc_llvm::CompiledObject) {
            let mut s = self.0.lock().unwrap();
            for f in &c.functions {
                s.0.push_str(f.ir.as_deref().unwrap_or(""));
            }
            s.1.push_str(c.asm.as_deref().unwrap_or(""));
        }

        pub(crate) fn take(&self) -> (String, String) {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }
}

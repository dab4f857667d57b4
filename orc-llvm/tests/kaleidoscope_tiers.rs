//! Every shared Kaleidoscope program (tests/programs/kaleidoscope/*.kal)
//! run twice, through the tier-0 path (lower_clif + CraneliftLayer) and the
//! tier-1 path (lower_llvm + LlvmLayer), in the facade's layout: bodies
//! `f$tN` in `main.impl`, lazy stubs `f` in `main`, host functions in
//! `host`. Every top-level expression must give the same bits, and the
//! output of `putchard`/`printd` must be the same byte for byte (and equal
//! to the program's `.out` file).

use std::cell::RefCell;
use std::ffi::c_char;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cranelift_module::Module as _;
use orc_core::lazy::LazyReexportsManager;
use orc_core::link::ObjectLinkingLayer;
use orc_core::{
    absolute_symbols, DynamicLibrarySearchGenerator, ExecutionSession, ExecutorAddr,
    ExecutorSymbolDef, JitDylib, SymbolAliasMap, SymbolAliasMapEntry, SymbolFlags, SymbolMap,
};
use orc_cranelift::{CraneliftCompiler, CraneliftConfig, CraneliftLayer, CraneliftModule};
use orc_kaleidoscope::{parse_and_check, Function, KaleidoscopeLlvmModule, Program};
use orc_llvm::{LlvmCompiler, LlvmConfig, LlvmLayer};

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

thread_local! {
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn printf_into_out(x: f64, format: &std::ffi::CStr) {
    let mut buf = [0u8; 512];
    // SAFETY: `format` has exactly one %f matched by one double; snprintf
    // writes at most `buf.len()` bytes including the NUL.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr().cast::<c_char>(),
            buf.len(),
            format.as_ptr(),
            x,
        )
    };
    let n = usize::try_from(n).unwrap_or(0).min(buf.len() - 1);
    OUT.with(|o| o.borrow_mut().extend_from_slice(&buf[..n]));
}

extern "C" fn putchard(x: f64) -> f64 {
    OUT.with(|o| o.borrow_mut().push(x as u8));
    0.0
}

extern "C" fn printd(x: f64) -> f64 {
    printf_into_out(x, c"%f\n");
    0.0
}

fn take_output() -> String {
    OUT.with(|o| String::from_utf8_lossy(&std::mem::take(&mut *o.borrow_mut())).into_owned())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tier {
    Zero,
    One,
}

impl Tier {
    fn body(self, name: &str) -> String {
        match self {
            Tier::Zero => format!("{name}$t0"),
            Tier::One => format!("{name}$t1"),
        }
    }
}

/// Kaleidoscope functions lowered by tier 0.
struct ClifModule {
    name: String,
    functions: Vec<Function>,
}

impl CraneliftModule for ClifModule {
    fn name(&self) -> &str {
        &self.name
    }
    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.functions
            .iter()
            .map(|f| (f.proto.name.clone(), CALLABLE))
            .collect()
    }
    fn build(self: Box<Self>, module: &mut dyn cranelift_module::Module) -> Result<(), String> {
        let _ = module.isa();
        for f in &self.functions {
            orc_kaleidoscope::lower_function(module, f).map_err(|e| format!("{e:?}"))?;
        }
        Ok(())
    }
}

struct Session {
    tier: Tier,
    es: ExecutionSession,
    main: JitDylib,
    bodies: JitDylib,
    lazy: Arc<LazyReexportsManager>,
    cranelift: Arc<CraneliftLayer>,
    llvm: Arc<LlvmLayer>,
}

impl Session {
    fn new(tier: Tier) -> Session {
        let es = ExecutionSession::new();
        let host = es.create_jit_dylib("host").unwrap();
        let f = |p: extern "C" fn(f64) -> f64| {
            ExecutorSymbolDef::new(ExecutorAddr::from_ptr(p as *const u8), CALLABLE)
        };
        host.define(
            absolute_symbols(SymbolMap::from([
                (es.intern("putchard"), f(putchard)),
                (es.intern("printd"), f(printd)),
            ])),
            None,
        )
        .unwrap();
        host.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))
            .unwrap();
        host.add_generator(Arc::new(
            DynamicLibrarySearchGenerator::load("libm.so.6", None).unwrap(),
        ))
        .unwrap();
        let main = es.create_jit_dylib("main").unwrap();
        main.add_to_link_order(&host).unwrap();
        let bodies = es.create_jit_dylib("main.impl").unwrap();
        bodies.set_link_order(&[&main, &host]).unwrap();
        let objects = ObjectLinkingLayer::new(&es);
        let cranelift = CraneliftLayer::new(
            CraneliftCompiler::new(CraneliftConfig::default()).unwrap(),
            objects.clone(),
        );
        let llvm = LlvmLayer::new(LlvmCompiler::new(LlvmConfig::default()).unwrap(), objects);
        let lazy = LazyReexportsManager::new(&es).unwrap();
        Session {
            tier,
            es,
            main,
            bodies,
            lazy,
            cranelift,
            llvm,
        }
    }

    fn add_module(&self, name: &str, functions: Vec<Function>) {
        let tracker = self.bodies.create_resource_tracker().unwrap();
        match self.tier {
            Tier::Zero => self.cranelift.add(
                &self.bodies,
                Box::new(ClifModule {
                    name: name.to_owned(),
                    functions,
                }),
                Some(&tracker),
            ),
            Tier::One => self.llvm.add(
                &self.bodies,
                KaleidoscopeLlvmModule::new(name, functions),
                Some(&tracker),
            ),
        }
        .unwrap();
    }

    /// Defines the program's functions (one unit each, behind stubs) and
    /// runs its top-level expressions; returns their values and the output.
    fn run(&self, program: &Program) -> (Vec<u64>, String) {
        let _ = take_output();
        for func in program.functions() {
            let mut body = func.clone();
            body.proto.name = self.tier.body(&func.proto.name);
            self.add_module(&func.proto.name, vec![body]);
            let alias = SymbolAliasMap::from([(
                self.es.intern(&func.proto.name),
                SymbolAliasMapEntry {
                    aliasee: self.es.intern(&self.tier.body(&func.proto.name)),
                    flags: CALLABLE,
                },
            )]);
            self.main
                .define(self.lazy.lazy_reexports(&self.bodies, alias), None)
                .unwrap();
        }
        let mut values = Vec::new();
        for expr in program.top_level_exprs() {
            self.add_module(&expr.proto.name, vec![expr.clone()]);
            let addr = self.bodies.lookup_symbol(&expr.proto.name).unwrap().addr;
            // SAFETY: a top-level expression is compiled as
            // `extern "C" fn() -> f64` by both tiers.
            let f: extern "C" fn() -> f64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
            let value = f();
            printf_into_out(value, c"Evaluated to %f\n");
            values.push(value.to_bits());
        }
        (values, take_output())
    }
}

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/programs/kaleidoscope")
}

fn programs() -> Vec<(String, String, PathBuf)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(programs_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "kal"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap(), p)
        })
        .collect()
}

#[test]
fn every_shared_program_gives_the_same_values_and_output_under_both_tiers() {
    let programs = programs();
    assert!(programs.len() >= 6, "the shared programs folder is missing");
    for (name, src, path) in programs {
        let program = parse_and_check(&src).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let t0 = Session::new(Tier::Zero);
        let (values0, out0) = t0.run(&program);
        let t1 = Session::new(Tier::One);
        let (values1, out1) = t1.run(&program);
        assert_eq!(
            values0, values1,
            "{name}: top-level values differ between tiers"
        );
        assert_eq!(out0, out1, "{name}: output differs between tiers");
        let expected = std::fs::read_to_string(path.with_extension("out")).unwrap();
        assert_eq!(
            out1, expected,
            "{name}: tier-1 output differs from the .out file"
        );
        let stats = t1.llvm.stats();
        assert_eq!(stats.failures, 0, "{name}");
        assert!(stats.modules >= program.top_level_exprs().count(), "{name}");
        t0.es.end_session().unwrap();
        t1.es.end_session().unwrap();
    }
}

/// Programs where fused multiply-add or reassociation would change the
/// printed bits.
const FP_SENSITIVE: &str = "
def fma3(a b c) a * b + c;
def cancel(x) (x + 10000000000000000) - 10000000000000000;
def tiny(x) x * x * 0.0000001 * 10000000;
fma3(0.1, 10, 0 - 1);
fma3(1.0000001, 1.0000001, 0 - 1.0000002);
cancel(1.5);
tiny(0.3);
0 - 0;
";

#[test]
fn floating_point_is_bit_identical_and_never_fused() {
    let program = parse_and_check(FP_SENSITIVE).unwrap();
    let (values0, _) = Session::new(Tier::Zero).run(&program);
    let (values1, _) = Session::new(Tier::One).run(&program);
    assert_eq!(values0, values1);

    let compiler = LlvmCompiler::new(LlvmConfig {
        capture_asm: true,
        capture_ir: true,
        ..LlvmConfig::default()
    })
    .unwrap();
    let compiled = compiler
        .compile(KaleidoscopeLlvmModule::new(
            "fma3",
            program.functions().cloned().collect(),
        ))
        .unwrap();
    let asm = compiled.asm.unwrap();
    assert!(
        !asm.contains("fmadd") && !asm.contains("fmsub"),
        "fused multiply-add in:\n{asm}"
    );
    for f in &compiled.functions {
        let ir = f.ir.as_deref().unwrap();
        assert!(!ir.contains("contract") && !ir.contains("fast"), "{ir}");
        assert!(!ir.contains("alloca"), "mem2reg did not run:\n{ir}");
    }
}

#[test]
fn a_lowering_error_fails_only_its_unit() {
    // `f` calls `g` with two arguments after declaring it with one: the
    // module cannot be built; the next unit is unaffected.
    let src = "extern g(x); def f(x) g(x) + g(x, x); def h(x) x * 3;";
    let program = parse_and_check(src);
    // The checker rejects it; lower the unchecked AST directly.
    assert!(program.is_err());
    let program = orc_kaleidoscope::parse_program(src).unwrap();
    let t1 = Session::new(Tier::One);
    let funcs: Vec<Function> = program.functions().cloned().collect();
    t1.add_module("f", vec![funcs[0].clone()]);
    t1.add_module("h", vec![funcs[1].clone()]);
    let err = t1.bodies.lookup_symbol("f").unwrap_err().to_string();
    assert!(err.contains("'g' is used with 2 arguments"), "{err}");
    let addr = t1.bodies.lookup_symbol("h").unwrap().addr;
    // SAFETY: `h` is a one-parameter Kaleidoscope function.
    let h: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
    assert_eq!(h(2.0), 6.0);
    t1.es.end_session().unwrap();
}

//! Shared by the Kaleidoscope tier tests and benchmark: one session per
//! tier in the facade's layout (bodies `f$tN` in `main.impl`, lazy stubs `f`
//! in `main`, host functions in `host`), with `putchard`/`printd` writing
//! into a per-thread buffer.
#![allow(dead_code)]

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
use orc_kaleidoscope::{Function, KaleidoscopeLlvmModule, Program};
use orc_llvm::{LlvmCompiler, LlvmConfig, LlvmLayer};

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

thread_local! {
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn printf_into_out(x: f64, format: &std::ffi::CStr) {
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

pub(crate) fn take_output() -> String {
    OUT.with(|o| String::from_utf8_lossy(&std::mem::take(&mut *o.borrow_mut())).into_owned())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Tier {
    Zero,
    One,
}

impl Tier {
    pub(crate) fn body(self, name: &str) -> String {
        match self {
            Tier::Zero => format!("{name}$t0"),
            Tier::One => format!("{name}$t1"),
        }
    }
}

/// Kaleidoscope functions lowered by tier 0.
pub(crate) struct ClifModule {
    pub(crate) name: String,
    pub(crate) functions: Vec<Function>,
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

pub(crate) struct Session {
    pub(crate) tier: Tier,
    pub(crate) es: ExecutionSession,
    pub(crate) main: JitDylib,
    pub(crate) bodies: JitDylib,
    pub(crate) lazy: Arc<LazyReexportsManager>,
    pub(crate) cranelift: Arc<CraneliftLayer>,
    pub(crate) llvm: Arc<LlvmLayer>,
}

impl Session {
    pub(crate) fn new(tier: Tier) -> Session {
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

    pub(crate) fn add_module(&self, name: &str, functions: Vec<Function>) {
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
    pub(crate) fn run(&self, program: &Program) -> (Vec<u64>, String) {
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

pub(crate) fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/kaleidoscope")
}

pub(crate) fn programs() -> Vec<(String, String, PathBuf)> {
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

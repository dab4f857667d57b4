//! Differential harness of the CLIF -> LLVM IR translation tests: a CLIF
//! text is parsed with cranelift-reader and run three ways on the same
//! inputs: by cranelift-interpreter, as native Cranelift code, and
//! translated to LLVM IR and compiled at O2. Both native versions are
//! linked by orc-core and called through a wrapper that Cranelift compiles
//! (`call_indirect` with the function's own signature), so every call also
//! checks that the translated function has Cranelift's ABI.
//!
//! Native calls run in a forked child: a trap ends the child, whose SIGILL
//! handler reports the trap code LLVM's `ud1` encodes (Cranelift's `ud2`
//! carries none) through a shared page.
#![allow(dead_code)]

use std::sync::Arc;

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{
    self, types, AbiParam, ExternalName, InstBuilder, Signature, UserExternalName,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_interpreter::environment::FunctionStore;
use cranelift_interpreter::interpreter::{Interpreter, InterpreterState};
use cranelift_interpreter::step::{ControlFlow, CraneliftTrap};
use cranelift_module::Linkage;
use orc_core::link::ObjectLinkingLayer;
use orc_core::{DynamicLibrarySearchGenerator, ExecutionSession, JitDylib, SymbolFlags};
use orc_cranelift::{CraneliftCompiler, CraneliftConfig, CraneliftLayer, FnModule};
use orc_llvm::{
    default_name_resolver, ClifLlvmModule, LlvmCompiler, LlvmConfig, LlvmLayer, TranslateConfig,
};

/// Bytes per argument or result slot in the wrapper's buffers.
const SLOT: usize = 16;

/// How one run ended.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// Returned these values.
    Values(Vec<DataValue>),
    /// Trapped; with the trap code when it is known.
    Trap(Option<u8>),
    /// Died of another signal (a crash: always a failure).
    Signal(i32),
}

/// The functions of a CLIF text, compiled by both tiers.
pub(crate) struct Harness {
    pub(crate) funcs: Vec<ir::Function>,
    es: ExecutionSession,
    llvm: JitDylib,
    clif: JitDylib,
    wrap: JitDylib,
    pub(crate) config: TranslateConfig,
}

fn callable() -> SymbolFlags {
    SymbolFlags::EXPORTED | SymbolFlags::CALLABLE
}

/// The symbol of a parsed function (`%name` -> `name`).
pub(crate) fn symbol(f: &ir::Function) -> String {
    f.name.to_string().trim_start_matches('%').to_owned()
}

pub(crate) fn parse(text: &str) -> Vec<ir::Function> {
    cranelift_reader::parse_functions(text).expect("test CLIF parses")
}

impl Harness {
    pub(crate) fn new(text: &str) -> Harness {
        Harness::with_config(text, TranslateConfig::default())
    }

    pub(crate) fn with_config(text: &str, config: TranslateConfig) -> Harness {
        let funcs = parse(text);
        let es = ExecutionSession::new();
        let host = es.create_jit_dylib("host").unwrap();
        host.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))
            .unwrap();
        let llvm = es.create_jit_dylib("llvm").unwrap();
        let clif = es.create_jit_dylib("clif").unwrap();
        let wrap = es.create_jit_dylib("wrap").unwrap();
        for jd in [&llvm, &clif, &wrap] {
            jd.add_to_link_order(&host).unwrap();
        }
        let objects = ObjectLinkingLayer::new(&es);
        let llvm_layer = LlvmLayer::new(
            LlvmCompiler::new(LlvmConfig::default()).unwrap(),
            objects.clone(),
        );
        let cl_layer = CraneliftLayer::new(
            CraneliftCompiler::new(CraneliftConfig::default()).unwrap(),
            objects,
        );
        let mut module = ClifLlvmModule::new("translated", default_name_resolver(), config.clone());
        for f in &funcs {
            module = module.with_function(symbol(f), f.clone(), callable());
        }
        llvm_layer.add(&llvm, Box::new(module), None).unwrap();
        // One module per function, so a function Cranelift cannot compile
        // natively (e.g. an instruction its x86-64 backend lacks) only
        // loses its own native comparison.
        for f in &funcs {
            let natives = funcs.clone();
            let name = symbol(f);
            let only = name.clone();
            cl_layer
                .add(
                    &clif,
                    FnModule::new(
                        format!("native_{name}"),
                        vec![(name, callable())],
                        move |m| define_native(m, natives, &only),
                    ),
                    None,
                )
                .unwrap();
        }
        let wrap_syms: Vec<_> = funcs
            .iter()
            .map(|f| (format!("wrap_{}", symbol(f)), callable()))
            .collect();
        let sigs: Vec<_> = funcs
            .iter()
            .map(|f| (symbol(f), f.signature.clone()))
            .collect();
        cl_layer
            .add(
                &wrap,
                FnModule::new("wrappers", wrap_syms, move |m| define_wrappers(m, sigs)),
                None,
            )
            .unwrap();
        Harness {
            funcs,
            es,
            llvm,
            clif,
            wrap,
            config,
        }
    }

    pub(crate) fn func(&self, name: &str) -> &ir::Function {
        self.funcs
            .iter()
            .find(|f| symbol(f) == name)
            .unwrap_or_else(|| panic!("no function {name}"))
    }

    /// Runs `name` in cranelift-interpreter.
    pub(crate) fn interpret(&self, name: &str, args: &[DataValue]) -> Outcome {
        let mut store = FunctionStore::default();
        for f in &self.funcs {
            store.add(f.name.to_string(), f);
        }
        let state = InterpreterState::default().with_function_store(store);
        let mut interp = Interpreter::new(state).with_fuel(Some(1_000_000));
        match interp.call_by_name(&format!("%{name}"), args) {
            Ok(ControlFlow::Return(vals)) => Outcome::Values(vals.to_vec()),
            Ok(ControlFlow::Trap(CraneliftTrap::User(code))) => {
                Outcome::Trap(Some(code.as_raw().get()))
            }
            Ok(ControlFlow::Trap(other)) => panic!("interpreter trap {other:?} in {name}"),
            Ok(other) => panic!("interpreter ended {name} with {other:?}"),
            Err(e) => panic!("interpreter failed on {name}: {e}"),
        }
    }

    /// Runs `name` natively, translated (`llvm`) or Cranelift-compiled.
    pub(crate) fn run_native(&self, name: &str, llvm: bool, args: &[DataValue]) -> Outcome {
        self.try_native(name, llvm, args)
            .unwrap_or_else(|| panic!("{name} did not compile (llvm: {llvm})"))
    }

    /// Like [`Self::run_native`]; `None` if the function did not compile.
    pub(crate) fn try_native(&self, name: &str, llvm: bool, args: &[DataValue]) -> Option<Outcome> {
        let target = if llvm { &self.llvm } else { &self.clif };
        let f = match target.lookup_symbol(name) {
            Ok(def) => def.addr.to_ptr::<u8>(),
            Err(e) if llvm => panic!("translated {name} did not compile: {e}"),
            Err(_) => return None,
        };
        let w = self
            .wrap
            .lookup_symbol(&format!("wrap_{name}"))
            .unwrap()
            .addr
            .to_ptr::<u8>();
        let sig = &self.func(name).signature;
        let mut argbuf = vec![0u8; SLOT * args.len().max(1)];
        for (i, a) in args.iter().enumerate() {
            a.write_to_slice_ne(&mut argbuf[i * SLOT..]);
        }
        let rets: Vec<ir::Type> = sig.returns.iter().map(|r| r.value_type).collect();
        Some(run_forked(w, f, &argbuf, &rets))
    }

    /// Runs `name` all three ways on each input and asserts they agree.
    /// Native Cranelift is the reference: the translation must trap when
    /// and only when it does, and return the same values. Trap codes are
    /// compared with the interpreter's (native Cranelift's `ud2` has none)
    /// where the interpreter agrees with native Cranelift; it does not
    /// everywhere (it traps on `srem MIN, -1`, which x86-64 Cranelift
    /// defines as 0). Where Cranelift cannot compile the function, the
    /// interpreter is the reference.
    pub(crate) fn check(&self, name: &str, inputs: &[Vec<DataValue>]) {
        let exact = self.config.nan_canonicalization;
        for args in inputs {
            let interp = self.interpret(name, args);
            let llvm = self.run_native(name, true, args);
            match self.try_native(name, false, args) {
                Some(native) => {
                    assert!(
                        same(&native, &llvm, false, exact),
                        "{name}{args:?}: cranelift {native:?}, translated {llvm:?} (interpreter {interp:?})"
                    );
                    if same(&interp, &native, false, exact) {
                        assert!(
                            same(&interp, &llvm, true, exact),
                            "{name}{args:?}: interpreter {interp:?}, translated {llvm:?}"
                        );
                    }
                }
                None => assert!(
                    same(&interp, &llvm, true, exact),
                    "{name}{args:?}: interpreter {interp:?}, translated {llvm:?} (no native code)"
                ),
            }
        }
    }

    pub(crate) fn end(self) {
        self.es.end_session().unwrap();
    }
}

/// Whether two outcomes agree; trap codes only when `codes` (Cranelift's
/// `ud2` carries none); NaNs by payload only when `exact_nans`.
pub(crate) fn same(a: &Outcome, b: &Outcome, codes: bool, exact_nans: bool) -> bool {
    match (a, b) {
        (Outcome::Values(x), Outcome::Values(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q, exact_nans))
        }
        (Outcome::Trap(x), Outcome::Trap(y)) => !codes || x == y,
        _ => false,
    }
}

fn same_value(a: &DataValue, b: &DataValue, exact_nans: bool) -> bool {
    match (a, b) {
        (DataValue::F32(x), DataValue::F32(y)) if !exact_nans && x.is_nan() && y.is_nan() => true,
        (DataValue::F64(x), DataValue::F64(y)) if !exact_nans && x.is_nan() && y.is_nan() => true,
        (DataValue::F32(x), DataValue::F32(y)) => x.bits() == y.bits(),
        (DataValue::F64(x), DataValue::F64(y)) => x.bits() == y.bits(),
        _ => a == b,
    }
}

/// Defines the parsed functions in a Cranelift module, with calls between
/// them by name turned into the module's function ids.
fn define_native(
    m: &mut dyn cranelift_module::Module,
    funcs: Vec<ir::Function>,
    only: &str,
) -> Result<(), String> {
    let mut ids = Vec::new();
    for f in &funcs {
        let linkage = if symbol(f) == only {
            Linkage::Export
        } else {
            Linkage::Import
        };
        let id = m
            .declare_function(&symbol(f), linkage, &f.signature)
            .map_err(|e| e.to_string())?;
        ids.push((symbol(f), id));
    }
    for (f, (_, id)) in funcs.into_iter().zip(ids.clone()) {
        if symbol(&f) != only {
            continue;
        }
        let mut f = f;
        let refs: Vec<ir::FuncRef> = f.dfg.ext_funcs.keys().collect();
        for r in refs {
            if let ExternalName::TestCase(t) = &f.dfg.ext_funcs[r].name {
                let callee = String::from_utf8_lossy(t.raw()).into_owned();
                let (_, cid) = ids
                    .iter()
                    .find(|(n, _)| *n == callee)
                    .ok_or_else(|| format!("unknown callee {callee}"))?;
                let user = f.declare_imported_user_function(UserExternalName::new(0, cid.as_u32()));
                f.dfg.ext_funcs[r].name = ExternalName::user(user);
            }
        }
        let mut ctx = cranelift_codegen::Context::for_function(f);
        m.define_function(id, &mut ctx)
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}

/// `wrap_NAME(args, rets, fnptr)`: loads NAME's arguments from 16-byte
/// slots, calls `fnptr` with NAME's signature, stores the results.
fn define_wrappers(
    m: &mut dyn cranelift_module::Module,
    sigs: Vec<(String, Signature)>,
) -> Result<(), String> {
    for (name, sig) in sigs {
        let mut wsig = Signature::new(CallConv::SystemV);
        for _ in 0..3 {
            wsig.params.push(AbiParam::new(types::I64));
        }
        let id = m
            .declare_function(&format!("wrap_{name}"), Linkage::Export, &wsig)
            .map_err(|e| e.to_string())?;
        let mut func =
            ir::Function::with_name_signature(ir::UserFuncName::user(0, id.as_u32()), wsig);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let (args, rets, fnptr) = {
            let p = b.block_params(block);
            (p[0], p[1], p[2])
        };
        let flags = ir::MemFlagsData::trusted();
        let mut vals = Vec::new();
        for (i, p) in sig.params.iter().enumerate() {
            vals.push(b.ins().load(p.value_type, flags, args, (i * SLOT) as i32));
        }
        let sref = b.import_signature(sig.clone());
        let call = b.ins().call_indirect(sref, fnptr, &vals);
        let results = b.inst_results(call).to_vec();
        for (i, r) in results.into_iter().enumerate() {
            b.ins().store(flags, r, rets, (i * SLOT) as i32);
        }
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(m.isa().frontend_config());
        let mut ctx = cranelift_codegen::Context::for_function(func);
        m.define_function(id, &mut ctx)
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}

/// The page a forked child reports through: status word, trap code, then
/// result slots.
struct SharedPage(*mut u8);

const PAGE: usize = 4096;
const STATUS_TRAP: i32 = 3;

static mut REPORT: *mut u8 = std::ptr::null_mut();

extern "C" fn on_sigill(sig: libc::c_int, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t for SA_SIGINFO handlers;
    // RIP points at the faulting instruction, which is mapped executable
    // code (at least the 5 bytes of a `ud1` when it starts with 67 0f b9).
    // REPORT is the shared page set before the handler was installed.
    unsafe {
        let uc = uc.cast::<libc::ucontext_t>();
        let rip = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as *const u8;
        // SIGFPE (Cranelift's hardware division trap) and ud2 (Cranelift's
        // traps) carry no code: 0.
        let ud1 = *rip == 0x67 && *rip.add(1) == 0x0f && *rip.add(2) == 0xb9;
        let ud2 = *rip == 0x0f && *rip.add(1) == 0x0b;
        let code = if sig == libc::SIGFPE || ud2 {
            0
        } else if ud1 {
            // ud1l disp(%eax), %eax: disp8 after modrm 0x40, disp32 after 0x80.
            *rip.add(4)
        } else {
            0xff
        };
        *REPORT.add(4) = code;
        libc::_exit(STATUS_TRAP);
    }
}

fn run_forked(wrapper: *const u8, target: *const u8, args: &[u8], rets: &[ir::Type]) -> Outcome {
    // SAFETY: an anonymous shared mapping of one page, unmapped below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    let page = SharedPage(page.cast::<u8>());
    // SAFETY: the child only calls the JIT'd wrapper (which touches the
    // argument buffer and the shared page) and `_exit`s; it allocates
    // nothing and takes no lock, so forking a multithreaded process is
    // sound. The wrapper has type fn(i64, i64, i64) in System V.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: in the child; see above. The handler only reads the
        // faulting instruction and writes the shared page.
        unsafe {
            REPORT = page.0;
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigill as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGILL, &sa, std::ptr::null_mut());
            // Cranelift lets the hardware divide trap: SIGFPE, code unknown.
            libc::sigaction(libc::SIGFPE, &sa, std::ptr::null_mut());
            let w: extern "C" fn(*const u8, *mut u8, *const u8) = std::mem::transmute(wrapper);
            w(args.as_ptr(), page.0.add(16), target);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let out = if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        let vals = rets
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                // SAFETY: the slots lie within the page (at most 4080/16 results).
                let slot = unsafe { std::slice::from_raw_parts(page.0.add(16 + i * SLOT), SLOT) };
                DataValue::read_from_slice_ne(slot, t)
            })
            .collect();
        Outcome::Values(vals)
    } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == STATUS_TRAP {
        // SAFETY: the child wrote the code before exiting.
        let code = unsafe { *page.0.add(4) };
        Outcome::Trap(if code == 0 { None } else { Some(code) })
    } else if libc::WIFSIGNALED(status) {
        Outcome::Signal(libc::WTERMSIG(status))
    } else {
        Outcome::Signal(-libc::WEXITSTATUS(status))
    };
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(page.0.cast(), PAGE) };
    out
}

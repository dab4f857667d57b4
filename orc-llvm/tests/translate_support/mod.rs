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

    /// Runs `name` in cranelift-interpreter; `None` where the interpreter
    /// gives up (it panics on a few vector instructions, e.g. `avg_round`).
    pub(crate) fn interpret(&self, name: &str, args: &[DataValue]) -> Option<Outcome> {
        let run = || {
            let mut store = FunctionStore::default();
            for f in &self.funcs {
                store.add(f.name.to_string(), f);
            }
            let state = InterpreterState::default().with_function_store(store);
            let mut interp = Interpreter::new(state).with_fuel(Some(1_000_000));
            match interp.call_by_name(&format!("%{name}"), args) {
                Ok(ControlFlow::Return(vals)) => Some(Outcome::Values(vals.to_vec())),
                Ok(ControlFlow::Trap(CraneliftTrap::User(code))) => {
                    Some(Outcome::Trap(Some(code.as_raw().get())))
                }
                _ => None,
            }
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .ok()
            .flatten()
    }

    /// Runs `name` natively, translated (`llvm`) or Cranelift-compiled.
    pub(crate) fn run_native(&self, name: &str, llvm: bool, args: &[DataValue]) -> Outcome {
        self.try_native(name, llvm, std::slice::from_ref(&args.to_vec()))
            .unwrap_or_else(|| panic!("{name} did not compile (llvm: {llvm})"))
            .remove(0)
    }

    /// Runs `name` natively on every input; `None` if it did not compile
    /// (an error for the translated version).
    pub(crate) fn try_native(
        &self,
        name: &str,
        llvm: bool,
        inputs: &[Vec<DataValue>],
    ) -> Option<Vec<Outcome>> {
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
        let arg_size = SLOT * sig.params.len().max(1);
        let mut argbuf = vec![0u8; arg_size * inputs.len()];
        for (k, args) in inputs.iter().enumerate() {
            for (i, a) in args.iter().enumerate() {
                a.write_to_slice_ne(&mut argbuf[k * arg_size + i * SLOT..]);
            }
        }
        let rets: Vec<ir::Type> = sig.returns.iter().map(|r| r.value_type).collect();
        Some(run_forked(w, f, &argbuf, inputs.len(), arg_size, &rets))
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
        let llvm = self.try_native(name, true, inputs).unwrap_or_default();
        let native = self.try_native(name, false, inputs);
        let rets: Vec<ir::Type> = self
            .func(name)
            .signature
            .returns
            .iter()
            .map(|r| r.value_type)
            .collect();
        let same = |a: &Outcome, b: &Outcome, codes: bool| same(a, b, codes, &rets);
        for (k, args) in inputs.iter().enumerate() {
            let interp = self.interpret(name, args);
            let llvm = &llvm[k];
            match (&native, &interp) {
                (Some(native), _) => {
                    let native = &native[k];
                    assert!(
                        same(native, llvm, false),
                        "{name}{args:?}: cranelift {native:?}, translated {llvm:?} (interpreter {interp:?})"
                    );
                    if let Some(interp) = &interp {
                        if same(interp, native, false) {
                            assert!(
                                same(interp, llvm, true),
                                "{name}{args:?}: interpreter {interp:?}, translated {llvm:?}"
                            );
                        }
                    }
                }
                (None, Some(interp)) => assert!(
                    same(interp, llvm, true),
                    "{name}{args:?}: interpreter {interp:?}, translated {llvm:?} (no native code)"
                ),
                (None, None) => panic!("{name}: neither Cranelift nor its interpreter runs it"),
            }
        }
    }

    pub(crate) fn end(self) {
        self.es.end_session().unwrap();
    }
}

/// Whether two outcomes agree, given the result types; trap codes only
/// when `codes` (Cranelift's `ud2` carries none). NaNs agree by NaN-ness,
/// lane by lane in float vectors: Cranelift does not define NaN payloads
/// without its NaN canonicalization.
pub(crate) fn same(a: &Outcome, b: &Outcome, codes: bool, types: &[ir::Type]) -> bool {
    match (a, b) {
        (Outcome::Values(x), Outcome::Values(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .zip(types)
                    .all(|((p, q), &t)| same_value(p, q, t))
        }
        (Outcome::Trap(x), Outcome::Trap(y)) => !codes || x == y,
        // A memory fault: the same signal natively.
        (Outcome::Signal(x), Outcome::Signal(y)) => !codes && x == y,
        _ => false,
    }
}

fn same_value(a: &DataValue, b: &DataValue, ty: ir::Type) -> bool {
    let lane_eq = |x: &[u8], y: &[u8], lane: ir::Type| -> bool {
        let n = lane.bytes() as usize;
        x.chunks(n).zip(y.chunks(n)).all(|(p, q)| {
            p == q
                || match lane {
                    types::F32 => {
                        f32::from_le_bytes(p.try_into().unwrap()).is_nan()
                            && f32::from_le_bytes(q.try_into().unwrap()).is_nan()
                    }
                    types::F64 => {
                        f64::from_le_bytes(p.try_into().unwrap()).is_nan()
                            && f64::from_le_bytes(q.try_into().unwrap()).is_nan()
                    }
                    _ => false,
                }
        })
    };
    match (a, b) {
        (DataValue::F32(x), DataValue::F32(y)) => {
            x.bits() == y.bits() || (x.is_nan() && y.is_nan())
        }
        (DataValue::F64(x), DataValue::F64(y)) => {
            x.bits() == y.bits() || (x.is_nan() && y.is_nan())
        }
        (DataValue::V128(x), DataValue::V128(y)) => lane_eq(x, y, ty.lane_type()),
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

/// Shared memory a forked child reports through: a header whose first
/// word is the index of the input being run, then one record per input
/// (status byte, trap code byte, then the result slots from byte 16).
struct Shared {
    ptr: *mut u8,
    len: usize,
}

const HEADER: usize = 64;
const DONE: u8 = 1;
const TRAPPED: u8 = 2;
const STATUS_TRAP: i32 = 3;

/// The shared mapping and record size, for the signal handler.
static mut REPORT: *mut u8 = std::ptr::null_mut();
static mut RECORD: usize = 0;

extern "C" fn on_trap(sig: libc::c_int, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers;
    // RIP points at the faulting instruction, mapped executable code (5
    // bytes when it starts like `ud1`). REPORT and RECORD describe the
    // shared mapping and were set before the handler was installed; the
    // index in its header is below the number of records.
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
        let index = REPORT.cast::<u32>().read() as usize;
        let rec = REPORT.add(HEADER + index * RECORD);
        *rec = TRAPPED;
        *rec.add(1) = code;
        libc::_exit(STATUS_TRAP);
    }
}

/// Calls `wrapper(args_i, results_i, target)` for every input in forked
/// children (a new child after each trap or crash).
fn run_forked(
    wrapper: *const u8,
    target: *const u8,
    args: &[u8],
    n_inputs: usize,
    arg_size: usize,
    rets: &[ir::Type],
) -> Vec<Outcome> {
    let record = 16 + SLOT * rets.len();
    let len = HEADER + record * n_inputs;
    // SAFETY: a fresh anonymous shared mapping, unmapped below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED);
    let shared = Shared {
        ptr: ptr.cast::<u8>(),
        len,
    };
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n_inputs];
    let mut start = 0;
    while start < n_inputs {
        // SAFETY: the child only calls JIT'd code (the wrapper touches the
        // argument buffer and the shared mapping) and `_exit`s; it
        // allocates nothing and takes no lock, so forking a multithreaded
        // process is sound. The wrapper has type fn(i64, i64, i64).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: in the child, see above; the handler only reads the
            // faulting instruction and writes the shared mapping.
            unsafe {
                REPORT = shared.ptr;
                RECORD = record;
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_trap as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO;
                libc::sigaction(libc::SIGILL, &sa, std::ptr::null_mut());
                libc::sigaction(libc::SIGFPE, &sa, std::ptr::null_mut());
                let w: extern "C" fn(*const u8, *mut u8, *const u8) = std::mem::transmute(wrapper);
                for i in start..n_inputs {
                    shared.ptr.cast::<u32>().write(i as u32);
                    let rec = shared.ptr.add(HEADER + i * record);
                    w(args.as_ptr().add(i * arg_size), rec.add(16), target);
                    *rec = DONE;
                }
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        // SAFETY: the header lies in the mapping; the child is gone.
        let index = unsafe { shared.ptr.cast::<u32>().read() } as usize;
        let failed = !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        if failed && !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == STATUS_TRAP) {
            let sig = if libc::WIFSIGNALED(status) {
                libc::WTERMSIG(status)
            } else {
                -libc::WEXITSTATUS(status)
            };
            outcomes[index] = Some(Outcome::Signal(sig));
        }
        start = if failed { index + 1 } else { n_inputs };
    }
    for (i, out) in outcomes.iter_mut().enumerate() {
        if out.is_some() {
            continue;
        }
        // SAFETY: record i lies within the mapping.
        let rec =
            unsafe { std::slice::from_raw_parts(shared.ptr.add(HEADER + i * record), record) };
        *out = Some(match rec[0] {
            DONE => Outcome::Values(
                rets.iter()
                    .enumerate()
                    .map(|(j, &t)| DataValue::read_from_slice_ne(&rec[16 + j * SLOT..], t))
                    .collect(),
            ),
            TRAPPED => Outcome::Trap((rec[1] != 0).then_some(rec[1])),
            _ => Outcome::Signal(0),
        });
    }
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(shared.ptr.cast(), shared.len) };
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Signal(0)))
        .collect()
}

/// CLIF text of `funcs`.
pub(crate) fn print(funcs: &[ir::Function]) -> String {
    funcs.iter().map(|f| f.display().to_string()).collect()
}

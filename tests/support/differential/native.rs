//! Compiling a generated case in-process: one session with a dylib for
//! the cases, the Cranelift layer (tier 0) and, for the translation, the
//! LLVM layer. Each case is linked under its own resource tracker and
//! symbol names, and removed when it is done.
//!
//! Every function is called through a trampoline compiled by Cranelift:
//! `tramp(callee: i64, values: i64)` loads the arguments from 16-byte
//! slots at `values`, calls `callee` with the case's signature and stores
//! the results back into the first slots. One trampoline serves both
//! tiers, so the tier-1 code is entered through the System V convention
//! exactly as Cranelift code calls it.

use std::sync::Arc;

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{
    types, AbiParam, Function, InstBuilder, MemFlagsData, Signature, Type, UserFuncName,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{Linkage, Module};
use orc_core::link::ObjectLinkingLayer;
use orc_core::{ExecutionSession, JitDylib, ResourceTracker, SymbolFlags};
use orc_cranelift::{CraneliftCompiler, CraneliftConfig, CraneliftLayer, FnModule};

use super::child::{TrampolineFn, SLOTS};
use crate::support::clifgen::{Case, CALLEE_INDEX};

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

/// The session the cases are linked into.
pub struct NativeJit {
    pub es: ExecutionSession,
    pub jd: JitDylib,
    pub cranelift: Arc<CraneliftLayer>,
    pub objects: Arc<ObjectLinkingLayer>,
}

/// A case's code in memory, removed on drop.
pub struct Linked {
    tracker: ResourceTracker,
    /// The trampoline.
    pub trampoline: TrampolineFn,
    /// Cranelift's main function.
    pub main: u64,
}

impl Drop for Linked {
    fn drop(&mut self) {
        let _ = self.tracker.remove();
    }
}

impl NativeJit {
    /// A session with one dylib and the tier-0 layer.
    pub fn new() -> NativeJit {
        let es = ExecutionSession::new();
        let jd = es.create_jit_dylib("cases").unwrap();
        let objects = ObjectLinkingLayer::new(&es);
        let cranelift = CraneliftLayer::new(
            CraneliftCompiler::new(CraneliftConfig::default()).unwrap(),
            objects.clone(),
        );
        NativeJit {
            es,
            jd,
            cranelift,
            objects,
        }
    }

    /// Compiles `case` (`funcs`: its functions as Cranelift compiles them,
    /// the callee first, NaN canonicalization already applied) with
    /// Cranelift, with the trampoline, under the names `c{id}_*`.
    pub fn link_cranelift(
        &self,
        id: u64,
        case: &Case,
        funcs: Vec<Function>,
    ) -> Result<Linked, String> {
        let tracker = self
            .jd
            .create_resource_tracker()
            .map_err(|e| e.to_string())?;
        let has_callee = case.callee.is_some();
        let callee_name = format!("c{id}_g");
        let main_name = format!("c{id}_f");
        let tramp_name = format!("c{id}_tramp");
        let mut symbols = vec![
            (main_name.clone(), CALLABLE),
            (tramp_name.clone(), CALLABLE),
        ];
        if has_callee {
            symbols.push((callee_name.clone(), CALLABLE));
        }
        let tramp = trampoline(&case.main.signature);
        let module = FnModule::new(format!("c{id}"), symbols, move |m: &mut dyn Module| {
            let mut funcs = funcs.into_iter();
            if has_callee {
                let g = funcs.next().ok_or("no callee")?;
                let id = m
                    .declare_function(&callee_name, Linkage::Export, &g.signature)
                    .map_err(|e| e.to_string())?;
                // Calls name the callee `u0:0`, which the module resolves
                // by function id.
                if id.as_u32() != CALLEE_INDEX {
                    return Err(format!("callee declared as {id}, not u0:0"));
                }
                define(m, id, g)?;
            }
            let f = funcs.next().ok_or("no main")?;
            let id = m
                .declare_function(&main_name, Linkage::Export, &f.signature)
                .map_err(|e| e.to_string())?;
            define(m, id, f)?;
            let id = m
                .declare_function(&tramp_name, Linkage::Export, &tramp.signature)
                .map_err(|e| e.to_string())?;
            define(m, id, tramp)
        });
        self.cranelift
            .add(&self.jd, module, Some(&tracker))
            .map_err(|e| e.to_string())?;
        let lookup = |name: &str| {
            self.jd
                .lookup_symbol(name)
                .map(|s| s.addr)
                .map_err(|e| e.to_string())
        };
        let addrs = lookup(&format!("c{id}_f"))
            .and_then(|main| Ok((main, lookup(&format!("c{id}_tramp"))?)));
        let (main, tramp) = match addrs {
            Ok(addrs) => addrs,
            Err(e) => {
                let _ = tracker.remove();
                return Err(e);
            }
        };
        // SAFETY: the symbol is the trampoline just compiled, whose
        // signature is (i64, i64) -> () in the System V convention, which
        // is `TrampolineFn`'s.
        let trampoline: TrampolineFn = unsafe { std::mem::transmute(tramp.to_ptr::<u8>()) };
        Ok(Linked {
            tracker,
            trampoline,
            main: main.value(),
        })
    }
}

fn define(m: &mut dyn Module, id: cranelift_module::FuncId, func: Function) -> Result<(), String> {
    let mut ctx = m.make_context();
    ctx.func = func;
    m.define_function(id, &mut ctx)
        .map_err(|e| format!("{e:?}"))
}

/// The trampoline for functions of `sig` (see the module docs).
pub fn trampoline(sig: &Signature) -> Function {
    let mut tsig = Signature::new(CallConv::SystemV);
    tsig.params.push(AbiParam::new(types::I64));
    tsig.params.push(AbiParam::new(types::I64));
    let mut func = Function::with_name_signature(UserFuncName::user(1, 0), tsig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let callee = b.block_params(entry)[0];
    let values = b.block_params(entry)[1];
    let mut flags = MemFlagsData::new();
    flags.set_notrap();
    flags.set_aligned();
    let args: Vec<_> = sig
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| b.ins().load(p.value_type, flags, values, (16 * i) as i32))
        .collect();
    let sig_ref = b.import_signature(sig.clone());
    let call = b.ins().call_indirect(sig_ref, callee, &args);
    let results = b.inst_results(call).to_vec();
    for (i, r) in results.into_iter().enumerate() {
        b.ins().store(flags, r, values, (16 * i) as i32);
    }
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(crate::support::clifgen::frontend_config());
    func
}

/// The slots of an argument list.
pub fn encode(args: &[DataValue]) -> [u128; SLOTS] {
    let mut slots = [0u128; SLOTS];
    for (slot, v) in slots.iter_mut().zip(args) {
        *slot = match *v {
            DataValue::I8(x) => x as u8 as u128,
            DataValue::I16(x) => x as u16 as u128,
            DataValue::I32(x) => x as u32 as u128,
            DataValue::I64(x) => x as u64 as u128,
            DataValue::I128(x) => x as u128,
            DataValue::F32(x) => x.bits() as u128,
            DataValue::F64(x) => x.bits() as u128,
            ref other => panic!("the generator makes no {other:?}"),
        };
    }
    slots
}

/// The value of type `ty` a result slot holds.
pub fn decode(ty: Type, slot: u128) -> DataValue {
    match ty {
        types::I8 => DataValue::I8(slot as u8 as i8),
        types::I16 => DataValue::I16(slot as u16 as i16),
        types::I32 => DataValue::I32(slot as u32 as i32),
        types::I64 => DataValue::I64(slot as u64 as i64),
        types::I128 => DataValue::I128(slot as i128),
        types::F32 => DataValue::F32(Ieee32::with_bits(slot as u32)),
        _ => DataValue::F64(Ieee64::with_bits(slot as u64)),
    }
}

//! Helpers shared by the tier-0 tests: small Cranelift functions built by
//! hand.

#![allow(dead_code, unreachable_pub)]

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Type, UserFuncName, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{Linkage, Module};
use orc_core::SymbolFlags;

/// Declares `name(params...) -> ret` (exported) and defines it: the entry
/// block (with the parameters) is current when `body` runs, and `body`
/// emits the rest, returns included (it may add blocks).
pub fn define_with(
    module: &mut dyn Module,
    name: &str,
    params: &[Type],
    ret: Type,
    body: impl FnOnce(&mut dyn Module, &mut FunctionBuilder<'_>, &[Value]) -> Result<(), String>,
) -> Result<(), String> {
    let mut sig = module.make_signature();
    sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
    sig.returns.push(AbiParam::new(ret));
    let id = module
        .declare_function(name, Linkage::Export, &sig)
        .map_err(|e| e.to_string())?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let config = module.isa().frontend_config();
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let args = b.block_params(entry).to_vec();
    body(module, &mut b, &args)?;
    b.seal_all_blocks();
    b.finalize(config);
    module
        .define_function(id, &mut ctx)
        .map_err(|e| e.to_string())
}

/// Defines `name(x) = x * factor + sum(callee(x))`, calling each callee
/// by name.
pub fn define_fn(
    module: &mut dyn Module,
    name: &str,
    factor: f64,
    callees: &[&str],
) -> Result<(), String> {
    define_with(
        module,
        name,
        &[types::F64],
        types::F64,
        |module, b, args| {
            let x = args[0];
            let k = b.ins().f64const(factor);
            let mut v = b.ins().fmul(x, k);
            for callee in callees {
                let mut sig = module.make_signature();
                sig.params.push(AbiParam::new(types::F64));
                sig.returns.push(AbiParam::new(types::F64));
                let id = module
                    .declare_function(callee, Linkage::Import, &sig)
                    .map_err(|e| e.to_string())?;
                let fref = module.declare_func_in_func(id, b.func);
                let call = b.ins().call(fref, &[x]);
                let r = b.inst_results(call)[0];
                v = b.ins().fadd(v, r);
            }
            b.ins().return_(&[v]);
            Ok(())
        },
    )
}

pub fn callable() -> SymbolFlags {
    SymbolFlags::EXPORTED | SymbolFlags::CALLABLE
}

/// Defines `name(n) = sum of i for i in 0..n` with a real loop.
pub fn define_loop(module: &mut dyn Module, name: &str) -> Result<(), String> {
    use cranelift_codegen::ir::condcodes::FloatCC;
    define_with(module, name, &[types::F64], types::F64, |_, b, args| {
        let n = args[0];
        let header = b.create_block();
        let exit = b.create_block();
        b.append_block_param(header, types::F64); // i
        b.append_block_param(header, types::F64); // acc
        let zero = b.ins().f64const(0.0);
        b.ins().jump(header, &[zero.into(), zero.into()]);
        b.switch_to_block(header);
        let (i, acc) = (b.block_params(header)[0], b.block_params(header)[1]);
        let acc2 = b.ins().fadd(acc, i);
        let one = b.ins().f64const(1.0);
        let i2 = b.ins().fadd(i, one);
        let more = b.ins().fcmp(FloatCC::LessThan, i2, n);
        b.ins()
            .brif(more, header, &[i2.into(), acc2.into()], exit, &[]);
        b.switch_to_block(exit);
        b.ins().return_(&[acc2]);
        Ok(())
    })
}

/// A trip handler for tests whose trip value is never reached.
pub extern "C" fn never_called(_: u64, _: u64) {
    unreachable!("the trip value is never reached")
}

/// A counter provider profiling only `name`: its code counts in `counter`
/// and calls `on_trip(context, counter)` when the count reaches `trip`.
pub fn profile_only(
    name: &'static str,
    counter: &'static std::sync::atomic::AtomicU64,
    trip: u64,
    on_trip: extern "C" fn(u64, u64),
    context: u64,
) -> orc_cranelift::CounterProvider {
    std::sync::Arc::new(move |f: &str| {
        (f == name).then_some(orc_core::TripCounter {
            counter: counter as *const std::sync::atomic::AtomicU64 as u64,
            trip,
            on_trip: on_trip as usize as u64,
            context,
        })
    })
}

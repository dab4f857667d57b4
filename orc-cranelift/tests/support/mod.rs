//! Helpers shared by the tier-0 tests: small Cranelift functions built by
//! hand.

#![allow(dead_code, unreachable_pub)]

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{Linkage, Module};
use orc_core::SymbolFlags;

/// Defines `name(x) = x * factor + sum(callee(x))`.
pub fn define_fn(
    module: &mut dyn Module,
    name: &str,
    factor: f64,
    callees: &[&str],
) -> Result<(), String> {
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(types::F64));
    sig.returns.push(AbiParam::new(types::F64));
    let id = module
        .declare_function(name, Linkage::Export, &sig)
        .map_err(|e| e.to_string())?;
    let mut ids = Vec::new();
    for c in callees {
        ids.push(
            module
                .declare_function(c, Linkage::Import, &sig)
                .map_err(|e| e.to_string())?,
        );
    }
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let frontend_config = module.isa().frontend_config();
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let x = b.block_params(block)[0];
    let k = b.ins().f64const(factor);
    let mut v = b.ins().fmul(x, k);
    for callee in ids {
        let fref = module.declare_func_in_func(callee, b.func);
        let call = b.ins().call(fref, &[x]);
        let r = b.inst_results(call)[0];
        v = b.ins().fadd(v, r);
    }
    b.ins().return_(&[v]);
    b.finalize(frontend_config);
    module
        .define_function(id, &mut ctx)
        .map_err(|e| e.to_string())
}

pub fn callable() -> SymbolFlags {
    SymbolFlags::EXPORTED | SymbolFlags::CALLABLE
}

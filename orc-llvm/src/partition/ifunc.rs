//! GNU indirect functions (`@f = ifunc T, ptr @resolver`) as plain
//! functions: the JIT linker has no `STT_GNU_IFUNC` (no loader calls
//! resolvers), so the plan rewrites each ifunc into a function under the
//! same name that calls the resolver once, keeps its answer, and tail-calls
//! it:
//!
//! ```llvm
//! @__orc_ifunc.f = internal global ptr null
//! define T @f(ARGS) {
//!   %p = load atomic ptr, ptr @__orc_ifunc.f monotonic
//!   ; null: %p = call ptr @resolver(), stored (monotonic) for next time
//!   %r = musttail call T %p(ARGS)
//!   ret T %r
//! }
//! ```
//!
//! The address of `@f` is that function (one address in every unit, as the
//! ifunc's is in a native program). The resolver runs on the first call
//! rather than at load; racing first calls may both run it and store the
//! same answer (resolvers are pure: they only inspect the CPU).

use inkwell::llvm_sys::core::*;
use inkwell::llvm_sys::prelude::{LLVMModuleRef, LLVMValueRef};
use inkwell::llvm_sys::{LLVMAtomicOrdering, LLVMIntPredicate, LLVMLinkage, LLVMTailCallKind};
use std::ffi::CString;

use super::ir::*;

/// Rewrites `m`'s ifuncs as described in the module docs; returns their
/// names. An ifunc whose resolver is not a function defined or declared in
/// `m` is an error.
pub(super) fn lower_ifuncs(m: LLVMModuleRef) -> Result<Vec<String>, String> {
    let ifuncs = ifuncs(m);
    let mut names = Vec::new();
    for i in ifuncs {
        let name = name_of(i);
        // SAFETY: `i` is a live ifunc of `m`; everything below reads it,
        // creates globals, a function and its instructions in `m`, then
        // replaces `i`'s uses with the new function (same pointer type) and
        // erases `i`, which nothing uses any more.
        unsafe {
            let resolver = LLVMIsAFunction(LLVMGetGlobalIFuncResolver(i));
            if resolver.is_null() {
                return Err(format!("ifunc '{name}': its resolver is not a function"));
            }
            let ctx = LLVMGetModuleContext(m);
            let ptr = LLVMPointerTypeInContext(ctx, 0);
            let fn_type = LLVMGlobalGetValueType(i);
            let slot_name =
                CString::new(format!("__orc_ifunc.{name}").replace('\0', "")).unwrap_or_default();
            let slot = LLVMAddGlobal(m, ptr, slot_name.as_ptr());
            LLVMSetInitializer(slot, LLVMConstNull(ptr));
            LLVMSetLinkage(slot, LLVMLinkage::LLVMInternalLinkage);
            LLVMSetAlignment(slot, 8);

            let linkage = LLVMGetLinkage(i);
            let visibility = LLVMGetVisibility(i);
            set_name(i, "");
            let cname = CString::new(name.replace('\0', "")).unwrap_or_default();
            let f = LLVMAddFunction(m, cname.as_ptr(), fn_type);
            LLVMSetLinkage(f, linkage);
            LLVMSetVisibility(f, visibility);

            let entry = LLVMAppendBasicBlockInContext(ctx, f, c"entry".as_ptr());
            let resolve = LLVMAppendBasicBlockInContext(ctx, f, c"resolve".as_ptr());
            let call = LLVMAppendBasicBlockInContext(ctx, f, c"call".as_ptr());
            let b = LLVMCreateBuilderInContext(ctx);

            LLVMPositionBuilderAtEnd(b, entry);
            let cached = LLVMBuildLoad2(b, ptr, slot, c"cached".as_ptr());
            LLVMSetOrdering(cached, LLVMAtomicOrdering::LLVMAtomicOrderingMonotonic);
            LLVMSetAlignment(cached, 8);
            let is_null = LLVMBuildICmp(
                b,
                LLVMIntPredicate::LLVMIntEQ,
                cached,
                LLVMConstNull(ptr),
                c"".as_ptr(),
            );
            LLVMBuildCondBr(b, is_null, resolve, call);

            LLVMPositionBuilderAtEnd(b, resolve);
            let resolver_type = LLVMGlobalGetValueType(resolver);
            let n_params = LLVMCountParamTypes(resolver_type) as usize;
            let mut param_types = vec![std::ptr::null_mut(); n_params];
            LLVMGetParamTypes(resolver_type, param_types.as_mut_ptr());
            // glibc passes x86-64 resolvers nothing they may rely on.
            let mut zeros: Vec<LLVMValueRef> =
                param_types.iter().map(|&t| LLVMConstNull(t)).collect();
            let resolved = LLVMBuildCall2(
                b,
                resolver_type,
                resolver,
                zeros.as_mut_ptr(),
                u32::try_from(zeros.len()).unwrap_or(0),
                c"resolved".as_ptr(),
            );
            let store = LLVMBuildStore(b, resolved, slot);
            LLVMSetOrdering(store, LLVMAtomicOrdering::LLVMAtomicOrderingMonotonic);
            LLVMSetAlignment(store, 8);
            LLVMBuildBr(b, call);

            LLVMPositionBuilderAtEnd(b, call);
            let target = LLVMBuildPhi(b, ptr, c"target".as_ptr());
            let mut values = [cached, resolved];
            let mut blocks = [entry, resolve];
            LLVMAddIncoming(target, values.as_mut_ptr(), blocks.as_mut_ptr(), 2);
            let n_args = LLVMCountParams(f);
            let mut args: Vec<LLVMValueRef> = (0..n_args).map(|k| LLVMGetParam(f, k)).collect();
            let result =
                LLVMBuildCall2(b, fn_type, target, args.as_mut_ptr(), n_args, c"".as_ptr());
            LLVMSetTailCallKind(result, LLVMTailCallKind::LLVMTailCallKindMustTail);
            let returns_void = LLVMGetTypeKind(LLVMGetReturnType(fn_type))
                == inkwell::llvm_sys::LLVMTypeKind::LLVMVoidTypeKind;
            if returns_void {
                LLVMBuildRetVoid(b);
            } else {
                LLVMBuildRet(b, result);
            }
            LLVMDisposeBuilder(b);

            LLVMReplaceAllUsesWith(i, f);
            LLVMEraseGlobalIFunc(i);
        }
        names.push(name);
    }
    Ok(names)
}

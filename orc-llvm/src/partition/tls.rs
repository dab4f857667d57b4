//! Thread-local variables as emulated TLS, rewritten in the IR the way
//! `-femulated-tls` (LLVM's `LowerEmuTLS`) lowers them: the JIT linker has
//! no TLS sections or TLS relocations, while libgcc's emulation is plain
//! calls and data.
//!
//! Each thread-local variable `@x` becomes a control variable
//! `@__emutls_v.x` of libgcc's `struct __emutls_object` layout (gcc's
//! `emutls.c`): `{ word size, word align, ptr loc (null), ptr templ }`, with
//! `templ` pointing to the constant `@__emutls_t.x` holding the initial
//! value (null when it is all zero). Every address of `@x` is then
//! `__emutls_get_address(@__emutls_v.x)`, which returns the calling
//! thread's copy (allocated and initialized from the template on the
//! thread's first use; libgcc_s exports it). A declaration of `@x` becomes
//! a declaration of `@__emutls_v.x`.

use inkwell::llvm_sys::comdat::{LLVMGetComdat, LLVMGetOrInsertComdat, LLVMSetComdat};
use inkwell::llvm_sys::core::*;
use inkwell::llvm_sys::prelude::{LLVMModuleRef, LLVMTypeRef, LLVMValueRef};
use inkwell::llvm_sys::target::{
    LLVMABIAlignmentOfType, LLVMGetModuleDataLayout, LLVMStoreSizeOfType,
};
use std::ffi::CString;

use super::ir::*;

/// libgcc's emulated-TLS entry point.
const GET_ADDRESS: &str = "__emutls_get_address";

/// Rewrites `m`'s thread-local variables to emulated TLS (see the module
/// docs). Returns whether there were any. A use the rewrite cannot express
/// (a thread-local address inside a constant: a global initializer, a
/// constant expression, an alias) is an error naming the variable; `m` may
/// then be partly rewritten and must not be used.
pub(super) fn emulate_tls(m: LLVMModuleRef) -> Result<bool, String> {
    // SAFETY: `m` is a live module; only its thread-local globals are read.
    let tls: Vec<LLVMValueRef> = global_list(m)
        .into_iter()
        .filter(|&g| unsafe { LLVMIsThreadLocal(g) } != 0)
        .collect();
    if tls.is_empty() {
        return Ok(false);
    }
    // SAFETY: `m` is a live module; everything below creates globals,
    // types and instructions in it, reads its thread-local variables and
    // their uses, and edits only instructions that use them (collected
    // before any edit). A variable is deleted only once nothing uses it.
    unsafe {
        let ctx = LLVMGetModuleContext(m);
        let layout = LLVMGetModuleDataLayout(m);
        let word = LLVMInt64TypeInContext(ctx);
        let ptr = LLVMPointerTypeInContext(ctx, 0);
        let mut fields = [word, word, ptr, ptr];
        let control_type = LLVMStructTypeInContext(ctx, fields.as_mut_ptr(), 4, 0);
        let mut params = [ptr];
        let get_type: LLVMTypeRef = LLVMFunctionType(ptr, params.as_mut_ptr(), 1, 0);
        let get_address = match named_function(m, GET_ADDRESS) {
            Some(f) => f,
            None => {
                let name = CString::new(GET_ADDRESS).unwrap_or_default();
                LLVMAddFunction(m, name.as_ptr(), get_type)
            }
        };
        let builder = LLVMCreateBuilderInContext(ctx);
        let result = (|| {
            for &x in &tls {
                let name = name_of(x);
                let shown = if name.is_empty() { "<unnamed>" } else { &name };
                if LLVMGetPointerAddressSpace(LLVMTypeOf(x)) != 0 {
                    return Err(format!(
                        "thread-local variable '{shown}' is not in address space 0"
                    ));
                }
                let users = instruction_users(x).map_err(|()| {
                    format!(
                        "thread-local variable '{shown}' has its address in a constant \
                         (an initializer, an aggregate or an alias), which emulated TLS \
                         cannot express"
                    )
                })?;
                let control = control_variable(m, x, &name, control_type, word, ptr, layout);
                for user in users {
                    rewrite_use(builder, user, x, control, get_address, get_type)
                        .map_err(|what| format!("thread-local variable '{shown}': {what}"))?;
                }
                set_name(x, "");
                LLVMDeleteGlobal(x);
            }
            Ok(())
        })();
        LLVMDisposeBuilder(builder);
        result?;
        for f in function_list(m) {
            if is_declaration(f)
                && name_of(f).starts_with("llvm.threadlocal.address")
                && LLVMGetFirstUse(f).is_null()
            {
                LLVMDeleteFunction(f);
            }
        }
    }
    Ok(true)
}

/// The instructions using `x`, directly or through constant expressions
/// (a `getelementptr` of it...); `Err` if a use is in anything else (a
/// global initializer, an aggregate constant, an alias).
fn instruction_users(x: LLVMValueRef) -> Result<Vec<LLVMValueRef>, ()> {
    let mut found = Vec::new();
    let mut stack = vec![x];
    let mut seen = std::collections::HashSet::new();
    while let Some(v) = stack.pop() {
        // SAFETY: `v` is a live value; its uses are only inspected.
        unsafe {
            let mut u = LLVMGetFirstUse(v);
            while !u.is_null() {
                let user = LLVMGetUser(u);
                if !LLVMIsAInstruction(user).is_null() {
                    if !found.contains(&user) {
                        found.push(user);
                    }
                } else if !LLVMIsAConstantExpr(user).is_null() {
                    if seen.insert(user) {
                        stack.push(user);
                    }
                } else if !LLVMIsAGlobalValue(user).is_null()
                    || LLVMIsAConstant(user).is_null()
                    || !LLVMGetFirstUse(user).is_null()
                {
                    // A global or a used aggregate (an unused constant left
                    // over by earlier edits does not count).
                    return Err(());
                }
                u = LLVMGetNextUse(u);
            }
        }
    }
    Ok(found)
}

/// Whether the constant `c` is `x` or a constant expression over it.
fn mentions(c: LLVMValueRef, x: LLVMValueRef) -> bool {
    if c == x {
        return true;
    }
    // SAFETY: `c` is a live value; its operands are only inspected.
    unsafe {
        if LLVMIsAConstantExpr(c).is_null() {
            return false;
        }
        let n = u32::try_from(LLVMGetNumOperands(c)).unwrap_or(0);
        (0..n).any(|i| mentions(LLVMGetOperand(c, i), x))
    }
}

/// `c` (a constant mentioning `x`) as instructions at the builder's
/// position, with `x` replaced by `addr`: `getelementptr`, casts and binary
/// operators; other constant expressions are an error.
///
/// # Safety
/// `builder` is positioned in a function of `c`'s module; `addr` is
/// available there.
unsafe fn rebuild(
    builder: inkwell::llvm_sys::prelude::LLVMBuilderRef,
    c: LLVMValueRef,
    x: LLVMValueRef,
    addr: LLVMValueRef,
) -> Result<LLVMValueRef, String> {
    use inkwell::llvm_sys::LLVMOpcode::*;
    if c == x {
        return Ok(addr);
    }
    if !mentions(c, x) {
        return Ok(c);
    }
    // SAFETY: per the contract; `c` is a live constant expression whose
    // operands are read and whose equivalent instructions are built.
    unsafe {
        let n = u32::try_from(LLVMGetNumOperands(c)).unwrap_or(0);
        let mut ops = Vec::with_capacity(n as usize);
        for i in 0..n {
            ops.push(rebuild(builder, LLVMGetOperand(c, i), x, addr)?);
        }
        let opcode = LLVMGetConstOpcode(c);
        let name = c"".as_ptr();
        let value = match opcode {
            LLVMGetElementPtr => {
                let ty = LLVMGetGEPSourceElementType(c);
                let (base, indices) = ops.split_first_mut().ok_or("a bad getelementptr")?;
                let n_indices = u32::try_from(indices.len()).unwrap_or(0);
                let gep = LLVMBuildGEP2(builder, ty, *base, indices.as_mut_ptr(), n_indices, name);
                LLVMSetIsInBounds(gep, LLVMIsInBounds(c));
                gep
            }
            LLVMTrunc | LLVMPtrToInt | LLVMIntToPtr | LLVMBitCast | LLVMAddrSpaceCast
            | LLVMZExt | LLVMSExt => LLVMBuildCast(builder, opcode, ops[0], LLVMTypeOf(c), name),
            LLVMAdd | LLVMSub | LLVMMul | LLVMXor | LLVMAnd | LLVMOr | LLVMShl => {
                LLVMBuildBinOp(builder, opcode, ops[0], ops[1], name)
            }
            other => {
                return Err(format!(
                    "its address is used in a {other:?} constant expression"
                ))
            }
        };
        Ok(value)
    }
}

/// Creates `@__emutls_v.NAME` (and `@__emutls_t.NAME` for a non-zero
/// initial value) for the thread-local variable `x`, with `x`'s linkage and
/// visibility.
///
/// # Safety
/// `x` is a live thread-local global variable of `m`; the types belong to
/// `m`'s context.
unsafe fn control_variable(
    m: LLVMModuleRef,
    x: LLVMValueRef,
    name: &str,
    control_type: LLVMTypeRef,
    word: LLVMTypeRef,
    ptr: LLVMTypeRef,
    layout: inkwell::llvm_sys::target::LLVMTargetDataRef,
) -> LLVMValueRef {
    // SAFETY: per the contract, `x` and the types are live in `m`.
    unsafe {
        let value_type = LLVMGlobalGetValueType(x);
        let control_name =
            CString::new(format!("__emutls_v.{name}").replace('\0', "")).unwrap_or_default();
        let control = LLVMAddGlobal(m, control_type, control_name.as_ptr());
        copy_linkage(m, x, control);
        LLVMSetAlignment(control, 8);
        if is_declaration(x) {
            return control;
        }
        let init = LLVMGetInitializer(x);
        let template = if init.is_null() || LLVMIsNull(init) != 0 {
            LLVMConstNull(ptr)
        } else {
            let template_name =
                CString::new(format!("__emutls_t.{name}").replace('\0', "")).unwrap_or_default();
            let t = LLVMAddGlobal(m, value_type, template_name.as_ptr());
            LLVMSetInitializer(t, init);
            LLVMSetGlobalConstant(t, 1);
            copy_linkage(m, x, t);
            LLVMSetAlignment(t, LLVMGetAlignment(x));
            t
        };
        let size = LLVMStoreSizeOfType(layout, value_type);
        let align = match LLVMGetAlignment(x) {
            0 => LLVMABIAlignmentOfType(layout, value_type),
            a => a,
        };
        let mut values = [
            LLVMConstInt(word, size, 0),
            LLVMConstInt(word, u64::from(align), 0),
            LLVMConstNull(ptr),
            template,
        ];
        let init = LLVMConstNamedStruct(control_type, values.as_mut_ptr(), 4);
        LLVMSetInitializer(control, init);
        control
    }
}

/// Gives `to` the linkage and visibility of `from`, and a comdat of its
/// own name if `from` has one (as LLVM's `LowerEmuTLS` does).
///
/// # Safety
/// `from` and `to` are live globals of `m`.
unsafe fn copy_linkage(m: LLVMModuleRef, from: LLVMValueRef, to: LLVMValueRef) {
    // SAFETY: per the contract.
    unsafe {
        LLVMSetLinkage(to, LLVMGetLinkage(from));
        LLVMSetVisibility(to, LLVMGetVisibility(from));
        if !LLVMGetComdat(from).is_null() {
            let name = CString::new(name_of(to).replace('\0', "")).unwrap_or_default();
            LLVMSetComdat(to, LLVMGetOrInsertComdat(m, name.as_ptr()));
        }
    }
}

/// Replaces the instruction `user`'s uses of the thread-local `x` by the
/// calling thread's address, `__emutls_get_address(control)`: a call to
/// `llvm.threadlocal.address(x)` is replaced whole; any other instruction
/// gets the call just before it (before the incoming block's terminator
/// for a phi), and constant expressions over `x` among its operands become
/// instructions over the call's result.
///
/// # Safety
/// `user` is a live instruction using `x`; `control`, `get_address` (of
/// type `get_type`) are live in the same module; `builder` belongs to its
/// context.
unsafe fn rewrite_use(
    builder: inkwell::llvm_sys::prelude::LLVMBuilderRef,
    user: LLVMValueRef,
    x: LLVMValueRef,
    control: LLVMValueRef,
    get_address: LLVMValueRef,
    get_type: LLVMTypeRef,
) -> Result<(), String> {
    // SAFETY: per the contract; the builder only inserts new calls and
    // instructions.
    unsafe {
        let mut args = [control];
        let mut call_at = |at: LLVMValueRef| {
            LLVMPositionBuilderBefore(builder, at);
            LLVMBuildCall2(
                builder,
                get_type,
                get_address,
                args.as_mut_ptr(),
                1,
                c"".as_ptr(),
            )
        };
        if !LLVMIsACallInst(user).is_null() {
            let callee = LLVMGetCalledValue(user);
            let is_tl_address = !LLVMIsAFunction(callee).is_null()
                && name_of(callee).starts_with("llvm.threadlocal.address");
            if is_tl_address {
                let call = call_at(user);
                LLVMReplaceAllUsesWith(user, call);
                LLVMInstructionEraseFromParent(user);
                return Ok(());
            }
        }
        if !LLVMIsAPHINode(user).is_null() {
            for i in 0..LLVMCountIncoming(user) {
                let value = LLVMGetIncomingValue(user, i);
                if mentions(value, x) {
                    let at = LLVMGetBasicBlockTerminator(LLVMGetIncomingBlock(user, i));
                    let addr = call_at(at);
                    LLVMPositionBuilderBefore(builder, at);
                    let new = rebuild(builder, value, x, addr)?;
                    LLVMSetOperand(user, i, new);
                }
            }
            return Ok(());
        }
        let n = u32::try_from(LLVMGetNumOperands(user)).unwrap_or(0);
        let mut addr = None;
        for i in 0..n {
            let value = LLVMGetOperand(user, i);
            if mentions(value, x) {
                let addr = *addr.get_or_insert_with(|| call_at(user));
                LLVMPositionBuilderBefore(builder, user);
                let new = rebuild(builder, value, x, addr)?;
                LLVMSetOperand(user, i, new);
            }
        }
        Ok(())
    }
}

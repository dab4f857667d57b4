//! Thin wrappers over the LLVM-C calls the translator makes.
//!
//! Every wrapper takes references obtained from the module that
//! `translate_module` parsed and keeps alive (its `Module` outlives the
//! whole translation, and nothing here mutates the IR except the data
//! layout set before anything else runs). Callers pass each function
//! objects of the kind it expects (an instruction of the opcode they
//! matched, a type of the kind they checked), as LLVM-C requires.

use orc_llvm::inkwell::llvm_sys::core::*;
use orc_llvm::inkwell::llvm_sys::prelude::*;
use orc_llvm::inkwell::llvm_sys::target::*;

pub(super) use orc_llvm::inkwell::llvm_sys::prelude::{
    LLVMAttributeRef, LLVMBasicBlockRef, LLVMModuleRef, LLVMTypeRef, LLVMValueRef,
};
pub(super) use orc_llvm::inkwell::llvm_sys::target::LLVMTargetDataRef;
pub(super) use orc_llvm::inkwell::llvm_sys::{
    LLVMAtomicOrdering, LLVMAtomicRMWBinOp, LLVMIntPredicate, LLVMLinkage, LLVMOpcode,
    LLVMRealPredicate, LLVMTypeKind, LLVMValueKind,
};

macro_rules! wrap {
    ($(fn $name:ident($($a:ident: $t:ty),*) -> $r:ty = $c:ident;)*) => {$(
        pub(super) fn $name($($a: $t),*) -> $r {
            // SAFETY: the arguments are live objects of the module under
            // translation, of the kinds this LLVM-C function takes (see
            // the module docs); the call only reads them.
            unsafe { $c($($a),*) }
        }
    )*};
}

wrap! {
    fn value_kind(v: LLVMValueRef) -> LLVMValueKind = LLVMGetValueKind;
    fn opcode(v: LLVMValueRef) -> LLVMOpcode = LLVMGetInstructionOpcode;
    fn const_opcode(v: LLVMValueRef) -> LLVMOpcode = LLVMGetConstOpcode;
    fn num_operands(v: LLVMValueRef) -> i32 = LLVMGetNumOperands;
    fn operand(v: LLVMValueRef, i: u32) -> LLVMValueRef = LLVMGetOperand;
    fn type_of(v: LLVMValueRef) -> LLVMTypeRef = LLVMTypeOf;
    fn type_kind(t: LLVMTypeRef) -> LLVMTypeKind = LLVMGetTypeKind;
    fn int_width(t: LLVMTypeRef) -> u32 = LLVMGetIntTypeWidth;
    fn vector_size(t: LLVMTypeRef) -> u32 = LLVMGetVectorSize;
    fn element_type(t: LLVMTypeRef) -> LLVMTypeRef = LLVMGetElementType;
    fn struct_count(t: LLVMTypeRef) -> u32 = LLVMCountStructElementTypes;
    fn struct_elem(t: LLVMTypeRef, i: u32) -> LLVMTypeRef = LLVMStructGetTypeAtIndex;
    fn array_len(t: LLVMTypeRef) -> u64 = LLVMGetArrayLength2;
    fn pointer_space(t: LLVMTypeRef) -> u32 = LLVMGetPointerAddressSpace;
    fn abi_size(td: LLVMTargetDataRef, t: LLVMTypeRef) -> u64 = LLVMABISizeOfType;
    fn abi_align(td: LLVMTargetDataRef, t: LLVMTypeRef) -> u32 = LLVMABIAlignmentOfType;
    fn offset_of(td: LLVMTargetDataRef, t: LLVMTypeRef, i: u32) -> u64 = LLVMOffsetOfElement;
    fn allocated_type(v: LLVMValueRef) -> LLVMTypeRef = LLVMGetAllocatedType;
    fn alignment(v: LLVMValueRef) -> u32 = LLVMGetAlignment;
    fn is_volatile(v: LLVMValueRef) -> i32 = LLVMGetVolatile;
    fn gep_source_type(v: LLVMValueRef) -> LLVMTypeRef = LLVMGetGEPSourceElementType;
    fn num_indices(v: LLVMValueRef) -> u32 = LLVMGetNumIndices;
    fn icmp_pred(v: LLVMValueRef) -> LLVMIntPredicate = LLVMGetICmpPredicate;
    fn fcmp_pred(v: LLVMValueRef) -> LLVMRealPredicate = LLVMGetFCmpPredicate;
    fn called_value(v: LLVMValueRef) -> LLVMValueRef = LLVMGetCalledValue;
    fn called_type(v: LLVMValueRef) -> LLVMTypeRef = LLVMGetCalledFunctionType;
    fn num_arg_operands(v: LLVMValueRef) -> u32 = LLVMGetNumArgOperands;
    fn is_vararg_type(t: LLVMTypeRef) -> i32 = LLVMIsFunctionVarArg;
    fn return_type(t: LLVMTypeRef) -> LLVMTypeRef = LLVMGetReturnType;
    fn count_param_types(t: LLVMTypeRef) -> u32 = LLVMCountParamTypes;
    fn is_conditional(v: LLVMValueRef) -> i32 = LLVMIsConditional;
    fn condition(v: LLVMValueRef) -> LLVMValueRef = LLVMGetCondition;
    fn num_successors(v: LLVMValueRef) -> u32 = LLVMGetNumSuccessors;
    fn successor(v: LLVMValueRef, i: u32) -> LLVMBasicBlockRef = LLVMGetSuccessor;
    fn count_incoming(v: LLVMValueRef) -> u32 = LLVMCountIncoming;
    fn incoming_value(v: LLVMValueRef, i: u32) -> LLVMValueRef = LLVMGetIncomingValue;
    fn incoming_block(v: LLVMValueRef, i: u32) -> LLVMBasicBlockRef = LLVMGetIncomingBlock;
    fn first_block(f: LLVMValueRef) -> LLVMBasicBlockRef = LLVMGetFirstBasicBlock;
    fn next_block(b: LLVMBasicBlockRef) -> LLVMBasicBlockRef = LLVMGetNextBasicBlock;
    fn first_inst(b: LLVMBasicBlockRef) -> LLVMValueRef = LLVMGetFirstInstruction;
    fn next_inst(v: LLVMValueRef) -> LLVMValueRef = LLVMGetNextInstruction;
    fn terminator(b: LLVMBasicBlockRef) -> LLVMValueRef = LLVMGetBasicBlockTerminator;
    fn ordering(v: LLVMValueRef) -> LLVMAtomicOrdering = LLVMGetOrdering;
    fn rmw_op(v: LLVMValueRef) -> LLVMAtomicRMWBinOp = LLVMGetAtomicRMWBinOp;
    fn const_zext(v: LLVMValueRef) -> u64 = LLVMConstIntGetZExtValue;
    fn const_sext(v: LLVMValueRef) -> i64 = LLVMConstIntGetSExtValue;
    fn aggregate_element(v: LLVMValueRef, i: u32) -> LLVMValueRef = LLVMGetAggregateElement;
    fn linkage(v: LLVMValueRef) -> LLVMLinkage = LLVMGetLinkage;
    fn is_declaration(v: LLVMValueRef) -> i32 = LLVMIsDeclaration;
    fn first_function(m: LLVMModuleRef) -> LLVMValueRef = LLVMGetFirstFunction;
    fn next_function(f: LLVMValueRef) -> LLVMValueRef = LLVMGetNextFunction;
    fn count_params(f: LLVMValueRef) -> u32 = LLVMCountParams;
    fn param(f: LLVMValueRef, i: u32) -> LLVMValueRef = LLVMGetParam;
    fn is_thread_local(v: LLVMValueRef) -> i32 = LLVMIsThreadLocal;
    fn is_global_constant(v: LLVMValueRef) -> i32 = LLVMIsGlobalConstant;
    fn initializer(v: LLVMValueRef) -> LLVMValueRef = LLVMGetInitializer;
    fn num_mask_elements(v: LLVMValueRef) -> u32 = LLVMGetNumMaskElements;
    fn mask_value(v: LLVMValueRef, i: u32) -> i32 = LLVMGetMaskValue;
    fn blockaddress_function(v: LLVMValueRef) -> LLVMValueRef = LLVMGetBlockAddressFunction;
    fn blockaddress_block(v: LLVMValueRef) -> LLVMBasicBlockRef = LLVMGetBlockAddressBasicBlock;
    fn module_data_layout(m: LLVMModuleRef) -> LLVMTargetDataRef = LLVMGetModuleDataLayout;
    fn is_a_function(v: LLVMValueRef) -> LLVMValueRef = LLVMIsAFunction;
    fn is_a_inline_asm(v: LLVMValueRef) -> LLVMValueRef = LLVMIsAInlineAsm;
    fn is_a_constant_int(v: LLVMValueRef) -> LLVMValueRef = LLVMIsAConstantInt;
    fn is_a_constant(v: LLVMValueRef) -> LLVMValueRef = LLVMIsAConstant;
    fn first_use(v: LLVMValueRef) -> LLVMUseRef = LLVMGetFirstUse;
    fn next_use(u: LLVMUseRef) -> LLVMUseRef = LLVMGetNextUse;
    fn user(u: LLVMUseRef) -> LLVMValueRef = LLVMGetUser;
    fn instruction_parent(v: LLVMValueRef) -> LLVMBasicBlockRef = LLVMGetInstructionParent;
    fn block_parent(b: LLVMBasicBlockRef) -> LLVMValueRef = LLVMGetBasicBlockParent;
    fn first_global(m: LLVMModuleRef) -> LLVMValueRef = LLVMGetFirstGlobal;
    fn next_global(v: LLVMValueRef) -> LLVMValueRef = LLVMGetNextGlobal;
    fn is_a_instruction(v: LLVMValueRef) -> LLVMValueRef = LLVMIsAInstruction;
    fn global_value_type(v: LLVMValueRef) -> LLVMTypeRef = LLVMGlobalGetValueType;
}

/// Whether global `g` carries metadata of kind `name` (such as the
/// partition plan's `!orc.blocks` mark of an encoded block table).
pub(super) fn has_metadata(g: LLVMValueRef, name: &str) -> bool {
    let mut n = 0usize;
    // SAFETY: `g` is a live global; the kind name is read for `len` bytes;
    // the entries LLVM copies out are read and then disposed of here.
    unsafe {
        let ctx = LLVMGetTypeContext(LLVMTypeOf(g));
        let kind = LLVMGetMDKindIDInContext(ctx, name.as_ptr().cast(), name.len() as u32);
        let entries = LLVMGlobalCopyAllMetadata(g, &mut n);
        if entries.is_null() {
            return false;
        }
        let found = (0..n).any(|i| LLVMValueMetadataEntriesGetKind(entries, i as u32) == kind);
        LLVMDisposeValueMetadataEntries(entries);
        found
    }
}

/// The attribute kind called `name`.
pub(super) fn attr_kind(name: &str) -> u32 {
    // SAFETY: the pointer and length describe `name`'s bytes.
    unsafe { LLVMGetEnumAttributeKindForName(name.as_ptr().cast(), name.len()) }
}

/// The attribute `kind` of function `f` at `index` (0 the return value,
/// `i + 1` parameter `i`), if any.
pub(super) fn fn_attr(f: LLVMValueRef, index: u32, kind: u32) -> Option<LLVMAttributeRef> {
    // SAFETY: `f` is a live function of the module (see the module docs).
    let a = unsafe { LLVMGetEnumAttributeAtIndex(f, index, kind) };
    (!a.is_null()).then_some(a)
}

/// The attribute `kind` of call instruction `c` at `index`, if any.
pub(super) fn call_attr(c: LLVMValueRef, index: u32, kind: u32) -> Option<LLVMAttributeRef> {
    // SAFETY: `c` is a live call instruction of the module.
    let a = unsafe { LLVMGetCallSiteEnumAttribute(c, index, kind) };
    (!a.is_null()).then_some(a)
}

/// The type of a type attribute (`byval(<ty>)`, `sret(<ty>)`).
pub(super) fn attr_type(a: LLVMAttributeRef) -> LLVMTypeRef {
    // SAFETY: `a` is a live type attribute the caller just obtained.
    unsafe { LLVMGetTypeAttributeValue(a) }
}

/// The integer value of an enum attribute (`align`).
pub(super) fn attr_value(a: LLVMAttributeRef) -> u64 {
    // SAFETY: `a` is a live enum attribute the caller just obtained.
    unsafe { LLVMGetEnumAttributeValue(a) }
}

/// The parameter types of function type `t`.
pub(super) fn param_types(t: LLVMTypeRef) -> Vec<LLVMTypeRef> {
    let n = count_param_types(t) as usize;
    let mut out = vec![std::ptr::null_mut(); n];
    // SAFETY: `out` has room for the `n` parameter types LLVM writes.
    unsafe { LLVMGetParamTypes(t, out.as_mut_ptr()) };
    out
}

/// The constant indices of an `extractvalue`/`insertvalue`.
pub(super) fn indices(v: LLVMValueRef) -> Vec<u32> {
    let n = num_indices(v) as usize;
    // SAFETY: LLVM returns a pointer to the instruction's `n` indices,
    // valid while the instruction lives; we copy them at once.
    unsafe { std::slice::from_raw_parts(LLVMGetIndices(v), n).to_vec() }
}

/// The name of a global value (empty for none).
pub(super) fn name(v: LLVMValueRef) -> String {
    let mut len = 0usize;
    // SAFETY: `v` is a live value; LLVM returns a pointer to `len` bytes of
    // its name, valid while it lives; we copy them at once.
    unsafe {
        let p = LLVMGetValueName2(v, &mut len);
        if p.is_null() {
            return String::new();
        }
        String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len)).into_owned()
    }
}

/// `v` as LLVM prints it, trimmed and shortened for a diagnostic.
pub(super) fn print(v: LLVMValueRef) -> String {
    // SAFETY: `v` is a live value; LLVM returns a fresh C string that we
    // copy and then free with LLVMDisposeMessage, as documented.
    let s = unsafe {
        let p = LLVMPrintValueToString(v);
        let s = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
        LLVMDisposeMessage(p);
        s
    };
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s = s.split(", !dbg").next().unwrap_or(&s);
    if s.len() > 160 {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_owned()
    }
}

/// Real constant `v` as an `f64` (exact for `float` and `double`).
pub(super) fn const_real(v: LLVMValueRef) -> f64 {
    let mut loses = 0;
    // SAFETY: `v` is a live ConstantFP (the caller checked its kind).
    unsafe { LLVMConstRealGetDouble(v, &mut loses) }
}

/// Gives the module the x86-64 data layout when it has none.
pub(super) fn ensure_data_layout(m: LLVMModuleRef) {
    // SAFETY: `m` is the live module; the string LLVM returns stays valid
    // until the layout changes, and we only test whether it is empty.
    let empty = unsafe { *LLVMGetDataLayoutStr(m) == 0 };
    if empty {
        let layout =
            c"e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128";
        // SAFETY: `m` is live and not being read elsewhere; the string is
        // NUL-terminated.
        unsafe { LLVMSetDataLayout(m, layout.as_ptr()) };
    }
}

/// Functions of module `m`, in order.
pub(super) fn functions(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    let mut out = Vec::new();
    let mut f = first_function(m);
    while !f.is_null() {
        out.push(f);
        f = next_function(f);
    }
    out
}

/// The users of `v`.
pub(super) fn users(v: LLVMValueRef) -> Vec<LLVMValueRef> {
    let mut out = Vec::new();
    let mut u = first_use(v);
    while !u.is_null() {
        out.push(user(u));
        u = next_use(u);
    }
    out
}

/// The instructions of block `b`.
pub(super) fn instructions(b: LLVMBasicBlockRef) -> Vec<LLVMValueRef> {
    let mut out = Vec::new();
    let mut i = first_inst(b);
    while !i.is_null() {
        out.push(i);
        i = next_inst(i);
    }
    out
}

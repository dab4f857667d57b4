//! Jump tables of block addresses in the prepared bitcode, encoded so that
//! reading a unit does not read the tables' functions.
//!
//! LLVM's lazy bitcode reader materializes, at load, every function whose
//! `blockaddress` appears in a global initializer: with computed-goto
//! tables in the prepared module, every unit would parse the interpreter's
//! body (often the largest function) only to delete it. So the plan
//! encodes each table it gives to a function's unit: every
//! `blockaddress(@f, %bb)` in it becomes `getelementptr (i8, ptr @f, i64 K)`
//! where `%bb` is `@f`'s block number K (never 0: an entry block has no
//! address), and the table is marked with `!orc.blocks` metadata. The unit
//! that defines the table decodes it after reading `@f`'s body; the others
//! only declare it. A table whose encoding would be ambiguous (it already
//! holds such a `getelementptr`) or that uses block addresses inside other
//! constant expressions (e.g. label differences) is left as it is: correct,
//! only slower to read.

use inkwell::llvm_sys::core::*;
use inkwell::llvm_sys::prelude::{LLVMModuleRef, LLVMValueRef};
use inkwell::llvm_sys::{LLVMOpcode, LLVMTypeKind};
use std::collections::{HashMap, HashSet};

use super::ir::*;

/// The metadata kind marking an encoded table.
const MARK: &str = "orc.blocks";

fn mark_kind(m: LLVMModuleRef) -> u32 {
    // SAFETY: `m` is a live module; LLVM reads `len` bytes of the name.
    unsafe {
        let ctx = LLVMGetModuleContext(m);
        LLVMGetMDKindIDInContext(ctx, MARK.as_ptr().cast(), MARK.len() as u32)
    }
}

/// Whether the global `g` carries the `!orc.blocks` mark.
pub(super) fn is_marked(g: LLVMValueRef, kind: u32) -> bool {
    let mut n = 0usize;
    // SAFETY: `g` is a live global; the entries are copied out, read and
    // disposed of here.
    unsafe {
        let entries = LLVMGlobalCopyAllMetadata(g, &mut n);
        if entries.is_null() {
            return false;
        }
        let found = (0..n).any(|i| LLVMValueMetadataEntriesGetKind(entries, i as u32) == kind);
        LLVMDisposeValueMetadataEntries(entries);
        found
    }
}

/// Whether `c` is `getelementptr (i8, ptr @f, i64 K)` with `@f` a
/// function: the encoding of a block address. Returns `(f, K)`.
fn encoded_block(c: LLVMValueRef) -> Option<(LLVMValueRef, u64)> {
    // SAFETY: `c` is a live value; it and its operands are only inspected.
    unsafe {
        if LLVMIsAConstantExpr(c).is_null()
            || LLVMGetConstOpcode(c) != LLVMOpcode::LLVMGetElementPtr
            || LLVMGetNumOperands(c) != 2
        {
            return None;
        }
        let ty = LLVMGetGEPSourceElementType(c);
        if LLVMGetTypeKind(ty) != LLVMTypeKind::LLVMIntegerTypeKind || LLVMGetIntTypeWidth(ty) != 8
        {
            return None;
        }
        let base = LLVMGetOperand(c, 0);
        let index = LLVMGetOperand(c, 1);
        if LLVMIsAFunction(base).is_null() || LLVMIsAConstantInt(index).is_null() {
            return None;
        }
        Some((base, LLVMConstIntGetZExtValue(index)))
    }
}

/// `c` rebuilt from its (possibly new) `elements`, for the aggregate kinds
/// the encoding walks through; `None` for other constants.
///
/// # Safety
/// `c` is a live constant and `elements` live constants of its context
/// fitting its type.
unsafe fn rebuild_aggregate(
    c: LLVMValueRef,
    elements: &mut [LLVMValueRef],
) -> Option<LLVMValueRef> {
    // SAFETY: per the contract.
    unsafe {
        let ty = LLVMTypeOf(c);
        let n = u32::try_from(elements.len()).ok()?;
        if !LLVMIsAConstantArray(c).is_null() {
            Some(LLVMConstArray2(
                LLVMGetElementType(ty),
                elements.as_mut_ptr(),
                u64::from(n),
            ))
        } else if !LLVMIsAConstantStruct(c).is_null() {
            if LLVMGetStructName(ty).is_null() {
                let ctx = LLVMGetTypeContext(ty);
                let packed = LLVMIsPackedStruct(ty);
                Some(LLVMConstStructInContext(
                    ctx,
                    elements.as_mut_ptr(),
                    n,
                    packed,
                ))
            } else {
                Some(LLVMConstNamedStruct(ty, elements.as_mut_ptr(), n))
            }
        } else if !LLVMIsAConstantVector(c).is_null() {
            Some(LLVMConstVector(elements.as_mut_ptr(), n))
        } else {
            None
        }
    }
}

/// Rewrites `c`'s block addresses with `leaf`, walking through arrays,
/// structures and vectors: `Ok(None)` if `c` has nothing to rewrite,
/// `Ok(Some(new))` for the rewritten constant, `Err` if a block address
/// (or an existing encoding, when encoding) sits somewhere else.
fn rewrite(
    c: LLVMValueRef,
    leaf: &mut dyn FnMut(LLVMValueRef) -> Result<Option<LLVMValueRef>, ()>,
) -> Result<Option<LLVMValueRef>, ()> {
    if let Some(new) = leaf(c)? {
        return Ok(Some(new));
    }
    // SAFETY: `c` is a live constant; its operands are read and the
    // rebuilt aggregate has the same type.
    unsafe {
        let aggregate = !LLVMIsAConstantArray(c).is_null()
            || !LLVMIsAConstantStruct(c).is_null()
            || !LLVMIsAConstantVector(c).is_null();
        let walk = aggregate || !LLVMIsAConstantExpr(c).is_null();
        if !walk {
            return Ok(None);
        }
        let n = u32::try_from(LLVMGetNumOperands(c)).unwrap_or(0);
        let mut elements = Vec::with_capacity(n as usize);
        let mut changed = false;
        for i in 0..n {
            let op = LLVMGetOperand(c, i);
            match rewrite(op, leaf)? {
                Some(new) => {
                    changed = true;
                    elements.push(new);
                }
                None => elements.push(op),
            }
        }
        if !changed {
            return Ok(None);
        }
        if !aggregate {
            // A block address inside a constant expression.
            return Err(());
        }
        rebuild_aggregate(c, &mut elements).map(Some).ok_or(())
    }
}

/// Encodes the tables `tables` (global variable definitions of `m` whose
/// initializers hold block addresses) as described in the module docs;
/// tables that cannot be encoded are left unchanged.
pub(super) fn encode_tables(m: LLVMModuleRef, tables: &[LLVMValueRef]) {
    let kind = mark_kind(m);
    let mut numbers: HashMap<LLVMValueRef, HashMap<LLVMValueRef, u64>> = HashMap::new();
    for &g in tables {
        // SAFETY: `g` is a live global variable definition of `m`; block
        // addresses and functions are only inspected, the new constants
        // are made in `m`'s context, and the initializer is replaced by
        // one of the same type.
        unsafe {
            let init = LLVMGetInitializer(g);
            if init.is_null() {
                continue;
            }
            let ctx = LLVMGetModuleContext(m);
            let i8t = LLVMInt8TypeInContext(ctx);
            let i64t = LLVMInt64TypeInContext(ctx);
            let mut leaf = |c: LLVMValueRef| -> Result<Option<LLVMValueRef>, ()> {
                if encoded_block(c).is_some() {
                    return Err(()); // would be ambiguous
                }
                if LLVMIsABlockAddress(c).is_null() {
                    return Ok(None);
                }
                let f = LLVMGetBlockAddressFunction(c);
                let bb = LLVMGetBlockAddressBasicBlock(c);
                let blocks = numbers.entry(f).or_insert_with(|| {
                    let mut map = HashMap::new();
                    let mut b = LLVMGetFirstBasicBlock(f);
                    let mut k = 0u64;
                    while !b.is_null() {
                        map.insert(LLVMBasicBlockAsValue(b), k);
                        k += 1;
                        b = LLVMGetNextBasicBlock(b);
                    }
                    map
                });
                let k = *blocks.get(&LLVMBasicBlockAsValue(bb)).ok_or(())?;
                let mut index = [LLVMConstInt(i64t, k, 0)];
                let gep = LLVMConstGEP2(i8t, f, index.as_mut_ptr(), 1);
                // A zero offset would fold to `@f` itself (an entry block
                // has no address, so it does not happen).
                if encoded_block(gep) != Some((f, k)) {
                    return Err(());
                }
                Ok(Some(gep))
            };
            if let Ok(Some(encoded)) = rewrite(init, &mut leaf) {
                LLVMSetInitializer(g, encoded);
                LLVMGlobalSetMetadata(g, kind, LLVMMDNodeInContext2(ctx, std::ptr::null_mut(), 0));
            }
        }
    }
}

/// The encoded tables (marked globals) whose initializers refer to `f`
/// through a block encoding.
pub(super) fn encoded_tables_of(m: LLVMModuleRef, f: LLVMValueRef) -> Vec<LLVMValueRef> {
    let kind = mark_kind(m);
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = Vec::new();
    for user in users(f) {
        if encoded_block(user).is_some() && seen.insert(user) {
            stack.push(user);
        }
    }
    while let Some(c) = stack.pop() {
        for user in users(c) {
            // SAFETY: `user` is a live value of the module; only its kind
            // is inspected.
            let (global, constant, global_value) = unsafe {
                (
                    !LLVMIsAGlobalVariable(user).is_null(),
                    !LLVMIsAConstant(user).is_null(),
                    !LLVMIsAGlobalValue(user).is_null(),
                )
            };
            if global {
                if seen.insert(user) && is_marked(user, kind) {
                    found.push(user);
                }
            } else if constant && !global_value && seen.insert(user) {
                stack.push(user);
            }
        }
    }
    found
}

/// The encoded tables of `m` (see [`encode_tables`]).
pub(super) fn encoded_tables(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    let kind = mark_kind(m);
    global_list(m)
        .into_iter()
        .filter(|&g| !is_declaration(g) && is_marked(g, kind))
        .collect()
}

/// Decodes the encoded table `g` back into block addresses. The functions
/// it refers to must have their bodies in `m` (read).
pub(super) fn decode_table(g: LLVMValueRef) -> Result<(), String> {
    let name = name_of(g);
    // SAFETY: `g` is a live global variable definition; its initializer
    // is replaced by one of the same type built from its functions' blocks.
    unsafe {
        let init = LLVMGetInitializer(g);
        let mut leaf = |c: LLVMValueRef| -> Result<Option<LLVMValueRef>, ()> {
            let Some((f, k)) = encoded_block(c) else {
                return Ok(None);
            };
            let mut b = LLVMGetFirstBasicBlock(f);
            for _ in 0..k {
                if b.is_null() {
                    break;
                }
                b = LLVMGetNextBasicBlock(b);
            }
            if b.is_null() {
                return Err(());
            }
            Ok(Some(LLVMBlockAddress(f, b)))
        };
        match rewrite(init, &mut leaf) {
            Ok(Some(decoded)) => {
                LLVMSetInitializer(g, decoded);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(()) => Err(format!(
                "cannot decode the block addresses of '{name}' (is its function in this unit?)"
            )),
        }
    }
}

//! Raw LLVM-C helpers for the split: parsing (lazily or verified), walking
//! a module's globals, names and linkage, and turning definitions into
//! declarations.

use crate::diagnostics::DiagnosticSink;
use inkwell::context::Context;
use inkwell::llvm_sys::bit_reader::LLVMGetBitcodeModuleInContext2;
use inkwell::llvm_sys::comdat::LLVMSetComdat;
use inkwell::llvm_sys::core::*;
use inkwell::llvm_sys::prelude::{LLVMModuleRef, LLVMValueRef};
use inkwell::llvm_sys::{LLVMAttributeFunctionIndex, LLVMLinkage, LLVMTypeKind, LLVMVisibility};
use inkwell::memory_buffer::MemoryBuffer;
use inkwell::module::Module;
use std::collections::HashSet;
use std::ffi::{c_char, c_uint, CString};

use super::*;

/// The global variable called `name` in `m`, if any.
pub(super) fn named_global(m: LLVMModuleRef, name: &str) -> Option<LLVMValueRef> {
    let cname = CString::new(name).ok()?;
    // SAFETY: `m` is a live module; LLVM only reads the name.
    let g = unsafe { LLVMGetNamedGlobal(m, cname.as_ptr()) };
    (!g.is_null()).then_some(g)
}

/// The function called `name` in `m`, if any.
pub(super) fn named_function(m: LLVMModuleRef, name: &str) -> Option<LLVMValueRef> {
    // A name with a NUL byte cannot be looked up; no function has one.
    let cname = CString::new(name).ok()?;
    // SAFETY: `m` is a live module; LLVM only reads the NUL-terminated
    // name to look it up.
    let f = unsafe { LLVMGetNamedFunction(m, cname.as_ptr()) };
    (!f.is_null()).then_some(f)
}

/// Removes the definition `old` from `m`: deleted at once when nothing uses
/// it, else replaced by a declaration (see [`replace_with_declaration`]).
pub(super) fn drop_definition(
    m: LLVMModuleRef,
    old: LLVMValueRef,
    dead: &mut Option<LLVMValueRef>,
) -> Result<(), String> {
    // SAFETY: `old` is a live global of `m`; without uses it can be
    // erased with the API matching its kind, and no handle to it survives
    // (the module was parsed by our caller).
    unsafe {
        if LLVMGetFirstUse(old).is_null() {
            if !LLVMIsAFunction(old).is_null() {
                LLVMDeleteFunction(old);
                return Ok(());
            }
            if !LLVMIsAGlobalVariable(old).is_null() {
                LLVMDeleteGlobal(old);
                return Ok(());
            }
        }
    }
    replace_with_declaration(m, old, dead)
}

/// Reads the bitcode `bytes` lazily into `context`: globals, constants
/// and metadata now, each function body only when materialized.
pub(super) fn parse_lazily<'ctx>(
    context: &'ctx Context,
    name: &str,
    bytes: &[u8],
) -> Result<Module<'ctx>, String> {
    let cname = CString::new(name.replace('\0', "")).unwrap_or_default();
    let mut raw: LLVMModuleRef = std::ptr::null_mut();
    // SAFETY: the buffer copies `bytes`; on success the module takes
    // ownership of it (lazy reading keeps it), on failure it is disposed of
    // here. `context.raw()` is a live context.
    let failed = unsafe {
        let buffer = LLVMCreateMemoryBufferWithMemoryRangeCopy(
            bytes.as_ptr().cast::<c_char>(),
            bytes.len(),
            cname.as_ptr(),
        );
        let failed = LLVMGetBitcodeModuleInContext2(context.raw(), buffer, &mut raw) != 0;
        if failed {
            LLVMDisposeMemoryBuffer(buffer);
        }
        failed
    };
    if failed || raw.is_null() {
        return Err(format!("{name}: error: cannot read the prepared bitcode"));
    }
    // SAFETY: `raw` is a new module of `context`, owned by nobody else.
    Ok(unsafe { Module::new(raw) })
}

/// Reads the body of `f`, a function of the lazily read module `m`
/// (a no-op for a body already read). LLVM's C API materializes a
/// function when a legacy function pass manager runs on it; this one has
/// no passes.
pub(super) fn materialize(m: LLVMModuleRef, f: LLVMValueRef) {
    // SAFETY: `m` is a live module and `f` one of its functions; the pass
    // manager is created, used and disposed of here.
    unsafe {
        let fpm = LLVMCreateFunctionPassManagerForModule(m);
        LLVMInitializeFunctionPassManager(fpm);
        LLVMRunFunctionPassManager(fpm, f);
        LLVMFinalizeFunctionPassManager(fpm);
        LLVMDisposePassManager(fpm);
    }
}

/// The edit of [`functions_unit`] on `m`: keeps each function's body
/// (`kept[i][0]`) as `functions[i].body` and its members (`kept[i][1..]`) as
/// internal functions; every other definition becomes a declaration,
/// appending tables are dropped, and so are declarations nothing uses.
///
/// # Safety
/// `m` is a live module, `kept` holds definitions of `m` (from
/// [`kept_functions`]) and no caller holds a handle to any other of its
/// globals (they may be deleted).
pub(super) unsafe fn keep_only_functions(
    m: LLVMModuleRef,
    kept: &[Vec<LLVMValueRef>],
    functions: &[UnitFunction<'_>],
) -> Result<(), String> {
    let all_kept: HashSet<LLVMValueRef> = kept.iter().flatten().copied().collect();
    // Jump tables of the kept functions' blocks stay defined here (the
    // plan gave them to this unit); nowhere else can they hold the blocks'
    // addresses.
    let kept_data: HashSet<LLVMValueRef> = all_kept
        .iter()
        .flat_map(|&f| {
            let mut tables = super::graph::block_address_holders(f).0;
            tables.extend(super::blocks::encoded_tables_of(m, f));
            tables
        })
        .collect();
    for &g in &kept_data {
        super::blocks::decode_table(g)?;
    }
    let mut dead = None;
    for g in global_list(m) {
        if linkage_of(g) == LLVMLinkage::LLVMAppendingLinkage {
            // SAFETY: appending tables (`llvm.used`, ctors...) have no uses
            // and no handle to them exists outside this function.
            unsafe { LLVMDeleteGlobal(g) };
        }
    }
    for a in alias_list(m) {
        replace_with_declaration(m, a, &mut dead)?;
    }
    for g in global_list(m) {
        if !is_declaration(g) && Some(g) != dead && !kept_data.contains(&g) {
            drop_definition(m, g, &mut dead)?;
        }
    }
    for &g in &kept_data {
        // SAFETY: `g` is a live global variable of `m` (a definition with
        // a unique external name from the plan); it is only reconfigured.
        unsafe {
            LLVMSetLinkage(g, LLVMLinkage::LLVMExternalLinkage);
            LLVMSetVisibility(g, LLVMVisibility::LLVMDefaultVisibility);
            LLVMSetComdat(g, std::ptr::null_mut());
        }
    }
    for f in function_list(m) {
        if !all_kept.contains(&f) && !is_declaration(f) {
            drop_definition(m, f, &mut dead)?;
        }
    }
    for &f in kept.iter().flat_map(|unit| &unit[1..]) {
        // SAFETY: `f` is a live definition of `m`, used only by its unit's
        // functions (the plan checked it): internal linkage (with the
        // default visibility it has) keeps it out of the symbol table.
        unsafe {
            LLVMSetLinkage(f, LLVMLinkage::LLVMInternalLinkage);
            LLVMSetComdat(f, std::ptr::null_mut());
        }
    }
    let mut targets = HashSet::new();
    for (unit, wanted) in kept.iter().zip(functions) {
        let target = unit[0];
        targets.insert(target);
        set_name(target, wanted.body);
        let decl = declare_like(m, target, wanted.function);
        if super::graph::has_block_addresses(target) {
            replace_uses_but_block_addresses(target, decl);
        } else {
            // SAFETY: `target` and `decl` are live functions of `m` of the
            // same type.
            unsafe { LLVMReplaceAllUsesWith(target, decl) };
        }
        // SAFETY: `target` is a live function of `m`; afterwards it is a
        // plain external definition without a comdat (its copy is the
        // only one).
        unsafe {
            LLVMSetLinkage(target, LLVMLinkage::LLVMExternalLinkage);
            LLVMSetVisibility(target, LLVMVisibility::LLVMDefaultVisibility);
            LLVMSetComdat(target, std::ptr::null_mut());
        }
    }
    // Declarations without uses only cost parsing and symbol-table time in
    // later stages: drop them (the bodies' references are all uses).
    for f in function_list(m) {
        // SAFETY: `f` is a live function of `m`; an unused declaration can
        // be erased and no handle to it survives.
        unsafe {
            if !targets.contains(&f) && is_declaration(f) && LLVMGetFirstUse(f).is_null() {
                LLVMDeleteFunction(f);
            }
        }
    }
    for g in global_list(m) {
        // SAFETY: as above, for global variables.
        unsafe {
            if is_declaration(g) && LLVMGetFirstUse(g).is_null() {
                LLVMDeleteGlobal(g);
            }
        }
    }
    Ok(())
}

pub(super) fn parse<'ctx>(
    context: &'ctx Context,
    name: &str,
    bytes: &[u8],
) -> Result<Module<'ctx>, String> {
    let buffer = MemoryBuffer::create_from_memory_range_copy(bytes, name);
    context
        .create_module_from_ir(buffer)
        .map_err(|e| e.to_string().trim_end().to_owned())
}

pub(super) fn parse_verified<'ctx>(
    context: &'ctx Context,
    sink: &DiagnosticSink,
    name: &str,
    bytes: &[u8],
) -> Result<Module<'ctx>, PartitionError> {
    let module = parse(context, name, bytes).map_err(PartitionError::Parse)?;
    let errors = sink.take_errors();
    if !errors.is_empty() {
        return Err(PartitionError::Parse(format!(
            "{name}: error: {}",
            errors.join("\n")
        )));
    }
    module
        .verify()
        .map_err(|e| PartitionError::Verify(e.to_string().trim_end().to_owned()))?;
    Ok(module)
}

pub(super) fn collect(
    first: LLVMValueRef,
    next: unsafe extern "C" fn(LLVMValueRef) -> LLVMValueRef,
) -> Vec<LLVMValueRef> {
    let mut out = Vec::new();
    let mut v = first;
    while !v.is_null() {
        out.push(v);
        // SAFETY: `v` is a live element of its module's list.
        v = unsafe { next(v) };
    }
    out
}

pub(super) fn function_list(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    // SAFETY: `m` is a live module.
    collect(unsafe { LLVMGetFirstFunction(m) }, LLVMGetNextFunction)
}

/// The user of each use of `v`, in use order (a user appears once per use).
pub(super) fn users(v: LLVMValueRef) -> Vec<LLVMValueRef> {
    let mut out = Vec::new();
    // SAFETY: `v` is a live value; its use list is only walked.
    unsafe {
        let mut u = LLVMGetFirstUse(v);
        while !u.is_null() {
            out.push(LLVMGetUser(u));
            u = LLVMGetNextUse(u);
        }
    }
    out
}

pub(super) fn global_list(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    // SAFETY: `m` is a live module.
    collect(unsafe { LLVMGetFirstGlobal(m) }, LLVMGetNextGlobal)
}

pub(super) fn alias_list(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    // SAFETY: `m` is a live module.
    collect(
        unsafe { LLVMGetFirstGlobalAlias(m) },
        LLVMGetNextGlobalAlias,
    )
}

pub(super) fn ifuncs(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    // SAFETY: `m` is a live module.
    collect(
        unsafe { LLVMGetFirstGlobalIFunc(m) },
        LLVMGetNextGlobalIFunc,
    )
}

pub(super) fn name_of(v: LLVMValueRef) -> String {
    let mut len = 0usize;
    // SAFETY: `v` is a live value; LLVM returns a pointer to `len` bytes
    // that stay valid until the value is renamed, copied out at once.
    let ptr = unsafe { LLVMGetValueName2(v, &mut len) };
    if ptr.is_null() || len == 0 {
        return String::new();
    }
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn set_name(v: LLVMValueRef, name: &str) {
    // SAFETY: `v` is a live value; LLVM copies `name` (length given, so no
    // NUL terminator is needed).
    unsafe { LLVMSetValueName2(v, name.as_ptr().cast::<c_char>(), name.len()) };
}

pub(super) fn linkage_of(v: LLVMValueRef) -> LLVMLinkage {
    // SAFETY: `v` is a live global value.
    unsafe { LLVMGetLinkage(v) }
}

pub(super) fn is_declaration(v: LLVMValueRef) -> bool {
    // SAFETY: `v` is a live global value.
    unsafe { LLVMIsDeclaration(v) != 0 }
}

/// The function an alias stands for, if it aliases a function.
pub(super) fn aliased_function(alias: LLVMValueRef) -> Option<LLVMValueRef> {
    // SAFETY: `alias` is a live alias; `LLVMIsAFunction` only inspects.
    let f = unsafe { LLVMIsAFunction(LLVMAliasGetAliasee(alias)) };
    (!f.is_null()).then_some(f)
}

/// A new external declaration called `name` with `old`'s value type (and,
/// for functions, calling convention and attributes; for variables,
/// constness, thread-local mode and alignment).
pub(super) fn declare_like(m: LLVMModuleRef, old: LLVMValueRef, name: &str) -> LLVMValueRef {
    // Names from LLVM cannot hold NUL, except through escapes: drop them.
    let cname = CString::new(name.replace('\0', "")).unwrap_or_default();
    // SAFETY: `old` is a live global of `m`; every call below only reads it
    // or creates/configures the new global of `m`.
    unsafe {
        let value_type = LLVMGlobalGetValueType(old);
        let is_fn_type = LLVMGetTypeKind(value_type) == LLVMTypeKind::LLVMFunctionTypeKind;
        if is_fn_type {
            let decl = LLVMAddFunction(m, cname.as_ptr(), value_type);
            if !LLVMIsAFunction(old).is_null() {
                LLVMSetFunctionCallConv(decl, LLVMGetFunctionCallConv(old));
                let n_params = LLVMCountParams(old);
                let indices =
                    std::iter::once(LLVMAttributeFunctionIndex).chain(0..=n_params as c_uint);
                for idx in indices {
                    let n = LLVMGetAttributeCountAtIndex(old, idx);
                    let mut attrs = vec![std::ptr::null_mut(); n as usize];
                    LLVMGetAttributesAtIndex(old, idx, attrs.as_mut_ptr());
                    for attr in attrs {
                        LLVMAddAttributeAtIndex(decl, idx, attr);
                    }
                }
            }
            decl
        } else {
            let addr_space = LLVMGetPointerAddressSpace(LLVMTypeOf(old));
            let decl = LLVMAddGlobalInAddressSpace(m, value_type, cname.as_ptr(), addr_space);
            if !LLVMIsAGlobalVariable(old).is_null() {
                LLVMSetGlobalConstant(decl, LLVMIsGlobalConstant(old));
                LLVMSetThreadLocalMode(decl, LLVMGetThreadLocalMode(old));
                LLVMSetAlignment(decl, LLVMGetAlignment(old));
            }
            decl
        }
    }
}

/// Replaces the definition `old` by an external declaration of the same
/// name and type, then deletes `old` (an alias cannot be deleted through
/// LLVM's C API: it is made private, unused and pointed at a private dummy,
/// which the optimizer removes).
pub(super) fn replace_with_declaration(
    m: LLVMModuleRef,
    old: LLVMValueRef,
    dead: &mut Option<LLVMValueRef>,
) -> Result<(), String> {
    let name = name_of(old);
    if name.is_empty() {
        return Err("an unnamed global cannot be split out (plan the module first)".into());
    }
    set_name(old, "");
    let decl = declare_like(m, old, &name);
    // SAFETY: `old` and `decl` are live globals of `m` of the same pointer
    // type. After the RAUW nothing uses `old`; it is deleted with the API
    // matching its kind (checked with the `LLVMIsA*` queries), and no handle
    // to it survives (the module was parsed by our caller).
    unsafe {
        LLVMReplaceAllUsesWith(old, decl);
        if !LLVMIsAFunction(old).is_null() {
            LLVMDeleteFunction(old);
        } else if !LLVMIsAGlobalVariable(old).is_null() {
            LLVMDeleteGlobal(old);
        } else if !LLVMIsAGlobalAlias(old).is_null() {
            let dummy = *dead.get_or_insert_with(|| {
                let i8t = LLVMInt8TypeInContext(LLVMGetModuleContext(m));
                let g = LLVMAddGlobal(m, i8t, c"".as_ptr());
                LLVMSetInitializer(g, LLVMConstInt(i8t, 0, 0));
                LLVMSetLinkage(g, LLVMLinkage::LLVMPrivateLinkage);
                g
            });
            LLVMAliasSetAliasee(old, dummy);
            LLVMSetLinkage(old, LLVMLinkage::LLVMPrivateLinkage);
            LLVMSetVisibility(old, LLVMVisibility::LLVMDefaultVisibility);
        } else {
            return Err(format!(
                "cannot split out '{name}': unsupported kind of global"
            ));
        }
    }
    Ok(())
}

/// Makes the code and data of `old`'s module use `new` instead of `old`,
/// except `blockaddress(@old, ...)` constants: a block's address belongs to
/// the function that holds the block, so those keep referring to `old`
/// (a general RAUW would make them name a declaration, which LLVM then
/// lowers to a bogus address). Instructions and global initializers are
/// rewritten; a use inside another constant expression keeps `old` too
/// (the same code under its body symbol instead of the stub).
fn replace_uses_but_block_addresses(old: LLVMValueRef, new: LLVMValueRef) {
    let mut users = Vec::new();
    // SAFETY: `old` is a live function; its uses are only inspected here.
    unsafe {
        let mut u = LLVMGetFirstUse(old);
        while !u.is_null() {
            let user = LLVMGetUser(u);
            if !users.contains(&user) {
                users.push(user);
            }
            u = LLVMGetNextUse(u);
        }
    }
    for user in users {
        // SAFETY: `user` is a live user of `old`. Instructions and global
        // variables own their operands (setting one only edits that user);
        // uniqued constants are never edited in place.
        unsafe {
            if !LLVMIsAInstruction(user).is_null() {
                let n = u32::try_from(LLVMGetNumOperands(user)).unwrap_or(0);
                for i in 0..n {
                    if LLVMGetOperand(user, i) == old {
                        LLVMSetOperand(user, i, new);
                    }
                }
            } else if !LLVMIsAGlobalVariable(user).is_null() && LLVMGetInitializer(user) == old {
                LLVMSetInitializer(user, new);
            }
        }
    }
}

//! LLVM IR to Cranelift IR: the tier 0 of LLVM IR programs.
//!
//! [`translate_module`] reads a module prepared by
//! `orc_llvm::partition::plan` (every global has a unique external name)
//! and translates each function definition to an `ir::Function` the tiered
//! layer takes. A function it cannot translate is returned as
//! [`Untranslatable`] with the construct it met; the caller compiles that
//! function with LLVM instead (it never fails the program).
//!
//! Values: an LLVM scalar is one CLIF value (`i1` is `i8` holding 0 or 1,
//! `ptr` is `i64`); a 128-bit vector is one CLIF vector value, a 64-bit
//! one (`<2 x float>`) the low half of one (an `f64` at calls and in
//! memory), a wider one the list of its 128-bit chunks; a vector of `i1`
//! is a mask as wide as the operands compared; an aggregate (struct,
//! array) is the list of its scalar leaves, flattened in order.
//!
//! Calls: a module function by [`ClifNames::function`] (its stub), anything
//! else by [`ClifNames::symbol`]; every reference to a symbol declares it
//! with one signature (its own type), so a call whose type differs, and a
//! call of a variadic function (through its [`vararg_thunk_symbol`], with
//! the full argument list), go through `func_addr` + `call_indirect`.
//! SysV attributes map to CLIF: `byval` to `StructArgument`, `sret` to
//! `StructReturn`, `zeroext`/`signext` to extensions; small aggregates are
//! returned as several values (rax/rdx, xmm0/xmm1, as clang does). Plain
//! loads and stores are `notrap` (a faulting access is UB in LLVM).
//!
//! Not covered (the function stays in tier 1, named): exception handling
//! (`invoke`, `landingpad`, `resume`), callers of `returns_twice` functions
//! (`setjmp`), inline asm, dynamic `alloca`, indirect variadic calls,
//! `x86_fp80`/`fp128`/`half`, integer widths other than 1, 8, 16, 32, 64
//! and 128, `blockaddress` constants that leave their function (other than
//! through a constant table only it uses), thread-local globals, and
//! return values passed in memory without `sret`.

use std::collections::{HashMap, HashSet};

use cranelift_codegen::ir;
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use orc_llvm::inkwell::context::Context;
use orc_llvm::inkwell::memory_buffer::MemoryBuffer;

mod func;
mod intrinsics;
mod service;

pub use service::ClifTranslator;
mod ll;

/// How translated code names what lies outside the function.
pub trait ClifNames {
    /// A function defined in the module being translated (by its name in
    /// the prepared module): calls and address uses bind to its stub.
    fn function(&mut self, name: &str) -> ir::UserExternalName;
    /// Any other symbol: a global variable of the module (prepared name), a
    /// declaration (a libc function), or a helper symbol such as a
    /// varargs-call thunk `__orc_va.NAME` (see [`vararg_thunk_symbol`]).
    fn symbol(&mut self, name: &str) -> ir::UserExternalName;
}

/// The symbol of the thunk through which tier-0 code calls the variadic
/// function `callee`: it sets `%al` to 8 (an upper bound of the vector
/// registers used, as the SysV ABI allows) and jumps to `callee`.
pub fn vararg_thunk_symbol(callee: &str) -> String {
    format!("{VARARG_THUNK_PREFIX}{callee}")
}

/// The prefix of [`vararg_thunk_symbol`] names.
pub const VARARG_THUNK_PREFIX: &str = "__orc_va.";

/// Why a function stays out of tier 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslatable {
    /// The function (prepared name).
    pub function: String,
    /// What could not be translated: an instruction, intrinsic or type,
    /// as LLVM prints it where possible.
    pub reason: String,
}

impl std::fmt::Display for Untranslatable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.function, self.reason)
    }
}

/// Data a translated function needs in its own copy (per version), such as
/// the tier-0 form of a table of `blockaddress` constants: define `symbol`
/// as these bytes (8-byte aligned, read-only) before compiling the
/// function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateData {
    /// The symbol the function refers to it by.
    pub symbol: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

/// One translated function.
#[derive(Debug)]
pub struct Translated {
    /// The function's name in the prepared module.
    pub name: String,
    /// Its CLIF (signature in the SysV convention), or why not.
    pub result: Result<TranslatedFunction, Untranslatable>,
}

/// A function's tier-0 form.
#[derive(Debug)]
pub struct TranslatedFunction {
    /// The function, named as the caller likes (the tiered layer renames it).
    pub func: ir::Function,
    /// Data to define before compiling it.
    pub data: Vec<PrivateData>,
    /// Whether on-stack replacement into tier-1 code is sound for it
    /// (false when its loop state may hold values whose meaning differs
    /// between tiers, such as tier-0 block addresses).
    pub osr_safe: bool,
}

/// Translates every function definition (not `available_externally`) of
/// `bitcode`, a module prepared by `orc_llvm::partition::plan`, in module
/// order. `Err` only when the bitcode does not parse.
pub fn translate_module(
    name: &str,
    bitcode: &[u8],
    names: &mut dyn ClifNames,
) -> Result<Vec<Translated>, String> {
    let context = Context::create();
    let buffer = MemoryBuffer::create_from_memory_range_copy(bitcode, name);
    let module = context
        .create_module_from_ir(buffer)
        .map_err(|e| e.to_string().trim_end().to_owned())?;
    orc_llvm::partition::decode_block_tables(&module)?;
    let m = module.as_mut_ptr();
    let info = module_info(m);
    let isa = verifier_isa();
    let mut out = Vec::new();
    for f in ll::functions(m) {
        if ll::is_declaration(f) != 0
            || ll::linkage(f) == ll::LLVMLinkage::LLVMAvailableExternallyLinkage
        {
            continue;
        }
        let fname = ll::name(f);
        let result = translate_one(f, &fname, names, &info, isa.as_deref());
        out.push(Translated {
            name: fname,
            result,
        });
    }
    drop(module);
    Ok(out)
}

/// What the translation of any of `m`'s functions needs of the module.
fn module_info(m: ll::LLVMModuleRef) -> func::ModuleInfo {
    ll::ensure_data_layout(m);
    let mut info = func::ModuleInfo {
        td: ll::module_data_layout(m),
        escaping: HashSet::new(),
        tables: block_address_tables(m),
        kinds: func::AttrKinds::new(),
    };
    info.escaping = escaping_block_addresses(m, &info.tables);
    info
}

/// Translates function `f` (named `fname`) and verifies the result.
fn translate_one(
    f: ll::LLVMValueRef,
    fname: &str,
    names: &mut dyn ClifNames,
    info: &func::ModuleInfo,
    isa: Option<&dyn cranelift_codegen::isa::TargetIsa>,
) -> Result<TranslatedFunction, Untranslatable> {
    func::translate(f, names, info)
        .and_then(|t| {
            if let Some(isa) = isa {
                cranelift_codegen::verify_function(&t.func, isa)
                    .map_err(|e| format!("CLIF verifier: {e}"))?;
            }
            Ok(TranslatedFunction {
                func: t.func,
                data: t.data,
                osr_safe: t.osr_safe,
            })
        })
        .map_err(|reason| Untranslatable {
            function: fname.to_owned(),
            reason,
        })
}

/// The frontend configuration of translated functions (x86-64 SysV).
fn frontend_config() -> TargetFrontendConfig {
    TargetFrontendConfig {
        default_call_conv: CallConv::SystemV,
        pointer_width: target_lexicon::PointerWidth::U64,
        page_size_align_log2: 12,
    }
}

/// The x86-64 ISA the verifier checks against, with the flags of tier 0.
fn verifier_isa() -> Option<cranelift_codegen::isa::OwnedTargetIsa> {
    use cranelift_codegen::settings::{self, Configurable};
    let mut flags = settings::builder();
    flags.set("preserve_frame_pointers", "true").ok()?;
    let builder = cranelift_codegen::isa::lookup_by_name("x86_64").ok()?;
    builder.finish(settings::Flags::new(flags)).ok()
}

/// Constant globals of blockaddress tables private to one function: a
/// local global (promoted by the partition plan) whose initializer holds
/// `blockaddress` constants of one function, and that only that
/// function's instructions use. Maps each to its function.
fn block_address_tables(m: ll::LLVMModuleRef) -> HashMap<ll::LLVMValueRef, ll::LLVMValueRef> {
    let mut out = HashMap::new();
    let mut g = ll::first_global(m);
    while !g.is_null() {
        let next = ll::next_global(g);
        let init = ll::initializer(g);
        if ll::is_global_constant(g) != 0
            && ll::is_declaration(g) == 0
            && !init.is_null()
            && ll::name(g).starts_with("__orc_local.")
        {
            if let Some(f) = sole_blockaddress_function(init, is_encoded_table(g)) {
                if used_only_in(g, f, 0) {
                    out.insert(g, f);
                }
            }
        }
        g = next;
    }
    out
}

/// The functions whose block addresses are used outside their own code
/// and their own tables (another function's code, any other global).
fn escaping_block_addresses(
    m: ll::LLVMModuleRef,
    tables: &HashMap<ll::LLVMValueRef, ll::LLVMValueRef>,
) -> HashSet<ll::LLVMValueRef> {
    let mut out = HashSet::new();
    let mut found = Vec::new();
    let mut g = ll::first_global(m);
    while !g.is_null() {
        let init = ll::initializer(g);
        if !init.is_null() {
            let mut blocks = Vec::new();
            table_blocks(init, is_encoded_table(g), &mut blocks, 0);
            for &(f, _) in &blocks {
                if tables.get(&g) != Some(&f) {
                    out.insert(f);
                }
            }
        }
        g = ll::next_global(g);
    }
    for f in ll::functions(m) {
        let mut bb = ll::first_block(f);
        while !bb.is_null() {
            for i in ll::instructions(bb) {
                found.clear();
                for k in 0..ll::num_operands(i).max(0) as u32 {
                    func::collect_blockaddresses(ll::operand(i, k), &mut found, 0);
                }
                for &ba in &found {
                    let owner = ll::blockaddress_function(ba);
                    if owner != f {
                        out.insert(owner);
                    }
                }
            }
            bb = ll::next_block(bb);
        }
    }
    out
}

/// Whether every use of `v` is an instruction of `f`, directly or through
/// constant expressions.
fn used_only_in(v: ll::LLVMValueRef, f: ll::LLVMValueRef, depth: u32) -> bool {
    depth < 8
        && ll::users(v).into_iter().all(|u| {
            if !ll::is_a_instruction(u).is_null() {
                ll::block_parent(ll::instruction_parent(u)) == f
            } else {
                ll::value_kind(u) == ll::LLVMValueKind::LLVMConstantExprValueKind
                    && used_only_in(u, f, depth + 1)
            }
        })
}

/// The function of every `blockaddress` in constant `c`, when they all
/// name one and there is at least one.
fn sole_blockaddress_function(c: ll::LLVMValueRef, marked: bool) -> Option<ll::LLVMValueRef> {
    let mut found = Vec::new();
    table_blocks(c, marked, &mut found, 0);
    let first = found.first()?.0;
    found.iter().all(|&(f, _)| f == first).then_some(first)
}

/// The metadata kind by which the partition plan marks a table of block
/// addresses it encoded (`orc_llvm::partition`, `blocks.rs`).
const ENCODED_TABLE: &str = "orc.blocks";

/// Whether global `g` is a block table the partition plan encoded.
pub(crate) fn is_encoded_table(g: ll::LLVMValueRef) -> bool {
    ll::has_metadata(g, ENCODED_TABLE)
}

/// Block K of `@f` as the plan encodes it in a marked table:
/// `getelementptr (i8, ptr @f, i64 K)`.
pub(crate) fn encoded_block(
    c: ll::LLVMValueRef,
) -> Option<(ll::LLVMValueRef, ll::LLVMBasicBlockRef)> {
    if ll::value_kind(c) != ll::LLVMValueKind::LLVMConstantExprValueKind
        || ll::const_opcode(c) != ll::LLVMOpcode::LLVMGetElementPtr
        || ll::num_operands(c) != 2
    {
        return None;
    }
    let src = ll::gep_source_type(c);
    if ll::type_kind(src) != ll::LLVMTypeKind::LLVMIntegerTypeKind || ll::int_width(src) != 8 {
        return None;
    }
    let (base, index) = (ll::operand(c, 0), ll::operand(c, 1));
    if ll::is_a_function(base).is_null()
        || ll::is_a_constant_int(index).is_null()
        || ll::int_width(ll::type_of(index)) > 64
    {
        return None;
    }
    let mut bb = ll::first_block(base);
    for _ in 0..ll::const_zext(index) {
        if bb.is_null() {
            return None;
        }
        bb = ll::next_block(bb);
    }
    (!bb.is_null()).then_some((base, bb))
}

/// The blocks (function, block) that constant `c` holds the address of:
/// `blockaddress` constants, and in an encoded table (`marked`), encoded
/// blocks.
pub(crate) fn table_blocks(
    c: ll::LLVMValueRef,
    marked: bool,
    out: &mut Vec<(ll::LLVMValueRef, ll::LLVMBasicBlockRef)>,
    depth: u32,
) {
    if c.is_null() || depth > 8 {
        return;
    }
    match ll::value_kind(c) {
        ll::LLVMValueKind::LLVMBlockAddressValueKind => {
            out.push((ll::blockaddress_function(c), ll::blockaddress_block(c)))
        }
        ll::LLVMValueKind::LLVMConstantExprValueKind if marked => {
            if let Some(block) = encoded_block(c) {
                out.push(block);
            }
        }
        ll::LLVMValueKind::LLVMConstantArrayValueKind
        | ll::LLVMValueKind::LLVMConstantStructValueKind
        | ll::LLVMValueKind::LLVMConstantVectorValueKind => {
            for k in 0..ll::num_operands(c).max(0) as u32 {
                table_blocks(ll::operand(c, k), marked, out, depth + 1);
            }
        }
        _ => {}
    }
}

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
//! `ptr` is `i64`); a vector of at most 128 bits is one CLIF vector value;
//! an aggregate (struct, array) is the list of its scalar leaves, flattened
//! in order.

use cranelift_codegen::ir;

mod intrinsics;

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
    let _ = (name, bitcode, names);
    Err("the LLVM IR to CLIF translation is not written yet".into())
}

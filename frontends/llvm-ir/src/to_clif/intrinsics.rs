//! LLVM intrinsics as CLIF (see the module docs of `to_clif`).
//!
//! The function translator calls [`translate`] for every call to an
//! `llvm.*` function except those that concern the frame or the
//! function's own state (`llvm.va_*`, `llvm.stacksave`/`stackrestore`,
//! `llvm.threadlocal.address`, `llvm.eh.*`), which it handles itself.
#![allow(dead_code)] // until the function translator calls it

use cranelift_codegen::ir;
use cranelift_frontend::FunctionBuilder;

/// What the translator knows of one intrinsic call.
pub(super) struct IntrinsicCall<'a> {
    /// The full name, e.g. `llvm.smax.i32`, `llvm.memcpy.p0.p0.i64`.
    pub name: &'a str,
    /// The arguments, one CLIF value each (an `i1` is an `i8` holding 0 or
    /// 1; a vector of at most 128 bits one vector value).
    pub args: &'a [ir::Value],
    /// The CLIF type of each result leaf (empty for `void`; two for
    /// `{ iN, i1 }` of the `*.with.overflow` family).
    pub results: &'a [ir::Type],
}

/// What an intrinsic may need from the translator.
pub(super) trait IntrinsicHost {
    /// A reference to the function `symbol` (a libc or libm function such
    /// as `memcpy` or `sin`) with signature `sig`, for `call`.
    fn libcall(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        symbol: &str,
        sig: ir::Signature,
    ) -> ir::FuncRef;
}

/// Translates an intrinsic call at the builder's position. Returns its
/// result leaves (matching `call.results`), or `Err` naming what is not
/// covered.
pub(super) fn translate(
    b: &mut FunctionBuilder<'_>,
    host: &mut dyn IntrinsicHost,
    call: &IntrinsicCall<'_>,
) -> Result<Vec<ir::Value>, String> {
    let _ = (b, host);
    Err(format!("intrinsic {}", call.name))
}

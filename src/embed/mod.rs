//! Embedding orc in a language VM: the [`Jit`] for any
//! frontend, typed handles, host functions, unloadable modules, typed
//! errors, and traps as errors.
//!
//! # The path
//!
//! 1. Build a JIT: [`Jit::builder()`](crate::Jit::builder) picks the tier
//!    policy (`Tier::Zero`, `One`, `Adaptive`), laziness and threads.
//! 2. Register host functions (the VM's runtime helpers) in one call each,
//!    from a Rust `extern "C" fn`: [`Jit::define_host_function`]; the
//!    signature comes from the Rust type.
//! 3. Define your functions as Cranelift IR through the tiered layer
//!    ([`Jit::tiered`](crate::Jit::tiered)): [`TieredLayer::declare`] a
//!    name, build its CLIF (calls to other tiered functions through
//!    [`TieredLayer::func_name`], host functions through
//!    [`TieredLayer::import`]), and [`TieredLayer::define`] it (again to
//!    redefine). Both tiers come from that one lowering. Code to unload
//!    goes into a [`Module`] instead; objects and LLVM IR can be added
//!    too (`Module::add_object`, [`crate::llvm_ir`]).
//! 4. Call through typed handles: [`Jit::function`] checks `A -> R`
//!    against the CLIF signature and gives a [`Func`] that is
//!    `Send + Sync + 'static`, holds the function's stub (so redefinition
//!    and tier-up reach it) and pins the reclaimer around each call.
//! 5. Errors are [`Error`]s: an LLVM fatal error, a compile error (which
//!    compiler, which function, the compiler's own error value), a link
//!    error, a missing symbol, a signature mismatch and a trap are
//!    separate variants.
//!
//! # Traps
//!
//! A division by zero, an integer overflow, a bad float-to-int conversion,
//! a `trap`, a SIGSEGV/SIGBUS or a stack overflow in JIT'd code (tier 0 or
//! tier 1) ends the call with [`Error::Trap`], naming the trap and the
//! function; the process stays usable (see [`orc_core::trap`] for how).
//! Faults in host functions are not caught. A host function must not
//! panic (the panic cannot unwind through JIT'd frames and aborts). A
//! trap abandons the frames between the handle's call and the fault
//! without running destructors: a host function that called back into
//! JIT'd code through a handle is fine (the inner handle catches the
//! trap), one that called a raw function pointer is skipped over.
//!
//! A trap outside any handle's call (JIT'd code called through a raw
//! pointer) goes to [`orc_core::trap::set_uncaught_trap_handler`]'s
//! handler if one is set (the `orc` tool's flushes stdout, reports the
//! trap and exits with status 70), else it kills the process as before.
//!
//! # Laziness and compile errors
//!
//! With a lazy JIT (the default), a function is compiled at its first
//! call. A handle's first call compiles its function before entering it,
//! so that compile error is returned ([`Error::Compile`]). A compile
//! error of a function first called from JIT'd code cannot be returned
//! to that caller and goes to the JIT's lazy-failure handler (by default:
//! print it and exit with status 70, see
//! `JitBuilder::lazy_failure_handler`). Build the JIT with `.lazy(false)`
//! to get every compile error from [`TieredLayer::define`] instead.
//!
//! ```
//! use orc::cranelift::codegen::ir::{types, AbiParam, Function, InstBuilder, Signature, UserFuncName};
//! use orc::cranelift::codegen::isa::CallConv;
//! use orc::cranelift::frontend::{FunctionBuilder, FunctionBuilderContext};
//! use orc::{Error, Jit, TrapKind};
//!
//! extern "C" fn scale(x: i64) -> i64 { x * 10 }
//!
//! # fn main() -> Result<(), Error> {
//! let jit = Jit::builder().build()?;
//! jit.define_host_function("scale", scale as extern "C" fn(i64) -> i64)?;
//! let tiered = jit.tiered();
//!
//! // div(a, b) = scale(a) / b
//! let id = tiered.declare("div")?;
//! let mut sig = Signature::new(CallConv::SystemV);
//! sig.params.extend([AbiParam::new(types::I64), AbiParam::new(types::I64)]);
//! sig.returns.push(AbiParam::new(types::I64));
//! let mut func = Function::with_name_signature(UserFuncName::default(), sig);
//! let mut ctx = FunctionBuilderContext::new();
//! let mut b = FunctionBuilder::new(&mut func, &mut ctx);
//! let mut scale_sig = Signature::new(CallConv::SystemV);
//! scale_sig.params.push(AbiParam::new(types::I64));
//! scale_sig.returns.push(AbiParam::new(types::I64));
//! let scale_sig = b.import_signature(scale_sig);
//! let name = b.func.declare_imported_user_function(tiered.import("scale"));
//! let scale_ref = b.import_function(orc::cranelift::codegen::ir::ExtFuncData {
//!     name: orc::cranelift::codegen::ir::ExternalName::User(name),
//!     signature: scale_sig,
//!     colocated: false,
//!     patchable: false,
//! });
//! let block = b.create_block();
//! b.append_block_params_for_function_params(block);
//! b.switch_to_block(block);
//! let (x, y) = (b.block_params(block)[0], b.block_params(block)[1]);
//! let call = b.ins().call(scale_ref, &[x]);
//! let scaled = b.inst_results(call)[0];
//! let q = b.ins().sdiv(scaled, y);
//! b.ins().return_(&[q]);
//! b.seal_all_blocks();
//! b.finalize(jit.frontend_config());
//! tiered.define(vec![(id, func)])?;
//!
//! let div = jit.function::<(i64, i64), i64>("div")?;
//! assert_eq!(div.call((7, 2))?, 35);
//! let trap = div.call((7, 0)).unwrap_err();
//! assert_eq!(trap.trap().map(|t| t.kind), Some(TrapKind::IntegerDivisionByZero));
//! assert_eq!(trap.trap().and_then(|t| t.function_name()), Some("div"));
//! assert_eq!(div.call((1, 1))?, 10); // still usable
//! # Ok(()) }
//! ```

mod error;
mod func;
mod types;

pub use error::{Compiler, Error, SignatureMismatch};
pub(crate) use func::Shared;
pub use func::{Func, Module};
pub use orc_core::{Trap, TrapKind};
pub use types::{same_abi, signature_of, AbiType, HostFunction, Params, Results};

/// Stops the JIT'd code that called this host function: the typed
/// handle's call that entered it returns [`Error::Trap`] with
/// [`TrapKind::Raised`]`{ code }` and `message` (a VM's runtime error
/// raised in a helper, with JIT'd frames on the stack). Returns, doing
/// nothing, only when no handle call is active on this thread.
///
/// # Safety
///
/// The calling host function's frame and the JIT'd frames above the
/// handle's call are abandoned, not unwound: call it with nothing live
/// in the host function that needs dropping or releasing (drop guards
/// and owned values first), see [`orc_core::raise_trap`].
pub unsafe fn raise(code: u64, message: &str) {
    let trap = Trap {
        kind: TrapKind::Raised { code },
        function: None,
        pc: 0,
        message: Some(message.into()),
    };
    // SAFETY: forwarded contract.
    drop(unsafe { orc_core::raise_trap(trap) });
}

#[cfg(doc)]
use crate::{Jit, TieredLayer};

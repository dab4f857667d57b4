//! Support code of the root tests: the random CLIF generator and the
//! differential harness that runs its functions under the interpreter,
//! Cranelift and the CLIF -> LLVM translation.

#![allow(dead_code, unreachable_pub)]

pub mod clifgen;
pub mod differential;

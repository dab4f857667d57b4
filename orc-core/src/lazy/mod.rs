//! Laziness (ORC's "Laziness" section): indirect stubs give functions
//! stable addresses before any code exists; call-through trampolines
//! materialize a body on first call and repoint the stub; lazy re-exports
//! package the two as a materialization unit. The same stubs are what
//! tiering repoints later.
//!
//! Architecture-specific bytes live in `x86_64.rs` behind the `LazyArch`
//! trait in `arch.rs`, so a port adds one file.

mod arch;
mod call_through;
mod reexports;
mod stubs;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub(crate) use call_through::reenter_from_executor;
pub use call_through::{LazyCallThroughManager, TrampolineHandler, LAZY_COMPILE_FAILURE_EXIT_CODE};
pub use reexports::{LazyReexportsManager, StubObserver};
pub use stubs::{IndirectStubsManager, StubId};

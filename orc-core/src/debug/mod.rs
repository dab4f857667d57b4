//! Debugger and profiler support, as link plugins (see
//! [`crate::link::LinkPlugin`]):
//!
//! - [`GdbJitPlugin`] registers every linked object with the GDB JIT
//!   interface (`__jit_debug_register_code`, `__jit_debug_descriptor`): an
//!   in-memory copy of the object whose section headers carry the final
//!   addresses (LLVM's `DebugObjectManagerPlugin`), so gdb names JIT'd
//!   frames, unwinds through them and shows source lines of objects with
//!   DWARF. [`register_symbols`] registers code that is not an object
//!   (stubs) under a synthesized ELF naming each piece.
//! - [`PerfPlugin`] writes `/tmp/perf-PID.map` and the jitdump file
//!   `jit-PID.dump` that `perf inject --jit` reads (LLVM's
//!   `PerfSupportPlugin`).
//!
//! Both cost nothing unless installed on the layer.

mod elf_writer;
mod gdb;
mod lines;
mod perf;

pub use gdb::{register_symbols, registered_objects, GdbJitPlugin, GdbRegistration};
pub use lines::{line_table, LineRow};
pub use perf::{flush as flush_perf_files, jitdump_path, perf_map_add, perf_map_path, PerfPlugin};

//! The language-agnostic core of orc: LLVM ORC's session model (symbols,
//! JIT dylibs, lookups, materialization units, resource trackers) and the
//! JIT linker that loads relocatable objects into the process.
//!
//! This crate knows no IR: code generators plug in as materialization units
//! and layers that produce objects for the linker.
//!
//! # Example
//!
//! Define a symbol at a known address in one dylib and look it up from
//! another that links against it:
//!
//! ```
//! use orc_core::{absolute_symbols, ExecutionSession, ExecutorAddr, ExecutorSymbolDef, SymbolFlags, SymbolMap};
//!
//! # fn main() -> Result<(), orc_core::Error> {
//! let es = ExecutionSession::new();
//! let lib = es.create_jit_dylib("lib")?;
//! let main = es.create_jit_dylib("main")?;
//! main.add_to_link_order(&lib)?;
//!
//! let mut symbols = SymbolMap::new();
//! let def = ExecutorSymbolDef::new(ExecutorAddr(0x1000), SymbolFlags::EXPORTED);
//! symbols.insert(es.intern("answer"), def);
//! lib.define(absolute_symbols(symbols), None)?;
//!
//! assert_eq!(main.lookup_symbol("answer")?.addr, ExecutorAddr(0x1000));
//! es.end_session()?;
//! # Ok(())
//! # }
//! ```

mod absolute;
mod batch;
pub mod cache;
pub mod debug;
mod dispatch;
mod dylib;
mod error;
mod generators;
mod layer_unit;
pub mod lazy;
pub mod link;
mod lookup;
pub mod memory;
mod reclaim;
mod reexports;
pub mod remote;
mod responsibility;
mod session;
mod state;
mod symbol;
mod tiering;
mod tracker;
pub mod trap;
mod trip_code;
mod unit;

pub use absolute::absolute_symbols;
#[cfg(target_os = "linux")]
pub use dispatch::{cpu_sets_off_this_cpu, keep_thread_off_cpu};
pub use dispatch::{
    dispatch_for_cpu, Dispatcher, InPlaceDispatcher, LazyPoolDispatcher, Task, ThreadPoolDispatcher,
};
pub use dylib::{make_search_order, DefinitionGenerator, JitDylib, JitDylibSearchOrder};
pub use error::{Error, QualifiedSymbol, Result};
pub use generators::{AllowPredicate, DynamicLibrarySearchGenerator};
pub use layer_unit::{CompileLayer, LayerUnit};
pub use lookup::{
    JitDylibLookupFlags, LookupKind, SymbolLookupFlags, SymbolLookupSet, SymbolState,
};
pub use reclaim::{PinGuard, Reclaimer};
pub use reexports::{reexports, symbol_aliases, SymbolAliasMap, SymbolAliasMapEntry};
pub use responsibility::MaterializationResponsibility;
pub use session::{ErrorReporter, ExecutionSession};
pub use symbol::{
    ExecutorAddr, ExecutorSymbolDef, SymbolFlags, SymbolFlagsMap, SymbolMap, SymbolName,
    SymbolStringPool,
};
pub use tiering::{
    body_symbol, osr_entry_symbol, BatchPromoteFn, Body, CodeTier, Definition, FuncId,
    FunctionNames, FunctionStats, FunctionTierStats, OsrSlot, PromoteFn, Promotion,
    ThresholdPolicy, Tier1Compiler, Tier1Request, TierEvent, TierManager, TierPolicy, TierState,
    TierTrace, TieredFunctions, TieredFunctionsConfig, TripCounter,
};
pub use tracker::{ResourceKey, ResourceManager, ResourceTracker};
pub use trap::{catch_traps, raise_trap, Trap, TrapKind};
pub use trip_code::EntryThunk;
pub use unit::MaterializationUnit;

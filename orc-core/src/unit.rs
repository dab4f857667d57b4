//! Materialization units: "I can define these symbols".
//!
//! A unit is added to a dylib with [`crate::JitDylib::define`]. Nothing
//! happens until some lookup asks for one of its symbols; then the session
//! hands the unit a [`MaterializationResponsibility`] for all of its
//! symbols (on the dispatcher, never under the session lock) and the unit
//! must resolve and emit them or fail.

use crate::dylib::JitDylib;
use crate::responsibility::MaterializationResponsibility;
use crate::symbol::{SymbolFlagsMap, SymbolName};

/// Something that can define a set of symbols on demand.
pub trait MaterializationUnit: Send + 'static {
    /// A short name for diagnostics (which object, which function...).
    fn name(&self) -> &str;

    /// The symbols this unit can define, with their flags. Called once,
    /// when the unit is defined.
    fn symbols(&self) -> SymbolFlagsMap;

    /// Defines the symbols: must end with `notify_resolved` +
    /// `notify_emitted`, `fail`, or by handing the work on (`delegate`,
    /// `replace`). Dropping the responsibility unfinished fails its symbols.
    fn materialize(self: Box<Self>, responsibility: MaterializationResponsibility);

    /// A weak definition of `name` in this unit lost to another definition
    /// in `dylib`: the unit must not define it. Called without the session
    /// lock held, never concurrently with `materialize`.
    fn discard(&mut self, dylib: &JitDylib, name: &SymbolName);
}

//! The materialization unit of a compile layer: a module that, when one of
//! its symbols is first looked up, is handed to its layer to be compiled and
//! linked under the same responsibility (ORC's `BasicIRLayerMaterializationUnit`).
//! Tier 0 and tier 1 both use it; only their module types differ.

use std::sync::Arc;

use crate::batch::Batch;
use crate::dylib::JitDylib;
use crate::responsibility::MaterializationResponsibility;
use crate::symbol::{SymbolFlags, SymbolFlagsMap, SymbolName};
use crate::unit::MaterializationUnit;

/// A layer that compiles modules of one kind and links the result under a
/// responsibility.
pub trait CompileLayer: Send + Sync + 'static {
    /// What the layer compiles.
    type Module: Send + 'static;

    /// Compiles `module` and links it under `r` (or fails `r`).
    fn emit(&self, r: MaterializationResponsibility, module: Self::Module);
}

/// A module waiting in a dylib for its layer. See the module docs.
pub struct LayerUnit<L: CompileLayer> {
    layer: Arc<L>,
    name: String,
    module: L::Module,
    /// Usually one symbol (a lazily compiled function), kept inline.
    symbols: Batch<(SymbolName, SymbolFlags)>,
}

impl<L: CompileLayer> LayerUnit<L> {
    /// A unit named `name` that defines `symbols` by having `layer` emit
    /// `module`.
    pub fn new(layer: Arc<L>, name: String, module: L::Module, symbols: SymbolFlagsMap) -> Self {
        LayerUnit {
            layer,
            name,
            module,
            symbols: symbols.into_iter().collect(),
        }
    }
}

impl<L: CompileLayer> MaterializationUnit for LayerUnit<L> {
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> SymbolFlagsMap {
        self.symbols.iter().cloned().collect()
    }

    fn materialize(self: Box<Self>, r: MaterializationResponsibility) {
        let LayerUnit { layer, module, .. } = *self;
        layer.emit(r, module)
    }

    fn discard(&mut self, _dylib: &JitDylib, name: &SymbolName) {
        // The module still defines the symbol, but the session chose another
        // definition: the object's copy loses to the winner at link time.
        self.symbols.retain(|(n, _)| n != name);
    }
}

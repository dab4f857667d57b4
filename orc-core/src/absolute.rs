//! Absolute symbols: definitions whose addresses are already known (host
//! functions, data in the process, made-up addresses in tests).

use crate::dylib::JitDylib;
use crate::responsibility::MaterializationResponsibility;
use crate::symbol::{SymbolFlagsMap, SymbolMap, SymbolName};
use crate::unit::MaterializationUnit;

/// A unit that defines `symbols` at the given addresses.
pub fn absolute_symbols(symbols: SymbolMap) -> Box<dyn MaterializationUnit> {
    Box::new(AbsoluteSymbolsUnit { symbols })
}

struct AbsoluteSymbolsUnit {
    symbols: SymbolMap,
}

impl MaterializationUnit for AbsoluteSymbolsUnit {
    fn name(&self) -> &str {
        "<absolute symbols>"
    }

    fn symbols(&self) -> SymbolFlagsMap {
        self.symbols
            .iter()
            .map(|(n, d)| (n.clone(), d.flags))
            .collect()
    }

    fn materialize(self: Box<Self>, r: MaterializationResponsibility) {
        // Weak symbols that lost were discarded; resolve what is still ours.
        let owned = r.symbols();
        let resolved: SymbolMap = self
            .symbols
            .into_iter()
            .filter(|(n, _)| owned.contains_key(n))
            .collect();
        if let Err(e) = r.notify_resolved(&resolved) {
            r.fail(e);
            return;
        }
        if let Err(e) = r.notify_emitted() {
            r.session().report_error(&e);
        }
    }

    fn discard(&mut self, _dylib: &JitDylib, name: &SymbolName) {
        self.symbols.remove(name);
    }
}

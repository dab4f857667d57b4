//! Aliases and re-exports: names that stand for other names, in the same
//! dylib (`symbol_aliases`) or another one (`reexports`). An alias has
//! exactly its target's address and becomes Ready when its target does.
//!
//! Materializing a re-export unit looks up only the targets of the aliases
//! someone asked for; the others are handed back as a new unit, as ORC does.

use std::collections::HashMap;

use crate::dylib::JitDylib;
use crate::error::Error;
use crate::lookup::{JitDylibLookupFlags, SymbolLookupSet, SymbolState};
use crate::responsibility::MaterializationResponsibility;
use crate::symbol::{ExecutorSymbolDef, SymbolFlags, SymbolFlagsMap, SymbolMap, SymbolName};
use crate::unit::MaterializationUnit;

/// The target of an alias and the flags the alias is defined with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolAliasMapEntry {
    /// The name the alias stands for.
    pub aliasee: SymbolName,
    /// The alias's own flags.
    pub flags: SymbolFlags,
}

/// Aliases by name.
pub type SymbolAliasMap = HashMap<SymbolName, SymbolAliasMapEntry>;

/// A unit defining aliases to symbols of the dylib it is added to (hidden
/// symbols included).
pub fn symbol_aliases(aliases: SymbolAliasMap) -> Box<dyn MaterializationUnit> {
    Box::new(ReexportsUnit {
        source: None,
        source_flags: JitDylibLookupFlags::MatchAllSymbols,
        aliases,
    })
}

/// A unit re-exporting (exported) symbols of `source` under the given names.
pub fn reexports(source: &JitDylib, aliases: SymbolAliasMap) -> Box<dyn MaterializationUnit> {
    Box::new(ReexportsUnit {
        source: Some(source.clone()),
        source_flags: JitDylibLookupFlags::MatchExportedSymbolsOnly,
        aliases,
    })
}

struct ReexportsUnit {
    source: Option<JitDylib>,
    source_flags: JitDylibLookupFlags,
    aliases: SymbolAliasMap,
}

impl MaterializationUnit for ReexportsUnit {
    fn name(&self) -> &str {
        if self.source.is_some() {
            "<reexports>"
        } else {
            "<symbol aliases>"
        }
    }

    fn symbols(&self) -> SymbolFlagsMap {
        self.aliases
            .iter()
            .map(|(n, a)| (n.clone(), a.flags))
            .collect()
    }

    fn materialize(mut self: Box<Self>, r: MaterializationResponsibility) {
        let owned = r.symbols();
        self.aliases.retain(|n, _| owned.contains_key(n));
        let requested = r.requested_symbols();
        let (wanted, rest): (SymbolAliasMap, SymbolAliasMap) = self
            .aliases
            .drain()
            .partition(|(n, _)| requested.is_empty() || requested.contains(n));
        if !rest.is_empty() {
            let unit = ReexportsUnit {
                source: self.source.clone(),
                source_flags: self.source_flags,
                aliases: rest,
            };
            if let Err(e) = r.replace(Box::new(unit)) {
                r.fail(e);
                return;
            }
        }
        let source = self
            .source
            .clone()
            .unwrap_or_else(|| r.target_dylib().clone());
        if source == *r.target_dylib() {
            if let Some((alias, _)) = wanted.iter().find(|(_, a)| wanted.contains_key(&a.aliasee)) {
                let msg = format!("alias '{alias}' refers to another alias of the same unit");
                r.fail(Error::other(msg));
                return;
            }
        }
        let targets: SymbolLookupSet = wanted.values().map(|a| a.aliasee.clone()).collect();
        let es = r.session();
        let order = vec![(source.clone(), self.source_flags)];
        es.lookup_async(&order, targets, SymbolState::Resolved, move |res| {
            let found = match res {
                Ok(found) => found,
                Err(e) => return r.fail(e),
            };
            let mut resolved = SymbolMap::new();
            for (alias, entry) in &wanted {
                if let Some(def) = found.get(&entry.aliasee) {
                    resolved.insert(alias.clone(), ExecutorSymbolDef::new(def.addr, entry.flags));
                }
                if let Err(e) =
                    r.add_dependencies(alias, &[(source.clone(), entry.aliasee.clone())])
                {
                    return r.fail(e);
                }
            }
            if let Err(e) = r.notify_resolved(&resolved) {
                return r.fail(e);
            }
            if let Err(e) = r.notify_emitted() {
                r.session().report_error(&e);
            }
        });
    }

    fn discard(&mut self, _dylib: &JitDylib, name: &SymbolName) {
        self.aliases.remove(name);
    }
}

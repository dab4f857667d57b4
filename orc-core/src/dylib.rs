//! JIT dylibs: symbol tables with a link order and definition generators.
//!
//! A [`JitDylib`] is a cheap handle (the state lives in the session). Its
//! search order is itself (matching hidden symbols too) followed by its
//! link order (exported symbols only). Names nobody defines are offered to
//! its definition generators, which may define them.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Result;
use crate::lookup::{
    JitDylibLookupFlags, LookupKind, SymbolLookupFlags, SymbolLookupSet, SymbolState,
};
use crate::session::{take_one, ExecutionSession, Search, SessionInner};
use crate::state::{DylibId, Effects};
use crate::symbol::{ExecutorAddr, ExecutorSymbolDef, SymbolFlags, SymbolMap, SymbolName};
use crate::tracker::ResourceTracker;
use crate::unit::MaterializationUnit;

/// A search order: dylibs and how to match in each.
pub type JitDylibSearchOrder = Vec<(JitDylib, JitDylibLookupFlags)>;

/// Makes a search order matching exported symbols only in every dylib.
pub fn make_search_order(dylibs: &[&JitDylib]) -> JitDylibSearchOrder {
    dylibs
        .iter()
        .map(|jd| ((*jd).clone(), JitDylibLookupFlags::MatchExportedSymbolsOnly))
        .collect()
}

/// Defines symbols on demand for names nobody in a dylib defines (process
/// symbols, a shared library, a static archive...).
pub trait DefinitionGenerator: Send + Sync {
    /// Called without the session lock, one call at a time per dylib, with
    /// the names of `names` not yet defined in `dylib`. Defines what it can
    /// (by `dylib.define`); leaving a name undefined is fine.
    fn try_to_generate(
        &self,
        kind: LookupKind,
        dylib: &JitDylib,
        flags: JitDylibLookupFlags,
        names: &SymbolLookupSet,
    ) -> Result<()>;
}

/// A handle on a JIT dylib. Clone is cheap; equality is identity.
#[derive(Clone)]
pub struct JitDylib {
    pub(crate) session: Arc<SessionInner>,
    pub(crate) id: DylibId,
    name: Arc<str>,
}

impl JitDylib {
    pub(crate) fn from_parts(session: Arc<SessionInner>, id: DylibId, name: Arc<str>) -> Self {
        JitDylib { session, id, name }
    }

    /// The dylib's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The session the dylib belongs to.
    pub fn session(&self) -> ExecutionSession {
        ExecutionSession::from_inner(self.session.clone())
    }

    /// Adds `unit` under `tracker` (the default tracker when `None`).
    ///
    /// Linker rules: a strong definition of a name that already has a strong
    /// one, or a weak one that was already looked up, is
    /// `DuplicateDefinition` naming it and nothing is defined. A strong
    /// definition overrides a weak one not yet looked up (that unit is told
    /// to `discard` it). A weak definition of a name already defined loses:
    /// `unit` is told to `discard` it.
    pub fn define(
        &self,
        unit: Box<dyn MaterializationUnit>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<()> {
        let symbols = unit.symbols();
        let cell = Arc::new(Mutex::new(Some(unit)));
        let mut fx = Effects::default();
        let res = {
            let mut st = self.session.state.lock();
            let key = match tracker {
                Some(t) => Ok(t.key),
                None => st.default_tracker(self.id),
            };
            key.and_then(|key| st.define(self.id, cell, symbols, key, &mut fx))
        };
        self.session.run_effects(fx);
        res
    }

    /// Makes room for `n_units` more units defining `n_symbols` more
    /// symbols here, before defining many: a big program's definitions then
    /// never rehash tables that no longer fit in cache.
    pub fn reserve(&self, n_units: usize, n_symbols: usize) {
        self.session
            .state
            .lock()
            .reserve(self.id, n_units, n_symbols);
    }

    /// The address of `name` here once it is resolved, without looking it
    /// up (so without materializing anything).
    pub(crate) fn resolved_address(&self, name: &SymbolName) -> Option<ExecutorAddr> {
        self.session.state.lock().resolved_address(self.id, name)
    }

    /// The tracker definitions go to when none is given.
    pub fn default_resource_tracker(&self) -> Result<ResourceTracker> {
        let key = self.session.state.lock().default_tracker(self.id)?;
        Ok(ResourceTracker {
            dylib: self.clone(),
            key,
        })
    }

    /// A new, empty tracker for this dylib.
    pub fn create_resource_tracker(&self) -> Result<ResourceTracker> {
        let key = self.session.state.lock().create_tracker(self.id)?;
        Ok(ResourceTracker {
            dylib: self.clone(),
            key,
        })
    }

    /// Sets the dylibs searched after this one (replacing the previous
    /// order). The dylib itself is always searched first.
    pub fn set_link_order(&self, order: &[&JitDylib]) -> Result<()> {
        let ids: Arc<[_]> = order
            .iter()
            .filter(|jd| **jd != self)
            .map(|jd| jd.id)
            .collect();
        self.session.state.lock().dylib_mut(self.id)?.link_order = ids;
        Ok(())
    }

    /// Appends `other` to the link order (once).
    pub fn add_to_link_order(&self, other: &JitDylib) -> Result<()> {
        if other == self {
            return Ok(());
        }
        let mut st = self.session.state.lock();
        let d = st.dylib_mut(self.id)?;
        if !d.link_order.contains(&other.id) {
            d.link_order = d.link_order.iter().copied().chain([other.id]).collect();
        }
        Ok(())
    }

    /// The dylibs searched after this one.
    pub fn link_order(&self) -> Result<Vec<JitDylib>> {
        let st = self.session.state.lock();
        let d = st.dylib(self.id)?;
        Ok(d.link_order
            .iter()
            .copied()
            .filter_map(|id| {
                let name = st.dylib(id).ok()?.name.clone();
                Some(JitDylib::from_parts(self.session.clone(), id, name))
            })
            .collect())
    }

    /// This dylib (all symbols) then its link order (exported only): the
    /// order a linker resolving an object of this dylib searches.
    pub fn search_order(&self) -> Result<JitDylibSearchOrder> {
        let mut order = vec![(self.clone(), JitDylibLookupFlags::MatchAllSymbols)];
        for jd in self.link_order()? {
            order.push((jd, JitDylibLookupFlags::MatchExportedSymbolsOnly));
        }
        Ok(order)
    }

    /// Adds a generator, asked after the ones added before it.
    pub fn add_generator(&self, generator: Arc<dyn DefinitionGenerator>) -> Result<()> {
        self.session
            .state
            .lock()
            .dylib_mut(self.id)?
            .generators
            .push(generator);
        Ok(())
    }

    /// Looks `names` up in this dylib's search order and waits until they
    /// are Ready.
    pub fn lookup(&self, names: &[&str]) -> Result<SymbolMap> {
        let set: SymbolLookupSet = names.iter().map(|n| self.session.intern(n)).collect();
        self.session
            .lookup_blocking(Search::Dylib(self), set.entries(), SymbolState::Ready)
    }

    /// Looks one name up in this dylib's search order (Ready).
    pub fn lookup_symbol(&self, name: &str) -> Result<ExecutorSymbolDef> {
        let names = [(self.session.intern(name), SymbolLookupFlags::RequiredSymbol)];
        let map = self
            .session
            .lookup_blocking(Search::Dylib(self), &names, SymbolState::Ready)?;
        take_one(map, names)
    }

    /// The names defined here with their flags, states and whether they are
    /// in the error state, sorted by name (for diagnostics and tests).
    pub fn symbol_table(&self) -> Result<Vec<(SymbolName, SymbolFlags, SymbolState, bool)>> {
        self.session.state.lock().symbol_table(self.id)
    }
}

impl PartialEq for JitDylib {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && Arc::ptr_eq(&self.session, &other.session)
    }
}

impl Eq for JitDylib {}

impl std::hash::Hash for JitDylib {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

impl fmt::Debug for JitDylib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JitDylib({:?})", &*self.name)
    }
}

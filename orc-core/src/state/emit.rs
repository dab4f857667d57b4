//! The responsibility side of the state machine: resolution, emission,
//! dependency tracking and failure.
//!
//! Readiness with cycles: an emitted symbol keeps `waiting_on`, the set of
//! not-yet-emitted symbols it depends on *transitively*, and each of those
//! keeps it in `dependants`. When a symbol is emitted it is replaced, in the
//! sets of everything waiting on it, by what it itself waits on. A symbol is
//! ready when its set is empty, so a cycle of emitted symbols becomes ready
//! as soon as its last member is emitted. When a not-yet-emitted symbol
//! fails, everything in its `dependants` fails with it; because the sets are
//! transitive, no further walk is needed.

use std::sync::Arc;

use super::{
    DylibId, Effects, HashSet, MrId, MrState, SessionState, SymKey, SymbolEntry, UnitCell,
    UnitEntry, UnitId,
};
use crate::error::{Error, Result};
use crate::lookup::SymbolState;
use crate::symbol::{SymbolFlagsMap, SymbolMap, SymbolName};

impl SessionState {
    fn live_mr(&self, mr: MrId) -> Result<&MrState> {
        self.check_open()?;
        let state = self
            .mrs
            .get(&mr)
            .ok_or_else(|| Error::ResponsibilityMisuse {
                message: "the responsibility has already emitted, failed or been replaced".into(),
            })?;
        if !self.trackers.contains_key(&state.tracker) {
            return Err(Error::ResourceTrackerDefunct {
                dylib: self.dylib_name(state.dylib),
            });
        }
        Ok(state)
    }

    /// The symbols a responsibility still owns.
    pub(crate) fn mr_symbols(&self, mr: MrId) -> SymbolFlagsMap {
        self.mrs
            .get(&mr)
            .map(|m| m.symbols.clone())
            .unwrap_or_default()
    }

    /// The owned symbols that some lookup is waiting for.
    pub(crate) fn mr_requested(&self, mr: MrId) -> Vec<SymbolName> {
        let Some(m) = self.mrs.get(&mr) else {
            return Vec::new();
        };
        let mut out: Vec<SymbolName> = m
            .symbols
            .keys()
            .filter(|n| {
                self.entry(&(m.dylib, (*n).clone()))
                    .is_some_and(|e| !e.pending.is_empty())
            })
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// Whether the responsibility's tracker was removed.
    pub(crate) fn mr_defunct(&self, mr: MrId) -> bool {
        self.mrs
            .get(&mr)
            .is_none_or(|m| !self.trackers.contains_key(&m.tracker) || !self.open)
    }

    /// Sets addresses; satisfies lookups that only need `Resolved`.
    pub(crate) fn notify_resolved(
        &mut self,
        mr: MrId,
        resolved: &SymbolMap,
        fx: &mut Effects,
    ) -> Result<()> {
        let m = self.live_mr(mr)?;
        let dylib = m.dylib;
        let mut missing: Vec<SymbolName> = m
            .symbols
            .iter()
            .filter(|(n, f)| !f.has_side_effects_only() && !resolved.contains_key(*n))
            .map(|(n, _)| n.clone())
            .collect();
        let mut unexpected: Vec<SymbolName> = resolved
            .keys()
            .filter(|n| !m.symbols.contains_key(*n))
            .cloned()
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort();
            return Err(Error::UnexpectedSymbolDefinitions {
                unit: m.unit_name.to_string(),
                symbols: unexpected,
            });
        }
        if !missing.is_empty() {
            missing.sort();
            return Err(Error::MissingSymbolDefinitions {
                unit: m.unit_name.to_string(),
                symbols: missing,
            });
        }
        let names: Vec<SymbolName> = m.symbols.keys().cloned().collect();
        for name in &names {
            let state = self.entry(&(dylib, name.clone())).map(|e| e.state);
            if state != Some(SymbolState::Materializing) {
                return Err(Error::ResponsibilityMisuse {
                    message: format!("symbol '{name}' resolved twice"),
                });
            }
        }
        for name in names {
            let key = (dylib, name);
            let mut satisfied = Vec::new();
            if let Some(entry) = self.entry_mut(&key) {
                if let Some(def) = resolved.get(&key.1) {
                    entry.addr = def.addr;
                }
                entry.state = SymbolState::Resolved;
                let def = entry.def();
                let pending = std::mem::take(&mut entry.pending);
                let mut still = Vec::new();
                for qid in pending {
                    match self.queries.get(&qid) {
                        Some(q) if q.required <= SymbolState::Resolved => satisfied.push(qid),
                        Some(_) => still.push(qid),
                        None => {}
                    }
                }
                if let Some(entry) = self.entry_mut(&key) {
                    entry.pending = still;
                }
                for qid in satisfied {
                    self.satisfy(qid, &key.1, def, fx);
                }
            }
        }
        Ok(())
    }

    /// Records that `of` (or every owned symbol when `None`) depends on
    /// `deps`.
    pub(crate) fn add_dependencies(
        &mut self,
        mr: MrId,
        of: Option<&SymbolName>,
        deps: &[SymKey],
    ) -> Result<()> {
        self.live_mr(mr)?;
        let Some(m) = self.mrs.get_mut(&mr) else {
            return Ok(());
        };
        match of {
            Some(name) if m.symbols.contains_key(name) => {
                m.deps
                    .entry(name.clone())
                    .or_default()
                    .extend(deps.iter().cloned());
            }
            Some(name) => {
                return Err(Error::UnexpectedSymbolDefinitions {
                    unit: m.unit_name.to_string(),
                    symbols: vec![name.clone()],
                })
            }
            None => m.deps_all.extend(deps.iter().cloned()),
        }
        Ok(())
    }

    /// Marks every owned symbol emitted and works out which become ready.
    /// Fails them (and returns the error) when a dependency has failed.
    pub(crate) fn notify_emitted(&mut self, mr: MrId, fx: &mut Effects) -> Result<()> {
        let m = self.live_mr(mr)?;
        let dylib = m.dylib;
        for name in m.symbols.keys() {
            let state = self.entry(&(dylib, name.clone())).map(|e| e.state);
            if state != Some(SymbolState::Resolved) {
                return Err(Error::ResponsibilityMisuse {
                    message: format!("symbol '{name}' emitted before it was resolved"),
                });
            }
        }
        let Some(m) = self.mrs.remove(&mr) else {
            return Ok(());
        };
        let keys: Vec<SymKey> = m.symbols.keys().map(|n| (dylib, n.clone())).collect();
        // A dependency that already failed fails the whole responsibility.
        let mut failed_deps: Vec<SymKey> = m
            .deps
            .values()
            .flatten()
            .chain(&m.deps_all)
            .filter(|d| self.entry(d).is_some_and(|e| e.error.is_some()))
            .cloned()
            .collect();
        if !failed_deps.is_empty() {
            failed_deps.sort();
            failed_deps.dedup();
            let cause = self
                .entry(&failed_deps[0])
                .and_then(|e| e.error.clone())
                .unwrap_or(Error::SessionEnded);
            let err = Error::FailedToMaterialize {
                symbols: self.qualify(&failed_deps),
                cause: Arc::new(cause),
            };
            self.fail_symbols(&keys, err.clone(), fx);
            return Err(err);
        }
        let MrState {
            symbols,
            mut deps,
            deps_all,
            ..
        } = m;
        let own = |k: &SymKey| k.0 == dylib && symbols.contains_key(&k.1);
        // The shared dependencies are looked at once for the whole group.
        // A shared dependency on a symbol of this same group needs no
        // waiting of its own unless some symbol has extra dependencies, in
        // which case the shared ones are handled symbol by symbol.
        let per_symbol = !deps.is_empty() && deps_all.iter().any(own);
        let group_waits = if per_symbol {
            HashSet::default()
        } else {
            // Every member shares these dependencies, so what a member
            // waits on through them is what the group waits on: members
            // reached through other emitted symbols are not waited for.
            let mut waits = self.waits_for(None, deps_all.iter().filter(|k| !own(k)));
            waits.retain(|k| !own(k));
            waits
        };
        // Emit one symbol at a time: a symbol of this responsibility that is
        // not yet processed must still look unemitted to the others, or a
        // dependency through it would be missed.
        for key in keys {
            if let Some(entry) = self.entry_mut(&key) {
                entry.state = SymbolState::Emitted;
                entry.mr = None;
            }
            let own_deps = deps.remove(&key.1).unwrap_or_default();
            let mut waits = group_waits.clone();
            if per_symbol {
                waits.extend(self.waits_for(Some(&key), own_deps.iter().chain(&deps_all)));
            } else if !own_deps.is_empty() {
                waits.extend(self.waits_for(Some(&key), own_deps.iter()));
            }
            self.finish_emit(key, waits, fx);
        }
        Ok(())
    }

    /// The not-yet-emitted symbols that `deps` (transitively) wait on,
    /// leaving out `sym` itself.
    fn waits_for<'a>(
        &self,
        sym: Option<&SymKey>,
        deps: impl Iterator<Item = &'a SymKey>,
    ) -> HashSet<SymKey> {
        let mut waits: HashSet<SymKey> = HashSet::default();
        for dep in deps {
            if Some(dep) == sym {
                continue;
            }
            match self.entry(dep) {
                None => {}
                Some(e) if e.state == SymbolState::Ready => {}
                Some(e) if e.state == SymbolState::Emitted => {
                    waits.extend(e.waiting_on.iter().cloned())
                }
                Some(_) => {
                    waits.insert(dep.clone());
                }
            }
        }
        if let Some(sym) = sym {
            waits.remove(sym);
        }
        waits
    }

    /// Records what an emitted symbol waits on, hands its own waiters over
    /// to that, and makes ready whatever no longer waits on anything.
    fn finish_emit(&mut self, sym: SymKey, mut waits: HashSet<SymKey>, fx: &mut Effects) {
        waits.remove(&sym);
        let mut ready = Vec::new();
        let dependants = self
            .entry_mut(&sym)
            .map(|e| std::mem::take(&mut e.dependants))
            .unwrap_or_default();
        for dependant in dependants {
            let Some(e) = self.entry_mut(&dependant) else {
                continue;
            };
            e.waiting_on.remove(&sym);
            e.waiting_on
                .extend(waits.iter().filter(|x| **x != dependant).cloned());
            if e.waiting_on.is_empty() {
                ready.push(dependant.clone());
            }
            for x in &waits {
                if *x != dependant {
                    if let Some(xe) = self.entry_mut(x) {
                        xe.dependants.insert(dependant.clone());
                    }
                }
            }
        }
        for x in &waits {
            if let Some(xe) = self.entry_mut(x) {
                xe.dependants.insert(sym.clone());
            }
        }
        let now_ready = waits.is_empty();
        if let Some(e) = self.entry_mut(&sym) {
            e.waiting_on = waits;
        }
        if now_ready {
            ready.push(sym);
        }
        for key in ready {
            self.make_ready(&key, fx);
        }
    }

    fn make_ready(&mut self, key: &SymKey, fx: &mut Effects) {
        let Some(entry) = self.entry_mut(key) else {
            return;
        };
        if entry.state == SymbolState::Ready || entry.error.is_some() {
            return;
        }
        entry.state = SymbolState::Ready;
        entry.waiting_on.clear();
        let def = entry.def();
        let pending = std::mem::take(&mut entry.pending);
        for qid in pending {
            self.satisfy(qid, &key.1, def, fx);
        }
    }

    /// Fails a responsibility: its symbols enter the error state and every
    /// lookup waiting on them, or on symbols depending on them, fails.
    pub(crate) fn fail_mr(&mut self, mr: MrId, cause: Error, fx: &mut Effects) {
        let Some(m) = self.mrs.remove(&mr) else {
            return;
        };
        let keys: Vec<SymKey> = m
            .symbols
            .keys()
            .map(|n| (m.dylib, n.clone()))
            .filter(|k| self.entry(k).is_some_and(|e| e.mr == Some(mr)))
            .collect();
        if keys.is_empty() {
            return;
        }
        let err = Error::FailedToMaterialize {
            symbols: self.qualify(&keys),
            cause: Arc::new(cause),
        };
        fx.reports.push(err.clone());
        self.fail_symbols(&keys, err, fx);
    }

    /// Puts `keys` (and everything waiting on them) in the error state.
    pub(super) fn fail_symbols(&mut self, keys: &[SymKey], err: Error, fx: &mut Effects) {
        let mut second = Vec::new();
        for key in keys {
            second.extend(self.fail_one(key, &err, fx));
        }
        for key in second {
            self.fail_one(&key, &err, fx);
        }
    }

    fn fail_one(&mut self, key: &SymKey, err: &Error, fx: &mut Effects) -> Vec<SymKey> {
        let Some(entry) = self.entry_mut(key) else {
            return Vec::new();
        };
        if entry.error.is_some() {
            return Vec::new();
        }
        entry.error = Some(err.clone());
        entry.mr = None;
        let dependants: Vec<SymKey> = std::mem::take(&mut entry.dependants).into_iter().collect();
        let waiting_on = std::mem::take(&mut entry.waiting_on);
        let pending = std::mem::take(&mut entry.pending);
        for x in waiting_on {
            if let Some(xe) = self.entry_mut(&x) {
                xe.dependants.remove(key);
            }
        }
        for qid in pending {
            self.fail_query(qid, err.clone(), fx);
        }
        dependants
    }

    /// Splits `names` off into a new responsibility.
    pub(crate) fn delegate(&mut self, mr: MrId, names: &[SymbolName]) -> Result<MrId> {
        let m = self.live_mr(mr)?;
        let mut foreign: Vec<SymbolName> = names
            .iter()
            .filter(|n| !m.symbols.contains_key(*n))
            .cloned()
            .collect();
        if !foreign.is_empty() {
            foreign.sort();
            return Err(Error::UnexpectedSymbolDefinitions {
                unit: m.unit_name.to_string(),
                symbols: foreign,
            });
        }
        let new_id = MrId(self.fresh());
        let Some(m) = self.mrs.get_mut(&mr) else {
            return Err(Error::SessionEnded);
        };
        let mut new = MrState {
            dylib: m.dylib,
            tracker: m.tracker,
            unit_name: m.unit_name.clone(),
            symbols: SymbolFlagsMap::new(),
            deps: Default::default(),
            deps_all: m.deps_all.clone(),
        };
        for name in names {
            if let Some(flags) = m.symbols.remove(name) {
                new.symbols.insert(name.clone(), flags);
            }
            if let Some(deps) = m.deps.remove(name) {
                new.deps.insert(name.clone(), deps);
            }
        }
        let dylib = new.dylib;
        for name in names {
            if let Some(e) = self.entry_mut(&(dylib, name.clone())) {
                e.mr = Some(new_id);
            }
        }
        self.mrs.insert(new_id, new);
        Ok(new_id)
    }

    /// Hands `symbols` back as a new unit; materializes it at once if some
    /// lookup is waiting on one of them.
    pub(crate) fn replace(
        &mut self,
        mr: MrId,
        cell: UnitCell,
        symbols: &SymbolFlagsMap,
        fx: &mut Effects,
    ) -> Result<()> {
        let m = self.live_mr(mr)?;
        let dylib = m.dylib;
        let tracker = m.tracker;
        let mut foreign: Vec<SymbolName> = symbols
            .keys()
            .filter(|n| !m.symbols.contains_key(*n))
            .cloned()
            .collect();
        if !foreign.is_empty() {
            foreign.sort();
            return Err(Error::UnexpectedSymbolDefinitions {
                unit: m.unit_name.to_string(),
                symbols: foreign,
            });
        }
        for name in symbols.keys() {
            if self.entry(&(dylib, name.clone())).map(|e| e.state)
                != Some(SymbolState::Materializing)
            {
                return Err(Error::ResponsibilityMisuse {
                    message: format!("cannot replace symbol '{name}' after it was resolved"),
                });
            }
        }
        if symbols.is_empty() {
            fx.dropped_units.push(cell);
            return Ok(());
        }
        let unit_id = UnitId(self.fresh());
        let mut wanted = false;
        if let Some(m) = self.mrs.get_mut(&mr) {
            for name in symbols.keys() {
                m.symbols.remove(name);
                m.deps.remove(name);
            }
            if m.symbols.is_empty() {
                self.mrs.remove(&mr);
            }
        }
        for name in symbols.keys() {
            if let Some(e) = self.entry_mut(&(dylib, name.clone())) {
                e.state = SymbolState::NeverSearched;
                e.mr = None;
                e.unit = Some(unit_id);
                wanted |= !e.pending.is_empty();
            }
        }
        self.units.insert(
            unit_id,
            UnitEntry {
                cell,
                dylib,
                tracker,
                symbols: symbols.keys().cloned().collect(),
            },
        );
        if wanted {
            self.start_materialization(unit_id, fx);
        }
        Ok(())
    }

    /// Adds symbols found during materialization, owned by `mr`.
    pub(crate) fn define_materializing(
        &mut self,
        mr: MrId,
        symbols: &SymbolFlagsMap,
    ) -> Result<()> {
        let m = self.live_mr(mr)?;
        let (dylib, tracker) = (m.dylib, m.tracker);
        let d = self.dylib(dylib)?;
        if let Some(symbol) = symbols.keys().filter(|n| d.symbols.contains_key(*n)).min() {
            return Err(Error::DuplicateDefinition {
                dylib: d.name.clone(),
                symbol: symbol.clone(),
            });
        }
        let d = self.dylib_mut(dylib)?;
        for (name, flags) in symbols {
            let mut entry = SymbolEntry::new(*flags, SymbolState::Materializing, tracker);
            entry.mr = Some(mr);
            d.symbols.insert(name.clone(), entry);
        }
        if let Some(m) = self.mrs.get_mut(&mr) {
            m.symbols
                .extend(symbols.iter().map(|(n, f)| (n.clone(), *f)));
        }
        Ok(())
    }

    /// A responsibility handle was dropped: if it never finished, its
    /// symbols fail so no lookup waits forever.
    pub(crate) fn mr_dropped(&mut self, mr: MrId, fx: &mut Effects) {
        let Some(m) = self.mrs.get(&mr) else {
            return;
        };
        let dylib: DylibId = m.dylib;
        let keys: Vec<SymKey> = m.symbols.keys().map(|n| (dylib, n.clone())).collect();
        if keys.is_empty() {
            self.mrs.remove(&mr);
            return;
        }
        let cause = Error::MaterializationAbandoned {
            symbols: self.qualify(&keys),
        };
        self.fail_mr(mr, cause, fx);
    }
}

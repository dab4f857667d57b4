//! The responsibility side of the state machine: resolution, emission,
//! dependency tracking and failure.
//!
//! Readiness with cycles: symbols emitted together form an emission unit
//! that keeps `waiting_on`, the set of not-yet-emitted symbols they depend
//! on *transitively*, and each of those keeps the unit in `dependants`.
//! When a symbol is emitted it is replaced, in the sets of every unit
//! waiting on it, by what it itself waits on. A unit is ready when its set
//! is empty, so a cycle becomes ready as soon as its last member is
//! emitted. When a not-yet-emitted symbol fails, every unit in its
//! `dependants` fails with it; because the sets are transitive, no further
//! walk is needed. Keeping the sets per unit (per object, for a linker)
//! rather than per symbol keeps big objects that refer to each other
//! linear.

use std::sync::Arc;

use super::{
    satisfy_in, DylibId, Effects, EmitUnit, EmitUnitId, HashMap, HashSet, MrId, MrState,
    SessionState, SymKey, SymbolEntry, UnitCell, UnitEntry, UnitId,
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
            .map(|m| m.symbols.iter().map(|(n, f)| (n.clone(), *f)).collect())
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
                    .is_some_and(|e| e.has_pending())
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
        check_owned(m, resolved.keys())?;
        if !missing.is_empty() {
            missing.sort();
            return Err(Error::MissingSymbolDefinitions {
                unit: m.unit_name.to_string(),
                symbols: missing,
            });
        }
        for name in m.symbols.keys() {
            let state = self.entry_at(dylib, name).map(|e| e.state);
            if state != Some(SymbolState::Materializing) {
                return Err(Error::ResponsibilityMisuse {
                    message: format!("symbol '{name}' resolved twice"),
                });
            }
        }
        // The responsibility's names, the dylib's entries and the queries
        // are borrowed apart, so nothing is copied.
        let SessionState {
            mrs,
            dylibs,
            queries,
            ..
        } = self;
        let (Some(m), Some(d)) = (mrs.get(&mr), dylibs.get_mut(&dylib)) else {
            return Ok(());
        };
        for name in m.symbols.keys() {
            let Some(entry) = d.symbols.get_mut(name) else {
                continue;
            };
            if let Some(def) = resolved.get(name) {
                entry.addr = def.addr;
            }
            entry.state = SymbolState::Resolved;
            let def = entry.def();
            if let Some(extra) = entry.extra.as_mut() {
                extra
                    .pending
                    .retain(|qid| match queries.get(qid).map(|q| q.required) {
                        Some(required) if required <= SymbolState::Resolved => {
                            satisfy_in(queries, *qid, name, def, fx);
                            false
                        }
                        Some(_) => true,
                        None => false,
                    });
            }
            entry.compact();
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
            let state = self.entry_at(dylib, name).map(|e| e.state);
            if state != Some(SymbolState::Resolved) {
                return Err(Error::ResponsibilityMisuse {
                    message: format!("symbol '{name}' emitted before it was resolved"),
                });
            }
        }
        let Some(m) = self.mrs.remove(&mr) else {
            return Ok(());
        };
        // A dependency that already failed fails the whole responsibility.
        let mut failed_deps: Vec<SymKey> = m
            .deps
            .values()
            .flatten()
            .chain(&m.deps_all)
            .filter(|d| self.entry(d).is_some_and(|e| e.is_failed()))
            .cloned()
            .collect();
        if !failed_deps.is_empty() {
            failed_deps.sort();
            failed_deps.dedup();
            let cause = self
                .entry(&failed_deps[0])
                .and_then(|e| e.error().cloned())
                .unwrap_or(Error::SessionEnded);
            let err = Error::FailedToMaterialize {
                symbols: self.qualify(&failed_deps),
                cause: Arc::new(cause),
            };
            let keys: Vec<SymKey> = m.symbols.keys().map(|n| (dylib, n.clone())).collect();
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
        // Symbols with dependencies of their own are emitted one by one,
        // after the rest, which form one group sharing the common
        // dependencies. A shared dependency on a member needs no waiting of
        // its own (members are emitted together), unless some member has
        // extra dependencies: then every symbol is emitted on its own.
        let one_by_one = !deps.is_empty() && deps_all.iter().any(own);
        let singles: Vec<SymbolName> = if deps.is_empty() {
            Vec::new()
        } else {
            symbols
                .keys()
                .filter(|n| one_by_one || deps.contains_key(*n))
                .cloned()
                .collect()
        };
        {
            let group = symbols
                .keys()
                .filter(|n| !one_by_one && !deps.contains_key(*n));
            if group.clone().next().is_some() {
                for name in group.clone() {
                    self.mark_emitted(dylib, name);
                }
                let waits = self.waits_for(deps_all.iter().filter(|k| !own(k)));
                self.emit_group(dylib, group, waits, fx);
            }
        }
        for name in &singles {
            self.mark_emitted(dylib, name);
            let own_deps = deps.remove(name).unwrap_or_default();
            let shared = deps_all.iter().filter(|k| one_by_one || !own(k));
            let waits = self.waits_for(own_deps.iter().chain(shared));
            self.emit_group(dylib, std::iter::once(name), waits, fx);
        }
        Ok(())
    }

    fn mark_emitted(&mut self, dylib: DylibId, name: &SymbolName) {
        if let Some(entry) = self.entry_at_mut(dylib, name) {
            entry.state = SymbolState::Emitted;
            entry.mr = None;
        }
    }

    /// The not-yet-emitted symbols that `deps` (transitively) wait on.
    fn waits_for<'a>(&self, deps: impl Iterator<Item = &'a SymKey>) -> HashSet<SymKey> {
        let mut waits: HashSet<SymKey> = HashSet::default();
        for dep in deps {
            match self.entry(dep) {
                None => {}
                Some(e) if e.state == SymbolState::Ready => {}
                Some(e) if e.state == SymbolState::Emitted => {
                    if let Some(unit) = e.emit_unit().and_then(|u| self.emit_units.get(&u)) {
                        waits.extend(unit.waiting_on.iter().cloned());
                    }
                }
                Some(_) => {
                    waits.insert(dep.clone());
                }
            }
        }
        waits
    }

    /// Finishes emitting `members` of `dylib` (already marked Emitted) that
    /// wait on `waits`: units that waited on a member now wait on `waits`
    /// instead, and whatever no longer waits on anything becomes ready.
    fn emit_group<'a, I>(
        &mut self,
        dylib: DylibId,
        members: I,
        mut waits: HashSet<SymKey>,
        fx: &mut Effects,
    ) where
        I: Iterator<Item = &'a SymbolName> + Clone,
    {
        if !waits.is_empty() {
            for m in members.clone() {
                waits.remove(&(dylib, m.clone()));
            }
        }
        let mut ready_units = Vec::new();
        for m in members.clone() {
            let dependants = match self.entry_at_mut(dylib, m) {
                Some(e) => e.take_dependants(),
                None => continue,
            };
            if dependants.is_empty() {
                continue;
            }
            let key = (dylib, m.clone());
            for d in dependants {
                let Some(unit) = self.emit_units.get_mut(&d) else {
                    continue;
                };
                unit.waiting_on.remove(&key);
                unit.waiting_on.extend(waits.iter().cloned());
                if unit.waiting_on.is_empty() {
                    ready_units.push(d);
                }
                for w in &waits {
                    if let Some(we) = self.entry_mut(w) {
                        we.extra_mut().dependants.insert(d);
                    }
                }
            }
        }
        if waits.is_empty() {
            for m in members {
                self.make_ready(dylib, m, fx);
            }
        } else {
            let id: EmitUnitId = self.fresh();
            for w in &waits {
                if let Some(we) = self.entry_mut(w) {
                    we.extra_mut().dependants.insert(id);
                }
            }
            let members: Vec<SymKey> = members.map(|m| (dylib, m.clone())).collect();
            for m in &members {
                if let Some(e) = self.entry_mut(m) {
                    e.extra_mut().emit_unit = Some(id);
                }
            }
            self.emit_units.insert(
                id,
                EmitUnit {
                    members,
                    waiting_on: waits,
                },
            );
        }
        for d in ready_units {
            if let Some(unit) = self.emit_units.remove(&d) {
                for (dylib, name) in &unit.members {
                    self.make_ready(*dylib, name, fx);
                }
            }
        }
    }

    fn make_ready(&mut self, dylib: DylibId, name: &SymbolName, fx: &mut Effects) {
        let SessionState {
            dylibs, queries, ..
        } = self;
        let Some(entry) = dylibs.get_mut(&dylib).and_then(|d| d.symbols.get_mut(name)) else {
            return;
        };
        if entry.state == SymbolState::Ready || entry.is_failed() {
            return;
        }
        entry.state = SymbolState::Ready;
        let def = entry.def();
        if let Some(extra) = entry.extra.as_mut() {
            extra.emit_unit = None;
            for qid in std::mem::take(&mut extra.pending) {
                satisfy_in(queries, qid, name, def, fx);
            }
        }
        entry.compact();
    }

    /// A removed member leaves its unit; an empty unit is dropped.
    pub(super) fn leave_emit_unit(&mut self, unit: EmitUnitId, key: &SymKey) {
        let Some(u) = self.emit_units.get_mut(&unit) else {
            return;
        };
        u.members.retain(|m| m != key);
        if u.members.is_empty() {
            if let Some(u) = self.emit_units.remove(&unit) {
                self.detach_unit(unit, &u);
            }
        }
    }

    fn detach_unit(&mut self, id: EmitUnitId, unit: &EmitUnit) {
        for w in &unit.waiting_on {
            if let Some(we) = self.entry_mut(w) {
                if let Some(extra) = we.extra.as_mut() {
                    extra.dependants.remove(&id);
                }
                we.compact();
            }
        }
    }

    /// Fails every member of a unit (it waited on something that failed or
    /// was removed).
    pub(super) fn fail_emit_unit(&mut self, id: EmitUnitId, err: &Error, fx: &mut Effects) {
        let Some(unit) = self.emit_units.remove(&id) else {
            return;
        };
        self.detach_unit(id, &unit);
        for m in &unit.members {
            self.fail_one(m, err, fx);
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
        let mut units = Vec::new();
        for key in keys {
            units.extend(self.fail_one(key, &err, fx));
        }
        for unit in units {
            self.fail_emit_unit(unit, &err, fx);
        }
    }

    /// Puts one symbol in the error state and fails its waiting queries;
    /// returns the units that waited on it (for the caller to fail).
    fn fail_one(&mut self, key: &SymKey, err: &Error, fx: &mut Effects) -> Vec<EmitUnitId> {
        let Some(entry) = self.entry_mut(key) else {
            return Vec::new();
        };
        if entry.is_failed() {
            return Vec::new();
        }
        entry.mr = None;
        let extra = entry.extra_mut();
        extra.error = Some(err.clone());
        let dependants: Vec<EmitUnitId> =
            std::mem::take(&mut extra.dependants).into_iter().collect();
        let unit = extra.emit_unit.take();
        let pending = std::mem::take(&mut extra.pending);
        if let Some(unit) = unit {
            self.leave_emit_unit(unit, key);
        }
        for qid in pending {
            self.fail_query(qid, err.clone(), fx);
        }
        dependants
    }

    /// Splits `names` off into a new responsibility.
    pub(crate) fn delegate(&mut self, mr: MrId, names: &[SymbolName]) -> Result<MrId> {
        let m = self.live_mr(mr)?;
        check_owned(m, names.iter())?;
        let new_id = MrId(self.fresh_nonzero());
        let Some(m) = self.mrs.get_mut(&mr) else {
            return Err(Error::SessionEnded);
        };
        let mut new = MrState {
            dylib: m.dylib,
            tracker: m.tracker,
            unit_name: m.unit_name.clone(),
            symbols: HashMap::default(),
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
        check_owned(m, symbols.keys())?;
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
        let unit_id = UnitId(self.fresh_nonzero());
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
                wanted |= e.has_pending();
            }
        }
        if let Some(d) = self.dylibs.get_mut(&dylib) {
            let names = symbols.keys().cloned().collect();
            d.units
                .insert(unit_id, UnitEntry::new(cell, tracker, names));
        }
        if wanted {
            self.start_materialization(dylib, unit_id, fx);
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

/// `UnexpectedSymbolDefinitions` (sorted) for any of `names` that `m` does
/// not own.
fn check_owned<'a>(m: &MrState, names: impl Iterator<Item = &'a SymbolName>) -> Result<()> {
    let mut foreign: Vec<SymbolName> = names
        .filter(|n| !m.symbols.contains_key(*n))
        .cloned()
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    Err(Error::UnexpectedSymbolDefinitions {
        unit: m.unit_name.to_string(),
        symbols: foreign,
    })
}

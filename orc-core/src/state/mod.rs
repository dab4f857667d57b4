//! The session's state and every transition of it.
//!
//! Everything here runs under the session lock and never calls out: work
//! that must happen outside the lock (query callbacks, materializations,
//! discards, error reports) is collected in [`Effects`] and performed by the
//! session after unlocking. That is how the invariant "no materializer,
//! generator or user callback runs under the session lock" is kept.
//!
//! This module owns definitions, query registration and removal; emission,
//! dependencies and failure live in `emit.rs`.

mod emit;

use std::num::NonZeroU64;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::batch::Batch;
use crate::error::{Error, QualifiedSymbol, Result};
use crate::lookup::{JitDylibLookupFlags, SymbolLookupFlags, SymbolState};
use crate::symbol::{
    ExecutorAddr, ExecutorSymbolDef, FastHash, SymbolFlags, SymbolFlagsMap, SymbolMap, SymbolName,
    SymbolStringPool,
};
use crate::tracker::ResourceKey;
use crate::unit::MaterializationUnit;

/// The state's maps and sets, keyed by pointers and small integers.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, FastHash>;
/// See [`HashMap`].
pub(crate) type HashSet<K> = std::collections::HashSet<K, FastHash>;

/// Identifies a dylib within its session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub(crate) struct DylibId(pub(crate) u64);

/// A symbol in a particular dylib.
pub(crate) type SymKey = (DylibId, SymbolName);

/// Identifies an active materialization responsibility. Ids are never
/// zero, so an `Option` of one is as small as the id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct MrId(pub(crate) NonZeroU64);

/// Identifies a unit waiting to be materialized (never zero, like
/// [`MrId`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct UnitId(NonZeroU64);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct QueryId(u64);

/// Identifies an emission unit: symbols emitted together that are not
/// ready yet and share what they wait on.
pub(crate) type EmitUnitId = u64;

/// Symbols emitted together (one responsibility's, or one symbol with
/// dependencies of its own) that wait on the same not-yet-emitted symbols.
/// Tracking readiness per unit rather than per symbol keeps big objects
/// linear: a unit joins each waited symbol's dependants once.
pub(crate) struct EmitUnit {
    members: Vec<SymKey>,
    /// Not-yet-emitted symbols the members transitively depend on.
    waiting_on: HashSet<SymKey>,
}

/// A unit waiting to be materialized. The mutex is the unit's own, never
/// held together with the session lock, so `discard` and `materialize` run
/// unlocked and never at the same time.
pub(crate) type UnitCell = Arc<Mutex<Option<Box<dyn MaterializationUnit>>>>;

/// What a query calls when it completes: a caller's callback, or the slot
/// a blocking lookup waits on (which needs no boxed closure).
pub(crate) enum QueryCallback {
    Callback(Box<dyn FnOnce(Result<SymbolMap>) + Send>),
    Blocking(crate::session::ResultSender),
}

impl QueryCallback {
    /// Delivers the outcome. Called after the session lock is released.
    pub(crate) fn complete(self, res: Result<SymbolMap>) {
        match self {
            QueryCallback::Callback(f) => f(res),
            QueryCallback::Blocking(sender) => sender.send(res),
        }
    }
}

/// One symbol of one dylib: 48 bytes, so a dylib of many lazy functions
/// keeps a compact table. What only some symbols need some of the time
/// (waiting lookups, dependency bookkeeping, the error) lives in
/// [`SymbolExtra`], allocated on demand and freed once empty.
struct SymbolEntry {
    addr: ExecutorAddr,
    tracker: ResourceKey,
    /// The unit that will define it (state `NeverSearched` only).
    unit: Option<UnitId>,
    /// The responsibility defining it (`Materializing` or `Resolved`).
    mr: Option<MrId>,
    extra: Option<Box<SymbolExtra>>,
    flags: SymbolFlags,
    state: SymbolState,
}

/// The rarely needed part of a [`SymbolEntry`].
#[derive(Default)]
struct SymbolExtra {
    /// Set once the symbol failed; every later lookup gets this error.
    error: Option<Error>,
    /// Queries waiting for this symbol to reach their required state
    /// (usually one, kept inline).
    pending: Batch<QueryId>,
    /// Not yet emitted: the emission units whose readiness waits on it.
    dependants: HashSet<EmitUnitId>,
    /// Emitted but not ready: the emission unit it was emitted in, which
    /// holds what it still waits on.
    emit_unit: Option<EmitUnitId>,
}

impl SymbolExtra {
    fn is_empty(&self) -> bool {
        self.error.is_none()
            && self.pending.is_empty()
            && self.dependants.is_empty()
            && self.emit_unit.is_none()
    }
}

impl SymbolEntry {
    fn new(flags: SymbolFlags, state: SymbolState, tracker: ResourceKey) -> Self {
        SymbolEntry {
            addr: ExecutorAddr::NULL,
            tracker,
            unit: None,
            mr: None,
            extra: None,
            flags,
            state,
        }
    }

    fn visible(&self, flags: JitDylibLookupFlags) -> bool {
        flags == JitDylibLookupFlags::MatchAllSymbols || self.flags.is_exported()
    }

    fn def(&self) -> Option<ExecutorSymbolDef> {
        (!self.flags.has_side_effects_only()).then(|| ExecutorSymbolDef::new(self.addr, self.flags))
    }

    /// The error, once the symbol failed.
    fn error(&self) -> Option<&Error> {
        self.extra.as_ref()?.error.as_ref()
    }

    fn is_failed(&self) -> bool {
        self.error().is_some()
    }

    fn has_pending(&self) -> bool {
        self.extra.as_ref().is_some_and(|x| !x.pending.is_empty())
    }

    fn emit_unit(&self) -> Option<EmitUnitId> {
        self.extra.as_ref()?.emit_unit
    }

    /// The extra part, allocated if needed.
    fn extra_mut(&mut self) -> &mut SymbolExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    fn take_dependants(&mut self) -> HashSet<EmitUnitId> {
        self.extra
            .as_mut()
            .map(|x| std::mem::take(&mut x.dependants))
            .unwrap_or_default()
    }

    /// Frees the extra part when nothing is left in it.
    fn compact(&mut self) {
        if self.extra.as_ref().is_some_and(|x| x.is_empty()) {
            self.extra = None;
        }
    }
}

/// A dylib's symbol table and search configuration.
pub(crate) struct DylibState {
    pub(crate) name: Arc<str>,
    symbols: HashMap<SymbolName, SymbolEntry>,
    /// The dylibs searched after this one, in order. Shared, so a lookup
    /// can walk it while it changes the state.
    pub(crate) link_order: Arc<[DylibId]>,
    pub(crate) generators: Vec<Arc<dyn crate::DefinitionGenerator>>,
    /// Serializes generator runs for this dylib (taken without the session
    /// lock).
    pub(crate) generator_lock: Arc<Mutex<()>>,
    default_tracker: Option<ResourceKey>,
    /// Units defined here and not materialized yet.
    units: HashMap<UnitId, UnitEntry>,
}

/// A unit waiting in its dylib to be materialized.
struct UnitEntry {
    cell: UnitCell,
    tracker: ResourceKey,
    /// The names the unit was defined with (usually one, kept inline). A
    /// name whose entry no longer names this unit (it was overridden or
    /// removed) is skipped.
    symbols: Batch<SymbolName>,
    /// How many of `symbols` the unit still defines; at zero it is dropped.
    live: usize,
}

impl UnitEntry {
    fn new(cell: UnitCell, tracker: ResourceKey, symbols: Batch<SymbolName>) -> Self {
        let live = symbols.len();
        UnitEntry {
            cell,
            tracker,
            symbols,
            live,
        }
    }
}

struct QueryState {
    required: SymbolState,
    outstanding: usize,
    results: SymbolMap,
    callback: QueryCallback,
    waiting_on: Batch<SymKey>,
}

/// The bookkeeping of one active responsibility.
struct MrState {
    dylib: DylibId,
    tracker: ResourceKey,
    unit_name: SymbolName,
    symbols: HashMap<SymbolName, SymbolFlags>,
    /// Dependencies recorded so far, per owned symbol.
    deps: HashMap<SymbolName, HashSet<SymKey>>,
    /// Dependencies of every owned symbol, kept once rather than copied
    /// onto each (an object's externals apply to all its symbols).
    deps_all: HashSet<SymKey>,
}

struct TrackerState {
    dylib: DylibId,
}

/// A materialization to start once the lock is released.
pub(crate) struct PendingMaterialization {
    pub(crate) cell: UnitCell,
    pub(crate) mr: MrId,
    pub(crate) dylib: DylibId,
    pub(crate) tracker: ResourceKey,
    pub(crate) unit_name: SymbolName,
}

/// Work to do after the session lock is released.
#[derive(Default)]
pub(crate) struct Effects {
    pub(crate) completions: Batch<(QueryCallback, Result<SymbolMap>)>,
    pub(crate) materialize: Batch<PendingMaterialization>,
    pub(crate) discards: Vec<(UnitCell, DylibId, SymbolName)>,
    pub(crate) dropped_units: Vec<UnitCell>,
    pub(crate) reports: Vec<Error>,
    /// Trackers whose resources the resource managers must free.
    pub(crate) removed_trackers: Vec<(DylibId, Arc<str>, ResourceKey)>,
}

impl Effects {
    /// Whether there is nothing to do (most transitions of a lazy function).
    pub(crate) fn is_empty(&self) -> bool {
        self.completions.is_empty()
            && self.materialize.is_empty()
            && self.discards.is_empty()
            && self.dropped_units.is_empty()
            && self.reports.is_empty()
            && self.removed_trackers.is_empty()
    }
}

/// The whole mutable state of a session.
pub(crate) struct SessionState {
    pub(crate) open: bool,
    /// The session's name pool (for the names of materializing units).
    pool: Arc<SymbolStringPool>,
    next_id: u64,
    dylibs: HashMap<DylibId, DylibState>,
    dylib_names: HashMap<Arc<str>, DylibId>,
    queries: HashMap<QueryId, QueryState>,
    mrs: HashMap<MrId, MrState>,
    trackers: HashMap<ResourceKey, TrackerState>,
    emit_units: HashMap<EmitUnitId, EmitUnit>,
}

impl SessionState {
    /// An open session state interning in `pool`.
    pub(crate) fn new(pool: Arc<SymbolStringPool>) -> Self {
        SessionState {
            pool,
            open: true,
            next_id: 1,
            dylibs: HashMap::default(),
            dylib_names: HashMap::default(),
            queries: HashMap::default(),
            mrs: HashMap::default(),
            trackers: HashMap::default(),
            emit_units: HashMap::default(),
        }
    }

    fn fresh(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A fresh id, never zero (`next_id` starts at 1 and only grows).
    fn fresh_nonzero(&mut self) -> NonZeroU64 {
        NonZeroU64::new(self.fresh()).unwrap_or(NonZeroU64::MIN)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(Error::SessionEnded)
        }
    }

    // ----- dylibs and trackers -------------------------------------------

    pub(crate) fn create_dylib(&mut self, name: &str) -> Result<(DylibId, Arc<str>)> {
        self.check_open()?;
        if self.dylib_names.contains_key(name) {
            return Err(Error::DuplicateJitDylib {
                name: name.to_owned(),
            });
        }
        let id = DylibId(self.fresh());
        let name: Arc<str> = Arc::from(name);
        self.dylibs.insert(
            id,
            DylibState {
                name: name.clone(),
                symbols: HashMap::default(),
                link_order: Arc::from([]),
                generators: Vec::new(),
                generator_lock: Arc::new(Mutex::new(())),
                default_tracker: None,
                units: HashMap::default(),
            },
        );
        self.dylib_names.insert(name.clone(), id);
        Ok((id, name))
    }

    pub(crate) fn dylib_by_name(&self, name: &str) -> Option<(DylibId, Arc<str>)> {
        let id = *self.dylib_names.get(name)?;
        Some((id, self.dylibs.get(&id)?.name.clone()))
    }

    pub(crate) fn dylib(&self, id: DylibId) -> Result<&DylibState> {
        self.check_open()?;
        self.dylibs.get(&id).ok_or_else(|| Error::JitDylibRemoved {
            name: format!("#{}", id.0),
        })
    }

    pub(crate) fn dylib_mut(&mut self, id: DylibId) -> Result<&mut DylibState> {
        self.check_open()?;
        self.dylibs
            .get_mut(&id)
            .ok_or_else(|| Error::JitDylibRemoved {
                name: format!("#{}", id.0),
            })
    }

    pub(crate) fn dylib_name(&self, id: DylibId) -> Arc<str> {
        self.dylibs
            .get(&id)
            .map(|d| d.name.clone())
            .unwrap_or_else(|| Arc::from("<removed>"))
    }

    pub(crate) fn all_dylibs(&self) -> Vec<(DylibId, Arc<str>)> {
        let mut all: Vec<_> = self
            .dylibs
            .iter()
            .map(|(id, d)| (*id, d.name.clone()))
            .collect();
        all.sort();
        all
    }

    pub(crate) fn create_tracker(&mut self, dylib: DylibId) -> Result<ResourceKey> {
        self.dylib(dylib)?;
        let key = ResourceKey(self.fresh());
        self.trackers.insert(key, TrackerState { dylib });
        Ok(key)
    }

    pub(crate) fn default_tracker(&mut self, dylib: DylibId) -> Result<ResourceKey> {
        if let Some(key) = self.dylib(dylib)?.default_tracker {
            return Ok(key);
        }
        let key = self.create_tracker(dylib)?;
        self.dylib_mut(dylib)?.default_tracker = Some(key);
        Ok(key)
    }

    pub(crate) fn tracker_live(&self, key: ResourceKey) -> bool {
        self.open && self.trackers.contains_key(&key)
    }

    fn check_tracker(&self, key: ResourceKey, dylib: DylibId) -> Result<()> {
        self.check_open()?;
        match self.trackers.get(&key) {
            Some(t) if t.dylib == dylib => Ok(()),
            Some(t) => Err(Error::TrackerDylibMismatch {
                from: self.dylib_name(t.dylib),
                to: self.dylib_name(dylib),
            }),
            None => Err(Error::ResourceTrackerDefunct {
                dylib: self.dylib_name(dylib),
            }),
        }
    }

    fn qualify(&self, keys: &[SymKey]) -> Vec<QualifiedSymbol> {
        let mut out: Vec<QualifiedSymbol> = keys
            .iter()
            .map(|(jd, name)| QualifiedSymbol {
                dylib: self.dylib_name(*jd),
                name: name.clone(),
            })
            .collect();
        out.sort();
        out
    }

    fn entry(&self, key: &SymKey) -> Option<&SymbolEntry> {
        self.entry_at(key.0, &key.1)
    }

    fn entry_mut(&mut self, key: &SymKey) -> Option<&mut SymbolEntry> {
        self.entry_at_mut(key.0, &key.1)
    }

    /// Like [`Self::entry`], without building a key.
    fn entry_at(&self, dylib: DylibId, name: &SymbolName) -> Option<&SymbolEntry> {
        self.dylibs.get(&dylib)?.symbols.get(name)
    }

    fn entry_at_mut(&mut self, dylib: DylibId, name: &SymbolName) -> Option<&mut SymbolEntry> {
        self.dylibs.get_mut(&dylib)?.symbols.get_mut(name)
    }

    // ----- definitions ----------------------------------------------------

    /// Makes room for `n_units` more units defining `n_symbols` more
    /// symbols in `dylib`.
    pub(crate) fn reserve(&mut self, dylib: DylibId, n_units: usize, n_symbols: usize) {
        if let Some(d) = self.dylibs.get_mut(&dylib) {
            d.units.reserve(n_units);
            d.symbols.reserve(n_symbols);
        }
    }

    /// Defines the symbols of a unit in `dylib`, applying the linker rules:
    /// strong-strong is a duplicate, strong overrides an unsearched weak,
    /// and a weak definition loses to any existing one.
    pub(crate) fn define(
        &mut self,
        dylib: DylibId,
        cell: UnitCell,
        symbols: SymbolFlagsMap,
        tracker: ResourceKey,
        fx: &mut Effects,
    ) -> Result<()> {
        self.check_tracker(tracker, dylib)?;
        let d = self.dylib(dylib)?;
        let mut dups = Vec::new();
        let mut override_existing = Vec::new();
        let mut lose = Vec::new();
        for (name, flags) in &symbols {
            if let Some(existing) = d.symbols.get(name) {
                if flags.is_strong() {
                    if existing.flags.is_strong()
                        || existing.state > SymbolState::NeverSearched
                        || existing.is_failed()
                    {
                        dups.push(name.clone());
                    } else {
                        override_existing.push(name.clone());
                    }
                } else {
                    lose.push(name.clone());
                }
            }
        }
        if let Some(symbol) = dups.into_iter().min() {
            return Err(Error::DuplicateDefinition {
                dylib: d.name.clone(),
                symbol,
            });
        }
        let unit_id = UnitId(self.fresh_nonzero());
        for name in &override_existing {
            let old = self
                .dylibs
                .get_mut(&dylib)
                .and_then(|d| d.symbols.remove(name))
                .and_then(|e| e.unit);
            if let Some(old) = old {
                self.unit_lost_symbol(dylib, old, name, fx);
            }
        }
        for name in &lose {
            fx.discards.push((cell.clone(), dylib, name.clone()));
        }
        let mut kept = Batch::default();
        let d = self.dylib_mut(dylib)?;
        for (name, flags) in symbols {
            // Duplicates were refused and overridden entries removed: a name
            // still present is one this unit's weak definition loses.
            if let std::collections::hash_map::Entry::Vacant(slot) = d.symbols.entry(name) {
                kept.push(slot.key().clone());
                let mut entry = SymbolEntry::new(flags, SymbolState::NeverSearched, tracker);
                entry.unit = Some(unit_id);
                slot.insert(entry);
            }
        }
        if kept.is_empty() {
            fx.dropped_units.push(cell);
        } else {
            d.units.insert(unit_id, UnitEntry::new(cell, tracker, kept));
        }
        Ok(())
    }

    /// A unit no longer defines `name`: tell it to discard the symbol, and
    /// drop the unit when nothing is left.
    fn unit_lost_symbol(
        &mut self,
        dylib: DylibId,
        unit: UnitId,
        name: &SymbolName,
        fx: &mut Effects,
    ) {
        let Some(units) = self.dylibs.get_mut(&dylib).map(|d| &mut d.units) else {
            return;
        };
        let Some(entry) = units.get_mut(&unit) else {
            return;
        };
        entry.live -= 1;
        fx.discards.push((entry.cell.clone(), dylib, name.clone()));
        if entry.live == 0 {
            if let Some(entry) = units.remove(&unit) {
                fx.dropped_units.push(entry.cell);
            }
        }
    }

    /// Whether `name` is defined in `dylib` and visible with `flags`.
    pub(crate) fn defines(
        &self,
        dylib: DylibId,
        name: &SymbolName,
        flags: JitDylibLookupFlags,
    ) -> bool {
        self.dylibs
            .get(&dylib)
            .and_then(|d| d.symbols.get(name))
            .is_some_and(|e| e.visible(flags))
    }

    /// The address of `name` in `dylib` once it is resolved (and has not
    /// failed). Never starts a materialization.
    pub(crate) fn resolved_address(
        &self,
        dylib: DylibId,
        name: &SymbolName,
    ) -> Option<ExecutorAddr> {
        let entry = self.entry_at(dylib, name)?;
        (entry.state >= SymbolState::Resolved && !entry.is_failed()).then_some(entry.addr)
    }

    /// The names defined in `dylib`, with their flags and states (for
    /// diagnostics and tests).
    pub(crate) fn symbol_table(
        &self,
        dylib: DylibId,
    ) -> Result<Vec<(SymbolName, SymbolFlags, SymbolState, bool)>> {
        let d = self.dylib(dylib)?;
        let mut out: Vec<_> = d
            .symbols
            .iter()
            .map(|(n, e)| (n.clone(), e.flags, e.state, e.is_failed()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    // ----- queries ---------------------------------------------------------

    /// The first dylib of `order` that defines `name` visibly.
    fn find<I>(&self, order: I, name: &SymbolName) -> Option<DylibId>
    where
        I: Iterator<Item = (DylibId, JitDylibLookupFlags)>,
    {
        order
            .filter(|(jd, jd_flags)| {
                self.dylibs
                    .get(jd)
                    .and_then(|d| d.symbols.get(name))
                    .is_some_and(|e| e.visible(*jd_flags))
            })
            .map(|(jd, _)| jd)
            .next()
    }

    /// Whether a lookup of `names` in `order` would offer some name to a
    /// definition generator: a dylib with generators comes before any
    /// dylib defining it. When not, the lookup can skip the generator pass.
    pub(crate) fn needs_generators<I>(
        &self,
        order: I,
        names: &[(SymbolName, SymbolLookupFlags)],
    ) -> bool
    where
        I: Iterator<Item = (DylibId, JitDylibLookupFlags)> + Clone,
    {
        names.iter().any(|(name, _)| {
            for (jd, flags) in order.clone() {
                let Some(d) = self.dylibs.get(&jd) else {
                    continue;
                };
                if d.symbols.get(name).is_some_and(|e| e.visible(flags)) {
                    return false;
                }
                if !d.generators.is_empty() {
                    return true;
                }
            }
            false
        })
    }

    /// Registers a lookup of `names` in `order`. Completes it at once when
    /// every symbol already has the required state, fails it at once when a
    /// required name is missing (`SymbolsNotFound` naming every missing
    /// name) or else a symbol is in the error state, and otherwise starts
    /// the materializations it needs.
    pub(crate) fn register_query<I>(
        &mut self,
        order: I,
        names: &[(SymbolName, SymbolLookupFlags)],
        required: SymbolState,
        callback: QueryCallback,
        fx: &mut Effects,
    ) where
        I: Iterator<Item = (DylibId, JitDylibLookupFlags)> + Clone,
    {
        if let Err(e) = self.check_open() {
            fx.completions.push((callback, Err(e)));
            return;
        }
        let required = required.max(SymbolState::Resolved);
        // First pass: every required name is defined, none has failed.
        let mut n_found = 0;
        let mut missing = Vec::new();
        let mut failed = None;
        for (name, lookup_flags) in names {
            match self.find(order.clone(), name) {
                Some(jd) => {
                    n_found += 1;
                    if failed.is_none() {
                        failed = self
                            .entry(&(jd, name.clone()))
                            .and_then(|e| e.error().cloned());
                    }
                }
                None if *lookup_flags == SymbolLookupFlags::RequiredSymbol => {
                    missing.push(name.clone())
                }
                None => {}
            }
        }
        if !missing.is_empty() {
            missing.sort();
            fx.completions
                .push((callback, Err(Error::SymbolsNotFound { symbols: missing })));
            return;
        }
        if let Some(err) = failed {
            fx.completions.push((callback, Err(err)));
            return;
        }
        // Second pass: collect what is there, wait for the rest.
        let qid = QueryId(self.fresh());
        let mut query = QueryState {
            required,
            outstanding: 0,
            results: SymbolMap::with_capacity(n_found),
            callback,
            waiting_on: Batch::default(),
        };
        for (name, _) in names {
            let Some(jd) = self.find(order.clone(), name) else {
                continue;
            };
            let key = (jd, name.clone());
            let Some(entry) = self.entry_mut(&key) else {
                continue;
            };
            if entry.state >= required {
                if let Some(def) = entry.def() {
                    query.results.insert(key.1, def);
                }
                continue;
            }
            entry.extra_mut().pending.push(qid);
            query.outstanding += 1;
            let start = match entry.state {
                SymbolState::NeverSearched => entry.unit,
                _ => None,
            };
            query.waiting_on.push(key);
            // Starting only queues the unit (it runs after unlocking); the
            // rest of its symbols become Materializing, so it starts once.
            if let Some(unit) = start {
                self.start_materialization(jd, unit, fx);
            }
        }
        if query.outstanding == 0 {
            fx.completions.push((query.callback, Ok(query.results)));
            return;
        }
        self.queries.insert(qid, query);
    }

    /// Moves a unit's symbols to `Materializing` under a new responsibility
    /// and queues the unit to run.
    fn start_materialization(&mut self, dylib: DylibId, unit: UnitId, fx: &mut Effects) {
        let Some(u) = self
            .dylibs
            .get_mut(&dylib)
            .and_then(|d| d.units.remove(&unit))
        else {
            return;
        };
        let mr = MrId(self.fresh_nonzero());
        let mut symbols = HashMap::with_capacity_and_hasher(u.live, Default::default());
        if let Some(d) = self.dylibs.get_mut(&dylib) {
            for name in u.symbols {
                let Some(entry) = d.symbols.get_mut(&name) else {
                    continue;
                };
                if entry.unit == Some(unit) {
                    entry.state = SymbolState::Materializing;
                    entry.unit = None;
                    entry.mr = Some(mr);
                    symbols.insert(name, entry.flags);
                }
            }
        }
        // Interned: a compile layer's unit is usually named like a symbol
        // that is already in the pool, so naming costs no allocation.
        let unit_name = match u.cell.try_lock() {
            Some(guard) => self
                .pool
                .intern(guard.as_ref().map_or("<unit>", |m| m.name())),
            None => self.pool.intern("<unit>"),
        };
        self.mrs.insert(
            mr,
            MrState {
                dylib,
                tracker: u.tracker,
                unit_name: unit_name.clone(),
                symbols,
                deps: HashMap::default(),
                deps_all: HashSet::default(),
            },
        );
        fx.materialize.push(PendingMaterialization {
            cell: u.cell,
            mr,
            dylib,
            tracker: u.tracker,
            unit_name,
        });
    }

    /// Fails a query (once) and unhooks it from every symbol it waited on.
    fn fail_query(&mut self, qid: QueryId, err: Error, fx: &mut Effects) {
        let Some(query) = self.queries.remove(&qid) else {
            return;
        };
        for key in query.waiting_on.iter() {
            if let Some(entry) = self.entry_mut(key) {
                if let Some(extra) = entry.extra.as_mut() {
                    extra.pending.retain(|q| *q != qid);
                }
                entry.compact();
            }
        }
        fx.completions.push((query.callback, Err(err)));
    }

    // ----- removal -----------------------------------------------------------

    /// Removes every symbol and unit of a tracker. Queries waiting on them
    /// fail; the tracker becomes defunct, so its responsibilities can no
    /// longer resolve or emit.
    pub(crate) fn remove_tracker(&mut self, key: ResourceKey, fx: &mut Effects) -> Result<()> {
        self.check_open()?;
        let Some(tracker) = self.trackers.remove(&key) else {
            return Ok(());
        };
        let dylib = tracker.dylib;
        let Some(d) = self.dylibs.get_mut(&dylib) else {
            return Ok(());
        };
        if d.default_tracker == Some(key) {
            d.default_tracker = None;
        }
        let name = d.name.clone();
        let keys: Vec<SymKey> = d
            .symbols
            .iter()
            .filter(|(_, e)| e.tracker == key)
            .map(|(n, _)| (dylib, n.clone()))
            .collect();
        self.remove_symbols(&keys, fx);
        fx.removed_trackers.push((dylib, name, key));
        Ok(())
    }

    fn remove_symbols(&mut self, keys: &[SymKey], fx: &mut Effects) {
        if keys.is_empty() {
            return;
        }
        let err = Error::SymbolsRemoved {
            symbols: self.qualify(keys),
        };
        let mut orphaned = Vec::new();
        for key in keys {
            let Some(entry) = self
                .dylibs
                .get_mut(&key.0)
                .and_then(|d| d.symbols.remove(&key.1))
            else {
                continue;
            };
            let SymbolExtra {
                pending,
                dependants,
                emit_unit,
                ..
            } = entry.extra.map(|x| *x).unwrap_or_default();
            for qid in pending {
                self.fail_query(qid, err.clone(), fx);
            }
            if let Some(unit) = emit_unit {
                self.leave_emit_unit(unit, key);
            }
            orphaned.extend(dependants);
            if let Some(unit) = entry.unit {
                if let Some(units) = self.dylibs.get_mut(&key.0).map(|d| &mut d.units) {
                    if let Some(u) = units.get_mut(&unit) {
                        u.live -= 1;
                        if u.live == 0 {
                            if let Some(u) = units.remove(&unit) {
                                fx.dropped_units.push(u.cell);
                            }
                        }
                    }
                }
            }
            if let Some(mr) = entry.mr {
                if let Some(m) = self.mrs.get_mut(&mr) {
                    m.symbols.remove(&key.1);
                    m.deps.remove(&key.1);
                }
            }
        }
        // Emitted symbols that waited on removed ones can never be ready.
        if !orphaned.is_empty() {
            let cause = Error::FailedToMaterialize {
                symbols: self.qualify(keys),
                cause: Arc::new(err),
            };
            for unit in orphaned {
                self.fail_emit_unit(unit, &cause, fx);
            }
        }
    }

    /// Moves everything of tracker `src` to tracker `dst` (same dylib).
    pub(crate) fn transfer_tracker(
        &mut self,
        src: ResourceKey,
        dst: ResourceKey,
    ) -> Result<DylibId> {
        self.check_open()?;
        let src_dylib = match self.trackers.get(&src) {
            Some(t) => t.dylib,
            None => {
                return Err(Error::ResourceTrackerDefunct {
                    dylib: "<unknown>".into(),
                })
            }
        };
        self.check_tracker(dst, src_dylib)?;
        if let Some(d) = self.dylibs.get_mut(&src_dylib) {
            for entry in d.symbols.values_mut() {
                if entry.tracker == src {
                    entry.tracker = dst;
                }
            }
            for unit in d.units.values_mut() {
                if unit.tracker == src {
                    unit.tracker = dst;
                }
            }
        }
        for mr in self.mrs.values_mut() {
            if mr.tracker == src {
                mr.tracker = dst;
            }
        }
        Ok(src_dylib)
    }

    /// Removes a dylib and all its trackers.
    pub(crate) fn remove_dylib(&mut self, dylib: DylibId, fx: &mut Effects) -> Result<()> {
        self.dylib(dylib)?;
        let keys: Vec<ResourceKey> = self
            .trackers
            .iter()
            .filter(|(_, t)| t.dylib == dylib)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.remove_tracker(key, fx)?;
        }
        // Every symbol belonged to one of those trackers; remove any stragglers
        // the same way so waiters fail instead of hanging.
        let rest: Vec<SymKey> = self
            .dylibs
            .get(&dylib)
            .map(|d| d.symbols.keys().map(|n| (dylib, n.clone())).collect())
            .unwrap_or_default();
        self.remove_symbols(&rest, fx);
        if let Some(d) = self.dylibs.remove(&dylib) {
            self.dylib_names.remove(&d.name);
            // Dropped after unlocking, like every unit.
            fx.dropped_units
                .extend(d.units.into_values().map(|u| u.cell));
        }
        for other in self.dylibs.values_mut() {
            if other.link_order.contains(&dylib) {
                other.link_order = other
                    .link_order
                    .iter()
                    .copied()
                    .filter(|id| *id != dylib)
                    .collect();
            }
        }
        Ok(())
    }

    /// Ends the session: fails every query, drops every unit, and lists every
    /// tracker for its resources to be freed.
    pub(crate) fn end(&mut self, fx: &mut Effects) -> Vec<Arc<dyn crate::DefinitionGenerator>> {
        let qids: Vec<QueryId> = self.queries.keys().copied().collect();
        for qid in qids {
            self.fail_query(qid, Error::SessionEnded, fx);
        }
        for d in self.dylibs.values_mut() {
            for (_, unit) in d.units.drain() {
                fx.dropped_units.push(unit.cell);
            }
        }
        let mut trackers: Vec<(ResourceKey, DylibId)> =
            self.trackers.drain().map(|(k, t)| (k, t.dylib)).collect();
        // Newest first, like a stack of loaded libraries.
        trackers.sort_by_key(|t| std::cmp::Reverse(t.0));
        for (key, dylib) in trackers {
            fx.removed_trackers
                .push((dylib, self.dylib_name(dylib), key));
        }
        self.mrs.clear();
        self.open = false;
        let mut generators = Vec::new();
        for (_, d) in self.dylibs.drain() {
            generators.extend(d.generators);
        }
        self.dylib_names.clear();
        generators
    }
}

/// Records one more result for query `qid`, completing it when it was the
/// last one outstanding. Takes the query table alone, so callers can hold
/// other parts of the state borrowed.
fn satisfy_in(
    queries: &mut HashMap<QueryId, QueryState>,
    qid: QueryId,
    name: &SymbolName,
    def: Option<ExecutorSymbolDef>,
    fx: &mut Effects,
) {
    let Some(query) = queries.get_mut(&qid) else {
        return;
    };
    if let Some(def) = def {
        query.results.insert(name.clone(), def);
    }
    query.outstanding -= 1;
    if query.outstanding == 0 {
        if let Some(query) = queries.remove(&qid) {
            fx.completions.push((query.callback, Ok(query.results)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every defined symbol has an entry, so a dylib of many lazy functions
    /// is as big as its entries: keep them at 48 bytes (64 with the key),
    /// with the rarely used parts boxed.
    #[test]
    fn symbol_entry_stays_small() {
        assert_eq!(std::mem::size_of::<SymbolEntry>(), 48);
        assert_eq!(std::mem::size_of::<Option<MrId>>(), 8);
    }
}

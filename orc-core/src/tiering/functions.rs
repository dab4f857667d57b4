//! The tiered-function layer's IR-free half: each function a frontend
//! registers is a [`FuncId`] with a stub (a lazy re-export in the stubs
//! dylib, its one canonical address), a current body in the bodies dylib,
//! a version that each redefinition bumps, and, while its body is tier-0
//! code, a registration with the [`TierManager`] and the
//! [`OsrSlot`]s of its loops.
//!
//! What this module does, for any frontend:
//! - names bodies ([`body_symbol`], [`osr_entry_symbol`]): nowhere else;
//! - defines stubs for new functions, lazily aliasing their bodies;
//! - redefinition: the new version's body replaces the old one, the stub
//!   is repointed with one atomic store under the table lock, and the old
//!   body is released (its memory is reclaimed once no thread can be in
//!   it);
//! - promotion: the tier manager's hot batches come here; each function's
//!   stub is first pointed past its entry-counting thunk, the
//!   [`Tier1Compiler`] compiles the batch into one tracker, and each
//!   function whose version is still current is repointed, its OSR
//!   entries are published and its tier-0 body is released. A batch that
//!   fails is retried one function at a time, so one bad function fails by
//!   itself and stays in tier 0, reported once by the tier manager;
//! - statistics.
//!
//! Locking: one mutex guards the table. Stubs are repointed under it, so a
//! promotion that finishes while a redefinition installs cannot repoint
//! the stub to stale code. No compiler runs under it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::manager::{Promotion, TierManager, TripCounter};
use super::osr::OsrSlot;
use super::trace::{TierEvent, TierTrace};
use crate::dylib::JitDylib;
use crate::error::{Error, Result};
use crate::lazy::LazyReexportsManager;
use crate::lookup::{SymbolLookupSet, SymbolState};
use crate::memory::JitCells;
use crate::reexports::{SymbolAliasMap, SymbolAliasMapEntry};
use crate::symbol::{ExecutorAddr, SymbolFlags, SymbolName};
use crate::tracker::ResourceTracker;
use crate::trip_code::EntryThunk;

/// A function registered with a [`TieredFunctions`]: an index, stable for
/// the layer's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(u32);

impl FuncId {
    /// The id's index (0 for the first function registered, and so on).
    pub fn index(self) -> u32 {
        self.0
    }

    /// The id with index `index`. An index the layer never handed out is
    /// an error where it is used, not here.
    pub fn from_index(index: u32) -> Self {
        FuncId(index)
    }
}

/// Which compiler made a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeTier {
    /// The baseline compiler (Cranelift).
    Zero,
    /// The optimizing compiler (LLVM).
    One,
}

/// The body symbol of version `version` of function `name` compiled by
/// `tier`: `f$t0`, `f$t1` for version 0, `f$t0.3` for version 3.
pub fn body_symbol(name: &str, tier: CodeTier, version: u32) -> String {
    let t = match tier {
        CodeTier::Zero => 0,
        CodeTier::One => 1,
    };
    match version {
        0 => format!("{name}$t{t}"),
        v => format!("{name}$t{t}.{v}"),
    }
}

/// The symbol of the on-stack-replacement entry for loop `index` of the
/// body `body` (a [`body_symbol`]).
pub fn osr_entry_symbol(body: &str, index: usize) -> String {
    format!("{body}$osr{index}")
}

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

/// The code of one or more function versions, under one tracker. The
/// functions whose current code it holds share it (an eager program's
/// module, a tier-1 batch); it is removed when the last one lets go.
#[derive(Debug)]
pub struct Body(Option<ResourceTracker>);

impl Body {
    /// A body owning `tracker`'s code.
    pub fn new(tracker: ResourceTracker) -> Arc<Body> {
        Arc::new(Body(Some(tracker)))
    }

    /// Lets go of `body`: removes its code now if this was the last user
    /// (its memory is reclaimed once no thread can be running it).
    pub fn release(body: Arc<Body>) -> Result<()> {
        match Arc::into_inner(body).and_then(|mut b| b.0.take()) {
            Some(tracker) => tracker.remove(),
            None => Ok(()),
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // Only reached when the layer itself goes away (releases go
        // through `Body::release`, which reports errors); a failure here
        // means the session has already ended.
        if let Some(tracker) = self.0.take() {
            let _ = tracker.remove();
        }
    }
}

/// A version of a function, compiled (or to be compiled on first call)
/// into a body: what [`TieredFunctions::define_new`] and
/// [`TieredFunctions::replace`] take.
#[derive(Clone, Debug)]
pub struct Definition {
    /// The function.
    pub id: FuncId,
    /// The version, as [`TieredFunctions::new_version`] gave it (0 for a
    /// first definition).
    pub version: u32,
    /// The tier of the body.
    pub tier: CodeTier,
    /// The code holding the body symbol ([`TieredFunctions::body`]).
    pub body: Arc<Body>,
    /// For a tier-0 body with loops that can be entered from the middle:
    /// their slots, which the body's code reads (see [`OsrSlot`]).
    pub osr: Option<Arc<JitCells<OsrSlot>>>,
}

/// One function version the [`Tier1Compiler`] must compile.
#[derive(Clone, Debug)]
pub struct Tier1Request {
    /// The function.
    pub id: FuncId,
    /// The version whose source to compile.
    pub version: u32,
    /// The symbol to define the tier-1 body under.
    pub symbol: SymbolName,
    /// For each OSR slot of the tier-0 body (in slot order), the symbol to
    /// define the loop's tier-1 entry under.
    pub osr_entries: Vec<SymbolName>,
}

/// Compiles function versions with the optimizing tier: the layer's one
/// IR-knowing callback for promotion.
pub trait Tier1Compiler: Send + Sync {
    /// Compiles `batch` into `tracker` (of the bodies dylib), defining each
    /// request's `symbol` and those of its `osr_entries` it can build.
    /// Returns, per request in order, which OSR entries it defined.
    fn compile(&self, batch: &[Tier1Request], tracker: &ResourceTracker) -> Result<Vec<Vec<bool>>>;
}

/// A function's statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionStats {
    /// The function.
    pub id: FuncId,
    /// Its name (its stub's symbol).
    pub name: String,
    /// Its current version (the number of redefinitions).
    pub version: u32,
    /// The tier of its current body, if it has one.
    pub tier: Option<CodeTier>,
    /// The OSR slots of its current body's loops (0 unless that is a
    /// registered tier-0 body with loops that can be entered mid-way).
    pub osr_loops: usize,
    /// Frames that moved from its tier-0 loops to tier-1 code, over all
    /// versions.
    pub osr_transfers: u64,
}

/// Where a [`TieredFunctions`] puts things.
#[derive(Clone)]
pub struct TieredFunctionsConfig {
    /// The dylib of the stubs (a function's canonical address).
    pub stubs: JitDylib,
    /// The dylib of the bodies; its search order must reach the stubs.
    pub bodies: JitDylib,
    /// Makes and repoints the stubs.
    pub lazy: Arc<LazyReexportsManager>,
    /// With adaptive tiering: counts tier-0 bodies and promotes hot ones.
    pub tiers: Option<Arc<TierManager>>,
}

/// The functions of one JIT across tiers and versions; see the module
/// docs. Cheap to clone (shared).
#[derive(Clone)]
pub struct TieredFunctions {
    shared: Arc<Shared>,
}

struct Shared {
    config: TieredFunctionsConfig,
    table: Mutex<Table>,
    tier1: Mutex<Option<Arc<dyn Tier1Compiler>>>,
    /// Where promotions and releases are logged, if anywhere.
    trace: Mutex<Option<Arc<TierTrace>>>,
}

#[derive(Default)]
struct Table {
    records: Vec<Record>,
    by_name: HashMap<SymbolName, FuncId>,
    /// Tier-0 bodies registered with the tier manager, by body symbol.
    registered: HashMap<String, (FuncId, u32)>,
    /// The OSR slots of superseded tier-0 bodies: their code may run (and
    /// read the slots) until it is reclaimed, so they live as long as the
    /// layer (two words per loop per redefinition).
    retired_osr: Vec<Arc<JitCells<OsrSlot>>>,
    /// Whether bodies replaced by tier-up are kept instead of released
    /// (see [`TieredFunctions::keep_replaced_bodies`]), and those kept.
    keep_replaced: bool,
    kept: Vec<Arc<Body>>,
}

struct Record {
    name: SymbolName,
    /// The version of the current body.
    version: u32,
    /// The last version handed out by `new_version`.
    newest: u32,
    tier: Option<CodeTier>,
    body: Option<Arc<Body>>,
    /// The current tier-0 body's OSR slots.
    osr: Option<Arc<JitCells<OsrSlot>>>,
    /// Transfers counted by slots of superseded versions.
    osr_transfers_before: u64,
    has_stub: bool,
    /// The stub's code (shared by the functions defined together).
    stub: Option<Arc<Body>>,
    /// Removed by [`TieredFunctions::remove`]: a tombstone.
    removed: bool,
}

impl TieredFunctions {
    /// A layer putting stubs and bodies where `config` says. With a tier
    /// manager, its hot batches are promoted through this layer (set the
    /// compiler with [`Self::set_tier1_compiler`]).
    pub fn new(config: TieredFunctionsConfig) -> Self {
        let shared = Arc::new(Shared {
            config,
            table: Mutex::new(Table::default()),
            tier1: Mutex::new(None),
            trace: Mutex::new(None),
        });
        if let Some(tiers) = &shared.config.tiers {
            let weak = Arc::downgrade(&shared);
            tiers.set_batch_promoter(Arc::new(move |names: &[&str]| match weak.upgrade() {
                Some(shared) => shared.promote_named(names),
                None => names
                    .iter()
                    .map(|_| Err(Error::other("the tiered-function layer is gone")))
                    .collect(),
            }));
        }
        TieredFunctions { shared }
    }

    /// Sets what compiles promotions. Without one, hot functions fail to
    /// promote (reported once each) and stay in tier 0.
    pub fn set_tier1_compiler(&self, compiler: Arc<dyn Tier1Compiler>) {
        *self.shared.tier1.lock() = Some(compiler);
    }

    /// The dylib of the bodies.
    pub fn bodies_dylib(&self) -> &JitDylib {
        &self.shared.config.bodies
    }

    /// Registers a function called `name` (its stub's symbol), with no
    /// body yet. Each name is registered once.
    pub fn declare(&self, name: &str) -> Result<FuncId> {
        let name = self.shared.config.stubs.session().intern(name);
        let mut table = self.shared.table.lock();
        if table.by_name.contains_key(&name) {
            return Err(Error::DuplicateDefinition {
                symbol: name,
                dylib: self.shared.config.stubs.name().into(),
            });
        }
        let id = FuncId(table.records.len() as u32);
        table.records.push(Record {
            name: name.clone(),
            version: 0,
            newest: 0,
            tier: None,
            body: None,
            osr: None,
            osr_transfers_before: 0,
            has_stub: false,
            stub: None,
            removed: false,
        });
        table.by_name.insert(name, id);
        Ok(id)
    }

    /// The function registered as `name`.
    pub fn id(&self, name: &str) -> Option<FuncId> {
        let name = self.shared.config.stubs.session().intern(name);
        self.shared.table.lock().by_name.get(&name).copied()
    }

    /// The name (stub symbol) of `id`.
    pub fn name(&self, id: FuncId) -> Result<SymbolName> {
        self.shared.with_record(id, |r| r.name.clone())
    }

    /// The version of `id`'s current body.
    pub fn version(&self, id: FuncId) -> Result<u32> {
        self.shared.with_record(id, |r| r.version)
    }

    /// Whether `id` has a body (or a lazily compiled one) yet.
    pub fn is_defined(&self, id: FuncId) -> Result<bool> {
        self.shared.with_record(id, |r| r.has_stub)
    }

    /// A new version number for a redefinition of `id`.
    pub fn new_version(&self, id: FuncId) -> Result<u32> {
        let mut table = self.shared.table.lock();
        let record = table.record_mut(id)?;
        record.newest += 1;
        Ok(record.newest)
    }

    /// The body symbol of `version` of `id` in `tier`, interned.
    pub fn body(&self, id: FuncId, tier: CodeTier, version: u32) -> Result<SymbolName> {
        let name = self.name(id)?;
        let es = self.shared.config.bodies.session();
        Ok(es.intern(&body_symbol(&name, tier, version)))
    }

    /// `n` fresh OSR slots for a tier-0 body (give them to the body's code,
    /// then to [`Definition::osr`]).
    pub fn osr_slots(n: usize) -> Result<Arc<JitCells<OsrSlot>>> {
        JitCells::new(n).map(Arc::new).map_err(|e| {
            Error::other(format!(
                "cannot allocate {n} on-stack-replacement slots: {e}"
            ))
        })
    }

    /// With adaptive tiering, registers `id`'s version-`version` tier-0
    /// body with the tier manager (before its code is compiled: the code
    /// needs its counter). Returns whether it was registered.
    pub fn register_for_tiering(&self, id: FuncId, version: u32) -> Result<bool> {
        let Some(tiers) = &self.shared.config.tiers else {
            return Ok(false);
        };
        let body = self.body(id, CodeTier::Zero, version)?;
        self.shared
            .table
            .lock()
            .registered
            .insert(body.to_string(), (id, version));
        let weak = Arc::downgrade(&self.shared);
        tiers.register(
            &body,
            Arc::new(move || match weak.upgrade() {
                Some(shared) => shared
                    .promote(&[(id, version)])
                    .pop()
                    .unwrap_or_else(|| Err(Error::other("no result"))),
                None => Err(Error::other("the tiered-function layer is gone")),
            }),
        );
        Ok(true)
    }

    /// Installs first definitions: records each body and defines each
    /// function's stub, which compiles the body (if it is a lazy unit) on
    /// first call.
    pub fn define_new(&self, defs: Vec<Definition>) -> Result<()> {
        let es = self.shared.config.bodies.session();
        let mut aliases = SymbolAliasMap::default();
        let stub_tracker = self.shared.config.stubs.create_resource_tracker()?;
        let stub = Body::new(stub_tracker.clone());
        {
            let mut table = self.shared.table.lock();
            for def in &defs {
                let record = table.record_mut(def.id)?;
                if record.has_stub {
                    return Err(Error::other(format!(
                        "function '{}' is already defined; redefine it with `replace`",
                        record.name
                    )));
                }
                let body = es.intern(&body_symbol(&record.name, def.tier, def.version));
                aliases.insert(
                    record.name.clone(),
                    SymbolAliasMapEntry {
                        aliasee: body,
                        flags: CALLABLE,
                    },
                );
            }
            for def in defs {
                let record = table.record_mut(def.id)?;
                record.has_stub = true;
                record.stub = Some(stub.clone());
                record.version = def.version;
                record.newest = record.newest.max(def.version);
                record.tier = Some(def.tier);
                record.body = Some(def.body);
                record.osr = def.osr;
            }
        }
        let config = &self.shared.config;
        let unit = config.lazy.lazy_reexports(&config.bodies, aliases);
        config.stubs.define(unit, Some(&stub_tracker))
    }

    /// Removes functions for good (a frontend unloading code, a language
    /// VM going away): their bodies (every tier) and stubs are released,
    /// their tiering registrations dropped, and their names may be
    /// declared again. The caller guarantees nothing calls them any more
    /// (memory is reclaimed once no pinned thread can be running the
    /// bodies). A promotion in flight for a removed function is dropped.
    /// Ids already removed are skipped; each removed id keeps a small
    /// tombstone (ids are never reused, so a stale id cannot reach a new
    /// function). A stub is freed with the last function defined in the
    /// same [`Self::define_new`] call.
    pub fn remove(&self, ids: &[FuncId]) -> Result<()> {
        // Their tier-0 registrations are retired first, so a promotion that
        // then misses them (or fails) is known to be moot and not reported.
        let registered: Vec<String> = {
            let table = self.shared.table.lock();
            if let Some(&id) = ids.iter().find(|id| id.0 as usize >= table.records.len()) {
                return Err(unknown(id));
            }
            table
                .registered
                .iter()
                .filter(|(_, (i, _))| ids.contains(i))
                .map(|(k, _)| k.clone())
                .collect()
        };
        if let Some(tiers) = &self.shared.config.tiers {
            for k in &registered {
                tiers.unregister(k);
            }
        }
        let mut released = Vec::new();
        {
            let mut table = self.shared.table.lock();
            for k in &registered {
                table.registered.remove(k);
            }
            for &id in ids {
                let record = table.record_mut(id)?;
                if record.removed {
                    continue;
                }
                record.removed = true;
                record.has_stub = false;
                record.tier = None;
                released.extend(record.body.take());
                released.extend(record.stub.take());
                let osr = record.osr.take();
                let name = record.name.clone();
                table.by_name.remove(&name);
                if let Some(slots) = osr {
                    match &self.shared.config.tiers {
                        Some(tiers) => tiers.keep_until_unreachable(slots),
                        None => table.retired_osr.push(slots),
                    }
                }
            }
        }
        let mut result = Ok(());
        for body in released {
            if let Err(e) = Body::release(body) {
                result = Err(e);
            }
        }
        result
    }

    /// Keeps the tier-0 bodies that tier-up replaces, instead of releasing
    /// them, for as long as this layer lives: for programs whose own
    /// threads run JIT'd code. Release reclaims a body's memory once no
    /// *pinned* thread can be in it (`Reclaimer`), and threads the program
    /// starts itself are not pinned, so one of them may still be running
    /// the replaced code. (Redefinition still releases: a frontend that
    /// redefines code knows its threads.)
    pub fn keep_replaced_bodies(&self) {
        self.shared.table.lock().keep_replaced = true;
    }

    /// Logs promotions and released bodies to `trace` (and hot and queued
    /// functions, through the tier manager, if there is one).
    pub fn set_trace(&self, trace: Arc<TierTrace>) {
        if let Some(tiers) = &self.shared.config.tiers {
            tiers.set_trace(trace.clone());
        }
        *self.shared.trace.lock() = Some(trace);
    }

    /// Gives version `version` of `id` the OSR slots of its tier-0 body's
    /// loops, when that body is compiled after its definition (a body whose
    /// code is produced on first call only then knows its loops). Ignored
    /// when `version` is no longer current or slots were given already.
    pub fn attach_osr(
        &self,
        id: FuncId,
        version: u32,
        slots: Arc<JitCells<OsrSlot>>,
    ) -> Result<()> {
        let mut table = self.shared.table.lock();
        let record = table.record_mut(id)?;
        if record.version == version && record.osr.is_none() {
            record.osr = Some(slots);
        }
        Ok(())
    }

    /// Compiles the current bodies of `ids` now (if they are lazy units)
    /// and points their stubs at them: the eager path.
    pub fn compile_now(&self, ids: &[FuncId]) -> Result<()> {
        let config = &self.shared.config;
        let mut names = Vec::with_capacity(ids.len());
        for &id in ids {
            let (name, tier, version) = self
                .shared
                .with_record(id, |r| (r.name.clone(), r.tier, r.version))?;
            let tier = tier.ok_or_else(|| Error::other(format!("'{name}' has no body")))?;
            names.push((name, self.body(id, tier, version)?));
        }
        let lookup: SymbolLookupSet = names.iter().map(|(_, body)| body.clone()).collect();
        let order = config.bodies.search_order()?;
        let found = config
            .bodies
            .session()
            .lookup(&order, lookup, SymbolState::Ready)?;
        for (name, body) in &names {
            config.stubs.lookup_symbol(name)?;
            if let Some(def) = found.get(body) {
                config.lazy.redirect(&config.stubs, name, def.addr)?;
            }
        }
        Ok(())
    }

    /// Installs a redefinition: `def.version` (from [`Self::new_version`])
    /// of a defined function, whose body is already compiled at `addr`.
    /// The stub is repointed (every caller, compiled code included, runs
    /// the new body on its next call) and the old body is released. A
    /// version older than the current one is dropped.
    pub fn replace(&self, def: Definition, addr: ExecutorAddr) -> Result<()> {
        let config = &self.shared.config;
        let name = self.name(def.id)?;
        // The stub may never have been looked up, and so not exist yet:
        // looking it up makes it.
        config.stubs.lookup_symbol(&name)?;
        let mut superseded = None;
        let mut released = None;
        let old = {
            let mut table = self.shared.table.lock();
            let record = table.record_mut(def.id)?;
            if !record.has_stub {
                return Err(Error::other(format!(
                    "function '{name}' is not defined yet; define it with `define_new`"
                )));
            }
            if def.version < record.version {
                None
            } else {
                config.lazy.redirect(&config.stubs, &name, addr)?;
                superseded = (record.version != def.version).then_some(record.version);
                released = record.tier.map(|tier| (tier, record.version));
                record.version = def.version;
                record.tier = Some(def.tier);
                let retired = std::mem::replace(&mut record.osr, def.osr);
                let old = record.body.replace(def.body);
                if let Some(slots) = retired {
                    record.osr_transfers_before += transfers(&slots);
                    // The old code may still use its slots: they go once
                    // it cannot be running (the manager's reclaimer).
                    match &config.tiers {
                        Some(tiers) => tiers.keep_until_unreachable(slots),
                        None => table.retired_osr.push(slots),
                    }
                }
                old
            }
        };
        if let Some(version) = superseded {
            self.unregister_from_tiering(def.id, version);
        }
        match old {
            Some(old) => {
                if let Some((tier, version)) = released {
                    self.shared.emit(|| TierEvent::Released {
                        function: name.to_string(),
                        tier,
                        version,
                        kept: false,
                    });
                }
                Body::release(old)
            }
            None => Ok(()),
        }
    }

    /// Forgets a superseded version's tier-0 registration (the stub no
    /// longer leads to it), so a long session of redefinitions does not
    /// accumulate them.
    fn unregister_from_tiering(&self, id: FuncId, version: u32) {
        let Some(tiers) = &self.shared.config.tiers else {
            return;
        };
        let Ok(body) = self.body(id, CodeTier::Zero, version) else {
            return;
        };
        self.shared.table.lock().registered.remove(body.as_str());
        tiers.unregister(&body);
    }

    /// The function's canonical address: its stub (made now if needed).
    pub fn address(&self, id: FuncId) -> Result<ExecutorAddr> {
        let name = self.name(id)?;
        Ok(self.shared.config.stubs.lookup_symbol(&name)?.addr)
    }

    /// Every function's statistics, by id (removed functions are left out).
    pub fn stats(&self) -> Vec<FunctionStats> {
        let table = self.shared.table.lock();
        table
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.removed)
            .map(|(i, r)| FunctionStats {
                id: FuncId(i as u32),
                name: r.name.to_string(),
                version: r.version,
                tier: r.tier,
                osr_loops: r.osr.as_ref().map_or(0, |s| s.len()),
                osr_transfers: r.osr_transfers_before
                    + r.osr.as_deref().map_or(0, |s| transfers(s)),
            })
            .collect()
    }
}

impl std::fmt::Debug for TieredFunctions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredFunctions")
            .field("functions", &self.shared.table.lock().records.len())
            .finish()
    }
}

fn transfers(slots: &[OsrSlot]) -> u64 {
    slots
        .iter()
        .map(|s| s.transfers.load(Ordering::Relaxed))
        .sum()
}

impl Table {
    fn record_mut(&mut self, id: FuncId) -> Result<&mut Record> {
        self.records
            .get_mut(id.0 as usize)
            .ok_or_else(|| unknown(id))
    }
}

fn unknown(id: FuncId) -> Error {
    Error::other(format!("no function with id {}", id.0))
}

impl Shared {
    /// Reports an event to the trace, if one is set.
    fn emit(&self, event: impl FnOnce() -> TierEvent) {
        let trace = self.trace.lock().clone();
        if let Some(trace) = trace {
            trace.emit(event());
        }
    }

    fn with_record<T>(&self, id: FuncId, f: impl FnOnce(&Record) -> T) -> Result<T> {
        let table = self.table.lock();
        table
            .records
            .get(id.0 as usize)
            .map(f)
            .ok_or_else(|| unknown(id))
    }

    /// The tier manager's batch, by registered tier-0 body symbol.
    fn promote_named(&self, names: &[&str]) -> Vec<Result<Promotion>> {
        let found: Vec<Option<(FuncId, u32)>> = {
            let table = self.table.lock();
            names
                .iter()
                .map(|n| table.registered.get(*n).copied())
                .collect()
        };
        let known: Vec<(FuncId, u32)> = found.iter().flatten().copied().collect();
        let mut results = self.promote(&known).into_iter();
        names
            .iter()
            .zip(&found)
            .map(|(name, f)| match f {
                Some(_) => results
                    .next()
                    .unwrap_or_else(|| Err(Error::other("no result"))),
                None => Err(Error::other(format!(
                    "'{name}' was registered by another layer"
                ))),
            })
            .collect()
    }

    /// Whether `id` was removed ([`TieredFunctions::remove`]).
    fn is_removed(&self, id: FuncId) -> bool {
        self.with_record(id, |r| r.removed).unwrap_or(true)
    }

    /// Compiles `batch` with tier 1 in one go and installs each function;
    /// if the batch fails, each function is tried alone. A function
    /// removed before or while it compiles is not promoted, without an
    /// error (its frontend unloaded it).
    fn promote(&self, batch: &[(FuncId, u32)]) -> Vec<Result<Promotion>> {
        let dropped = Promotion {
            compile_time: Default::default(),
            installed: false,
        };
        if batch.iter().any(|&(id, _)| self.is_removed(id)) {
            let live: Vec<(FuncId, u32)> = batch
                .iter()
                .copied()
                .filter(|&(id, _)| !self.is_removed(id))
                .collect();
            let mut results = self.promote(&live).into_iter();
            return batch
                .iter()
                .map(|&(id, _)| match live.iter().any(|&(l, _)| l == id) {
                    true => results.next().unwrap_or(Ok(dropped)),
                    false => Ok(dropped),
                })
                .collect();
        }
        self.promote_live(batch)
            .into_iter()
            .zip(batch)
            .map(|(r, &(id, _))| match r {
                Err(_) if self.is_removed(id) => Ok(dropped),
                r => r,
            })
            .collect()
    }

    fn promote_live(&self, batch: &[(FuncId, u32)]) -> Vec<Result<Promotion>> {
        if batch.is_empty() {
            return Vec::new();
        }
        let start = Instant::now();
        let Some(compiler) = self.tier1.lock().clone() else {
            return batch
                .iter()
                .map(|_| Err(Error::other("no tier-1 compiler is set")))
                .collect();
        };
        let requests = match self.requests(batch) {
            Ok(r) => r,
            Err(e) if batch.len() == 1 => return vec![Err(e)],
            Err(_) => return batch.iter().flat_map(|f| self.promote(&[*f])).collect(),
        };
        for r in &requests {
            self.stop_counting_entries(r.id, r.version);
        }
        let bodies = &self.config.bodies;
        let linked = bodies.create_resource_tracker().and_then(|tracker| {
            let found = compiler.compile(&requests, &tracker).and_then(|built| {
                requests
                    .iter()
                    .zip(built.iter().chain(std::iter::repeat(&Vec::new())))
                    .map(|(r, built)| {
                        let addr = bodies.lookup_symbol(&r.symbol)?.addr;
                        let osr = r
                            .osr_entries
                            .iter()
                            .enumerate()
                            .map(|(i, e)| match built.get(i) {
                                Some(true) => bodies.lookup_symbol(e).map(|d| Some(d.addr)),
                                _ => Ok(None),
                            })
                            .collect::<Result<Vec<_>>>()?;
                        Ok((addr, osr))
                    })
                    .collect::<Result<Vec<_>>>()
            });
            match found {
                Ok(found) => Ok((Body::new(tracker), found)),
                Err(e) => {
                    let _ = tracker.remove();
                    Err(e)
                }
            }
        });
        match linked {
            Ok((body, found)) => {
                let share = start.elapsed() / batch.len() as u32;
                requests
                    .iter()
                    .zip(found)
                    .map(|(r, (addr, osr))| {
                        let installed = self.install(r, addr, &osr, &body, share)?;
                        Ok(Promotion {
                            compile_time: share,
                            installed,
                        })
                    })
                    .collect()
            }
            Err(e) if batch.len() == 1 => vec![Err(e)],
            Err(_) => batch.iter().flat_map(|f| self.promote(&[*f])).collect(),
        }
    }

    fn requests(&self, batch: &[(FuncId, u32)]) -> Result<Vec<Tier1Request>> {
        let es = self.config.bodies.session();
        let table = self.table.lock();
        batch
            .iter()
            .map(|&(id, version)| {
                let record = table
                    .records
                    .get(id.0 as usize)
                    .ok_or_else(|| unknown(id))?;
                let symbol = body_symbol(&record.name, CodeTier::One, version);
                let loops = match record.version == version {
                    true => record.osr.as_ref().map_or(0, |s| s.len()),
                    false => 0,
                };
                Ok(Tier1Request {
                    id,
                    version,
                    osr_entries: (0..loops)
                        .map(|l| es.intern(&osr_entry_symbol(&symbol, l)))
                        .collect(),
                    symbol: es.intern(&symbol),
                })
            })
            .collect()
    }

    /// The function is on its way to tier 1, so counting its entries is
    /// wasted work: points the stub past the entry thunk, straight at the
    /// tier-0 body, for the rest of the compile. Loop back-edges still
    /// count, harmlessly. A tier-1 failure leaves the function there: it is
    /// never queued again.
    fn stop_counting_entries(&self, id: FuncId, version: u32) {
        if TripCounter::preserve_all_trip().is_none() {
            return; // No entry thunks on this host.
        }
        let config = &self.config;
        let table = self.table.lock();
        let Some(record) = table.records.get(id.0 as usize) else {
            return;
        };
        if record.version != version || record.tier != Some(CodeTier::Zero) {
            return;
        }
        let es = config.bodies.session();
        let tier0 = es.intern(&body_symbol(&record.name, CodeTier::Zero, version));
        let Ok(thunk) = config.bodies.lookup_symbol(&tier0) else {
            return;
        };
        if config.lazy.current_target(&config.stubs, &record.name).ok() != Some(thunk.addr) {
            return;
        }
        // SAFETY: `thunk` is the start of this version's tier-0 symbol,
        // which on this host the tier-0 layer defines as an entry thunk of
        // more than `BODY_JUMP_END` bytes (`body_of` checks its bytes
        // before trusting them). Its code stays mapped while the table
        // holds the version's body, and the table is locked.
        let code = unsafe {
            std::slice::from_raw_parts(thunk.addr.to_ptr::<u8>(), EntryThunk::BODY_JUMP_END)
        };
        if let Some(body) = EntryThunk::body_of(code, thunk.addr.value()) {
            let _ = config
                .lazy
                .redirect(&config.stubs, &record.name, ExecutorAddr(body));
        }
    }

    /// Puts linked tier-1 code to use: repoints the stub to `addr`,
    /// publishes the OSR entries and lets go of the tier-0 body. Nothing
    /// happens when the function was redefined while it compiled.
    fn install(
        &self,
        request: &Tier1Request,
        addr: ExecutorAddr,
        osr_entries: &[Option<ExecutorAddr>],
        body: &Arc<Body>,
        compile_time: Duration,
    ) -> Result<bool> {
        let config = &self.config;
        let old = {
            let mut table = self.table.lock();
            let record = table.record_mut(request.id)?;
            if record.version != request.version || record.removed {
                // Redefined while we compiled: this code is stale.
                return Ok(false);
            }
            config.lazy.redirect(&config.stubs, &record.name, addr)?;
            // Frames still looping in the tier-0 body move over at their
            // loop's next iteration. The entries live in the new body,
            // which is released after the tier-0 body (so after any frame
            // that can read them).
            if let Some(slots) = &record.osr {
                for (slot, entry) in slots.iter().zip(osr_entries) {
                    if let Some(entry) = entry {
                        slot.entry.store(entry.value(), Ordering::Release);
                    }
                }
            }
            record.tier = Some(CodeTier::One);
            let old = record.body.replace(body.clone());
            let function = record.name.to_string();
            drop(table);
            self.emit(|| TierEvent::Promoted {
                function,
                version: request.version,
                compile_time,
            });
            old
        };
        // The tier-0 body leaves the dylib; its memory is reclaimed once no
        // thread can be running it. Its OSR slots stay with the record
        // (the released code may still read them until it is reclaimed).
        if let Some(old) = old {
            let mut table = self.table.lock();
            self.emit(|| TierEvent::Released {
                function: table
                    .records
                    .get(request.id.0 as usize)
                    .map(|r| r.name.to_string())
                    .unwrap_or_default(),
                tier: CodeTier::Zero,
                version: request.version,
                kept: table.keep_replaced,
            });
            if table.keep_replaced {
                table.kept.push(old);
            } else {
                drop(table);
                Body::release(old)?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ExecutionSession;

    #[test]
    fn body_symbols_are_named_by_tier_and_version() {
        assert_eq!(body_symbol("f", CodeTier::Zero, 0), "f$t0");
        assert_eq!(body_symbol("f", CodeTier::One, 0), "f$t1");
        assert_eq!(body_symbol("f", CodeTier::Zero, 3), "f$t0.3");
        assert_eq!(osr_entry_symbol("f$t1.2", 1), "f$t1.2$osr1");
    }

    #[test]
    fn a_name_is_declared_once_and_unknown_ids_are_errors() {
        let es = ExecutionSession::new();
        let stubs = es.create_jit_dylib("main").unwrap();
        let bodies = es.create_jit_dylib("main.impl").unwrap();
        let layer = TieredFunctions::new(TieredFunctionsConfig {
            stubs: stubs.clone(),
            bodies,
            lazy: LazyReexportsManager::new(&es).unwrap(),
            tiers: None,
        });
        let f = layer.declare("f").unwrap();
        let g = layer.declare("g").unwrap();
        assert_ne!(f, g);
        assert_eq!(layer.id("g"), Some(g));
        assert!(matches!(
            layer.declare("f"),
            Err(Error::DuplicateDefinition { .. })
        ));
        assert_eq!(layer.new_version(f).unwrap(), 1);
        assert_eq!(layer.new_version(f).unwrap(), 2);
        assert_eq!(layer.version(f).unwrap(), 0, "no version installed yet");
        assert!(!layer.is_defined(f).unwrap());
        let missing = FuncId::from_index(7);
        assert!(layer
            .name(missing)
            .unwrap_err()
            .to_string()
            .contains("no function with id 7"));
        assert!(layer.address(missing).is_err());
        es.end_session().unwrap();
    }
}

//! Lazy re-exports: a function gets its stable address (a stub) before any
//! code exists. Looking a lazy re-export up yields the stub without
//! materializing the body; the first call goes through a call-through
//! trampoline that materializes the body, repoints the stub and continues
//! into it. The stub's address is the function's canonical address, so
//! function pointers compare equal across the program.
//!
//! The manager also repoints stubs later (hot redefinition, tier-up) and
//! frees stubs and trampolines when the tracker of their re-export is
//! removed (it is a [`ResourceManager`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::arch::{HostArch, LazyArch};
use super::call_through::{LazyCallThroughManager, TrampolineHandler};
use super::stubs::{IndirectStubsManager, StubId};
use crate::batch::Batch;
use crate::dylib::JitDylib;
use crate::error::{Error, Result};
use crate::reexports::{SymbolAliasMap, SymbolAliasMapEntry};
use crate::responsibility::MaterializationResponsibility;
use crate::session::ExecutionSession;
use crate::symbol::{
    ExecutorAddr, ExecutorSymbolDef, FastHash, SymbolFlagsMap, SymbolMap, SymbolName,
};
use crate::tracker::{ResourceKey, ResourceManager};
use crate::unit::MaterializationUnit;

/// A materialized re-export: its stub and the trampoline the stub starts
/// at (the stub's address is the stub manager's to say).
#[derive(Clone, Copy, Debug)]
struct StubRecord {
    stub: StubId,
    trampoline: ExecutorAddr,
}

/// The materialized re-exports. A re-export is found by name through its
/// symbol, whose address is its stub; so nothing here is keyed by name,
/// and making a stub only appends.
#[derive(Default)]
struct Records {
    /// The trampoline each stub starts at, by stub position (null for a
    /// stub that is not a live re-export).
    trampolines: Vec<Vec<ExecutorAddr>>,
    /// The stubs made under each tracker.
    by_key: HashMap<ResourceKey, Vec<StubId>, FastHash>,
}

impl Records {
    fn trampoline_mut(&mut self, stub: StubId) -> &mut ExecutorAddr {
        let (block, index) = stub.position();
        if self.trampolines.len() <= block {
            self.trampolines.resize_with(block + 1, Vec::new);
        }
        let slots = &mut self.trampolines[block];
        if slots.len() <= index {
            slots.resize(index + 1, ExecutorAddr::NULL);
        }
        &mut slots[index]
    }

    fn trampoline(&self, stub: StubId) -> Option<ExecutorAddr> {
        let (block, index) = stub.position();
        let addr = *self.trampolines.get(block)?.get(index)?;
        (!addr.is_null()).then_some(addr)
    }

    /// Forgets `stub`, returning its record if it was live.
    fn take(&mut self, stub: StubId) -> Option<StubRecord> {
        let trampoline = std::mem::replace(self.trampoline_mut(stub), ExecutorAddr::NULL);
        (!trampoline.is_null()).then_some(StubRecord { stub, trampoline })
    }
}

/// Owns the stubs and trampolines of lazy re-exports. See the module docs.
pub struct LazyReexportsManager {
    stubs: IndirectStubsManager,
    call_through: LazyCallThroughManager,
    records: Mutex<Records>,
    /// Every trampoline's handler: repoints the stub named by the cookie.
    repointer: Arc<dyn TrampolineHandler>,
    /// Told of the stubs each unit made (see [`LazyReexportsManager::set_stub_observer`]).
    observer: parking_lot::RwLock<Option<StubObserver>>,
}

/// Called with the stubs a lazy re-export unit made: `(name, address,
/// size)` of each, named as the re-export. Debugger and profiler support
/// use it to name stub code.
pub type StubObserver = Arc<dyn Fn(&[(String, ExecutorAddr, u64)]) + Send + Sync>;

/// The trampoline handler of a manager. It holds the manager weakly: the
/// manager owns the call-through manager that holds the handler.
struct StubRepointer(Weak<LazyReexportsManager>);

impl TrampolineHandler for StubRepointer {
    fn resolved(
        &self,
        trampoline: ExecutorAddr,
        cookie: u64,
        found: Result<ExecutorAddr>,
    ) -> Result<ExecutorAddr> {
        let Some(manager) = self.0.upgrade() else {
            return found;
        };
        let stub = StubId::from_bits(cookie);
        match found {
            // Repoint only a stub that still points at us: a redefinition
            // that raced with this first call wins, and the call continues
            // at its code.
            Ok(addr) => match manager.stubs.compare_and_set(stub, trampoline, addr)? {
                true => Ok(addr),
                false => manager.stubs.target(stub),
            },
            Err(e) => match manager.stubs.target(stub)? {
                current if current != trampoline && !current.is_null() => Ok(current),
                _ => Err(e),
            },
        }
    }
}

impl LazyReexportsManager {
    /// A manager for `session`, registered as one of its resource managers.
    pub fn new(session: &ExecutionSession) -> Result<Arc<Self>> {
        let call_through = LazyCallThroughManager::new(session)?;
        let manager = Arc::new_cyclic(|weak| LazyReexportsManager {
            stubs: IndirectStubsManager::new(),
            call_through,
            records: Mutex::new(Records::default()),
            repointer: Arc::new(StubRepointer(weak.clone())),
            observer: parking_lot::RwLock::new(None),
        });
        session.register_resource_manager(manager.clone());
        Ok(manager)
    }

    /// Calls `observer` with the stubs every unit makes from now on, once
    /// they are emitted (`None` stops).
    pub fn set_stub_observer(&self, observer: Option<StubObserver>) {
        *self.observer.write() = observer;
    }

    /// The call-through manager (for its failure handler).
    pub fn call_through(&self) -> &LazyCallThroughManager {
        &self.call_through
    }

    /// The stub pool.
    pub fn stubs(&self) -> &IndirectStubsManager {
        &self.stubs
    }

    /// A unit defining each alias as a stub that, on first call,
    /// materializes the aliasee in `source` and continues there.
    pub fn lazy_reexports(
        self: &Arc<Self>,
        source: &JitDylib,
        aliases: SymbolAliasMap,
    ) -> Box<dyn MaterializationUnit> {
        Box::new(LazyReexportsUnit {
            manager: self.clone(),
            source: source.clone(),
            aliases: aliases.into_iter().collect(),
        })
    }

    /// The stub address of lazy re-export `name` in `dylib`, if materialized.
    pub fn stub_address(&self, dylib: &JitDylib, name: &SymbolName) -> Option<ExecutorAddr> {
        let record = self.record(dylib, name).ok()?;
        self.stubs.address(record.stub).ok()
    }

    /// Where the stub of `name` in `dylib` jumps now.
    pub fn current_target(&self, dylib: &JitDylib, name: &SymbolName) -> Result<ExecutorAddr> {
        let record = self.record(dylib, name)?;
        self.stubs.target(record.stub)
    }

    /// Points the stub of `name` in `dylib` at `target` (one atomic store):
    /// every caller, including code already compiled, goes there next call.
    pub fn redirect(
        &self,
        dylib: &JitDylib,
        name: &SymbolName,
        target: ExecutorAddr,
    ) -> Result<()> {
        let record = self.record(dylib, name)?;
        self.stubs.set_target(record.stub, target)
    }

    /// Points the stub back at its trampoline: the next call looks the body
    /// up again (materializing a new definition if the old one was removed).
    pub fn reset_to_lazy(&self, dylib: &JitDylib, name: &SymbolName) -> Result<()> {
        let record = self.record(dylib, name)?;
        self.stubs.set_target(record.stub, record.trampoline)
    }

    /// The re-export `name` of `dylib`: its symbol's address is one of our
    /// live stubs.
    fn record(&self, dylib: &JitDylib, name: &SymbolName) -> Result<StubRecord> {
        dylib
            .resolved_address(name)
            .and_then(|addr| self.stubs.stub_at(addr))
            .and_then(|stub| {
                let trampoline = self.records.lock().trampoline(stub)?;
                Some(StubRecord { stub, trampoline })
            })
            .ok_or_else(|| {
                Error::other(format!(
                    "'{name}' is not a materialized lazy re-export of '{}'",
                    dylib.name()
                ))
            })
    }

    /// Records `record`, made under tracker `key`.
    fn add_record(&self, key: ResourceKey, record: StubRecord) {
        let mut records = self.records.lock();
        *records.trampoline_mut(record.stub) = record.trampoline;
        records.by_key.entry(key).or_default().push(record.stub);
    }

    /// Forgets and frees `made` (made under `key`), as far as still
    /// recorded.
    fn forget(&self, made: &Batch<StubRecord>, key: ResourceKey) {
        let released: Vec<StubRecord> = {
            let mut records = self.records.lock();
            if let Some(list) = records.by_key.get_mut(&key) {
                let made: HashSet<StubId, FastHash> = made.iter().map(|r| r.stub).collect();
                list.retain(|stub| !made.contains(stub));
                if list.is_empty() {
                    records.by_key.remove(&key);
                }
            }
            made.iter().filter_map(|r| records.take(r.stub)).collect()
        };
        for record in &released {
            self.release(record);
        }
    }

    fn release(&self, record: &StubRecord) {
        self.call_through.release_trampoline(record.trampoline);
        self.stubs.release(record.stub);
    }
}

impl ResourceManager for LazyReexportsManager {
    fn handle_remove_resources(&self, _dylib: &JitDylib, key: ResourceKey) -> Result<()> {
        let released: Vec<StubRecord> = {
            let mut records = self.records.lock();
            let stubs = records.by_key.remove(&key).unwrap_or_default();
            stubs.into_iter().filter_map(|s| records.take(s)).collect()
        };
        for record in &released {
            self.release(record);
        }
        Ok(())
    }

    fn handle_transfer_resources(&self, _dylib: &JitDylib, dst: ResourceKey, src: ResourceKey) {
        let mut records = self.records.lock();
        if let Some(stubs) = records.by_key.remove(&src) {
            records.by_key.entry(dst).or_default().extend(stubs);
        }
    }
}

impl std::fmt::Debug for LazyReexportsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyReexportsManager")
            .field("stubs", &self.stubs)
            .field("call_through", &self.call_through)
            .finish()
    }
}

struct LazyReexportsUnit {
    manager: Arc<LazyReexportsManager>,
    source: JitDylib,
    /// Usually one alias (one function), kept inline.
    aliases: Batch<(SymbolName, SymbolAliasMapEntry)>,
}

impl LazyReexportsUnit {
    /// A stub pointing at a fresh trampoline for `aliasee`, and its address.
    fn make_stub(&self, aliasee: &SymbolName) -> Result<(StubRecord, ExecutorAddr)> {
        let m = &self.manager;
        let stub = m.stubs.create_stub(ExecutorAddr::NULL)?;
        let trampoline = match m.call_through.get_call_through_trampoline(
            &self.source,
            aliasee.clone(),
            m.repointer.clone(),
            stub.to_bits(),
        ) {
            Ok(t) => t,
            Err(e) => {
                m.stubs.release(stub);
                return Err(e);
            }
        };
        m.stubs.set_target(stub, trampoline)?;
        let addr = m.stubs.address(stub)?;
        Ok((StubRecord { stub, trampoline }, addr))
    }
}

impl MaterializationUnit for LazyReexportsUnit {
    fn name(&self) -> &str {
        "<lazy reexports>"
    }

    fn symbols(&self) -> SymbolFlagsMap {
        self.aliases
            .iter()
            .map(|(n, a)| (n.clone(), a.flags))
            .collect()
    }

    /// Makes a stub for every alias. The unit's aliases are exactly what
    /// the responsibility owns (discarded names were removed from them);
    /// if the tracker was removed meanwhile, resolving fails and the stubs
    /// made are freed again.
    fn materialize(self: Box<Self>, r: MaterializationResponsibility) {
        let key = r.resource_key();
        let mut resolved = SymbolMap::with_capacity(self.aliases.len());
        let mut made = Batch::default();
        for (alias, entry) in self.aliases.iter() {
            match self.make_stub(&entry.aliasee) {
                Ok((record, addr)) => {
                    self.manager.add_record(key, record);
                    made.push(record);
                    resolved.insert(alias.clone(), ExecutorSymbolDef::new(addr, entry.flags));
                }
                Err(e) => {
                    self.manager.forget(&made, key);
                    return r.fail(e);
                }
            }
        }
        if let Err(e) = r
            .notify_resolved(&resolved)
            .and_then(|_| r.notify_emitted())
        {
            self.manager.forget(&made, key);
            return r.fail(e);
        }
        let observer = self.manager.observer.read().clone();
        if let Some(observer) = observer {
            let size = <HostArch as LazyArch>::STUB_SIZE as u64;
            let named: Vec<(String, ExecutorAddr, u64)> = resolved
                .iter()
                .map(|(name, def)| (name.as_str().to_owned(), def.addr, size))
                .collect();
            observer(&named);
        }
    }

    fn discard(&mut self, _dylib: &JitDylib, name: &SymbolName) {
        self.aliases.retain(|(alias, _)| alias != name);
    }
}

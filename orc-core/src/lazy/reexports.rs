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

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::call_through::LazyCallThroughManager;
use super::stubs::{IndirectStubsManager, StubId};
use crate::dylib::JitDylib;
use crate::error::{Error, Result};
use crate::reexports::SymbolAliasMap;
use crate::responsibility::MaterializationResponsibility;
use crate::session::ExecutionSession;
use crate::symbol::{
    ExecutorAddr, ExecutorSymbolDef, FastHash, SymbolFlagsMap, SymbolMap, SymbolName,
};
use crate::tracker::{ResourceKey, ResourceManager};
use crate::unit::MaterializationUnit;

#[derive(Clone, Copy, Debug)]
struct StubRecord {
    stub: StubId,
    addr: ExecutorAddr,
    trampoline: ExecutorAddr,
}

#[derive(Default)]
struct Records {
    by_name: HashMap<(JitDylib, SymbolName), StubRecord, FastHash>,
    by_key: HashMap<ResourceKey, Vec<(JitDylib, SymbolName)>, FastHash>,
}

/// Owns the stubs and trampolines of lazy re-exports. See the module docs.
pub struct LazyReexportsManager {
    stubs: IndirectStubsManager,
    call_through: LazyCallThroughManager,
    records: Mutex<Records>,
}

impl LazyReexportsManager {
    /// A manager for `session`, registered as one of its resource managers.
    pub fn new(session: &ExecutionSession) -> Result<Arc<Self>> {
        let manager = Arc::new(LazyReexportsManager {
            stubs: IndirectStubsManager::new(),
            call_through: LazyCallThroughManager::new(session)?,
            records: Mutex::new(Records::default()),
        });
        session.register_resource_manager(manager.clone());
        Ok(manager)
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
            aliases,
        })
    }

    /// The stub address of lazy re-export `name` in `dylib`, if materialized.
    pub fn stub_address(&self, dylib: &JitDylib, name: &SymbolName) -> Option<ExecutorAddr> {
        let key = (dylib.clone(), name.clone());
        self.records.lock().by_name.get(&key).map(|r| r.addr)
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

    fn record(&self, dylib: &JitDylib, name: &SymbolName) -> Result<StubRecord> {
        let key = (dylib.clone(), name.clone());
        self.records
            .lock()
            .by_name
            .get(&key)
            .copied()
            .ok_or_else(|| {
                Error::other(format!(
                    "'{name}' is not a materialized lazy re-export of '{}'",
                    dylib.name()
                ))
            })
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
            let names = records.by_key.remove(&key).unwrap_or_default();
            names
                .iter()
                .filter_map(|k| records.by_name.remove(k))
                .collect()
        };
        for record in &released {
            self.release(record);
        }
        Ok(())
    }

    fn handle_transfer_resources(&self, _dylib: &JitDylib, dst: ResourceKey, src: ResourceKey) {
        let mut records = self.records.lock();
        if let Some(names) = records.by_key.remove(&src) {
            records.by_key.entry(dst).or_default().extend(names);
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
    aliases: SymbolAliasMap,
}

impl LazyReexportsUnit {
    fn make_stub(&self, aliasee: &SymbolName) -> Result<StubRecord> {
        let m = &self.manager;
        let stub = m.stubs.create_stub(ExecutorAddr::NULL)?;
        let trampoline_cell: Arc<std::sync::OnceLock<ExecutorAddr>> = Arc::default();
        let notify_manager = Arc::downgrade(m);
        let cell = trampoline_cell.clone();
        let notify = Arc::new(move |found: Result<ExecutorAddr>| {
            let Some(manager) = notify_manager.upgrade() else {
                return found;
            };
            let trampoline = cell.get().copied().unwrap_or(ExecutorAddr::NULL);
            match found {
                // Repoint only a stub that still points at us: a
                // redefinition that raced with this first call wins, and
                // the call continues at its code.
                Ok(addr) => match manager.stubs.compare_and_set(stub, trampoline, addr)? {
                    true => Ok(addr),
                    false => manager.stubs.target(stub),
                },
                Err(e) => match manager.stubs.target(stub)? {
                    current if current != trampoline && !current.is_null() => Ok(current),
                    _ => Err(e),
                },
            }
        });
        let trampoline =
            match m
                .call_through
                .get_call_through_trampoline(&self.source, aliasee.clone(), notify)
            {
                Ok(t) => t,
                Err(e) => {
                    m.stubs.release(stub);
                    return Err(e);
                }
            };
        let _ = trampoline_cell.set(trampoline);
        m.stubs.set_target(stub, trampoline)?;
        let addr = m.stubs.address(stub)?;
        Ok(StubRecord {
            stub,
            addr,
            trampoline,
        })
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

    fn materialize(self: Box<Self>, r: MaterializationResponsibility) {
        let owned = r.symbols();
        let target = r.target_dylib().clone();
        let key = r.resource_key();
        let mut made: Vec<(SymbolName, StubRecord)> = Vec::new();
        let mut resolved = SymbolMap::new();
        for (alias, entry) in self.aliases.iter().filter(|(n, _)| owned.contains_key(*n)) {
            match self.make_stub(&entry.aliasee) {
                Ok(record) => {
                    resolved.insert(
                        alias.clone(),
                        ExecutorSymbolDef::new(record.addr, entry.flags),
                    );
                    made.push((alias.clone(), record));
                }
                Err(e) => {
                    for (_, record) in &made {
                        self.manager.release(record);
                    }
                    return r.fail(e);
                }
            }
        }
        {
            let mut records = self.manager.records.lock();
            for (alias, record) in &made {
                records
                    .by_name
                    .insert((target.clone(), alias.clone()), *record);
                records
                    .by_key
                    .entry(key)
                    .or_default()
                    .push((target.clone(), alias.clone()));
            }
        }
        if let Err(e) = r
            .notify_resolved(&resolved)
            .and_then(|_| r.notify_emitted())
        {
            // The tracker may have been removed meanwhile: free what we made.
            let _ = self.manager.handle_remove_resources(&target, key);
            r.fail(e);
        }
    }

    fn discard(&mut self, _dylib: &JitDylib, name: &SymbolName) {
        self.aliases.remove(name);
    }
}

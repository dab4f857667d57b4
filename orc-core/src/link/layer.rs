//! The object-linking layer: relocatable objects as materialization units
//! of a [`JitDylib`], linked by this crate's engine when first looked up.
//!
//! Adding an object defines its global symbols (minus those of COMDAT
//! groups another object of the dylib already brought: the first copy is
//! kept) as one unit. Materializing it runs the engine's phases with the
//! session in between: allocate, `notify_resolved`, look the externals up
//! in the dylib's search order (itself with hidden symbols, then its link
//! order; required state Resolved so cycles between objects link; weak
//! references optional), record the dependencies, apply, finalize, record
//! the [`LinkedObject`] under the responsibility's tracker, `notify_emitted`.
//! The external lookup is asynchronous: the link continues in its
//! completion, so materializing never blocks a dispatcher thread on another
//! unit (with the in-place dispatcher, that unit may be queued behind it).
//!
//! Objects with initializers or finalizers also define a hidden,
//! side-effects-only `$orc.init.N` symbol: [`ObjectLinkingLayer::run_initializers`]
//! looks these up (materializing the objects) and runs the initializers in
//! the order the objects were added.
//!
//! Plugins ([`LinkPlugin`]) watch every object's link; the layer starts
//! with the [`default_plugins`](super::plugin::default_plugins)
//! (`.eh_frame` registration) and takes more with
//! [`ObjectLinkingLayer::add_plugin`].
//!
//! Removing a tracker (or ending the session) runs, for its objects, the
//! exit handlers their code registered (newest first), then the finalizers
//! of the initialized ones in reverse add order, then unmaps them, through
//! the session's [`ResourceManager`] hook.
//!
//! Invariants: the layer's lock is never held while JIT'd code runs or
//! while calling into the session. Dylibs are keyed by name in the layer's
//! tables (no handle is stored, so the layer never keeps a session alive).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::atexit;
use super::elf::ObjectFile;
use super::error::LinkError;
use super::layout::AllocatedObject;
use super::linked::LinkedObject;
use super::plugin::{self, LinkPlugin};
use crate::{
    Error, ExecutionSession, ExecutorAddr, JitDylib, JitDylibLookupFlags, JitDylibSearchOrder,
    MaterializationResponsibility, MaterializationUnit, ResourceKey, ResourceManager,
    ResourceTracker, Result, SymbolFlags, SymbolFlagsMap, SymbolLookupFlags, SymbolLookupSet,
    SymbolMap, SymbolName, SymbolState,
};

/// Links relocatable objects into JIT dylibs. See the module docs.
pub struct ObjectLinkingLayer {
    inner: Arc<LayerInner>,
}

struct LayerInner {
    state: Mutex<LayerState>,
    next_id: AtomicU64,
    /// The session's name pool: names interned elsewhere would not match.
    pool: Arc<crate::SymbolStringPool>,
    /// When set, removed objects are unmapped only once no thread that
    /// may be running their code is still inside JIT'd code.
    reclaimer: parking_lot::RwLock<Option<crate::Reclaimer>>,
    /// The plugins; a link takes a snapshot when it starts.
    plugins: parking_lot::RwLock<Plugins>,
}

type Plugins = Arc<[Arc<dyn LinkPlugin>]>;

#[derive(Default)]
struct LayerState {
    /// Linked objects by tracker, in link order.
    linked: HashMap<ResourceKey, Vec<Record>>,
    /// COMDAT signatures kept, by dylib name.
    comdats: HashMap<String, HashSet<String>>,
    /// Objects whose initializers have not run, by dylib name, in add order.
    pending_inits: HashMap<String, Vec<PendingInit>>,
    /// `$orc.init.N` names whose objects are gone, for reuse (so adding and
    /// removing objects does not grow the session's name pool).
    free_init_names: Vec<SymbolName>,
    /// The anchor of every symbol owned by an object being linked or
    /// linked, by dylib name (see [`ObjectUnit::register_dependencies`]).
    anchors: HashMap<String, HashMap<SymbolName, SymbolName>>,
    /// The `anchors` entries made under each tracker, forgotten with it.
    anchored: HashMap<ResourceKey, Vec<(String, Vec<SymbolName>)>>,
    /// Dylibs whose removed objects leave their exit handlers to the
    /// program (see [`ObjectLinkingLayer::keep_exit_handlers`]), with the
    /// handle the handlers move to.
    program_handles: HashMap<String, u64>,
}

struct Record {
    id: u64,
    object: Arc<LinkedObject>,
    init: Option<SymbolName>,
    /// The name of the dylib it was linked into.
    dylib: Arc<str>,
}

struct PendingInit {
    id: u64,
    symbol: SymbolName,
    key: ResourceKey,
}

/// Turns an engine error into the session's error type.
fn session_error(e: LinkError) -> Error {
    Error::Link(Arc::new(e))
}

impl ObjectLinkingLayer {
    /// A layer for `session`, registered as one of its resource managers.
    pub fn new(session: &ExecutionSession) -> Arc<Self> {
        let layer = Arc::new(ObjectLinkingLayer {
            inner: Arc::new(LayerInner {
                state: Mutex::new(LayerState::default()),
                next_id: AtomicU64::new(1),
                pool: session.symbol_string_pool().clone(),
                reclaimer: parking_lot::RwLock::new(None),
                plugins: parking_lot::RwLock::new(plugin::default_plugins().into()),
            }),
        });
        session.register_resource_manager(layer.clone());
        layer
    }

    /// Defers unmapping removed objects through `reclaimer`: their exit
    /// handlers and finalizers still run at removal, but the memory is freed
    /// only once no thread that was inside JIT'd code (pinned) at removal
    /// time still is.
    pub fn set_reclaimer(&self, reclaimer: crate::Reclaimer) {
        *self.inner.reclaimer.write() = Some(reclaimer);
    }

    /// Adds `plugin` after those already installed: objects whose link
    /// starts from now on are shown to it (ORC's `addPlugin`).
    pub fn add_plugin(&self, plugin: Arc<dyn LinkPlugin>) {
        let mut plugins = self.inner.plugins.write();
        let mut list: Vec<Arc<dyn LinkPlugin>> = plugins.iter().cloned().collect();
        list.push(plugin);
        *plugins = list.into();
    }

    /// Removes the plugins named `name` (say `"eh-frame"`, to link without
    /// unwind registration) from the links that start from now on;
    /// returns how many were removed.
    pub fn remove_plugin(&self, name: &str) -> usize {
        let mut plugins = self.inner.plugins.write();
        let before = plugins.len();
        let list: Vec<Arc<dyn LinkPlugin>> = plugins
            .iter()
            .filter(|p| p.name() != name)
            .cloned()
            .collect();
        *plugins = list.into();
        before - plugins.len()
    }

    /// The installed plugins, in the order they run.
    pub fn plugins(&self) -> Vec<Arc<dyn LinkPlugin>> {
        self.inner.plugins.read().iter().cloned().collect()
    }

    /// Parses `bytes` and [`add`](Self::add)s the object.
    pub fn add_bytes(
        &self,
        dylib: &JitDylib,
        name: &str,
        bytes: Vec<u8>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<()> {
        let object = ObjectFile::parse(name, bytes).map_err(session_error)?;
        self.add(dylib, object, tracker)
    }

    /// Adds `object` to `dylib` under `tracker` (the dylib's default when
    /// `None`) as one materialization unit. Fails like `JitDylib::define`
    /// (a strong symbol the dylib already defines is `DuplicateDefinition`).
    pub fn add(
        &self,
        dylib: &JitDylib,
        object: ObjectFile,
        tracker: Option<&ResourceTracker>,
    ) -> Result<()> {
        let es = dylib.session();
        if !Arc::ptr_eq(es.symbol_string_pool(), &self.inner.pool) {
            return Err(Error::other(format!(
                "object linking layer used with dylib '{}' of another session",
                dylib.name()
            )));
        }
        let key = match tracker {
            Some(t) => t.key(),
            None => dylib.default_resource_tracker()?.key(),
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (dropped, newly_kept) = self.claim_comdats(dylib, &object);
        let mut symbols = SymbolFlagsMap::new();
        for d in object.defined_symbols() {
            if d.comdat.as_ref().is_some_and(|c| dropped.contains(c)) {
                continue;
            }
            symbols.insert(es.intern(&d.name), d.flags);
        }
        let init_symbol = object.has_initializers().then(|| {
            let reused = self.inner.state.lock().free_init_names.pop();
            reused.unwrap_or_else(|| es.intern(&format!("$orc.init.{id}")))
        });
        if let Some(init) = &init_symbol {
            symbols.insert(init.clone(), SymbolFlags::MATERIALIZATION_SIDE_EFFECTS_ONLY);
        }
        let unit = ObjectUnit {
            id,
            object,
            dropped,
            symbols,
            init: init_symbol.clone(),
            layer: self.inner.clone(),
        };
        if let Err(e) = dylib.define(Box::new(unit), tracker) {
            let mut st = self.inner.state.lock();
            st.free_init_names.extend(init_symbol);
            if let Some(kept) = st.comdats.get_mut(dylib.name()) {
                for sig in &newly_kept {
                    kept.remove(sig);
                }
            }
            return Err(e);
        }
        if let Some(init) = init_symbol {
            self.inner
                .state
                .lock()
                .pending_inits
                .entry(dylib.name().to_owned())
                .or_default()
                .push(PendingInit {
                    id,
                    symbol: init,
                    key,
                });
        }
        Ok(())
    }

    /// Keeps the first copy of each COMDAT group per dylib: returns the
    /// groups of `object` another object already brought (to drop) and
    /// those this object now owns.
    fn claim_comdats(
        &self,
        dylib: &JitDylib,
        object: &ObjectFile,
    ) -> (HashSet<String>, Vec<String>) {
        let mut st = self.inner.state.lock();
        let kept = st.comdats.entry(dylib.name().to_owned()).or_default();
        let mut dropped = HashSet::new();
        let mut newly_kept = Vec::new();
        for sig in object.comdat_signatures() {
            if kept.contains(sig) {
                dropped.insert(sig.to_owned());
            } else if kept.insert(sig.to_owned()) {
                newly_kept.push(sig.to_owned());
            }
        }
        (dropped, newly_kept)
    }

    /// Parses `bytes` (an object a compile layer produced, named `name`) and
    /// [`emit`](Self::emit)s it; an object the linker rejects fails the
    /// responsibility with the linker's error.
    pub fn emit_bytes(&self, mr: MaterializationResponsibility, name: &str, bytes: Vec<u8>) {
        match ObjectFile::parse(name, bytes) {
            Ok(object) => self.emit(mr, object),
            Err(e) => mr.fail(session_error(e)),
        }
    }

    /// Links `object` to satisfy an existing responsibility: what a compile
    /// layer does once its unit has produced the object (ORC's
    /// `ObjectLayer::emit`). Symbols the object defines beyond those owned
    /// are added to the responsibility; an owned symbol the object lacks
    /// fails it. Initializers of objects emitted this way are not run.
    pub fn emit(&self, mr: MaterializationResponsibility, object: ObjectFile) {
        let es = mr.session();
        let dylib = mr.target_dylib().clone();
        let (dropped, newly_kept) = self.claim_comdats(&dylib, &object);
        let mut symbols = mr.symbols();
        let mut extra = SymbolFlagsMap::new();
        for d in object.defined_symbols() {
            if d.comdat.as_ref().is_some_and(|c| dropped.contains(c)) {
                continue;
            }
            let name = es.intern(&d.name);
            // A weak or common copy that is not ours lost to another
            // definition: the link binds references to the winner. A weak
            // copy in a COMDAT group this object is the first to bring is
            // the winner (e.g. the `DW.ref.__gxx_personality_v0` that LLVM
            // emits into every object using a personality): later objects
            // drop their copies and bind to it.
            let first_of_group = d.comdat.as_ref().is_some_and(|c| newly_kept.contains(c));
            if !symbols.contains_key(&name) && (d.flags.is_strong() || first_of_group) {
                extra.insert(name, d.flags);
            }
        }
        if !extra.is_empty() {
            if let Err(e) = mr.define_materializing(&extra) {
                return mr.fail(e);
            }
            symbols.extend(extra);
        }
        let unit = ObjectUnit {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            object,
            dropped,
            symbols,
            init: None,
            layer: self.inner.clone(),
        };
        Box::new(unit).materialize(mr)
    }

    /// Materializes every object of `dylib` that has initializers and has
    /// not run them yet, then runs their initializers in the order the
    /// objects were added. Errors are those of the lookup (an object failed
    /// to link).
    ///
    /// # Safety
    ///
    /// Runs JIT'd code: the objects' initializers must be sound to run now.
    /// (Only initialized objects have their finalizers run on removal.)
    pub unsafe fn run_initializers(&self, dylib: &JitDylib) -> Result<()> {
        let pending = self
            .inner
            .state
            .lock()
            .pending_inits
            .remove(dylib.name())
            .unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
        let es = dylib.session();
        let set = SymbolLookupSet::from_names(pending.iter().map(|p| p.symbol.clone()));
        let order = vec![(dylib.clone(), JitDylibLookupFlags::MatchAllSymbols)];
        if let Err(e) = es.lookup(&order, set, SymbolState::Ready) {
            // Put them back so a later call can retry what did not fail.
            let mut st = self.inner.state.lock();
            let entry = st.pending_inits.entry(dylib.name().to_owned()).or_default();
            let later = std::mem::replace(entry, pending);
            entry.extend(later);
            return Err(e);
        }
        for PendingInit { id, .. } in pending {
            let object = {
                let st = self.inner.state.lock();
                st.linked
                    .values()
                    .flatten()
                    .find(|r| r.id == id)
                    .map(|r| r.object.clone())
            };
            if let Some(object) = object {
                // SAFETY: forwarded contract; no lock is held.
                unsafe { object.run_initializers() };
            }
        }
        Ok(())
    }

    /// From now on, an object of `dylib` that is removed leaves the exit
    /// handlers its code registered (and did not run) to the program:
    /// they run in [`Self::run_exit_handlers`], not at the removal. For a
    /// dylib whose code is replaced by new versions of itself while the
    /// program runs (tiering), where an `atexit` made by one version of
    /// `main` must still run at exit after that version is gone. Handlers
    /// point at functions' stubs, not into the removed code, in such
    /// programs.
    pub fn keep_exit_handlers(&self, dylib: &JitDylib) {
        let mut st = self.inner.state.lock();
        st.program_handles
            .entry(dylib.name().to_owned())
            // A unique, never-mapped value: the address of a leaked byte.
            .or_insert_with(|| Box::leak(Box::new(0u8)) as *mut u8 as usize as u64);
    }

    /// Runs what `exit` runs for the program in `dylib`, whatever trackers
    /// its objects are under: every exit handler their code registered,
    /// newest first, then their finalizers in the reverse of the order
    /// they were added. Nothing is unmapped; removing the objects later
    /// does not run these again. Use it when a program ends whose code is
    /// spread over many trackers (a tiered program has one per function
    /// version), so that no handler runs after code it calls was removed.
    ///
    /// # Safety
    ///
    /// Runs JIT'd code: the objects' handlers and finalizers must be sound
    /// to run now.
    pub unsafe fn run_exit_handlers(&self, dylib: &JitDylib) {
        let objects: Vec<(u64, Arc<LinkedObject>)> = {
            let st = self.inner.state.lock();
            let mut objects: Vec<(u64, Arc<LinkedObject>)> = st
                .linked
                .values()
                .flatten()
                .filter(|r| &*r.dylib == dylib.name())
                .map(|r| (r.id, r.object.clone()))
                .collect();
            objects.sort_by_key(|(id, _)| *id);
            objects
        };
        let program = self
            .inner
            .state
            .lock()
            .program_handles
            .get(dylib.name())
            .copied();
        let refs: Vec<&LinkedObject> = objects.iter().map(|(_, o)| &**o).collect();
        // SAFETY: forwarded contract; no lock is held, and the objects stay
        // mapped while `objects` holds them. Handlers left to the program
        // point at stubs, which outlive the objects.
        unsafe {
            if let Some(handle) = program {
                // One list, in registration order: the live objects'
                // handlers and those their removed versions left.
                for o in &refs {
                    atexit::adopt(o.dso_handle().value(), handle);
                }
                atexit::run_for_handle(handle);
            }
            atexit::run_atexit_handlers(&refs);
            for object in refs.iter().rev() {
                object.run_finalizers();
            }
        }
    }

    /// Runs the exit handlers (newest first) and then the finalizers (in
    /// reverse add order) of the objects linked under `tracker`, now, while
    /// its symbols are still defined: what removing the tracker does
    /// first, for a caller whose handlers may call code not compiled yet
    /// (a lazy stub needs its symbol, which removal takes away before
    /// running handlers). Each handler and finalizer still runs once: the
    /// removal later runs only what was registered or linked since.
    ///
    /// # Safety
    ///
    /// Runs JIT'd code: the objects' handlers and finalizers must be sound
    /// to run now (as at `exit`).
    pub unsafe fn run_deinitializers(&self, tracker: &ResourceTracker) {
        let mut objects: Vec<(u64, Arc<LinkedObject>)> = {
            let st = self.inner.state.lock();
            st.linked
                .get(&tracker.key())
                .map(|records| records.iter().map(|r| (r.id, r.object.clone())).collect())
                .unwrap_or_default()
        };
        objects.sort_by_key(|(id, _)| *id);
        let objects: Vec<&LinkedObject> = objects.iter().map(|(_, o)| &**o).collect();
        // SAFETY: forwarded contract; no lock is held, and the objects stay
        // mapped (borrowed from the Arcs above).
        unsafe {
            atexit::run_atexit_handlers(&objects);
            for object in objects.iter().rev() {
                object.run_finalizers();
            }
        }
    }

    /// The address of `name` as linked into `dylib` (hidden symbols too),
    /// materializing it if needed and waiting until it is Ready.
    pub fn lookup(&self, dylib: &JitDylib, name: &str) -> Result<ExecutorAddr> {
        dylib.lookup_symbol(name).map(|d| d.addr)
    }
}

impl ResourceManager for ObjectLinkingLayer {
    fn handle_remove_resources(&self, dylib: &JitDylib, key: ResourceKey) -> Result<()> {
        let records = {
            let mut guard = self.inner.state.lock();
            let st = &mut *guard;
            let records = st.linked.remove(&key).unwrap_or_default();
            for (dylib_name, names) in st.anchored.remove(&key).unwrap_or_default() {
                if let Some(map) = st.anchors.get_mut(&dylib_name) {
                    for name in names {
                        map.remove(&name);
                    }
                }
            }
            // The tracker's symbols have left the dylib: their init names
            // are free, and objects never materialized need no initializing.
            st.free_init_names
                .extend(records.iter().filter_map(|r| r.init.clone()));
            if let Some(pending) = st.pending_inits.get_mut(dylib.name()) {
                let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(pending)
                    .into_iter()
                    .partition(|p| p.key == key);
                *pending = kept;
                let materialized: HashSet<u64> = records.iter().map(|r| r.id).collect();
                st.free_init_names.extend(
                    gone.into_iter()
                        .filter(|p| !materialized.contains(&p.id))
                        .map(|p| p.symbol),
                );
            }
            if let Some(&handle) = st.program_handles.get(dylib.name()) {
                for r in &records {
                    atexit::adopt(r.object.dso_handle().value(), handle);
                }
            }
            records
        };
        let reclaimer = self.inner.reclaimer.read().clone();
        shut_down(records, reclaimer.as_ref());
        Ok(())
    }

    fn handle_transfer_resources(&self, dylib: &JitDylib, dst: ResourceKey, src: ResourceKey) {
        let mut st = self.inner.state.lock();
        if let Some(moved) = st.linked.remove(&src) {
            st.linked.entry(dst).or_default().extend(moved);
        }
        if let Some(moved) = st.anchored.remove(&src) {
            st.anchored.entry(dst).or_default().extend(moved);
        }
        for p in st.pending_inits.get_mut(dylib.name()).into_iter().flatten() {
            if p.key == src {
                p.key = dst;
            }
        }
    }
}

/// Exit handlers (newest first across the objects), then finalizers in
/// reverse add order (the reverse of the order initializers ran in, as
/// `.fini_array` runs in `ld`'s output; link order differs, since an object
/// linked as another's dependency finishes first), then unmapping (when
/// the last handle drops). With a reclaimer, the unmapping waits until no
/// thread that entered JIT'd code before now is still inside it.
fn shut_down(mut records: Vec<Record>, reclaimer: Option<&crate::Reclaimer>) {
    if records.is_empty() {
        return;
    }
    records.sort_by_key(|r| r.id);
    let objects: Vec<&LinkedObject> = records.iter().map(|r| &*r.object).collect();
    // SAFETY: these handlers and finalizers belong to objects whose
    // initializers the user ran (an unsafe call that vouched for their
    // code); handlers exist only if that code registered them. Nothing is
    // unmapped until `records` drops below.
    unsafe {
        atexit::run_atexit_handlers(&objects);
        for object in objects.iter().rev() {
            object.run_finalizers();
        }
    }
    match reclaimer {
        Some(reclaimer) => reclaimer.retire(move || drop(records)),
        None => drop(records),
    }
}

/// One object as a materialization unit.
struct ObjectUnit {
    id: u64,
    object: ObjectFile,
    dropped: HashSet<String>,
    symbols: SymbolFlagsMap,
    init: Option<SymbolName>,
    layer: Arc<LayerInner>,
}

impl MaterializationUnit for ObjectUnit {
    fn name(&self) -> &str {
        self.object.name()
    }

    fn symbols(&self) -> SymbolFlagsMap {
        self.symbols.clone()
    }

    fn materialize(self: Box<Self>, mr: MaterializationResponsibility) {
        self.link(mr);
    }

    fn discard(&mut self, _dylib: &JitDylib, name: &SymbolName) {
        // The object still defines it; the apply phase binds its references
        // to the winner, which `link` looks up.
        self.symbols.remove(name);
    }
}

impl ObjectUnit {
    /// Allocates and resolves, then looks the externals up without
    /// blocking: the rest of the link runs when the lookup completes. (A
    /// blocking lookup would deadlock the in-place dispatcher when this
    /// object waits on one whose materialization is queued behind it.)
    fn link(self: Box<Self>, mr: MaterializationResponsibility) {
        let plugins = self.layer.plugins.read().clone();
        let (alloc, wanted, anchor) = match self.allocate_and_resolve(&mr, &plugins) {
            Ok(prepared) => prepared,
            Err(e) => return mr.fail(e),
        };
        let dylib = mr.target_dylib().clone();
        let order = match dylib.search_order() {
            Ok(order) => order,
            Err(e) => return mr.fail(e),
        };
        let lookup = ExternalLookup {
            es: mr.session(),
            order,
            next: 0,
            remaining: wanted,
            found: HashMap::new(),
            deps: Vec::new(),
            done: Box::new(move |res| {
                let res = res.and_then(|(found, deps)| {
                    self.register_dependencies(&mr, anchor.as_ref(), &deps)?;
                    self.finish(&mr, alloc, &found, &plugins)
                });
                if let Err(e) = res {
                    mr.fail(e);
                }
            }),
        };
        lookup.step();
    }

    /// Lays the object out and notifies the session of its addresses;
    /// returns the allocation, the names to look up (the externals, plus
    /// this object's weak/common definitions that lost to another) and the
    /// object's anchor symbol, registered for the symbols it owns.
    fn allocate_and_resolve(
        &self,
        mr: &MaterializationResponsibility,
        plugins: &[Arc<dyn LinkPlugin>],
    ) -> Result<(AllocatedObject, Vec<SymbolName>, Option<SymbolName>)> {
        let es = mr.session();
        let alloc = self.object.allocate(&self.dropped).map_err(session_error)?;
        plugin::run_allocated(plugins, &alloc).map_err(session_error)?;

        // Resolved: every owned symbol's address.
        let owned = mr.symbols();
        let mut resolved = SymbolMap::new();
        for (name, flags) in &owned {
            if flags.has_side_effects_only() {
                continue;
            }
            let def = alloc.symbols().get(name.as_str()).ok_or_else(|| {
                Error::other(format!(
                    "{}: symbol {name} has no address after layout",
                    self.object.name()
                ))
            })?;
            resolved.insert(
                name.clone(),
                crate::ExecutorSymbolDef::new(def.addr, *flags),
            );
        }
        // Before notifying: that may complete lookups whose continuations
        // register dependencies on these symbols.
        let anchor = self.register_anchor(mr, &owned);
        mr.notify_resolved(&resolved)?;

        // Every name is looked up as optional: a weak reference found
        // nowhere binds to 0, and a strong one is reported by the apply
        // phase, naming the object.
        let mut wanted: Vec<SymbolName> = alloc
            .external_symbols()
            .iter()
            .map(|u| es.intern(&u.name))
            .collect();
        for name in alloc.symbols().keys() {
            let interned = es.intern(name);
            if !owned.contains_key(&interned) {
                wanted.push(interned);
            }
        }
        Ok((alloc, wanted, anchor))
    }

    /// Picks the object's anchor (an owned symbol with an address, else the
    /// init symbol) and records it as the anchor of every owned symbol, so
    /// objects linked later can depend on the anchor instead.
    fn register_anchor(
        &self,
        mr: &MaterializationResponsibility,
        owned: &SymbolFlagsMap,
    ) -> Option<SymbolName> {
        let anchor = owned
            .iter()
            .find(|(_, flags)| !flags.has_side_effects_only())
            .or_else(|| owned.iter().next())
            .map(|(name, _)| name.clone())?;
        let dylib = mr.target_dylib().name().to_owned();
        let names: Vec<SymbolName> = owned.keys().cloned().collect();
        let mut guard = self.layer.state.lock();
        let st = &mut *guard;
        let map = st.anchors.entry(dylib.clone()).or_default();
        for name in &names {
            map.insert(name.clone(), anchor.clone());
        }
        st.anchored
            .entry(mr.resource_key())
            .or_default()
            .push((dylib, names));
        Some(anchor)
    }

    /// Records the object's dependencies in the session, once for all its
    /// symbols (the session keeps them per object and emits the object's
    /// symbols as one unit). A reference to a symbol of another object of
    /// this layer becomes a dependency on that object's anchor: its symbols
    /// are emitted together and are ready together, so readiness is
    /// unchanged, but dependency sets grow with the number of objects
    /// referenced rather than the number of symbols.
    fn register_dependencies(
        &self,
        mr: &MaterializationResponsibility,
        anchor: Option<&SymbolName>,
        deps: &Dependencies,
    ) -> Result<()> {
        let dylib = mr.target_dylib();
        let mut mapped: Dependencies = Vec::new();
        {
            let st = self.layer.state.lock();
            let mut seen: HashSet<(&str, SymbolName)> = HashSet::new();
            for (jd, name) in deps {
                let target = st
                    .anchors
                    .get(jd.name())
                    .and_then(|m| m.get(name))
                    .unwrap_or(name);
                let is_self = Some(target) == anchor && jd.name() == dylib.name();
                if !is_self && seen.insert((jd.name(), target.clone())) {
                    mapped.push((jd.clone(), target.clone()));
                }
            }
        }
        mr.add_dependencies_for_all(&mapped)
    }

    /// Applies and finalizes, records the linked object under the tracker
    /// and notifies emission.
    fn finish(
        &self,
        mr: &MaterializationResponsibility,
        alloc: AllocatedObject,
        found: &HashMap<String, ExecutorAddr>,
        plugins: &[Arc<dyn LinkPlugin>],
    ) -> Result<()> {
        let linked = alloc
            .apply(found)
            .and_then(|a| a.finalize_with(plugins))
            .map_err(session_error)?;
        let key = mr.resource_key();
        self.layer
            .state
            .lock()
            .linked
            .entry(key)
            .or_default()
            .push(Record {
                id: self.id,
                object: Arc::new(linked),
                init: self.init.clone(),
                dylib: mr.target_dylib().name().into(),
            });
        if let Err(e) = mr.notify_emitted() {
            if matches!(e, Error::ResourceTrackerDefunct { .. }) {
                // The tracker went away meanwhile: free what we recorded.
                let mut st = self.layer.state.lock();
                let mut mine = Vec::new();
                if let Some(list) = st.linked.get_mut(&key) {
                    let (keep, drop_now): (Vec<Record>, Vec<Record>) = std::mem::take(list)
                        .into_iter()
                        .partition(|r| r.id != self.id);
                    *list = keep;
                    mine = drop_now;
                }
                drop(st);
                drop(mine);
            }
            return Err(e);
        }
        Ok(())
    }
}

/// Symbols a unit depends on, with the dylib each was found in.
type Dependencies = Vec<(JitDylib, SymbolName)>;

/// What an external lookup delivers: addresses by name, and dependencies.
type ExternalsResult = Result<(HashMap<String, ExecutorAddr>, Dependencies)>;

/// Looks names up one dylib of the search order at a time (all optional),
/// so each hit is known to come from that dylib for dependency tracking.
/// Each step is an asynchronous lookup whose completion runs the next; the
/// last calls `done`. A required name found nowhere is left for the apply
/// phase to report (naming the object).
struct ExternalLookup {
    es: ExecutionSession,
    order: JitDylibSearchOrder,
    next: usize,
    remaining: Vec<SymbolName>,
    found: HashMap<String, ExecutorAddr>,
    deps: Dependencies,
    done: Box<dyn FnOnce(ExternalsResult) + Send>,
}

impl ExternalLookup {
    fn step(mut self) {
        if self.remaining.is_empty() || self.next == self.order.len() {
            return (self.done)(Ok((self.found, self.deps)));
        }
        let (jd, flags) = self.order[self.next].clone();
        self.next += 1;
        let mut set = SymbolLookupSet::new();
        for name in &self.remaining {
            set.add(name.clone(), SymbolLookupFlags::WeaklyReferencedSymbol);
        }
        let es = self.es.clone();
        es.lookup_async(
            &vec![(jd.clone(), flags)],
            set,
            SymbolState::Resolved,
            move |res| match res {
                Err(e) => (self.done)(Err(e)),
                Ok(result) => {
                    for (name, def) in result {
                        self.found.insert(name.as_str().to_owned(), def.addr);
                        self.deps.push((jd.clone(), name));
                    }
                    let found = &self.found;
                    self.remaining.retain(|n| !found.contains_key(n.as_str()));
                    self.step();
                }
            },
        );
    }
}

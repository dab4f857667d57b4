//! The execution session: owner of dylibs, symbol states, the dispatcher
//! and error reporting.
//!
//! All state lives in one `SessionState` behind one lock. Public operations
//! lock it briefly to make a transition, collect what must happen next
//! (query callbacks, materializations, discards, error reports) and do that
//! after unlocking, so no materializer, generator, resource manager or user
//! callback ever runs under the session lock.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::dispatch::{Dispatcher, InPlaceDispatcher, Task};
use crate::dylib::{JitDylib, JitDylibSearchOrder};
use crate::error::{Error, Result};
use crate::lookup::{JitDylibLookupFlags, SymbolLookupFlags};
use crate::lookup::{LookupKind, SymbolLookupSet, SymbolState};
use crate::responsibility::MaterializationResponsibility;
use crate::state::{DylibId, Effects, QueryCallback, SessionState};
use crate::symbol::{SymbolMap, SymbolName, SymbolStringPool};
use crate::tracker::{free_removed, ResourceManager};

/// Receives errors that have no caller to go to (a failed materialization
/// nobody is waiting on, a resource manager that failed to free).
pub type ErrorReporter = Box<dyn Fn(&Error) + Send + Sync>;

pub(crate) struct SessionInner {
    pub(crate) state: Mutex<SessionState>,
    pool: Arc<SymbolStringPool>,
    dispatcher: RwLock<Arc<dyn Dispatcher>>,
    reporter: RwLock<Option<ErrorReporter>>,
    managers: RwLock<Vec<Arc<dyn ResourceManager>>>,
}

/// The root of a JIT: see the module docs. Clone is cheap (a handle).
#[derive(Clone)]
pub struct ExecutionSession {
    inner: Arc<SessionInner>,
}

impl Default for ExecutionSession {
    fn default() -> Self {
        Self::new()
    }
}

impl ExecutionSession {
    /// A session with the in-place dispatcher.
    pub fn new() -> Self {
        Self::with_dispatcher(Arc::new(InPlaceDispatcher))
    }

    /// A session whose materializations run on `dispatcher`.
    pub fn with_dispatcher(dispatcher: Arc<dyn Dispatcher>) -> Self {
        let pool = Arc::new(SymbolStringPool::new());
        ExecutionSession {
            inner: Arc::new(SessionInner {
                state: Mutex::new(SessionState::new(pool.clone())),
                pool,
                dispatcher: RwLock::new(dispatcher),
                reporter: RwLock::new(None),
                managers: RwLock::new(Vec::new()),
            }),
        }
    }

    pub(crate) fn from_inner(inner: Arc<SessionInner>) -> Self {
        ExecutionSession { inner }
    }

    pub(crate) fn inner(&self) -> &Arc<SessionInner> {
        &self.inner
    }

    /// A handle on dylib `id` of this session, if it still exists.
    pub(crate) fn dylib_handle(&self, id: DylibId) -> Result<JitDylib> {
        let name = self.inner.state.lock().dylib(id)?.name.clone();
        Ok(JitDylib::from_parts(self.inner.clone(), id, name))
    }

    /// Interns `name` in the session's pool.
    pub fn intern(&self, name: &str) -> SymbolName {
        self.inner.pool.intern(name)
    }

    /// The session's name pool.
    pub fn symbol_string_pool(&self) -> &Arc<SymbolStringPool> {
        &self.inner.pool
    }

    /// The dispatcher materializations run on.
    pub fn dispatcher(&self) -> Arc<dyn Dispatcher> {
        self.inner.dispatcher.read().clone()
    }

    /// Sends errors nobody else receives to `reporter` (the default prints
    /// them on stderr).
    pub fn set_error_reporter(&self, reporter: impl Fn(&Error) + Send + Sync + 'static) {
        *self.inner.reporter.write() = Some(Box::new(reporter));
    }

    /// Reports `err` through the error reporter.
    pub fn report_error(&self, err: &Error) {
        self.inner.report_error(err)
    }

    /// Registers a manager to be told when trackers are removed or merged.
    /// Managers registered later are asked to free first.
    pub fn register_resource_manager(&self, manager: Arc<dyn ResourceManager>) {
        self.inner.managers.write().push(manager);
    }

    /// Unregisters a manager (by identity).
    pub fn deregister_resource_manager(&self, manager: &Arc<dyn ResourceManager>) {
        self.inner
            .managers
            .write()
            .retain(|m| !Arc::ptr_eq(m, manager));
    }

    /// Creates a dylib. A second dylib with the same name is an error.
    pub fn create_jit_dylib(&self, name: &str) -> Result<JitDylib> {
        let (id, name) = self.inner.state.lock().create_dylib(name)?;
        Ok(JitDylib::from_parts(self.inner.clone(), id, name))
    }

    /// The dylib called `name`, if any.
    pub fn jit_dylib(&self, name: &str) -> Option<JitDylib> {
        let (id, name) = self.inner.state.lock().dylib_by_name(name)?;
        Some(JitDylib::from_parts(self.inner.clone(), id, name))
    }

    /// Every dylib, in creation order.
    pub fn jit_dylibs(&self) -> Vec<JitDylib> {
        let all = self.inner.state.lock().all_dylibs();
        all.into_iter()
            .map(|(id, name)| JitDylib::from_parts(self.inner.clone(), id, name))
            .collect()
    }

    /// Removes a dylib: all its trackers are removed (freeing resources) and
    /// it leaves every link order.
    pub fn remove_jit_dylib(&self, dylib: &JitDylib) -> Result<()> {
        let mut fx = Effects::default();
        let res = self.inner.state.lock().remove_dylib(dylib.id, &mut fx);
        self.inner.run_effects(fx);
        res
    }

    /// Looks `names` up in `order` and calls `on_complete` once, when every
    /// name has reached `required` (`Resolved` or `Ready`), or with the first
    /// error. Materializes what is needed on the dispatcher. Names nobody
    /// defines are offered to each dylib's generators, in search order.
    pub fn lookup_async(
        &self,
        order: &JitDylibSearchOrder,
        names: SymbolLookupSet,
        required: SymbolState,
        on_complete: impl FnOnce(Result<SymbolMap>) + Send + 'static,
    ) {
        self.lookup_with_kind(
            LookupKind::Static,
            order,
            names,
            required,
            Box::new(on_complete),
        )
    }

    /// Like [`Self::lookup_async`] with an explicit [`LookupKind`] for
    /// generators.
    pub fn lookup_with_kind(
        &self,
        kind: LookupKind,
        order: &JitDylibSearchOrder,
        names: SymbolLookupSet,
        required: SymbolState,
        on_complete: Box<dyn FnOnce(Result<SymbolMap>) + Send>,
    ) {
        self.inner.lookup(
            kind,
            Search::Order(order),
            names.entries(),
            required,
            QueryCallback::Callback(on_complete),
        )
    }

    /// Blocking form of [`Self::lookup_async`]. On a dispatcher worker
    /// thread it runs queued tasks while it waits, so a pool cannot deadlock
    /// on work queued behind its own blocked workers.
    pub fn lookup(
        &self,
        order: &JitDylibSearchOrder,
        names: SymbolLookupSet,
        required: SymbolState,
    ) -> Result<SymbolMap> {
        self.inner
            .lookup_blocking(Search::Order(order), names.entries(), required)
    }

    /// Looks one name up in `dylibs` (exported symbols only), waiting until
    /// it is Ready.
    pub fn lookup_symbol(
        &self,
        dylibs: &[&JitDylib],
        name: &str,
    ) -> Result<crate::ExecutorSymbolDef> {
        let name = self.intern(name);
        let order = crate::dylib::make_search_order(dylibs);
        let names = [(name, SymbolLookupFlags::RequiredSymbol)];
        let map = self
            .inner
            .lookup_blocking(Search::Order(&order), &names, SymbolState::Ready)?;
        take_one(map, names)
    }

    /// Ends the session: every pending lookup fails with `SessionEnded`,
    /// queued materializations are dropped (failing their symbols), running
    /// ones finish against a closed session, every tracker's resources are
    /// freed (newest first) and every dylib, unit and generator is dropped.
    /// Later operations return `SessionEnded`. Ending twice is a no-op.
    pub fn end_session(&self) -> Result<()> {
        let mut fx = Effects::default();
        let generators = {
            let mut st = self.inner.state.lock();
            if !st.open {
                return Ok(());
            }
            st.end(&mut fx)
        };
        let removed = std::mem::take(&mut fx.removed_trackers);
        self.inner.run_effects(fx);
        self.dispatcher().shutdown();
        free_removed(&self.inner, removed);
        drop(generators);
        self.inner.managers.write().clear();
        self.inner.pool.clear_dead_entries();
        Ok(())
    }

    /// Whether [`Self::end_session`] has run.
    pub fn has_ended(&self) -> bool {
        !self.inner.state.lock().open
    }
}

impl SessionInner {
    /// Interns `name` in the session's pool.
    pub(crate) fn intern(&self, name: &str) -> SymbolName {
        self.pool.intern(name)
    }

    /// Looks `names` up in `search` and completes `callback` once (see
    /// [`ExecutionSession::lookup_async`]). When no name can reach a
    /// definition generator, which is the common case, this takes the
    /// session lock once and allocates nothing for the search order.
    pub(crate) fn lookup(
        self: &Arc<Self>,
        kind: LookupKind,
        search: Search<'_>,
        names: &[(SymbolName, SymbolLookupFlags)],
        required: SymbolState,
        callback: QueryCallback,
    ) {
        let mut fx = Effects::default();
        let deferred = self.register(&search, names, required, callback, true, &mut fx);
        self.run_effects(fx);
        let Some(callback) = deferred else {
            return;
        };
        // Some name may be defined by a generator: offer the names to them
        // first, without the session lock, then register.
        let offered = search.handles().and_then(|order| {
            self.run_generators(kind, &order, &SymbolLookupSet::from_entries(names))
        });
        if let Err(e) = offered {
            return callback.complete(Err(e));
        }
        let mut fx = Effects::default();
        let _ = self.register(&search, names, required, callback, false, &mut fx);
        self.run_effects(fx);
    }

    /// Registers a query under the session lock, or hands `callback` back
    /// when `check_generators` is set and some name must first be offered
    /// to a generator.
    fn register(
        &self,
        search: &Search<'_>,
        names: &[(SymbolName, SymbolLookupFlags)],
        required: SymbolState,
        callback: QueryCallback,
        check_generators: bool,
        fx: &mut Effects,
    ) -> Option<QueryCallback> {
        let mut st = self.state.lock();
        let st = &mut *st;
        let ours = |jd: &JitDylib| std::ptr::eq(Arc::as_ptr(&jd.session), self);
        match *search {
            Search::Order(order) => {
                let ids: Vec<_> = order
                    .iter()
                    .filter(|(jd, _)| ours(jd))
                    .map(|(jd, flags)| (jd.id, *flags))
                    .collect();
                let ids = ids.iter().copied();
                register_in(st, ids, names, required, callback, check_generators, fx)
            }
            Search::Dylib(jd) => {
                // The dylib itself (hidden symbols too), then its link order.
                let link = match st.dylib(jd.id) {
                    Ok(d) => d.link_order.clone(),
                    Err(e) => {
                        fx.completions.push((callback, Err(e)));
                        return None;
                    }
                };
                let ids = std::iter::once((jd.id, JitDylibLookupFlags::MatchAllSymbols)).chain(
                    link.iter()
                        .map(|id| (*id, JitDylibLookupFlags::MatchExportedSymbolsOnly)),
                );
                register_in(st, ids, names, required, callback, check_generators, fx)
            }
            Search::Only(jd, flags) => {
                let ids = std::iter::once((jd.id, flags)).filter(|_| ours(jd));
                register_in(st, ids, names, required, callback, check_generators, fx)
            }
        }
    }

    /// Offers the names no dylib defines (so far, in order) to generators.
    fn run_generators(
        self: &Arc<Self>,
        kind: LookupKind,
        order: &JitDylibSearchOrder,
        names: &SymbolLookupSet,
    ) -> Result<()> {
        let mut unresolved = names.clone();
        for (jd, flags) in order {
            if unresolved.is_empty() {
                break;
            }
            let (generators, lock) = {
                let st = self.state.lock();
                st.check_open()?;
                let Ok(d) = st.dylib(jd.id) else {
                    continue;
                };
                unresolved.retain(|n, _| !st.defines(jd.id, n, *flags));
                (d.generators.clone(), d.generator_lock.clone())
            };
            if unresolved.is_empty() || generators.is_empty() {
                continue;
            }
            let _serial = lock.lock();
            for generator in &generators {
                self.state.lock().check_open()?;
                {
                    let st = self.state.lock();
                    unresolved.retain(|n, _| !st.defines(jd.id, n, *flags));
                }
                if unresolved.is_empty() {
                    break;
                }
                generator.try_to_generate(kind, jd, *flags, &unresolved)?;
            }
            let st = self.state.lock();
            unresolved.retain(|n, _| !st.defines(jd.id, n, *flags));
        }
        Ok(())
    }

    /// Blocking form of [`Self::lookup`]: waits on a [`ResultSlot`],
    /// running queued tasks meanwhile on a dispatcher worker thread.
    pub(crate) fn lookup_blocking(
        self: &Arc<Self>,
        search: Search<'_>,
        names: &[(SymbolName, SymbolLookupFlags)],
        required: SymbolState,
    ) -> Result<SymbolMap> {
        let slot = Arc::new(ResultSlot::default());
        let sender = ResultSender(Some(slot.clone()));
        let dispatcher = self.dispatcher.read().clone();
        // This thread is about to wait, so it runs the first
        // materialization its lookup starts itself (see `WaiterWork`).
        // (Not on a thread whose thread-locals are being destroyed, such
        // as one running a C++ `thread_local` destructor that calls JIT'd
        // code: it waits like any other.)
        let outer = dispatcher
            .caller_may_run()
            .then(|| {
                WAITER_WORK
                    .try_with(|w| w.replace(WaiterWork::Keep(None)))
                    .ok()
            })
            .flatten();
        self.lookup(
            LookupKind::Static,
            search,
            names,
            required,
            QueryCallback::Blocking(sender),
        );
        if let Some(outer) = outer {
            if let WaiterWork::Keep(Some(task)) = WAITER_WORK.replace(WaiterWork::Inline) {
                // As on a pool worker: a panicking task fails what it was
                // materializing (its responsibility is dropped unwinding),
                // and this lookup reports that.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run()));
            }
            WAITER_WORK.set(outer);
        }
        // With the in-place dispatcher, or the work kept here, the query
        // has usually completed.
        if let Some(res) = slot.take() {
            return res;
        }
        loop {
            if let Some(res) = slot.take() {
                return res;
            }
            if dispatcher.run_one_if_worker() {
                continue;
            }
            if let Some(res) = slot.wait(Duration::from_millis(2)) {
                return res;
            }
        }
    }

    pub(crate) fn report_error(&self, err: &Error) {
        match &*self.reporter.read() {
            Some(reporter) => reporter(err),
            None => eprintln!("orc: JIT session error: {err}"),
        }
    }

    pub(crate) fn resource_managers(&self) -> Vec<Arc<dyn ResourceManager>> {
        self.managers.read().clone()
    }

    /// Performs the effects of a transition. Must be called without the
    /// session lock held.
    pub(crate) fn run_effects(self: &Arc<Self>, fx: Effects) {
        if fx.is_empty() {
            return;
        }
        for (cell, dylib, name) in fx.discards {
            let dylib_name = self.state.lock().dylib_name(dylib);
            let jd = JitDylib::from_parts(self.clone(), dylib, dylib_name);
            if let Some(unit) = cell.lock().as_mut() {
                unit.discard(&jd, &name);
            }
        }
        drop(fx.dropped_units);
        for (callback, res) in fx.completions {
            callback.complete(res);
        }
        for err in &fx.reports {
            self.report_error(err);
        }
        free_removed(self, fx.removed_trackers);
        if fx.materialize.is_empty() {
            return;
        }
        let dispatcher = self.dispatcher.read().clone();
        for pm in fx.materialize {
            let dylib_name = self.state.lock().dylib_name(pm.dylib);
            let jd = JitDylib::from_parts(self.clone(), pm.dylib, dylib_name);
            let mr = MaterializationResponsibility::new(self.clone(), pm.mr, jd, pm.tracker);
            let cell = pm.cell;
            // The unit's name describes the task (shared, not formatted).
            let task = Task::new(pm.unit_name.to_arc(), move || {
                let unit = cell.lock().take();
                match unit {
                    Some(unit) => unit.materialize(mr),
                    None => drop(mr),
                }
            });
            // A thread whose thread-locals are gone has no waiter work.
            let work = WAITER_WORK
                .try_with(|w| w.replace(WaiterWork::None))
                .unwrap_or(WaiterWork::None);
            match work {
                WaiterWork::Keep(None) => WAITER_WORK.set(WaiterWork::Keep(Some(task))),
                WaiterWork::Inline => {
                    WAITER_WORK.set(WaiterWork::Inline);
                    task.run();
                }
                other => {
                    let _ = WAITER_WORK.try_with(|w| w.set(other));
                    dispatcher.dispatch(task);
                }
            }
        }
    }
}

/// What a thread that will wait for its own blocking lookup does with the
/// materializations it starts. Handing the work to a sleeping pool worker
/// and being woken when it is done costs two thread wake-ups (tens of
/// microseconds each, more on virtual machines) for a thread that would
/// only wait: a lazy call's compile then took a quarter longer than
/// compiling it in place.
enum WaiterWork {
    /// Not in a blocking lookup: dispatch as usual.
    None,
    /// Making the lookup: the first task it starts is kept here, for the
    /// thread to run once the lookup call returns; later ones are
    /// dispatched and run alongside (an eager lookup of many units still
    /// compiles them in parallel).
    Keep(Option<Task>),
    /// Running the kept task: what it starts in turn (its object's link
    /// looking up the lazy stubs it calls, say) runs at once, as with the
    /// in-place dispatcher, so the whole chain stays on this thread.
    Inline,
}

thread_local! {
    static WAITER_WORK: std::cell::Cell<WaiterWork> = const { std::cell::Cell::new(WaiterWork::None) };
}

impl std::fmt::Debug for ExecutionSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionSession")
            .field("dylibs", &self.jit_dylibs())
            .finish()
    }
}

/// Where a lookup searches.
pub(crate) enum Search<'a> {
    /// An explicit search order; dylibs of other sessions are skipped.
    Order(&'a JitDylibSearchOrder),
    /// A dylib's own search order: itself (hidden symbols too), then its
    /// link order (exported symbols only).
    Dylib(&'a JitDylib),
    /// One dylib, matching with the given flags.
    Only(&'a JitDylib, JitDylibLookupFlags),
}

impl Search<'_> {
    /// The search order as dylib handles (for generators).
    fn handles(&self) -> Result<JitDylibSearchOrder> {
        match *self {
            Search::Order(order) => Ok(order.clone()),
            Search::Dylib(jd) => jd.search_order(),
            Search::Only(jd, flags) => Ok(vec![(jd.clone(), flags)]),
        }
    }
}

/// Registers a query for `names` in the dylibs `ids` (see
/// [`SessionInner::register`]).
fn register_in<I>(
    st: &mut SessionState,
    ids: I,
    names: &[(SymbolName, SymbolLookupFlags)],
    required: SymbolState,
    callback: QueryCallback,
    check_generators: bool,
    fx: &mut Effects,
) -> Option<QueryCallback>
where
    I: Iterator<Item = (DylibId, JitDylibLookupFlags)> + Clone,
{
    if check_generators && st.open && st.needs_generators(ids.clone(), names) {
        return Some(callback);
    }
    st.register_query(ids, names, required, callback, fx);
    None
}

/// The one definition a single-name lookup asked for.
pub(crate) fn take_one(
    mut map: SymbolMap,
    [(name, _)]: [(SymbolName, SymbolLookupFlags); 1],
) -> Result<crate::ExecutorSymbolDef> {
    map.remove(&name).ok_or(Error::SymbolsNotFound {
        symbols: vec![name],
    })
}

/// Where a blocking lookup's outcome lands: a slot and a condition
/// variable in one allocation (a channel costs several).
#[derive(Default)]
pub(crate) struct ResultSlot {
    value: Mutex<Option<Result<SymbolMap>>>,
    filled: Condvar,
}

impl ResultSlot {
    fn take(&self) -> Option<Result<SymbolMap>> {
        self.value.lock().take()
    }

    /// Waits until the slot is filled or `timeout` passes.
    fn wait(&self, timeout: Duration) -> Option<Result<SymbolMap>> {
        let mut value = self.value.lock();
        if value.is_none() {
            self.filled.wait_for(&mut value, timeout);
        }
        value.take()
    }
}

/// Fills a [`ResultSlot`] once. Dropped unfilled (the query was dropped
/// without completing), it fills the slot with `SessionEnded`, so the
/// waiter never hangs.
pub(crate) struct ResultSender(Option<Arc<ResultSlot>>);

impl ResultSender {
    pub(crate) fn send(mut self, res: Result<SymbolMap>) {
        self.fill(res);
    }

    fn fill(&mut self, res: Result<SymbolMap>) {
        if let Some(slot) = self.0.take() {
            *slot.value.lock() = Some(res);
            slot.filled.notify_all();
        }
    }
}

impl Drop for ResultSender {
    fn drop(&mut self) {
        self.fill(Err(Error::SessionEnded));
    }
}

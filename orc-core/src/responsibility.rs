//! The materialization responsibility: what a unit is handed when its
//! symbols are wanted, and the ORC contract it must keep.
//!
//! A responsibility owns a set of symbols of one dylib. It must resolve
//! them all (`notify_resolved`), then emit them all (`notify_emitted`), or
//! `fail`. It can split off part of itself (`delegate`), hand symbols back
//! as a new unit (`replace`), add symbols it discovers
//! (`define_materializing`), and record what its symbols depend on so they
//! become Ready only when their dependencies are. Dropping it before it
//! finishes fails its remaining symbols, so no lookup waits forever.
//!
//! Every method takes the session lock briefly and returns without running
//! user code under it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::dylib::JitDylib;
use crate::error::{Error, Result};
use crate::session::{ExecutionSession, SessionInner};
use crate::state::{Effects, MrId};
use crate::symbol::{SymbolFlagsMap, SymbolMap, SymbolName};
use crate::tracker::{ResourceKey, ResourceTracker};
use crate::unit::MaterializationUnit;

/// The right and duty to define a set of symbols. See the module docs.
pub struct MaterializationResponsibility {
    session: Arc<SessionInner>,
    id: MrId,
    dylib: JitDylib,
    tracker: ResourceKey,
    /// Set once the responsibility emitted: the session has forgotten it,
    /// so dropping it has nothing to fail.
    finished: AtomicBool,
}

impl MaterializationResponsibility {
    pub(crate) fn new(
        session: Arc<SessionInner>,
        id: MrId,
        dylib: JitDylib,
        tracker: ResourceKey,
    ) -> Self {
        MaterializationResponsibility {
            session,
            id,
            dylib,
            tracker,
            finished: AtomicBool::new(false),
        }
    }

    fn with_effects<T>(
        &self,
        f: impl FnOnce(&mut crate::state::SessionState, &mut Effects) -> Result<T>,
    ) -> Result<T> {
        let mut fx = Effects::default();
        let res = f(&mut self.session.state.lock(), &mut fx);
        self.session.run_effects(fx);
        res
    }

    /// The session.
    pub fn session(&self) -> ExecutionSession {
        ExecutionSession::from_inner(self.session.clone())
    }

    /// The dylib the symbols are defined in.
    pub fn target_dylib(&self) -> &JitDylib {
        &self.dylib
    }

    /// The tracker the symbols (and any resources made for them) belong to.
    pub fn tracker(&self) -> ResourceTracker {
        ResourceTracker {
            dylib: self.dylib.clone(),
            key: self.tracker,
        }
    }

    /// The key of [`Self::tracker`], under which layers record resources.
    pub fn resource_key(&self) -> ResourceKey {
        self.tracker
    }

    /// Whether the tracker was removed (or the session ended): work for this
    /// responsibility is wasted and will be refused.
    pub fn is_defunct(&self) -> bool {
        self.session.state.lock().mr_defunct(self.id)
    }

    /// The symbols this responsibility still owns, with their flags.
    pub fn symbols(&self) -> SymbolFlagsMap {
        self.session.state.lock().mr_symbols(self.id)
    }

    /// The owned symbols that some lookup is waiting for (sorted by name).
    pub fn requested_symbols(&self) -> Vec<SymbolName> {
        self.session.state.lock().mr_requested(self.id)
    }

    /// Sets the addresses of every owned symbol (all at once; symbols with
    /// the side-effects-only flag need none). Lookups that need only
    /// `Resolved` complete. Errors: a symbol missing or not owned, called
    /// twice, or the tracker was removed.
    pub fn notify_resolved(&self, symbols: &SymbolMap) -> Result<()> {
        self.with_effects(|st, fx| st.notify_resolved(self.id, symbols, fx))
    }

    /// Records that `symbol` depends on `deps`: it becomes Ready only when
    /// they are. Call before `notify_emitted`.
    pub fn add_dependencies(
        &self,
        symbol: &SymbolName,
        deps: &[(JitDylib, SymbolName)],
    ) -> Result<()> {
        let deps = self.keys(deps)?;
        self.session
            .state
            .lock()
            .add_dependencies(self.id, Some(symbol), &deps)
    }

    /// Records that every owned symbol depends on `deps`.
    pub fn add_dependencies_for_all(&self, deps: &[(JitDylib, SymbolName)]) -> Result<()> {
        let deps = self.keys(deps)?;
        self.session
            .state
            .lock()
            .add_dependencies(self.id, None, &deps)
    }

    fn keys(&self, deps: &[(JitDylib, SymbolName)]) -> Result<Vec<crate::state::SymKey>> {
        deps.iter()
            .map(|(jd, name)| {
                if Arc::ptr_eq(&jd.session, &self.session) {
                    Ok((jd.id, name.clone()))
                } else {
                    Err(Error::ResponsibilityMisuse {
                        message: format!(
                            "dependency on '{name}' of dylib '{}' of another session",
                            jd.name()
                        ),
                    })
                }
            })
            .collect()
    }

    /// Marks every owned symbol emitted; each becomes Ready once everything
    /// it depends on is. Finishes the responsibility. If a dependency has
    /// failed, the owned symbols fail too and the error is returned.
    pub fn notify_emitted(&self) -> Result<()> {
        let res = self.with_effects(|st, fx| st.notify_emitted(self.id, fx));
        if res.is_ok() {
            self.finished.store(true, Ordering::Relaxed);
        }
        res
    }

    /// Fails every owned symbol with `cause`: lookups waiting on them (or on
    /// symbols depending on them) get `FailedToMaterialize` naming them. The
    /// failure is also sent to the session's error reporter.
    pub fn fail(self, cause: Error) {
        let _ = self.with_effects(|st, fx| {
            st.fail_mr(self.id, cause, fx);
            Ok(())
        });
    }

    /// Splits `names` off into a new responsibility (for example to
    /// materialize them on another thread).
    pub fn delegate(&self, names: &[SymbolName]) -> Result<MaterializationResponsibility> {
        let id = self.session.state.lock().delegate(self.id, names)?;
        Ok(MaterializationResponsibility::new(
            self.session.clone(),
            id,
            self.dylib.clone(),
            self.tracker,
        ))
    }

    /// Hands the symbols of `unit` (which must be owned and not yet
    /// resolved) back to the dylib as a new unit. If a lookup is waiting on
    /// any of them, the unit is materialized at once.
    pub fn replace(&self, unit: Box<dyn MaterializationUnit>) -> Result<()> {
        let symbols = unit.symbols();
        let cell = Arc::new(Mutex::new(Some(unit)));
        self.with_effects(|st, fx| st.replace(self.id, cell, &symbols, fx))
    }

    /// Adds symbols discovered during materialization, owned by this
    /// responsibility. A name already defined in the dylib is a
    /// `DuplicateDefinition`.
    pub fn define_materializing(&self, symbols: &SymbolFlagsMap) -> Result<()> {
        self.session
            .state
            .lock()
            .define_materializing(self.id, symbols)
    }
}

impl Drop for MaterializationResponsibility {
    fn drop(&mut self) {
        if *self.finished.get_mut() {
            return;
        }
        let mut fx = Effects::default();
        self.session.state.lock().mr_dropped(self.id, &mut fx);
        self.session.run_effects(fx);
    }
}

impl fmt::Debug for MaterializationResponsibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaterializationResponsibility")
            .field("dylib", &self.dylib.name())
            .field("symbols", &self.symbols().keys().collect::<Vec<_>>())
            .finish()
    }
}

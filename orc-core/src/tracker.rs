//! Resource trackers: every definition belongs to one, and removing a
//! tracker removes its symbols and frees what layers allocated for them.
//!
//! Layers that own memory or registrations for a tracker implement
//! [`ResourceManager`] and register with the session; the session calls
//! them, without its lock held, when a tracker is removed or merged. The
//! protocol for a layer that records resources during materialization:
//! record them under the responsibility's tracker key, then call
//! `notify_emitted`; if that fails with `ResourceTrackerDefunct`, the
//! tracker was removed meanwhile and the layer frees what it recorded
//! itself (the removal may or may not have seen it).

use std::fmt;

use crate::dylib::JitDylib;
use crate::error::{Error, Result};
use crate::session::SessionInner;
use crate::state::Effects;

/// Identifies a resource tracker, for resource managers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey(pub(crate) u64);

impl ResourceKey {
    /// The raw value (unique within a session).
    pub fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceKey({})", self.0)
    }
}

/// Something that holds resources on behalf of trackers (a linking layer's
/// memory, a lazy-reexports manager's stubs...).
pub trait ResourceManager: Send + Sync {
    /// Frees everything recorded for `key`. Called once per removed tracker,
    /// without the session lock, after its symbols left the dylib.
    fn handle_remove_resources(&self, dylib: &JitDylib, key: ResourceKey) -> Result<()>;

    /// Moves everything recorded for `src` to `dst`.
    fn handle_transfer_resources(&self, dylib: &JitDylib, dst: ResourceKey, src: ResourceKey);
}

/// A handle on a group of definitions in one dylib.
///
/// Dropping the handle does nothing: the definitions stay until the tracker
/// is removed, its dylib is removed or the session ends.
#[derive(Clone)]
pub struct ResourceTracker {
    pub(crate) dylib: JitDylib,
    pub(crate) key: ResourceKey,
}

impl ResourceTracker {
    /// The tracker's key.
    pub fn key(&self) -> ResourceKey {
        self.key
    }

    /// The dylib whose definitions this tracker groups.
    pub fn dylib(&self) -> &JitDylib {
        &self.dylib
    }

    /// Whether the tracker has been removed.
    pub fn is_defunct(&self) -> bool {
        !self.dylib.session.state.lock().tracker_live(self.key)
    }

    /// Removes every symbol defined under this tracker (later lookups get
    /// `SymbolsNotFound`; lookups waiting on them fail) and has every
    /// resource manager free what it holds for it. Removing twice is a
    /// no-op. Safe while other threads look up other symbols.
    pub fn remove(&self) -> Result<()> {
        let session = &self.dylib.session;
        let mut fx = Effects::default();
        session.state.lock().remove_tracker(self.key, &mut fx)?;
        session.run_effects(fx);
        Ok(())
    }

    /// Moves every definition and resource of this tracker to `dst`, which
    /// must belong to the same dylib. This tracker stays usable and empty.
    pub fn transfer_to(&self, dst: &ResourceTracker) -> Result<()> {
        if self.key == dst.key {
            return Ok(());
        }
        let session = &self.dylib.session;
        session.state.lock().transfer_tracker(self.key, dst.key)?;
        for manager in session.resource_managers() {
            manager.handle_transfer_resources(&self.dylib, dst.key, self.key);
        }
        Ok(())
    }
}

impl fmt::Debug for ResourceTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceTracker({}, {:?})", self.dylib.name(), self.key)
    }
}

impl PartialEq for ResourceTracker {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.dylib == other.dylib
    }
}

impl Eq for ResourceTracker {}

/// Frees the resources of removed trackers through every manager, newest
/// manager first (layers built on others are registered after them).
pub(crate) fn free_removed(
    session: &std::sync::Arc<SessionInner>,
    removed: Vec<(crate::state::DylibId, std::sync::Arc<str>, ResourceKey)>,
) {
    if removed.is_empty() {
        return;
    }
    let managers = session.resource_managers();
    for (dylib, name, key) in removed {
        let jd = JitDylib::from_parts(session.clone(), dylib, name);
        for manager in managers.iter().rev() {
            if let Err(e) = manager.handle_remove_resources(&jd, key) {
                session.report_error(&Error::other(format!(
                    "failed to free resources of a tracker of '{}': {e}",
                    jd.name()
                )));
            }
        }
    }
}

//! [`LinkSet`]: a fixed group of objects linked together as a static linker
//! would link the objects of one program, without a session. It is the
//! engine's own end-to-end driver (used by tests and tools) and the
//! reference for how a layer strings the phases together:
//!
//! 1. allocate every object, keeping the first copy of each COMDAT group;
//! 2. collect the definitions: two strong ones are a `DuplicateSymbol`
//!    error, a strong one beats weak/common ones, else the first is kept;
//! 3. apply every object against those definitions, then `fallback`;
//! 4. finalize every object.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::apply::SymbolResolver;
use super::atexit;
use super::elf::ObjectFile;
use super::error::LinkError;
use super::linked::LinkedObject;
use super::plugin::{self, LinkPlugin};
use crate::{ExecutorAddr, ExecutorSymbolDef};

/// Objects linked together; dropping the set unmaps them all.
pub struct LinkSet {
    objects: Vec<LinkedObject>,
    symbols: HashMap<String, ExecutorAddr>,
}

impl LinkSet {
    /// Links `objects` together; names none of them defines are looked up
    /// in `fallback` (typically the process's symbols). Runs the
    /// [`default_plugins`](plugin::default_plugins).
    pub fn link(objects: &[ObjectFile], fallback: &dyn SymbolResolver) -> Result<Self, LinkError> {
        Self::link_with_plugins(objects, fallback, &plugin::default_plugins())
    }

    /// [`link`](Self::link) with `plugins` watching every object's link.
    pub fn link_with_plugins(
        objects: &[ObjectFile],
        fallback: &dyn SymbolResolver,
        plugins: &[Arc<dyn LinkPlugin>],
    ) -> Result<Self, LinkError> {
        let mut kept_groups: HashSet<String> = HashSet::new();
        let mut allocated = Vec::with_capacity(objects.len());
        let mut winners: HashMap<String, (ExecutorSymbolDef, usize)> = HashMap::new();
        for (obj_idx, obj) in objects.iter().enumerate() {
            let dropped: HashSet<String> = obj
                .comdat_signatures()
                .filter(|s| kept_groups.contains(*s))
                .map(str::to_owned)
                .collect();
            kept_groups.extend(obj.comdat_signatures().map(str::to_owned));
            let alloc = obj.allocate(&dropped)?;
            plugin::run_allocated(plugins, &alloc)?;
            for (name, def) in alloc.symbols() {
                match winners.get(name) {
                    None => {
                        winners.insert(name.clone(), (*def, obj_idx));
                    }
                    Some((prev, prev_idx)) => {
                        if prev.flags.is_strong() && def.flags.is_strong() {
                            return Err(LinkError::DuplicateSymbol {
                                symbol: name.clone(),
                                first: objects
                                    .get(*prev_idx)
                                    .map(|o| o.name().to_owned())
                                    .unwrap_or_default(),
                                second: obj.name().to_owned(),
                            });
                        }
                        if !prev.flags.is_strong() && def.flags.is_strong() {
                            winners.insert(name.clone(), (*def, obj_idx));
                        }
                    }
                }
            }
            allocated.push(alloc);
        }
        let symbols: HashMap<String, ExecutorAddr> = winners
            .into_iter()
            .map(|(name, (def, _))| (name, def.addr))
            .collect();
        let resolver = |name: &str| {
            symbols
                .get(name)
                .copied()
                .or_else(|| fallback.resolve(name))
        };
        let mut linked = Vec::with_capacity(allocated.len());
        for alloc in allocated {
            linked.push(alloc.apply(&resolver)?.finalize_with(plugins)?);
        }
        Ok(LinkSet {
            objects: linked,
            symbols,
        })
    }

    /// The address of a symbol defined by one of the objects.
    pub fn lookup(&self, name: &str) -> Option<ExecutorAddr> {
        self.symbols.get(name).copied()
    }

    /// The linked objects, in the order given.
    pub fn objects(&self) -> &[LinkedObject] {
        &self.objects
    }

    /// Runs every object's initializers, in object order.
    ///
    /// # Safety
    ///
    /// Runs JIT'd code: see [`LinkedObject::run_initializers`].
    pub unsafe fn run_initializers(&self) {
        for obj in &self.objects {
            // SAFETY: forwarded contract.
            unsafe { obj.run_initializers() };
        }
    }

    /// Runs the exit handlers of all objects (newest first, across
    /// objects), then every object's finalizers in reverse object order.
    ///
    /// # Safety
    ///
    /// Runs JIT'd code: see [`LinkedObject::run_initializers`].
    pub unsafe fn shut_down(&self) {
        let all: Vec<&LinkedObject> = self.objects.iter().collect();
        // SAFETY: forwarded contract.
        unsafe {
            atexit::run_atexit_handlers(&all);
            for obj in self.objects.iter().rev() {
                obj.run_finalizers();
            }
        }
    }
}

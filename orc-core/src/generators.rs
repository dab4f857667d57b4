//! Definition generators over native code: symbols of the running process
//! (`dlsym`) and of a shared library loaded by path, each filtered by an
//! allow-predicate. Found symbols are defined as absolute symbols.

use std::sync::Arc;

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

use crate::absolute::absolute_symbols;
use crate::dylib::{DefinitionGenerator, JitDylib};
use crate::error::{Error, Result};
use crate::lookup::{JitDylibLookupFlags, LookupKind, SymbolLookupSet};
use crate::symbol::{ExecutorAddr, ExecutorSymbolDef, SymbolFlags, SymbolMap, SymbolName};

/// Decides which names a generator may define.
pub type AllowPredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Generates definitions from a `dlopen` handle.
pub struct DynamicLibrarySearchGenerator {
    library: Library,
    path: String,
    allow: Option<AllowPredicate>,
}

impl DynamicLibrarySearchGenerator {
    /// Searches the running process: the executable and every library
    /// loaded with global visibility (libc, libm...).
    pub fn process(allow: Option<AllowPredicate>) -> Self {
        DynamicLibrarySearchGenerator {
            library: Library::this(),
            path: "<process>".into(),
            allow,
        }
    }

    /// Loads the shared library at `path` (with global visibility, so later
    /// libraries and JIT'd code can use it) and searches it.
    pub fn load(path: &str, allow: Option<AllowPredicate>) -> Result<Self> {
        // SAFETY: loading a library runs its initializers. The caller asked
        // for exactly this library; that its constructors are sound is the
        // same trust a dynamic linker places in it.
        let library =
            unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| {
                Error::DynamicLibrary {
                    path: path.to_owned(),
                    message: e.to_string(),
                }
            })?;
        Ok(DynamicLibrarySearchGenerator {
            library,
            path: path.to_owned(),
            allow,
        })
    }

    /// The path the generator searches (`<process>` for the process).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The address of `name` in the library, if it has one.
    pub fn address_of(&self, name: &str) -> Option<ExecutorAddr> {
        if name.as_bytes().contains(&0) {
            return None;
        }
        // SAFETY: the symbol is only read as an address, never called or
        // dereferenced here; the library stays loaded while `self` lives.
        let sym = unsafe { self.library.get::<*const u8>(name.as_bytes()) }.ok()?;
        let addr = sym.into_raw() as *const u8;
        (!addr.is_null()).then(|| ExecutorAddr::from_ptr(addr))
    }
}

impl DefinitionGenerator for DynamicLibrarySearchGenerator {
    fn try_to_generate(
        &self,
        _kind: LookupKind,
        dylib: &JitDylib,
        _flags: JitDylibLookupFlags,
        names: &SymbolLookupSet,
    ) -> Result<()> {
        let mut found = SymbolMap::new();
        if let Some(target) = crate::remote::target() {
            // The code runs in the executor: its process's symbols count.
            let wanted: Vec<SymbolName> = names
                .names()
                .filter(|n| self.allow.as_ref().is_none_or(|allow| allow(n)))
                .cloned()
                .collect();
            let strings: Vec<String> = wanted.iter().map(|n| n.to_string()).collect();
            let library = (self.path != "<process>").then_some(self.path.as_str());
            let addrs = target
                .lookup(library, &strings)
                .map_err(|e| Error::other(format!("symbol lookup in the executor: {e}")))?;
            for (name, addr) in wanted.into_iter().zip(addrs) {
                if let Some(addr) = addr.filter(|&a| a != 0) {
                    found.insert(
                        name,
                        ExecutorSymbolDef::new(ExecutorAddr(addr), SymbolFlags::EXPORTED),
                    );
                }
            }
        }
        for name in names.names() {
            if crate::remote::target().is_some() {
                break;
            }
            if self.allow.as_ref().is_some_and(|allow| !allow(name)) {
                continue;
            }
            if let Some(addr) = self.address_of(name) {
                found.insert(
                    name.clone(),
                    ExecutorSymbolDef::new(addr, SymbolFlags::EXPORTED),
                );
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        match dylib.define(absolute_symbols(found), None) {
            // Someone defined one of the names meanwhile: theirs stands.
            Err(Error::DuplicateDefinition { .. }) => Ok(()),
            other => other,
        }
    }
}

impl std::fmt::Debug for DynamicLibrarySearchGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicLibrarySearchGenerator")
            .field("path", &self.path)
            .finish()
    }
}

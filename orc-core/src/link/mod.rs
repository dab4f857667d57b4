//! The JIT linker (orc's JITLink): loads relocatable ELF x86-64 objects
//! (gcc, g++, clang output) into this process.
//!
//! It is independent of the session and split into phases, so a layer can
//! publish an object's addresses ("resolved") before it looks up the
//! object's externals, which is what lets objects refer to each other in
//! cycles:
//!
//! 1. [`ObjectFile::parse`]: validate; the object's interface (defined
//!    symbols with [`SymbolFlags`](crate::SymbolFlags), COMDAT signatures,
//!    undefined symbols).
//! 2. [`ObjectFile::allocate`] -> [`AllocatedObject`]: one reservation,
//!    layout, GOT/PLT planning; every defined symbol's address is known.
//! 3. [`AllocatedObject::apply`] -> [`AppliedObject`]: externals bound
//!    through a [`SymbolResolver`], relocations applied.
//! 4. [`AppliedObject::finalize_with`] -> [`LinkedObject`]: memory
//!    published R / RX / RW.
//!
//! [`LinkPlugin`]s watch each stage (after allocation, after fixups, on
//! emit, on removal); `.eh_frame` registration is one
//! ([`EhFrameRegistrationPlugin`], among the [`default_plugins`]).
//!
//! [`LinkSet`] runs the four phases over a fixed group of objects.
//!
//! # Wiring into a session
//!
//! [`ObjectLinkingLayer`] does this; the steps, for another layer built on
//! the engine:
//!
//! - Define the object's [`defined_symbols`](ObjectFile::defined_symbols)
//!   as one materialization unit; keep, per dylib, the set of COMDAT
//!   signatures already kept, leave the symbols of groups another object
//!   kept out of the unit, and pass those signatures to `allocate`.
//! - After `allocate`, notify the session that
//!   [`AllocatedObject::symbols`] are resolved; then look up
//!   [`external_symbols`](AllocatedObject::external_symbols) in the
//!   dylib's search order (required state Resolved; weak ones optional),
//!   register the dependencies, `apply`, `finalize`, record the
//!   [`LinkedObject`] under the tracker, notify emitted. If the session chose
//!   another definition for one of this object's weak or common symbols
//!   (the unit was told to discard it), look that name up too: references
//!   bind to the resolver's address for it.
//! - Exit handlers: references to `atexit`, `__cxa_atexit` and
//!   `__dso_handle` are bound inside the linker (a handle per link), never
//!   looked up. On tracker removal or session end, for the objects going
//!   away call [`run_atexit_handlers`] (newest first across all of them),
//!   then each object's [`LinkedObject::run_finalizers`] in the reverse of
//!   the order their initializers ran in, then drop them. `Drop` alone never runs JIT'd code.
//!
//! Thread-local storage works in every model without a runtime library
//! (`tls_link.rs`); `-fno-PIC` code reaches data more than 2 GiB away
//! through thunks (`far.rs`).
//!
//! Architecture invariant: no page is writable and executable at once; only
//! [`crate::memory`] changes protections.
//! Architecture invariant: hostile object bytes give a [`LinkError`], never
//! a panic.

mod apply;
mod archive;
mod atexit;
mod copy;
mod eh_frame;
mod elf;
mod error;
mod far;
mod layer;
mod layout;
mod library;
mod linked;
mod plugin;
mod set;
mod tls;
mod tls_link;
pub(crate) mod x86_64;
mod x86_64_len;
mod x86_64_move;

pub use apply::{AppliedObject, SymbolResolver};
pub use archive::{select_archive_members, Archive};
pub use atexit::run_atexit_handlers;
pub use elf::{DefinedSymbol, ObjectFile, UndefinedSymbol};
pub use error::{LinkError, RelocationKind};
pub use layer::ObjectLinkingLayer;
pub use layout::AllocatedObject;
pub use library::{load_library, LibraryFile, LoadedLibrary};
pub use linked::LinkedObject;
pub use plugin::{
    default_plugins, EhFrameRegistrationPlugin, LinkPlugin, LinkSection, LinkSymbol, LinkView,
    PluginState,
};
pub use set::LinkSet;
pub(crate) use tls::module_info as tls_module_info;

/// Resolves names against everything loaded in the process
/// (`dlsym(RTLD_DEFAULT)`), including libraries loaded with
/// [`load_library`].
pub fn process_symbol(name: &str) -> Option<crate::ExecutorAddr> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads.
    let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, cname.as_ptr()) };
    (!addr.is_null()).then(|| crate::ExecutorAddr::from_ptr(addr))
}

//! Link plugins: code that watches (or vetoes) each object the linker
//! loads, at the stages of its link, as LLVM ORC's
//! `ObjectLinkingLayer::Plugin`.
//!
//! A [`LinkPlugin`] is called:
//! 1. [`allocated`](LinkPlugin::allocated): sections laid out, every
//!    address final, bytes copied in but not relocated;
//! 2. [`fixed_up`](LinkPlugin::fixed_up): relocations applied, bytes
//!    final, memory still writable (before protection);
//! 3. [`emitted`](LinkPlugin::emitted): memory published R / RX / RW; the
//!    plugin may return a [`PluginState`] kept with the linked object;
//! 4. [`removing`](LinkPlugin::removing): the object is being dropped,
//!    its memory still mapped; the plugin gets its state back.
//!
//! Each hook sees the object through a [`LinkView`]: its name and file
//! bytes, its loaded sections with final addresses and bytes, its defined
//! symbols (local ones too) with final addresses. A hook returning an
//! error fails the object's link.
//!
//! Registering `.eh_frame` with the unwinder is such a plugin
//! ([`EhFrameRegistrationPlugin`], in [`default_plugins`]); the debugger
//! and profiler support of [`crate::debug`] are others.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use orc_core::link::{LinkPlugin, LinkView, LinkError, PluginState};
//!
//! /// Records the functions of every linked object.
//! #[derive(Default)]
//! struct Functions(Mutex<Vec<(String, u64)>>);
//!
//! impl LinkPlugin for Functions {
//!     fn name(&self) -> &str {
//!         "functions"
//!     }
//!     fn emitted(&self, view: &LinkView<'_>) -> Result<Option<PluginState>, LinkError> {
//!         let mut seen = self.0.lock().unwrap();
//!         for f in view.symbols().filter(|s| s.is_function) {
//!             seen.push((f.name.to_owned(), f.addr));
//!         }
//!         Ok(None)
//!     }
//! }
//! # let _ = Arc::new(Functions::default());
//! ```

use std::any::Any;
use std::ops::Range;
use std::sync::Arc;

use super::eh_frame::{self, EhFrameRegistration};
use super::elf::{SectionRole, SymbolPlace};
use super::error::LinkError;
use super::layout::AllocatedObject;

/// What a plugin keeps for one linked object, from
/// [`emitted`](LinkPlugin::emitted) to [`removing`](LinkPlugin::removing).
pub type PluginState = Box<dyn Any + Send + Sync>;

/// Hooks at the stages of an object's link. Every hook has a default that
/// does nothing. Hooks run on the thread linking the object, with no lock
/// of the layer or session held; they must not run JIT'd code of the
/// object.
pub trait LinkPlugin: Send + Sync {
    /// A short name, used in errors.
    fn name(&self) -> &str;

    /// Sections laid out, addresses final, bytes not relocated yet.
    fn allocated(&self, _view: &LinkView<'_>) -> Result<(), LinkError> {
        Ok(())
    }

    /// Relocations applied: the bytes are final; memory not yet protected.
    fn fixed_up(&self, _view: &LinkView<'_>) -> Result<(), LinkError> {
        Ok(())
    }

    /// Memory published. What is returned is kept with the linked object
    /// and handed to [`removing`](Self::removing).
    fn emitted(&self, _view: &LinkView<'_>) -> Result<Option<PluginState>, LinkError> {
        Ok(None)
    }

    /// The object named `object` is being removed (its memory is still
    /// mapped, and is unmapped after every plugin's `removing` returned).
    /// Called only for objects whose `emitted` returned a state.
    fn removing(&self, _object: &str, _state: PluginState) {}
}

/// The plugins every link gets unless told otherwise: `.eh_frame`
/// registration.
pub fn default_plugins() -> Vec<Arc<dyn LinkPlugin>> {
    vec![Arc::new(EhFrameRegistrationPlugin)]
}

/// A loaded section of an object being linked.
#[derive(Clone, Copy, Debug)]
pub struct LinkSection<'a> {
    /// The section's index in the object's ELF section table.
    pub index: usize,
    /// Its name.
    pub name: &'a str,
    /// Its final address.
    pub addr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it holds code.
    pub executable: bool,
    /// Whether JIT'd code may write it.
    pub writable: bool,
}

/// A symbol an object being linked defines in one of its loaded sections.
#[derive(Clone, Copy, Debug)]
pub struct LinkSymbol<'a> {
    /// Its name (not empty).
    pub name: &'a str,
    /// Its final address.
    pub addr: u64,
    /// Its size from the symbol table (0 when unknown).
    pub size: u64,
    /// Whether it is a function (`STT_FUNC`).
    pub is_function: bool,
    /// Whether it is local to the object (`STB_LOCAL`).
    pub is_local: bool,
    /// The ELF index of its section.
    pub section: usize,
}

/// An object at one stage of its link, as plugins see it.
pub struct LinkView<'a> {
    alloc: &'a AllocatedObject,
}

impl<'a> LinkView<'a> {
    pub(crate) fn new(alloc: &'a AllocatedObject) -> Self {
        LinkView { alloc }
    }

    /// The object's name.
    pub fn name(&self) -> &'a str {
        &self.alloc.obj.name
    }

    /// The relocatable ELF file as given to the linker.
    pub fn object_bytes(&self) -> &'a [u8] {
        &self.alloc.obj.bytes
    }

    /// The range of the link's whole memory.
    pub fn memory_range(&self) -> Range<u64> {
        let base = self.alloc.memory.base();
        base..base + self.alloc.memory.len() as u64
    }

    /// The range of the link's code (its sections' and its PLT stubs').
    pub fn code_range(&self) -> Range<u64> {
        let base = self.alloc.memory.base();
        let (off, len) = self.alloc.code;
        base + off as u64..base + (off + len) as u64
    }

    /// The final address of section `index` (by ELF index), if loaded.
    pub fn section_address(&self, index: usize) -> Option<u64> {
        let off = self.alloc.section_offsets.get(index).copied().flatten()?;
        Some(self.alloc.memory.base() + off as u64)
    }

    /// The loaded sections, in ELF order.
    pub fn sections(&self) -> impl Iterator<Item = LinkSection<'a>> + '_ {
        let alloc = self.alloc;
        alloc
            .obj
            .sections
            .iter()
            .enumerate()
            .filter_map(move |(index, sec)| {
                let off = alloc.section_offsets.get(index).copied().flatten()?;
                Some(LinkSection {
                    index,
                    name: &sec.name,
                    addr: alloc.memory.base() + off as u64,
                    size: sec.size,
                    executable: sec.role == SectionRole::Code,
                    writable: sec.role == SectionRole::Data,
                })
            })
    }

    /// The bytes of section `index` in the link's memory, if it is loaded
    /// and readable now: before `emitted` every section, afterwards only
    /// those JIT'd code cannot write (code and read-only data).
    pub fn section_bytes(&self, index: usize) -> Option<&'a [u8]> {
        let off = self.alloc.section_offsets.get(index).copied().flatten()?;
        let size = usize::try_from(self.alloc.obj.sections.get(index)?.size).ok()?;
        self.alloc.memory.read(off, size)
    }

    /// The bytes at `addr..addr + len`, if they lie in the link's memory
    /// and are readable now (see [`section_bytes`](Self::section_bytes)).
    pub fn bytes_at(&self, addr: u64, len: usize) -> Option<&'a [u8]> {
        let off = usize::try_from(addr.checked_sub(self.alloc.memory.base())?).ok()?;
        self.alloc.memory.read(off, len)
    }

    /// The symbols defined in loaded sections, local ones included, in
    /// symbol-table order (section and file symbols left out).
    pub fn symbols(&self) -> impl Iterator<Item = LinkSymbol<'a>> + '_ {
        let alloc = self.alloc;
        alloc.obj.symbols.iter().filter_map(move |sym| {
            let SymbolPlace::Section(sec) = sym.place else {
                return None;
            };
            if sym.name.is_empty()
                || sym.kind == object::elf::STT_SECTION
                || sym.kind == object::elf::STT_FILE
            {
                return None;
            }
            let off = alloc.section_offsets.get(sec).copied().flatten()?;
            Some(LinkSymbol {
                name: &sym.name,
                addr: alloc.memory.base() + off as u64 + sym.value,
                size: sym.size,
                is_function: sym.kind == object::elf::STT_FUNC,
                is_local: sym.is_local(),
                section: sec,
            })
        })
    }

    /// The functions of the object's code with their extents: a function
    /// whose symbol has no size ends where the next one starts (or the code
    /// does). Sorted by address.
    pub fn functions(&self) -> Vec<(LinkSymbol<'a>, Range<u64>)> {
        let code = self.code_range();
        let mut funcs: Vec<LinkSymbol<'a>> = self
            .symbols()
            .filter(|s| s.is_function && code.contains(&s.addr))
            .collect();
        funcs.sort_by_key(|s| s.addr);
        let starts: Vec<u64> = funcs.iter().map(|f| f.addr).collect();
        funcs
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let end = if f.size > 0 {
                    f.addr.saturating_add(f.size).min(code.end)
                } else {
                    starts
                        .get(i + 1..)
                        .and_then(|s| s.iter().find(|&&s| s > f.addr).copied())
                        .unwrap_or(code.end)
                };
                (f, f.addr..end)
            })
            .collect()
    }

    /// The `.eh_frame` sections: address and length (without the zero
    /// terminator layout puts after each).
    pub(crate) fn eh_frames(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        let base = self.alloc.memory.base();
        self.alloc
            .eh_frames
            .iter()
            .map(move |&(off, len)| (base + off as u64, len))
    }
}

/// Runs every plugin's [`allocated`](LinkPlugin::allocated) hook.
pub(crate) fn run_allocated(
    plugins: &[Arc<dyn LinkPlugin>],
    alloc: &AllocatedObject,
) -> Result<(), LinkError> {
    let view = LinkView::new(alloc);
    plugins.iter().try_for_each(|p| p.allocated(&view))
}

/// Runs every plugin's [`fixed_up`](LinkPlugin::fixed_up) hook.
pub(crate) fn run_fixed_up(
    plugins: &[Arc<dyn LinkPlugin>],
    alloc: &AllocatedObject,
) -> Result<(), LinkError> {
    let view = LinkView::new(alloc);
    plugins.iter().try_for_each(|p| p.fixed_up(&view))
}

/// The states plugins keep for one linked object; dropping it calls their
/// [`removing`](LinkPlugin::removing) hooks, last registered first.
#[derive(Default)]
pub(crate) struct PluginStates {
    object: String,
    states: Vec<(Arc<dyn LinkPlugin>, PluginState)>,
}

impl PluginStates {
    /// Runs every plugin's [`emitted`](LinkPlugin::emitted) hook. On an
    /// error, the states collected so far are handed back (dropped).
    pub(crate) fn emit(
        plugins: &[Arc<dyn LinkPlugin>],
        alloc: &AllocatedObject,
    ) -> Result<Self, LinkError> {
        let view = LinkView::new(alloc);
        let mut states = PluginStates {
            object: alloc.obj.name.clone(),
            states: Vec::new(),
        };
        for p in plugins {
            if let Some(state) = p.emitted(&view)? {
                states.states.push((p.clone(), state));
            }
        }
        Ok(states)
    }
}

impl Drop for PluginStates {
    fn drop(&mut self) {
        while let Some((plugin, state)) = self.states.pop() {
            plugin.removing(&self.object, state);
        }
    }
}

/// Registers each object's `.eh_frame` with the system unwinder (libgcc's
/// `__register_frame`) once its memory is published, and deregisters it
/// on removal. It validates the relocated sections first: a section that
/// does not parse, or whose entries describe code outside the object,
/// fails the link.
#[derive(Clone, Copy, Debug, Default)]
pub struct EhFrameRegistrationPlugin;

impl LinkPlugin for EhFrameRegistrationPlugin {
    fn name(&self) -> &str {
        "eh-frame"
    }

    fn emitted(&self, view: &LinkView<'_>) -> Result<Option<PluginState>, LinkError> {
        let mut registered = Vec::new();
        for (addr, len) in view.eh_frames() {
            // Readable now only if published read-only: its bytes are final.
            let bytes = view
                .bytes_at(addr, len + 4)
                .ok_or_else(|| LinkError::malformed(view.name(), "eh_frame out of place"))?;
            let (section, terminator) = bytes.split_at(len);
            if terminator != [0; 4] {
                return Err(LinkError::malformed(view.name(), "eh_frame not terminated"));
            }
            eh_frame::validate(view.name(), section, addr, view.code_range())?;
            // SAFETY: the section was just validated, is followed by a zero
            // 4-byte terminator (checked), lives in the read-only segment
            // (the view reads published memory only there), and stays
            // mapped until the registration is dropped: the state is
            // dropped by `removing`, which runs before the memory is
            // unmapped.
            if let Some(reg) = unsafe { EhFrameRegistration::register(addr as usize as *const u8) }
            {
                registered.push(reg);
            }
        }
        Ok((!registered.is_empty()).then(|| Box::new(registered) as PluginState))
    }

    fn removing(&self, _object: &str, state: PluginState) {
        drop(state);
    }
}

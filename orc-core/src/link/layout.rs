//! The allocate phase: decides which sections load (dropping COMDAT groups
//! kept elsewhere), what each symbol a relocation names will bind to, which
//! GOT entries and PLT stubs are needed, lays everything out in one
//! reservation of three page-aligned segments (RX, R, RW) and copies the
//! section bytes in. Afterwards every defined symbol's address is known.
//!
//! Memory layout of one link:
//! - RX: code sections in file order, then PLT stubs, then the `atexit`
//!   thunk (only if the object calls `atexit`), then the thunks of moved
//!   TLS instructions and those reserved for far data;
//! - R: read-only data (`.rodata*`, `.data.rel.ro*`, merged strings,
//!   `.gcc_except_table`), the init/fini arrays, each `.eh_frame` followed
//!   by a zero terminator, the TLS template (`.tdata` as laid out in the
//!   per-thread block; `.tbss` takes no memory here), the TLS entries and
//!   runtime pointer (`tls_link.rs`), the GOT, and this link's
//!   `__dso_handle` slot;
//! - RW: writable data and bss in file order, then common symbols.
//!
//! Invariants: everything a relocation can reach is in the one reservation
//! (below 1 GiB in total) or bound through a GOT entry / PLT stub; objects
//! with 32-bit absolute relocations against their own memory are placed in
//! the low 2 GiB.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use object::elf;

use super::elf::{
    ObjectData, ObjectFile, SectionRole, SymbolPlace, UndefinedSymbol, MAX_SECTION_SIZE,
};
use super::error::LinkError;
use super::far::{self, FarThunks};
use super::tls_link::{self, TlsLink, TlsPlan};
use super::x86_64;
use crate::memory::{LinkMemory, Placement, SegmentProtection};
use crate::{ExecutorAddr, ExecutorSymbolDef, SymbolFlags};

/// What a symbol named by a relocation binds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Symbol 0: the value 0.
    Zero,
    /// A symbol in a loaded section of this object.
    Section {
        sec: usize,
        value: u64,
        overridable: bool,
    },
    /// An absolute symbol.
    Absolute(u64),
    /// A common symbol, at index `slot` of the link's commons.
    Common(usize),
    /// Resolved by name in the apply phase.
    External { weak: bool },
    /// `_GLOBAL_OFFSET_TABLE_`.
    GotBase,
    /// `__dso_handle`: this link's handle slot.
    DsoHandle,
    /// `atexit`: this link's thunk.
    AtexitThunk,
    /// `__cxa_atexit`: the recorder in the host.
    CxaAtexit,
    /// In a section that is not loaded: relocations against it are ignored.
    Ignored,
    /// A thread-local symbol of this object: `value` in TLS section `sec`.
    Tls {
        sec: usize,
        value: u64,
        overridable: bool,
    },
    /// `_TLS_MODULE_BASE_`: offset 0 of this object's TLS block.
    TlsModuleBase,
    /// `__tls_get_addr`: the TLS runtime's.
    TlsGetAddr,
    /// In an unknown special section: cannot be referenced.
    Unsupported,
}

impl Target {
    /// Whether the target may end up beyond ±2 GiB of this link.
    fn may_be_far(self) -> bool {
        matches!(
            self,
            Target::External { .. }
                | Target::CxaAtexit
                | Target::TlsGetAddr
                | Target::Common(_)
                | Target::Section {
                    overridable: true,
                    ..
                }
        )
    }
}

/// An object whose memory is reserved and laid out, not yet relocated.
///
/// Produced by [`ObjectFile::allocate`]; continue with
/// [`apply`](AllocatedObject::apply).
pub struct AllocatedObject {
    pub(crate) obj: Arc<ObjectData>,
    /// Thunks reserved for far-data references (see `far.rs`).
    pub(crate) far: FarThunks,
    /// Thread-local storage (declared before `memory`: its module reads
    /// the template in `memory` and is dropped first).
    pub(crate) tls: Option<TlsLink>,
    pub(crate) memory: LinkMemory,
    /// Offset in the mapping of each loaded section, by section index.
    pub(crate) section_offsets: Vec<Option<usize>>,
    pub(crate) targets: Vec<Target>,
    /// Whether a relocation of a loaded section names the symbol.
    pub(crate) used: Vec<bool>,
    /// Offsets in the mapping of the commons, by slot.
    pub(crate) commons: Vec<usize>,
    /// GOT slot of a symbol, by symbol index.
    pub(crate) got_slots: HashMap<usize, usize>,
    /// PLT stub of a symbol, by symbol index.
    pub(crate) stubs: HashMap<usize, usize>,
    pub(crate) got_offset: usize,
    pub(crate) n_got: usize,
    pub(crate) stubs_offset: usize,
    pub(crate) atexit_thunk: Option<usize>,
    pub(crate) dso_offset: usize,
    /// `.eh_frame` sections: offset in the mapping and length (without the
    /// terminator).
    pub(crate) eh_frames: Vec<(usize, usize)>,
    /// Init/fini sections in execution-relevant order (see `linked.rs`).
    pub(crate) init_sections: Vec<usize>,
    pub(crate) fini_sections: Vec<usize>,
    pub(crate) code: (usize, usize),
    pub(crate) symbols: HashMap<String, ExecutorSymbolDef>,
    pub(crate) externals: Vec<UndefinedSymbol>,
    pub(crate) placement: Placement,
    /// Copies of far read-only data (see `copy.rs`), made in the apply phase.
    pub(crate) copies: Option<LinkMemory>,
}

impl ObjectFile {
    /// The allocate phase. `dropped_comdats` are the signatures of COMDAT
    /// groups already kept by another object of the same dylib: this
    /// object's copies are not loaded, and its references to their symbols
    /// become external.
    pub fn allocate(
        &self,
        dropped_comdats: &HashSet<String>,
    ) -> Result<AllocatedObject, LinkError> {
        allocate(&self.data, dropped_comdats)
    }
}

impl AllocatedObject {
    /// The object's name.
    pub fn name(&self) -> &str {
        &self.obj.name
    }

    /// The address and flags of every global and weak symbol this link
    /// defines (not those of dropped COMDAT groups), commons included.
    pub fn symbols(&self) -> &HashMap<String, ExecutorSymbolDef> {
        &self.symbols
    }

    /// The symbols the apply phase will ask the resolver for: undefined
    /// symbols referenced by loaded sections, and the symbols of dropped
    /// COMDAT groups. `weak` references may stay unresolved (address 0).
    pub fn external_symbols(&self) -> &[UndefinedSymbol] {
        &self.externals
    }

    /// The link's `__dso_handle`, the key of its exit handlers.
    pub fn dso_handle(&self) -> ExecutorAddr {
        ExecutorAddr(self.memory.base() + self.dso_offset as u64)
    }

    pub(crate) fn addr(&self, offset: usize) -> u64 {
        self.memory.base() + offset as u64
    }
}

fn align_up(value: u64, align: u64) -> Option<u64> {
    let mask = align.max(1).checked_sub(1)?;
    value.checked_add(mask).map(|v| v & !mask)
}

/// A segment being laid out: its length so far.
#[derive(Default)]
struct SegmentBuilder {
    len: u64,
}

impl SegmentBuilder {
    fn place(&mut self, object: &str, size: u64, align: u64) -> Result<u64, LinkError> {
        let at = align_up(self.len, align).ok_or_else(|| too_large(object))?;
        self.len = at
            .checked_add(size)
            .filter(|&l| l <= MAX_SECTION_SIZE)
            .ok_or_else(|| too_large(object))?;
        Ok(at)
    }
}

fn too_large(object: &str) -> LinkError {
    LinkError::malformed(object, "object too large to load (at most 1 GiB)")
}

fn init_priority(name: &str, role: SectionRole) -> u32 {
    let suffix = name.rsplit_once('.').map(|(_, s)| s).unwrap_or("");
    match (suffix.parse::<u32>(), role) {
        (Ok(n), SectionRole::Ctors | SectionRole::Dtors) => 65535u32.saturating_sub(n),
        (Ok(n), _) => n,
        (Err(_), _) => u32::MAX,
    }
}

fn allocate(
    obj: &Arc<ObjectData>,
    dropped: &HashSet<String>,
) -> Result<AllocatedObject, LinkError> {
    let name = obj.name.as_str();
    let group_dropped = |g: Option<usize>| {
        g.and_then(|g| obj.groups.get(g))
            .is_some_and(|g| dropped.contains(&g.signature))
    };
    let kept: Vec<bool> = obj
        .sections
        .iter()
        .map(|s| s.role != SectionRole::Skipped && !group_dropped(s.group))
        .collect();
    let is_kept = |i: usize| kept.get(i).copied().unwrap_or(false);

    // What each symbol binds to.
    let mut commons_needed = Vec::new();
    let mut targets = Vec::with_capacity(obj.symbols.len());
    for (idx, sym) in obj.symbols.iter().enumerate() {
        let global = !sym.is_local();
        let t = match sym.place {
            _ if idx == 0 => Target::Zero,
            SymbolPlace::Section(i) if is_kept(i) => {
                if global && sym.kind == elf::STT_GNU_IFUNC {
                    return Err(LinkError::unsupported(
                        name,
                        format!("GNU indirect function {}", sym.name),
                    ));
                }
                let tls_section = obj
                    .sections
                    .get(i)
                    .is_some_and(|s| s.role == SectionRole::Tls);
                if tls_section {
                    Target::Tls {
                        sec: i,
                        value: sym.value,
                        overridable: global && sym.bind == elf::STB_WEAK,
                    }
                } else if sym.kind == elf::STT_TLS {
                    Target::Unsupported
                } else {
                    Target::Section {
                        sec: i,
                        value: sym.value,
                        overridable: global && sym.bind == elf::STB_WEAK,
                    }
                }
            }
            SymbolPlace::Section(i) => {
                let sec = obj.sections.get(i);
                if global && sec.is_some_and(|s| group_dropped(s.group)) {
                    Target::External { weak: false }
                } else {
                    Target::Ignored
                }
            }
            SymbolPlace::Absolute => Target::Absolute(sym.value),
            SymbolPlace::Common => {
                commons_needed.push(idx);
                Target::Common(commons_needed.len() - 1)
            }
            SymbolPlace::Undefined => match sym.name.as_str() {
                "_GLOBAL_OFFSET_TABLE_" => Target::GotBase,
                "__dso_handle" => Target::DsoHandle,
                "atexit" => Target::AtexitThunk,
                "__cxa_atexit" => Target::CxaAtexit,
                "__tls_get_addr" => Target::TlsGetAddr,
                "_TLS_MODULE_BASE_" => Target::TlsModuleBase,
                _ => Target::External {
                    weak: sym.bind == elf::STB_WEAK,
                },
            },
            SymbolPlace::Other => Target::Unsupported,
        };
        targets.push(t);
    }

    // What the relocations need.
    let mut got_slots: HashMap<usize, usize> = HashMap::new();
    let mut stubs: HashMap<usize, usize> = HashMap::new();
    let mut placement = Placement::Anywhere;
    let mut atexit_used = false;
    let mut externals: Vec<UndefinedSymbol> = Vec::new();
    let mut external_idx: HashMap<&str, usize> = HashMap::new();
    let mut used = vec![false; targets.len()];
    let mut tls = TlsPlan::default();
    let mut far_slots = HashMap::new();
    for (sec_idx, sec) in obj.sections.iter().enumerate() {
        if !is_kept(sec_idx) {
            continue;
        }
        for r in &sec.relocs {
            if r.kind == elf::R_X86_64_NONE {
                continue;
            }
            let t = targets.get(r.sym).copied().unwrap_or(Target::Zero);
            let tls_kind = tls_link::is_tls_kind(r.kind);
            if tls_kind {
                tls.add_reloc(r.kind, r.sym, r.addend, t);
            } else if matches!(t, Target::Tls { .. } | Target::TlsModuleBase) {
                let sym = obj.symbols.get(r.sym).map(|s| s.name.as_str());
                return Err(LinkError::unsupported(
                    name,
                    format!(
                        "relocation {} at offset {:#x} in section {} against thread-local symbol {}",
                        super::error::RelocationKind(r.kind),
                        r.offset,
                        sec.name,
                        sym.unwrap_or("?")
                    ),
                ));
            }
            match t {
                Target::Ignored => continue,
                Target::Unsupported => {
                    let sym = obj
                        .symbols
                        .get(r.sym)
                        .map(|s| s.name.as_str())
                        .unwrap_or("?");
                    return Err(LinkError::unsupported(
                        name,
                        format!(
                            "reference to special symbol {sym} from section {}",
                            sec.name
                        ),
                    ));
                }
                Target::External { weak } => {
                    let sym_name = obj
                        .symbols
                        .get(r.sym)
                        .map(|s| s.name.as_str())
                        .unwrap_or("");
                    match external_idx.get(sym_name) {
                        Some(&i) => {
                            if let Some(e) = externals.get_mut(i) {
                                e.weak &= weak;
                            }
                        }
                        None => {
                            external_idx.insert(sym_name, externals.len());
                            externals.push(UndefinedSymbol {
                                name: sym_name.to_owned(),
                                weak,
                            });
                        }
                    }
                }
                Target::AtexitThunk => atexit_used = true,
                _ => {}
            }
            if let Some(u) = used.get_mut(r.sym) {
                *u = true;
            }
            if far::may_move(r.kind) && sec.role == SectionRole::Code && t.may_be_far() {
                let n = far_slots.len();
                far_slots.insert((sec_idx, r.offset), n);
            }
            let n_got = got_slots.len();
            if x86_64::needs_got(r.kind) {
                got_slots.entry(r.sym).or_insert(n_got);
            }
            let canonical =
                x86_64::may_use_canonical_stub(r.kind) && matches!(t, Target::External { .. });
            if (x86_64::may_use_stub(r.kind) || canonical) && t.may_be_far() {
                let n_got = got_slots.len();
                got_slots.entry(r.sym).or_insert(n_got);
                let n_stubs = stubs.len();
                stubs.entry(r.sym).or_insert(n_stubs);
            }
            if x86_64::is_absolute32(r.kind)
                && !matches!(
                    t,
                    Target::Zero | Target::Absolute(_) | Target::External { .. }
                )
            {
                placement = Placement::Low2GiB;
            }
        }
    }

    // Layout.
    let mut rx = SegmentBuilder::default();
    let mut ro = SegmentBuilder::default();
    let mut rw = SegmentBuilder::default();
    // (segment 0/1/2, offset in segment) per loaded section.
    let mut placed: Vec<Option<(usize, u64)>> = vec![None; obj.sections.len()];
    let mut eh_local = Vec::new();
    let mut tls_sections = Vec::new();
    let mut inits = Vec::new();
    let mut finis = Vec::new();
    for (i, sec) in obj.sections.iter().enumerate() {
        if !is_kept(i) {
            continue;
        }
        let (seg_idx, builder, extra) = match sec.role {
            SectionRole::Code => (0, &mut rx, 0),
            SectionRole::ReadOnly => (1, &mut ro, 0),
            SectionRole::InitArray | SectionRole::Ctors => {
                inits.push((init_priority(&sec.name, sec.role), i));
                (1, &mut ro, 0)
            }
            SectionRole::FiniArray | SectionRole::Dtors => {
                finis.push((init_priority(&sec.name, sec.role), i));
                (1, &mut ro, 0)
            }
            SectionRole::EhFrame => (1, &mut ro, 4),
            SectionRole::Data => (2, &mut rw, 0),
            SectionRole::Skipped => continue,
            SectionRole::Tls => {
                tls_sections.push((i, sec.size, sec.align, sec.file_range.is_none()));
                continue;
            }
        };
        let size = sec.size.checked_add(extra).ok_or_else(|| too_large(name))?;
        let at = builder.place(name, size, sec.align)?;
        if sec.role == SectionRole::EhFrame {
            eh_local.push((at, sec.size));
        }
        if let Some(p) = placed.get_mut(i) {
            *p = Some((seg_idx, at));
        }
    }
    let code_len = rx.len;
    let stubs_at = rx.place(name, stubs.len() as u64 * x86_64::STUB_SIZE, 16)?;
    let thunk_at = if atexit_used {
        Some(rx.place(name, x86_64::ATEXIT_THUNK_SIZE, 16)?)
    } else {
        None
    };
    // TLS: the template (the initialized sections, laid out as in the
    // block), the entries and the runtime pointer; thunks after the stubs.
    tls.lay_out_block(name, &tls_sections, obj.sections.len())?;
    for (i, sym) in obj.symbols.iter().enumerate() {
        if !sym.is_local() && matches!(targets.get(i), Some(Target::Tls { .. })) {
            tls.add_entry(tls_link::EntryKey::Symbol { sym: i, extra: 0 });
        }
    }
    let uses_tls = tls.has_sections || !tls.entries.is_empty();
    let template_at = ro.place(name, tls.init_len, tls.block_align)?;
    for &(i, _, _, nobits) in &tls_sections {
        if let (false, Some(Some(off)), Some(p)) =
            (nobits, tls.block_offsets.get(i), placed.get_mut(i))
        {
            *p = Some((1, template_at + off));
        }
    }
    let entries_at = ro.place(name, tls.entries.len() as u64 * tls_link::ENTRY_SIZE, 8)?;
    let core_slot_at = ro.place(name, if uses_tls { 16 } else { 0 }, 8)?;
    let thunks_at = rx.place(
        name,
        tls.n_thunks as u64 * super::x86_64_move::TLS_THUNK_SIZE,
        16,
    )?;
    let far_at = rx.place(
        name,
        far_slots.len() as u64 * super::x86_64_move::FAR_THUNK_SIZE,
        16,
    )?;
    let got_at = ro.place(name, got_slots.len() as u64 * 8, 8)?;
    let dso_at = ro.place(name, 8, 8)?;
    let mut common_local = Vec::with_capacity(commons_needed.len());
    for &idx in &commons_needed {
        let sym = obj.symbols.get(idx);
        let size = sym.map(|s| s.size).unwrap_or(0);
        let align = sym.map(|s| s.value).unwrap_or(1).max(1);
        if !align.is_power_of_two() || align > crate::memory::page_size() as u64 {
            return Err(LinkError::malformed(
                name,
                format!("common symbol alignment {align}"),
            ));
        }
        common_local.push(rw.place(name, size, align)?);
    }
    let total = rx.len.saturating_add(ro.len).saturating_add(rw.len);
    if total > MAX_SECTION_SIZE {
        return Err(too_large(name));
    }
    let memory = LinkMemory::reserve(
        &[
            (SegmentProtection::ReadExec, rx.len as usize),
            (SegmentProtection::Read, ro.len as usize),
            (SegmentProtection::ReadWrite, rw.len as usize),
        ],
        placement,
    )
    .map_err(|source| LinkError::Memory {
        object: name.to_owned(),
        action: "reserving memory",
        source,
    })?;
    let seg_base: Vec<usize> = memory.segments().iter().map(|s| s.offset).collect();
    let abs = |seg: usize, at: u64| seg_base.get(seg).copied().unwrap_or(0) + at as usize;

    let section_offsets: Vec<Option<usize>> = placed
        .iter()
        .map(|p| p.map(|(seg, at)| abs(seg, at)))
        .collect();
    let tls = uses_tls.then(|| TlsLink {
        plan: tls,
        module: None,
        entries_offset: abs(1, entries_at),
        core_slot: abs(1, core_slot_at),
        thunks_offset: abs(0, thunks_at),
    });
    let mut alloc = AllocatedObject {
        obj: obj.clone(),
        far: FarThunks {
            slots: far_slots,
            offset: abs(0, far_at),
        },
        tls,
        memory,
        section_offsets,
        targets,
        used,
        commons: common_local.iter().map(|&at| abs(2, at)).collect(),
        got_slots,
        stubs,
        got_offset: abs(1, got_at),
        n_got: 0,
        stubs_offset: abs(0, stubs_at),
        atexit_thunk: thunk_at.map(|at| abs(0, at)),
        dso_offset: abs(1, dso_at),
        eh_frames: eh_local
            .iter()
            .map(|&(at, len)| (abs(1, at), len as usize))
            .collect(),
        init_sections: Vec::new(),
        fini_sections: Vec::new(),
        code: (abs(0, 0), code_len as usize),
        symbols: HashMap::new(),
        externals,
        placement,
        copies: None,
    };
    alloc.n_got = alloc.got_slots.len();
    inits.sort_by_key(|&(prio, i)| (prio, i));
    finis.sort_by_key(|&(prio, i)| (prio, i));
    alloc.init_sections = inits.into_iter().map(|(_, i)| i).collect();
    alloc.fini_sections = finis.into_iter().map(|(_, i)| i).collect();
    copy_sections(&mut alloc)?;
    tls_link::register(&mut alloc, abs(1, template_at))?;
    alloc.symbols = defined_addresses(&alloc);
    Ok(alloc)
}

fn copy_sections(alloc: &mut AllocatedObject) -> Result<(), LinkError> {
    let obj = alloc.obj.clone();
    let bytes = alloc
        .memory
        .bytes_mut()
        .ok_or_else(|| LinkError::malformed(&obj.name, "memory already published"))?;
    for (sec, offset) in obj.sections.iter().zip(&alloc.section_offsets) {
        let (Some(offset), Some(range)) = (offset, &sec.file_range) else {
            continue;
        };
        let src = obj.bytes.get(range.clone());
        let dst = bytes.get_mut(*offset..offset.saturating_add(range.len()));
        match (src, dst) {
            (Some(src), Some(dst)) => dst.copy_from_slice(src),
            _ => {
                return Err(LinkError::malformed(
                    &obj.name,
                    format!("section {} does not fit", sec.name),
                ))
            }
        }
    }
    Ok(())
}

/// The local address of a target, if it lives in (or at a fixed place
/// relative to) this link.
pub(crate) fn local_address(alloc: &AllocatedObject, t: Target) -> Option<u64> {
    match t {
        Target::Zero => Some(0),
        Target::Section { sec, value, .. } => {
            let off = alloc.section_offsets.get(sec).copied().flatten()?;
            Some(alloc.addr(off).wrapping_add(value))
        }
        Target::Absolute(v) => Some(v),
        Target::Common(slot) => alloc.commons.get(slot).map(|&off| alloc.addr(off)),
        Target::GotBase => Some(alloc.addr(alloc.got_offset)),
        Target::DsoHandle => Some(alloc.addr(alloc.dso_offset)),
        Target::AtexitThunk => alloc.atexit_thunk.map(|off| alloc.addr(off)),
        Target::CxaAtexit => Some(super::atexit::recorder_address()),
        Target::TlsGetAddr => Some(super::tls::get_addr()),
        Target::External { .. }
        | Target::Ignored
        | Target::Unsupported
        | Target::Tls { .. }
        | Target::TlsModuleBase => None,
    }
}

fn defined_addresses(alloc: &AllocatedObject) -> HashMap<String, ExecutorSymbolDef> {
    let obj = &alloc.obj;
    let flags_of: HashMap<&str, SymbolFlags> = obj
        .defined
        .iter()
        .map(|d| (d.name.as_str(), d.flags))
        .collect();
    let mut out = HashMap::new();
    for (idx, (sym, &t)) in obj.symbols.iter().zip(&alloc.targets).enumerate() {
        if sym.is_local()
            || sym.name.is_empty()
            || !matches!(
                t,
                Target::Section { .. }
                    | Target::Absolute(_)
                    | Target::Common(_)
                    | Target::Tls { .. }
            )
        {
            continue;
        }
        let addr = match t {
            Target::Tls { .. } => tls_link::published_address(alloc, idx),
            _ => local_address(alloc, t),
        };
        let (Some(addr), Some(&flags)) = (addr, flags_of.get(sym.name.as_str())) else {
            continue;
        };
        out.entry(sym.name.clone())
            .or_insert(ExecutorSymbolDef::new(ExecutorAddr(addr), flags));
    }
    out
}

//! Thread-local storage in the linker: planning (allocate phase) and the
//! TLS relocations (apply phase). The runtime is `tls.rs`; instruction
//! rewriting for the exec models is `x86_64_move.rs`.
//!
//! A link with `.tdata`/`.tbss` is one TLS module: its TLS sections form a
//! block (`.tdata` first, then `.tbss`) whose initialized part, the
//! template, lives in the link's read-only segment, where relocations of
//! `.tdata` apply as to any section. Every `{symbol, offset}` a TLS
//! relocation names gets an *entry* in the read-only segment:
//! `{descriptor function, module, offset}`. A thread-local symbol this
//! link defines is published at the address of its entry, so other links
//! find its `{module, offset}` by that address (`tls::published`).
//!
//! - `TLSGD`/`TLSLD`: the field points at the entry's `{module, offset}`
//!   (a GOT pair for `__tls_get_addr`, which binds to the runtime);
//!   `DTPOFF32/64` are offsets in this module's block.
//! - `GOTPC32_TLSDESC`: the field points at the entry, a TLS descriptor;
//!   `TLSDESC_CALL` needs nothing.
//! - `GOTTPOFF`, `TPOFF32`, `TPOFF64`: the instruction moves to a thunk
//!   (after every other relocation of the link is applied, so the moved
//!   bytes are final).

use std::collections::HashMap;

use object::elf::*;

use super::error::{LinkError, RelocationKind};
use super::layout::{AllocatedObject, Target};
use super::tls::{self, TlsModule};
use super::x86_64_move;

/// The size of one entry: descriptor function, module, offset.
pub(crate) const ENTRY_SIZE: u64 = 24;

/// What an entry stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum EntryKey {
    /// A symbol (by index) plus a constant offset.
    Symbol { sym: usize, extra: i64 },
    /// Offset 0 of this link's module (local dynamic, `_TLS_MODULE_BASE_`).
    ModuleBase,
}

/// Whether the relocation is one of the TLS types.
pub(crate) fn is_tls_kind(kind: u32) -> bool {
    matches!(
        kind,
        R_X86_64_TLSGD
            | R_X86_64_TLSLD
            | R_X86_64_DTPOFF32
            | R_X86_64_DTPOFF64
            | R_X86_64_GOTTPOFF
            | R_X86_64_TPOFF32
            | R_X86_64_TPOFF64
            | R_X86_64_GOTPC32_TLSDESC
            | R_X86_64_TLSDESC_CALL
    )
}

fn needs_thunk(kind: u32) -> bool {
    matches!(
        kind,
        R_X86_64_GOTTPOFF | R_X86_64_TPOFF32 | R_X86_64_TPOFF64
    )
}

/// The entry a TLS relocation uses, if any.
pub(crate) fn entry_key(kind: u32, sym: usize, addend: i64, target: Target) -> Option<EntryKey> {
    let sym_key = |extra| {
        if target == Target::TlsModuleBase {
            EntryKey::ModuleBase
        } else {
            EntryKey::Symbol { sym, extra }
        }
    };
    match kind {
        R_X86_64_TLSLD => Some(EntryKey::ModuleBase),
        R_X86_64_TLSGD | R_X86_64_GOTTPOFF | R_X86_64_GOTPC32_TLSDESC => Some(sym_key(0)),
        R_X86_64_TPOFF32 | R_X86_64_TPOFF64 => Some(sym_key(addend)),
        // Local dynamic naming another object's variable: moved (below).
        R_X86_64_DTPOFF32 if matches!(target, Target::External { .. }) => Some(sym_key(addend)),
        _ => None,
    }
}

/// What the allocate phase decided about TLS for one link.
#[derive(Default)]
pub(crate) struct TlsPlan {
    /// Offset in the TLS block of each TLS section, by section index.
    pub(crate) block_offsets: Vec<Option<u64>>,
    /// The length of the initialized part and of the whole block.
    pub(crate) init_len: u64,
    pub(crate) block_len: u64,
    pub(crate) block_align: u64,
    pub(crate) has_sections: bool,
    pub(crate) entries: Vec<EntryKey>,
    pub(crate) entry_index: HashMap<EntryKey, usize>,
    pub(crate) n_thunks: usize,
}

impl TlsPlan {
    pub(crate) fn add_entry(&mut self, key: EntryKey) {
        if !self.entry_index.contains_key(&key) {
            self.entry_index.insert(key, self.entries.len());
            self.entries.push(key);
        }
    }

    /// Counts a relocation of a loaded section.
    pub(crate) fn add_reloc(&mut self, kind: u32, sym: usize, addend: i64, target: Target) {
        if let Some(key) = entry_key(kind, sym, addend, target) {
            self.add_entry(key);
        }
        if needs_thunk(kind)
            || (kind == R_X86_64_DTPOFF32 && matches!(target, Target::External { .. }))
        {
            self.n_thunks += 1;
        }
    }

    /// Lays the TLS sections out in a block: those with bytes first.
    pub(crate) fn lay_out_block(
        &mut self,
        object: &str,
        sections: &[(usize, u64, u64, bool)],
        n_sections: usize,
    ) -> Result<(), LinkError> {
        self.block_offsets = vec![None; n_sections];
        let mut len = 0u64;
        let mut align = 1u64;
        for nobits in [false, true] {
            for &(i, size, sec_align, is_nobits) in sections {
                if is_nobits != nobits {
                    continue;
                }
                let a = sec_align.max(1);
                let at = len
                    .checked_add(a - 1)
                    .map(|v| v & !(a - 1))
                    .ok_or_else(|| LinkError::malformed(object, "TLS block too large"))?;
                len = at
                    .checked_add(size)
                    .filter(|&l| l <= super::elf::MAX_SECTION_SIZE)
                    .ok_or_else(|| LinkError::malformed(object, "TLS block too large"))?;
                align = align.max(a);
                if let Some(o) = self.block_offsets.get_mut(i) {
                    *o = Some(at);
                }
            }
            if !nobits {
                self.init_len = len;
            }
        }
        self.block_len = len;
        self.block_align = align;
        self.has_sections = !sections.is_empty();
        Ok(())
    }
}

/// The TLS state of an allocated link.
pub(crate) struct TlsLink {
    pub(crate) plan: TlsPlan,
    /// The registered module (with TLS sections only). Dropped before the
    /// link's memory (field order of the owners).
    pub(crate) module: Option<TlsModule>,
    pub(crate) entries_offset: usize,
    /// Two words for thunks: the runtime's routine, then the `%fs`
    /// offset of the thread's table slot.
    pub(crate) core_slot: usize,
    pub(crate) thunks_offset: usize,
}

impl TlsLink {
    pub(crate) fn entry_offset(&self, key: EntryKey) -> Option<usize> {
        self.plan
            .entry_index
            .get(&key)
            .map(|&i| self.entries_offset + i * ENTRY_SIZE as usize)
    }
}

/// Registers the module and publishes the link's thread-local symbols.
pub(crate) fn register(
    alloc: &mut AllocatedObject,
    template_offset: usize,
) -> Result<(), LinkError> {
    let name = alloc.obj.name.clone();
    let base = alloc.memory.base();
    let Some(tls) = alloc.tls.as_mut() else {
        return Ok(());
    };
    // Local-dynamic code needs its module even without variables of its
    // own (it may name only other objects' variables): an empty one.
    if !tls.plan.has_sections && !tls.plan.entry_index.contains_key(&EntryKey::ModuleBase) {
        return Ok(());
    }
    let mut module = TlsModule::register(
        base + template_offset as u64,
        tls.plan.init_len,
        tls.plan.block_len,
        tls.plan.block_align,
    )
    .map_err(|e| LinkError::unsupported(&name, e))?;
    for (idx, (sym, t)) in alloc.obj.symbols.iter().zip(&alloc.targets).enumerate() {
        let Target::Tls { sec, value, .. } = *t else {
            continue;
        };
        if sym.is_local() {
            continue;
        }
        let key = EntryKey::Symbol { sym: idx, extra: 0 };
        let (Some(at), Some(off)) = (
            tls.entry_offset(key),
            tls.plan.block_offsets.get(sec).copied().flatten(),
        ) else {
            continue;
        };
        module.publish(base + at as u64, off.wrapping_add(value));
    }
    tls.module = Some(module);
    Ok(())
}

/// The address published for a defined thread-local symbol.
pub(crate) fn published_address(alloc: &AllocatedObject, sym: usize) -> Option<u64> {
    let tls = alloc.tls.as_ref()?;
    let at = tls.entry_offset(EntryKey::Symbol { sym, extra: 0 })?;
    Some(alloc.memory.base() + at as u64)
}

/// Finds where instructions start, for the moved ones: decodes each
/// function from its first byte (the last function symbol at or before
/// the offset, else the section's start), resuming from the last start
/// found in the same function, so a function is decoded about once
/// however many of its instructions move (queries in ascending order).
pub(crate) struct InsnFinder {
    /// Function starts per section, sorted.
    functions: HashMap<usize, Vec<usize>>,
    /// The last instruction start found, per (section, function start).
    cursor: HashMap<(usize, usize), usize>,
}

impl InsnFinder {
    pub(crate) fn new(obj: &super::elf::ObjectData) -> Self {
        let mut functions: HashMap<usize, Vec<usize>> = HashMap::new();
        for y in &obj.symbols {
            if let (super::elf::SymbolPlace::Section(sec), STT_FUNC) = (y.place, y.kind) {
                if let Ok(v) = usize::try_from(y.value) {
                    functions.entry(sec).or_default().push(v);
                }
            }
        }
        for v in functions.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        InsnFinder {
            functions,
            cursor: HashMap::new(),
        }
    }

    /// The start of the instruction holding byte `off` of section `sec`.
    pub(crate) fn find(
        &mut self,
        sec: usize,
        code: &[u8],
        off: usize,
    ) -> Result<usize, &'static str> {
        let from = self
            .functions
            .get(&sec)
            .and_then(|v| v.get(v.partition_point(|&f| f <= off).checked_sub(1)?))
            .copied()
            .unwrap_or(0);
        let resume = self
            .cursor
            .get(&(sec, from))
            .copied()
            .filter(|&c| c <= off)
            .unwrap_or(from);
        let start = x86_64_move::instruction_start(code, resume, off)?;
        self.cursor.insert((sec, from), start);
        Ok(start)
    }
}

/// An exec-model instruction waiting to be moved to a thunk.
pub(crate) struct PendingSite {
    pub(crate) section: usize,
    pub(crate) offset: u64,
    pub(crate) kind: u32,
    pub(crate) entry: usize,
}

impl AllocatedObject {
    fn tls_error(
        &self,
        sec: usize,
        offset: u64,
        kind: u32,
        why: impl std::fmt::Display,
    ) -> LinkError {
        let section = self
            .obj
            .sections
            .get(sec)
            .map(|s| s.name.as_str())
            .unwrap_or("?");
        LinkError::unsupported(
            &self.obj.name,
            format!(
                "thread-local relocation {} at offset {offset:#x} in section {section}: {why}",
                RelocationKind(kind)
            ),
        )
    }

    fn symbol_name(&self, sym: usize) -> &str {
        self.obj
            .symbols
            .get(sym)
            .map(|s| s.name.as_str())
            .unwrap_or("?")
    }

    /// `{module, offset}` of an entry.
    fn resolve_entry(&self, key: EntryKey, values: &[Option<u64>]) -> Result<(u64, u64), String> {
        let own = || {
            self.tls
                .as_ref()
                .and_then(|t| t.module.as_ref())
                .map(|m| m.id())
                .ok_or_else(|| "the object has no thread-local sections".to_owned())
        };
        let EntryKey::Symbol { sym, extra } = key else {
            return Ok((own()?, 0));
        };
        let from_published = |addr: Option<u64>| -> Result<(u64, u64), String> {
            let (m, o) = addr.and_then(tls::published).ok_or_else(|| {
                format!(
                    "thread-local symbol {} is not defined by an object this JIT linked \
                     (thread-local variables of the host process cannot be referenced)",
                    self.symbol_name(sym)
                )
            })?;
            Ok((m, o.wrapping_add(extra as u64)))
        };
        match self.targets.get(sym).copied().unwrap_or(Target::Zero) {
            Target::Tls {
                sec,
                value,
                overridable,
            } => {
                let winner = values.get(sym).copied().flatten();
                if overridable && winner.is_some_and(|a| tls::published(a).is_some()) {
                    return from_published(winner);
                }
                let off = self
                    .tls
                    .as_ref()
                    .and_then(|t| t.plan.block_offsets.get(sec).copied().flatten())
                    .ok_or("TLS section not laid out")?;
                Ok((own()?, off.wrapping_add(value).wrapping_add(extra as u64)))
            }
            Target::External { .. } => from_published(values.get(sym).copied().flatten()),
            Target::TlsModuleBase => Ok((own()?, extra as u64)),
            _ => Err(format!(
                "symbol {} is not thread-local",
                self.symbol_name(sym)
            )),
        }
    }

    /// Writes the entries and the runtime pointer.
    pub(crate) fn write_tls_entries(&mut self, values: &[Option<u64>]) -> Result<(), LinkError> {
        let Some(tls) = self.tls.as_ref() else {
            return Ok(());
        };
        let mut words = Vec::with_capacity(tls.plan.entries.len());
        let has_module = tls.module.is_some();
        for &key in &tls.plan.entries {
            if key == EntryKey::ModuleBase && !has_module {
                // Reported by the relocation, naming it.
                words.push([0, 0, 0]);
                continue;
            }
            let (m, o) = self.resolve_entry(key, values).map_err(|e| {
                LinkError::unsupported(&self.obj.name, format!("thread-local storage: {e}"))
            })?;
            words.push([tls::tlsdesc(), m, o]);
        }
        let (entries_offset, core_slot) = (tls.entries_offset, tls.core_slot);
        let name = self.obj.name.clone();
        let bytes = self
            .memory
            .bytes_mut()
            .ok_or_else(|| LinkError::malformed(&name, "memory already published"))?;
        let mut put = |at: usize, v: u64| -> Result<(), LinkError> {
            bytes
                .get_mut(at..at + 8)
                .ok_or_else(|| LinkError::malformed(&name, "internal layout error (TLS)"))?
                .copy_from_slice(&v.to_le_bytes());
            Ok(())
        };
        put(core_slot, tls::core_address())?;
        put(core_slot + 8, tls::table_tpoff())?;
        for (i, entry) in words.iter().enumerate() {
            for (j, &w) in entry.iter().enumerate() {
                put(entries_offset + i * ENTRY_SIZE as usize + j * 8, w)?;
            }
        }
        Ok(())
    }

    /// Applies one TLS relocation of section `sec` (at `sec_off` in the
    /// mapping); exec-model sites are queued in `sites`.
    pub(crate) fn apply_tls_reloc(
        &mut self,
        sec: usize,
        sec_off: usize,
        len: usize,
        r: &super::elf::Reloc,
        sites: &mut Vec<PendingSite>,
    ) -> Result<(), LinkError> {
        let base = self.memory.base();
        let target = self.targets.get(r.sym).copied().unwrap_or(Target::Zero);
        let p = base as i128 + sec_off as i128 + r.offset as i128;
        let entry = entry_key(r.kind, r.sym, r.addend, target).map(|k| {
            self.tls
                .as_ref()
                .and_then(|t| t.plan.entry_index.get(&k).copied())
        });
        let entry = match entry {
            Some(Some(i)) => Some(i),
            Some(None) => {
                return Err(self.tls_error(sec, r.offset, r.kind, "internal: no entry planned"))
            }
            None => None,
        };
        let entry_addr = |i: usize| -> i128 {
            let off = self.tls.as_ref().map(|t| t.entries_offset).unwrap_or(0);
            base as i128 + (off + i * ENTRY_SIZE as usize) as i128
        };
        let dtpoff = || -> Result<i128, LinkError> {
            match target {
                Target::Tls { sec: s, value, .. } => self
                    .tls
                    .as_ref()
                    .and_then(|t| t.plan.block_offsets.get(s).copied().flatten())
                    .map(|o| o as i128 + value as i128 + r.addend as i128)
                    .ok_or_else(|| {
                        self.tls_error(sec, r.offset, r.kind, "TLS section not laid out")
                    }),
                Target::TlsModuleBase => Ok(r.addend as i128),
                _ => Err(self.tls_error(
                    sec,
                    r.offset,
                    r.kind,
                    format!(
                        "{} is not a thread-local symbol of this object ({OWN_MODULE})",
                        self.symbol_name(r.sym)
                    ),
                )),
            }
        };
        const OWN_MODULE: &str = "a 64-bit offset to another object's variable \
             (each linked object is its own TLS module)";
        let value: (i128, usize) = match (r.kind, entry) {
            (R_X86_64_TLSDESC_CALL, _) => return Ok(()),
            (R_X86_64_TLSGD | R_X86_64_TLSLD, Some(i)) => {
                (entry_addr(i) + 8 + r.addend as i128 - p, 4)
            }
            (R_X86_64_GOTPC32_TLSDESC, Some(i)) => (entry_addr(i) + r.addend as i128 - p, 4),
            (R_X86_64_DTPOFF32, Some(i)) => {
                // Another object's variable: the instruction moves.
                sites.push(PendingSite {
                    section: sec,
                    offset: r.offset,
                    kind: r.kind,
                    entry: i,
                });
                return Ok(());
            }
            (R_X86_64_DTPOFF32, None) => (dtpoff()?, 4),
            (R_X86_64_DTPOFF64, _) => (dtpoff()?, 8),
            (R_X86_64_GOTTPOFF | R_X86_64_TPOFF32 | R_X86_64_TPOFF64, Some(i)) => {
                sites.push(PendingSite {
                    section: sec,
                    offset: r.offset,
                    kind: r.kind,
                    entry: i,
                });
                return Ok(());
            }
            _ => return Err(self.tls_error(sec, r.offset, r.kind, "unexpected relocation")),
        };
        let name = self.obj.name.clone();
        let bytes = self
            .memory
            .bytes_mut()
            .ok_or_else(|| LinkError::malformed(&name, "memory published"))?;
        let at = sec_off + r.offset as usize;
        let field: Vec<u8> = match value.1 {
            4 => match i32::try_from(value.0) {
                Ok(v) => v.to_le_bytes().to_vec(),
                Err(_) => return Err(self.tls_error(sec, r.offset, r.kind, "value out of range")),
            },
            _ => (value.0 as u64).to_le_bytes().to_vec(),
        };
        if r.offset as usize + field.len() > len {
            return Err(LinkError::malformed(
                &name,
                "TLS relocation outside its section",
            ));
        }
        bytes
            .get_mut(at..at + field.len())
            .ok_or_else(|| LinkError::malformed(&name, "TLS relocation outside the mapping"))?
            .copy_from_slice(&field);
        Ok(())
    }

    /// Moves the queued exec-model instructions to their thunks.
    pub(crate) fn write_tls_thunks(&mut self, sites: &[PendingSite]) -> Result<(), LinkError> {
        let Some(tls) = self.tls.as_ref() else {
            return Ok(());
        };
        let base = self.memory.base();
        let (entries_offset, core_slot, thunks_offset) =
            (tls.entries_offset, tls.core_slot, tls.thunks_offset);
        let mut planned = Vec::with_capacity(sites.len());
        let mut finder = InsnFinder::new(&self.obj);
        let mut order: Vec<usize> = (0..sites.len()).collect();
        order.sort_by_key(|&i| sites.get(i).map(|s| (s.section, s.offset)));
        for n in order {
            let Some(s) = sites.get(n) else { continue };
            let sec_off = self
                .section_offsets
                .get(s.section)
                .copied()
                .flatten()
                .ok_or_else(|| self.tls_error(s.section, s.offset, s.kind, "section not loaded"))?;
            let len = self
                .obj
                .sections
                .get(s.section)
                .map(|x| x.size as usize)
                .unwrap_or(0);
            let off = s.offset as usize;
            let bytes = self
                .memory
                .bytes_mut()
                .ok_or_else(|| LinkError::malformed(&self.obj.name, "memory published"))?;
            let section = bytes.get(sec_off..sec_off + len).unwrap_or(&[]);
            let site = finder
                .find(s.section, section, off)
                .and_then(|start| match s.kind {
                    R_X86_64_DTPOFF32 => x86_64_move::decode_dtpoff(section, off, start),
                    _ => x86_64_move::decode(section, off, s.kind, start),
                })
                .map_err(|why| self.tls_error(s.section, s.offset, s.kind, why))?;
            let thunk_off = thunks_offset + n * x86_64_move::TLS_THUNK_SIZE as usize;
            let thunk = base + thunk_off as u64;
            let site_addr = base + (sec_off + site.start) as u64;
            let record = base + (entries_offset + s.entry * ENTRY_SIZE as usize) as u64 + 8;
            let core_slot = base + core_slot as u64;
            let value = match s.kind {
                R_X86_64_DTPOFF32 => x86_64_move::Value::TlsAddress { record, core_slot },
                _ => x86_64_move::Value::Tls { record, core_slot },
            };
            let code = x86_64_move::thunk_bytes(&site, thunk, value, site_addr + site.len as u64)
                .and_then(|code| Ok((code, x86_64_move::site_jump(&site, site_addr, thunk)?)))
                .map_err(|why| self.tls_error(s.section, s.offset, s.kind, why))?;
            planned.push((thunk_off, sec_off + site.start, code));
        }
        self.write_moved_sites(planned, "TLS")
    }
}

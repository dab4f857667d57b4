//! The apply phase: binds every external and overridable symbol through a
//! [`SymbolResolver`], fills the GOT, writes PLT stubs and the `atexit`
//! thunk, and applies every relocation of the loaded sections.
//!
//! Binding rules: strong definitions of this object bind locally; weak and
//! common definitions bind to what the resolver returns for their name, if
//! anything (another definition won), else locally; undefined symbols and
//! symbols of dropped COMDAT groups must be resolved, except weak
//! references, which become 0. Relocations against sections that are not
//! loaded (debug info, dropped groups) are left as zero fields, so `.eh_frame`
//! entries of dropped functions get the null start address the unwinder
//! skips.

use std::collections::HashMap;

use super::error::{LinkError, RelocationKind};
use super::layout::{local_address, AllocatedObject, Target};
use super::x86_64::{self, ApplyError, RelocInputs};
use crate::ExecutorAddr;

/// Where the apply phase finds the addresses of external symbols.
pub trait SymbolResolver {
    /// The address of `name`, if it is defined.
    fn resolve(&self, name: &str) -> Option<ExecutorAddr>;
}

impl SymbolResolver for HashMap<String, ExecutorAddr> {
    fn resolve(&self, name: &str) -> Option<ExecutorAddr> {
        self.get(name).copied()
    }
}

impl<F: Fn(&str) -> Option<ExecutorAddr>> SymbolResolver for F {
    fn resolve(&self, name: &str) -> Option<ExecutorAddr> {
        self(name)
    }
}

/// An object whose relocations are applied, ready to publish.
///
/// Produced by [`AllocatedObject::apply`]; continue with
/// [`finalize`](AppliedObject::finalize).
pub struct AppliedObject {
    pub(crate) alloc: AllocatedObject,
}

impl AppliedObject {
    /// The object's name.
    pub fn name(&self) -> &str {
        self.alloc.name()
    }
}

impl AllocatedObject {
    /// The apply phase: resolves externals through `resolver` (a
    /// `HashMap<String, ExecutorAddr>` or a closure) and relocates.
    ///
    /// Fails with `UndefinedSymbol` for a strong reference the resolver does
    /// not know, `RelocationOverflow` when a value does not fit its field.
    pub fn apply(mut self, resolver: &dyn SymbolResolver) -> Result<AppliedObject, LinkError> {
        let mut values = self.bind(resolver)?;
        super::copy::make_copies(&mut self, &mut values)?;
        self.write_got_and_stubs(&values)?;
        self.write_tls_entries(&values)?;
        self.relocate(&values)?;
        Ok(AppliedObject { alloc: self })
    }

    /// The final value S of every symbol some relocation uses.
    fn bind(&self, resolver: &dyn SymbolResolver) -> Result<Vec<Option<u64>>, LinkError> {
        let obj = &self.obj;
        let mut values = vec![None; self.targets.len()];
        for (idx, (&t, value)) in self.targets.iter().zip(values.iter_mut()).enumerate() {
            if !self.used.get(idx).copied().unwrap_or(false) {
                continue;
            }
            let name = obj.symbols.get(idx).map(|s| s.name.as_str()).unwrap_or("");
            *value = match t {
                Target::External { weak } => match resolver.resolve(name) {
                    Some(addr) => Some(addr.value()),
                    None if weak => Some(0),
                    None => None, // An error only if a relocation uses it.
                },
                Target::Section {
                    overridable: true, ..
                }
                | Target::Tls {
                    overridable: true, ..
                }
                | Target::Common(_) => resolver
                    .resolve(name)
                    .map(|a| a.value())
                    .or_else(|| local_address(self, t)),
                _ => local_address(self, t),
            };
        }
        Ok(values)
    }

    fn undefined(&self, sym: usize) -> LinkError {
        LinkError::UndefinedSymbol {
            object: self.obj.name.clone(),
            symbol: self
                .obj
                .symbols
                .get(sym)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
        }
    }

    fn write_got_and_stubs(&mut self, values: &[Option<u64>]) -> Result<(), LinkError> {
        let base = self.memory.base();
        let (got_offset, stubs_offset, dso_offset) =
            (self.got_offset, self.stubs_offset, self.dso_offset);
        let mut got_entries = Vec::with_capacity(self.got_slots.len());
        for (&sym, &slot) in &self.got_slots {
            let value = values
                .get(sym)
                .copied()
                .flatten()
                .ok_or_else(|| self.undefined(sym))?;
            got_entries.push((slot, value));
        }
        let stubs: Vec<(usize, usize)> = self
            .stubs
            .iter()
            .filter_map(|(sym, &stub)| self.got_slots.get(sym).map(|&slot| (stub, slot)))
            .collect();
        let thunk = self.atexit_thunk;
        let name = self.obj.name.clone();
        let bytes = self
            .memory
            .bytes_mut()
            .ok_or_else(|| LinkError::malformed(&name, "memory already published"))?;
        let internal = |what: &str| {
            LinkError::malformed(&name, format!("internal layout error writing {what}"))
        };
        for (slot, value) in got_entries {
            let at = got_offset + slot * 8;
            let field = bytes
                .get_mut(at..at + 8)
                .ok_or_else(|| internal("the GOT"))?;
            field.copy_from_slice(&value.to_le_bytes());
        }
        for (stub, slot) in stubs {
            let at = stubs_offset + stub * x86_64::STUB_SIZE as usize;
            let got_entry = base + (got_offset + slot * 8) as u64;
            let buf = bytes.get_mut(at..).ok_or_else(|| internal("a stub"))?;
            x86_64::write_stub(buf, base + at as u64, got_entry).map_err(|_| internal("a stub"))?;
        }
        if let Some(at) = thunk {
            let buf = bytes
                .get_mut(at..)
                .ok_or_else(|| internal("the atexit thunk"))?;
            let recorder = super::atexit::recorder_address();
            x86_64::write_atexit_thunk(buf, base + at as u64, base + dso_offset as u64, recorder)
                .map_err(|_| internal("the atexit thunk"))?;
        }
        Ok(())
    }

    fn relocate(&mut self, values: &[Option<u64>]) -> Result<(), LinkError> {
        let obj = self.obj.clone();
        let base = self.memory.base();
        let got = base + self.got_offset as u64;
        let mut tls_sites = Vec::new();
        let mut far_sites = Vec::new();
        let mut code_targets: HashMap<u64, bool> = HashMap::new();
        for (sec_idx, sec) in obj.sections.iter().enumerate() {
            let Some(sec_off) = self.section_offsets.get(sec_idx).copied().flatten() else {
                continue;
            };
            let len = usize::try_from(sec.size).unwrap_or(usize::MAX);
            for r in &sec.relocs {
                if super::tls_link::is_tls_kind(r.kind) {
                    self.apply_tls_reloc(sec_idx, sec_off, len, r, &mut tls_sites)?;
                    continue;
                }
                let t = self.targets.get(r.sym).copied().unwrap_or(Target::Zero);
                let inputs = match t {
                    Target::Ignored => {
                        // The field keeps the zero the assembler wrote.
                        continue;
                    }
                    _ => {
                        let s = values
                            .get(r.sym)
                            .copied()
                            .flatten()
                            .ok_or_else(|| self.undefined(r.sym))?;
                        RelocInputs {
                            s,
                            a: r.addend,
                            p: base + sec_off as u64 + r.offset,
                            got,
                            got_entry: self
                                .got_slots
                                .get(&r.sym)
                                .map(|&slot| got + slot as u64 * 8),
                            stub: self
                                .stubs
                                .get(&r.sym)
                                .map(|&stub| {
                                    base + self.stubs_offset as u64
                                        + stub as u64 * x86_64::STUB_SIZE
                                })
                                .filter(|_| x86_64::may_use_stub(r.kind)),
                            size: obj.symbols.get(r.sym).map(|s| s.size).unwrap_or(0),
                        }
                    }
                };
                let bytes = self
                    .memory
                    .bytes_mut()
                    .ok_or_else(|| LinkError::malformed(&obj.name, "memory published"))?;
                let section = bytes
                    .get_mut(sec_off..sec_off.saturating_add(len))
                    .ok_or_else(|| {
                        LinkError::malformed(
                            &obj.name,
                            format!("section {} out of place", sec.name),
                        )
                    })?;
                let mut res = x86_64::apply(r.kind, section, r.offset, inputs);
                if matches!(res, Err(ApplyError::Overflow(_)))
                    && x86_64::may_use_canonical_stub(r.kind)
                {
                    // A far function's address taken in 32 bits: use its stub.
                    // (Asking the kernel once per symbol: far data has many
                    // references.)
                    let code = *code_targets
                        .entry(inputs.s)
                        .or_insert_with(|| is_code(inputs.s));
                    let stub = self.stubs.get(&r.sym).filter(|_| code);
                    if let Some(&stub) = stub {
                        let stub =
                            base + self.stubs_offset as u64 + stub as u64 * x86_64::STUB_SIZE;
                        res = x86_64::apply(
                            r.kind,
                            section,
                            r.offset,
                            RelocInputs {
                                stub: Some(stub),
                                ..inputs
                            },
                        );
                    }
                }
                if let (Err(ApplyError::Overflow(value)), Some(&slot)) =
                    (&res, self.far.slots.get(&(sec_idx, r.offset)))
                {
                    // Far data: the instruction moves to a thunk (below).
                    far_sites.push(super::far::FarSite {
                        section: sec_idx,
                        offset: r.offset,
                        kind: r.kind,
                        target: inputs.s.wrapping_add(r.addend as u64),
                        slot,
                        target_name: target_name(&obj, r.sym),
                        value: *value,
                    });
                    continue;
                }
                res.map_err(|e| {
                    let kind = RelocationKind(r.kind);
                    match e {
                        ApplyError::Overflow(value) => LinkError::RelocationOverflow {
                            object: obj.name.clone(),
                            section: sec.name.clone(),
                            offset: r.offset,
                            kind,
                            target: target_name(&obj, r.sym),
                            value,
                        },
                        ApplyError::Unsupported => LinkError::UnsupportedRelocation {
                            object: obj.name.clone(),
                            section: sec.name.clone(),
                            offset: r.offset,
                            kind,
                        },
                        ApplyError::MissingGotEntry | ApplyError::OutOfBounds => {
                            LinkError::malformed(
                                &obj.name,
                                format!("cannot apply {kind} at {:#x} in {}", r.offset, sec.name),
                            )
                        }
                    }
                })?;
            }
        }
        // Last: the moved instructions carry their relocated bytes along.
        self.write_tls_thunks(&tls_sites)?;
        self.write_far_thunks(&far_sites)
    }
}

/// Whether `addr` lies in executable memory (so it is code, and a stub
/// jumping to it can stand in for it).
fn is_code(addr: u64) -> bool {
    region::query(addr as usize as *const u8).is_ok_and(|r| r.is_executable())
}

/// A readable name for a relocation's target: the symbol, or the section
/// for section symbols.
fn target_name(obj: &super::elf::ObjectData, sym: usize) -> String {
    let Some(s) = obj.symbols.get(sym) else {
        return format!("symbol {sym}");
    };
    if !s.name.is_empty() {
        return s.name.clone();
    }
    match s.place {
        super::elf::SymbolPlace::Section(i) => obj
            .sections
            .get(i)
            .map(|sec| format!("section {}", sec.name))
            .unwrap_or_else(|| format!("symbol {sym}")),
        _ => format!("symbol {sym}"),
    }
}

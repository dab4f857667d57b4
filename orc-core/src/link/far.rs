//! Far data: code built without `-fPIC` takes data addresses in 32-bit
//! fields (`R_X86_64_PC32` in `x(%rip)`, `R_X86_64_32`/`32S` in `$x` and
//! `x(,%i,8)`). When the data lies more than 2 GiB from the code (another
//! link's data past a large mapping, a shared library's writable data
//! such as `stdout`), no value fits: the instruction is moved to a thunk
//! that loads the full address into a scratch register
//! (`x86_64_move.rs`). The allocate phase reserves a thunk for every such
//! reference in code to a symbol that may be far; only those that
//! overflow use theirs. (Far functions go through PLT stubs, far
//! read-only data is copied near, `copy.rs`, before this is tried.)

use std::collections::HashMap;

use super::error::{LinkError, RelocationKind};
use super::layout::AllocatedObject;
use super::x86_64_move;

/// A far reference waiting for its thunk.
pub(crate) struct FarSite {
    pub(crate) section: usize,
    pub(crate) offset: u64,
    pub(crate) kind: u32,
    /// The target's address plus the addend.
    pub(crate) target: u64,
    pub(crate) slot: usize,
    /// For the overflow error if the instruction cannot be moved.
    pub(crate) target_name: String,
    pub(crate) value: i128,
}

/// Whether a relocation may get a far-data thunk.
pub(crate) fn may_move(kind: u32) -> bool {
    matches!(
        kind,
        object::elf::R_X86_64_PC32 | object::elf::R_X86_64_32 | object::elf::R_X86_64_32S
    )
}

/// The thunks reserved for far data: slot by (section, offset).
#[derive(Default)]
pub(crate) struct FarThunks {
    pub(crate) slots: HashMap<(usize, u64), usize>,
    pub(crate) offset: usize,
}

/// An instruction moved to a thunk: (thunk offset, site offset, (thunk
/// code, the jump written over the site)), offsets in the object's memory.
pub(crate) type MovedSite = (usize, usize, (Vec<u8>, Vec<u8>));

impl AllocatedObject {
    /// Moves the far references that overflowed to their thunks.
    pub(crate) fn write_far_thunks(&mut self, sites: &[FarSite]) -> Result<(), LinkError> {
        let base = self.memory.base();
        let thunks = self.far.offset;
        let mut planned = Vec::with_capacity(sites.len());
        // Instructions already moved (by start), for the form with two
        // relocations.
        let mut moved: std::collections::HashSet<(usize, usize)> = Default::default();
        let mut finder = super::tls_link::InsnFinder::new(&self.obj);
        let mut order: Vec<&FarSite> = sites.iter().collect();
        order.sort_by_key(|s| (s.section, s.offset));
        for s in order {
            // An instruction that cannot be moved keeps the overflow error.
            let fail = |_why: &str| LinkError::RelocationOverflow {
                object: self.obj.name.clone(),
                section: self
                    .obj
                    .sections
                    .get(s.section)
                    .map(|x| x.name.clone())
                    .unwrap_or_default(),
                offset: s.offset,
                kind: RelocationKind(s.kind),
                target: s.target_name.clone(),
                value: s.value,
            };
            let sec_off = self
                .section_offsets
                .get(s.section)
                .copied()
                .flatten()
                .ok_or_else(|| fail("section not loaded"))?;
            let len = self
                .obj
                .sections
                .get(s.section)
                .map(|x| x.size as usize)
                .unwrap_or(0);
            let bytes = self
                .memory
                .bytes_mut()
                .ok_or_else(|| LinkError::malformed(&self.obj.name, "memory published"))?;
            let section = bytes.get(sec_off..sec_off + len).unwrap_or(&[]);
            let off = s.offset as usize;
            let start = finder.find(s.section, section, off).map_err(fail)?;
            if !moved.insert((s.section, start)) {
                continue;
            }
            let site = match x86_64_move::store_rip_fields(section, start) {
                Some((disp_at, imm_at)) => {
                    // movq $x, y(%rip): both fields' values, far or not.
                    let other = |at: usize| {
                        sites
                            .iter()
                            .find(|o| o.section == s.section && o.offset as usize == at)
                    };
                    let read = |at: usize| {
                        section
                            .get(at..at + 4)
                            .and_then(|b| b.try_into().ok())
                            .map(i32::from_le_bytes)
                    };
                    let end = base + (sec_off + start + 11) as u64;
                    let addr = match other(disp_at) {
                        Some(o) if o.kind == object::elf::R_X86_64_PC32 => o.target.wrapping_add(8),
                        Some(_) => return Err(fail("an unexpected relocation")),
                        None => end.wrapping_add(
                            read(disp_at).ok_or_else(|| fail("truncated"))? as i64 as u64
                        ),
                    };
                    let value = match other(imm_at) {
                        Some(o) if o.kind == object::elf::R_X86_64_32S => o.target,
                        Some(_) => return Err(fail("an unexpected relocation")),
                        None => read(imm_at).ok_or_else(|| fail("truncated"))? as i64 as u64,
                    };
                    x86_64_move::Site {
                        start,
                        len: 11,
                        form: x86_64_move::Form::StoreAbsolute { addr, value },
                        field_to_end: 0,
                    }
                }
                None => x86_64_move::decode_far(section, off, s.kind, start).map_err(fail)?,
            };
            let addr = if s.kind == object::elf::R_X86_64_PC32 {
                s.target.wrapping_add(site.field_to_end as u64)
            } else {
                s.target
            };
            let thunk_off = thunks + s.slot * x86_64_move::FAR_THUNK_SIZE as usize;
            let thunk = base + thunk_off as u64;
            let site_addr = base + (sec_off + site.start) as u64;
            let back = site_addr + site.len as u64;
            let code = x86_64_move::thunk_bytes(&site, thunk, x86_64_move::Value::Far(addr), back)
                .and_then(|code| Ok((code, x86_64_move::site_jump(&site, site_addr, thunk)?)))
                .map_err(fail)?;
            planned.push((thunk_off, sec_off + site.start, code));
        }
        self.write_moved_sites(planned, "far")
    }

    /// Writes instructions moved to thunks (far data, exec-model TLS):
    /// each `(thunk offset, site offset, (thunk code, jump to the thunk))`
    /// into the object's memory, still writable. `what` names the kind in
    /// errors.
    pub(crate) fn write_moved_sites(
        &mut self,
        planned: Vec<MovedSite>,
        what: &str,
    ) -> Result<(), LinkError> {
        let name = self.obj.name.clone();
        let bytes = self
            .memory
            .bytes_mut()
            .ok_or_else(|| LinkError::malformed(&name, "memory published"))?;
        for (thunk_off, site_off, (code, jump)) in planned {
            bytes
                .get_mut(thunk_off..thunk_off + code.len())
                .ok_or_else(|| {
                    LinkError::malformed(&name, format!("internal layout error ({what} thunk)"))
                })?
                .copy_from_slice(&code);
            bytes
                .get_mut(site_off..site_off + jump.len())
                .ok_or_else(|| {
                    LinkError::malformed(&name, format!("{what} site outside the mapping"))
                })?
                .copy_from_slice(&jump);
        }
        Ok(())
    }
}

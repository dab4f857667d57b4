//! x86-64 encodings of the initial- and local-exec TLS models.
//!
//! Their code computes a variable's address as `%fs:0 + tpoff`, with
//! `tpoff` a link-time constant (in the instruction, or in a GOT entry for
//! initial exec). A JIT'd module's block is not in the static TLS block,
//! so its `%fs`-relative offset differs per thread: the linker moves each
//! such instruction to a thunk that first computes this thread's offset
//! (`address - %fs:0`, through the TLS runtime) into a scratch register,
//! then runs the instruction with the register in place of the constant,
//! and jumps back. The original instruction becomes `jmp thunk` plus
//! `nop`s. The thunk steps over the red zone, preserves every register but
//! the instruction's own results, and restores the flags before the
//! instruction runs.
//!
//! Instruction forms, as gcc and clang emit them (what `ld` relaxes):
//! - `mov x@gottpoff(%rip), %r` / `add x@gottpoff(%rip), %r` (GOTTPOFF);
//! - `mov $x@tpoff, %r`, `add $x@tpoff, %r`, `lea x@tpoff(%b), %r`,
//!   `movabs $x@tpoff, %r` (TPOFF32/TPOFF64): these become `mov/add/lea`
//!   of the scratch register;
//! - any supported instruction with a `%fs:x@tpoff(...)` memory operand
//!   (TPOFF32): the scratch register joins the address as base or index.
//!
//! Anything else is refused with the reason, never guessed.

/// The space reserved for one thunk.
pub(crate) const THUNK_SIZE: u64 = 80;

/// What the rewritten instruction does with `t` (the per-thread offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// `dst = t`.
    Mov { dst: u8 },
    /// `dst += t`.
    Add { dst: u8 },
    /// `dst = base + t`.
    Lea { dst: u8, base: u8 },
    /// The instruction with `%fs:` memory operand: `t` replaces the
    /// displacement (`bytes` is the instruction with the scratch register
    /// put in; `scratch` is that register).
    FsMemory { scratch: u8 },
}

/// An instruction to move to a thunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Site {
    /// Offset of the instruction in its section.
    pub(crate) start: usize,
    /// Its length.
    pub(crate) len: usize,
    pub(crate) form: Form,
    /// The replacement instruction (for `FsMemory`; computed from `form`
    /// otherwise).
    pub(crate) bytes: Vec<u8>,
}

const RAX: u8 = 0;
const RSP: u8 = 4;
/// Scratch candidates: never implicit operands of the accepted opcodes,
/// encodable without REX.
const SCRATCH: [u8; 3] = [6, 7, 3]; // rsi, rdi, rbx

fn is_rex_w(b: u8) -> bool {
    b & 0xf8 == 0x48
}

fn rex_r(rex: u8) -> u8 {
    (rex >> 2) & 1
}

fn rex_x(rex: u8) -> u8 {
    (rex >> 1) & 1
}

fn rex_b(rex: u8) -> u8 {
    rex & 1
}

fn pick_scratch(avoid: &[u8]) -> Option<u8> {
    SCRATCH.iter().copied().find(|s| !avoid.contains(s))
}

/// Decodes the instruction whose 32-bit (or 64-bit for `TPOFF64`) field is
/// at `off`. `gottpoff` tells the relocation kind (GOTTPOFF vs TPOFF).
pub(crate) fn decode(section: &[u8], off: usize, kind: u32) -> Result<Site, &'static str> {
    let at = |i: usize| section.get(i).copied();
    let back = |n: usize| off.checked_sub(n).and_then(at);
    let reg_site = |start: usize, len: usize, form: Form| -> Result<Site, &'static str> {
        match form {
            Form::Mov { dst } | Form::Add { dst } if dst == RSP => Err("the destination is %rsp"),
            Form::Lea { dst, base } if dst == RSP || base == RSP => Err("%rsp in the address"),
            _ => Ok(Site {
                start,
                len,
                form,
                bytes: Vec::new(),
            }),
        }
    };
    match kind {
        object::elf::R_X86_64_GOTTPOFF => {
            let (Some(rex), Some(op), Some(modrm)) = (back(3), back(2), back(1)) else {
                return Err("no room for the instruction");
            };
            if !is_rex_w(rex) || modrm & 0xc7 != 0x05 {
                return Err("not a 64-bit %rip-relative mov or add");
            }
            let dst = (modrm >> 3) & 7 | rex_r(rex) << 3;
            match op {
                0x8b => reg_site(off - 3, 7, Form::Mov { dst }),
                0x03 => reg_site(off - 3, 7, Form::Add { dst }),
                _ => Err("not a mov or add"),
            }
        }
        object::elf::R_X86_64_TPOFF64 => match (back(2), back(1)) {
            (Some(rex), Some(op)) if is_rex_w(rex) && (0xb8..=0xbf).contains(&op) => reg_site(
                off - 2,
                10,
                Form::Mov {
                    dst: (op & 7) | rex_b(rex) << 3,
                },
            ),
            _ => Err("not a movabs"),
        },
        object::elf::R_X86_64_TPOFF32 => {
            if let (Some(rex), Some(op), Some(modrm)) = (back(3), back(2), back(1)) {
                if is_rex_w(rex) {
                    let reg = (modrm >> 3) & 7 | rex_r(rex) << 3;
                    let rm = modrm & 7 | rex_b(rex) << 3;
                    let direct = modrm & 0xf8 == 0xc0; // mod 11, /0
                    match op {
                        0xc7 if direct => return reg_site(off - 3, 7, Form::Mov { dst: rm }),
                        0x81 if direct => return reg_site(off - 3, 7, Form::Add { dst: rm }),
                        0x8d if modrm >> 6 == 2 && modrm & 7 != 4 => {
                            return reg_site(off - 3, 7, Form::Lea { dst: reg, base: rm })
                        }
                        _ => {}
                    }
                }
            }
            if let (Some(0x48), Some(0x05)) = (back(2), back(1)) {
                if back(3) != Some(0x64) {
                    return reg_site(off - 2, 6, Form::Add { dst: RAX });
                }
            }
            match decode_fs_memory(section, off) {
                Err(NO_FS) => decode_base_memory(section, off),
                other => other,
            }
        }
        _ => Err("not an exec-model TLS relocation"),
    }
}

/// The immediate's size of an accepted one-byte opcode with `%fs:` memory
/// operand, or `None` if not accepted.
fn imm_size_1(op: u8, reg: u8, opsize16: bool) -> Option<usize> {
    let immz = if opsize16 { 2 } else { 4 };
    Some(match op {
        0x00..=0x03
        | 0x08..=0x0b
        | 0x10..=0x13
        | 0x18..=0x1b
        | 0x20..=0x23
        | 0x28..=0x2b
        | 0x30..=0x33
        | 0x38..=0x3b
        | 0x63
        | 0x84..=0x8b
        | 0xd0..=0xd3 => 0,
        0x80 | 0x83 | 0xc0 | 0xc1 | 0xc6 | 0x6b => 1,
        0x81 | 0xc7 | 0x69 => immz,
        0xf6 => match reg {
            0 | 1 => 1,
            _ => 0,
        },
        0xf7 => match reg {
            0 | 1 => immz,
            _ => 0,
        },
        0xfe | 0xff if reg <= 1 => 0,
        _ => return None,
    })
}

/// The same for `0f xx` opcodes.
fn imm_size_2(op: u8) -> Option<usize> {
    Some(match op {
        0x10..=0x17
        | 0x28..=0x2f
        | 0x40..=0x4f
        | 0x51..=0x6f
        | 0x74..=0x76
        | 0x7e
        | 0x7f
        | 0xa3
        | 0xa5
        | 0xab
        | 0xad
        | 0xaf
        | 0xb0
        | 0xb1
        | 0xb3
        | 0xb6
        | 0xb7
        | 0xbb
        | 0xbe
        | 0xbf
        | 0xc0
        | 0xc1
        | 0xd1..=0xfe => 0,
        0x70 | 0xa4 | 0xac | 0xba | 0xc2 | 0xc4 | 0xc5 | 0xc6 => 1,
        _ => return None,
    })
}

const NO_FS: &str = "no %fs-prefixed instruction";

/// Bytes that may be (part of) a prefix or an opcode escape, so that an
/// instruction cannot be said to start right after one.
fn prefix_like(b: u8) -> bool {
    matches!(
        b,
        0x40..=0x4f
            | 0x66
            | 0x67
            | 0xf0
            | 0xf2
            | 0xf3
            | 0x26
            | 0x2e
            | 0x36
            | 0x3e
            | 0x64
            | 0x65
            | 0x0f
            | 0x38
            | 0x3a
    )
}

/// An instruction with a `%fs:disp32(...)` operand whose disp32 is at `off`:
/// it starts at the nearest `0x64` prefix before.
fn decode_fs_memory(section: &[u8], off: usize) -> Result<Site, &'static str> {
    let at = |i: usize| section.get(i).copied();
    let mut start = None;
    for back in 2..=8 {
        let Some(i) = off.checked_sub(back) else {
            break;
        };
        if at(i) == Some(0x64) {
            start = Some(i);
            break;
        }
    }
    let start = start.ok_or(NO_FS)?;
    decode_memory(section, off, start, true)
}

/// An instruction with a `disp32(%base)` operand, `%base` holding the
/// thread pointer (g++'s `__tls_init`). Without a prefix to anchor it, the
/// start is found by trying every start up to 8 bytes back: exactly one
/// must decode to an accepted instruction ending its displacement at
/// `off`, and the byte before it must not be one that could belong to a
/// longer instruction (a prefix, an opcode escape, a VEX/EVEX prefix);
/// anything else is refused as ambiguous.
fn decode_base_memory(section: &[u8], off: usize) -> Result<Site, &'static str> {
    let at = |i: usize| section.get(i).copied();
    let mut found: Option<Site> = None;
    for back in 2..=8 {
        let Some(start) = off.checked_sub(back) else {
            break;
        };
        let Ok(site) = decode_memory(section, off, start, false) else {
            continue;
        };
        if found.is_some() {
            return Err("cannot tell where the instruction starts");
        }
        found = Some(site);
    }
    let site = found.ok_or("not an instruction this linker rewrites")?;
    let start = site.start;
    let before = |n: usize, b: &[u8]| {
        start
            .checked_sub(n)
            .and_then(at)
            .is_some_and(|x| b.contains(&x))
    };
    let prefix_before = start > 0 && at(start - 1).is_none_or(prefix_like);
    if prefix_before || before(2, &[0xc5]) || before(3, &[0xc4, 0x8f]) || before(4, &[0x62]) {
        return Err("cannot tell where the instruction starts");
    }
    Ok(site)
}

/// Decodes the instruction at `start` whose disp32 is at `off` (with the
/// `%fs` prefix at `start` when `fs`).
fn decode_memory(section: &[u8], off: usize, start: usize, fs: bool) -> Result<Site, &'static str> {
    let at = |i: usize| section.get(i).copied();
    let mut p = if fs { start + 1 } else { start };
    let mut opsize16 = false;
    while let Some(b @ (0x66 | 0xf2 | 0xf3)) = at(p) {
        opsize16 |= b == 0x66;
        p += 1;
    }
    let prefix_end = p;
    let rex = match at(p) {
        Some(b) if b & 0xf0 == 0x40 => {
            p += 1;
            Some(b)
        }
        _ => None,
    };
    let rx = rex.unwrap_or(0);
    let op_start = p;
    let two_byte = at(p) == Some(0x0f);
    if two_byte {
        p += 1;
        if matches!(at(p), Some(0x38 | 0x3a)) {
            return Err("a three-byte opcode");
        }
    }
    let op = at(p).ok_or("truncated")?;
    p += 1;
    let modrm_at = p;
    let modrm = at(p).ok_or("truncated")?;
    p += 1;
    let (md, reg_field, rm) = (modrm >> 6, (modrm >> 3) & 7, modrm & 7);
    let imm = if two_byte {
        imm_size_2(op)
    } else {
        imm_size_1(op, reg_field, opsize16)
    }
    .ok_or("an instruction this linker does not rewrite")?;
    if md == 3 {
        return Err("no memory operand");
    }
    // (base, index, scale) as full register numbers.
    let (base, index, scale) = if rm == 4 {
        let sib = at(p).ok_or("truncated")?;
        p += 1;
        let b = sib & 7;
        let i = (sib >> 3) & 7 | rex_x(rx) << 3;
        let base = if md == 0 && b == 5 {
            None
        } else {
            Some(b | rex_b(rx) << 3)
        };
        let index = (i != 4).then_some(i);
        (base, index, sib >> 6)
    } else if md == 0 && rm == 5 {
        return Err("a %rip-relative operand");
    } else {
        (Some(rm | rex_b(rx) << 3), None, 0)
    };
    let has_disp32 = md == 2 || (fs && md == 0 && base.is_none());
    if !has_disp32 || p != off || (!fs && base.is_none()) {
        return Err("the field is not the operand's 32-bit displacement");
    }
    p += 4;
    let end = p + imm;
    if end > section.len() {
        return Err("truncated");
    }
    if base == Some(RSP) || index == Some(RSP) {
        return Err("%rsp in the address");
    }
    let reg = reg_field | rex_r(rx) << 3;
    let mut avoid = vec![reg];
    avoid.extend(base);
    avoid.extend(index);
    let s = pick_scratch(&avoid).ok_or("no free scratch register")?;
    // The new operand: `t` (in s) takes the displacement's place.
    let (new_rex, modrm2, rest): (u8, u8, Vec<u8>) = match (base, index) {
        (None, None) => (rx & !0x3, s, vec![]),
        (Some(b), None) => {
            let (md2, disp) = if b & 7 == 5 {
                (1, vec![0])
            } else {
                (0, vec![])
            };
            let mut rest = vec![(s << 3) | (b & 7)];
            rest.extend(disp);
            (rx & !0x2, md2 << 6 | 4, rest)
        }
        (None, Some(i)) => (rx & !0x1, 4, vec![scale << 6 | (i & 7) << 3 | s]),
        (Some(_), Some(_)) => return Err("both a base and an index register"),
    };
    let section_bytes = |r: std::ops::Range<usize>| section.get(r).ok_or("truncated");
    let mut bytes = section_bytes(start..prefix_end)?.to_vec();
    if rex.is_some() {
        bytes.push(new_rex);
    }
    bytes.extend_from_slice(section_bytes(op_start..modrm_at)?);
    bytes.push(modrm & 0x38 | modrm2);
    bytes.extend(rest);
    bytes.extend_from_slice(section_bytes(off + 4..end)?);
    Ok(Site {
        start,
        len: end - start,
        form: Form::FsMemory { scratch: s },
        bytes,
    })
}

/// `op r/m64, reg` in register-direct form.
fn rr(op: u8, reg: u8, rm: u8) -> [u8; 3] {
    [
        0x48 | (reg >> 3) << 2 | (rm >> 3),
        op,
        0xc0 | (reg & 7) << 3 | (rm & 7),
    ]
}

/// The bytes of the thunk for `site` at address `thunk`: `record` is the
/// address of the variable's `{module, offset}` pair, `core_slot` the
/// address of a pointer to the TLS runtime's address routine, `back` the
/// address after the original instruction.
pub(crate) fn thunk_bytes(
    site: &Site,
    thunk: u64,
    record: u64,
    core_slot: u64,
    back: u64,
) -> Result<Vec<u8>, &'static str> {
    let (s, instr) = match site.form {
        Form::FsMemory { scratch } => (scratch, site.bytes.clone()),
        Form::Mov { dst } => {
            let s = pick_scratch(&[dst]).ok_or("no scratch")?;
            (s, rr(0x89, s, dst).to_vec())
        }
        Form::Add { dst } => {
            let s = pick_scratch(&[dst]).ok_or("no scratch")?;
            (s, rr(0x01, s, dst).to_vec())
        }
        Form::Lea { dst, base } => {
            let s = pick_scratch(&[dst, base]).ok_or("no scratch")?;
            let rex = 0x48 | (dst >> 3) << 2 | (base >> 3);
            let mut v = vec![rex, 0x8d];
            if base & 7 == 5 {
                v.extend([0x44 | (dst & 7) << 3, (s << 3) | (base & 7), 0]);
            } else {
                v.extend([0x04 | (dst & 7) << 3, (s << 3) | (base & 7)]);
            }
            (s, v)
        }
    };
    let mut code: Vec<u8> = Vec::with_capacity(THUNK_SIZE as usize);
    let rel = |code: &Vec<u8>, target: u64, len_after: usize| -> Result<[u8; 4], &'static str> {
        let next = i128::from(thunk) + (code.len() + len_after) as i128;
        i32::try_from(i128::from(target) - next)
            .map(i32::to_le_bytes)
            .map_err(|_| "thunk out of reach")
    };
    code.extend([0x48, 0x8d, 0x64, 0x24, 0x80]); // lea rsp, [rsp - 128]
    code.push(0x50 + s); // push s
    code.push(0x9c); // pushfq
    code.push(0x50); // push rax
    code.extend([0x48, 0x8d, 0x05]); // lea rax, [rip + record]
    let r = rel(&code, record, 4)?;
    code.extend(r);
    code.extend([0xff, 0x15]); // call [rip + core_slot]
    let r = rel(&code, core_slot, 4)?;
    code.extend(r);
    code.extend([0x64, 0x48, 0x2b, 0x04, 0x25, 0, 0, 0, 0]); // sub rax, fs:[0]
    code.extend([0x48, 0x89, 0xc0 | s]); // mov s, rax
    code.push(0x58); // pop rax
    code.push(0x9d); // popfq
    code.extend(instr);
    code.push(0x58 + s); // pop s
    code.extend([0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0]); // lea rsp, [rsp + 128]
    code.push(0xe9); // jmp back
    let r = rel(&code, back, 4)?;
    code.extend(r);
    if code.len() > THUNK_SIZE as usize {
        return Err("thunk too long");
    }
    code.resize(THUNK_SIZE as usize, 0xcc);
    Ok(code)
}

/// The bytes replacing the site: `jmp thunk`, then `nop`s.
pub(crate) fn site_jump(site: &Site, site_addr: u64, thunk: u64) -> Result<Vec<u8>, &'static str> {
    if site.len < 5 {
        return Err("instruction shorter than a jump");
    }
    let disp = i32::try_from(i128::from(thunk) - (i128::from(site_addr) + 5))
        .map_err(|_| "thunk out of reach")?;
    let mut v = vec![0xe9];
    v.extend(disp.to_le_bytes());
    v.resize(site.len, 0x90);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::elf::*;

    #[test]
    fn decodes_the_forms_compilers_emit() {
        // mov x@gottpoff(%rip), %rcx
        let s = decode(&[0x48, 0x8b, 0x0d, 0, 0, 0, 0], 3, R_X86_64_GOTTPOFF).unwrap();
        assert_eq!((s.start, s.len, s.form), (0, 7, Form::Mov { dst: 1 }));
        // add x@gottpoff(%rip), %r9
        let s = decode(&[0x4c, 0x03, 0x0d, 0, 0, 0, 0], 3, R_X86_64_GOTTPOFF).unwrap();
        assert_eq!(s.form, Form::Add { dst: 9 });
        // add $x@tpoff, %rax
        let s = decode(&[0x90, 0x48, 0x05, 0, 0, 0, 0], 3, R_X86_64_TPOFF32).unwrap();
        assert_eq!((s.start, s.len, s.form), (1, 6, Form::Add { dst: 0 }));
        // lea x@tpoff(%rax), %rdx
        let s = decode(&[0x48, 0x8d, 0x90, 0, 0, 0, 0], 3, R_X86_64_TPOFF32).unwrap();
        assert_eq!(s.form, Form::Lea { dst: 2, base: 0 });
        // mov %fs:x@tpoff, %eax -> mov eax, fs:[rsi]
        let s = decode(&[0x64, 0x8b, 0x04, 0x25, 0, 0, 0, 0], 4, R_X86_64_TPOFF32).unwrap();
        assert_eq!((s.start, s.len), (0, 8));
        assert_eq!(s.bytes, [0x64, 0x8b, 0x06]);
        // movl $0x4d, %fs:x@tpoff -> keeps the immediate
        let code = [0x64, 0xc7, 0x04, 0x25, 0, 0, 0, 0, 0x4d, 0, 0, 0];
        let s = decode(&code, 4, R_X86_64_TPOFF32).unwrap();
        assert_eq!(s.len, 12);
        assert_eq!(s.bytes, [0x64, 0xc7, 0x06, 0x4d, 0, 0, 0]);
        // movsbl %fs:x@tpoff(%rsi), %eax -> index rdi (rsi is the base)
        let code = [0x64, 0x0f, 0xbe, 0x86, 0, 0, 0, 0];
        let s = decode(&code, 4, R_X86_64_TPOFF32).unwrap();
        assert_eq!(s.bytes, [0x64, 0x0f, 0xbe, 0x04, 0x3e]);
        // mov %di, %fs:x@tpoff: the operand-size prefix stays.
        let code = [0x64, 0x66, 0x89, 0x3c, 0x25, 0, 0, 0, 0];
        let s = decode(&code, 5, R_X86_64_TPOFF32).unwrap();
        assert_eq!(s.bytes, [0x64, 0x66, 0x89, 0x3e]); // rsi: rdi is the source
                                                       // movl $imm, x@tpoff(%rbx) with %rbx = %fs:0 (g++'s __tls_init).
        let code = [0x00, 0xc7, 0x83, 0, 0, 0, 0, 1, 2, 3, 4];
        let s = decode(&code, 3, R_X86_64_TPOFF32).unwrap();
        assert_eq!((s.start, s.len), (1, 10));
        assert_eq!(s.bytes, [0xc7, 0x04, 0x33, 1, 2, 3, 4]);
        // The same after a byte that may be a REX prefix: ambiguous.
        let code = [0x48, 0xc7, 0x83, 0, 0, 0, 0, 1, 2, 3, 4];
        assert!(decode(&code, 3, R_X86_64_TPOFF32).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_rewrite() {
        // A rip-relative operand is not TPOFF.
        assert!(decode(&[0x8b, 0x05, 0, 0, 0, 0], 2, R_X86_64_TPOFF32).is_err());
        // push %fs:x@tpoff would use the thunk's stack.
        assert!(decode(&[0x64, 0xff, 0x34, 0x25, 0, 0, 0, 0], 4, R_X86_64_TPOFF32).is_err());
        // Base and index.
        let code = [0x64, 0x8b, 0x84, 0x08, 0, 0, 0, 0];
        assert!(decode(&code, 4, R_X86_64_TPOFF32).is_err());
        // Truncated.
        assert!(decode(&[0x8b, 0x05, 0, 0], 0, R_X86_64_GOTTPOFF).is_err());
    }

    #[test]
    fn thunk_fits_and_jumps_back() {
        let s = decode(&[0x48, 0x8b, 0x0d, 0, 0, 0, 0], 3, R_X86_64_GOTTPOFF).unwrap();
        let t = thunk_bytes(&s, 0x10000, 0x20000, 0x20100, 0x5007).unwrap();
        assert_eq!(t.len(), THUNK_SIZE as usize);
        let j = site_jump(&s, 0x5000, 0x10000).unwrap();
        assert_eq!(j[0], 0xe9);
        assert_eq!(&j[5..], &[0x90, 0x90]);
    }
}

//! Moving an instruction to a thunk, on x86-64: how the linker applies
//! relocations no field can hold, the initial/local-exec TLS models and
//! 32-bit references to far data.
//!
//! **TLS.** Exec-model code computes a variable's address as
//! `%fs:0 + tpoff`, with `tpoff` a link-time constant (in the instruction,
//! or in a GOT entry for initial exec). A JIT'd module's block is not in
//! the static TLS block, so its `%fs`-relative offset differs per thread:
//! the thunk first computes this thread's offset `t = address - %fs:0`
//! (through the TLS runtime) into a scratch register, then runs the
//! instruction with the register in place of the constant. It steps over
//! the red zone, preserves every register but the instruction's own
//! results, and changes no flag before the instruction runs. Forms, as
//! gcc and clang emit them (what `ld` relaxes):
//! - `mov x@gottpoff(%rip), %r` / `add x@gottpoff(%rip), %r` (GOTTPOFF);
//! - `mov $x@tpoff, %r`, `add $x@tpoff, %r`, `lea x@tpoff(%b), %r`,
//!   `lea x@tpoff, %r`, `movabs $x@tpoff, %r` (TPOFF32/TPOFF64);
//! - an instruction with a `%fs:x@tpoff(...)` memory operand, or with
//!   `x@tpoff(%b...)` where `%b` holds `%fs:0` (TPOFF32).
//!
//! **Far data.** Code built without `-fPIC` reaches data through 32-bit
//! fields (`x(%rip)`, `x(,%i,8)`, `$x`); when the data is more than 2 GiB
//! away, the thunk loads the address with `movabs` into a scratch register
//! and runs the instruction with it in the operand.
//!
//! In both, a memory operand `disp32(base, index, scale)` becomes
//! `(base + index*scale + S)` with the scratch `S` (`lea S, [S + base]`
//! first when there are both), a push from memory is emulated, and the
//! original instruction becomes `jmp thunk` plus `nop`s. Where an
//! instruction starts is found by decoding its function from the first
//! byte (`x86_64_len.rs`). Anything else is refused with the reason, never
//! guessed.

/// The space reserved for one TLS thunk.
pub(crate) const TLS_THUNK_SIZE: u64 = 128;

/// The space reserved for one far-data thunk.
pub(crate) const FAR_THUNK_SIZE: u64 = 64;

/// What the rewritten instruction does with `t` (the per-thread offset,
/// for TLS) or the far address (for far data), held in a scratch register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// `dst = t` (for far data: `movabs dst, address`).
    Mov { dst: u8 },
    /// `dst += t`.
    Add { dst: u8 },
    /// `dst = base + t`.
    Lea { dst: u8, base: u8 },
    /// `movq $value, addr` with both known: `movq $x, y(%rip)` with `x`
    /// or `y` far (the form has two relocations).
    StoreAbsolute { addr: u64, value: u64 },
    /// An instruction with a memory operand, rewritten to use `scratch`.
    Memory {
        scratch: u8,
        /// Run once the scratch holds its value, changing no flag:
        /// `lea S, [S + base]`.
        pre: Vec<u8>,
        /// The instruction; for a push, `mov S, <operand>` instead.
        instr: Vec<u8>,
        push: bool,
    },
}

/// An instruction to move to a thunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Site {
    /// Offset of the instruction in its section.
    pub(crate) start: usize,
    /// Its length.
    pub(crate) len: usize,
    pub(crate) form: Form,
    /// Bytes from the relocated field to the instruction's end (what a
    /// `%rip`-relative address adds to the field's value).
    pub(crate) field_to_end: usize,
}

/// How a memory operand is rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// TLS: `%fs:disp32(...)`, or `disp32(%base...)` with the thread
    /// pointer in `%base`.
    Tls,
    /// Far data: `disp32(%rip)` or `disp32(base, index, scale)`.
    Far,
    /// Local dynamic with another module's variable: `x@dtpoff(%base...)`,
    /// `%base` holding this module's block; the scratch gets the
    /// variable's address, which replaces base and displacement.
    Dtp,
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

/// The start of the instruction holding byte `off`, walking the code from
/// `from`, the start of an instruction (its function's first byte).
pub(crate) fn instruction_start(
    section: &[u8],
    from: usize,
    off: usize,
) -> Result<usize, &'static str> {
    let mut p = from;
    while p <= off {
        let len = super::x86_64_len::insn_len(section, p)
            .ok_or("cannot decode the code before the instruction")?;
        if p + len > off {
            return Ok(p);
        }
        p += len;
    }
    Err("the field is not inside an instruction")
}

/// Decodes the instruction starting at `start` whose 32-bit (or 64-bit
/// for `TPOFF64`) field of relocation `kind` is at `off`. The start comes
/// from walking the function's code (`x86_64_len.rs`).
pub(crate) fn decode(
    section: &[u8],
    off: usize,
    kind: u32,
    start: usize,
) -> Result<Site, &'static str> {
    let at = |i: usize| section.get(i).copied();
    let back = |n: usize| off.checked_sub(n).and_then(at);
    let from = |n: usize| off.checked_sub(n) == Some(start);
    let reg_site = |len: usize, form: Form| -> Result<Site, &'static str> {
        match form {
            Form::Mov { dst } | Form::Add { dst } if dst == RSP => Err("the destination is %rsp"),
            Form::Lea { dst, base } if dst == RSP || base == RSP => Err("%rsp in the address"),
            _ => Ok(Site {
                start,
                len,
                form,
                field_to_end: start + len - off,
            }),
        }
    };
    match kind {
        object::elf::R_X86_64_GOTTPOFF => {
            let (Some(rex), Some(op), Some(modrm)) = (back(3), back(2), back(1)) else {
                return Err("no room for the instruction");
            };
            if !from(3) || !is_rex_w(rex) || modrm & 0xc7 != 0x05 {
                return Err("not a 64-bit %rip-relative mov or add");
            }
            let dst = (modrm >> 3) & 7 | rex_r(rex) << 3;
            match op {
                0x8b => reg_site(7, Form::Mov { dst }),
                0x03 => reg_site(7, Form::Add { dst }),
                _ => Err("not a mov or add"),
            }
        }
        object::elf::R_X86_64_TPOFF64 => match (back(2), back(1)) {
            (Some(rex), Some(op)) if from(2) && is_rex_w(rex) && (0xb8..=0xbf).contains(&op) => {
                reg_site(
                    10,
                    Form::Mov {
                        dst: (op & 7) | rex_b(rex) << 3,
                    },
                )
            }
            _ => Err("not a movabs"),
        },
        object::elf::R_X86_64_TPOFF32 => {
            if let (true, Some(rex), Some(op), Some(modrm)) = (from(3), back(3), back(2), back(1)) {
                if is_rex_w(rex) {
                    let reg = (modrm >> 3) & 7 | rex_r(rex) << 3;
                    let rm = modrm & 7 | rex_b(rex) << 3;
                    let direct = modrm & 0xf8 == 0xc0; // mod 11, /0
                    match op {
                        0xc7 if direct => return reg_site(7, Form::Mov { dst: rm }),
                        0x81 if direct => return reg_site(7, Form::Add { dst: rm }),
                        0x8d if modrm >> 6 == 2 && modrm & 7 != 4 => {
                            return reg_site(7, Form::Lea { dst: reg, base: rm })
                        }
                        _ => {}
                    }
                }
            }
            if let (true, Some(0x48), Some(0x05)) = (from(2), back(2), back(1)) {
                return reg_site(6, Form::Add { dst: RAX });
            }
            // lea x@tpoff, %r (absolute, no base or index): %r = t.
            if let (true, Some(rex), Some(0x8d), Some(modrm), Some(0x25)) =
                (from(4), back(4), back(3), back(2), back(1))
            {
                if is_rex_w(rex) && modrm & 0xc7 == 0x04 {
                    let dst = (modrm >> 3) & 7 | rex_r(rex) << 3;
                    return reg_site(8, Form::Mov { dst });
                }
            }
            decode_memory(section, off, start, Mode::Tls)
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
        | 0x8d
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
        0xfe => match reg {
            0 | 1 => 0,
            _ => return None,
        },
        0xff => match reg {
            0 | 1 | 6 => 0,
            _ => return None, // calls and jumps
        },
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

/// Decodes a local-dynamic access to another module's variable: the
/// instruction at `start` whose `DTPOFF32` displacement is at `off`.
pub(crate) fn decode_dtpoff(
    section: &[u8],
    off: usize,
    start: usize,
) -> Result<Site, &'static str> {
    decode_memory(section, off, start, Mode::Dtp)
}

/// Decodes a far-data reference: the instruction at `start` whose 32-bit
/// field of relocation `kind` (`PC32`, `32`, `32S`) is at `off`.
pub(crate) fn decode_far(
    section: &[u8],
    off: usize,
    kind: u32,
    start: usize,
) -> Result<Site, &'static str> {
    let at = |i: usize| section.get(i).copied();
    if kind != object::elf::R_X86_64_PC32 {
        // mov $x, %r32 / mov $x, %r64 (sign-extended): movabs.
        if let (Some(op @ 0xb8..=0xbf), true) = (at(start), off == start + 1) {
            return Ok(Site {
                start,
                len: 5,
                form: Form::Mov { dst: op & 7 },
                field_to_end: 4,
            });
        }
        if let (Some(rex @ 0x40..=0x4f), Some(op @ 0xb8..=0xbf), true) =
            (at(start), at(start + 1), off == start + 2)
        {
            if rex & 8 == 0 {
                return Ok(Site {
                    start,
                    len: 6,
                    form: Form::Mov {
                        dst: (op & 7) | rex_b(rex) << 3,
                    },
                    field_to_end: 4,
                });
            }
        }
        if let (Some(rex), Some(0xc7), Some(modrm), true) =
            (at(start), at(start + 1), at(start + 2), off == start + 3)
        {
            if is_rex_w(rex) && modrm & 0xf8 == 0xc0 {
                return Ok(Site {
                    start,
                    len: 7,
                    form: Form::Mov {
                        dst: (modrm & 7) | rex_b(rex) << 3,
                    },
                    field_to_end: 4,
                });
            }
        }
    }
    if kind == object::elf::R_X86_64_32S {
        if let Some(site) = decode_store_address(section, off, start)? {
            return Ok(site);
        }
    }
    decode_memory(section, off, start, Mode::Far)
}

/// `movq $imm32, disp32(%rip)` (`REX.W c7 05`) at `start`: the offsets of
/// its displacement and its immediate.
pub(crate) fn store_rip_fields(section: &[u8], start: usize) -> Option<(usize, usize)> {
    let b = section.get(start..start + 11)?;
    (is_rex_w(b[0]) && b[0] & 0x7 == 0 && b[1] == 0xc7 && b[2] == 0x05)
        .then_some((start + 3, start + 7))
}

/// `movq $x, mem` (`REX.W c7 /0`, the address in the immediate at `off`):
/// becomes `mov mem, S` with S holding the address. `%rsp`-based operands
/// are shifted by what the thunk pushed. `None` if not this form.
fn decode_store_address(
    section: &[u8],
    off: usize,
    start: usize,
) -> Result<Option<Site>, &'static str> {
    let at = |i: usize| section.get(i).copied();
    let (Some(rex), Some(0xc7), Some(modrm)) = (at(start), at(start + 1), at(start + 2)) else {
        return Ok(None);
    };
    if !is_rex_w(rex) || modrm & 0x38 != 0 || modrm >> 6 == 3 {
        return Ok(None);
    }
    let (md, rm) = (modrm >> 6, modrm & 7);
    let mut p = start + 3;
    let sib = if rm == 4 {
        p += 1;
        Some(at(p - 1).ok_or("truncated")?)
    } else {
        None
    };
    if md == 0 && rm == 5 {
        return Err("a %rip-relative destination");
    }
    let disp_len = match md {
        1 => 1,
        2 => 4,
        _ if sib.is_some_and(|b| b & 7 == 5) => 4,
        _ => 0,
    };
    let disp_at = p;
    p += disp_len;
    if p != off || p + 4 > section.len() {
        return Ok(None);
    }
    let base = sib.map_or(rm, |b| b & 7) | rex_b(rex) << 3;
    let index = sib
        .map(|b| (b >> 3) & 7 | rex_x(rex) << 3)
        .filter(|&i| i != RSP);
    let uses_base = !(md == 0 && sib.is_some_and(|b| b & 7 == 5));
    let mut avoid = vec![];
    if uses_base {
        avoid.push(base);
    }
    avoid.extend(index);
    let s = pick_scratch(&avoid).ok_or("no free scratch register")?;
    let mut instr = vec![rex & !0x4, 0x89];
    let disp: i64 = match disp_len {
        1 => i64::from(at(disp_at).ok_or("truncated")? as i8),
        4 => i64::from(i32::from_le_bytes(
            section
                .get(disp_at..disp_at + 4)
                .and_then(|b| b.try_into().ok())
                .ok_or("truncated")?,
        )),
        _ => 0,
    };
    if uses_base && base == RSP {
        // The thunk moved %rsp down by 128 + 8 (the saved scratch).
        let d = i32::try_from(disp + 136).map_err(|_| "displacement out of range")?;
        instr.push(0x80 | s << 3 | rm);
        instr.extend(sib);
        instr.extend(d.to_le_bytes());
    } else {
        instr.push(md << 6 | s << 3 | rm);
        instr.extend(sib);
        instr.extend(
            section
                .get(disp_at..disp_at + disp_len)
                .ok_or("truncated")?,
        );
    }
    Ok(Some(Site {
        start,
        len: off + 4 - start,
        form: Form::Memory {
            scratch: s,
            pre: vec![],
            instr,
            push: false,
        },
        field_to_end: 4,
    }))
}

/// Decodes the instruction at `start` whose memory operand's disp32 is at
/// `off`, and rewrites the operand to use a scratch register.
fn decode_memory(
    section: &[u8],
    off: usize,
    start: usize,
    mode: Mode,
) -> Result<Site, &'static str> {
    let at = |i: usize| section.get(i).copied();
    let mut p = start;
    let mut opsize16 = false;
    let mut fs = false;
    // (A `lock` prefix stays: the instruction runs whole in the thunk.)
    while let Some(b @ (0x64 | 0x66 | 0xf0 | 0xf2 | 0xf3)) = at(p) {
        opsize16 |= b == 0x66;
        fs |= b == 0x64;
        p += 1;
    }
    let prefix_end = p;
    // A VEX prefix (AVX): its R, X, B bits (inverted) stand for REX's.
    let vex = match at(p) {
        Some(0xc5) => {
            let v = at(p + 1).ok_or("truncated")?;
            p += 2;
            // (REX equivalent, map, vvvv)
            Some((0x40 | (!v >> 5) & 4, 1, !v >> 3 & 0xf))
        }
        Some(0xc4) => {
            let (b1, b2) = (at(p + 1).ok_or("truncated")?, at(p + 2).ok_or("truncated")?);
            p += 3;
            Some((0x40 | (!b1 >> 5) & 7, b1 & 0x1f, !b2 >> 3 & 0xf))
        }
        Some(0x62) => {
            // EVEX: P0 = R X B R' 0 m m m (inverted R, X, B, R').
            let (p0, p1) = (at(p + 1).ok_or("truncated")?, at(p + 2).ok_or("truncated")?);
            p += 4;
            Some((0x40 | (!p0 >> 5) & 7, (p0 & 7) | 0x10, !p1 >> 3 & 0xf))
        }
        _ => None,
    };
    if vex.is_some() && opsize16 {
        return Err("a prefix before VEX");
    }
    let rex = match (vex, at(p)) {
        (None, Some(b)) if b & 0xf0 == 0x40 => {
            p += 1;
            Some(b)
        }
        _ => None,
    };
    let rx = vex.map_or(rex.unwrap_or(0), |v| v.0);
    let op_start = p;
    let two_byte = vex.is_none() && at(p) == Some(0x0f);
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
    let imm = match vex.map(|v| v.1 & 0xf) {
        Some(1) => imm_size_2(op),
        // Gathers, scatters and their prefetches address through VSIB.
        Some(2) if matches!(op, 0x90..=0x93 | 0xa0..=0xa3 | 0xc6 | 0xc7) => None,
        Some(2) => Some(0),
        Some(3) => Some(1),
        Some(5 | 6) if vex.is_some_and(|v| v.1 & 0x10 != 0) => Some(0), // EVEX FP16
        Some(_) => None,
        None if two_byte => imm_size_2(op),
        None => imm_size_1(op, reg_field, opsize16),
    }
    .ok_or("an instruction this linker does not rewrite")?;
    if md == 3 {
        return Err("no memory operand");
    }
    let push = vex.is_none() && !two_byte && op == 0xff && reg_field == 6;
    if push && (opsize16 || rx & 8 != 0) {
        return Err("a 16-bit push");
    }
    if fs && (mode != Mode::Tls || (vex.is_none() && !two_byte && op == 0x8d)) {
        return Err("an %fs operand where none was expected");
    }
    // (base, index, scale) as full register numbers; rip-relative has
    // neither.
    let mut rip = false;
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
        rip = true;
        (None, None, 0)
    } else {
        (Some(rm | rex_b(rx) << 3), None, 0)
    };
    let has_disp32 = md == 2 || (md == 0 && base.is_none());
    if !has_disp32 || p != off {
        return Err("the field is not the operand's 32-bit displacement");
    }
    match mode {
        Mode::Tls | Mode::Dtp if rip => return Err("a %rip-relative operand"),
        Mode::Tls if !fs && base.is_none() => return Err("no %fs prefix and no base register"),
        Mode::Dtp if base.is_none() => return Err("no base register"),
        _ => {}
    }
    // Local dynamic: the module's base is not used; the scratch holds the
    // address.
    let base = if mode == Mode::Dtp { None } else { base };
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
    avoid.extend(vex.map(|v| v.2));
    let s = pick_scratch(&avoid).ok_or("no free scratch register")?;
    // The new operand: the scratch register takes the displacement's place.
    let mut pre = Vec::new();
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
        (Some(b), Some(i)) => {
            // lea s, [s + b*1]
            pre = vec![0x48 | (b >> 3) << 1, 0x8d, 0x04 | s << 3, (b & 7) << 3 | s];
            (rx & !0x1, 4, vec![scale << 6 | (i & 7) << 3 | s])
        }
    };
    let section_bytes = |r: std::ops::Range<usize>| section.get(r).ok_or("truncated");
    let mut instr = Vec::new();
    if push {
        // mov s, <operand> (with the %fs prefix if any)
        if fs {
            instr.push(0x64);
        }
        instr.extend([0x48 | (new_rex & 0x3), 0x8b, (modrm2 & 0xc7) | s << 3]);
    } else {
        instr.extend_from_slice(section_bytes(start..prefix_end)?);
        if rex.is_some() {
            instr.push(new_rex);
        }
        match (vex, section_bytes(prefix_end..op_start)?) {
            (Some(_), &[first @ (0xc4 | 0x62), b1, ref rest @ ..]) => {
                // The new X and B, inverted.
                let xb = (!new_rex & 3) << 5;
                instr.extend([first, b1 & !0x60 | xb]);
                instr.extend_from_slice(rest);
            }
            (Some(_), vex_bytes) => instr.extend_from_slice(vex_bytes),
            (None, _) => {}
        }
        instr.extend_from_slice(section_bytes(op_start..modrm_at)?);
        instr.push(modrm & 0x38 | modrm2);
    }
    instr.extend(rest);
    if !push {
        instr.extend_from_slice(section_bytes(off + 4..end)?);
    }
    Ok(Site {
        start,
        len: end - start,
        form: Form::Memory {
            scratch: s,
            pre,
            instr,
            push,
        },
        field_to_end: end - off,
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

/// What the thunk puts in the scratch register.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value {
    /// This thread's `address - %fs:0` of the `{module, offset}` pair at
    /// `record`, through the routine whose address is at `core_slot` (the
    /// `%fs` offset of the thread's table slot in the next word: the
    /// routine's fast path is inlined).
    Tls { record: u64, core_slot: u64 },
    /// The same without subtracting `%fs:0`: the address itself.
    TlsAddress { record: u64, core_slot: u64 },
    /// A constant: the far address.
    Far(u64),
}

/// The bytes of the thunk for `site` at address `thunk`, jumping back to
/// `back` (the address after the original instruction).
pub(crate) fn thunk_bytes(
    site: &Site,
    thunk: u64,
    value: Value,
    back: u64,
) -> Result<Vec<u8>, &'static str> {
    let size = match value {
        Value::Far(_) => FAR_THUNK_SIZE,
        _ => TLS_THUNK_SIZE,
    } as usize;
    let mut code: Vec<u8> = Vec::with_capacity(size);
    let rel = |code: &Vec<u8>, target: u64, len_after: usize| -> Result<[u8; 4], &'static str> {
        let next = i128::from(thunk) + (code.len() + len_after) as i128;
        i32::try_from(i128::from(target) - next)
            .map(i32::to_le_bytes)
            .map_err(|_| "thunk out of reach")
    };
    let jmp_back = |code: &mut Vec<u8>| -> Result<(), &'static str> {
        code.push(0xe9);
        let r = rel(code, back, 4)?;
        code.extend(r);
        Ok(())
    };
    if let Form::StoreAbsolute { addr, value } = site.form {
        code.extend([0x48, 0x8d, 0x64, 0x24, 0x80]); // lea rsp, [rsp - 128]
        code.extend([0x56, 0x57]); // push rsi; push rdi
        code.extend([0x48, 0xbe]); // movabs rsi, addr
        code.extend(addr.to_le_bytes());
        code.extend([0x48, 0xbf]); // movabs rdi, value
        code.extend(value.to_le_bytes());
        code.extend([0x48, 0x89, 0x3e]); // mov [rsi], rdi
        code.extend([0x5f, 0x5e]); // pop rdi; pop rsi
        code.extend([0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0]); // lea rsp, [rsp + 128]
        jmp_back(&mut code)?;
        code.resize(size, 0xcc);
        return Ok(code);
    }
    if let (Value::Far(addr), Form::Mov { dst }) = (value, &site.form) {
        // movabs dst, addr
        code.extend([0x48 | (dst >> 3), 0xb8 + (dst & 7)]);
        code.extend(addr.to_le_bytes());
        jmp_back(&mut code)?;
        code.resize(size, 0xcc);
        return Ok(code);
    }
    let (s, pre, instr, push) = match &site.form {
        Form::Memory {
            scratch,
            pre,
            instr,
            push,
        } => (*scratch, pre.clone(), instr.clone(), *push),
        Form::StoreAbsolute { .. } => return Err("internal: store form"),
        Form::Mov { dst } => {
            let s = pick_scratch(&[*dst]).ok_or("no scratch")?;
            (s, vec![], rr(0x89, s, *dst).to_vec(), false)
        }
        Form::Add { dst } => {
            let s = pick_scratch(&[*dst]).ok_or("no scratch")?;
            (s, vec![], rr(0x01, s, *dst).to_vec(), false)
        }
        Form::Lea { dst, base } => {
            let (dst, base) = (*dst, *base);
            let s = pick_scratch(&[dst, base]).ok_or("no scratch")?;
            let rex = 0x48 | (dst >> 3) << 2 | (base >> 3);
            let mut v = vec![rex, 0x8d];
            if base & 7 == 5 {
                v.extend([0x44 | (dst & 7) << 3, (s << 3) | (base & 7), 0]);
            } else {
                v.extend([0x04 | (dst & 7) << 3, (s << 3) | (base & 7)]);
            }
            (s, vec![], v, false)
        }
    };
    code.extend([0x48, 0x8d, 0x64, 0x24, 0x80]); // lea rsp, [rsp - 128]
    code.push(0x50 + s); // push s
    match value {
        Value::Tls { record, core_slot } | Value::TlsAddress { record, core_slot } => {
            // Nothing here changes the flags (the runtime's routine keeps
            // them): s = address - %fs:0 as address + ~%fs:0 + 1.
            code.push(0x50); // push rax
            code.push(0x51); // push rcx
            code.extend([0x48, 0x8d, 0x05]); // lea rax, [rip + record]
            let r = rel(&code, record, 4)?;
            code.extend(r);
            // The routine's fast path (flag-free): table, block, address.
            code.extend([0x48, 0x8b, 0x0d]); // mov rcx, [rip + core_slot + 8]
            let r = rel(&code, core_slot + 8, 4)?;
            code.extend(r);
            code.extend([0x64, 0x48, 0x8b, 0x09]); // mov rcx, fs:[rcx]
            code.extend([0xe3, 19]); // jrcxz slow
            code.extend([0x48, 0x8b, s << 3]); // mov s, [rax]
            code.extend([0x48, 0x8b, 0x0c, 0xc1 | s << 3]); // mov rcx, [rcx + 8*s]
            code.extend([0xe3, 10]); // jrcxz slow
            code.extend([0x48, 0x8b, 0x40 | s << 3, 0x08]); // mov s, [rax + 8]
            code.extend([0x48, 0x8d, 0x04, 0x01 | s << 3]); // lea rax, [rcx + s]
            code.extend([0xeb, 6]); // jmp join
                                    // slow:
            code.extend([0xff, 0x15]); // call [rip + core_slot]
            let r = rel(&code, core_slot, 4)?;
            code.extend(r);
            // join:
            code.push(0x59); // pop rcx
            if matches!(value, Value::Tls { .. }) {
                code.extend([0x64, 0x48, 0x8b, 0x04 | s << 3, 0x25, 0, 0, 0, 0]); // mov s, fs:[0]
                code.extend([0x48, 0xf7, 0xd0 | s]); // not s
                code.extend([0x48, 0x8d, 0x44 | s << 3, s << 3, 0x01]); // lea s, [rax + s + 1]
            } else {
                code.extend([0x48, 0x89, 0xc0 | s]); // mov s, rax
            }
            code.push(0x58); // pop rax
            code.extend(pre);
        }
        Value::Far(addr) => {
            code.extend([0x48, 0xb8 + s]); // movabs s, addr
            code.extend(addr.to_le_bytes());
            code.extend(pre);
        }
    }
    code.extend(instr);
    if push {
        code.extend([0x48, 0x87, 0x04 | s << 3, 0x24]); // xchg s, [rsp]
        code.extend([0x8f, 0x44, 0x24, 0x78]); // pop qword [rsp + 120]
        code.extend([0x48, 0x8d, 0x64, 0x24, 0x78]); // lea rsp, [rsp + 120]
    } else {
        code.push(0x58 + s); // pop s
        code.extend([0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0]); // lea rsp, [rsp + 128]
    }
    jmp_back(&mut code)?;
    if code.len() > size {
        return Err("thunk too long");
    }
    code.resize(size, 0xcc);
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

    fn instr(s: &Site) -> Vec<u8> {
        match &s.form {
            Form::Memory { instr, .. } => instr.clone(),
            other => panic!("not a memory form: {other:?}"),
        }
    }

    /// Decodes with the start found by walking from byte 0.
    fn dec(code: &[u8], off: usize, kind: u32) -> Result<Site, &'static str> {
        decode(code, off, kind, instruction_start(code, 0, off)?)
    }

    #[test]
    fn decodes_the_forms_compilers_emit() {
        // mov x@gottpoff(%rip), %rcx
        let s = dec(&[0x48, 0x8b, 0x0d, 0, 0, 0, 0], 3, R_X86_64_GOTTPOFF).unwrap();
        assert_eq!((s.start, s.len, s.form), (0, 7, Form::Mov { dst: 1 }));
        // add x@gottpoff(%rip), %r9
        let s = dec(&[0x4c, 0x03, 0x0d, 0, 0, 0, 0], 3, R_X86_64_GOTTPOFF).unwrap();
        assert_eq!(s.form, Form::Add { dst: 9 });
        // add $x@tpoff, %rax
        let s = dec(&[0x90, 0x48, 0x05, 0, 0, 0, 0], 3, R_X86_64_TPOFF32).unwrap();
        assert_eq!((s.start, s.len, s.form), (1, 6, Form::Add { dst: 0 }));
        // lea x@tpoff(%rax), %rdx
        let s = dec(&[0x48, 0x8d, 0x90, 0, 0, 0, 0], 3, R_X86_64_TPOFF32).unwrap();
        assert_eq!(s.form, Form::Lea { dst: 2, base: 0 });
        // mov %fs:x@tpoff, %eax -> mov eax, fs:[rsi]
        let s = dec(&[0x64, 0x8b, 0x04, 0x25, 0, 0, 0, 0], 4, R_X86_64_TPOFF32).unwrap();
        assert_eq!((s.start, s.len), (0, 8));
        assert_eq!(instr(&s), [0x64, 0x8b, 0x06]);
        // movl $0x4d, %fs:x@tpoff -> keeps the immediate
        let code = [0x64, 0xc7, 0x04, 0x25, 0, 0, 0, 0, 0x4d, 0, 0, 0];
        let s = dec(&code, 4, R_X86_64_TPOFF32).unwrap();
        assert_eq!(s.len, 12);
        assert_eq!(instr(&s), [0x64, 0xc7, 0x06, 0x4d, 0, 0, 0]);
        // movsbl %fs:x@tpoff(%rsi), %eax -> index rdi (rsi is the base)
        let code = [0x64, 0x0f, 0xbe, 0x86, 0, 0, 0, 0];
        let s = dec(&code, 4, R_X86_64_TPOFF32).unwrap();
        assert_eq!(instr(&s), [0x64, 0x0f, 0xbe, 0x04, 0x3e]);
        // mov %di, %fs:x@tpoff: the operand-size prefix stays.
        let code = [0x64, 0x66, 0x89, 0x3c, 0x25, 0, 0, 0, 0];
        let s = dec(&code, 5, R_X86_64_TPOFF32).unwrap();
        assert_eq!(instr(&s), [0x64, 0x66, 0x89, 0x3e]); // rsi: rdi is the source
                                                         // movl $imm, x@tpoff(%rbx) with %rbx = %fs:0 (g++'s __tls_init).
        let code = [0x90, 0xc7, 0x83, 0, 0, 0, 0, 1, 2, 3, 4];
        let s = dec(&code, 3, R_X86_64_TPOFF32).unwrap();
        assert_eq!((s.start, s.len), (1, 10));
        assert_eq!(instr(&s), [0xc7, 0x04, 0x33, 1, 2, 3, 4]);
        // With a REX prefix: a 64-bit store.
        let code = [0x48, 0xc7, 0x83, 0, 0, 0, 0, 1, 2, 3, 4];
        let s = dec(&code, 3, R_X86_64_TPOFF32).unwrap();
        assert_eq!((s.start, s.len), (0, 11));
        assert_eq!(instr(&s), [0x48, 0xc7, 0x04, 0x33, 1, 2, 3, 4]);
        // lea x@tpoff, %r14
        let code = [0x4c, 0x8d, 0x34, 0x25, 0, 0, 0, 0];
        assert_eq!(
            dec(&code, 4, R_X86_64_TPOFF32).unwrap().form,
            Form::Mov { dst: 14 }
        );
    }

    #[test]
    fn base_and_index_and_push() {
        // movzwl %fs:x@tpoff(%rax,%rax,1), %eax -> lea rsi,[rsi+rax]; fs:[rsi+rax]
        let code = [0x64, 0x0f, 0xb7, 0x84, 0x00, 0, 0, 0, 0];
        let s = dec(&code, 5, R_X86_64_TPOFF32).unwrap();
        let Form::Memory { pre, instr, .. } = &s.form else {
            panic!()
        };
        assert_eq!(pre, &[0x48, 0x8d, 0x04 | 6 << 3, 0x06]);
        assert_eq!(instr, &[0x64, 0x0f, 0xb7, 0x04, 0x06]);
        // push %fs:x@tpoff -> mov rsi, fs:[rsi]
        let code = [0x64, 0xff, 0x34, 0x25, 0, 0, 0, 0];
        let s = dec(&code, 4, R_X86_64_TPOFF32).unwrap();
        let Form::Memory { instr, push, .. } = &s.form else {
            panic!()
        };
        assert!(*push);
        assert_eq!(instr, &[0x64, 0x48, 0x8b, 0x3f]); // rdi: the /6 field is avoided
    }

    #[test]
    fn far_data_forms() {
        let far = |code: &[u8], off: usize, kind: u32| {
            decode_far(code, off, kind, instruction_start(code, 0, off)?)
        };
        // mov x(%rip), %rdi -> mov rdi, [rsi]; the address adds 4.
        let s = far(&[0x48, 0x8b, 0x3d, 0, 0, 0, 0], 3, R_X86_64_PC32).unwrap();
        assert_eq!((instr(&s), s.field_to_end), (vec![0x48, 0x8b, 0x3e], 4));
        // movl $5, x(%rip): the immediate follows the field.
        let code = [0xc7, 0x05, 0, 0, 0, 0, 5, 0, 0, 0];
        let s = far(&code, 2, R_X86_64_PC32).unwrap();
        assert_eq!(
            (instr(&s), s.field_to_end),
            (vec![0xc7, 0x06, 5, 0, 0, 0], 8)
        );
        // mov x(,%rax,8), %rdx -> mov rdx, [rsi + rax*8]
        let code = [0x48, 0x8b, 0x14, 0xc5, 0, 0, 0, 0];
        let s = far(&code, 4, R_X86_64_32S).unwrap();
        assert_eq!(instr(&s), vec![0x48, 0x8b, 0x14, 0xc6]);
        // mov $x, %edi -> movabs
        let s = far(&[0xbf, 0, 0, 0, 0], 1, R_X86_64_32).unwrap();
        assert_eq!(s.form, Form::Mov { dst: 7 });
        let t = thunk_bytes(&s, 0x1000, Value::Far(0x7fff_0000_1234), 0x5005).unwrap();
        assert_eq!(&t[..10], &[0x48, 0xbf, 0x34, 0x12, 0, 0, 0xff, 0x7f, 0, 0]);
        // movq $x, -0x18(%rbp) -> mov [rbp - 0x18], rsi
        let code = [0x48, 0xc7, 0x45, 0xe8, 0, 0, 0, 0];
        let s = far(&code, 4, R_X86_64_32S).unwrap();
        assert_eq!(instr(&s), vec![0x48, 0x89, 0x75, 0xe8]);
        // movq $x, 8(%rsp): the thunk's pushes are added.
        let code = [0x48, 0xc7, 0x44, 0x24, 0x08, 0, 0, 0, 0];
        let s = far(&code, 5, R_X86_64_32S).unwrap();
        assert_eq!(instr(&s), vec![0x48, 0x89, 0xb4, 0x24, 144, 0, 0, 0]);
        // lock addl $1, x(%rip) stays atomic: lock add dword [rsi], 1
        let code = [0xf0, 0x83, 0x05, 0, 0, 0, 0, 1];
        let s = far(&code, 3, R_X86_64_PC32).unwrap();
        assert_eq!((instr(&s), s.field_to_end), (vec![0xf0, 0x83, 0x06, 1], 5));
        // call *x(%rip) is not moved.
        assert!(far(&[0xff, 0x15, 0, 0, 0, 0], 2, R_X86_64_PC32).is_err());
    }

    #[test]
    fn vex_instructions() {
        // vmovsd %fs:x@tpoff, %xmm0 -> vmovsd xmm0, fs:[rsi]
        let code = [0x64, 0xc5, 0xfb, 0x10, 0x04, 0x25, 0, 0, 0, 0];
        let s = dec(&code, 6, R_X86_64_TPOFF32).unwrap();
        assert_eq!(instr(&s), vec![0x64, 0xc5, 0xfb, 0x10, 0x06]);
        // vmulsd %fs:x@tpoff(%r9,%r8,8), %xmm1, %xmm2 (3-byte VEX, X and
        // B set): base and index, so the scratch takes the base first
        // (lea) and then its place (B clear, X kept).
        let code = [0x64, 0xc4, 0x81, 0x73, 0x59, 0x94, 0xc1, 0, 0, 0, 0];
        let s = dec(&code, 7, R_X86_64_TPOFF32).unwrap();
        let Form::Memory { pre, instr, .. } = &s.form else {
            panic!()
        };
        assert_eq!(pre, &[0x4a, 0x8d, 0x34, 0x0e]); // lea rsi, [rsi + r9]
        assert_eq!(instr, &[0x64, 0xc4, 0xa1, 0x73, 0x59, 0x14, 0xc6]);
    }

    #[test]
    fn evex_instructions() {
        // vmovups %fs:x@tpoff(%r9), %zmm1 (62 d1 7c 48 10 89 disp32):
        // base r9 (B set), the scratch is the index (X stays clear).
        let code = [0x64, 0x62, 0xd1, 0x7c, 0x48, 0x10, 0x89, 0, 0, 0, 0];
        let s = dec(&code, 7, R_X86_64_TPOFF32).unwrap();
        assert_eq!(s.len, 11);
        assert_eq!(
            instr(&s),
            vec![0x64, 0x62, 0xd1, 0x7c, 0x48, 0x10, 0x0c, 0x31]
        );
        // A gather (VSIB) is refused.
        let code = [0x64, 0x62, 0xd2, 0x7d, 0x49, 0x90, 0x8c, 0x01, 0, 0, 0, 0];
        assert!(dec(&code, 8, R_X86_64_TPOFF32).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_rewrite() {
        // A rip-relative operand is not TPOFF.
        assert!(dec(&[0x8b, 0x05, 0, 0, 0, 0], 2, R_X86_64_TPOFF32).is_err());
        // call *%fs:x@tpoff would run the callee on the thunk's stack.
        assert!(dec(&[0x64, 0xff, 0x14, 0x25, 0, 0, 0, 0], 4, R_X86_64_TPOFF32).is_err());
        // lea with %fs ignores the segment.
        let code = [0x64, 0x48, 0x8d, 0x04, 0x25, 0, 0, 0, 0];
        assert!(dec(&code, 5, R_X86_64_TPOFF32).is_err());
        // Truncated.
        assert!(dec(&[0x8b, 0x05, 0, 0], 0, R_X86_64_GOTTPOFF).is_err());
    }

    #[test]
    fn thunk_fits_and_jumps_back() {
        let s = dec(&[0x48, 0x8b, 0x0d, 0, 0, 0, 0], 3, R_X86_64_GOTTPOFF).unwrap();
        let value = Value::Tls {
            record: 0x20000,
            core_slot: 0x20100,
        };
        let t = thunk_bytes(&s, 0x10000, value, 0x5007).unwrap();
        assert_eq!(t.len(), TLS_THUNK_SIZE as usize);
        // The inlined fast path's jumps land on the slow call and after it.
        let slow = t.windows(2).position(|w| w == [0xff, 0x15]).unwrap();
        let first = t.windows(2).position(|w| w[0] == 0xe3).unwrap();
        assert_eq!(first + 2 + usize::from(t[first + 1]), slow);
        let second = first + 2 + t[first + 2..].iter().position(|&b| b == 0xe3).unwrap();
        assert_eq!(second + 2 + usize::from(t[second + 1]), slow);
        assert_eq!(t[slow - 2..slow], [0xeb, 6]);
        assert_eq!(t[slow + 6], 0x59); // pop rcx
        let j = site_jump(&s, 0x5000, 0x10000).unwrap();
        assert_eq!(j[0], 0xe9);
        assert_eq!(&j[5..], &[0x90, 0x90]);
    }
}

//! x86-64 specifics: relocation types (names, field widths, what each
//! needs from layout), the arithmetic that applies them with overflow
//! checks, GOTPCRELX relaxation, and the bytes of PLT stubs and the
//! per-link `atexit` thunk.
//!
//! Invariants: every write is bounds-checked against the section slice;
//! every narrowing is range-checked and reported as an overflow, never
//! truncated. A port to another architecture adds a sibling file with the
//! same functions; nothing else in `link/` knows instruction encodings.

use object::elf::*;

/// The size of one PLT stub: `jmp *disp32(%rip)` padded with `int3`.
pub(crate) const STUB_SIZE: u64 = 8;

/// The size reserved for the `atexit` thunk.
pub(crate) const ATEXIT_THUNK_SIZE: u64 = 32;

/// The ELF name of an x86-64 relocation type.
pub(crate) fn relocation_name(kind: u32) -> Option<&'static str> {
    Some(match kind {
        R_X86_64_NONE => "R_X86_64_NONE",
        R_X86_64_64 => "R_X86_64_64",
        R_X86_64_PC32 => "R_X86_64_PC32",
        R_X86_64_GOT32 => "R_X86_64_GOT32",
        R_X86_64_PLT32 => "R_X86_64_PLT32",
        R_X86_64_COPY => "R_X86_64_COPY",
        R_X86_64_GLOB_DAT => "R_X86_64_GLOB_DAT",
        R_X86_64_JUMP_SLOT => "R_X86_64_JUMP_SLOT",
        R_X86_64_RELATIVE => "R_X86_64_RELATIVE",
        R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
        R_X86_64_32 => "R_X86_64_32",
        R_X86_64_32S => "R_X86_64_32S",
        R_X86_64_16 => "R_X86_64_16",
        R_X86_64_PC16 => "R_X86_64_PC16",
        R_X86_64_8 => "R_X86_64_8",
        R_X86_64_PC8 => "R_X86_64_PC8",
        R_X86_64_DTPMOD64 => "R_X86_64_DTPMOD64",
        R_X86_64_DTPOFF64 => "R_X86_64_DTPOFF64",
        R_X86_64_TPOFF64 => "R_X86_64_TPOFF64",
        R_X86_64_TLSGD => "R_X86_64_TLSGD",
        R_X86_64_TLSLD => "R_X86_64_TLSLD",
        R_X86_64_DTPOFF32 => "R_X86_64_DTPOFF32",
        R_X86_64_GOTTPOFF => "R_X86_64_GOTTPOFF",
        R_X86_64_TPOFF32 => "R_X86_64_TPOFF32",
        R_X86_64_PC64 => "R_X86_64_PC64",
        R_X86_64_GOTOFF64 => "R_X86_64_GOTOFF64",
        R_X86_64_GOTPC32 => "R_X86_64_GOTPC32",
        R_X86_64_GOT64 => "R_X86_64_GOT64",
        R_X86_64_GOTPCREL64 => "R_X86_64_GOTPCREL64",
        R_X86_64_GOTPC64 => "R_X86_64_GOTPC64",
        R_X86_64_GOTPLT64 => "R_X86_64_GOTPLT64",
        R_X86_64_PLTOFF64 => "R_X86_64_PLTOFF64",
        R_X86_64_SIZE32 => "R_X86_64_SIZE32",
        R_X86_64_SIZE64 => "R_X86_64_SIZE64",
        R_X86_64_GOTPC32_TLSDESC => "R_X86_64_GOTPC32_TLSDESC",
        R_X86_64_TLSDESC_CALL => "R_X86_64_TLSDESC_CALL",
        R_X86_64_TLSDESC => "R_X86_64_TLSDESC",
        R_X86_64_IRELATIVE => "R_X86_64_IRELATIVE",
        R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
        R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
        R_X86_64_CODE_4_GOTPCRELX => "R_X86_64_CODE_4_GOTPCRELX",
        R_X86_64_CODE_4_GOTTPOFF => "R_X86_64_CODE_4_GOTTPOFF",
        _ => return None,
    })
}

/// The width in bytes of the field a supported relocation writes; `None`
/// for types this linker refuses (dynamic-only types, APX encodings).
/// Thread-local types are applied by `tls_link.rs`.
pub(crate) fn field_width(kind: u32) -> Option<u64> {
    Some(match kind {
        R_X86_64_NONE => 0,
        R_X86_64_8 | R_X86_64_PC8 => 1,
        R_X86_64_16 | R_X86_64_PC16 => 2,
        R_X86_64_PC32
        | R_X86_64_PLT32
        | R_X86_64_32
        | R_X86_64_32S
        | R_X86_64_GOT32
        | R_X86_64_GOTPCREL
        | R_X86_64_GOTPCRELX
        | R_X86_64_REX_GOTPCRELX
        | R_X86_64_GOTPC32
        | R_X86_64_SIZE32
        | R_X86_64_TLSGD
        | R_X86_64_TLSLD
        | R_X86_64_DTPOFF32
        | R_X86_64_GOTTPOFF
        | R_X86_64_TPOFF32
        | R_X86_64_GOTPC32_TLSDESC => 4,
        R_X86_64_TLSDESC_CALL => 0,
        R_X86_64_DTPOFF64 | R_X86_64_TPOFF64 => 8,
        R_X86_64_64 | R_X86_64_PC64 | R_X86_64_GOTOFF64 | R_X86_64_GOT64 | R_X86_64_GOTPCREL64
        | R_X86_64_GOTPC64 | R_X86_64_GOTPLT64 | R_X86_64_PLTOFF64 | R_X86_64_SIZE64 => 8,
        _ => return None,
    })
}

/// Whether the relocation needs a GOT entry for its symbol.
pub(crate) fn needs_got(kind: u32) -> bool {
    matches!(
        kind,
        R_X86_64_GOT32
            | R_X86_64_GOTPCREL
            | R_X86_64_GOTPCRELX
            | R_X86_64_REX_GOTPCRELX
            | R_X86_64_GOT64
            | R_X86_64_GOTPCREL64
            | R_X86_64_GOTPLT64
    )
}

/// Whether the relocation may go through a PLT stub when the target is far.
pub(crate) fn may_use_stub(kind: u32) -> bool {
    matches!(kind, R_X86_64_PLT32 | R_X86_64_PLTOFF64)
}

/// Whether the relocation takes a symbol's address in 32 bits: when the
/// target is a far *function*, its PLT stub can stand in as its address, as
/// the PLT entry of a non-PIE executable does (the personality routine in
/// `-fno-PIC` `.eh_frame`, function pointers in `-fno-PIC` code).
pub(crate) fn may_use_canonical_stub(kind: u32) -> bool {
    matches!(kind, R_X86_64_32 | R_X86_64_32S | R_X86_64_PC32)
}

/// Whether the relocation stores an absolute address in 32 bits, which
/// only reaches targets in the low part of the address space.
pub(crate) fn is_absolute32(kind: u32) -> bool {
    matches!(kind, R_X86_64_32 | R_X86_64_32S)
}

/// The addresses a relocation is computed from (ELF psABI names).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RelocInputs {
    /// S: the target symbol's address.
    pub(crate) s: u64,
    /// A: the addend.
    pub(crate) a: i64,
    /// P: the address of the field.
    pub(crate) p: u64,
    /// GOT: the address of the link's GOT.
    pub(crate) got: u64,
    /// The address of the symbol's GOT entry, if it has one.
    pub(crate) got_entry: Option<u64>,
    /// The address of the symbol's PLT stub, if it has one and may be used
    /// (for 32-bit address-taking types: only when S is a far function).
    pub(crate) stub: Option<u64>,
    /// Z: the symbol's size.
    pub(crate) size: u64,
}

/// Why a relocation could not be applied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ApplyError {
    /// The value does not fit the field.
    Overflow(i128),
    /// The layout phase did not provide a GOT entry (a linker bug, reported
    /// rather than trusted).
    MissingGotEntry,
    /// The field lies outside the section.
    OutOfBounds,
    /// The type is not implemented.
    Unsupported,
}

/// Applies one relocation at `offset` in `section`.
pub(crate) fn apply(
    kind: u32,
    section: &mut [u8],
    offset: u64,
    inp: RelocInputs,
) -> Result<(), ApplyError> {
    let s = i128::from(inp.s);
    let a = i128::from(inp.a);
    let p = i128::from(inp.p);
    let got = i128::from(inp.got);
    let entry = || {
        inp.got_entry
            .map(i128::from)
            .ok_or(ApplyError::MissingGotEntry)
    };
    let off = usize::try_from(offset).map_err(|_| ApplyError::OutOfBounds)?;
    match kind {
        R_X86_64_NONE => Ok(()),
        R_X86_64_64 => write_wrapping64(section, off, s + a),
        R_X86_64_PC32 => write_i32(section, off, inp.stub.map(i128::from).unwrap_or(s) + a - p),
        R_X86_64_PLT32 => {
            let direct = s + a - p;
            match inp.stub {
                Some(stub) if i32::try_from(direct).is_err() => {
                    write_i32(section, off, i128::from(stub) + a - p)
                }
                _ => write_i32(section, off, direct),
            }
        }
        R_X86_64_32 => write_u32(section, off, inp.stub.map(i128::from).unwrap_or(s) + a),
        R_X86_64_32S => write_i32(section, off, inp.stub.map(i128::from).unwrap_or(s) + a),
        R_X86_64_16 => write_small(section, off, s + a, 2, false),
        R_X86_64_PC16 => write_small(section, off, s + a - p, 2, true),
        R_X86_64_8 => write_small(section, off, s + a, 1, false),
        R_X86_64_PC8 => write_small(section, off, s + a - p, 1, true),
        R_X86_64_PC64 => write_wrapping64(section, off, s + a - p),
        R_X86_64_GOTOFF64 => write_wrapping64(section, off, s + a - got),
        R_X86_64_GOTPC32 => write_i32(section, off, got + a - p),
        R_X86_64_GOTPC64 => write_wrapping64(section, off, got + a - p),
        R_X86_64_GOT32 => write_i32(section, off, entry()? - got + a),
        R_X86_64_GOT64 | R_X86_64_GOTPLT64 => write_wrapping64(section, off, entry()? - got + a),
        R_X86_64_GOTPCREL64 => write_wrapping64(section, off, entry()? + a - p),
        R_X86_64_PLTOFF64 => {
            let l = inp.stub.map(i128::from).unwrap_or(s);
            write_wrapping64(section, off, l - got + a)
        }
        R_X86_64_GOTPCREL => write_i32(section, off, entry()? + a - p),
        R_X86_64_GOTPCRELX | R_X86_64_REX_GOTPCRELX => {
            if try_relax(kind, section, off, s + a - p, inp.a) {
                return Ok(());
            }
            write_i32(section, off, entry()? + a - p)
        }
        R_X86_64_SIZE32 => write_u32(section, off, i128::from(inp.size) + a),
        R_X86_64_SIZE64 => write_wrapping64(section, off, i128::from(inp.size) + a),
        _ => Err(ApplyError::Unsupported),
    }
}

/// Rewrites a GOT load into a direct reference when the target is within
/// reach: `mov foo@GOTPCREL(%rip), %reg` becomes `lea foo(%rip), %reg`,
/// `call *foo@GOTPCREL(%rip)` becomes `addr32 call foo`, and
/// `jmp *foo@GOTPCREL(%rip)` becomes `nop; jmp foo`. Other instructions
/// keep using the GOT. Returns whether the field was written.
fn try_relax(kind: u32, section: &mut [u8], off: usize, direct: i128, addend: i64) -> bool {
    let Ok(disp) = i32::try_from(direct) else {
        return false;
    };
    if addend != -4 || off < 2 || off.checked_add(4).is_none_or(|end| end > section.len()) {
        return false;
    }
    let (Some(&op), Some(&modrm)) = (section.get(off - 2), section.get(off - 1)) else {
        return false;
    };
    let new_ops: [u8; 2] = match (op, modrm) {
        (0x8b, _) => [0x8d, modrm],
        (0xff, 0x15) if kind == R_X86_64_GOTPCRELX => [0x67, 0xe8],
        (0xff, 0x25) if kind == R_X86_64_GOTPCRELX => [0x90, 0xe9],
        _ => return false,
    };
    if let Some(ops) = section.get_mut(off - 2..off) {
        ops.copy_from_slice(&new_ops);
    }
    write_bytes(section, off, &disp.to_le_bytes()).is_ok()
}

fn write_bytes(section: &mut [u8], off: usize, bytes: &[u8]) -> Result<(), ApplyError> {
    let end = off
        .checked_add(bytes.len())
        .ok_or(ApplyError::OutOfBounds)?;
    let field = section.get_mut(off..end).ok_or(ApplyError::OutOfBounds)?;
    field.copy_from_slice(bytes);
    Ok(())
}

fn write_i32(section: &mut [u8], off: usize, value: i128) -> Result<(), ApplyError> {
    let v = i32::try_from(value).map_err(|_| ApplyError::Overflow(value))?;
    write_bytes(section, off, &v.to_le_bytes())
}

fn write_u32(section: &mut [u8], off: usize, value: i128) -> Result<(), ApplyError> {
    let v = u32::try_from(value).map_err(|_| ApplyError::Overflow(value))?;
    write_bytes(section, off, &v.to_le_bytes())
}

fn write_small(
    section: &mut [u8],
    off: usize,
    value: i128,
    width: usize,
    signed: bool,
) -> Result<(), ApplyError> {
    let bits = (width * 8) as u32;
    let (lo, hi) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if value < lo || value > hi {
        return Err(ApplyError::Overflow(value));
    }
    let bytes = (value as i64).to_le_bytes();
    write_bytes(
        section,
        off,
        bytes.get(..width).ok_or(ApplyError::OutOfBounds)?,
    )
}

/// 64-bit fields take the value modulo 2^64, as the psABI defines.
fn write_wrapping64(section: &mut [u8], off: usize, value: i128) -> Result<(), ApplyError> {
    write_bytes(section, off, &(value as u64).to_le_bytes())
}

/// Writes a PLT stub at `stub` (`buf` is its memory): an indirect jump
/// through the GOT entry at `got_entry`.
pub(crate) fn write_stub(buf: &mut [u8], stub: u64, got_entry: u64) -> Result<(), ApplyError> {
    let disp = i128::from(got_entry) - (i128::from(stub) + 6);
    let disp = i32::try_from(disp).map_err(|_| ApplyError::Overflow(disp))?;
    let mut bytes = [0xcc_u8; STUB_SIZE as usize];
    bytes[0] = 0xff;
    bytes[1] = 0x25;
    bytes[2..6].copy_from_slice(&disp.to_le_bytes());
    write_bytes(buf, 0, &bytes)
}

/// Writes the per-link `atexit(f)` thunk at `thunk`: it tail-calls
/// `recorder(f, NULL, dso_handle)` (the `__cxa_atexit` signature), where
/// `dso_handle` is this link's handle, so handlers are recorded per link.
pub(crate) fn write_atexit_thunk(
    buf: &mut [u8],
    thunk: u64,
    dso_handle: u64,
    recorder: u64,
) -> Result<(), ApplyError> {
    let mut code = Vec::with_capacity(ATEXIT_THUNK_SIZE as usize);
    // lea rdx, [rip + disp32]   (rip = thunk + 7)
    let disp = i128::from(dso_handle) - (i128::from(thunk) + 7);
    let disp = i32::try_from(disp).map_err(|_| ApplyError::Overflow(disp))?;
    code.extend_from_slice(&[0x48, 0x8d, 0x15]);
    code.extend_from_slice(&disp.to_le_bytes());
    // xor esi, esi
    code.extend_from_slice(&[0x31, 0xf6]);
    // movabs rax, recorder
    code.extend_from_slice(&[0x48, 0xb8]);
    code.extend_from_slice(&recorder.to_le_bytes());
    // jmp rax
    code.extend_from_slice(&[0xff, 0xe0]);
    code.resize(ATEXIT_THUNK_SIZE as usize, 0xcc);
    write_bytes(buf, 0, &code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(s: u64, a: i64, p: u64) -> RelocInputs {
        RelocInputs {
            s,
            a,
            p,
            got: 0,
            got_entry: None,
            stub: None,
            size: 0,
        }
    }

    #[test]
    fn pc32_writes_and_checks_range() {
        let mut sec = [0u8; 8];
        apply(R_X86_64_PC32, &mut sec, 4, inputs(0x1000, -4, 0x2000)).unwrap();
        assert_eq!(&sec[4..], &(-0x1004i32).to_le_bytes());
        let err = apply(R_X86_64_PC32, &mut sec, 0, inputs(0x1_0000_0000, 0, 0)).unwrap_err();
        assert_eq!(err, ApplyError::Overflow(0x1_0000_0000));
        assert_eq!(
            apply(R_X86_64_PC32, &mut sec, 6, inputs(0, 0, 0)),
            Err(ApplyError::OutOfBounds)
        );
    }

    #[test]
    fn plt32_goes_through_the_stub_only_when_far() {
        let mut sec = [0u8; 4];
        let mut inp = inputs(0x7000_0000_0000, -4, 0x1000);
        inp.stub = Some(0x2000);
        apply(R_X86_64_PLT32, &mut sec, 0, inp).unwrap();
        assert_eq!(sec, (0x2000i32 - 4 - 0x1000).to_le_bytes());
        inp.s = 0x3000;
        apply(R_X86_64_PLT32, &mut sec, 0, inp).unwrap();
        assert_eq!(sec, (0x3000i32 - 4 - 0x1000).to_le_bytes());
    }

    #[test]
    fn gotpcrelx_mov_relaxes_to_lea() {
        // mov 0(%rip), %rax with a REX prefix.
        let mut sec = [0x48, 0x8b, 0x05, 0, 0, 0, 0];
        let mut inp = inputs(0x5000, -4, 0x1003);
        inp.got_entry = Some(0x9000);
        apply(R_X86_64_REX_GOTPCRELX, &mut sec, 3, inp).unwrap();
        assert_eq!(&sec[..3], &[0x48, 0x8d, 0x05]);
        assert_eq!(&sec[3..], &(0x5000i32 - 4 - 0x1003).to_le_bytes());
        // Far: keeps the GOT load.
        let mut sec = [0x48, 0x8b, 0x05, 0, 0, 0, 0];
        inp.s = 0x7fff_0000_0000;
        apply(R_X86_64_REX_GOTPCRELX, &mut sec, 3, inp).unwrap();
        assert_eq!(&sec[..3], &[0x48, 0x8b, 0x05]);
        assert_eq!(&sec[3..], &(0x9000i32 - 4 - 0x1003).to_le_bytes());
    }

    #[test]
    fn gotpcrelx_call_and_jmp_relax() {
        let mut call = [0xff, 0x15, 0, 0, 0, 0];
        let mut inp = inputs(0x5000, -4, 0x1002);
        inp.got_entry = Some(0x9000);
        apply(R_X86_64_GOTPCRELX, &mut call, 2, inp).unwrap();
        assert_eq!(&call[..2], &[0x67, 0xe8]);
        let mut jmp = [0xff, 0x25, 0, 0, 0, 0];
        apply(R_X86_64_GOTPCRELX, &mut jmp, 2, inp).unwrap();
        assert_eq!(&jmp[..2], &[0x90, 0xe9]);
    }

    #[test]
    fn narrow_absolute_fields_check_range() {
        let mut sec = [0u8; 4];
        assert!(apply(R_X86_64_32, &mut sec, 0, inputs(0xffff_ffff, 0, 0)).is_ok());
        assert!(apply(R_X86_64_32, &mut sec, 0, inputs(0x1_0000_0000, 0, 0)).is_err());
        assert!(apply(R_X86_64_32S, &mut sec, 0, inputs(0x8000_0000, 0, 0)).is_err());
        assert!(apply(R_X86_64_8, &mut sec, 0, inputs(256, 0, 0)).is_err());
        assert!(apply(R_X86_64_PC8, &mut sec, 0, inputs(0, -128, 0)).is_ok());
    }

    #[test]
    fn stub_bytes() {
        let mut buf = [0u8; 8];
        write_stub(&mut buf, 0x1000, 0x2000).unwrap();
        assert_eq!(buf, [0xff, 0x25, 0xfa, 0x0f, 0, 0, 0xcc, 0xcc]);
    }
}

//! An x86-64 instruction length decoder: enough to walk a function's code
//! from its first byte and find where the instruction holding a relocated
//! field starts (`x86_64_move.rs` moves such instructions). It knows every
//! one-byte opcode, the `0f`, `0f 38` and `0f 3a` maps and VEX/EVEX
//! prefixes; anything it does not know (invalid opcodes in 64-bit mode,
//! XOP, 3DNow!) is `None`, so a caller refuses rather than guesses.

/// The length of the instruction at `code[at..]`, if known.
pub(crate) fn insn_len(code: &[u8], at: usize) -> Option<usize> {
    let byte = |i: usize| code.get(i).copied();
    let mut p = at;
    let mut opsize = false;
    let mut addr32 = false;
    loop {
        match byte(p)? {
            0x66 => opsize = true,
            0x67 => addr32 = true,
            0xf0 | 0xf2 | 0xf3 | 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 => {}
            _ => break,
        }
        p += 1;
        if p - at > 14 {
            return None;
        }
    }
    let mut rex_w = false;
    if let Some(b @ 0x40..=0x4f) = byte(p) {
        rex_w = b & 8 != 0;
        p += 1;
    }
    let iz = if opsize { 2 } else { 4 };
    let op = byte(p)?;
    p += 1;
    // (map, opcode) for VEX/EVEX and escapes; map 0 = one-byte opcodes.
    let (map, opcode) = match op {
        0xc5 => {
            p += 1; // R vvvv L pp
            let o = byte(p)?;
            p += 1;
            (1, o)
        }
        0xc4 => {
            let m = byte(p)? & 0x1f;
            p += 2;
            let o = byte(p)?;
            p += 1;
            (m, o)
        }
        0x62 => {
            let m = byte(p)? & 0x07;
            p += 3;
            let o = byte(p)?;
            p += 1;
            (m + 8, o) // EVEX maps, kept apart
        }
        0x0f => {
            let b = byte(p)?;
            p += 1;
            match b {
                0x38 | 0x3a => {
                    let o = byte(p)?;
                    p += 1;
                    (if b == 0x38 { 2 } else { 3 }, o)
                }
                0x0f => return None, // 3DNow!
                _ => (1, b),
            }
        }
        _ => (0, op),
    };
    let (has_modrm, imm) = match map {
        0 => one_byte(opcode, rex_w, iz, addr32, byte(p))?,
        1 | 9 => two_byte(opcode)?,
        2 | 10 => (true, 0),
        3 | 11 => (true, 1),
        12..=15 => (true, 0), // EVEX maps 4-7 (APX, FP16): no immediates but 4's shifts
        _ => return None,
    };
    if has_modrm {
        let modrm = byte(p)?;
        p += 1;
        let (md, rm) = (modrm >> 6, modrm & 7);
        if md != 3 {
            let mut base5 = rm == 5;
            if rm == 4 {
                base5 = byte(p)? & 7 == 5;
                p += 1;
            }
            p += match md {
                0 if base5 => 4,
                0 => 0,
                1 => 1,
                _ => 4,
            };
        }
    }
    p += imm;
    (p <= code.len()).then_some(p - at)
}

/// Whether a one-byte opcode has a ModRM byte, and its immediate's size.
fn one_byte(
    op: u8,
    rex_w: bool,
    iz: usize,
    addr32: bool,
    modrm: Option<u8>,
) -> Option<(bool, usize)> {
    let reg = modrm.map(|m| (m >> 3) & 7);
    Some(match op {
        0x00..=0x3f => match op & 7 {
            0..=3 => (true, 0),
            4 => (false, 1),
            5 => (false, iz),
            _ => return None, // 06/07/0e/16/17/1e/1f/27/2f/37/3f; prefixes elsewhere
        },
        0x50..=0x5f => (false, 0),
        0x63 => (true, 0),
        0x68 => (false, iz),
        0x69 => (true, iz),
        0x6a => (false, 1),
        0x6b => (true, 1),
        0x6c..=0x6f => (false, 0),
        0x70..=0x7f => (false, 1),
        0x80 | 0x83 => (true, 1),
        0x81 => (true, iz),
        0x84..=0x8f => {
            if op == 0x8f && reg != Some(0) {
                return None; // XOP
            }
            (true, 0)
        }
        0x90..=0x99 | 0x9b..=0x9f => (false, 0),
        0xa0..=0xa3 => (false, if addr32 { 4 } else { 8 }),
        0xa4..=0xa7 | 0xaa..=0xaf => (false, 0),
        0xa8 => (false, 1),
        0xa9 => (false, iz),
        0xb0..=0xb7 => (false, 1),
        0xb8..=0xbf => (false, if rex_w { 8 } else { iz }),
        0xc0 | 0xc1 => (true, 1),
        0xc2 | 0xca => (false, 2),
        0xc3 | 0xc9 | 0xcb | 0xcc | 0xcf => (false, 0),
        0xc6 => (true, 1),
        0xc7 => (true, iz),
        0xc8 => (false, 3),
        0xcd => (false, 1),
        0xd0..=0xd3 | 0xd8..=0xdf => (true, 0),
        0xd7 => (false, 0),
        0xe0..=0xe7 | 0xeb => (false, 1),
        0xe8 | 0xe9 => (false, 4),
        0xec..=0xef | 0xf1 | 0xf4 | 0xf5 | 0xf8..=0xfd => (false, 0),
        0xf6 => (true, if reg? <= 1 { 1 } else { 0 }),
        0xf7 => (true, if reg? <= 1 { iz } else { 0 }),
        0xfe | 0xff => (true, 0),
        _ => return None,
    })
}

/// The same for the `0f` map (also VEX/EVEX map 1).
fn two_byte(op: u8) -> Option<(bool, usize)> {
    Some(match op {
        0x05..=0x09 | 0x0b | 0x0e | 0x30..=0x35 | 0x37 | 0x77 | 0xa0..=0xa2 | 0xa8..=0xaa => {
            (false, 0)
        }
        0xc8..=0xcf => (false, 0),
        0x80..=0x8f => (false, 4),
        0x70..=0x73 | 0xa4 | 0xac | 0xba | 0xc2 | 0xc4..=0xc6 => (true, 1),
        0x04 | 0x0a | 0x0c | 0x24..=0x27 | 0x36 | 0x39 | 0x3b..=0x3f | 0x7a | 0x7b => return None,
        _ => (true, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::insn_len;

    #[test]
    fn lengths_of_common_instructions() {
        let cases: &[&[u8]] = &[
            &[0x55],                                           // push rbp
            &[0x48, 0x89, 0xe5],                               // mov rbp, rsp
            &[0x48, 0x8b, 0x54, 0x24, 0x48],                   // mov rdx, [rsp+0x48]
            &[0xc7, 0x83, 1, 2, 3, 4, 5, 6, 7, 8],             // mov dword [rbx+d32], imm32
            &[0x66, 0x89, 0x83, 0, 0, 0, 0],                   // mov [rbx+d32], ax
            &[0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0],       // mov rax, fs:[0]
            &[0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8],             // movabs
            &[0xe8, 0, 0, 0, 0],                               // call rel32
            &[0x0f, 0x84, 0, 0, 0, 0],                         // je rel32
            &[0xf2, 0x0f, 0x10, 0x05, 0, 0, 0, 0],             // movsd xmm0, [rip]
            &[0xc5, 0xfa, 0x10, 0x83, 0, 0, 0, 0],             // vmovss xmm0, [rbx+d32]
            &[0x66, 0x0f, 0x3a, 0x0f, 0xc1, 8],                // palignr
            &[0x62, 0xf1, 0x7c, 0x48, 0x10, 0x44, 0x24, 0x01], // vmovups zmm0, [rsp+64]
            &[0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0],    // nopw cs:[rax+rax]
            &[0xf6, 0xc1, 0x01],                               // test cl, 1
            &[0xf7, 0xd8],                                     // neg eax
        ];
        for code in cases {
            assert_eq!(insn_len(code, 0), Some(code.len()), "{code:x?}");
        }
        assert_eq!(insn_len(&[0x06], 0), None);
        assert_eq!(insn_len(&[0x48, 0x8b], 0), None);
    }
}

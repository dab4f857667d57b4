//! x86-64 (System V) stubs, trampolines and reentry.
//!
//! - Stub (8 bytes): `jmp qword ptr [rip + disp32]` through its slot, then
//!   two `int3` of padding.
//! - Trampoline (8 bytes): `call qword ptr [rip + disp32]` through a pointer
//!   to the reentry routine, then padding; the return address it pushes
//!   identifies it.
//! - Reentry: builds a frame, saves rax, rcx, rdx, rsi, rdi, r8-r11 (the
//!   integer argument registers plus the scratch registers a caller may
//!   still expect, such as `al` for varargs and r10 as static chain) and
//!   xmm0-15 with `fxsave64` on a 16-byte aligned area, calls the resolver
//!   with (context, trampoline return address), writes the result over the
//!   trampoline's return address, restores everything and `ret`s into the
//!   body: the stack is then exactly as the original caller left it, so any
//!   System V signature (stack arguments, structs by pointer) works.
//!   Callee-saved registers are preserved by the resolver itself. The
//!   upper halves of ymm/zmm registers are not saved: functions taking
//!   256-bit vector arguments by value must not be lazy.

use super::arch::LazyArch;

/// The x86-64 System V implementation.
pub(crate) struct X86_64;

fn put_disp32(code: &mut [u8], at: usize, from_end: u64, target: u64) {
    let disp = target.wrapping_sub(from_end) as i64;
    debug_assert!(i32::try_from(disp).is_ok(), "stub slot out of rel32 range");
    code[at..at + 4].copy_from_slice(&(disp as i32).to_le_bytes());
}

impl LazyArch for X86_64 {
    const STUB_SIZE: usize = 8;
    const TRAMPOLINE_SIZE: usize = 8;
    const REENTRY_MAX_SIZE: usize = 128;

    fn write_stubs(code: &mut [u8], code_addr: u64, slots_addr: u64, n: usize) {
        for i in 0..n {
            let at = i * Self::STUB_SIZE;
            code[at] = 0xFF;
            code[at + 1] = 0x25;
            let end = code_addr + at as u64 + 6;
            put_disp32(code, at + 2, end, slots_addr + 8 * i as u64);
            code[at + 6] = 0xCC;
            code[at + 7] = 0xCC;
        }
    }

    fn write_trampolines(code: &mut [u8], code_addr: u64, reentry_ptr_addr: u64, n: usize) {
        for i in 0..n {
            let at = i * Self::TRAMPOLINE_SIZE;
            code[at] = 0xFF;
            code[at + 1] = 0x15;
            let end = code_addr + at as u64 + 6;
            put_disp32(code, at + 2, end, reentry_ptr_addr);
            code[at + 6] = 0xCC;
            code[at + 7] = 0xCC;
        }
    }

    fn trampoline_from_return_address(ret: u64) -> u64 {
        ret.wrapping_sub(6)
    }

    fn write_reentry(code: &mut [u8], ctx: u64, resolver: u64) -> usize {
        let mut out: Vec<u8> = Vec::with_capacity(Self::REENTRY_MAX_SIZE);
        out.extend_from_slice(&[0x55]); // push rbp
        out.extend_from_slice(&[0x48, 0x89, 0xE5]); // mov rbp, rsp
        out.extend_from_slice(&[0x50, 0x51, 0x52, 0x56, 0x57]); // push rax, rcx, rdx, rsi, rdi
        out.extend_from_slice(&[0x41, 0x50, 0x41, 0x51, 0x41, 0x52, 0x41, 0x53]); // push r8-r11
        out.extend_from_slice(&[0x48, 0x81, 0xEC, 0x08, 0x02, 0x00, 0x00]); // sub rsp, 520
        out.extend_from_slice(&[0x48, 0x83, 0xE4, 0xF0]); // and rsp, -16
        out.extend_from_slice(&[0x48, 0x0F, 0xAE, 0x04, 0x24]); // fxsave64 [rsp]
        out.extend_from_slice(&[0x48, 0xBF]); // movabs rdi, ctx
        out.extend_from_slice(&ctx.to_le_bytes());
        out.extend_from_slice(&[0x48, 0x8B, 0x75, 0x08]); // mov rsi, [rbp + 8]
        out.extend_from_slice(&[0x48, 0xB8]); // movabs rax, resolver
        out.extend_from_slice(&resolver.to_le_bytes());
        out.extend_from_slice(&[0xFF, 0xD0]); // call rax
        out.extend_from_slice(&[0x48, 0x89, 0x45, 0x08]); // mov [rbp + 8], rax
        out.extend_from_slice(&[0x48, 0x0F, 0xAE, 0x0C, 0x24]); // fxrstor64 [rsp]
        out.extend_from_slice(&[0x48, 0x8D, 0x65, 0xB8]); // lea rsp, [rbp - 72]
        out.extend_from_slice(&[0x41, 0x5B, 0x41, 0x5A, 0x41, 0x59, 0x41, 0x58]); // pop r11-r8
        out.extend_from_slice(&[0x5F, 0x5E, 0x5A, 0x59, 0x58]); // pop rdi, rsi, rdx, rcx, rax
        out.extend_from_slice(&[0x5D, 0xC3]); // pop rbp; ret
        code[..out.len()].copy_from_slice(&out);
        out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_bytes_jump_through_their_slot() {
        let mut code = [0u8; 16];
        X86_64::write_stubs(&mut code, 0x1000, 0x2000, 2);
        // Stub 0 at 0x1000: disp = 0x2000 - 0x1006.
        assert_eq!(
            &code[..8],
            &[0xFF, 0x25, 0xFA, 0x0F, 0x00, 0x00, 0xCC, 0xCC]
        );
        // Stub 1 at 0x1008 uses slot 0x2008: disp = 0x2008 - 0x100e = 0xffa.
        assert_eq!(&code[8..14], &[0xFF, 0x25, 0xFA, 0x0F, 0x00, 0x00]);
    }

    #[test]
    fn trampolines_call_the_reentry_pointer() {
        let mut code = [0u8; 8];
        X86_64::write_trampolines(&mut code, 0x1000, 0x0ff8, 1);
        // disp = 0xff8 - 0x1006 = -14.
        assert_eq!(&code[..6], &[0xFF, 0x15, 0xF2, 0xFF, 0xFF, 0xFF]);
        assert_eq!(X86_64::trampoline_from_return_address(0x1006), 0x1000);
    }

    #[test]
    fn reentry_fits_and_ends_in_ret() {
        let mut code = [0u8; X86_64::REENTRY_MAX_SIZE];
        let n = X86_64::write_reentry(&mut code, 0x1122_3344_5566_7788, 0x99);
        assert!(n <= X86_64::REENTRY_MAX_SIZE);
        assert_eq!(code[n - 1], 0xC3);
        assert!(code
            .windows(8)
            .any(|w| w == 0x1122_3344_5566_7788u64.to_le_bytes()));
    }
}

//! Entry-counting thunks: a few instructions in front of a tier-0 body that
//! count one entry in its [`TripCounter`] and jump to the body, calling the
//! trip handler out of line when the count reaches the trip value.
//!
//! A tier-0 compiler can put one in front of each profiled function instead
//! of compiling the entry count and trip check into the function: the
//! thunk's bytes are written, not compiled, so profiling costs a function
//! with no loops no compile time at all. The thunk must be what callers
//! reach (the function's symbol); the body is a separate symbol that only
//! the thunk jumps to.
//!
//! x86-64 System V layout (offsets in bytes):
//!
//! ```text
//!  0  movabs r11, counter
//! 10  mov    r10, [r11]
//! 13  add    r10, 1
//! 17  mov    [r11], r10
//! 20  cmp    r10, [rip + trip]     ; the trip value, stored after the code
//! 27  jae    trip_path
//! 29  jmp    body                  ; rel32 at 30, filled in by the linker
//! 34  trip_path: save rax, rcx, rdx, rsi, rdi, r8-r11 and (fxsave64)
//!     xmm0-15; call on_trip(context, r11); restore; jmp 29
//! ```
//!
//! Only r10 and r11 are clobbered on the hot path, which System V leaves
//! to the callee at entry; every argument register (including `al` for
//! varargs and r10 as static chain on the trip path) and the stack reach
//! the body as the caller left them, so any System V signature works.
//! Like the counting compiled into a body, the count is a plain load and
//! store: racing threads and recursive frames may lose counts, which only
//! delays a trip.

use crate::tiering::TripCounter;

/// The bytes of an entry-counting thunk for one function; see the module
/// docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryThunk {
    /// The code (and the data it reads), position independent except for
    /// the jump to the body.
    pub code: Vec<u8>,
    /// Offset in `code` of the 32-bit displacement of the jump to the body,
    /// relative to the end of that field (an x86-64 `R_X86_64_PC32` with
    /// addend -4 against the body's symbol).
    pub body_rel32_at: usize,
}

impl TripCounter {
    /// An entry-counting thunk for this counter, on hosts that have one
    /// (x86-64); `None` elsewhere, where the compiler counts entries in
    /// the body instead.
    pub fn entry_thunk(&self) -> Option<EntryThunk> {
        entry_thunk(self)
    }
}

#[cfg(target_arch = "x86_64")]
fn entry_thunk(c: &TripCounter) -> Option<EntryThunk> {
    let mut out: Vec<u8> = Vec::with_capacity(128);
    out.extend_from_slice(&[0x49, 0xBB]); // movabs r11, counter
    out.extend_from_slice(&c.counter.to_le_bytes());
    out.extend_from_slice(&[0x4D, 0x8B, 0x13]); // mov r10, [r11]
    out.extend_from_slice(&[0x49, 0x83, 0xC2, 0x01]); // add r10, 1
    out.extend_from_slice(&[0x4D, 0x89, 0x13]); // mov [r11], r10
    out.extend_from_slice(&[0x4C, 0x3B, 0x15, 0, 0, 0, 0]); // cmp r10, [rip + trip]
    let cmp_end = out.len();
    out.extend_from_slice(&[0x73, 0x05]); // jae trip_path
    let jump_to_body = out.len();
    out.extend_from_slice(&[0xE9, 0, 0, 0, 0]); // jmp body
    let body_rel32_at = jump_to_body + 1;
    // The trip path: the same register save as the lazy reentry routine.
    out.extend_from_slice(&[0x55]); // push rbp
    out.extend_from_slice(&[0x48, 0x89, 0xE5]); // mov rbp, rsp
    out.extend_from_slice(&[0x50, 0x51, 0x52, 0x56, 0x57]); // push rax, rcx, rdx, rsi, rdi
    out.extend_from_slice(&[0x41, 0x50, 0x41, 0x51, 0x41, 0x52, 0x41, 0x53]); // push r8-r11
    out.extend_from_slice(&[0x48, 0x81, 0xEC, 0x08, 0x02, 0x00, 0x00]); // sub rsp, 520
    out.extend_from_slice(&[0x48, 0x83, 0xE4, 0xF0]); // and rsp, -16
    out.extend_from_slice(&[0x48, 0x0F, 0xAE, 0x04, 0x24]); // fxsave64 [rsp]
    out.extend_from_slice(&[0x48, 0xBF]); // movabs rdi, context
    out.extend_from_slice(&c.context.to_le_bytes());
    out.extend_from_slice(&[0x4C, 0x89, 0xDE]); // mov rsi, r11
    out.extend_from_slice(&[0x48, 0xB8]); // movabs rax, on_trip
    out.extend_from_slice(&c.on_trip.to_le_bytes());
    out.extend_from_slice(&[0xFF, 0xD0]); // call rax
    out.extend_from_slice(&[0x48, 0x0F, 0xAE, 0x0C, 0x24]); // fxrstor64 [rsp]
    out.extend_from_slice(&[0x48, 0x8D, 0x65, 0xB8]); // lea rsp, [rbp - 72]
    out.extend_from_slice(&[0x41, 0x5B, 0x41, 0x5A, 0x41, 0x59, 0x41, 0x58]); // pop r11-r8
    out.extend_from_slice(&[0x5F, 0x5E, 0x5A, 0x59, 0x58]); // pop rdi, rsi, rdx, rcx, rax
    out.extend_from_slice(&[0x5D]); // pop rbp
    let back = jump_to_body as i64 - (out.len() as i64 + 2);
    out.extend_from_slice(&[0xEB, i8::try_from(back).ok()? as u8]); // jmp jump_to_body
    while out.len() % 8 != 0 {
        out.push(0xCC);
    }
    let trip_at = out.len();
    out.extend_from_slice(&c.trip.to_le_bytes());
    let disp = i32::try_from(trip_at - cmp_end).ok()?;
    out[cmp_end - 4..cmp_end].copy_from_slice(&disp.to_le_bytes());
    Some(EntryThunk {
        code: out,
        body_rel32_at,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn entry_thunk(_: &TripCounter) -> Option<EntryThunk> {
    None
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn the_thunk_embeds_its_counter_context_handler_and_trip() {
        let c = TripCounter {
            counter: 0x1111_2222_3333_4444,
            trip: 0x0102_0304_0506_0708,
            on_trip: 0x5555_6666_7777_8888,
            context: 0x9999_aaaa_bbbb_cccc,
        };
        let t = c.entry_thunk().expect("x86-64 has entry thunks");
        assert_eq!(&t.code[2..10], &c.counter.to_le_bytes());
        // The jump to the body is an E9 whose rel32 is left to the linker.
        assert_eq!(t.code[t.body_rel32_at - 1], 0xE9);
        assert_eq!(&t.code[t.body_rel32_at..t.body_rel32_at + 4], &[0; 4]);
        for value in [c.context, c.on_trip] {
            assert!(t.code.windows(8).any(|w| w == value.to_le_bytes()));
        }
        // The compare reads the trip value from the end of the thunk.
        let disp = i32::from_le_bytes(t.code[23..27].try_into().unwrap());
        let trip_at = 27 + disp as usize;
        assert_eq!(trip_at, t.code.len() - 8);
        assert_eq!(&t.code[trip_at..], &c.trip.to_le_bytes());
    }
}

//! Machine code for tier-0 profiling: the register-preserving trip
//! routine and entry-counting thunks.
//!
//! **The preserve-all trip routine** ([`TripCounter::preserve_all_trip`])
//! takes `(context, counter, on_trip)` in the first three integer argument
//! registers, calls `on_trip(context, counter)` and returns with every
//! register as it found it. Instrumentation that calls it with Cranelift's
//! `preserve_all` convention leaves register allocation around the check
//! alone: with a plain System V call on a loop's back-edge, every value
//! live across the loop was spilled and reloaded around the (cold) call on
//! the hot path, and a floating-point loop ran 2.4 times slower.
//!
//! **Entry thunks** ([`TripCounter::entry_thunk`]): a few instructions in
//! front of a tier-0 body that count one entry and jump to the body,
//! calling the trip routine out of line when the count reaches the trip
//! value. A tier-0 compiler can put one in front of each profiled function
//! instead of compiling the entry count and its check into the function:
//! the thunk's bytes are written, not compiled, so profiling costs a
//! function without loops no compile time. The thunk must be what callers
//! reach (the function's symbol); the body is a separate symbol that only
//! the thunk jumps to.
//!
//! x86-64 System V thunk (offsets in bytes):
//!
//! ```text
//!  0  movabs r11, counter
//! 10  mov    r10, [r11]
//! 13  add    r10, 1
//! 17  mov    [r11], r10
//! 20  cmp    r10, [rip + trip]     ; the trip value, stored after the code
//! 27  jae    trip_path
//! 29  jmp    body                  ; rel32 at 30, filled in by the linker
//! 34  trip_path: push rdi, rsi, rdx; call the preserve-all trip routine
//!     with (context, r11, on_trip); pop rdx, rsi, rdi; jmp 29
//! ```
//!
//! Only r10 and r11 are clobbered, which System V leaves to the callee at
//! entry; every argument register (including `al` for varargs) and the
//! stack reach the body as the caller left them, so any System V signature
//! works. Like the counting compiled into a body, the count is a plain
//! load and store: racing threads and recursive frames may lose counts,
//! which only delays a trip.
//!
//! The trip routine has call frame information; a thunk has none (it is
//! written bytes in the tier-0 object), so a backtrace taken in the
//! handler of an entry trip ends at the thunk. Nothing unwinds through
//! either: the handler is `extern "C"` and does not unwind.

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

impl EntryThunk {
    /// How many bytes from a thunk's start [`Self::body_of`] reads: through
    /// the end of the jump to the body.
    pub const BODY_JUMP_END: usize = 34;

    /// The body that the linked entry thunk at `addr`, whose first
    /// [`Self::BODY_JUMP_END`] bytes are `code`, jumps to; `None` when the
    /// bytes are not an entry thunk's (so a driver can skip the thunk
    /// once a function's entries need no more counting).
    pub fn body_of(code: &[u8], addr: u64) -> Option<u64> {
        body_of(code.get(..Self::BODY_JUMP_END)?, addr)
    }
}

#[cfg(target_arch = "x86_64")]
fn body_of(code: &[u8], addr: u64) -> Option<u64> {
    // Everything but the counter, the trip displacement and the rel32.
    let fixed: [(usize, &[u8]); 3] = [
        (0, &[0x49, 0xBB]),
        (
            10,
            &[
                0x4D, 0x8B, 0x13, 0x49, 0x83, 0xC2, 0x01, 0x4D, 0x89, 0x13, 0x4C, 0x3B, 0x15,
            ],
        ),
        (27, &[0x73, 0x05, 0xE9]),
    ];
    if fixed
        .iter()
        .any(|(at, bytes)| code.get(*at..at + bytes.len()) != Some(*bytes))
    {
        return None;
    }
    let rel = i32::from_le_bytes(code[30..34].try_into().ok()?);
    Some(
        addr.wrapping_add(EntryThunk::BODY_JUMP_END as u64)
            .wrapping_add(rel as i64 as u64),
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn body_of(_: &[u8], _: u64) -> Option<u64> {
    None
}

impl TripCounter {
    /// An entry-counting thunk for this counter, on hosts that have one
    /// (x86-64 Linux); `None` elsewhere, where the compiler counts entries
    /// in the body instead.
    pub fn entry_thunk(&self) -> Option<EntryThunk> {
        entry_thunk(self, Self::preserve_all_trip()?)
    }

    /// The address of the preserve-all trip routine (see the module docs)
    /// on hosts that have one (x86-64 Linux). Call it with
    /// `(context, counter, on_trip)` in Cranelift's `preserve_all`
    /// convention.
    pub fn preserve_all_trip() -> Option<u64> {
        preserve_all_trip()
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl orc_core_preserve_all_trip",
    ".hidden orc_core_preserve_all_trip",
    ".type orc_core_preserve_all_trip, @function",
    "orc_core_preserve_all_trip:",
    // Call frame information, so that debuggers and profilers can walk
    // from the handler out through this routine.
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "push rax",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    // 512 bytes for fxsave64, 16-byte aligned.
    "sub rsp, 520",
    "and rsp, -16",
    "fxsave64 [rsp]",
    // on_trip(context, counter): rdi and rsi already hold them.
    "call rdx",
    "fxrstor64 [rsp]",
    "lea rsp, [rbp - 72]",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "ret",
    ".cfi_endproc",
    ".size orc_core_preserve_all_trip, . - orc_core_preserve_all_trip",
);

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
extern "C" {
    /// Defined by the `global_asm!` above; never called from Rust.
    fn orc_core_preserve_all_trip();
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn preserve_all_trip() -> Option<u64> {
    Some(orc_core_preserve_all_trip as *const () as usize as u64)
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn preserve_all_trip() -> Option<u64> {
    None
}

#[cfg(target_arch = "x86_64")]
fn entry_thunk(c: &TripCounter, trip_routine: u64) -> Option<EntryThunk> {
    let mut out: Vec<u8> = Vec::with_capacity(80);
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
    // The trip path: the routine preserves everything but the three
    // registers that carry its arguments.
    out.extend_from_slice(&[0x57, 0x56, 0x52]); // push rdi, rsi, rdx
    out.extend_from_slice(&[0x48, 0xBF]); // movabs rdi, context
    out.extend_from_slice(&c.context.to_le_bytes());
    out.extend_from_slice(&[0x4C, 0x89, 0xDE]); // mov rsi, r11
    out.extend_from_slice(&[0x48, 0xBA]); // movabs rdx, on_trip
    out.extend_from_slice(&c.on_trip.to_le_bytes());
    out.extend_from_slice(&[0x49, 0xBA]); // movabs r10, trip_routine
    out.extend_from_slice(&trip_routine.to_le_bytes());
    out.extend_from_slice(&[0x41, 0xFF, 0xD2]); // call r10
    out.extend_from_slice(&[0x5A, 0x5E, 0x5F]); // pop rdx, rsi, rdi
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
fn entry_thunk(_: &TripCounter, _: u64) -> Option<EntryThunk> {
    None
}

#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
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
        let routine = TripCounter::preserve_all_trip().unwrap();
        for value in [c.context, c.on_trip, routine] {
            assert!(t.code.windows(8).any(|w| w == value.to_le_bytes()));
        }
        // The compare reads the trip value from the end of the thunk.
        let disp = i32::from_le_bytes(t.code[23..27].try_into().unwrap());
        let trip_at = 27 + disp as usize;
        assert_eq!(trip_at, t.code.len() - 8);
        assert_eq!(&t.code[trip_at..], &c.trip.to_le_bytes());
    }

    #[test]
    fn a_linked_thunk_gives_its_body_and_other_code_gives_none() {
        let c = TripCounter {
            counter: 0x1000,
            trip: 5,
            on_trip: 0x2000,
            context: 0x3000,
        };
        let mut t = c.entry_thunk().unwrap();
        // Linked at 0x10_0000 with its body 0x40 bytes before it.
        let (addr, body) = (0x10_0000u64, 0x10_0000u64 - 0x40);
        let rel = (body as i64 - (addr + t.body_rel32_at as u64 + 4) as i64) as i32;
        t.code[t.body_rel32_at..t.body_rel32_at + 4].copy_from_slice(&rel.to_le_bytes());
        assert_eq!(EntryThunk::body_of(&t.code, addr), Some(body));
        assert_eq!(
            EntryThunk::BODY_JUMP_END,
            t.body_rel32_at + 4,
            "the jump ends where body_of stops reading"
        );
        // A function prologue, or too few bytes, is no thunk.
        let mut prologue = vec![0x55, 0x48, 0x89, 0xE5];
        prologue.resize(64, 0x90);
        assert_eq!(EntryThunk::body_of(&prologue, addr), None);
        assert_eq!(EntryThunk::body_of(&t.code[..20], addr), None);
    }

    static SEEN: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
    static BACKTRACE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

    /// Records its arguments and leaves garbage in every register System V
    /// lets it clobber.
    extern "C" fn clobbering_on_trip(context: u64, counter: u64) {
        SEEN[0].store(context, Ordering::SeqCst);
        SEEN[1].store(counter, Ordering::SeqCst);
        *BACKTRACE.lock().unwrap() = std::backtrace::Backtrace::force_capture().to_string();
        // SAFETY: writes only registers declared as clobbered outputs.
        unsafe {
            std::arch::asm!(
                "mov rax, -1", "mov rcx, -1", "mov rdx, -1", "mov rsi, -1", "mov rdi, -1",
                "mov r8, -1", "mov r9, -1", "mov r10, -1", "mov r11, -1",
                "pcmpeqd xmm0, xmm0", "pcmpeqd xmm1, xmm1", "pcmpeqd xmm7, xmm7",
                "pcmpeqd xmm8, xmm8", "pcmpeqd xmm15, xmm15",
                out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                out("xmm0") _, out("xmm1") _, out("xmm7") _, out("xmm8") _, out("xmm15") _,
            );
        }
    }

    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn the_trip_routine_calls_the_handler_and_preserves_every_register() {
        let routine = TripCounter::preserve_all_trip().unwrap();
        let handler = clobbering_on_trip as extern "C" fn(u64, u64) as usize as u64;
        let ints: [u64; 9] = [0xc0, 0xc1, handler, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8];
        let mut after = ints;
        let floats = [1.5f64, -2.25, 3.125, -4.0, 5.5];
        let mut floats_after = floats;
        // SAFETY: calls the routine with its three arguments in rdi, rsi
        // and rdx; it returns normally and, as checked below, preserves
        // every register (all the others are declared in/out anyway).
        unsafe {
            std::arch::asm!(
                "call r12",
                in("r12") routine,
                inout("rdi") ints[0] => after[0],
                inout("rsi") ints[1] => after[1],
                inout("rdx") ints[2] => after[2],
                inout("rcx") ints[3] => after[3],
                inout("r8") ints[4] => after[4],
                inout("r9") ints[5] => after[5],
                inout("r10") ints[6] => after[6],
                inout("r11") ints[7] => after[7],
                inout("rax") ints[8] => after[8],
                inout("xmm0") floats[0] => floats_after[0],
                inout("xmm1") floats[1] => floats_after[1],
                inout("xmm7") floats[2] => floats_after[2],
                inout("xmm8") floats[3] => floats_after[3],
                inout("xmm15") floats[4] => floats_after[4],
            );
        }
        assert_eq!(SEEN[0].load(Ordering::SeqCst), 0xc0);
        assert_eq!(SEEN[1].load(Ordering::SeqCst), 0xc1);
        assert_eq!(after, ints);
        assert_eq!(floats_after, floats);
        // The routine's call frame information lets an unwinder walk from
        // the handler back into this test.
        let backtrace = BACKTRACE.lock().unwrap().clone();
        assert!(
            backtrace.contains("the_trip_routine_calls_the_handler_and_preserves_every_register"),
            "{backtrace}"
        );
    }
}

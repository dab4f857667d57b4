//! The signal handlers, the alternate signal stacks and the call
//! trampoline of [`catch_traps`](super::catch_traps) (x86-64 Linux).

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::Once;

use libc::{c_int, c_void, siginfo_t};

use super::registry::{self, CodeInfo};
use super::{Trap, TrapKind, CURRENT};

// The trampoline: `orc_core_trap_call(record, f, data) -> u32` calls
// `f(data)` and returns 0, or returns 1 when the signal handler moved the
// thread to its resume point after a trap.
//
// Frame: rbp, rbx, r12-r15 are pushed (the callee-saved registers of
// System V; JIT'd code and `f` may leave any of them changed when a trap
// abandons them), then 8 bytes keep the call 16-byte aligned. `record.sp`
// (offset 0) is the stack pointer at that point and `record.resume`
// (offset 8) the resume label; the handler sets rsp and rip to them, so
// the epilogue, which uses only rsp, restores every saved register.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl orc_core_trap_call",
    ".hidden orc_core_trap_call",
    ".type orc_core_trap_call, @function",
    "orc_core_trap_call:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "push rbx",
    ".cfi_def_cfa_offset 24",
    ".cfi_offset rbx, -24",
    "push r12",
    ".cfi_def_cfa_offset 32",
    ".cfi_offset r12, -32",
    "push r13",
    ".cfi_def_cfa_offset 40",
    ".cfi_offset r13, -40",
    "push r14",
    ".cfi_def_cfa_offset 48",
    ".cfi_offset r14, -48",
    "push r15",
    ".cfi_def_cfa_offset 56",
    ".cfi_offset r15, -56",
    "sub rsp, 8",
    ".cfi_def_cfa_offset 64",
    "mov [rdi], rsp",
    "lea rax, [rip + 2f]",
    "mov [rdi + 8], rax",
    "mov rdi, rdx",
    "call rsi",
    "xor eax, eax",
    "jmp 3f",
    "2:",
    "mov eax, 1",
    "3:",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    ".cfi_def_cfa_offset 8",
    "ret",
    ".cfi_endproc",
    ".size orc_core_trap_call, . - orc_core_trap_call",
);

// `orc_core_trap_unwind(sp, resume) -> !`: continues at the trampoline's
// resume label with its stack pointer (`raise_trap`).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl orc_core_trap_unwind",
    ".hidden orc_core_trap_unwind",
    ".type orc_core_trap_unwind, @function",
    "orc_core_trap_unwind:",
    "mov rsp, rdi",
    "jmp rsi",
    ".size orc_core_trap_unwind, . - orc_core_trap_unwind",
);

extern "C" {
    /// Defined by the `global_asm!` above.
    pub(super) fn orc_core_trap_unwind(sp: u64, resume: u64) -> !;

    /// Defined by the `global_asm!` above.
    pub(super) fn orc_core_trap_call(
        record: *mut [u64; 2],
        f: extern "C" fn(*mut u8),
        data: *mut u8,
    ) -> u32;
}

/// `si_code` of an integer division by zero (Linux, not in `libc`).
const FPE_INTDIV: c_int = 1;

const SIGNALS: [c_int; 4] = [libc::SIGILL, libc::SIGFPE, libc::SIGSEGV, libc::SIGBUS];

/// The handlers installed before ours, one per entry of [`SIGNALS`];
/// written once, before our handler can run, then only read.
struct Previous(UnsafeCell<[MaybeUninit<libc::sigaction>; 4]>);

// SAFETY: written only inside `INIT.call_once`, before the handlers that
// read it are installed; read-only afterwards.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new([MaybeUninit::uninit(); 4]));
static INIT: Once = Once::new();

/// Installs the handlers, once per process.
pub(super) fn init() {
    INIT.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: a zeroed sigaction is a valid value; we fill in the
            // handler, flags and an empty mask. The slot of PREVIOUS is
            // written before our handler is installed for `sig` (by this
            // same sigaction call, which stores the old one first), and
            // nothing else writes it.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                libc::sigemptyset(&mut action.sa_mask);
                let slot = (*PREVIOUS.0.get())[i].as_mut_ptr();
                slot.write(std::mem::zeroed());
                libc::sigaction(sig, &action, slot);
            }
        }
    });
}

fn previous(sig: c_int) -> Option<libc::sigaction> {
    let i = SIGNALS.iter().position(|&s| s == sig)?;
    // SAFETY: initialized by `init` before the handler was installed.
    Some(unsafe { (*PREVIOUS.0.get())[i].assume_init() })
}

/// Size of the alternate signal stacks we allocate.
const ALTSTACK_SIZE: usize = 64 * 1024;

struct OwnedAltStack {
    /// The mapping, guard page first.
    base: *mut c_void,
    len: usize,
}

impl Drop for OwnedAltStack {
    fn drop(&mut self) {
        // SAFETY: queries, and disables only if it is still ours, the
        // thread's alternate stack; then unmaps the mapping we created,
        // which no handler can be running on (we are in the thread's exit
        // path, not in a handler).
        unsafe {
            let mut current: libc::stack_t = std::mem::zeroed();
            libc::sigaltstack(std::ptr::null(), &mut current);
            let ours = (self.base as usize + crate::memory::page_size()) as *mut c_void;
            if current.ss_flags & libc::SS_DISABLE == 0 && current.ss_sp == ours {
                let disable = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: ALTSTACK_SIZE,
                };
                libc::sigaltstack(&disable, std::ptr::null_mut());
            }
            libc::munmap(self.base, self.len);
        }
    }
}

thread_local! {
    static ALTSTACK_CHECKED: Cell<bool> = const { Cell::new(false) };
    static ALTSTACK: Cell<Option<OwnedAltStack>> = const { Cell::new(None) };
}

/// Gives this thread an alternate signal stack if it has none (threads
/// started by Rust's std have one), so a stack overflow can be handled.
pub(super) fn ensure_altstack() {
    if ALTSTACK_CHECKED.get() {
        return;
    }
    ALTSTACK_CHECKED.set(true);
    let page = crate::memory::page_size();
    // SAFETY: sigaltstack with a null new stack only queries; the mapping
    // is fresh, its first page made inaccessible as a guard, and the rest
    // installed as this thread's alternate stack, owned by a thread-local
    // that disables and unmaps it at thread exit.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut old) != 0
            || old.ss_flags & libc::SS_DISABLE == 0
        {
            return;
        }
        let len = ALTSTACK_SIZE + page;
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return;
        }
        libc::mprotect(base, page, libc::PROT_NONE);
        let stack = libc::stack_t {
            ss_sp: (base as usize + page) as *mut c_void,
            ss_flags: 0,
            ss_size: ALTSTACK_SIZE,
        };
        if libc::sigaltstack(&stack, std::ptr::null_mut()) != 0 {
            libc::munmap(base, len);
            return;
        }
        ALTSTACK.set(Some(OwnedAltStack { base, len }));
    }
}

/// How far from the faulting stack pointer a fault counts as a stack
/// overflow (a frame's stack probe or a push just below it).
const STACK_FAULT_REACH: u64 = 256 * 1024;

unsafe extern "C" fn handler(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext.
    if unsafe { handle(sig, info, ctx) } {
        return;
    }
    // SAFETY: forwarding the kernel's arguments to the previous handler.
    unsafe { chain(sig, info, ctx) }
}

/// Handles the fault if it is a trap of JIT'd code inside `catch_traps`:
/// records it and redirects the context to the trampoline's resume point.
///
/// # Safety
///
/// `info` and `ctx` are the kernel's arguments to a SA_SIGINFO handler.
unsafe fn handle(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) -> bool {
    let record = CURRENT.get();
    if ctx.is_null() || info.is_null() {
        return false;
    }
    if record.is_null() {
        // SAFETY: forwarded.
        unsafe { report_uncaught(sig, info, ctx) };
        return false;
    }
    // SAFETY: ctx is the ucontext of the interrupted thread (this one).
    let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
    let pc = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as u64;
    let sp = uc.uc_mcontext.gregs[libc::REG_RSP as usize] as u64;
    let Some(code) = registry::lookup_for_signal(pc) else {
        return false;
    };
    // SAFETY: info is valid; si_addr is meaningful for these signals.
    let (addr, si_code) = unsafe { ((*info).si_addr() as u64, (*info).si_code) };
    // SAFETY: record is the innermost live CallRecord of this thread
    // (`catch_traps` keeps it on its frame while it is CURRENT).
    let record = unsafe { &mut *record };
    let kind = classify(sig, si_code, addr, pc, sp, record.sp, &code);
    record.trap = Some(Trap {
        kind,
        function: code.function,
        pc,
        message: None,
    });
    uc.uc_mcontext.gregs[libc::REG_RIP as usize] = record.resume as i64;
    uc.uc_mcontext.gregs[libc::REG_RSP as usize] = record.sp as i64;
    true
}

/// A fault in JIT'd code outside `catch_traps`: tells the uncaught-trap
/// handler, if one is set (it usually ends the process).
///
/// # Safety
///
/// The kernel's handler arguments (non-null).
unsafe fn report_uncaught(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    let Some(report) = super::uncaught_handler() else {
        return;
    };
    // SAFETY: ctx is the ucontext of the interrupted thread (this one).
    let uc = unsafe { &*ctx.cast::<libc::ucontext_t>() };
    let pc = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as u64;
    let sp = uc.uc_mcontext.gregs[libc::REG_RSP as usize] as u64;
    let Some(code) = registry::lookup_for_signal(pc) else {
        return;
    };
    // SAFETY: info is valid; si_addr is meaningful for these signals.
    let (addr, si_code) = unsafe { ((*info).si_addr() as u64, (*info).si_code) };
    let kind = classify(sig, si_code, addr, pc, sp, u64::MAX, &code);
    report(&Trap {
        kind,
        function: code.function,
        pc,
        message: None,
    });
}

fn classify(
    sig: c_int,
    si_code: c_int,
    addr: u64,
    pc: u64,
    sp: u64,
    entry_sp: u64,
    code: &CodeInfo,
) -> TrapKind {
    match sig {
        libc::SIGILL => match code.trap_code {
            Some(c) => TrapKind::from_code(c),
            None => match ud1_code(pc) {
                Some(c) => TrapKind::from_code(c),
                None => TrapKind::Unreachable(None),
            },
        },
        libc::SIGFPE => match code.trap_code {
            Some(c) => TrapKind::from_code(c),
            None if si_code == FPE_INTDIV => TrapKind::IntegerDivisionByZero,
            None => TrapKind::IntegerOverflow,
        },
        _ => {
            let near_sp = addr.abs_diff(sp) <= STACK_FAULT_REACH && addr < entry_sp;
            if near_sp || code.trap_code == Some(251) {
                TrapKind::StackOverflow
            } else if sig == libc::SIGBUS {
                TrapKind::BusError { address: addr }
            } else {
                TrapKind::MemoryFault { address: addr }
            }
        }
    }
}

/// The code byte of LLVM's `llvm.ubsantrap(code)` on x86-64, `ud1l
/// code(%eax), %eax` at `pc`: `67 0f b9 40 code` for codes below 128
/// (disp8), `67 0f b9 80 code 00 00 00` above (disp32).
fn ud1_code(pc: u64) -> Option<u8> {
    // SAFETY: pc is in registered JIT'd code, mapped readable and
    // executable while registered; an instruction that raised SIGILL there
    // is mapped through its ModRM byte, and its displacement byte follows
    // in the same instruction once prefix, opcode and ModRM matched.
    unsafe {
        let p = pc as *const u8;
        let head = std::ptr::read_unaligned(p.cast::<[u8; 4]>());
        match head {
            [0x67, 0x0F, 0xB9, 0x40] | [0x67, 0x0F, 0xB9, 0x80] => Some(p.add(4).read()),
            _ => None,
        }
    }
}

/// Passes a signal that is not ours to the handler installed before.
///
/// # Safety
///
/// The kernel's handler arguments.
unsafe fn chain(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    let Some(prev) = previous(sig) else {
        return;
    };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Reinstall it and return: the faulting instruction runs again and
        // takes the default action (a core dump, as without us).
        // SAFETY: restores a sigaction the kernel gave us.
        unsafe { libc::sigaction(sig, &prev, std::ptr::null_mut()) };
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed as a SA_SIGINFO
        // handler with this signature.
        let f = unsafe {
            std::mem::transmute::<usize, unsafe extern "C" fn(c_int, *mut siginfo_t, *mut c_void)>(
                h,
            )
        };
        // SAFETY: as the kernel would call it.
        unsafe { f(sig, info, ctx) };
    } else {
        // SAFETY: a plain handler.
        let f = unsafe { std::mem::transmute::<usize, unsafe extern "C" fn(c_int)>(h) };
        // SAFETY: as the kernel would call it.
        unsafe { f(sig) };
    }
}

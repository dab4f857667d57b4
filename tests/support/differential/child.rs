//! Running compiled code where a trap cannot take the test down: each
//! batch of calls runs in a forked child that only calls the code and
//! writes one fixed-size record per call to a pipe, then `_exit`s.
//!
//! A fault (SIGILL, SIGFPE, SIGSEGV, SIGBUS) in the child runs a handler
//! that records the signal and, for SIGILL, the trapping instruction:
//! `ud2` (Cranelift's traps) or `ud1 disp(%eax), %eax` (LLVM's
//! `llvm.ubsantrap`, whose displacement is Cranelift's trap-code byte).
//! The parent reads the records; a batch cut short by a trap is continued
//! in a new child from the next input. A child that runs past a deadline
//! is ended by `alarm`, and reported as such.
//!
//! Invariant: between `fork` and `_exit` the child does no allocation and
//! takes no lock (the parent has other threads, whose locks the child
//! inherits held): it calls JIT'd code, which only computes, and writes to
//! the pipe from buffers on its stack.

use std::sync::atomic::{AtomicI32, Ordering};

/// `extern "C" fn(callee, values)`: the trampoline's signature.
pub type TrampolineFn = extern "C" fn(u64, *mut u128);

/// How many 16-byte value slots a call uses (parameters and results).
pub const SLOTS: usize = 8;

/// What one call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// It returned; the first two slots hold the results.
    Returned([u128; 2]),
    /// It raised `signo` at an instruction of kind `insn`.
    Signal {
        /// The signal number.
        signo: i32,
        /// The trapping instruction, for SIGILL.
        insn: TrapInsn,
    },
    /// The child ended without a record for the call (an exit status or a
    /// signal its handler could not catch, such as the deadline's SIGALRM).
    Died {
        /// `waitpid`'s status.
        status: i32,
    },
}

/// The instruction a SIGILL was raised by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapInsn {
    /// Not a SIGILL, or bytes the handler does not know.
    Other,
    /// `ud2` (0F 0B).
    Ud2,
    /// `ud1` with a displacement: the trap-code byte.
    Ud1(u8),
}

const RECORD: usize = 1 + 32;
const TAG_RETURNED: u8 = 0;
const TAG_SIGNAL: u8 = 1;
/// Seconds a child may run.
const DEADLINE_SECS: u32 = 20;

/// The pipe's write end in the child, for the signal handler.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// Calls `trampoline(callee, slots)` for each input in forked children;
/// one outcome per input.
pub fn run_calls(
    trampoline: TrampolineFn,
    callee: u64,
    inputs: &[[u128; SLOTS]],
) -> Vec<CallOutcome> {
    let mut outcomes = Vec::with_capacity(inputs.len());
    while outcomes.len() < inputs.len() {
        let start = outcomes.len();
        let (bytes, status) = fork_and_run(trampoline, callee, &inputs[start..]);
        let mut trapped = false;
        for record in bytes.chunks_exact(RECORD) {
            match record[0] {
                TAG_RETURNED => {
                    let a = u128::from_le_bytes(record[1..17].try_into().unwrap());
                    let b = u128::from_le_bytes(record[17..33].try_into().unwrap());
                    outcomes.push(CallOutcome::Returned([a, b]));
                }
                _ => {
                    let signo = i32::from_le_bytes(record[1..5].try_into().unwrap());
                    let insn = match record[5] {
                        1 => TrapInsn::Ud2,
                        2 => TrapInsn::Ud1(record[6]),
                        _ => TrapInsn::Other,
                    };
                    outcomes.push(CallOutcome::Signal { signo, insn });
                    trapped = true;
                    break;
                }
            }
        }
        if !trapped && outcomes.len() < inputs.len() {
            outcomes.push(CallOutcome::Died { status });
        }
    }
    outcomes
}

/// Forks a child that runs `inputs`; returns what it wrote and its
/// `waitpid` status.
fn fork_and_run(trampoline: TrampolineFn, callee: u64, inputs: &[[u128; SLOTS]]) -> (Vec<u8>, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for `pipe` to fill.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "pipe failed");
    let [read_fd, write_fd] = fds;
    // SAFETY: the child only runs `child_main`, which keeps the module's
    // invariant (no allocation, no locks: JIT'd calls and `write` from the
    // stack) and ends in `_exit`, so no state the parent's other threads
    // held at the fork is touched.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child_main(write_fd, read_fd, trampoline, callee, inputs);
    }
    // SAFETY: `write_fd` is this process's open pipe end, closed once.
    unsafe { libc::close(write_fd) };
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `buf` is a writable buffer of the length passed.
        let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            bytes.extend_from_slice(&buf[..n as usize]);
        } else if n == 0
            || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            break;
        }
    }
    let mut status = 0;
    // SAFETY: `read_fd` is open and closed once; `pid` is our child and
    // `status` a valid place for its status.
    unsafe {
        libc::close(read_fd);
        libc::waitpid(pid, &mut status, 0);
    }
    (bytes, status)
}

/// The child: installs the fault handler, runs the calls, exits.
fn child_main(
    write_fd: i32,
    read_fd: i32,
    trampoline: TrampolineFn,
    callee: u64,
    inputs: &[[u128; SLOTS]],
) -> ! {
    REPORT_FD.store(write_fd, Ordering::SeqCst);
    // SAFETY: plain system calls on our own descriptors and signal
    // dispositions; `on_fault` has the SA_SIGINFO handler signature and is
    // async-signal-safe (it reads the interrupted context and the
    // faulting instruction's bytes, writes and `_exit`s).
    unsafe {
        libc::close(read_fd);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        for signo in [libc::SIGILL, libc::SIGFPE, libc::SIGSEGV, libc::SIGBUS] {
            libc::sigaction(signo, &action, std::ptr::null_mut());
        }
        libc::alarm(DEADLINE_SECS);
    }
    for input in inputs {
        let mut slots = *input;
        trampoline(callee, slots.as_mut_ptr());
        let mut record = [0u8; RECORD];
        record[0] = TAG_RETURNED;
        record[1..17].copy_from_slice(&slots[0].to_le_bytes());
        record[17..33].copy_from_slice(&slots[1].to_le_bytes());
        write_record(&record);
    }
    // SAFETY: `_exit` ends the child without running the parent's
    // destructors or atexit handlers.
    unsafe { libc::_exit(0) }
}

fn write_record(record: &[u8; RECORD]) {
    let fd = REPORT_FD.load(Ordering::SeqCst);
    // SAFETY: `record` is a readable buffer of the length passed; a record
    // is shorter than PIPE_BUF, so the write is atomic.
    unsafe { libc::write(fd, record.as_ptr().cast(), RECORD) };
}

/// The fault handler of the child.
extern "C" fn on_fault(signo: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let mut record = [0u8; RECORD];
    record[0] = TAG_SIGNAL;
    record[1..5].copy_from_slice(&signo.to_le_bytes());
    if signo == libc::SIGILL {
        // SAFETY: the kernel passes a valid `ucontext_t` to an SA_SIGINFO
        // handler, and on SIGILL its RIP is the address of the instruction
        // the CPU decoded and refused, so that instruction's bytes are
        // mapped and readable (JIT code is mapped R+X); `decode` reads no
        // byte past the end of a `ud2` or `ud1` encoding.
        let (kind, code) = unsafe {
            let uc = ctx as *const libc::ucontext_t;
            let pc = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as *const u8;
            decode(pc)
        };
        record[5] = kind;
        record[6] = code;
    }
    write_record(&record);
    // SAFETY: ends the child at once; nothing after the fault is run.
    unsafe { libc::_exit(0) }
}

/// Decodes `ud2` (kind 1) and `ud1 disp(%eax), %eax` with an optional
/// address-size prefix (kind 2, with the displacement's low byte).
///
/// # Safety
///
/// `pc` must point at a complete, readable instruction.
pub unsafe fn decode(pc: *const u8) -> (u8, u8) {
    // SAFETY: each read stays inside the instruction the caller
    // guarantees, as the checks go byte by byte along its encoding.
    unsafe {
        let mut p = pc;
        if *p == 0x67 {
            p = p.add(1);
        }
        if *p != 0x0f {
            return (0, 0);
        }
        match *p.add(1) {
            0x0b => (1, 0),
            0xb9 => {
                let modrm = *p.add(2);
                let has_sib = modrm & 7 == 4;
                let disp = p.add(if has_sib { 4 } else { 3 });
                match modrm >> 6 {
                    1 | 2 => (2, *disp),
                    _ => (0, 0),
                }
            }
            _ => (0, 0),
        }
    }
}

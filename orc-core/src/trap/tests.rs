//! Traps in hand-written machine code registered as JIT'd code.

use super::*;

/// Executable code at a fresh mapping, registered as one function `name`.
struct Code {
    base: *mut libc::c_void,
    len: usize,
    _reg: CodeRegistration,
}

impl Code {
    fn new(name: &str, bytes: &[u8], traps: &[(u64, u8)]) -> Code {
        let len = crate::memory::page_size();
        // SAFETY: a fresh anonymous mapping, written, then made read+exec.
        let base = unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.cast::<u8>(), bytes.len());
            assert_eq!(
                libc::mprotect(base, len, libc::PROT_READ | libc::PROT_EXEC),
                0
            );
            base
        };
        let start = base as u64;
        let reg = register_code(
            start,
            start + len as u64,
            "test object",
            vec![CodeFunction {
                start,
                end: start + bytes.len() as u64,
                name: name.into(),
            }],
            traps.iter().map(|&(o, c)| (start + o, c)).collect(),
        )
        .expect("registered");
        Code {
            base,
            len,
            _reg: reg,
        }
    }

    fn call(&self, arg: u64) -> Result<u64, Trap> {
        // SAFETY: the code is a complete System V function taking and
        // returning a u64 (each test's bytes are such a function).
        let f = unsafe {
            std::mem::transmute::<*mut libc::c_void, extern "C" fn(u64) -> u64>(self.base)
        };
        let mut out = 0;
        // SAFETY: the closure owns nothing with a destructor.
        unsafe { catch_traps(|| out = f(arg)) }?;
        Ok(out)
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        // SAFETY: our mapping; no call is running.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

#[test]
fn returns_normally_and_catches_ud2_with_its_code() {
    // mov rax, rdi; test rdi, rdi; jz trap; ret; trap: ud2
    let code = [
        0x48, 0x89, 0xF8, 0x48, 0x85, 0xFF, 0x74, 0x01, 0xC3, 0x0F, 0x0B,
    ];
    let c = Code::new("check", &code, &[(9, 254)]);
    for _ in 0..20 {
        assert_eq!(c.call(7), Ok(7));
        let trap = c.call(0).unwrap_err();
        assert_eq!(trap.kind, TrapKind::IntegerDivisionByZero);
        assert_eq!(trap.function.as_deref(), Some("check"));
        assert_eq!(trap.pc, c.base as u64 + 9);
    }
    assert!(!in_jit_call());
}

#[test]
fn ud1_code_byte_and_segfault() {
    // ud1l 252(%eax), %eax  (LLVM's ubsantrap(252): disp32)
    let c = Code::new("ovf", &[0x67, 0x0F, 0xB9, 0x80, 0xFC, 0, 0, 0], &[]);
    assert_eq!(c.call(0).unwrap_err().kind, TrapKind::IntegerOverflow);
    // ud1l 3(%eax), %eax  (ubsantrap(3), a user code: disp8)
    let c = Code::new("user", &[0x67, 0x0F, 0xB9, 0x40, 0x03], &[]);
    assert_eq!(c.call(0).unwrap_err().kind, TrapKind::Unreachable(Some(3)));
    // mov rax, [rdi]; ret
    let c = Code::new("load", &[0x48, 0x8B, 0x07, 0xC3], &[]);
    let mut x = 41u64;
    assert_eq!(c.call(&mut x as *mut u64 as u64), Ok(41));
    let trap = c.call(16).unwrap_err();
    assert_eq!(trap.kind, TrapKind::MemoryFault { address: 16 });
    assert_eq!(trap.function_name(), Some("load"));
}

#[test]
fn stack_overflow_in_threads() {
    // f: push rbp; mov rbp, rsp; call f (never returns)
    let c = std::sync::Arc::new(Code::new(
        "rec",
        &[0x55, 0x48, 0x89, 0xE5, 0xE8, 0xF7, 0xFF, 0xFF, 0xFF],
        &[],
    ));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    assert_eq!(c.call(0).unwrap_err().kind, TrapKind::StackOverflow);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread survived");
    }
}

// SAFETY: Code is only used through `call`, whose code touches no shared
// state, and dropped once.
unsafe impl Send for Code {}
// SAFETY: as above.
unsafe impl Sync for Code {}

#[test]
fn raise_trap_ends_the_innermost_call() {
    let trap = |code| Trap {
        kind: TrapKind::Raised { code },
        function: None,
        pc: 0,
        message: Some("stop".into()),
    };
    // SAFETY: nothing live needs dropping; outside catch_traps it returns.
    assert_eq!(unsafe { raise_trap(trap(1)) }, trap(1));
    let mut reached = (false, false);
    // SAFETY: the closures own nothing; raise_trap abandons only them.
    let outer = unsafe {
        catch_traps(|| {
            let inner = catch_traps(|| {
                raise_trap(trap(2));
                reached.0 = true;
            });
            assert_eq!(inner, Err(trap(2)));
            raise_trap(trap(3));
            reached.1 = true;
        })
    };
    assert_eq!(outer, Err(trap(3)));
    assert_eq!(reached, (false, false));
    assert!(!in_jit_call());
}

//! Links LLVM's x86-64 target only, and no Polly.
//!
//! llvm-sys implements the `LLVM_Initialize*` helpers (`static inline` in
//! `llvm-c/Target.h`) in one small C object, `target.o`, and inkwell refers
//! to them (`Target::initialize_native`, `Target::initialize_all`). Linking
//! that object pulls in every target the LLVM build has (AArch64, AMDGPU,
//! ARM, Hexagon, RISC-V, ...), and each brings its static constructors:
//! about 230 of them, run at every process start whether or not LLVM is
//! used (`orc --version` measured ~1 ms slower).
//!
//! orc generates code for the host only, so this module defines the same
//! ten symbols itself, for x86-64. The linker then never needs `target.o`
//! (an archive member is only extracted for a symbol still undefined), and
//! only the X86 target's libraries are linked. `Target::initialize_all` and
//! friends consequently initialize x86-64 alone in a process linking
//! orc-llvm; no other target is linked to initialize.

use inkwell::llvm_sys::target::{
    LLVMInitializeX86AsmParser, LLVMInitializeX86AsmPrinter, LLVMInitializeX86Disassembler,
    LLVMInitializeX86Target, LLVMInitializeX86TargetInfo, LLVMInitializeX86TargetMC,
};

/// Defines each named helper as the x86-64 registration calls listed.
/// Helpers declared `-> i32` return 0, success, as the C helpers do.
macro_rules! x86_64_helpers {
    ($($helper:ident $(-> $ret:ty)? = $($init:ident),+;)*) => {$(
        #[no_mangle]
        extern "C" fn $helper() $(-> $ret)? {
            // SAFETY: LLVM's target registration functions take no
            // arguments and may be called any number of times, from any
            // thread.
            unsafe { $($init();)+ }
            $(0 as $ret)?
        }
    )*};
}

x86_64_helpers! {
    LLVM_InitializeAllTargetInfos = LLVMInitializeX86TargetInfo;
    LLVM_InitializeAllTargets = LLVMInitializeX86Target;
    LLVM_InitializeAllTargetMCs = LLVMInitializeX86TargetMC;
    LLVM_InitializeAllAsmPrinters = LLVMInitializeX86AsmPrinter;
    LLVM_InitializeAllAsmParsers = LLVMInitializeX86AsmParser;
    LLVM_InitializeAllDisassemblers = LLVMInitializeX86Disassembler;
    LLVM_InitializeNativeTarget -> i32 =
        LLVMInitializeX86TargetInfo, LLVMInitializeX86Target, LLVMInitializeX86TargetMC;
    LLVM_InitializeNativeAsmParser -> i32 = LLVMInitializeX86AsmParser;
    LLVM_InitializeNativeAsmPrinter -> i32 = LLVMInitializeX86AsmPrinter;
    LLVM_InitializeNativeDisassembler -> i32 = LLVMInitializeX86Disassembler;
}

/// `llvm::AllAnalysesOn<llvm::Loop>::SetKey`, which keeps Polly out.
///
/// The symbol is a template's static data member: every LLVM object that
/// uses it carries a weak copy, and the linker takes the first archive
/// member offering one. In Debian's LLVM that member is Polly's
/// `JSONExporter.cpp.o`, so asking for the key (the pass builder does)
/// pulled in Polly whole (about 120 objects, 27 static constructors,
/// 3 MB, ~0.25 ms of every start) although orc never runs a Polly pass.
/// Defining it here satisfies the reference first. LLVM uses only its
/// address, as an identity (`AllAnalysesOn<Loop>::ID()`), so any unique,
/// 8-byte-aligned object serves; the weak copies in LLVM's objects yield
/// to this one.
#[no_mangle]
static _ZN4llvm13AllAnalysesOnINS_4LoopEE6SetKeyE: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

//! The per-architecture side of laziness: the bytes of indirect stubs,
//! trampolines and the reentry routine. A port to another architecture adds
//! a file implementing [`LazyArch`] and selects it as [`HostArch`].

/// Code generation for stubs, trampolines and reentry on one architecture.
pub(crate) trait LazyArch {
    /// Bytes per indirect stub.
    const STUB_SIZE: usize;
    /// Bytes per trampoline.
    const TRAMPOLINE_SIZE: usize;
    /// An upper bound on the size of the reentry routine.
    const REENTRY_MAX_SIZE: usize;

    /// Writes `n` stubs at `code` (which will live at `code_addr`); stub `i`
    /// jumps through the 8-byte slot at `slots_addr + 8 * i`.
    fn write_stubs(code: &mut [u8], code_addr: u64, slots_addr: u64, n: usize);

    /// Writes `n` trampolines at `code` (at `code_addr`); each calls the
    /// reentry routine whose address is stored at `reentry_ptr_addr`.
    fn write_trampolines(code: &mut [u8], code_addr: u64, reentry_ptr_addr: u64, n: usize);

    /// The trampoline a reentry call came from, given the return address
    /// the trampoline's call pushed.
    fn trampoline_from_return_address(ret: u64) -> u64;

    /// Writes the reentry routine: save every argument register, call
    /// `resolver(ctx, trampoline return address)`, restore, and continue
    /// in the function whose address the resolver returned, as if the
    /// original caller had called it. Returns the size written.
    fn write_reentry(code: &mut [u8], ctx: u64, resolver: u64) -> usize;
}

#[cfg(target_arch = "x86_64")]
pub(crate) type HostArch = super::x86_64::X86_64;

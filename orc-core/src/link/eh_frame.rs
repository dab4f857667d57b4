//! `.eh_frame` handling: validating a relocated section before the system
//! unwinder sees it, and registering it with `__register_frame` for as long
//! as a [`EhFrameRegistration`] lives.
//!
//! Convention (glibc with libgcc_s, the unwinder Rust's std uses on
//! linux-gnu): `__register_frame` takes the start of a whole `.eh_frame`
//! section ending in a zero-length terminator, and ignores a section whose
//! first word is zero; `__deregister_frame` takes the same pointer. LLVM's
//! libunwind instead takes one FDE per call; it is not supported here.
//!
//! Invariants: a section is registered only after it parses completely as
//! 32-bit-format CIEs and FDEs whose instructions decode, and whose FDEs
//! cover only this link's own code (or carry the null start address that
//! marks the FDE of a dropped COMDAT function, which libgcc skips). So a
//! corrupt object can never make the unwinder misdescribe host frames.

use gimli::{BaseAddresses, CieOrFde, EhFrame, LittleEndian, UnwindSection};

use super::error::LinkError;

/// Checks a relocated `.eh_frame` section (without its terminator) that
/// lives at `addr`, against the link's code range `code`.
pub(crate) fn validate(
    object: &str,
    bytes: &[u8],
    addr: u64,
    code: std::ops::Range<u64>,
) -> Result<(), LinkError> {
    let err = |reason: String| LinkError::EhFrame {
        object: object.to_owned(),
        reason,
    };
    // The 64-bit DWARF format is not understood by libgcc's registration.
    let mut at = 0usize;
    while let Some(len_bytes) = bytes.get(at..at.saturating_add(4)) {
        let Ok(len_bytes) = <[u8; 4]>::try_from(len_bytes) else {
            break;
        };
        let len = u32::from_le_bytes(len_bytes);
        if len == 0 {
            break;
        }
        if len == u32::MAX {
            return Err(err(format!("64-bit entry at offset {at:#x}")));
        }
        at = at.saturating_add(4).saturating_add(len as usize);
    }
    let eh_frame = EhFrame::new(bytes, LittleEndian);
    let bases = BaseAddresses::default()
        .set_eh_frame(addr)
        .set_text(code.start);
    let mut entries = eh_frame.entries(&bases);
    loop {
        let entry = entries.next().map_err(|e| err(format!("{e}")))?;
        let Some(entry) = entry else { break };
        match entry {
            CieOrFde::Cie(cie) => {
                let mut insts = cie.instructions(&eh_frame, &bases);
                while insts
                    .next()
                    .map_err(|e| err(format!("cie at {:#x}: {e}", cie.offset())))?
                    .is_some()
                {}
            }
            CieOrFde::Fde(partial) => {
                let fde = partial
                    .parse(|section, bases, offset| section.cie_from_offset(bases, offset))
                    .map_err(|e| err(format!("{e}")))?;
                let start = fde.initial_address();
                let field = addr.wrapping_add(fde.offset() as u64).wrapping_add(8);
                let dropped = start == 0 || start == field;
                let end = start.checked_add(fde.len());
                let inside = start >= code.start && end.is_some_and(|e| e <= code.end);
                if !dropped && !inside {
                    return Err(err(format!(
                        "fde at {:#x} covers {start:#x}+{:#x}, outside the object's code",
                        fde.offset(),
                        fde.len()
                    )));
                }
                let mut insts = fde.instructions(&eh_frame, &bases);
                while insts
                    .next()
                    .map_err(|e| err(format!("fde at {:#x}: {e}", fde.offset())))?
                    .is_some()
                {}
            }
        }
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn __register_frame(begin: *const u8);
    fn __deregister_frame(begin: *const u8);
}

/// A `.eh_frame` section registered with the system unwinder; dropping it
/// deregisters the section.
pub(crate) struct EhFrameRegistration {
    begin: *const u8,
}

// SAFETY: the registration is a plain address; libgcc's registry is
// internally locked, so deregistering from any thread is fine.
unsafe impl Send for EhFrameRegistration {}
// SAFETY: no method takes &self to mutate anything.
unsafe impl Sync for EhFrameRegistration {}

impl EhFrameRegistration {
    /// Registers the section starting at `begin`.
    ///
    /// Returns `None` when the section is empty (its first word is zero),
    /// which libgcc would ignore, so nothing must be deregistered.
    ///
    /// # Safety
    ///
    /// `begin` must point to a validated (see [`validate`]), relocated
    /// `.eh_frame` section followed by a zero 4-byte terminator, in
    /// readable memory that stays mapped and unchanged until the returned
    /// value is dropped.
    pub(crate) unsafe fn register(begin: *const u8) -> Option<Self> {
        // SAFETY: the caller guarantees `begin` points to at least 4
        // readable bytes (the terminator, at the least).
        let first = unsafe { std::ptr::read_unaligned(begin.cast::<u32>()) };
        if first == 0 {
            return None;
        }
        if let Some(target) = crate::remote::target() {
            // The code runs in the executor: its unwinder must know the
            // frames. A failure (the executor died) only loses unwinding.
            if let Err(e) = target.register_frames(begin as usize as u64) {
                eprintln!("orc: warning: cannot register unwind info in the executor: {e}");
            }
            return Some(EhFrameRegistration { begin });
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: libgcc's __register_frame reads the terminated section the
        // caller vouched for; it keeps the pointer until deregistration.
        unsafe {
            __register_frame(begin);
        }
        Some(EhFrameRegistration { begin })
    }
}

impl Drop for EhFrameRegistration {
    fn drop(&mut self) {
        if let Some(target) = crate::remote::target() {
            let _ = target.deregister_frames(self.begin as usize as u64);
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: `begin` was registered by `register` (non-empty section)
        // and is deregistered exactly once, before its memory is unmapped
        // (the contract of `register`).
        unsafe {
            __deregister_frame(self.begin);
        }
    }
}

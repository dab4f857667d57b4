//! The registry of executable ranges: which linked object's code a
//! program counter is in, which function, and the trap code (if any) the
//! compiler recorded for the instruction there.
//!
//! The linker registers each object's code segment when it publishes it
//! and deregisters it before unmapping it (`link/linked.rs`). The signal
//! handler reads it: under a read lock it only takes with `try_read` (a
//! writer on another thread finishes in a bounded time; on the faulting
//! thread itself no writer can be active, since a fault in JIT'd code is
//! not in the registry's own code), and it allocates nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// The section a tier-0 object carries its trap table in (not loaded).
///
/// Format, little-endian: records of `u32` name length, the function
/// symbol's name, `u32` count, then `count` entries of `u32` offset (from
/// the symbol) and `u8` trap code (Cranelift's raw `TrapCode` byte).
pub const TRAP_SECTION: &str = ".orc.traps";

/// One function of a registered range.
#[derive(Clone, Debug)]
pub struct CodeFunction {
    /// First byte.
    pub start: u64,
    /// One past the last byte (the next function's start when the symbol
    /// had no size).
    pub end: u64,
    /// The symbol.
    pub name: Arc<str>,
}

struct Range {
    end: u64,
    object: Arc<str>,
    /// Sorted by start.
    functions: Vec<CodeFunction>,
    /// Sorted by address.
    traps: Vec<(u64, u8)>,
}

static REGISTRY: RwLock<BTreeMap<u64, Range>> = RwLock::new(BTreeMap::new());

/// What the registry knows about an address in JIT'd code.
#[derive(Clone, Debug)]
pub struct CodeInfo {
    /// The linked object's name.
    pub object: Arc<str>,
    /// The function containing the address, if a symbol covers it.
    pub function: Option<Arc<str>>,
    /// The trap code the compiler recorded for the instruction at exactly
    /// this address.
    pub trap_code: Option<u8>,
}

/// Keeps a code range registered; deregisters it when dropped.
#[derive(Debug)]
pub struct CodeRegistration {
    start: u64,
}

/// Registers `[start, end)` as JIT'd code of `object`, with its functions
/// and trap table (absolute addresses). Empty ranges are not registered.
pub fn register_code(
    start: u64,
    end: u64,
    object: &str,
    mut functions: Vec<CodeFunction>,
    mut traps: Vec<(u64, u8)>,
) -> Option<CodeRegistration> {
    if end <= start {
        return None;
    }
    functions.sort_by_key(|f| f.start);
    traps.sort_unstable();
    let range = Range {
        end,
        object: object.into(),
        functions,
        traps,
    };
    write().insert(start, range);
    Some(CodeRegistration { start })
}

impl Drop for CodeRegistration {
    fn drop(&mut self) {
        write().remove(&self.start);
    }
}

fn write() -> std::sync::RwLockWriteGuard<'static, BTreeMap<u64, Range>> {
    REGISTRY.write().unwrap_or_else(|p| p.into_inner())
}

/// The registry, read without blocking for long (see the module docs):
/// `None` only if a writer held it for the whole spin.
fn read_for_signal() -> Option<RwLockReadGuard<'static, BTreeMap<u64, Range>>> {
    for _ in 0..1_000_000 {
        match REGISTRY.try_read() {
            Ok(guard) => return Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => std::hint::spin_loop(),
        }
    }
    None
}

fn find(map: &BTreeMap<u64, Range>, pc: u64) -> Option<&Range> {
    let (_, range) = map.range(..=pc).next_back()?;
    (pc < range.end).then_some(range)
}

/// Whether `pc` is in registered JIT'd code, with its function and trap
/// code. Allocates nothing (callable from the signal handler).
pub(crate) fn lookup_for_signal(pc: u64) -> Option<CodeInfo> {
    let map = read_for_signal()?;
    let range = find(&map, pc)?;
    Some(info(range, pc))
}

fn info(range: &Range, pc: u64) -> CodeInfo {
    let i = range.functions.partition_point(|f| f.start <= pc);
    let function = i
        .checked_sub(1)
        .and_then(|i| range.functions.get(i))
        .filter(|f| pc < f.end)
        .map(|f| f.name.clone());
    let trap_code = range
        .traps
        .binary_search_by_key(&pc, |&(a, _)| a)
        .ok()
        .and_then(|i| range.traps.get(i))
        .map(|&(_, c)| c);
    CodeInfo {
        object: range.object.clone(),
        function,
        trap_code,
    }
}

/// What the registry knows about `pc`, or `None` if it is not in JIT'd
/// code the linker has published (and not yet freed).
pub fn code_info(pc: u64) -> Option<CodeInfo> {
    let map = REGISTRY.read().unwrap_or_else(|p| p.into_inner());
    find(&map, pc).map(|r| info(r, pc))
}

/// Parses a [`TRAP_SECTION`]: `(symbol, offset, code)` entries; `None` if
/// the bytes are malformed.
pub(crate) fn parse_trap_section(mut bytes: &[u8]) -> Option<Vec<(String, u32, u8)>> {
    fn u32_at(b: &mut &[u8]) -> Option<u32> {
        let (head, rest) = b.split_first_chunk::<4>()?;
        *b = rest;
        Some(u32::from_le_bytes(*head))
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32_at(&mut bytes)? as usize;
        let name = bytes.get(..len)?;
        let name = std::str::from_utf8(name).ok()?.to_owned();
        bytes = &bytes[len..];
        let count = u32_at(&mut bytes)?;
        for _ in 0..count {
            let offset = u32_at(&mut bytes)?;
            let (&code, rest) = bytes.split_first()?;
            bytes = rest;
            out.push((name.clone(), offset, code));
        }
    }
    Some(out)
}

/// Writes a [`TRAP_SECTION`] from `(symbol, [(offset, code)])` records.
pub fn write_trap_section<'a>(
    records: impl IntoIterator<Item = (&'a str, &'a [(u32, u8)])>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, traps) in records {
        if traps.is_empty() {
            continue;
        }
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(traps.len() as u32).to_le_bytes());
        for &(offset, code) in traps {
            out.extend_from_slice(&offset.to_le_bytes());
            out.push(code);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_section_round_trips() {
        let a = [(4u32, 254u8), (9, 252)];
        let bytes = write_trap_section([("f", &a[..]), ("g", &[][..]), ("h$body", &[(0, 1)][..])]);
        let parsed = parse_trap_section(&bytes).expect("well-formed");
        assert_eq!(
            parsed,
            vec![
                ("f".to_owned(), 4, 254),
                ("f".to_owned(), 9, 252),
                ("h$body".to_owned(), 0, 1)
            ]
        );
        assert!(parse_trap_section(&bytes[..bytes.len() - 1]).is_none());
    }

    #[test]
    fn lookup_finds_function_and_trap() {
        // Addresses that no mapping uses in a test process (never run).
        let base = 0x7fff_0000_0000_u64;
        let f = |s, e, n: &str| CodeFunction {
            start: s,
            end: e,
            name: n.into(),
        };
        let reg = register_code(
            base,
            base + 0x100,
            "obj",
            vec![f(base + 0x40, base + 0x100, "b"), f(base, base + 0x40, "a")],
            vec![(base + 0x48, 254)],
        )
        .expect("non-empty");
        let hit = code_info(base + 0x48).expect("registered");
        assert_eq!(hit.function.as_deref(), Some("b"));
        assert_eq!(hit.trap_code, Some(254));
        assert_eq!(&*hit.object, "obj");
        let a = lookup_for_signal(base + 3).expect("registered");
        assert_eq!(a.function.as_deref(), Some("a"));
        assert_eq!(a.trap_code, None);
        assert!(code_info(base + 0x100).is_none());
        drop(reg);
        assert!(code_info(base + 0x48).is_none());
    }
}

//! Symbol names, flags and addresses: the vocabulary every other module of
//! the core speaks.
//!
//! A [`SymbolName`] is interned in a [`SymbolStringPool`] owned by the
//! session, so cloning is a reference-count bump and equality and hashing
//! compare pointers, never bytes. Two names from different pools never
//! compare equal even when their text does; always intern through the
//! session that will look the name up.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{BitOr, BitOrAssign, Deref};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// An interned symbol name. Clone, equality and hash are by pointer.
#[derive(Clone)]
pub struct SymbolName(Arc<str>);

impl SymbolName {
    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as a shared string (no copy).
    pub(crate) fn to_arc(&self) -> Arc<str> {
        self.0.clone()
    }

    fn addr(&self) -> *const u8 {
        Arc::as_ptr(&self.0) as *const u8
    }
}

impl PartialEq for SymbolName {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SymbolName {}

impl Hash for SymbolName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.addr() as usize).hash(state)
    }
}

impl PartialOrd for SymbolName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders by text (then by pointer), so sorted lists read well in messages.
impl Ord for SymbolName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str()
            .cmp(other.as_str())
            .then_with(|| self.addr().cmp(&other.addr()))
    }
}

impl Deref for SymbolName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SymbolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for SymbolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The pool that owns interned names. Shared by a session and everything
/// attached to it. Names hash with the session's cheap hasher: they come
/// from the programs being run, whose authors control the process anyway,
/// so SipHash's resistance to chosen collisions buys nothing here.
///
/// Names nothing refers to any more (a redefined function's old body
/// symbol, a removed top-level expression's) are dropped as the pool
/// grows: whenever it reaches twice the size it had after the last sweep
/// (at least [`Self::SWEEP_MIN`]), interning sweeps it first. A long
/// session's pool stays proportional to its live names, at an amortized
/// constant cost per interned name.
#[derive(Default)]
pub struct SymbolStringPool {
    names: Mutex<HashSet<Key, FastHash>>,
    /// The size at which the next insertion sweeps dead entries first
    /// (read and written under `names`' lock).
    sweep_at: AtomicUsize,
}

/// A set entry that hashes and compares by text, for interning.
struct Key(Arc<str>);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Key {}
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}
impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl SymbolStringPool {
    /// The smallest pool size at which interning sweeps dead entries.
    pub const SWEEP_MIN: usize = 1024;

    /// Creates an empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the unique [`SymbolName`] for `text`, adding it if needed.
    pub fn intern(&self, text: &str) -> SymbolName {
        let mut names = self.names.lock();
        if let Some(key) = names.get(text) {
            return SymbolName(key.0.clone());
        }
        if names.len() >= self.sweep_at.load(Ordering::Relaxed) {
            // An entry only the pool holds cannot be revived concurrently:
            // a new reference needs an existing name or this lock.
            names.retain(|k| Arc::strong_count(&k.0) > 1);
            let next = (names.len() * 2).max(Self::SWEEP_MIN);
            self.sweep_at.store(next, Ordering::Relaxed);
        }
        let arc: Arc<str> = Arc::from(text);
        names.insert(Key(arc.clone()));
        SymbolName(arc)
    }

    /// Makes room for `additional` more names (before interning many).
    pub fn reserve(&self, additional: usize) {
        self.names.lock().reserve(additional);
    }

    /// Drops every entry no [`SymbolName`] refers to any more.
    pub fn clear_dead_entries(&self) {
        self.names.lock().retain(|k| Arc::strong_count(&k.0) > 1);
    }

    /// The number of interned names (live or not yet cleared).
    pub fn len(&self) -> usize {
        self.names.lock().len()
    }

    /// Whether the pool holds no names.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Properties of a symbol definition, as in ORC's `JITSymbolFlags`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SymbolFlags(u8);

impl SymbolFlags {
    /// No flags: a strong, hidden, data symbol.
    pub const NONE: SymbolFlags = SymbolFlags(0);
    /// Visible to lookups that match exported symbols only.
    pub const EXPORTED: SymbolFlags = SymbolFlags(1);
    /// A function (code), as opposed to data.
    pub const CALLABLE: SymbolFlags = SymbolFlags(2);
    /// A weak definition: a strong one overrides it, and of two weak ones
    /// the first is kept.
    pub const WEAK: SymbolFlags = SymbolFlags(4);
    /// A common (tentative) definition.
    pub const COMMON: SymbolFlags = SymbolFlags(8);
    /// A symbol that exists only to trigger materialization for its side
    /// effects (initializers); it never has an address.
    pub const MATERIALIZATION_SIDE_EFFECTS_ONLY: SymbolFlags = SymbolFlags(16);

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: SymbolFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether the symbol is exported.
    pub const fn is_exported(self) -> bool {
        self.contains(Self::EXPORTED)
    }
    /// Whether the symbol is callable.
    pub const fn is_callable(self) -> bool {
        self.contains(Self::CALLABLE)
    }
    /// Whether the definition is weak.
    pub const fn is_weak(self) -> bool {
        self.contains(Self::WEAK)
    }
    /// Whether the definition is strong (neither weak nor common).
    pub const fn is_strong(self) -> bool {
        !self.is_weak() && !self.is_common()
    }
    /// Whether the definition is common.
    pub const fn is_common(self) -> bool {
        self.contains(Self::COMMON)
    }
    /// Whether the symbol exists only for materialization side effects.
    pub const fn has_side_effects_only(self) -> bool {
        self.contains(Self::MATERIALIZATION_SIDE_EFFECTS_ONLY)
    }
    /// `self` with the flags of `other` added (a `const` form of `|`).
    pub const fn union(self, other: SymbolFlags) -> SymbolFlags {
        SymbolFlags(self.0 | other.0)
    }
    /// `self` without the flags of `other`.
    pub const fn without(self, other: SymbolFlags) -> SymbolFlags {
        SymbolFlags(self.0 & !other.0)
    }
    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl BitOr for SymbolFlags {
    type Output = SymbolFlags;
    fn bitor(self, rhs: SymbolFlags) -> SymbolFlags {
        SymbolFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for SymbolFlags {
    fn bitor_assign(&mut self, rhs: SymbolFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for SymbolFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::EXPORTED, "exported"),
            (Self::CALLABLE, "callable"),
            (Self::WEAK, "weak"),
            (Self::COMMON, "common"),
            (Self::MATERIALIZATION_SIDE_EFFECTS_ONLY, "side-effects-only"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect();
        write!(f, "[{}]", set.join(", "))
    }
}

/// An address in the executor (this process: orc JITs in-process).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ExecutorAddr(pub u64);

impl ExecutorAddr {
    /// The null address.
    pub const NULL: ExecutorAddr = ExecutorAddr(0);

    /// The address of a pointer.
    pub fn from_ptr<T: ?Sized>(ptr: *const T) -> Self {
        ExecutorAddr(ptr as *const u8 as usize as u64)
    }

    /// The address as a raw pointer. Using it is up to the caller.
    pub fn to_ptr<T>(self) -> *const T {
        self.0 as usize as *const T
    }

    /// The raw value.
    pub fn value(self) -> u64 {
        self.0
    }

    /// Whether the address is null.
    pub fn is_null(self) -> bool {
        self.0 == 0
    }

    /// The address `offset` bytes further on (wrapping).
    pub fn offset(self, offset: i64) -> Self {
        ExecutorAddr(self.0.wrapping_add(offset as u64))
    }
}

impl fmt::Debug for ExecutorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Display for ExecutorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A resolved symbol: its address and flags.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExecutorSymbolDef {
    /// Where the symbol lives.
    pub addr: ExecutorAddr,
    /// Its flags.
    pub flags: SymbolFlags,
}

impl ExecutorSymbolDef {
    /// A definition at `addr` with `flags`.
    pub fn new(addr: ExecutorAddr, flags: SymbolFlags) -> Self {
        ExecutorSymbolDef { addr, flags }
    }
}

/// A cheap hasher for the session's internal tables, whose keys are
/// pointers (interned names) and small integers: SipHash's protection
/// against hash flooding buys nothing there. Mixing as in FxHash.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64)
    }
    fn write_u32(&mut self, word: u32) {
        self.write_u64(word as u64)
    }
    fn write_u8(&mut self, word: u8) {
        self.write_u64(word as u64)
    }
}

/// Builds [`FastHasher`]s.
pub(crate) type FastHash = std::hash::BuildHasherDefault<FastHasher>;

/// Resolved addresses by name.
pub type SymbolMap = HashMap<SymbolName, ExecutorSymbolDef>;

/// Flags by name: the interface of a materialization unit.
pub type SymbolFlagsMap = HashMap<SymbolName, SymbolFlags>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_by_pointer() {
        let pool = SymbolStringPool::new();
        let a = pool.intern("foo");
        let b = pool.intern("foo");
        let c = pool.intern("bar");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str(), "foo");
        let other = SymbolStringPool::new();
        assert_ne!(a, other.intern("foo"), "names of two pools differ");
    }

    #[test]
    fn dead_entries_are_cleared() {
        let pool = SymbolStringPool::new();
        let kept = pool.intern("kept");
        drop(pool.intern("dropped"));
        assert_eq!(pool.len(), 2);
        pool.clear_dead_entries();
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.intern("kept"), kept);
    }

    #[test]
    fn a_growing_pool_sweeps_dead_entries() {
        let pool = SymbolStringPool::new();
        let kept: Vec<SymbolName> = (0..10).map(|i| pool.intern(&format!("k{i}"))).collect();
        for i in 0..100_000 {
            drop(pool.intern(&format!("dead{i}")));
        }
        // Bounded by the sweep threshold, not by the names ever interned.
        assert!(
            pool.len() <= SymbolStringPool::SWEEP_MIN + 1,
            "{}",
            pool.len()
        );
        for (i, name) in kept.iter().enumerate() {
            assert_eq!(&pool.intern(&format!("k{i}")), name);
        }
    }

    #[test]
    fn flags() {
        let f = SymbolFlags::EXPORTED | SymbolFlags::WEAK;
        assert!(f.is_exported() && f.is_weak() && !f.is_strong());
        assert!(SymbolFlags::CALLABLE.is_strong());
        assert_eq!(format!("{f:?}"), "[exported, weak]");
        assert_eq!(f.without(SymbolFlags::WEAK), SymbolFlags::EXPORTED);
    }
}

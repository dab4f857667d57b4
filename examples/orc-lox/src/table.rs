//! An open-addressing hash table keyed by interned strings (clox's `Table`):
//! linear probing, tombstones, a power-of-two capacity, load factor 3/4.
//! Used for the string intern set, class methods and instance fields.

use crate::object::ObjRef;
use crate::value::Value;

#[derive(Clone, Copy)]
struct Entry {
    /// Null when empty or a tombstone.
    key: ObjRef,
    /// `nil` in an empty slot, `true` in a tombstone.
    value: Value,
}

const EMPTY: Entry = Entry {
    key: ObjRef::NULL,
    value: Value::NIL,
};

/// A string-keyed table of values.
///
/// Keys are interned, so a field or method table hashes the key's address
/// (no load of the string); the intern set itself hashes contents.
#[derive(Default)]
pub(crate) struct Table {
    /// Live entries plus tombstones (`u32` keeps the table three words).
    count: u32,
    /// Bit 31: hash keys by their contents (the intern set) instead of
    /// address. Bits 0-30: a one-hash Bloom filter of the keys ever set
    /// (address-hashed tables only), so most misses (a method name looked
    /// up among an instance's fields) cost no probe.
    flags: u32,
    entries: Box<[Entry]>,
}

const BY_CONTENT: u32 = 1 << 31;

/// The filter bit of an address-hashed key.
#[inline(always)]
fn filter_bit(hash: u32) -> u32 {
    1 << ((hash >> 27) % 31)
}

/// Mixes an object's address into a hash (Fibonacci hashing).
#[inline(always)]
fn address_hash(key: ObjRef) -> u32 {
    ((key.0 as usize as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

fn find_entry(entries: &[Entry], key: ObjRef, hash: u32) -> usize {
    let mask = entries.len() - 1;
    let mut index = hash as usize & mask;
    let mut tombstone = None;
    loop {
        let entry = &entries[index];
        if entry.key.is_null() {
            if entry.value.is_nil() {
                return tombstone.unwrap_or(index);
            } else if tombstone.is_none() {
                tombstone = Some(index);
            }
        } else if entry.key == key {
            return index;
        }
        index = (index + 1) & mask;
    }
}

impl Table {
    /// An empty table hashing keys by contents (for the intern set).
    pub(crate) fn by_content() -> Table {
        Table {
            flags: BY_CONTENT,
            ..Table::default()
        }
    }

    #[inline(always)]
    fn hash(&self, key: ObjRef) -> u32 {
        if self.flags & BY_CONTENT != 0 {
            key.string_hash()
        } else {
            address_hash(key)
        }
    }

    /// The value under `key`.
    #[inline]
    pub(crate) fn get(&self, key: ObjRef) -> Option<Value> {
        if self.count == 0 {
            return None;
        }
        let hash = self.hash(key);
        if self.flags & (BY_CONTENT | filter_bit(hash)) == 0 {
            return None;
        }
        let entry = &self.entries[find_entry(&self.entries, key, hash)];
        if entry.key.is_null() {
            None
        } else {
            Some(entry.value)
        }
    }

    /// The value under `key`, trying first the entry at `hint` (an inline
    /// cache of a call site, updated on a miss): a key is in at most one
    /// entry, so finding it at the hinted index is a hit whatever happened
    /// to the table since.
    #[inline]
    pub(crate) fn get_hinted(&self, key: ObjRef, hint: &std::cell::Cell<u32>) -> Option<Value> {
        if let Some(entry) = self.entries.get(hint.get() as usize) {
            if entry.key == key {
                return Some(entry.value);
            }
        }
        if self.count == 0 {
            return None;
        }
        let hash = self.hash(key);
        if self.flags & (BY_CONTENT | filter_bit(hash)) == 0 {
            return None;
        }
        let index = find_entry(&self.entries, key, hash);
        let entry = &self.entries[index];
        if entry.key.is_null() {
            None
        } else {
            hint.set(index as u32);
            Some(entry.value)
        }
    }

    /// Sets `key`, if present, to `value` (trying the entry at `hint`
    /// first, updating it on a miss); false when `key` is absent (nothing
    /// changes).
    #[inline]
    pub(crate) fn replace_hinted(
        &mut self,
        key: ObjRef,
        value: Value,
        hint: &std::cell::Cell<u32>,
    ) -> bool {
        if let Some(entry) = self.entries.get_mut(hint.get() as usize) {
            if entry.key == key {
                entry.value = value;
                return true;
            }
        }
        if self.count == 0 {
            return false;
        }
        let hash = self.hash(key);
        if self.flags & (BY_CONTENT | filter_bit(hash)) == 0 {
            return false;
        }
        let index = find_entry(&self.entries, key, hash);
        let entry = &mut self.entries[index];
        if entry.key.is_null() {
            return false;
        }
        entry.value = value;
        hint.set(index as u32);
        true
    }

    /// Sets `key` to `value`; true when the key was new.
    pub(crate) fn set(&mut self, key: ObjRef, value: Value) -> bool {
        if (self.count as usize + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        let hash = self.hash(key);
        if self.flags & BY_CONTENT == 0 {
            self.flags |= filter_bit(hash);
        }
        let index = find_entry(&self.entries, key, hash);
        let entry = &mut self.entries[index];
        let is_new = entry.key.is_null();
        if is_new && entry.value.is_nil() {
            self.count += 1;
        }
        entry.key = key;
        entry.value = value;
        is_new
    }

    /// Bytes of the entry array (for the collector's accounting).
    #[inline]
    pub(crate) fn heap_size(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// Copies every entry of `from` into this table.
    pub(crate) fn add_all(&mut self, from: &Table) {
        for (k, v) in from.iter() {
            self.set(k, v);
        }
    }

    /// The interned string equal to `chars`, if any (the intern set's lookup).
    pub(crate) fn find_string(&self, chars: &str, hash: u32) -> Option<ObjRef> {
        if self.count == 0 {
            return None;
        }
        let mask = self.entries.len() - 1;
        let mut index = hash as usize & mask;
        loop {
            let entry = &self.entries[index];
            if entry.key.is_null() {
                if entry.value.is_nil() {
                    return None;
                }
            } else {
                let s = entry.key.as_string();
                if s.hash == hash && &*s.chars == chars {
                    return Some(entry.key);
                }
            }
            index = (index + 1) & mask;
        }
    }

    /// Deletes the entries whose key the collector did not mark (the intern
    /// set holds its strings weakly).
    pub(crate) fn remove_unmarked(&mut self) {
        for entry in self.entries.iter_mut() {
            if !entry.key.is_null() && !entry.key.is_marked() {
                entry.key = ObjRef::NULL;
                entry.value = Value::TRUE;
            }
        }
    }

    /// The live entries.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (ObjRef, Value)> + '_ {
        self.entries
            .iter()
            .filter(|e| !e.key.is_null())
            .map(|e| (e.key, e.value))
    }

    fn grow(&mut self) {
        let capacity = if self.entries.len() < 8 {
            8
        } else {
            self.entries.len() * 2
        };
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; capacity].into_boxed_slice());
        self.count = 0;
        for entry in old.iter().filter(|e| !e.key.is_null()) {
            let index = find_entry(&self.entries, entry.key, self.hash(entry.key));
            self.entries[index] = *entry;
            self.count += 1;
        }
    }
}

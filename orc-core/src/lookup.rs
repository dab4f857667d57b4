//! The vocabulary of lookups: symbol states, which definitions a search
//! may match, which names are required, and lookup sets.

use crate::symbol::SymbolName;

/// The life of a symbol in a dylib. Transitions happen only inside the
/// session, under its lock:
///
/// - `NeverSearched` -> `Materializing`: a lookup found the symbol and its
///   unit was handed a responsibility.
/// - `Materializing` -> `Resolved`: the responsibility called
///   `notify_resolved`; the address is known.
/// - `Resolved` -> `Emitted`: `notify_emitted`; the code is in memory but
///   something it depends on may not be.
/// - `Emitted` -> `Ready`: everything the symbol depends on (transitively) is
///   emitted too; it is safe to run.
///
/// Any state but `Ready` can move to the error state (kept as a separate
/// flag in the session), which every later lookup reports. A symbol may also
/// go back from `Materializing` to `NeverSearched` when its responsibility
/// hands it back with `replace`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum SymbolState {
    /// Defined by a unit that nobody has asked to materialize yet.
    NeverSearched,
    /// Its unit is materializing.
    Materializing,
    /// Its address is known.
    Resolved,
    /// Its code and data are in memory.
    Emitted,
    /// It and everything it depends on are emitted.
    Ready,
}

/// Which definitions in a dylib a search may match.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Default)]
pub enum JitDylibLookupFlags {
    /// Only exported definitions (the view from other dylibs).
    #[default]
    MatchExportedSymbolsOnly,
    /// Hidden definitions too (the view from inside the dylib).
    MatchAllSymbols,
}

/// Whether a name must be found.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Default)]
pub enum SymbolLookupFlags {
    /// Missing is an error ([`crate::Error::SymbolsNotFound`]).
    #[default]
    RequiredSymbol,
    /// Missing is fine; the name is left out of the result.
    WeaklyReferencedSymbol,
}

/// Why a lookup happens, for definition generators.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Default)]
pub enum LookupKind {
    /// A link-time reference (a linker resolving an object's externals).
    #[default]
    Static,
    /// A run-time `dlsym`-style lookup.
    DlSym,
}

/// A list of names to look up, each with its [`SymbolLookupFlags`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SymbolLookupSet {
    entries: Vec<(SymbolName, SymbolLookupFlags)>,
}

impl SymbolLookupSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of required names.
    pub fn from_names<I: IntoIterator<Item = SymbolName>>(names: I) -> Self {
        let mut set = Self::new();
        for name in names {
            set.add(name, SymbolLookupFlags::RequiredSymbol);
        }
        set
    }

    /// Adds `name` (once: a repeated name keeps the first flags unless the
    /// new ones make it required).
    pub fn add(&mut self, name: SymbolName, flags: SymbolLookupFlags) -> &mut Self {
        if let Some(entry) = self.entries.iter_mut().find(|(n, _)| *n == name) {
            if flags == SymbolLookupFlags::RequiredSymbol {
                entry.1 = flags;
            }
        } else {
            self.entries.push((name, flags));
        }
        self
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &(SymbolName, SymbolLookupFlags)> {
        self.entries.iter()
    }

    /// The names in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &SymbolName> {
        self.entries.iter().map(|(n, _)| n)
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `name` is in the set.
    pub fn contains(&self, name: &SymbolName) -> bool {
        self.entries.iter().any(|(n, _)| n == name)
    }

    /// The entries, in insertion order.
    pub(crate) fn entries(&self) -> &[(SymbolName, SymbolLookupFlags)] {
        &self.entries
    }

    /// A set of `entries` (already free of repeated names).
    pub(crate) fn from_entries(entries: &[(SymbolName, SymbolLookupFlags)]) -> Self {
        SymbolLookupSet {
            entries: entries.to_vec(),
        }
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&SymbolName, SymbolLookupFlags) -> bool) {
        self.entries.retain(|(n, f)| keep(n, *f));
    }
}

impl FromIterator<SymbolName> for SymbolLookupSet {
    fn from_iter<I: IntoIterator<Item = SymbolName>>(iter: I) -> Self {
        Self::from_names(iter)
    }
}

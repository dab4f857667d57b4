//! The linker's error type: one structured variant per failure mode.
//!
//! Every variant names the object (or archive, or library) it concerns, so a
//! message read in isolation says what to fix. Messages are lowercase and
//! carry no trailing period; underlying I/O and loader errors are chained
//! through `source()`.

use std::fmt;
use std::path::PathBuf;

/// A relocation type number with its `R_X86_64_*` name when known.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelocationKind(pub u32);

impl RelocationKind {
    /// The ELF name of the relocation type, if it is a known x86-64 type.
    pub fn name(self) -> Option<&'static str> {
        crate::link::x86_64::relocation_name(self.0)
    }
}

impl fmt::Display for RelocationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            // Follows the word "relocation" in every message.
            None => write!(f, "type {}", self.0),
        }
    }
}

impl fmt::Debug for RelocationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Why linking an object (or finding a library for it) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The bytes are not a well-formed relocatable ELF object.
    #[error("{object}: malformed object: {reason}")]
    Malformed {
        /// The object's name.
        object: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object is for another architecture.
    #[error(
        "{object}: object is for machine {machine} (EM_{machine}), only x86-64 (62) is supported"
    )]
    WrongMachine {
        /// The object's name.
        object: String,
        /// Its `e_machine`.
        machine: u16,
    },
    /// The object is 32-bit, big-endian or otherwise not ELF64 little-endian.
    #[error("{object}: object is {found}, only 64-bit little-endian ELF is supported")]
    WrongClass {
        /// The object's name.
        object: String,
        /// What it is instead.
        found: &'static str,
    },
    /// The object is an executable, shared object or core file.
    #[error("{object}: ELF type {e_type} is not a relocatable object (ET_REL)")]
    WrongType {
        /// The object's name.
        object: String,
        /// Its `e_type`.
        e_type: u16,
    },
    /// A relocation type this linker does not implement.
    #[error("{object}: unsupported relocation {kind} in section {section} at offset {offset:#x}")]
    UnsupportedRelocation {
        /// The object's name.
        object: String,
        /// The section being relocated.
        section: String,
        /// The offset of the relocated field in that section.
        offset: u64,
        /// The relocation type.
        kind: RelocationKind,
    },
    /// A section or symbol feature this linker does not implement.
    #[error("{object}: unsupported {what}")]
    Unsupported {
        /// The object's name.
        object: String,
        /// What is unsupported, with the symbol or section it concerns.
        what: String,
    },
    /// A relocated value does not fit its field.
    #[error(
        "{object}: relocation {kind} in section {section} at offset {offset:#x} against {target} \
         overflows (value {value:#x})"
    )]
    RelocationOverflow {
        /// The object's name.
        object: String,
        /// The section being relocated.
        section: String,
        /// The offset of the relocated field in that section.
        offset: u64,
        /// The relocation type.
        kind: RelocationKind,
        /// The symbol (or section) the relocation refers to.
        target: String,
        /// The value that did not fit.
        value: i128,
    },
    /// A strong reference found no definition.
    #[error("{object}: undefined symbol {symbol}")]
    UndefinedSymbol {
        /// The object that references it.
        object: String,
        /// The symbol's name.
        symbol: String,
    },
    /// Two strong definitions of one name in one object set.
    #[error("duplicate symbol {symbol}: defined in {first} and in {second}")]
    DuplicateSymbol {
        /// The symbol's name.
        symbol: String,
        /// The object with the first definition.
        first: String,
        /// The object with the second definition.
        second: String,
    },
    /// Mapping or protecting memory failed.
    #[error("{object}: {action} failed")]
    Memory {
        /// The object being linked.
        object: String,
        /// What was attempted.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The `.eh_frame` section does not parse as call-frame information.
    #[error("{object}: invalid .eh_frame: {reason}")]
    EhFrame {
        /// The object's name.
        object: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A link plugin refused the object.
    #[error("{object}: plugin {plugin}: {reason}")]
    Plugin {
        /// The object's name.
        object: String,
        /// The plugin's name.
        plugin: String,
        /// Why it refused.
        reason: String,
    },
    /// A static archive is malformed.
    #[error("{archive}: malformed archive: {reason}")]
    Archive {
        /// The archive's name.
        archive: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `-l NAME` found no library.
    #[error("library -l{name} not found (searched {})", display_paths(.searched))]
    LibraryNotFound {
        /// The name given to `-l`.
        name: String,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// A shared library could not be loaded.
    #[error("cannot load shared library {}", .path.display())]
    LibraryLoad {
        /// The library's path.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },
    /// A GNU ld script could not be understood.
    #[error("{}: unsupported linker script: {reason}", .path.display())]
    LinkerScript {
        /// The script's path.
        path: PathBuf,
        /// What could not be handled.
        reason: String,
    },
    /// Reading a file failed.
    #[error("cannot read {}", .path.display())]
    Io {
        /// The file's path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    let parts: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    parts.join(", ")
}

impl LinkError {
    pub(crate) fn malformed(object: &str, reason: impl Into<String>) -> Self {
        LinkError::Malformed {
            object: object.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(object: &str, what: impl Into<String>) -> Self {
        LinkError::Unsupported {
            object: object.to_owned(),
            what: what.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_relocation_is_named_once_by_number() {
        let e = LinkError::UnsupportedRelocation {
            object: "a.o".into(),
            section: ".text".into(),
            offset: 0x10,
            kind: RelocationKind(250),
        };
        assert_eq!(
            e.to_string(),
            "a.o: unsupported relocation type 250 in section .text at offset 0x10"
        );
        let known = RelocationKind(2); // R_X86_64_PC32
        assert_eq!(known.to_string(), "R_X86_64_PC32");
    }
}

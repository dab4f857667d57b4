//! The core's error type: one structured variant per failure mode, each
//! with the context a user needs to act on it (which symbols, which dylib,
//! what caused it).
//!
//! Errors are `Clone` because one failure is delivered to every query that
//! waits on the failed symbols; causes are shared behind `Arc`.

use std::fmt;
use std::sync::Arc;

use crate::symbol::SymbolName;

/// A symbol qualified by the dylib it lives in, for messages.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct QualifiedSymbol {
    /// The name of the dylib.
    pub dylib: Arc<str>,
    /// The symbol.
    pub name: SymbolName,
}

impl fmt::Display for QualifiedSymbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dylib, self.name)
    }
}

/// Errors of the core.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Lookups of required symbols that no dylib in the search order defines.
    #[error("symbols not found: {}", list(symbols))]
    SymbolsNotFound {
        /// The missing names.
        symbols: Vec<SymbolName>,
    },
    /// Two strong definitions of one name in one dylib.
    #[error("duplicate definition of symbol '{symbol}' in dylib '{dylib}'")]
    DuplicateDefinition {
        /// The dylib.
        dylib: Arc<str>,
        /// The symbol defined twice.
        symbol: SymbolName,
    },
    /// A materialization failed; every query waiting on these symbols (or on
    /// symbols that depend on them) gets this error.
    #[error("failed to materialize symbols {}: {cause}", list(symbols))]
    FailedToMaterialize {
        /// The symbols whose materialization failed.
        symbols: Vec<QualifiedSymbol>,
        /// Why.
        #[source]
        cause: Arc<Error>,
    },
    /// A responsibility was finished without defining symbols it owned.
    #[error("materialization of {unit} did not define {}", list(symbols))]
    MissingSymbolDefinitions {
        /// The unit or layer that misbehaved.
        unit: String,
        /// The symbols it left out.
        symbols: Vec<SymbolName>,
    },
    /// A responsibility defined symbols it did not own.
    #[error(
        "materialization of {unit} defined symbols it does not own: {}",
        list(symbols)
    )]
    UnexpectedSymbolDefinitions {
        /// The unit or layer that misbehaved.
        unit: String,
        /// The extra symbols.
        symbols: Vec<SymbolName>,
    },
    /// A responsibility was used in the wrong order (emitting before
    /// resolving, or after it finished).
    #[error("misuse of materialization responsibility: {message}")]
    ResponsibilityMisuse {
        /// What was wrong.
        message: String,
    },
    /// A responsibility was dropped before it emitted or failed.
    #[error(
        "materialization of {} was abandoned before it finished",
        list(symbols)
    )]
    MaterializationAbandoned {
        /// The symbols it still owned.
        symbols: Vec<QualifiedSymbol>,
    },
    /// A dylib with this name exists already.
    #[error("a JIT dylib named '{name}' already exists")]
    DuplicateJitDylib {
        /// The name.
        name: String,
    },
    /// The dylib was removed from its session.
    #[error("JIT dylib '{name}' was removed")]
    JitDylibRemoved {
        /// The name.
        name: String,
    },
    /// A resource tracker was removed (or its dylib was), so work for it
    /// cannot be recorded.
    #[error("resource tracker of dylib '{dylib}' was removed")]
    ResourceTrackerDefunct {
        /// The dylib of the tracker.
        dylib: Arc<str>,
    },
    /// Symbols were removed (their resource tracker was) while a lookup
    /// waited on them.
    #[error("symbols were removed while being looked up: {}", list(symbols))]
    SymbolsRemoved {
        /// The removed symbols.
        symbols: Vec<QualifiedSymbol>,
    },
    /// Trackers of different dylibs cannot be merged.
    #[error("cannot transfer resources between trackers of dylibs '{from}' and '{to}'")]
    TrackerDylibMismatch {
        /// The source tracker's dylib.
        from: Arc<str>,
        /// The destination tracker's dylib.
        to: Arc<str>,
    },
    /// The session has ended; nothing more can be done with it.
    #[error("the execution session has ended")]
    SessionEnded,
    /// A shared library could not be loaded or searched.
    #[error("dynamic library '{path}': {message}")]
    DynamicLibrary {
        /// The path as given.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The JIT linker rejected an object (malformed, unsupported
    /// relocation, undefined symbol...); the linker's error says which
    /// object, section and symbol.
    #[error(transparent)]
    Link(Arc<crate::link::LinkError>),
    /// A lazy call's compile failed (with a lazy-compile failure handler
    /// set, this goes to the session's error reporter before the call
    /// continues in the handler).
    #[error("lazy compile of '{symbol}' failed: {cause}")]
    LazyCompileFailed {
        /// The symbol the call's trampoline stands for.
        symbol: SymbolName,
        /// Why its lookup failed.
        #[source]
        cause: Arc<Error>,
    },
    /// A layer's own error (a compiler's), kept as the value it was so a
    /// caller can downcast it (`std::error::Error::source` or
    /// [`Error::layer_error`]).
    #[error(transparent)]
    Layer(Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// JIT'd code trapped (a fault or a trap instruction, caught by
    /// [`catch_traps`](crate::catch_traps)); the process is fine.
    #[error(transparent)]
    Trap(#[from] crate::trap::Trap),
    /// Any other failure, from a layer, generator or user unit.
    #[error("{message}")]
    Other {
        /// The message.
        message: String,
    },
}

impl Error {
    /// An [`Error::Layer`] keeping `e` as it is.
    pub fn layer(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Layer(Arc::new(e))
    }

    /// The layer error of type `E` this error is or was caused by (through
    /// [`Error::FailedToMaterialize`] causes), if any.
    pub fn layer_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Layer(e) => e.downcast_ref::<E>(),
            Error::FailedToMaterialize { cause, .. } => cause.layer_error(),
            _ => None,
        }
    }

    /// An [`Error::Other`] with `message`.
    pub fn other(message: impl Into<String>) -> Self {
        Error::Other {
            message: message.into(),
        }
    }
}

/// Joins displayable items as `{a, b, c}`.
fn list<T: fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(|x| x.to_string()).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbol::SymbolStringPool;

    #[test]
    fn messages_carry_context() {
        let pool = SymbolStringPool::new();
        let b = pool.intern("b");
        let err = Error::FailedToMaterialize {
            symbols: vec![QualifiedSymbol {
                dylib: "main".into(),
                name: b.clone(),
            }],
            cause: Arc::new(Error::other("compile error in b")),
        };
        assert_eq!(
            err.to_string(),
            "failed to materialize symbols {main:b}: compile error in b"
        );
        let source = std::error::Error::source(&err).map(|e| e.to_string());
        assert_eq!(source.as_deref(), Some("compile error in b"));
        let dup = Error::DuplicateDefinition {
            dylib: "A".into(),
            symbol: pool.intern("foo"),
        };
        assert_eq!(
            dup.to_string(),
            "duplicate definition of symbol 'foo' in dylib 'A'"
        );
    }
}

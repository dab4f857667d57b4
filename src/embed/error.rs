//! The facade's error type: one variant per thing a caller acts on
//! differently, converted from the crates' own errors without flattening
//! them to strings.

use std::fmt;
use std::sync::Arc;

use orc_core::link::LinkError;
use orc_core::Trap;

/// Which compiler an [`Error::Compile`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compiler {
    /// Cranelift (tier 0); the source is an [`orc_cranelift::CompileError`].
    Cranelift,
    /// LLVM (tier 1); the source is an [`orc_llvm::CompileError`].
    Llvm,
    /// The translation of CLIF to LLVM IR; the source is an
    /// [`orc_llvm::translate::TranslateError`].
    Translation,
}

/// A typed handle's or host function's signature does not match the one
/// the JIT knows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("signature mismatch for '{function}' ({context}): expected {expected}, found {found}")]
pub struct SignatureMismatch {
    /// The function.
    pub function: String,
    /// The signature the caller (handle or import) wants.
    pub expected: String,
    /// The signature the function was declared with.
    pub found: String,
    /// Where: "typed handle", "imported by 'f'"...
    pub context: String,
}

/// Errors of the embedding API.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// LLVM stopped with a fatal error while compiling a unit; only that
    /// unit failed (see `orc_llvm`'s `fatal.rs`).
    #[error("{source}")]
    LlvmFatal {
        /// The function being compiled, when known.
        function: Option<String>,
        /// The [`orc_llvm::CompileError::Fatal`].
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A compiler rejected a function.
    #[error("compile error{} ({compiler:?}): {source}", in_function(.function))]
    Compile {
        /// Which compiler.
        compiler: Compiler,
        /// The function (symbol) whose compile failed, when known.
        function: Option<String>,
        /// The compiler's error (downcast with [`Error::compile_error`]).
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The JIT linker rejected an object.
    #[error(transparent)]
    Link(Arc<LinkError>),
    /// Symbols no dylib defines (looked up, or referenced by code being
    /// linked).
    #[error("symbols not found: {}", .names.join(", "))]
    SymbolNotFound {
        /// Their names.
        names: Vec<String>,
    },
    /// A signature does not match.
    #[error(transparent)]
    SignatureMismatch(#[from] SignatureMismatch),
    /// [`Jit::function`](crate::Jit::function) on a symbol whose signature
    /// the JIT does not know (an object's or LLVM IR's function): use
    /// `function_unchecked`.
    #[error("the signature of '{function}' is not known to the JIT (use function_unchecked)")]
    UnknownSignature {
        /// The function.
        function: String,
    },
    /// JIT'd code trapped; the process is fine.
    #[error(transparent)]
    Trap(#[from] Trap),
    /// The function's module was removed.
    #[error("the module of '{function}' was removed")]
    ModuleRemoved {
        /// The function.
        function: String,
    },
    /// The executor process failed or ended (out-of-process execution).
    #[error("executor: {0}")]
    Executor(String),
    /// The JIT was dropped; its handles cannot be called any more.
    #[error("the JIT was dropped")]
    JitDropped,
    /// Any other error of the core.
    #[error(transparent)]
    Core(orc_core::Error),
}

fn in_function(f: &Option<String>) -> String {
    f.as_ref().map(|f| format!(" in '{f}'")).unwrap_or_default()
}

impl Error {
    /// The trap, if this is one.
    pub fn trap(&self) -> Option<&Trap> {
        match self {
            Error::Trap(t) => Some(t),
            _ => None,
        }
    }

    /// The compiler error of type `E` behind an [`Error::Compile`] or
    /// [`Error::LlvmFatal`] (`orc_cranelift::CompileError`,
    /// `orc_llvm::CompileError`, `orc_llvm::translate::TranslateError`).
    pub fn compile_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Compile { source, .. } | Error::LlvmFatal { source, .. } => {
                source.downcast_ref::<E>()
            }
            _ => None,
        }
    }

    fn from_core(e: orc_core::Error, function: Option<String>) -> Error {
        use orc_core::Error as E;
        match e {
            E::FailedToMaterialize { symbols, cause } => {
                let function = function.or_else(|| symbols.first().map(|s| s.name.to_string()));
                Error::from_core((*cause).clone(), function)
            }
            E::Layer(source) => Error::from_layer(source, function),
            E::Link(l) => Error::from_link(l),
            E::Trap(t) => Error::Trap(t),
            E::SymbolsNotFound { symbols } => Error::SymbolNotFound {
                names: symbols.iter().map(|s| s.to_string()).collect(),
            },
            other => Error::Core(other),
        }
    }

    /// A link error, or the symbol it did not find.
    fn from_link(l: Arc<LinkError>) -> Error {
        match &*l {
            LinkError::UndefinedSymbol { symbol, .. } => Error::SymbolNotFound {
                names: vec![symbol.clone()],
            },
            _ => Error::Link(l),
        }
    }

    fn from_layer(
        source: Arc<dyn std::error::Error + Send + Sync>,
        function: Option<String>,
    ) -> Error {
        if let Some(e) = source.downcast_ref::<orc_llvm::CompileError>() {
            if let orc_llvm::CompileError::Fatal { function: f, .. } = e {
                return Error::LlvmFatal {
                    function: f.clone().or(function),
                    source,
                };
            }
            return Error::Compile {
                compiler: Compiler::Llvm,
                function,
                source,
            };
        }
        if source.is::<orc_cranelift::CompileError>() {
            return Error::Compile {
                compiler: Compiler::Cranelift,
                function,
                source,
            };
        }
        if source.is::<orc_llvm::translate::TranslateError>() {
            return Error::Compile {
                compiler: Compiler::Translation,
                function,
                source,
            };
        }
        if let Some(m) = source.downcast_ref::<SignatureMismatch>() {
            return Error::SignatureMismatch(m.clone());
        }
        Error::Core(orc_core::Error::Layer(source))
    }
}

impl From<orc_core::Error> for Error {
    fn from(e: orc_core::Error) -> Error {
        Error::from_core(e, None)
    }
}

impl From<orc_cranelift::CompileError> for Error {
    fn from(e: orc_cranelift::CompileError) -> Error {
        Error::from_layer(Arc::new(e), None)
    }
}

impl From<orc_llvm::CompileError> for Error {
    fn from(e: orc_llvm::CompileError) -> Error {
        Error::from_layer(Arc::new(e), None)
    }
}

impl From<orc_llvm::translate::TranslateError> for Error {
    fn from(e: orc_llvm::translate::TranslateError) -> Error {
        Error::from_layer(Arc::new(e), None)
    }
}

impl From<LinkError> for Error {
    fn from(e: LinkError) -> Error {
        Error::from_link(Arc::new(e))
    }
}

impl fmt::Display for Compiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compiler::Cranelift => "cranelift",
            Compiler::Llvm => "llvm",
            Compiler::Translation => "translation to llvm",
        })
    }
}

//! The frontend's error type: what can be wrong with a CLIF file before
//! anything runs, always with the file and line.

/// Why a CLIF file cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClifError {
    /// `cranelift-reader` rejected the text.
    #[error("{file}:{line}: parse error: {message}")]
    Parse {
        /// The file, as given.
        file: String,
        /// The line (1-based; 0 when the reader gave none).
        line: usize,
        /// The reader's message.
        message: String,
    },
    /// A `; run:` or `; print:` comment does not parse against its
    /// function's signature.
    #[error("{file}:{line}: bad run directive: {message}")]
    Directive {
        /// The file, as given.
        file: String,
        /// The directive's line.
        line: usize,
        /// The reader's message.
        message: String,
    },
    /// Two functions of the file define the same symbol.
    #[error("{file}:{line}: function {symbol} is defined twice")]
    DuplicateSymbol {
        /// The file, as given.
        file: String,
        /// The second definition's line.
        line: usize,
        /// The symbol.
        symbol: String,
    },
    /// A function refers to a name orc cannot map to a symbol.
    #[error("{file}:{line}: function {function} refers to {name}, which has no symbol")]
    UnsupportedName {
        /// The file, as given.
        file: String,
        /// The function's line.
        line: usize,
        /// The function's symbol.
        function: String,
        /// The name as CLIF prints it.
        name: String,
    },
    /// The file sets a Cranelift flag that changes semantics and that orc
    /// does not honour.
    #[error("{file}: set {setting}: orc does not support this setting")]
    UnsupportedSetting {
        /// The file, as given.
        file: String,
        /// The setting as `name=value`.
        setting: String,
    },
}

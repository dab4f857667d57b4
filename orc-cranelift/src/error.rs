//! Errors of the tier-0 layer.

/// Why a Cranelift compile failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The host is not supported by Cranelift, or a setting is invalid.
    #[error("cranelift cannot target this host: {message}")]
    Isa {
        /// What Cranelift said.
        message: String,
    },
    /// The frontend failed to build the module.
    #[error("building module '{module}' failed: {message}")]
    Frontend {
        /// The module.
        module: String,
        /// The frontend's message.
        message: String,
    },
    /// Cranelift rejected a function (verifier error, unsupported construct,
    /// declaration clash).
    #[error("compiling module '{module}' failed: {message}")]
    Codegen {
        /// The module.
        module: String,
        /// Cranelift's message, including the function when it names one.
        message: String,
    },
    /// Writing the relocatable object failed.
    #[error("writing the object for module '{module}' failed: {message}")]
    Object {
        /// The module.
        module: String,
        /// What went wrong.
        message: String,
    },
}

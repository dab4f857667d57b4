//! Errors of the tier-1 compiler: one variant per stage that can fail, each
//! naming the module and carrying LLVM's own message.

use std::fmt;

/// Where in a compile LLVM stopped with a fatal error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileStage {
    /// The IR pass pipeline.
    Optimize,
    /// Code generation (instruction selection to object emission).
    Codegen,
}

impl fmt::Display for CompileStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompileStage::Optimize => "optimizing",
            CompileStage::Codegen => "generating code for",
        })
    }
}

/// Why an LLVM compile failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// LLVM cannot target this host, or a setting is invalid.
    #[error("llvm cannot target this host: {message}")]
    Target {
        /// What LLVM said.
        message: String,
    },
    /// The frontend failed to build the module (including IR that does not
    /// parse).
    #[error("building module '{module}' failed: {message}")]
    Frontend {
        /// The module.
        module: String,
        /// The frontend's message.
        message: String,
    },
    /// The module is for another architecture than the host.
    #[error("module '{module}' targets '{triple}', but this host is '{host}'")]
    ForeignTriple {
        /// The module.
        module: String,
        /// The module's target triple.
        triple: String,
        /// The host's triple.
        host: String,
    },
    /// The LLVM verifier rejected the module (nothing was optimized or
    /// compiled).
    #[error("module '{module}' fails verification: {message}")]
    Verify {
        /// The module.
        module: String,
        /// The verifier's report.
        message: String,
    },
    /// The pass pipeline could not run (for example a malformed pipeline).
    #[error("optimizing module '{module}' failed: {message}")]
    Passes {
        /// The module.
        module: String,
        /// What the pass builder said.
        message: String,
    },
    /// Code generation failed or LLVM reported error diagnostics (for
    /// example invalid inline assembly).
    #[error("compiling module '{module}' failed: {message}")]
    Codegen {
        /// The module.
        module: String,
        /// LLVM's messages, one per line.
        message: String,
    },
    /// LLVM stopped with a fatal error (`report_fatal_error`, e.g. "Cannot
    /// select" in instruction selection, or a verifier pass of the
    /// pipeline rejecting the module). Only this unit failed; the memory of
    /// its compile is leaked (see `fatal.rs`).
    #[error("llvm fatal error while {stage} {}: {reason}", describe_unit(.module, .function.as_deref()))]
    Fatal {
        /// The module.
        module: String,
        /// The module's function, when it defines exactly one.
        function: Option<String>,
        /// What LLVM was doing.
        stage: CompileStage,
        /// LLVM's reason.
        reason: String,
    },
}

fn describe_unit(module: &str, function: Option<&str>) -> String {
    match function {
        Some(function) => format!("function '{function}' (module '{module}')"),
        None => format!("module '{module}'"),
    }
}

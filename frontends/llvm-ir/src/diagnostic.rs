//! Errors of the IR frontend, and LLVM's messages turned into located
//! diagnostics (`FILE:LINE:COL: error: MESSAGE`).
//!
//! The IR parser already reports `NAME:LINE:COL: error: ...` followed by the
//! source line and a caret; that text is kept as is. The verifier reports no
//! position, only the offending instructions: for IR text, the first of
//! those found verbatim in the source gives the line.

use std::fmt;
use std::sync::Arc;

/// A problem in an IR file, located where LLVM (or the source search for
/// verifier errors) could locate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrDiagnostic {
    /// The file (as given to [`crate::IrProgram::load`]).
    pub file: String,
    /// The 1-based line, when known.
    pub line: Option<u32>,
    /// The 1-based column, when known.
    pub col: Option<u32>,
    /// LLVM's message (for parse errors, followed by the source line and a
    /// caret, as LLVM prints them).
    pub message: String,
}

impl fmt::Display for IrDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": error: {}", self.message)
    }
}

impl IrDiagnostic {
    /// A diagnostic from the IR parser's message for buffer `file`.
    pub(crate) fn from_parse_error(file: &str, text: &str) -> Self {
        let text = text.trim_end();
        // `FILE:LINE:COL: error: MESSAGE...` or `FILE: error: MESSAGE`.
        if let Some(rest) = text.strip_prefix(file).and_then(|r| r.strip_prefix(':')) {
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let col = parts.next().and_then(|c| c.trim().parse().ok());
            if let (Some(line), Some(col), Some(rest)) = (line, col, parts.next()) {
                return IrDiagnostic {
                    file: file.to_owned(),
                    line: Some(line),
                    col: Some(col),
                    message: strip_error(rest).to_owned(),
                };
            }
            return IrDiagnostic {
                file: file.to_owned(),
                line: None,
                col: None,
                message: strip_error(rest).to_owned(),
            };
        }
        IrDiagnostic {
            file: file.to_owned(),
            line: None,
            col: None,
            message: strip_error(text).to_owned(),
        }
    }

    /// A diagnostic from the verifier's report, located by finding the
    /// first instruction it prints in `source` (IR text only).
    pub(crate) fn from_verifier_error(file: &str, text: &str, source: Option<&str>) -> Self {
        let message = text.trim_end().to_owned();
        let position = source.and_then(|src| locate(src, &message));
        IrDiagnostic {
            file: file.to_owned(),
            line: position.map(|(l, _)| l),
            col: position.map(|(_, c)| c),
            message,
        }
    }
}

fn strip_error(s: &str) -> &str {
    let s = s.trim_start();
    s.strip_prefix("error:").map(str::trim_start).unwrap_or(s)
}

/// The (line, column) of the first IR fragment of `report` (the verifier
/// prints values indented) found in `source`: verbatim, or else by the
/// value it defines (`%name = ...`) when exactly one source line defines
/// that name (the printer normalizes constants, so a verbatim match can
/// fail; names like `%0` repeat across functions, so they must be unique).
fn locate(source: &str, report: &str) -> Option<(u32, u32)> {
    let fragments: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with(' '))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let position = |n: usize, line: &str, byte: usize| {
        let col = line[..byte].chars().count() + 1;
        (
            u32::try_from(n + 1).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
    };
    for fragment in &fragments {
        for (n, line) in source.lines().enumerate() {
            if let Some(byte) = line.find(fragment) {
                return Some(position(n, line, byte));
            }
        }
    }
    for fragment in &fragments {
        let Some((def, _)) = fragment.split_once(" = ") else {
            continue;
        };
        if !def.starts_with('%') {
            continue;
        }
        let prefix = format!("{def} =");
        let mut hits = source
            .lines()
            .enumerate()
            .filter(|(_, line)| line.trim_start().starts_with(&prefix));
        if let (Some((n, line)), None) = (hits.next(), hits.next()) {
            let byte = line.len() - line.trim_start().len();
            return Some(position(n, line, byte));
        }
    }
    None
}

/// Errors of the IR frontend.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IrError {
    /// The file cannot be read.
    #[error("cannot read '{path}': {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The IR does not parse or does not verify.
    #[error("{0}")]
    Invalid(IrDiagnostic),
    /// The module uses something this loading mode cannot handle.
    #[error("{file}: error: {message}")]
    Unsupported {
        /// The file.
        file: String,
        /// What is unsupported.
        message: String,
    },
    /// Compiling part of the module failed (eager mode, or the data unit).
    #[error(transparent)]
    Compile(#[from] orc_llvm::CompileError),
    /// The JIT refused a definition (for example a symbol defined twice).
    #[error(transparent)]
    Jit(#[from] orc_core::Error),
}

//! Source positions and diagnostics.
//!
//! Every error the frontend reports about source text (lexical, syntactic or
//! semantic) is a [`Diagnostic`]: a 1-based line and column at the start of
//! the offending token plus a lowercase message without a trailing period.
//! [`Diagnostic::render`] gives the `FILE:LINE:COL: error: MESSAGE` form that
//! `orc run` and `orc repl` print. Columns count characters, not bytes, and a
//! tab counts as one column.

use std::fmt;

/// A position in the source text: 1-based line and column of a token's first
/// character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// The 1-based line number.
    pub line: u32,
    /// The 1-based column number, counted in characters.
    pub col: u32,
}

impl Span {
    /// Makes a span from a 1-based line and column.
    pub fn new(line: u32, col: u32) -> Self {
        Span { line, col }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// An error in Kaleidoscope source text, located at the start of the
/// offending token.
///
/// The `Display` form is `LINE:COL: error: MESSAGE`; use [`Diagnostic::render`]
/// to prefix the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: error: {message}")]
pub struct Diagnostic {
    /// The 1-based line of the offending token.
    pub line: u32,
    /// The 1-based column of the offending token.
    pub col: u32,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl Diagnostic {
    /// Makes a diagnostic at `span`.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            line: span.line,
            col: span.col,
            message: message.into(),
        }
    }

    /// The position the diagnostic points at.
    pub fn span(&self) -> Span {
        Span::new(self.line, self.col)
    }

    /// Formats the diagnostic as `FILE:LINE:COL: error: MESSAGE`.
    pub fn render(&self, file: &str) -> String {
        render(file, self)
    }
}

/// Formats `diag` as `FILE:LINE:COL: error: MESSAGE`, the form `orc run`
/// prints on stderr.
pub fn render(file: &str, diag: &Diagnostic) -> String {
    format!("{file}:{diag}")
}

/// Formats every diagnostic with [`render`], one per line, each line ending
/// in a newline.
pub fn render_all(file: &str, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diag in diags {
        out.push_str(&render(file, diag));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_file_line_col_and_message() {
        let diag = Diagnostic::new(Span::new(3, 8), "unknown function 'g'");
        assert_eq!(
            diag.render("a.kal"),
            "a.kal:3:8: error: unknown function 'g'"
        );
        assert_eq!(diag.to_string(), "3:8: error: unknown function 'g'");
        assert_eq!(diag.span(), Span::new(3, 8));
    }

    #[test]
    fn render_all_keeps_order() {
        let diags = [
            Diagnostic::new(Span::new(1, 2), "first"),
            Diagnostic::new(Span::new(4, 1), "second"),
        ];
        assert_eq!(
            render_all("f", &diags),
            "f:1:2: error: first\nf:4:1: error: second\n"
        );
    }

    #[test]
    fn spans_order_by_line_then_column() {
        assert!(Span::new(1, 9) < Span::new(2, 1));
        assert!(Span::new(2, 1) < Span::new(2, 3));
        assert_eq!(Span::new(7, 4).to_string(), "7:4");
    }
}

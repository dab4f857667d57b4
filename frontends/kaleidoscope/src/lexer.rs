//! The lexer: Kaleidoscope source text to tokens with positions.
//!
//! Tokens are produced on demand, so a lexical error late in a file is only
//! reported if parsing gets that far. Whitespace (including `\r`) and `#`
//! comments up to the end of the line are skipped. Identifiers are
//! `[a-zA-Z][a-zA-Z0-9]*`; the ten keywords are reserved. A number is
//! `[0-9]+(\.[0-9]*)?` or `\.[0-9]+` and is read as an `f64`. Any other
//! printable ASCII character is a [`TokenKind::Char`] token (an operator or
//! punctuation); anything else outside a comment is an error. The lexer
//! never fails on valid UTF-8 with a panic and never looks back.

use crate::diag::{Diagnostic, Span};
use std::fmt;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// The end of the input.
    Eof,
    /// `def`
    Def,
    /// `extern`
    Extern,
    /// `if`
    If,
    /// `then`
    Then,
    /// `else`
    Else,
    /// `for`
    For,
    /// `in`
    In,
    /// `binary`
    Binary,
    /// `unary`
    Unary,
    /// `var`
    Var,
    /// An identifier that is not a keyword.
    Ident(String),
    /// A number literal.
    Number(f64),
    /// Any other printable ASCII character: an operator or punctuation.
    Char(char),
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Eof => f.write_str("end of input"),
            TokenKind::Def => f.write_str("'def'"),
            TokenKind::Extern => f.write_str("'extern'"),
            TokenKind::If => f.write_str("'if'"),
            TokenKind::Then => f.write_str("'then'"),
            TokenKind::Else => f.write_str("'else'"),
            TokenKind::For => f.write_str("'for'"),
            TokenKind::In => f.write_str("'in'"),
            TokenKind::Binary => f.write_str("'binary'"),
            TokenKind::Unary => f.write_str("'unary'"),
            TokenKind::Var => f.write_str("'var'"),
            TokenKind::Ident(name) => write!(f, "identifier '{name}'"),
            TokenKind::Number(value) => write!(f, "number {value}"),
            TokenKind::Char(c) => write!(f, "'{c}'"),
        }
    }
}

/// A token and the position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Where it starts.
    pub span: Span,
    /// The byte offset of its first character in the lexed text.
    pub offset: usize,
}

/// An on-demand tokenizer over one source text.
#[derive(Debug, Clone)]
pub struct Lexer<'src> {
    src: &'src str,
    pos: usize,
    line: u32,
    col: u32,
}

impl<'src> Lexer<'src> {
    /// Starts lexing `src` at line 1, column 1.
    pub fn new(src: &'src str) -> Self {
        Self::with_start(src, Span::new(1, 1))
    }

    /// Starts lexing `src` as if it began at `start` (used by the REPL, whose
    /// input arrives in chunks but whose positions count from the first one).
    pub fn with_start(src: &'src str, start: Span) -> Self {
        Lexer {
            src,
            pos: 0,
            line: start.line,
            col: start.col,
        }
    }

    /// The position of the next character to be read.
    pub fn position(&self) -> Span {
        Span::new(self.line, self.col)
    }

    /// The byte offset of the next character to be read.
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn skip_trivia(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while let Some(c) = self.peek() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                    self.bump();
                }
            } else if c.is_ascii_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// Reads the next token; at the end of the input it returns
    /// [`TokenKind::Eof`] again and again.
    pub fn next_token(&mut self) -> Result<Token, Diagnostic> {
        self.skip_trivia();
        let span = self.position();
        let offset = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Token {
                kind: TokenKind::Eof,
                span,
                offset,
            });
        };
        let kind = if c.is_ascii_alphabetic() {
            self.lex_word()
        } else if c.is_ascii_digit() || (c == '.' && self.digit_after_dot()) {
            self.lex_number(span)?
        } else if c.is_ascii_graphic() {
            self.bump();
            TokenKind::Char(c)
        } else {
            return Err(Diagnostic::new(
                span,
                format!("unexpected character {}", c.escape_default()),
            ));
        };
        Ok(Token { kind, span, offset })
    }

    fn digit_after_dot(&self) -> bool {
        self.src
            .as_bytes()
            .get(self.pos + 1)
            .is_some_and(u8::is_ascii_digit)
    }

    fn lex_word(&mut self) -> TokenKind {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.bump();
        }
        match &self.src[start..self.pos] {
            "def" => TokenKind::Def,
            "extern" => TokenKind::Extern,
            "if" => TokenKind::If,
            "then" => TokenKind::Then,
            "else" => TokenKind::Else,
            "for" => TokenKind::For,
            "in" => TokenKind::In,
            "binary" => TokenKind::Binary,
            "unary" => TokenKind::Unary,
            "var" => TokenKind::Var,
            word => TokenKind::Ident(word.to_owned()),
        }
    }

    fn lex_number(&mut self, span: Span) -> Result<TokenKind, Diagnostic> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') {
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        let text = &self.src[start..self.pos];
        text.parse::<f64>()
            .map(TokenKind::Number)
            .map_err(|_| Diagnostic::new(span, format!("invalid number '{text}'")))
    }
}

/// Lexes all of `src` into tokens, the last one being [`TokenKind::Eof`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, Diagnostic> {
    let mut lexer = Lexer::new(src);
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let done = token.kind == TokenKind::Eof;
        tokens.push(token);
        if done {
            return Ok(tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        tokenize(src)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn keywords_identifiers_and_chars() {
        use TokenKind::*;
        assert_eq!(
            kinds("def extern if then else for in binary unary var foo x1 ( ) ; :"),
            vec![
                Def,
                Extern,
                If,
                Then,
                Else,
                For,
                In,
                Binary,
                Unary,
                Var,
                Ident("foo".into()),
                Ident("x1".into()),
                Char('('),
                Char(')'),
                Char(';'),
                Char(':'),
                Eof
            ]
        );
    }

    #[test]
    fn numbers() {
        use TokenKind::*;
        assert_eq!(
            kinds("1 2.5 .25 7. 0.1"),
            vec![
                Number(1.0),
                Number(2.5),
                Number(0.25),
                Number(7.0),
                Number(0.1),
                Eof
            ]
        );
        // A second dot starts a new token, as in `1.2.3` = `1.2` `.3`.
        assert_eq!(kinds("1.2.3"), vec![Number(1.2), Number(0.3), Eof]);
        assert_eq!(kinds("."), vec![Char('.'), Eof]);
    }

    #[test]
    fn underscore_is_not_part_of_an_identifier() {
        use TokenKind::*;
        assert_eq!(
            kinds("a_b"),
            vec![Ident("a".into()), Char('_'), Ident("b".into()), Eof]
        );
    }

    #[test]
    fn comments_and_positions() {
        let tokens = tokenize("# comment é\n  foo # more\r\n\tbar").unwrap();
        assert_eq!(tokens[0].kind, TokenKind::Ident("foo".into()));
        assert_eq!(tokens[0].span, Span::new(2, 3));
        assert_eq!(tokens[1].kind, TokenKind::Ident("bar".into()));
        assert_eq!(tokens[1].span, Span::new(3, 2));
        assert_eq!(tokens[2].kind, TokenKind::Eof);
        assert_eq!(tokens[2].span, Span::new(3, 5));
    }

    #[test]
    fn unexpected_character_is_an_error_at_its_position() {
        let err = tokenize("x +\n  é").unwrap_err();
        assert_eq!((err.line, err.col), (2, 3));
        assert!(err.message.contains("unexpected character"));
        let err = tokenize("\u{0}").unwrap_err();
        assert_eq!((err.line, err.col), (1, 1));
    }

    #[test]
    fn start_offset_is_respected() {
        let mut lexer = Lexer::with_start("\n x", Span::new(5, 7));
        assert_eq!(lexer.next_token().unwrap().span, Span::new(6, 2));
        assert_eq!(lexer.offset(), 3);
    }
}

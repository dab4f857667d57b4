//! The scanner: source text to tokens, on demand (clox's).

/// Token kinds.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    Comma,
    Dot,
    Minus,
    Plus,
    Semicolon,
    Slash,
    Star,
    Bang,
    BangEqual,
    Equal,
    EqualEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Identifier,
    String,
    Number,
    And,
    Class,
    Else,
    False,
    For,
    Fun,
    If,
    Nil,
    Or,
    Print,
    Return,
    Super,
    This,
    True,
    Var,
    While,
    Error,
    Eof,
}

/// A token: its kind, text (the message for `Error`) and line.
#[derive(Clone, Copy, Debug)]
pub struct Token<'src> {
    /// The kind.
    pub kind: TokenKind,
    /// The lexeme, or the error message of an `Error` token.
    pub lexeme: &'src str,
    /// The 1-based source line.
    pub line: u32,
}

/// Scans tokens from source text.
pub struct Scanner<'src> {
    src: &'src str,
    start: usize,
    current: usize,
    line: u32,
}

impl<'src> Scanner<'src> {
    /// A scanner at the start of `src`.
    pub fn new(src: &'src str) -> Self {
        Scanner {
            src,
            start: 0,
            current: 0,
            line: 1,
        }
    }

    fn peek(&self) -> u8 {
        self.src.as_bytes().get(self.current).copied().unwrap_or(0)
    }

    fn peek_next(&self) -> u8 {
        self.src
            .as_bytes()
            .get(self.current + 1)
            .copied()
            .unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.current >= self.src.len()
    }

    fn advance(&mut self) -> u8 {
        let c = self.peek();
        self.current += 1;
        c
    }

    fn matches(&mut self, c: u8) -> bool {
        if !self.at_end() && self.peek() == c {
            self.current += 1;
            true
        } else {
            false
        }
    }

    fn make(&self, kind: TokenKind) -> Token<'src> {
        Token {
            kind,
            lexeme: &self.src[self.start..self.current],
            line: self.line,
        }
    }

    fn error(&self, message: &'static str) -> Token<'src> {
        Token {
            kind: TokenKind::Error,
            lexeme: message,
            line: self.line,
        }
    }

    fn skip_whitespace(&mut self) {
        loop {
            match self.peek() {
                b' ' | b'\r' | b'\t' => {
                    self.current += 1;
                }
                b'\n' if !self.at_end() => {
                    self.line += 1;
                    self.current += 1;
                }
                b'/' if self.peek_next() == b'/' => {
                    while self.peek() != b'\n' && !self.at_end() {
                        self.current += 1;
                    }
                }
                _ => return,
            }
        }
    }

    /// The next token (`Eof` forever at the end).
    pub fn scan_token(&mut self) -> Token<'src> {
        self.skip_whitespace();
        self.start = self.current;
        if self.at_end() {
            return self.make(TokenKind::Eof);
        }
        let c = self.advance();
        if c.is_ascii_alphabetic() || c == b'_' {
            return self.identifier();
        }
        if c.is_ascii_digit() {
            return self.number();
        }
        use TokenKind as T;
        match c {
            b'(' => self.make(T::LeftParen),
            b')' => self.make(T::RightParen),
            b'{' => self.make(T::LeftBrace),
            b'}' => self.make(T::RightBrace),
            b';' => self.make(T::Semicolon),
            b',' => self.make(T::Comma),
            b'.' => self.make(T::Dot),
            b'-' => self.make(T::Minus),
            b'+' => self.make(T::Plus),
            b'/' => self.make(T::Slash),
            b'*' => self.make(T::Star),
            b'!' => {
                let k = if self.matches(b'=') {
                    T::BangEqual
                } else {
                    T::Bang
                };
                self.make(k)
            }
            b'=' => {
                let k = if self.matches(b'=') {
                    T::EqualEqual
                } else {
                    T::Equal
                };
                self.make(k)
            }
            b'<' => {
                let k = if self.matches(b'=') {
                    T::LessEqual
                } else {
                    T::Less
                };
                self.make(k)
            }
            b'>' => {
                let k = if self.matches(b'=') {
                    T::GreaterEqual
                } else {
                    T::Greater
                };
                self.make(k)
            }
            b'"' => self.string(),
            _ => {
                // Skip the rest of a multi-byte character so lexemes stay
                // on char boundaries.
                while !self.src.is_char_boundary(self.current) {
                    self.current += 1;
                }
                self.error("Unexpected character.")
            }
        }
    }

    fn string(&mut self) -> Token<'src> {
        while self.peek() != b'"' && !self.at_end() {
            if self.peek() == b'\n' {
                self.line += 1;
            }
            self.current += 1;
        }
        if self.at_end() {
            return self.error("Unterminated string.");
        }
        self.current += 1;
        self.make(TokenKind::String)
    }

    fn number(&mut self) -> Token<'src> {
        while self.peek().is_ascii_digit() {
            self.current += 1;
        }
        if self.peek() == b'.' && self.peek_next().is_ascii_digit() {
            self.current += 1;
            while self.peek().is_ascii_digit() {
                self.current += 1;
            }
        }
        self.make(TokenKind::Number)
    }

    fn identifier(&mut self) -> Token<'src> {
        while self.peek().is_ascii_alphanumeric() || self.peek() == b'_' {
            self.current += 1;
        }
        use TokenKind as T;
        let kind = match &self.src[self.start..self.current] {
            "and" => T::And,
            "class" => T::Class,
            "else" => T::Else,
            "false" => T::False,
            "for" => T::For,
            "fun" => T::Fun,
            "if" => T::If,
            "nil" => T::Nil,
            "or" => T::Or,
            "print" => T::Print,
            "return" => T::Return,
            "super" => T::Super,
            "this" => T::This,
            "true" => T::True,
            "var" => T::Var,
            "while" => T::While,
            _ => T::Identifier,
        };
        self.make(kind)
    }
}

//! The parser: tokens to the AST, with the tutorial's operator-precedence
//! climbing and user-defined operators.
//!
//! The parser owns no operator knowledge of its own: it consults an
//! [`OperatorTable`] that starts with the built-ins (`=` 2, `<` 10, `+` `-`
//! 20, `*` 40) and grows as `binary`/`unary` prototypes are parsed. As in the
//! tutorial, an operator is usable only after the item that defines it (a
//! character in operand position is a unary operator only if one is defined
//! for it; otherwise it is a syntax error at that character). Whole files go
//! through [`parse_program`], which installs operators after each item; the
//! REPL installs them only after an item passes the semantic check.
//!
//! Invariant: every expression the parser returns has a nesting depth of at
//! most [`MAX_NESTING`], and the parser's own recursion is bounded the same
//! way, so no input can overflow the stack here or in later passes.

use std::sync::Arc;

use crate::ast::{
    anon_expr_name, binary_symbol, unary_symbol, BinaryOp, Expr, ExprKind, Function, Ident, Item,
    Program, Prototype, PrototypeKind, VarBinding,
};
use crate::diag::{Diagnostic, Span};
use crate::lexer::{Lexer, Token, TokenKind};

/// The deepest expression nesting the parser accepts; deeper input is an
/// error rather than a stack overflow. Nesting is what a walk over the tree
/// must recurse into: parentheses, call arguments, `if`/`for`/`var` parts,
/// unary operands, and the right operand of a binary operator. A chain of
/// binary operators of one precedence (`1 + 1 + ... + 1`) is flat: its left
/// operands form a spine that every walk follows with a loop, so a chain of
/// any length counts as one level.
pub const MAX_NESTING: u32 = 256;

/// The most expression nodes one function body (or top-level expression)
/// may have: past it the parser reports "expression too large" instead of
/// handing later passes (and the code generators) an unbounded body.
pub const MAX_EXPR_NODES: usize = 1_000_000;

/// The precedence of a user-defined binary operator declared without one.
pub const DEFAULT_PRECEDENCE: u32 = 30;

/// Parses a whole file. Operators become usable after the item that defines
/// them; no semantic checks are made (see [`crate::check_program`]).
pub fn parse_program(src: &str) -> Result<Program, Diagnostic> {
    parse_program_with(src, &mut OperatorTable::new())
}

/// Parses a whole file with the operators of `ops`, installing the file's
/// own into it as they are defined.
pub(crate) fn parse_program_with(
    src: &str,
    ops: &mut OperatorTable,
) -> Result<Program, Diagnostic> {
    let mut parser = Parser::new(src, Span::new(1, 1), ops, 0).map_err(|e| e.diag)?;
    let mut items = Vec::new();
    while let Some(item) = parser.parse_item().map_err(|e| e.diag)? {
        match &item {
            Item::Def(func) => parser.ops.define(&func.proto),
            Item::Extern(proto) => parser.ops.define(proto),
            Item::Expr(_) => {}
        }
        items.push(item);
    }
    Ok(Program { items })
}

/// Whether `c` can name a user-defined operator: printable ASCII punctuation
/// other than `(`, `)`, `,`, `;` and `#`.
pub fn is_operator_char(c: char) -> bool {
    c.is_ascii_punctuation() && !matches!(c, '(' | ')' | ',' | ';' | '#')
}

/// The binary operators the language defines itself. Only `=` can be
/// redefined (chapter 6 of the tutorial defines `binary =` as equality):
/// from its definition on, `=` is that user operator and no longer
/// assignment.
const BUILTIN_BINARY: [(char, u32); 5] = [('=', 2), ('<', 10), ('+', 20), ('-', 20), ('*', 40)];

/// The operators the parser knows: binary precedences and unary operators.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OperatorTable {
    binary: [Option<u32>; 128],
    /// Which binary operators are user-defined (calls of `binary<c>`).
    user_binary: [bool; 128],
    unary: [bool; 128],
}

impl OperatorTable {
    /// A table holding only the built-in binary operators.
    pub(crate) fn new() -> Self {
        let mut binary = [None; 128];
        for (c, prec) in BUILTIN_BINARY {
            binary[c as usize] = Some(prec);
        }
        OperatorTable {
            binary,
            user_binary: [false; 128],
            unary: [false; 128],
        }
    }

    fn binary_precedence(&self, c: char) -> Option<u32> {
        self.binary.get(c as usize).copied().flatten()
    }

    fn is_user_binary(&self, c: char) -> bool {
        self.user_binary.get(c as usize).copied().unwrap_or(false)
    }

    fn is_unary(&self, c: char) -> bool {
        self.unary.get(c as usize).copied().unwrap_or(false)
    }

    /// Makes the operator declared by `proto` (if it is one) usable.
    pub(crate) fn define(&mut self, proto: &Prototype) {
        match proto.kind {
            PrototypeKind::Function => {}
            PrototypeKind::Unary(c) => {
                if let Some(slot) = self.unary.get_mut(c as usize) {
                    *slot = true;
                }
            }
            PrototypeKind::Binary { op, precedence } => {
                if let Some(slot) = self.binary.get_mut(op as usize) {
                    *slot = Some(precedence);
                }
                if let Some(slot) = self.user_binary.get_mut(op as usize) {
                    *slot = true;
                }
            }
        }
    }
}

/// A parse failure; `at_eof` says the input ended too early, which the REPL
/// takes as "wait for more input".
#[derive(Debug)]
pub(crate) struct ParseError {
    pub(crate) diag: Diagnostic,
    pub(crate) at_eof: bool,
}

impl From<Diagnostic> for Box<ParseError> {
    fn from(diag: Diagnostic) -> Self {
        Box::new(ParseError {
            diag,
            at_eof: false,
        })
    }
}

/// Errors are boxed to keep the recursive functions' frames small.
pub(crate) type PResult<T> = Result<T, Box<ParseError>>;

/// An expression and its nesting depth.
struct Node {
    expr: Expr,
    depth: u32,
}

/// A recursive-descent parser over one text.
pub(crate) struct Parser<'src, 'ops> {
    lexer: Lexer<'src>,
    cur: Token,
    pub(crate) ops: &'ops mut OperatorTable,
    nesting: u32,
    /// Expression nodes made since the current item started.
    nodes: usize,
    next_anon: usize,
}

impl<'src, 'ops> Parser<'src, 'ops> {
    /// Starts parsing `src`, whose first character is at `start`; top-level
    /// expressions are numbered from `next_anon`.
    pub(crate) fn new(
        src: &'src str,
        start: Span,
        ops: &'ops mut OperatorTable,
        next_anon: usize,
    ) -> PResult<Self> {
        let mut lexer = Lexer::with_start(src, start);
        let cur = lexer.next_token()?;
        Ok(Parser {
            lexer,
            cur,
            ops,
            nesting: 0,
            nodes: 0,
            next_anon,
        })
    }

    /// The number the next top-level expression will get.
    pub(crate) fn next_anon(&self) -> usize {
        self.next_anon
    }

    /// The current token's position.
    pub(crate) fn position(&self) -> Span {
        self.cur.span
    }

    /// The byte offset of the current token in the text (the REPL keeps the
    /// text of an unfinished item from the item's first token on).
    pub(crate) fn offset(&self) -> usize {
        self.cur.offset
    }

    /// Whether the current token is the end of the input.
    pub(crate) fn at_eof(&self) -> bool {
        self.cur.kind == TokenKind::Eof
    }

    fn bump(&mut self) -> PResult<()> {
        self.cur = self.lexer.next_token()?;
        Ok(())
    }

    fn error<T>(&self, span: Span, message: impl Into<String>) -> PResult<T> {
        Err(Box::new(ParseError {
            diag: Diagnostic::new(span, message),
            at_eof: self.at_eof(),
        }))
    }

    #[cold]
    #[inline(never)]
    fn unexpected<T>(&self, expected: &str) -> PResult<T> {
        self.error(
            self.cur.span,
            format!("expected {expected}, found {}", self.cur.kind),
        )
    }

    fn is_char(&self, c: char) -> bool {
        self.cur.kind == TokenKind::Char(c)
    }

    fn expect_char(&mut self, c: char, expected: &str) -> PResult<()> {
        if !self.is_char(c) {
            return self.unexpected(expected);
        }
        self.bump()
    }

    fn expect_ident(&mut self, expected: &str) -> PResult<Ident> {
        let TokenKind::Ident(name) = &self.cur.kind else {
            return self.unexpected(expected);
        };
        let ident = Ident {
            name: name.clone(),
            span: self.cur.span,
        };
        self.bump()?;
        Ok(ident)
    }

    /// Skips `;` separators after an item.
    pub(crate) fn skip_semicolons(&mut self) -> PResult<()> {
        while self.is_char(';') {
            self.bump()?;
        }
        Ok(())
    }

    /// Parses the next top-level item, skipping `;` separators; `None` at
    /// the end of the input. Operators are not installed here.
    pub(crate) fn parse_item(&mut self) -> PResult<Option<Item>> {
        self.skip_semicolons()?;
        self.nodes = 0;
        match self.cur.kind {
            TokenKind::Eof => Ok(None),
            TokenKind::Def => {
                self.bump()?;
                let proto = self.parse_prototype()?;
                let body = self.parse_expression()?.expr;
                Ok(Some(Item::Def(Arc::new(Function { proto, body }))))
            }
            TokenKind::Extern => {
                self.bump()?;
                Ok(Some(Item::Extern(self.parse_prototype()?)))
            }
            _ => {
                let body = self.parse_expression()?.expr;
                let proto = Prototype {
                    name: anon_expr_name(self.next_anon),
                    span: body.span,
                    kind: PrototypeKind::Function,
                    params: Vec::new(),
                };
                self.next_anon += 1;
                Ok(Some(Item::Expr(Arc::new(Function { proto, body }))))
            }
        }
    }

    fn parse_prototype(&mut self) -> PResult<Prototype> {
        let span = self.cur.span;
        let (name, kind) = match &self.cur.kind {
            TokenKind::Ident(name) => {
                let name = name.clone();
                self.bump()?;
                (name, PrototypeKind::Function)
            }
            TokenKind::Unary => {
                self.bump()?;
                let op = self.parse_operator_char("unary")?;
                (unary_symbol(op), PrototypeKind::Unary(op))
            }
            TokenKind::Binary => {
                self.bump()?;
                let op_span = self.cur.span;
                let op = self.parse_operator_char("binary")?;
                if op != '=' && BUILTIN_BINARY.iter().any(|&(c, _)| c == op) {
                    return self
                        .error(op_span, format!("cannot redefine built-in operator '{op}'"));
                }
                let precedence = self.parse_precedence()?;
                (binary_symbol(op), PrototypeKind::Binary { op, precedence })
            }
            _ => return self.unexpected("a function name in prototype"),
        };
        self.expect_char('(', "'(' in prototype")?;
        let mut params = Vec::new();
        while let TokenKind::Ident(param) = &self.cur.kind {
            params.push(Ident {
                name: param.clone(),
                span: self.cur.span,
            });
            self.bump()?;
        }
        self.expect_char(')', "')' in prototype")?;
        let wanted = match kind {
            PrototypeKind::Function => None,
            PrototypeKind::Unary(_) => Some(1),
            PrototypeKind::Binary { .. } => Some(2),
        };
        if let Some(wanted) = wanted.filter(|&n| n != params.len()) {
            return self.error(
                span,
                format!(
                    "operator '{name}' needs exactly {wanted} parameter{}, found {}",
                    if wanted == 1 { "" } else { "s" },
                    params.len()
                ),
            );
        }
        Ok(Prototype {
            name,
            span,
            kind,
            params,
        })
    }

    fn parse_operator_char(&mut self, keyword: &str) -> PResult<char> {
        match self.cur.kind {
            TokenKind::Char(c) if is_operator_char(c) => {
                self.bump()?;
                Ok(c)
            }
            _ => self.unexpected(&format!("an operator character after '{keyword}'")),
        }
    }

    fn parse_precedence(&mut self) -> PResult<u32> {
        let TokenKind::Number(value) = self.cur.kind else {
            return Ok(DEFAULT_PRECEDENCE);
        };
        if !(1.0..=100.0).contains(&value) || value.fract() != 0.0 {
            return self.error(
                self.cur.span,
                format!("invalid precedence {value}: must be an integer from 1 to 100"),
            );
        }
        self.bump()?;
        // In range and integral, so the conversion is exact.
        Ok(value as u32)
    }

    fn node(&mut self, kind: ExprKind, span: Span, depth: u32) -> PResult<Node> {
        self.nodes += 1;
        if self.nodes > MAX_EXPR_NODES {
            return self.error(
                span,
                format!("expression too large (the limit is {MAX_EXPR_NODES} nodes per function)"),
            );
        }
        if depth > MAX_NESTING {
            return self.error(
                span,
                format!("expression nested too deeply (the limit is {MAX_NESTING} levels)"),
            );
        }
        Ok(Node {
            expr: Expr { kind, span },
            depth,
        })
    }

    fn enter(&mut self) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.error(
                self.cur.span,
                format!("expression nested too deeply (the limit is {MAX_NESTING} levels)"),
            );
        }
        Ok(())
    }

    fn parse_expression(&mut self) -> PResult<Node> {
        self.enter()?;
        let res = self
            .parse_unary()
            .and_then(|lhs| self.parse_binop_rhs(0, lhs));
        self.nesting -= 1;
        res
    }

    fn current_binop(&self) -> Option<(char, u32)> {
        match self.cur.kind {
            TokenKind::Char(c) => self.ops.binary_precedence(c).map(|prec| (c, prec)),
            _ => None,
        }
    }

    fn parse_binop_rhs(&mut self, min_prec: u32, mut lhs: Node) -> PResult<Node> {
        loop {
            let Some((op, prec)) = self.current_binop().filter(|&(_, p)| p >= min_prec) else {
                return Ok(lhs);
            };
            let op_span = self.cur.span;
            self.bump()?;
            let mut rhs = self.parse_unary()?;
            if self.current_binop().is_some_and(|(_, next)| next > prec) {
                self.enter()?;
                let res = self.parse_binop_rhs(prec + 1, rhs);
                self.nesting -= 1;
                rhs = res?;
            }
            lhs = self.combine(op, op_span, lhs, rhs)?;
        }
    }

    fn combine(&mut self, op: char, op_span: Span, lhs: Node, rhs: Node) -> PResult<Node> {
        let span = lhs.expr.span;
        // The left operand is the chain's spine (walked with a loop); only
        // the right one nests.
        let depth = lhs.depth.max(rhs.depth + 1);
        let kind = match op {
            '=' if !self.ops.is_user_binary('=') => {
                let ExprKind::Variable(name) = &lhs.expr.kind else {
                    return self.error(span, "destination of '=' must be a variable");
                };
                ExprKind::Assign {
                    target: Ident {
                        name: name.clone(),
                        span,
                    },
                    value: Box::new(rhs.expr),
                }
            }
            _ => {
                let op = match op {
                    '+' => BinaryOp::Add,
                    '-' => BinaryOp::Sub,
                    '*' => BinaryOp::Mul,
                    '<' => BinaryOp::Lt,
                    c => BinaryOp::User(c),
                };
                ExprKind::Binary {
                    op,
                    op_span,
                    lhs: Box::new(lhs.expr),
                    rhs: Box::new(rhs.expr),
                }
            }
        };
        self.node(kind, span, depth)
    }

    fn parse_unary(&mut self) -> PResult<Node> {
        let TokenKind::Char(op) = self.cur.kind else {
            return self.parse_primary();
        };
        if !self.ops.is_unary(op) {
            return self.parse_primary();
        }
        let span = self.cur.span;
        self.bump()?;
        self.enter()?;
        let res = self.parse_unary();
        self.nesting -= 1;
        let operand = res?;
        let depth = operand.depth + 1;
        let kind = ExprKind::Unary {
            op,
            operand: Box::new(operand.expr),
        };
        self.node(kind, span, depth)
    }

    fn parse_primary(&mut self) -> PResult<Node> {
        match self.cur.kind {
            TokenKind::Number(value) => {
                let span = self.cur.span;
                self.bump()?;
                self.node(ExprKind::Number(value), span, 1)
            }
            TokenKind::Ident(_) => self.parse_identifier_expr(),
            TokenKind::Char('(') => self.parse_paren(),
            TokenKind::If => self.parse_if(),
            TokenKind::For => self.parse_for(),
            TokenKind::Var => self.parse_var(),
            _ => self.not_an_expression(),
        }
    }

    #[cold]
    #[inline(never)]
    fn not_an_expression(&self) -> PResult<Node> {
        match self.cur.kind {
            TokenKind::Char(c) if is_operator_char(c) => self.error(
                self.cur.span,
                format!("expected an expression, found '{c}' (no unary operator '{c}' is defined)"),
            ),
            _ => self.unexpected("an expression"),
        }
    }

    fn parse_paren(&mut self) -> PResult<Node> {
        let span = self.cur.span;
        self.bump()?;
        let mut inner = self.parse_expression()?;
        self.expect_char(')', "')'")?;
        // A parenthesized expression starts at its '('.
        inner.expr.span = span;
        Ok(inner)
    }

    fn parse_identifier_expr(&mut self) -> PResult<Node> {
        let callee = self.expect_ident("an identifier")?;
        if !self.is_char('(') {
            return self.node(ExprKind::Variable(callee.name), callee.span, 1);
        }
        self.bump()?;
        let mut args = Vec::new();
        let mut depth = 0;
        if !self.is_char(')') {
            loop {
                let arg = self.parse_expression()?;
                depth = depth.max(arg.depth);
                args.push(arg.expr);
                if self.is_char(')') {
                    break;
                }
                self.expect_char(',', "')' or ',' in argument list")?;
            }
        }
        self.bump()?;
        let span = callee.span;
        self.node(ExprKind::Call { callee, args }, span, depth + 1)
    }

    fn parse_if(&mut self) -> PResult<Node> {
        let span = self.cur.span;
        self.bump()?;
        let cond = self.parse_expression()?;
        if self.cur.kind != TokenKind::Then {
            return self.unexpected("'then'");
        }
        self.bump()?;
        let then_branch = self.parse_expression()?;
        if self.cur.kind != TokenKind::Else {
            return self.unexpected("'else'");
        }
        self.bump()?;
        let else_branch = self.parse_expression()?;
        let depth = 1 + cond.depth.max(then_branch.depth).max(else_branch.depth);
        let kind = ExprKind::If {
            cond: Box::new(cond.expr),
            then_branch: Box::new(then_branch.expr),
            else_branch: Box::new(else_branch.expr),
        };
        self.node(kind, span, depth)
    }

    fn parse_for(&mut self) -> PResult<Node> {
        let span = self.cur.span;
        self.bump()?;
        let var = self.expect_ident("an identifier after 'for'")?;
        self.expect_char('=', "'=' after the 'for' variable")?;
        let start = self.parse_expression()?;
        self.expect_char(',', "',' after the 'for' start value")?;
        let end = self.parse_expression()?;
        let mut depth = start.depth.max(end.depth);
        let step = if self.is_char(',') {
            self.bump()?;
            let step = self.parse_expression()?;
            depth = depth.max(step.depth);
            Some(Box::new(step.expr))
        } else {
            None
        };
        if self.cur.kind != TokenKind::In {
            return self.unexpected("'in' after 'for'");
        }
        self.bump()?;
        let body = self.parse_expression()?;
        let depth = 1 + depth.max(body.depth);
        let kind = ExprKind::For {
            var,
            start: Box::new(start.expr),
            end: Box::new(end.expr),
            step,
            body: Box::new(body.expr),
        };
        self.node(kind, span, depth)
    }

    fn parse_var(&mut self) -> PResult<Node> {
        let span = self.cur.span;
        self.bump()?;
        let mut bindings = Vec::new();
        let mut depth = 0;
        loop {
            let name = self.expect_ident("an identifier after 'var'")?;
            let init = if self.is_char('=') {
                self.bump()?;
                let init = self.parse_expression()?;
                depth = depth.max(init.depth);
                Some(init.expr)
            } else {
                None
            };
            bindings.push(VarBinding { name, init });
            if !self.is_char(',') {
                break;
            }
            self.bump()?;
        }
        if self.cur.kind != TokenKind::In {
            return self.unexpected("'in' after 'var'");
        }
        self.bump()?;
        let body = self.parse_expression()?;
        let depth = 1 + depth.max(body.depth);
        let kind = ExprKind::Var {
            bindings,
            body: Box::new(body.expr),
        };
        self.node(kind, span, depth)
    }
}

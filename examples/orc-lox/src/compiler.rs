//! The single-pass compiler: a Pratt parser that emits bytecode as it goes
//! (clox's design). Compile errors are reported as clox reports them:
//! `[line N] Error at 'x': message`.
//!
//! Besides the bytecode, the compiler computes each function's maximum
//! stack depth ([`Function::max_slots`]), so the VM checks for stack
//! overflow once per call and a JIT'd frame knows its size.

use crate::chunk::{Chunk, Op};
use crate::object::{Function, ObjKind, ObjRef};
use crate::scanner::{Scanner, Token, TokenKind};
use crate::value::Value;
use crate::vm::Vm;

use TokenKind as T;

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Prec {
    None,
    Assignment,
    Or,
    And,
    Equality,
    Comparison,
    Term,
    Factor,
    Unary,
    Call,
    Primary,
}

impl Prec {
    fn next(self) -> Prec {
        match self {
            Prec::None => Prec::Assignment,
            Prec::Assignment => Prec::Or,
            Prec::Or => Prec::And,
            Prec::And => Prec::Equality,
            Prec::Equality => Prec::Comparison,
            Prec::Comparison => Prec::Term,
            Prec::Term => Prec::Factor,
            Prec::Factor => Prec::Unary,
            Prec::Unary => Prec::Call,
            Prec::Call | Prec::Primary => Prec::Primary,
        }
    }
}

fn infix_precedence(kind: TokenKind) -> Prec {
    match kind {
        T::LeftParen | T::Dot => Prec::Call,
        T::Minus | T::Plus => Prec::Term,
        T::Slash | T::Star => Prec::Factor,
        T::BangEqual | T::EqualEqual => Prec::Equality,
        T::Greater | T::GreaterEqual | T::Less | T::LessEqual => Prec::Comparison,
        T::And => Prec::And,
        T::Or => Prec::Or,
        _ => Prec::None,
    }
}

/// Stack effect of an instruction, not counting argument-count operands.
fn stack_effect(op: Op) -> i32 {
    match op {
        Op::Constant | Op::Nil | Op::True | Op::False | Op::GetLocal | Op::GetGlobal => 1,
        Op::GetUpvalue | Op::Closure | Op::Class => 1,
        Op::SetLocal | Op::SetGlobal | Op::SetUpvalue | Op::GetProperty => 0,
        Op::Not | Op::Negate | Op::Jump | Op::JumpIfFalse | Op::Loop => 0,
        Op::Call | Op::Invoke => 0,
        Op::Pop | Op::DefineGlobal | Op::SetProperty | Op::GetSuper => -1,
        Op::Equal | Op::Greater | Op::Less | Op::Add | Op::Subtract => -1,
        Op::Multiply | Op::Divide | Op::Print | Op::SuperInvoke => -1,
        Op::CloseUpvalue | Op::Return | Op::Inherit | Op::Method => -1,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FunctionType {
    Function,
    Initializer,
    Method,
    Script,
}

struct Local<'src> {
    name: &'src str,
    /// -1 while declared but not yet initialized.
    depth: i32,
    is_captured: bool,
}

#[derive(Clone, Copy, PartialEq)]
struct UpvalueDesc {
    index: u8,
    is_local: bool,
}

struct FnCompiler<'src> {
    kind: FunctionType,
    name: Option<ObjRef>,
    arity: usize,
    chunk: Chunk,
    locals: Vec<Local<'src>>,
    upvalues: Vec<UpvalueDesc>,
    scope_depth: i32,
    /// Current stack depth (slots above the frame base).
    depth: i32,
    max_depth: i32,
}

struct ClassCompiler {
    has_superclass: bool,
}

const MAX_LOCALS: usize = 256;
const MAX_UPVALUES: usize = 256;

/// Parser and compiler state for one `compile` call.
struct Parser<'src, 'vm> {
    scanner: Scanner<'src>,
    current: Token<'src>,
    previous: Token<'src>,
    had_error: bool,
    panic_mode: bool,
    vm: &'vm mut Vm,
    compilers: Vec<FnCompiler<'src>>,
    classes: Vec<ClassCompiler>,
    /// Current nesting of expressions and declarations (the parser recurses
    /// on both), bounded by [`MAX_NESTING`] so deep input cannot overflow
    /// the native stack.
    nesting: usize,
    /// Set once the nesting limit was hit: later errors are consequences
    /// and are not reported.
    too_deep: bool,
}

/// Deepest nesting of expressions and declarations the parser accepts.
/// clox has no such limit (its C recursion just gets deep); programs a
/// person writes stay far below it.
const MAX_NESTING: usize = 1000;

/// Compiles `source` to the script function, or reports errors (to the
/// VM's error output) and returns `None`. The function is not rooted: the
/// caller roots it before the next safepoint.
pub(crate) fn compile(vm: &mut Vm, source: &str) -> Option<ObjRef> {
    let dummy = Token {
        kind: T::Eof,
        lexeme: "",
        line: 1,
    };
    let mut p = Parser {
        scanner: Scanner::new(source),
        current: dummy,
        previous: dummy,
        had_error: false,
        panic_mode: false,
        vm,
        compilers: Vec::new(),
        classes: Vec::new(),
        nesting: 0,
        too_deep: false,
    };
    p.begin_function(FunctionType::Script);
    p.advance();
    while !p.matches(T::Eof) {
        p.declaration();
    }
    let f = p.end_function();
    if p.had_error {
        None
    } else {
        Some(f)
    }
}

impl<'src> Parser<'src, '_> {
    // ---- errors and tokens ----

    fn error_at(&mut self, token: Token<'src>, message: &str) {
        if self.panic_mode || self.too_deep {
            return;
        }
        self.panic_mode = true;
        let location = match token.kind {
            T::Eof => " at end".to_string(),
            T::Error => String::new(),
            _ => format!(" at '{}'", token.lexeme),
        };
        self.vm.report_error(&format!(
            "[line {}] Error{}: {}",
            token.line, location, message
        ));
        self.had_error = true;
    }

    fn error(&mut self, message: &str) {
        self.error_at(self.previous, message);
    }

    fn error_at_current(&mut self, message: &str) {
        self.error_at(self.current, message);
    }

    fn advance(&mut self) {
        self.previous = self.current;
        loop {
            self.current = self.scanner.scan_token();
            if self.current.kind != T::Error {
                break;
            }
            self.error_at_current(self.current.lexeme);
        }
    }

    fn consume(&mut self, kind: TokenKind, message: &str) {
        if self.current.kind == kind {
            self.advance();
        } else {
            self.error_at_current(message);
        }
    }

    fn check(&self, kind: TokenKind) -> bool {
        self.current.kind == kind
    }

    fn matches(&mut self, kind: TokenKind) -> bool {
        if self.check(kind) {
            self.advance();
            true
        } else {
            false
        }
    }

    // ---- emission ----

    fn fc(&mut self) -> &mut FnCompiler<'src> {
        self.compilers
            .last_mut()
            .expect("a function is being compiled")
    }

    fn adjust(&mut self, delta: i32) {
        let fc = self.fc();
        fc.depth += delta;
        fc.max_depth = fc.max_depth.max(fc.depth);
    }

    fn emit_byte(&mut self, byte: u8) {
        let line = self.previous.line;
        self.fc().chunk.write(byte, line);
    }

    fn emit_op(&mut self, op: Op) {
        self.emit_byte(op as u8);
        self.adjust(stack_effect(op));
    }

    fn emit_op_arg(&mut self, op: Op, arg: u8) {
        self.emit_op(op);
        self.emit_byte(arg);
    }

    fn emit_op_u16(&mut self, op: Op, arg: u16) {
        self.emit_op(op);
        self.emit_byte((arg >> 8) as u8);
        self.emit_byte(arg as u8);
    }

    fn emit_jump(&mut self, op: Op) -> usize {
        self.emit_op_u16(op, 0xffff);
        self.fc().chunk.code.len() - 2
    }

    fn patch_jump(&mut self, offset: usize) {
        let jump = self.fc().chunk.code.len() - offset - 2;
        if jump > u16::MAX as usize {
            self.error("Too much code to jump over.");
        }
        let code = &mut self.fc().chunk.code;
        code[offset] = (jump >> 8) as u8;
        code[offset + 1] = jump as u8;
    }

    fn emit_loop(&mut self, loop_start: usize) {
        self.emit_op(Op::Loop);
        let offset = self.fc().chunk.code.len() - loop_start + 2;
        if offset > u16::MAX as usize {
            self.error("Loop body too large.");
        }
        self.emit_byte((offset >> 8) as u8);
        self.emit_byte(offset as u8);
    }

    fn emit_return(&mut self) {
        if self.fc().kind == FunctionType::Initializer {
            self.emit_op_arg(Op::GetLocal, 0);
        } else {
            self.emit_op(Op::Nil);
        }
        self.emit_op(Op::Return);
    }

    fn make_constant(&mut self, value: Value) -> u8 {
        let constants = &mut self.fc().chunk.constants;
        constants.push(value);
        let index = constants.len() - 1;
        if index > u8::MAX as usize {
            self.error("Too many constants in one chunk.");
            return 0;
        }
        index as u8
    }

    fn emit_constant(&mut self, value: Value) {
        let c = self.make_constant(value);
        self.emit_op_arg(Op::Constant, c);
    }

    /// A collection point: every object the compiler made is in a constant
    /// table or a function name by now, and those are marked as roots.
    fn safepoint(&mut self) {
        if self.vm.heap.should_collect() {
            for fc in &self.compilers {
                if let Some(n) = fc.name {
                    self.vm.heap.mark_obj(n);
                }
                for &v in &fc.chunk.constants {
                    self.vm.heap.mark_value(v);
                }
            }
            self.vm.collect_garbage();
        }
    }

    fn identifier_constant(&mut self, name: &str) -> u8 {
        let s = self.vm.heap.intern(name);
        let c = self.make_constant(Value::obj(s));
        self.safepoint();
        c
    }

    // ---- functions and scopes ----

    fn begin_function(&mut self, kind: FunctionType) {
        let name = if kind == FunctionType::Script {
            None
        } else {
            Some(self.vm.heap.intern(self.previous.lexeme))
        };
        let slot0 = if kind == FunctionType::Function || kind == FunctionType::Script {
            ""
        } else {
            "this"
        };
        self.compilers.push(FnCompiler {
            kind,
            name,
            arity: 0,
            chunk: Chunk::default(),
            locals: vec![Local {
                name: slot0,
                depth: 0,
                is_captured: false,
            }],
            upvalues: Vec::new(),
            scope_depth: 0,
            depth: 1,
            max_depth: 1,
        });
        self.safepoint();
    }

    /// Finishes the innermost function and allocates its object.
    fn end_function(&mut self) -> ObjRef {
        self.emit_return();
        let fc = self.compilers.pop().expect("a function is being compiled");
        self.vm.heap.alloc(ObjKind::Function(Box::new(Function {
            arity: fc.arity,
            upvalue_count: fc.upvalues.len(),
            max_slots: fc.max_depth.max(1) as usize,
            jit: crate::object::JitInfo {
                arity: fc.arity as u32,
                max_slots: fc.max_depth.max(1) as u32,
                ..Default::default()
            },
            chunk: fc.chunk,
            name: fc.name,
        })))
    }

    fn begin_scope(&mut self) {
        self.fc().scope_depth += 1;
    }

    fn end_scope(&mut self) {
        self.fc().scope_depth -= 1;
        loop {
            let fc = self.fc();
            let Some(local) = fc.locals.last() else { break };
            if local.depth <= fc.scope_depth {
                break;
            }
            let captured = local.is_captured;
            fc.locals.pop();
            self.emit_op(if captured { Op::CloseUpvalue } else { Op::Pop });
        }
    }

    fn add_local(&mut self, name: &'src str) {
        if self.fc().locals.len() == MAX_LOCALS {
            self.error("Too many local variables in function.");
            return;
        }
        self.fc().locals.push(Local {
            name,
            depth: -1,
            is_captured: false,
        });
    }

    fn declare_variable(&mut self) {
        if self.fc().scope_depth == 0 {
            return;
        }
        let name = self.previous.lexeme;
        let fc = self.fc();
        let depth = fc.scope_depth;
        let duplicate = fc
            .locals
            .iter()
            .rev()
            .take_while(|l| l.depth == -1 || l.depth >= depth)
            .any(|l| l.name == name);
        if duplicate {
            self.error("Already a variable with this name in this scope.");
        }
        self.add_local(name);
    }

    /// Parses a variable name; returns its global slot (0 for locals).
    fn parse_variable(&mut self, message: &str) -> u16 {
        self.consume(T::Identifier, message);
        self.declare_variable();
        if self.fc().scope_depth > 0 {
            return 0;
        }
        self.global_slot(self.previous.lexeme)
    }

    fn global_slot(&mut self, name: &str) -> u16 {
        match self.vm.global_slot(name) {
            Some(slot) => slot,
            None => {
                self.error("Too many global variables.");
                0
            }
        }
    }

    fn mark_initialized(&mut self) {
        let fc = self.fc();
        if fc.scope_depth == 0 {
            return;
        }
        let depth = fc.scope_depth;
        if let Some(l) = fc.locals.last_mut() {
            l.depth = depth;
        }
    }

    fn define_variable(&mut self, global: u16) {
        if self.fc().scope_depth > 0 {
            self.mark_initialized();
            return;
        }
        self.emit_op_u16(Op::DefineGlobal, global);
    }

    fn resolve_local(&mut self, level: usize, name: &str) -> Option<u8> {
        let found = self.compilers[level]
            .locals
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| l.name == name)
            .map(|(i, l)| (i, l.depth));
        let (index, depth) = found?;
        if depth == -1 {
            self.error("Can't read local variable in its own initializer.");
        }
        Some(index as u8)
    }

    fn add_upvalue(&mut self, level: usize, index: u8, is_local: bool) -> u8 {
        let desc = UpvalueDesc { index, is_local };
        let upvalues = &self.compilers[level].upvalues;
        if let Some(i) = upvalues.iter().position(|u| *u == desc) {
            return i as u8;
        }
        if upvalues.len() == MAX_UPVALUES {
            self.error("Too many closure variables in function.");
            return 0;
        }
        self.compilers[level].upvalues.push(desc);
        (self.compilers[level].upvalues.len() - 1) as u8
    }

    fn resolve_upvalue(&mut self, level: usize, name: &str) -> Option<u8> {
        if level == 0 {
            return None;
        }
        if let Some(local) = self.resolve_local(level - 1, name) {
            self.compilers[level - 1].locals[local as usize].is_captured = true;
            return Some(self.add_upvalue(level, local, true));
        }
        let up = self.resolve_upvalue(level - 1, name)?;
        Some(self.add_upvalue(level, up, false))
    }

    fn named_variable(&mut self, name: &'src str, can_assign: bool) {
        let level = self.compilers.len() - 1;
        let (get, set, arg): (Op, Op, Option<u8>) = if let Some(i) = self.resolve_local(level, name)
        {
            (Op::GetLocal, Op::SetLocal, Some(i))
        } else if let Some(i) = self.resolve_upvalue(level, name) {
            (Op::GetUpvalue, Op::SetUpvalue, Some(i))
        } else {
            (Op::GetGlobal, Op::SetGlobal, None)
        };
        let assign = can_assign && self.matches(T::Equal);
        if assign {
            self.expression();
        }
        let op = if assign { set } else { get };
        match arg {
            Some(i) => self.emit_op_arg(op, i),
            None => {
                let slot = self.global_slot(name);
                self.emit_op_u16(op, slot);
            }
        }
    }

    // ---- declarations and statements ----

    /// Counts one level of parser recursion; false (after reporting) when
    /// the input nests too deeply.
    fn enter(&mut self) -> bool {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            self.error_at_current("Too much nesting.");
            self.too_deep = true;
            self.nesting -= 1;
            return false;
        }
        true
    }

    fn declaration(&mut self) {
        if !self.enter() {
            // Skip the rest of the input: nothing nested this deep compiles.
            while !self.check(T::Eof) {
                self.advance();
            }
            return;
        }
        self.declaration_inner();
        self.nesting -= 1;
    }

    fn declaration_inner(&mut self) {
        if self.matches(T::Class) {
            self.class_declaration();
        } else if self.matches(T::Fun) {
            self.fun_declaration();
        } else if self.matches(T::Var) {
            self.var_declaration();
        } else {
            self.statement();
        }
        if self.panic_mode {
            self.synchronize();
        }
    }

    fn synchronize(&mut self) {
        self.panic_mode = false;
        while self.current.kind != T::Eof {
            if self.previous.kind == T::Semicolon {
                return;
            }
            match self.current.kind {
                T::Class | T::Fun | T::Var | T::For | T::If | T::While | T::Print | T::Return => {
                    return
                }
                _ => self.advance(),
            }
        }
    }

    fn class_declaration(&mut self) {
        self.consume(T::Identifier, "Expect class name.");
        let class_name = self.previous;
        let name_constant = self.identifier_constant(class_name.lexeme);
        self.declare_variable();
        let global = if self.fc().scope_depth > 0 {
            0
        } else {
            self.global_slot(class_name.lexeme)
        };
        self.emit_op_arg(Op::Class, name_constant);
        self.define_variable(global);

        self.classes.push(ClassCompiler {
            has_superclass: false,
        });
        if self.matches(T::Less) {
            self.consume(T::Identifier, "Expect superclass name.");
            self.variable(false);
            if class_name.lexeme == self.previous.lexeme {
                self.error("A class can't inherit from itself.");
            }
            self.begin_scope();
            self.add_local("super");
            self.define_variable(0);
            self.named_variable(class_name.lexeme, false);
            self.emit_op(Op::Inherit);
            if let Some(c) = self.classes.last_mut() {
                c.has_superclass = true;
            }
        }
        self.named_variable(class_name.lexeme, false);
        self.consume(T::LeftBrace, "Expect '{' before class body.");
        while !self.check(T::RightBrace) && !self.check(T::Eof) {
            self.method();
        }
        self.consume(T::RightBrace, "Expect '}' after class body.");
        self.emit_op(Op::Pop);
        let class = self.classes.pop();
        if class.is_some_and(|c| c.has_superclass) {
            self.end_scope();
        }
    }

    fn method(&mut self) {
        self.consume(T::Identifier, "Expect method name.");
        let name = self.previous.lexeme;
        let constant = self.identifier_constant(name);
        let kind = if name == "init" {
            FunctionType::Initializer
        } else {
            FunctionType::Method
        };
        self.function(kind);
        self.emit_op_arg(Op::Method, constant);
    }

    fn fun_declaration(&mut self) {
        let global = self.parse_variable("Expect function name.");
        self.mark_initialized();
        self.function(FunctionType::Function);
        self.define_variable(global);
    }

    fn function(&mut self, kind: FunctionType) {
        self.begin_function(kind);
        self.begin_scope();
        self.consume(T::LeftParen, "Expect '(' after function name.");
        if !self.check(T::RightParen) {
            loop {
                self.fc().arity += 1;
                if self.fc().arity > 255 {
                    self.error_at_current("Can't have more than 255 parameters.");
                }
                let constant = self.parse_variable("Expect parameter name.");
                self.adjust(1);
                self.define_variable(constant);
                if !self.matches(T::Comma) {
                    break;
                }
            }
        }
        self.consume(T::RightParen, "Expect ')' after parameters.");
        self.consume(T::LeftBrace, "Expect '{' before function body.");
        self.block();

        let upvalues = self.fc().upvalues.clone();
        let function = self.end_function();
        let constant = self.make_constant(Value::obj(function));
        self.emit_op_arg(Op::Closure, constant);
        for u in upvalues {
            self.emit_byte(u.is_local as u8);
            self.emit_byte(u.index);
        }
        self.safepoint();
    }

    fn var_declaration(&mut self) {
        let global = self.parse_variable("Expect variable name.");
        if self.matches(T::Equal) {
            self.expression();
        } else {
            self.emit_op(Op::Nil);
        }
        self.consume(T::Semicolon, "Expect ';' after variable declaration.");
        self.define_variable(global);
    }

    fn statement(&mut self) {
        if self.matches(T::Print) {
            self.expression();
            self.consume(T::Semicolon, "Expect ';' after value.");
            self.emit_op(Op::Print);
        } else if self.matches(T::For) {
            self.for_statement();
        } else if self.matches(T::If) {
            self.if_statement();
        } else if self.matches(T::Return) {
            self.return_statement();
        } else if self.matches(T::While) {
            self.while_statement();
        } else if self.matches(T::LeftBrace) {
            self.begin_scope();
            self.block();
            self.end_scope();
        } else {
            self.expression();
            self.consume(T::Semicolon, "Expect ';' after expression.");
            self.emit_op(Op::Pop);
        }
    }

    fn block(&mut self) {
        while !self.check(T::RightBrace) && !self.check(T::Eof) {
            self.declaration();
        }
        self.consume(T::RightBrace, "Expect '}' after block.");
    }

    fn if_statement(&mut self) {
        self.consume(T::LeftParen, "Expect '(' after 'if'.");
        self.expression();
        self.consume(T::RightParen, "Expect ')' after condition.");
        let then_jump = self.emit_jump(Op::JumpIfFalse);
        self.emit_op(Op::Pop);
        self.statement();
        let else_jump = self.emit_jump(Op::Jump);
        self.patch_jump(then_jump);
        // The condition is still on the stack on this path.
        self.adjust(1);
        self.emit_op(Op::Pop);
        if self.matches(T::Else) {
            self.statement();
        }
        self.patch_jump(else_jump);
    }

    fn while_statement(&mut self) {
        let loop_start = self.fc().chunk.code.len();
        self.consume(T::LeftParen, "Expect '(' after 'while'.");
        self.expression();
        self.consume(T::RightParen, "Expect ')' after condition.");
        let exit_jump = self.emit_jump(Op::JumpIfFalse);
        self.emit_op(Op::Pop);
        self.statement();
        self.emit_loop(loop_start);
        self.patch_jump(exit_jump);
        self.adjust(1);
        self.emit_op(Op::Pop);
    }

    fn for_statement(&mut self) {
        self.begin_scope();
        self.consume(T::LeftParen, "Expect '(' after 'for'.");
        if self.matches(T::Semicolon) {
            // No initializer.
        } else if self.matches(T::Var) {
            self.var_declaration();
        } else {
            self.expression();
            self.consume(T::Semicolon, "Expect ';' after expression.");
            self.emit_op(Op::Pop);
        }
        let mut loop_start = self.fc().chunk.code.len();
        let mut exit_jump = None;
        if !self.matches(T::Semicolon) {
            self.expression();
            self.consume(T::Semicolon, "Expect ';' after loop condition.");
            exit_jump = Some(self.emit_jump(Op::JumpIfFalse));
            self.emit_op(Op::Pop);
        }
        if !self.matches(T::RightParen) {
            let body_jump = self.emit_jump(Op::Jump);
            let increment_start = self.fc().chunk.code.len();
            self.expression();
            self.emit_op(Op::Pop);
            self.consume(T::RightParen, "Expect ')' after for clauses.");
            self.emit_loop(loop_start);
            loop_start = increment_start;
            self.patch_jump(body_jump);
        }
        self.statement();
        self.emit_loop(loop_start);
        if let Some(exit) = exit_jump {
            self.patch_jump(exit);
            self.adjust(1);
            self.emit_op(Op::Pop);
        }
        self.end_scope();
    }

    fn return_statement(&mut self) {
        if self.fc().kind == FunctionType::Script {
            self.error("Can't return from top-level code.");
        }
        if self.matches(T::Semicolon) {
            self.emit_return();
        } else {
            if self.fc().kind == FunctionType::Initializer {
                self.error("Can't return a value from an initializer.");
            }
            self.expression();
            self.consume(T::Semicolon, "Expect ';' after return value.");
            self.emit_op(Op::Return);
        }
    }

    // ---- expressions ----

    fn expression(&mut self) {
        self.parse_precedence(Prec::Assignment);
    }

    fn parse_precedence(&mut self, prec: Prec) {
        if !self.enter() {
            return;
        }
        self.parse_precedence_inner(prec);
        self.nesting -= 1;
    }

    fn parse_precedence_inner(&mut self, prec: Prec) {
        self.advance();
        let can_assign = prec <= Prec::Assignment;
        if !self.prefix(self.previous.kind, can_assign) {
            self.error("Expect expression.");
            return;
        }
        while prec <= infix_precedence(self.current.kind) {
            self.advance();
            self.infix(self.previous.kind, can_assign);
        }
        if can_assign && self.matches(T::Equal) {
            self.error("Invalid assignment target.");
        }
    }

    /// Runs the prefix rule of `kind`; false when it has none.
    fn prefix(&mut self, kind: TokenKind, can_assign: bool) -> bool {
        match kind {
            T::LeftParen => {
                self.expression();
                self.consume(T::RightParen, "Expect ')' after expression.");
            }
            T::Minus | T::Bang => {
                self.parse_precedence(Prec::Unary);
                self.emit_op(if kind == T::Minus {
                    Op::Negate
                } else {
                    Op::Not
                });
            }
            T::Identifier => self.variable(can_assign),
            T::String => {
                let lexeme = self.previous.lexeme;
                let s = self.vm.heap.intern(&lexeme[1..lexeme.len() - 1]);
                self.emit_constant(Value::obj(s));
                self.safepoint();
            }
            T::Number => {
                let n: f64 = self.previous.lexeme.parse().unwrap_or(0.0);
                self.emit_constant(Value::number(n));
            }
            T::False => self.emit_op(Op::False),
            T::Nil => self.emit_op(Op::Nil),
            T::True => self.emit_op(Op::True),
            T::Super => self.super_(),
            T::This => {
                if self.classes.is_empty() {
                    self.error("Can't use 'this' outside of a class.");
                } else {
                    self.named_variable("this", false);
                }
            }
            _ => return false,
        }
        true
    }

    fn infix(&mut self, kind: TokenKind, can_assign: bool) {
        match kind {
            T::LeftParen => {
                let argc = self.argument_list();
                self.emit_op_arg(Op::Call, argc);
                self.adjust(-(argc as i32));
            }
            T::Dot => {
                self.consume(T::Identifier, "Expect property name after '.'.");
                let name = self.identifier_constant(self.previous.lexeme);
                if can_assign && self.matches(T::Equal) {
                    self.expression();
                    self.emit_op_arg(Op::SetProperty, name);
                } else if self.matches(T::LeftParen) {
                    let argc = self.argument_list();
                    self.emit_op_arg(Op::Invoke, name);
                    self.emit_byte(argc);
                    self.adjust(-(argc as i32));
                } else {
                    self.emit_op_arg(Op::GetProperty, name);
                }
            }
            T::And => {
                let end_jump = self.emit_jump(Op::JumpIfFalse);
                self.emit_op(Op::Pop);
                self.parse_precedence(Prec::And);
                self.patch_jump(end_jump);
            }
            T::Or => {
                let else_jump = self.emit_jump(Op::JumpIfFalse);
                let end_jump = self.emit_jump(Op::Jump);
                self.patch_jump(else_jump);
                self.emit_op(Op::Pop);
                self.parse_precedence(Prec::Or);
                self.patch_jump(end_jump);
            }
            _ => {
                self.parse_precedence(infix_precedence(kind).next());
                match kind {
                    T::BangEqual => {
                        self.emit_op(Op::Equal);
                        self.emit_op(Op::Not);
                    }
                    T::EqualEqual => self.emit_op(Op::Equal),
                    T::Greater => self.emit_op(Op::Greater),
                    T::GreaterEqual => {
                        self.emit_op(Op::Less);
                        self.emit_op(Op::Not);
                    }
                    T::Less => self.emit_op(Op::Less),
                    T::LessEqual => {
                        self.emit_op(Op::Greater);
                        self.emit_op(Op::Not);
                    }
                    T::Plus => self.emit_op(Op::Add),
                    T::Minus => self.emit_op(Op::Subtract),
                    T::Star => self.emit_op(Op::Multiply),
                    T::Slash => self.emit_op(Op::Divide),
                    _ => {}
                }
            }
        }
    }

    fn variable(&mut self, can_assign: bool) {
        self.named_variable(self.previous.lexeme, can_assign);
    }

    fn super_(&mut self) {
        match self.classes.last() {
            None => self.error("Can't use 'super' outside of a class."),
            Some(c) if !c.has_superclass => {
                self.error("Can't use 'super' in a class with no superclass.")
            }
            Some(_) => {}
        }
        self.consume(T::Dot, "Expect '.' after 'super'.");
        self.consume(T::Identifier, "Expect superclass method name.");
        let name = self.identifier_constant(self.previous.lexeme);
        self.named_variable("this", false);
        if self.matches(T::LeftParen) {
            let argc = self.argument_list();
            self.named_variable("super", false);
            self.emit_op_arg(Op::SuperInvoke, name);
            self.emit_byte(argc);
            self.adjust(-(argc as i32));
        } else {
            self.named_variable("super", false);
            self.emit_op_arg(Op::GetSuper, name);
        }
    }

    fn argument_list(&mut self) -> u8 {
        let mut argc: usize = 0;
        if !self.check(T::RightParen) {
            loop {
                self.expression();
                if argc == 255 {
                    self.error("Can't have more than 255 arguments.");
                }
                argc += 1;
                if !self.matches(T::Comma) {
                    break;
                }
            }
        }
        self.consume(T::RightParen, "Expect ')' after arguments.");
        argc.min(255) as u8
    }
}

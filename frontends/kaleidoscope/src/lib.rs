//! The Kaleidoscope language of LLVM's JIT tutorial (chapters 2-7) as an orc
//! frontend: lexer, parser, semantic checks, and lowering to Cranelift IR.
//!
//! Every value is an `f64`. A file holds `def`initions, `extern`
//! declarations and top-level expressions; `binary`/`unary` definitions add
//! operators usable from then on. A file is parsed and checked completely
//! before anything runs ([`parse_and_check`]); errors are [`Diagnostic`]s
//! rendered as `FILE:LINE:COL: error: MESSAGE`. The REPL goes item by item
//! through a [`ReplSession`]. Lowering ([`lower_program`], [`lower_function`])
//! writes into any `cranelift_module::Module`; calls, including calls to the
//! host's `putchard`/`printd`, are imports by symbol name for the linker to
//! resolve. [`build_standalone`] gives a function as orc's tiered layer
//! takes it: one lowering, from which the JIT makes both tiers (its tier 1
//! translates the CLIF to LLVM IR).
//!
//! # Language
//!
//! The tutorial's language through chapter 7, with these rules where its
//! chapters differ or leave a gap:
//! - Operators: built in are `=` (assignment, precedence 2), `<` (10),
//!   `+` and `-` (20) and `*` (40). `def binary<c> [precedence] (a b)` and
//!   `def unary<c> (v)` define new ones, usable from their definition on.
//!   `+`, `-`, `*` and `<` cannot be redefined. `=` can, as chapter 6 does
//!   (`def binary = 9 (LHS RHS) !(LHS < RHS | LHS > RHS);`): from that
//!   definition on, `=` in an expression is a call of the user's `binary=`
//!   at its precedence, and no longer assignment (`var x = ...` and
//!   `for x = ...` keep their `=`, which is syntax, not the operator).
//!   Before it, and in a program that never defines it, `=` is chapter
//!   7's assignment.
//! - The `for` loop is chapter 7's: the body runs, the end condition is
//!   evaluated with the variable's current value, then the step is added;
//!   the loop repeats while the condition was true.
//! - A file may not define a name twice (the tutorial's JIT refuses a
//!   duplicate definition too); the REPL and the embedding API's `eval`
//!   accept a redefinition with the same number of parameters.
//! - Nesting (parentheses, call arguments, `if`/`for`/`var` parts, unary
//!   operands, right operands of binary operators) is limited to
//!   [`MAX_NESTING`] levels; a chain of binary operators (`1 + 1 + ... +
//!   1`) is flat, one level however long. A function body may have at most
//!   [`MAX_EXPR_NODES`] expression nodes. Past either limit the parser
//!   reports an error; no input overflows the stack.
//!
//! # Example
//!
//! ```
//! use cranelift_module::{default_libcall_names, Module};
//! use cranelift_object::{ObjectBuilder, ObjectModule};
//! use orc_kaleidoscope::{parse_and_check, lower_program, LowerOptions};
//!
//! let src = "
//!     extern printd(x);
//!     def binary : 1 (x y) y;             # sequencing
//!     def fib(n) if n < 3 then 1 else fib(n - 1) + fib(n - 2);
//!     printd(fib(10)) : 0;
//! ";
//! let program = parse_and_check(src).expect("a valid program");
//!
//! // Errors point at the offending token.
//! let errs = parse_and_check("def f(x) y;").unwrap_err();
//! assert_eq!(errs[0].render("f.kal"), "f.kal:1:10: error: unknown variable 'y'");
//!
//! // Lower into a relocatable object for the host.
//! let isa = cranelift_native::builder()
//!     .unwrap()
//!     .finish(cranelift_codegen::settings::Flags::new(
//!         cranelift_codegen::settings::builder(),
//!     ))
//!     .unwrap();
//! let builder = ObjectBuilder::new(isa, "example", default_libcall_names()).unwrap();
//! let mut module = ObjectModule::new(builder);
//! let symbols = lower_program(&mut module, &program, &LowerOptions::default()).unwrap();
//! let names: Vec<_> = symbols.iter().map(|s| s.name.as_str()).collect();
//! assert_eq!(names, ["binary:", "fib", "__anon_expr_0"]);
//! assert!(!module.finish().emit().unwrap().is_empty());
//! ```
#![forbid(unsafe_code)]

mod ast;
mod check;
mod diag;
mod lexer;
mod lower_clif;
mod parser;
mod repl;

pub use ast::{
    anon_expr_name, binary_symbol, unary_symbol, BinaryOp, Expr, ExprKind, Function, Ident, Item,
    Program, Prototype, PrototypeKind, VarBinding, ANON_EXPR_PREFIX,
};
pub use check::{check_program, parse_and_check, ProgramContext};
pub use diag::{render, render_all, Diagnostic, Span};
pub use lexer::{tokenize, Lexer, Token, TokenKind};
pub use lower_clif::{
    build_function, build_function_as, build_standalone, lower_function, lower_function_as,
    lower_program, signature, LowerError, LowerOptions, LoweredFunction, LoweredSymbol,
};
pub use parser::{
    is_operator_char, parse_program, DEFAULT_PRECEDENCE, MAX_EXPR_NODES, MAX_NESTING,
};
pub use repl::{ReplEvent, ReplSession};

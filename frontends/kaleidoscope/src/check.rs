//! Semantic checks: names, arities and redefinitions, for whole files.
//!
//! A file is checked completely before anything in it runs. Functions are
//! visible file-wide: a call may name a function that is `def`ined or
//! declared `extern` anywhere in the file, before or after the call. This
//! matches `orc run`, which defines every function before it evaluates the
//! first top-level expression, and it accepts every program the tutorial's
//! declare-before-use order accepts. (Operators are different: they are
//! syntax, usable only after their definition, see [`crate::parse_program`].)
//!
//! Errors, each at the start of the offending name:
//! - unknown variable; unknown function; unknown operator function;
//! - wrong number of arguments in a call;
//! - a second `def` of a name (an `extern` followed by a `def`, or repeated
//!   `extern`s, are fine when the arities agree; otherwise the later one is
//!   a conflicting declaration);
//! - a parameter name repeated in one prototype.
//!
//! The expression walk is shared with the REPL session, which differs only
//! in how it looks functions up (see [`crate::ReplSession`]).

use crate::ast::{binary_symbol, unary_symbol, BinaryOp, Expr, ExprKind, Item, Program, Prototype};
use crate::diag::{Diagnostic, Span};
use crate::parser::{parse_program, parse_program_with, OperatorTable};
use std::collections::HashMap;

/// Parses and checks a whole file. On failure the diagnostics are sorted by
/// position; a syntax error stops parsing, so it comes alone.
pub fn parse_and_check(src: &str) -> Result<Program, Vec<Diagnostic>> {
    let program = parse_program(src).map_err(|diag| vec![diag])?;
    check_program(&program)?;
    Ok(program)
}

/// Checks a parsed file: every name resolves, every call has the right
/// number of arguments, no function is defined twice. Returns every error
/// found, sorted by position.
pub fn check_program(program: &Program) -> Result<(), Vec<Diagnostic>> {
    check_program_with(program, &|_| None)
}

/// [`check_program`] with the functions of earlier programs: `prior` gives
/// the arity and declaration of a name defined or declared before, and
/// whether it was defined (not only declared `extern`). See
/// [`ProgramContext`] for what may change.
pub(crate) fn check_program_with(
    program: &Program,
    prior: &dyn Fn(&str) -> Option<Prior>,
) -> Result<(), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut table: HashMap<&str, Declared> = HashMap::new();
    for item in &program.items {
        let (proto, is_def) = match item {
            Item::Def(func) => (&func.proto, true),
            Item::Extern(proto) => (proto, false),
            Item::Expr(_) => continue,
        };
        check_params(proto, &mut diags);
        match table.get_mut(proto.name.as_str()) {
            None if prior(&proto.name).is_some_and(|p| p.conflicts_with(proto, is_def)) => {
                if let Some(p) = prior(&proto.name) {
                    diags.push(conflicting_arity(proto, p.arity, p.span));
                }
            }
            None => {
                table.insert(
                    &proto.name,
                    Declared {
                        arity: proto.arity(),
                        span: proto.span,
                        defined: is_def,
                    },
                );
            }
            Some(prev) if is_def && prev.defined => diags.push(Diagnostic::new(
                proto.span,
                format!(
                    "redefinition of '{}' (first defined at {})",
                    proto.name, prev.span
                ),
            )),
            Some(prev) if prev.arity != proto.arity() => {
                diags.push(conflicting_arity(proto, prev.arity, prev.span));
            }
            Some(prev) => {
                if is_def {
                    prev.defined = true;
                    prev.span = proto.span;
                }
            }
        }
    }
    let lookup = |name: &str| {
        table
            .get(name)
            .map(|declared| declared.arity)
            .or_else(|| prior(name).map(|p| p.arity))
    };
    for item in &program.items {
        if let Item::Def(func) | Item::Expr(func) = item {
            let mut scope: Vec<&str> = func.proto.params.iter().map(|p| p.name.as_str()).collect();
            check_expr(&func.body, &mut scope, &lookup, &mut diags);
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        diags.sort_by_key(Diagnostic::span);
        Err(diags)
    }
}

/// What pass one learned about a function name.
struct Declared {
    arity: usize,
    span: Span,
    defined: bool,
}

/// The error for a declaration whose arity disagrees with an earlier one.
pub(crate) fn conflicting_arity(
    proto: &Prototype,
    prev_arity: usize,
    prev_span: Span,
) -> Diagnostic {
    Diagnostic::new(
        proto.span,
        format!(
            "conflicting declaration of '{}': {} parameter{} here, {} at {}",
            proto.name,
            proto.arity(),
            plural(proto.arity()),
            prev_arity,
            prev_span
        ),
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Reports parameter names repeated within one prototype.
pub(crate) fn check_params(proto: &Prototype, diags: &mut Vec<Diagnostic>) {
    for (i, param) in proto.params.iter().enumerate() {
        if proto.params[..i].iter().any(|p| p.name == param.name) {
            diags.push(Diagnostic::new(
                param.span,
                format!("duplicate parameter '{}' in '{}'", param.name, proto.name),
            ));
        }
    }
}

/// Checks one expression with `scope` holding the variables in scope
/// (innermost last) and `lookup` giving the arity of a known function.
pub(crate) fn check_expr<'a>(
    expr: &'a Expr,
    scope: &mut Vec<&'a str>,
    lookup: &dyn Fn(&str) -> Option<usize>,
    diags: &mut Vec<Diagnostic>,
) {
    match &expr.kind {
        ExprKind::Number(_) => {}
        ExprKind::Variable(name) => {
            if !scope.contains(&name.as_str()) {
                diags.push(Diagnostic::new(
                    expr.span,
                    format!("unknown variable '{name}'"),
                ));
            }
        }
        ExprKind::Call { callee, args } => {
            match lookup(&callee.name) {
                None => diags.push(Diagnostic::new(
                    callee.span,
                    format!("unknown function '{}'", callee.name),
                )),
                Some(arity) if arity != args.len() => diags.push(Diagnostic::new(
                    callee.span,
                    format!(
                        "'{}' takes {arity} argument{} but {} {} given",
                        callee.name,
                        plural(arity),
                        args.len(),
                        if args.len() == 1 { "was" } else { "were" }
                    ),
                )),
                Some(_) => {}
            }
            for arg in args {
                check_expr(arg, scope, lookup, diags);
            }
        }
        ExprKind::Unary { op, operand } => {
            check_operator(&unary_symbol(*op), 1, expr.span, lookup, diags);
            check_expr(operand, scope, lookup, diags);
        }
        ExprKind::Binary { .. } => {
            // Follow a chain's left spine with a loop: only right operands
            // recurse, so a chain of any length checks in constant stack.
            let mut node = expr;
            while let ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } = &node.kind
            {
                if let BinaryOp::User(c) = op {
                    check_operator(&binary_symbol(*c), 2, *op_span, lookup, diags);
                }
                check_expr(rhs, scope, lookup, diags);
                node = lhs;
            }
            check_expr(node, scope, lookup, diags);
        }
        ExprKind::Assign { target, value } => {
            if !scope.contains(&target.name.as_str()) {
                diags.push(Diagnostic::new(
                    target.span,
                    format!("unknown variable '{}'", target.name),
                ));
            }
            check_expr(value, scope, lookup, diags);
        }
        ExprKind::If {
            cond,
            then_branch,
            else_branch,
        } => {
            check_expr(cond, scope, lookup, diags);
            check_expr(then_branch, scope, lookup, diags);
            check_expr(else_branch, scope, lookup, diags);
        }
        ExprKind::For {
            var,
            start,
            end,
            step,
            body,
        } => {
            check_expr(start, scope, lookup, diags);
            scope.push(&var.name);
            check_expr(end, scope, lookup, diags);
            if let Some(step) = step {
                check_expr(step, scope, lookup, diags);
            }
            check_expr(body, scope, lookup, diags);
            scope.pop();
        }
        ExprKind::Var { bindings, body } => {
            for binding in bindings {
                if let Some(init) = &binding.init {
                    check_expr(init, scope, lookup, diags);
                }
                scope.push(&binding.name.name);
            }
            check_expr(body, scope, lookup, diags);
            scope.truncate(scope.len() - bindings.len());
        }
    }
}

/// Checks that the function behind an operator exists with `arity`
/// parameters (an `extern` of an operator could name a missing one).
fn check_operator(
    symbol: &str,
    arity: usize,
    span: Span,
    lookup: &dyn Fn(&str) -> Option<usize>,
    diags: &mut Vec<Diagnostic>,
) {
    match lookup(symbol) {
        Some(n) if n == arity => {}
        Some(n) => diags.push(Diagnostic::new(
            span,
            format!("operator function '{symbol}' takes {n} arguments, not {arity}"),
        )),
        None => diags.push(Diagnostic::new(
            span,
            format!("unknown operator function '{symbol}'"),
        )),
    }
}

/// What an earlier program said about a name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prior {
    arity: usize,
    span: Span,
    defined: bool,
}

impl Prior {
    /// Whether declaring `proto` (a definition if `is_def`) now conflicts.
    /// A new `extern` of a name only declared before may change its arity
    /// (external code does not care how earlier calls counted); a
    /// redefinition's arity is the driver's to judge (it knows what is
    /// compiled); anything else must keep the arity.
    fn conflicts_with(&self, proto: &Prototype, is_def: bool) -> bool {
        self.arity != proto.arity() && (is_def != self.defined)
    }
}

/// What earlier programs defined, for an embedding that evaluates one
/// source text after another (`KaleidoscopeJit::eval` in orc): their
/// operators and their functions (defined or `extern`, with arities).
///
/// Each text is checked as a file (functions visible text-wide, no name
/// defined twice in one text) that can also call what the earlier texts
/// defined or declared, and use their operators. A text may define again
/// what an earlier one defined (a redefinition: the driver refuses one
/// that changes the arity, as code compiled against the old one would
/// break), and declare `extern` again, with another arity, a name earlier
/// texts only declared. Defining a name earlier texts only declared, or
/// declaring one they defined, must keep its arity.
#[derive(Debug, Clone)]
pub struct ProgramContext {
    ops: OperatorTable,
    functions: HashMap<String, Prior>,
}

impl Default for ProgramContext {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgramContext {
    /// A context with only the built-in operators and no functions.
    pub fn new() -> Self {
        ProgramContext {
            ops: OperatorTable::new(),
            functions: HashMap::new(),
        }
    }

    /// The arity of a function defined or declared so far.
    pub fn function_arity(&self, name: &str) -> Option<usize> {
        self.functions.get(name).map(|p| p.arity)
    }

    /// Records a definition (`defined`) or an `extern` declaration: its
    /// function, and its operator if it declares one.
    pub fn declare(&mut self, proto: &Prototype, defined: bool) {
        let defined = defined || self.functions.get(&proto.name).is_some_and(|p| p.defined);
        let prior = Prior {
            arity: proto.arity(),
            span: proto.span,
            defined,
        };
        self.functions.insert(proto.name.clone(), prior);
        self.ops.define(proto);
    }

    /// Parses and checks `src` against what is known (see the type's docs).
    /// On success the text's functions and operators become known; on
    /// failure nothing changes.
    pub fn parse_and_check(&mut self, src: &str) -> Result<Program, Vec<Diagnostic>> {
        let mut ops = self.ops.clone();
        let program = parse_program_with(src, &mut ops).map_err(|diag| vec![diag])?;
        let functions = &self.functions;
        check_program_with(&program, &|name| functions.get(name).copied())?;
        self.ops = ops;
        for item in &program.items {
            match item {
                Item::Def(func) => self.declare(&func.proto, true),
                Item::Extern(proto) => self.declare(proto, false),
                Item::Expr(_) => {}
            }
        }
        Ok(program)
    }
}

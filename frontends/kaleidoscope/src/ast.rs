//! The abstract syntax tree of a Kaleidoscope program.
//!
//! The tree is plain owned data (`Send + Sync`, `Clone`), so one parsed
//! function can be lowered by tier 0 (Cranelift) on one thread and again by
//! tier 1 (LLVM) on a compile thread. A program's functions are shared
//! (`Arc`): a driver hands one to a compile unit, under whatever symbol name
//! it chooses, without copying the tree. Every node carries the [`Span`] of its
//! first token; names carry their own span so that diagnostics can point at
//! them. The parser bounds the nesting depth of every expression (see
//! [`crate::MAX_NESTING`]) except along the left spine of a binary chain
//! (`1 + 1 + ... + 1`), which every walk follows with a loop (dropping
//! too), so walks over a parsed tree cannot overflow the stack.
//!
//! `Display` prints expressions as S-expressions, e.g. `(+ 1 (* 2 x))`,
//! which the parser tests compare against.

use crate::diag::Span;
use std::fmt;
use std::sync::Arc;

/// The prefix of the symbol names given to top-level expressions: the `n`th
/// top-level expression (0-based, in source order) is `__anon_expr_n`.
/// Source identifiers cannot contain `_`, so these never clash.
pub const ANON_EXPR_PREFIX: &str = "__anon_expr_";

/// The symbol name of the `n`th top-level expression (`__anon_expr_n`).
pub fn anon_expr_name(n: usize) -> String {
    format!("{ANON_EXPR_PREFIX}{n}")
}

/// The symbol name of the user-defined unary operator `op` (`unary!` for `!`).
pub fn unary_symbol(op: char) -> String {
    format!("unary{op}")
}

/// The symbol name of the user-defined binary operator `op` (`binary:` for `:`).
pub fn binary_symbol(op: char) -> String {
    format!("binary{op}")
}

/// A name and where it appears.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it starts.
    pub span: Span,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`, floating-point addition.
    Add,
    /// `-`, floating-point subtraction.
    Sub,
    /// `*`, floating-point multiplication.
    Mul,
    /// `<`, unordered-less-than, yielding 1.0 or 0.0.
    Lt,
    /// A user-defined operator: a call of the function `binary<c>`.
    User(char),
}

impl BinaryOp {
    /// The operator character.
    pub fn as_char(self) -> char {
        match self {
            BinaryOp::Add => '+',
            BinaryOp::Sub => '-',
            BinaryOp::Mul => '*',
            BinaryOp::Lt => '<',
            BinaryOp::User(c) => c,
        }
    }
}

/// An expression node.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the expression is.
    pub kind: ExprKind,
    /// Where its first token starts.
    pub span: Span,
}

/// Dropping a tree takes its subtrees apart with a loop and an explicit
/// stack, so a chain of any length (`1 + 1 + ... + 1`, a left-deep tree)
/// is freed without recursion.
impl Drop for Expr {
    fn drop(&mut self) {
        let mut stack: Vec<Expr> = Vec::new();
        self.kind.take_children(&mut stack);
        while let Some(mut expr) = stack.pop() {
            expr.kind.take_children(&mut stack);
            // `expr` has no subtrees left: dropping it does not recurse.
        }
    }
}

impl ExprKind {
    /// Moves the subtrees out into `out`, leaving leaves behind.
    fn take_children(&mut self, out: &mut Vec<Expr>) {
        fn take(slot: &mut Expr, out: &mut Vec<Expr>) {
            if slot.kind.is_leaf() {
                return;
            }
            let leaf = Expr {
                kind: ExprKind::Number(0.0),
                span: slot.span,
            };
            out.push(std::mem::replace(slot, leaf));
        }
        match self {
            ExprKind::Number(_) | ExprKind::Variable(_) => {}
            ExprKind::Call { args, .. } => {
                for arg in args {
                    take(arg, out);
                }
            }
            ExprKind::Unary { operand, .. } => take(operand, out),
            ExprKind::Binary { lhs, rhs, .. } => {
                take(lhs, out);
                take(rhs, out);
            }
            ExprKind::Assign { value, .. } => take(value, out),
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                take(cond, out);
                take(then_branch, out);
                take(else_branch, out);
            }
            ExprKind::For {
                start,
                end,
                step,
                body,
                ..
            } => {
                take(start, out);
                take(end, out);
                if let Some(step) = step {
                    take(step, out);
                }
                take(body, out);
            }
            ExprKind::Var { bindings, body } => {
                for binding in bindings {
                    if let Some(init) = &mut binding.init {
                        take(init, out);
                    }
                }
                take(body, out);
            }
        }
    }

    fn is_leaf(&self) -> bool {
        matches!(self, ExprKind::Number(_) | ExprKind::Variable(_))
    }
}

/// A `name = init` entry of a `var ... in` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct VarBinding {
    /// The variable being introduced.
    pub name: Ident,
    /// The initializer; `None` means 0.0.
    pub init: Option<Expr>,
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A number literal.
    Number(f64),
    /// A use of a parameter or local variable.
    Variable(String),
    /// A call of a named function; `callee.span` is the name's position.
    Call {
        /// The function called.
        callee: Ident,
        /// The arguments, evaluated left to right.
        args: Vec<Expr>,
    },
    /// A user-defined unary operator: a call of `unary<op>`.
    Unary {
        /// The operator character.
        op: char,
        /// The operand.
        operand: Box<Expr>,
    },
    /// A binary operator other than `=`; the left side is evaluated first.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Where the operator character is.
        op_span: Span,
        /// The left operand.
        lhs: Box<Expr>,
        /// The right operand.
        rhs: Box<Expr>,
    },
    /// `target = value`: stores `value` in a variable and yields it.
    Assign {
        /// The variable assigned.
        target: Ident,
        /// The value stored.
        value: Box<Expr>,
    },
    /// `if cond then a else b`: `cond` is true when it is not equal to 0.0
    /// (ordered, so NaN is false).
    If {
        /// The condition.
        cond: Box<Expr>,
        /// The value when the condition holds.
        then_branch: Box<Expr>,
        /// The value otherwise.
        else_branch: Box<Expr>,
    },
    /// `for var = start, end[, step] in body`, chapter 7's loop: the body
    /// runs, then `end` is evaluated with the current value of `var`, then
    /// `var += step` (default 1.0); the loop repeats while `end` was not
    /// 0.0. The value of the loop is 0.0.
    For {
        /// The loop variable, in scope in `end`, `step` and `body`.
        var: Ident,
        /// The initial value, evaluated before `var` is in scope.
        start: Box<Expr>,
        /// The end condition.
        end: Box<Expr>,
        /// The increment; `None` means 1.0.
        step: Option<Box<Expr>>,
        /// The loop body; its value is discarded.
        body: Box<Expr>,
    },
    /// `var a = x, b in body`: each initializer is evaluated before its own
    /// variable comes into scope (it sees the earlier ones).
    Var {
        /// The variables, in order.
        bindings: Vec<VarBinding>,
        /// The body, whose value is the value of the expression.
        body: Box<Expr>,
    },
}

/// What kind of function a prototype declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrototypeKind {
    /// An ordinary named function.
    Function,
    /// A unary operator `unary<op>` with one parameter.
    Unary(char),
    /// A binary operator `binary<op>` with two parameters.
    Binary {
        /// The operator character.
        op: char,
        /// The precedence, 1..=100 (default 30).
        precedence: u32,
    },
}

/// A function's name and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Prototype {
    /// The symbol name: the identifier, `unary<c>` or `binary<c>`, or
    /// `__anon_expr_N` for a top-level expression.
    pub name: String,
    /// Where the name starts (for operators: the `unary`/`binary` keyword;
    /// for top-level expressions: the expression).
    pub span: Span,
    /// Ordinary function or operator.
    pub kind: PrototypeKind,
    /// The parameters, in order.
    pub params: Vec<Ident>,
}

impl Prototype {
    /// The number of parameters.
    pub fn arity(&self) -> usize {
        self.params.len()
    }
}

/// A function with a body: a `def` or a top-level expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Name and parameters.
    pub proto: Prototype,
    /// The body, whose value is returned.
    pub body: Expr,
}

/// One top-level item of a file or REPL input.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `def proto body`.
    Def(Arc<Function>),
    /// `extern proto`: a function defined elsewhere (the host, the C library
    /// or a later `def`).
    Extern(Prototype),
    /// A top-level expression, wrapped in a parameterless function named
    /// `__anon_expr_N`.
    Expr(Arc<Function>),
}

/// A whole parsed file: its items in source order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Program {
    /// The items, in source order.
    pub items: Vec<Item>,
}

impl Program {
    /// The `def`ined functions, in source order.
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        self.shared_functions().map(|func| &**func)
    }

    /// The `def`ined functions as shared handles, in source order (to keep
    /// one without copying it).
    pub fn shared_functions(&self) -> impl Iterator<Item = &Arc<Function>> {
        self.items.iter().filter_map(|item| match item {
            Item::Def(func) => Some(func),
            _ => None,
        })
    }

    /// The `extern` declarations, in source order.
    pub fn externs(&self) -> impl Iterator<Item = &Prototype> {
        self.items.iter().filter_map(|item| match item {
            Item::Extern(proto) => Some(proto),
            _ => None,
        })
    }

    /// The top-level expressions as anonymous functions, in source order.
    pub fn top_level_exprs(&self) -> impl Iterator<Item = &Function> {
        self.items.iter().filter_map(|item| match item {
            Item::Expr(func) => Some(&**func),
            _ => None,
        })
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Number(value) => write!(f, "{value}"),
            ExprKind::Variable(name) => f.write_str(name),
            ExprKind::Call { callee, args } => {
                write!(f, "(call {}", callee.name)?;
                for arg in args {
                    write!(f, " {arg}")?;
                }
                f.write_str(")")
            }
            ExprKind::Unary { op, operand } => write!(f, "(unary{op} {operand})"),
            ExprKind::Binary { .. } => {
                // A chain's left spine with a loop, as every walk does.
                let mut spine = Vec::new();
                let mut node = self;
                while let ExprKind::Binary { op, lhs, rhs, .. } = &node.kind {
                    spine.push((op.as_char(), rhs));
                    node = lhs;
                }
                for (op, _) in &spine {
                    write!(f, "({op} ")?;
                }
                write!(f, "{node}")?;
                for (_, rhs) in spine.iter().rev() {
                    write!(f, " {rhs})")?;
                }
                Ok(())
            }
            ExprKind::Assign { target, value } => write!(f, "(= {} {value})", target.name),
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => write!(f, "(if {cond} {then_branch} {else_branch})"),
            ExprKind::For {
                var,
                start,
                end,
                step,
                body,
            } => {
                write!(f, "(for {} {start} {end}", var.name)?;
                if let Some(step) = step {
                    write!(f, " {step}")?;
                }
                write!(f, " {body})")
            }
            ExprKind::Var { bindings, body } => {
                f.write_str("(var (")?;
                for (i, binding) in bindings.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    match &binding.init {
                        Some(init) => write!(f, "({} {init})", binding.name.name)?,
                        None => write!(f, "{}", binding.name.name)?,
                    }
                }
                write!(f, ") {body})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn ast_is_send_and_sync() {
        assert_send_sync::<Program>();
        assert_send_sync::<Function>();
        assert_send_sync::<Item>();
    }

    #[test]
    fn symbol_names() {
        assert_eq!(anon_expr_name(3), "__anon_expr_3");
        assert_eq!(unary_symbol('!'), "unary!");
        assert_eq!(binary_symbol(':'), "binary:");
        assert_eq!(BinaryOp::User('|').as_char(), '|');
        assert_eq!(BinaryOp::Lt.as_char(), '<');
    }

    #[test]
    fn program_accessors_keep_source_order() {
        let span = Span::new(1, 1);
        let proto = |name: &str| Prototype {
            name: name.into(),
            span,
            kind: PrototypeKind::Function,
            params: vec![],
        };
        let body = Expr {
            kind: ExprKind::Number(1.0),
            span,
        };
        let program = Program {
            items: vec![
                Item::Extern(proto("e")),
                Item::Def(Arc::new(Function {
                    proto: proto("f"),
                    body: body.clone(),
                })),
                Item::Expr(Arc::new(Function {
                    proto: proto("__anon_expr_0"),
                    body,
                })),
                Item::Def(Arc::new(Function {
                    proto: proto("g"),
                    body: Expr {
                        kind: ExprKind::Variable("x".into()),
                        span,
                    },
                })),
            ],
        };
        let names: Vec<_> = program.functions().map(|f| f.proto.name.as_str()).collect();
        assert_eq!(names, ["f", "g"]);
        assert_eq!(program.externs().count(), 1);
        assert_eq!(program.top_level_exprs().count(), 1);
    }
}

//! On-stack replacement (OSR) for adaptive tiering: how a tier-0 frame
//! stuck in a hot loop moves to tier-1 code without returning first.
//!
//! The JIT gives the tier-0 lowering one [`OsrSlot`] per `for` loop of a
//! function (loops are numbered in lowering order: a loop's number is taken
//! before its start expression is lowered). The tier-0 code reads the slot
//! at the top of every iteration. Once tier 1 publishes an entry there, the
//! frame calls it with the loop's *state* as `f64` arguments and returns
//! what it returns. The state is, in order:
//! 1. every binding in scope at the top of the loop body (parameters, `var`
//!    bindings, loop variables, this loop's own included, shadowed ones
//!    too, since they become visible again after the inner scope ends), in
//!    binding order;
//! 2. every operand already evaluated and waiting for the value of the
//!    expression that contains the loop (the left operand of a binary
//!    operator, earlier call arguments, a `for`'s end value while its step
//!    is evaluated), in evaluation order.
//!
//! The tier-1 entry for loop `n` is the whole function lowered again with a
//! different entry block: it stores the arguments into the variables' and
//! operands' stack slots and branches to the top of loop `n`'s body; the
//! code before the loop is unreachable and deleted by the optimizer.
//! [`osr_state_sizes`] is the one description of the state both lowerings
//! check themselves against.

use crate::ast::{Expr, ExprKind, Function};
use std::sync::atomic::AtomicU64;

/// One `for` loop's on-stack-replacement slot, shared between the tier-0
/// code of a function (which reads it on every iteration of that loop) and
/// the JIT that publishes a tier-1 entry in it. The JIT owns the slots and
/// must keep them alive, at a fixed address, as long as the tier-0 code can
/// run; the code finds loop `n`'s slot at `base + n * size_of::<OsrSlot>()`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct OsrSlot {
    /// 0, or the address of the tier-1 entry for this loop: an
    /// `extern "C" fn(f64, ...) -> f64` taking the loop's state (see the
    /// module docs) and returning the function's result.
    pub entry: AtomicU64,
    /// How many frames moved to the entry (bumped by the tier-0 code).
    pub transfers: AtomicU64,
}

/// The number of `for` loops in `func`: the number of [`OsrSlot`]s its
/// tier-0 code reads, and of on-stack-replacement entries it can have.
pub fn loop_count(func: &Function) -> usize {
    osr_state_sizes(func).len()
}

/// For each loop of `func`, in loop-number order, the number of `f64`s in
/// its state (see the module docs).
pub fn osr_state_sizes(func: &Function) -> Vec<usize> {
    fn walk(expr: &Expr, scope: usize, pending: usize, out: &mut Vec<usize>) {
        match &expr.kind {
            ExprKind::Number(_) | ExprKind::Variable(_) => {}
            ExprKind::Call { args, .. } => {
                for (i, arg) in args.iter().enumerate() {
                    walk(arg, scope, pending + i, out);
                }
            }
            ExprKind::Unary { operand, .. } => walk(operand, scope, pending, out),
            ExprKind::Binary { lhs, rhs, .. } => {
                walk(lhs, scope, pending, out);
                walk(rhs, scope, pending + 1, out);
            }
            ExprKind::Assign { value, .. } => walk(value, scope, pending, out),
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                walk(cond, scope, pending, out);
                walk(then_branch, scope, pending, out);
                walk(else_branch, scope, pending, out);
            }
            ExprKind::For {
                start,
                end,
                step,
                body,
                ..
            } => {
                let index = out.len();
                out.push(0);
                walk(start, scope, pending, out);
                out[index] = scope + 1 + pending;
                walk(body, scope + 1, pending, out);
                walk(end, scope + 1, pending, out);
                if let Some(step) = step {
                    walk(step, scope + 1, pending + 1, out);
                }
            }
            ExprKind::Var { bindings, body } => {
                for (i, binding) in bindings.iter().enumerate() {
                    if let Some(init) = &binding.init {
                        walk(init, scope + i, pending, out);
                    }
                }
                walk(body, scope + bindings.len(), pending, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&func.body, func.proto.arity(), 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_and_check;

    fn sizes(src: &str) -> Vec<usize> {
        let program = parse_and_check(src).expect("valid");
        let func = program.functions().last().expect("a function").clone();
        let loops = count_loops(&func.body);
        assert_eq!(loop_count(&func), loops);
        osr_state_sizes(&func)
    }

    /// Loops counted independently of the state walk.
    fn count_loops(expr: &Expr) -> usize {
        match &expr.kind {
            ExprKind::Number(_) | ExprKind::Variable(_) => 0,
            ExprKind::Call { args, .. } => args.iter().map(count_loops).sum(),
            ExprKind::Unary { operand, .. } => count_loops(operand),
            ExprKind::Binary { lhs, rhs, .. } => count_loops(lhs) + count_loops(rhs),
            ExprKind::Assign { value, .. } => count_loops(value),
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => count_loops(cond) + count_loops(then_branch) + count_loops(else_branch),
            ExprKind::For {
                start,
                end,
                step,
                body,
                ..
            } => {
                1 + count_loops(start)
                    + count_loops(end)
                    + step.as_deref().map_or(0, count_loops)
                    + count_loops(body)
            }
            ExprKind::Var { bindings, body } => {
                bindings
                    .iter()
                    .filter_map(|b| b.init.as_ref())
                    .map(count_loops)
                    .sum::<usize>()
                    + count_loops(body)
            }
        }
    }

    #[test]
    fn state_counts_bindings_then_pending_operands() {
        // x, i.
        assert_eq!(sizes("def f(x) for i = 0, i < x in x;"), [2]);
        // x, s, i; then the outer loop's j and the pending `s +`.
        assert_eq!(
            sizes("def f(x) var s = 1 in for i = 0, i < x in s = s + (for j = 0, j < i in 1);"),
            [3, 4 + 1]
        );
        // Numbered in lowering order: a loop in another loop's start comes
        // after it.
        assert_eq!(
            sizes("def f(x) for i = (for j = 0, j < 2 in 0), i < x in 0;"),
            [2, 2]
        );
        // A loop in a step sees the end value pending; call arguments
        // before it are pending too.
        assert_eq!(
            sizes("def g(a b) a; def f(x) for i = 0, i < x, g(x, for j = 0, j < 1 in 0) in 0;"),
            [2, 3 + 2]
        );
        assert!(sizes("def f(x) x + 1;").is_empty());
    }
}

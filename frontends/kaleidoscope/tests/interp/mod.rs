//! A reference tree-walking interpreter of checked programs, used by the
//! tests to compare the frontend's reading of each sample program (parse,
//! precedence, scoping, loop order) with its expected output before a JIT
//! exists. It implements the semantics the lowering documents: `<` is
//! unordered-less-than, truth is ordered `!= 0.0`, `for` runs body, end test,
//! then step. It has a fuel budget so that heavy programs stop early.

use orc_kaleidoscope::{
    binary_symbol, unary_symbol, BinaryOp, Expr, ExprKind, Function, Item, Program,
};
use std::collections::HashMap;

/// Why a run stopped early.
#[derive(Debug, PartialEq)]
pub(crate) enum Stop {
    /// The fuel budget ran out.
    OutOfFuel,
}

/// The output of running a program as `orc run --print-results` would.
pub(crate) struct Run {
    /// Everything written to stdout.
    pub(crate) stdout: String,
    /// Whether the run finished (false when the fuel ran out).
    pub(crate) finished: bool,
}

/// Runs `program`: top-level expressions in order, each followed by an
/// `Evaluated to %f` line.
pub(crate) fn run(program: &Program, fuel: u64) -> Run {
    let mut interp = Interp {
        funcs: program
            .functions()
            .map(|f| (f.proto.name.as_str(), f))
            .collect(),
        out: String::new(),
        fuel,
    };
    for item in &program.items {
        if let Item::Expr(func) = item {
            match interp.eval(&func.body, &mut Vec::new()) {
                Ok(value) => interp.out.push_str(&format!("Evaluated to {value:.6}\n")),
                Err(Stop::OutOfFuel) => {
                    return Run {
                        stdout: interp.out,
                        finished: false,
                    }
                }
            }
        }
    }
    Run {
        stdout: interp.out,
        finished: true,
    }
}

struct Interp<'p> {
    funcs: HashMap<&'p str, &'p Function>,
    out: String,
    fuel: u64,
}

fn truth(x: f64) -> bool {
    // fcmp one x, 0.0: ordered and not equal.
    !x.is_nan() && x != 0.0
}

impl<'p> Interp<'p> {
    fn call(&mut self, name: &str, args: &[f64]) -> Result<f64, Stop> {
        if let Some(func) = self.funcs.get(name).copied() {
            let mut env: Vec<(&'p str, f64)> = func
                .proto
                .params
                .iter()
                .map(|p| p.name.as_str())
                .zip(args.iter().copied())
                .collect();
            return self.eval(&func.body, &mut env);
        }
        Ok(match (name, args) {
            ("printd", [x]) => {
                self.out.push_str(&format!("{x:.6}\n"));
                0.0
            }
            ("putchard", [x]) => {
                self.out.push(char::from(*x as i64 as u8));
                0.0
            }
            ("sin", [x]) => x.sin(),
            ("cos", [x]) => x.cos(),
            ("sqrt", [x]) => x.sqrt(),
            ("fabs", [x]) => x.abs(),
            ("floor", [x]) => x.floor(),
            ("pow", [x, y]) => x.powf(*y),
            _ => panic!("interpreter: no function {name}/{}", args.len()),
        })
    }

    fn slot(env: &[(&'p str, f64)], name: &str) -> usize {
        env.iter()
            .rposition(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("interpreter: unbound {name}"))
    }

    fn eval(&mut self, expr: &'p Expr, env: &mut Vec<(&'p str, f64)>) -> Result<f64, Stop> {
        self.fuel = self.fuel.checked_sub(1).ok_or(Stop::OutOfFuel)?;
        Ok(match &expr.kind {
            ExprKind::Number(value) => *value,
            ExprKind::Variable(name) => env[Self::slot(env, name)].1,
            ExprKind::Call { callee, args } => {
                let mut values = Vec::with_capacity(args.len());
                for arg in args {
                    values.push(self.eval(arg, env)?);
                }
                self.call(&callee.name, &values)?
            }
            ExprKind::Unary { op, operand } => {
                let value = self.eval(operand, env)?;
                self.call(&unary_symbol(*op), &[value])?
            }
            ExprKind::Binary { op, lhs, rhs, .. } => {
                let l = self.eval(lhs, env)?;
                let r = self.eval(rhs, env)?;
                match op {
                    BinaryOp::Add => l + r,
                    BinaryOp::Sub => l - r,
                    BinaryOp::Mul => l * r,
                    BinaryOp::Lt => {
                        if l < r || l.is_nan() || r.is_nan() {
                            1.0
                        } else {
                            0.0
                        }
                    }
                    BinaryOp::User(c) => self.call(&binary_symbol(*c), &[l, r])?,
                }
            }
            ExprKind::Assign { target, value } => {
                let value = self.eval(value, env)?;
                let slot = Self::slot(env, &target.name);
                env[slot].1 = value;
                value
            }
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                if truth(self.eval(cond, env)?) {
                    self.eval(then_branch, env)?
                } else {
                    self.eval(else_branch, env)?
                }
            }
            ExprKind::For {
                var,
                start,
                end,
                step,
                body,
            } => {
                let start = self.eval(start, env)?;
                env.push((&var.name, start));
                let slot = env.len() - 1;
                loop {
                    self.eval(body, env)?;
                    let again = self.eval(end, env)?;
                    let step = match step {
                        Some(step) => self.eval(step, env)?,
                        None => 1.0,
                    };
                    env[slot].1 += step;
                    if !truth(again) {
                        break;
                    }
                }
                env.pop();
                0.0
            }
            ExprKind::Var { bindings, body } => {
                for binding in bindings {
                    let value = match &binding.init {
                        Some(init) => self.eval(init, env)?,
                        None => 0.0,
                    };
                    env.push((&binding.name.name, value));
                }
                let value = self.eval(body, env)?;
                env.truncate(env.len() - bindings.len());
                value
            }
        })
    }
}

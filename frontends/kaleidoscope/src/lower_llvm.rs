//! Lowering to LLVM IR (tier 1), in the style of chapter 7 of LLVM's
//! Kaleidoscope tutorial: every variable is an `alloca` in the entry block,
//! loaded and stored where used; the optimizer's `mem2reg`/SROA (part of
//! `default<O2>`) turns them into SSA values.
//!
//! The conventions are exactly those of the tier-0 lowering (see
//! `lower_clif.rs`), so both tiers compute bit-identical results:
//! - Every value is a `double`; a function takes `arity` doubles and returns
//!   one, in the C calling convention, defined under its prototype name with
//!   external linkage (the driver renames the prototype, e.g. to `f$t1`).
//! - Every call goes by symbol name to an external declaration, including
//!   calls to the host (`putchard`, `printd`) and to user operators
//!   (`unary<c>`, `binary<c>`).
//! - `<` is `fcmp ult` turned into 1.0/0.0 (`uitofp`); `if` and the `for`
//!   end test are `fcmp one x, 0.0`; `for` runs the body, then the end test
//!   (seeing the current value), then the step (default 1.0), and yields
//!   0.0; a `var` initializer is evaluated before its variable is in scope;
//!   operands and arguments are evaluated left to right.
//! - No fast-math flag is ever set and every function carries
//!   `"unsafe-fp-math"="false"` (and the other FP-relaxation attributes off),
//!   so neither the optimizer nor the backend reassociates or contracts
//!   `a * b + c` into a fused multiply-add.
//!
//! Lowering accepts any AST: an unknown variable or a call whose arity
//! disagrees with an earlier declaration of the same name in the module is
//! an [`LlvmLowerError`], never a panic.

use std::sync::Arc;

use orc_core::SymbolFlags;
use orc_llvm::inkwell::builder::{Builder, BuilderError};
use orc_llvm::inkwell::context::Context;
use orc_llvm::inkwell::module::{Linkage, Module};
use orc_llvm::inkwell::types::{BasicMetadataTypeEnum, FloatType};
use orc_llvm::inkwell::values::{BasicMetadataValueEnum, FloatValue, FunctionValue, PointerValue};
use orc_llvm::inkwell::{attributes::AttributeLoc, FloatPredicate};
use orc_llvm::LlvmModule;

use crate::ast::{binary_symbol, unary_symbol, BinaryOp, Expr, ExprKind, Function};
use crate::diag::Span;

/// Function attributes that keep floating point strict (the defaults, made
/// explicit so no later setting can relax them).
const STRICT_FP_ATTRIBUTES: [(&str, &str); 5] = [
    ("unsafe-fp-math", "false"),
    ("no-infs-fp-math", "false"),
    ("no-nans-fp-math", "false"),
    ("no-signed-zeros-fp-math", "false"),
    ("approx-func-fp-math", "false"),
];

/// A failure to lower to LLVM IR.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LlvmLowerError {
    /// The AST names a variable that is not in scope (only possible for an
    /// AST that did not pass [`crate::check_program`]).
    #[error("{span}: unknown variable '{name}' in function '{function}'")]
    UnknownVariable {
        /// The function being lowered.
        function: String,
        /// The variable.
        name: String,
        /// Where it is used.
        span: Span,
    },
    /// A name is used with an arity other than the one it was declared with
    /// in the same module.
    #[error(
        "function '{callee}' is used with {given} arguments in '{function}', but takes {expected}"
    )]
    ArityMismatch {
        /// The function being lowered.
        function: String,
        /// The name called or defined.
        callee: String,
        /// Its arity in the module.
        expected: usize,
        /// The arity of this use.
        given: usize,
    },
    /// The module already defines a function of this name.
    #[error("function '{function}' is defined twice in one module")]
    Redefinition {
        /// The function.
        function: String,
    },
    /// LLVM's IR builder refused an instruction.
    #[error("cannot build IR for function '{function}': {message}")]
    Builder {
        /// The function being lowered.
        function: String,
        /// The builder's message.
        message: String,
    },
}

/// Kaleidoscope functions to compile as one LLVM module: the producer the
/// tier-1 layer (`orc_llvm::LlvmLayer`) takes. Built from the `Send` AST; the
/// module itself is created on the compile thread.
#[derive(Debug, Clone)]
pub struct KaleidoscopeLlvmModule {
    name: String,
    /// Each function with the symbol it is defined under.
    functions: Vec<(String, Arc<Function>)>,
}

impl KaleidoscopeLlvmModule {
    /// A module called `name` defining `functions` under their prototype
    /// names.
    pub fn new(name: impl Into<String>, functions: Vec<Function>) -> Box<Self> {
        let functions = functions
            .into_iter()
            .map(|f| (f.proto.name.clone(), Arc::new(f)))
            .collect();
        Self::shared(name, functions)
    }

    /// A module called `name` defining each shared function under the
    /// symbol paired with it (e.g. `f$t1`), without copying the trees.
    pub fn shared(name: impl Into<String>, functions: Vec<(String, Arc<Function>)>) -> Box<Self> {
        Box::new(KaleidoscopeLlvmModule {
            name: name.into(),
            functions,
        })
    }
}

impl LlvmModule for KaleidoscopeLlvmModule {
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.functions
            .iter()
            .map(|(symbol, _)| {
                (
                    symbol.clone(),
                    SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
                )
            })
            .collect()
    }

    fn build<'ctx>(self: Box<Self>, context: &'ctx Context) -> Result<Module<'ctx>, String> {
        let module = context.create_module(&self.name);
        for (symbol, func) in &self.functions {
            lower_function_llvm_as(context, &module, func, symbol).map_err(|e| e.to_string())?;
        }
        Ok(module)
    }
}

/// A new module called `name` in `context` defining every function of
/// `functions`, in order.
pub fn lower_functions_llvm<'ctx>(
    context: &'ctx Context,
    name: &str,
    functions: &[Function],
) -> Result<Module<'ctx>, LlvmLowerError> {
    let module = context.create_module(name);
    for func in functions {
        lower_function_llvm(context, &module, func)?;
    }
    Ok(module)
}

/// Defines `func` in `module` under its prototype name (external linkage,
/// C calling convention), declaring every callee.
pub fn lower_function_llvm<'ctx>(
    context: &'ctx Context,
    module: &Module<'ctx>,
    func: &Function,
) -> Result<FunctionValue<'ctx>, LlvmLowerError> {
    lower_function_llvm_as(context, module, func, &func.proto.name)
}

/// Like [`lower_function_llvm`], defining the function under `symbol`
/// (a driver's body symbol such as `f$t1`); calls in the body still name
/// their callees as written.
pub fn lower_function_llvm_as<'ctx>(
    context: &'ctx Context,
    module: &Module<'ctx>,
    func: &Function,
    symbol: &str,
) -> Result<FunctionValue<'ctx>, LlvmLowerError> {
    let name = symbol;
    let f64t = context.f64_type();
    let function = match module.get_function(name) {
        Some(existing) if existing.count_basic_blocks() > 0 => {
            return Err(LlvmLowerError::Redefinition {
                function: name.to_owned(),
            })
        }
        Some(existing) => {
            let expected = existing.count_params() as usize;
            if expected != func.proto.arity() {
                return Err(LlvmLowerError::ArityMismatch {
                    function: name.to_owned(),
                    callee: name.to_owned(),
                    expected,
                    given: func.proto.arity(),
                });
            }
            existing
        }
        None => module.add_function(name, fn_type(f64t, func.proto.arity()), None),
    };
    function.set_linkage(Linkage::External);
    for (key, value) in STRICT_FP_ATTRIBUTES {
        let attr = context.create_string_attribute(key, value);
        function.add_attribute(AttributeLoc::Function, attr);
    }
    let entry = context.append_basic_block(function, "entry");
    let builder = context.create_builder();
    builder.position_at_end(entry);
    let mut lowerer = FnLowerer {
        context,
        module,
        builder,
        function,
        f64t,
        scope: Vec::new(),
    };
    lowerer.lower_body(func).map_err(|err| err.attach(name))?;
    Ok(function)
}

fn fn_type(f64t: FloatType<'_>, arity: usize) -> orc_llvm::inkwell::types::FunctionType<'_> {
    let params: Vec<BasicMetadataTypeEnum> = vec![f64t.into(); arity];
    f64t.fn_type(&params, false)
}

/// Errors inside one body, before the function name is attached.
enum BodyError {
    Builder(BuilderError),
    UnknownVariable {
        name: String,
        span: Span,
    },
    Arity {
        callee: String,
        expected: usize,
        given: usize,
    },
}

impl BodyError {
    fn attach(self, function: &str) -> LlvmLowerError {
        let function = function.to_owned();
        match self {
            BodyError::Builder(e) => LlvmLowerError::Builder {
                function,
                message: e.to_string(),
            },
            BodyError::UnknownVariable { name, span } => LlvmLowerError::UnknownVariable {
                function,
                name,
                span,
            },
            BodyError::Arity {
                callee,
                expected,
                given,
            } => LlvmLowerError::ArityMismatch {
                function,
                callee,
                expected,
                given,
            },
        }
    }
}

impl From<BuilderError> for BodyError {
    fn from(err: BuilderError) -> Self {
        BodyError::Builder(err)
    }
}

type BResult<T> = Result<T, BodyError>;

/// The state of lowering one function body.
struct FnLowerer<'a, 'ctx> {
    context: &'ctx Context,
    module: &'a Module<'ctx>,
    builder: Builder<'ctx>,
    function: FunctionValue<'ctx>,
    f64t: FloatType<'ctx>,
    /// Variables in scope (their stack slots), innermost last.
    scope: Vec<(&'a str, PointerValue<'ctx>)>,
}

impl<'a, 'ctx> FnLowerer<'a, 'ctx> {
    fn lower_body(&mut self, func: &'a Function) -> BResult<()> {
        for (i, param) in func.proto.params.iter().enumerate() {
            let value = self
                .function
                .get_nth_param(i as u32)
                .map(|p| p.into_float_value())
                .unwrap_or_else(|| self.f64(0.0));
            value.set_name(&param.name);
            self.bind(&param.name, value)?;
        }
        let result = self.lower_expr(&func.body)?;
        self.builder.build_return(Some(&result))?;
        Ok(())
    }

    /// A stack slot in the entry block (chapter 7's `CreateEntryBlockAlloca`),
    /// so `mem2reg` can promote it.
    fn entry_alloca(&self, name: &str) -> BResult<PointerValue<'ctx>> {
        let entry_builder = self.context.create_builder();
        if let Some(entry) = self.function.get_first_basic_block() {
            match entry.get_first_instruction() {
                Some(first) => entry_builder.position_before(&first),
                None => entry_builder.position_at_end(entry),
            }
        }
        Ok(entry_builder.build_alloca(self.f64t, name)?)
    }

    /// A new variable `name` holding `value`, innermost in scope.
    fn bind(&mut self, name: &'a str, value: FloatValue<'ctx>) -> BResult<PointerValue<'ctx>> {
        let slot = self.entry_alloca(name)?;
        self.builder.build_store(slot, value)?;
        self.scope.push((name, slot));
        Ok(slot)
    }

    fn lookup(&self, name: &str, span: Span) -> BResult<PointerValue<'ctx>> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|&(_, slot)| slot)
            .ok_or_else(|| BodyError::UnknownVariable {
                name: name.to_owned(),
                span,
            })
    }

    fn f64(&self, value: f64) -> FloatValue<'ctx> {
        self.f64t.const_float(value)
    }

    fn load(&self, slot: PointerValue<'ctx>, name: &str) -> BResult<FloatValue<'ctx>> {
        Ok(self
            .builder
            .build_load(self.f64t, slot, name)?
            .into_float_value())
    }

    /// `x != 0.0`, ordered: the truth test of `if` and `for`.
    fn is_true(
        &self,
        value: FloatValue<'ctx>,
        name: &str,
    ) -> BResult<orc_llvm::inkwell::values::IntValue<'ctx>> {
        Ok(self
            .builder
            .build_float_compare(FloatPredicate::ONE, value, self.f64(0.0), name)?)
    }

    fn callee(&self, name: &str, arity: usize) -> BResult<FunctionValue<'ctx>> {
        match self.module.get_function(name) {
            Some(existing) => {
                let expected = existing.count_params() as usize;
                if expected != arity {
                    return Err(BodyError::Arity {
                        callee: name.to_owned(),
                        expected,
                        given: arity,
                    });
                }
                Ok(existing)
            }
            None => Ok(self.module.add_function(
                name,
                fn_type(self.f64t, arity),
                Some(Linkage::External),
            )),
        }
    }

    fn call(&mut self, name: &str, args: &[FloatValue<'ctx>]) -> BResult<FloatValue<'ctx>> {
        let callee = self.callee(name, args.len())?;
        let args: Vec<BasicMetadataValueEnum> = args.iter().map(|&a| a.into()).collect();
        let call = self.builder.build_call(callee, &args, "calltmp")?;
        // Every Kaleidoscope function returns a double.
        Ok(call
            .try_as_basic_value()
            .basic()
            .map(|v| v.into_float_value())
            .unwrap_or_else(|| self.f64(0.0)))
    }

    fn lower_expr(&mut self, expr: &'a Expr) -> BResult<FloatValue<'ctx>> {
        match &expr.kind {
            ExprKind::Number(value) => Ok(self.f64(*value)),
            ExprKind::Variable(name) => {
                let slot = self.lookup(name, expr.span)?;
                self.load(slot, name)
            }
            ExprKind::Call { callee, args } => {
                let mut values = Vec::with_capacity(args.len());
                for arg in args {
                    values.push(self.lower_expr(arg)?);
                }
                self.call(&callee.name, &values)
            }
            ExprKind::Unary { op, operand } => {
                let value = self.lower_expr(operand)?;
                self.call(&unary_symbol(*op), &[value])
            }
            ExprKind::Binary { op, lhs, rhs, .. } => {
                let l = self.lower_expr(lhs)?;
                let r = self.lower_expr(rhs)?;
                let b = &self.builder;
                Ok(match op {
                    BinaryOp::Add => b.build_float_add(l, r, "addtmp")?,
                    BinaryOp::Sub => b.build_float_sub(l, r, "subtmp")?,
                    BinaryOp::Mul => b.build_float_mul(l, r, "multmp")?,
                    BinaryOp::Lt => {
                        let cmp = b.build_float_compare(FloatPredicate::ULT, l, r, "cmptmp")?;
                        b.build_unsigned_int_to_float(cmp, self.f64t, "booltmp")?
                    }
                    BinaryOp::User(c) => self.call(&binary_symbol(*c), &[l, r])?,
                })
            }
            ExprKind::Assign { target, value } => {
                let value = self.lower_expr(value)?;
                let slot = self.lookup(&target.name, target.span)?;
                self.builder.build_store(slot, value)?;
                Ok(value)
            }
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                let cond = self.lower_expr(cond)?;
                let cond = self.is_true(cond, "ifcond")?;
                let then_block = self.context.append_basic_block(self.function, "then");
                let else_block = self.context.append_basic_block(self.function, "else");
                let merge_block = self.context.append_basic_block(self.function, "ifcont");
                self.builder
                    .build_conditional_branch(cond, then_block, else_block)?;

                self.builder.position_at_end(then_block);
                let then_value = self.lower_expr(then_branch)?;
                self.builder.build_unconditional_branch(merge_block)?;
                // Lowering the branch may have moved us to another block.
                let then_end = self.current_block(then_block);

                self.builder.position_at_end(else_block);
                let else_value = self.lower_expr(else_branch)?;
                self.builder.build_unconditional_branch(merge_block)?;
                let else_end = self.current_block(else_block);

                self.builder.position_at_end(merge_block);
                let phi = self.builder.build_phi(self.f64t, "iftmp")?;
                phi.add_incoming(&[(&then_value, then_end), (&else_value, else_end)]);
                Ok(phi.as_basic_value().into_float_value())
            }
            ExprKind::For {
                var,
                start,
                end,
                step,
                body,
            } => {
                let start = self.lower_expr(start)?;
                let slot = self.bind(&var.name, start)?;
                let loop_block = self.context.append_basic_block(self.function, "loop");
                let after_block = self.context.append_basic_block(self.function, "afterloop");
                self.builder.build_unconditional_branch(loop_block)?;

                self.builder.position_at_end(loop_block);
                self.lower_expr(body)?;
                let end = self.lower_expr(end)?;
                let step = match step {
                    Some(step) => self.lower_expr(step)?,
                    None => self.f64(1.0),
                };
                let current = self.load(slot, &var.name)?;
                let next = self.builder.build_float_add(current, step, "nextvar")?;
                self.builder.build_store(slot, next)?;
                let again = self.is_true(end, "loopcond")?;
                self.builder
                    .build_conditional_branch(again, loop_block, after_block)?;

                self.builder.position_at_end(after_block);
                self.scope.pop();
                Ok(self.f64(0.0))
            }
            ExprKind::Var { bindings, body } => {
                for binding in bindings {
                    let value = match &binding.init {
                        Some(init) => self.lower_expr(init)?,
                        None => self.f64(0.0),
                    };
                    self.bind(&binding.name.name, value)?;
                }
                let value = self.lower_expr(body)?;
                self.scope.truncate(self.scope.len() - bindings.len());
                Ok(value)
            }
        }
    }

    /// The block the builder is in (after lowering a nested expression),
    /// `fallback` if it has none.
    fn current_block(
        &self,
        fallback: orc_llvm::inkwell::basic_block::BasicBlock<'ctx>,
    ) -> orc_llvm::inkwell::basic_block::BasicBlock<'ctx> {
        self.builder.get_insert_block().unwrap_or(fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_and_check, parse_program};

    fn lower(src: &str) -> String {
        let program = parse_and_check(src).expect("a valid program");
        let funcs: Vec<Function> = program.functions().cloned().collect();
        let context = Context::create();
        let module = lower_functions_llvm(&context, "t", &funcs).expect("lowers");
        module.verify().expect("verifies");
        module.print_to_string().to_string()
    }

    #[test]
    fn conventions_match_tier_zero() {
        let ir = lower("def f(a b) if a < b then a else b; def g(x) for i = 0, i < x in f(i, x);");
        assert!(ir.contains("fcmp ult double"), "{ir}");
        assert!(ir.contains("uitofp i1"), "{ir}");
        assert!(ir.contains("fcmp one double"), "{ir}");
        assert!(
            ir.contains("define double @f(double %a, double %b)"),
            "{ir}"
        );
        assert!(ir.contains("\"unsafe-fp-math\"=\"false\""), "{ir}");
        assert!(!ir.contains("fast") && !ir.contains("contract"), "{ir}");
        // Chapter 7: variables live in entry-block allocas until mem2reg.
        assert!(ir.contains("alloca double"), "{ir}");
    }

    #[test]
    fn operators_and_host_calls_are_external_declarations() {
        let ir = lower("extern putchard(c); def unary!(v) 0 - v; def binary| 5 (a b) a + b; def h(x) putchard(!x | x);");
        assert!(ir.contains("declare double @putchard(double)"), "{ir}");
        assert!(ir.contains("call double @\"unary!\""), "{ir}");
        assert!(ir.contains("call double @\"binary|\""), "{ir}");
    }

    #[test]
    fn an_unknown_variable_is_an_error() {
        let program = parse_program("def f(x) y;").expect("parses");
        let funcs: Vec<Function> = program.functions().cloned().collect();
        let context = Context::create();
        let err = lower_functions_llvm(&context, "t", &funcs).unwrap_err();
        assert!(
            matches!(&err, LlvmLowerError::UnknownVariable { name, .. } if name == "y"),
            "{err}"
        );
    }

    #[test]
    fn a_function_defined_twice_in_one_module_is_an_error() {
        let program = parse_program("def f(x) x; def f(x) x + 1;").expect("parses");
        let funcs: Vec<Function> = program.functions().cloned().collect();
        let context = Context::create();
        let err = lower_functions_llvm(&context, "t", &funcs).unwrap_err();
        assert_eq!(
            err,
            LlvmLowerError::Redefinition {
                function: "f".into()
            }
        );
    }

    #[test]
    fn the_producer_names_its_symbols() {
        let program = parse_and_check("def f(x) x; def g(x) f(x);").expect("valid");
        let module = KaleidoscopeLlvmModule::new("m", program.functions().cloned().collect());
        let names: Vec<String> = module.symbols().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["f", "g"]);
        assert_eq!(module.name(), "m");
    }
}

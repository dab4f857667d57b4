//! Lowering to Cranelift IR (tier 0), against any `cranelift_module::Module`.
//!
//! Conventions (the tier-1 lowering must keep the same ones):
//! - Every function takes its parameters as `f64` and returns one `f64`, in
//!   the module's default calling convention (`Module::make_signature`).
//! - A function is declared under its source name with `Linkage::Export`;
//!   operators are `unary<c>` / `binary<c>`; the `n`th top-level expression
//!   of a file is `__anon_expr_n`, with no parameters.
//! - Every call, to a user function or to the host, goes by symbol name:
//!   `declare_function(name, Linkage::Import, sig)` then
//!   `declare_func_in_func`; no address is ever baked in. Host functions
//!   (`putchard`, `printd`, C math) are such imports.
//! - Variables are cranelift-frontend `Variable`s, one per binding, so
//!   shadowing and assignment need no stack slots.
//! - `<` is `fcmp ult` selected to 1.0/0.0; `if` and the `for` end test are
//!   `fcmp one x, 0.0` (so NaN is false), except that a condition that is
//!   itself a built-in `<` branches on its `fcmp ult` directly (the same
//!   truth); `for` runs the body, then the end
//!   test (with the current loop value), then the step (default 1.0), and
//!   yields 0.0; operands and arguments are evaluated left to right. (The
//!   tutorial's C++ evaluates the step expression just before the end test;
//!   the two orders differ only when both have side effects. We follow the
//!   project's issue text: end test, then step.)
//!
//!
//! Lowering accepts any AST, checked or not: an unknown variable is a
//! [`LowerError`], never a panic. Unknown functions are the linker's
//! business (they are just imports).

use crate::ast::{
    binary_symbol, unary_symbol, BinaryOp, Expr, ExprKind, Function, Item, Program, VarBinding,
};
use crate::diag::Span;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{
    self, types, AbiParam, BlockArg, FuncRef, InstBuilder, Signature, UserExternalName,
    UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::{FuncId, Linkage, Module, ModuleError};
use std::collections::HashMap;

/// A lowering failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LowerError {
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
    /// The module rejected a declaration or definition (for example an
    /// arity that disagrees with an earlier declaration of the same name).
    #[error("cannot lower function '{function}'")]
    Module {
        /// The function being lowered.
        function: String,
        /// The module's error.
        #[source]
        source: Box<ModuleError>,
    },
}

/// A function built into a fresh `Context` and declared in the module, but
/// not yet defined (compiled) there.
pub struct LoweredFunction {
    /// The function's id in the module.
    pub id: FuncId,
    /// The function's symbol name.
    pub name: String,
    /// The context holding the built function; pass it to
    /// `Module::define_function`.
    pub ctx: Context,
}

impl LoweredFunction {
    /// The function's CLIF text (for `--dump clif`).
    pub fn clif(&self) -> String {
        self.ctx.func.display().to_string()
    }
}

/// What [`lower_program`] should keep besides the compiled code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LowerOptions {
    /// Keep each function's CLIF text in [`LoweredSymbol::clif`].
    pub capture_clif: bool,
}

/// One function [`lower_program`] defined in the module.
#[derive(Debug, Clone, PartialEq)]
pub struct LoweredSymbol {
    /// The symbol name.
    pub name: String,
    /// The function's id in the module.
    pub id: FuncId,
    /// Whether this is a top-level expression (`__anon_expr_N`).
    pub is_top_level: bool,
    /// The CLIF text, if [`LowerOptions::capture_clif`] was set.
    pub clif: Option<String>,
}

/// The signature of a Kaleidoscope function of `arity` parameters in
/// `module`: `arity` × `f64` -> `f64`, default calling convention.
pub fn signature<M: Module + ?Sized>(module: &M, arity: usize) -> Signature {
    let mut sig = module.make_signature();
    sig.params
        .extend(std::iter::repeat_n(AbiParam::new(types::F64), arity));
    sig.returns.push(AbiParam::new(types::F64));
    sig
}

/// Declares `func` (Export) and builds its body into a fresh `Context`,
/// declaring every callee as an import. The function is not compiled yet;
/// see [`lower_function`].
pub fn build_function<M: Module + ?Sized>(
    module: &mut M,
    func: &Function,
) -> Result<LoweredFunction, LowerError> {
    build_function_as(module, func, &func.proto.name)
}

/// Like [`build_function`], but declares the function under `symbol`
/// instead of its prototype name (a driver's body symbol such as `f$t0`);
/// calls in the body still name their callees as written.
pub fn build_function_as<M: Module + ?Sized>(
    module: &mut M,
    func: &Function,
    symbol: &str,
) -> Result<LoweredFunction, LowerError> {
    let name = symbol;
    let module_err = |source| LowerError::Module {
        function: name.to_owned(),
        source: Box::new(source),
    };
    let sig = signature(module, func.proto.arity());
    let id = module
        .declare_function(name, Linkage::Export, &sig)
        .map_err(module_err)?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let frontend = module.isa().frontend_config();
    let mut target = ModuleTarget { module };
    build_body(&mut target, &mut ctx.func, func, name, frontend)?;
    Ok(LoweredFunction {
        id,
        name: name.to_owned(),
        ctx,
    })
}

/// Builds `func` as a standalone Cranelift function in the System V
/// convention, for a JIT that takes functions as CLIF (the tiered layer):
/// each call names its callee (a Kaleidoscope function, an operator or a
/// host function) by `names(callee)`. No module is involved and nothing is
/// compiled.
pub fn build_standalone(
    func: &Function,
    names: &mut dyn FnMut(&str) -> UserExternalName,
) -> Result<ir::Function, LowerError> {
    let mut target = NameTarget { names };
    let mut out = ir::Function::new();
    out.signature = target.signature(func.proto.arity());
    let frontend = TargetFrontendConfig {
        default_call_conv: CallConv::SystemV,
        pointer_width: target_lexicon::PointerWidth::U64,
        page_size_align_log2: 12,
    };
    build_body(&mut target, &mut out, func, &func.proto.name, frontend)?;
    Ok(out)
}

/// Lowers `func`'s body into `out` (whose signature is set), calling
/// through `target`.
fn build_body(
    target: &mut dyn CallTarget,
    out: &mut ir::Function,
    func: &Function,
    name: &str,
    frontend: TargetFrontendConfig,
) -> Result<(), LowerError> {
    let module_err = |source| LowerError::Module {
        function: name.to_owned(),
        source: Box::new(source),
    };
    let mut fb_ctx = FunctionBuilderContext::new();
    let builder = FunctionBuilder::new(out, &mut fb_ctx);
    let mut lowerer = FnLowerer {
        target,
        builder,
        scope: Vec::new(),
        callees: HashMap::new(),
    };
    lowerer.lower_body(func).map_err(|err| match *err {
        BodyError::Module(source) => module_err(source),
        BodyError::UnknownVariable { name: var, span } => LowerError::UnknownVariable {
            function: name.to_owned(),
            name: var,
            span,
        },
    })?;
    lowerer.builder.finalize(frontend);
    Ok(())
}

/// Where a lowered function's calls go: a module's declarations, or
/// names a JIT gives.
trait CallTarget {
    /// The signature of a function of `arity` parameters.
    fn signature(&self, arity: usize) -> Signature;
    /// Imports callee `name` of signature `sig` into `func`.
    // The error type is the `Module` trait's, passed on as is.
    #[allow(clippy::result_large_err)]
    fn declare_callee(
        &mut self,
        func: &mut ir::Function,
        name: &str,
        sig: &Signature,
    ) -> Result<FuncRef, ModuleError>;
}

struct ModuleTarget<'m, M: Module + ?Sized> {
    module: &'m mut M,
}

impl<M: Module + ?Sized> CallTarget for ModuleTarget<'_, M> {
    fn signature(&self, arity: usize) -> Signature {
        signature(&*self.module, arity)
    }

    fn declare_callee(
        &mut self,
        func: &mut ir::Function,
        name: &str,
        sig: &Signature,
    ) -> Result<FuncRef, ModuleError> {
        let id = self.module.declare_function(name, Linkage::Import, sig)?;
        Ok(self.module.declare_func_in_func(id, func))
    }
}

struct NameTarget<'n> {
    names: &'n mut dyn FnMut(&str) -> UserExternalName,
}

impl CallTarget for NameTarget<'_> {
    fn signature(&self, arity: usize) -> Signature {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params
            .extend(std::iter::repeat_n(AbiParam::new(types::F64), arity));
        sig.returns.push(AbiParam::new(types::F64));
        sig
    }

    fn declare_callee(
        &mut self,
        func: &mut ir::Function,
        name: &str,
        sig: &Signature,
    ) -> Result<FuncRef, ModuleError> {
        let user = func.declare_imported_user_function((self.names)(name));
        let signature = func.import_signature(sig.clone());
        Ok(func.import_function(ir::ExtFuncData {
            name: ir::ExternalName::User(user),
            signature,
            colocated: false,
            patchable: false,
        }))
    }
}

/// Builds `func` and defines (compiles) it in `module`.
pub fn lower_function<M: Module + ?Sized>(
    module: &mut M,
    func: &Function,
) -> Result<FuncId, LowerError> {
    lower_function_as(module, func, &func.proto.name)
}

/// Like [`lower_function`], defining the function under `symbol` (see
/// [`build_function_as`]).
pub fn lower_function_as<M: Module + ?Sized>(
    module: &mut M,
    func: &Function,
    symbol: &str,
) -> Result<FuncId, LowerError> {
    let mut lowered = build_function_as(module, func, symbol)?;
    define(module, &mut lowered)?;
    Ok(lowered.id)
}

fn define<M: Module + ?Sized>(
    module: &mut M,
    lowered: &mut LoweredFunction,
) -> Result<(), LowerError> {
    module
        .define_function(lowered.id, &mut lowered.ctx)
        .map_err(|source| LowerError::Module {
            function: lowered.name.clone(),
            source: Box::new(source),
        })
}

/// Defines every function and top-level expression of `program` in
/// `module`, in source order. Externs need no code: calls import them.
pub fn lower_program<M: Module + ?Sized>(
    module: &mut M,
    program: &Program,
    options: &LowerOptions,
) -> Result<Vec<LoweredSymbol>, LowerError> {
    let mut symbols = Vec::new();
    for item in &program.items {
        let (func, is_top_level) = match item {
            Item::Def(func) => (func, false),
            Item::Expr(func) => (func, true),
            Item::Extern(_) => continue,
        };
        let mut lowered = build_function(module, func)?;
        let clif = options.capture_clif.then(|| lowered.clif());
        define(module, &mut lowered)?;
        symbols.push(LoweredSymbol {
            name: lowered.name,
            id: lowered.id,
            is_top_level,
            clif,
        });
    }
    Ok(symbols)
}

/// Errors inside one body, before the function name is attached.
enum BodyError {
    Module(ModuleError),
    UnknownVariable { name: String, span: Span },
}

impl From<ModuleError> for Box<BodyError> {
    fn from(err: ModuleError) -> Self {
        Box::new(BodyError::Module(err))
    }
}

/// Errors are boxed to keep the recursive functions' frames small.
type BResult<T> = Result<T, Box<BodyError>>;

/// The state of lowering one function body.
struct FnLowerer<'a> {
    target: &'a mut dyn CallTarget,
    builder: FunctionBuilder<'a>,
    /// Variables in scope, innermost last.
    scope: Vec<(&'a str, Variable)>,
    /// Callees already imported into this function.
    callees: HashMap<String, FuncRef>,
}

impl<'a> FnLowerer<'a> {
    fn lower_body(&mut self, func: &'a Function) -> BResult<()> {
        let entry = self.builder.create_block();
        self.builder.append_block_params_for_function_params(entry);
        self.builder.switch_to_block(entry);
        self.builder.seal_block(entry);
        let params = self.builder.block_params(entry).to_vec();
        for (param, value) in func.proto.params.iter().zip(params) {
            self.bind(&param.name, value);
        }
        let result = self.lower_expr(&func.body)?;
        self.builder.ins().return_(&[result]);
        Ok(())
    }

    fn bind(&mut self, name: &'a str, value: Value) -> Variable {
        let var = self.builder.declare_var(types::F64);
        self.builder.def_var(var, value);
        self.scope.push((name, var));
        var
    }

    fn lookup(&self, name: &str, span: Span) -> BResult<Variable> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|&(_, var)| var)
            .ok_or_else(|| {
                Box::new(BodyError::UnknownVariable {
                    name: name.to_owned(),
                    span,
                })
            })
    }

    fn f64(&mut self, value: f64) -> Value {
        self.builder.ins().f64const(value)
    }

    /// `x != 0.0`, ordered: the truth test of `if` and `for`.
    fn is_true(&mut self, value: Value) -> Value {
        let zero = self.f64(0.0);
        self.builder
            .ins()
            .fcmp(FloatCC::OrderedNotEqual, value, zero)
    }

    /// The truth of `expr` as an `if` or `for` condition: a built-in `<`
    /// is its comparison itself (`1.0`/`0.0` tested `!= 0.0` is the same
    /// truth), anything else is [`Self::is_true`] of its value. Saves tier 0
    /// a select and a second compare on every loop test.
    fn lower_condition(&mut self, expr: &'a Expr) -> BResult<Value> {
        if let ExprKind::Binary {
            op: BinaryOp::Lt,
            lhs,
            rhs,
            ..
        } = &expr.kind
        {
            let l = self.lower_expr(lhs)?;
            let r = self.lower_expr(rhs)?;
            return Ok(self.builder.ins().fcmp(FloatCC::UnorderedOrLessThan, l, r));
        }
        let value = self.lower_expr(expr)?;
        Ok(self.is_true(value))
    }

    fn call(&mut self, name: &str, args: &[Value]) -> BResult<Value> {
        let callee = match self.callees.get(name) {
            Some(&callee) => callee,
            None => {
                let sig = self.target.signature(args.len());
                let callee = self.target.declare_callee(self.builder.func, name, &sig)?;
                self.callees.insert(name.to_owned(), callee);
                callee
            }
        };
        let call = self.builder.ins().call(callee, args);
        // Every Kaleidoscope signature has exactly one return value.
        Ok(self.builder.inst_results(call)[0])
    }

    /// Lowers one expression. Each construct has its own function so that
    /// this recursive dispatcher keeps a small stack frame.
    fn lower_expr(&mut self, expr: &'a Expr) -> BResult<Value> {
        // The line of each expression is its instructions' source
        // location: tier 1 turns them into DWARF line information.
        self.builder.set_srcloc(ir::SourceLoc::new(expr.span.line));
        match &expr.kind {
            ExprKind::Number(value) => Ok(self.f64(*value)),
            ExprKind::Variable(name) => {
                let var = self.lookup(name, expr.span)?;
                Ok(self.builder.use_var(var))
            }
            ExprKind::Call { callee, args } => self.lower_call(&callee.name, args),
            ExprKind::Unary { op, operand } => {
                let value = self.lower_expr(operand)?;
                self.call(&unary_symbol(*op), &[value])
            }
            ExprKind::Binary { op, lhs, rhs, .. } => self.lower_binary(*op, lhs, rhs),
            ExprKind::Assign { target, value } => {
                let value = self.lower_expr(value)?;
                let var = self.lookup(&target.name, target.span)?;
                self.builder.def_var(var, value);
                Ok(value)
            }
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => self.lower_if(cond, then_branch, else_branch),
            ExprKind::For {
                var,
                start,
                end,
                step,
                body,
            } => self.lower_for(&var.name, start, end, step.as_deref(), body),
            ExprKind::Var { bindings, body } => self.lower_var(bindings, body),
        }
    }

    #[inline(never)]
    fn lower_call(&mut self, name: &str, args: &'a [Expr]) -> BResult<Value> {
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.lower_expr(arg)?);
        }
        self.call(name, &values)
    }

    #[inline(never)]
    fn lower_binary(&mut self, op: BinaryOp, lhs: &'a Expr, rhs: &'a Expr) -> BResult<Value> {
        // A chain `a + b + c` is a left-deep tree: follow its left spine
        // with a loop (only right operands recurse), so a chain of any
        // length lowers in constant stack. Evaluation stays left to right.
        let mut spine: Vec<(BinaryOp, &'a Expr)> = vec![(op, rhs)];
        let mut leaf = lhs;
        while let ExprKind::Binary { op, lhs, rhs, .. } = &leaf.kind {
            spine.push((*op, rhs));
            leaf = lhs;
        }
        let mut value = self.lower_expr(leaf)?;
        for &(op, rhs) in spine.iter().rev() {
            let r = self.lower_expr(rhs)?;
            value = self.apply_binary(op, value, r)?;
        }
        Ok(value)
    }

    fn apply_binary(&mut self, op: BinaryOp, l: Value, r: Value) -> BResult<Value> {
        Ok(match op {
            BinaryOp::Add => self.builder.ins().fadd(l, r),
            BinaryOp::Sub => self.builder.ins().fsub(l, r),
            BinaryOp::Mul => self.builder.ins().fmul(l, r),
            BinaryOp::Lt => {
                let cmp = self.builder.ins().fcmp(FloatCC::UnorderedOrLessThan, l, r);
                let one = self.f64(1.0);
                let zero = self.f64(0.0);
                self.builder.ins().select(cmp, one, zero)
            }
            BinaryOp::User(c) => self.call(&binary_symbol(c), &[l, r])?,
        })
    }

    #[inline(never)]
    fn lower_if(
        &mut self,
        cond: &'a Expr,
        then_branch: &'a Expr,
        else_branch: &'a Expr,
    ) -> BResult<Value> {
        let cond = self.lower_condition(cond)?;
        let then_block = self.builder.create_block();
        let else_block = self.builder.create_block();
        let merge_block = self.builder.create_block();
        self.builder.append_block_param(merge_block, types::F64);
        self.builder
            .ins()
            .brif(cond, then_block, &[], else_block, &[]);

        self.builder.switch_to_block(then_block);
        self.builder.seal_block(then_block);
        let then_value = self.lower_expr(then_branch)?;
        self.builder
            .ins()
            .jump(merge_block, &[BlockArg::Value(then_value)]);

        self.builder.switch_to_block(else_block);
        self.builder.seal_block(else_block);
        let else_value = self.lower_expr(else_branch)?;
        self.builder
            .ins()
            .jump(merge_block, &[BlockArg::Value(else_value)]);

        self.builder.switch_to_block(merge_block);
        self.builder.seal_block(merge_block);
        Ok(self.builder.block_params(merge_block)[0])
    }

    /// Chapter 7's loop: body, end test with the current value, step.
    #[inline(never)]
    fn lower_for(
        &mut self,
        name: &'a str,
        start: &'a Expr,
        end: &'a Expr,
        step: Option<&'a Expr>,
        body: &'a Expr,
    ) -> BResult<Value> {
        let start = self.lower_expr(start)?;
        let loop_var = self.bind(name, start);
        let loop_block = self.builder.create_block();
        let after_block = self.builder.create_block();
        self.builder.ins().jump(loop_block, &[]);

        self.builder.switch_to_block(loop_block);
        self.lower_expr(body)?;
        let again = match step {
            // The end test comes before a step with effects: its value is
            // taken first, tested after.
            Some(step) if !matches!(step.kind, ExprKind::Number(_)) => {
                let end = self.lower_expr(end)?;
                let step = self.lower_expr(step)?;
                self.step_loop_var(loop_var, step);
                self.is_true(end)
            }
            step => {
                let again = self.lower_condition(end)?;
                let step = match step {
                    Some(step) => self.lower_expr(step)?,
                    None => self.f64(1.0),
                };
                self.step_loop_var(loop_var, step);
                again
            }
        };
        self.builder
            .ins()
            .brif(again, loop_block, &[], after_block, &[]);
        self.builder.seal_block(loop_block);

        self.builder.switch_to_block(after_block);
        self.builder.seal_block(after_block);
        self.scope.pop();
        Ok(self.f64(0.0))
    }

    /// `loop_var += step`.
    fn step_loop_var(&mut self, loop_var: Variable, step: Value) {
        let current = self.builder.use_var(loop_var);
        let next = self.builder.ins().fadd(current, step);
        self.builder.def_var(loop_var, next);
    }

    #[inline(never)]
    fn lower_var(&mut self, bindings: &'a [VarBinding], body: &'a Expr) -> BResult<Value> {
        for binding in bindings {
            let value = match &binding.init {
                Some(init) => self.lower_expr(init)?,
                None => self.f64(0.0),
            };
            self.bind(&binding.name.name, value);
        }
        let value = self.lower_expr(body)?;
        self.scope.truncate(self.scope.len() - bindings.len());
        Ok(value)
    }
}

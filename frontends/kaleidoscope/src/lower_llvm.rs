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
    /// The state of an on-stack-replacement entry disagrees with
    /// `osr_state_sizes` (a bug in one of them).
    #[error("loop {loop_index} of '{function}' has {found} state values, expected {expected}")]
    OsrState {
        /// The function.
        function: String,
        /// The loop.
        loop_index: usize,
        /// What `osr_state_sizes` says.
        expected: usize,
        /// What the lowering found.
        found: usize,
    },
    /// An on-stack-replacement entry was asked for a loop the function does
    /// not have.
    #[error("function '{function}' has no loop number {loop_index}")]
    NoSuchLoop {
        /// The function.
        function: String,
        /// The loop asked for.
        loop_index: usize,
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
    /// On-stack-replacement entries: (function index, loop number, symbol).
    osr_entries: Vec<(usize, usize, String)>,
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
            osr_entries: Vec::new(),
        })
    }

    /// Also defines, as `symbol`, the on-stack-replacement entry of loop
    /// `loop_index` of the `function`th function (see the `osr` module:
    /// `double symbol(state...)`). Out-of-range indices make `build` fail.
    pub fn with_osr_entry(
        mut self: Box<Self>,
        function: usize,
        loop_index: usize,
        symbol: String,
    ) -> Box<Self> {
        self.osr_entries.push((function, loop_index, symbol));
        self
    }
}

impl LlvmModule for KaleidoscopeLlvmModule {
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        let flags = SymbolFlags::EXPORTED | SymbolFlags::CALLABLE;
        self.functions
            .iter()
            .map(|(symbol, _)| symbol.clone())
            .chain(self.osr_entries.iter().map(|(_, _, symbol)| symbol.clone()))
            .map(|name| (name, flags))
            .collect()
    }

    /// A function's calls to itself, in its body and in its OSR entries,
    /// call its definition here directly, as calls within one LLVM module
    /// do (LLVM's CompileOnDemand layer gives a function's recursion the
    /// same treatment): they skip the stub, and LLVM sees the recursion
    /// (and can turn tail recursion into a loop). Calls to other functions
    /// go through their stubs. So a redefinition reaches the recursion of
    /// this code only at its next call from outside; activations already
    /// running finish with the definition they started with.
    fn build<'ctx>(self: Box<Self>, context: &'ctx Context) -> Result<Module<'ctx>, String> {
        let module = context.create_module(&self.name);
        for (symbol, func) in &self.functions {
            lower_with_entry(context, &module, func, symbol, None, Some(symbol))
                .map_err(|e| e.to_string())?;
        }
        for (function, loop_index, symbol) in &self.osr_entries {
            let (body, func) = self
                .functions
                .get(*function)
                .ok_or_else(|| format!("no function {function} in module {}", self.name))?;
            lower_with_entry(
                context,
                &module,
                func,
                symbol,
                Some(*loop_index),
                Some(body),
            )
            .map_err(|e| e.to_string())?;
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
    lower_with_entry(context, module, func, symbol, None, None)
}

/// Defines `name` in `module`: the on-stack-replacement entry of loop
/// `loop_index` of `func` (see the `osr` module). It takes the loop's state
/// as doubles, continues the loop from the top of its body and returns
/// what `func` would return.
pub fn lower_osr_entry_llvm<'ctx>(
    context: &'ctx Context,
    module: &Module<'ctx>,
    func: &Function,
    loop_index: usize,
    name: &str,
) -> Result<FunctionValue<'ctx>, LlvmLowerError> {
    lower_with_entry(context, module, func, name, Some(loop_index), None)
}

fn lower_with_entry<'ctx>(
    context: &'ctx Context,
    module: &Module<'ctx>,
    func: &Function,
    name: &str,
    osr_loop: Option<usize>,
    self_symbol: Option<&str>,
) -> Result<FunctionValue<'ctx>, LlvmLowerError> {
    let arity = match osr_loop {
        None => func.proto.arity(),
        Some(index) => *crate::osr::osr_state_sizes(func)
            .get(index)
            .ok_or_else(|| LlvmLowerError::NoSuchLoop {
                function: func.proto.name.clone(),
                loop_index: index,
            })?,
    };
    let f64t = context.f64_type();
    let function = match module.get_function(name) {
        Some(existing) if existing.count_basic_blocks() > 0 => {
            return Err(LlvmLowerError::Redefinition {
                function: name.to_owned(),
            })
        }
        Some(existing) => {
            let expected = existing.count_params() as usize;
            if expected != arity {
                return Err(LlvmLowerError::ArityMismatch {
                    function: name.to_owned(),
                    callee: name.to_owned(),
                    expected,
                    given: arity,
                });
            }
            existing
        }
        None => module.add_function(name, fn_type(f64t, arity), None),
    };
    function.set_linkage(Linkage::External);
    for (key, value) in STRICT_FP_ATTRIBUTES {
        let attr = context.create_string_attribute(key, value);
        function.add_attribute(AttributeLoc::Function, attr);
    }
    // An OSR entry's first block takes the state; the function's own start
    // follows it, unreachable.
    let osr = osr_loop.map(|loop_index| OsrTarget {
        loop_index,
        block: context.append_basic_block(function, "osr.entry"),
        reached: false,
    });
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
        loops: 0,
        osr,
        pending: Vec::new(),
        // Calls of `func` by its own name go to `self_symbol` (when that is
        // another symbol: under its own name the call already is direct).
        self_call: self_symbol
            .filter(|s| *s != func.proto.name)
            .map(|s| (func.proto.name.as_str(), s)),
    };
    lowerer.lower_body(func).map_err(|err| err.attach(name))?;
    if lowerer.osr.as_ref().is_some_and(|t| !t.reached) {
        return Err(LlvmLowerError::NoSuchLoop {
            function: func.proto.name.clone(),
            loop_index: osr_loop.unwrap_or_default(),
        });
    }
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
    OsrState {
        loop_index: usize,
        expected: usize,
        found: usize,
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
            BodyError::OsrState {
                loop_index,
                expected,
                found,
            } => LlvmLowerError::OsrState {
                function,
                loop_index,
                expected,
                found,
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
    /// (source name, symbol): self-calls go to the symbol directly.
    self_call: Option<(&'a str, &'a str)>,
    function: FunctionValue<'ctx>,
    f64t: FloatType<'ctx>,
    /// Variables in scope (their stack slots), innermost last.
    scope: Vec<(&'a str, PointerValue<'ctx>)>,
    /// Loops lowered so far (the next loop's number).
    loops: usize,
    /// When building an on-stack-replacement entry: the loop it enters.
    osr: Option<OsrTarget<'ctx>>,
    /// Operands evaluated and waiting for a sibling still being lowered.
    pending: Vec<Held<'ctx>>,
}

/// The loop an on-stack-replacement entry enters, and its entry block.
struct OsrTarget<'ctx> {
    loop_index: usize,
    block: orc_llvm::inkwell::basic_block::BasicBlock<'ctx>,
    reached: bool,
}

/// A pending operand: an SSA value, or (in an OSR entry, where the entry
/// block must be able to provide it) a stack slot.
enum Held<'ctx> {
    Value(FloatValue<'ctx>),
    Slot(PointerValue<'ctx>),
}

impl<'a, 'ctx> FnLowerer<'a, 'ctx> {
    fn lower_body(&mut self, func: &'a Function) -> BResult<()> {
        for (i, param) in func.proto.params.iter().enumerate() {
            // An OSR entry's parameters are the loop state, not these.
            let value = match self.osr {
                Some(_) => None,
                None => self.function.get_nth_param(i as u32),
            }
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
        let name = match self.self_call {
            Some((source, symbol)) if source == name => symbol,
            _ => name,
        };
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

    /// Keeps `value` while a sibling expression is lowered.
    fn hold(&mut self, value: FloatValue<'ctx>) -> BResult<()> {
        let held = match self.osr {
            Some(_) => {
                let slot = self.entry_alloca("pending")?;
                self.builder.build_store(slot, value)?;
                Held::Slot(slot)
            }
            None => Held::Value(value),
        };
        self.pending.push(held);
        Ok(())
    }

    fn reload(&self, held: Held<'ctx>) -> BResult<FloatValue<'ctx>> {
        match held {
            Held::Value(value) => Ok(value),
            Held::Slot(slot) => self.load(slot, "pending"),
        }
    }

    /// The value of the last [`Self::hold`].
    fn release(&mut self) -> BResult<FloatValue<'ctx>> {
        match self.pending.pop() {
            Some(held) => self.reload(held),
            None => Ok(self.f64(0.0)),
        }
    }

    /// In the OSR entry for loop `index`, at the top of its body
    /// (`body_block`): fill the entry block, which stores the state
    /// parameters into the variables' and operands' slots and branches here.
    fn osr_enter(
        &mut self,
        index: usize,
        body_block: orc_llvm::inkwell::basic_block::BasicBlock<'ctx>,
    ) -> BResult<()> {
        let Some(target) = self.osr.as_mut().filter(|t| t.loop_index == index) else {
            return Ok(());
        };
        target.reached = true;
        let block = target.block;
        let slots: Vec<PointerValue<'ctx>> = self
            .scope
            .iter()
            .map(|&(_, slot)| slot)
            .chain(self.pending.iter().filter_map(|held| match held {
                Held::Slot(slot) => Some(*slot),
                Held::Value(_) => None,
            }))
            .collect();
        if slots.len() != self.function.count_params() as usize {
            return Err(BodyError::OsrState {
                loop_index: index,
                expected: self.function.count_params() as usize,
                found: slots.len(),
            });
        }
        let builder = self.context.create_builder();
        builder.position_at_end(block);
        for (i, slot) in slots.into_iter().enumerate() {
            if let Some(param) = self.function.get_nth_param(i as u32) {
                builder.build_store(slot, param.into_float_value())?;
            }
        }
        builder.build_unconditional_branch(body_block)?;
        Ok(())
    }

    fn lower_expr(&mut self, expr: &'a Expr) -> BResult<FloatValue<'ctx>> {
        match &expr.kind {
            ExprKind::Number(value) => Ok(self.f64(*value)),
            ExprKind::Variable(name) => {
                let slot = self.lookup(name, expr.span)?;
                self.load(slot, name)
            }
            ExprKind::Call { callee, args } => {
                let base = self.pending.len();
                for arg in args {
                    let value = self.lower_expr(arg)?;
                    self.hold(value)?;
                }
                let held = self.pending.split_off(base);
                let values = held
                    .into_iter()
                    .map(|h| self.reload(h))
                    .collect::<BResult<Vec<_>>>()?;
                self.call(&callee.name, &values)
            }
            ExprKind::Unary { op, operand } => {
                let value = self.lower_expr(operand)?;
                self.call(&unary_symbol(*op), &[value])
            }
            ExprKind::Binary { op, lhs, rhs, .. } => {
                let l = self.lower_expr(lhs)?;
                self.hold(l)?;
                let r = self.lower_expr(rhs)?;
                let l = self.release()?;
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
                let index = self.loops;
                self.loops += 1;
                let start = self.lower_expr(start)?;
                let slot = self.bind(&var.name, start)?;
                let loop_block = self.context.append_basic_block(self.function, "loop");
                let after_block = self.context.append_basic_block(self.function, "afterloop");
                self.builder.build_unconditional_branch(loop_block)?;
                self.osr_enter(index, loop_block)?;

                self.builder.position_at_end(loop_block);
                self.lower_expr(body)?;
                let end = self.lower_expr(end)?;
                self.hold(end)?;
                let step = match step {
                    Some(step) => self.lower_expr(step)?,
                    None => self.f64(1.0),
                };
                let end = self.release()?;
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
    fn every_loop_gets_a_verified_osr_entry_taking_its_state() {
        let program = parse_and_check(
            "def binary : 1 (x y) y;
             def g(a b) a + b;
             def f(x) var s = 1 in
               (s = s + (for i = 0, i < x, g(1, for k = 0, k < 2 in 0) in
                  var s = i in for j = 0, j < s in s = s + j)) : s;",
        )
        .expect("valid");
        let func = program.functions().last().expect("f").clone();
        let sizes = crate::osr_state_sizes(&func);
        assert_eq!(sizes.len(), 3);
        let context = Context::create();
        let module = context.create_module("t");
        for (index, &size) in sizes.iter().enumerate() {
            let name = format!("f$osr{index}");
            let entry =
                lower_osr_entry_llvm(&context, &module, &func, index, &name).expect("an entry");
            assert_eq!(entry.count_params() as usize, size, "loop {index}");
        }
        module.verify().expect("entries verify");
        let err = lower_osr_entry_llvm(&context, &module, &func, 3, "f$osr3").unwrap_err();
        assert_eq!(
            err,
            LlvmLowerError::NoSuchLoop {
                function: "f".into(),
                loop_index: 3
            }
        );
    }

    #[test]
    fn the_producer_names_its_symbols() {
        let program = parse_and_check("def f(x) x; def g(x) f(x);").expect("valid");
        let module = KaleidoscopeLlvmModule::new("m", program.functions().cloned().collect());
        let names: Vec<String> = module.symbols().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["f", "g"]);
        let module = module.with_osr_entry(1, 0, "g$osr0".into());
        let names: Vec<String> = module.symbols().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["f", "g", "g$osr0"]);
        assert_eq!(module.name(), "m");
    }
}

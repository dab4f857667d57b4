//! Kaleidoscope on a [`Jit`]: a thin adapter on the tiered layer
//! ([`Jit::tiered`]). Each function is lowered once, to Cranelift IR
//! (`orc_kaleidoscope::build_standalone`), and handed to the layer, which
//! compiles it with the JIT's tier policy: tier 0 with Cranelift, tier 1 by
//! translating the same CLIF to LLVM IR, adaptive tiering with promotion
//! and on-stack replacement derived from the CLIF. Top-level expressions
//! run once, untiered, under their own resource tracker.
//!
//! Calls go by name to stubs (a function's canonical address), so
//! redefinition and tier-up reach every caller. Body symbols are the
//! layer's ([`orc_core::body_symbol`]): `f$t0`, `f$t1`, `f$t0.N` for the
//! Nth redefinition. A redefinition must keep the function's arity: code
//! already compiled calls it with that many arguments.
//!
//! [`KaleidoscopeJit::eval`] texts build on each other: a text sees the
//! functions, `extern`s and operators of earlier ones (an
//! `orc_kaleidoscope::ProgramContext`). A JIT error a program causes at
//! run time (a call of an `extern` defined nowhere, found when the calling
//! function is compiled) can be placed in the source with
//! [`KaleidoscopeJit::locate_error`] or, from an error reporter, through
//! [`KaleidoscopeJit::source_map`]: `FILE:LINE:COL` of the call, in source
//! names.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use orc_core::{CodeTier, Error, ExecutorAddr, FuncId, Result, SymbolName};
use orc_kaleidoscope::{
    binary_symbol, unary_symbol, Diagnostic, Expr, ExprKind, Function, Program, ProgramContext,
    Span,
};

use crate::jit::{Jit, Tier};
use crate::tiered::TieredLayer;

/// The tier-0 body symbol of function `name` (its first version).
pub fn body_symbol(name: &str) -> String {
    tier_body_symbol(name, Tier::Zero)
}

/// The body symbol of function `name` (its first version) compiled by
/// `tier`.
pub fn tier_body_symbol(name: &str, tier: Tier) -> String {
    let tier = match tier {
        // Adaptive code starts in tier 0; promotion adds `$t1` bodies.
        Tier::Zero | Tier::Adaptive => CodeTier::Zero,
        Tier::One => CodeTier::One,
    };
    orc_core::body_symbol(name, tier, 0)
}

/// Errors of the Kaleidoscope driver: source diagnostics or JIT errors.
#[derive(Debug, thiserror::Error)]
pub enum KaleidoscopeError {
    /// The source did not parse or check.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Source(Vec<Diagnostic>),
    /// The JIT failed (link error, missing symbol...).
    #[error(transparent)]
    Jit(#[from] Error),
    /// A function was used, or redefined, with the wrong number of
    /// arguments.
    #[error("function '{name}' takes {expected} argument{}, not {given}", if *.expected == 1 { "" } else { "s" })]
    Arity {
        /// The function.
        name: String,
        /// Its arity.
        expected: usize,
        /// The arity asked for.
        given: usize,
    },
}

/// A defined function.
#[derive(Clone, Copy)]
struct Known {
    id: FuncId,
    arity: usize,
}

/// Runs Kaleidoscope programs on a [`Jit`]. See the module docs.
pub struct KaleidoscopeJit {
    jit: Jit,
    functions: HashMap<SymbolName, Known>,
    /// The functions and operators [`Self::eval`] texts see: those of
    /// earlier texts and of everything defined through this driver.
    context: ProgramContext,
    /// The current definition of each function, to place runtime errors.
    sources: SourceMap,
}

impl KaleidoscopeJit {
    /// A driver over `jit`.
    pub fn new(jit: Jit) -> Self {
        KaleidoscopeJit {
            jit,
            functions: HashMap::new(),
            context: ProgramContext::new(),
            sources: SourceMap::default(),
        }
    }

    /// Names the file the source comes from: tier-1 code then carries
    /// DWARF line information for it (each expression's line), so gdb and
    /// perf show source lines, as the LLVM tutorial's chapter 9 does.
    pub fn set_source_file(&self, path: &std::path::Path) {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let file = absolute
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        let directory = absolute
            .parent()
            .map_or_else(String::new, |d| d.to_string_lossy().into_owned());
        self.layer()
            .set_debug_source(Some(orc_llvm::DebugSource { file, directory }));
    }

    /// The underlying JIT.
    pub fn jit(&self) -> &Jit {
        &self.jit
    }

    fn layer(&self) -> &TieredLayer {
        self.jit.tiered()
    }

    /// Lowers `func` to CLIF, naming known functions by their ids and
    /// anything else (host functions, functions not defined yet) by name.
    fn lower(&self, func: &Function) -> Result<orc_cranelift::codegen::ir::Function> {
        let layer = self.layer();
        let es = self.jit.session();
        let mut names = |callee: &str| match self.functions.get(&es.intern(callee)) {
            Some(known) => layer.func_name(known.id),
            None => layer.import(callee),
        };
        orc_kaleidoscope::build_standalone(func, &mut names).map_err(|e| {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            Error::other(message)
        })
    }

    /// Defines `func`, or redefines it. A redefinition gets a body symbol
    /// of its own (`f$t0.1`, `f$t0.2`...), is compiled at once and the stub
    /// is repointed to it, so every caller, including code already
    /// compiled, runs the new body on its next call; the old body is
    /// removed (its memory is reclaimed once no thread can be running it).
    /// It must keep the function's arity. With an eager JIT a new function
    /// is compiled at once too.
    pub fn define(&mut self, func: &Arc<Function>) -> std::result::Result<(), KaleidoscopeError> {
        self.define_all(std::slice::from_ref(func))
    }

    /// Defines (or redefines) `funcs` in order, new ones together first;
    /// see [`Self::define`].
    fn define_all(
        &mut self,
        funcs: &[Arc<Function>],
    ) -> std::result::Result<(), KaleidoscopeError> {
        let es = self.jit.session().clone();
        // Check every arity first, so a refused program changes nothing.
        let mut arities: HashMap<SymbolName, usize> = HashMap::new();
        for func in funcs {
            let name = es.intern(&func.proto.name);
            let expected = self
                .functions
                .get(&name)
                .map(|k| k.arity)
                .or_else(|| arities.get(&name).copied());
            match expected {
                Some(expected) if expected != func.proto.arity() => {
                    return Err(KaleidoscopeError::Arity {
                        name: func.proto.name.clone(),
                        expected,
                        given: func.proto.arity(),
                    });
                }
                _ => {
                    arities.insert(name, func.proto.arity());
                }
            }
        }
        // Declare the new ones, so the program's functions call each other
        // by id whatever their order.
        for func in funcs {
            let name = es.intern(&func.proto.name);
            if !self.functions.contains_key(&name) {
                let id = self.layer().declare(&name)?;
                let known = Known {
                    id,
                    arity: func.proto.arity(),
                };
                self.functions.insert(name, known);
            }
        }
        let mut defs = Vec::with_capacity(funcs.len());
        for func in funcs {
            let id = self.functions[&es.intern(&func.proto.name)].id;
            defs.push((id, self.lower(func)?));
        }
        // The sources are in place first: an eager definition that fails
        // to link is placed in them (and rolled back).
        let previous: Vec<_> = funcs.iter().map(|f| self.sources.insert(f)).collect();
        if let Err(e) = self.layer().define(defs) {
            self.sources.restore(funcs, previous);
            return Err(e.into());
        }
        self.sources.clear_failed();
        for func in funcs {
            self.context.declare(&func.proto, true);
        }
        Ok(())
    }

    /// With adaptive tiering: for each function with tier-0 loops, how many
    /// frames moved from them to tier-1 code (on-stack replacement), by the
    /// function's first tier-0 body symbol (`f$t0`), over all its versions.
    pub fn osr_transfers(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .layer()
            .stats()
            .into_iter()
            .filter(|s| s.osr_loops > 0 || s.osr_transfers > 0)
            .map(|s| (body_symbol(&s.name), s.osr_transfers))
            .collect();
        out.sort();
        out
    }

    /// Defines every function of `program` (not its top-level
    /// expressions): the functions not defined yet together (lazily one
    /// unit per function, eagerly all bodies in one module, compiled now),
    /// then the others (and repeats within the program) one by one, in
    /// order.
    pub fn add_program(&mut self, program: &Program) -> std::result::Result<(), KaleidoscopeError> {
        let funcs: Vec<Arc<Function>> = program.shared_functions().cloned().collect();
        self.define_all(&funcs)
    }

    /// Compiles and runs a top-level expression (a parameterless function)
    /// under its own tracker, removed once it has run. Returns its value,
    /// or [`Error::Trap`] when its code trapped (a stack overflow, say):
    /// the JIT stays usable and the expression's code is released.
    pub fn run_top_level(&mut self, expr: &Function) -> Result<f64> {
        let tracker = self.jit.bodies_dylib().create_resource_tracker()?;
        let func = self.lower(expr)?;
        let result = self
            .layer()
            .add_untiered(&expr.proto.name, func, &tracker)
            .and_then(|addr| {
                if orc_core::remote::target().is_some() {
                    // What this process printed comes before the program's
                    // output from the executor.
                    crate::host::flush_stdout();
                    // SAFETY: as below: `extern "C" fn() -> f64`, alive
                    // until after the call, which runs in the executor.
                    let bits = unsafe {
                        orc_core::remote::call(addr.0, &[], &[], orc_core::remote::RetKind::F64)
                    }
                    .map_err(|e| Error::other(format!("executor: {e}")))?;
                    return Ok(f64::from_bits(bits));
                }
                let _inside = self.jit.enter();
                // SAFETY: a Kaleidoscope top-level expression is lowered as
                // `extern "C" fn() -> f64` (System V, no parameters, one
                // `f64`); its tracker, and so its code, lives until after
                // the call.
                let f: extern "C" fn() -> f64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
                let mut value = f64::NAN;
                // SAFETY: (catch_traps) the closure owns nothing and holds
                // no lock: on a trap only JIT'd frames (and the host
                // functions they called, which hold nothing across calls
                // into JIT'd code) are abandoned. The pin and the tracker
                // belong to this frame, outside the closure, so a trap
                // releases them as a return does.
                unsafe { orc_core::catch_traps(|| value = f()) }?;
                Ok(value)
            });
        tracker.remove()?;
        result
    }

    /// Parses, checks and runs `source`: defines its functions, then runs
    /// its top-level expressions in order, returning their values.
    ///
    /// The text sees what earlier ones defined or declared `extern`, and
    /// the functions and operators defined through this driver: after
    /// `eval("def foo(x) x")`, `eval("foo(2)")` works. It may redefine them
    /// with the same arity. A refused text changes nothing.
    pub fn eval(&mut self, source: &str) -> std::result::Result<Vec<f64>, KaleidoscopeError> {
        let mut context = self.context.clone();
        let program = context
            .parse_and_check(source)
            .map_err(KaleidoscopeError::Source)?;
        self.add_program(&program)?;
        self.context = context;
        let mut values = Vec::new();
        for expr in program.top_level_exprs() {
            values.push(self.run_top_level(expr)?);
        }
        Ok(values)
    }

    /// Places a JIT error in the Kaleidoscope source, if it is one a
    /// program causes at run time: a call of a function declared `extern`
    /// but defined nowhere (nor in the host) fails when the function making
    /// it is compiled (at its first call when lazy). The location is the
    /// first such call in the function that could not be compiled; the
    /// message names source functions, not body symbols. `expr` is the
    /// top-level expression that was running, if any.
    pub fn locate_error(&self, err: &Error, expr: Option<&Function>) -> Option<RuntimeError> {
        self.sources.locate(err, expr)
    }

    /// A handle on this driver's function sources, for an error reporter
    /// (see [`orc_core::ExecutionSession::set_error_reporter`]) to place
    /// errors that do not come back from a call, such as a failed lazy
    /// compile ([`Error::LazyCompileFailed`]).
    pub fn source_map(&self) -> SourceMap {
        self.sources.clone()
    }

    /// The arity of a defined function.
    pub fn arity(&self, name: &str) -> Option<usize> {
        self.functions
            .get(&self.jit.session().intern(name))
            .map(|k| k.arity)
    }

    /// A typed handle on function `name`, checked to take `A::ARITY`
    /// arguments.
    pub fn function<A: KalArgs>(
        &self,
        name: &str,
    ) -> std::result::Result<KalFunction<'_, A>, KaleidoscopeError> {
        let arity = self.arity(name).ok_or_else(|| Error::SymbolsNotFound {
            symbols: vec![self.jit.session().intern(name)],
        })?;
        if arity != A::ARITY {
            return Err(KaleidoscopeError::Arity {
                name: name.to_owned(),
                expected: arity,
                given: A::ARITY,
            });
        }
        let addr = self.jit.lookup(name)?;
        Ok(KalFunction {
            jit: &self.jit,
            addr,
            _args: PhantomData,
        })
    }
}

impl std::fmt::Debug for KaleidoscopeJit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KaleidoscopeJit")
            .field("functions", &self.functions.len())
            .finish()
    }
}

/// Argument tuples of Kaleidoscope functions (every value is an `f64`).
pub trait KalArgs: sealed::Sealed {
    /// The number of arguments.
    const ARITY: usize;
    #[doc(hidden)]
    fn call(self, addr: ExecutorAddr) -> f64;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! kal_args {
    ($n:expr; $($a:ident),*) => {
        impl sealed::Sealed for ($(kal_args!(@f64 $a),)*) {}
        impl KalArgs for ($(kal_args!(@f64 $a),)*) {
            const ARITY: usize = $n;
            #[allow(non_snake_case)]
            fn call(self, addr: ExecutorAddr) -> f64 {
                let ($($a,)*) = self;
                if orc_core::remote::target().is_some() {
                    // SAFETY: as below; the call runs in the executor. Its
                    // failure (the executor died) reads as NaN.
                    return unsafe {
                        orc_core::remote::call(addr.0, &[], &[$($a),*], orc_core::remote::RetKind::F64)
                    }
                    .map(f64::from_bits)
                    .unwrap_or(f64::NAN);
                }
                // SAFETY: `KaleidoscopeJit::function` checked that the
                // function behind `addr` takes exactly this many f64s and
                // returns an f64 (every Kaleidoscope function does).
                let f: extern "C" fn($(kal_args!(@f64 $a)),*) -> f64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
                f($($a),*)
            }
        }
    };
    (@f64 $a:ident) => { f64 };
}

kal_args!(0;);
kal_args!(1; A);
kal_args!(2; A, B);
kal_args!(3; A, B, C);
kal_args!(4; A, B, C, D);
kal_args!(5; A, B, C, D, E);
kal_args!(6; A, B, C, D, E, F);
kal_args!(7; A, B, C, D, E, F, G);
kal_args!(8; A, B, C, D, E, F, G, H);

/// A Kaleidoscope function with a checked signature, callable from Rust.
pub struct KalFunction<'j, A: KalArgs> {
    jit: &'j Jit,
    addr: ExecutorAddr,
    _args: PhantomData<fn(A) -> f64>,
}

impl<A: KalArgs> KalFunction<'_, A> {
    /// Calls the function (through its stub: compiling it on first call).
    pub fn call(&self, args: A) -> f64 {
        let _inside = self.jit.enter();
        args.call(self.addr)
    }

    /// The function's canonical address (its stub).
    pub fn address(&self) -> ExecutorAddr {
        self.addr
    }
}

/// A runtime error placed in the source: where, and what, in source terms.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeError {
    /// The call (or expression) that failed.
    pub span: Span,
    /// What went wrong, naming source functions.
    pub message: String,
}

impl RuntimeError {
    /// `FILE:LINE:COL: error: MESSAGE`.
    pub fn render(&self, file: &str) -> String {
        format!(
            "{file}:{}:{}: error: {}",
            self.span.line, self.span.col, self.message
        )
    }
}

/// The current definition of each function of a [`KaleidoscopeJit`],
/// shared with error reporters ([`KaleidoscopeJit::source_map`]).
#[derive(Clone, Default)]
pub struct SourceMap {
    functions: Arc<RwLock<HashMap<String, Arc<Function>>>>,
    /// The functions of the last definition that failed (an eager program
    /// that did not link), to place its error.
    failed: Arc<RwLock<Vec<Arc<Function>>>>,
}

impl std::fmt::Debug for SourceMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMap").finish_non_exhaustive()
    }
}

impl SourceMap {
    /// Records `func` as its name's definition; returns the one it replaces.
    fn insert(&self, func: &Arc<Function>) -> Option<Arc<Function>> {
        let mut map = self.functions.write().unwrap_or_else(|e| e.into_inner());
        map.insert(func.proto.name.clone(), func.clone())
    }

    fn clear_failed(&self) {
        self.failed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Undoes [`Self::insert`]s of `funcs` (in reverse order).
    fn restore(&self, funcs: &[Arc<Function>], previous: Vec<Option<Arc<Function>>>) {
        let mut map = self.functions.write().unwrap_or_else(|e| e.into_inner());
        for (func, prev) in funcs.iter().zip(previous).rev() {
            match prev {
                Some(prev) => map.insert(func.proto.name.clone(), prev),
                None => map.remove(&func.proto.name),
            };
        }
        *self.failed.write().unwrap_or_else(|e| e.into_inner()) = funcs.to_vec();
    }

    /// See [`KaleidoscopeJit::locate_error`].
    pub fn locate(&self, err: &Error, expr: Option<&Function>) -> Option<RuntimeError> {
        let mut failing: Option<String> = None;
        let mut missing: Option<String> = None;
        let mut cur = Some(err);
        while let Some(e) = cur {
            cur = match e {
                Error::LazyCompileFailed { symbol, cause } => {
                    failing.get_or_insert_with(|| source_name(symbol));
                    Some(&**cause)
                }
                Error::FailedToMaterialize { symbols, cause } => {
                    if let Some(first) = symbols.first() {
                        failing.get_or_insert_with(|| source_name(&first.name));
                    }
                    Some(&**cause)
                }
                Error::Link(link) => {
                    if let orc_core::link::LinkError::UndefinedSymbol { symbol, .. } = &**link {
                        missing = Some(symbol.clone());
                    }
                    None
                }
                Error::SymbolsNotFound { symbols } => {
                    missing = symbols.first().map(|s| s.to_string());
                    None
                }
                _ => None,
            };
        }
        let missing = missing?;
        let map = self.functions.read().unwrap_or_else(|e| e.into_inner());
        let failed = self.failed.read().unwrap_or_else(|e| e.into_inner());
        let is_expr = |name: &str| expr.is_some_and(|f| f.proto.name == name);
        let defined = |name: &str| {
            failed
                .iter()
                .find(|f| f.proto.name == name)
                .or_else(|| map.get(name))
                .map(|f| &**f)
        };
        let candidates: Vec<&Function> = match failing.as_deref() {
            Some(name) if is_expr(name) => expr.into_iter().collect(),
            Some(name) if defined(name).is_some() => defined(name).into_iter().collect(),
            // Unknown (an eager module of many bodies): any function that
            // makes the call, the earliest in the source.
            _ => expr
                .into_iter()
                .chain(failed.iter().map(|f| &**f))
                .chain(map.values().map(|f| &**f))
                .collect(),
        };
        let (func, span) = candidates
            .into_iter()
            .filter_map(|f| first_call(&f.body, &missing).map(|span| (f, span)))
            .min_by_key(|&(_, span)| span)?;
        let caller = if func
            .proto
            .name
            .starts_with(orc_kaleidoscope::ANON_EXPR_PREFIX)
        {
            "a top-level expression".to_owned()
        } else {
            format!("'{}'", func.proto.name)
        };
        Some(RuntimeError {
            span,
            message: format!(
                "call of undefined function '{missing}': it is declared but defined nowhere, \
                 not even in the host ({caller} cannot be compiled)"
            ),
        })
    }
}

/// The source function of a body symbol (`f$t0.2` -> `f`).
fn source_name(symbol: &SymbolName) -> String {
    let name: &str = symbol;
    name.split('$').next().unwrap_or(name).to_owned()
}

/// The position of the first call of `callee` (a function or an operator's
/// symbol) in `expr`, in source order.
fn first_call(expr: &Expr, callee: &str) -> Option<Span> {
    let mut best: Option<Span> = None;
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        let hit = match &e.kind {
            ExprKind::Number(_) | ExprKind::Variable(_) => None,
            ExprKind::Call { callee: c, args } => {
                stack.extend(args);
                (c.name == callee).then_some(c.span)
            }
            ExprKind::Unary { op, operand } => {
                stack.push(operand);
                (unary_symbol(*op) == callee).then_some(e.span)
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                stack.push(lhs);
                stack.push(rhs);
                let symbol = match op {
                    orc_kaleidoscope::BinaryOp::User(c) => Some(binary_symbol(*c)),
                    _ => None,
                };
                (symbol.as_deref() == Some(callee)).then_some(*op_span)
            }
            ExprKind::Assign { value, .. } => {
                stack.push(value);
                None
            }
            ExprKind::If {
                cond,
                then_branch,
                else_branch,
            } => {
                stack.extend([&**cond, &**then_branch, &**else_branch]);
                None
            }
            ExprKind::For {
                start,
                end,
                step,
                body,
                ..
            } => {
                stack.extend([&**start, &**end, &**body]);
                stack.extend(step.as_deref());
                None
            }
            ExprKind::Var { bindings, body } => {
                stack.extend(bindings.iter().filter_map(|b| b.init.as_ref()));
                stack.push(body);
                None
            }
        };
        if let Some(span) = hit {
            best = Some(best.map_or(span, |b| b.min(span)));
        }
    }
    best
}

//! Typed handles, host functions, modules, and the state they share with
//! the [`Jit`].

use std::collections::HashMap;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use orc_core::link::ObjectLinkingLayer;
use orc_core::{
    absolute_symbols, catch_traps, ExecutorSymbolDef, JitDylib, Reclaimer, ResourceTracker,
    SymbolFlags, SymbolMap,
};
use orc_cranelift::codegen::ir;

use super::error::{Error, SignatureMismatch};
use super::types::{same_abi, signature_of, HostFunction, Params, Results};
use crate::{Jit, TieredLayer};

/// What handles share with their [`Jit`]: whether it is still alive, how
/// many calls are inside its code, and the host functions' signatures.
///
/// The count is ours rather than the reclaimer's pins: a thread may hold
/// a pin for good (the REPL leaks one when a trap abandons a frame that
/// held it), and dropping the JIT must not wait for that.
#[derive(Default)]
pub(crate) struct Shared {
    active: AtomicUsize,
    closed: AtomicBool,
    /// Host functions' signatures, by symbol.
    host: Mutex<HashMap<String, ir::Signature>>,
}

impl Shared {
    /// Counts a call in; fails once the JIT is dropped.
    fn enter(&self) -> Result<ActiveCall<'_>, Error> {
        self.active.fetch_add(1, Ordering::SeqCst);
        let call = ActiveCall(self);
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::JitDropped);
        }
        Ok(call)
    }

    /// Makes every later call fail and waits for the calls in flight (the
    /// JIT's `Drop`, before it frees anything).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        while self.active.load(Ordering::SeqCst) != 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

struct ActiveCall<'a>(&'a Shared);

impl Drop for ActiveCall<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("active", &self.active.load(Ordering::Relaxed))
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// A typed handle on a JIT'd function of signature `A -> R` (`A` a tuple
/// of [`AbiType`](super::AbiType)s, `R` one or `()`).
///
/// It holds the function's address (for a tiered function: its stub, so
/// redefinition and tier-up are seen by every handle) and what it needs to
/// call safely, not a borrow of the [`Jit`]: it is `Send + Sync + 'static`
/// and cheap to clone. Once the JIT is dropped, [`Func::call`] returns
/// [`Error::JitDropped`]; once its module is removed,
/// [`Error::ModuleRemoved`].
pub struct Func<A, R> {
    addr: u64,
    name: Arc<str>,
    shared: Arc<Shared>,
    reclaimer: Reclaimer,
    module: Option<Arc<ModuleState>>,
    /// A lazy tiered function: compiled by the first call, before entering
    /// JIT'd code, so that its compile error is returned.
    compile: Option<Arc<FirstCall>>,
    _sig: PhantomData<fn(A) -> R>,
}

struct FirstCall {
    tiered: TieredLayer,
    id: orc_core::FuncId,
    done: AtomicBool,
}

impl<A, R> Clone for Func<A, R> {
    fn clone(&self) -> Self {
        Func {
            addr: self.addr,
            name: self.name.clone(),
            shared: self.shared.clone(),
            reclaimer: self.reclaimer.clone(),
            module: self.module.clone(),
            compile: self.compile.clone(),
            _sig: PhantomData,
        }
    }
}

impl<A, R> std::fmt::Debug for Func<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Func")
            .field("name", &self.name)
            .field("addr", &format_args!("{:#x}", self.addr))
            .finish()
    }
}

impl<A: Params, R: Results> Func<A, R> {
    /// Calls the function. With a lazy JIT, the handle's first call
    /// compiles a tiered function before entering it, so a compile error
    /// of the function itself is returned (its callees' lazy compiles go
    /// to the JIT's lazy-failure handler). A trap in JIT'd code (see
    /// [`orc_core::trap`]) is [`Error::Trap`]; the thread and process stay
    /// usable. The thread is pinned for the call, so code it may run is
    /// not freed under it.
    pub fn call(&self, args: A) -> Result<R, Error> {
        let _active = self.shared.enter()?;
        let _pin = self.reclaimer.pin();
        if let Some(module) = &self.module {
            if module.removed.load(Ordering::SeqCst) {
                return Err(Error::ModuleRemoved {
                    function: self.name.to_string(),
                });
            }
        }
        if let Some(first) = &self.compile {
            if !first.done.load(Ordering::Acquire) {
                first.tiered.functions().compile_now(&[first.id])?;
                first.done.store(true, Ordering::Release);
            }
        }
        let mut out = MaybeUninit::<R>::uninit();
        let addr = self.addr as usize;
        // SAFETY: `addr` is a function of signature `A -> R`: checked
        // against the declared signature when the handle was made (or
        // vouched for by the caller of `function_unchecked`), kept mapped
        // by the JIT (alive until `_active` drops) and its module (not removed
        // before we pinned; removal after that frees nothing while we are
        // pinned). The closure owns only `Copy` values, so a trap leaks
        // nothing.
        unsafe {
            catch_traps(|| {
                out.write(args.call::<R>(addr));
            })
        }?;
        // SAFETY: catch_traps returned Ok, so the closure ran to its end
        // and wrote `out`.
        Ok(unsafe { out.assume_init() })
    }

    /// The function's address (its stub for a tiered function).
    pub fn address(&self) -> u64 {
        self.addr
    }

    /// The symbol the handle was made for.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn check<A: Params, R: Results>(name: &str, declared: &ir::Signature) -> Result<(), Error> {
    let expected = signature_of(&A::clif(), &R::clif());
    if same_abi(&expected, declared) {
        return Ok(());
    }
    Err(SignatureMismatch {
        function: name.to_owned(),
        expected: expected.to_string(),
        found: declared.to_string(),
        context: "typed handle".into(),
    }
    .into())
}

impl Jit {
    fn handle<A, R>(&self, name: &str, addr: u64, module: Option<Arc<ModuleState>>) -> Func<A, R> {
        Func {
            addr,
            name: name.into(),
            shared: self.embed.clone(),
            reclaimer: self.reclaimer().clone(),
            module,
            compile: None,
            _sig: PhantomData,
        }
    }

    /// A typed handle on `name`: a function of the tiered layer (its stub;
    /// it need not be compiled yet) or a host function, whose signature
    /// must be `A -> R` (the same value types, System V). Other symbols'
    /// signatures are unknown to the JIT: [`Error::UnknownSignature`] (see
    /// [`Jit::function_unchecked`]).
    ///
    /// ```
    /// # fn main() -> Result<(), orc::Error> {
    /// let jit = orc::Jit::builder().build()?;
    /// extern "C" fn twice(x: i64) -> i64 { 2 * x }
    /// jit.define_host_function("twice", twice as extern "C" fn(i64) -> i64)?;
    /// let f = jit.function::<(i64,), i64>("twice")?;
    /// assert_eq!(f.call((21,))?, 42);
    /// let wrong = jit.function::<(f64,), i64>("twice").unwrap_err();
    /// assert!(wrong.to_string().contains("expected (f64) -> i64"), "{wrong}");
    /// # Ok(()) }
    /// ```
    pub fn function<A: Params, R: Results>(&self, name: &str) -> Result<Func<A, R>, Error> {
        if let Some(tiered) = self.tiered_if_created() {
            if let Some(id) = tiered.functions().id(name) {
                let declared = tiered
                    .signature(id)
                    .ok_or_else(|| Error::UnknownSignature {
                        function: name.to_owned(),
                    })?;
                check::<A, R>(name, &declared)?;
                let addr = tiered.address(id)?;
                let mut handle = self.handle(name, addr.0, None);
                if self.config().lazy {
                    handle.compile = Some(Arc::new(FirstCall {
                        tiered: tiered.clone(),
                        id,
                        done: AtomicBool::new(false),
                    }));
                }
                return Ok(handle);
            }
        }
        let host = self.host_signature(name);
        if let Some(declared) = host {
            check::<A, R>(name, &declared)?;
            let addr = self.host_dylib().lookup_symbol(name)?.addr;
            return Ok(self.handle(name, addr.0, None));
        }
        // Known to the JIT at all?
        self.lookup_any(name)?;
        Err(Error::UnknownSignature {
            function: name.to_owned(),
        })
    }

    /// A typed handle on any symbol of `main`, `main.impl` or `host` (an
    /// object's or LLVM IR's function), without a signature check.
    ///
    /// # Safety
    ///
    /// The symbol must be a function of signature `A -> R` in the C ABI
    /// (System V), and stay mapped while the JIT lives.
    pub unsafe fn function_unchecked<A: Params, R: Results>(
        &self,
        name: &str,
    ) -> Result<Func<A, R>, Error> {
        let addr = self.lookup_any(name)?;
        Ok(self.handle(name, addr, None))
    }

    fn lookup_any(&self, name: &str) -> Result<u64, Error> {
        match self.main_dylib().lookup_symbol(name) {
            Ok(d) => Ok(d.addr.0),
            Err(orc_core::Error::SymbolsNotFound { .. }) => {
                Ok(self.bodies_dylib().lookup_symbol(name)?.addr.0)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn host_signature(&self, name: &str) -> Option<ir::Signature> {
        self.embed
            .host
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Defines host function `name` in the `host` dylib from a Rust
    /// `extern "C" fn`, its signature derived from the type. CLIF that
    /// imports it (through [`TieredLayer::import`]) with another
    /// signature is refused when defined ([`Error::SignatureMismatch`]).
    ///
    /// Bad input is an error: a name defined twice is
    /// [`Error::Core`] with the core's duplicate-definition error.
    pub fn define_host_function<F: HostFunction>(&self, name: &str, f: F) -> Result<(), Error> {
        let es = self.session();
        let mut symbols = SymbolMap::new();
        symbols.insert(
            es.intern(name),
            ExecutorSymbolDef::new(
                orc_core::ExecutorAddr(f.address() as u64),
                SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
            ),
        );
        self.host_dylib().define(absolute_symbols(symbols), None)?;
        let sig = F::signature();
        self.tiered().declare_import_signature(name, sig.clone());
        self.embed
            .host
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), sig);
        Ok(())
    }

    /// What a `FunctionBuilder` needs to finish CLIF for this JIT's
    /// target (`builder.finalize(jit.frontend_config())`).
    pub fn frontend_config(&self) -> orc_cranelift::codegen::isa::TargetFrontendConfig {
        self.cranelift_layer().compiler().isa().frontend_config()
    }

    /// A new, empty module: code added to it is freed, with its symbols,
    /// when it is removed or dropped.
    pub fn module(&self) -> Result<Module, Error> {
        let dylib = self.bodies_dylib().clone();
        let tracker = dylib.create_resource_tracker()?;
        Ok(Module {
            tracker,
            dylib,
            tiered: self.tiered().clone(),
            objects: self.object_layer().clone(),
            state: Arc::new(ModuleState {
                removed: AtomicBool::new(false),
                signatures: Mutex::new(HashMap::new()),
            }),
            shared: self.embed.clone(),
            reclaimer: self.reclaimer().clone(),
        })
    }
}

struct ModuleState {
    removed: AtomicBool,
    signatures: Mutex<HashMap<String, ir::Signature>>,
}

/// Code that can be unloaded: functions and objects added under one
/// resource tracker of the bodies dylib (`main.impl`, which sees `main`
/// and `host`). [`Module::remove`] (or dropping it) removes their symbols
/// and frees their memory once no thread runs their code.
///
/// ```
/// use orc::cranelift::codegen::ir::{types, AbiParam, Function, InstBuilder, Signature, UserFuncName};
/// use orc::cranelift::codegen::isa::CallConv;
/// use orc::cranelift::frontend::{FunctionBuilder, FunctionBuilderContext};
///
/// # fn main() -> Result<(), orc::Error> {
/// let jit = orc::Jit::builder().build()?;
/// let mut sig = Signature::new(CallConv::SystemV);
/// sig.params.push(AbiParam::new(types::I64));
/// sig.returns.push(AbiParam::new(types::I64));
/// let mut func = Function::with_name_signature(UserFuncName::default(), sig);
/// let mut ctx = FunctionBuilderContext::new();
/// let mut b = FunctionBuilder::new(&mut func, &mut ctx);
/// let block = b.create_block();
/// b.append_block_params_for_function_params(block);
/// b.switch_to_block(block);
/// let x = b.block_params(block)[0];
/// let y = b.ins().iadd_imm(x, 1);
/// b.ins().return_(&[y]);
/// b.seal_all_blocks();
/// b.finalize(jit.frontend_config());
///
/// let module = jit.module()?;
/// module.add_function("inc", func)?;
/// let inc = module.function::<(i64,), i64>("inc")?;
/// assert_eq!(inc.call((41,))?, 42);
/// module.remove()?;
/// assert!(matches!(inc.call((1,)), Err(orc::Error::ModuleRemoved { .. })));
/// # Ok(()) }
/// ```
pub struct Module {
    tracker: ResourceTracker,
    dylib: JitDylib,
    tiered: TieredLayer,
    objects: Arc<ObjectLinkingLayer>,
    state: Arc<ModuleState>,
    shared: Arc<Shared>,
    reclaimer: Reclaimer,
}

impl Module {
    /// Compiles `func` now, with the JIT's first tier (untiered: no
    /// counters), as `symbol`. Its CLIF names other functions as the
    /// tiered layer's do ([`TieredLayer::func_name`],
    /// [`TieredLayer::import`]).
    pub fn add_function(&self, symbol: &str, func: ir::Function) -> Result<(), Error> {
        let sig = func.signature.clone();
        self.tiered.add_untiered(symbol, func, &self.tracker)?;
        self.state
            .signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(symbol.to_owned(), sig);
        Ok(())
    }

    /// Adds a relocatable ELF object (linked when one of its symbols is
    /// first looked up).
    pub fn add_object(&self, name: &str, bytes: Vec<u8>) -> Result<(), Error> {
        self.objects
            .add_bytes(&self.dylib, name, bytes, Some(&self.tracker))?;
        Ok(())
    }

    /// A typed handle on a function added with [`Module::add_function`],
    /// checked against its CLIF signature.
    pub fn function<A: Params, R: Results>(&self, name: &str) -> Result<Func<A, R>, Error> {
        let declared = self
            .state
            .signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownSignature {
                function: name.to_owned(),
            })?;
        check::<A, R>(name, &declared)?;
        // SAFETY: just checked.
        unsafe { self.function_unchecked(name) }
    }

    /// A typed handle on any symbol of the module (an object's function),
    /// without a signature check.
    ///
    /// # Safety
    ///
    /// The symbol must be a function of signature `A -> R` in the C ABI.
    pub unsafe fn function_unchecked<A: Params, R: Results>(
        &self,
        name: &str,
    ) -> Result<Func<A, R>, Error> {
        if self.state.removed.load(Ordering::SeqCst) {
            return Err(Error::ModuleRemoved {
                function: name.to_owned(),
            });
        }
        let addr = self.dylib.lookup_symbol(name)?.addr.0;
        Ok(Func {
            addr,
            name: name.into(),
            shared: self.shared.clone(),
            reclaimer: self.reclaimer.clone(),
            module: Some(self.state.clone()),
            compile: None,
            _sig: PhantomData,
        })
    }

    /// Removes the module: its symbols are gone at once, its memory is
    /// freed once no thread may be running its code. Handles on its
    /// functions return [`Error::ModuleRemoved`].
    pub fn remove(self) -> Result<(), Error> {
        self.remove_now()
    }

    fn remove_now(&self) -> Result<(), Error> {
        if self.state.removed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.tracker.remove()?;
        self.reclaimer.collect();
        Ok(())
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        let _ = self.remove_now();
    }
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("removed", &self.state.removed.load(Ordering::Relaxed))
            .finish()
    }
}

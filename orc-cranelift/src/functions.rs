//! A [`CraneliftModule`] made of ready-built Cranelift functions: the form
//! in which a frontend hands CLIF to the tiered layer, or a `.clif` file
//! arrives.
//!
//! A standalone `ir::Function` names what it calls and refers to by
//! `ExternalName`s that mean nothing to a `cranelift_module::Module`; a
//! [`NameResolver`] turns each into a symbol, which the module declares as
//! an import (or finds among the module's own functions), and the function
//! is rewritten to the module's names before it is compiled.

use std::collections::HashMap;
use std::sync::Arc;

use cranelift_codegen::ir::{self, ExternalName, GlobalValueData, UserExternalName};
use cranelift_codegen::Context;
use cranelift_module::{FuncId, FuncOrDataId, Linkage, Module};
use orc_core::SymbolFlags;

use crate::compiler::CraneliftModule;

/// Maps the external names a function refers to (calls, `func_addr`,
/// `symbol_value`) to symbol names; `None` when it cannot.
pub type NameResolver = Arc<dyn Fn(&ir::Function, &ExternalName) -> Option<String> + Send + Sync>;

/// The resolver for CLIF text: `%name` is the symbol `name`, `u1:2` the
/// symbol `u1:2`, a libcall the C function (`floorf`, `memcpy`...).
pub fn testcase_name_resolver() -> NameResolver {
    let libcalls = cranelift_module::default_libcall_names();
    Arc::new(move |func, name| match name {
        ExternalName::TestCase(t) => std::str::from_utf8(t.raw()).ok().map(str::to_owned),
        ExternalName::User(r) => {
            let n = func.params.user_named_funcs().get(*r)?;
            Some(format!("u{}:{}", n.namespace, n.index))
        }
        ExternalName::LibCall(call) => Some(libcalls(*call)),
        ExternalName::KnownSymbol(_) => None,
    })
}

/// Cranelift functions, each defined under a symbol, compiled as one
/// module. See the module docs.
pub struct FunctionModule {
    name: String,
    names: NameResolver,
    functions: Vec<(String, ir::Function, SymbolFlags)>,
}

impl FunctionModule {
    /// An empty module called `name` whose functions' external names
    /// `names` resolves.
    pub fn new(name: impl Into<String>, names: NameResolver) -> Self {
        FunctionModule {
            name: name.into(),
            names,
            functions: Vec::new(),
        }
    }

    /// Adds `func`, defined under `symbol` with `flags`.
    pub fn with_function(
        mut self,
        symbol: impl Into<String>,
        func: ir::Function,
        flags: SymbolFlags,
    ) -> Self {
        self.functions.push((symbol.into(), func, flags));
        self
    }

    /// The functions added so far, with their symbols.
    pub fn functions(&self) -> impl Iterator<Item = (&str, &ir::Function)> {
        self.functions.iter().map(|(s, f, _)| (s.as_str(), f))
    }
}

impl CraneliftModule for FunctionModule {
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.functions
            .iter()
            .map(|(symbol, _, flags)| (symbol.clone(), *flags))
            .collect()
    }

    fn build(self: Box<Self>, module: &mut dyn Module) -> Result<(), String> {
        let FunctionModule {
            names, functions, ..
        } = *self;
        let mut ids = HashMap::new();
        for (symbol, func, _) in &functions {
            let id = module
                .declare_function(symbol, Linkage::Export, &func.signature)
                .map_err(|e| format!("function '{symbol}': {e}"))?;
            ids.insert(symbol.clone(), id);
        }
        for (symbol, func, _) in functions {
            let mut ctx = Context::for_function(func);
            rename(module, &names, &ids, &mut ctx.func)
                .map_err(|e| format!("function '{symbol}': {e}"))?;
            ctx.func.name = ir::UserFuncName::user(0, ids[&symbol].as_u32());
            module
                .define_function(ids[&symbol], &mut ctx)
                .map_err(|e| format!("function '{symbol}': {e}"))?;
        }
        Ok(())
    }
}

/// Rewrites `func`'s external names to `module`'s declarations.
fn rename(
    module: &mut dyn Module,
    names: &NameResolver,
    own: &HashMap<String, FuncId>,
    func: &mut ir::Function,
) -> Result<(), String> {
    let refs: Vec<ir::FuncRef> = func.dfg.ext_funcs.keys().collect();
    for r in refs {
        let ext = func.dfg.ext_funcs[r].clone();
        let symbol = names(func, &ext.name)
            .ok_or_else(|| format!("cannot resolve the callee {}", ext.name.display(None)))?;
        let id = match own.get(&symbol) {
            Some(&id) => id,
            None => {
                let sig = func.dfg.signatures[ext.signature].clone();
                match module.declare_function(&symbol, Linkage::Import, &sig) {
                    Ok(id) => id,
                    // Called with another signature elsewhere in the module
                    // (a variadic function, or C's unprototyped calls): a
                    // call is generated from its own signature, so the one
                    // declared first serves as the import for all.
                    Err(cranelift_module::ModuleError::IncompatibleSignature(..)) => {
                        match module.get_name(&symbol) {
                            Some(FuncOrDataId::Func(id)) => id,
                            _ => return Err(format!("callee '{symbol}': declared as data")),
                        }
                    }
                    Err(e) => return Err(format!("callee '{symbol}': {e}")),
                }
            }
        };
        let user = func.declare_imported_user_function(UserExternalName::new(0, id.as_u32()));
        func.dfg.ext_funcs[r].name = ExternalName::User(user);
    }
    let gvs: Vec<ir::GlobalValue> = func.global_values.keys().collect();
    for gv in gvs {
        let GlobalValueData::Symbol { name, tls, .. } = func.global_values[gv].clone() else {
            continue;
        };
        let symbol = names(func, &name)
            .ok_or_else(|| format!("cannot resolve the symbol {}", name.display(None)))?;
        // A symbol already declared (a function of this module, or one
        // called) keeps its declaration; anything else is data.
        let user = match module.get_name(&symbol) {
            Some(FuncOrDataId::Func(id)) => UserExternalName::new(0, id.as_u32()),
            Some(FuncOrDataId::Data(id)) => UserExternalName::new(1, id.as_u32()),
            None => {
                let id = module
                    .declare_data(&symbol, Linkage::Import, false, tls)
                    .map_err(|e| format!("symbol '{symbol}': {e}"))?;
                UserExternalName::new(1, id.as_u32())
            }
        };
        let user = func.declare_imported_user_function(user);
        if let GlobalValueData::Symbol { name, .. } = &mut func.global_values[gv] {
            *name = ExternalName::User(user);
        }
    }
    Ok(())
}

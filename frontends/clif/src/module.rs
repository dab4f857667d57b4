//! Tier 0 of a CLIF file: its functions as one `CraneliftModule`.
//!
//! Parsed functions name their callees and `symbol` globals by CLIF names
//! (`%foo`, `u0:3`). `cranelift-module` wants user names that are its own
//! ids (namespace 0: a `FuncId`, namespace 1: a `DataId`), so before
//! defining a function the module rewrites each such reference to the id
//! of the symbol it names (see [`crate::names`]): a function of the module,
//! or an import the JIT linker resolves by name (another module's
//! function, a host function, a process symbol).

use std::collections::HashMap;

use cranelift_codegen::ir::{ExternalName, Function, GlobalValueData, UserExternalName};
use cranelift_module::{FuncId, FuncOrDataId, Linkage, Module};
use orc_core::SymbolFlags;
use orc_cranelift::CraneliftModule;

use crate::names::{external_symbol, ExternalTarget};
use crate::nan::canonicalize_nans;

/// CLIF functions defined together under their symbols.
#[derive(Debug)]
pub struct ClifModule {
    name: String,
    functions: Vec<(String, Function)>,
    nan_canonicalization: bool,
}

impl ClifModule {
    /// A module called `name` defining each `(symbol, function)`.
    pub fn new(name: impl Into<String>, functions: Vec<(String, Function)>) -> Self {
        ClifModule {
            name: name.into(),
            functions,
            nan_canonicalization: false,
        }
    }

    /// Replaces every NaN that float arithmetic produces by the canonical
    /// NaN, as Cranelift's `enable_nan_canonicalization` does (the tier-0
    /// compiler's own flag is not set per file).
    pub fn with_nan_canonicalization(mut self, on: bool) -> Self {
        self.nan_canonicalization = on;
        self
    }
}

impl CraneliftModule for ClifModule {
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

    fn build(self: Box<Self>, module: &mut dyn Module) -> Result<(), String> {
        let mut ids: HashMap<String, FuncId> = HashMap::new();
        for (symbol, func) in &self.functions {
            let id = module
                .declare_function(symbol, Linkage::Export, &func.signature)
                .map_err(|e| format!("function {symbol}: {e}"))?;
            ids.insert(symbol.clone(), id);
        }
        for (symbol, mut func) in self.functions {
            bind_names(&mut func, module, &ids).map_err(|e| format!("function {symbol}: {e}"))?;
            if self.nan_canonicalization {
                canonicalize_nans(&mut func);
            }
            let mut ctx = module.make_context();
            ctx.func = func;
            module
                .define_function(ids[&symbol], &mut ctx)
                .map_err(|e| format!("function {symbol}: {e}"))?;
        }
        Ok(())
    }
}

/// Rewrites `func`'s references to symbols as `cranelift-module` ids,
/// declaring imports for symbols the module does not define. A `symbol`
/// global naming a function the module defines or already imports takes
/// that function's id; other `symbol` globals are data imports (the JIT
/// linker resolves both by name).
fn bind_names(
    func: &mut Function,
    module: &mut dyn Module,
    defined: &HashMap<String, FuncId>,
) -> Result<(), String> {
    let mut calls = Vec::new();
    for (fref, ext) in func.dfg.ext_funcs.iter() {
        let Some(ExternalTarget::Symbol(symbol)) = external_symbol(&ext.name, func) else {
            continue;
        };
        let id = match defined.get(&symbol) {
            Some(&id) => id,
            None => module
                .declare_function(
                    &symbol,
                    Linkage::Import,
                    &func.dfg.signatures[ext.signature],
                )
                .map_err(|e| format!("call to {symbol}: {e}"))?,
        };
        calls.push((fref, UserExternalName::new(0, id.as_u32())));
    }
    for (fref, name) in calls {
        let r = func.declare_imported_user_function(name);
        func.dfg.ext_funcs[fref].name = ExternalName::user(r);
    }
    let mut globals = Vec::new();
    for (gv, data) in func.global_values.iter() {
        let GlobalValueData::Symbol { name, tls, .. } = data else {
            continue;
        };
        let Some(ExternalTarget::Symbol(symbol)) = external_symbol(name, func) else {
            continue;
        };
        let name = match defined.get(&symbol).copied().map(FuncOrDataId::Func).or_else(|| module.get_name(&symbol)) {
            Some(FuncOrDataId::Func(id)) => UserExternalName::new(0, id.as_u32()),
            Some(FuncOrDataId::Data(id)) => UserExternalName::new(1, id.as_u32()),
            None => {
                let id = module
                    .declare_data(&symbol, Linkage::Import, true, *tls)
                    .map_err(|e| format!("symbol {symbol}: {e}"))?;
                UserExternalName::new(1, id.as_u32())
            }
        };
        globals.push((gv, name));
    }
    for (gv, new_name) in globals {
        let r = func.declare_imported_user_function(new_name);
        if let GlobalValueData::Symbol { name, .. } = &mut func.global_values[gv] {
            *name = ExternalName::user(r);
        }
    }
    Ok(())
}

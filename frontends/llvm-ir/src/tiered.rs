//! The parts of an IR program a tiered JIT composes (the facade's
//! `orc::llvm_ir` does): the data unit, the CLIF of every function
//! (tier 0, [`crate::to_clif`]), LLVM units for the functions the
//! translation cannot take (straight to tier 1, lazily or now), and tier-1
//! modules cut from the original IR for promotions.
//!
//! Every function definition of the module is a function of its own here,
//! the local ones a lazy split would compile inside their only caller's
//! unit ([`orc_llvm::partition::PlannedFunction::members`]) included: tier-0
//! code calls each through its stub. Tier-1 modules still carry a function's
//! members as internal copies, so LLVM can inline them.

use std::collections::HashMap;
use std::sync::Arc;

use orc_core::{reexports, ResourceTracker, SymbolAliasMap, SymbolAliasMapEntry, SymbolFlags};
use orc_llvm::partition::{PartitionPlan, PlannedFunction, SpeculationLimits};
use orc_llvm::LlvmModule;

use crate::program::{BatchModule, FunctionsUnit, GlobalsUnit, SplitModule};
use crate::to_clif::{self, ClifNames, ClifTranslator, Translated};
use crate::{body_symbol, IrError, IrProgram, IrTarget, LoadMode};

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

/// A function definition of an IR program, as the tiered path sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrFunction {
    /// Its symbol (the stub's name): the prepared name, promoted for local
    /// functions.
    pub name: String,
    /// Its name in the source.
    pub source_name: String,
    /// Whether it may run while the program is torn down (a destructor, an
    /// `atexit` handler): compile it before then.
    pub runs_at_exit: bool,
    /// The local functions only it calls, compiled as internal copies into
    /// its tier-1 module.
    pub members: Vec<String>,
    /// Global variables holding the addresses of its blocks (computed-goto
    /// tables), which only a module with its body can define.
    pub data: Vec<String>,
    /// Functions that must be compiled in one module with it (their code or
    /// data refers to each other's blocks).
    pub partners: Vec<String>,
}

impl IrProgram {
    /// Every function definition, module order within each unit (a unit's
    /// function, then its members).
    pub fn definitions(&self) -> Vec<IrFunction> {
        let mut out = Vec::new();
        let functions = &self.plan.functions;
        for f in functions {
            out.push(IrFunction {
                name: f.name.clone(),
                source_name: f.source_name.clone(),
                runs_at_exit: f.runs_at_exit,
                members: f.members.clone(),
                data: f.data.clone(),
                partners: f
                    .partners
                    .iter()
                    .filter_map(|&p| functions.get(p).map(|p| p.name.clone()))
                    .collect(),
            });
            for m in &f.members {
                out.push(IrFunction {
                    name: m.clone(),
                    source_name: m.clone(),
                    runs_at_exit: false,
                    members: Vec::new(),
                    data: Vec::new(),
                    partners: Vec::new(),
                });
            }
        }
        out
    }

    /// Aliases of functions: (alias, aliased function), both symbols.
    pub fn function_aliases(&self) -> &[(String, String)] {
        &self.plan.function_aliases
    }

    /// Translates every function definition to CLIF (see [`to_clif`]).
    pub fn translate_to_clif(&self, names: &mut dyn ClifNames) -> Result<Vec<Translated>, IrError> {
        to_clif::translate_module(&self.name, &self.plan.bitcode, names).map_err(|message| {
            IrError::Unsupported {
                file: self.name.clone(),
                message,
            }
        })
    }

    /// A translator that keeps the module parsed on a thread of its own
    /// and translates its functions to CLIF on request (see
    /// [`ClifTranslator`]).
    pub fn clif_translator(
        &self,
        names: Box<dyn ClifNames + Send>,
    ) -> Result<ClifTranslator, IrError> {
        ClifTranslator::start(&self.name, self.plan.bitcode.clone(), names).map_err(|message| {
            IrError::Unsupported {
                file: self.name.clone(),
                message,
            }
        })
    }

    /// Adds the module's data (global variables, constructor and destructor
    /// tables) to `target.bodies`, compiled now.
    pub fn add_data(
        &self,
        target: &IrTarget<'_>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), IrError> {
        if !self.plan.has_data {
            return Ok(());
        }
        let data = GlobalsUnit {
            name: format!("{}:globals", self.name),
            bitcode: self.plan.bitcode.clone(),
        };
        self.add_object(target, Box::new(data), tracker)
    }

    /// Defines `functions` (symbols from [`Self::definitions`]) with LLVM
    /// only: their bodies `NAME$t1` in `target.bodies` (lazily, as
    /// [`LoadMode::Lazy`] splits a module, or compiled now) and `NAME` in
    /// `target.main` (a lazy stub, or a re-export when compiled now or when
    /// the function may run at exit).
    pub fn add_tier1_functions(
        &self,
        target: &IrTarget<'_>,
        functions: &[String],
        mode: LoadMode,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), IrError> {
        if functions.is_empty() {
            return Ok(());
        }
        let all: HashMap<String, IrFunction> = self
            .definitions()
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect();
        let position: HashMap<&str, usize> = functions
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut planned = Vec::with_capacity(functions.len());
        for name in functions {
            let f = all.get(name).ok_or_else(|| IrError::Unsupported {
                file: self.name.clone(),
                message: format!("the module defines no function '{name}'"),
            })?;
            let mut partners = Vec::with_capacity(f.partners.len());
            for p in &f.partners {
                partners.push(*position.get(p.as_str()).ok_or_else(|| IrError::Unsupported {
                    file: self.name.clone(),
                    message: format!("'{name}' must be compiled with '{p}', which is not among the functions given"),
                })?);
            }
            planned.push(PlannedFunction {
                name: f.name.clone(),
                source_name: f.source_name.clone(),
                exported: false,
                runs_at_exit: f.runs_at_exit,
                members: f.members.clone(),
                size: 0,
                callees: Vec::new(),
                globals: Vec::new(),
                callers: Vec::new(),
                partners,
                data: f.data.clone(),
            });
        }
        let es = target.main.session();
        let plan = PartitionPlan {
            functions: planned,
            globals: Vec::new(),
            function_aliases: Vec::new(),
            ..self.plan.clone()
        };
        let split = Arc::new(SplitModule::new(
            &self.name,
            plan,
            target,
            SpeculationLimits::NONE,
        ));
        let all_units: Vec<usize> = (0..split.plan.functions.len()).collect();
        let compile_now = mode == LoadMode::Eager;
        if compile_now {
            self.add_object(target, split.batch_module(&all_units), tracker)?;
        } else {
            let unit = FunctionsUnit {
                functions: all_units,
                split: split.clone(),
            };
            target.bodies.define(Box::new(unit), tracker)?;
        }
        let mut lazy = SymbolAliasMap::new();
        let mut direct = SymbolAliasMap::new();
        for f in &split.plan.functions {
            let entry = SymbolAliasMapEntry {
                aliasee: es.intern(&body_symbol(&f.name)),
                flags: CALLABLE,
            };
            let map = if compile_now || f.runs_at_exit {
                &mut direct
            } else {
                &mut lazy
            };
            map.insert(es.intern(&f.name), entry);
        }
        if !lazy.is_empty() {
            target
                .main
                .define(target.lazy.lazy_reexports(target.bodies, lazy), None)?;
        }
        if !direct.is_empty() {
            target.main.define(reexports(target.bodies, direct), None)?;
        }
        Ok(())
    }

    /// A tier-1 module defining, for each `(function, body symbol)`, the
    /// function's body from the original IR under the body symbol, with its
    /// members as internal copies. Its other references (its own name
    /// included) stay declarations, bound to stubs and data.
    pub fn tier1_module(&self, functions: &[(String, String)]) -> Box<dyn LlvmModule> {
        let members: HashMap<&str, &[String]> = self
            .plan
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f.members.as_slice()))
            .collect();
        let name = match functions {
            [] => self.name.clone(),
            [(_, body)] => format!("{}:{body}", self.name),
            [(_, body), rest @ ..] => format!("{}:{body}+{}", self.name, rest.len()),
        };
        let data: HashMap<&str, &[String]> = self
            .plan
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f.data.as_slice()))
            .collect();
        let private = functions
            .iter()
            .flat_map(|(f, _)| data.get(f.as_str()).copied().unwrap_or_default())
            .cloned()
            .collect();
        Box::new(PromotionModule {
            batch: BatchModule {
                name,
                bitcode: self.plan.bitcode.clone(),
                functions: functions
                    .iter()
                    .map(|(f, body)| {
                        let m = members.get(f.as_str()).map_or(Vec::new(), |m| m.to_vec());
                        (f.clone(), m, body.clone())
                    })
                    .collect(),
            },
            private,
        })
    }

    /// Defines, in `target.main`, each alias of a function as a re-export
    /// of the function's own symbol there (its stub).
    pub fn add_function_aliases(&self, target: &IrTarget<'_>) -> Result<(), IrError> {
        let es = target.main.session();
        let aliases: SymbolAliasMap = self
            .plan
            .function_aliases
            .iter()
            .map(|(alias, f)| {
                let entry = SymbolAliasMapEntry {
                    aliasee: es.intern(f),
                    flags: CALLABLE,
                };
                (es.intern(alias), entry)
            })
            .collect();
        if !aliases.is_empty() {
            target.main.define(reexports(target.main, aliases), None)?;
        }
        Ok(())
    }
}

/// A tier-1 module of tiered functions: a [`BatchModule`] whose functions'
/// block-address tables are private copies (internal), as their tier-0
/// bodies have their own: every version keeps its own table, and no
/// symbol is defined twice.
struct PromotionModule {
    batch: BatchModule,
    private: Vec<String>,
}

impl LlvmModule for PromotionModule {
    fn name(&self) -> &str {
        self.batch.name()
    }
    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.batch.symbols()
    }
    fn build<'ctx>(
        self: Box<Self>,
        context: &'ctx orc_llvm::inkwell::context::Context,
    ) -> Result<orc_llvm::inkwell::module::Module<'ctx>, String> {
        let private = self.private;
        let module = Box::new(self.batch).build(context)?;
        for name in &private {
            if let Some(g) = module.get_global(name) {
                g.set_linkage(orc_llvm::inkwell::module::Linkage::Internal);
            }
        }
        Ok(module)
    }
}

//! The JIT tiers: Lox functions compiled through orc's tiered layer.
//!
//! One lowering (`lower.rs`) turns a function's bytecode into Cranelift IR;
//! the tiered layer of a shared [`LoxJit`] compiles it with its tier
//! policy (tier 0: Cranelift; tier 1: the layer's translation of the same
//! CLIF to LLVM; adaptive: tier 0 with counters, promoted to LLVM when
//! hot). A compiled function's entry is its tiered stub, kept in the
//! function object: the interpreter and JIT'd callers call through it, so
//! tier-up reaches them.
//!
//! Which functions get compiled is the VM's choice (`Vm::jit_compile` is
//! called by the interpreter): under `--tier 0|1` every function on its
//! first entry, under `adaptive` once its calls plus loop back-edges pass
//! the VM's threshold (then entering a hot loop from the interpreter at
//! its header).

pub(crate) mod helpers;
pub(crate) mod layout;
pub(crate) mod lower;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use orc::core::FuncId;

use crate::object::ObjRef;
use crate::vm::{RuntimeError, Vm};
use crate::Tier;

/// The default hotness (calls plus loop back-edges) at which the adaptive
/// tier compiles an interpreted function.
pub const DEFAULT_JIT_THRESHOLD: u32 = 1000;

/// The default count (calls plus loop back-edges counted in tier-0 code)
/// at which the adaptive tier has orc promote a Lox function to LLVM.
///
/// Higher than orc's default (10,000): a tier-1 compile of a lowered Lox
/// function costs tens of milliseconds of CPU time (the lowering inlines
/// every fast path), while tier-0 code of these functions already spends
/// most of its time in runtime helpers (allocation, tables), which LLVM
/// does not speed up. Measured with `cargo bench -p orc-lox --bench
/// vs_clox` (the benchmarks count CPU time, tier-up threads included): at
/// 10,000 the short benchmarks (`instantiation`, `properties`: 0.1-0.2 s)
/// lost more to LLVM compiles than they gained; at 1,000,000 only code
/// that runs long enough to repay the compile is promoted.
pub const DEFAULT_TIER1_THRESHOLD: u64 = 1_000_000;

/// A JIT for Lox VMs, shareable between VMs and threads (`Arc`): an
/// [`orc::Jit`] with the runtime helpers registered.
pub struct LoxJit {
    jit: orc::Jit,
    tier: Tier,
    threshold: u32,
}

impl std::fmt::Debug for LoxJit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoxJit")
            .field("tier", &self.tier)
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl LoxJit {
    /// A JIT for `tier` (not [`Tier::Interp`]). Thresholds come from the
    /// environment: `LOX_JIT_THRESHOLD` (adaptive: the hotness at which an
    /// interpreted function is compiled, default
    /// [`DEFAULT_JIT_THRESHOLD`]) and `LOX_TIER1_THRESHOLD` (adaptive: the
    /// count at which orc promotes tier-0 code to LLVM; default
    /// [`DEFAULT_TIER1_THRESHOLD`]).
    pub fn new(tier: Tier) -> Result<Arc<LoxJit>, String> {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let threshold = env("LOX_JIT_THRESHOLD")
            .map_or(DEFAULT_JIT_THRESHOLD, |t| t.min(u32::MAX as u64 - 1) as u32);
        let tier1 = env("LOX_TIER1_THRESHOLD").unwrap_or(DEFAULT_TIER1_THRESHOLD);
        LoxJit::with_thresholds(tier, threshold, Some(tier1))
    }

    /// A JIT for `tier` with explicit thresholds (see [`LoxJit::new`]).
    pub fn with_thresholds(
        tier: Tier,
        threshold: u32,
        tier1_threshold: Option<u64>,
    ) -> Result<Arc<LoxJit>, String> {
        let orc_tier = match tier {
            Tier::Interp => return Err("the interpreter needs no JIT".into()),
            Tier::Tier0 => orc::Tier::Zero,
            Tier::Tier1 => orc::Tier::One,
            Tier::Adaptive => orc::Tier::Adaptive,
        };
        // Cranelift optimizes under adaptive tiering too (orc's default
        // there is `none`): the lowering leaves it constants to fold and
        // NaN-box checks to share, and most Lox functions stay in tier 0.
        let mut builder = orc::Jit::builder()
            .tier(orc_tier)
            .opt_level(orc::cranelift::OptLevel::Speed);
        if let Ok(level) = std::env::var("LOX_LLVM_OPT") {
            let opt_level = match level.as_str() {
                "0" => orc::llvm::LlvmOptLevel::O0,
                "1" => orc::llvm::LlvmOptLevel::O1,
                "3" => orc::llvm::LlvmOptLevel::O3,
                _ => orc::llvm::LlvmOptLevel::O2,
            };
            builder = builder.llvm_config(orc::llvm::LlvmConfig {
                opt_level,
                ..Default::default()
            });
        }
        if std::env::var_os("LOX_DUMP_LLVM").is_some() {
            builder = builder.dump(orc::DumpOptions {
                llvm_ir: true,
                ..Default::default()
            });
        }
        if let Some(t) = tier1_threshold {
            builder = builder.tier_threshold(t.max(1));
        }
        let jit = builder.build().map_err(|e| e.to_string())?;
        for (name, f) in helpers::HELPERS {
            jit.define_host_function(name, *f)
                .map_err(|e| e.to_string())?;
        }
        Ok(Arc::new(LoxJit {
            jit,
            tier,
            threshold: threshold.min(u32::MAX - 1),
        }))
    }

    /// The tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The orc JIT underneath.
    pub fn orc(&self) -> &orc::Jit {
        &self.jit
    }

    /// Functions compiled for VMs that are alive (dropped VMs release
    /// theirs).
    pub fn live_functions(&self) -> usize {
        self.jit.tiered().stats().len()
    }

    /// The VM hotness threshold at which functions are compiled.
    fn vm_threshold(&self) -> u32 {
        match self.tier {
            Tier::Adaptive => self.threshold,
            _ => 0,
        }
    }
}

/// Counts VMs, to give each VM's functions names of their own.
static NEXT_VM: AtomicU64 = AtomicU64::new(0);

/// A VM's JIT state.
pub(crate) struct VmJit {
    shared: Arc<LoxJit>,
    id: u64,
    /// The functions this VM defined in the tiered layer.
    compiled: Vec<FuncId>,
    /// Why compiles failed (the functions stay interpreted).
    failures: Vec<String>,
    /// The inline caches of the compiled code (which embeds their
    /// addresses): kept until the code is removed.
    sites: Vec<Box<[helpers::Site]>>,
}

impl Drop for VmJit {
    /// The VM is going away: its compiled functions (their code in every
    /// tier and their stubs) go with it. Nothing can call them any more:
    /// they embed this VM's addresses and are reached only from its
    /// function objects.
    fn drop(&mut self) {
        if let Err(e) = self.shared.jit.tiered().remove(&self.compiled) {
            if std::env::var_os("LOX_JIT_DEBUG").is_some() {
                eprintln!("lox: releasing compiled code failed: {e}");
            }
        }
    }
}

/// What a VM's JIT did: see [`Vm::jit_stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JitStats {
    /// Functions compiled.
    pub compiled: usize,
    /// Compiles that failed, with why (those functions were interpreted).
    pub failures: Vec<String>,
    /// Compiled functions whose current code is LLVM's (tier 1).
    pub in_tier1: usize,
}

impl Vm {
    /// Runs this VM's functions through `jit` from now on, in its tier.
    pub fn set_jit(&mut self, jit: Arc<LoxJit>) {
        self.jit_threshold = jit.vm_threshold();
        self.jit = Some(VmJit {
            shared: jit,
            id: NEXT_VM.fetch_add(1, Ordering::Relaxed),
            compiled: Vec::new(),
            failures: Vec::new(),
            sites: Vec::new(),
        });
    }

    /// What the JIT did so far.
    pub fn jit_stats(&self) -> JitStats {
        match &self.jit {
            Some(j) => {
                let mine: std::collections::HashSet<FuncId> = j.compiled.iter().copied().collect();
                let in_tier1 = j
                    .shared
                    .jit
                    .tiered()
                    .stats()
                    .iter()
                    .filter(|s| mine.contains(&s.id) && s.tier == Some(orc::core::CodeTier::One))
                    .count();
                JitStats {
                    compiled: j.compiled.len(),
                    failures: j.failures.clone(),
                    in_tier1,
                }
            }
            None => JitStats::default(),
        }
    }

    /// Pins the JIT's reclaimer while JIT'd code may run (see
    /// [`orc::core::Reclaimer`]).
    pub(crate) fn jit_pin(&self) -> Option<orc::core::PinGuard> {
        self.jit.as_ref().map(|j| j.shared.jit.enter())
    }

    /// Compiles `function` through the tiered layer; returns its entry (its
    /// stub), or 0 when it cannot be compiled (it stays interpreted).
    pub(crate) fn jit_compile(&mut self, function: ObjRef) -> u64 {
        let f = function.as_function();
        let addrs = lower::VmAddrs {
            stack: self.stack.as_ptr() as u64,
            frames: self.frames.slots.as_ptr() as u64,
            globals: self.globals.as_ptr() as u64,
        };
        let Some(j) = self.jit.as_mut() else {
            f.jit.failed.set(true);
            return 0;
        };
        let name = match f.name {
            Some(n) => n.as_string().chars.to_string(),
            None => "script".to_string(),
        };
        let symbol = format!("lox{}.{}.{}", j.id, j.compiled.len(), name);
        let tiered = j.shared.jit.tiered();
        let mut id = None;
        let result = (|| -> Result<u64, String> {
            let (clif, sites) = lower::lower(f, &addrs, tiered, j.shared.jit.frontend_config())?;
            j.sites.push(sites);
            if std::env::var_os("LOX_DUMP_CLIF").is_some() {
                eprintln!("; {symbol}\n{}", clif.display());
            }
            let new = tiered.declare(&symbol).map_err(|e| e.to_string())?;
            id = Some(new);
            tiered
                .define(vec![(new, clif)])
                .map_err(|e| e.to_string())?;
            tiered
                .functions()
                .compile_now(&[new])
                .map_err(|e| e.to_string())?;
            Ok(tiered.address(new).map_err(|e| e.to_string())?.0)
        })();
        if let Some(id) = id {
            j.compiled.push(id);
        }
        match result {
            Ok(entry) => {
                f.jit.entry.set(entry);
                entry
            }
            Err(why) => {
                f.jit.failed.set(true);
                if std::env::var_os("LOX_JIT_DEBUG").is_some() {
                    eprintln!("lox: cannot compile {symbol}: {why}");
                }
                j.failures.push(format!("{symbol}: {why}"));
                0
            }
        }
    }

    /// Runs the top frame's compiled code, `entry`, from bytecode offset
    /// `at` (0 or a loop header) to its return.
    pub(crate) fn call_jit(
        &mut self,
        entry: u64,
        base: usize,
        at: usize,
    ) -> Result<(), RuntimeError> {
        // SAFETY: `entry` is the stub of a function `jit_compile` compiled
        // for this VM with `lower::signature()` (three i64s to an i64,
        // System V: the C ABI of this type), through the JIT this VM holds
        // (so the code stays mapped: it is released only when the VM goes).
        // The code reads and writes the VM only through `self`'s address
        // and the fixed arrays it embedded, while `self` is not otherwise
        // used; `at` is 0 or a loop header of the function, which the
        // lowering makes entries.
        let code = unsafe {
            std::mem::transmute::<usize, extern "C" fn(*mut Vm, u64, u64) -> u64>(entry as usize)
        };
        let status = code(self as *mut Vm, base as u64, at as u64);
        if status == 0 {
            Ok(())
        } else {
            Err(RuntimeError)
        }
    }

    /// After a helper called something that may have pushed a frame: runs
    /// that frame to its return.
    pub(crate) fn finish_call(&mut self, depth: usize) -> Result<(), RuntimeError> {
        if self.frames.len() > depth {
            self.run(depth)
        } else {
            Ok(())
        }
    }

    /// Collects if it is time.
    pub(crate) fn safepoint(&mut self) {
        if self.heap.should_collect() {
            self.collect_garbage();
        }
    }
}

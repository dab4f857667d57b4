//! Helpers of the embedding tests: JITs per tier, CLIF text defined
//! through the tiered layer.
#![allow(dead_code)]

use orc::clif_frontend::ClifFile;
use orc::{Jit, Tier};

/// A JIT of `tier` (adaptive: threshold 10, promotions on the thread that
/// trips them, so tier-up happens during the calls).
pub(crate) fn jit(tier: Tier) -> Jit {
    Jit::builder()
        .tier(tier)
        .tier_threshold(10)
        .tier_up_threads(0)
        .build()
        .expect("jit")
}

/// An eager JIT (compile errors surface at definition).
pub(crate) fn eager_jit(tier: Tier) -> Jit {
    Jit::builder().tier(tier).lazy(false).build().expect("jit")
}

/// Defines (or redefines) every function of the CLIF `text` in the tiered
/// layer, under its `%name`.
pub(crate) fn define(jit: &Jit, text: &str) -> Result<(), orc::Error> {
    let file = ClifFile::parse("test.clif", text).expect("valid CLIF text");
    let tiered = jit.tiered();
    let mut defs = Vec::new();
    for f in file.functions {
        let id = match tiered.functions().id(&f.symbol) {
            Some(id) => id,
            None => tiered.declare(&f.symbol)?,
        };
        defs.push((id, f.func));
    }
    tiered.define(defs)?;
    Ok(())
}

/// Parses one CLIF function.
pub(crate) fn parse_one(text: &str) -> orc::cranelift::codegen::ir::Function {
    let mut file = ClifFile::parse("test.clif", text).expect("valid CLIF text");
    file.functions.remove(0).func
}

pub(crate) const TIERS: [Tier; 3] = [Tier::Zero, Tier::One, Tier::Adaptive];

//! Adaptive tiering, without any IR: when a function is hot enough for the
//! optimizing tier ([`TierManager`], `manager.rs`), and what a function is
//! across its tiers and versions ([`TieredFunctions`], `functions.rs`):
//! its stub, its current body, the versions a redefinition makes, the
//! repoint a promotion makes, the on-stack-replacement slots of its tier-0
//! loops (`osr.rs`), and the release of bodies nothing runs any more.
//!
//! What compiling means is the registrant's business: tier-0 bodies are
//! added by whoever knows the IR, and promotion calls a [`Tier1Compiler`].
//! Body symbols are named in one place, [`body_symbol`] and
//! [`osr_entry_symbol`]. Changes can be logged as they happen ([`TierTrace`],
//! `trace.rs`).

mod functions;
mod manager;
pub(crate) use manager::{trip_from_executor, CONTEXT_IN_PLACE};
mod osr;
mod trace;

pub use functions::{
    body_symbol, osr_entry_symbol, Body, CodeTier, Definition, FuncId, FunctionStats,
    Tier1Compiler, Tier1Request, TieredFunctions, TieredFunctionsConfig,
};
pub use manager::{
    BatchPromoteFn, FunctionTierStats, PromoteFn, Promotion, ThresholdPolicy, TierManager,
    TierPolicy, TierState, TripCounter,
};
pub use osr::OsrSlot;
pub use trace::{FunctionNames, TierEvent, TierTrace};

//! Tier 0 of orc: a layer that compiles Cranelift IR to relocatable objects
//! and hands them to the core's JIT linker. Filled in by the tier-0 issue.

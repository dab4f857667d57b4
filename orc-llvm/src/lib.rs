//! Tier 1 of orc: a layer that compiles LLVM IR (through inkwell, LLVM 19)
//! to optimized relocatable objects for the core's JIT linker. Filled in by
//! the tier-1 issue.

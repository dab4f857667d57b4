//! The Kaleidoscope language of LLVM's JIT tutorial as an orc frontend.
#![forbid(unsafe_code)]

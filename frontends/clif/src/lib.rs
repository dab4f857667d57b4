//! Cranelift IR text (CLIF) as an orc frontend: files parsed with
//! `cranelift-reader`, their `; run:` directives, the symbols CLIF
//! functions define, and the test trampoline that lets the host call any
//! CLIF signature.
//!
//! Names: a function named `%foo` (a test-case name) defines the symbol
//! `foo`; one named `u0:3` (a user name) defines `u0:3` (see
//! [`function_symbol`]). Calls and `symbol` globals name their targets the
//! same way (`orc_cranelift::testcase_name_resolver`), so calls between
//! functions of a file, and to host or process symbols such as `%putchar`,
//! bind by these symbols.
//!
//! This crate never runs code; the facade (`orc::clif`) compiles the
//! functions (as `orc_cranelift::FunctionModule`s for tier 0) and calls
//! them through [`trampoline`] with slots made by [`values`].
#![forbid(unsafe_code)]

mod error;
mod nan;
mod parse;
mod tier0;
pub mod trampoline;
pub mod values;

pub use error::ClifError;
pub use nan::canonicalize_nans;
pub use parse::{function_symbol, ClifFile, ClifFunction, Directive, FileSettings};
pub use tier0::{signature_obstacle, tier0_obstacle};

pub use values::{decode_results, encode_args, ValuesError};

/// Re-exported so users build against the same Cranelift version.
pub use cranelift_codegen::data_value::DataValue;
/// Re-exported: a directive's parsed command.
pub use cranelift_reader::{Comparison, Invocation, RunCommand};

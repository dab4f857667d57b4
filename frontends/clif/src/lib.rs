//! Cranelift IR text (CLIF) as an orc frontend: files parsed with
//! `cranelift-reader`, their `; run:` directives, the name mapping that
//! turns CLIF function names into symbols, and the test trampoline that
//! lets the host call any CLIF signature.
//!
//! This crate never runs code; the facade (`orc::clif`) links the functions
//! and calls them through [`trampoline`] with slots made by [`values`].
#![forbid(unsafe_code)]

mod error;
mod module;
pub mod names;
mod nan;
mod parse;
pub mod trampoline;
pub mod values;

pub use error::ClifError;
pub use module::ClifModule;
pub use nan::canonicalize_nans;
pub use parse::{ClifFile, ClifFunction, Directive, FileSettings};

pub use values::{decode_results, encode_args, ValuesError};

/// Re-exported so users build against the same Cranelift version.
pub use cranelift_codegen::data_value::DataValue;
/// Re-exported: a directive's parsed command.
pub use cranelift_reader::{Comparison, Invocation, RunCommand};

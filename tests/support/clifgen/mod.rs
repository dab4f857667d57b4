//! A random CLIF function generator for differential testing of the
//! CLIF -> LLVM translation (issue 21, item 5).
//!
//! A case is reproducible from one `u64` seed: a SplitMix64 stream fills a
//! byte buffer that `arbitrary::Unstructured` turns into decisions. A case is
//! a main function (`u0:1`) and, usually, a second function (`u0:0`) that
//! main calls, plus a list of inputs for main. Every function passes the
//! Cranelift verifier; a verifier error is a generator bug, reported as an
//! error, never skipped.
//!
//! Determinism is the generator's invariant: every generated function
//! computes the same results (or the same trap) under every correct
//! implementation of Cranelift's semantics. Two things in CLIF are
//! genuinely not determined and the generator keeps them out:
//! - the bits of a NaN produced by arithmetic (its sign and payload differ
//!   between x86, the interpreter's host float operations and LLVM's
//!   constant folder). Without NaN canonicalization, such floats are
//!   returned (and compared as "both NaN") or compared, but turned into
//!   bits (`bitcast` to an integer, stores, `fcopysign`'s sign source)
//!   only after laundering (any NaN replaced by the canonical one); see
//!   `builder::FloatClass`. With NaN canonicalization on (a quarter of
//!   the cases), every float is exact and may flow anywhere;
//! - the contents of a stack slot before it is written: slots are zeroed at
//!   entry.
//!
//! Results carry a digest of every variable at the end, so a wrong value
//! anywhere in a function shows in its results.
//!
//! Constructs are limited to what Cranelift's x86-64 backend compiles with
//! the tier-0 compiler's flags (each limit is noted where it applies): no
//! `i128` in signatures, no `i128` division, high multiplies, min/max or
//! multiply-with-overflow, float-to-integer conversions only to `i32` and
//! `i64`, no `return_call`.
//!
//! Submodules: `builder` (variables, values and the function skeleton),
//! `control` (regions: branches, `br_table`, bounded loops, calls, traps),
//! `int_ops`, `float_ops`, `memory` (stack slots) and `inputs` (argument
//! values, edge cases first).

mod builder;
mod control;
mod float_ops;
mod inputs;
mod int_ops;
mod memory;

pub use builder::frontend_config;

use arbitrary::Unstructured;
use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{
    types, AbiParam, ExternalName, Function, Signature, Type, UserFuncName,
};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings;

/// The user-name index of the second (called) function: `u0:0`.
pub const CALLEE_INDEX: u32 = 0;
/// The user-name index of the main function: `u0:1`.
pub const MAIN_INDEX: u32 = 1;

/// The integer types the generator uses.
pub const INT_TYPES: [Type; 5] = [types::I8, types::I16, types::I32, types::I64, types::I128];
/// The float types the generator uses.
pub const FLOAT_TYPES: [Type; 2] = [types::F32, types::F64];

/// One generated test case.
#[derive(Clone, Debug)]
pub struct Case {
    /// The seed the case was generated from.
    pub seed: u64,
    /// The function main may call (`u0:0`), if any.
    pub callee: Option<Function>,
    /// The function under test (`u0:1`).
    pub main: Function,
    /// Whether NaN canonicalization applies to the case.
    pub nan_canonicalization: bool,
    /// Argument lists for `main`, one per run.
    pub inputs: Vec<Vec<DataValue>>,
}

impl Case {
    /// The functions of the case, the callee first.
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        self.callee.iter().chain(std::iter::once(&self.main))
    }

    /// The CLIF text of every function, with the flags line a `.clif`
    /// file would carry.
    pub fn clif_text(&self) -> String {
        let mut text = String::new();
        if self.nan_canonicalization {
            text.push_str("set enable_nan_canonicalization=true\n");
        }
        text.push_str("target x86_64\n\n");
        for func in self.functions() {
            text.push_str(&func.display().to_string());
            text.push('\n');
        }
        text
    }
}

impl Case {
    /// The case as the body of a `.clif` run-test file (the format of
    /// `orc test`): the functions renamed `%g` (callee) and `%f` (main),
    /// followed by one `; run:` line per `(arguments, results)` pair.
    pub fn run_test_text(&self, runs: &[(Vec<DataValue>, Vec<DataValue>)]) -> String {
        let mut text = String::from("test run\n");
        if self.nan_canonicalization {
            text.push_str("set enable_nan_canonicalization=true\n");
        }
        text.push_str("target x86_64\n\n");
        if let Some(callee) = &self.callee {
            let mut g = callee.clone();
            g.name = UserFuncName::testcase("g");
            text.push_str(&g.display().to_string());
            text.push('\n');
        }
        let mut f = self.main.clone();
        f.name = UserFuncName::testcase("f");
        let refs: Vec<_> = f.dfg.ext_funcs.keys().collect();
        for r in refs {
            f.dfg.ext_funcs[r].name = ExternalName::testcase("g");
        }
        text.push_str(&f.display().to_string());
        for (args, results) in runs {
            let args: Vec<String> = args.iter().map(ToString::to_string).collect();
            let results: Vec<String> = results.iter().map(ToString::to_string).collect();
            let results = match results.as_slice() {
                [one] => one.clone(),
                many => format!("[{}]", many.join(", ")),
            };
            text.push_str(&format!("; run: %f({}) == {results}\n", args.join(", ")));
        }
        text
    }
}

/// A generator bug: a generated function the verifier rejects.
#[derive(Debug)]
pub struct GenError {
    /// The seed.
    pub seed: u64,
    /// The verifier's message.
    pub message: String,
    /// The offending function's text.
    pub clif: String,
}

impl std::fmt::Display for GenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "generator bug for seed {}: {}\n{}",
            self.seed, self.message, self.clif
        )
    }
}

/// How many inputs each case gets.
pub const INPUTS_PER_CASE: usize = 12;

/// Generates the case of `seed`.
pub fn generate(seed: u64) -> Result<Case, GenError> {
    let bytes = prng_bytes(seed, 16 * 1024);
    let mut u = Unstructured::new(&bytes);
    let nan_canonicalization = u.ratio(1u8, 4).unwrap_or(false);
    // A few cases use the `tail` convention (both functions, and the
    // trampoline's call). Not `return_call`: Cranelift's x86-64 emitter
    // panics on it unless frame pointers are preserved, which the tier-0
    // compiler does not ask for.
    let tail = u.ratio(1u8, 12).unwrap_or(false);
    let call_conv = if tail {
        CallConv::Tail
    } else if u.ratio(1u8, 8).unwrap_or(false) {
        CallConv::Fast
    } else {
        CallConv::SystemV
    };
    let callee = if tail || u.ratio(2u8, 3).unwrap_or(false) {
        let sig = random_signature(&mut u, call_conv);
        Some(builder::build_function(
            &mut u,
            UserFuncName::user(0, CALLEE_INDEX),
            sig,
            None,
            nan_canonicalization,
        ))
    } else {
        None
    };
    let sig = random_signature(&mut u, call_conv);
    let main = builder::build_function(
        &mut u,
        UserFuncName::user(0, MAIN_INDEX),
        sig,
        callee.as_ref().map(|f| f.signature.clone()),
        nan_canonicalization,
    );
    let flags = settings::Flags::new(settings::builder());
    for func in callee.iter().chain(std::iter::once(&main)) {
        if let Err(errors) = cranelift_codegen::verify_function(func, &flags) {
            return Err(GenError {
                seed,
                message: errors.to_string(),
                clif: func.display().to_string(),
            });
        }
    }
    // The inputs come from their own stream so that a change in how much
    // the functions consume does not change them.
    let input_bytes = prng_bytes(seed ^ 0x5eed_1a9e_7000_0001, 4096);
    let mut iu = Unstructured::new(&input_bytes);
    // Without parameters, one call says everything.
    let n_inputs = if main.signature.params.is_empty() {
        1
    } else {
        INPUTS_PER_CASE
    };
    let inputs = inputs::generate(&mut iu, &main.signature, n_inputs);
    Ok(Case {
        seed,
        callee,
        main,
        nan_canonicalization,
        inputs,
    })
}

/// A random signature of `call_conv`: up to eight parameters of any scalar type
/// but `i128` (beyond six integers, they go on the stack), one or two
/// results.
///
/// `i128` stays inside functions: Cranelift's x86-64 backend accepts it in
/// a signature only with its `enable_llvm_abi_extensions` flag, which the
/// tier-0 compiler does not set (it panics otherwise).
fn random_signature(u: &mut Unstructured<'_>, call_conv: CallConv) -> Signature {
    let all: Vec<Type> = INT_TYPES
        .iter()
        .chain(FLOAT_TYPES.iter())
        .copied()
        .filter(|&t| t != types::I128)
        .collect();
    let mut sig = Signature::new(call_conv);
    let n_params = match u.int_in_range(0u8..=19).unwrap_or(0) {
        0 => 0,
        1..=4 => u.int_in_range(5..=8).unwrap_or(5),
        _ => u.int_in_range(1..=4).unwrap_or(1),
    };
    for _ in 0..n_params {
        let ty = *u.choose(&all).unwrap_or(&types::I64);
        sig.params.push(abi_param(u, ty));
    }
    let n_results = u.int_in_range(1..=2).unwrap_or(1);
    for _ in 0..n_results {
        let ty = *u.choose(&all).unwrap_or(&types::I64);
        sig.returns.push(abi_param(u, ty));
    }
    sig
}

/// An ABI parameter of `ty`, sometimes with an extension attribute (for
/// narrow integers: the caller or callee widens it to 32 bits).
fn abi_param(u: &mut Unstructured<'_>, ty: Type) -> AbiParam {
    let param = AbiParam::new(ty);
    if ty.is_int() && ty.bits() < 32 {
        match u.int_in_range(0..=3).unwrap_or(0) {
            1 => return param.uext(),
            2 => return param.sext(),
            _ => {}
        }
    }
    param
}

/// `len` bytes of the SplitMix64 stream seeded with `seed`.
pub fn prng_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

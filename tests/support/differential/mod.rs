//! The differential harness: runs each generated case three ways (the
//! interpreter, Cranelift's native code, the translation compiled by LLVM)
//! and, when the case has a callee, twice more with the tiers mixed
//! (Cranelift's main calling the translated callee and the other way
//! round, as tier-0 and tier-1 code call each other in a tiered program),
//! and compares results and traps.
//!
//! Opinions are normalized to a [`Verdict`]: values, or a trap (with its
//! code where the runner can tell it: the interpreter always, LLVM code
//! through its `ud1` byte, Cranelift code never, since its `ud2` carries
//! no code), or a crash. Floats are compared bit for bit, except that two
//! NaNs are equal unless both sides must agree on NaN bits (native
//! Cranelift against LLVM under NaN canonicalization; the interpreter does
//! not model the NaN bits x86 produces).

pub mod child;
pub mod interp;
pub mod native;

use std::collections::BTreeMap;
use std::fmt;

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{Function, Signature};
use cranelift_codegen::Context;

use crate::support::clifgen::{self, Case};
use child::{CallOutcome, TrapInsn};
use interp::InterpOutcome;
use native::{LlvmLinkError, NativeJit};

/// One runner's normalized outcome of a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The results.
    Values(Vec<DataValue>),
    /// A trap, with its code byte when the runner can tell.
    Trap(Option<u8>),
    /// Anything else: a fault that is not a trap, a timeout.
    Crash(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Values(values) => {
                let shown: Vec<String> = values.iter().map(show_value).collect();
                write!(f, "[{}]", shown.join(", "))
            }
            Verdict::Trap(Some(code)) => write!(f, "trap (code {code})"),
            Verdict::Trap(None) => write!(f, "trap"),
            Verdict::Crash(why) => write!(f, "crash: {why}"),
        }
    }
}

fn show_value(v: &DataValue) -> String {
    match v {
        DataValue::F32(x) => format!("{x} (0x{:08x})", x.bits()),
        DataValue::F64(x) => format!("{x} (0x{:016x})", x.bits()),
        other => other.to_string(),
    }
}

/// Counts of one run of the harness.
#[derive(Debug, Default)]
pub struct Summary {
    /// Cases generated.
    pub cases: usize,
    /// Calls made (per runner).
    pub inputs: usize,
    /// Calls on which every runner that ran agreed.
    pub agreements: usize,
    /// Calls that trapped (by the agreed verdict).
    pub traps: usize,
    /// Calls the interpreter could not run, by reason.
    pub interpreter_unsupported: BTreeMap<String, usize>,
    /// Cases the translator refused, by the construct it named.
    pub skipped: BTreeMap<String, usize>,
    /// Cases where the LLVM runner took part.
    pub translated: usize,
    /// Of those, cases also run with the tiers mixed (each main calling
    /// the other tier's callee).
    pub mixed: usize,
    /// Every disagreement, as a report.
    pub disagreements: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "clif differential: {} cases ({} translated, {} also with mixed tiers), {} inputs, {} agreements ({} traps), {} disagreements",
            self.cases,
            self.translated,
            self.mixed,
            self.inputs,
            self.agreements,
            self.traps,
            self.disagreements.len()
        )?;
        for (what, n) in &self.skipped {
            writeln!(f, "  skipped (translator): {what}: {n}")?;
        }
        for (what, n) in &self.interpreter_unsupported {
            writeln!(f, "  interpreter could not run: {what}: {n}")?;
        }
        Ok(())
    }
}

/// The harness: the session the cases are linked into.
pub struct Harness {
    jit: NativeJit,
    next_id: u64,
}

impl Harness {
    /// A harness with a fresh session.
    pub fn new() -> Harness {
        Harness {
            jit: NativeJit::new(),
            next_id: 0,
        }
    }

    /// Generates and runs the case of `seed`, adding to `summary`.
    pub fn run_seed(&mut self, seed: u64, summary: &mut Summary) {
        summary.cases += 1;
        let case = match clifgen::generate(seed) {
            Ok(case) => case,
            Err(e) => return summary.disagreements.push(e.to_string()),
        };
        if let Err(report) = self.run_case(&case, summary) {
            summary
                .disagreements
                .push(format!("seed {seed}: {report}\n{}", case.clif_text()));
        }
    }

    /// Modules the LLVM layer compiled so far.
    pub fn tier1_modules(&self) -> usize {
        self.jit.llvm.stats().modules
    }

    fn run_case(&mut self, case: &Case, summary: &mut Summary) -> Result<(), String> {
        self.run_case_as(case, case, summary)
    }

    /// Runs `case`, translating `tier1`'s functions instead of its own for
    /// the LLVM runner (the same case, except in the harness's own tests,
    /// which check that a difference is caught). Err: the report of a
    /// disagreement.
    pub fn run_case_as(
        &mut self,
        case: &Case,
        tier1: &Case,
        summary: &mut Summary,
    ) -> Result<(), String> {
        let id = self.next_id;
        self.next_id += 1;
        let compiled = self.as_compiled(case)?;
        let linked = self
            .jit
            .link_cranelift(id, case, compiled.clone())
            .map_err(|e| format!("cranelift could not compile the case: {e}"))?;
        let slots: Vec<_> = case
            .inputs
            .iter()
            .map(|args| native::encode(args, &case.main.signature))
            .collect();
        let cranelift = child::run_calls(linked.trampoline, linked.main, &slots);
        // The other runners: (name, outcomes, how their traps are marked).
        let mut native_runs: Vec<NativeRun> = Vec::new();
        match self.jit.link_llvm(&format!("l{id}"), tier1, None) {
            Ok(llvm) => {
                summary.translated += 1;
                let outcomes = child::run_calls(linked.trampoline, llvm.main, &slots);
                native_runs.push(("llvm", outcomes, TrapMarks::Llvm));
                if let Some(callee) = &case.callee {
                    let mixed = self.run_mixed(id, tier1, &compiled, callee, &linked, &slots)?;
                    native_runs.extend(mixed);
                    summary.mixed += 1;
                }
            }
            Err(LlvmLinkError::Unsupported(what)) => {
                *summary.skipped.entry(what).or_default() += 1;
            }
            Err(LlvmLinkError::Failed(e)) => {
                return Err(format!("the translation failed to compile: {e}"));
            }
        }
        drop(linked);
        let (callee, main) = match compiled.as_slice() {
            [callee, main] => (Some(callee), main),
            [main] => (None, main),
            _ => unreachable!("a case has one or two functions"),
        };
        let interp_callee = callee.map(interp::work_around_interpreter_deviations);
        let interp_main = interp::work_around_interpreter_deviations(main);
        let mut report = String::new();
        // `; run:` lines of the disagreeing inputs, with the interpreter's
        // results (or Cranelift's where it could not run).
        let mut runs = Vec::new();
        for (i, (args, native_outcome)) in case.inputs.iter().zip(cranelift).enumerate() {
            summary.inputs += 1;
            let interp = match interp::run(interp_callee.as_ref(), &interp_main, args) {
                InterpOutcome::Returned(values) => Some(Verdict::Values(values)),
                InterpOutcome::Trap(code) => Some(Verdict::Trap(Some(code))),
                InterpOutcome::Unsupported(why) => {
                    *summary
                        .interpreter_unsupported
                        .entry(first_line(&why))
                        .or_default() += 1;
                    None
                }
            };
            let sig = &case.main.signature;
            let cranelift = native_verdict(sig, native_outcome, TrapMarks::Cranelift);
            let mut opinions = vec![("cranelift", cranelift)];
            for (who, outcomes, marks) in &native_runs {
                opinions.push((who, native_verdict(sig, outcomes[i], *marks)));
            }
            if let Some(interp) = interp {
                opinions.insert(0, ("interpreter", interp));
            }
            let mut ok = true;
            for i in 0..opinions.len() {
                for j in i + 1..opinions.len() {
                    let exact_nan = case.nan_canonicalization
                        && opinions[i].0 != "interpreter"
                        && opinions[j].0 != "interpreter";
                    if !agree(&opinions[i].1, &opinions[j].1, exact_nan) {
                        ok = false;
                    }
                }
            }
            if ok {
                summary.agreements += 1;
                if matches!(opinions[0].1, Verdict::Trap(_)) {
                    summary.traps += 1;
                }
            } else {
                if let Some((_, Verdict::Values(values))) = opinions.first() {
                    runs.push((args.clone(), values.clone()));
                }
                let shown: Vec<String> = args.iter().map(show_value).collect();
                report.push_str(&format!("  inputs ({}):\n", shown.join(", ")));
                for (who, verdict) in &opinions {
                    report.push_str(&format!("    {who}: {verdict}\n"));
                }
            }
        }
        if report.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the runners disagree\n{report}as a run-test file (expected values from the first runner):\n{}",
                case.run_test_text(&runs)
            ))
        }
    }

    /// Runs the two mixed-tier versions of a case with a callee: Cranelift's
    /// main calling the translated callee, and the translated main calling
    /// Cranelift's callee (as tier-0 and tier-1 code call each other in a
    /// tiered program).
    fn run_mixed(
        &self,
        id: u64,
        tier1: &Case,
        compiled: &[Function],
        callee: &Function,
        linked: &native::Linked,
        slots: &[[u128; child::SLOTS]],
    ) -> Result<Vec<NativeRun>, String> {
        let main = compiled.last().cloned().ok_or("no main")?;
        let to_llvm = self
            .jit
            .link_cranelift_main(
                tier1.seed,
                &format!("m{id}"),
                main,
                &format!("l{id}_g"),
                callee.signature.clone(),
            )
            .map_err(|e| format!("cranelift could not compile main calling llvm: {e}"))?;
        let to_cranelift =
            match self
                .jit
                .link_llvm(&format!("n{id}"), tier1, Some(&format!("c{id}_g")))
            {
                Ok(linked) => linked,
                Err(LlvmLinkError::Unsupported(what) | LlvmLinkError::Failed(what)) => {
                    return Err(format!("the translation of main alone failed: {what}"));
                }
            };
        Ok(vec![
            (
                "cranelift main, llvm callee",
                child::run_calls(linked.trampoline, to_llvm.main, slots),
                TrapMarks::Either,
            ),
            (
                "llvm main, cranelift callee",
                child::run_calls(linked.trampoline, to_cranelift.main, slots),
                TrapMarks::Either,
            ),
        ])
    }

    /// The case's functions as Cranelift compiles them: with NaN
    /// canonicalization applied when the case sets it (Cranelift's own
    /// pass, which the compiler runs when the flag is set).
    fn as_compiled(&self, case: &Case) -> Result<Vec<Function>, String> {
        case.functions()
            .map(|f| {
                if !case.nan_canonicalization {
                    return Ok(f.clone());
                }
                let mut ctx = Context::for_function(f.clone());
                ctx.canonicalize_nans(self.jit.cranelift.compiler().isa())
                    .map_err(|e| format!("nan canonicalization failed: {e:?}"))?;
                Ok(ctx.func)
            })
            .collect()
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_owned()
}

/// A native runner's name, outcomes (one per input) and trap marks.
type NativeRun = (&'static str, Vec<CallOutcome>, TrapMarks);

/// How a runner's code marks traps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapMarks {
    /// Cranelift: `ud2` without a code, or a hardware division fault.
    Cranelift,
    /// The translation: `ud1` with the code; anything else is a crash.
    Llvm,
    /// Code of both tiers calling each other: either kind.
    Either,
}

/// A native call's outcome as a verdict.
pub fn native_verdict(sig: &Signature, outcome: CallOutcome, marks: TrapMarks) -> Verdict {
    match outcome {
        CallOutcome::Returned(slots) => match orc_clif::values::decode_results(&slots, sig) {
            Ok(values) => Verdict::Values(values),
            Err(e) => Verdict::Crash(format!("results do not decode: {e}")),
        },
        CallOutcome::Signal { signo, insn } => {
            let llvm = marks != TrapMarks::Cranelift;
            let cranelift = marks != TrapMarks::Llvm;
            match (signo, insn) {
                (libc::SIGILL, TrapInsn::Ud1(code)) if llvm => Verdict::Trap(Some(code)),
                (libc::SIGILL, TrapInsn::Ud2) | (libc::SIGFPE, _) if cranelift => {
                    Verdict::Trap(None)
                }
                _ => Verdict::Crash(format!("signal {signo} at {insn:?}")),
            }
        }
        CallOutcome::Died { status } => {
            Verdict::Crash(format!("child ended with status {status:#x}"))
        }
    }
}

/// Whether two verdicts agree (see the module docs).
pub fn agree(a: &Verdict, b: &Verdict, exact_nan: bool) -> bool {
    match (a, b) {
        (Verdict::Values(x), Verdict::Values(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y, exact_nan))
        }
        (Verdict::Trap(Some(x)), Verdict::Trap(Some(y))) => x == y,
        (Verdict::Trap(_), Verdict::Trap(_)) => true,
        _ => false,
    }
}

fn same_value(a: &DataValue, b: &DataValue, exact_nan: bool) -> bool {
    match (a, b) {
        (DataValue::F32(x), DataValue::F32(y)) => {
            x.bits() == y.bits() || (!exact_nan && x.is_nan() && y.is_nan())
        }
        (DataValue::F64(x), DataValue::F64(y)) => {
            x.bits() == y.bits() || (!exact_nan && x.is_nan() && y.is_nan())
        }
        (DataValue::I8(x), DataValue::I8(y)) => x == y,
        (DataValue::I16(x), DataValue::I16(y)) => x == y,
        (DataValue::I32(x), DataValue::I32(y)) => x == y,
        (DataValue::I64(x), DataValue::I64(y)) => x == y,
        (DataValue::I128(x), DataValue::I128(y)) => x == y,
        _ => false,
    }
}

//! The third opinion: `cranelift-interpreter` runs a case's functions
//! (as Cranelift compiles them, so with NaN canonicalization applied when
//! the case sets it) and gives their results or their trap code.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{Function, InstBuilder, Opcode};
use cranelift_interpreter::environment::FunctionStore;
use cranelift_interpreter::interpreter::{Interpreter, InterpreterState};
use cranelift_interpreter::step::{ControlFlow, CraneliftTrap};

/// What the interpreter made of one call.
#[derive(Clone, Debug, PartialEq)]
pub enum InterpOutcome {
    /// The results.
    Returned(Vec<DataValue>),
    /// A trap with this code byte.
    Trap(u8),
    /// The interpreter could not run the call (an operation it lacks, or
    /// a failure of its own); the message says which.
    Unsupported(String),
}

/// Instructions the interpreter may run per call (the generated loops
/// are bounded far below this).
const FUEL: u64 = 10_000_000;

thread_local! {
    /// Set while this thread runs the interpreter, whose panics (its
    /// unimplemented operations) are caught and counted, not printed.
    static INTERPRETING: Cell<bool> = const { Cell::new(false) };
}

/// Installs a panic hook that stays quiet for the interpreter's panics
/// and defers to the previous hook for every other.
fn quiet_interpreter_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !INTERPRETING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// `func` rewritten around the interpreter's known deviations from
/// Cranelift's semantics, by equivalent code:
/// - `srem MIN, -1` traps with `int_ovf` in the interpreter; Cranelift
///   defines it as 0 (only a zero divisor traps). The divisor -1 becomes 1,
///   which gives the same remainder (0) for every dividend.
pub fn work_around_interpreter_deviations(func: &Function) -> Function {
    let mut func = func.clone();
    let mut pos = FuncCursor::new(&mut func);
    while pos.next_block().is_some() {
        while let Some(inst) = pos.next_inst() {
            if pos.func.dfg.insts[inst].opcode() != Opcode::Srem {
                continue;
            }
            let [x, y] = pos.func.dfg.inst_args(inst) else {
                continue;
            };
            let (x, y) = (*x, *y);
            let ty = pos.func.dfg.value_type(y);
            let is_minus_one = pos.ins().icmp_imm_s(IntCC::Equal, y, -1);
            let one = pos.ins().iconst(ty, 1);
            let divisor = pos.ins().select(is_minus_one, one, y);
            pos.func
                .dfg
                .inst_args_mut(inst)
                .copy_from_slice(&[x, divisor]);
        }
    }
    func
}

/// Runs `main` (calling `callee`) on `args`.
pub fn run(callee: Option<&Function>, main: &Function, args: &[DataValue]) -> InterpOutcome {
    let mut store = FunctionStore::default();
    if let Some(callee) = callee {
        store.add("u0:0".to_owned(), callee);
    }
    store.add("u0:1".to_owned(), main);
    let state = InterpreterState::default().with_function_store(store);
    let mut interpreter = Interpreter::new(state).with_fuel(Some(FUEL));
    // The interpreter panics on some operations it does not implement;
    // that is its limit, counted, not a disagreement.
    quiet_interpreter_panics();
    INTERPRETING.with(|i| i.set(true));
    let res = catch_unwind(AssertUnwindSafe(|| interpreter.call_by_name("u0:1", args)));
    INTERPRETING.with(|i| i.set(false));
    match res {
        Ok(Ok(ControlFlow::Return(values))) => InterpOutcome::Returned(values.to_vec()),
        Ok(Ok(ControlFlow::Trap(CraneliftTrap::User(code)))) => {
            InterpOutcome::Trap(code.as_raw().get())
        }
        Ok(Ok(other)) => InterpOutcome::Unsupported(format!("control flow {other:?}")),
        Ok(Err(e)) => InterpOutcome::Unsupported(e.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            InterpOutcome::Unsupported(format!("panic: {message}"))
        }
    }
}

//! A minimal VM-style embedding of orc: a toy stack bytecode JIT-compiled
//! through the tiered layer, with host functions, typed handles, a
//! redefinition seen by an existing handle, and a trap caught.
//!
//! Run with `cargo run --example embed_vm`.

use orc::cranelift::codegen::ir::{
    types, AbiParam, ExtFuncData, ExternalName, Function, InstBuilder, Signature, UserFuncName,
};
use orc::cranelift::codegen::isa::CallConv;
use orc::cranelift::frontend::{FunctionBuilder, FunctionBuilderContext};
use orc::{Error, Jit, Tier};

/// The toy bytecode: a stack machine over `i64`, one argument.
#[derive(Clone, Copy, Debug)]
enum Op {
    Arg,
    Push(i64),
    Add,
    Mul,
    Div,
    /// Calls the host's `vm_print` with the top of the stack (kept).
    Print,
}

/// A runtime helper: the VM's `print`.
extern "C" fn vm_print(x: i64) -> i64 {
    println!("  vm_print: {x}");
    x
}

/// Lowers `code` to one CLIF function `(i64) -> i64`.
fn lower(jit: &Jit, code: &[Op]) -> Function {
    let tiered = jit.tiered();
    let mut sig = Signature::new(CallConv::SystemV);
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I64));
    let mut func = Function::with_name_signature(UserFuncName::default(), sig.clone());
    let mut ctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut ctx);
    // The host function, imported by name (checked against the Rust
    // signature it was registered with).
    let print_sig = b.import_signature(sig);
    let print_name = b
        .func
        .declare_imported_user_function(tiered.import("vm_print"));
    let print = b.import_function(ExtFuncData {
        name: ExternalName::User(print_name),
        signature: print_sig,
        colocated: false,
        patchable: false,
    });
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let arg = b.block_params(entry)[0];
    let mut stack = Vec::new();
    for &op in code {
        match op {
            Op::Arg => stack.push(arg),
            Op::Push(n) => stack.push(b.ins().iconst(types::I64, n)),
            Op::Add | Op::Mul | Op::Div => {
                let (y, x) = (stack.pop().expect("operand"), stack.pop().expect("operand"));
                stack.push(match op {
                    Op::Add => b.ins().iadd(x, y),
                    Op::Mul => b.ins().imul(x, y),
                    _ => b.ins().sdiv(x, y),
                });
            }
            Op::Print => {
                let top = *stack.last().expect("operand");
                b.ins().call(print, &[top]);
            }
        }
    }
    let result = stack.pop().expect("a result");
    b.ins().return_(&[result]);
    b.seal_all_blocks();
    b.finalize(jit.frontend_config());
    func
}

fn main() -> Result<(), Error> {
    let jit = Jit::builder()
        .tier(Tier::Adaptive)
        .tier_threshold(1000)
        .build()?;
    jit.define_host_function("vm_print", vm_print as extern "C" fn(i64) -> i64)?;
    let tiered = jit.tiered();

    // f(x) = x * 3 + 1
    let f = tiered.declare("f")?;
    let v1 = [Op::Arg, Op::Push(3), Op::Mul, Op::Push(1), Op::Add];
    tiered.define(vec![(f, lower(&jit, &v1))])?;
    let handle = jit.function::<(i64,), i64>("f")?;
    println!("f(14) = {}", handle.call((14,))?);

    // Hot: tiers up in the background; the handle keeps working.
    let sum: i64 = (0..5000).map(|i| handle.call((i % 2,)).unwrap_or(0)).sum();
    println!("sum of 5000 calls = {sum}");

    // Redefinition: the same handle reaches the new code,
    // f(x) = print(100 / x).
    let v2 = [Op::Push(100), Op::Arg, Op::Div, Op::Print];
    tiered.define(vec![(f, lower(&jit, &v2))])?;
    println!("after redefinition, f(7) = {}", handle.call((7,))?);

    // A trap is an error; the VM goes on.
    match handle.call((0,)) {
        Err(Error::Trap(trap)) => println!("f(0) trapped: {trap}"),
        other => println!("f(0) = {other:?}"),
    }
    println!("f(5) = {}", handle.call((5,))?);

    // From another thread, with its own handle clone.
    let h = handle.clone();
    let from_thread = std::thread::spawn(move || h.call((50,))).join();
    println!("f(50) from a thread = {:?}", from_thread.map(|r| r.ok()));
    Ok(())
}

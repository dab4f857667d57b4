//! Embedding orc as a library: build a JIT, add a Kaleidoscope module from
//! a string, look a function up and call it from Rust with a typed
//! signature.
//!
//! Run with `cargo run --example kaleidoscope_embed`.

use orc::{Jit, KaleidoscopeJit};

const MODULE: &str = r#"
# Fibonacci, recursively.
def fib(n)
  if n < 3 then 1 else fib(n - 1) + fib(n - 2);

# Sum of f(i) for i = 1..n (chapter 7's loop runs i = 1..n inclusive).
def binary : 1 (a b) b;
def sumsq(n)
  var acc = 0 in
    (for i = 1, i < n in acc = acc + i * i) : acc;
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let jit = Jit::builder().build()?;
    let mut kjit = KaleidoscopeJit::new(jit);
    kjit.eval(MODULE)?;

    // Typed handles: the arity is checked against the definition.
    let fib = kjit.function::<(f64,)>("fib")?;
    let sumsq = kjit.function::<(f64,)>("sumsq")?;
    println!("fib(25) = {}", fib.call((25.0,)));
    println!("sumsq(10) = {}", sumsq.call((10.0,)));

    // Only what was called got compiled (lazily, on first call).
    let stats = kjit.jit().cranelift_layer().stats();
    let names: Vec<&str> = stats.functions.iter().map(|f| f.name.as_str()).collect();
    println!("compiled: {names:?}");

    // Asking for the wrong signature is an error, not undefined behaviour.
    if let Err(e) = kjit.function::<(f64, f64)>("fib") {
        println!("as expected: {e}");
    }
    Ok(())
}

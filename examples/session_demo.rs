//! A tour of orc's session model with no code generator: dylibs, a process
//! symbol generator, a materialization unit that runs on first lookup, a
//! re-export, and removal through a resource tracker.
//!
//! Run with `cargo run --example session_demo`.

use std::sync::Arc;

use orc::core::{
    reexports, DynamicLibrarySearchGenerator, ExecutionSession, ExecutorAddr, ExecutorSymbolDef,
    JitDylib, MaterializationResponsibility, MaterializationUnit, SymbolAliasMap,
    SymbolAliasMapEntry, SymbolFlags, SymbolFlagsMap, SymbolMap, SymbolName, ThreadPoolDispatcher,
};

/// The "compiled code" our unit hands out: a Rust function.
extern "C" fn square(x: f64) -> f64 {
    x * x
}

/// A unit that pretends to compile `square` when it is first looked up.
struct SquareUnit {
    name: SymbolName,
}

impl MaterializationUnit for SquareUnit {
    fn name(&self) -> &str {
        "square-unit"
    }
    fn symbols(&self) -> SymbolFlagsMap {
        SymbolFlagsMap::from([(
            self.name.clone(),
            SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
        )])
    }
    fn materialize(self: Box<Self>, r: MaterializationResponsibility) {
        eprintln!(
            "  [materializing {} on {:?}]",
            self.name,
            std::thread::current().name()
        );
        let addr = ExecutorAddr::from_ptr(square as *const u8);
        let flags = SymbolFlags::EXPORTED | SymbolFlags::CALLABLE;
        let resolved = SymbolMap::from([(self.name.clone(), ExecutorSymbolDef::new(addr, flags))]);
        if let Err(e) = r
            .notify_resolved(&resolved)
            .and_then(|_| r.notify_emitted())
        {
            r.fail(e);
        }
    }
    fn discard(&mut self, _: &JitDylib, _: &SymbolName) {}
}

fn call_f64(addr: ExecutorAddr, x: f64) -> f64 {
    // SAFETY: every address passed here is a function with the C signature
    // `double f(double)` (libm's cos, or `square`).
    let f: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
    f(x)
}

fn main() -> Result<(), orc::core::Error> {
    let pool = ThreadPoolDispatcher::new(2).map_err(|e| orc::core::Error::other(e.to_string()))?;
    let es = ExecutionSession::with_dispatcher(Arc::new(pool));
    let host = es.create_jit_dylib("host")?;
    let app = es.create_jit_dylib("app")?;
    app.add_to_link_order(&host)?;
    host.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))?;
    // libm may not be linked into this binary: load it by name.
    host.add_generator(Arc::new(DynamicLibrarySearchGenerator::load(
        "libm.so.6",
        None,
    )?))?;

    println!(
        "cos(0) through a library generator = {}",
        call_f64(app.lookup_symbol("cos")?.addr, 0.0)
    );

    let tracker = app.create_resource_tracker()?;
    app.define(
        Box::new(SquareUnit {
            name: es.intern("square"),
        }),
        Some(&tracker),
    )?;
    println!("defined `square` (nothing compiled yet)");
    let sq = app.lookup_symbol("square")?.addr;
    println!("square(7) = {}", call_f64(sq, 7.0));

    let aliases = SymbolAliasMap::from([(
        es.intern("sq"),
        SymbolAliasMapEntry {
            aliasee: es.intern("square"),
            flags: SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
        },
    )]);
    let user = es.create_jit_dylib("user")?;
    user.define(reexports(&app, aliases), None)?;
    println!(
        "user:sq is app:square: {}",
        user.lookup_symbol("sq")?.addr == sq
    );

    tracker.remove()?;
    match app.lookup_symbol("square") {
        Err(e) => println!("after removing its tracker: {e}"),
        Ok(_) => println!("unexpected: square survived removal"),
    }
    es.end_session()?;
    println!("session ended cleanly");
    Ok(())
}

//! The tier-0 compiler produces relocatable ELF objects with the declared
//! symbols, calls by name and unwind info.

use cranelift_codegen::ir::{types, AbiParam};
use cranelift_module::{Linkage, Module};
use object::{Object, ObjectSection, ObjectSymbol};
use orc_cranelift::{CompileError, CraneliftCompiler, CraneliftConfig, FnModule, OptLevel};

mod support;
use support::{callable, define_fn, define_loop};

#[test]
fn compiles_functions_into_an_object_with_unwind_info() {
    let compiler = CraneliftCompiler::new(CraneliftConfig {
        capture_clif: true,
        ..Default::default()
    })
    .unwrap();
    let module = FnModule::new(
        "two",
        vec![("leaf".into(), callable()), ("caller".into(), callable())],
        |m| {
            define_fn(m, "leaf", 2.0, &[])?;
            define_fn(m, "caller", 2.0, &["sin"])
        },
    );
    let compiled = compiler.compile(module).unwrap();
    assert_eq!(compiled.functions.len(), 2);
    assert_eq!(compiled.functions[0].name, "leaf");
    assert!(compiled.functions.iter().all(|f| f.code_size > 0));
    let clif = compiled.functions[1].clif.as_deref().unwrap();
    assert!(clif.contains("fmul") && clif.contains("call"), "{clif}");

    let obj = object::File::parse(&*compiled.bytes).unwrap();
    assert_eq!(obj.format(), object::BinaryFormat::Elf);
    assert_eq!(obj.kind(), object::ObjectKind::Relocatable);
    let defined: Vec<String> = obj
        .symbols()
        .filter(|s| s.is_definition() && s.is_global())
        .map(|s| s.name().unwrap().to_owned())
        .collect();
    assert!(
        defined.contains(&"leaf".to_owned()) && defined.contains(&"caller".to_owned()),
        "{defined:?}"
    );
    let undefined: Vec<String> = obj
        .symbols()
        .filter(|s| s.is_undefined())
        .map(|s| s.name().unwrap().to_owned())
        .collect();
    assert!(
        undefined.contains(&"sin".to_owned()),
        "calls go by name: {undefined:?}"
    );
    let eh = obj
        .section_by_name(".eh_frame")
        .expect("unwind info is emitted");
    assert!(eh.size() > 0);
}

#[test]
fn frontend_and_codegen_errors_are_reported_with_context() {
    let compiler = CraneliftCompiler::new(CraneliftConfig {
        opt_level: OptLevel::None,
        ..Default::default()
    })
    .unwrap();
    let failing = FnModule::new("broken", vec![], |_m| Err("no such thing".to_owned()));
    match compiler.compile(failing) {
        Err(CompileError::Frontend { module, message }) => {
            assert_eq!(module, "broken");
            assert_eq!(message, "no such thing");
        }
        other => panic!("unexpected {other:?}"),
    }
    // A function whose body does not verify (a block with no terminator).
    let invalid = FnModule::new("invalid", vec![("bad".into(), callable())], |m| {
        let mut sig = m.make_signature();
        sig.returns.push(AbiParam::new(types::F64));
        let id = m
            .declare_function("bad", Linkage::Export, &sig)
            .map_err(|e| e.to_string())?;
        let mut ctx = m.make_context();
        ctx.func.signature = sig;
        let block = ctx.func.dfg.make_block();
        ctx.func.layout.append_block(block);
        m.define_function(id, &mut ctx).map_err(|e| e.to_string())
    });
    let err = compiler.compile(invalid).unwrap_err();
    assert!(
        matches!(&err, CompileError::Codegen { module, message } if module == "invalid" && message.contains("'bad'")),
        "{err}"
    );
}

#[test]
fn profiling_leaves_loop_free_bodies_alone_and_trips_without_clobbering_registers() {
    extern "C" fn on_trip(_: u64, _: u64) {}
    static COUNTERS: [u64; 2] = [0, 0];
    let compiler = CraneliftCompiler::new(CraneliftConfig {
        capture_clif: true,
        ..Default::default()
    })
    .unwrap();
    let module = || {
        FnModule::new(
            "profiled",
            vec![("leaf".into(), callable()), ("looping".into(), callable())],
            |m| {
                define_fn(m, "leaf", 2.0, &[])?;
                define_loop(m, "looping")
            },
        )
    };
    let plain = compiler.compile(module()).unwrap();
    let provider: orc_cranelift::CounterProvider = std::sync::Arc::new(|name: &str| {
        let index = ["leaf", "looping"].iter().position(|n| *n == name)?;
        Some(orc_core::TripCounter {
            counter: &COUNTERS[index] as *const u64 as u64,
            trip: 100,
            on_trip: on_trip as extern "C" fn(u64, u64) as usize as u64,
            context: 0,
        })
    });
    let profiled = compiler
        .compile_profiled(module(), Some(&provider))
        .unwrap();
    let clif = |c: &orc_cranelift::CompiledObject, i: usize| c.functions[i].clif.clone().unwrap();
    // The entry is counted by the thunk in front of `leaf`, so its body is
    // the unprofiled one.
    assert_eq!(clif(&profiled, 0), clif(&plain, 0));
    // The loop's back-edge calls out in the preserve-all convention.
    let looping = clif(&profiled, 1);
    assert!(looping.contains("preserve_all"), "{looping}");
    assert!(!clif(&plain, 1).contains("preserve_all"));
    // Callers reach the thunks under the functions' names; the bodies are
    // local symbols.
    let obj = object::File::parse(&*profiled.bytes).unwrap();
    let symbols = |global: bool| -> Vec<String> {
        let mut names: Vec<String> = obj
            .symbols()
            .filter(|s| s.is_definition() && s.is_global() == global)
            .filter(|s| s.kind() == object::SymbolKind::Text)
            .map(|s| s.name().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(symbols(true), ["leaf", "looping"]);
    assert_eq!(symbols(false), ["leaf$body", "looping$body"]);
}

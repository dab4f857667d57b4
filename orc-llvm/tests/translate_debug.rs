//! Line information of translated CLIF (the tutorial's chapter 9): with a
//! `DebugSource`, the object's DWARF line table maps the function's code
//! to the lines its CLIF source locations name.

use std::sync::{Arc, Mutex};

use orc_core::debug::{line_table, LineRow};
use orc_core::link::{LinkError, LinkPlugin, LinkSet, LinkView, ObjectFile, PluginState};
use orc_core::SymbolFlags;
use orc_llvm::{
    default_name_resolver, ClifLlvmModule, DebugSource, LlvmCompiler, LlvmConfig, TranslateConfig,
};

/// `fib` with source locations: `@000a` is line 10, and so on.
const FIB: &str = "
function %fib(f64) -> f64 {
    sig0 = (f64) -> f64
    fn0 = %fib sig0

block0(v0: f64):
@000a   v1 = f64const 0x1.8000000000000p1
@000a   v2 = fcmp lt v0, v1
@000a   brif v2, block1, block2

block1:
@000b   v3 = f64const 0x1.0000000000000p0
@000b   return v3

block2:
@000c   v4 = f64const 0x1.0000000000000p0
@000c   v5 = fsub v0, v4
@000c   v6 = call fn0(v5)
@000d   v7 = f64const 0x1.0000000000000p1
@000d   v8 = fsub v0, v7
@000d   v9 = call fn0(v8)
@000e   v10 = fadd v6, v9
@000e   return v10
}
";

/// Collects the line table of every object linked.
#[derive(Default)]
struct Lines(Mutex<Vec<LineRow>>);

impl LinkPlugin for Lines {
    fn name(&self) -> &str {
        "lines"
    }
    fn emitted(&self, view: &LinkView<'_>) -> Result<Option<PluginState>, LinkError> {
        self.0.lock().unwrap().extend(line_table(view));
        Ok(None)
    }
}

fn compile(debug: Option<DebugSource>) -> (LinkSet, Vec<LineRow>) {
    let func = cranelift_reader::parse_functions(FIB).unwrap().remove(0);
    let mut module =
        ClifLlvmModule::new("fib", default_name_resolver(), TranslateConfig::default())
            .with_function("fib", func, SymbolFlags::EXPORTED | SymbolFlags::CALLABLE);
    if let Some(source) = debug {
        module = module.with_debug_source(source);
    }
    let compiler = LlvmCompiler::new(LlvmConfig::default()).unwrap();
    let object = compiler.compile(Box::new(module)).unwrap();
    let lines = Arc::new(Lines::default());
    let mut plugins = orc_core::link::default_plugins();
    plugins.push(lines.clone());
    let set = LinkSet::link_with_plugins(
        &[ObjectFile::parse("fib.o", object.bytes).unwrap()],
        &|_: &str| None,
        &plugins,
    )
    .unwrap();
    let rows = std::mem::take(&mut *lines.0.lock().unwrap());
    (set, rows)
}

#[test]
fn source_locations_become_dwarf_lines() {
    let (set, rows) = compile(Some(DebugSource {
        file: "fib.kal".into(),
        directory: "/src".into(),
    }));
    let fib = set.lookup("fib").unwrap().value();
    // SAFETY: fib is `extern "C" fn(f64) -> f64` (System V, as Cranelift's).
    let f: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(fib as usize) };
    assert_eq!(f(10.0), 55.0);
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(row.file, "/src/fib.kal");
        assert!((10..=14).contains(&row.line), "{row:?}");
        assert!(row.addr >= fib, "{row:?}");
    }
    let lines: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.line).collect();
    // The comparison, both calls' lines and the addition survive -O2.
    for line in [10, 12, 13] {
        assert!(lines.contains(&line), "line {line} in {lines:?}");
    }
}

#[test]
fn without_a_source_there_is_no_line_table() {
    let (_set, rows) = compile(None);
    assert!(rows.is_empty(), "{rows:?}");
}

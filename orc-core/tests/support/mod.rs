//! Test units: materialization units driven by closures, with counters.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use orc_core::{
    ExecutionSession, ExecutorAddr, ExecutorSymbolDef, JitDylib, MaterializationResponsibility,
    MaterializationUnit, SymbolFlags, SymbolFlagsMap, SymbolMap, SymbolName,
};
use parking_lot::Mutex;

type Materializer = Box<dyn FnOnce(MaterializationResponsibility) + Send>;

/// A unit whose `materialize` runs a closure and whose `discard`s are
/// recorded.
pub struct TestUnit {
    pub name: String,
    pub symbols: SymbolFlagsMap,
    pub on_materialize: Option<Materializer>,
    pub discarded: Arc<Mutex<Vec<SymbolName>>>,
    pub materialized: Arc<AtomicUsize>,
}

impl TestUnit {
    pub fn new(
        name: &str,
        symbols: SymbolFlagsMap,
        f: impl FnOnce(MaterializationResponsibility) + Send + 'static,
    ) -> Self {
        TestUnit {
            name: name.to_owned(),
            symbols,
            on_materialize: Some(Box::new(f)),
            discarded: Arc::default(),
            materialized: Arc::default(),
        }
    }

    pub fn boxed(self) -> Box<dyn MaterializationUnit> {
        Box::new(self)
    }
}

impl MaterializationUnit for TestUnit {
    fn name(&self) -> &str {
        &self.name
    }
    fn symbols(&self) -> SymbolFlagsMap {
        self.symbols.clone()
    }
    fn materialize(mut self: Box<Self>, r: MaterializationResponsibility) {
        self.materialized.fetch_add(1, Ordering::SeqCst);
        if let Some(f) = self.on_materialize.take() {
            f(r)
        }
    }
    fn discard(&mut self, _dylib: &JitDylib, name: &SymbolName) {
        self.discarded.lock().push(name.clone());
        self.symbols.remove(name);
    }
}

pub fn flags(es: &ExecutionSession, names: &[(&str, SymbolFlags)]) -> SymbolFlagsMap {
    names.iter().map(|(n, f)| (es.intern(n), *f)).collect()
}

pub fn exported(es: &ExecutionSession, names: &[&str]) -> SymbolFlagsMap {
    names
        .iter()
        .map(|n| (es.intern(n), SymbolFlags::EXPORTED | SymbolFlags::CALLABLE))
        .collect()
}

/// Resolves every owned symbol at `base + i * 16` (in name order) and emits.
pub fn resolve_and_emit(r: &MaterializationResponsibility, base: u64) {
    let map = addresses(r, base);
    r.notify_resolved(&map).expect("resolve");
    r.notify_emitted().expect("emit");
}

pub fn addresses(r: &MaterializationResponsibility, base: u64) -> SymbolMap {
    let mut names: Vec<_> = r.symbols().into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    names
        .into_iter()
        .enumerate()
        .map(|(i, (n, f))| {
            (
                n,
                ExecutorSymbolDef::new(ExecutorAddr(base + 16 * i as u64), f),
            )
        })
        .collect()
}

/// A unit that resolves its symbols at made-up addresses (`base + i*16`).
pub fn simple_unit(es: &ExecutionSession, name: &str, names: &[&str], base: u64) -> TestUnit {
    TestUnit::new(name, exported(es, names), move |r| {
        resolve_and_emit(&r, base)
    })
}

pub fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

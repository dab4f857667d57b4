//! The lazy call-through path over many System V signatures, with bodies
//! JIT'd through the Cranelift layer: 0..12 f64 arguments, 0..12 i64
//! arguments, mixes that spill to the stack, and a struct by pointer.

use std::sync::Arc;

use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type};
use cranelift_module::Module;
use orc_core::lazy::LazyReexportsManager;
use orc_core::link::ObjectLinkingLayer;
use orc_core::{
    ExecutionSession, ExecutorAddr, JitDylib, SymbolAliasMap, SymbolAliasMapEntry, SymbolFlags,
};
use orc_cranelift::{CraneliftCompiler, CraneliftConfig, CraneliftLayer, FnModule};

mod support;
use support::define_with;

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

/// Defines `name(params...) -> ret` returning sum((i + 1) * param_i), each
/// parameter converted to `ret`'s type.
fn weighted_sum(
    module: &mut dyn Module,
    name: &str,
    params: &[Type],
    ret: Type,
) -> Result<(), String> {
    define_with(module, name, params, ret, |_, b, args| {
        let float = ret == types::F64;
        let mut acc = if float {
            b.ins().f64const(0.0)
        } else {
            b.ins().iconst(types::I64, 0)
        };
        for (i, (arg, ty)) in args.iter().zip(params).enumerate() {
            let v = match (*ty, ret) {
                (types::F64, types::F64) | (types::I64, types::I64) => *arg,
                (types::I64, types::F64) => b.ins().fcvt_from_sint(types::F64, *arg),
                _ => return Err("unsupported conversion".into()),
            };
            if float {
                let k = b.ins().f64const((i + 1) as f64);
                let w = b.ins().fmul(v, k);
                acc = b.ins().fadd(acc, w);
            } else {
                let w = b.ins().imul_imm_s(v, (i + 1) as i64);
                acc = b.ins().iadd(acc, w);
            }
        }
        b.ins().return_(&[acc]);
        Ok(())
    })
}

/// Defines `name(p: *const [f64; 3]) -> f64` = p[0] + 2 p[1] + 3 p[2].
fn struct_by_pointer(module: &mut dyn Module, name: &str) -> Result<(), String> {
    define_with(module, name, &[types::I64], types::F64, |_, b, args| {
        let mut acc = b.ins().f64const(0.0);
        for i in 0..3 {
            let v = b
                .ins()
                .load(types::F64, MemFlagsData::trusted(), args[0], 8 * i);
            let k = b.ins().f64const((i + 1) as f64);
            let w = b.ins().fmul(v, k);
            acc = b.ins().fadd(acc, w);
        }
        b.ins().return_(&[acc]);
        Ok(())
    })
}

struct Lazy {
    es: ExecutionSession,
    main: JitDylib,
    bodies: JitDylib,
    layer: Arc<CraneliftLayer>,
    lazy: Arc<LazyReexportsManager>,
}

fn lazy_jit() -> Lazy {
    let es = ExecutionSession::new();
    let main = es.create_jit_dylib("main").unwrap();
    let bodies = es.create_jit_dylib("bodies").unwrap();
    let objects = ObjectLinkingLayer::new(&es);
    let layer = CraneliftLayer::new(
        CraneliftCompiler::new(CraneliftConfig::default()).unwrap(),
        objects,
    );
    let lazy = LazyReexportsManager::new(&es).unwrap();
    Lazy {
        es,
        main,
        bodies,
        layer,
        lazy,
    }
}

impl Lazy {
    /// Adds a body module (compiled on first call) and its lazy stub.
    fn add(
        &self,
        name: &str,
        build: impl FnOnce(&mut dyn Module) -> Result<(), String> + Send + 'static,
    ) -> ExecutorAddr {
        let module = FnModule::new(name, vec![(name.to_owned(), CALLABLE)], build);
        self.layer.add(&self.bodies, module, None).unwrap();
        let sym = self.es.intern(name);
        let aliases: SymbolAliasMap = [(
            sym.clone(),
            SymbolAliasMapEntry {
                aliasee: sym,
                flags: CALLABLE,
            },
        )]
        .into();
        self.main
            .define(self.lazy.lazy_reexports(&self.bodies, aliases), None)
            .unwrap();
        self.main.lookup_symbol(name).unwrap().addr
    }
}

macro_rules! replace_ty {
    ($_x:tt $t:ty) => {
        $t
    };
}

/// Calls `addr` as `extern "C" fn($targ...) -> $ret` with `$arg`s.
macro_rules! call_as {
    ($addr:expr, $ret:ty, [$($arg:expr => $targ:ty),*]) => {{
        // SAFETY: the test defined the function behind `addr` with exactly
        // this signature.
        let f: extern "C" fn($($targ),*) -> $ret = unsafe { std::mem::transmute($addr.to_ptr::<u8>()) };
        f($($arg),*)
    }};
}

macro_rules! f64_arity_test {
    ($lazy:expr, $n:expr, [$($v:expr),*]) => {{
        let name = format!("f64_{}", $n);
        let params = vec![types::F64; $n];
        let addr = $lazy.add(&name, move |m| weighted_sum(m, &format!("f64_{}", $n), &params, types::F64));
        let vals: Vec<f64> = vec![$($v),*];
        let want: f64 = vals.iter().enumerate().map(|(i, v)| (i as f64 + 1.0) * v).sum();
        // Twice: through the trampoline, then through the resolved stub.
        for _ in 0..2 {
            let got = call_as!(addr, f64, [$($v => replace_ty!($v f64)),*]);
            assert_eq!(got, want, "{} f64 arguments", $n);
        }
    }};
}

macro_rules! i64_arity_test {
    ($lazy:expr, $n:expr, [$($v:expr),*]) => {{
        let name = format!("i64_{}", $n);
        let params = vec![types::I64; $n];
        let addr = $lazy.add(&name, move |m| weighted_sum(m, &format!("i64_{}", $n), &params, types::I64));
        let vals: Vec<i64> = vec![$($v),*];
        let want: i64 = vals.iter().enumerate().map(|(i, v)| (i as i64 + 1) * v).sum();
        for _ in 0..2 {
            let got = call_as!(addr, i64, [$($v => replace_ty!($v i64)),*]);
            assert_eq!(got, want, "{} i64 arguments", $n);
        }
    }};
}

#[test]
fn f64_arguments_zero_to_twelve() {
    let l = lazy_jit();
    f64_arity_test!(l, 0, []);
    f64_arity_test!(l, 1, [1.5]);
    f64_arity_test!(l, 2, [1.5, -2.25]);
    f64_arity_test!(l, 3, [1.5, -2.25, 3.0]);
    f64_arity_test!(l, 4, [1.5, -2.25, 3.0, 4.5]);
    f64_arity_test!(l, 5, [1.5, -2.25, 3.0, 4.5, 5.5]);
    f64_arity_test!(l, 6, [1.5, -2.25, 3.0, 4.5, 5.5, 6.5]);
    f64_arity_test!(l, 7, [1.5, -2.25, 3.0, 4.5, 5.5, 6.5, 7.5]);
    f64_arity_test!(l, 8, [1.5, -2.25, 3.0, 4.5, 5.5, 6.5, 7.5, 8.5]);
    f64_arity_test!(l, 9, [1.5, -2.25, 3.0, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5]);
    f64_arity_test!(l, 10, [1.5, -2.25, 3.0, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5]);
    f64_arity_test!(
        l,
        11,
        [1.5, -2.25, 3.0, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5]
    );
    f64_arity_test!(
        l,
        12,
        [1.5, -2.25, 3.0, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5, 12.5]
    );
    assert_eq!(l.layer.stats().modules, 13);
    l.es.end_session().unwrap();
}

#[test]
fn i64_arguments_zero_to_twelve() {
    let l = lazy_jit();
    i64_arity_test!(l, 0, []);
    i64_arity_test!(l, 1, [7]);
    i64_arity_test!(l, 2, [7, -3]);
    i64_arity_test!(l, 3, [7, -3, 1 << 40]);
    i64_arity_test!(l, 4, [7, -3, 1 << 40, 4]);
    i64_arity_test!(l, 5, [7, -3, 1 << 40, 4, 5]);
    i64_arity_test!(l, 6, [7, -3, 1 << 40, 4, 5, 6]);
    i64_arity_test!(l, 7, [7, -3, 1 << 40, 4, 5, 6, 7]);
    i64_arity_test!(l, 8, [7, -3, 1 << 40, 4, 5, 6, 7, 8]);
    i64_arity_test!(l, 9, [7, -3, 1 << 40, 4, 5, 6, 7, 8, 9]);
    i64_arity_test!(l, 10, [7, -3, 1 << 40, 4, 5, 6, 7, 8, 9, 10]);
    i64_arity_test!(l, 11, [7, -3, 1 << 40, 4, 5, 6, 7, 8, 9, 10, 11]);
    i64_arity_test!(l, 12, [7, -3, 1 << 40, 4, 5, 6, 7, 8, 9, 10, 11, -12]);
    l.es.end_session().unwrap();
}

#[test]
fn mixed_arguments_spill_to_the_stack_and_structs_by_pointer() {
    let l = lazy_jit();
    // 8 integers and 10 floats interleaved: both register files overflow.
    let mut params = Vec::new();
    for i in 0..18 {
        params.push(if i % 9 < 4 { types::I64 } else { types::F64 });
    }
    let p2 = params.clone();
    let addr = l.add("mixed", move |m| weighted_sum(m, "mixed", &p2, types::F64));
    let ints = [3i64, -5, 7, 11, 13, -17, 19, 23];
    let floats = [0.5f64, 1.25, -2.5, 3.75, 5.0, 6.25, -7.5, 8.75, 10.0, 11.25];
    let (mut ii, mut fi) = (0, 0);
    let mut want = 0.0;
    for (i, t) in params.iter().enumerate() {
        let v = if *t == types::I64 {
            ii += 1;
            ints[ii - 1] as f64
        } else {
            fi += 1;
            floats[fi - 1]
        };
        want += (i + 1) as f64 * v;
    }
    for _ in 0..2 {
        let [a, b, c, d, e, f, g, h] = ints;
        let [p, q, r, s, t, u, v, w, x, y] = floats;
        let got = call_as!(addr, f64, [
            a => i64, b => i64, c => i64, d => i64, p => f64, q => f64, r => f64, s => f64, t => f64,
            e => i64, f => i64, g => i64, h => i64, u => f64, v => f64, w => f64, x => f64, y => f64
        ]);
        assert_eq!(got, want);
    }
    let addr = l.add("by_ptr", |m| struct_by_pointer(m, "by_ptr"));
    let data = [1.0f64, 10.0, 100.0];
    let got = call_as!(addr, f64, [data.as_ptr() => *const f64]);
    assert_eq!(got, 321.0);
    l.es.end_session().unwrap();
}

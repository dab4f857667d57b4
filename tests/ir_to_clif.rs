//! Differential execution of the LLVM IR to CLIF translation: C functions
//! (`frontends/llvm-ir/tests/to_clif_c/diff.c`) compiled by clang-19 at
//! -O0 and -O2, run natively (a shared object) and as tier-0 code
//! translated from their IR through the tiered layer, called from Rust
//! with the native ABI (struct returns in registers, sret, byval,
//! `<2 x float>`, variadic calls). Results must agree.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use orc::core::{absolute_symbols, ExecutorAddr, ExecutorSymbolDef, FuncId, SymbolFlags, SymbolMap};
use orc::cranelift::codegen::ir;
use orc::{Jit, Tier, TieredLayer};
use orc_llvm_ir::to_clif::{translate_module, ClifNames, VARARG_THUNK_PREFIX};

// Vararg thunks (`__orc_va.NAME`): set %al to 8 and jump to the callee
// whose address is in the thunk's slot.
static VA_SLOTS: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

std::arch::global_asm!(
    ".globl orc_test_va_thunk0",
    "orc_test_va_thunk0:",
    "mov al, 8",
    "jmp qword ptr [rip + {s} + 0]",
    ".globl orc_test_va_thunk1",
    "orc_test_va_thunk1:",
    "mov al, 8",
    "jmp qword ptr [rip + {s} + 8]",
    ".globl orc_test_va_thunk2",
    "orc_test_va_thunk2:",
    "mov al, 8",
    "jmp qword ptr [rip + {s} + 16]",
    ".globl orc_test_va_thunk3",
    "orc_test_va_thunk3:",
    "mov al, 8",
    "jmp qword ptr [rip + {s} + 24]",
    s = sym VA_SLOTS,
);

extern "C" {
    fn orc_test_va_thunk0();
    fn orc_test_va_thunk1();
    fn orc_test_va_thunk2();
    fn orc_test_va_thunk3();
}

fn thunk(i: usize) -> usize {
    [
        orc_test_va_thunk0 as *const () as usize,
        orc_test_va_thunk1 as *const () as usize,
        orc_test_va_thunk2 as *const () as usize,
        orc_test_va_thunk3 as *const () as usize,
    ][i]
}

fn c_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("frontends/llvm-ir/tests/to_clif_c/diff.c")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("orc-ir-to-clif-{}-{name}", std::process::id()))
}

fn clang(args: &[&str], input: &Path, out: &Path) {
    let status = Command::new("clang-19")
        .args(args)
        .arg(input)
        .arg("-o")
        .arg(out)
        .status()
        .expect("clang-19 runs");
    assert!(status.success(), "clang-19 {args:?}");
}

struct Names<'a> {
    layer: &'a TieredLayer,
    ids: &'a HashMap<String, FuncId>,
    thunks: Vec<String>,
}

impl ClifNames for Names<'_> {
    fn function(&mut self, name: &str) -> ir::UserExternalName {
        self.layer.func_name(self.ids[name])
    }
    fn symbol(&mut self, name: &str) -> ir::UserExternalName {
        if let Some(callee) = name.strip_prefix(VARARG_THUNK_PREFIX) {
            if !self.thunks.iter().any(|t| t == callee) {
                self.thunks.push(callee.to_owned());
            }
        }
        self.layer.import(name)
    }
}

/// The JIT with every function of diff.c at `opt` in tier 0, the ids,
/// and the functions left out: those whose translation needs an
/// intrinsic `to_clif::intrinsics` does not cover yet, and their callers.
fn jit_of(
    opt: &str,
    plan: &orc_llvm::partition::PartitionPlan,
) -> (Jit, HashMap<String, FuncId>, HashSet<String>) {
    let jit = Jit::builder().tier(Tier::Zero).build().unwrap();
    let layer = jit.tiered();
    let mut ids = HashMap::new();
    for f in &plan.functions {
        ids.insert(f.name.clone(), layer.declare(&f.name).unwrap());
        for m in &f.members {
            ids.insert(m.clone(), layer.declare(m).unwrap());
        }
    }
    let mut names = Names {
        layer,
        ids: &ids,
        thunks: Vec::new(),
    };
    let translated = translate_module("diff", &plan.bitcode, &mut names).unwrap();
    let mut defs = Vec::new();
    let mut skipped = HashSet::new();
    let mut data = SymbolMap::new();
    let es = jit.session();
    let flags = SymbolFlags::EXPORTED;
    for t in translated {
        let f = match t.result {
            Ok(f) => f,
            Err(e)
                if e.reason.starts_with("intrinsic llvm.")
                    || e.reason.contains("(not 64 or 128 bits)") =>
            {
                eprintln!("{opt}: left out: {e}");
                skipped.insert(t.name);
                continue;
            }
            Err(e) => panic!("{opt}: untranslatable {e}"),
        };
        for d in f.data {
            let bytes: &'static [u8] = Box::leak(d.bytes.into_boxed_slice());
            let addr = ExecutorAddr::from_ptr(bytes.as_ptr());
            data.insert(es.intern(&d.symbol), ExecutorSymbolDef::new(addr, flags));
        }
        defs.push((ids[&t.name], f.func));
    }
    // Callers of functions left out are left out.
    loop {
        let before = skipped.len();
        for f in &plan.functions {
            if f.callees.iter().any(|&c| skipped.contains(&plan.functions[c].name))
                || f.members.iter().any(|m| skipped.contains(m))
            {
                skipped.insert(f.name.clone());
            }
        }
        if skipped.len() == before {
            break;
        }
    }
    let thunks = names.thunks.clone();
    assert!(thunks.len() <= VA_SLOTS.len(), "{thunks:?}");
    layer.define(defs).unwrap();
    for (i, callee) in thunks.iter().enumerate() {
        let target = match ids.get(callee) {
            Some(&id) => layer.address(id).unwrap().to_ptr::<u8>() as u64,
            None => jit.lookup(callee).unwrap().to_ptr::<u8>() as u64,
        };
        VA_SLOTS[i].store(target, Ordering::SeqCst);
        let addr = ExecutorAddr::from_ptr(thunk(i) as *const u8);
        data.insert(
            es.intern(&format!("{VARARG_THUNK_PREFIX}{callee}")),
            ExecutorSymbolDef::new(addr, flags | SymbolFlags::CALLABLE),
        );
    }
    jit.host_dylib().define(absolute_symbols(data), None).unwrap();
    (jit, ids, skipped)
}

#[repr(C)]
#[derive(Debug, PartialEq, Clone, Copy)]
struct Pair {
    a: i64,
    b: i64,
}
#[repr(C)]
#[derive(Debug, PartialEq, Clone, Copy)]
struct DPair {
    x: f64,
    y: f64,
}
#[repr(C)]
#[derive(Debug, PartialEq, Clone, Copy)]
struct Mixed {
    n: i64,
    d: f64,
}
#[repr(C)]
#[derive(Debug, PartialEq, Clone, Copy)]
struct FPair {
    x: f32,
    y: f32,
}
#[repr(C)]
#[derive(Debug, PartialEq, Clone, Copy)]
struct Big {
    v: [i64; 6],
}

/// Both versions of one function, typed `F`.
struct Both<F> {
    native: F,
    /// None when the function is left out (see `jit_of`).
    jit: Option<F>,
}

struct Env {
    jit: Jit,
    ids: HashMap<String, FuncId>,
    skipped: HashSet<String>,
    lib: libloading::Library,
}

impl Env {
    fn get<F: Copy>(&self, name: &str) -> Both<F> {
        assert_eq!(std::mem::size_of::<F>(), 8);
        // SAFETY: diff.c defines `name` with the C signature `F` stands
        // for (the callers below spell it out).
        let native = unsafe { *self.lib.get::<F>(name.as_bytes()).unwrap() };
        if self.skipped.contains(name) {
            return Both { native, jit: None };
        }
        let addr = self.jit.tiered().address(self.ids[name]).unwrap();
        let p = addr.to_ptr::<u8>();
        // SAFETY: `p` is the stub of the translation of the same function.
        let jit = unsafe { std::mem::transmute_copy::<*const u8, F>(&p) };
        Both {
            native,
            jit: Some(jit),
        }
    }
}

/// diff.c at `opt`, prepared by the partition plan, both compiled natively
/// (loaded globally: the translated code uses its data too, such as -O2's
/// switch tables) and translated.
fn env(opt: &str) -> Env {
    let bc = tmp(&format!("diff{opt}.bc"));
    clang(&[opt, "-fPIC", "-ffp-contract=off", "-c", "-emit-llvm"], &c_file(), &bc);
    let bytes = std::fs::read(&bc).unwrap();
    let plan = orc_llvm::partition::plan("diff", &bytes, "d").unwrap();
    std::fs::write(&bc, &plan.bitcode).unwrap();
    let so = tmp(&format!("diff{opt}.so"));
    clang(&[opt, "-shared", "-fPIC"], &bc, &so);
    let _ = std::fs::remove_file(&bc);
    // SAFETY: the library is diff.c, with no initializers.
    let lib = unsafe {
        libloading::os::unix::Library::open(Some(&so), libc::RTLD_NOW | libc::RTLD_GLOBAL)
            .unwrap()
    };
    let lib = libloading::Library::from(lib);
    let _ = std::fs::remove_file(&so);
    let (jit, ids, skipped) = jit_of(opt, &plan);
    Env {
        jit,
        ids,
        skipped,
        lib,
    }
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

macro_rules! check {
    ($both:expr, $($arg:expr),*) => {{
        let b = &$both;
        if let Some(jit) = b.jit {
            // SAFETY: both are the function the test names, with this type.
            let (n, j) = unsafe { ((b.native)($($arg),*), jit($($arg),*)) };
            assert_eq!(n, j, "args {:?}", ($($arg,)*));
        }
    }};
}

const INTS: [i64; 9] = [0, 1, -1, 7, -13, 1000, 123_456_789, i64::MAX / 3, -(1 << 40)];
const FLOATS: [f64; 8] = [0.0, -0.0, 1.5, -2.25, 1e10, 3.0, f64::NAN, f64::INFINITY];

fn run_all(opt: &str) {
    let e = env(opt);
    type L2 = unsafe extern "C" fn(i64, i64) -> i64;
    for name in ["int_mix", "i128_mix", "select_mix"] {
        let f: Both<L2> = e.get(name);
        for a in INTS {
            for b in INTS {
                check!(f, a, b);
            }
        }
    }
    let f: Both<unsafe extern "C" fn(u64, u64) -> u64> = e.get("umix");
    for a in INTS {
        for b in INTS {
            check!(f, a as u64, b as u64);
        }
    }
    let f: Both<unsafe extern "C" fn(i32, i32) -> i32> = e.get("bools");
    for a in [-3, 0, 1, 5] {
        for b in [-3, 0, 1, 5] {
            check!(f, a, b);
        }
    }
    let f: Both<unsafe extern "C" fn(f64, f64) -> f64> = e.get("float_mix");
    let g: Both<unsafe extern "C" fn(f64, f64) -> i32> = e.get("fcmp_bits");
    for a in FLOATS {
        for b in FLOATS {
            if let Some(jit) = f.jit {
                // SAFETY: see `check!`.
                let (n, j) = unsafe { ((f.native)(a, b), jit(a, b)) };
                assert!(same_f64(n, j), "float_mix({a}, {b}): {n} vs {j}");
            }
            check!(g, a, b);
        }
    }
    let f: Both<unsafe extern "C" fn(f64, i64) -> i64> = e.get("conversions");
    for d in [0.0, 1.5, -2.75, 1e9, -3e5, 255.9] {
        for l in [0, 1, -5, 1 << 33, 1 << 62] {
            check!(f, d, l);
        }
    }
    let f: Both<unsafe extern "C" fn(i64, u64, i16, u8) -> f64> = e.get("conv_back");
    for l in INTS {
        let Some(jit) = f.jit else { break };
        // SAFETY: see `check!`.
        let (n, j) = unsafe {
            (
                (f.native)(l, l as u64, l as i16, l as u8),
                jit(l, l as u64, l as i16, l as u8),
            )
        };
        assert!(same_f64(n, j), "conv_back({l})");
    }
    type L1 = unsafe extern "C" fn(i64) -> i64;
    for name in [
        "switch_dense",
        "switch_sparse",
        "call_structs",
        "call_va",
        "sort_checksum",
        "list_walk",
        "call_ptrs",
    ] {
        let f: Both<L1> = e.get(name);
        for x in [-100, -1, 0, 1, 2, 3, 5, 7, 8, 9, 1_000_000, 1 << 40, 77] {
            check!(f, x);
        }
    }
    let f: Both<unsafe extern "C" fn(*const i64, i64) -> i64> = e.get("loop_sum");
    let data: Vec<i64> = (0..37).map(|i| i * i - 50).collect();
    for n in [0, 1, 5, 16, 37] {
        check!(f, data.as_ptr(), n);
    }
    // Struct returns in registers, sret, byval, <2 x float>.
    let f: Both<unsafe extern "C" fn(i64, i64) -> Pair> = e.get("make_pair");
    check!(f, 5, -9);
    let f: Both<unsafe extern "C" fn(f64) -> DPair> = e.get("make_dpair");
    check!(f, 2.5);
    let f: Both<unsafe extern "C" fn(i64, f64) -> Mixed> = e.get("make_mixed");
    check!(f, -7, 0.25);
    let f: Both<unsafe extern "C" fn(f32) -> FPair> = e.get("make_fpair");
    check!(f, 1.75);
    let f: Both<unsafe extern "C" fn(i64) -> Big> = e.get("make_big");
    check!(f, 11);
    let f: Both<unsafe extern "C" fn(Pair) -> i64> = e.get("use_pair");
    check!(f, Pair { a: 3, b: -4 });
    let f: Both<unsafe extern "C" fn(DPair) -> f64> = e.get("use_dpair");
    check!(f, DPair { x: 1.0, y: 8.0 });
    let f: Both<unsafe extern "C" fn(FPair) -> f32> = e.get("use_fpair");
    check!(f, FPair { x: 1.5, y: -2.0 });
    let f: Both<unsafe extern "C" fn(Big) -> i64> = e.get("use_big");
    check!(f, Big { v: [1, 2, 3, 4, 5, 6] });
    // Variadic definitions called from native code.
    let f: Both<unsafe extern "C" fn(i32, ...) -> i64> = e.get("sum_va");
    if let Some(jit) = f.jit {
        // SAFETY: see `check!`.
        unsafe {
            assert_eq!((f.native)(3, 1i64, 2i64, 3i64), jit(3, 1i64, 2i64, 3i64));
            let (n, j) = (
                (f.native)(9, 1i64, 2i64, 3i64, 4i64, 5i64, 6i64, 7i64, 8i64, 9i64),
                jit(9, 1i64, 2i64, 3i64, 4i64, 5i64, 6i64, 7i64, 8i64, 9i64),
            );
            assert_eq!(n, j);
        }
    }
    let f: Both<unsafe extern "C" fn(i32, ...) -> f64> = e.get("sum_vd");
    if let Some(jit) = f.jit {
        // SAFETY: see `check!`.
        unsafe {
            let args = |g: unsafe extern "C" fn(i32, ...) -> f64| {
                g(10, 1.0f64, 2.0f64, 3.0f64, 4.0f64, 5.0f64, 6.0f64, 7.0f64, 8.0f64, 9.0f64, 10.5f64)
            };
            assert_eq!(args(f.native), args(jit));
        }
    }
    type Many = unsafe extern "C" fn(i64, i64, i64, i64, i64, i64, i64, ...) -> i64;
    let f: Both<Many> = e.get("many_va");
    if let Some(jit) = f.jit {
        // SAFETY: see `check!`.
        unsafe {
            let args = |g: Many| g(1, 2, 3, 4, 5, 6, 7, 8i64, 2.5f64, 10i64);
            assert_eq!(args(f.native), args(jit));
        }
    }
    // A variadic libc call through a thunk.
    type Fmt = unsafe extern "C" fn(*mut u8, i64, *const u8, i32, f64) -> i32;
    let f: Both<Fmt> = e.get("format");
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    let fmt = b"%d %.3f %d|\0";
    if let Some(jit) = f.jit {
        // SAFETY: see `check!`; the buffers hold 64 bytes.
        let (n, j) = unsafe {
            (
                (f.native)(a.as_mut_ptr(), 64, fmt.as_ptr(), 42, 2.5),
                jit(b.as_mut_ptr(), 64, fmt.as_ptr(), 42, 2.5),
            )
        };
        assert_eq!((n, a), (j, b));
        assert_eq!(&a[..n as usize], b"42 2.500 84|");
    }
    // Atomics on memory passed in.
    let f: Both<unsafe extern "C" fn(*mut i32, i32) -> i32> = e.get("atomics");
    let (mut x, mut y) = (100, 100);
    if let Some(jit) = f.jit {
        // SAFETY: see `check!`.
        let (n, j) = unsafe { ((f.native)(&mut x, 7), jit(&mut y, 7)) };
        assert_eq!((n, x), (j, y));
    }
    // Computed goto through the function's private table.
    let f: Both<unsafe extern "C" fn(*const u8) -> i32> = e.get("run_goto");
    for code in [&[3u8][..], &[0, 0, 1, 2, 0, 1, 3], &[1, 1, 1, 2, 0, 3]] {
        check!(f, code.as_ptr());
    }
    // Vectorized loops (at -O2).
    let f: Both<unsafe extern "C" fn(i32) -> i32> = e.get("vec_int");
    let g: Both<unsafe extern "C" fn(i32) -> f32> = e.get("vec_float");
    let h: Both<unsafe extern "C" fn(i32) -> i64> = e.get("shorts");
    for n in [0, 1, 3, -7, 1000] {
        check!(f, n);
        check!(g, n);
        check!(h, n);
    }
}

#[test]
fn translated_functions_agree_with_native_code_at_o0() {
    run_all("-O0");
}

#[test]
fn translated_functions_agree_with_native_code_at_o2() {
    run_all("-O2");
}

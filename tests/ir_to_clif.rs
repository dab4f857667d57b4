//! Differential execution of the LLVM IR to CLIF translation: C functions
//! (`frontends/llvm-ir/tests/to_clif_c/diff.c`) compiled by clang-19 at
//! -O0 and -O2, run natively (a shared object) and as tier-0 code
//! translated from their IR through the tiered layer, called from Rust
//! with the native ABI (struct returns in registers, sret, byval,
//! `<2 x float>`, variadic calls). Results must agree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use orc::core::{
    absolute_symbols, ExecutorAddr, ExecutorSymbolDef, FuncId, SymbolFlags, SymbolMap,
};
use orc::cranelift::codegen::ir;
use orc::{Jit, Tier, TieredLayer};
use orc_llvm_ir::to_clif::{translate_module, ClifNames, VARARG_THUNK_PREFIX};

// Vararg thunks (`__orc_va.NAME`): set %al to 8 and jump to the callee
// whose address is in the thunk's slot.
static VA_SLOTS: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];
/// The next free slot: each test's JIT takes slots of its own.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

// Thunk i is at `orc_test_va_thunks + 16 * i`.
macro_rules! thunks {
    ($($i:literal),*) => {
        std::arch::global_asm!(
            ".balign 16",
            ".globl orc_test_va_thunks",
            "orc_test_va_thunks:",
            $(
                ".balign 16",
                "mov al, 8",
                concat!("jmp qword ptr [rip + {s} + ", $i, " * 8]"),
            )*
            s = sym VA_SLOTS,
        );
    };
}
thunks!(
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31
);

extern "C" {
    fn orc_test_va_thunks();
}

fn thunk(i: usize) -> usize {
    orc_test_va_thunks as *const () as usize + 16 * i
}

fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("frontends/llvm-ir/tests/to_clif_c")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("orc-ir-to-clif-{}-{name}", std::process::id()))
}

fn clang(args: &[&str], input: &Path, out: &Path) {
    orc_test_support::check(
        Command::new("clang-19")
            .args(args)
            .arg(input)
            .arg("-o")
            .arg(out),
    );
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

/// The JIT with every function of diff.c at `opt` in tier 0 (each must
/// translate), and the ids.
fn jit_of(opt: &str, plan: &orc_llvm::partition::PartitionPlan) -> (Jit, HashMap<String, FuncId>) {
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
    let mut data = SymbolMap::new();
    let es = jit.session();
    let flags = SymbolFlags::EXPORTED;
    for t in translated {
        let f = match t.result {
            Ok(f) => f,
            Err(e) => panic!("{opt}: untranslatable {e}"),
        };
        for d in f.data {
            let bytes: &'static [u8] = Box::leak(d.bytes.into_boxed_slice());
            let addr = ExecutorAddr::from_ptr(bytes.as_ptr());
            data.insert(es.intern(&d.symbol), ExecutorSymbolDef::new(addr, flags));
        }
        defs.push((ids[&t.name], f.func));
    }
    let thunks = names.thunks.clone();
    layer.define(defs).unwrap();
    for callee in &thunks {
        let i = NEXT_SLOT.fetch_add(1, Ordering::SeqCst);
        assert!(i < VA_SLOTS.len(), "out of thunk slots");
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
    jit.host_dylib()
        .define(absolute_symbols(data), None)
        .unwrap();
    (jit, ids)
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
    jit: F,
}

struct Env {
    jit: Jit,
    ids: HashMap<String, FuncId>,
    lib: libloading::Library,
}

impl Env {
    fn get<F: Copy>(&self, name: &str) -> Both<F> {
        assert_eq!(std::mem::size_of::<F>(), 8);
        // SAFETY: diff.c defines `name` with the C signature `F` stands
        // for (the callers below spell it out).
        let native = unsafe { *self.lib.get::<F>(name.as_bytes()).unwrap() };
        let addr = self.jit.tiered().address(self.ids[name]).unwrap();
        let p = addr.to_ptr::<u8>();
        // SAFETY: `p` is the stub of the translation of the same function.
        let jit = unsafe { std::mem::transmute_copy::<*const u8, F>(&p) };
        Both { native, jit }
    }
}

/// `file` at `opt`, prepared by the partition plan, both compiled
/// natively (loaded globally: the translated code uses its data too, such
/// as -O2's switch tables) and translated. Each (file, opt) promotes its
/// local names with a prefix of its own, so that tests running together
/// find their own data.
fn env(opt: &str, file: &str) -> Env {
    let stem: String = format!("{file}{opt}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let bc = tmp(&format!("{stem}.bc"));
    clang(
        &[opt, "-fPIC", "-ffp-contract=off", "-c", "-emit-llvm"],
        &source(file),
        &bc,
    );
    let bytes = std::fs::read(&bc).unwrap();
    let plan = orc_llvm::partition::plan(file, &bytes, &stem).unwrap();
    std::fs::write(&bc, &plan.bitcode).unwrap();
    let so = tmp(&format!("{stem}.so"));
    clang(&[opt, "-shared", "-fPIC", "-Wl,-Bsymbolic"], &bc, &so);
    let _ = std::fs::remove_file(&bc);
    // SAFETY: the library is diff.c, with no initializers.
    let lib = unsafe {
        libloading::os::unix::Library::open(Some(&so), libc::RTLD_NOW | libc::RTLD_GLOBAL).unwrap()
    };
    let lib = libloading::Library::from(lib);
    let _ = std::fs::remove_file(&so);
    let (jit, ids) = jit_of(opt, &plan);
    Env { jit, ids, lib }
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

macro_rules! check {
    ($both:expr, $($arg:expr),*) => {{
        let b = &$both;
        {
            let jit = b.jit;
            // SAFETY: both are the function the test names, with this type.
            let (n, j) = unsafe { ((b.native)($($arg),*), jit($($arg),*)) };
            assert_eq!(n, j, "args {:?}", ($($arg,)*));
        }
    }};
}

const INTS: [i64; 9] = [
    0,
    1,
    -1,
    7,
    -13,
    1000,
    123_456_789,
    i64::MAX / 3,
    -(1 << 40),
];
const FLOATS: [f64; 8] = [0.0, -0.0, 1.5, -2.25, 1e10, 3.0, f64::NAN, f64::INFINITY];

fn run_all(opt: &str) {
    let e = env(opt, "diff.c");
    type L2 = unsafe extern "C" fn(i64, i64) -> i64;
    for name in ["int_mix", "i128_mix", "select_mix", "i128_div"] {
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
            {
                let jit = f.jit;
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
        let jit = f.jit;
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
        "call_vd_named",
        "vec_masks",
        "wide_alignment",
        "call128",
    ] {
        let f: Both<L1> = e.get(name);
        for x in [-100, -1, 0, 1, 2, 3, 5, 7, 8, 9, 1_000_000, 1 << 40, 77] {
            check!(f, x);
        }
    }
    let f: Both<unsafe extern "C" fn(i128, i128, i64) -> i128> = e.get("mul_add128");
    for (a, b) in [(0, 0), (-1, 1), (i128::MAX, 3), (1 << 100, -(1 << 70))] {
        check!(f, a, b, 17);
    }
    let f: Both<unsafe extern "C" fn(i64) -> *const u8> = e.get("color_name");
    for x in [-1, 0, 1, 2, 3, 4, 5, 6, 100] {
        check!(f, x);
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
    check!(
        f,
        Big {
            v: [1, 2, 3, 4, 5, 6]
        }
    );
    // Variadic definitions called from native code.
    let f: Both<unsafe extern "C" fn(i32, ...) -> i64> = e.get("sum_va");
    {
        let jit = f.jit;
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
    {
        let jit = f.jit;
        // SAFETY: see `check!`.
        unsafe {
            let args = |g: unsafe extern "C" fn(i32, ...) -> f64| {
                g(
                    10, 1.0f64, 2.0f64, 3.0f64, 4.0f64, 5.0f64, 6.0f64, 7.0f64, 8.0f64, 9.0f64,
                    10.5f64,
                )
            };
            assert_eq!(args(f.native), args(jit));
        }
    }
    let f: Both<unsafe extern "C" fn(f64, i32, ...) -> f64> = e.get("vd_named");
    {
        let jit = f.jit;
        // SAFETY: see `check!`.
        unsafe {
            let args = |g: unsafe extern "C" fn(f64, i32, ...) -> f64| {
                g(
                    0.25, 18, 1i32, 2.0f64, 3i32, 4.0f64, 5i32, 6.0f64, 7i32, 8.0f64, 9i32,
                    10.0f64, 11i32, 12.0f64, 13i32, 14.0f64, 15i32, 16.0f64, 17i32, 18.5f64,
                )
            };
            assert_eq!(args(f.native), args(jit));
        }
    }
    type Many = unsafe extern "C" fn(i64, i64, i64, i64, i64, i64, i64, ...) -> i64;
    let f: Both<Many> = e.get("many_va");
    {
        let jit = f.jit;
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
    {
        let jit = f.jit;
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
    {
        let jit = f.jit;
        // SAFETY: see `check!`.
        let (n, j) = unsafe { ((f.native)(&mut x, 7), jit(&mut y, 7)) };
        assert_eq!((n, x), (j, y));
    }
    // Computed goto through the function's private table. The prepared
    // bitcode holds its table encoded by the partition plan (block
    // numbers, which only the translation and the function's own unit
    // decode), so the native build of it cannot run these: they are
    // checked against Rust models of the C functions.
    let f: Both<unsafe extern "C" fn(*const u8) -> i32> = e.get("run_goto");
    for (code, want) in [
        (&[3u8][..], 1),
        (&[0, 0, 1, 2, 0, 1, 3], -10),
        (&[1, 1, 1, 2, 0, 3], -7),
    ] {
        // SAFETY: see `check!`; each code ends with op_end.
        assert_eq!(unsafe { (f.jit)(code.as_ptr()) }, want, "{code:?}");
    }
    let goto_const = |mut n: i32| {
        let mut acc = n;
        let mut at_a = n & 1 == 0;
        loop {
            if at_a {
                acc += 1;
                n -= 1;
                if n <= 0 {
                    return acc;
                }
            } else {
                acc *= 3;
            }
            at_a = !at_a;
        }
    };
    let f: Both<unsafe extern "C" fn(i32) -> i32> = e.get("goto_const");
    for n in [0, 1, 2, 5, 6] {
        // SAFETY: see `check!`.
        assert_eq!(unsafe { (f.jit)(n) }, goto_const(n), "goto_const({n})");
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
fn the_va_arg_instruction_reads_registers_and_the_overflow_area() {
    for opt in ["-O0", "-O2"] {
        let e = env(opt, "va_arg.ll");
        let f: Both<unsafe extern "C" fn(i64) -> f64> = e.get("call_mix");
        check!(f, 10);
        check!(f, -3);
        let f: Both<unsafe extern "C" fn(i32, ...) -> f64> = e.get("mix");
        // SAFETY: see `check!`.
        unsafe {
            let args = |g: unsafe extern "C" fn(i32, ...) -> f64| {
                g(2, 7i64, 0.5f64, 3i32, -4i64, 2.25f64, 9i32)
            };
            assert_eq!(args(f.native), args(f.jit));
            assert_eq!(args(f.jit), 7.0 * 0.5 + 3.0 - 4.0 * 2.25 + 9.0);
        }
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

/// A pseudo-random C expression over the parameters of `gen_function`:
/// unsigned arithmetic (no signed overflow), shifts by masked amounts,
/// signed and unsigned comparisons, selects, divisions by non-zero
/// positive divisors, and conversions between widths.
fn gen_expr(rng: &mut u64, depth: u32) -> String {
    let mut next = |n: u64| {
        *rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*rng >> 33) % n
    };
    const TYPES: [&str; 8] = [
        "uint8_t", "int8_t", "uint16_t", "int16_t", "uint32_t", "int32_t", "uint64_t", "int64_t",
    ];
    if depth == 0 || next(5) == 0 {
        return match next(8) {
            0 => "a".into(),
            1 => "b".into(),
            2 => "c".into(),
            3 => "d".into(),
            4 => "e".into(),
            5 => "f".into(),
            6 => format!("({})", next(1000)),
            _ => format!("((uint64_t)0x{:x})", next(u64::MAX)),
        };
    }
    let t = TYPES[next(8) as usize];
    // Arithmetic in unsigned types no narrower than int: no overflow UB.
    let u = TYPES[4 + (next(2) * 2) as usize];
    let (x, y) = (gen_expr(rng, depth - 1), gen_expr(rng, depth - 1));
    let mut next = |n: u64| {
        *rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*rng >> 33) % n
    };
    match next(12) {
        0 => format!("(({u})({x}) + ({u})({y}))"),
        1 => format!("(({u})({x}) - ({u})({y}))"),
        2 => format!("(({u})({x}) * ({u})({y}))"),
        3 => format!("(({u})({x}) & ({u})({y}) | ({u})({x}) ^ ({u})({y}))"),
        4 => format!("(({u})({x}) << (({y}) & 7))"),
        5 => format!("(({t})({x}) >> (({y}) & 7))"),
        6 => format!("(({t})({x}) < ({t})({y}))"),
        7 => format!("(({t})({x}) >= ({t})({y}) ? ({x}) : ({y}))"),
        8 => format!("(({u})({x}) / (({u})({y}) | 1))"),
        9 => format!("(({t})({x}) % ((({y}) & 0x7f) + 1))"),
        10 => format!("(({t})({x}) / ((int32_t)(({y}) & 0x7f) + 1))"),
        _ => format!("(({t})({x}))"),
    }
}

#[test]
fn random_integer_expressions_agree_with_native_code() {
    let mut rng = 0x5eed_u64;
    let mut src = String::from(
        "/* Generated by tests/ir_to_clif.rs. */\n#include <stdint.h>\n#include <stdbool.h>\n",
    );
    let n = 40;
    for k in 0..n {
        let e = gen_expr(&mut rng, 4);
        src.push_str(&format!(
            "uint64_t f{k}(int64_t a, int32_t b, int16_t c, uint8_t d, uint64_t e, bool f) \
             {{ return (uint64_t)({e}); }}\n"
        ));
    }
    let name = format!("random{}.c", std::process::id());
    let path = std::env::temp_dir().join(&name);
    std::fs::write(&path, src).unwrap();
    type F = unsafe extern "C" fn(i64, i32, i16, u8, u64, bool) -> u64;
    let inputs: [(i64, i32, i16, u8, u64, bool); 6] = [
        (0, 0, 0, 0, 0, false),
        (1, -1, 2, 255, 3, true),
        (-7, 100_000, -300, 17, u64::MAX, true),
        (i64::MIN, i32::MAX, i16::MIN, 128, 1 << 63, false),
        (123_456_789_012, -42, 77, 9, 0xdead_beef, true),
        (-1, i32::MIN, -1, 1, 12345, false),
    ];
    for opt in ["-O0", "-O2"] {
        let e = env(opt, path.to_str().unwrap());
        for k in 0..n {
            let f: Both<F> = e.get(&format!("f{k}"));
            for (a, b, c, d, x, y) in inputs {
                check!(f, a, b, c, d, x, y);
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// A pseudo-random floating-point C expression over `x` (double), `y`
/// (float) and `a` (int64_t): arithmetic, negation, comparisons, selects,
/// and conversions (float-to-int ones of values kept in range).
fn gen_float_expr(rng: &mut u64, depth: u32) -> String {
    fn next(rng: &mut u64, n: u64) -> u64 {
        *rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*rng >> 33) % n
    }
    if depth == 0 || next(rng, 5) == 0 {
        return match next(rng, 6) {
            0 => "x".into(),
            1 => "(double)y".into(),
            2 => "(double)a".into(),
            3 => format!("{}.{}", next(rng, 100), next(rng, 1000)),
            4 => "(x * 0.5)".into(),
            _ => "(double)(float)x".into(),
        };
    }
    let p = gen_float_expr(rng, depth - 1);
    let q = gen_float_expr(rng, depth - 1);
    let clamp = |e: &str| format!("(({e}) > 1e15 || !(({e}) > -1e15) ? 7.0 : ({e}))");
    match next(rng, 10) {
        0 => format!("({p} + {q})"),
        1 => format!("({p} - {q})"),
        2 => format!("({p} * {q})"),
        3 => format!("({p} / {q})"),
        4 => format!("(-{p})"),
        5 => format!("({p} < {q} ? {p} : {q})"),
        6 => format!("(double)(float)({p} + (float){q})"),
        7 => format!("(double)(int64_t){}", clamp(&p)),
        8 => format!("(double)(int32_t)(int64_t){}", clamp(&p)),
        _ => format!("(({p} == {q}) + ({p} != {p}) * 2.0 + ({p} >= {q}) * 4.0)"),
    }
}

#[test]
fn random_float_expressions_agree_with_native_code() {
    let mut rng = 0xf10a7_u64;
    let mut src = String::from("/* Generated by tests/ir_to_clif.rs. */\n#include <stdint.h>\n");
    let n = 30;
    for k in 0..n {
        let e = gen_float_expr(&mut rng, 4);
        src.push_str(&format!(
            "double g{k}(double x, float y, int64_t a) {{ return {e}; }}\n"
        ));
    }
    let path = std::env::temp_dir().join(format!("randomf{}.c", std::process::id()));
    std::fs::write(&path, src).unwrap();
    type F = unsafe extern "C" fn(f64, f32, i64) -> f64;
    let inputs: [(f64, f32, i64); 7] = [
        (0.0, 0.0, 0),
        (1.5, -2.25, 3),
        (-0.0, 1e-3, -7),
        (1e300, f32::MAX, i64::MAX),
        (f64::NAN, 2.0, 5),
        (f64::INFINITY, f32::NEG_INFINITY, i64::MIN),
        (-123.456, 0.1, 1 << 40),
    ];
    for opt in ["-O0", "-O2"] {
        let e = env(opt, path.to_str().unwrap());
        for k in 0..n {
            let f: Both<F> = e.get(&format!("g{k}"));
            for (x, y, a) in inputs {
                // SAFETY: see `check!`.
                let (n, j) = unsafe { ((f.native)(x, y, a), (f.jit)(x, y, a)) };
                assert!(same_f64(n, j), "{opt} g{k}({x}, {y}, {a}): {n} vs {j}");
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

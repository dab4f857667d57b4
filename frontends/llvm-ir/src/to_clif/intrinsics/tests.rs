//! Tests of the intrinsics: each intrinsic is translated into a small
//! function (its arguments the function's parameters, its results the
//! function's), which must pass the verifier and compile with the x86-64
//! backend both at the SSE2 baseline and with the host's extensions; then
//! cranelift-interpreter runs it over many inputs, against Rust reference
//! implementations. Libcalls cannot run in the interpreter: their tests
//! check the calls emitted.

use super::{base_name, translate, IntrinsicCall, IntrinsicHost};
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{
    self, types, ExtFuncData, ExternalName, Function, InstBuilder, Opcode, Signature, Type,
    UserExternalName, UserFuncName,
};
use cranelift_codegen::isa::{self, CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::Configurable;
use cranelift_codegen::{settings, verify_function, Context};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_interpreter::environment::FunctionStore;
use cranelift_interpreter::interpreter::{Interpreter, InterpreterState};
use cranelift_interpreter::step::{ControlFlow, CraneliftTrap};

/// Records the libcalls asked for.
#[derive(Default)]
struct Host {
    calls: Vec<(String, Signature)>,
}

impl IntrinsicHost for Host {
    fn libcall(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        symbol: &str,
        sig: Signature,
    ) -> ir::FuncRef {
        let index = u32::try_from(self.calls.len()).unwrap();
        self.calls.push((symbol.to_owned(), sig.clone()));
        let name = b
            .func
            .declare_imported_user_function(UserExternalName::new(1, index));
        let signature = b.import_signature(sig);
        b.import_function(ExtFuncData {
            name: ExternalName::user(name),
            signature,
            colocated: false,
            patchable: false,
        })
    }
}

/// An argument of the intrinsic call under test.
#[derive(Clone, Copy)]
enum A {
    /// A parameter of the function.
    P(Type),
    /// An `iconst` (an `immarg`).
    C(Type, i64),
    /// The same value as the previous argument.
    Dup,
}

/// A translated test function and the libcalls it asked for.
struct Built {
    func: Function,
    calls: Vec<(String, Signature)>,
    /// The intrinsic's result types (an `i128` is returned as two `i64`
    /// halves: the x86-64 ABI of orc has no `i128` values).
    results: Vec<Type>,
}

/// The ABI types standing for `t` (an `i128` is two `i64`).
fn abi_types(t: Type) -> Vec<Type> {
    if t == types::I128 {
        vec![types::I64, types::I64]
    } else {
        vec![t]
    }
}

/// Translates `name` applied to `args` in a fresh function.
fn build(name: &str, args: &[A], results: &[Type]) -> Result<Built, String> {
    build_keep(name, args, results, &(0..results.len()).collect::<Vec<_>>())
}

/// [`build`], the function returning only the results `keep` (two
/// `i128` halves and an overflow bit do not fit the return registers).
fn build_keep(name: &str, args: &[A], results: &[Type], keep: &[usize]) -> Result<Built, String> {
    let kept: Vec<Type> = keep.iter().map(|&i| results[i]).collect();
    let mut sig = Signature::new(CallConv::SystemV);
    for a in args {
        if let A::P(t) = a {
            for t in abi_types(*t) {
                sig.params.push(ir::AbiParam::new(t));
            }
        }
    }
    for &t in &kept {
        for t in abi_types(t) {
            sig.returns.push(ir::AbiParam::new(t));
        }
    }
    let mut func = Function::with_name_signature(UserFuncName::testcase("f"), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut host = Host::default();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let mut next = params.into_iter();
    let mut vals: Vec<ir::Value> = Vec::new();
    for a in args {
        let v = match *a {
            A::P(types::I128) => {
                let lo = next.next().unwrap();
                let hi = next.next().unwrap();
                b.ins().iconcat(lo, hi)
            }
            A::P(_) => next.next().unwrap(),
            A::C(t, k) => b.ins().iconst(t, k),
            A::Dup => *vals.last().unwrap(),
        };
        vals.push(v);
    }
    let out = translate(
        &mut b,
        &mut host,
        &IntrinsicCall {
            name,
            args: &vals,
            results,
        },
    )?;
    let mut rets = Vec::new();
    for v in keep.iter().map(|&i| out[i]) {
        if b.func.dfg.value_type(v) == types::I128 {
            let (lo, hi) = b.ins().isplit(v);
            rets.extend([lo, hi]);
        } else {
            rets.push(v);
        }
    }
    b.ins().return_(&rets);
    b.finalize(isas()[0].frontend_config());
    Ok(Built {
        func,
        calls: host.calls,
        results: kept,
    })
}

/// The two x86-64 targets: the SSE2 baseline and one with the extensions
/// of current hosts (as `cranelift_native` enables them).
fn isas() -> Vec<OwnedTargetIsa> {
    let flags = settings::Flags::new(settings::builder());
    let host_features = [
        "has_sse3",
        "has_ssse3",
        "has_sse41",
        "has_sse42",
        "has_popcnt",
        "has_avx",
        "has_avx2",
        "has_fma",
        "has_bmi1",
        "has_bmi2",
        "has_lzcnt",
    ];
    [&[][..], &host_features[..]]
        .iter()
        .map(|features| {
            let mut builder = isa::lookup_by_name("x86_64").unwrap();
            for f in *features {
                builder.enable(f).unwrap();
            }
            builder.finish(flags.clone()).unwrap()
        })
        .collect()
}

/// Translates, verifies and compiles (both targets) `name`; panics with
/// the reason otherwise.
fn check(name: &str, args: &[A], results: &[Type]) -> Built {
    check_keep(name, args, results, &(0..results.len()).collect::<Vec<_>>())
}

/// [`check`] of [`build_keep`].
fn check_keep(name: &str, args: &[A], results: &[Type], keep: &[usize]) -> Built {
    let built = build_keep(name, args, results, keep).unwrap_or_else(|e| panic!("{name}: {e}"));
    let flags = settings::Flags::new(settings::builder());
    if let Err(e) = verify_function(&built.func, &flags) {
        panic!("{name}: verifier: {e}\n{}", built.func.display());
    }
    for isa in isas() {
        let mut ctx = Context::for_function(built.func.clone());
        if let Err(e) = ctx.compile(&*isa, &mut ControlPlane::default()) {
            panic!(
                "{name}: x86-64 ({}) rejects it: {:?}\n{}",
                isa.isa_flags()
                    .iter()
                    .filter(|f| f.as_bool() == Some(true))
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(","),
                e.inner,
                built.func.display()
            );
        }
    }
    built
}

/// Runs `f` in the interpreter (`i128` arguments and results as such).
fn run(f: &Built, args: &[DataValue]) -> Result<Vec<DataValue>, CraneliftTrap> {
    let mut flat = Vec::new();
    for a in args {
        if let DataValue::I128(v) = *a {
            #[allow(clippy::cast_possible_truncation)]
            flat.extend([DataValue::I64(v as i64), DataValue::I64((v >> 64) as i64)]);
        } else {
            flat.push(a.clone());
        }
    }
    let out = run_flat(&f.func, &flat)?;
    let mut out = out.into_iter();
    let mut vals = Vec::new();
    for &t in &f.results {
        if t == types::I128 {
            let lo = dv_int(&out.next().unwrap());
            let hi = dv_int(&out.next().unwrap());
            vals.push(DataValue::I128(
                (hi << 64) | i128::from(u64::try_from(zext(lo, 64)).unwrap()),
            ));
        } else {
            vals.push(out.next().unwrap());
        }
    }
    Ok(vals)
}

/// Runs `func` in the interpreter.
fn run_flat(func: &Function, args: &[DataValue]) -> Result<Vec<DataValue>, CraneliftTrap> {
    let mut store = FunctionStore::default();
    store.add(func.name.to_string(), func);
    let state = InterpreterState::default().with_function_store(store);
    let mut interp = Interpreter::new(state).with_fuel(Some(100_000));
    match interp.call_by_name(&func.name.to_string(), args) {
        Ok(ControlFlow::Return(vals)) => Ok(vals.to_vec()),
        Ok(ControlFlow::Trap(t)) => Err(t),
        Ok(_) => panic!("the interpreter stopped without a result"),
        Err(e) => panic!("interpreter error: {e}"),
    }
}

/// Runs `f`, which must return.
fn ret(f: &Built, args: &[DataValue]) -> Vec<DataValue> {
    run(f, args).unwrap_or_else(|t| panic!("trapped: {t}"))
}

/// The opcodes of `func`, in layout order.
fn opcodes(func: &Function) -> Vec<Opcode> {
    func.layout
        .blocks()
        .flat_map(|b| func.layout.block_insts(b))
        .map(|i| func.dfg.insts[i].opcode())
        .collect()
}

// ---------------------------------------------------------------- values

/// `v` sign-extended from `bits`.
fn sext(v: i128, bits: u32) -> i128 {
    if bits >= 128 {
        v
    } else {
        let sh = 128 - bits;
        (v << sh) >> sh
    }
}

/// `v` zero-extended from `bits`.
fn zext(v: i128, bits: u32) -> u128 {
    #[allow(clippy::cast_sign_loss)]
    let u = v as u128;
    if bits >= 128 {
        u
    } else {
        u & ((1u128 << bits) - 1)
    }
}

/// The scalar `DataValue` of type `ty` holding `v` (wrapped).
#[allow(clippy::cast_possible_truncation)]
fn int_dv(ty: Type, v: i128) -> DataValue {
    match ty {
        types::I8 => DataValue::I8(v as i8),
        types::I16 => DataValue::I16(v as i16),
        types::I32 => DataValue::I32(v as i32),
        types::I64 => DataValue::I64(v as i64),
        types::I128 => DataValue::I128(v),
        _ => panic!("int_dv {ty}"),
    }
}

/// The integer a scalar `DataValue` holds, sign-extended.
fn dv_int(v: &DataValue) -> i128 {
    match *v {
        DataValue::I8(x) => x.into(),
        DataValue::I16(x) => x.into(),
        DataValue::I32(x) => x.into(),
        DataValue::I64(x) => x.into(),
        DataValue::I128(x) => x,
        ref other => panic!("not an integer: {other}"),
    }
}

/// The vector `DataValue` of type `ty` with these lanes.
fn vec_dv(ty: Type, lanes: &[i128]) -> DataValue {
    let lb = (ty.lane_bits() / 8) as usize;
    let mut bytes = Vec::new();
    for &l in lanes {
        bytes.extend_from_slice(&l.to_le_bytes()[..lb]);
    }
    match bytes.len() {
        16 => DataValue::V128(bytes.try_into().unwrap()),
        8 => DataValue::V64(bytes.try_into().unwrap()),
        n => panic!("vector of {n} bytes"),
    }
}

/// The lanes of a vector `DataValue` of type `ty`, sign-extended.
fn dv_lanes(ty: Type, v: &DataValue) -> Vec<i128> {
    let bytes: Vec<u8> = match v {
        DataValue::V128(b) => b.to_vec(),
        DataValue::V64(b) => b.to_vec(),
        other => panic!("not a vector: {other}"),
    };
    let lb = (ty.lane_bits() / 8) as usize;
    bytes
        .chunks(lb)
        .map(|c| {
            let mut full = [0u8; 16];
            full[..lb].copy_from_slice(c);
            sext(i128::from_le_bytes(full), ty.lane_bits())
        })
        .collect()
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let x = self.0;
        x ^ (x >> 29)
    }

    fn int(&mut self, bits: u32) -> i128 {
        let v = (i128::from(self.next()) << 64) | i128::from(self.next());
        // Bias towards small magnitudes now and then.
        let v = if self.next() % 3 == 0 { v % 300 } else { v };
        sext(v, bits)
    }
}

/// Interesting integers of `bits` bits: the edges and random values.
fn int_inputs(bits: u32, rng: &mut Rng) -> Vec<i128> {
    let min = sext(1i128 << (bits - 1), bits);
    let max = if bits == 128 {
        i128::MAX
    } else {
        (1i128 << (bits - 1)) - 1
    };
    let mut v = vec![
        0,
        1,
        -1,
        2,
        -2,
        min,
        max,
        min + 1,
        max - 1,
        0x55,
        0x80,
        0x7f,
    ];
    v.extend((0..40).map(|_| rng.int(bits)));
    v.into_iter().map(|x| sext(x, bits)).collect()
}

const INT_TYPES: [Type; 5] = [types::I8, types::I16, types::I32, types::I64, types::I128];

/// The LLVM suffix of an integer type (`i32`).
fn suffix(ty: Type) -> String {
    if ty.is_vector() {
        format!("v{}i{}", ty.lane_count(), ty.lane_bits())
    } else {
        format!("i{}", ty.bits())
    }
}

// ------------------------------------------------------------- names

#[test]
fn base_names_drop_the_type_suffixes() {
    let cases = [
        ("llvm.smax.i32", "smax"),
        ("llvm.memcpy.p0.p0.i64", "memcpy"),
        ("llvm.memcpy.inline.p0.p0.i64", "memcpy.inline"),
        ("llvm.vector.reduce.fadd.v4f32", "vector.reduce.fadd"),
        ("llvm.sadd.with.overflow.i64", "sadd.with.overflow"),
        ("llvm.lifetime.start.p0", "lifetime.start"),
        ("llvm.dbg.value", "dbg.value"),
        ("llvm.lround.i64.f64", "lround"),
        ("llvm.fabs.v2f64", "fabs"),
        (
            "llvm.experimental.noalias.scope.decl",
            "experimental.noalias.scope.decl",
        ),
        ("llvm.expect.with.probability.i1", "expect.with.probability"),
        ("llvm.fptosi.sat.i32.f64", "fptosi.sat"),
        ("llvm.fabs.bf16", "fabs"),
    ];
    for (name, base) in cases {
        assert_eq!(base_name(name).as_deref(), Some(base), "{name}");
    }
    assert_eq!(base_name("memcpy"), None);
}

#[test]
fn unknown_and_malformed_calls_are_errors() {
    let e = build("llvm.frobnicate.i32", &[A::P(types::I32)], &[types::I32]).err();
    assert_eq!(e.as_deref(), Some("intrinsic llvm.frobnicate.i32"));
    let e = build("printf", &[], &[]).err();
    assert_eq!(e.as_deref(), Some("intrinsic printf"));
    // Wrong arity, wrong types, mixed types: errors, never panics.
    let bad: &[(&str, &[A], &[Type])] = &[
        ("llvm.smax.i32", &[A::P(types::I32)], &[types::I32]),
        (
            "llvm.smax.i32",
            &[A::P(types::I32), A::P(types::I64)],
            &[types::I32],
        ),
        (
            "llvm.smax.f32",
            &[A::P(types::F32), A::P(types::F32)],
            &[types::F32],
        ),
        ("llvm.fabs.i32", &[A::P(types::I32)], &[types::I32]),
        ("llvm.fabs.f64", &[A::P(types::F64)], &[types::F32]),
        ("llvm.sqrt.f64", &[], &[types::F64]),
        ("llvm.memcpy.p0.p0.i64", &[A::P(types::I64)], &[]),
        (
            "llvm.memset.p0.i64",
            &[
                A::P(types::I64),
                A::P(types::I32),
                A::P(types::I64),
                A::C(types::I8, 0),
            ],
            &[],
        ),
        (
            "llvm.objectsize.i64.p0",
            &[A::P(types::I64), A::P(types::I8)],
            &[types::I64],
        ),
        (
            "llvm.sadd.with.overflow.i32",
            &[A::P(types::I32), A::P(types::I32)],
            &[types::I32],
        ),
        (
            "llvm.umul.with.overflow.i128",
            &[A::P(types::I128), A::P(types::I128)],
            &[types::I128, types::I8],
        ),
        (
            "llvm.sadd.with.overflow.v4i32",
            &[A::P(types::I32X4), A::P(types::I32X4)],
            &[types::I32X4, types::I8X4],
        ),
        (
            "llvm.vector.reduce.add.i32",
            &[A::P(types::I32)],
            &[types::I32],
        ),
        (
            "llvm.vector.reduce.fadd.v4f32",
            &[A::P(types::F32X4)],
            &[types::F32],
        ),
        (
            "llvm.vector.reduce.add.v4i32",
            &[A::P(types::I32X4)],
            &[types::I64],
        ),
        (
            "llvm.powi.v4f32.i32",
            &[A::P(types::F32X4), A::P(types::I32)],
            &[types::F32X4],
        ),
        ("llvm.bswap.i8", &[A::P(types::I8)], &[types::I8]),
        ("llvm.trap", &[A::P(types::I32)], &[]),
        ("llvm.expect.i32", &[A::P(types::I32)], &[types::I32]),
    ];
    for (name, args, results) in bad {
        let e = build(name, args, results).err();
        let e = e.unwrap_or_else(|| panic!("{name} accepted a malformed call"));
        assert!(e.starts_with(&format!("intrinsic {name}")), "{e}");
    }
}

// ------------------------------------------------------------ integers

/// A binary integer intrinsic against `reference(x, y, bits)` for every
/// scalar type in `tys`.
fn int_binary(base: &str, tys: &[Type], reference: IntBinRef) {
    let mut rng = Rng(0x1234);
    for &ty in tys {
        let name = format!("llvm.{base}.{}", suffix(ty));
        let f = check(&name, &[A::P(ty), A::P(ty)], &[ty]);
        let xs = int_inputs(ty.bits(), &mut rng);
        let ys = int_inputs(ty.bits(), &mut rng);
        for &x in &xs {
            for &y in &ys {
                let got = dv_int(&ret(&f, &[int_dv(ty, x), int_dv(ty, y)])[0]);
                let want = sext(reference(x, y, ty.bits()), ty.bits());
                assert_eq!(got, want, "{name}({x}, {y})");
            }
        }
    }
}

/// A unary integer intrinsic (with `extra` constant arguments, such as
/// `is_zero_poison`) against `reference(x, bits)`.
fn int_unary(base: &str, tys: &[Type], extra: &[A], reference: fn(i128, u32) -> i128) {
    let mut rng = Rng(0x9876);
    for &ty in tys {
        let name = format!("llvm.{base}.{}", suffix(ty));
        let mut args = vec![A::P(ty)];
        args.extend_from_slice(extra);
        let f = check(&name, &args, &[ty]);
        for x in int_inputs(ty.bits(), &mut rng) {
            let got = dv_int(&ret(&f, &[int_dv(ty, x)])[0]);
            let want = sext(reference(x, ty.bits()), ty.bits());
            assert_eq!(got, want, "{name}({x})");
        }
    }
}

fn smin_of(bits: u32) -> i128 {
    sext(1i128 << (bits - 1), bits)
}

fn smax_of(bits: u32) -> i128 {
    if bits == 128 {
        i128::MAX
    } else {
        (1i128 << (bits - 1)) - 1
    }
}

fn umax_of(bits: u32) -> u128 {
    if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

#[allow(clippy::cast_possible_wrap)]
fn u2i(u: u128) -> i128 {
    u as i128
}

#[test]
fn min_max() {
    int_binary("smin", &INT_TYPES, |x, y, _| x.min(y));
    int_binary("smax", &INT_TYPES, |x, y, _| x.max(y));
    int_binary(
        "umin",
        &INT_TYPES,
        |x, y, w| u2i(zext(x, w).min(zext(y, w))),
    );
    int_binary(
        "umax",
        &INT_TYPES,
        |x, y, w| u2i(zext(x, w).max(zext(y, w))),
    );
}

#[test]
fn saturating_arithmetic() {
    int_binary("sadd.sat", &INT_TYPES, |x, y, w| {
        x.saturating_add(y).clamp(smin_of(w), smax_of(w))
    });
    int_binary("ssub.sat", &INT_TYPES, |x, y, w| {
        x.saturating_sub(y).clamp(smin_of(w), smax_of(w))
    });
    int_binary("uadd.sat", &INT_TYPES, |x, y, w| {
        u2i(zext(x, w).saturating_add(zext(y, w)).min(umax_of(w)))
    });
    int_binary("usub.sat", &INT_TYPES, |x, y, w| {
        u2i(zext(x, w).saturating_sub(zext(y, w)))
    });
}

#[test]
fn saturating_shifts() {
    // Amounts of at least the width are poison in LLVM; Cranelift takes
    // them modulo the width, and so does the reference.
    int_binary("ushl.sat", &INT_TYPES, |x, y, w| {
        let s = zext(y, w) % u128::from(w);
        let ux = zext(x, w);
        let r = (ux << s) & umax_of(w);
        if r >> s == ux {
            u2i(r)
        } else {
            u2i(umax_of(w))
        }
    });
    int_binary("sshl.sat", &INT_TYPES, |x, y, w| {
        let s = zext(y, w) % u128::from(w);
        let r = sext(x << s, w);
        if r >> s == x {
            r
        } else if x < 0 {
            smin_of(w)
        } else {
            smax_of(w)
        }
    });
}

/// `fshl`/`fshr` reference.
fn funnel_ref(left: bool, x: i128, y: i128, s: i128, w: u32) -> i128 {
    let (ux, uy) = (zext(x, w), zext(y, w));
    let sm = zext(s, w) % u128::from(w);
    let m = umax_of(w);
    let r = if sm == 0 {
        if left {
            ux
        } else {
            uy
        }
    } else if left {
        ((ux << sm) | (uy >> (u128::from(w) - sm))) & m
    } else {
        ((uy >> sm) | (ux << (u128::from(w) - sm))) & m
    };
    u2i(r)
}

#[test]
fn funnel_shifts() {
    let mut rng = Rng(77);
    for left in [true, false] {
        let base = if left { "fshl" } else { "fshr" };
        for ty in INT_TYPES {
            let w = ty.bits();
            let name = format!("llvm.{base}.{}", suffix(ty));
            let f = check(&name, &[A::P(ty), A::P(ty), A::P(ty)], &[ty]);
            // The rotate form: both inputs the same value.
            let rot = check(&name, &[A::P(ty), A::Dup, A::P(ty)], &[ty]);
            let opcodes = opcodes(&rot.func);
            assert!(
                opcodes.contains(&if left { Opcode::Rotl } else { Opcode::Rotr }),
                "{name} of one value is a rotate: {opcodes:?}"
            );
            let xs = int_inputs(w, &mut rng);
            let amounts: Vec<i128> = (0..i128::from(w) + 2)
                .chain([-1, 3 * i128::from(w) + 5, smin_of(w)])
                .collect();
            for (i, &x) in xs.iter().enumerate() {
                let y = xs[(i * 7 + 3) % xs.len()];
                for &s in &amounts {
                    let args = [int_dv(ty, x), int_dv(ty, y), int_dv(ty, s)];
                    let got = dv_int(&ret(&f, &args)[0]);
                    let want = sext(funnel_ref(left, x, y, s, w), w);
                    assert_eq!(got, want, "{name}({x}, {y}, {s})");
                    let got = dv_int(&ret(&rot, &[int_dv(ty, x), int_dv(ty, s)])[0]);
                    let want = sext(funnel_ref(left, x, x, s, w), w);
                    assert_eq!(got, want, "{name}({x}, {x}, {s})");
                }
            }
        }
    }
}

#[test]
fn bit_counts_and_orders() {
    for poison in [0, 1] {
        let extra = [A::C(types::I8, poison)];
        int_unary("ctlz", &INT_TYPES, &extra, |x, w| {
            i128::from(zext(x, w).leading_zeros() - (128 - w))
        });
        int_unary("cttz", &INT_TYPES, &extra, |x, w| {
            i128::from(zext(x, w).trailing_zeros().min(w))
        });
        int_unary("abs", &INT_TYPES, &extra, |x, w| sext(x.wrapping_abs(), w));
    }
    int_unary("ctpop", &INT_TYPES, &[], |x, w| {
        i128::from(zext(x, w).count_ones())
    });
    int_unary("bitreverse", &INT_TYPES, &[], |x, w| {
        u2i(zext(x, w).reverse_bits() >> (128 - w))
    });
    int_unary("bswap", &INT_TYPES[1..], &[], |x, w| {
        u2i(zext(x, w).swap_bytes() >> (128 - w))
    });
}

/// The reference of a `*.with.overflow` intrinsic: `(x, y, bits)` to the
/// wrapped result and the overflow bit.
type OverflowRef = fn(i128, i128, u32) -> (i128, bool);

/// The reference of a binary integer operation: `(x, y, bits)`.
type IntBinRef = fn(i128, i128, u32) -> i128;

#[test]
fn overflow_intrinsics() {
    let mut rng = Rng(5);
    let ops: [(&str, OverflowRef); 6] = [
        ("sadd", |x, y, w| {
            let e = x.checked_add(y);
            (x.wrapping_add(y), e.is_none_or(|e| sext(e, w) != e))
        }),
        ("ssub", |x, y, w| {
            let e = x.checked_sub(y);
            (x.wrapping_sub(y), e.is_none_or(|e| sext(e, w) != e))
        }),
        ("smul", |x, y, w| {
            let e = x.checked_mul(y);
            (x.wrapping_mul(y), e.is_none_or(|e| sext(e, w) != e))
        }),
        ("uadd", |x, y, w| {
            let (a, b) = (zext(x, w), zext(y, w));
            let e = a.checked_add(b);
            (u2i(a.wrapping_add(b)), e.is_none_or(|e| e > umax_of(w)))
        }),
        ("usub", |x, y, w| {
            let (a, b) = (zext(x, w), zext(y, w));
            (u2i(a.wrapping_sub(b)), a < b)
        }),
        ("umul", |x, y, w| {
            let (a, b) = (zext(x, w), zext(y, w));
            let e = a.checked_mul(b);
            (u2i(a.wrapping_mul(b)), e.is_none_or(|e| e > umax_of(w)))
        }),
    ];
    for (op, reference) in ops {
        for ty in INT_TYPES {
            if ty == types::I128 && op.ends_with("mul") {
                continue; // Err, checked in unknown_and_malformed_calls_are_errors
            }
            let name = format!("llvm.{op}.with.overflow.{}", suffix(ty));
            let results = [ty, types::I8];
            let args = [A::P(ty), A::P(ty)];
            let (value, bit) = if ty == types::I128 {
                let value = check_keep(&name, &args, &results, &[0]);
                (value, Some(check_keep(&name, &args, &results, &[1])))
            } else {
                (check(&name, &args, &results), None)
            };
            let xs = int_inputs(ty.bits(), &mut rng);
            for &x in &xs {
                for &y in &xs {
                    let xy = [int_dv(ty, x), int_dv(ty, y)];
                    let mut out = ret(&value, &xy);
                    if let Some(bit) = &bit {
                        out.extend(ret(bit, &xy));
                    }
                    let (r, of) = reference(x, y, ty.bits());
                    assert_eq!(dv_int(&out[0]), sext(r, ty.bits()), "{name}({x}, {y})");
                    assert_eq!(dv_int(&out[1]), i128::from(of), "{name}({x}, {y}) overflow");
                }
            }
        }
    }
}

/// Integer vector types.
const INT_VECTORS: [Type; 4] = [types::I8X16, types::I16X8, types::I32X4, types::I64X2];

/// The scalar reference of each integer intrinsic that works on vectors.
type IntRef = fn(&[i128], u32) -> i128;

#[test]
fn integer_vectors_lane_by_lane() {
    let cases: &[(&str, usize, &[A], IntRef)] = &[
        ("smin", 2, &[], |a, _| a[0].min(a[1])),
        ("smax", 2, &[], |a, _| a[0].max(a[1])),
        ("umin", 2, &[], |a, w| u2i(zext(a[0], w).min(zext(a[1], w)))),
        ("umax", 2, &[], |a, w| u2i(zext(a[0], w).max(zext(a[1], w)))),
        ("abs", 1, &[A::C(types::I8, 0)], |a, _| a[0].wrapping_abs()),
        ("ctlz", 1, &[A::C(types::I8, 0)], |a, w| {
            i128::from(zext(a[0], w).leading_zeros() - (128 - w))
        }),
        ("cttz", 1, &[A::C(types::I8, 1)], |a, w| {
            i128::from(zext(a[0], w).trailing_zeros().min(w))
        }),
        ("ctpop", 1, &[], |a, w| {
            i128::from(zext(a[0], w).count_ones())
        }),
        ("bitreverse", 1, &[], |a, w| {
            u2i(zext(a[0], w).reverse_bits() >> (128 - w))
        }),
        ("uadd.sat", 2, &[], |a, w| {
            u2i(zext(a[0], w).saturating_add(zext(a[1], w)).min(umax_of(w)))
        }),
        ("usub.sat", 2, &[], |a, w| {
            u2i(zext(a[0], w).saturating_sub(zext(a[1], w)))
        }),
        ("sadd.sat", 2, &[], |a, w| {
            a[0].saturating_add(a[1]).clamp(smin_of(w), smax_of(w))
        }),
        ("ssub.sat", 2, &[], |a, w| {
            a[0].saturating_sub(a[1]).clamp(smin_of(w), smax_of(w))
        }),
        ("fshl", 3, &[], |a, w| funnel_ref(true, a[0], a[1], a[2], w)),
        ("fshr", 3, &[], |a, w| {
            funnel_ref(false, a[0], a[1], a[2], w)
        }),
    ];
    let mut rng = Rng(99);
    for &(base, n, extra, reference) in cases {
        for ty in INT_VECTORS {
            let w = ty.lane_bits();
            let name = format!("llvm.{base}.{}", suffix(ty));
            let mut args = vec![A::P(ty); n];
            args.extend_from_slice(extra);
            let f = check(&name, &args, &[ty]);
            let lanes = ty.lane_count() as usize;
            for _ in 0..20 {
                let inputs: Vec<Vec<i128>> = (0..n)
                    .map(|_| {
                        let pool = int_inputs(w, &mut rng);
                        (0..lanes)
                            .map(|_| pool[usize::try_from(rng.next() % 52).unwrap()])
                            .collect()
                    })
                    .collect();
                let dvs: Vec<DataValue> = inputs.iter().map(|l| vec_dv(ty, l)).collect();
                let got = dv_lanes(ty, &ret(&f, &dvs)[0]);
                for lane in 0..lanes {
                    let a: Vec<i128> = inputs.iter().map(|l| l[lane]).collect();
                    let want = sext(reference(&a, w), w);
                    assert_eq!(got[lane], want, "{name} lane {lane} of {inputs:?}");
                }
            }
        }
    }
    // bswap: lanes of 16 bits and more.
    for ty in [types::I16X8, types::I32X4, types::I64X2] {
        let name = format!("llvm.bswap.{}", suffix(ty));
        let f = check(&name, &[A::P(ty)], &[ty]);
        let lanes: Vec<i128> = (0..ty.lane_count())
            .map(|i| sext(0x0102_0304_0506_0708 * i128::from(i + 1), ty.lane_bits()))
            .collect();
        let got = dv_lanes(ty, &ret(&f, &[vec_dv(ty, &lanes)])[0]);
        let w = ty.lane_bits();
        let want: Vec<i128> = lanes
            .iter()
            .map(|&l| sext(u2i(zext(l, w).swap_bytes() >> (128 - w)), w))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn integer_reductions() {
    let ops: [(&str, IntBinRef); 9] = [
        ("add", |a, b, _| a.wrapping_add(b)),
        ("mul", |a, b, _| a.wrapping_mul(b)),
        ("and", |a, b, _| a & b),
        ("or", |a, b, _| a | b),
        ("xor", |a, b, _| a ^ b),
        ("smin", |a, b, _| a.min(b)),
        ("smax", |a, b, _| a.max(b)),
        ("umin", |a, b, w| u2i(zext(a, w).min(zext(b, w)))),
        ("umax", |a, b, w| u2i(zext(a, w).max(zext(b, w)))),
    ];
    let mut rng = Rng(3);
    for (op, reference) in ops {
        for ty in INT_VECTORS {
            let w = ty.lane_bits();
            let lane_ty = ty.lane_type();
            let name = format!("llvm.vector.reduce.{op}.{}", suffix(ty));
            let f = check(&name, &[A::P(ty)], &[lane_ty]);
            for _ in 0..30 {
                let lanes: Vec<i128> = (0..ty.lane_count()).map(|_| rng.int(w)).collect();
                let got = dv_int(&ret(&f, &[vec_dv(ty, &lanes)])[0]);
                let want = lanes[1..]
                    .iter()
                    .fold(lanes[0], |a, &b| sext(reference(a, b, w), w));
                assert_eq!(got, want, "{name}({lanes:?})");
            }
        }
    }
}

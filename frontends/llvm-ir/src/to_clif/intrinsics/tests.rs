//! Tests of the intrinsics: each intrinsic is translated into a small
//! function (its arguments the function's parameters, its results the
//! function's), which must pass the verifier and compile with the x86-64
//! backend both at the SSE2 baseline and with the host's extensions; then
//! cranelift-interpreter runs it over many inputs, against Rust reference
//! implementations. Libcalls cannot run in the interpreter: their tests
//! check the calls emitted.

use super::{base_name, translate, IntrinsicCall, IntrinsicHost, TRAP_CODE};
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
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
    let flags = test_flags();
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

/// The shared settings, as orc's Cranelift compiler sets them (frame
/// pointers kept).
fn test_flags() -> settings::Flags {
    let mut builder = settings::builder();
    builder.enable("preserve_frame_pointers").unwrap();
    settings::Flags::new(builder)
}

/// Translates, verifies and compiles (both targets) `name`; panics with
/// the reason otherwise.
fn check(name: &str, args: &[A], results: &[Type]) -> Built {
    check_keep(name, args, results, &(0..results.len()).collect::<Vec<_>>())
}

/// [`check`] of [`build_keep`].
fn check_keep(name: &str, args: &[A], results: &[Type], keep: &[usize]) -> Built {
    let built = build_keep(name, args, results, keep).unwrap_or_else(|e| panic!("{name}: {e}"));
    for isa in isas() {
        if let Err(e) = verify_function(&built.func, &*isa) {
            panic!("{name}: verifier: {e}\n{}", built.func.display());
        }
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

// ---------------------------------------------------------------- floats

/// The scalar float `DataValue` of type `ty` (`f32` or `f64`) holding `x`
/// (rounded to `f32` for `f32`).
#[allow(clippy::cast_possible_truncation)]
fn float_dv(ty: Type, x: f64) -> DataValue {
    if ty == types::F32 {
        DataValue::F32(Ieee32::with_float(x as f32))
    } else {
        DataValue::F64(Ieee64::with_float(x))
    }
}

/// The float a scalar `DataValue` holds (exactly, as `f64`).
fn dv_float(v: &DataValue) -> f64 {
    match *v {
        DataValue::F32(x) => f64::from(f32::from_bits(x.bits())),
        DataValue::F64(x) => f64::from_bits(x.bits()),
        ref other => panic!("not a float: {other}"),
    }
}

/// The float vector `DataValue` of type `ty` with these lanes.
#[allow(clippy::cast_possible_truncation)]
fn float_vec_dv(ty: Type, lanes: &[f64]) -> DataValue {
    let mut bytes = Vec::new();
    for &l in lanes {
        if ty.lane_type() == types::F32 {
            bytes.extend_from_slice(&(l as f32).to_le_bytes());
        } else {
            bytes.extend_from_slice(&l.to_le_bytes());
        }
    }
    DataValue::V128(bytes.try_into().unwrap())
}

/// The lanes of a float vector `DataValue` of type `ty`.
fn dv_float_lanes(ty: Type, v: &DataValue) -> Vec<f64> {
    let DataValue::V128(bytes) = v else {
        panic!("not a 128-bit vector: {v}")
    };
    if ty.lane_type() == types::F32 {
        bytes
            .chunks(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect()
    } else {
        bytes
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}

/// The interesting floats: signed zeros, halves (rounding ties), the
/// largest non-integers, infinities, NaN, subnormals, extremes.
fn float_inputs(ty: Type, rng: &mut Rng) -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        3.5,
        -0.3,
        0.7,
        123.456,
        -7.25,
        1e-10,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    if ty == types::F32 {
        v.extend([
            0.499_999_97,
            -0.499_999_97,
            8_388_607.5,
            -8_388_607.5,
            16_777_217.0,
            f64::from(f32::MAX),
            f64::from(f32::MIN),
            f64::from(f32::MIN_POSITIVE),
            1e-45,
            -1e-45,
        ]);
    } else {
        v.extend([
            0.499_999_999_999_999_94,
            -0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            9_007_199_254_740_993.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            1e300,
        ]);
    }
    #[allow(clippy::cast_precision_loss)]
    v.extend((0..12).map(|_| {
        let m = (rng.next() % 2_000_001) as f64 / 1000.0 - 1000.0;
        if rng.next() % 2 == 0 {
            m
        } else {
            m * 1e6
        }
    }));
    v
}

/// Whether two results agree: both NaN, or the same bits (so `-0.0` and
/// `0.0` differ); with `loose_zero`, also `-0.0` for `0.0`.
fn same_float(a: f64, b: f64, loose_zero: bool) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits() || (loose_zero && a == 0.0 && b == 0.0)
}

/// A float reference, for each of the two types.
type FloatRef = (fn(&[f32]) -> f32, fn(&[f64]) -> f64);

/// The reference `$body` over the argument slice `$a`, for `f32` and `f64`.
macro_rules! both {
    (|$a:ident| $body:expr) => {
        (|$a: &[f32]| -> f32 { $body }, |$a: &[f64]| -> f64 { $body })
    };
}

/// LLVM's `minimum`: NaN-propagating, `-0.0 < 0.0`.
macro_rules! minimum {
    ($x:expr, $y:expr) => {{
        let (x, y) = ($x, $y);
        if x.is_nan() || y.is_nan() {
            x + y
        } else if x == y {
            if x.is_sign_negative() {
                x
            } else {
                y
            }
        } else {
            x.min(y)
        }
    }};
}

/// LLVM's `maximum`.
macro_rules! maximum {
    ($x:expr, $y:expr) => {{
        let (x, y) = ($x, $y);
        if x.is_nan() || y.is_nan() {
            x + y
        } else if x == y {
            if x.is_sign_positive() {
                x
            } else {
                y
            }
        } else {
            x.max(y)
        }
    }};
}

/// The float intrinsics run in the interpreter: base name, arity,
/// reference, whether the sign of a zero result may differ.
fn float_cases() -> Vec<(&'static str, usize, FloatRef, bool)> {
    vec![
        ("fabs", 1, both!(|a| a[0].abs()), false),
        ("sqrt", 1, both!(|a| a[0].sqrt()), false),
        ("floor", 1, both!(|a| a[0].floor()), false),
        ("ceil", 1, both!(|a| a[0].ceil()), false),
        ("trunc", 1, both!(|a| a[0].trunc()), false),
        ("rint", 1, both!(|a| a[0].round_ties_even()), false),
        ("nearbyint", 1, both!(|a| a[0].round_ties_even()), false),
        ("roundeven", 1, both!(|a| a[0].round_ties_even()), false),
        ("round", 1, both!(|a| a[0].round()), false),
        ("canonicalize", 1, both!(|a| a[0]), false),
        ("copysign", 2, both!(|a| a[0].copysign(a[1])), false),
        ("minnum", 2, both!(|a| a[0].min(a[1])), true),
        ("maxnum", 2, both!(|a| a[0].max(a[1])), true),
        ("minimum", 2, both!(|a| minimum!(a[0], a[1])), false),
        ("maximum", 2, both!(|a| maximum!(a[0], a[1])), false),
        ("fma", 3, both!(|a| a[0].mul_add(a[1], a[2])), false),
        ("fmuladd", 3, both!(|a| a[0] * a[1] + a[2]), false),
    ]
}

/// The reference of `case` for the lane type of `ty` on `args`.
#[allow(clippy::cast_possible_truncation)]
fn float_ref(r: &FloatRef, ty: Type, args: &[f64]) -> f64 {
    if ty.lane_type() == types::F32 {
        let a: Vec<f32> = args.iter().map(|&x| x as f32).collect();
        f64::from((r.0)(&a))
    } else {
        (r.1)(args)
    }
}

/// The argument tuples of an `n`-ary float test: every pair for binary
/// operations, a sample for ternary ones.
fn float_arg_sets(n: usize, xs: &[f64], rng: &mut Rng) -> Vec<Vec<f64>> {
    let pick = |rng: &mut Rng| xs[usize::try_from(rng.next()).unwrap() % xs.len()];
    match n {
        1 => xs.iter().map(|&x| vec![x]).collect(),
        2 => xs
            .iter()
            .flat_map(|&x| xs.iter().map(move |&y| vec![x, y]))
            .collect(),
        _ => (0..1500)
            .map(|_| (0..n).map(|_| pick(rng)).collect())
            .collect(),
    }
}

fn float_suffix(ty: Type) -> String {
    if ty.is_vector() {
        format!("v{}f{}", ty.lane_count(), ty.lane_bits())
    } else {
        format!("f{}", ty.bits())
    }
}

#[test]
fn float_scalars() {
    let mut rng = Rng(11);
    for (base, n, reference, loose_zero) in float_cases() {
        for ty in [types::F32, types::F64] {
            let name = format!("llvm.{base}.{}", float_suffix(ty));
            let f = check(&name, &vec![A::P(ty); n], &[ty]);
            let xs = float_inputs(ty, &mut rng);
            for args in float_arg_sets(n, &xs, &mut rng) {
                let dvs: Vec<DataValue> = args.iter().map(|&x| float_dv(ty, x)).collect();
                let got = dv_float(&ret(&f, &dvs)[0]);
                let want = float_ref(&reference, ty, &args);
                assert!(
                    same_float(got, want, loose_zero),
                    "{name}{args:?}: got {got:e}, want {want:e}"
                );
            }
        }
    }
}

#[test]
fn float_vectors() {
    let mut rng = Rng(12);
    for (base, n, reference, loose_zero) in float_cases() {
        for ty in [types::F32X4, types::F64X2] {
            let name = format!("llvm.{base}.{}", float_suffix(ty));
            let f = check(&name, &vec![A::P(ty); n], &[ty]);
            let xs = float_inputs(ty.lane_type(), &mut rng);
            let lanes = ty.lane_count() as usize;
            let sets = float_arg_sets(n, &xs, &mut rng);
            for chunk in sets.chunks(lanes) {
                if chunk.len() < lanes {
                    continue;
                }
                let dvs: Vec<DataValue> = (0..n)
                    .map(|i| {
                        let l: Vec<f64> = chunk.iter().map(|args| args[i]).collect();
                        float_vec_dv(ty, &l)
                    })
                    .collect();
                let got = dv_float_lanes(ty, &ret(&f, &dvs)[0]);
                for (lane, args) in chunk.iter().enumerate() {
                    let want = float_ref(&reference, ty, args);
                    assert!(
                        same_float(got[lane], want, loose_zero),
                        "{name} lane {lane} {args:?}: got {:e}, want {want:e}",
                        got[lane]
                    );
                }
            }
        }
    }
}

#[test]
fn powi_matches_compiler_rt() {
    let mut rng = Rng(13);
    let exponents: Vec<i32> = (-40..=40)
        .chain([i32::MIN, i32::MIN + 1, i32::MAX, 1000, -1000, 1 << 20])
        .collect();
    for ty in [types::F32, types::F64] {
        let name = format!("llvm.powi.{}.i32", float_suffix(ty));
        let f = check(&name, &[A::P(ty), A::P(types::I32)], &[ty]);
        for x in float_inputs(ty, &mut rng) {
            for &e in &exponents {
                let got = dv_float(&ret(&f, &[float_dv(ty, x), DataValue::I32(e)])[0]);
                #[allow(clippy::cast_possible_truncation)]
                let want = if ty == types::F32 {
                    f64::from(std::hint::black_box(x as f32).powi(std::hint::black_box(e)))
                } else {
                    std::hint::black_box(x).powi(std::hint::black_box(e))
                };
                assert!(
                    same_float(got, want, false),
                    "{name}({x:e}, {e}): got {got:e}, want {want:e}"
                );
            }
        }
    }
}

#[test]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn saturating_float_to_int() {
    let mut rng = Rng(14);
    for fty in [types::F32, types::F64] {
        for ity in [types::I8, types::I16, types::I32, types::I64] {
            for signed in [true, false] {
                let op = if signed { "fptosi" } else { "fptoui" };
                let name = format!("llvm.{op}.sat.{}.{}", suffix(ity), float_suffix(fty));
                let f = check(&name, &[A::P(fty)], &[ity]);
                for x in float_inputs(fty, &mut rng) {
                    let x = if fty == types::F32 {
                        f64::from(x as f32)
                    } else {
                        x
                    };
                    // Rust's `as` saturates and maps NaN to 0, as LLVM does.
                    let want: i128 = match (ity.bits(), signed) {
                        (8, true) => (x as i8).into(),
                        (16, true) => (x as i16).into(),
                        (32, true) => (x as i32).into(),
                        (64, true) => (x as i64).into(),
                        (8, false) => (x as u8).into(),
                        (16, false) => (x as u16).into(),
                        (32, false) => (x as u32).into(),
                        _ => (x as u64).into(),
                    };
                    let got = dv_int(&ret(&f, &[float_dv(fty, x)])[0]);
                    assert_eq!(got, sext(want, ity.bits()), "{name}({x:e})");
                }
            }
        }
    }
}

#[test]
fn float_reductions() {
    let mut rng = Rng(15);
    let ops: [(&str, FloatRef); 6] = [
        ("fadd", both!(|a| a[0] + a[1])),
        ("fmul", both!(|a| a[0] * a[1])),
        ("fmin", both!(|a| a[0].min(a[1]))),
        ("fmax", both!(|a| a[0].max(a[1]))),
        ("fminimum", both!(|a| minimum!(a[0], a[1]))),
        ("fmaximum", both!(|a| maximum!(a[0], a[1]))),
    ];
    for (op, reference) in ops {
        let ordered = matches!(op, "fadd" | "fmul");
        for ty in [types::F32X4, types::F64X2] {
            let lane = ty.lane_type();
            let name = format!("llvm.vector.reduce.{op}.{}", float_suffix(ty));
            let args = if ordered {
                vec![A::P(lane), A::P(ty)]
            } else {
                vec![A::P(ty)]
            };
            let f = check(&name, &args, &[lane]);
            let xs = float_inputs(lane, &mut rng);
            for _ in 0..300 {
                let pick = |rng: &mut Rng| xs[usize::try_from(rng.next()).unwrap() % xs.len()];
                let start = pick(&mut rng);
                let lanes: Vec<f64> = (0..ty.lane_count()).map(|_| pick(&mut rng)).collect();
                let mut dvs = Vec::new();
                if ordered {
                    dvs.push(float_dv(lane, start));
                }
                dvs.push(float_vec_dv(ty, &lanes));
                let got = dv_float(&ret(&f, &dvs)[0]);
                // In order: the start value (if any), lane 0, lane 1...
                let mut acc = float_ref(
                    &both!(|a| a[0]),
                    lane,
                    &[if ordered { start } else { lanes[0] }],
                );
                let from = usize::from(!ordered);
                for &x in &lanes[from..] {
                    acc = float_ref(&reference, lane, &[acc, x]);
                }
                assert!(
                    same_float(got, acc, !op.ends_with("imum") && !ordered),
                    "{name}({start:e}, {lanes:?}): got {got:e}, want {acc:e}"
                );
            }
        }
    }
}

// -------------------------------------------------------------- libcalls

/// The libcalls of `f`, as (symbol, parameter types, return types).
fn libcalls(f: &Built) -> Vec<(String, Vec<Type>, Vec<Type>)> {
    f.calls
        .iter()
        .map(|(s, sig)| {
            assert_eq!(sig.call_conv, CallConv::SystemV, "{s}");
            (
                s.clone(),
                sig.params.iter().map(|p| p.value_type).collect(),
                sig.returns.iter().map(|p| p.value_type).collect(),
            )
        })
        .collect()
}

#[test]
fn memory_intrinsics_call_libc() {
    use types::{I32, I64, I8};
    let cases: &[(&str, &[A], &str, &[Type])] = &[
        (
            "llvm.memcpy.p0.p0.i64",
            &[A::P(I64), A::P(I64), A::P(I64), A::C(I8, 0)],
            "memcpy",
            &[I64, I64, I64],
        ),
        (
            "llvm.memcpy.p0.p0.i32",
            &[A::P(I64), A::P(I64), A::P(I32), A::C(I8, 1)],
            "memcpy",
            &[I64, I64, I64],
        ),
        (
            "llvm.memcpy.inline.p0.p0.i64",
            &[A::P(I64), A::P(I64), A::C(I64, 16), A::C(I8, 0)],
            "memcpy",
            &[I64, I64, I64],
        ),
        (
            "llvm.memmove.p0.p0.i64",
            &[A::P(I64), A::P(I64), A::P(I64), A::C(I8, 0)],
            "memmove",
            &[I64, I64, I64],
        ),
        (
            "llvm.memset.p0.i64",
            &[A::P(I64), A::P(I8), A::P(I64), A::C(I8, 0)],
            "memset",
            &[I64, I32, I64],
        ),
        (
            "llvm.memset.inline.p0.i32",
            &[A::P(I64), A::C(I8, 0xff), A::C(I32, 8), A::C(I8, 0)],
            "memset",
            &[I64, I32, I64],
        ),
    ];
    for &(name, args, symbol, params) in cases {
        let f = check(name, args, &[]);
        assert_eq!(
            libcalls(&f),
            vec![(symbol.to_owned(), params.to_vec(), vec![I64])],
            "{name}"
        );
        let ops = opcodes(&f.func);
        assert_eq!(
            ops.iter().filter(|&&o| o == Opcode::Call).count(),
            1,
            "{name}"
        );
        // The length and memset's byte are zero-extended.
        if params != [I64, I64, I64] || name.ends_with("i32") {
            assert!(ops.contains(&Opcode::Uextend), "{name}: {ops:?}");
        }
    }
}

/// A libm intrinsic test: the name, argument types, result type, then the
/// libcall symbol, parameter types and return type, and how many calls.
type LibmCase = (
    &'static str,
    &'static [Type],
    Type,
    &'static str,
    &'static [Type],
    Type,
    usize,
);

#[test]
fn libm_intrinsics_call_libm() {
    use types::{F32, F32X4, F64, F64X2, I32, I64};
    let cases: &[LibmCase] = &[
        ("llvm.sin.f64", &[F64], F64, "sin", &[F64], F64, 1),
        ("llvm.sin.f32", &[F32], F32, "sinf", &[F32], F32, 1),
        ("llvm.cos.v4f32", &[F32X4], F32X4, "cosf", &[F32], F32, 4),
        ("llvm.exp.f64", &[F64], F64, "exp", &[F64], F64, 1),
        ("llvm.exp2.f32", &[F32], F32, "exp2f", &[F32], F32, 1),
        ("llvm.exp10.f64", &[F64], F64, "exp10", &[F64], F64, 1),
        ("llvm.log.v2f64", &[F64X2], F64X2, "log", &[F64], F64, 2),
        ("llvm.log2.f64", &[F64], F64, "log2", &[F64], F64, 1),
        ("llvm.log10.f32", &[F32], F32, "log10f", &[F32], F32, 1),
        ("llvm.tan.f64", &[F64], F64, "tan", &[F64], F64, 1),
        ("llvm.pow.f64", &[F64, F64], F64, "pow", &[F64, F64], F64, 1),
        (
            "llvm.pow.v4f32",
            &[F32X4, F32X4],
            F32X4,
            "powf",
            &[F32, F32],
            F32,
            4,
        ),
        (
            "llvm.ldexp.f64.i32",
            &[F64, I32],
            F64,
            "ldexp",
            &[F64, I32],
            F64,
            1,
        ),
        (
            "llvm.ldexp.f32.i32",
            &[F32, I32],
            F32,
            "ldexpf",
            &[F32, I32],
            F32,
            1,
        ),
        ("llvm.lround.i64.f64", &[F64], I64, "lround", &[F64], I64, 1),
        (
            "llvm.lround.i32.f32",
            &[F32],
            I32,
            "lroundf",
            &[F32],
            I64,
            1,
        ),
        (
            "llvm.llround.i64.f64",
            &[F64],
            I64,
            "llround",
            &[F64],
            I64,
            1,
        ),
        ("llvm.lrint.i64.f64", &[F64], I64, "lrint", &[F64], I64, 1),
        (
            "llvm.llrint.i64.f32",
            &[F32],
            I64,
            "llrintf",
            &[F32],
            I64,
            1,
        ),
    ];
    for &(name, args, result, symbol, params, ret_ty, n) in cases {
        let args: Vec<A> = args.iter().map(|&t| A::P(t)).collect();
        let f = check(name, &args, &[result]);
        let want = vec![(symbol.to_owned(), params.to_vec(), vec![ret_ty]); n];
        assert_eq!(libcalls(&f), want, "{name}");
        let ops = opcodes(&f.func);
        assert_eq!(
            ops.iter().filter(|&&o| o == Opcode::Call).count(),
            n,
            "{name}"
        );
    }
}

// ------------------------------------------------- markers, hints, traps

#[test]
fn markers_emit_no_code() {
    use types::{I64, I8};
    let cases: &[(&str, &[A])] = &[
        ("llvm.lifetime.start.p0", &[A::C(I64, 16), A::P(I64)]),
        ("llvm.lifetime.end.p0", &[A::C(I64, 16), A::P(I64)]),
        ("llvm.dbg.value", &[A::P(I64)]),
        ("llvm.dbg.declare", &[]),
        ("llvm.experimental.noalias.scope.decl", &[]),
        (
            "llvm.invariant.end.p0",
            &[A::P(I64), A::C(I64, 8), A::P(I64)],
        ),
        ("llvm.sideeffect", &[]),
        (
            "llvm.pseudoprobe",
            &[A::C(I64, 1), A::C(I64, 2), A::C(I64, 0), A::C(I64, 0)],
        ),
        ("llvm.donothing", &[]),
        ("llvm.assume", &[A::P(I8)]),
        (
            "llvm.prefetch.p0",
            &[A::P(I64), A::C(I64, 0), A::C(I64, 3), A::C(I64, 1)],
        ),
        ("llvm.clear_cache", &[A::P(I64), A::P(I64)]),
    ];
    for &(name, args) in cases {
        let f = check(name, args, &[]);
        let ops: Vec<Opcode> = opcodes(&f.func)
            .into_iter()
            .filter(|&o| o != Opcode::Iconst)
            .collect();
        assert_eq!(ops, [Opcode::Return], "{name}");
        assert!(f.calls.is_empty());
    }
}

#[test]
fn hints_give_their_values() {
    use types::{I32, I64, I8};
    let f = check("llvm.expect.i64", &[A::P(I64), A::C(I64, 1)], &[I64]);
    for x in [0, 1, -1, i64::MIN, 42] {
        assert_eq!(ret(&f, &[DataValue::I64(x)]), [DataValue::I64(x)]);
    }
    let f = check("llvm.expect.i1", &[A::P(I8), A::C(I8, 0)], &[I8]);
    assert_eq!(ret(&f, &[DataValue::I8(1)]), [DataValue::I8(1)]);
    let f = check(
        "llvm.expect.with.probability.i32",
        &[A::P(I32), A::C(I32, 7), A::P(types::F64)],
        &[I32],
    );
    assert_eq!(
        ret(&f, &[DataValue::I32(-9), float_dv(types::F64, 0.9)]),
        [DataValue::I32(-9)]
    );
    let f = check("llvm.is.constant.i32", &[A::P(I32)], &[I8]);
    assert_eq!(ret(&f, &[DataValue::I32(3)]), [DataValue::I8(0)]);
    for (min, want) in [(0, -1), (1, 0)] {
        for ty in [I64, I32] {
            let name = format!("llvm.objectsize.{}.p0", suffix(ty));
            let args = [A::P(I64), A::C(I8, min), A::C(I8, 0), A::C(I8, 0)];
            let f = check(&name, &args, &[ty]);
            let got = dv_int(&ret(&f, &[DataValue::I64(0x1000)])[0]);
            assert_eq!(got, want, "{name} min={min}");
        }
    }
    let f = check(
        "llvm.invariant.start.p0",
        &[A::C(I64, 8), A::P(I64)],
        &[I64],
    );
    assert_eq!(ret(&f, &[DataValue::I64(0x1000)]), [DataValue::I64(0)]);
    let f = check("llvm.launder.invariant.group.p0", &[A::P(I64)], &[I64]);
    assert_eq!(ret(&f, &[DataValue::I64(0x1234)]), [DataValue::I64(0x1234)]);
}

#[test]
fn traps_end_the_block() {
    // After a trap the builder is in a fresh block where the test's
    // `return` lands: `check` verifies that it is well formed.
    let f = check("llvm.trap", &[], &[]);
    assert!(matches!(run(&f, &[]), Err(CraneliftTrap::User(c)) if c == TRAP_CODE));
    assert_eq!(f.func.layout.blocks().count(), 2);
    let f = check("llvm.ubsantrap", &[A::C(types::I8, 7)], &[]);
    let seven = ir::TrapCode::unwrap_user(7);
    assert!(matches!(run(&f, &[]), Err(CraneliftTrap::User(c)) if c == seven));
    let f = check("llvm.ubsantrap", &[A::C(types::I8, 0)], &[]);
    assert!(matches!(run(&f, &[]), Err(CraneliftTrap::User(c)) if c == TRAP_CODE));
    // `debugtrap` is a breakpoint: execution may go on after it.
    let f = check("llvm.debugtrap", &[], &[]);
    assert_eq!(opcodes(&f.func), [Opcode::Debugtrap, Opcode::Return]);
    assert!(matches!(run(&f, &[]), Err(CraneliftTrap::Debug)));
}

#[test]
fn vectors_other_than_128_bits_are_errors() {
    let cases: &[(&str, &[A], Type)] = &[
        (
            "llvm.smin.v2i32",
            &[A::P(types::I32X2), A::P(types::I32X2)],
            types::I32X2,
        ),
        ("llvm.fabs.v2f32", &[A::P(types::F32X2)], types::F32X2),
        ("llvm.ctpop.v8i8", &[A::P(types::I8X8)], types::I8X8),
        (
            "llvm.vector.reduce.add.v2i32",
            &[A::P(types::I32X2)],
            types::I32,
        ),
        ("llvm.sin.v2f32", &[A::P(types::F32X2)], types::F32X2),
    ];
    for &(name, args, result) in cases {
        let e = build(name, args, &[result]).err();
        let e = e.unwrap_or_else(|| panic!("{name} was accepted"));
        assert!(e.starts_with(&format!("intrinsic {name}")), "{e}");
    }
}

#[test]
fn i1_operations_read_1_as_minus_1_when_signed() {
    // As LLVM's i1: smin(1, 0) is 1 (-1 < 0), smax(1, 0) is 0.
    let i8t = types::I8;
    type BoolRef = fn(bool, bool) -> bool;
    let refs: [(&str, BoolRef); 4] = [
        ("smin", |a, b| a || b),
        ("smax", |a, b| a && b),
        ("umin", |a, b| a && b),
        ("umax", |a, b| a || b),
    ];
    for (op, reference) in refs {
        let name = format!("llvm.{op}.i1");
        let f = check(&name, &[A::P(i8t), A::P(i8t)], &[i8t]);
        for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
            let got = ret(&f, &[DataValue::I8(a.into()), DataValue::I8(b.into())]);
            let want = DataValue::I8(reference(a, b).into());
            assert_eq!(got, [want], "{name}({a}, {b})");
        }
    }
    let f = check("llvm.abs.i1", &[A::P(i8t), A::C(i8t, 0)], &[i8t]);
    assert_eq!(ret(&f, &[DataValue::I8(1)]), [DataValue::I8(1)]);
    // Reductions of i1 lanes (each lane an i8 holding 0 or 1).
    let v = types::I8X16;
    for (op, any) in [
        ("or", true),
        ("umax", true),
        ("smin", true),
        ("and", false),
        ("smax", false),
    ] {
        let name = format!("llvm.vector.reduce.{op}.v16i1");
        let f = check(&name, &[A::P(v)], &[i8t]);
        let mut lanes = vec![0i128; 16];
        lanes[5] = 1;
        let got = ret(&f, &[vec_dv(v, &lanes)]);
        assert_eq!(got, [DataValue::I8(any.into())], "{name} of one set lane");
    }
    // Signed readings the translation does not model are errors.
    for (name, args, results) in [
        ("llvm.sadd.sat.i1", vec![A::P(i8t), A::P(i8t)], vec![i8t]),
        (
            "llvm.smul.with.overflow.i1",
            vec![A::P(i8t), A::P(i8t)],
            vec![i8t, i8t],
        ),
        ("llvm.fptosi.sat.i1.f64", vec![A::P(types::F64)], vec![i8t]),
    ] {
        let e = build(name, &args, &results).err();
        assert!(
            e.is_some_and(|e| e.starts_with(&format!("intrinsic {name}"))),
            "{name}"
        );
    }
}

#[test]
fn saturating_shifts_of_vectors() {
    let mut rng = Rng(21);
    for ty in INT_VECTORS {
        let w = ty.lane_bits();
        for signed in [false, true] {
            let name = format!(
                "llvm.{}shl.sat.{}",
                if signed { "s" } else { "u" },
                suffix(ty)
            );
            let f = check(&name, &[A::P(ty), A::P(ty)], &[ty]);
            for _ in 0..20 {
                let xs: Vec<i128> = (0..ty.lane_count()).map(|_| rng.int(w)).collect();
                let ss: Vec<i128> = (0..ty.lane_count())
                    .map(|_| i128::from(rng.next() % u64::from(w)))
                    .collect();
                let got = dv_lanes(ty, &ret(&f, &[vec_dv(ty, &xs), vec_dv(ty, &ss)])[0]);
                for i in 0..xs.len() {
                    let (x, s) = (xs[i], ss[i]);
                    let want = if signed {
                        let r = sext(x << s, w);
                        if r >> s == x {
                            r
                        } else if x < 0 {
                            smin_of(w)
                        } else {
                            smax_of(w)
                        }
                    } else {
                        let r = (zext(x, w) << s) & umax_of(w);
                        sext(u2i(if r >> s == zext(x, w) { r } else { umax_of(w) }), w)
                    };
                    assert_eq!(got[i], want, "{name} lane {i}: {x} << {s}");
                }
            }
        }
    }
}

/// The `is.fpclass` classes of the float with these bits.
fn fpclass_of(bits: u64, f32: bool) -> u32 {
    let (x, quiet) = if f32 {
        let b = u32::try_from(bits).unwrap();
        (f64::from(f32::from_bits(b)), b & 0x0040_0000 != 0)
    } else {
        (f64::from_bits(bits), bits & (1 << 51) != 0)
    };
    let neg = x.is_sign_negative();
    // Subnormal f32s are normal f64s: classify in the source type.
    let category = if f32 {
        f32::from_bits(u32::try_from(bits).unwrap()).classify()
    } else {
        x.classify()
    };
    use std::num::FpCategory::*;
    let bit = match (category, neg) {
        (Nan, _) => usize::from(quiet),
        (Infinite, true) => 2,
        (Normal, true) => 3,
        (Subnormal, true) => 4,
        (Zero, true) => 5,
        (Zero, false) => 6,
        (Subnormal, false) => 7,
        (Normal, false) => 8,
        (Infinite, false) => 9,
    };
    1 << bit
}

#[test]
fn is_fpclass_tests_the_bits() {
    let mut rng = Rng(31);
    let masks: Vec<i64> = (0..10)
        .map(|b| 1 << b)
        .chain([0, 0b11, 0x204, 0x1f8, 0x3ff, 0x90, 0x60, 0x3fc, 0x1, 0x108])
        .collect();
    for ty in [types::F32, types::F64] {
        let is32 = ty == types::F32;
        let mut inputs: Vec<u64> = float_inputs(ty, &mut rng)
            .into_iter()
            .map(|x| {
                if is32 {
                    #[allow(clippy::cast_possible_truncation)]
                    u64::from((x as f32).to_bits())
                } else {
                    x.to_bits()
                }
            })
            .collect();
        if is32 {
            inputs.extend([
                0x7f80_0001,
                0xff80_0001,
                0x7fc0_0000,
                0xffc0_0001,
                0x0000_0001,
                0x807f_ffff,
            ]);
        } else {
            inputs.extend([
                0x7ff0_0000_0000_0001,
                0xfff0_0000_0000_0001,
                0x7ff8_0000_0000_0000,
                0xfff8_0000_0000_0001,
                0x0000_0000_0000_0001,
                0x800f_ffff_ffff_ffff,
            ]);
        }
        for &mask in &masks {
            let name = format!("llvm.is.fpclass.{}", float_suffix(ty));
            let f = check(&name, &[A::P(ty), A::C(types::I32, mask)], &[types::I8]);
            for &bits in &inputs {
                let arg = if is32 {
                    DataValue::F32(Ieee32::with_bits(u32::try_from(bits).unwrap()))
                } else {
                    DataValue::F64(Ieee64::with_bits(bits))
                };
                let want = i64::from(fpclass_of(bits, is32)) & mask != 0;
                let got = ret(&f, &[arg]);
                assert_eq!(
                    got,
                    [DataValue::I8(want.into())],
                    "{name}({bits:#x}, {mask:#x})"
                );
            }
        }
    }
}

#[test]
fn frexp_calls_libm_with_a_slot() {
    for (ty, symbol) in [(types::F64, "frexp"), (types::F32, "frexpf")] {
        let name = format!("llvm.frexp.{}.i32", float_suffix(ty));
        let f = check(&name, &[A::P(ty)], &[ty, types::I32]);
        assert_eq!(
            libcalls(&f),
            [(symbol.to_owned(), vec![ty, types::I64], vec![ty])],
            "{name}"
        );
        let ops = opcodes(&f.func);
        for op in [Opcode::StackAddr, Opcode::Call, Opcode::Load] {
            assert!(ops.contains(&op), "{name}: {ops:?}");
        }
    }
}

#[test]
fn pointers_and_frames() {
    let i64t = types::I64;
    let f = check("llvm.ptrmask.p0.i64", &[A::P(i64t), A::P(i64t)], &[i64t]);
    let got = ret(&f, &[DataValue::I64(0x1237), DataValue::I64(-16)]);
    assert_eq!(got, [DataValue::I64(0x1230)]);
    for (name, op) in [
        ("llvm.frameaddress.p0", Opcode::GetFramePointer),
        ("llvm.returnaddress", Opcode::GetReturnAddress),
    ] {
        let f = check(name, &[A::C(types::I32, 0)], &[i64t]);
        assert!(opcodes(&f.func).contains(&op), "{name}");
        let e = build(name, &[A::C(types::I32, 1)], &[i64t]).err();
        assert_eq!(e.unwrap(), format!("intrinsic {name}: other than level 0"));
    }
}

#[test]
fn vector_reverse() {
    for ty in INT_VECTORS {
        let name = format!("llvm.vector.reverse.{}", suffix(ty));
        let f = check(&name, &[A::P(ty)], &[ty]);
        let lanes: Vec<i128> = (0..ty.lane_count())
            .map(|i| i128::from(i) * 3 - 7)
            .collect();
        let got = dv_lanes(ty, &ret(&f, &[vec_dv(ty, &lanes)])[0]);
        let want: Vec<i128> = lanes.iter().rev().copied().collect();
        assert_eq!(got, want, "{name}");
    }
    let f = check(
        "llvm.vector.reverse.v4f32",
        &[A::P(types::F32X4)],
        &[types::F32X4],
    );
    let got = dv_float_lanes(
        types::F32X4,
        &ret(
            &f,
            &[float_vec_dv(types::F32X4, &[1.0, -0.0, 2.5, f64::INFINITY])],
        )[0],
    );
    assert_eq!(got, [f64::INFINITY, 2.5, -0.0, 1.0]);
}

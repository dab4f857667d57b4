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

mod calls;
mod float;
mod int;

use float::*;
use int::*;

//! The generator's function skeleton and its pool of variables.
//!
//! Generated code reads and writes `cranelift-frontend` variables (three or
//! four per scalar type), so any value may be used anywhere without
//! breaking dominance: the SSA builder turns them into block parameters
//! where control flow meets. Explicit block arguments are added on top by
//! `control` (merge blocks, `br_table` targets, loop counters).
//!
//! Invariant: a float variable of class [`FloatClass::Exact`] only ever
//! holds floats whose bits every correct implementation agrees on (see the
//! module docs of `clifgen`), so its value may be turned into bits.

use arbitrary::Unstructured;
use cranelift_codegen::ir::{
    types, ExtFuncData, ExternalName, FuncRef, Function, InstBuilder, MemFlagsData, Signature,
    StackSlot, Type, UserExternalName, UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use target_lexicon::PointerWidth;

use super::{CALLEE_INDEX, FLOAT_TYPES, INT_TYPES};

/// Whether a float's bits are determined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FloatClass {
    /// Its bits are the same under every implementation (integers, and
    /// floats not produced by NaN-producing arithmetic, or any float under
    /// NaN canonicalization).
    Exact,
    /// It may be a NaN whose sign and payload depend on the implementation.
    Inexact,
}

impl FloatClass {
    /// The class of a value computed from operands of `self` and `other`
    /// by an operation that moves bits without arithmetic.
    pub(super) fn and(self, other: FloatClass) -> FloatClass {
        if self == FloatClass::Exact && other == FloatClass::Exact {
            FloatClass::Exact
        } else {
            FloatClass::Inexact
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Var {
    var: Variable,
    ty: Type,
    class: FloatClass,
}

/// The state of one function being generated.
pub(super) struct FnGen<'u, 'd, 'f> {
    u: &'u mut Unstructured<'d>,
    pub(super) b: FunctionBuilder<'f>,
    vars: Vec<Var>,
    pub(super) nan_canonicalization: bool,
    pub(super) callee: Option<FuncRef>,
    /// Stack slots and their sizes in bytes.
    pub(super) slots: Vec<(StackSlot, u32)>,
    /// Instructions still to generate; regions stop at zero.
    pub(super) budget: u32,
}

/// Builds a function called `name` with signature `sig`; it may call a
/// function of `callee_sig` (named `u0:0`).
pub(super) fn build_function(
    u: &mut Unstructured<'_>,
    name: UserFuncName,
    sig: Signature,
    callee_sig: Option<Signature>,
    nan_canonicalization: bool,
) -> Function {
    let mut func = Function::with_name_signature(name, sig.clone());
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let callee = callee_sig.map(|callee_sig| {
        let signature = b.import_signature(callee_sig);
        let user = b
            .func
            .declare_imported_user_function(UserExternalName::new(0, CALLEE_INDEX));
        b.import_function(ExtFuncData {
            name: ExternalName::user(user),
            signature,
            colocated: true,
            patchable: false,
        })
    });
    let budget = u.int_in_range(4..=60).unwrap_or(4);
    let mut g = FnGen {
        u,
        b,
        vars: Vec::new(),
        nan_canonicalization,
        callee,
        slots: Vec::new(),
        budget,
    };
    g.declare_vars(entry);
    g.create_slots();
    super::control::region(&mut g, 0);
    let mut rets: Vec<Value> = sig.returns.iter().map(|p| g.val(p.value_type)).collect();
    // The results also carry a digest of every variable, so that a wrong
    // value anywhere shows: integers are xored with it, and so are the
    // bits of the first float result when there is no integer one.
    let digest = g.digest();
    let all_float = rets.iter().all(|&r| g.b.func.dfg.value_type(r).is_float());
    for (i, r) in rets.iter_mut().enumerate() {
        let ty = g.b.func.dfg.value_type(*r);
        if ty.is_float() {
            if !(all_float && i == 0) {
                continue;
            }
            let laundered = g.launder(*r);
            let int_ty = types::Type::int(ty.bits() as u16).unwrap();
            let bits = g.b.ins().bitcast(int_ty, MemFlagsData::new(), laundered);
            let d = if int_ty == types::I64 {
                digest
            } else {
                g.b.ins().ireduce(int_ty, digest)
            };
            let mixed = g.b.ins().bxor(bits, d);
            *r = g.b.ins().bitcast(ty, MemFlagsData::new(), mixed);
            continue;
        }
        let d = match ty.bits() {
            64 => digest,
            128 => g.b.ins().uextend(ty, digest),
            _ => g.b.ins().ireduce(ty, digest),
        };
        *r = g.b.ins().bxor(*r, d);
    }
    g.b.ins().return_(&rets);
    g.b.seal_all_blocks();
    g.b.finalize(frontend_config());
    func
}

/// `k` (of `bits` bits) sign-extended to an immediate, the canonical form
/// of an `_imm` operand of a narrow type.
pub(super) fn sext_imm(k: u64, bits: u32) -> i64 {
    if bits >= 64 {
        k as i64
    } else {
        ((k << (64 - bits)) as i64) >> (64 - bits)
    }
}

/// The frontend configuration of x86-64 System V.
pub fn frontend_config() -> TargetFrontendConfig {
    TargetFrontendConfig {
        default_call_conv: CallConv::SystemV,
        pointer_width: PointerWidth::U64,
        page_size_align_log2: 12,
    }
}

impl FnGen<'_, '_, '_> {
    /// A number in `lo..=hi` (`lo` once the data runs out).
    pub(super) fn range(&mut self, lo: u32, hi: u32) -> u32 {
        self.u.int_in_range(lo..=hi).unwrap_or(lo)
    }

    /// True with probability `n / d` (false once the data runs out).
    pub(super) fn chance(&mut self, n: u32, d: u32) -> bool {
        self.u.ratio(n, d).unwrap_or(false)
    }

    /// One of `items` (the first once the data runs out).
    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *self.u.choose(items).unwrap_or(&items[0])
    }

    /// Raw bits from the data.
    pub(super) fn bits(&mut self) -> u64 {
        self.u.arbitrary().unwrap_or(0)
    }

    /// An edge value or random bits of `bits` bits (at most 64).
    pub(super) fn edge_bits(&mut self, bits: u32) -> u64 {
        super::inputs::int_bits(self.u, bits)
    }

    /// One of the integer types.
    pub(super) fn int_ty(&mut self) -> Type {
        self.pick(&INT_TYPES)
    }

    /// One of the float types.
    pub(super) fn float_ty(&mut self) -> Type {
        self.pick(&FLOAT_TYPES)
    }

    /// Any scalar type.
    pub(super) fn any_ty(&mut self) -> Type {
        if self.chance(2, 7) {
            self.float_ty()
        } else {
            self.int_ty()
        }
    }

    /// Uses one budget unit; false when the budget is spent.
    pub(super) fn spend(&mut self) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        true
    }

    /// The current value of a random variable of `ty`, with its class.
    pub(super) fn val_class(&mut self, ty: Type) -> (Value, FloatClass) {
        let candidates: Vec<Var> = self.vars.iter().filter(|v| v.ty == ty).copied().collect();
        let var = self.pick(&candidates);
        (self.b.use_var(var.var), var.class)
    }

    /// The current value of a random variable of `ty`.
    pub(super) fn val(&mut self, ty: Type) -> Value {
        self.val_class(ty).0
    }

    /// The current value of a random variable of `ty` whose bits are
    /// determined.
    pub(super) fn exact_val(&mut self, ty: Type) -> Value {
        let candidates: Vec<Var> = self
            .vars
            .iter()
            .filter(|v| v.ty == ty && v.class == FloatClass::Exact)
            .copied()
            .collect();
        let var = self.pick(&candidates);
        self.b.use_var(var.var)
    }

    /// Assigns `v` (of class `class`) to a random variable of its type that
    /// may hold it.
    pub(super) fn set(&mut self, v: Value, class: FloatClass) {
        let ty = self.b.func.dfg.value_type(v);
        let class = if self.nan_canonicalization || !ty.is_float() {
            FloatClass::Exact
        } else {
            class
        };
        let candidates: Vec<Var> = self
            .vars
            .iter()
            .filter(|v| v.ty == ty && (class == FloatClass::Exact || v.class == class))
            .copied()
            .collect();
        let var = self.pick(&candidates);
        self.b.def_var(var.var, v);
    }

    /// An `i64` mixing the current values of all variables (floats as
    /// their bits, inexact ones laundered first): `d = rotl(d, 7) ^ v`
    /// over them.
    fn digest(&mut self) -> Value {
        let vars = self.vars.clone();
        let mut d = self.b.ins().iconst(types::I64, 0);
        for var in vars {
            let mut v = self.b.use_var(var.var);
            if var.class == FloatClass::Inexact {
                v = self.launder(v);
            }
            let parts = match var.ty {
                types::F32 => {
                    let bits = self.b.ins().bitcast(types::I32, MemFlagsData::new(), v);
                    vec![self.b.ins().uextend(types::I64, bits)]
                }
                types::F64 => vec![self.b.ins().bitcast(types::I64, MemFlagsData::new(), v)],
                types::I128 => {
                    let (lo, hi) = self.b.ins().isplit(v);
                    vec![lo, hi]
                }
                types::I64 => vec![v],
                _ => vec![self.b.ins().uextend(types::I64, v)],
            };
            for part in parts {
                let rotated = self.b.ins().rotl_imm_s(d, 7);
                d = self.b.ins().bxor(rotated, part);
            }
        }
        d
    }

    /// `x` (a float) with any NaN replaced by the canonical NaN:
    /// `select(fcmp uno x, x, NaN, x)`, whose bits are determined.
    pub(super) fn launder(&mut self, x: Value) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        let nan = if ty == types::F32 {
            self.b.ins().f32const(f32::NAN)
        } else {
            self.b.ins().f64const(f64::NAN)
        };
        let is_nan = self
            .b
            .ins()
            .fcmp(cranelift_codegen::ir::condcodes::FloatCC::Unordered, x, x);
        self.b.ins().select(is_nan, nan, x)
    }

    /// Declares the variables and gives each a first value: the entry
    /// block's parameters, then constants.
    fn declare_vars(&mut self, entry: cranelift_codegen::ir::Block) {
        for ty in INT_TYPES.iter().chain(FLOAT_TYPES.iter()).copied() {
            let classes: &[FloatClass] = if ty.is_float() && !self.nan_canonicalization {
                &[
                    FloatClass::Exact,
                    FloatClass::Exact,
                    FloatClass::Inexact,
                    FloatClass::Inexact,
                ]
            } else {
                &[FloatClass::Exact, FloatClass::Exact, FloatClass::Exact]
            };
            for &class in classes {
                let var = self.b.declare_var(ty);
                self.vars.push(Var { var, ty, class });
                let init = self.constant(ty);
                self.b.def_var(var, init);
            }
        }
        let params = self.b.block_params(entry).to_vec();
        // Half the other variables start as a conversion of a parameter,
        // so that most of the code depends on the inputs rather than on
        // constants LLVM can fold.
        if !params.is_empty() {
            for idx in 0..self.vars.len() {
                if self.chance(1, 2) {
                    let p = self.pick(&params);
                    let var = self.vars[idx];
                    let v = self.convert_for_init(p, var.ty);
                    self.b.def_var(var.var, v);
                }
            }
        }
        for (i, p) in params.into_iter().enumerate() {
            let ty = self.b.func.dfg.value_type(p);
            // Parameter i goes to variable i mod n of its type, so most
            // parameters stay visible as they are.
            let same: Vec<Var> = self.vars.iter().filter(|v| v.ty == ty).copied().collect();
            let var = same[i % same.len()];
            self.b.def_var(var.var, p);
        }
    }

    /// `p` converted to `to` without arithmetic that could make a NaN:
    /// integer extensions and reductions, exact float-from-integer
    /// conversions and bit casts, and float-to-integer bit casts (of a
    /// parameter, whose bits are the input's).
    fn convert_for_init(&mut self, p: Value, to: Type) -> Value {
        let from = self.b.func.dfg.value_type(p);
        // First an integer of `from`'s width.
        let int = match from {
            types::F32 => self.b.ins().bitcast(types::I32, MemFlagsData::new(), p),
            types::F64 => self.b.ins().bitcast(types::I64, MemFlagsData::new(), p),
            _ => p,
        };
        let int_ty = self.b.func.dfg.value_type(int);
        let target_int = match to {
            types::F32 => types::I32,
            types::F64 => types::I64,
            other => other,
        };
        let resized = if target_int.bits() > int_ty.bits() {
            if self.chance(1, 2) {
                self.b.ins().uextend(target_int, int)
            } else {
                self.b.ins().sextend(target_int, int)
            }
        } else if target_int.bits() < int_ty.bits() {
            self.b.ins().ireduce(target_int, int)
        } else {
            int
        };
        if !to.is_float() {
            return resized;
        }
        if self.chance(1, 2) {
            self.b.ins().bitcast(to, MemFlagsData::new(), resized)
        } else {
            self.b.ins().fcvt_from_sint(to, resized)
        }
    }

    /// A constant of `ty`: edge values most of the time.
    pub(super) fn constant(&mut self, ty: Type) -> Value {
        match ty {
            types::F32 => {
                let bits = super::inputs::f32_bits(self.u);
                self.b.ins().f32const(f32::from_bits(bits))
            }
            types::F64 => {
                let bits = super::inputs::f64_bits(self.u);
                self.b.ins().f64const(f64::from_bits(bits))
            }
            types::I128 => {
                let lo = super::inputs::int_bits(self.u, 64) as i64;
                let hi = super::inputs::int_bits(self.u, 64) as i64;
                let lo = self.b.ins().iconst(types::I64, lo);
                let hi = self.b.ins().iconst(types::I64, hi);
                self.b.ins().iconcat(lo, hi)
            }
            _ => {
                let bits = super::inputs::int_bits(self.u, ty.bits());
                self.iconst(ty, bits)
            }
        }
    }

    /// `iconst` of `ty` (at most 64 bits wide) with `bits` truncated to it.
    pub(super) fn iconst(&mut self, ty: Type, bits: u64) -> Value {
        let masked = if ty.bits() >= 64 {
            bits
        } else {
            bits & ((1u64 << ty.bits()) - 1)
        };
        self.b.ins().iconst(ty, masked as i64)
    }
}

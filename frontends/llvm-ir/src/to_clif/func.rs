//! One LLVM function to one CLIF function.

use std::collections::HashMap;

use cranelift_codegen::ir::{
    self, condcodes::FloatCC, condcodes::IntCC, types, AbiParam, ArgumentExtension,
    ArgumentPurpose, AtomicRmwOp, Block, BlockArg, ConstantData, Endianness, InstBuilder,
    MemFlagsData, StackSlotData, StackSlotKind, TrapCode, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Switch};

use super::intrinsics::{self, IntrinsicCall, IntrinsicHost};
use super::ll::{self, *};
use super::{vararg_thunk_symbol, ClifNames, PrivateData};

pub(super) type R<T> = Result<T, String>;

/// What the module-level pass knows, shared by every function.
pub(super) struct ModuleInfo {
    pub td: LLVMTargetDataRef,
    /// Block-address tables: a constant global whose every use is in one
    /// function, and which holds `blockaddress` constants of it.
    pub tables: HashMap<LLVMValueRef, LLVMValueRef>,
    /// Functions whose block addresses escape (see `escaping_block_addresses`).
    pub escaping: std::collections::HashSet<LLVMValueRef>,
    pub kinds: AttrKinds,
}

pub(super) struct AttrKinds {
    byval: u32,
    sret: u32,
    zeroext: u32,
    signext: u32,
    returns_twice: u32,
    inreg: u32,
    nest: u32,
    align: u32,
}

impl AttrKinds {
    pub(super) fn new() -> Self {
        AttrKinds {
            byval: ll::attr_kind("byval"),
            sret: ll::attr_kind("sret"),
            zeroext: ll::attr_kind("zeroext"),
            signext: ll::attr_kind("signext"),
            returns_twice: ll::attr_kind("returns_twice"),
            inreg: ll::attr_kind("inreg"),
            nest: ll::attr_kind("nest"),
            align: ll::attr_kind("align"),
        }
    }
}

/// The functions whose callers Cranelift cannot compile.
const RETURNS_TWICE: &[&str] = &[
    "setjmp",
    "_setjmp",
    "__setjmp",
    "sigsetjmp",
    "__sigsetjmp",
    "savectx",
    "vfork",
    "getcontext",
];

/// How a parameter or argument is passed.
#[derive(Clone, Copy, Debug)]
enum ParamKind {
    /// As its leaves, with this extension for a scalar.
    Plain(ArgumentExtension),
    /// A pointer to a copy of `size` bytes the caller makes (`byval`).
    ByVal(u32),
    /// The pointer to the result (`sret`).
    Sret,
}

/// A function type with its attributes, as CLIF sees it.
struct SigInfo {
    sig: ir::Signature,
    /// Per LLVM parameter: how many CLIF parameters it takes.
    params: Vec<usize>,
}

/// The state of a variadic definition.
struct VaInfo {
    /// The 176-byte register save area.
    save_area: Value,
    gp_used: u32,
    fp_used: u32,
    /// Bytes of named arguments passed on the stack.
    stack_named: u32,
}

pub(super) struct Translation {
    pub func: ir::Function,
    pub data: Vec<PrivateData>,
    pub osr_safe: bool,
}

struct Tr<'a, 'b> {
    b: FunctionBuilder<'b>,
    names: &'a mut dyn ClifNames,
    info: &'a ModuleInfo,
    f: LLVMValueRef,
    fname: String,
    values: HashMap<LLVMValueRef, Vec<Value>>,
    blocks: HashMap<LLVMBasicBlockRef, Block>,
    /// The LLVM blocks in translation order (reverse post-order).
    order: Vec<LLVMBasicBlockRef>,
    cur: LLVMBasicBlockRef,
    imports: HashMap<(bool, String), Vec<(ir::Signature, ir::FuncRef)>>,
    globals: HashMap<String, ir::GlobalValue>,
    /// Canonical signatures of the functions referred to.
    sigs: HashMap<LLVMValueRef, ir::Signature>,
    va: Option<VaInfo>,
    data: Vec<PrivateData>,
    /// Index + 1 of each block whose address the function takes.
    block_ids: HashMap<LLVMBasicBlockRef, u32>,
    /// The blocks in `block_ids` order.
    addressed: Vec<LLVMBasicBlockRef>,
}

fn err<T>(v: LLVMValueRef) -> R<T> {
    Err(ll::print(v))
}

/// The CLIF type of an LLVM scalar or vector type.
pub(super) fn scalar_type(t: LLVMTypeRef) -> R<Type> {
    Ok(match ll::type_kind(t) {
        LLVMTypeKind::LLVMIntegerTypeKind => match ll::int_width(t) {
            1 | 8 => types::I8,
            16 => types::I16,
            32 => types::I32,
            64 => types::I64,
            128 => types::I128,
            w => return Err(format!("type i{w}")),
        },
        LLVMTypeKind::LLVMFloatTypeKind => types::F32,
        LLVMTypeKind::LLVMDoubleTypeKind => types::F64,
        LLVMTypeKind::LLVMPointerTypeKind => {
            if ll::pointer_space(t) != 0 {
                return Err(format!("address space {}", ll::pointer_space(t)));
            }
            types::I64
        }
        LLVMTypeKind::LLVMVectorTypeKind => {
            let n = ll::vector_size(t);
            let e = ll::element_type(t);
            let lane = match ll::type_kind(e) {
                LLVMTypeKind::LLVMIntegerTypeKind if ll::int_width(e) == 1 => {
                    // A mask: lanes as wide as 128 bits allow.
                    match n {
                        2 => types::I64,
                        4 => types::I32,
                        8 => types::I16,
                        16 => types::I8,
                        _ => return Err(format!("vector type <{n} x i1>")),
                    }
                }
                _ => scalar_type(e)?,
            };
            if lane.is_vector() || lane == types::I128 || !matches!(lane.bits() * n, 64 | 128) {
                return Err(format!("vector type <{n} x {}> (not 64 or 128 bits)", lane));
            }
            lane.by(n).ok_or("vector type")?
        }
        LLVMTypeKind::LLVMX86_FP80TypeKind => return Err("type x86_fp80".into()),
        LLVMTypeKind::LLVMHalfTypeKind => return Err("type half".into()),
        LLVMTypeKind::LLVMFP128TypeKind => return Err("type fp128".into()),
        k => return Err(format!("type {k:?}")),
    })
}

/// The type of values of storage type `ty`: a 64-bit vector is held in
/// the low half of a 128-bit one.
pub(super) fn repr(ty: Type) -> Type {
    if ty.is_vector() && ty.bits() == 64 {
        ty.lane_type().by(128 / ty.lane_bits()).unwrap_or(ty)
    } else {
        ty
    }
}

fn is_half(ty: Type) -> bool {
    ty.is_vector() && ty.bits() == 64
}

/// The type of values of LLVM scalar or vector type `t`.
fn vtype(t: LLVMTypeRef) -> R<Type> {
    scalar_type(t).map(repr)
}

/// The ABI type of a leaf: a 64-bit vector travels in an xmm register.
fn abi_type(ty: Type) -> Type {
    if is_half(ty) {
        types::F64
    } else {
        ty
    }
}

/// A vector wider than 128 bits (and a multiple of it, at most 512): the
/// CLIF type of its 128-bit chunks and their number. Such a vector is
/// held as its chunks, like an aggregate.
fn wide(t: LLVMTypeRef) -> Option<(Type, usize)> {
    if ll::type_kind(t) != LLVMTypeKind::LLVMVectorTypeKind {
        return None;
    }
    let e = ll::element_type(t);
    if is_i1(e) {
        return None;
    }
    let lane = scalar_type(e).ok()?;
    let bits = lane.bits() * ll::vector_size(t);
    if lane == types::I128 || bits <= 128 || bits % 128 != 0 || bits > 512 {
        return None;
    }
    Some((lane.by(128 / lane.bits())?, (bits / 128) as usize))
}

fn is_aggregate(t: LLVMTypeRef) -> bool {
    matches!(
        ll::type_kind(t),
        LLVMTypeKind::LLVMStructTypeKind | LLVMTypeKind::LLVMArrayTypeKind
    )
}

fn is_i1(t: LLVMTypeRef) -> bool {
    ll::type_kind(t) == LLVMTypeKind::LLVMIntegerTypeKind && ll::int_width(t) == 1
}

/// The most leaves an aggregate value may have.
const MAX_LEAVES: usize = 64;

/// The scalar leaves of `t` with their byte offsets.
pub(super) fn leaves(td: LLVMTargetDataRef, t: LLVMTypeRef) -> R<Vec<(Type, u64)>> {
    let mut out = Vec::new();
    leaves_into(td, t, 0, &mut out)?;
    Ok(out)
}

fn leaves_into(
    td: LLVMTargetDataRef,
    t: LLVMTypeRef,
    base: u64,
    out: &mut Vec<(Type, u64)>,
) -> R<()> {
    match ll::type_kind(t) {
        LLVMTypeKind::LLVMStructTypeKind => {
            for i in 0..ll::struct_count(t) {
                let off = ll::offset_of(td, t, i);
                leaves_into(td, ll::struct_elem(t, i), base + off, out)?;
            }
        }
        LLVMTypeKind::LLVMArrayTypeKind => {
            let e = ll::element_type(t);
            let size = ll::abi_size(td, e);
            let n = ll::array_len(t);
            if n > MAX_LEAVES as u64 {
                return Err(format!("aggregate value of {n} elements"));
            }
            for i in 0..n {
                leaves_into(td, e, base + i * size, out)?;
            }
        }
        LLVMTypeKind::LLVMVoidTypeKind => {}
        _ => match wide(t) {
            Some((chunk, n)) => {
                for k in 0..n {
                    out.push((chunk, base + 16 * k as u64));
                }
            }
            None => out.push((scalar_type(t)?, base)),
        },
    }
    if out.len() > MAX_LEAVES {
        return Err("aggregate value of too many elements".into());
    }
    Ok(())
}

/// The number of leaves of each element of aggregate `t`.
fn element_leaf_counts(td: LLVMTargetDataRef, t: LLVMTypeRef) -> R<Vec<usize>> {
    match ll::type_kind(t) {
        LLVMTypeKind::LLVMStructTypeKind => (0..ll::struct_count(t))
            .map(|i| leaves(td, ll::struct_elem(t, i)).map(|l| l.len()))
            .collect(),
        LLVMTypeKind::LLVMArrayTypeKind => {
            let n = leaves(td, ll::element_type(t))?.len();
            Ok(vec![n; ll::array_len(t) as usize])
        }
        _ => Err("extractvalue/insertvalue on a non-aggregate".into()),
    }
}

fn element_type_at(t: LLVMTypeRef, i: u32) -> LLVMTypeRef {
    if ll::type_kind(t) == LLVMTypeKind::LLVMStructTypeKind {
        ll::struct_elem(t, i)
    } else {
        ll::element_type(t)
    }
}

/// The leaf range of the element at `path` of aggregate `t`, and its type.
fn leaf_range(
    td: LLVMTargetDataRef,
    mut t: LLVMTypeRef,
    path: &[u32],
) -> R<(std::ops::Range<usize>, LLVMTypeRef)> {
    let mut start = 0;
    for &i in path {
        let counts = element_leaf_counts(td, t)?;
        start += counts[..i as usize].iter().sum::<usize>();
        t = element_type_at(t, i);
    }
    let n = leaves(td, t)?.len();
    Ok((start..start + n, t))
}

fn int_cc(p: LLVMIntPredicate) -> (IntCC, bool) {
    use LLVMIntPredicate::*;
    match p {
        LLVMIntEQ => (IntCC::Equal, false),
        LLVMIntNE => (IntCC::NotEqual, false),
        LLVMIntUGT => (IntCC::UnsignedGreaterThan, false),
        LLVMIntUGE => (IntCC::UnsignedGreaterThanOrEqual, false),
        LLVMIntULT => (IntCC::UnsignedLessThan, false),
        LLVMIntULE => (IntCC::UnsignedLessThanOrEqual, false),
        LLVMIntSGT => (IntCC::SignedGreaterThan, true),
        LLVMIntSGE => (IntCC::SignedGreaterThanOrEqual, true),
        LLVMIntSLT => (IntCC::SignedLessThan, true),
        LLVMIntSLE => (IntCC::SignedLessThanOrEqual, true),
    }
}

fn float_cc(p: LLVMRealPredicate) -> Result<FloatCC, bool> {
    use LLVMRealPredicate::*;
    Ok(match p {
        LLVMRealPredicateFalse => return Err(false),
        LLVMRealPredicateTrue => return Err(true),
        LLVMRealOEQ => FloatCC::Equal,
        LLVMRealOGT => FloatCC::GreaterThan,
        LLVMRealOGE => FloatCC::GreaterThanOrEqual,
        LLVMRealOLT => FloatCC::LessThan,
        LLVMRealOLE => FloatCC::LessThanOrEqual,
        LLVMRealONE => FloatCC::OrderedNotEqual,
        LLVMRealORD => FloatCC::Ordered,
        LLVMRealUNO => FloatCC::Unordered,
        LLVMRealUEQ => FloatCC::UnorderedOrEqual,
        LLVMRealUGT => FloatCC::UnorderedOrGreaterThan,
        LLVMRealUGE => FloatCC::UnorderedOrGreaterThanOrEqual,
        LLVMRealULT => FloatCC::UnorderedOrLessThan,
        LLVMRealULE => FloatCC::UnorderedOrLessThanOrEqual,
        LLVMRealUNE => FloatCC::NotEqual,
    })
}

fn little() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// The blocks of `f` reachable from its entry, in reverse post-order.
fn reverse_post_order(f: LLVMValueRef) -> Vec<LLVMBasicBlockRef> {
    let entry = ll::first_block(f);
    let mut seen = std::collections::HashSet::new();
    let mut post = Vec::new();
    let mut stack: Vec<(LLVMBasicBlockRef, u32)> = vec![(entry, 0)];
    seen.insert(entry);
    while let Some((bb, next)) = stack.last_mut() {
        let term = ll::terminator(*bb);
        let n = if term.is_null() {
            0
        } else {
            ll::num_successors(term)
        };
        if *next < n {
            let s = ll::successor(term, *next);
            *next += 1;
            if seen.insert(s) {
                stack.push((s, 0));
            }
        } else {
            post.push(*bb);
            stack.pop();
        }
    }
    post.reverse();
    post
}

/// Translates function `f` (a definition).
pub(super) fn translate(
    f: LLVMValueRef,
    names: &mut dyn ClifNames,
    info: &ModuleInfo,
) -> R<Translation> {
    let fty = ll::global_value_type(f);
    let fname = ll::name(f);
    let variadic = ll::is_vararg_type(fty) != 0;
    let sig_info = signature(info, fty, &|i, k| ll::fn_attr(f, i, k), None)?;
    let mut sig = sig_info.sig.clone();
    if variadic {
        sig.params.clear();
        for _ in 0..6 {
            sig.params.push(AbiParam::new(types::I64));
        }
        for _ in 0..8 {
            sig.params.push(AbiParam::new(types::F64X2));
        }
        for p in &sig_info.sig.params {
            if p.purpose != ArgumentPurpose::Normal {
                return Err("variadic function with byval or sret parameters".into());
            }
        }
    }
    let mut func = ir::Function::with_name_signature(ir::UserFuncName::default(), sig);
    let mut fctx = FunctionBuilderContext::new();
    let b = FunctionBuilder::new(&mut func, &mut fctx);
    let mut tr = Tr {
        b,
        names,
        info,
        f,
        fname,
        values: HashMap::new(),
        blocks: HashMap::new(),
        order: reverse_post_order(f),
        cur: std::ptr::null_mut(),
        imports: HashMap::new(),
        globals: HashMap::new(),
        sigs: HashMap::new(),
        va: None,
        data: Vec::new(),
        block_ids: HashMap::new(),
        addressed: Vec::new(),
    };
    tr.run(&sig_info, variadic)?;
    let osr_safe = tr.block_ids.is_empty();
    let data = std::mem::take(&mut tr.data);
    tr.b.seal_all_blocks();
    tr.b.finalize(super::frontend_config());
    Ok(Translation {
        func,
        data,
        osr_safe,
    })
}

/// The CLIF signature of function type `fty` whose attributes `attr`
/// gives (index 0 the return value, `i + 1` parameter `i`); `extra` are
/// the types of the variadic arguments of a call.
fn signature(
    info: &ModuleInfo,
    fty: LLVMTypeRef,
    attr: &dyn Fn(u32, u32) -> Option<ll::LLVMAttributeRef>,
    extra: Option<&[LLVMTypeRef]>,
) -> R<SigInfo> {
    let k = &info.kinds;
    let mut sig = ir::Signature::new(CallConv::SystemV);
    let ret = ll::return_type(fty);
    let ret_leaves = leaves(info.td, ret)?;
    let (mut ints, mut floats) = (0, 0);
    for &(t, _) in &ret_leaves {
        if t.is_float() || t.is_vector() {
            floats += 1;
        } else if t == types::I128 {
            ints += 2;
        } else {
            ints += 1;
        }
    }
    if ints > 2 || floats > 2 {
        return Err("a return value passed in memory".into());
    }
    let ext = |i: u32| {
        if attr(i, k.zeroext).is_some() {
            ArgumentExtension::Uext
        } else if attr(i, k.signext).is_some() {
            ArgumentExtension::Sext
        } else {
            ArgumentExtension::None
        }
    };
    let ret_ext = ext(0);
    for &(t, _) in &ret_leaves {
        let mut p = AbiParam::new(abi_type(t));
        if !is_aggregate(ret) && t.is_int() {
            p.extension = ret_ext;
        }
        sig.returns.push(p);
    }
    let mut params = Vec::new();
    let mut all: Vec<LLVMTypeRef> = ll::param_types(fty);
    let named = all.len();
    if let Some(extra) = extra {
        all.extend_from_slice(extra);
    }
    for (i, &t) in all.iter().enumerate() {
        let idx = i as u32 + 1;
        let with_attrs = i < named || extra.is_some();
        if with_attrs && (attr(idx, k.inreg).is_some() || attr(idx, k.nest).is_some()) {
            return Err("an inreg or nest parameter".into());
        }
        let kind = if let (true, Some(a)) = (with_attrs, attr(idx, k.byval)) {
            let ty = ll::attr_type(a);
            let align = attr(idx, k.align).map(ll::attr_value).unwrap_or(0);
            if align > 8 || ll::abi_align(info.td, ty) > 8 {
                return Err("a byval parameter aligned to more than 8 bytes".into());
            }
            ParamKind::ByVal(ll::abi_size(info.td, ty) as u32)
        } else if with_attrs && attr(idx, k.sret).is_some() {
            ParamKind::Sret
        } else {
            ParamKind::Plain(if with_attrs {
                ext(idx)
            } else {
                ArgumentExtension::None
            })
        };
        match kind {
            ParamKind::ByVal(size) => {
                sig.params.push(AbiParam::special(
                    types::I64,
                    ArgumentPurpose::StructArgument(size),
                ));
                params.push(1);
            }
            ParamKind::Sret => {
                sig.params
                    .push(AbiParam::special(types::I64, ArgumentPurpose::StructReturn));
                params.push(1);
            }
            ParamKind::Plain(e) => {
                let l = leaves(info.td, t)?;
                for &(lt, _) in &l {
                    let mut p = AbiParam::new(abi_type(lt));
                    if !is_aggregate(t) && lt.is_int() {
                        p.extension = e;
                    }
                    sig.params.push(p);
                }
                params.push(l.len());
            }
        }
    }
    Ok(SigInfo { sig, params })
}

impl<'a, 'b> Tr<'a, 'b> {
    fn run(&mut self, sig: &SigInfo, variadic: bool) -> R<()> {
        let order = self.order.clone();
        // Blocks, with block parameters for phis.
        for &bb in &order {
            let block = self.b.create_block();
            self.blocks.insert(bb, block);
            for i in ll::instructions(bb) {
                if ll::opcode(i) != LLVMOpcode::LLVMPHI {
                    break;
                }
                let mut vals = Vec::new();
                for (t, _) in leaves(self.info.td, ll::type_of(i))? {
                    vals.push(self.b.append_block_param(block, repr(t)));
                }
                self.values.insert(i, vals);
            }
        }
        self.collect_block_addresses()?;
        let entry = self.blocks[&order[0]];
        self.b.switch_to_block(entry);
        self.cur = order[0];
        if variadic {
            self.variadic_entry(entry)?;
        } else {
            self.b.append_block_params_for_function_params(entry);
            let params = self.b.block_params(entry).to_vec();
            let mut at = 0;
            for (i, &n) in sig.params.iter().enumerate() {
                let p = ll::param(self.f, i as u32);
                let mut vals = params[at..at + n].to_vec();
                if n > 0 && ll::type_kind(ll::type_of(p)) == LLVMTypeKind::LLVMVectorTypeKind {
                    vals = self.abi_in(vals, ll::type_of(p))?;
                }
                if is_i1(ll::type_of(p)) {
                    vals[0] = self.b.ins().band_imm_u(vals[0], 1);
                }
                self.values.insert(p, vals);
                at += n;
            }
        }
        for &bb in &order {
            if bb != order[0] {
                self.b.switch_to_block(self.blocks[&bb]);
            }
            self.cur = bb;
            for i in ll::instructions(bb) {
                self.inst(i)?;
            }
        }
        Ok(())
    }

    // ---- operands and constants ----

    fn operand(&mut self, v: LLVMValueRef) -> R<Vec<Value>> {
        if let Some(vals) = self.values.get(&v) {
            return Ok(vals.clone());
        }
        if !ll::is_a_constant(v).is_null() {
            return self.constant(v);
        }
        Err(format!("operand {}", ll::print(v)))
    }

    fn scalar(&mut self, v: LLVMValueRef) -> R<Value> {
        let vals = self.operand(v)?;
        match vals.as_slice() {
            [x] => Ok(*x),
            _ => Err(format!("aggregate operand {}", ll::print(v))),
        }
    }

    fn iconst(&mut self, t: Type, v: i64) -> Value {
        if t == types::I128 {
            let lo = self.b.ins().iconst(types::I64, v);
            return self.b.ins().sextend(types::I128, lo);
        }
        let masked = if t.bits() >= 64 {
            v
        } else {
            v & ((1i64 << t.bits()) - 1)
        };
        self.b.ins().iconst(t, masked)
    }

    fn zero(&mut self, t: Type) -> Value {
        let t = repr(t);
        if t.is_vector() {
            let c = self
                .b
                .func
                .dfg
                .constants
                .insert(ConstantData::from(vec![0u8; 16]));
            self.b.ins().vconst(t, c)
        } else if t == types::F32 {
            self.b.ins().f32const(0.0)
        } else if t == types::F64 {
            self.b.ins().f64const(0.0)
        } else {
            self.iconst(t, 0)
        }
    }

    fn zeros(&mut self, t: LLVMTypeRef) -> R<Vec<Value>> {
        let l = leaves(self.info.td, t)?;
        Ok(l.into_iter().map(|(t, _)| self.zero(t)).collect())
    }

    /// The little-endian bytes of scalar constant `c` of lane type `t`, if
    /// it is a plain number.
    fn constant_bytes(&self, c: LLVMValueRef, t: Type) -> Option<Vec<u8>> {
        let n = t.bytes() as usize;
        match ll::value_kind(c) {
            LLVMValueKind::LLVMConstantIntValueKind if n <= 8 => {
                Some(ll::const_zext(c).to_le_bytes()[..n].to_vec())
            }
            LLVMValueKind::LLVMConstantFPValueKind => Some(if t == types::F32 {
                (ll::const_real(c) as f32).to_le_bytes().to_vec()
            } else {
                ll::const_real(c).to_le_bytes().to_vec()
            }),
            LLVMValueKind::LLVMUndefValueValueKind
            | LLVMValueKind::LLVMPoisonValueKind
            | LLVMValueKind::LLVMConstantAggregateZeroValueKind
            | LLVMValueKind::LLVMConstantPointerNullValueKind => Some(vec![0; n]),
            _ => None,
        }
    }

    fn constant(&mut self, c: LLVMValueRef) -> R<Vec<Value>> {
        let t = ll::type_of(c);
        use LLVMValueKind::*;
        match ll::value_kind(c) {
            LLVMConstantIntValueKind => {
                let w = ll::int_width(t);
                if w <= 64 {
                    let ty = scalar_type(t)?;
                    let v = ll::const_zext(c) as i64;
                    Ok(vec![self.iconst(ty, v)])
                } else if w == 128 {
                    let text = ll::print(c);
                    let digits = text.rsplit(' ').next().unwrap_or("");
                    let n: i128 = if digits == "true" {
                        1
                    } else {
                        digits.parse().map_err(|_| format!("constant {text}"))?
                    };
                    let lo = self.b.ins().iconst(types::I64, n as i64);
                    let hi = self.b.ins().iconst(types::I64, (n >> 64) as i64);
                    Ok(vec![self.b.ins().iconcat(lo, hi)])
                } else {
                    Err(format!("type i{w}"))
                }
            }
            LLVMConstantFPValueKind => {
                let x = ll::const_real(c);
                Ok(vec![match scalar_type(t)? {
                    types::F32 => self.b.ins().f32const(x as f32),
                    _ => self.b.ins().f64const(x),
                }])
            }
            LLVMConstantPointerNullValueKind => Ok(vec![self.iconst(types::I64, 0)]),
            LLVMUndefValueValueKind | LLVMPoisonValueKind | LLVMConstantAggregateZeroValueKind => {
                self.zeros(t)
            }
            LLVMConstantStructValueKind
            | LLVMConstantArrayValueKind
            | LLVMConstantDataArrayValueKind
            | LLVMConstantVectorValueKind
            | LLVMConstantDataVectorValueKind => {
                if let Some((chunk, n)) = wide(t) {
                    return self.wide_constant(c, chunk, n);
                }
                if ll::type_kind(t) == LLVMTypeKind::LLVMVectorTypeKind {
                    return self.vector_constant(c, t).map(|v| vec![v]);
                }
                let n = match ll::type_kind(t) {
                    LLVMTypeKind::LLVMStructTypeKind => ll::struct_count(t) as u64,
                    _ => ll::array_len(t),
                };
                if n > MAX_LEAVES as u64 {
                    return Err(format!("aggregate constant of {n} elements"));
                }
                let mut out = Vec::new();
                for i in 0..n as u32 {
                    let e = ll::aggregate_element(c, i);
                    if e.is_null() {
                        return err(c);
                    }
                    out.extend(self.operand(e)?);
                }
                Ok(out)
            }
            LLVMFunctionValueKind => {
                let fref = self.function_ref(c, false);
                Ok(vec![self.b.ins().func_addr(types::I64, fref)])
            }
            LLVMGlobalVariableValueKind | LLVMGlobalAliasValueKind | LLVMGlobalIFuncValueKind => {
                if ll::value_kind(c) == LLVMGlobalVariableValueKind && ll::is_thread_local(c) != 0 {
                    return Err(format!("thread-local global @{}", ll::name(c)));
                }
                if let Some(&f) = self.info.tables.get(&c) {
                    if f == self.f {
                        return self.table_address(c).map(|v| vec![v]);
                    }
                }
                let name = ll::name(c);
                let gv = self.global(&name);
                Ok(vec![self.b.ins().symbol_value(types::I64, gv)])
            }
            LLVMBlockAddressValueKind => {
                let bb = ll::blockaddress_block(c);
                match self.block_ids.get(&bb) {
                    Some(&id) if ll::blockaddress_function(c) == self.f => {
                        Ok(vec![self.iconst(types::I64, id as i64)])
                    }
                    _ => Err(format!("blockaddress {}", ll::print(c))),
                }
            }
            LLVMConstantExprValueKind => {
                let op = ll::const_opcode(c);
                self.compute(op, c)
            }
            _ => Err(format!("constant {}", ll::print(c))),
        }
    }

    fn wide_constant(&mut self, c: LLVMValueRef, chunk: Type, n: usize) -> R<Vec<Value>> {
        let per = chunk.lane_count();
        let mut out = Vec::new();
        for k in 0..n as u32 {
            let mut v = self.zero(chunk);
            for l in 0..per {
                let e = ll::aggregate_element(c, k * per + l);
                if e.is_null() {
                    return err(c);
                }
                let x = self.scalar(e)?;
                v = self.b.ins().insertlane(v, x, l as u8);
            }
            out.push(v);
        }
        Ok(out)
    }

    fn vector_constant(&mut self, c: LLVMValueRef, t: LLVMTypeRef) -> R<Value> {
        let ty = vtype(t)?;
        let lane = ty.lane_type();
        let n = ll::vector_size(t);
        let mut bytes = Vec::new();
        let mut general = false;
        for i in 0..n {
            let e = ll::aggregate_element(c, i);
            if e.is_null() {
                return err(c);
            }
            let mask_lane = is_i1(ll::type_of(e));
            match self.constant_bytes(e, lane) {
                Some(b) if mask_lane => {
                    let on = b.first() == Some(&1);
                    bytes.extend(vec![if on { 0xff } else { 0 }; lane.bytes() as usize]);
                }
                Some(b) => bytes.extend(b),
                None => {
                    general = true;
                    break;
                }
            }
        }
        if !general {
            bytes.resize(16, 0);
            let k = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
            return Ok(self.b.ins().vconst(ty, k));
        }
        let mut v = self.zero(ty);
        for i in 0..n {
            let e = ll::aggregate_element(c, i);
            let x = self.scalar(e)?;
            v = self.b.ins().insertlane(v, x, i as u8);
        }
        Ok(v)
    }

    /// The signature every reference to function `f` declares it with:
    /// its own type and attributes (none when not expressible).
    fn canonical_sig(&mut self, f: LLVMValueRef) -> ir::Signature {
        if let Some(sig) = self.sigs.get(&f) {
            return sig.clone();
        }
        let sig = signature(
            self.info,
            ll::global_value_type(f),
            &|i, k| ll::fn_attr(f, i, k),
            None,
        )
        .map(|s| s.sig)
        .unwrap_or_else(|_| ir::Signature::new(CallConv::SystemV));
        self.sigs.insert(f, sig.clone());
        sig
    }

    /// A reference to function `f` (its vararg thunk when `thunk`) with
    /// its canonical signature.
    fn function_ref(&mut self, f: LLVMValueRef, thunk: bool) -> ir::FuncRef {
        let sig = self.canonical_sig(f);
        let name = ll::name(f);
        if thunk {
            self.import(false, &vararg_thunk_symbol(&name), sig)
        } else {
            let defined = ll::is_declaration(f) == 0
                && ll::linkage(f) != LLVMLinkage::LLVMAvailableExternallyLinkage;
            self.import(defined, &name, sig)
        }
    }

    fn import(&mut self, defined: bool, name: &str, sig: ir::Signature) -> ir::FuncRef {
        let key = (defined, name.to_owned());
        if let Some(list) = self.imports.get(&key) {
            if let Some((_, f)) = list.iter().find(|(s, _)| *s == sig) {
                return *f;
            }
        }
        let ext = if defined {
            self.names.function(name)
        } else {
            self.names.symbol(name)
        };
        let fref = import_function(&mut self.b, ext, sig.clone());
        self.imports.entry(key).or_default().push((sig, fref));
        fref
    }

    fn global(&mut self, name: &str) -> ir::GlobalValue {
        if let Some(&g) = self.globals.get(name) {
            return g;
        }
        let ext = self.names.symbol(name);
        let r = self.b.func.declare_imported_user_function(ext);
        let g = self
            .b
            .func
            .create_global_value(ir::GlobalValueData::Symbol {
                name: ir::ExternalName::User(r),
                offset: ir::immediates::Imm64::new(0),
                colocated: false,
                tls: false,
            });
        self.globals.insert(name.to_owned(), g);
        g
    }

    // ---- instructions ----

    fn def(&mut self, i: LLVMValueRef, vals: Vec<Value>) {
        self.values.insert(i, vals);
    }

    fn inst(&mut self, i: LLVMValueRef) -> R<()> {
        use LLVMOpcode::*;
        let op = ll::opcode(i);
        match op {
            LLVMPHI => Ok(()),
            LLVMRet => {
                let vals = if ll::num_operands(i) == 0 {
                    Vec::new()
                } else {
                    let x = ll::operand(i, 0);
                    let vals = self.operand(x)?;
                    self.abi_out(vals, ll::type_of(x))?
                };
                self.b.ins().return_(&vals);
                Ok(())
            }
            LLVMBr => {
                if ll::is_conditional(i) != 0 {
                    let c = self.scalar(ll::condition(i))?;
                    let (t, f) = (ll::successor(i, 0), ll::successor(i, 1));
                    let targs = self.edge_args(t)?;
                    let fargs = self.edge_args(f)?;
                    let (tb, fb) = (self.blocks[&t], self.blocks[&f]);
                    self.b.ins().brif(c, tb, &targs, fb, &fargs);
                } else {
                    let t = ll::successor(i, 0);
                    let args = self.edge_args(t)?;
                    let tb = self.blocks[&t];
                    self.b.ins().jump(tb, &args);
                }
                Ok(())
            }
            LLVMSwitch => self.switch(i),
            LLVMIndirectBr => self.indirectbr(i),
            LLVMUnreachable => {
                self.b.ins().trap(TrapCode::unwrap_user(1));
                Ok(())
            }
            LLVMAlloca => {
                let n = ll::operand(i, 0);
                if ll::is_a_constant_int(n).is_null() || ll::int_width(ll::type_of(n)) > 64 {
                    return Err(format!("dynamic alloca: {}", ll::print(i)));
                }
                let size = ll::abi_size(self.info.td, ll::allocated_type(i))
                    .checked_mul(ll::const_zext(n))
                    .filter(|&s| s < u32::MAX as u64)
                    .ok_or_else(|| format!("alloca too large: {}", ll::print(i)))?;
                let align = ll::alignment(i).max(1);
                let shift = align.trailing_zeros() as u8;
                let slot = self.b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    size.max(1) as u32,
                    shift,
                ));
                let v = self.b.ins().stack_addr(types::I64, slot, 0);
                self.def(i, vec![v]);
                Ok(())
            }
            LLVMLoad => self.load(i),
            LLVMStore => self.store(i),
            LLVMCall => self.call(i),
            LLVMFence => {
                self.b.ins().fence();
                Ok(())
            }
            LLVMAtomicRMW => self.atomic_rmw(i),
            LLVMAtomicCmpXchg => self.cmpxchg(i),
            LLVMExtractValue => {
                let agg = ll::operand(i, 0);
                let vals = self.operand(agg)?;
                let (range, _) = leaf_range(self.info.td, ll::type_of(agg), &ll::indices(i))?;
                self.def(i, vals[range].to_vec());
                Ok(())
            }
            LLVMInsertValue => {
                let agg = ll::operand(i, 0);
                let mut vals = self.operand(agg)?;
                let x = self.operand(ll::operand(i, 1))?;
                let (range, _) = leaf_range(self.info.td, ll::type_of(agg), &ll::indices(i))?;
                if range.len() != x.len() {
                    return err(i);
                }
                vals.splice(range, x);
                self.def(i, vals);
                Ok(())
            }
            LLVMInvoke | LLVMLandingPad | LLVMResume | LLVMCallBr | LLVMCleanupRet
            | LLVMCatchRet | LLVMCatchPad | LLVMCleanupPad | LLVMCatchSwitch => err(i),
            LLVMVAArg => self.va_arg(i),
            _ => {
                let vals = self.compute(op, i)?;
                self.def(i, vals);
                Ok(())
            }
        }
    }

    /// A 64-bit vector loaded or received as an `f64`, as its value type.
    fn widen(&mut self, x: Value, storage: Type) -> Value {
        let v = self.b.ins().scalar_to_vector(types::F64X2, x);
        self.cast_bits(v, repr(storage))
    }

    /// The low 64 bits of a vector value, as an `f64`.
    fn narrow(&mut self, v: Value) -> Value {
        let v = self.cast_bits(v, types::F64X2);
        self.b.ins().extractlane(v, 0)
    }

    /// Values of LLVM type `t` as the ABI passes them.
    fn abi_out(&mut self, vals: Vec<Value>, t: LLVMTypeRef) -> R<Vec<Value>> {
        let l = leaves(self.info.td, t)?;
        Ok(vals
            .into_iter()
            .zip(l)
            .map(|(v, (lt, _))| if is_half(lt) { self.narrow(v) } else { v })
            .collect())
    }

    /// Values of LLVM type `t` as the ABI passed them, as values.
    fn abi_in(&mut self, vals: Vec<Value>, t: LLVMTypeRef) -> R<Vec<Value>> {
        let l = leaves(self.info.td, t)?;
        Ok(vals
            .into_iter()
            .zip(l)
            .map(|(v, (lt, _))| if is_half(lt) { self.widen(v, lt) } else { v })
            .collect())
    }

    /// The arguments of the edge from the current block to `succ`.
    fn edge_args(&mut self, succ: LLVMBasicBlockRef) -> R<Vec<BlockArg>> {
        let mut out = Vec::new();
        for phi in ll::instructions(succ) {
            if ll::opcode(phi) != LLVMOpcode::LLVMPHI {
                break;
            }
            let mut found = None;
            for k in 0..ll::count_incoming(phi) {
                if ll::incoming_block(phi, k) == self.cur {
                    found = Some(ll::incoming_value(phi, k));
                    break;
                }
            }
            let v = found
                .ok_or_else(|| format!("phi without an incoming value: {}", ll::print(phi)))?;
            out.extend(self.operand(v)?.into_iter().map(BlockArg::from));
        }
        Ok(out)
    }

    /// A block that enters `succ` from the current block: `succ` itself, or
    /// for phis an edge block (filled by `fill_edges` once the current
    /// block is terminated).
    fn edge_block(
        &mut self,
        succ: LLVMBasicBlockRef,
        edges: &mut Vec<(Block, Block, Vec<BlockArg>)>,
    ) -> R<Block> {
        let target = self.blocks[&succ];
        if let Some((e, _, _)) = edges.iter().find(|(_, t, _)| *t == target) {
            return Ok(*e);
        }
        let args = self.edge_args(succ)?;
        if args.is_empty() {
            return Ok(target);
        }
        let e = self.b.create_block();
        edges.push((e, target, args));
        Ok(e)
    }

    fn fill_edges(&mut self, edges: Vec<(Block, Block, Vec<BlockArg>)>) {
        for (e, target, args) in edges {
            self.b.switch_to_block(e);
            self.b.ins().jump(target, &args);
        }
    }

    fn switch(&mut self, i: LLVMValueRef) -> R<()> {
        let cond = ll::operand(i, 0);
        let v = self.scalar(cond)?;
        let w = ll::int_width(ll::type_of(cond));
        if w > 64 {
            return Err(format!("switch on i{w}"));
        }
        let mut edges = Vec::new();
        let default = self.edge_block(ll::successor(i, 0), &mut edges)?;
        let mut sw = Switch::new();
        for k in 1..ll::num_successors(i) {
            let case = ll::operand(i, 2 * k);
            let target = self.edge_block(ll::successor(i, k), &mut edges)?;
            sw.set_entry(ll::const_zext(case) as u128, target);
        }
        sw.emit(&mut self.b, v, default);
        self.fill_edges(edges);
        Ok(())
    }

    fn load(&mut self, i: LLVMValueRef) -> R<()> {
        let t = ll::type_of(i);
        let p = self.scalar(ll::operand(i, 0))?;
        let flags = MemFlagsData::new();
        if ll::ordering(i) != LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic {
            let ty = scalar_type(t)?;
            let it = atomic_int(ty).ok_or_else(|| ll::print(i))?;
            let mut v = self.b.ins().atomic_load(it, flags, p);
            if it != ty {
                v = self.b.ins().bitcast(ty, MemFlagsData::new(), v);
            }
            self.def(i, vec![v]);
            return Ok(());
        }
        let mut vals = Vec::new();
        let align = ll::alignment(i);
        let plain = ll::is_volatile(i) == 0;
        for (lt, off) in leaves(self.info.td, t)? {
            let flags = access_flags(plain, align, lt, off);
            if is_half(lt) {
                let x = self.b.ins().load(types::F64, flags, p, off as i32);
                vals.push(self.widen(x, lt));
            } else {
                vals.push(self.b.ins().load(lt, flags, p, off as i32));
            }
        }
        if is_i1(t) {
            vals[0] = self.b.ins().band_imm_u(vals[0], 1);
        }
        self.def(i, vals);
        Ok(())
    }

    fn store(&mut self, i: LLVMValueRef) -> R<()> {
        let x = ll::operand(i, 0);
        let t = ll::type_of(x);
        let vals = self.operand(x)?;
        let p = self.scalar(ll::operand(i, 1))?;
        let flags = MemFlagsData::new();
        if ll::ordering(i) != LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic {
            let ty = scalar_type(t)?;
            let it = atomic_int(ty).ok_or_else(|| ll::print(i))?;
            let mut v = vals[0];
            if it != ty {
                v = self.b.ins().bitcast(it, MemFlagsData::new(), v);
            }
            self.b.ins().atomic_store(flags, v, p);
            return Ok(());
        }
        let align = ll::alignment(i);
        let plain = ll::is_volatile(i) == 0;
        for ((lt, off), v) in leaves(self.info.td, t)?.into_iter().zip(vals) {
            let flags = access_flags(plain, align, lt, off);
            let v = if is_half(lt) { self.narrow(v) } else { v };
            self.b.ins().store(flags, v, p, off as i32);
        }
        Ok(())
    }

    fn atomic_rmw(&mut self, i: LLVMValueRef) -> R<()> {
        use LLVMAtomicRMWBinOp::*;
        let p = self.scalar(ll::operand(i, 0))?;
        let x = self.scalar(ll::operand(i, 1))?;
        let ty = scalar_type(ll::type_of(i))?;
        if !ty.is_int() || ty == types::I128 {
            return err(i);
        }
        let op = match ll::rmw_op(i) {
            LLVMAtomicRMWBinOpXchg => AtomicRmwOp::Xchg,
            LLVMAtomicRMWBinOpAdd => AtomicRmwOp::Add,
            LLVMAtomicRMWBinOpSub => AtomicRmwOp::Sub,
            LLVMAtomicRMWBinOpAnd => AtomicRmwOp::And,
            LLVMAtomicRMWBinOpNand => AtomicRmwOp::Nand,
            LLVMAtomicRMWBinOpOr => AtomicRmwOp::Or,
            LLVMAtomicRMWBinOpXor => AtomicRmwOp::Xor,
            LLVMAtomicRMWBinOpMax => AtomicRmwOp::Smax,
            LLVMAtomicRMWBinOpMin => AtomicRmwOp::Smin,
            LLVMAtomicRMWBinOpUMax => AtomicRmwOp::Umax,
            LLVMAtomicRMWBinOpUMin => AtomicRmwOp::Umin,
            _ => return err(i),
        };
        let v = self.b.ins().atomic_rmw(ty, MemFlagsData::new(), op, p, x);
        self.def(i, vec![v]);
        Ok(())
    }

    fn cmpxchg(&mut self, i: LLVMValueRef) -> R<()> {
        let p = self.scalar(ll::operand(i, 0))?;
        let e = self.scalar(ll::operand(i, 1))?;
        let x = self.scalar(ll::operand(i, 2))?;
        let ty = self.b.func.dfg.value_type(e);
        if !ty.is_int() || ty == types::I128 {
            return err(i);
        }
        let old = self.b.ins().atomic_cas(MemFlagsData::new(), p, e, x);
        let ok = self.b.ins().icmp(IntCC::Equal, old, e);
        self.def(i, vec![old, ok]);
        Ok(())
    }

    /// Instructions and constant expressions that compute a value from
    /// their operands.
    fn compute(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Vec<Value>> {
        use LLVMOpcode::*;
        let t = ll::type_of(i);
        let n_ops = ll::num_operands(i).max(0) as u32;
        if wide(t).is_some() || (0..n_ops).any(|k| wide(ll::type_of(ll::operand(i, k))).is_some()) {
            return self.wide_op(op, i);
        }
        let v = match op {
            LLVMAdd | LLVMSub | LLVMMul | LLVMUDiv | LLVMSDiv | LLVMURem | LLVMSRem | LLVMShl
            | LLVMLShr | LLVMAShr | LLVMAnd | LLVMOr | LLVMXor => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = ll::operand(i, 1);
                let ty = vtype(t)?;
                if ty.is_vector() {
                    return self.vector_int_op(op, i, a, b, ty).map(|v| vec![v]);
                }
                let b = self.scalar(b)?;
                let ins = self.b.ins();
                let mut r = match op {
                    LLVMAdd => ins.iadd(a, b),
                    LLVMSub => ins.isub(a, b),
                    LLVMMul => ins.imul(a, b),
                    LLVMUDiv => ins.udiv(a, b),
                    LLVMSDiv => ins.sdiv(a, b),
                    LLVMURem => ins.urem(a, b),
                    LLVMSRem => ins.srem(a, b),
                    LLVMShl => ins.ishl(a, b),
                    LLVMLShr => ins.ushr(a, b),
                    LLVMAShr => ins.sshr(a, b),
                    LLVMAnd => ins.band(a, b),
                    LLVMOr => ins.bor(a, b),
                    _ => ins.bxor(a, b),
                };
                if ty == types::I128 && matches!(op, LLVMUDiv | LLVMSDiv | LLVMURem | LLVMSRem) {
                    return Err(format!("i128 division: {}", ll::print(i)));
                }
                if is_i1(t) && matches!(op, LLVMAdd | LLVMSub | LLVMMul | LLVMShl) {
                    r = self.b.ins().band_imm_u(r, 1);
                }
                r
            }
            LLVMFAdd | LLVMFSub | LLVMFMul | LLVMFDiv => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = self.scalar(ll::operand(i, 1))?;
                let ins = self.b.ins();
                match op {
                    LLVMFAdd => ins.fadd(a, b),
                    LLVMFSub => ins.fsub(a, b),
                    LLVMFMul => ins.fmul(a, b),
                    _ => ins.fdiv(a, b),
                }
            }
            LLVMFRem => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = self.scalar(ll::operand(i, 1))?;
                let ty = scalar_type(t)?;
                let name = match ty {
                    types::F32 => "fmodf",
                    types::F64 => "fmod",
                    _ => return err(i),
                };
                let mut sig = ir::Signature::new(CallConv::SystemV);
                sig.params = vec![AbiParam::new(ty); 2];
                sig.returns = vec![AbiParam::new(ty)];
                let f = self.import(false, name, sig);
                let call = self.b.ins().call(f, &[a, b]);
                self.b.inst_results(call)[0]
            }
            LLVMFNeg => {
                let a = self.scalar(ll::operand(i, 0))?;
                self.b.ins().fneg(a)
            }
            LLVMICmp => {
                let x = ll::operand(i, 0);
                let mut a = self.scalar(x)?;
                let mut b = self.scalar(ll::operand(i, 1))?;
                let (cc, signed) = int_cc(ll::icmp_pred(i));
                let xt = ll::type_of(x);
                if ll::type_kind(xt) == LLVMTypeKind::LLVMVectorTypeKind {
                    let lt = vtype(t)?;
                    let r = self.b.ins().icmp(cc, a, b);
                    if self.b.func.dfg.value_type(r) != lt {
                        return err(i);
                    }
                    r
                } else {
                    if signed && is_i1(xt) {
                        a = self.b.ins().ineg(a);
                        b = self.b.ins().ineg(b);
                    }
                    self.b.ins().icmp(cc, a, b)
                }
            }
            LLVMFCmp => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = self.scalar(ll::operand(i, 1))?;
                let ty = vtype(t)?;
                match float_cc(ll::fcmp_pred(i)) {
                    Ok(cc) => {
                        let r = self.b.ins().fcmp(cc, a, b);
                        if self.b.func.dfg.value_type(r) != ty {
                            return err(i);
                        }
                        r
                    }
                    Err(truth) => {
                        if ty.is_vector() {
                            let k = self.b.func.dfg.constants.insert(ConstantData::from(vec![
                                if truth {
                                    0xff
                                } else {
                                    0
                                };
                                16
                            ]));
                            self.b.ins().vconst(ty, k)
                        } else {
                            self.iconst(types::I8, truth as i64)
                        }
                    }
                }
            }
            LLVMSelect => {
                let c = ll::operand(i, 0);
                let cv = self.scalar(c)?;
                let a = self.operand(ll::operand(i, 1))?;
                let b = self.operand(ll::operand(i, 2))?;
                if ll::type_kind(ll::type_of(c)) == LLVMTypeKind::LLVMVectorTypeKind {
                    let ty = self.b.func.dfg.value_type(a[0]);
                    let mask = self.cast_bits(cv, ty);
                    self.b.ins().bitselect(mask, a[0], b[0])
                } else {
                    let out = a
                        .iter()
                        .zip(&b)
                        .map(|(&x, &y)| self.b.ins().select(cv, x, y))
                        .collect();
                    return Ok(out);
                }
            }
            LLVMFreeze => return self.operand(ll::operand(i, 0)),
            LLVMTrunc | LLVMZExt | LLVMSExt | LLVMFPToUI | LLVMFPToSI | LLVMUIToFP | LLVMSIToFP
            | LLVMFPTrunc | LLVMFPExt | LLVMPtrToInt | LLVMIntToPtr | LLVMBitCast
            | LLVMAddrSpaceCast => self.cast(op, i)?,
            LLVMGetElementPtr => self.gep(i)?,
            LLVMExtractElement => {
                let v = self.scalar(ll::operand(i, 0))?;
                let idx = ll::operand(i, 1);
                if ll::is_a_constant_int(idx).is_null() {
                    return Err(format!("variable lane index: {}", ll::print(i)));
                }
                let k = ll::const_zext(idx);
                let ty = self.b.func.dfg.value_type(v);
                if k >= ty.lane_count() as u64 {
                    self.zero(vtype(t)?)
                } else {
                    let x = self.b.ins().extractlane(v, k as u8);
                    self.lane_to_scalar(x, t)
                }
            }
            LLVMInsertElement => {
                let v = self.scalar(ll::operand(i, 0))?;
                let x = self.scalar(ll::operand(i, 1))?;
                let idx = ll::operand(i, 2);
                if ll::is_a_constant_int(idx).is_null() {
                    return Err(format!("variable lane index: {}", ll::print(i)));
                }
                let k = ll::const_zext(idx);
                let ty = self.b.func.dfg.value_type(v);
                if k >= ty.lane_count() as u64 {
                    v
                } else {
                    let x = self.scalar_to_lane(x, ty.lane_type());
                    self.b.ins().insertlane(v, x, k as u8)
                }
            }
            LLVMShuffleVector => self.shuffle(i)?,
            _ => return err(i),
        };
        Ok(vec![v])
    }

    /// Operations on vectors wider than 128 bits, chunk by chunk.
    fn wide_op(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Vec<Value>> {
        use LLVMOpcode::*;
        let t = ll::type_of(i);
        let unsupported = || format!("wide vector operation: {}", ll::print(i));
        match op {
            LLVMAdd | LLVMSub | LLVMMul | LLVMAnd | LLVMOr | LLVMXor | LLVMFAdd | LLVMFSub
            | LLVMFMul | LLVMFDiv => {
                let a = self.operand(ll::operand(i, 0))?;
                let b = self.operand(ll::operand(i, 1))?;
                if a.len() != b.len() {
                    return Err(unsupported());
                }
                let mut out = Vec::new();
                for (x, y) in a.into_iter().zip(b) {
                    let ty = self.b.func.dfg.value_type(x);
                    let ins = self.b.ins();
                    out.push(match op {
                        LLVMAdd => ins.iadd(x, y),
                        LLVMSub => ins.isub(x, y),
                        LLVMMul if ty != types::I8X16 => ins.imul(x, y),
                        LLVMAnd => ins.band(x, y),
                        LLVMOr => ins.bor(x, y),
                        LLVMXor => ins.bxor(x, y),
                        LLVMFAdd => ins.fadd(x, y),
                        LLVMFSub => ins.fsub(x, y),
                        LLVMFMul => ins.fmul(x, y),
                        LLVMFDiv => ins.fdiv(x, y),
                        _ => return Err(unsupported()),
                    });
                }
                Ok(out)
            }
            LLVMFNeg => {
                let a = self.operand(ll::operand(i, 0))?;
                Ok(a.into_iter().map(|x| self.b.ins().fneg(x)).collect())
            }
            LLVMFreeze => self.operand(ll::operand(i, 0)),
            LLVMBitCast => {
                let x = ll::operand(i, 0);
                let a = self.operand(x)?;
                match (wide(ll::type_of(x)), wide(t)) {
                    (Some((_, n)), Some((to, m))) if n == m => {
                        Ok(a.into_iter().map(|v| self.cast_bits(v, to)).collect())
                    }
                    _ => Err(unsupported()),
                }
            }
            LLVMSExt | LLVMZExt | LLVMTrunc => self.wide_resize(op, i),
            LLVMSIToFP | LLVMUIToFP | LLVMFPToSI | LLVMFPToUI => {
                let x = ll::operand(i, 0);
                let a = self.operand(x)?;
                let (Some((from, n)), Some((to, m))) = (wide(ll::type_of(x)), wide(t)) else {
                    return Err(unsupported());
                };
                if n != m {
                    return Err(unsupported());
                }
                let mut out = Vec::new();
                for v in a {
                    let ins = self.b.ins();
                    out.push(match (op, from, to) {
                        (LLVMSIToFP, types::I32X4, types::F32X4) => ins.fcvt_from_sint(to, v),
                        (LLVMUIToFP, types::I32X4, types::F32X4) => ins.fcvt_from_uint(to, v),
                        (LLVMFPToSI, types::F32X4, types::I32X4) => ins.fcvt_to_sint_sat(to, v),
                        (LLVMFPToUI, types::F32X4, types::I32X4) => ins.fcvt_to_uint_sat(to, v),
                        _ => return Err(unsupported()),
                    });
                }
                Ok(out)
            }
            LLVMExtractElement => {
                let x = ll::operand(i, 0);
                let a = self.operand(x)?;
                let idx = ll::operand(i, 1);
                let Some((chunk, n)) = wide(ll::type_of(x)) else {
                    return Err(unsupported());
                };
                if ll::is_a_constant_int(idx).is_null() || ll::int_width(ll::type_of(idx)) > 64 {
                    return Err(unsupported());
                }
                let per = chunk.lane_count() as u64;
                let k = ll::const_zext(idx);
                if k >= per * n as u64 {
                    return Ok(vec![self.zero(chunk.lane_type())]);
                }
                Ok(vec![self
                    .b
                    .ins()
                    .extractlane(a[(k / per) as usize], (k % per) as u8)])
            }
            LLVMInsertElement => {
                let mut a = self.operand(ll::operand(i, 0))?;
                let x = self.scalar(ll::operand(i, 1))?;
                let idx = ll::operand(i, 2);
                let Some((chunk, n)) = wide(t) else {
                    return Err(unsupported());
                };
                if ll::is_a_constant_int(idx).is_null() || ll::int_width(ll::type_of(idx)) > 64 {
                    return Err(unsupported());
                }
                let per = chunk.lane_count() as u64;
                let k = ll::const_zext(idx);
                if k < per * n as u64 {
                    let c = (k / per) as usize;
                    a[c] = self.b.ins().insertlane(a[c], x, (k % per) as u8);
                }
                Ok(a)
            }
            LLVMShuffleVector => {
                // Lane by lane: any mix of 128-bit and wider vectors.
                let (x, y) = (ll::operand(i, 0), ll::operand(i, 1));
                let a = self.operand(x)?;
                let b = self.operand(y)?;
                let n_in = ll::vector_size(ll::type_of(x));
                let lane = scalar_type(ll::element_type(t))?;
                if is_i1(ll::element_type(t)) || lane.is_vector() {
                    return Err(unsupported());
                }
                let per = 128 / lane.bits();
                let out_n = ll::num_mask_elements(i);
                let chunks = (out_n * lane.bits()).div_ceil(128) as usize;
                let chunk_ty = lane.by(per).ok_or_else(unsupported)?;
                let mut out: Vec<Value> = (0..chunks).map(|_| self.zero(chunk_ty)).collect();
                for j in 0..out_n {
                    let m = ll::mask_value(i, j);
                    if m < 0 || m as u32 >= 2 * n_in {
                        continue;
                    }
                    let (src, m) = if (m as u32) < n_in {
                        (&a, m as u32)
                    } else {
                        (&b, m as u32 - n_in)
                    };
                    let v = src[(m / per) as usize];
                    if self.b.func.dfg.value_type(v).lane_type() != lane {
                        return Err(unsupported());
                    }
                    let e = self.b.ins().extractlane(v, (m % per) as u8);
                    let c = (j / per) as usize;
                    out[c] = self.b.ins().insertlane(out[c], e, (j % per) as u8);
                }
                if chunks == 1 && wide(t).is_none() {
                    let ty = vtype(t)?;
                    return Ok(vec![self.cast_bits(out[0], ty)]);
                }
                Ok(out)
            }
            LLVMICmp | LLVMFCmp => {
                // The mask of a wide comparison is held as the mask chunks
                // of its operands (only selects and extensions take it).
                let a = self.operand(ll::operand(i, 0))?;
                let b = self.operand(ll::operand(i, 1))?;
                let mut out = Vec::new();
                for (x, y) in a.into_iter().zip(b) {
                    out.push(if op == LLVMICmp {
                        let (cc, _) = int_cc(ll::icmp_pred(i));
                        self.b.ins().icmp(cc, x, y)
                    } else {
                        match float_cc(ll::fcmp_pred(i)) {
                            Ok(cc) => self.b.ins().fcmp(cc, x, y),
                            Err(_) => return Err(unsupported()),
                        }
                    });
                }
                Ok(out)
            }
            LLVMSelect => {
                let c = ll::operand(i, 0);
                let cv = self.operand(c)?;
                let a = self.operand(ll::operand(i, 1))?;
                let b = self.operand(ll::operand(i, 2))?;
                if a.len() != b.len() {
                    return Err(unsupported());
                }
                let vector_cond = ll::type_kind(ll::type_of(c)) == LLVMTypeKind::LLVMVectorTypeKind;
                if vector_cond && cv.len() != a.len() {
                    return Err(unsupported());
                }
                let mut out = Vec::new();
                for (k, (x, y)) in a.into_iter().zip(b).enumerate() {
                    out.push(if vector_cond {
                        let ty = self.b.func.dfg.value_type(x);
                        let mask = self.cast_bits(cv[k], ty);
                        self.b.ins().bitselect(mask, x, y)
                    } else {
                        self.b.ins().select(cv[0], x, y)
                    });
                }
                Ok(out)
            }
            _ => Err(unsupported()),
        }
    }

    /// Integer vector extensions and truncations involving wide vectors.
    fn wide_resize(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Vec<Value>> {
        use LLVMOpcode::*;
        let unsupported = || format!("wide vector operation: {}", ll::print(i));
        let x = ll::operand(i, 0);
        let t = ll::type_of(i);
        let mut vals = self.operand(x)?;
        let to_lane = scalar_type(ll::element_type(t))?;
        if is_i1(ll::element_type(ll::type_of(x))) {
            // A wide mask: chunks of the right lane width already.
            let Some((chunk, n)) = wide(t) else {
                return Err(unsupported());
            };
            if vals.len() != n || op == LLVMTrunc {
                return Err(unsupported());
            }
            let mut out = Vec::new();
            for v in vals {
                let v = self.cast_bits(v, chunk);
                if self.b.func.dfg.value_type(v).lane_bits() != chunk.lane_bits() {
                    return Err(unsupported());
                }
                out.push(if op == LLVMSExt {
                    v
                } else {
                    let one = self.iconst(chunk.lane_type(), 1);
                    let ones = self.b.ins().splat(chunk, one);
                    self.b.ins().band(v, ones)
                });
            }
            return Ok(out);
        }
        let mut lane_bits = self.b.func.dfg.value_type(vals[0]).lane_bits();
        if op == LLVMTrunc && (lane_bits != to_lane.bits() * 2 || vals.len() % 2 != 0) {
            // Lane by lane.
            let n = ll::vector_size(t);
            let per_in = 128 / lane_bits;
            let out_ty = match wide(t) {
                Some((chunk, _)) => chunk,
                None => vtype(t)?,
            };
            let per_out = out_ty.lane_count();
            let chunks = (n * to_lane.bits()).div_ceil(128) as usize;
            let mut out: Vec<Value> = (0..chunks).map(|_| self.zero(out_ty)).collect();
            for j in 0..n {
                let v = vals[(j / per_in) as usize];
                let e = self.b.ins().extractlane(v, (j % per_in) as u8);
                let e = self.b.ins().ireduce(to_lane, e);
                let c = (j / per_out) as usize;
                out[c] = self.b.ins().insertlane(out[c], e, (j % per_out) as u8);
            }
            return Ok(out);
        }
        if op == LLVMTrunc {
            let lane = to_lane.bytes();
            let mut mask = Vec::new();
            for k in 0..(16 / lane) {
                for byte in 0..lane {
                    mask.push((k * 2 * lane + byte) as u8);
                }
            }
            let mut out = Vec::new();
            for pair in vals.chunks(2) {
                let lo = self.cast_bits(pair[0], types::I8X16);
                let hi = self.cast_bits(pair[1], types::I8X16);
                let imm = self
                    .b
                    .func
                    .dfg
                    .immediates
                    .push(ConstantData::from(mask.clone()));
                let r = self.b.ins().shuffle(lo, hi, imm);
                out.push(self.cast_bits(r, to_lane.by(16 / lane).ok_or_else(unsupported)?));
            }
            return Ok(out);
        }
        while lane_bits < to_lane.bits() {
            let mut next = Vec::new();
            for v in vals {
                let ins = self.b.ins();
                let (lo, hi) = if op == LLVMSExt {
                    (ins.swiden_low(v), self.b.ins().swiden_high(v))
                } else {
                    (ins.uwiden_low(v), self.b.ins().uwiden_high(v))
                };
                next.push(lo);
                next.push(hi);
            }
            vals = next;
            lane_bits *= 2;
        }
        if lane_bits != to_lane.bits() {
            return Err(unsupported());
        }
        match wide(t) {
            Some((_, n)) if n == vals.len() => Ok(vals),
            _ => Err(unsupported()),
        }
    }

    /// An i1 lane as the translator's i1 (0 or 1 in an `i8`).
    fn lane_to_scalar(&mut self, x: Value, t: LLVMTypeRef) -> Value {
        if is_i1(t) {
            let ty = self.b.func.dfg.value_type(x);
            let x = if ty.bits() > 8 {
                self.b.ins().ireduce(types::I8, x)
            } else {
                x
            };
            self.b.ins().band_imm_u(x, 1)
        } else {
            x
        }
    }

    /// An i1 scalar as a mask lane of type `lane`.
    fn scalar_to_lane(&mut self, x: Value, lane: Type) -> Value {
        let xt = self.b.func.dfg.value_type(x);
        if xt == lane {
            // Masks are 0 or -1 per lane.
            if xt == types::I8 {
                return self.b.ins().ineg(x);
            }
            return x;
        }
        let n = self.b.ins().ineg(x);
        if lane.bits() > 8 {
            self.b.ins().sextend(lane, n)
        } else {
            n
        }
    }

    /// `v` reinterpreted as a value of vector type `ty` of the same size.
    fn cast_bits(&mut self, v: Value, ty: Type) -> Value {
        if self.b.func.dfg.value_type(v) == ty {
            v
        } else {
            self.b.ins().bitcast(ty, little(), v)
        }
    }

    fn vector_int_op(
        &mut self,
        op: LLVMOpcode,
        i: LLVMValueRef,
        a: Value,
        b: LLVMValueRef,
        ty: Type,
    ) -> R<Value> {
        use LLVMOpcode::*;
        if matches!(op, LLVMShl | LLVMLShr | LLVMAShr) {
            // Cranelift shifts every lane by one scalar amount.
            let constant = !ll::is_a_constant(b).is_null();
            let e = if constant {
                ll::aggregate_element(b, 0)
            } else {
                std::ptr::null_mut()
            };
            let splat = constant
                && !e.is_null()
                && (0..ty.lane_count()).all(|k| ll::aggregate_element(b, k) == e);
            if !splat {
                return Err(format!("vector shift by a vector: {}", ll::print(i)));
            }
            let amount = self.scalar(e)?;
            let ins = self.b.ins();
            return Ok(match op {
                LLVMShl => ins.ishl(a, amount),
                LLVMLShr => ins.ushr(a, amount),
                _ => ins.sshr(a, amount),
            });
        }
        let b = self.scalar(b)?;
        if op == LLVMMul && ty == types::I8X16 {
            return Err(format!("i8 vector multiply: {}", ll::print(i)));
        }
        let ins = self.b.ins();
        Ok(match op {
            LLVMAdd => ins.iadd(a, b),
            LLVMSub => ins.isub(a, b),
            LLVMMul => ins.imul(a, b),
            LLVMAnd => ins.band(a, b),
            LLVMOr => ins.bor(a, b),
            LLVMXor => ins.bxor(a, b),
            _ => return Err(format!("vector division: {}", ll::print(i))),
        })
    }

    fn shuffle(&mut self, i: LLVMValueRef) -> R<Value> {
        let a = self.scalar(ll::operand(i, 0))?;
        let b = self.scalar(ll::operand(i, 1))?;
        let ty = vtype(ll::type_of(i))?;
        let in_ty = self.b.func.dfg.value_type(a);
        if in_ty.lane_type() != ty.lane_type() {
            return Err(format!(
                "shufflevector changing the lane type: {}",
                ll::print(i)
            ));
        }
        let lane = ty.lane_type().bytes() as i32;
        let lanes = in_ty.lane_count() as i32;
        let n_in = ll::vector_size(ll::type_of(ll::operand(i, 0))) as i32;
        let n = ll::num_mask_elements(i);
        let mut mask = Vec::new();
        for k in 0..n {
            let m = ll::mask_value(i, k);
            let m = if m < 0 || m >= 2 * n_in {
                0
            } else if m >= n_in {
                m - n_in + lanes
            } else {
                m
            };
            for byte in 0..lane {
                mask.push((m * lane + byte) as u8);
            }
        }
        mask.resize(16, 0);
        let a8 = self.cast_bits(a, types::I8X16);
        let b8 = self.cast_bits(b, types::I8X16);
        let imm = self.b.func.dfg.immediates.push(ConstantData::from(mask));
        let r = self.b.ins().shuffle(a8, b8, imm);
        Ok(self.cast_bits(r, ty))
    }

    fn cast(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Value> {
        use LLVMOpcode::*;
        let x = ll::operand(i, 0);
        let (from_t, to_t) = (ll::type_of(x), ll::type_of(i));
        let v = self.scalar(x)?;
        let from = self.b.func.dfg.value_type(v);
        let to = vtype(to_t)?;
        let vector = from.is_vector() || to.is_vector();
        if vector && op != LLVMBitCast {
            // Masks change width only through sext/zext of the same lanes.
            if (op == LLVMSExt) && from == to {
                return Ok(v);
            }
            if op == LLVMZExt && from == to && is_i1(ll::element_type(from_t)) {
                let one = self.iconst(to.lane_type(), 1);
                let ones = self.b.ins().splat(to, one);
                return Ok(self.b.ins().band(v, ones));
            }
            return self.vector_cast(op, i, v, from, to);
        }
        let ins = self.b.ins();
        Ok(match op {
            LLVMTrunc | LLVMPtrToInt => {
                let r = if from.bits() > to.bits() {
                    ins.ireduce(to, v)
                } else if from.bits() < to.bits() {
                    ins.uextend(to, v)
                } else {
                    v
                };
                if is_i1(to_t) {
                    self.b.ins().band_imm_u(r, 1)
                } else {
                    r
                }
            }
            LLVMIntToPtr => {
                if from.bits() > 64 {
                    ins.ireduce(to, v)
                } else if from.bits() < 64 {
                    ins.uextend(to, v)
                } else {
                    v
                }
            }
            LLVMZExt => {
                if from == to {
                    v
                } else {
                    ins.uextend(to, v)
                }
            }
            LLVMSExt => {
                let v = if is_i1(from_t) { ins.ineg(v) } else { v };
                if from == to {
                    v
                } else {
                    self.b.ins().sextend(to, v)
                }
            }
            LLVMFPToSI | LLVMFPToUI => {
                if to == types::I128 {
                    return Err(format!("conversion to i128: {}", ll::print(i)));
                }
                let signed = op == LLVMFPToSI;
                let wide = if to.bits() < 32 { types::I32 } else { to };
                let r = if signed {
                    ins.fcvt_to_sint_sat(wide, v)
                } else {
                    ins.fcvt_to_uint_sat(wide, v)
                };
                let r = if wide != to {
                    self.b.ins().ireduce(to, r)
                } else {
                    r
                };
                if is_i1(to_t) {
                    self.b.ins().band_imm_u(r, 1)
                } else {
                    r
                }
            }
            LLVMSIToFP | LLVMUIToFP => {
                if from == types::I128 {
                    return Err(format!("conversion from i128: {}", ll::print(i)));
                }
                let signed = op == LLVMSIToFP;
                let mut v = v;
                if is_i1(from_t) && signed {
                    v = ins.ineg(v);
                }
                if from.bits() < 32 {
                    v = if signed {
                        self.b.ins().sextend(types::I32, v)
                    } else {
                        self.b.ins().uextend(types::I32, v)
                    };
                }
                if signed {
                    self.b.ins().fcvt_from_sint(to, v)
                } else {
                    self.b.ins().fcvt_from_uint(to, v)
                }
            }
            LLVMFPTrunc => ins.fdemote(to, v),
            LLVMFPExt => ins.fpromote(to, v),
            LLVMBitCast | LLVMAddrSpaceCast => {
                let (from_s, to_s) = (scalar_type(from_t)?, scalar_type(to_t)?);
                if is_half(from_s) && !to.is_vector() {
                    let x = self.narrow(v);
                    return Ok(self.cast_bits(x, to));
                }
                if is_half(to_s) && !from.is_vector() {
                    let x = self.cast_bits(v, types::F64);
                    return Ok(self.widen(x, to_s));
                }
                let ins = self.b.ins();
                if from == to {
                    v
                } else if from.bits() == to.bits() {
                    ins.bitcast(to, little(), v)
                } else {
                    return err(i);
                }
            }
            _ => return err(i),
        })
    }

    /// Lane-wise conversions Cranelift's x86-64 backend compiles.
    fn vector_cast(
        &mut self,
        op: LLVMOpcode,
        i: LLVMValueRef,
        v: Value,
        from: Type,
        to: Type,
    ) -> R<Value> {
        use LLVMOpcode::*;
        let from_lanes = ll::vector_size(ll::type_of(ll::operand(i, 0)));
        let masks = is_i1(ll::element_type(ll::type_of(ll::operand(i, 0))));
        let ins = self.b.ins();
        Ok(match (op, from, to) {
            (LLVMSIToFP, types::I32X4, types::F32X4) => ins.fcvt_from_sint(to, v),
            (LLVMUIToFP, types::I32X4, types::F32X4) => ins.fcvt_from_uint(to, v),
            (LLVMFPToSI, types::F32X4, types::I32X4) => ins.fcvt_to_sint_sat(to, v),
            (LLVMFPToUI, types::F32X4, types::I32X4) => ins.fcvt_to_uint_sat(to, v),
            (LLVMFPExt, types::F32X4, types::F64X2) => ins.fvpromote_low(v),
            (LLVMFPTrunc, types::F64X2, types::F32X4) => ins.fvdemote(v),
            (LLVMSExt | LLVMZExt, _, _)
                if !masks
                    && from.lane_bits() * 2 == to.lane_bits()
                    && from_lanes == to.lane_count() =>
            {
                if op == LLVMSExt {
                    ins.swiden_low(v)
                } else {
                    ins.uwiden_low(v)
                }
            }
            (LLVMTrunc, _, _)
                if !masks
                    && from.lane_bits() == to.lane_bits() * 2
                    && from_lanes == from.lane_count() =>
            {
                // Keep the low half of each lane.
                let lane = to.lane_bits() / 8;
                let mut mask = Vec::new();
                for k in 0..from_lanes {
                    for byte in 0..lane {
                        mask.push((k * 2 * lane + byte) as u8);
                    }
                }
                mask.resize(16, 0);
                let x = self.cast_bits(v, types::I8X16);
                let imm = self.b.func.dfg.immediates.push(ConstantData::from(mask));
                let r = self.b.ins().shuffle(x, x, imm);
                self.cast_bits(r, to)
            }
            _ if !masks && !is_i1(ll::element_type(ll::type_of(i))) => {
                return self.lane_cast(op, i, v, from, to, from_lanes)
            }
            _ => return Err(format!("vector conversion: {}", ll::print(i))),
        })
    }

    /// A vector conversion lane by lane.
    fn lane_cast(
        &mut self,
        op: LLVMOpcode,
        i: LLVMValueRef,
        v: Value,
        from: Type,
        to: Type,
        n: u32,
    ) -> R<Value> {
        use LLVMOpcode::*;
        let (fl, tl) = (from.lane_type(), to.lane_type());
        if n > to.lane_count() || n > from.lane_count() {
            return Err(format!("vector conversion: {}", ll::print(i)));
        }
        let mut out = self.zero(to);
        for k in 0..n as u8 {
            let x = self.b.ins().extractlane(v, k);
            let ins = self.b.ins();
            let y = match op {
                LLVMSExt => ins.sextend(tl, x),
                LLVMZExt => ins.uextend(tl, x),
                LLVMTrunc => ins.ireduce(tl, x),
                LLVMFPExt => ins.fpromote(tl, x),
                LLVMFPTrunc => ins.fdemote(tl, x),
                LLVMSIToFP | LLVMUIToFP => {
                    let x = if fl.bits() < 32 {
                        if op == LLVMSIToFP {
                            ins.sextend(types::I32, x)
                        } else {
                            ins.uextend(types::I32, x)
                        }
                    } else {
                        x
                    };
                    if op == LLVMSIToFP {
                        self.b.ins().fcvt_from_sint(tl, x)
                    } else {
                        self.b.ins().fcvt_from_uint(tl, x)
                    }
                }
                LLVMFPToSI | LLVMFPToUI => {
                    let wide_int = if tl.bits() < 32 { types::I32 } else { tl };
                    let r = if op == LLVMFPToSI {
                        ins.fcvt_to_sint_sat(wide_int, x)
                    } else {
                        ins.fcvt_to_uint_sat(wide_int, x)
                    };
                    if wide_int != tl {
                        self.b.ins().ireduce(tl, r)
                    } else {
                        r
                    }
                }
                _ => return Err(format!("vector conversion: {}", ll::print(i))),
            };
            out = self.b.ins().insertlane(out, y, k);
        }
        Ok(out)
    }

    fn gep(&mut self, i: LLVMValueRef) -> R<Value> {
        let td = self.info.td;
        let mut p = self.scalar(ll::operand(i, 0))?;
        if self.b.func.dfg.value_type(p) != types::I64 {
            return Err(format!("vector getelementptr: {}", ll::print(i)));
        }
        let mut t = ll::gep_source_type(i);
        let n = ll::num_operands(i) as u32;
        let mut offset: i64 = 0;
        for k in 1..n {
            let idx = ll::operand(i, k);
            let scale;
            if k == 1 {
                scale = ll::abi_size(td, t) as i64;
            } else {
                match ll::type_kind(t) {
                    LLVMTypeKind::LLVMStructTypeKind => {
                        let field = ll::const_zext(idx) as u32;
                        offset += ll::offset_of(td, t, field) as i64;
                        t = ll::struct_elem(t, field);
                        continue;
                    }
                    LLVMTypeKind::LLVMArrayTypeKind | LLVMTypeKind::LLVMVectorTypeKind => {
                        t = ll::element_type(t);
                        scale = ll::abi_size(td, t) as i64;
                    }
                    _ => return err(i),
                }
            }
            if !ll::is_a_constant_int(idx).is_null() && ll::int_width(ll::type_of(idx)) <= 64 {
                offset = offset.wrapping_add(ll::const_sext(idx).wrapping_mul(scale));
                continue;
            }
            let x = self.scalar(idx)?;
            let xt = self.b.func.dfg.value_type(x);
            if xt.is_vector() {
                return Err(format!("vector getelementptr: {}", ll::print(i)));
            }
            let x = if is_i1(ll::type_of(idx)) {
                self.b.ins().ineg(x)
            } else {
                x
            };
            let x = match xt.bits().cmp(&64) {
                std::cmp::Ordering::Less => self.b.ins().sextend(types::I64, x),
                std::cmp::Ordering::Greater => self.b.ins().ireduce(types::I64, x),
                std::cmp::Ordering::Equal => x,
            };
            let scaled = if scale == 1 {
                x
            } else {
                self.b.ins().imul_imm_s(x, scale)
            };
            p = self.b.ins().iadd(p, scaled);
        }
        if offset != 0 {
            p = self.b.ins().iadd_imm_s(p, offset);
        }
        Ok(p)
    }

    // ---- calls ----

    fn call(&mut self, i: LLVMValueRef) -> R<()> {
        let callee = ll::called_value(i);
        let fty = ll::called_type(i);
        let k = &self.info.kinds;
        if !ll::is_a_inline_asm(callee).is_null() {
            return Err(format!("inline asm: {}", ll::print(i)));
        }
        let direct = !ll::is_a_function(callee).is_null();
        let cname = if direct {
            ll::name(callee)
        } else {
            String::new()
        };
        if direct && cname.starts_with("llvm.") {
            return self.intrinsic(i, &cname);
        }
        let returns_twice = ll::call_attr(i, u32::MAX, k.returns_twice).is_some()
            || (direct
                && (ll::fn_attr(callee, u32::MAX, k.returns_twice).is_some()
                    || RETURNS_TWICE.contains(&cname.as_str())));
        if returns_twice {
            return Err(format!(
                "a call to a returns_twice function: {}",
                ll::print(i)
            ));
        }
        let nargs = ll::num_arg_operands(i);
        let named = ll::count_param_types(fty);
        let variadic = ll::is_vararg_type(fty) != 0;
        if variadic && !direct {
            return Err(format!("an indirect variadic call: {}", ll::print(i)));
        }
        let extra: Vec<LLVMTypeRef> = (named..nargs)
            .map(|a| ll::type_of(ll::operand(i, a)))
            .collect();
        let attr = |idx: u32, kind: u32| {
            ll::call_attr(i, idx, kind).or_else(|| {
                if direct {
                    ll::fn_attr(callee, idx, kind)
                } else {
                    None
                }
            })
        };
        let sig = signature(self.info, fty, &attr, variadic.then_some(extra.as_slice()))?;
        let mut args = Vec::new();
        for a in 0..nargs {
            let x = ll::operand(i, a);
            let vals = self.operand(x)?;
            args.extend(self.abi_out(vals, ll::type_of(x))?);
        }
        let same_type = direct && ll::global_value_type(callee) == fty;
        let call = if direct && !variadic && same_type && self.canonical_sig(callee) == sig.sig {
            let fref = self.function_ref(callee, false);
            self.b.ins().call(fref, &args)
        } else if direct {
            // Through the address: one symbol has one signature in a
            // module, and calls of a variadic thunk differ.
            let fref = self.function_ref(callee, variadic);
            let p = self.b.ins().func_addr(types::I64, fref);
            let sref = self.b.import_signature(sig.sig);
            self.b.ins().call_indirect(sref, p, &args)
        } else {
            let p = self.scalar(callee)?;
            let sref = self.b.import_signature(sig.sig);
            self.b.ins().call_indirect(sref, p, &args)
        };
        let results = self.b.inst_results(call).to_vec();
        if !results.is_empty() {
            let mut results = self.abi_in(results, ll::type_of(i))?;
            if is_i1(ll::type_of(i)) {
                results[0] = self.b.ins().band_imm_u(results[0], 1);
            }
            self.def(i, results);
        }
        Ok(())
    }

    fn intrinsic(&mut self, i: LLVMValueRef, name: &str) -> R<()> {
        let base = |p: &str| name == p || name.starts_with(&format!("{p}."));
        if base("llvm.lifetime.start")
            || base("llvm.lifetime.end")
            || name.starts_with("llvm.dbg.")
            || base("llvm.va_end")
            || base("llvm.stackrestore")
            || base("llvm.experimental.noalias.scope.decl")
            || base("llvm.donothing")
            || base("llvm.sideeffect")
        {
            return Ok(());
        }
        if base("llvm.stacksave") {
            let v = self.b.ins().get_stack_pointer(types::I64);
            self.def(i, vec![v]);
            return Ok(());
        }
        if base("llvm.va_start") {
            let ap = self.scalar(ll::operand(i, 0))?;
            return self.va_start(ap);
        }
        if base("llvm.va_copy") {
            let dst = self.scalar(ll::operand(i, 0))?;
            let src = self.scalar(ll::operand(i, 1))?;
            for off in [0, 8, 16] {
                let x = self.b.ins().load(types::I64, MemFlagsData::new(), src, off);
                self.b.ins().store(MemFlagsData::new(), x, dst, off);
            }
            return Ok(());
        }
        if base("llvm.load.relative") {
            // ptr + sext(load i32 (ptr + offset)): relative lookup tables.
            let p = self.scalar(ll::operand(i, 0))?;
            let off = self.scalar(ll::operand(i, 1))?;
            let at = self.b.ins().iadd(p, off);
            let rel = self.b.ins().load(types::I32, MemFlagsData::new(), at, 0);
            let rel = self.b.ins().sextend(types::I64, rel);
            let v = self.b.ins().iadd(p, rel);
            self.def(i, vec![v]);
            return Ok(());
        }
        if name.starts_with("llvm.eh.") || base("llvm.threadlocal.address") {
            return Err(format!("intrinsic {name}"));
        }
        let nargs = ll::num_arg_operands(i);
        let mut args = Vec::new();
        if wide(ll::type_of(i)).is_some()
            || (0..nargs).any(|a| wide(ll::type_of(ll::operand(i, a))).is_some())
        {
            return self.wide_intrinsic(i, name);
        }
        for a in 0..nargs {
            let o = ll::operand(i, a);
            if ll::type_kind(ll::type_of(o)) == LLVMTypeKind::LLVMMetadataTypeKind {
                continue;
            }
            args.extend(self.operand(o)?);
        }
        let results: Vec<Type> = leaves(self.info.td, ll::type_of(i))?
            .into_iter()
            .map(|(t, _)| repr(t))
            .collect();
        let call = IntrinsicCall {
            name,
            args: &args,
            results: &results,
        };
        let mut host = Host {
            names: &mut *self.names,
        };
        let vals = intrinsics::translate(&mut self.b, &mut host, &call)?;
        if vals.len() != results.len() {
            return Err(format!("intrinsic {name}: wrong result count"));
        }
        if !vals.is_empty() {
            self.def(i, vals);
        }
        Ok(())
    }

    /// An intrinsic on vectors wider than 128 bits: element-wise ones chunk
    /// by chunk, integer reductions by combining the chunks first.
    fn wide_intrinsic(&mut self, i: LLVMValueRef, name: &str) -> R<()> {
        const ELEMENTWISE: &[&str] = &[
            "fmuladd",
            "fma",
            "fabs",
            "sqrt",
            "floor",
            "ceil",
            "trunc",
            "rint",
            "nearbyint",
            "round",
            "roundeven",
            "copysign",
            "minnum",
            "maxnum",
            "minimum",
            "maximum",
            "smax",
            "smin",
            "umax",
            "umin",
            "abs",
            "ctpop",
            "ctlz",
            "cttz",
            "bswap",
            "bitreverse",
            "fshl",
            "fshr",
            "sadd.sat",
            "uadd.sat",
            "ssub.sat",
            "usub.sat",
        ];
        const REDUCTIONS: &[&str] = &["add", "and", "or", "xor"];
        let refuse = || Err(format!("intrinsic {name} on vectors wider than 128 bits"));
        let rest = &name["llvm.".len()..];
        let nargs = ll::num_arg_operands(i);
        let t = ll::type_of(i);
        let mut chunked = Vec::new();
        let mut chunks = 0;
        for a in 0..nargs {
            let o = ll::operand(i, a);
            let vals = self.operand(o)?;
            if let Some((_, n)) = wide(ll::type_of(o)) {
                if chunks != 0 && chunks != n {
                    return refuse();
                }
                chunks = n;
            }
            chunked.push((wide(ll::type_of(o)).is_some(), vals));
        }
        let (chunk_name, n) = match narrowed_name(name, chunks) {
            Some(x) if chunks > 0 => x,
            _ => return refuse(),
        };
        let _ = n;
        if let Some(op) = rest.strip_prefix("vector.reduce.") {
            let op = op.split('.').next().unwrap_or("");
            if !REDUCTIONS.contains(&op) || nargs != 1 || wide(t).is_some() {
                return refuse();
            }
            let vals = &chunked[0].1;
            let mut acc = vals[0];
            for &v in &vals[1..] {
                let ins = self.b.ins();
                acc = match op {
                    "add" => ins.iadd(acc, v),
                    "and" => ins.band(acc, v),
                    "or" => ins.bor(acc, v),
                    _ => ins.bxor(acc, v),
                };
            }
            let results = [vtype(t)?];
            let call = IntrinsicCall {
                name: &chunk_name,
                args: &[acc],
                results: &results,
            };
            let mut host = Host {
                names: &mut *self.names,
            };
            let out = intrinsics::translate(&mut self.b, &mut host, &call)?;
            self.def(i, out);
            return Ok(());
        }
        let base = rest.split('.').next().unwrap_or("");
        let base2 = rest.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
        if !ELEMENTWISE.contains(&base) && !ELEMENTWISE.contains(&base2.as_str()) {
            return refuse();
        }
        let Some((chunk_ty, n)) = wide(t) else {
            return refuse();
        };
        if n != chunks {
            return refuse();
        }
        let mut out = Vec::new();
        for k in 0..chunks {
            let args: Vec<Value> = chunked
                .iter()
                .map(|(is_wide, vals)| if *is_wide { vals[k] } else { vals[0] })
                .collect();
            let results = [chunk_ty];
            let call = IntrinsicCall {
                name: &chunk_name,
                args: &args,
                results: &results,
            };
            let mut host = Host {
                names: &mut *self.names,
            };
            let r = intrinsics::translate(&mut self.b, &mut host, &call)?;
            if r.len() != 1 {
                return refuse();
            }
            out.push(r[0]);
        }
        self.def(i, out);
        Ok(())
    }

    // ---- variadic definitions ----

    fn variadic_entry(&mut self, entry: Block) -> R<()> {
        self.b.append_block_params_for_function_params(entry);
        let regs = self.b.block_params(entry).to_vec();
        let slot =
            self.b
                .create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 176, 4));
        let area = self.b.ins().stack_addr(types::I64, slot, 0);
        for (k, &r) in regs.iter().enumerate() {
            let off = if k < 6 { 8 * k } else { 48 + 16 * (k - 6) };
            self.b.ins().store(MemFlagsData::new(), r, area, off as i32);
        }
        let (mut gp, mut fp, mut stack) = (0u32, 0u32, 0u32);
        let fp_base = self.b.ins().get_frame_pointer(types::I64);
        for pi in 0..ll::count_params(self.f) {
            let p = ll::param(self.f, pi);
            let t = ll::type_of(p);
            let ty = scalar_type(t)?;
            if ty.is_vector() || ty == types::I128 {
                return Err("variadic function with a vector or i128 parameter".into());
            }
            let v = if ty.is_float() {
                if fp < 8 {
                    let v = self
                        .b
                        .ins()
                        .load(ty, MemFlagsData::new(), area, (48 + 16 * fp) as i32);
                    fp += 1;
                    v
                } else {
                    let v =
                        self.b
                            .ins()
                            .load(ty, MemFlagsData::new(), fp_base, (16 + stack) as i32);
                    stack += 8;
                    v
                }
            } else if gp < 6 {
                let v = self
                    .b
                    .ins()
                    .load(ty, MemFlagsData::new(), area, (8 * gp) as i32);
                gp += 1;
                v
            } else {
                let v = self
                    .b
                    .ins()
                    .load(ty, MemFlagsData::new(), fp_base, (16 + stack) as i32);
                stack += 8;
                v
            };
            let v = if is_i1(t) {
                self.b.ins().band_imm_u(v, 1)
            } else {
                v
            };
            self.values.insert(p, vec![v]);
        }
        self.va = Some(VaInfo {
            save_area: area,
            gp_used: gp,
            fp_used: fp,
            stack_named: stack,
        });
        Ok(())
    }

    fn va_start(&mut self, ap: Value) -> R<()> {
        let Some(va) = &self.va else {
            return Err("va_start in a function that is not variadic".into());
        };
        let (area, gp, fp, stack) = (va.save_area, va.gp_used, va.fp_used, va.stack_named);
        let gp_off = self.iconst(types::I32, 8 * gp as i64);
        let fp_off = self.iconst(types::I32, 48 + 16 * fp as i64);
        let frame = self.b.ins().get_frame_pointer(types::I64);
        let overflow = self.b.ins().iadd_imm_s(frame, 16 + stack as i64);
        let f = MemFlagsData::new();
        self.b.ins().store(f, gp_off, ap, 0);
        self.b.ins().store(f, fp_off, ap, 4);
        self.b.ins().store(f, overflow, ap, 8);
        self.b.ins().store(f, area, ap, 16);
        Ok(())
    }

    /// `va_arg` of a scalar integer, pointer, `float` or `double` from a
    /// SysV `va_list` (any function may read one it was given).
    fn va_arg(&mut self, i: LLVMValueRef) -> R<()> {
        let ap = self.scalar(ll::operand(i, 0))?;
        let t = ll::type_of(i);
        let ty = scalar_type(t)?;
        if ty.is_vector() || ty == types::I128 {
            return Err(format!("va_arg of type {ty}: {}", ll::print(i)));
        }
        let (limit, step, field) = if ty.is_float() {
            (176, 16, 4)
        } else {
            (48, 8, 0)
        };
        let f = MemFlagsData::new().with_notrap().with_aligned();
        let offset = self.b.ins().load(types::I32, f, ap, field);
        let in_regs = self.b.ins().icmp_imm_s(
            IntCC::UnsignedLessThanOrEqual,
            offset,
            (limit - step) as i64,
        );
        let (regs, memory, join) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        let addr = self.b.append_block_param(join, types::I64);
        self.b.ins().brif(in_regs, regs, &[], memory, &[]);
        self.b.switch_to_block(regs);
        let area = self.b.ins().load(types::I64, f, ap, 16);
        let wide_offset = self.b.ins().uextend(types::I64, offset);
        let at = self.b.ins().iadd(area, wide_offset);
        let next = self.b.ins().iadd_imm_s(offset, step as i64);
        self.b.ins().store(f, next, ap, field);
        self.b.ins().jump(join, &[at.into()]);
        self.b.switch_to_block(memory);
        let overflow = self.b.ins().load(types::I64, f, ap, 8);
        let next = self.b.ins().iadd_imm_s(overflow, 8);
        self.b.ins().store(f, next, ap, 8);
        self.b.ins().jump(join, &[overflow.into()]);
        self.b.switch_to_block(join);
        let mut v = self
            .b
            .ins()
            .load(ty, MemFlagsData::new().with_notrap(), addr, 0);
        if is_i1(t) {
            v = self.b.ins().band_imm_u(v, 1);
        }
        self.def(i, vec![v]);
        Ok(())
    }

    // ---- indirectbr ----

    /// Numbers the blocks whose address the function takes (in its own
    /// code or in a table global only it uses).
    fn collect_block_addresses(&mut self) -> R<()> {
        let mut found = Vec::new();
        for &bb in &self.order {
            for i in ll::instructions(bb) {
                for k in 0..ll::num_operands(i).max(0) as u32 {
                    collect_blockaddresses(ll::operand(i, k), &mut found, 0);
                }
            }
        }
        for (&g, &f) in &self.info.tables {
            if f == self.f {
                collect_blockaddresses(ll::initializer(g), &mut found, 0);
            }
        }
        let has_indirectbr = self.order.iter().any(|&bb| {
            let t = ll::terminator(bb);
            !t.is_null() && ll::opcode(t) == LLVMOpcode::LLVMIndirectBr
        });
        let takes_addresses = found
            .iter()
            .any(|&ba| ll::blockaddress_function(ba) == self.f);
        if (has_indirectbr || takes_addresses) && self.info.escaping.contains(&self.f) {
            return Err("block addresses used outside the function and its own tables".into());
        }
        if has_indirectbr && !takes_addresses {
            return Err("indirectbr without block addresses of its own".into());
        }
        for ba in found {
            if ll::blockaddress_function(ba) != self.f {
                continue;
            }
            let bb = ll::blockaddress_block(ba);
            if !self.blocks.contains_key(&bb) || self.block_ids.contains_key(&bb) {
                continue;
            }
            self.addressed.push(bb);
            self.block_ids.insert(bb, self.addressed.len() as u32);
        }
        Ok(())
    }

    /// The address of this function's copy of table global `g`, whose
    /// block addresses are block indices.
    fn table_address(&mut self, g: LLVMValueRef) -> R<Value> {
        let gname = ll::name(g);
        let symbol = format!("{gname}$t0.{}", self.fname);
        if !self.data.iter().any(|d| d.symbol == symbol) {
            let init = ll::initializer(g);
            let size = ll::abi_size(self.info.td, ll::type_of(init)) as usize;
            let mut bytes = vec![0u8; size];
            self.table_bytes(init, 0, &mut bytes)?;
            self.data.push(PrivateData {
                symbol: symbol.clone(),
                bytes,
            });
        }
        let gv = self.global(&symbol);
        Ok(self.b.ins().symbol_value(types::I64, gv))
    }

    fn table_bytes(&self, c: LLVMValueRef, at: usize, out: &mut [u8]) -> R<()> {
        let t = ll::type_of(c);
        match ll::value_kind(c) {
            LLVMValueKind::LLVMBlockAddressValueKind => {
                let id = self
                    .block_ids
                    .get(&ll::blockaddress_block(c))
                    .copied()
                    .ok_or_else(|| format!("blockaddress {}", ll::print(c)))?;
                out[at..at + 8].copy_from_slice(&(id as u64).to_le_bytes());
            }
            LLVMValueKind::LLVMConstantAggregateZeroValueKind
            | LLVMValueKind::LLVMUndefValueValueKind
            | LLVMValueKind::LLVMPoisonValueKind
            | LLVMValueKind::LLVMConstantPointerNullValueKind => {}
            LLVMValueKind::LLVMConstantIntValueKind if ll::int_width(t) <= 64 => {
                let n = ll::abi_size(self.info.td, t) as usize;
                out[at..at + n].copy_from_slice(&ll::const_zext(c).to_le_bytes()[..n]);
            }
            LLVMValueKind::LLVMConstantArrayValueKind
            | LLVMValueKind::LLVMConstantStructValueKind
            | LLVMValueKind::LLVMConstantDataArrayValueKind => {
                let struct_ty = ll::type_kind(t) == LLVMTypeKind::LLVMStructTypeKind;
                let n = if struct_ty {
                    ll::struct_count(t) as u64
                } else {
                    ll::array_len(t)
                };
                for k in 0..n as u32 {
                    let off = if struct_ty {
                        ll::offset_of(self.info.td, t, k) as usize
                    } else {
                        k as usize * ll::abi_size(self.info.td, ll::element_type(t)) as usize
                    };
                    self.table_bytes(ll::aggregate_element(c, k), at + off, out)?;
                }
            }
            _ => return Err(format!("table entry {}", ll::print(c))),
        }
        Ok(())
    }

    fn indirectbr(&mut self, i: LLVMValueRef) -> R<()> {
        let addr = self.scalar(ll::operand(i, 0))?;
        let mut edges = Vec::new();
        let mut targets = HashMap::new();
        for k in 0..ll::num_successors(i) {
            let s = ll::successor(i, k);
            let e = self.edge_block(s, &mut edges)?;
            targets.insert(s, e);
        }
        let trap = self.b.create_block();
        let pool = &mut self.b.func.dfg.value_lists;
        let default = ir::BlockCall::new(trap, std::iter::empty(), pool);
        let mut table = vec![default];
        for bb in &self.addressed {
            let target = targets.get(bb).copied().unwrap_or(trap);
            table.push(ir::BlockCall::new(target, std::iter::empty(), pool));
        }
        let jt = self
            .b
            .create_jump_table(ir::JumpTableData::new(default, &table));
        let index = self.b.ins().ireduce(types::I32, addr);
        self.b.ins().br_table(index, jt);
        self.b.switch_to_block(trap);
        self.b.ins().trap(TrapCode::unwrap_user(1));
        self.fill_edges(edges);
        Ok(())
    }
}

/// `name` with its overloaded wide vector types (`.v8i32`) narrowed to
/// their 128-bit chunks (`.v4i32`), when they split into `chunks`.
fn narrowed_name(name: &str, chunks: usize) -> Option<(String, usize)> {
    if chunks == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut changed = 0;
    for part in name.split('.') {
        let narrowed = part.strip_prefix('v').and_then(|p| {
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            let elem = &p[digits.len()..];
            let n: usize = digits.parse().ok()?;
            if !matches!(elem, "i8" | "i16" | "i32" | "i64" | "f32" | "f64") || n % chunks != 0 {
                return None;
            }
            Some(format!("v{}{elem}", n / chunks))
        });
        match narrowed {
            Some(p) => {
                changed += 1;
                out.push(p);
            }
            None => out.push(part.to_owned()),
        }
    }
    (changed > 0).then(|| (out.join("."), changed))
}

/// The `blockaddress` constants inside constant `c`.
pub(super) fn collect_blockaddresses(c: LLVMValueRef, out: &mut Vec<LLVMValueRef>, depth: u32) {
    if c.is_null() || depth > 8 || ll::is_a_constant(c).is_null() {
        return;
    }
    match ll::value_kind(c) {
        LLVMValueKind::LLVMBlockAddressValueKind => out.push(c),
        LLVMValueKind::LLVMConstantArrayValueKind
        | LLVMValueKind::LLVMConstantStructValueKind
        | LLVMValueKind::LLVMConstantVectorValueKind
        | LLVMValueKind::LLVMConstantExprValueKind => {
            for k in 0..ll::num_operands(c).max(0) as u32 {
                collect_blockaddresses(ll::operand(c, k), out, depth + 1);
            }
        }
        _ => {}
    }
}

/// The flags of a plain access of a leaf of type `ty` at `off` from an
/// address aligned to `align`. A non-volatile access that faults is
/// undefined behaviour in LLVM, so it is `notrap` (which lets tier 1
/// treat it as the plain access it was); a volatile one keeps its trap.
fn access_flags(plain: bool, align: u32, ty: Type, off: u64) -> MemFlagsData {
    let mut flags = MemFlagsData::new();
    if plain {
        flags = flags.with_notrap();
    }
    let size = ty.bytes() as u64;
    if size > 0 && align as u64 % size == 0 && off % size == 0 {
        flags = flags.with_aligned();
    }
    flags
}

/// The integer type atomics of `ty` use.
fn atomic_int(ty: Type) -> Option<Type> {
    match ty {
        types::I8 | types::I16 | types::I32 | types::I64 => Some(ty),
        types::F32 => Some(types::I32),
        types::F64 => Some(types::I64),
        _ => None,
    }
}

pub(super) fn import_function(
    b: &mut FunctionBuilder<'_>,
    name: ir::UserExternalName,
    sig: ir::Signature,
) -> ir::FuncRef {
    let r = b.func.declare_imported_user_function(name);
    let sig = b.import_signature(sig);
    b.import_function(ir::ExtFuncData {
        name: ir::ExternalName::User(r),
        signature: sig,
        colocated: false,
        patchable: false,
    })
}

struct Host<'x> {
    names: &'x mut dyn ClifNames,
}

impl IntrinsicHost for Host<'_> {
    fn libcall(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        symbol: &str,
        sig: ir::Signature,
    ) -> ir::FuncRef {
        let name = self.names.symbol(symbol);
        import_function(b, name, sig)
    }
}

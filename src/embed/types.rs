//! Rust types at the C ABI: how a Rust signature maps to a Cranelift one,
//! and how a typed handle calls JIT'd code.

use orc_cranelift::codegen::ir::{self, types, AbiParam};
use orc_cranelift::codegen::isa::CallConv;

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that crosses the C ABI as one Cranelift value: `i8`..`i64`,
/// `u8`..`u64`, `isize`, `usize`, `f32`, `f64`, `bool` (an `i8` that is 0
/// or 1; any non-zero byte JIT'd code returns reads as `true`) and raw
/// pointers (`i64`).
pub trait AbiType: Copy + sealed::Sealed + 'static {
    /// The type as it is passed (for `bool`: a byte).
    #[doc(hidden)]
    type Abi: Copy;
    /// Its Cranelift type.
    const CLIF: ir::Type;
    #[doc(hidden)]
    fn to_abi(self) -> Self::Abi;
    #[doc(hidden)]
    fn from_abi(abi: Self::Abi) -> Self;
}

macro_rules! abi_types {
    ($($t:ty => $clif:expr),*) => {$(
        impl sealed::Sealed for $t {}
        impl AbiType for $t {
            type Abi = $t;
            const CLIF: ir::Type = $clif;
            fn to_abi(self) -> $t { self }
            fn from_abi(abi: $t) -> $t { abi }
        }
    )*};
}

abi_types!(
    i8 => types::I8, u8 => types::I8, i16 => types::I16, u16 => types::I16,
    i32 => types::I32, u32 => types::I32, i64 => types::I64, u64 => types::I64,
    isize => types::I64, usize => types::I64, f32 => types::F32, f64 => types::F64
);

impl sealed::Sealed for bool {}
impl AbiType for bool {
    type Abi = u8;
    const CLIF: ir::Type = types::I8;
    fn to_abi(self) -> u8 {
        u8::from(self)
    }
    fn from_abi(abi: u8) -> bool {
        abi != 0
    }
}

impl<T: 'static> sealed::Sealed for *const T {}
impl<T: 'static> AbiType for *const T {
    type Abi = *const T;
    const CLIF: ir::Type = types::I64;
    fn to_abi(self) -> *const T {
        self
    }
    fn from_abi(abi: *const T) -> *const T {
        abi
    }
}
impl<T: 'static> sealed::Sealed for *mut T {}
impl<T: 'static> AbiType for *mut T {
    type Abi = *mut T;
    const CLIF: ir::Type = types::I64;
    fn to_abi(self) -> *mut T {
        self
    }
    fn from_abi(abi: *mut T) -> *mut T {
        abi
    }
}

/// A function's result: `()` or one [`AbiType`].
pub trait Results: sealed::Sealed + 'static {
    #[doc(hidden)]
    type Abi: Copy;
    /// The Cranelift return types (none or one).
    fn clif() -> Vec<ir::Type>;
    #[doc(hidden)]
    fn from_abi(abi: Self::Abi) -> Self;
}

impl sealed::Sealed for () {}
impl Results for () {
    type Abi = ();
    fn clif() -> Vec<ir::Type> {
        Vec::new()
    }
    fn from_abi(_: ()) {}
}

impl<T: AbiType> Results for T {
    type Abi = T::Abi;
    fn clif() -> Vec<ir::Type> {
        vec![T::CLIF]
    }
    fn from_abi(abi: T::Abi) -> T {
        T::from_abi(abi)
    }
}

/// A function's parameters: a tuple of up to 8 [`AbiType`]s (`()` for
/// none, `(x,)` for one).
pub trait Params: Copy + 'static {
    /// The Cranelift parameter types.
    fn clif() -> Vec<ir::Type>;
    /// Calls the C-ABI function at `addr` with these arguments.
    ///
    /// # Safety
    ///
    /// `addr` must be a function with exactly this signature (in the C ABI
    /// of the host), sound to call now.
    #[doc(hidden)]
    unsafe fn call<R: Results>(self, addr: usize) -> R;
}

/// A Rust `extern "C" fn` usable as a host function: its signature is
/// derived from its type (up to 8 parameters of [`AbiType`]s, and `()` or
/// one [`AbiType`] returned).
pub trait HostFunction: Copy + Send + Sync + 'static {
    /// The function's address.
    fn address(self) -> usize;
    /// The Cranelift signature (System V).
    fn signature() -> ir::Signature;
}

/// The System V signature of `params -> results`.
pub fn signature_of(params: &[ir::Type], results: &[ir::Type]) -> ir::Signature {
    let mut sig = ir::Signature::new(CallConv::SystemV);
    sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
    sig.returns
        .extend(results.iter().map(|&t| AbiParam::new(t)));
    sig
}

/// Whether two signatures are called the same way: the same value types
/// and calling conventions that pass them alike (`fast`, CLIF text's
/// default, is System V's on x86-64; extension flags, which only say who
/// extends a narrow integer, are ignored).
pub fn same_abi(a: &ir::Signature, b: &ir::Signature) -> bool {
    let types = |p: &[AbiParam]| p.iter().map(|p| p.value_type).collect::<Vec<_>>();
    let conv = |c: CallConv| match c {
        CallConv::Fast => CallConv::SystemV,
        c => c,
    };
    conv(a.call_conv) == conv(b.call_conv)
        && types(&a.params) == types(&b.params)
        && types(&a.returns) == types(&b.returns)
}

macro_rules! tuples {
    ($( ($($a:ident $i:tt),*) )*) => {$(
        impl<$($a: AbiType),*> Params for ($($a,)*) {
            fn clif() -> Vec<ir::Type> {
                vec![$($a::CLIF),*]
            }
            #[allow(unused_variables, clippy::unused_unit)]
            unsafe fn call<R: Results>(self, addr: usize) -> R {
                // SAFETY: the caller guarantees `addr` is a function of
                // this signature; the ABI types are the C types of the
                // parameters and result.
                let f = unsafe {
                    std::mem::transmute::<usize, extern "C" fn($($a::Abi),*) -> R::Abi>(addr)
                };
                R::from_abi(f($(self.$i.to_abi()),*))
            }
        }

        impl<R: Results, $($a: AbiType),*> HostFunction for extern "C" fn($($a),*) -> R {
            fn address(self) -> usize {
                self as usize
            }
            fn signature() -> ir::Signature {
                signature_of(&[$($a::CLIF),*], &R::clif())
            }
        }
    )*};
}

tuples! {
    ()
    (A0 0)
    (A0 0, A1 1)
    (A0 0, A1 1, A2 2)
    (A0 0, A1 1, A2 2, A3 3)
    (A0 0, A1 1, A2 2, A3 3, A4 4)
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5)
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6)
    (A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7)
}

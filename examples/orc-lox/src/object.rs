//! Heap objects, the heap that owns them, and the mark-sweep collector.
//!
//! Every object is an [`Obj`] in a slot of one of the heap's slabs (all
//! objects have one size, so slabs replace `malloc`; a slab never moves);
//! [`ObjRef`] is the slot's address. The heap frees an object only in
//! [`Heap::sweep`], after a mark phase that started from every root the VM
//! (and the compiler, while compiling) holds. Collections happen only at
//! *safepoints*: the VM calls [`Heap::should_collect`] after an allocation
//! once the new object is reachable from a root, so code between safepoints
//! may hold unrooted `ObjRef`s.

use std::cell::{Cell, RefCell, UnsafeCell};

use crate::chunk::Chunk;
use crate::table::Table;
use crate::value::Value;

/// A pointer to a heap object (null only as the table's empty key).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct ObjRef(pub(crate) *mut Obj);

// SAFETY-relevant invariant of this module: an `ObjRef` other than NULL is
// only ever created by `Heap::alloc` (or from a `Value` that holds one), and
// the object stays in its slot until a sweep finds it unmarked. The VM keeps
// every object it still uses reachable from a root at each safepoint, so a
// dereference between safepoints sees a live object. Objects are shared
// (`&Obj`) only: their mutable parts are `Cell`s and `RefCell`s.

impl ObjRef {
    /// The empty-table key.
    pub(crate) const NULL: ObjRef = ObjRef(std::ptr::null_mut());

    #[inline(always)]
    pub(crate) fn is_null(self) -> bool {
        self.0.is_null()
    }

    /// The object. The reference must not be held across a safepoint at
    /// which the object may become unreachable.
    #[inline(always)]
    pub(crate) fn get<'a>(self) -> &'a Obj {
        debug_assert!(!self.0.is_null());
        // SAFETY: by the module invariant above the pointer is a slot of a
        // live slab (slabs are freed only with the heap) holding an object
        // `Heap::alloc` wrote that has not been swept since:
        // callers only use objects reachable from roots (or allocated since
        // the last safepoint), and objects are never mutated through `&mut`.
        unsafe { &*self.0 }
    }

    #[inline(always)]
    pub(crate) fn kind<'a>(self) -> &'a ObjKind {
        &self.get().kind
    }

    #[inline(always)]
    pub(crate) fn is_marked(self) -> bool {
        self.get().marked.get()
    }

    /// The string (the object must be one: a VM invariant).
    #[inline(always)]
    pub(crate) fn as_string<'a>(self) -> &'a LoxStr {
        match self.kind() {
            ObjKind::String(s) => s,
            _ => unreachable!("not a string object"),
        }
    }

    #[inline(always)]
    pub(crate) fn string_hash(self) -> u32 {
        self.as_string().hash
    }

    #[inline(always)]
    pub(crate) fn as_function<'a>(self) -> &'a Function {
        match self.kind() {
            ObjKind::Function(f) => f,
            _ => unreachable!("not a function object"),
        }
    }

    #[inline(always)]
    pub(crate) fn as_closure<'a>(self) -> &'a Closure {
        match self.kind() {
            ObjKind::Closure(c) => c,
            _ => unreachable!("not a closure object"),
        }
    }

    #[inline(always)]
    pub(crate) fn as_class<'a>(self) -> &'a Class {
        match self.kind() {
            ObjKind::Class(c) => c,
            _ => unreachable!("not a class object"),
        }
    }

    #[inline(always)]
    pub(crate) fn as_upvalue<'a>(self) -> &'a Upvalue {
        match self.kind() {
            ObjKind::Upvalue(u) => u,
            _ => unreachable!("not an upvalue object"),
        }
    }
}

/// A heap object: the mark bit and the payload.
pub(crate) struct Obj {
    pub(crate) marked: Cell<bool>,
    pub(crate) kind: ObjKind,
}

/// The object types of Lox. `repr(u8)`: the tag is the first byte and
/// each payload sits at a fixed offset, so JIT'd code can test an object's
/// type with one byte load (see [`crate::jit::layout`]).
#[repr(u8)]
pub(crate) enum ObjKind {
    /// An empty slab slot (never reachable from a value).
    Free,
    String(LoxStr),
    Function(Box<Function>),
    Native(Native),
    Closure(Closure),
    Upvalue(Upvalue),
    Class(Class),
    Instance(Instance),
    BoundMethod(BoundMethod),
}

/// An interned string with its FNV-1a hash.
pub(crate) struct LoxStr {
    pub(crate) hash: u32,
    pub(crate) chars: Box<str>,
}

/// A compiled function.
pub(crate) struct Function {
    pub(crate) arity: usize,
    pub(crate) upvalue_count: usize,
    /// Stack slots the function needs at most (its locals and temporaries,
    /// slot 0 included), computed by the compiler.
    pub(crate) max_slots: usize,
    pub(crate) chunk: Chunk,
    /// `None` for the top-level script.
    pub(crate) name: Option<ObjRef>,
    /// The JIT's view of the function (entry, counters).
    pub(crate) jit: JitInfo,
}

/// What JIT'd code and the tiering logic read of a function, at fixed
/// offsets (`repr(C)`).
#[repr(C)]
#[derive(Default)]
pub(crate) struct JitInfo {
    /// The compiled code's entry (its tiered stub), 0 while interpreted.
    pub(crate) entry: Cell<u64>,
    /// The arity.
    pub(crate) arity: u32,
    /// `max_slots`.
    pub(crate) max_slots: u32,
    /// Calls plus loop back-edges counted by the interpreter (adaptive).
    pub(crate) hotness: Cell<u32>,
    /// The compile was tried and failed: stay interpreted.
    pub(crate) failed: Cell<bool>,
}

/// A native function: gets its arguments, returns the result.
pub(crate) type NativeFn = fn(&[Value]) -> Value;

/// A native function object.
pub(crate) struct Native {
    pub(crate) function: NativeFn,
}

/// A function with its captured variables.
pub(crate) struct Closure {
    pub(crate) function: ObjRef,
    pub(crate) upvalues: Box<[ObjRef]>,
}

/// Where a captured variable lives.
#[derive(Clone, Copy)]
pub(crate) enum UpvalueState {
    /// Still on the VM stack, at this slot.
    Open(usize),
    /// Moved off the stack when its scope ended.
    Closed(Value),
}

/// A captured variable.
pub(crate) struct Upvalue {
    pub(crate) state: Cell<UpvalueState>,
}

/// A class.
pub(crate) struct Class {
    pub(crate) name: ObjRef,
    pub(crate) methods: RefCell<Table>,
    /// The `init` method's closure, or `nil` (a cache of `methods["init"]`).
    pub(crate) init: Cell<Value>,
}

/// An instance of a class.
pub(crate) struct Instance {
    pub(crate) class: ObjRef,
    pub(crate) fields: RefCell<Table>,
}

/// A method bound to its receiver.
pub(crate) struct BoundMethod {
    pub(crate) receiver: Value,
    pub(crate) method: ObjRef,
}

/// FNV-1a, as clox hashes strings.
pub(crate) fn hash_string(s: &str) -> u32 {
    let mut hash: u32 = 2_166_136_261;
    for b in s.bytes() {
        hash ^= b as u32;
        hash = hash.wrapping_mul(16_777_619);
    }
    hash
}

/// Bytes charged to the allocator for an object.
fn object_size(obj: &Obj) -> usize {
    std::mem::size_of::<Obj>()
        + match &obj.kind {
            ObjKind::String(s) => s.chars.len(),
            ObjKind::Function(f) => {
                f.chunk.code.len() * 5 + f.chunk.constants.len() * std::mem::size_of::<Value>()
            }
            ObjKind::Closure(c) => c.upvalues.len() * std::mem::size_of::<ObjRef>(),
            ObjKind::Instance(i) => i.fields.borrow().heap_size(),
            ObjKind::Class(c) => c.methods.borrow().heap_size(),
            _ => 0,
        }
}

/// Slots in the first slab (later slabs double, up to 64 times this).
const SLAB_SLOTS: usize = 256;

/// The first collection threshold, in bytes (clox's `1024 * 1024`).
const FIRST_GC: usize = 1024 * 1024;
/// Heap growth factor after a collection.
const GC_HEAP_GROW_FACTOR: usize = 2;

/// Owner of every object; the collector's state.
pub(crate) struct Heap {
    /// The slabs holding every object slot; never shrunk while the heap lives.
    slabs: Vec<Box<[UnsafeCell<Obj>]>>,
    /// Free slots, reused last-freed first.
    free: Vec<ObjRef>,
    /// Objects currently in slots.
    live: usize,
    /// The intern set (weak: swept strings leave it).
    strings: Table,
    bytes_allocated: usize,
    next_gc: usize,
    /// Collect at every safepoint (for testing the collector).
    pub(crate) stress: bool,
    gray: Vec<ObjRef>,
    /// Number of collections run.
    pub(crate) collections: usize,
}

impl Heap {
    pub(crate) fn new(stress: bool) -> Heap {
        Heap {
            slabs: Vec::new(),
            free: Vec::new(),
            live: 0,
            strings: Table::by_content(),
            bytes_allocated: 0,
            next_gc: FIRST_GC,
            stress,
            gray: Vec::new(),
            collections: 0,
        }
    }

    /// Allocates an object. It is not a root: the caller makes it
    /// reachable before the next safepoint.
    #[inline]
    pub(crate) fn alloc(&mut self, kind: ObjKind) -> ObjRef {
        let obj = Obj {
            marked: Cell::new(false),
            kind,
        };
        self.bytes_allocated += object_size(&obj);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => self.grow(),
        };
        // SAFETY: `slot` is a free slot of a live slab: no `ObjRef` in use
        // points to it (it was never handed out, or the sweep that freed it
        // found it unreachable), so nothing else reads or writes it now.
        // The assignment drops the `Free` placeholder, which owns nothing.
        unsafe { *slot.0 = obj };
        self.live += 1;
        slot
    }

    #[cold]
    fn grow(&mut self) -> ObjRef {
        let size = SLAB_SLOTS << self.slabs.len().min(6);
        let slab: Box<[UnsafeCell<Obj>]> = (0..size)
            .map(|_| {
                UnsafeCell::new(Obj {
                    marked: Cell::new(false),
                    kind: ObjKind::Free,
                })
            })
            .collect();
        self.free
            .extend(slab.iter().skip(1).rev().map(|c| ObjRef(c.get())));
        let first = ObjRef(slab[0].get());
        self.slabs.push(slab);
        first
    }

    /// The interned string for `chars`.
    pub(crate) fn intern(&mut self, chars: &str) -> ObjRef {
        let hash = hash_string(chars);
        if let Some(r) = self.strings.find_string(chars, hash) {
            return r;
        }
        self.new_string(chars.into(), hash)
    }

    /// The interned string for `chars`, taking ownership.
    pub(crate) fn intern_owned(&mut self, chars: String) -> ObjRef {
        let hash = hash_string(&chars);
        if let Some(r) = self.strings.find_string(&chars, hash) {
            return r;
        }
        self.new_string(chars.into_boxed_str(), hash)
    }

    fn new_string(&mut self, chars: Box<str>, hash: u32) -> ObjRef {
        let r = self.alloc(ObjKind::String(LoxStr { hash, chars }));
        self.strings.set(r, Value::NIL);
        r
    }

    /// Whether a safepoint should collect now.
    #[inline(always)]
    pub(crate) fn should_collect(&self) -> bool {
        self.stress || self.bytes_allocated > self.next_gc
    }

    /// Charges `bytes` more to the heap: an object's table grew. Every
    /// growth of an instance's or class's table must be charged, since a
    /// sweep subtracts the table's size when it frees the object.
    #[inline]
    pub(crate) fn charge(&mut self, bytes: usize) {
        self.bytes_allocated += bytes;
    }

    /// Bytes currently charged to live and not-yet-swept objects.
    pub(crate) fn bytes_allocated(&self) -> usize {
        self.bytes_allocated
    }

    /// Number of objects on the heap.
    pub(crate) fn object_count(&self) -> usize {
        self.live
    }

    /// Marks a root value.
    #[inline]
    pub(crate) fn mark_value(&mut self, v: Value) {
        if let Some(r) = v.as_obj() {
            self.mark_obj(r);
        }
    }

    /// Marks a root object.
    pub(crate) fn mark_obj(&mut self, r: ObjRef) {
        let obj = r.get();
        if obj.marked.get() {
            return;
        }
        obj.marked.set(true);
        self.gray.push(r);
    }

    /// Marks everything reachable from the marked roots.
    pub(crate) fn trace(&mut self) {
        while let Some(r) = self.gray.pop() {
            match r.kind() {
                ObjKind::Free | ObjKind::String(_) | ObjKind::Native(_) => {}
                ObjKind::Function(f) => {
                    if let Some(n) = f.name {
                        self.mark_obj(n);
                    }
                    for &c in &f.chunk.constants {
                        self.mark_value(c);
                    }
                }
                ObjKind::Closure(c) => {
                    self.mark_obj(c.function);
                    for &u in c.upvalues.iter() {
                        self.mark_obj(u);
                    }
                }
                ObjKind::Upvalue(u) => {
                    if let UpvalueState::Closed(v) = u.state.get() {
                        self.mark_value(v);
                    }
                }
                ObjKind::Class(c) => {
                    self.mark_obj(c.name);
                    self.mark_value(c.init.get());
                    for (k, v) in c.methods.borrow().iter() {
                        self.mark_obj(k);
                        self.mark_value(v);
                    }
                }
                ObjKind::Instance(i) => {
                    self.mark_obj(i.class);
                    for (k, v) in i.fields.borrow().iter() {
                        self.mark_obj(k);
                        self.mark_value(v);
                    }
                }
                ObjKind::BoundMethod(b) => {
                    self.mark_value(b.receiver);
                    self.mark_obj(b.method);
                }
            }
        }
    }

    /// Frees every unmarked object and clears the marks of the rest.
    pub(crate) fn sweep(&mut self) {
        self.strings.remove_unmarked();
        let mut freed = 0;
        for slab in &self.slabs {
            for cell in slab.iter() {
                let r = ObjRef(cell.get());
                let obj = r.get();
                if matches!(obj.kind, ObjKind::Free) {
                    continue;
                }
                if obj.marked.get() {
                    obj.marked.set(false);
                    continue;
                }
                freed += object_size(obj);
                // SAFETY: the mark phase found this object unreachable from
                // every root, so no `ObjRef` to it will be dereferenced again
                // and no reference into it is live (`obj` is not used after
                // this); the assignment drops the object's contents.
                unsafe {
                    *cell.get() = Obj {
                        marked: Cell::new(false),
                        kind: ObjKind::Free,
                    }
                };
                self.free.push(r);
                self.live -= 1;
            }
        }
        self.bytes_allocated = self.bytes_allocated.saturating_sub(freed);
        self.next_gc = (self.bytes_allocated * GC_HEAP_GROW_FACTOR).max(FIRST_GC);
        self.collections += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_stay_small() {
        // Instances dominate allocation-heavy programs; keep every object
        // at most a cache line.
        assert!(
            std::mem::size_of::<Obj>() <= 64,
            "{}",
            std::mem::size_of::<Obj>()
        );
    }

    #[test]
    fn interning_and_sweeping() {
        let mut heap = Heap::new(false);
        let a = heap.intern("hello");
        let b = heap.intern_owned(String::from("hello"));
        assert!(a == b);
        let c = heap.intern("other");
        assert!(a != c);
        assert_eq!(heap.object_count(), 2);
        heap.mark_obj(a);
        heap.trace();
        heap.sweep();
        assert_eq!(heap.object_count(), 1);
        // The swept string left the intern set: interning it again makes a
        // new object, the kept one is still found.
        assert!(heap.intern("hello") == a);
        let d = heap.intern("other");
        assert_eq!(d.as_string().chars.as_ref(), "other");
        assert_eq!(heap.object_count(), 2);
    }
}

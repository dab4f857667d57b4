//! Far data, in process: `-fno-PIC` code whose data lies more than 2 GiB
//! away (here: memory the test maps far from the JIT's) links and reads
//! and writes the real data, in every instruction form the compilers
//! emit for it. (`tests/link_far_data.rs` at the root runs a program with
//! gigabytes of data under `orc link`.)

mod common;

use common::*;
use orc_core::link::{LinkSet, ObjectFile};
use orc_core::ExecutorAddr;

/// Far data: a page mapped at least 64 GiB below the JIT's mappings
/// (which the kernel puts near the shared libraries, high).
struct FarPage {
    ptr: *mut u8,
}

impl FarPage {
    fn map() -> FarPage {
        for hint in [1u64 << 36, 1 << 37, 1 << 38, 3 << 36] {
            // SAFETY: an anonymous private mapping at a free address near
            // the hint aliases nothing; checked below.
            let ptr = unsafe {
                libc::mmap(
                    hint as usize as *mut libc::c_void,
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if ptr != libc::MAP_FAILED && (ptr as u64) < (1 << 40) {
                return FarPage { ptr: ptr.cast() };
            }
            if ptr != libc::MAP_FAILED {
                // SAFETY: mapped just above, unused.
                unsafe { libc::munmap(ptr, 4096) };
            }
        }
        panic!("cannot map a page below 1 TiB");
    }

    fn at(&self, offset: usize) -> *mut u8 {
        // SAFETY: offsets used are within the page.
        unsafe { self.ptr.add(offset) }
    }
}

impl Drop for FarPage {
    fn drop(&mut self) {
        // SAFETY: mapped by `map`, unmapped once; the links using it are
        // gone by then (declared after it in the test).
        unsafe { libc::munmap(self.ptr.cast(), 4096) };
    }
}

#[test]
fn non_pic_code_reads_and_writes_data_far_away() {
    let page = FarPage::map();
    let (int_at, table_at, double_at, bytes_at, slot_at) = (0, 64, 192, 256, 320);
    let resolve = |name: &str| {
        let off = match name {
            "far_int" => int_at,
            "far_table" => table_at,
            "far_double" => double_at,
            "far_bytes" => bytes_at,
            "far_ptr_slot" => slot_at,
            _ => return host_symbol(name),
        };
        Some(ExecutorAddr(page.at(off) as u64))
    };
    for tc in TOOLCHAINS.iter().filter(|tc| !tc.pic()) {
        let what = tc.describe();
        let obj = ObjectFile::parse("far_data.o", compile_bytes(tc, "far_data.c", &[])).unwrap();
        let set = LinkSet::link(&[obj], &resolve).unwrap_or_else(|e| panic!("{what}: {e}"));
        let code = set.lookup("far_read").unwrap().value();
        assert!(
            code.abs_diff(page.at(0) as u64) > 1 << 32,
            "{what}: the test's data is not far from the code"
        );
        let f = |n: &str| set.lookup(n).unwrap_or_else(|| panic!("{n} ({what})"));
        // SAFETY: the signatures match far_data.c; its data is the page,
        // written only through these functions while they run here.
        unsafe {
            let int_ptr = page.at(int_at).cast::<i32>();
            let table = page.at(table_at).cast::<i64>();
            *int_ptr = 1234;
            for i in 0..8 {
                *table.add(i) = (i as i64 + 1) * 11;
            }
            *page.at(double_at).cast::<f64>() = 2.5;
            let read: extern "C" fn() -> i32 = func(f("far_read"));
            assert_eq!(read(), 1234, "{what}");
            let write: extern "C" fn(i32) = func(f("far_write"));
            write(-1);
            assert_eq!((*int_ptr, *page.at(bytes_at + 3)), (-1, 0xff), "{what}");
            let inc_zero: extern "C" fn() -> i32 = func(f("far_increment_is_zero"));
            assert_eq!((inc_zero(), *int_ptr), (1, 0), "{what}");
            assert_eq!((inc_zero(), *int_ptr), (0, 1), "{what}");
            let scale: extern "C" fn(f64) -> f64 = func(f("far_scale"));
            assert_eq!(scale(4.0), 10.0, "{what}");
            let index: extern "C" fn(i32) -> i64 = func(f("far_index"));
            assert_eq!((index(0), index(5)), (11, 66), "{what}");
            let address: extern "C" fn() -> *mut i32 = func(f("far_address"));
            assert_eq!(address(), int_ptr, "{what}");
            let atomic_add: extern "C" fn(i32) = func(f("far_atomic_add"));
            atomic_add(41);
            assert_eq!(*int_ptr, 42, "{what}");
            let store: extern "C" fn() = func(f("far_store_address"));
            store();
            assert_eq!(*page.at(slot_at).cast::<*mut i64>(), table.add(2), "{what}");
        }
    }
}

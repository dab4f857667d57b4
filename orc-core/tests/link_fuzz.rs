//! Property test: real objects with bytes mutated are either refused with a
//! `LinkError` or link completely; the linker never panics or crashes.
//! Nothing linked here is ever executed.

mod common;

use std::sync::OnceLock;

use common::*;
use orc_core::link::{LinkSet, ObjectFile};
use orc_core::ExecutorAddr;
use proptest::prelude::*;

fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        vec![
            compile_bytes(&GCC_O2_PIC, "calls_a.c", &[]),
            compile_bytes(&TOOLCHAINS[1], "ctors.c", &[]),
            compile_bytes(&GCC_O2_PIC, "cxx_throw.cpp", &[]),
            compile_bytes(&TOOLCHAINS[7], "libc_use.c", &[]),
            compile_bytes(&TOOLCHAINS[4], "calls_b.c", &[]),
        ]
    })
}

/// Every name resolves (to a harmless address in this process), so
/// mutated objects get as far as possible into apply and finalize.
fn resolver(name: &str) -> Option<ExecutorAddr> {
    host_symbol(name).or(Some(ExecutorAddr(seeds as *const () as usize as u64)))
}

fn link_mutated(seed: usize, mutations: &[(usize, u8)], truncate: Option<usize>) {
    let mut bytes = seeds()[seed % seeds().len()].clone();
    for &(at, value) in mutations {
        let len = bytes.len();
        bytes[at % len] = value;
    }
    if let Some(t) = truncate {
        bytes.truncate(t % (bytes.len() + 1));
    }
    if let Ok(obj) = ObjectFile::parse("mutated.o", bytes) {
        let _ = LinkSet::link(&[obj], &resolver);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_objects_never_panic(
        seed in 0usize..5,
        mutations in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        truncate in prop::option::weighted(0.1, any::<usize>()),
    ) {
        link_mutated(seed, &mutations, truncate);
    }

    /// Mutations aimed at the ELF and section headers, where most checks are.
    #[test]
    fn mutated_headers_never_panic(
        seed in 0usize..5,
        mutations in prop::collection::vec((0usize..64, any::<u8>()), 1..4),
        tail in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    ) {
        let len = seeds()[seed % seeds().len()].len();
        let mut all = mutations;
        // Section headers sit at the end of gcc's objects.
        all.extend(tail.into_iter().map(|(at, v)| (len - 1 - at % 1024.min(len), v)));
        link_mutated(seed, &all, None);
    }
}

#[test]
fn every_single_byte_flip_of_a_small_object() {
    let bytes = compile_bytes(&GCC_O2_PIC, "calls_b.c", &[]);
    for at in 0..bytes.len() {
        for value in [0x00, 0xff, bytes[at] ^ 0x80] {
            let mut b = bytes.clone();
            b[at] = value;
            if let Ok(obj) = ObjectFile::parse("flipped.o", b) {
                let _ = LinkSet::link(&[obj], &resolver);
            }
        }
    }
}

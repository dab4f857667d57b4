//! One test per bad-object error kind: each gives a structured error naming
//! the object (and symbol, section, relocation), and linking stays usable.

mod common;

use common::*;
use orc_core::link::{LinkError, LinkSet, ObjectFile};

fn good_object() -> Vec<u8> {
    compile_bytes(&GCC_O2_PIC, "calls_b.c", &[])
}

/// After any error, a good object still links and runs.
fn still_usable() {
    let obj = ObjectFile::parse("calls_b.c", good_object()).unwrap();
    let set = LinkSet::link(&[obj], &host_symbol).unwrap();
    // SAFETY: int b_add(int, int).
    let add: extern "C" fn(i32, i32) -> i32 = unsafe { func(set.lookup("b_add").unwrap()) };
    assert_eq!(add(2, 3), 5);
}

#[test]
fn truncated_object() {
    let bytes = good_object();
    for len in [0, 10, 63, bytes.len() / 2, bytes.len() - 1] {
        let err = ObjectFile::parse("cut.o", &bytes[..len]).unwrap_err();
        assert!(
            matches!(err, LinkError::Malformed { ref object, .. } if object == "cut.o"),
            "{len}: {err}"
        );
        assert!(
            err.to_string().starts_with("cut.o: malformed object: "),
            "{err}"
        );
    }
    let err = ObjectFile::parse("cut.o", &bytes[..10]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cut.o: malformed object: truncated ELF header"
    );
    still_usable();
}

#[test]
fn wrong_machine() {
    let mut bytes = good_object();
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    let err = ObjectFile::parse("arm.o", bytes).unwrap_err();
    assert!(
        matches!(err, LinkError::WrongMachine { ref object, machine: 183 } if object == "arm.o"),
        "{err}"
    );
    assert!(err.to_string().contains("arm.o"), "{err}");
    still_usable();
}

#[test]
fn wrong_class() {
    let mut bytes = good_object();
    bytes[4] = 1; // ELFCLASS32
    let err = ObjectFile::parse("elf32.o", bytes).unwrap_err();
    assert!(
        matches!(err, LinkError::WrongClass { ref object, .. } if object == "elf32.o"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "elf32.o: object is 32-bit ELF, only 64-bit little-endian ELF is supported"
    );
}

#[test]
fn not_a_relocatable_object() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("link-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let so = dir.join(format!("shared-{}.so", std::process::id()));
    let src = source("calls_b.c");
    run_tool(
        "gcc",
        &[
            "-shared",
            "-fPIC",
            src.to_str().unwrap(),
            "-o",
            so.to_str().unwrap(),
        ],
    );
    let err = ObjectFile::parse("lib.so", std::fs::read(&so).unwrap()).unwrap_err();
    let _ = std::fs::remove_file(&so);
    assert!(
        matches!(err, LinkError::WrongType { e_type: 3, .. }),
        "{err}"
    );
}

/// A thread-local the JIT did not link (the host's) cannot be reached:
/// refused, naming it.
#[test]
fn thread_local_errors_name_the_symbol() {
    for tc in TOOLCHAINS.iter().filter(|tc| tc.pic()) {
        let bytes = compile_bytes(tc, "tls_extern.c", &[]);
        let obj = ObjectFile::parse("gd.o", bytes).unwrap();
        let host = |name: &str| (name == "elsewhere").then_some(orc_core::ExecutorAddr(0x1000));
        let err = LinkSet::link(&[obj], &host).err().expect("must fail");
        assert!(
            err.to_string().contains(
                "thread-local symbol elsewhere is not defined by an object this JIT linked"
            ),
            "{}: {err}",
            tc.describe()
        );
    }
    still_usable();
}

#[test]
fn undefined_symbol() {
    for tc in TOOLCHAINS {
        let obj = ObjectFile::parse("undefined.o", compile_bytes(tc, "undefined.c", &[])).unwrap();
        let alloc = obj.allocate(&Default::default()).unwrap();
        assert!(alloc
            .external_symbols()
            .iter()
            .any(|u| u.name == "defined_nowhere" && !u.weak));
        let err = alloc.apply(&host_symbol).err().expect("must fail");
        assert!(
            matches!(&err, LinkError::UndefinedSymbol { object, symbol } if object == "undefined.o" && symbol == "defined_nowhere"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "undefined.o: undefined symbol defined_nowhere"
        );
    }
    still_usable();
}

#[test]
fn duplicate_strong_symbol() {
    let b = ObjectFile::parse("calls_b.o", good_object()).unwrap();
    let dup = ObjectFile::parse("dup.o", compile_bytes(&GCC_O2_PIC, "dup.c", &[])).unwrap();
    let err = LinkSet::link(&[b, dup], &host_symbol)
        .err()
        .expect("must fail");
    assert!(
        matches!(&err, LinkError::DuplicateSymbol { symbol, first, second }
            if symbol == "counter" && first == "calls_b.o" && second == "dup.o"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "duplicate symbol counter: defined in calls_b.o and in dup.o"
    );
    still_usable();
}

/// Far data is reached through thunks, but a call through a far function
/// pointer cannot be moved to one: still an overflow, never a truncation.
#[test]
fn far_call_through_data_is_an_overflow_not_a_truncation() {
    let bytes = compile_bytes(&GCC_O2_PIC, "far_call.c", &["-fno-PIC"]);
    let obj = ObjectFile::parse("far_call.o", bytes).unwrap();
    // Never dereferenced: the link must fail. 64 GiB is far below the
    // high mappings the JIT's memory comes from.
    let resolve = |name: &str| (name == "far_hook").then_some(orc_core::ExecutorAddr(1 << 36));
    let err = LinkSet::link(&[obj], &resolve).err().expect("must fail");
    assert!(
        matches!(&err, LinkError::RelocationOverflow { target, .. } if target == "far_hook"),
        "{err}"
    );
    still_usable();
}

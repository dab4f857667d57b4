//! The GDB JIT interface: JIT'd code is registered with an in-memory ELF
//! carrying its final addresses, unregistered on removal, and plain gdb
//! (installed by `scripts/setup.sh`) breaks in JIT'd functions, names their
//! frames and shows source lines of objects built with `-g`.

use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object, ObjectSection, ObjectSymbol};
use orc::{Jit, KaleidoscopeJit, Tier};

const FIB: &str =
    "def fib(x)\n  if x < 3 then\n    1\n  else\n    fib(x-1)+fib(x-2);\n\nfib(10);\n";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debugger-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The address of `name` in the registered ELF files, if one defines it
/// (section address plus symbol value, as gdb computes it).
fn registered_address(objects: &[Vec<u8>], name: &str) -> Option<u64> {
    objects.iter().find_map(|bytes| {
        let file = object::File::parse(&**bytes).ok()?;
        let sym = file
            .symbols()
            .find(|s| s.name() == Ok(name) && s.kind() == object::SymbolKind::Text)?;
        let sec = file.section_by_index(sym.section_index()?).ok()?;
        Some(sec.address() + sym.address())
    })
}

#[test]
fn linked_objects_are_registered_at_their_final_addresses_and_unregistered_on_removal() {
    for tier in [Tier::Zero, Tier::One] {
        let jit = Jit::builder().tier(tier).debugger(true).build().unwrap();
        let mut kjit = KaleidoscopeJit::new(jit);
        assert_eq!(kjit.eval(FIB).unwrap(), vec![55.0]);
        let body = match tier {
            Tier::One => "fib$t1",
            _ => "fib$t0",
        };
        let body_addr = kjit
            .jit()
            .bodies_dylib()
            .lookup_symbol(body)
            .unwrap()
            .addr
            .value();
        let stub_addr = kjit.jit().lookup("fib").unwrap().value();
        let objects = orc::core::debug::registered_objects();
        assert_eq!(
            registered_address(&objects, body),
            Some(body_addr),
            "tier {tier}: the body's object"
        );
        assert_eq!(
            registered_address(&objects, "fib"),
            Some(stub_addr),
            "tier {tier}: the stub"
        );
        drop(kjit);
        let objects = orc::core::debug::registered_objects();
        assert_eq!(registered_address(&objects, body), None, "tier {tier}");
        assert_eq!(registered_address(&objects, "fib"), None, "tier {tier}");
    }
}

#[test]
fn nothing_is_registered_without_the_option() {
    let mut kjit = KaleidoscopeJit::new(Jit::builder().debugger(false).build().unwrap());
    kjit.eval("def quietone(x) x + 1;\nquietone(1);").unwrap();
    let objects = orc::core::debug::registered_objects();
    assert_eq!(registered_address(&objects, "quietone$t0"), None);
    assert_eq!(registered_address(&objects, "quietone"), None);
}

/// Runs `gdb --batch` with `commands` on `orc ARGS`; returns stdout and
/// stderr together.
fn gdb(commands: &[&str], args: &[&str]) -> String {
    let mut cmd = Command::new("gdb");
    cmd.arg("--batch").arg("-nx");
    // Without it, gdb in batch mode declines a breakpoint on a function
    // that only appears once the JIT has registered its code.
    cmd.args(["-ex", "set breakpoint pending on"]);
    for c in commands {
        cmd.args(["-ex", c]);
    }
    cmd.arg("--args").arg(env!("CARGO_BIN_EXE_orc")).args(args);
    let out = cmd
        .output()
        .expect("gdb is not installed: run scripts/setup.sh");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn gdb_breaks_in_jitted_kaleidoscope_and_names_the_frames() {
    let prog = scratch("fib.kal");
    std::fs::write(&prog, FIB).unwrap();
    let prog = prog.to_str().unwrap();
    for tier in ["0", "adaptive"] {
        let out = gdb(
            &["break fib", "run", "bt 3", "continue 3", "bt 3"],
            &["run", "--tier", tier, prog],
        );
        assert!(out.contains("Breakpoint 1, "), "tier {tier}: {out}");
        // The first stop: the stub `fib`, called from the top-level
        // expression, both named.
        assert!(out.contains("in fib ()"), "tier {tier}: {out}");
        assert!(out.contains("#1  0x"), "tier {tier}: {out}");
        assert!(out.contains(" in __anon_expr"), "tier {tier}: {out}");
        // Later stops: recursive calls from the tier-0 body.
        assert!(out.contains(" in fib$t0"), "tier {tier}: {out}");
        assert!(!out.contains("?? ()"), "tier {tier}: {out}");
    }
}

#[test]
fn gdb_shows_source_lines_of_a_linked_c_object() {
    let src = scratch("square.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n\
         int square(int x) {\n\
         \x20 int y = x * x;\n\
         \x20 return y;\n\
         }\n\
         int main(void) {\n\
         \x20 int s = 0;\n\
         \x20 for (int i = 0; i < 3; i++)\n\
         \x20   s += square(i);\n\
         \x20 printf(\"%d\\n\", s);\n\
         \x20 return 0;\n\
         }\n",
    )
    .unwrap();
    let obj = scratch("square.o");
    let status = Command::new("gcc")
        .args(["-g", "-O0", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("gcc");
    assert!(status.success());
    let out = gdb(
        &["break square", "run", "bt 2", "continue", "info locals"],
        &["link", obj.to_str().unwrap()],
    );
    assert!(
        out.contains("Breakpoint 1, square (x=0) at ") && out.contains("square.c:3"),
        "{out}"
    );
    assert!(
        out.contains("3\t  int y = x * x;"),
        "the source line: {out}"
    );
    assert!(out.contains("in main () at "), "the caller, named: {out}");
    assert!(out.contains("square.c:9"), "the caller's line: {out}");
    assert!(
        out.contains("Breakpoint 1, square (x=1)"),
        "the second call: {out}"
    );
}

/// Tier-1 Kaleidoscope code carries line information (the tutorial's
/// chapter 9): gdb stops in `fib$t1` at its file and line and lists the
/// source line.
#[test]
fn gdb_shows_kaleidoscope_source_lines_in_tier_1() {
    let prog = scratch("fib_lines.kal");
    std::fs::write(&prog, FIB).unwrap();
    let prog = prog.to_str().unwrap();
    let out = gdb(
        &["break fib$t1", "run", "bt 1"],
        &["run", "--tier", "1", prog],
    );
    assert!(out.contains("fib$t1 () at fib_lines.kal:2"), "{out}");
    assert!(out.contains("2\t  if x < 3 then"), "{out}");
}

/// Tier-0 code carries line tables too, made from Cranelift's map of
/// source locations: the same stop in `fib$t0`, and the top-level
/// expression's frame at its line.
#[test]
fn gdb_shows_kaleidoscope_source_lines_in_tier_0() {
    let prog = scratch("fib_lines0.kal");
    std::fs::write(&prog, FIB).unwrap();
    let prog = prog.to_str().unwrap();
    let out = gdb(
        &["break fib$t0", "run", "bt 2"],
        &["run", "--tier", "0", "--no-cache", prog],
    );
    assert!(out.contains("fib$t0 () at fib_lines0.kal:2"), "{out}");
    assert!(out.contains("2\t  if x < 3 then"), "{out}");
    assert!(
        out.contains("in __anon_expr_0 () at fib_lines0.kal:7"),
        "{out}"
    );
}

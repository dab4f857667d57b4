//! The VM as a library: output capture, persistent globals, error results,
//! and the garbage collector's behaviour measured from outside.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use orc_lox::{InterpretResult, Vm};

#[derive(Clone, Default)]
struct Buf(Rc<RefCell<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.borrow_mut())).expect("utf-8 output")
    }
}

fn vm(stress: bool) -> (Vm, Buf, Buf) {
    let (out, err) = (Buf::default(), Buf::default());
    let vm = Vm::with_output(Box::new(out.clone()), Box::new(err.clone()), stress);
    (vm, out, err)
}

#[test]
fn globals_persist_and_errors_leave_the_vm_usable() {
    let (mut vm, out, err) = vm(false);
    assert_eq!(
        vm.interpret("var a = 20; fun twice(x) { return x * 2; }"),
        InterpretResult::Ok
    );
    assert_eq!(vm.interpret("print twice(a) + 2;"), InterpretResult::Ok);
    assert_eq!(out.take(), "42\n");
    assert_eq!(
        vm.interpret("fun f() { return -\"x\"; } f();"),
        InterpretResult::RuntimeError
    );
    assert_eq!(
        err.take(),
        "Operand must be a number.\n[line 1] in f()\n[line 1] in script\n"
    );
    assert_eq!(vm.interpret("print a"), InterpretResult::CompileError);
    assert_eq!(
        err.take(),
        "[line 1] Error at end: Expect ';' after value.\n"
    );
    assert_eq!(vm.interpret("print a;"), InterpretResult::Ok);
    assert_eq!(out.take(), "20\n");
    assert_eq!(InterpretResult::CompileError.exit_code(), 65);
    assert_eq!(InterpretResult::RuntimeError.exit_code(), 70);
}

#[test]
fn garbage_is_collected_and_the_heap_stays_bounded() {
    let (mut vm, out, _err) = vm(false);
    let program = r#"
        class Pair { init(a, b) { this.a = a; this.b = b; } }
        var keep = Pair("kept", nil);
        for (var i = 0; i < 200000; i = i + 1) {
            var s = "garbage " + "string";
            var p = Pair(s, i);
            fun closure() { return p; }
        }
        print keep.a;
    "#;
    assert_eq!(vm.interpret(program), InterpretResult::Ok);
    assert_eq!(out.take(), "kept\n");
    assert!(vm.gc_count() > 0, "no collection ran");
    // 200k iterations allocate over a million objects; what survives is
    // the program's few live ones plus at most one threshold of garbage.
    assert!(
        vm.heap_objects() < 100_000,
        "{} objects live",
        vm.heap_objects()
    );
    assert!(vm.heap_bytes() < 8 << 20, "{} bytes live", vm.heap_bytes());
}

#[test]
fn stress_mode_collects_at_every_allocation_and_keeps_live_data() {
    let (mut vm, out, _err) = vm(true);
    let program = r#"
        var s = "";
        for (var i = 0; i < 50; i = i + 1) s = s + "x";
        class A { init() { this.s = s; } get() { return this.s; } }
        var a = A();
        var m = a.get;
        print m() == s;
    "#;
    assert_eq!(vm.interpret(program), InterpretResult::Ok);
    assert_eq!(out.take(), "true\n");
    assert!(vm.gc_count() >= 50, "{} collections", vm.gc_count());
}

#[test]
fn a_repl_session_does_not_leak_across_lines() {
    let (mut vm, out, _err) = vm(false);
    for i in 0..200 {
        assert_eq!(
            vm.interpret(&format!("var v{} = \"line\" + \"{i}\";", i % 10)),
            InterpretResult::Ok
        );
    }
    assert_eq!(vm.interpret("print v3;"), InterpretResult::Ok);
    assert_eq!(out.take(), "line193\n");
}

#[test]
fn deep_nesting_is_a_compile_error_not_a_crash() {
    let (mut vm, out, err) = vm(false);
    // Deep but allowed.
    let ok = format!("print {}1{};", "(".repeat(400), ")".repeat(400));
    assert_eq!(vm.interpret(&ok), InterpretResult::Ok);
    assert_eq!(out.take(), "1\n");
    let blocks = format!("{}print 2;{}", "{".repeat(300), "}".repeat(300));
    assert_eq!(vm.interpret(&blocks), InterpretResult::Ok);
    assert_eq!(out.take(), "2\n");
    // Too deep: reported, and the VM is still usable.
    let deep = format!("print {}1{};", "(".repeat(100_000), ")".repeat(100_000));
    assert_eq!(vm.interpret(&deep), InterpretResult::CompileError);
    assert_eq!(err.take(), "[line 1] Error at '(': Too much nesting.\n");
    let deep = format!("{}print 3;", "{".repeat(100_000));
    assert_eq!(vm.interpret(&deep), InterpretResult::CompileError);
    assert_eq!(err.take(), "[line 1] Error at '{': Too much nesting.\n");
    assert_eq!(vm.interpret("print 4;"), InterpretResult::Ok);
    assert_eq!(out.take(), "4\n");
}

/// A body of `n` statements `a;` (3 bytes of code each) inside a function
/// with a local `a`, so no constants are needed.
fn big_body(n: usize) -> String {
    "a;\n".repeat(n)
}

#[test]
fn jumps_and_loops_over_64k_of_code_are_compile_errors() {
    let (mut vm, out, err) = vm(false);
    let body_lines = 22_000; // 66,000 bytes of code
    let src = format!(
        "fun f() {{\nvar a = 1;\nwhile (a) {{\n{}}}\n}}\n",
        big_body(body_lines)
    );
    assert_eq!(vm.interpret(&src), InterpretResult::CompileError);
    assert_eq!(
        err.take(),
        // The second error is clox's too: synchronizing skips the
        // function's closing brace.
        format!(
            "[line {}] Error at '}}': Loop body too large.\n[line {}] Error at end: Expect '}}' after block.\n",
            body_lines + 4,
            body_lines + 6
        )
    );
    let src = format!(
        "fun f() {{\nvar a = 1;\nif (a) {{\n{}}}\n}}\n",
        big_body(body_lines)
    );
    assert_eq!(vm.interpret(&src), InterpretResult::CompileError);
    assert_eq!(
        err.take(),
        format!(
            "[line {}] Error at '}}': Too much code to jump over.\n[line {}] Error at end: Expect '}}' after block.\n",
            body_lines + 4,
            body_lines + 6
        )
    );
    // Just under the limit runs.
    let src = format!(
        "fun f() {{\nvar a = 1;\nif (a) {{\n{}}}\nreturn a;\n}}\nprint f();\n",
        big_body(21_000)
    );
    assert_eq!(vm.interpret(&src), InterpretResult::Ok);
    assert_eq!(out.take(), "1\n");
}

#[test]
fn field_tables_count_toward_the_collection_threshold() {
    // Instances with many fields: the tables, not the objects, hold the
    // memory, and they must make the collector run and stay bounded.
    let (mut vm, out, _err) = vm(false);
    let mut fields = String::new();
    for i in 0..64 {
        fields.push_str(&format!("o.f{i} = {i};\n"));
    }
    let program = format!(
        "class O {{}}\nfun make() {{ var o = O();\n{fields} return o; }}\nvar last;\nfor (var i = 0; i < 15000; i = i + 1) last = make();\nprint last.f63;\n"
    );
    assert_eq!(vm.interpret(&program), InterpretResult::Ok);
    assert_eq!(out.take(), "63\n");
    assert!(vm.gc_count() > 0);
    // Each instance's table holds 128 entries (2 KiB): without charging the
    // tables, 15,000 of them (56 bytes each) would not reach the first 1 MiB threshold.
    assert!(
        vm.heap_objects() < 5_000,
        "{} objects live",
        vm.heap_objects()
    );
}

#[test]
fn global_slots_run_out_with_a_compile_error() {
    let (mut vm, out, err) = vm(false);
    // `clock` holds one slot: 65,535 more fit.
    // (`true` needs no constant: one chunk holds only 256.)
    let fits: String = (0..65_535).map(|i| format!("var g{i} = true;\n")).collect();
    assert_eq!(vm.interpret(&fits), InterpretResult::Ok);
    assert_eq!(vm.interpret("print g65534 and g6;"), InterpretResult::Ok);
    assert_eq!(out.take(), "true\n");
    assert_eq!(
        vm.interpret("var oneMore = 1;"),
        InterpretResult::CompileError
    );
    assert_eq!(
        err.take(),
        "[line 1] Error at 'oneMore': Too many global variables.\n"
    );
    // Existing globals still work.
    assert_eq!(vm.interpret("g0 = 5; print g0;"), InterpretResult::Ok);
    assert_eq!(out.take(), "5\n");
}

#[test]
fn independent_vms_run_on_many_threads() {
    // No global state: each thread's VM has its own heap, stack and
    // globals (the later multi-threaded JIT stress test relies on this).
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let (mut vm, out, _err) = vm(t % 2 == 1);
                let program = format!(
                    "fun fib(n) {{ if (n < 2) return n; return fib(n - 2) + fib(n - 1); }}
                     class P {{ init(s) {{ this.s = s; }} }}
                     var keep = P(\"t{t}\");
                     for (var i = 0; i < 300; i = i + 1) P(\"x\" + \"y\");
                     print fib(15) + {t};
                     print keep.s;"
                );
                assert_eq!(vm.interpret(&program), InterpretResult::Ok);
                out.take()
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let output = h.join().expect("thread finished");
        assert_eq!(output, format!("{}\nt{t}\n", 610 + t));
    }
}

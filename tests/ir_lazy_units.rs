//! `orc run x.ll --lazy-units function|reachable`: which functions a lazy
//! run of an IR program compiles. `function` compiles exactly the functions
//! called (LLVM CompileOnDemand's default partition); `reachable`, the
//! default, also compiles small functions the compiled code can reach; in
//! both, a function nothing compiled can reach is never compiled.

use std::process::Command;

const PROGRAM: &str = r#"
declare i32 @printf(ptr, ...)
@fmt = private constant [4 x i8] c"%d\0A\00"
define i32 @g(i32 %x) {
  %r = mul i32 %x, 3
  ret i32 %r
}
define i32 @f(i32 %x) {
  %c = icmp sgt i32 %x, 1000
  br i1 %c, label %big, label %small
big:
  %y = call i32 @g(i32 %x)
  ret i32 %y
small:
  %z = add i32 %x, 1
  ret i32 %z
}
define i32 @h(i32 %x) {
  %r = sub i32 %x, 7
  ret i32 %r
}
define i32 @main(i32 %argc, ptr %argv) {
  %v = call i32 @f(i32 41)
  call i32 (ptr, ...) @printf(ptr @fmt, i32 %v)
  ret i32 0
}
"#;

/// Runs the program with `args` and `--stats`; returns stdout and the
/// tier-1 functions compiled, sorted.
fn compiled(args: &[&str]) -> (String, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("orc-lazy-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("units.ll");
    std::fs::write(&file, PROGRAM).unwrap();
    // Tier 1: the units are the LLVM split's.
    let out = Command::new(env!("CARGO_BIN_EXE_orc"))
        .env_remove("ORC_TIER")
        .args(["run", "--tier", "1"])
        .arg("--stats")
        .args(args)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut functions: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("orc: stats: tier 1 "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "function" && !name.ends_with(':'))
        // Lazy bodies are `NAME$t1`; an eager module keeps the names.
        .map(|name| name.trim_end_matches("$t1").to_owned())
        .collect();
    functions.sort();
    (String::from_utf8_lossy(&out.stdout).into_owned(), functions)
}

#[test]
fn function_units_compile_exactly_the_functions_called() {
    let (stdout, functions) = compiled(&["--lazy-units", "function"]);
    assert_eq!(stdout, "42\n");
    assert_eq!(functions, ["f", "main"]);
}

#[test]
fn reachable_units_add_small_reachable_callees_but_never_unreachable_code() {
    let (stdout, functions) = compiled(&[]);
    assert_eq!(stdout, "42\n");
    assert!(functions.contains(&"g".to_owned()), "{functions:?}");
    assert!(!functions.contains(&"h".to_owned()), "{functions:?}");
    // Eager compiles everything, `h` included.
    let (_, eager) = compiled(&["--eager"]);
    assert_eq!(eager, ["f", "g", "h", "main"]);
}

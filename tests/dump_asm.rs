//! `--dump asm` prints the machine code of every tier (and of objects
//! linked by `orc link`), disassembled where it was loaded, with function
//! names and addresses.

use std::process::Command;

use orc_test_support::{check, scratch, text};

/// The listed functions: (name, address) from `; machine code of NAME at
/// ADDR` headers, and whether every listing has instructions at
/// addresses counting up from its start.
fn listings(stderr: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut lines = stderr.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("; machine code of ") else {
            continue;
        };
        let (name, rest) = rest.split_once(" at 0x").expect("an address");
        let addr = u64::from_str_radix(rest.split(' ').next().unwrap(), 16).unwrap();
        // The first instruction is at the function's address.
        let first = lines.peek().expect("instructions follow");
        let at = u64::from_str_radix(first.split_whitespace().next().unwrap(), 16).unwrap();
        assert_eq!(at, addr, "{line}\n{first}");
        out.push((name.to_owned(), addr));
    }
    out
}

fn orc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orc"));
    c.env_remove("ORC_TIER").env("ORC_NO_CACHE", "1");
    c
}

#[test]
fn every_tier_is_listed_with_names_and_addresses() {
    let dir = scratch("dump-asm");
    let prog = dir.join("fib.kal");
    std::fs::write(
        &prog,
        "def fib(n) if n < 2 then n else fib(n-1) + fib(n-2);\nfib(20);\n",
    )
    .unwrap();
    for (tier, body) in [("0", "fib$t0"), ("1", "fib$t1"), ("adaptive", "fib$t0")] {
        let out = check(
            orc()
                .args(["run", "--print-results", "--dump", "asm", "--tier", tier])
                .arg(&prog),
        );
        assert_eq!(
            text(&out.stdout),
            "Evaluated to 6765.000000\n",
            "tier {tier}"
        );
        let stderr = text(&out.stderr);
        let listed = listings(&stderr);
        assert!(
            listed.iter().any(|(n, _)| n == body),
            "tier {tier}: no {body} in {listed:?}"
        );
        assert!(
            listed.iter().any(|(n, _)| n.starts_with("__anon_expr")),
            "tier {tier}: {listed:?}"
        );
        assert!(stderr.contains("  ret"), "tier {tier}: {stderr}");
    }
    // With tier-up, the promoted body is listed too (a long run, and
    // promotions on the program's thread so it happens before the end).
    std::fs::write(
        &prog,
        "def fib(n) if n < 2 then n else fib(n-1) + fib(n-2);\nfib(25);\n",
    )
    .unwrap();
    let out = check(
        orc()
            .args([
                "run",
                "--dump",
                "asm",
                "--tier",
                "adaptive",
                "--tier-up-threads",
                "0",
            ])
            .arg(&prog),
    );
    let listed = listings(&text(&out.stderr));
    assert!(listed.iter().any(|(n, _)| n == "fib$t1"), "{listed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn objects_of_orc_link_are_listed() {
    let dir = scratch("dump-asm-link");
    let c = dir.join("sq.c");
    std::fs::write(
        &c,
        "int square(int x) { return x * x; }\nint main(void) { return square(6) - 30; }\n",
    )
    .unwrap();
    let obj = dir.join("sq.o");
    check(
        Command::new("gcc")
            .args(["-O1", "-c", "-o"])
            .arg(&obj)
            .arg(&c),
    );
    let out = orc()
        .args(["link", "--dump", "asm"])
        .arg(&obj)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let names: Vec<String> = listings(&text(&out.stderr))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&"square".to_owned()), "{names:?}");
    assert!(names.contains(&"main".to_owned()), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! The object cache (`--cache DIR`, `--no-cache`): a second run finds
//! every tier-1 object the first compiled; a changed program misses; a
//! damaged entry is detected, compiled again and replaced; two processes
//! filling one cache at once both run right and leave sound entries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use orc_test_support::{check, scratch, text};

/// `orc run --stats --cache DIR FLAGS program`.
fn orc(cache: &Path, flags: &[&str], program: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orc"));
    c.env_remove("ORC_TIER")
        .env_remove("ORC_NO_CACHE")
        .args(["run", "--stats", "--cache"])
        .arg(cache)
        .args(flags)
        .arg(program);
    c
}

/// (hits, misses, stored, damaged) from the `--stats` line.
fn cache_stats(out: &Output) -> (u64, u64, u64, u64) {
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("object cache"))
        .unwrap_or_else(|| panic!("no cache statistics in:\n{stderr}"));
    let number = |what: &str| -> u64 {
        let (before, _) = line
            .split_once(&format!(" {what}"))
            .unwrap_or_else(|| panic!("no '{what}' in {line}"));
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    (
        number("hits"),
        number("misses"),
        number("stored"),
        number("damaged"),
    )
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "obj"))
        .collect();
    v.sort();
    v
}

fn program(dir: &Path, body: &str) -> (PathBuf, String) {
    let src = format!(
        "#include <stdio.h>\n\
         static long step(long h, long i) {{ return (h ^ i) * 1099511628211L; }}\n\
         long mix(long n) {{ long h = 7; for (long i = 0; i < n; i++) h = step(h, i); return h; }}\n\
         int main(void) {{ {body} return 0; }}\n"
    );
    let p = orc_test_support::build_source(dir, "prog", &src, false, &["-O1"]);
    let native = check(&mut Command::new(&p.native));
    (p.ir, text(&native.stdout))
}

#[test]
fn a_second_run_hits_and_a_changed_program_misses() {
    let dir = scratch("cache-hit");
    let cache = dir.join("cache");
    let (ir, expected) = program(&dir, r#"printf("%ld\n", mix(1000));"#);
    for flags in [&["--tier", "1"][..], &["--tier", "1", "--eager"][..]] {
        let _ = std::fs::remove_dir_all(&cache);
        let first = check(&mut orc(&cache, flags, &ir));
        assert_eq!(text(&first.stdout), expected, "{flags:?}");
        let (hits, misses, stored, _) = cache_stats(&first);
        assert_eq!(hits, 0, "{flags:?}");
        assert!(
            misses > 0 && stored == misses,
            "{flags:?}: {}",
            text(&first.stderr)
        );
        assert_eq!(entries(&cache).len() as u64, stored);

        let second = check(&mut orc(&cache, flags, &ir));
        assert_eq!(text(&second.stdout), expected, "{flags:?}");
        assert_eq!(cache_stats(&second), (misses, 0, 0, 0), "{flags:?}");

        // --no-cache neither reads nor writes it.
        let mut off = Command::new(env!("CARGO_BIN_EXE_orc"));
        off.args(["run", "--no-cache", "--tier", "1"]).arg(&ir);
        assert_eq!(text(&check(&mut off).stdout), expected);
    }
    // Another program: a miss, and its own result.
    let (changed, expected2) = program(&dir, r#"printf("%ld\n", mix(1001));"#);
    assert_ne!(expected, expected2);
    let out = check(&mut orc(&cache, &["--tier", "1", "--eager"], &changed));
    assert_eq!(text(&out.stdout), expected2);
    assert!(cache_stats(&out).1 > 0, "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_entries_are_compiled_again_and_replaced() {
    let dir = scratch("cache-damaged");
    let cache = dir.join("cache");
    let (ir, expected) = program(&dir, r#"printf("%ld\n", mix(77));"#);
    let flags = ["--tier", "1", "--eager"];
    let first = check(&mut orc(&cache, &flags, &ir));
    let stored = cache_stats(&first).2;
    assert!(stored > 0);
    // Truncate one entry, flip a byte of the object in another (or the
    // same, if there is one): each is found damaged, not run.
    let files = entries(&cache);
    let data = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &data[..data.len() / 2]).unwrap();
    let last = files.last().unwrap();
    let mut data = std::fs::read(last).unwrap();
    let at = data.len() - 3;
    data[at] ^= 0x40;
    std::fs::write(last, &data).unwrap();
    let damaged = files.len().min(2) as u64;

    let out = check(&mut orc(&cache, &flags, &ir));
    assert_eq!(text(&out.stdout), expected);
    let (hits, misses, again, rejected) = cache_stats(&out);
    assert_eq!((rejected, misses, again), (damaged, damaged, damaged));
    assert_eq!(hits, stored - damaged);
    // Replaced: the next run hits everything.
    let out = check(&mut orc(&cache, &flags, &ir));
    assert_eq!(cache_stats(&out), (stored, 0, 0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_processes_fill_one_cache_at_once() {
    let dir = scratch("cache-race");
    let cache = dir.join("cache");
    let (ir, expected) = program(&dir, r#"printf("%ld %ld\n", mix(5), mix(500));"#);
    let flags = ["--tier", "1", "--eager"];
    for round in 0..3 {
        let _ = std::fs::remove_dir_all(&cache);
        let children: Vec<_> = (0..2)
            .map(|_| {
                orc(&cache, &flags, &ir)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
            assert_eq!(text(&out.stdout), expected, "round {round}");
        }
        // What they left is sound and complete: a third run only hits.
        let out = check(&mut orc(&cache, &flags, &ir));
        let (hits, misses, _, rejected) = cache_stats(&out);
        assert_eq!((misses, rejected), (0, 0), "round {round}");
        assert!(hits > 0);
        assert!(
            std::fs::read_dir(&cache).unwrap().flatten().all(
                |e| e.file_name() == "size" || e.path().extension().is_some_and(|x| x == "obj")
            ),
            "round {round}: no temporary files left (only entries and the size file)"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tier 0 caches too (code without profiling counters), Kaleidoscope's
/// top-level expressions included; a redefinition in the program is
/// another object.
#[test]
fn tier_0_objects_are_cached_too() {
    let dir = scratch("cache-tier0");
    let cache = dir.join("cache");
    let kal = dir.join("prog.kal");
    std::fs::write(
        &kal,
        "extern printd(x);\ndef f(x) x * 3;\nprintd(f(14));\ndef g(x) f(x) + 1;\nprintd(g(2));\n",
    )
    .unwrap();
    let first = check(&mut orc(&cache, &["--tier", "0"], &kal));
    assert_eq!(text(&first.stdout), "42.000000\n7.000000\n");
    let (hits, misses, stored, _) = cache_stats(&first);
    assert_eq!(hits, 0);
    assert!(misses >= 4 && stored == misses, "{}", text(&first.stderr));
    let second = check(&mut orc(&cache, &["--tier", "0"], &kal));
    assert_eq!(text(&second.stdout), "42.000000\n7.000000\n");
    assert_eq!(cache_stats(&second), (misses, 0, 0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

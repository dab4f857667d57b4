//! Property tests: random token soup, arbitrary strings and mutated sample
//! programs go through the lexer, parser, checker, REPL session and
//! lowering. Nothing may panic, every diagnostic has a 1-based position,
//! and every program that passes the checks must lower to a valid object.

mod support;

use orc_kaleidoscope::{
    lower_function, lower_program, parse_and_check, Item, LowerOptions, ReplEvent, ReplSession,
};
use proptest::prelude::*;
use std::sync::OnceLock;
use support::{files_with_ext, host_module, programs_dir};

const TOKENS: &[&str] = &[
    "def",
    "extern",
    "if",
    "then",
    "else",
    "for",
    "in",
    "binary",
    "unary",
    "var",
    "x",
    "y",
    "n",
    "f",
    "g",
    "printd",
    "(",
    ")",
    ",",
    ";",
    "+",
    "-",
    "*",
    "<",
    "=",
    ":",
    "!",
    "|",
    "^",
    "1",
    "2.5",
    "0",
    ".5",
    "30",
    "200",
    "1.2.3",
    "#c\n",
    "\n",
    " ",
    "\t",
    "é",
    "_",
    "\0",
    "def f(x) x;",
    "extern g(a b);",
    "def binary : 1 (a b) b;",
    "def unary ! (v) 0 - v;",
    "for i = 0, i < 3 in",
    "var a = 1, b in",
    "if x < 1 then 1 else",
];

fn samples() -> &'static [String] {
    static SAMPLES: OnceLock<Vec<String>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut all: Vec<String> = files_with_ext(&programs_dir(), "kal")
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        all.extend(
            files_with_ext(&programs_dir().join("errors"), "kal")
                .into_iter()
                .map(|(_, text)| text),
        );
        all
    })
}

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(TOKENS), prop::bool::ANY), 0..80).prop_map(
        |tokens| {
            let mut src = String::new();
            for (token, space) in tokens {
                src.push_str(token);
                if space {
                    src.push(' ');
                }
            }
            src
        },
    )
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: f64, len: usize },
    Insert { at: f64, token: &'static str },
    Duplicate { at: f64, len: usize },
    Replace { at: f64, c: char },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0..1.0, 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (0.0..1.0, prop::sample::select(TOKENS))
            .prop_map(|(at, token)| Mutation::Insert { at, token }),
        (0.0..1.0, 1usize..200).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (0.0..1.0, any::<char>()).prop_map(|(at, c)| Mutation::Replace { at, c }),
    ]
}

fn mutated_sample() -> impl Strategy<Value = String> {
    (0..samples().len(), prop::collection::vec(mutation(), 1..6)).prop_map(|(index, mutations)| {
        let mut chars: Vec<char> = samples()[index].chars().collect();
        for mutation in mutations {
            let pos = |at: f64, chars: &Vec<char>| (at * chars.len() as f64) as usize;
            match mutation {
                Mutation::Delete { at, len } => {
                    let start = pos(at, &chars);
                    let end = (start + len).min(chars.len());
                    chars.drain(start..end);
                }
                Mutation::Insert { at, token } => {
                    let start = pos(at, &chars);
                    chars.splice(start..start, token.chars());
                }
                Mutation::Duplicate { at, len } => {
                    let start = pos(at, &chars);
                    let end = (start + len).min(chars.len());
                    let copy: Vec<char> = chars[start..end].to_vec();
                    chars.splice(end..end, copy);
                }
                Mutation::Replace { at, c } => {
                    let start = pos(at, &chars);
                    if start < chars.len() {
                        chars[start] = c;
                    }
                }
            }
        }
        chars.into_iter().collect()
    })
}

/// Samples with digits and built-in operators swapped for others: mostly
/// still valid, so they exercise the lowering of many program shapes.
fn gently_mutated_sample() -> impl Strategy<Value = String> {
    (
        0..samples().len(),
        prop::collection::vec((0.0..1.0f64, 0usize..4), 1..12),
    )
        .prop_map(|(index, swaps)| {
            let mut chars: Vec<char> = samples()[index].chars().collect();
            for (at, pick) in swaps {
                let start = (at * chars.len() as f64) as usize;
                let Some(offset) = chars[start..]
                    .iter()
                    .position(|c| c.is_ascii_digit() || "+-*<".contains(*c))
                else {
                    continue;
                };
                let c = &mut chars[start + offset];
                *c = if c.is_ascii_digit() {
                    ['0', '3', '7', '9'][pick]
                } else {
                    ['+', '-', '*', '<'][pick]
                };
            }
            chars.into_iter().collect()
        })
}

/// Runs `src` through every entry point and checks the invariants.
fn exercise(src: &str) {
    match parse_and_check(src) {
        Ok(program) => {
            let mut module = host_module("fuzz");
            lower_program(&mut module, &program, &LowerOptions { capture_clif: true })
                .unwrap_or_else(|err| panic!("a checked program must lower: {err:?}\n{src}"));
            assert!(!module.finish().emit().expect("object").is_empty());
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            for diag in diags {
                assert!(diag.line >= 1 && diag.col >= 1, "{diag:?}");
                assert!(!diag.message.is_empty());
            }
        }
    }
    let mut repl = ReplSession::new();
    let mut events = Vec::new();
    for line in src.split_inclusive('\n') {
        events.extend(repl.feed(line));
    }
    events.extend(repl.finish());
    for event in events {
        match event {
            ReplEvent::Item(Item::Def(func) | Item::Expr(func)) => {
                let mut module = host_module("repl");
                lower_function(&mut module, &func)
                    .unwrap_or_else(|err| panic!("an accepted item must lower: {err:?}\n{src}"));
            }
            ReplEvent::Item(Item::Extern(_)) => {}
            ReplEvent::Error(diag) => assert!(diag.line >= 1 && diag.col >= 1, "{diag:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn token_soup_never_panics(src in token_soup()) {
        exercise(&src);
    }

    #[test]
    fn arbitrary_strings_never_panic(src in any::<String>()) {
        exercise(&src);
    }

    #[test]
    fn mutated_samples_never_panic(src in mutated_sample()) {
        exercise(&src);
    }

    #[test]
    fn gently_mutated_samples_lower(src in gently_mutated_sample()) {
        exercise(&src);
    }
}

#[test]
fn every_sample_survives_the_exercise_unchanged() {
    for src in samples() {
        exercise(src);
    }
}

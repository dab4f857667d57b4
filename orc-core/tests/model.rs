//! A property test: random sequences of define / lookup / remove against a
//! simple model of the linker rules and tracker removal.

use std::collections::HashMap;

use orc_core::{
    absolute_symbols, Error, ExecutionSession, ExecutorAddr, ExecutorSymbolDef, SymbolFlags,
    SymbolMap,
};
use proptest::prelude::*;

const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
const TRACKERS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Define {
        name: usize,
        weak: bool,
        tracker: usize,
    },
    Lookup {
        name: usize,
    },
    Remove {
        tracker: usize,
    },
    NewTracker {
        tracker: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..NAMES.len(), any::<bool>(), 0..TRACKERS).prop_map(|(name, weak, tracker)| Op::Define { name, weak, tracker }),
        4 => (0..NAMES.len()).prop_map(|name| Op::Lookup { name }),
        1 => (0..TRACKERS).prop_map(|tracker| Op::Remove { tracker }),
        1 => (0..TRACKERS).prop_map(|tracker| Op::NewTracker { tracker }),
    ]
}

#[derive(Clone, Debug)]
struct ModelSym {
    addr: u64,
    weak: bool,
    tracker: u64,
    looked_up: bool,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn session_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let es = ExecutionSession::new();
        let jd = es.create_jit_dylib("main").unwrap();
        // Slot i holds a tracker; the model knows trackers by key.
        let mut trackers: Vec<orc_core::ResourceTracker> =
            (0..TRACKERS).map(|_| jd.create_resource_tracker().unwrap()).collect();
        let mut defunct: Vec<bool> = vec![false; TRACKERS];
        let mut model: HashMap<usize, ModelSym> = HashMap::new();

        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Define { name, weak, tracker } => {
                    let addr = 0x1000 + step as u64 * 0x10;
                    let mut flags = SymbolFlags::EXPORTED;
                    if weak {
                        flags |= SymbolFlags::WEAK;
                    }
                    let mut map = SymbolMap::new();
                    map.insert(es.intern(NAMES[name]), ExecutorSymbolDef::new(ExecutorAddr(addr), flags));
                    let res = jd.define(absolute_symbols(map), Some(&trackers[tracker]));
                    if defunct[tracker] {
                        prop_assert!(matches!(res, Err(Error::ResourceTrackerDefunct { .. })), "{res:?}");
                        continue;
                    }
                    let key = trackers[tracker].key().value();
                    match model.get(&name).cloned() {
                        None => {
                            prop_assert!(res.is_ok(), "{res:?}");
                            model.insert(name, ModelSym { addr, weak, tracker: key, looked_up: false });
                        }
                        Some(existing) if weak => {
                            // A weak definition of a defined name is discarded.
                            prop_assert!(res.is_ok(), "{res:?}");
                            let _ = existing;
                        }
                        Some(existing) if existing.weak && !existing.looked_up => {
                            prop_assert!(res.is_ok(), "{res:?}");
                            model.insert(name, ModelSym { addr, weak, tracker: key, looked_up: false });
                        }
                        Some(_) => {
                            let is_dup = matches!(&res, Err(Error::DuplicateDefinition { symbol, .. }) if symbol.as_str() == NAMES[name]);
                            prop_assert!(is_dup, "{res:?}");
                        }
                    }
                }
                Op::Lookup { name } => {
                    let res = jd.lookup_symbol(NAMES[name]);
                    match model.get_mut(&name) {
                        Some(sym) => {
                            prop_assert_eq!(res.map(|d| d.addr).ok(), Some(ExecutorAddr(sym.addr)));
                            sym.looked_up = true;
                        }
                        None => {
                            let not_found = matches!(&res, Err(Error::SymbolsNotFound { symbols }) if symbols[0].as_str() == NAMES[name]);
                            prop_assert!(not_found, "{res:?}");
                        }
                    }
                }
                Op::Remove { tracker } => {
                    prop_assert!(trackers[tracker].remove().is_ok());
                    let key = trackers[tracker].key().value();
                    model.retain(|_, s| s.tracker != key);
                    defunct[tracker] = true;
                }
                Op::NewTracker { tracker } => {
                    trackers[tracker] = jd.create_resource_tracker().unwrap();
                    defunct[tracker] = false;
                }
            }
        }
        // Final check: the dylib holds exactly the model's names.
        let table: Vec<String> = jd.symbol_table().unwrap().into_iter().map(|(n, ..)| n.to_string()).collect();
        let mut expected: Vec<String> = model.keys().map(|i| NAMES[*i].to_owned()).collect();
        expected.sort();
        prop_assert_eq!(table, expected);
        es.end_session().unwrap();
    }
}

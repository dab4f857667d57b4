//! Link plugins on the object-linking layer: each hook runs once per object
//! at its stage, sees final addresses and bytes, keeps a state until the
//! object is removed, and can fail the link.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use orc_core::link::{LinkError, LinkPlugin, LinkView, ObjectLinkingLayer, PluginState};
use orc_core::{DynamicLibrarySearchGenerator, Error, ExecutionSession, JitDylib};

fn setup(es: &ExecutionSession) -> (Arc<ObjectLinkingLayer>, JitDylib) {
    let layer = ObjectLinkingLayer::new(es);
    let host = es.create_jit_dylib("host").unwrap();
    host.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))
        .unwrap();
    let main = es.create_jit_dylib("main").unwrap();
    main.add_to_link_order(&host).unwrap();
    (layer, main)
}

/// Logs every hook as `(stage, object, detail)`.
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<(String, String, u64)>>,
}

impl Recorder {
    fn push(&self, stage: &str, view_or_name: &str, detail: u64) {
        self.log
            .lock()
            .unwrap()
            .push((stage.into(), view_or_name.into(), detail));
    }
    fn take(&self) -> Vec<(String, String, u64)> {
        std::mem::take(&mut self.log.lock().unwrap())
    }
}

/// The address of the function `name` as the view sees it.
fn function_addr(view: &LinkView<'_>, name: &str) -> u64 {
    view.symbols()
        .find(|s| s.name == name && s.is_function)
        .map_or(0, |s| s.addr)
}

impl LinkPlugin for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn allocated(&self, view: &LinkView<'_>) -> Result<(), LinkError> {
        let mem = view.memory_range();
        for s in view.sections() {
            assert!(
                s.addr >= mem.start && s.addr + s.size <= mem.end,
                "{} inside the link",
                s.name
            );
        }
        let f = view.functions();
        assert!(!f.is_empty());
        self.push("allocated", view.name(), function_addr(view, "is_even"));
        Ok(())
    }
    fn fixed_up(&self, view: &LinkView<'_>) -> Result<(), LinkError> {
        // Every section is readable before publishing.
        for s in view.sections() {
            assert_eq!(
                view.section_bytes(s.index).map(<[u8]>::len),
                Some(s.size as usize),
                "{}",
                s.name
            );
        }
        self.push("fixed_up", view.name(), function_addr(view, "is_even"));
        Ok(())
    }
    fn emitted(&self, view: &LinkView<'_>) -> Result<Option<PluginState>, LinkError> {
        // Published: code is readable, writable data is not.
        for s in view.sections() {
            let readable = view.section_bytes(s.index).is_some();
            assert_eq!(readable, !s.writable || s.size == 0, "{}", s.name);
        }
        for (f, range) in view.functions() {
            assert!(view.code_range().contains(&range.start));
            assert!(
                view.bytes_at(range.start, (range.end - range.start) as usize)
                    .is_some(),
                "{}",
                f.name
            );
        }
        self.push("emitted", view.name(), function_addr(view, "is_even"));
        Ok(Some(Box::new(view.name().to_owned())))
    }
    fn removing(&self, object: &str, state: PluginState) {
        let kept = state.downcast::<String>().expect("the state given back");
        assert_eq!(*kept, object);
        self.push("removing", object, 0);
    }
}

#[test]
fn hooks_run_in_stage_order_with_final_addresses_and_states_come_back_on_removal() {
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    assert_eq!(
        layer
            .plugins()
            .iter()
            .map(|p| p.name().to_owned())
            .collect::<Vec<_>>(),
        vec!["eh-frame"],
        "the default plugins"
    );
    let recorder = Arc::new(Recorder::default());
    layer.add_plugin(recorder.clone());
    let tracker = main.create_resource_tracker().unwrap();
    for name in ["cycle_even.c", "cycle_odd.c"] {
        layer
            .add(&main, compile(&GCC_O2_PIC, name), Some(&tracker))
            .unwrap();
    }
    let is_even = layer.lookup(&main, "is_even").unwrap().value();
    // SAFETY: int is_even(unsigned).
    let f: extern "C" fn(u32) -> i32 = unsafe { func(layer.lookup(&main, "is_even").unwrap()) };
    assert_eq!(f(10), 1);
    let log = recorder.take();
    for object in ["cycle_even.c", "cycle_odd.c"] {
        let stages: Vec<&str> = log
            .iter()
            .filter(|(_, o, _)| o.contains(object))
            .map(|(s, _, _)| s.as_str())
            .collect();
        assert_eq!(
            stages,
            ["allocated", "fixed_up", "emitted"],
            "{object}: {log:?}"
        );
    }
    // The address every stage saw is the one the session resolved.
    let even: Vec<u64> = log
        .iter()
        .filter(|(_, o, _)| o.contains("cycle_even.c"))
        .map(|(_, _, a)| *a)
        .collect();
    assert_eq!(even, [is_even; 3]);

    tracker.remove().unwrap();
    let log = recorder.take();
    let mut removed: Vec<&str> = log
        .iter()
        .map(|(s, o, _)| {
            assert_eq!(s, "removing");
            o.as_str()
        })
        .collect();
    removed.sort();
    assert_eq!(removed.len(), 2, "{log:?}");
    assert!(removed[0].contains("cycle_even.c") && removed[1].contains("cycle_odd.c"));
}

struct Veto;

impl LinkPlugin for Veto {
    fn name(&self) -> &str {
        "veto"
    }
    fn allocated(&self, view: &LinkView<'_>) -> Result<(), LinkError> {
        Err(LinkError::Plugin {
            object: view.name().to_owned(),
            plugin: self.name().to_owned(),
            reason: "not today".into(),
        })
    }
}

#[test]
fn a_plugin_error_fails_the_link_and_plugins_can_be_removed() {
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    layer.add_plugin(Arc::new(Veto));
    layer
        .add(&main, compile(&GCC_O2_PIC, "cycle_even.c"), None)
        .unwrap();
    layer
        .add(&main, compile(&GCC_O2_PIC, "cycle_odd.c"), None)
        .unwrap();
    let err = layer.lookup(&main, "is_even").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("plugin veto: not today"),
        "the plugin's error: {text}"
    );
    assert!(
        matches!(err, Error::Link(_)) || text.contains("cycle_"),
        "{err:?}"
    );

    assert_eq!(layer.remove_plugin("veto"), 1);
    assert_eq!(layer.remove_plugin("veto"), 0);
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    // Without `.eh_frame` registration, code still links and runs.
    assert_eq!(layer.remove_plugin("eh-frame"), 1);
    assert!(layer.plugins().is_empty());
    for name in ["cycle_even.c", "cycle_odd.c"] {
        layer.add(&main, compile(&GCC_O2_PIC, name), None).unwrap();
    }
    // SAFETY: int is_even(unsigned).
    let f: extern "C" fn(u32) -> i32 = unsafe { func(layer.lookup(&main, "is_even").unwrap()) };
    assert_eq!(f(7), 0);
}

//! Translation on demand: a thread that keeps a module parsed and
//! translates its functions one at a time, when asked (a lazy tier 0
//! translates only the functions that run).
//!
//! LLVM contexts are not `Send`, so the parsed module lives on the
//! thread; requests and replies (function names, `ir::Function`s) cross
//! over channels. The thread ends when the [`ClifTranslator`] is dropped.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use orc_llvm::inkwell::context::Context;
use orc_llvm::inkwell::memory_buffer::MemoryBuffer;

use super::{ll, module_info, translate_one, verifier_isa, ClifNames};
use super::{TranslatedFunction, Untranslatable};

type Reply = Result<TranslatedFunction, Untranslatable>;

/// A module kept parsed on a thread of its own, whose functions are
/// translated to CLIF on request. `Send + Sync`: any thread may ask; the
/// requests are served one at a time.
pub struct ClifTranslator {
    requests: Mutex<Sender<(String, Sender<Reply>)>>,
}

impl std::fmt::Debug for ClifTranslator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClifTranslator").finish_non_exhaustive()
    }
}

impl ClifTranslator {
    /// Parses `bitcode` (a module prepared by `orc_llvm::partition::plan`)
    /// on a new thread, which translates its functions with `names` when
    /// asked. `Err` when the thread cannot start or the bitcode does not
    /// parse.
    pub fn start(
        name: &str,
        bitcode: Arc<[u8]>,
        names: Box<dyn ClifNames + Send>,
    ) -> Result<Self, String> {
        let (requests, incoming) = channel::<(String, Sender<Reply>)>();
        let (ready, started) = channel::<Result<(), String>>();
        let module_name = name.to_owned();
        std::thread::Builder::new()
            .name("orc-ir-to-clif".into())
            .spawn(move || serve(&module_name, &bitcode, names, &ready, &incoming))
            .map_err(|e| format!("cannot start the translation thread: {e}"))?;
        started
            .recv()
            .map_err(|_| "the translation thread ended at start".to_owned())??;
        Ok(ClifTranslator {
            requests: Mutex::new(requests),
        })
    }

    /// Translates the function defined as `function` (its name in the
    /// prepared module).
    pub fn translate(&self, function: &str) -> Reply {
        let gone = || Untranslatable {
            function: function.to_owned(),
            reason: "the translation thread has ended".into(),
        };
        let (reply, answer) = channel();
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((function.to_owned(), reply))
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

/// The translation thread: parses, reports readiness, then answers
/// requests until every sender is gone.
fn serve(
    name: &str,
    bitcode: &[u8],
    mut names: Box<dyn ClifNames + Send>,
    ready: &Sender<Result<(), String>>,
    incoming: &Receiver<(String, Sender<Reply>)>,
) {
    let context = Context::create();
    let buffer = MemoryBuffer::create_from_memory_range_copy(bitcode, name);
    let module = match context.create_module_from_ir(buffer) {
        Ok(module) => module,
        Err(e) => {
            let _ = ready.send(Err(e.to_string().trim_end().to_owned()));
            return;
        }
    };
    let m = module.as_mut_ptr();
    let info = module_info(m);
    let isa = verifier_isa();
    let functions: HashMap<String, ll::LLVMValueRef> = ll::functions(m)
        .into_iter()
        .filter(|&f| {
            ll::is_declaration(f) == 0
                && ll::linkage(f) != ll::LLVMLinkage::LLVMAvailableExternallyLinkage
        })
        .map(|f| (ll::name(f), f))
        .collect();
    if ready.send(Ok(())).is_err() {
        return;
    }
    while let Ok((function, reply)) = incoming.recv() {
        let result = match functions.get(&function) {
            Some(&f) => translate_one(f, &function, &mut *names, &info, isa.as_deref()),
            None => Err(Untranslatable {
                function: function.clone(),
                reason: format!("the module defines no function '{function}'"),
            }),
        };
        let _ = reply.send(result);
    }
    drop(module);
}

//! A log of tier changes (`--trace-tier`): every compile, every function
//! turning hot, every promotion queued and installed, every frame entering
//! tier-1 code by on-stack replacement, every body released.
//!
//! A [`TierTrace`] is shared by whoever makes the changes: the compile
//! layers' observers report compiles, the [`TierManager`](super::TierManager)
//! hot and queued functions and failed promotions, [`TieredFunctions`]
//! (super::TieredFunctions) installed promotions and released bodies, and
//! OSR entries call [`TierTrace::osr_probe`] (a host function the tiered
//! layer's entries call first when tracing is on). With no trace set
//! nothing is reported and nothing is paid but a `None` check off the hot
//! paths: no JIT'd code changes.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::CodeTier;

/// One tier change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TierEvent {
    /// A compile layer compiled `symbol` (a tiered function's body
    /// `f$t0`/`f$t1.2`, an OSR entry, or untiered code such as a top-level
    /// expression).
    Compiled {
        /// The symbol compiled.
        symbol: String,
        /// The compiler.
        tier: CodeTier,
        /// Time spent in the compiler for it.
        time: Duration,
    },
    /// A tier-0 body's count reached what the policy calls hot.
    Hot {
        /// The body symbol.
        body: String,
        /// Its count (entries plus loop back-edges).
        count: u64,
    },
    /// A function was queued for a tier-1 compile.
    Queued {
        /// The body symbol.
        body: String,
    },
    /// A function's stub now leads to its tier-1 body.
    Promoted {
        /// The function (its stub's symbol).
        function: String,
        /// The version promoted.
        version: u32,
        /// Its share of the batch's compile-and-link time.
        compile_time: Duration,
    },
    /// A tier-1 compile failed; the function stays in tier 0.
    PromotionFailed {
        /// The body symbol.
        body: String,
        /// Why.
        error: String,
    },
    /// A tier-0 frame moved into the tier-1 code of its loop.
    OsrEntered {
        /// The function.
        function: String,
        /// The loop (its OSR slot index).
        loop_index: u32,
    },
    /// A body no stub leads to any more (replaced by tier-up or by a
    /// redefinition) was released: its memory goes once no thread can be
    /// running it. `kept` when the layer keeps replaced bodies instead.
    Released {
        /// The function.
        function: String,
        /// The body's tier.
        tier: CodeTier,
        /// The body's version.
        version: u32,
        /// Kept mapped (see `TieredFunctions::keep_replaced_bodies`).
        kept: bool,
    },
}

fn tier_number(tier: CodeTier) -> u8 {
    match tier {
        CodeTier::Zero => 0,
        CodeTier::One => 1,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl fmt::Display for TierEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TierEvent::Compiled { symbol, tier, time } => write!(
                f,
                "compiled {symbol} (tier {}, {:.3} ms)",
                tier_number(*tier),
                ms(*time)
            ),
            TierEvent::Hot { body, count } => write!(f, "hot {body} (count {count})"),
            TierEvent::Queued { body } => write!(f, "queued {body} for tier 1"),
            TierEvent::Promoted {
                function,
                version,
                compile_time,
            } => write!(
                f,
                "promoted {function} v{version} to tier 1 ({:.3} ms to compile and link)",
                ms(*compile_time)
            ),
            TierEvent::PromotionFailed { body, error } => {
                write!(f, "promotion of {body} failed, it stays in tier 0: {error}")
            }
            TierEvent::OsrEntered {
                function,
                loop_index,
            } => write!(
                f,
                "OSR entered {function} loop {loop_index} (tier 0 -> tier 1)"
            ),
            TierEvent::Released {
                function,
                tier,
                version,
                kept,
            } => write!(
                f,
                "{} {function} v{version} tier {} body",
                if *kept {
                    "superseded (kept)"
                } else {
                    "released"
                },
                tier_number(*tier)
            ),
        }
    }
}

/// Receives each event with the time since the trace was made.
type Sink = Box<dyn Fn(Duration, &TierEvent) + Send + Sync>;

/// Names a function by its index (for OSR probes).
pub type FunctionNames = Arc<dyn Fn(u32) -> Option<String> + Send + Sync>;

/// Where tier changes go, with the time they happened (since the trace
/// was made). Cheap to share (`Arc`).
pub struct TierTrace {
    start: Instant,
    sink: Sink,
    /// What [`Self::osr_probe`] names: a function's name by its index.
    names: std::sync::RwLock<Option<FunctionNames>>,
}

impl TierTrace {
    /// A trace calling `sink` with each event and the time since now.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use orc_core::{TierEvent, TierTrace};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let trace = TierTrace::new(move |_, e| log.lock().unwrap().push(e.to_string()));
    /// trace.emit(TierEvent::Queued { body: "fib$t0".into() });
    /// assert_eq!(*seen.lock().unwrap(), ["queued fib$t0 for tier 1"]);
    /// ```
    pub fn new(sink: impl Fn(Duration, &TierEvent) + Send + Sync + 'static) -> Arc<TierTrace> {
        Arc::new(TierTrace {
            start: Instant::now(),
            sink: Box::new(sink),
            names: std::sync::RwLock::new(None),
        })
    }

    /// A trace printing `orc: tier +MILLISECONDS ms: EVENT` lines on
    /// standard error (what `--trace-tier` shows).
    pub fn to_stderr() -> Arc<TierTrace> {
        TierTrace::new(|at, event| eprintln!("orc: tier {:>10.3} ms: {event}", ms(at)))
    }

    /// Reports `event`.
    pub fn emit(&self, event: TierEvent) {
        (self.sink)(self.start.elapsed(), &event);
    }

    /// Sets how [`Self::osr_probe`] turns a function index into its name.
    pub fn set_function_names(&self, names: FunctionNames) {
        *self.names.write().unwrap_or_else(|e| e.into_inner()) = Some(names);
    }

    /// The host function OSR entries call first when tracing:
    /// `probe(trace, function_index, loop_index)`, with `trace` the address
    /// of a `TierTrace` kept alive as long as the code that calls it.
    pub fn osr_probe() -> extern "C" fn(u64, u64, u64) {
        osr_probe
    }
}

impl fmt::Debug for TierTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TierTrace").finish_non_exhaustive()
    }
}

extern "C" fn osr_probe(trace: u64, function: u64, loop_index: u64) {
    // In an executor the trace is the controller's, out of reach.
    if crate::remote::controller().is_some() {
        return;
    }
    // Nothing may unwind into JIT'd code.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the tiered layer passes the address of a `TierTrace` it
        // holds (in an `Arc`) for as long as code calling this can run.
        let trace = unsafe { &*(trace as *const TierTrace) };
        let names = trace
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let function = names
            .and_then(|n| n(function as u32))
            .unwrap_or_else(|| format!("function #{function}"));
        trace.emit(TierEvent::OsrEntered {
            function,
            loop_index: loop_index as u32,
        });
    });
}

//! The REPL-friendly front end: items parsed and checked one at a time from
//! a stream of text, with state kept across them.
//!
//! A [`ReplSession`] remembers the operators and functions (name and arity)
//! accepted so far and numbers top-level expressions on from the last one.
//! Unlike a file, a session accepts redefining a function (later calls use
//! the new body), as the tutorial's REPL does, but not with a different
//! number of parameters: code compiled against the old arity would pass the
//! wrong number of arguments. A function must be known before it is used
//! (the one being defined counts, for recursion); later definitions cannot
//! satisfy earlier uses because the earlier item has already run.
//!
//! Input is line-oriented: [`ReplSession::feed`] takes a chunk (typically a
//! line) and returns every item it completes. An item that is cut off by the
//! end of the chunk (`def f(x)`, `1 +`, `if x then 1`) stays buffered until
//! more text arrives; an item that is complete where the chunk ends is taken
//! as finished. After an error the rest of the buffered text is dropped.
//! Positions count from the first chunk, so line numbers keep increasing.

use crate::ast::Item;
use crate::check::{check_expr, check_params, conflicting_arity};
use crate::diag::{Diagnostic, Span};
use crate::parser::{OperatorTable, Parser};
use std::collections::HashMap;

/// What one fed chunk produced, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplEvent {
    /// An item that parsed and passed the checks; its functions and
    /// operators are now known to the session.
    Item(Item),
    /// An error; the item it belongs to was rejected.
    Error(Diagnostic),
}

/// Parser and checker state carried across REPL inputs.
#[derive(Debug, Clone)]
pub struct ReplSession {
    ops: OperatorTable,
    functions: HashMap<String, (usize, Span)>,
    next_anon: usize,
    /// Text of an unfinished item, and where it starts.
    pending: String,
    pending_start: Span,
}

impl Default for ReplSession {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplSession {
    /// A session knowing only the built-in operators and no functions.
    pub fn new() -> Self {
        ReplSession {
            ops: OperatorTable::new(),
            functions: HashMap::new(),
            next_anon: 0,
            pending: String::new(),
            pending_start: Span::new(1, 1),
        }
    }

    /// Whether an unfinished item is waiting for more input (a REPL can show
    /// a continuation prompt).
    pub fn has_pending_input(&self) -> bool {
        !self.pending.trim().is_empty()
    }

    /// Drops any unfinished item.
    pub fn discard_pending_input(&mut self) {
        self.advance_past_pending();
    }

    /// The arity of a function the session knows (defined or `extern`).
    pub fn function_arity(&self, name: &str) -> Option<usize> {
        self.functions.get(name).map(|&(arity, _)| arity)
    }

    /// Declares a function the host provides (for example `printd`), as if
    /// by `extern`.
    pub fn declare_host_function(&mut self, name: &str, arity: usize) {
        self.functions
            .entry(name.to_owned())
            .or_insert((arity, Span::new(1, 1)));
    }

    /// Appends `text` to the input and returns the items it completes (and
    /// the errors found), in order. An item cut off by the end of `text`
    /// stays buffered.
    pub fn feed(&mut self, text: &str) -> Vec<ReplEvent> {
        self.pending.push_str(text);
        self.run(false)
    }

    /// Ends the input: an unfinished item becomes an error.
    pub fn finish(&mut self) -> Vec<ReplEvent> {
        self.run(true)
    }

    fn advance_past_pending(&mut self) {
        let mut end = self.pending_start;
        for c in self.pending.chars() {
            if c == '\n' {
                end = Span::new(end.line.saturating_add(1), 1);
            } else {
                end.col = end.col.saturating_add(1);
            }
        }
        self.pending.clear();
        self.pending_start = end;
    }

    fn run(&mut self, at_end: bool) -> Vec<ReplEvent> {
        let text = std::mem::take(&mut self.pending);
        let mut events = Vec::new();
        let mut parser = match Parser::new(&text, self.pending_start, &mut self.ops, self.next_anon)
        {
            Ok(parser) => parser,
            Err(err) => {
                events.push(ReplEvent::Error(err.diag));
                self.pending = text;
                self.advance_past_pending();
                return events;
            }
        };
        loop {
            if let Err(err) = parser.skip_semicolons() {
                events.push(ReplEvent::Error(err.diag));
                break;
            }
            let (item_start, item_offset) = (parser.position(), parser.offset());
            match parser.parse_item() {
                Ok(None) => {
                    self.pending_start = parser.position();
                    self.next_anon = parser.next_anon();
                    return events;
                }
                Ok(Some(item)) => {
                    let diags = check_item(&self.functions, &item);
                    if diags.is_empty() {
                        commit(&mut self.functions, parser.ops, &item);
                        events.push(ReplEvent::Item(item));
                    } else {
                        events.extend(diags.into_iter().map(ReplEvent::Error));
                    }
                }
                Err(err) if err.at_eof && !at_end => {
                    self.next_anon = parser.next_anon();
                    self.pending = text[item_offset..].to_owned();
                    self.pending_start = item_start;
                    return events;
                }
                Err(err) => {
                    events.push(ReplEvent::Error(err.diag));
                    break;
                }
            }
        }
        // After an error, skip whatever is left of the text.
        self.next_anon = parser.next_anon();
        self.pending = text;
        self.advance_past_pending();
        events
    }
}

/// Checks one item against the functions known so far.
fn check_item(functions: &HashMap<String, (usize, Span)>, item: &Item) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let (func, proto) = match item {
        Item::Def(func) => (Some(func), &func.proto),
        Item::Extern(proto) => (None, proto),
        Item::Expr(func) => (Some(func), &func.proto),
    };
    check_params(proto, &mut diags);
    if let Some(&(arity, span)) = functions.get(&proto.name) {
        if arity != proto.arity() {
            diags.push(conflicting_arity(proto, arity, span));
        }
    }
    if let Some(func) = func {
        // The function being defined is visible in its own body.
        let lookup = |name: &str| {
            if name == proto.name {
                Some(proto.arity())
            } else {
                functions.get(name).map(|&(arity, _)| arity)
            }
        };
        let mut scope: Vec<&str> = proto.params.iter().map(|p| p.name.as_str()).collect();
        check_expr(&func.body, &mut scope, &lookup, &mut diags);
    }
    diags.sort_by_key(Diagnostic::span);
    diags
}

/// Records an accepted item's function and operator.
fn commit(functions: &mut HashMap<String, (usize, Span)>, ops: &mut OperatorTable, item: &Item) {
    let proto = match item {
        Item::Def(func) => &func.proto,
        Item::Extern(proto) => proto,
        Item::Expr(_) => return,
    };
    functions.insert(proto.name.clone(), (proto.arity(), proto.span));
    ops.define(proto);
}

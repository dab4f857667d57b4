//! Name mapping: which symbol a CLIF function defines and which symbol a
//! reference to an external name binds to.
//!
//! A function named `%foo` (a test-case name) defines the symbol `foo`; a
//! function named `u0:3` (a user name) defines the symbol `u0:3`. A call
//! or a `symbol` global value names its target the same way, so calls
//! between functions of a file, and to host or process symbols such as
//! `%putchar`, bind by these symbols. Library calls keep Cranelift's own
//! names (`ceilf`, `memcpy`, ...).

use cranelift_codegen::ir::{ExternalName, Function, UserExternalName, UserFuncName};

/// The symbol a function called `name` defines.
pub fn function_symbol(name: &UserFuncName) -> String {
    match name {
        UserFuncName::User(user) => user_symbol(user),
        UserFuncName::Testcase(tc) => String::from_utf8_lossy(tc.raw()).into_owned(),
    }
}

/// The symbol of a user name `u{namespace}:{index}`.
pub fn user_symbol(name: &UserExternalName) -> String {
    format!("u{}:{}", name.namespace, name.index)
}

/// The symbol `name`, used in `func`, refers to; `None` for names that
/// are not symbols (Cranelift's known symbols, such as the ELF TLS
/// descriptor).
pub fn external_symbol(name: &ExternalName, func: &Function) -> Option<ExternalTarget> {
    match name {
        ExternalName::User(r) => func
            .params
            .user_named_funcs()
            .get(*r)
            .map(|user| ExternalTarget::Symbol(user_symbol(user))),
        ExternalName::TestCase(tc) => Some(ExternalTarget::Symbol(
            String::from_utf8_lossy(tc.raw()).into_owned(),
        )),
        ExternalName::LibCall(_) => Some(ExternalTarget::LibCall),
        ExternalName::KnownSymbol(_) => None,
    }
}

/// What an external name binds to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalTarget {
    /// A symbol, by name.
    Symbol(String),
    /// A Cranelift library call: the compiler names it.
    LibCall,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_reader::parse_functions;

    #[test]
    fn test_case_and_user_names_map_to_symbols() {
        let funcs = parse_functions(
            "function u0:3() system_v {\n\
                 sig0 = () system_v\n\
                 fn0 = %putchar sig0\n\
                 fn1 = u2:7 sig0\n\
             block0:\n\
                 call fn0()\n\
                 call fn1()\n\
                 return\n\
             }\n\
             function %main() system_v {\n\
             block0:\n\
                 return\n\
             }",
        )
        .unwrap();
        assert_eq!(function_symbol(&funcs[0].name), "u0:3");
        assert_eq!(function_symbol(&funcs[1].name), "main");
        let f = &funcs[0];
        let targets: Vec<_> = f
            .dfg
            .ext_funcs
            .values()
            .map(|e| external_symbol(&e.name, f))
            .collect();
        assert_eq!(
            targets,
            vec![
                Some(ExternalTarget::Symbol("putchar".into())),
                Some(ExternalTarget::Symbol("u2:7".into()))
            ]
        );
    }
}

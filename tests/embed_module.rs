//! Modules: code that can be unloaded. Removal takes the symbols away and
//! frees the memory (the trap registry, which the linker updates when it
//! unmaps an object, no longer knows the code).

mod embed_common;

use embed_common::{jit, parse_one, TIERS};
use orc::{Error, Tier};

const INC: &str = "function %inc(i64) -> i64 {\nblock0(v0: i64):\n    v1 = iconst.i64 1\n    v2 = iadd v0, v1\n    return v2\n}\n";

#[test]
fn removal_frees_code_and_symbols() -> Result<(), Error> {
    for tier in TIERS {
        let jit = jit(tier);
        let module = jit.module()?;
        module.add_function("inc", parse_one(INC))?;
        let inc = module.function::<(i64,), i64>("inc")?;
        assert_eq!(inc.call((41,))?, 42);
        let addr = inc.address();
        let code = orc::core::trap::code_info(addr).expect("registered while loaded");
        assert_eq!(code.function.as_deref(), Some("inc"));
        module.remove()?;
        jit.reclaimer().collect();
        assert!(
            orc::core::trap::code_info(addr).is_none(),
            "tier {tier}: the code is still mapped"
        );
        assert!(matches!(
            jit.bodies_dylib().lookup_symbol("inc"),
            Err(orc::core::Error::SymbolsNotFound { .. })
        ));
        assert!(matches!(inc.call((1,)), Err(Error::ModuleRemoved { .. })));
    }
    Ok(())
}

#[test]
fn dropping_a_module_removes_it_and_others_stay() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    let keep = jit.module()?;
    keep.add_function("keep", parse_one(&INC.replace("%inc", "%keep")))?;
    let kept = keep.function::<(i64,), i64>("keep")?;
    let addr;
    {
        let module = jit.module()?;
        module.add_function("gone", parse_one(&INC.replace("%inc", "%gone")))?;
        addr = module.function::<(i64,), i64>("gone")?.address();
        assert!(orc::core::trap::code_info(addr).is_some());
    }
    jit.reclaimer().collect();
    assert!(orc::core::trap::code_info(addr).is_none());
    assert_eq!(kept.call((1,))?, 2);
    // A new module may define the name again.
    let again = jit.module()?;
    again.add_function("gone", parse_one(&INC.replace("%inc", "%gone")))?;
    assert_eq!(again.function::<(i64,), i64>("gone")?.call((2,))?, 3);
    Ok(())
}

#[test]
fn a_call_in_flight_keeps_the_code_until_it_returns() -> Result<(), Error> {
    // A host function called from the module's code removes the module:
    // the code it returns to must still be mapped.
    use std::sync::Mutex;
    static MODULE: Mutex<Option<orc::Module>> = Mutex::new(None);
    extern "C" fn unload() -> i64 {
        let module = MODULE.lock().unwrap_or_else(|p| p.into_inner()).take();
        i64::from(module.is_some_and(|m| m.remove().is_ok()))
    }
    let jit = jit(Tier::Zero);
    jit.define_host_function("unload", unload as extern "C" fn() -> i64)?;
    let module = jit.module()?;
    module.add_function(
        "self_unload",
        parse_one(
            "function %self_unload(i64) -> i64 {\n    sig0 = () -> i64 system_v\n    fn0 = %unload sig0\nblock0(v0: i64):\n    v1 = call fn0()\n    v2 = iadd v0, v1\n    return v2\n}\n",
        ),
    )?;
    let f = module.function::<(i64,), i64>("self_unload")?;
    let addr = f.address();
    *MODULE.lock().unwrap_or_else(|p| p.into_inner()) = Some(module);
    assert_eq!(f.call((10,))?, 11);
    jit.reclaimer().collect();
    assert!(orc::core::trap::code_info(addr).is_none());
    assert!(matches!(f.call((1,)), Err(Error::ModuleRemoved { .. })));
    Ok(())
}

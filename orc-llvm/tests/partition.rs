//! The coarse lazy split: local functions called only from one unit are
//! members of it (no unit of their own, even when mutually recursive), the
//! rest keep their own unit (and take their own exclusive helpers), and a
//! unit with members is a valid module defining them as internal functions.

use orc_llvm::inkwell::context::Context;
use orc_llvm::inkwell::module::Linkage;
use orc_llvm::partition::{self, PlannedFunction};

const IR: &str = r#"
@fp = global ptr @taken

define internal i32 @helper(i32 %x) {
  %y = call i32 @leaf(i32 %x)
  ret i32 %y
}

define internal i32 @leaf(i32 %x) {
  %y = add i32 %x, 1
  ret i32 %y
}

define internal i32 @shared(i32 %x) {
  %y = call i32 @shared_leaf(i32 %x)
  ret i32 %y
}

define internal i32 @shared_leaf(i32 %x) {
  ret i32 %x
}

define internal i32 @dead_a(i32 %x) {
  %r = call i32 @dead_b(i32 %x)
  ret i32 %r
}

define internal i32 @dead_b(i32 %x) {
  %r = call i32 @dead_a(i32 %x)
  ret i32 %r
}

define internal i32 @taken(i32 %x) {
  ret i32 %x
}

define internal i32 @even(i32 %x) {
  %r = call i32 @odd(i32 %x)
  ret i32 %r
}

define internal i32 @odd(i32 %x) {
  %r = call i32 @even(i32 %x)
  %s = call i32 @shared(i32 %r)
  ret i32 %s
}

define internal i32 @self_rec(i32 %x) {
  %r = call i32 @self_rec(i32 %x)
  ret i32 %r
}

define i32 @other(i32 %x) {
  %a = call i32 @shared(i32 %x)
  %b = call i32 @taken(i32 %a)
  ret i32 %b
}

define i32 @main() {
  %a = call i32 @helper(i32 1)
  %b = call i32 @shared(i32 %a)
  %c = call i32 @even(i32 %b)
  %d = call i32 @self_rec(i32 %c)
  ret i32 %d
}
"#;

fn unit<'a>(functions: &'a [PlannedFunction], source_name: &str) -> Option<&'a PlannedFunction> {
    functions.iter().find(|f| f.source_name == source_name)
}

#[test]
fn static_helpers_called_from_one_unit_have_no_unit() {
    let plan = partition::plan("coarse.ll", IR.as_bytes(), "t").unwrap();
    let units: Vec<&str> = plan
        .functions
        .iter()
        .map(|f| f.source_name.as_str())
        .collect();
    // `helper`, `leaf` (called only by `helper`), the mutually recursive
    // pair and `self_rec` join `main`; `shared` (called from two units, one
    // of them through the member `odd`) keeps its own unit, which its own
    // helper joins; so do `taken` (address taken) and the dead pair.
    assert_eq!(
        units,
        ["shared", "dead_a", "dead_b", "taken", "other", "main"]
    );
    let main = unit(&plan.functions, "main").unwrap();
    let members: Vec<&str> = main
        .members
        .iter()
        .map(|m| m.rsplit('.').next().unwrap())
        .collect();
    assert_eq!(members, ["helper", "leaf", "even", "odd", "self_rec"]);
    assert!(main.members.iter().all(|m| m.starts_with("__orc_local.t.")));
    let shared = unit(&plan.functions, "shared").unwrap();
    assert_eq!(shared.members.len(), 1);
    assert!(shared.members[0].ends_with(".shared_leaf"));
    for f in &plan.functions {
        if !["main", "shared"].contains(&f.source_name.as_str()) {
            assert!(f.members.is_empty(), "{} has members", f.source_name);
        }
    }

    let context = Context::create();
    let module = partition::function_unit(
        &context,
        "coarse.ll:main",
        &plan.bitcode,
        &main.name,
        &main.members,
        "main$t1",
    )
    .unwrap();
    module.verify().unwrap();
    let body = module.get_function("main$t1").unwrap();
    assert_eq!(body.get_linkage(), Linkage::External);
    for m in &main.members {
        let f = module.get_function(m).unwrap();
        assert!(f.count_basic_blocks() > 0, "{m} is not defined");
        assert_eq!(f.get_linkage(), Linkage::Internal);
    }
    let shared = &unit(&plan.functions, "shared").unwrap().name;
    assert_eq!(module.get_function(shared).unwrap().count_basic_blocks(), 0);
}

#[test]
fn a_missing_member_is_an_error() {
    let plan = partition::plan("coarse.ll", IR.as_bytes(), "t").unwrap();
    let main = unit(&plan.functions, "main").unwrap();
    let context = Context::create();
    let err = partition::function_unit(
        &context,
        "coarse.ll:main",
        &plan.bitcode,
        &main.name,
        &["nope".to_owned()],
        "main$t1",
    )
    .unwrap_err();
    assert!(err.contains("does not define function 'nope'"), "{err}");
}

//! The coarse lazy split: local functions called only from one unit are
//! members of it (no unit of their own, even when mutually recursive), the
//! rest keep their own unit (and take their own exclusive helpers), and a
//! unit with members is a valid module defining them as internal functions.
//! The plan's reference graph (sizes, callees, function tables) and the
//! speculation that compiles small reachable callees with their caller.

use orc_llvm::inkwell::context::Context;
use orc_llvm::inkwell::module::Linkage;
use orc_llvm::inkwell::values::AnyValue;
use orc_llvm::partition::{self, PlannedFunction, SpeculationLimits, UnitFunction};

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

/// `main` calls `mid` (which calls `leaf`) and `big`, reads a table of
/// function pointers through another global, and calls through an alias;
/// `unreached` is referred to by nothing.
fn references_ir() -> String {
    let adds: String = (0..300)
        .map(|i| format!("  %v{} = add i32 %v{i}, 1\n", i + 1))
        .collect();
    format!(
        r#"
@ops = internal constant [2 x ptr] [ptr @op_a, ptr @op_b]
@holder = internal global {{ ptr }} {{ ptr @ops }}
@alias_f = alias i32 (i32), ptr @aliased
@text = private constant [3 x i8] c"hi\00"

define internal i32 @op_a(i32 %x) {{
  %r = add i32 %x, 1
  ret i32 %r
}}

define internal i32 @op_b(i32 %x) {{
  ret i32 %x
}}

define i32 @aliased(i32 %x) {{
  ret i32 %x
}}

define i32 @leaf(i32 %x) {{
  ret i32 %x
}}

define i32 @mid(i32 %x) {{
  %r = call i32 @leaf(i32 %x)
  ret i32 %r
}}

define i32 @big(i32 %v0) {{
{adds}  ret i32 %v300
}}

define i32 @unreached(i32 %x) {{
  ret i32 %x
}}

define i32 @main(i32 %x) {{
  %a = call i32 @mid(i32 %x)
  %b = call i32 @big(i32 %a)
  %t = load ptr, ptr @holder
  %f = load ptr, ptr %t
  %c = call i32 %f(i32 %b)
  %d = call i32 @alias_f(i32 %c)
  %s = load i8, ptr @text
  ret i32 %d
}}
"#
    )
}

fn index(plan: &partition::PartitionPlan, source_name: &str) -> usize {
    plan.functions
        .iter()
        .position(|f| f.source_name == source_name)
        .unwrap()
}

fn names(plan: &partition::PartitionPlan, batch: &[usize]) -> Vec<String> {
    batch
        .iter()
        .map(|&i| plan.functions[i].source_name.clone())
        .collect()
}

#[test]
fn units_know_their_size_callees_and_the_globals_leading_to_functions() {
    let plan = partition::plan("refs.ll", references_ir().as_bytes(), "r").unwrap();
    let f = |n: &str| &plan.functions[index(&plan, n)];
    assert_eq!(f("leaf").size, 1);
    assert_eq!(f("big").size, 301);
    assert_eq!(f("main").size, 8);
    let mut callees = vec![index(&plan, "mid"), index(&plan, "big")];
    callees.sort();
    assert_eq!(f("main").callees, callees);
    assert_eq!(f("mid").callees, [index(&plan, "leaf")]);
    assert_eq!(f("mid").callers, [index(&plan, "main")]);
    assert!(f("main").callers.is_empty());
    assert!(f("leaf").callees.is_empty() && f("leaf").globals.is_empty());
    // `@text` leads to no function: it is not a planned global.
    let mut global_names: Vec<&str> = plan.globals.iter().map(|g| g.name.as_str()).collect();
    global_names.sort();
    assert_eq!(global_names.len(), 3, "{global_names:?}");
    assert!(global_names.contains(&"alias_f"), "{global_names:?}");
    assert!(
        global_names.iter().all(|g| !g.contains("text")),
        "{global_names:?}"
    );
    assert_eq!(f("main").globals.len(), 2, "holder and the alias");
    let ops = plan
        .globals
        .iter()
        .find(|g| g.name.ends_with(".ops"))
        .unwrap();
    let mut op_units = vec![index(&plan, "op_a"), index(&plan, "op_b")];
    op_units.sort();
    assert_eq!(ops.functions, op_units);
}

#[test]
fn speculation_follows_code_and_tables_within_its_limits() {
    let plan = partition::plan("refs.ll", references_ir().as_bytes(), "r").unwrap();
    let main = index(&plan, "main");
    let all = |_: usize| true;
    let batch = plan.speculate(&[main], all, SpeculationLimits::default());
    // Breadth first: main's callees (`big` is too big) and theirs, then
    // what the batch reaches through the globals.
    assert_eq!(
        names(&plan, &batch),
        ["main", "mid", "leaf", "aliased", "op_a", "op_b"]
    );
    assert_eq!(
        names(
            &plan,
            &plan.speculate(&[main], all, SpeculationLimits::NONE)
        ),
        ["main"]
    );
    // What is compiled already is not compiled again, nor followed.
    let mid = index(&plan, "mid");
    let batch = plan.speculate(&[main], |i| i != mid, SpeculationLimits::default());
    assert_eq!(names(&plan, &batch), ["main", "aliased", "op_a", "op_b"]);
    // The total limit counts instructions of the units added (`mid` has
    // two, `leaf` and `aliased` one).
    let three = SpeculationLimits {
        unit_size: 256,
        total_size: 3,
    };
    assert_eq!(
        names(&plan, &plan.speculate(&[main], all, three)),
        ["main", "mid", "leaf"]
    );
    // A unit asked for by compiled code brings what that code refers to:
    // `main` is compiled and calls `mid`, so `main`'s other small callees
    // and tables come along (and `mid`'s own callee).
    let batch = plan.speculate(&[mid], |i| i != main, SpeculationLimits::default());
    assert_eq!(
        names(&plan, &batch),
        ["mid", "leaf", "aliased", "op_a", "op_b"]
    );
    // A big function asked for is compiled; `unreached` never is.
    let big = index(&plan, "big");
    let batch = plan.speculate(&[big, main], all, SpeculationLimits::default());
    assert_eq!(names(&plan, &batch)[..2], ["big", "main"]);
    assert!(!names(&plan, &batch).contains(&"unreached".to_owned()));
}

#[test]
fn several_units_compile_as_one_module() {
    let plan = partition::plan("refs.ll", references_ir().as_bytes(), "r").unwrap();
    let (main, mid) = (
        &plan.functions[index(&plan, "main")],
        &plan.functions[index(&plan, "mid")],
    );
    let context = Context::create();
    let units = [
        UnitFunction {
            function: &main.name,
            members: &main.members,
            body: "main$t1",
        },
        UnitFunction {
            function: &mid.name,
            members: &mid.members,
            body: "mid$t1",
        },
    ];
    let module =
        partition::functions_unit(&context, "refs.ll:main+1", &plan.bitcode, &units).unwrap();
    module.verify().unwrap();
    for body in ["main$t1", "mid$t1"] {
        let f = module.get_function(body).unwrap();
        assert!(f.count_basic_blocks() > 0, "{body}");
        assert_eq!(f.get_linkage(), Linkage::External);
    }
    // `main` calls `mid` by name (its stub), not `mid$t1`.
    let mid_decl = module.get_function("mid").unwrap();
    assert_eq!(mid_decl.count_basic_blocks(), 0);
    assert!(module
        .get_function("leaf")
        .is_some_and(|f| f.count_basic_blocks() == 0));
    let err = partition::functions_unit(&context, "none", &plan.bitcode, &[]).unwrap_err();
    assert!(err.contains("has no function"), "{err}");
}

/// `@interp`'s jump table (block addresses) and the two functions whose
/// code refers to each other's blocks.
const BLOCKS_IR: &str = r#"
@table = constant [2 x ptr] [ptr blockaddress(@interp, %one), ptr blockaddress(@interp, %two)]
@plain = global i32 7

define i32 @interp(i32 %i) {
entry:
  %slot = getelementptr [2 x ptr], ptr @table, i32 0, i32 %i
  %target = load ptr, ptr %slot
  indirectbr ptr %target, [label %one, label %two]
one:
  ret i32 1
two:
  ret i32 2
}

define ptr @peer_a() {
entry:
  br label %here
here:
  ret ptr blockaddress(@peer_b, %there)
}

define ptr @peer_b() {
entry:
  br label %there
there:
  ret ptr blockaddress(@peer_a, %here)
}

define i32 @main() {
  %r = call i32 @interp(i32 1)
  ret i32 %r
}
"#;

#[test]
fn block_address_tables_are_defined_by_their_function_unit() {
    let plan = partition::plan("blocks.ll", BLOCKS_IR.as_bytes(), "b").unwrap();
    let f = |n: &str| &plan.functions[index(&plan, n)];
    assert_eq!(f("interp").data, ["table"]);
    assert!(f("interp").partners.is_empty());
    assert!(f("main").data.is_empty());
    assert_eq!(f("peer_a").partners, [index(&plan, "peer_b")]);
    assert_eq!(f("peer_b").partners, [index(&plan, "peer_a")]);
    // A unit never comes without its partners, even without speculation.
    let batch = plan.speculate(&[index(&plan, "peer_b")], |_| true, SpeculationLimits::NONE);
    assert_eq!(names(&plan, &batch), ["peer_b", "peer_a"]);

    let context = Context::create();
    let unit = |name: &str| {
        let planned = f(name);
        let body = format!("{name}$t1");
        let units = [UnitFunction {
            function: &planned.name,
            members: &planned.members,
            body: &body,
        }];
        let module = partition::functions_unit(&context, name, &plan.bitcode, &units).unwrap();
        module.verify().unwrap();
        module
    };
    // The table is defined with the addresses of the body's blocks...
    let interp = unit("interp");
    let table = interp.get_global("table").unwrap();
    let text = table.print_to_string().to_string();
    assert!(
        text.contains("blockaddress(@\"interp$t1\", %one)")
            && text.contains("blockaddress(@\"interp$t1\", %two)"),
        "{text}"
    );
    // The prepared bitcode holds it encoded, so that reading other units
    // does not read `interp`'s body (LLVM's lazy reader would, for a
    // `blockaddress` in an initializer).
    let buffer = orc_llvm::inkwell::memory_buffer::MemoryBuffer::create_from_memory_range(
        &plan.bitcode,
        "prepared",
    );
    let prepared =
        orc_llvm::inkwell::module::Module::parse_bitcode_from_buffer(&buffer, &context).unwrap();
    let encoded = prepared
        .get_global("table")
        .unwrap()
        .print_to_string()
        .to_string();
    assert!(!encoded.contains("blockaddress"), "{encoded}");
    assert!(
        encoded.contains("getelementptr (i8, ptr @interp, i64 1)"),
        "{encoded}"
    );
    // ... and declared by every other unit and by the data unit.
    let main = unit("main");
    assert!(main.get_global("table").is_none_or(|g| g.is_declaration()));
    let data = partition::globals_unit(&context, "data", &plan.bitcode).unwrap();
    data.verify().unwrap();
    assert!(data.get_global("table").unwrap().is_declaration());
    assert!(!data.get_global("plain").unwrap().is_declaration());
}

#[test]
fn thread_locals_become_emulated_tls_in_both_modes() {
    let ir = r#"
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
@x = thread_local global i32 5
@zero = internal thread_local global [4 x i64] zeroinitializer

define i32 @main() {
  %p = call ptr @llvm.threadlocal.address.p0(ptr @x)
  %v = load i32, ptr %p
  store i64 1, ptr getelementptr ([4 x i64], ptr @zero, i64 0, i64 2)
  ret i32 %v
}
declare ptr @llvm.threadlocal.address.p0(ptr)
"#;
    let plan = partition::plan("tls.ll", ir.as_bytes(), "t").unwrap();
    let whole = plan.whole.as_ref().expect("the eager module is rewritten");
    let context = Context::create();
    for bitcode in [&plan.bitcode, whole] {
        let data = partition::globals_unit(&context, "data", bitcode).unwrap();
        let text = data.print_to_string().to_string();
        assert!(!text.contains("thread_local"), "{text}");
        assert!(
            text.contains("@__emutls_v.x = global { i64, i64, ptr, ptr } { i64 4, i64 4, ptr null, ptr @__emutls_t.x }"),
            "{text}"
        );
        assert!(text.contains("@__emutls_t.x = constant i32 5"), "{text}");
        // Zero-initialized: no template.
        assert!(
            text.contains("{ i64 32, i64 8, ptr null, ptr null }"),
            "{text}"
        );
    }
    let main = &plan.functions[index(&plan, "main")];
    let units = [UnitFunction {
        function: &main.name,
        members: &main.members,
        body: "main$t1",
    }];
    let module = partition::functions_unit(&context, "main", &plan.bitcode, &units).unwrap();
    module.verify().unwrap();
    let text = module.print_to_string().to_string();
    assert_eq!(
        text.matches("call ptr @__emutls_get_address").count(),
        2,
        "{text}"
    );
    assert!(!text.contains("threadlocal.address"), "{text}");
}

#[test]
fn ifuncs_become_functions_calling_their_resolver_once() {
    let ir = r#"
@pick = ifunc i32 (i32), ptr @resolve

define internal i32 @impl(i32 %x) {
  ret i32 %x
}

define internal ptr @resolve() {
  ret ptr @impl
}

define i32 @main() {
  %r = call i32 @pick(i32 3)
  ret i32 %r
}
"#;
    let plan = partition::plan("ifunc.ll", ir.as_bytes(), "i").unwrap();
    assert_eq!(plan.ifuncs, ["pick"]);
    assert!(plan.whole.is_some());
    let pick = &plan.functions[index(&plan, "pick")];
    assert!(pick.exported);
    // The resolver is called only by `pick`: a member of its unit.
    assert_eq!(pick.members.len(), 1, "{:?}", pick.members);
    let context = Context::create();
    let units = [UnitFunction {
        function: &pick.name,
        members: &pick.members,
        body: "pick$t1",
    }];
    let module = partition::functions_unit(&context, "pick", &plan.bitcode, &units).unwrap();
    module.verify().unwrap();
    let text = module.print_to_string().to_string();
    assert!(text.contains("musttail call i32 %"), "{text}");
    assert!(text.contains("load atomic ptr"), "{text}");
}

#[test]
fn a_thread_local_address_in_a_constant_is_refused() {
    let ir = "@x = thread_local global i32 1\n@p = global ptr @x\n";
    let err = partition::plan("bad.ll", ir.as_bytes(), "e").unwrap_err();
    assert!(
        matches!(&err, partition::PartitionError::Unsupported(m)
            if m.starts_with("bad.ll: thread-local variable 'x' has its address in a constant")),
        "{err:?}"
    );
}

#[test]
fn what_exit_handlers_call_runs_at_exit_too() {
    let ir = r#"
@obj = global i32 0
@__dso_handle = external hidden global i8

define i32 @helper_of_dtor(i32 %x) {
  ret i32 %x
}

define void @dtor(ptr %p) {
  %r = call i32 @helper_of_dtor(i32 1)
  ret void
}

define void @thread_dtor(ptr %p) {
  %r = call i32 @only_at_thread_exit(i32 2)
  ret void
}

define i32 @only_at_thread_exit(i32 %x) {
  ret i32 %x
}

define i32 @unrelated(i32 %x) {
  ret i32 %x
}

define i32 @main() {
  %a = call i32 @__cxa_atexit(ptr @dtor, ptr @obj, ptr @__dso_handle)
  %b = call i32 @__cxa_thread_atexit(ptr @thread_dtor, ptr @obj, ptr @__dso_handle)
  %c = call i32 @unrelated(i32 0)
  ret i32 0
}

declare i32 @__cxa_atexit(ptr, ptr, ptr)
declare i32 @__cxa_thread_atexit(ptr, ptr, ptr)
"#;
    let plan = partition::plan("exit.ll", ir.as_bytes(), "x").unwrap();
    let at_exit = |n: &str| plan.functions[index(&plan, n)].runs_at_exit;
    for f in [
        "dtor",
        "helper_of_dtor",
        "thread_dtor",
        "only_at_thread_exit",
    ] {
        assert!(at_exit(f), "{f}");
    }
    for f in ["main", "unrelated"] {
        assert!(!at_exit(f), "{f}");
    }
}

//! Hand-written modules that follow the ABI by hand — or deliberately don't. Used by the
//! runtime's tests and benchmarks; not part of the supported API.

use interstice_abi::{
    ABI_VERSION, Access, Field, ModuleSchema, ReducerSchema, TableSchema, Type, TypeDef, Visibility,
};

/// Where the test modules keep their constants.
pub const SCHEMA_AT: u32 = 4096;
pub const NAME_AT: u32 = 512;
pub const ROW_AT: u32 = 600;
/// Where `peer.hello.hello`, the target of `$call_peer`, is.
pub const REMOTE_AT: u32 = 740;

/// The schema of the test module `probe`: table `items` (id u64 auto_inc pk, v u64) and the
/// reducers named in `reducers`, numbered in that order.
pub fn probe_schema(reducers: &[(&str, Option<Access>)]) -> ModuleSchema {
    let items = TableSchema::builder("items")
        .auto_inc_column("id", Type::U64)
        .column("v", Type::U64)
        .primary_key("id")
        .build()
        .unwrap_or_else(|e| unreachable!("fixed schema: {e}"));
    let secret = TableSchema::builder("secret")
        .column("id", Type::U64)
        .primary_key("id")
        .build()
        .unwrap_or_else(|e| unreachable!("fixed schema: {e}"));
    ModuleSchema {
        abi_version: ABI_VERSION,
        name: "probe".into(),
        version: "0.1.0".into(),
        visibility: Visibility::Private,
        authorities: vec![],
        types: vec![TypeDef::Struct {
            name: "Items".into(),
            fields: vec![Field::new("id", Type::U64), Field::new("v", Type::U64)],
        }],
        tables: vec![items, secret],
        reducers: reducers
            .iter()
            .map(|(name, access)| ReducerSchema {
                name: (*name).into(),
                args: vec![],
                access: access.clone(),
                on: None,
            })
            .collect(),
        queries: vec![],
        nodes: vec![],
    }
}

fn data(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A module with `schema` whose `interstice_reducer` runs `bodies[index]` (WAT instructions
/// leaving an i32 status). `abi_version` lets a test lie about the version.
pub fn module(schema: &ModuleSchema, abi_version: u32, bodies: &[&str]) -> Vec<u8> {
    module_importing(schema, abi_version, "", bodies)
}

/// [`module`] with more imports (WAT `import` forms), e.g. an authority's host calls.
pub fn module_importing(
    schema: &ModuleSchema,
    abi_version: u32,
    imports: &str,
    bodies: &[&str],
) -> Vec<u8> {
    let mut dispatch = String::new();
    for (i, body) in bodies.iter().enumerate() {
        dispatch.push_str(&format!(
            "(if (i32.eq (local.get $index) (i32.const {i})) (then {body} (return)))\n"
        ));
    }
    let row = [0u8; 8]
        .iter()
        .chain(&7u64.to_le_bytes())
        .copied()
        .collect::<Vec<_>>();
    let wat = format!(
        r#"(module
  (import "interstice" "table" (func $table (param i32 i32) (result i32)))
  (import "interstice" "insert" (func $insert (param i32 i32 i32) (result i64)))
  (import "interstice" "set_error" (func $set_error (param i32 i32)))
  (import "interstice" "schedule" (func $schedule (param i32 i32 i64 i32 i32) (result i64)))
  (import "interstice" "now" (func $now (result i64)))
  (import "interstice" "random" (func $random (result i64)))
  (import "interstice" "call_remote" (func $call_remote (param i32 i32 i32 i32) (result i64)))
  {imports}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 32768))
  (data (i32.const {NAME_AT}) "items")
  (data (i32.const 520) "secret")
  (data (i32.const {ROW_AT}) "{row}")
  (data (i32.const 700) "it failed")
  (data (i32.const 720) "ok")
  (data (i32.const {REMOTE_AT}) "peer.hello.hello")
{glue}
  (func (export "interstice_query") (param i32 i32 i32) (result i32) (i32.const 1))
  (func $items (result i32) (call $table (i32.const {NAME_AT}) (i32.const 5)))
  (func $insert_row (result i64) (call $insert (call $items) (i32.const {ROW_AT}) (i32.const 16)))
  ;; Inserts (id: auto, v: value) through a scratch row at 800.
  (func $insert_value (param $v i64) (result i64)
    (i64.store (i32.const 800) (i64.const 0))
    (i64.store (i32.const 808) (local.get $v))
    (call $insert (call $items) (i32.const 800) (i32.const 16)))
  ;; Schedules reducer `ok` after `delay` ms of logical time.
  (func $schedule_ok (param $delay i64) (result i64)
    (call $schedule (i32.const 720) (i32.const 2) (local.get $delay) (i32.const 0) (i32.const 0)))
  ;; Queues a remote call to `peer.hello.hello` with no arguments.
  (func $call_peer (result i64)
    (call $call_remote (i32.const {REMOTE_AT}) (i32.const 16) (i32.const 0) (i32.const 0)))
  (func (export "interstice_reducer") (param $index i32) (param $args i32) (param $len i32) (result i32)
    {dispatch}
    (i32.const 99))
)"#,
        row = data(&row),
        glue = glue(schema, abi_version),
    );
    // The template above is fixed; only numbers and escaped bytes vary, so it always parses.
    wat::parse_str(wat).unwrap_or_default()
}

/// The node of the `call` bench and the `call_profile` example: one worker, memory only, with
/// `probe` installed, whose reducer `empty` does nothing, `insert` inserts one row and
/// `update64` updates row 1 (which it starts with) 64 times, one host call each: the per-row
/// cost of an update inside a reducer.
pub fn call_probe_node() -> std::sync::Arc<crate::Node> {
    let node = crate::Node::open(crate::NodeConfig {
        workers: 1,
        ..crate::NodeConfig::default()
    })
    .unwrap_or_else(|e| unreachable!("an in-memory node opens: {e}"));
    let schema = probe_schema(&[("empty", None), ("insert", None), ("update64", None)]);
    // The table handle at 1004 and the loop counter at 1000, since the bodies have no locals;
    // the row (1, i) is written at 800.
    let update64 = "(i32.store (i32.const 1004) (call $items))
        (i32.store (i32.const 1000) (i32.const 0))
        (loop $again
          (i64.store (i32.const 800) (i64.const 1))
          (i64.store (i32.const 808) (i64.extend_i32_u (i32.load (i32.const 1000))))
          (drop (call $update (i32.load (i32.const 1004)) (i32.const 800) (i32.const 16)))
          (i32.store (i32.const 1000) (i32.add (i32.load (i32.const 1000)) (i32.const 1)))
          (br_if $again (i32.lt_u (i32.load (i32.const 1000)) (i32.const 64))))
        (i32.const 0)";
    let wasm = module_importing(
        &schema,
        ABI_VERSION,
        r#"(import "interstice" "update" (func $update (param i32 i32 i32) (result i64)))"#,
        &[
            "(i32.const 0)",
            "(drop (call $insert_value (i64.const 7))) (i32.const 0)",
            update64,
        ],
    );
    node.install(&wasm)
        .unwrap_or_else(|e| unreachable!("the probe module installs: {e}"));
    // Row 1, for `update64`.
    let _ = node.call_reducer("probe", "insert", &[]);
    node
}

/// A module manager (it holds the `Module` authority) whose `authorize` lets anyone publish
/// and nobody remove: it answers `true` exactly when the action is seven bytes long.
pub fn manager_module(name: &str) -> Vec<u8> {
    use interstice_abi::{Authority, QuerySchema};
    let schema = ModuleSchema {
        abi_version: ABI_VERSION,
        name: name.into(),
        version: "0.1.0".into(),
        visibility: Visibility::Private,
        authorities: vec![Authority::Module],
        types: vec![],
        tables: vec![],
        reducers: vec![],
        queries: vec![QuerySchema {
            name: interstice_abi::MANAGER_QUERY.into(),
            args: vec![
                Field::new("action", Type::String),
                Field::new("module", Type::String),
                Field::new("admin", Type::Bool),
            ],
            returns: Type::Bool,
            access: None,
        }],
        nodes: vec![],
    };
    let wat = format!(
        r#"(module
  (import "interstice" "return_value" (func $return_value (param i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 32768))
  (data (i32.const 100) "\01\00")
{glue}
  (func (export "interstice_reducer") (param i32 i32 i32) (result i32) (i32.const 1))
  ;; The arguments start with the action's length: 7 for "publish".
  (func (export "interstice_query") (param $index i32) (param $args i32) (param $len i32) (result i32)
    (if (i32.eq (i32.load8_u (local.get $args)) (i32.const 7))
      (then (call $return_value (i32.const 100) (i32.const 1)))
      (else (call $return_value (i32.const 101) (i32.const 1))))
    (i32.const 0))
)"#,
        glue = glue(&schema, ABI_VERSION),
    );
    wat::parse_str(wat).unwrap_or_default()
}

/// What every test module exports besides its functions: the schema at [`SCHEMA_AT`], the ABI
/// version, and a bump allocator over the global `$heap`.
fn glue(schema: &ModuleSchema, abi_version: u32) -> String {
    let bytes = schema.to_bytes();
    format!(
        r#"  (data (i32.const {SCHEMA_AT}) "{schema}")
  (func (export "interstice_abi_version") (result i32) (i32.const {abi_version}))
  (func (export "interstice_schema") (result i64)
    (i64.or (i64.shl (i64.const {SCHEMA_AT}) (i64.const 32)) (i64.const {len})))
  (func (export "interstice_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $len)))
    (local.get $p))"#,
        schema = data(&bytes),
        len = bytes.len(),
    )
}

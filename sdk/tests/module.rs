//! A whole module declared with the macros, checked natively: the registration exports build a
//! schema that validates and says what the source says, the generated encodings match the ABI
//! codec byte for byte, and dispatch decodes arguments and reports failures.
//!
//! Nothing here calls the host (natively the host calls panic), so the reducers under test
//! record what they received in a `static`.

use std::sync::Mutex;

use interstice_sdk::__private::abi::{
    self, ABI_VERSION, Access, Event, Field, IndexKind, Persistence, Type, TypeDef, TypeRegistry,
    Value, Visibility,
};
use interstice_sdk::__private::{dispatch_query, dispatch_reducer, schema};
use interstice_sdk::*;

interstice_module!(visibility: Public, authorities: [Gpu, Input]);

#[interstice_type]
#[derive(Clone, Debug, PartialEq)]
pub enum Mood {
    Happy,
    Sad(String),
    Other { level: i64, note: Option<String> },
}

#[interstice_type]
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    x: i64,
    y: f32,
}

#[interstice_type]
#[derive(Clone, Debug, PartialEq)]
pub struct Pair(u8, String);

#[interstice_type]
#[derive(Clone, Debug, PartialEq)]
pub struct Marker;

#[interstice_type]
#[derive(Clone, Debug, PartialEq)]
pub enum Tree {
    Leaf(i32),
    Node(Box<Tree>, Box<Tree>),
}

#[table(public, stateful)]
#[derive(Clone, Debug, PartialEq)]
pub struct Items {
    #[primary_key(auto_inc)]
    id: u64,
    #[index(hash, unique)]
    email: String,
    #[index(btree)]
    created_at: i64,
    mood: Mood,
    path: Vec<Point>,
    blob: Vec<u8>,
}

#[table(name = "audit_log", ephemeral)]
pub struct AuditEntry {
    #[primary_key]
    seq: u32,
    text: String,
}

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn seen(what: String) {
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).push(what);
}

#[reducer(reads(items), writes(audit_log), calls(other.audit))]
fn echo(_ctx: ReducerContext, point: Point, mood: Mood, pair: Pair) -> Result<(), String> {
    if mood == Mood::Sad("fail".into()) {
        return Err("echo refuses to be sad".into());
    }
    seen(format!("echo {point:?} {mood:?} {pair:?}"));
    Ok(())
}

#[reducer]
fn plain(_ctx: ReducerContext, _marker: Marker, tree: Tree) {
    seen(format!("plain {tree:?}"));
}

#[reducer(on = "init")]
fn on_init(_ctx: ReducerContext) {}

#[reducer(on = "connect")]
fn on_connect(_ctx: ReducerContext, node_id: String) {
    seen(format!("connect {node_id}"));
}

#[reducer(on = "interstice-sdk.items.insert", writes(audit_log))]
fn on_item(_ctx: ReducerContext, row: Items) {
    seen(format!("item {}", row.id));
}

#[reducer(on = "interstice-sdk.items.update")]
fn on_item_update(_ctx: ReducerContext, _old: Items, _new: Items) {}

#[reducer(on = "bank.accounts.delete")]
fn on_foreign_delete(_ctx: ReducerContext, _row: Vec<u8>) {}

#[query]
fn mirror(_ctx: QueryContext, points: Vec<Point>, tag: Option<Pair>) -> Vec<Point> {
    let _ = tag;
    points
}

#[query(reads(items), calls(other.lookup))]
fn checked(_ctx: QueryContext, n: u32) -> Result<u32, String> {
    if n == 0 {
        Err("n must be positive".into())
    } else {
        Ok(n * 2)
    }
}

fn register_all() {
    for register in [
        __interstice_register_type_Mood,
        __interstice_register_type_Point,
        __interstice_register_type_Pair,
        __interstice_register_type_Marker,
        __interstice_register_type_Tree,
        __interstice_register_table_items,
        __interstice_register_table_audit_log,
        __interstice_register_reducer_echo,
        __interstice_register_reducer_plain,
        __interstice_register_reducer_on_init,
        __interstice_register_reducer_on_connect,
        __interstice_register_reducer_on_item,
        __interstice_register_reducer_on_item_update,
        __interstice_register_reducer_on_foreign_delete,
        __interstice_register_query_mirror,
        __interstice_register_query_checked,
    ] {
        // Twice: the host may call a registration export again; it must not duplicate.
        register();
        register();
    }
}

fn module() -> abi::ModuleSchema {
    register_all();
    schema(&__INTERSTICE_MODULE)
}

fn reducer_index(name: &str) -> i32 {
    let schema = module();
    schema
        .reducers
        .iter()
        .position(|r| r.name == name)
        .expect("registered reducer") as i32
}

fn args(encode: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out);
    out
}

#[test]
fn the_schema_validates_and_matches_the_source() {
    let schema = module();
    let registry = schema.validate(ABI_VERSION).unwrap();
    assert_eq!(schema.name, "interstice-sdk");
    assert_eq!(schema.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(schema.visibility, Visibility::Public);
    assert_eq!(
        schema.authorities,
        [abi::Authority::Gpu, abi::Authority::Input]
    );

    let names = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
    let reducers: Vec<String> = schema.reducers.iter().map(|r| r.name.clone()).collect();
    assert_eq!(
        reducers,
        names(vec![
            "echo",
            "on_connect",
            "on_foreign_delete",
            "on_init",
            "on_item",
            "on_item_update",
            "plain"
        ]),
        "sorted by name: the index the host calls"
    );
    let queries: Vec<&str> = schema.queries.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(queries, ["checked", "mirror"]);
    let types: Vec<&str> = schema.types.iter().map(TypeDef::name).collect();
    assert_eq!(
        types,
        [
            "AuditEntry",
            "Items",
            "Marker",
            "Mood",
            "Pair",
            "Point",
            "Tree"
        ],
        "each type once, sorted"
    );

    let echo = &schema.reducers[0];
    assert_eq!(
        echo.access,
        Some(Access {
            reads: vec!["items".into()],
            writes: vec!["audit_log".into()],
            calls: vec!["other.audit".into()],
        })
    );
    assert_eq!(
        echo.args,
        [
            Field::new("point", Type::Named("Point".into())),
            Field::new("mood", Type::Named("Mood".into())),
            Field::new("pair", Type::Named("Pair".into())),
        ]
    );
    let by_name = |n: &str| schema.reducers.iter().find(|r| r.name == n).unwrap();
    assert_eq!(
        by_name("plain").access,
        None,
        "no declaration: all own tables"
    );
    assert_eq!(by_name("on_init").on, Some(Event::Init));
    assert_eq!(
        by_name("on_item").on.as_ref().map(ToString::to_string),
        Some("interstice-sdk.items.insert".into())
    );
    assert_eq!(
        by_name("on_foreign_delete").args,
        [Field::new("_row", Type::Bytes)]
    );
    assert_eq!(schema.queries[0].returns, Type::U32);
    assert_eq!(
        schema.queries[0].access.as_ref().map(|a| &a.calls),
        Some(&vec!["other.lookup".to_owned()])
    );
    assert_eq!(
        schema.queries[1].returns,
        Type::List(Box::new(Type::Named("Point".into())))
    );

    let items = schema.table("items").unwrap();
    assert_eq!(items.primary_key, "id");
    assert!(items.columns[0].auto_inc);
    assert_eq!(items.columns[5].ty, Type::Bytes);
    assert_eq!(items.persistence, Persistence::Stateful);
    assert_eq!(items.visibility, Visibility::Public);
    assert_eq!(
        items
            .indexes
            .iter()
            .map(|i| (i.column.as_str(), i.kind, i.unique))
            .collect::<Vec<_>>(),
        [
            ("email", IndexKind::Hash, true),
            ("created_at", IndexKind::BTree, false)
        ]
    );
    let audit = schema.table("audit_log").unwrap();
    assert_eq!(audit.persistence, Persistence::Ephemeral);
    assert_eq!(audit.visibility, Visibility::Private);
    assert_eq!(schema.row_type_of(items), Some(Type::Named("Items".into())));
    assert!(registry.get("Tree").is_ok());

    let bytes = schema.to_bytes();
    assert_eq!(abi::ModuleSchema::from_bytes(&bytes).unwrap(), schema);
    assert_eq!(<Items as Table>::NAME, "items");
    assert_eq!(<AuditEntry as Table>::NAME, "audit_log");
}

/// The typed encoding of `value` equals the ABI codec's encoding of `expected`, and the ABI
/// codec decodes it back to `expected` with the registry the type itself describes.
fn check_bytes<T: IntersticeType + PartialEq + std::fmt::Debug>(value: T, expected: Value) {
    let bytes = abi::to_bytes(&value);
    assert_eq!(bytes, abi::encode(&expected), "{value:?}");
    let mut defs = abi::TypeDefs::new();
    defs.collect::<T>();
    let registry = TypeRegistry::new(defs.into_sorted()).expect("valid type definitions");
    let decoded = abi::decode(&bytes, &T::ty(), &registry).expect("the ABI codec decodes it");
    assert_eq!(decoded, expected);
    let back = abi::from_bytes::<T>(&bytes).expect("the typed decoder decodes it");
    assert_eq!(back, value);
}

#[test]
fn generated_encodings_match_the_abi_codec_byte_for_byte() {
    let s = |s: &str| Value::String(s.into());
    check_bytes(
        Mood::Happy,
        Value::Enum {
            variant: 0,
            fields: vec![],
        },
    );
    check_bytes(
        Mood::Sad("rain".into()),
        Value::Enum {
            variant: 1,
            fields: vec![s("rain")],
        },
    );
    check_bytes(
        Mood::Other {
            level: -3,
            note: Some("x".into()),
        },
        Value::Enum {
            variant: 2,
            fields: vec![Value::I64(-3), Value::Option(Some(Box::new(s("x"))))],
        },
    );
    check_bytes(
        Point { x: 7, y: 0.5 },
        Value::Struct(vec![Value::I64(7), Value::F32(0.5)]),
    );
    check_bytes(
        Pair(9, "p".into()),
        Value::Struct(vec![Value::U8(9), s("p")]),
    );
    check_bytes(Marker, Value::Struct(vec![]));
    check_bytes(
        Tree::Node(Box::new(Tree::Leaf(1)), Box::new(Tree::Leaf(-1))),
        Value::Enum {
            variant: 1,
            fields: vec![
                Value::Enum {
                    variant: 0,
                    fields: vec![Value::I32(1)],
                },
                Value::Enum {
                    variant: 0,
                    fields: vec![Value::I32(-1)],
                },
            ],
        },
    );
    check_bytes(
        Items {
            id: 1,
            email: "a@b".into(),
            created_at: 99,
            mood: Mood::Happy,
            path: vec![Point { x: 1, y: 2.0 }],
            blob: vec![1, 2],
        },
        Value::Struct(vec![
            Value::U64(1),
            s("a@b"),
            Value::I64(99),
            Value::Enum {
                variant: 0,
                fields: vec![],
            },
            Value::List(vec![Value::Struct(vec![Value::I64(1), Value::F32(2.0)])]),
            Value::Bytes(vec![1, 2]),
        ]),
    );
    // A tag past the last variant, and a recursive type nested past the limit.
    assert!(abi::from_bytes::<Mood>(&[3]).is_err());
    let mut deep = vec![1u8; 200];
    deep.extend(0i32.to_le_bytes());
    assert!(abi::from_bytes::<Tree>(&deep).is_err());
}

#[test]
fn dispatch_decodes_arguments_and_reports_failures() {
    let point = Point { x: -1, y: 1.5 };
    let good = args(|out| {
        point.encode(out);
        Mood::Happy.encode(out);
        Pair(1, "one".into()).encode(out);
    });
    let echo = reducer_index("echo");
    dispatch_reducer(echo, &good).unwrap();
    assert!(
        SEEN.lock()
            .unwrap()
            .iter()
            .any(|s| s == "echo Point { x: -1, y: 1.5 } Happy Pair(1, \"one\")")
    );

    let err = dispatch_reducer(echo, &good[..good.len() - 1]).unwrap_err();
    assert!(
        err.contains("`echo`") && err.contains("argument `pair`"),
        "{err}"
    );
    let mut trailing = good.clone();
    trailing.push(0);
    let err = dispatch_reducer(echo, &trailing).unwrap_err();
    assert!(err.contains("unexpected bytes"), "{err}");

    let sad = args(|out| {
        point.encode(out);
        Mood::Sad("fail".into()).encode(out);
        Pair(1, "one".into()).encode(out);
    });
    assert_eq!(
        dispatch_reducer(echo, &sad).unwrap_err(),
        "echo refuses to be sad"
    );

    let err = dispatch_reducer(99, &[]).unwrap_err();
    assert!(err.contains("no reducer number 99"), "{err}");

    let connect = reducer_index("on_connect");
    dispatch_reducer(connect, &abi::to_bytes(&"peer-1".to_owned())).unwrap();
    assert!(SEEN.lock().unwrap().iter().any(|s| s == "connect peer-1"));
}

#[test]
fn queries_return_their_encoded_value_or_their_error() {
    let schema = module();
    let mirror = schema
        .queries
        .iter()
        .position(|q| q.name == "mirror")
        .unwrap() as i32;
    let checked = schema
        .queries
        .iter()
        .position(|q| q.name == "checked")
        .unwrap() as i32;
    let points = vec![Point { x: 1, y: 2.0 }, Point { x: 3, y: 4.0 }];
    let input = args(|out| {
        points.encode(out);
        None::<Pair>.encode(out);
    });
    assert_eq!(
        dispatch_query(mirror, &input).unwrap(),
        abi::to_bytes(&points)
    );
    assert_eq!(
        dispatch_query(checked, &abi::to_bytes(&21u32)).unwrap(),
        abi::to_bytes(&42u32)
    );
    assert_eq!(
        dispatch_query(checked, &abi::to_bytes(&0u32)).unwrap_err(),
        "n must be positive"
    );
}

//! `bindings add`, and modules whose bindings have types of the same name.

use crate::support::{
    Home, arg, conflicting_twins_wasm, free_port, hello_wasm, twins_wasm, workspace,
};

#[test]
fn bindings_add_writes_the_public_schema_that_modules_caller_is_bound_with() {
    let home = Home::new();
    home.create("a");
    let _a = home.start("a", &[]);
    home.ok(&["publish", "a", arg(hello_wasm())]);
    let project = tempfile::tempdir().unwrap();
    let err = home.fails(2, &["bindings", "add", "node", "a", arg(project.path())]);
    assert!(err.contains("not a module crate"), "{err}");
    std::fs::write(
        project.path().join("Cargo.toml"),
        "[package]\nname = \"m\"\n",
    )
    .unwrap();
    let out = home.ok(&[
        "bindings",
        "add",
        "node",
        "a",
        arg(project.path()),
        "--name",
        "hello_node",
    ]);
    assert!(
        out.contains("bindings::hello_node::hello::hello(&ctx, name: String)"),
        "{out}"
    );
    assert!(
        out.contains("on = \"hello_node.hello.greetings.insert\""),
        "{out}"
    );
    let node =
        std::fs::read_to_string(project.path().join("src/bindings/node_hello_node.toml")).unwrap();
    let binding: interstice_abi::NodeBinding = toml::from_str(&node).unwrap();
    assert_eq!(binding.name, "hello_node");
    assert_eq!(binding.modules.len(), 1);
    let hello = &binding.modules[0];
    // The public view: private tables and subscribed reducers are not part of it.
    assert!(hello.table("greetings").is_some());
    assert!(hello.table("stats").is_none());
    assert!(hello.reducers.iter().all(|r| r.on.is_none()));
    // What modules/caller (and modules/twins, as `left`) were bound with, modulo the address
    // and the node id.
    for (module, file) in [
        ("caller", "node_hello_node.toml"),
        ("twins", "node_left.toml"),
    ] {
        let checked_in: interstice_abi::NodeBinding = toml::from_str(
            &std::fs::read_to_string(
                workspace()
                    .join("modules")
                    .join(module)
                    .join("src/bindings")
                    .join(file),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            checked_in.modules, binding.modules,
            "regenerate modules/{module}'s binding"
        );
    }

    home.ok(&[
        "bindings",
        "add",
        "module",
        "a",
        "hello",
        arg(project.path()),
    ]);
    let module: interstice_abi::ModuleSchema = toml::from_str(
        &std::fs::read_to_string(project.path().join("src/bindings/hello.toml")).unwrap(),
    )
    .unwrap();
    assert_eq!(&module, hello);
    let err = home.fails(
        3,
        &[
            "bindings",
            "add",
            "module",
            "a",
            "nope",
            arg(project.path()),
        ],
    );
    assert!(err.contains("no public module `nope`"), "{err}");
}

/// modules/twins binds two nodes whose `hello` modules both have a `Greetings` type (with
/// other fields), and has a `Greetings` table of its own: it installs, its schema tells the
/// three apart, and rows from the left node arrive in left's type.
#[test]
fn two_bindings_with_a_type_of_the_same_name_work_in_one_module() {
    let home = Home::new();
    let left = home.create("left");
    home.create("t");
    let _left = home.start("left", &[]);
    home.ok(&["publish", "left", arg(hello_wasm())]);
    let nowhere = format!("127.0.0.1:{}", free_port());
    let _t = home.start(
        "t",
        &[
            "--peer",
            &format!("left={left}"),
            "--peer",
            &format!("right={nowhere}"),
        ],
    );
    home.ok(&["publish", "t", arg(twins_wasm())]);

    let schema = home.json(0, &["node", "schema", "t"]);
    let twins = &schema["modules"][0];
    let types: Vec<&str> = twins["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Struct"]["name"].as_str().unwrap())
        .collect();
    for name in ["Greetings", "left.hello.Greetings", "right.hello.Greetings"] {
        assert!(types.contains(&name), "{name} in {types:?}");
    }
    let summary = home.ok(&["node", "schema", "t"]);
    assert!(
        summary.contains("reducer from_left(row: left.hello.Greetings)"),
        "{summary}"
    );

    home.ok(&["call_reducer", "t", "twins", "greet_both", "Ada"]);
    let received = ["call_query", "t", "twins", "received", "--json"];
    let out = home.until(&received, |out| out.contains("Ada"));
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["origin"], "left");
    assert_eq!(rows[0]["name"], "Ada");

    // `Option<String>`: a JSON string loses its quotes, a plain word is taken as it is.
    home.ok(&["call_reducer", "t", "twins", "note", "\"hi\""]);
    home.ok(&["call_reducer", "t", "twins", "note", "there"]);
    home.ok(&["call_reducer", "t", "twins", "note", "null"]);
    let out = home.ok(&received);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let here: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["origin"] == "here")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(here, ["hi", "there", "(nobody)"]);
}

/// A module whose SDK panics while describing itself (two local types named `Greetings`) is
/// refused with the SDK's own message, which it hands to the host through `set_error` before
/// trapping (checked here with a bare wasmtime too).
#[test]
fn a_module_that_panics_describing_itself_is_refused_and_says_why_through_set_error() {
    let home = Home::new();
    home.create("a");
    let _a = home.start("a", &[]);
    let err = home.fails(3, &["publish", "a", arg(conflicting_twins_wasm())]);
    assert!(err.contains("describing itself"), "{err}");
    assert!(
        err.contains("defines two different types named `Greetings`"),
        "{err}"
    );
    assert!(!err.contains("wasm backtrace"), "{err}");

    let wasm = std::fs::read(conflicting_twins_wasm()).unwrap();
    let (trapped, message) = describe(&wasm);
    assert!(trapped, "the description should trap");
    let message = message.expect("the SDK calls set_error before trapping");
    assert!(
        message.contains("panicked while describing the module"),
        "{message}"
    );
    assert!(
        message.contains("module `twins` defines two different types named `Greetings`"),
        "{message}"
    );
    // Without the conflict, nothing is reported.
    let (trapped, message) = describe(&std::fs::read(twins_wasm()).unwrap());
    assert!(!trapped && message.is_none(), "{message:?}");
}

/// Runs a module's registration exports and `interstice_schema` with every host call but
/// `set_error` trapping; returns whether it trapped and what `set_error` received.
fn describe(wasm: &[u8]) -> (bool, Option<String>) {
    use wasmtime::{Caller, Engine, ExternType, Linker, Module, Store};
    let engine = Engine::default();
    let module = Module::new(&engine, wasm).unwrap();
    let mut linker: Linker<Option<String>> = Linker::new(&engine);
    for import in module.imports() {
        match (import.name(), import.ty()) {
            ("set_error", _) => {
                linker
                    .func_wrap(
                        import.module(),
                        "set_error",
                        |mut caller: Caller<'_, Option<String>>, ptr: i32, len: i32| {
                            let memory = caller
                                .get_export("memory")
                                .and_then(|e| e.into_memory())
                                .unwrap();
                            let (ptr, len) = (ptr as usize, len as usize);
                            let bytes = memory.data(&caller)[ptr..ptr + len].to_vec();
                            *caller.data_mut() = Some(String::from_utf8(bytes).unwrap());
                        },
                    )
                    .unwrap();
            }
            (name, ExternType::Func(ty)) => {
                let name = name.to_owned();
                linker
                    .func_new(import.module(), &name.clone(), ty, move |_, _, _| {
                        Err(wasmtime::format_err!("host call `{name}` in a description"))
                    })
                    .unwrap();
            }
            (name, other) => panic!("unexpected import {name}: {other:?}"),
        }
    }
    let mut store = Store::new(&engine, None);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let mut registrations: Vec<String> = module
        .exports()
        .map(|e| e.name().to_owned())
        .filter(|n| n.starts_with(interstice_abi::host::EXPORT_REGISTER_PREFIX))
        .collect();
    registrations.sort();
    let mut trapped = false;
    for name in &registrations {
        let f = instance.get_typed_func::<(), ()>(&mut store, name).unwrap();
        trapped |= f.call(&mut store, ()).is_err();
    }
    if !trapped {
        let schema = instance
            .get_typed_func::<(), i64>(&mut store, interstice_abi::host::EXPORT_SCHEMA)
            .unwrap();
        trapped = schema.call(&mut store, ()).is_err();
    }
    (trapped, store.into_data())
}

//! What the macros expand to call: the guest-side registry, schema assembly, dispatch of
//! reducers and queries, and the exports of `interstice_module!`. Not a public API.
//!
//! Wasm has no link-time registry, so every item exports `__interstice_register_<kind>_<name>`;
//! the host calls them all after instantiating (`interstice_abi::host`), each adds its
//! descriptor here, and `interstice_schema` assembles the [`ModuleSchema`]. Reducers and queries
//! are numbered by their position in that schema, sorted by name, which is also the order kept
//! here, so `interstice_reducer(index, ..)` is an index into [`Registry::reducers`].

use std::sync::{Mutex, MutexGuard};

use interstice_abi::{
    ABI_VERSION, Authority, DecodeError, IntersticeType, ModuleSchema, QuerySchema, Reader,
    ReducerSchema, TableSchema, TypeDefs, Visibility,
};

use crate::host_calls;
use crate::table::Table;

pub use interstice_abi as abi;

/// What `interstice_module!` knows about the module.
#[derive(Clone, Copy, Debug)]
pub struct ModuleInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub visibility: Visibility,
    pub authorities: &'static [Authority],
    /// The nodes of `src/bindings/node_*.toml`: `(name, address)`.
    pub nodes: &'static [(&'static str, &'static str)],
}

type ReducerFn = fn(&[u8]) -> Result<(), String>;
type QueryFn = fn(&[u8]) -> Result<Vec<u8>, String>;

struct Registry {
    tables: Vec<TableSchema>,
    types: TypeDefs,
    /// Sorted by name: the index is the number the host calls it by.
    reducers: Vec<(ReducerSchema, ReducerFn)>,
    queries: Vec<(QuerySchema, QueryFn)>,
    /// The last schema handed to the host; it must stay put until the host has copied it.
    schema_bytes: Vec<u8>,
}

// Wasm modules are single-threaded; the mutex only makes the static sound on native targets.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    tables: Vec::new(),
    types: TypeDefs::new(),
    reducers: Vec::new(),
    queries: Vec::new(),
    schema_bytes: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while registering traps the instance on wasm; natively, keep what is there.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Inserts `item` into `items` sorted by name, replacing an item of the same name, so calling
/// a registration export twice is harmless.
fn insert_sorted<T>(items: &mut Vec<T>, item: T, name: impl Fn(&T) -> &str) {
    match items.binary_search_by(|i| name(i).cmp(name(&item))) {
        Ok(at) => items[at] = item,
        Err(at) => items.insert(at, item),
    }
}

pub fn register_type<T: IntersticeType>() {
    install_panic_hook();
    let _current = Current::enter(|| format!("registering type `{}`", T::ty()));
    registry().types.collect::<T>();
}

pub fn register_table<T: Table>() {
    install_panic_hook();
    let schema = T::schema();
    let _current = Current::enter(|| format!("registering table `{}`", schema.name));
    let mut registry = registry();
    registry.types.collect::<T>();
    insert_sorted(&mut registry.tables, schema, |t| &t.name);
}

pub fn register_reducer(schema: ReducerSchema, types: fn(&mut TypeDefs), call: ReducerFn) {
    install_panic_hook();
    let _current = Current::enter(|| format!("registering reducer `{}`", schema.name));
    let mut registry = registry();
    types(&mut registry.types);
    insert_sorted(&mut registry.reducers, (schema, call), |(s, _)| &s.name);
}

pub fn register_query(schema: QuerySchema, types: fn(&mut TypeDefs), call: QueryFn) {
    install_panic_hook();
    let _current = Current::enter(|| format!("registering query `{}`", schema.name));
    let mut registry = registry();
    types(&mut registry.types);
    insert_sorted(&mut registry.queries, (schema, call), |(s, _)| &s.name);
}

/// The schema of everything registered so far.
///
/// # Panics
///
/// When two different types share a name; the schema could not say which one a column means.
pub fn schema(info: &ModuleInfo) -> ModuleSchema {
    let registry = registry();
    if let Some(name) = registry.types.conflicts().first() {
        panic!(
            "module `{}` defines two different types named `{name}`; rename one of them \
             (the schema identifies types by name; types from bindings carry the binding's \
             name, e.g. `hello_node.hello.Greetings`, and never clash with the module's own)",
            info.name
        );
    }
    ModuleSchema {
        abi_version: ABI_VERSION,
        name: info.name.to_owned(),
        version: info.version.to_owned(),
        visibility: info.visibility,
        authorities: info.authorities.to_vec(),
        types: registry.types.clone().into_sorted(),
        tables: registry.tables.clone(),
        reducers: registry.reducers.iter().map(|(s, _)| s.clone()).collect(),
        queries: registry.queries.iter().map(|(s, _)| s.clone()).collect(),
        nodes: info
            .nodes
            .iter()
            .map(|(name, address)| interstice_abi::NodeDependency {
                name: (*name).to_owned(),
                address: (*address).to_owned(),
            })
            .collect(),
    }
}

/// `interstice_schema`: the postcard bytes of [`schema`], as `ptr << 32 | len`.
pub fn export_schema(info: &ModuleInfo) -> i64 {
    install_panic_hook();
    let bytes = {
        let _current = Current::enter(|| "describing the module".to_owned());
        schema(info).to_bytes()
    };
    let mut registry = registry();
    registry.schema_bytes = bytes;
    interstice_abi::host::pack_ptr_len(
        registry.schema_bytes.as_ptr() as usize as u32,
        registry.schema_bytes.len() as u32,
    )
}

pub fn abi_version() -> i32 {
    ABI_VERSION as i32
}

/// `interstice_alloc`: `len` zeroed bytes for the host to write arguments into, owned by the
/// next `interstice_reducer`/`interstice_query` call that receives them. `0` when out of memory.
pub fn export_alloc(len: i32) -> i32 {
    let Ok(len) = usize::try_from(len) else {
        return 0;
    };
    let mut bytes = Vec::new();
    if bytes.try_reserve_exact(len).is_err() {
        return 0;
    }
    bytes.resize(len, 0u8);
    let bytes: Box<[u8]> = bytes.into_boxed_slice();
    // A zero-length box has a dangling (non-null, never dereferenced) pointer: not `0`.
    Box::into_raw(bytes) as *mut u8 as usize as i32
}

/// Takes back the argument bytes `export_alloc` handed out.
///
/// # Safety
///
/// `ptr` and `len` must come from one `interstice_alloc(len)` call, and be passed only once.
unsafe fn take_args(ptr: i32, len: i32) -> Box<[u8]> {
    let len = usize::try_from(len).unwrap_or(0);
    if len == 0 {
        return Box::default();
    }
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len);
    // SAFETY: per the contract, this is the box `export_alloc` leaked, with its length.
    unsafe { Box::from_raw(slice) }
}

/// Runs reducer number `index` on encoded arguments.
pub fn dispatch_reducer(index: i32, args: &[u8]) -> Result<(), String> {
    // Copy the function out: the reducer may call back into this instance (nested calls), and
    // must not find the registry locked.
    let (at, call) = {
        let registry = registry();
        let entry = usize::try_from(index)
            .ok()
            .and_then(|i| Some((i, registry.reducers.get(i)?)));
        match entry {
            Some((at, (_, call))) => (at, *call),
            None => return Err(unknown("reducer", index, registry.reducers.len())),
        }
    };
    let _current = Current::running(Running::Reducer(at));
    call(args)
}

/// Runs query number `index` on encoded arguments and returns its encoded result.
pub fn dispatch_query(index: i32, args: &[u8]) -> Result<Vec<u8>, String> {
    let (at, call) = {
        let registry = registry();
        let entry = usize::try_from(index)
            .ok()
            .and_then(|i| Some((i, registry.queries.get(i)?)));
        match entry {
            Some((at, (_, call))) => (at, *call),
            None => return Err(unknown("query", index, registry.queries.len())),
        }
    };
    let _current = Current::running(Running::Query(at));
    call(args)
}

fn unknown(kind: &str, index: i32, registered: usize) -> String {
    format!(
        "no {kind} number {index}: this instance has {registered} registered; the host must call \
         every `__interstice_register_*` export after instantiating, then number {kind}s by \
         their position in the schema"
    )
}

/// `interstice_reducer(index, ptr, len)`: `0` on success, `1` after `set_error` otherwise.
///
/// # Safety
///
/// `ptr`/`len` come from `interstice_alloc`, as the ABI requires of the host.
pub unsafe fn export_reducer(index: i32, ptr: i32, len: i32) -> i32 {
    install_panic_hook();
    // SAFETY: forwarded from the caller.
    let args = unsafe { take_args(ptr, len) };
    match dispatch_reducer(index, &args) {
        Ok(()) => 0,
        Err(message) => {
            host_calls::set_error(&message);
            1
        }
    }
}

/// `interstice_query(index, ptr, len)`: hands the result over with `return_value` and returns
/// `0`, or `set_error` and `1`.
///
/// # Safety
///
/// `ptr`/`len` come from `interstice_alloc`, as the ABI requires of the host.
pub unsafe fn export_query(index: i32, ptr: i32, len: i32) -> i32 {
    install_panic_hook();
    // SAFETY: forwarded from the caller.
    let args = unsafe { take_args(ptr, len) };
    match dispatch_query(index, &args) {
        Ok(bytes) => {
            host_calls::return_value(&bytes);
            0
        }
        Err(message) => {
            host_calls::set_error(&message);
            1
        }
    }
}

/// Decodes argument `arg` of `function`; the error names both.
pub fn decode_arg<T: IntersticeType>(
    reader: &mut Reader<'_>,
    function: &str,
    arg: &str,
) -> Result<T, String> {
    T::decode(reader).map_err(|e| bad_args(function, &format!("argument `{arg}`: {e}")))
}

/// Fails when bytes are left after the last argument.
pub fn finish_args(reader: &Reader<'_>, function: &str) -> Result<(), String> {
    reader
        .finish()
        .map_err(|e: DecodeError| bad_args(function, &e.to_string()))
}

fn bad_args(function: &str, detail: &str) -> String {
    format!(
        "`{function}` received arguments that do not match its signature ({detail}); encode them \
         as its arguments after the context, one after another"
    )
}

/// What a reducer may return: `()` or `Result<(), E>` with a displayable `E`.
#[diagnostic::on_unimplemented(
    message = "a reducer returns `()` or `Result<(), E>`, not `{Self}`",
    label = "change the return type",
    note = "reducers change tables; to hand a value back, write a `#[query]`"
)]
pub trait ReducerReturn {
    fn into_result(self) -> Result<(), String>;
}

impl ReducerReturn for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display> ReducerReturn for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// Column types `auto_inc` accepts.
#[diagnostic::on_unimplemented(
    message = "`auto_inc` needs an integer column, not `{Self}`",
    label = "not an integer type",
    note = "use u8, u16, u32, u64, i8, i16, i32 or i64, or remove `auto_inc`"
)]
pub trait AutoInc {}

impl AutoInc for u8 {}
impl AutoInc for u16 {}
impl AutoInc for u32 {}
impl AutoInc for u64 {}
impl AutoInc for i8 {}
impl AutoInc for i16 {}
impl AutoInc for i32 {}
impl AutoInc for i64 {}

/// The argument type of `connect` and `disconnect` subscribers.
#[diagnostic::on_unimplemented(
    message = "`connect` and `disconnect` reducers receive the peer's node id as `String`, not `{Self}`",
    label = "write `node_id: String`"
)]
pub trait NodeId {}

impl NodeId for String {}

// The argument types of platform hooks, checked at the argument's span (one trait per hook:
// the diagnostic attribute takes only literal strings).

#[diagnostic::on_unimplemented(
    message = "`render` hooks receive `FrameInfo`, not `{Self}`",
    label = "write `frame: FrameInfo` (interstice_sdk::platform::FrameInfo)"
)]
pub trait RenderArg {}
impl RenderArg for crate::platform::FrameInfo {}
/// Named (not called) by `#[reducer(on = "render")]` at the argument's type.
pub fn assert_render_arg<T: RenderArg + ?Sized>() {}

#[diagnostic::on_unimplemented(
    message = "`input` hooks receive `InputEvent`, not `{Self}`",
    label = "write `event: InputEvent` (interstice_sdk::platform::InputEvent)"
)]
pub trait InputArg {}
impl InputArg for crate::platform::InputEvent {}
/// Named (not called) by `#[reducer(on = "input")]` at the argument's type.
pub fn assert_input_arg<T: InputArg + ?Sized>() {}

#[diagnostic::on_unimplemented(
    message = "`audio_output` hooks receive `AudioBlock`, not `{Self}`",
    label = "write `block: AudioBlock` (interstice_sdk::platform::AudioBlock)"
)]
pub trait AudioOutputArg {}
impl AudioOutputArg for crate::platform::AudioBlock {}
/// Named (not called) by `#[reducer(on = "audio_output")]` at the argument's type.
pub fn assert_audio_output_arg<T: AudioOutputArg + ?Sized>() {}

#[diagnostic::on_unimplemented(
    message = "`audio_input` hooks receive `AudioCapture`, not `{Self}`",
    label = "write `capture: AudioCapture` (interstice_sdk::platform::AudioCapture)"
)]
pub trait AudioInputArg {}
impl AudioInputArg for crate::platform::AudioCapture {}
/// Named (not called) by `#[reducer(on = "audio_input")]` at the argument's type.
pub fn assert_audio_input_arg<T: AudioInputArg + ?Sized>() {}

#[diagnostic::on_unimplemented(
    message = "`file_changed` hooks receive `FileChange`, not `{Self}`",
    label = "write `change: FileChange` (interstice_sdk::platform::FileChange)"
)]
pub trait FileChangedArg {}
impl FileChangedArg for crate::platform::FileChange {}
/// Named (not called) by `#[reducer(on = "file_changed")]` at the argument's type.
pub fn assert_file_changed_arg<T: FileChangedArg + ?Sized>() {}

/// An integer type: what a table is partitioned by, and what a partition declaration's
/// arguments are.
#[diagnostic::on_unimplemented(
    message = "partitions are numbered by integers, not `{Self}`",
    label = "use u8, u16, u32, u64, i8, i16, i32 or i64"
)]
pub trait PartitionKey {}
impl PartitionKey for u8 {}
impl PartitionKey for u16 {}
impl PartitionKey for u32 {}
impl PartitionKey for u64 {}
impl PartitionKey for i8 {}
impl PartitionKey for i16 {}
impl PartitionKey for i32 {}
impl PartitionKey for i64 {}

/// Named (not called) by `#[table(partition_by = ..)]` and by partition declarations.
pub fn assert_partition_key<T: PartitionKey + ?Sized>() {}

/// Named (not called) by `#[table]` at the column's type, so the bound is checked there.
pub fn assert_auto_inc<T: AutoInc + ?Sized>() {}

/// Named (not called) by `#[reducer(on = "connect")]` at the argument's type.
pub fn assert_node_id<T: NodeId + ?Sized>() {}

std::thread_local! {
    static CURRENT: std::cell::RefCell<Vec<Doing>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What the module is doing, for a panic's message (only wasm's panic hook reads it).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
enum Doing {
    /// Registering, describing itself...: rare, so said in words up front.
    Said(String),
    /// Running a function of the registry, named only if it panics: a call builds no text.
    Running(Running),
}

#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
enum Running {
    Reducer(usize),
    Query(usize),
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
impl Doing {
    fn describe(&self) -> String {
        let running = match self {
            Doing::Said(what) => return what.clone(),
            Doing::Running(running) => running,
        };
        // A panic inside the registry's lock is one while registering (`Said`); should it be
        // held anyway, the number still says which function it was.
        let registry = REGISTRY.try_lock().ok();
        let registry = registry.as_deref();
        let (kind, at, name) = match *running {
            Running::Reducer(at) => {
                let schema = registry.and_then(|r| r.reducers.get(at));
                ("reducer", at, schema.map(|(s, _)| s.name.clone()))
            }
            Running::Query(at) => {
                let schema = registry.and_then(|r| r.queries.get(at));
                ("query", at, schema.map(|(s, _)| s.name.clone()))
            }
        };
        match name {
            Some(name) => format!("running {kind} `{name}`"),
            None => format!("running {kind} number {at}"),
        }
    }
}

/// Remembers what the module is doing (running a reducer, describing itself...), so a panic
/// can say so.
struct Current;

impl Current {
    /// Natively nothing reads it (the panic hook is wasm's), so the text is not even built.
    fn enter(what: impl FnOnce() -> String) -> Current {
        if cfg!(target_arch = "wasm32") {
            CURRENT.with(|c| c.borrow_mut().push(Doing::Said(what())));
        }
        Current
    }

    fn running(running: Running) -> Current {
        if cfg!(target_arch = "wasm32") {
            CURRENT.with(|c| c.borrow_mut().push(Doing::Running(running)));
        }
        Current
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        if cfg!(target_arch = "wasm32") {
            CURRENT.with(|c| c.borrow_mut().pop());
        }
    }
}

/// On wasm, reports a panic's message through `set_error` before the trap, so the node can say
/// why the reducer, the query, the registration or the description of the module failed.
/// Every export that runs module code installs it first. Natively the default hook stays
/// (tests want ordinary panics).
pub fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let message = info.payload_as_str().unwrap_or("(no message)");
                let place = info
                    .location()
                    .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                let doing = CURRENT
                    .with(|c| {
                        c.borrow()
                            .last()
                            .map(|doing| format!(" while {}", doing.describe()))
                    })
                    .unwrap_or_default();
                host_calls::set_error(&format!("panicked{doing}{place}: {message}"));
            }));
        });
    }
}

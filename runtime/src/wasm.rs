//! The wasmtime host: engine settings, instantiation and the host calls of `interstice_abi::host`.
//!
//! Everything a module hands over — pointers, lengths, names, encoded values — is checked here
//! before it is used. A check that fails records *why* in [`HostState::failure`] and traps the
//! guest, so the invocation fails with that reason and nothing it wrote commits.

use std::sync::Arc;

use interstice_abi::host::{self, ErrorCode, LogLevel};
use interstice_abi::{ABI_VERSION, ModuleSchema};
use wasmtime::{
    Caller, Config, Engine, Extern, Instance, Linker, Memory, Module, ResourceLimiter, Store, Trap,
    TypedFunc,
};

use crate::error::{CallFailure, LoadError};

/// Limits that apply to every module instance.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Fuel for one reducer or query call, nested calls included. By default, 1 000 000 000
    /// (about a second of wasm on a current core).
    pub fuel_per_call: u64,
    /// Linear memory of one instance. By default, 64 MiB.
    pub memory_bytes: usize,
    /// Largest argument, row or result that may cross the boundary. By default, 16 MiB.
    pub max_message_bytes: usize,
    /// Wasm stack. By default, 512 KiB.
    pub max_stack_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_per_call: 1_000_000_000,
            memory_bytes: 64 << 20,
            max_message_bytes: 16 << 20,
            max_stack_bytes: 512 << 10,
        }
    }
}

/// Builds the engine with the settings of DESIGN §3.7: NaN canonicalisation, no threads,
/// deterministic relaxed SIMD, and fuel — not wall time — as the bound on execution.
pub fn engine(limits: &Limits) -> Result<Engine, LoadError> {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        // Threads are off: the `threads` feature of wasmtime is not compiled in.
        .max_wasm_stack(limits.max_stack_bytes);
    Engine::new(&config).map_err(|e| LoadError::Engine(e.to_string()))
}

/// What one table operation or nested call of a running invocation does. The runtime
/// implements it over a store transaction; this layer only moves checked bytes.
pub trait Invocation: Send {
    /// Resolves `table` (own module) or `module.table`; checks it against the declared access.
    fn table(&mut self, name: &str) -> Result<i32, HostError>;
    fn insert(&mut self, table: i32, row: &[u8]) -> Result<Vec<u8>, HostError>;
    fn update(&mut self, table: i32, row: &[u8]) -> Result<Vec<u8>, HostError>;
    fn delete(&mut self, table: i32, key: &[u8]) -> Result<Vec<u8>, HostError>;
    fn get(&mut self, table: i32, key: &[u8]) -> Result<Vec<u8>, HostError>;
    fn lookup(&mut self, table: i32, column: i32, key: &[u8]) -> Result<Vec<u8>, HostError>;
    fn range(&mut self, table: i32, column: i32, range: &[u8]) -> Result<Vec<u8>, HostError>;
    fn scan(&mut self, table: i32) -> Result<i32, HostError>;
    fn next(&mut self, cursor: i32, max_rows: i32) -> Result<Vec<u8>, HostError>;
    fn count(&mut self, table: i32) -> Result<u64, HostError>;
    fn clear(&mut self, table: i32) -> Result<u64, HostError>;
    fn schedule(&mut self, reducer: &str, delay_ms: i64, args: &[u8]) -> Result<(), HostError>;
    /// Runs reducer (or, with `query`, query) `name` inside this invocation's transaction with
    /// at most `fuel`; returns its result and the fuel it used.
    fn call(
        &mut self,
        query: bool,
        name: &str,
        args: &[u8],
        fuel: u64,
    ) -> Result<(Vec<u8>, u64), HostError>;
    /// Queues a call to `node.module.reducer` of another node, sent if this invocation commits.
    fn call_remote(&mut self, name: &str, args: &[u8]) -> Result<(), HostError>;
    fn now(&self) -> i64;
    fn random(&mut self) -> u64;
    fn log(&mut self, level: LogLevel, message: &str);
    /// Hands the concrete invocation back to the runtime once the call is over.
    fn as_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

/// A host call that did not succeed. `fatal` errors fail the whole invocation even if the module
/// ignores the error code (undeclared access, constraint violations: DESIGN §3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostError {
    pub code: ErrorCode,
    pub message: String,
    pub fatal: bool,
}

impl HostError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        HostError {
            code,
            message: message.into(),
            fatal: false,
        }
    }

    pub fn fatal(code: ErrorCode, message: impl Into<String>) -> Self {
        HostError {
            code,
            message: message.into(),
            fatal: true,
        }
    }
}

/// The data wasmtime keeps per instance.
pub struct HostState {
    memory: Option<Memory>,
    limits: Limits,
    /// The invocation now running, if any.
    invocation: Option<Box<dyn Invocation>>,
    /// The bytes the last host call produced, for `read_result`.
    result: Vec<u8>,
    /// What `set_error` said.
    error: Option<String>,
    /// What `return_value` handed over.
    returned: Option<Vec<u8>>,
    /// Why the invocation must fail, whatever the module does next.
    pub(crate) failure: Option<CallFailure>,
    memory_exceeded: bool,
    read_only: bool,
}

impl HostState {
    fn new(limits: Limits) -> Self {
        HostState {
            memory: None,
            limits,
            invocation: None,
            result: Vec::new(),
            error: None,
            returned: None,
            failure: None,
            memory_exceeded: false,
            read_only: false,
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            self.memory_exceeded = true;
            // Trapping (rather than returning -1 from memory.grow) names the cause; a module
            // that cannot allocate would trap anyway, with a less useful message.
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A compiled module with its validated schema.
pub struct CompiledModule {
    pub(crate) module: Module,
    pub schema: ModuleSchema,
}

/// One instance of a module, ready to run reducers and queries. Not shared: a worker takes one
/// from the module's pool for the duration of a call.
pub struct ModuleInstance {
    store: Store<HostState>,
    alloc: TypedFunc<i32, i32>,
    reducer: TypedFunc<(i32, i32, i32), i32>,
    query: TypedFunc<(i32, i32, i32), i32>,
}

/// The outcome of running one reducer or query in an instance.
pub struct RunOutput {
    /// The invocation, handed back so the caller can commit or drop its transaction.
    pub invocation: Box<dyn Invocation>,
    /// `Ok` with a query's encoded result (empty for reducers), or why it failed.
    pub result: Result<Vec<u8>, CallFailure>,
    /// Fuel the call consumed.
    pub fuel_used: u64,
    /// Whether this instance may be reused: not after a trap, whose unwinding may have left the
    /// module's memory (allocator, globals) inconsistent.
    pub reusable: bool,
}

fn linker(engine: &Engine) -> Result<Linker<HostState>, LoadError> {
    let mut linker = Linker::new(engine);
    let m = host::IMPORT_MODULE;
    let wrap = |e: wasmtime::Error| LoadError::Engine(e.to_string());

    linker
        .func_wrap(
            m,
            "log",
            |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
                let bytes = read_guest(&mut caller, ptr, len)?;
                let message = String::from_utf8_lossy(&bytes).into_owned();
                with_invocation(&mut caller, |inv| {
                    inv.log(LogLevel::from_i32(level), &message);
                    Ok(())
                })
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(m, "now", |mut caller: Caller<'_, HostState>| {
            with_invocation(&mut caller, |inv| Ok(inv.now()))
        })
        .map_err(wrap)?;
    linker
        .func_wrap(m, "random", |mut caller: Caller<'_, HostState>| {
            with_invocation(&mut caller, |inv| Ok(inv.random() as i64))
        })
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "set_error",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let bytes = read_guest(&mut caller, ptr, len)?;
                caller.data_mut().error = Some(String::from_utf8_lossy(&bytes).into_owned());
                Ok(())
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "return_value",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let bytes = read_guest(&mut caller, ptr, len)?;
                caller.data_mut().returned = Some(bytes);
                Ok(())
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "read_result",
            |mut caller: Caller<'_, HostState>, ptr: i32| {
                let bytes = std::mem::take(&mut caller.data_mut().result);
                write_guest(&mut caller, ptr, &bytes)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "table",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
                let name = read_name(&mut caller, ptr, len)?;
                let ret = with_invocation(&mut caller, |inv| Ok(inv.table(&name)))?;
                finish_i32(&mut caller, ret)
            },
        )
        .map_err(wrap)?;

    macro_rules! bytes_op {
        ($name:literal, $writes:expr, |$inv:ident, $table:ident, $bytes:ident| $body:expr) => {
            linker
                .func_wrap(
                    m,
                    $name,
                    |mut caller: Caller<'_, HostState>,
                     $table: i32,
                     ptr: i32,
                     len: i32|
                     -> wasmtime::Result<i64> {
                        if $writes {
                            deny_in_query(&mut caller, $name)?;
                        }
                        let $bytes = read_guest(&mut caller, ptr, len)?;
                        let ret = with_invocation(&mut caller, |$inv| Ok($body))?;
                        finish_bytes(&mut caller, ret)
                    },
                )
                .map_err(wrap)?;
        };
    }
    bytes_op!("insert", true, |inv, table, bytes| inv
        .insert(table, &bytes));
    bytes_op!("update", true, |inv, table, bytes| inv
        .update(table, &bytes));
    bytes_op!("delete", true, |inv, table, bytes| inv
        .delete(table, &bytes));
    bytes_op!("get", false, |inv, table, bytes| inv.get(table, &bytes));

    type ColumnOp = fn(&mut dyn Invocation, i32, i32, &[u8]) -> Result<Vec<u8>, HostError>;
    let column_ops: [(&str, ColumnOp); 2] = [
        ("lookup", |inv, table, column, key| {
            inv.lookup(table, column, key)
        }),
        ("range", |inv, table, column, range| {
            inv.range(table, column, range)
        }),
    ];
    for (import, op) in column_ops {
        linker
            .func_wrap(
                m,
                import,
                move |mut caller: Caller<'_, HostState>,
                      table: i32,
                      column: i32,
                      ptr: i32,
                      len: i32|
                      -> wasmtime::Result<i64> {
                    let bytes = read_guest(&mut caller, ptr, len)?;
                    let ret =
                        with_invocation(&mut caller, |inv| Ok(op(inv, table, column, &bytes)))?;
                    finish_bytes(&mut caller, ret)
                },
            )
            .map_err(wrap)?;
    }
    linker
        .func_wrap(
            m,
            "scan",
            |mut caller: Caller<'_, HostState>, table: i32| -> wasmtime::Result<i32> {
                let ret = with_invocation(&mut caller, |inv| Ok(inv.scan(table)))?;
                finish_i32(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "next",
            |mut caller: Caller<'_, HostState>,
             cursor: i32,
             max_rows: i32|
             -> wasmtime::Result<i64> {
                let ret = with_invocation(&mut caller, |inv| Ok(inv.next(cursor, max_rows)))?;
                finish_bytes(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "count",
            |mut caller: Caller<'_, HostState>, table: i32| -> wasmtime::Result<i64> {
                let ret = with_invocation(&mut caller, |inv| Ok(inv.count(table)))?;
                finish_u64(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "clear",
            |mut caller: Caller<'_, HostState>, table: i32| -> wasmtime::Result<i64> {
                deny_in_query(&mut caller, "clear")?;
                let ret = with_invocation(&mut caller, |inv| Ok(inv.clear(table)))?;
                finish_u64(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "schedule",
            |mut caller: Caller<'_, HostState>,
             name: i32,
             name_len: i32,
             delay_ms: i64,
             args: i32,
             args_len: i32|
             -> wasmtime::Result<i64> {
                deny_in_query(&mut caller, "schedule")?;
                let name = read_name(&mut caller, name, name_len)?;
                let args = read_guest(&mut caller, args, args_len)?;
                let ret = with_invocation(&mut caller, |inv| {
                    Ok(inv.schedule(&name, delay_ms, &args).map(|()| Vec::new()))
                })?;
                finish_bytes(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    linker
        .func_wrap(
            m,
            "call_remote",
            |mut caller: Caller<'_, HostState>,
             name: i32,
             name_len: i32,
             args: i32,
             args_len: i32|
             -> wasmtime::Result<i64> {
                deny_in_query(&mut caller, "call another node")?;
                let name = read_name(&mut caller, name, name_len)?;
                let args = read_guest(&mut caller, args, args_len)?;
                let ret = with_invocation(&mut caller, |inv| {
                    Ok(inv.call_remote(&name, &args).map(|()| Vec::new()))
                })?;
                finish_bytes(&mut caller, ret)
            },
        )
        .map_err(wrap)?;
    for (import, query) in [("call_reducer", false), ("call_query", true)] {
        linker
            .func_wrap(
                m,
                import,
                move |mut caller: Caller<'_, HostState>,
                      name: i32,
                      name_len: i32,
                      args: i32,
                      args_len: i32|
                      -> wasmtime::Result<i64> {
                    if !query {
                        deny_in_query(&mut caller, "call a reducer")?;
                    }
                    let name = read_name(&mut caller, name, name_len)?;
                    let args = read_guest(&mut caller, args, args_len)?;
                    let fuel = caller.get_fuel().unwrap_or(0);
                    let ret =
                        with_invocation(
                            &mut caller,
                            |inv| Ok(inv.call(query, &name, &args, fuel)),
                        )?;
                    match ret {
                        Ok((bytes, used)) => {
                            // The callee's work is charged to the caller: nesting cannot
                            // multiply the fuel bound.
                            let _ = caller.set_fuel(fuel.saturating_sub(used));
                            finish_bytes(&mut caller, Ok(bytes))
                        }
                        Err(e) => finish_bytes(&mut caller, Err(e)),
                    }
                },
            )
            .map_err(wrap)?;
    }
    Ok(linker)
}

fn trap(caller: &mut Caller<'_, HostState>, failure: CallFailure) -> wasmtime::Error {
    let message = failure.to_string();
    caller.data_mut().failure.get_or_insert(failure);
    wasmtime::Error::msg(message)
}

fn with_invocation<R>(
    caller: &mut Caller<'_, HostState>,
    f: impl FnOnce(&mut dyn Invocation) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    match caller.data_mut().invocation.as_deref_mut() {
        Some(inv) => f(inv),
        None => Err(trap(
            caller,
            CallFailure::Host("host call outside of a reducer or query".into()),
        )),
    }
}

fn deny_in_query(caller: &mut Caller<'_, HostState>, what: &str) -> wasmtime::Result<()> {
    if caller.data().read_only {
        return Err(trap(
            caller,
            CallFailure::Denied(format!(
                "a query cannot {what}: queries are read-only; do it in a #[reducer]"
            )),
        ));
    }
    Ok(())
}

/// Checks `ptr..ptr+len` against the guest's memory and the message limit, then copies it out.
fn read_guest(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
    let max = caller.data().limits.max_message_bytes;
    let (Ok(start), Ok(len)) = (usize::try_from(ptr), usize::try_from(len)) else {
        return Err(trap(
            caller,
            CallFailure::BadPointer(format!("negative pointer or length ({ptr}, {len})")),
        ));
    };
    if len > max {
        return Err(trap(
            caller,
            CallFailure::TooLarge {
                size: len,
                limit: max,
            },
        ));
    }
    let Some(memory) = caller.data().memory else {
        return Err(trap(
            caller,
            CallFailure::Host("module has no memory".into()),
        ));
    };
    let data = memory.data(&*caller);
    match start.checked_add(len).and_then(|end| data.get(start..end)) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => {
            let size = data.len();
            Err(trap(
                caller,
                CallFailure::BadPointer(format!(
                    "{len} bytes at {start} lie outside the module's {size}-byte memory"
                )),
            ))
        }
    }
}

fn write_guest(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    let Some(memory) = caller.data().memory else {
        return Err(trap(
            caller,
            CallFailure::Host("module has no memory".into()),
        ));
    };
    let fits = usize::try_from(ptr).ok().and_then(|start| {
        let end = start.checked_add(bytes.len())?;
        (end <= memory.data_size(&*caller)).then_some(start)
    });
    match fits {
        Some(start) => {
            memory.data_mut(&mut *caller)[start..start + bytes.len()].copy_from_slice(bytes);
            Ok(())
        }
        None => Err(trap(
            caller,
            CallFailure::BadPointer(format!(
                "cannot write {} bytes at {ptr}: outside the module's memory",
                bytes.len()
            )),
        )),
    }
}

fn read_name(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> wasmtime::Result<String> {
    if !(0..=256).contains(&len) {
        return Err(trap(
            caller,
            CallFailure::BadPointer(format!("a name of {len} bytes (at most 256)")),
        ));
    }
    let bytes = read_guest(caller, ptr, len)?;
    String::from_utf8(bytes).map_err(|_| {
        trap(
            caller,
            CallFailure::BadPointer("a name that is not UTF-8".into()),
        )
    })
}

/// Turns a host-call outcome into its return value: fatal errors fail the invocation; others
/// leave their message in the result buffer and return the negated code.
fn finish_error(caller: &mut Caller<'_, HostState>, e: HostError) -> wasmtime::Result<i64> {
    if e.fatal {
        let failure = match e.code {
            ErrorCode::Denied => CallFailure::Denied(e.message),
            ErrorCode::Constraint => CallFailure::Constraint(e.message),
            _ => CallFailure::Host(e.message),
        };
        return Err(trap(caller, failure));
    }
    let mut message = e.message;
    if message.len() > host::MAX_ERROR_MESSAGE {
        let mut cut = host::MAX_ERROR_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    caller.data_mut().result = message.into_bytes();
    Ok(e.code.to_return())
}

fn finish_bytes(
    caller: &mut Caller<'_, HostState>,
    ret: Result<Vec<u8>, HostError>,
) -> wasmtime::Result<i64> {
    match ret {
        Ok(bytes) => {
            let len = bytes.len() as i64;
            caller.data_mut().result = bytes;
            Ok(len)
        }
        Err(e) => finish_error(caller, e),
    }
}

fn finish_u64(
    caller: &mut Caller<'_, HostState>,
    ret: Result<u64, HostError>,
) -> wasmtime::Result<i64> {
    match ret {
        Ok(n) => Ok(i64::try_from(n).unwrap_or(i64::MAX)),
        Err(e) => finish_error(caller, e),
    }
}

fn finish_i32(
    caller: &mut Caller<'_, HostState>,
    ret: Result<i32, HostError>,
) -> wasmtime::Result<i32> {
    match ret {
        Ok(n) => Ok(n),
        // Error codes are small, so the narrowing is lossless.
        Err(e) => finish_error(caller, e).map(|code| code as i32),
    }
}

/// Compiles `wasm`, runs its registration exports and validates its schema.
pub fn compile(
    engine: &Engine,
    wasm: &[u8],
    limits: &Limits,
) -> Result<(CompiledModule, ModuleInstance), LoadError> {
    let module = Module::new(engine, wasm).map_err(|e| LoadError::Invalid(e.to_string()))?;
    let linker = Arc::new(linker(engine)?);
    let mut store = new_store(engine, limits);
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| LoadError::Instantiate(e.to_string()))?;
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or(LoadError::MissingExport("memory"))?;
    store.data_mut().memory = Some(memory);

    refuel(&mut store, limits.fuel_per_call)?;
    let version = typed::<(), i32>(&instance, &mut store, host::EXPORT_ABI_VERSION)?
        .call(&mut store, ())
        .map_err(|e| LoadError::Trapped(format!("{}: {e}", host::EXPORT_ABI_VERSION)))?;
    if version as u32 != ABI_VERSION {
        return Err(LoadError::AbiVersion {
            found: version as u32,
            expected: ABI_VERSION,
        });
    }

    register(&module, &instance, &mut store, limits)?;

    refuel(&mut store, limits.fuel_per_call)?;
    let packed = typed::<(), i64>(&instance, &mut store, host::EXPORT_SCHEMA)?
        .call(&mut store, ())
        .map_err(|e| LoadError::Trapped(format!("{}: {e}", host::EXPORT_SCHEMA)))?;
    let (ptr, len) = host::unpack_ptr_len(packed);
    let bytes = memory
        .data(&store)
        .get(ptr as usize..(ptr as usize).saturating_add(len as usize))
        .ok_or_else(|| LoadError::BadSchema("the schema lies outside the module's memory".into()))?
        .to_vec();
    let schema =
        ModuleSchema::from_bytes(&bytes).map_err(|e| LoadError::BadSchema(e.to_string()))?;
    schema
        .validate(ABI_VERSION)
        .map_err(|e| LoadError::BadSchema(e.to_string()))?;

    let first = ModuleInstance::from_parts(store, &instance)?;
    Ok((CompiledModule { module, schema }, first))
}

/// Runs the module's registration exports, in byte order of their names (host.rs). Every
/// instance needs it: the SDK's registry lives in the instance's memory.
fn register(
    module: &Module,
    instance: &Instance,
    store: &mut Store<HostState>,
    limits: &Limits,
) -> Result<(), LoadError> {
    let mut registrations: Vec<String> = module
        .exports()
        .filter(|e| e.name().starts_with(host::EXPORT_REGISTER_PREFIX))
        .map(|e| e.name().to_owned())
        .collect();
    registrations.sort();
    for name in &registrations {
        refuel(store, limits.fuel_per_call)?;
        typed::<(), ()>(instance, store, name)?
            .call(&mut *store, ())
            .map_err(|e| LoadError::Trapped(format!("{name}: {e}")))?;
    }
    Ok(())
}

fn new_store(engine: &Engine, limits: &Limits) -> Store<HostState> {
    let mut store = Store::new(engine, HostState::new(limits.clone()));
    store.limiter(|state| state as &mut dyn ResourceLimiter);
    store
}

fn refuel(store: &mut Store<HostState>, fuel: u64) -> Result<(), LoadError> {
    store
        .set_fuel(fuel)
        .map_err(|e| LoadError::Engine(e.to_string()))
}

fn typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Result<TypedFunc<P, R>, LoadError> {
    match instance.get_export(&mut *store, name) {
        Some(Extern::Func(f)) => f
            .typed::<P, R>(&*store)
            .map_err(|e| LoadError::BadExport(format!("`{name}`: {e}"))),
        _ => Err(LoadError::MissingExportNamed(name.to_owned())),
    }
}

impl CompiledModule {
    /// A fresh instance for another worker.
    pub fn instantiate(
        &self,
        engine: &Engine,
        limits: &Limits,
    ) -> Result<ModuleInstance, LoadError> {
        let linker = linker(engine)?;
        let mut store = new_store(engine, limits);
        let instance = linker
            .instantiate(&mut store, &self.module)
            .map_err(|e| LoadError::Instantiate(e.to_string()))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or(LoadError::MissingExport("memory"))?;
        store.data_mut().memory = Some(memory);
        register(&self.module, &instance, &mut store, limits)?;
        ModuleInstance::from_parts(store, &instance)
    }
}

impl ModuleInstance {
    fn from_parts(mut store: Store<HostState>, instance: &Instance) -> Result<Self, LoadError> {
        Ok(ModuleInstance {
            alloc: typed(instance, &mut store, host::EXPORT_ALLOC)?,
            reducer: typed(instance, &mut store, host::EXPORT_REDUCER)?,
            query: typed(instance, &mut store, host::EXPORT_QUERY)?,
            store,
        })
    }

    /// Runs reducer (or, with `query`, query) number `index` with encoded `args`.
    pub fn run(
        &mut self,
        invocation: Box<dyn Invocation>,
        query: bool,
        index: u32,
        args: &[u8],
    ) -> RunOutput {
        let fuel = self.store.data().limits.fuel_per_call;
        self.run_with_fuel(invocation, query, index, args, fuel)
    }

    /// [`run`](Self::run) with a fuel budget of its own (nested calls get what the caller has
    /// left).
    pub fn run_with_fuel(
        &mut self,
        invocation: Box<dyn Invocation>,
        query: bool,
        index: u32,
        args: &[u8],
        fuel: u64,
    ) -> RunOutput {
        let mut limits = self.store.data().limits.clone();
        limits.fuel_per_call = fuel;
        {
            let state = self.store.data_mut();
            state.invocation = Some(invocation);
            state.result.clear();
            state.error = None;
            state.returned = None;
            state.failure = None;
            state.memory_exceeded = false;
            state.read_only = query;
        }
        let _ = self.store.set_fuel(limits.fuel_per_call);
        let result = self.call(query, index, args, &limits);
        let fuel_used = limits
            .fuel_per_call
            .saturating_sub(self.store.get_fuel().unwrap_or(0));
        let state = self.store.data_mut();
        let invocation = state
            .invocation
            .take()
            .unwrap_or_else(|| unreachable_invocation());
        let reusable = !matches!(
            result,
            Err(CallFailure::Trap(_)
                | CallFailure::OutOfFuel { .. }
                | CallFailure::MemoryLimit { .. }
                | CallFailure::BadPointer(_)
                | CallFailure::Denied(_)
                | CallFailure::Constraint(_)
                | CallFailure::Host(_)
                | CallFailure::TooLarge { .. })
        );
        RunOutput {
            invocation,
            result,
            fuel_used,
            reusable,
        }
    }

    fn call(
        &mut self,
        query: bool,
        index: u32,
        args: &[u8],
        limits: &Limits,
    ) -> Result<Vec<u8>, CallFailure> {
        if args.len() > limits.max_message_bytes {
            return Err(CallFailure::TooLarge {
                size: args.len(),
                limit: limits.max_message_bytes,
            });
        }
        let len = i32::try_from(args.len()).map_err(|_| CallFailure::TooLarge {
            size: args.len(),
            limit: limits.max_message_bytes,
        })?;
        let ptr = self
            .alloc
            .call(&mut self.store, len)
            .map_err(|e| self.failure_of(e, limits))?;
        let memory = self
            .store
            .data()
            .memory
            .ok_or_else(|| CallFailure::Host("no memory".into()))?;
        let fits = usize::try_from(ptr)
            .ok()
            .and_then(|start| start.checked_add(args.len()).map(|end| (start, end)))
            .filter(|&(_, end)| end <= memory.data_size(&self.store));
        let Some((start, end)) = fits else {
            return Err(CallFailure::BadPointer(format!(
                "{} returned {ptr}, which cannot hold {} bytes",
                host::EXPORT_ALLOC,
                args.len()
            )));
        };
        memory.data_mut(&mut self.store)[start..end].copy_from_slice(args);
        let func = if query { &self.query } else { &self.reducer };
        let status = func
            .call(&mut self.store, (index as i32, ptr, len))
            .map_err(|e| self.failure_of(e, limits))?;
        let state = self.store.data_mut();
        if let Some(failure) = state.failure.take() {
            return Err(failure);
        }
        if status != 0 {
            return Err(CallFailure::Returned(state.error.take().unwrap_or_else(
                || format!("returned status {status} without a message"),
            )));
        }
        if query {
            state
                .returned
                .take()
                .ok_or_else(|| CallFailure::Returned("the query returned no value".into()))
        } else {
            Ok(Vec::new())
        }
    }

    fn failure_of(&mut self, error: wasmtime::Error, limits: &Limits) -> CallFailure {
        let state = self.store.data_mut();
        if let Some(failure) = state.failure.take() {
            return failure;
        }
        if state.memory_exceeded {
            return CallFailure::MemoryLimit {
                limit: limits.memory_bytes,
            };
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
            return CallFailure::OutOfFuel {
                fuel: limits.fuel_per_call,
            };
        }
        // A panic in the SDK reports its message with `set_error` before trapping.
        match state.error.take() {
            Some(message) => CallFailure::Trap(format!("{message} ({error})")),
            None => CallFailure::Trap(format!("{error:#}")),
        }
    }
}

#[cold]
fn unreachable_invocation() -> Box<dyn Invocation> {
    // `run` installs the invocation and host calls never remove it; reaching this is a bug in
    // this file, not something a module can cause.
    panic!("invocation vanished during a call")
}

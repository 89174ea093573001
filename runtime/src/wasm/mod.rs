//! The wasmtime host: engine settings, compiling and instantiating modules, running a reducer
//! or query in an instance. The host calls live in `host_calls.rs`; the checked access to guest
//! memory and the instance state in `guest.rs`.

mod guest;
mod host_calls;

use interstice_abi::host;
use interstice_abi::{ABI_VERSION, ModuleSchema};
use wasmtime::{
    Config, Engine, Extern, Instance, InstancePre, Linker, Module, ResourceLimiter, Store, Trap,
    TypedFunc,
};

pub use guest::{HostCall, HostState};
pub(crate) use guest::{Running, truncate_at_char};
pub(crate) use host_calls::link;

use crate::error::{CallFailure, LoadError};
use crate::exec::Answer;

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

/// Builds the engine for determinism (ARCHITECTURE.md, "Determinism"): NaN canonicalisation,
/// no threads, deterministic relaxed SIMD, and fuel — not wall time — as the bound on execution.
pub fn engine(limits: &Limits) -> Result<Engine, LoadError> {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        // Threads are off: the `threads` feature of wasmtime is not compiled in.
        .max_wasm_stack(limits.max_stack_bytes);
    // For profiling modules with `perf record`: wasmtime writes /tmp/perf-<pid>.map so that
    // `perf report` names the module's functions instead of bare JIT addresses.
    if std::env::var_os("INTERSTICE_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(|e| LoadError::Engine(e.to_string()))
}

/// A compiled module with its validated schema, linked and ready to instantiate.
pub struct CompiledModule {
    pre: InstancePre<HostState>,
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

/// What running one reducer or query in an instance came to.
pub(crate) struct RunOutput {
    /// `Ok` with a query's encoded result (empty for reducers), or why it failed.
    pub result: Result<Vec<u8>, CallFailure>,
    /// Fuel the call consumed.
    pub fuel_used: u64,
}

/// Which function of a module to run, on what, with how much fuel.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    /// A query rather than a reducer.
    pub query: bool,
    /// Its number in the module's schema.
    pub index: u32,
    /// Its encoded arguments.
    pub args: &'a [u8],
    pub fuel: u64,
}

/// Compiles `wasm` against `linker` (the node's host calls), runs its registration exports and
/// validates its schema; returns the module and its first instance.
pub fn compile(
    engine: &Engine,
    linker: &Linker<HostState>,
    wasm: &[u8],
    limits: &Limits,
    provided: &dyn Fn(interstice_abi::Authority) -> bool,
) -> Result<(CompiledModule, ModuleInstance), LoadError> {
    let module = Module::new(engine, wasm).map_err(|e| LoadError::Invalid(e.to_string()))?;
    // Say which authority is missing rather than which import is unknown.
    for import in module.imports() {
        if let Some(authority) = host::authority_of_import(import.module())
            && !provided(authority)
        {
            return Err(LoadError::AuthorityMissing {
                authority,
                hint: crate::authority::missing_hint(authority),
            });
        }
    }
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| LoadError::Instantiate(e.to_string()))?;
    let (mut store, instance) = start(engine, &pre, limits)?;

    let version = run_export::<i32>(&instance, &mut store, host::EXPORT_ABI_VERSION, limits)?;
    if version as u32 != ABI_VERSION {
        return Err(LoadError::AbiVersion {
            found: version as u32,
            expected: ABI_VERSION,
        });
    }
    register(&module, &instance, &mut store, limits)?;
    let packed = run_export::<i64>(&instance, &mut store, host::EXPORT_SCHEMA, limits)?;
    let (ptr, len) = host::unpack_ptr_len(packed);
    let memory = store
        .data()
        .memory
        .ok_or(LoadError::MissingExport("memory"))?;
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
    Ok((CompiledModule { pre, schema }, first))
}

/// A new store and instance of `pre`, with its memory found.
fn start(
    engine: &Engine,
    pre: &InstancePre<HostState>,
    limits: &Limits,
) -> Result<(Store<HostState>, Instance), LoadError> {
    let mut store = Store::new(engine, HostState::new(limits.clone()));
    store.limiter(|state| state as &mut dyn ResourceLimiter);
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| LoadError::Instantiate(e.to_string()))?;
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or(LoadError::MissingExport("memory"))?;
    store.data_mut().memory = Some(memory);
    Ok((store, instance))
}

/// Calls an export without arguments while the module describes itself; a trap is refused
/// with the SDK's own message (a panic reports it with `set_error` before trapping).
fn run_export<R: wasmtime::WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
    limits: &Limits,
) -> Result<R, LoadError> {
    store
        .set_fuel(limits.fuel_per_call)
        .map_err(|e| LoadError::Engine(e.to_string()))?;
    store.data_mut().error = None;
    typed::<(), R>(instance, store, name)?
        .call(&mut *store, ())
        .map_err(|e| {
            let message = match store.data_mut().error.take() {
                Some(mut panic) => {
                    truncate_at_char(&mut panic, host::MAX_ERROR_MESSAGE);
                    panic
                }
                None if e.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) => {
                    format!("it ran out of fuel ({} units)", limits.fuel_per_call)
                }
                None => format!("{e:#}"),
            };
            LoadError::Trapped {
                export: name.to_owned(),
                message,
            }
        })
}

/// Runs the module's registration exports, in byte order of their names (host.rs). Every
/// instance needs it: the SDK's registry lives in the instance's memory.
fn register(
    module: &Module,
    instance: &Instance,
    store: &mut Store<HostState>,
    limits: &Limits,
) -> Result<(), LoadError> {
    let mut registrations: Vec<&str> = module
        .exports()
        .map(|e| e.name())
        .filter(|name| name.starts_with(host::EXPORT_REGISTER_PREFIX))
        .collect();
    registrations.sort();
    for name in registrations {
        run_export::<()>(instance, store, name, limits)?;
    }
    Ok(())
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
        let (mut store, instance) = start(engine, &self.pre, limits)?;
        register(self.pre.module(), &instance, &mut store, limits)?;
        ModuleInstance::from_parts(store, &instance)
    }

    /// The host-call namespaces the module imports from, other than the core `interstice`
    /// one (the platform authorities'), sorted and without duplicates.
    pub fn platform_imports(&self) -> Vec<String> {
        let mut modules: Vec<String> = self
            .pre
            .module()
            .imports()
            .map(|i| i.module().to_owned())
            .filter(|m| m != host::IMPORT_MODULE)
            .collect();
        modules.sort();
        modules.dedup();
        modules
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

    /// Runs reducer (or, with `query`, query) number `index` with encoded `args` and a fuel
    /// budget (a nested call gets what its caller has left). The invocation `running` makes
    /// lives in the instance for the call, and `finish` takes what the caller needs from it
    /// before it is dropped there: it is a few hundred bytes, and moving it in and out was a
    /// visible share of a small call. Also returns whether the instance may be reused: not
    /// after a trap, whose unwinding may have left the module's memory (allocator, globals)
    /// inconsistent.
    pub(crate) fn run<R>(
        &mut self,
        running: impl FnOnce() -> Running,
        call: Call<'_>,
        finish: impl FnOnce(&mut Running, RunOutput) -> R,
    ) -> (R, bool) {
        let mut limits = self.store.data().limits.clone();
        limits.fuel_per_call = call.fuel;
        {
            let state = self.store.data_mut();
            state.running = Some(running());
            state.result = Answer::default();
            state.error = None;
            state.returned = None;
            state.failure = None;
            state.memory_exceeded = false;
        }
        let _ = self.store.set_fuel(limits.fuel_per_call);
        let result = self.call(call.query, call.index, call.args, &limits);
        let fuel_used = limits
            .fuel_per_call
            .saturating_sub(self.store.get_fuel().unwrap_or(0));
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
        let state = self.store.data_mut();
        #[allow(clippy::expect_used)]
        let running = state
            .running
            .as_mut()
            .expect("set above; host calls only borrow it");
        let finished = finish(running, RunOutput { result, fuel_used });
        state.running = None;
        (finished, reusable)
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
        // No bytes, no allocation: the ABI lets a call without arguments skip a round trip
        // into the module (host.rs), which is a fifth of an empty call's cost.
        let ptr = if args.is_empty() {
            0
        } else {
            self.write_args(args, len, limits)?
        };
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

    /// Copies `args` into memory the module allocates for them; returns where.
    fn write_args(&mut self, args: &[u8], len: i32, limits: &Limits) -> Result<i32, CallFailure> {
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
        Ok(ptr)
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

//! The `interstice_gpu` host calls: one per `GpuEngine` method, plain values in, a handle or
//! a status out.
//!
//! Every call returns an `i64`: a handle (resource creation), `0` (done) or the number of
//! result bytes (`usage`), or a negative `ErrorCode` with the message in the result buffer.
//! Who may call what:
//! - only the module holding `Gpu` (anyone else is refused and fails its invocation);
//! - frame commands (`begin_pass` … `end_pass`) only from its `render` hook, where the first
//!   of them begins the frame (calling one elsewhere fails the invocation);
//! - resources may be created, written and destroyed from any of its invocations: its `load`
//!   hook (the place to create them), reducers, the render hook. They are host state, not
//!   table state: a failed reducer does not undo them, and none survive a restart or an
//!   upgrade (`load` runs again then).
//!
//! A GPU error is returned to the module; in a render hook it also fails the frame: the frame
//! is dropped (the previous one stays on screen) and the invocation fails with the first
//! error, even if the module ignored it.

use interstice_abi::host::ErrorCode;
use interstice_abi::{Event, Value, encode};
use interstice_runtime::wasm::{HostCall, HostState};
use interstice_runtime::wasmtime::{self, Caller, Linker};
use interstice_runtime::{CallFailure, HostCallError, LoadError};

use super::{GPU_IMPORTS, Shared, wire};
use crate::engine::GpuEngine;
use crate::error::GpuError;
use crate::resources::OwnerId;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Resource management: any invocation of the Gpu module.
    Resources,
    /// A frame command: the render hook only.
    Frame,
}

/// Runs `f` on the engine for the module making this host call, after the checks every GPU
/// call shares. `Err` traps (the caller is not allowed); `Ok(Err)` is returned to the module.
fn run<T>(
    shared: &Shared,
    call: &mut HostCall<'_, '_>,
    name: &str,
    needs: Needs,
    f: impl FnOnce(&mut GpuEngine, OwnerId) -> Result<T, GpuError>,
) -> wasmtime::Result<Result<T, HostCallError>> {
    let module = call.module_or_trap()?;
    let in_render = call.hook() == Some(&Event::Render);
    let mut gpu = shared.gpu.lock();
    let holder = match gpu.holder.as_mut() {
        Some(holder) if holder.module == module => holder,
        other => {
            let holder = other.map(|h| h.module.clone());
            drop(gpu);
            let why = match holder {
                Some(holder) => format!("module `{holder}` holds it on this node"),
                None => "no module holds it on this node".to_owned(),
            };
            return Err(call.fail(CallFailure::Denied(format!(
                "gpu.{name}: module `{module}` does not hold the Gpu authority ({why}); claim it \
                 with interstice_module!(authorities: [Gpu])"
            ))));
        }
    };
    if needs == Needs::Frame && !in_render {
        drop(gpu);
        return Err(call.fail(CallFailure::Denied(format!(
            "gpu.{name} records into a frame, which only the render hook does \
             (#[reducer(on = \"render\")]); other invocations may create and write resources"
        ))));
    }
    let engine = match shared.engine() {
        Ok(engine) => engine,
        Err(e) => {
            let message = format!("gpu.{name}: the GPU is not available: {e}");
            if in_render {
                holder.failure.get_or_insert_with(|| message.clone());
            }
            return Ok(Err(HostCallError::new(ErrorCode::Other, message)));
        }
    };
    let mut engine = engine.lock();
    let owner = holder.owner;
    let result = match (needs, holder.due) {
        (Needs::Frame, _) if engine.recording_owner() == Some(owner) => f(&mut engine, owner),
        (Needs::Frame, Some(due)) => engine
            .begin_frame(owner, due)
            .and_then(|()| f(&mut engine, owner)),
        (Needs::Frame, None) => Err(GpuError::Command(
            "no frame is due: this render hook's frame was dropped (the module was upgraded or \
             the frame failed already)"
                .into(),
        )),
        (Needs::Resources, _) => f(&mut engine, owner),
    };
    Ok(result.map_err(|e| {
        let message = format!("gpu.{name}: {e}");
        if in_render {
            holder.failure.get_or_insert_with(|| message.clone());
        }
        HostCallError::new(code(&e), message)
    }))
}

fn code(e: &GpuError) -> ErrorCode {
    match e {
        GpuError::BadHandle { .. } => ErrorCode::NotFound,
        GpuError::Invalid(_) | GpuError::Command(_) | GpuError::Validation { .. } => {
            ErrorCode::BadInput
        }
        _ => ErrorCode::Other,
    }
}

/// A size or offset: the module passes an `i64`; negative ones are refused.
fn unsigned(value: i64, what: &str) -> Result<u64, GpuError> {
    u64::try_from(value).map_err(|_| GpuError::Invalid(format!("{what} {value} is negative")))
}

/// A handle crosses the boundary as the bits of an `i64`.
fn handle(value: i64) -> u64 {
    value as u64
}

/// A count or code crosses as the bits of an `i32`; the engine checks its range.
fn bits(value: i32) -> u32 {
    value as u32
}

fn bad_input(name: &str, message: String) -> HostCallError {
    HostCallError::new(ErrorCode::BadInput, format!("gpu.{name}: {message}"))
}

/// Links every `interstice_gpu` host call.
pub(super) fn link(
    linker: &mut Linker<HostState>,
    shared: &std::sync::Arc<Shared>,
) -> Result<(), LoadError> {
    let wrap = |e: wasmtime::Error| LoadError::Engine(e.to_string());
    let m = GPU_IMPORTS;

    // Resources.
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "create_shader_module",
            move |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let mut call = HostCall::new(&mut caller);
                let bytes = call.read(ptr, len)?;
                let ret = match String::from_utf8(bytes) {
                    Ok(wgsl) => run(
                        &s,
                        &mut call,
                        "create_shader_module",
                        Needs::Resources,
                        |e, o| e.create_shader_module(o, &wgsl),
                    )?,
                    Err(_) => Err(bad_input(
                        "create_shader_module",
                        "the WGSL source is not UTF-8".into(),
                    )),
                };
                call.finish_u64(ret)
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "create_buffer",
            move |mut caller: Caller<'_, HostState>, size: i64, usage: i32| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "create_buffer", Needs::Resources, |e, o| {
                    e.create_buffer(o, unsigned(size, "buffer size")?, bits(usage))
                })?;
                call.finish_u64(ret)
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "write_buffer",
            move |mut caller: Caller<'_, HostState>,
                  buffer: i64,
                  offset: i64,
                  ptr: i32,
                  len: i32| {
                let mut call = HostCall::new(&mut caller);
                let data = call.read(ptr, len)?;
                let ret = run(&s, &mut call, "write_buffer", Needs::Resources, |e, o| {
                    e.write_buffer(o, handle(buffer), unsigned(offset, "offset")?, &data)
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "create_texture",
            move |mut caller: Caller<'_, HostState>,
                  width: i32,
                  height: i32,
                  format: i32,
                  usage: i32| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "create_texture", Needs::Resources, |e, o| {
                    e.create_texture(o, bits(width), bits(height), bits(format), bits(usage))
                })?;
                call.finish_u64(ret)
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "write_texture",
            move |mut caller: Caller<'_, HostState>, texture: i64, ptr: i32, len: i32| {
                let mut call = HostCall::new(&mut caller);
                let data = call.read(ptr, len)?;
                let ret = run(&s, &mut call, "write_texture", Needs::Resources, |e, o| {
                    e.write_texture(o, handle(texture), &data)
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "create_sampler",
            move |mut caller: Caller<'_, HostState>, linear: i32, repeat: i32| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "create_sampler", Needs::Resources, |e, o| {
                    e.create_sampler(o, linear != 0, repeat != 0)
                })?;
                call.finish_u64(ret)
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "create_render_pipeline",
            move |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                let mut call = HostCall::new(&mut caller);
                let bytes = call.read(ptr, len)?;
                let name = "create_render_pipeline";
                let ret = match wire::pipeline(&bytes) {
                    Ok(desc) => run(&s, &mut call, name, Needs::Resources, |e, o| {
                        e.create_render_pipeline(o, &desc)
                    })?,
                    Err(why) => Err(bad_input(
                        name,
                        format!("the descriptor does not decode: {why}"),
                    )),
                };
                call.finish_u64(ret)
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "create_bind_group",
            move |mut caller: Caller<'_, HostState>,
                  pipeline: i64,
                  group: i32,
                  ptr: i32,
                  len: i32| {
                let mut call = HostCall::new(&mut caller);
                let bytes = call.read(ptr, len)?;
                let name = "create_bind_group";
                let ret = match wire::bindings(&bytes) {
                    Ok(entries) => run(&s, &mut call, name, Needs::Resources, |e, o| {
                        e.create_bind_group(o, handle(pipeline), bits(group), &entries)
                    })?,
                    Err(why) => Err(bad_input(name, format!("the entries do not decode: {why}"))),
                };
                call.finish_u64(ret)
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "destroy",
            move |mut caller: Caller<'_, HostState>, resource: i64| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "destroy", Needs::Resources, |e, o| {
                    e.destroy(o, handle(resource))
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(m, "usage", move |mut caller: Caller<'_, HostState>| {
            let mut call = HostCall::new(&mut caller);
            let ret = run(&s, &mut call, "usage", Needs::Resources, |e, o| {
                let usage = e.usage(o);
                let budget = e.resources().budget(o);
                Ok(encode(&Value::Struct(vec![
                    Value::U64(usage.bytes),
                    Value::U32(usage.resources),
                    Value::U64(budget.max_bytes),
                    Value::U32(budget.max_resources),
                ])))
            })?;
            call.finish(ret)
        })
        .map_err(wrap)?;

    // Frame commands.
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "begin_pass",
            move |mut caller: Caller<'_, HostState>,
                  target: i64,
                  r: f64,
                  g: f64,
                  b: f64,
                  a: f64| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "begin_pass", Needs::Frame, |e, o| {
                    e.begin_pass(o, handle(target), [r, g, b, a])
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "set_pipeline",
            move |mut caller: Caller<'_, HostState>, pipeline: i64| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "set_pipeline", Needs::Frame, |e, o| {
                    e.set_pipeline(o, handle(pipeline))
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "set_bind_group",
            move |mut caller: Caller<'_, HostState>, index: i32, group: i64| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "set_bind_group", Needs::Frame, |e, o| {
                    e.set_bind_group(o, bits(index), handle(group))
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "set_vertex_buffer",
            move |mut caller: Caller<'_, HostState>,
                  slot: i32,
                  buffer: i64,
                  offset: i64,
                  size: i64| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "set_vertex_buffer", Needs::Frame, |e, o| {
                    e.set_vertex_buffer(
                        o,
                        bits(slot),
                        handle(buffer),
                        unsigned(offset, "offset")?,
                        unsigned(size, "size")?,
                    )
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "set_index_buffer",
            move |mut caller: Caller<'_, HostState>,
                  buffer: i64,
                  format: i32,
                  offset: i64,
                  size: i64| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "set_index_buffer", Needs::Frame, |e, o| {
                    e.set_index_buffer(
                        o,
                        handle(buffer),
                        bits(format),
                        unsigned(offset, "offset")?,
                        unsigned(size, "size")?,
                    )
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "draw",
            move |mut caller: Caller<'_, HostState>,
                  first_vertex: i32,
                  vertex_count: i32,
                  first_instance: i32,
                  instance_count: i32| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "draw", Needs::Frame, |e, o| {
                    e.draw(
                        o,
                        bits(first_vertex),
                        bits(vertex_count),
                        bits(first_instance),
                        bits(instance_count),
                    )
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(
            m,
            "draw_indexed",
            move |mut caller: Caller<'_, HostState>,
                  first_index: i32,
                  index_count: i32,
                  base_vertex: i32,
                  first_instance: i32,
                  instance_count: i32| {
                let mut call = HostCall::new(&mut caller);
                let ret = run(&s, &mut call, "draw_indexed", Needs::Frame, |e, o| {
                    e.draw_indexed(
                        o,
                        bits(first_index),
                        bits(index_count),
                        base_vertex,
                        bits(first_instance),
                        bits(instance_count),
                    )
                })?;
                call.finish_u64(ret.map(|()| 0))
            },
        )
        .map_err(wrap)?;
    let s = shared.clone();
    linker
        .func_wrap(m, "end_pass", move |mut caller: Caller<'_, HostState>| {
            let mut call = HostCall::new(&mut caller);
            let ret = run(&s, &mut call, "end_pass", Needs::Frame, |e, o| {
                e.end_pass(o)
            })?;
            call.finish_u64(ret.map(|()| 0))
        })
        .map_err(wrap)?;
    Ok(())
}

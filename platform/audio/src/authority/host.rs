//! The Audio authority's host call.
//!
//! | import (`interstice_audio`) | signature | meaning |
//! |---|---|---|
//! | `write_samples` | `(ptr: i32, len: i32) -> i64` | appends `len` bytes of little-endian `f32` samples, interleaved, to the block the running `audio_output` hook fills; returns the samples the block holds now |
//!
//! Only the holding module's `audio_output` hook may call it; anywhere else (another reducer,
//! a query, `audio_input`, a nested call) the invocation fails. `len` must be a multiple of 4
//! and the block may not grow past `frames × channels` samples (the invocation fails). A
//! hook that returns with fewer samples fails too. Each failure plays the block as silence.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use interstice_abi::Event;
use interstice_abi::host::ErrorCode;
use interstice_runtime::wasm::{HostCall, HostState};
use interstice_runtime::wasmtime::{self, Caller, Linker};
use interstice_runtime::{HostCallError, LoadError};

use super::Inner;

/// The import namespace of the Audio authority's host calls.
pub const IMPORTS: &str = "interstice_audio";
/// `write_samples(ptr: i32, len: i32) -> i64`.
pub const WRITE_SAMPLES: &str = "write_samples";

pub(super) fn link(inner: &Arc<Inner>, linker: &mut Linker<HostState>) -> Result<(), LoadError> {
    let inner = inner.clone();
    linker
        .func_wrap(
            IMPORTS,
            WRITE_SAMPLES,
            move |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i64> {
                let mut call = HostCall::new(&mut caller);
                let result = write_samples(&inner, &mut call, ptr, len)?;
                if result.is_err() {
                    inner.counters.writes_refused.fetch_add(1, Relaxed);
                }
                call.finish_u64(result)
            },
        )
        .map_err(|e| LoadError::Engine(format!("linking {IMPORTS}.{WRITE_SAMPLES}: {e}")))?;
    Ok(())
}

/// Every refusal is fatal: a hook that believes it played while the host dropped its
/// samples would be worse than one that fails and is heard as silence.
fn write_samples(
    inner: &Inner,
    call: &mut HostCall<'_, '_>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Result<u64, HostCallError>> {
    let module = call.module_or_trap()?;
    let denied = |message: String| Ok(Err(HostCallError::fatal(ErrorCode::Denied, message)));
    let bad = |message: String| Ok(Err(HostCallError::fatal(ErrorCode::BadInput, message)));
    if call.hook() != Some(&Event::AudioOutput) {
        return denied(format!(
            "{IMPORTS}.{WRITE_SAMPLES} is only for the audio_output hook \
             (#[reducer(on = \"audio_output\")]): samples written anywhere else would have no \
             block to play in"
        ));
    }
    let (block_samples, staged) = match &*inner.session.lock() {
        Some(s) if s.module == module => (s.block_samples, s.staged.len()),
        _ => {
            return denied(format!(
                "module `{module}` has no open audio device: the device could not open, or \
                 the module is being replaced"
            ));
        }
    };
    let Ok(bytes) = usize::try_from(len) else {
        return bad(format!("a negative length ({len}) of samples"));
    };
    if bytes % 4 != 0 {
        return bad(format!(
            "{bytes} bytes is not a whole number of f32 samples (4 bytes each)"
        ));
    }
    if staged + bytes / 4 > block_samples {
        return bad(format!(
            "the block holds {block_samples} samples (frames × channels, interleaved); {staged} \
             are written and these {} would make {}",
            bytes / 4,
            staged + bytes / 4
        ));
    }
    let data = call.read(ptr, len)?;
    let mut session = inner.session.lock();
    let Some(session) = session.as_mut().filter(|s| s.module == module) else {
        return denied(format!("module `{module}` lost its audio device"));
    };
    session.staged.extend(
        data.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
    Ok(Ok(session.staged.len() as u64))
}

//! The host's side of one instance: its state, and checked access to the guest's memory.
//!
//! Everything a module hands over — pointers, lengths, names — is checked here before it is
//! used. A check that fails records *why* in the state and traps the guest, so the invocation
//! fails with that reason and nothing it wrote commits. [`HostCall`] is the same toolkit for
//! the host calls of platform authorities.

use std::sync::Arc;

use interstice_abi::Event;
use interstice_abi::host::{self, ErrorCode};
use wasmtime::{Caller, Memory, ResourceLimiter};

use super::Limits;
use crate::core::Core;
use crate::error::{CallFailure, HostCallError};
use crate::exec::{Answer, Exec};

/// The invocation an instance is running: its context, the node's core (for nested calls)
/// and what it runs for.
pub(crate) struct Running {
    pub exec: Exec,
    pub core: Arc<Core>,
    /// A query (or a read-only hook such as `render`): writes are refused.
    pub read_only: bool,
    /// The event of the hook being run, if it is one.
    pub hook: Option<Event>,
}

/// The data wasmtime keeps per instance.
pub struct HostState {
    pub(super) memory: Option<Memory>,
    pub(super) limits: Limits,
    /// The invocation now running; `None` between calls and while the module describes
    /// itself.
    pub(super) running: Option<Running>,
    /// What the last host call answered, for `read_result`.
    pub(super) result: Answer,
    /// Where `read_result` encodes rows before copying them into the module: kept, so that
    /// answering a call allocates nothing once it has grown.
    pub(super) encoded: Vec<u8>,
    /// What `set_error` said: a reducer's error, or the SDK's panic message before it traps.
    pub(super) error: Option<String>,
    /// What `return_value` handed over.
    pub(super) returned: Option<Vec<u8>>,
    /// Why the invocation must fail, whatever the module does next.
    pub(super) failure: Option<CallFailure>,
    pub(super) memory_exceeded: bool,
}

impl HostState {
    pub(super) fn new(limits: Limits) -> Self {
        HostState {
            memory: None,
            limits,
            running: None,
            result: Answer::default(),
            encoded: Vec::new(),
            error: None,
            returned: None,
            failure: None,
            memory_exceeded: false,
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

/// One host call in progress, as a platform authority's host function sees it: checked reads
/// of the guest's memory, the running invocation's identity, and the ways to answer.
///
/// ```ignore
/// linker.func_wrap("interstice_gpu", "clear", |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
///     let mut call = HostCall::new(&mut caller);
///     let module = call.module_or_trap()?.to_owned();
///     let bytes = call.read(ptr, len)?;
///     call.finish(do_it(&module, &bytes))
/// })
/// ```
pub struct HostCall<'a, 'c> {
    caller: &'a mut Caller<'c, HostState>,
}

impl<'a, 'c> HostCall<'a, 'c> {
    pub fn new(caller: &'a mut Caller<'c, HostState>) -> Self {
        HostCall { caller }
    }

    /// The module whose invocation made this call; `None` while it describes itself.
    pub fn module(&self) -> Option<&str> {
        self.running().map(|r| &*r.exec.frame().module)
    }

    /// [`module`](Self::module), or a trap saying host calls need an invocation.
    pub fn module_or_trap(&mut self) -> wasmtime::Result<String> {
        match self.module() {
            Some(m) => Ok(m.to_owned()),
            None => Err(self.fail(CallFailure::Host(
                "host call outside of a reducer or query".into(),
            ))),
        }
    }

    /// The event whose hook is running (`render`, `audio_output`…), if this is a hook.
    pub fn hook(&self) -> Option<&Event> {
        self.running().and_then(|r| r.hook.as_ref())
    }

    /// Whether the invocation may only read: a query, or a read-only hook (`render`,
    /// `audio_output`).
    pub fn read_only(&self) -> bool {
        self.running().is_some_and(|r| r.read_only)
    }

    /// The running invocation, for the runtime's built-in authorities.
    pub(crate) fn running_mut(&mut self) -> Option<&mut Running> {
        self.caller.data_mut().running.as_mut()
    }

    /// The invocation's logical time and sequence number.
    pub fn stamp(&self) -> Option<(i64, u64)> {
        self.running()
            .map(|r| (r.exec.frame().timestamp, r.exec.frame().seq))
    }

    /// Copies `len` bytes at `ptr` out of the guest's memory, checked against its size and the
    /// message limit.
    pub fn read(&mut self, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
        read_guest(self.caller, ptr, len)
    }

    /// A UTF-8 name of at most 256 bytes.
    pub fn read_name(&mut self, ptr: i32, len: i32) -> wasmtime::Result<String> {
        read_name(self.caller, ptr, len)
    }

    /// Fails the invocation with `failure` (nothing it wrote commits); return the error.
    pub fn fail(&mut self, failure: CallFailure) -> wasmtime::Error {
        trap(self.caller, failure)
    }

    /// Answers with bytes (their length; the module reads them with `read_result`) or an
    /// error (fatal ones fail the invocation).
    pub fn finish(&mut self, result: Result<Vec<u8>, HostCallError>) -> wasmtime::Result<i64> {
        finish_bytes(self.caller, result)
    }

    /// Answers with a number or an error.
    pub fn finish_u64(&mut self, result: Result<u64, HostCallError>) -> wasmtime::Result<i64> {
        finish_u64(self.caller, result)
    }

    fn running(&self) -> Option<&Running> {
        self.caller.data().running.as_ref()
    }
}

pub(super) fn trap(caller: &mut Caller<'_, HostState>, failure: CallFailure) -> wasmtime::Error {
    let message = failure.to_string();
    caller.data_mut().failure.get_or_insert(failure);
    wasmtime::Error::msg(message)
}

/// Runs `f` on the running invocation, or traps if there is none (a module calling the host
/// while it describes itself).
pub(super) fn with_running<R>(
    caller: &mut Caller<'_, HostState>,
    f: impl FnOnce(&mut Running) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    match caller.data_mut().running.as_mut() {
        Some(running) => f(running),
        None => Err(trap(
            caller,
            CallFailure::Host("host call outside of a reducer or query".into()),
        )),
    }
}

pub(super) fn deny_in_query(
    caller: &mut Caller<'_, HostState>,
    what: &str,
) -> wasmtime::Result<()> {
    if caller.data().running.as_ref().is_some_and(|r| r.read_only) {
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
pub(super) fn read_guest(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let checked = guest_range(caller, ptr, len).map(|(memory, range)| {
        let data = memory.data(&*caller);
        data[range].to_vec()
    });
    checked.map_err(|failure| trap(caller, failure))
}

/// Runs `f` on the running invocation and the guest's bytes at `ptr..ptr+len`, checked as
/// [`read_guest`] checks them, but borrowed in place: a row a module writes is decoded straight
/// from its memory, not copied out first.
pub(super) fn with_guest_bytes<R>(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
    f: impl FnOnce(&mut Running, &[u8]) -> R,
) -> wasmtime::Result<R> {
    let failure = match guest_range(caller, ptr, len) {
        Ok((memory, range)) => {
            let (data, state) = memory.data_and_store_mut(&mut *caller);
            match state.running.as_mut() {
                Some(running) => return Ok(f(running, &data[range])),
                None => CallFailure::Host("host call outside of a reducer or query".into()),
            }
        }
        Err(failure) => failure,
    };
    Err(trap(caller, failure))
}

/// The guest's memory and `ptr..ptr+len` in it, or why that range may not be read: a negative
/// pointer or length, more than the message limit, no memory, or bytes outside it.
fn guest_range(
    caller: &Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> Result<(Memory, std::ops::Range<usize>), CallFailure> {
    let max = caller.data().limits.max_message_bytes;
    let (Ok(start), Ok(len)) = (usize::try_from(ptr), usize::try_from(len)) else {
        return Err(CallFailure::BadPointer(format!(
            "negative pointer or length ({ptr}, {len})"
        )));
    };
    if len > max {
        return Err(CallFailure::TooLarge {
            size: len,
            limit: max,
        });
    }
    let Some(memory) = caller.data().memory else {
        return Err(CallFailure::Host("module has no memory".into()));
    };
    let size = memory.data_size(caller);
    match start.checked_add(len).filter(|&end| end <= size) {
        Some(end) => Ok((memory, start..end)),
        None => Err(CallFailure::BadPointer(format!(
            "{len} bytes at {start} lie outside the module's {size}-byte memory"
        ))),
    }
}

/// Text a module hands over for people (a log line, an error message): `ptr..ptr+len` is
/// checked like any range, but at most `cap` bytes are copied; longer text is cut (on a
/// character boundary) and says how long it was, so a module cannot flood the node's log or a
/// client with megabytes.
pub(super) fn read_text(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
    cap: usize,
) -> wasmtime::Result<String> {
    let full = usize::try_from(len).unwrap_or(0);
    if full <= cap {
        let bytes = read_guest(caller, ptr, len)?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    // Checks the whole range, then copies the head.
    let Some(memory) = caller.data().memory else {
        return Err(trap(
            caller,
            CallFailure::Host("module has no memory".into()),
        ));
    };
    let start = usize::try_from(ptr).unwrap_or(usize::MAX);
    let data = memory.data(&*caller);
    let head = start
        .checked_add(full)
        .filter(|&end| end <= data.len())
        .and_then(|_| data.get(start..start + cap));
    match head {
        Some(head) => {
            let mut text = String::from_utf8_lossy(head).into_owned();
            truncate_at_char(&mut text, cap);
            text.push_str(&format!(" … ({full} bytes, cut to {cap})"));
            Ok(text)
        }
        None => {
            let size = data.len();
            Err(trap(
                caller,
                CallFailure::BadPointer(format!(
                    "{full} bytes at {ptr} lie outside the module's {size}-byte memory"
                )),
            ))
        }
    }
}

pub(super) fn write_guest(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
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

pub(super) fn read_name(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<String> {
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
pub(super) fn finish_error(
    caller: &mut Caller<'_, HostState>,
    e: HostCallError,
) -> wasmtime::Result<i64> {
    if e.fatal {
        let failure = match e.code {
            ErrorCode::Denied => CallFailure::Denied(e.message),
            ErrorCode::Constraint => CallFailure::Constraint(e.message),
            _ => CallFailure::Host(e.message),
        };
        return Err(trap(caller, failure));
    }
    let mut message = e.message;
    truncate_at_char(&mut message, host::MAX_ERROR_MESSAGE);
    caller.data_mut().result = Answer::Bytes(message.into_bytes());
    Ok(e.code.to_return())
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
pub(crate) fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

pub(super) fn finish_bytes(
    caller: &mut Caller<'_, HostState>,
    ret: Result<impl Into<Answer>, HostCallError>,
) -> wasmtime::Result<i64> {
    match ret {
        Ok(answer) => {
            let answer = answer.into();
            let len = answer.len() as i64;
            caller.data_mut().result = answer;
            Ok(len)
        }
        Err(e) => finish_error(caller, e),
    }
}

/// `read_result`: copies the last answer into the module at `ptr`, encoding it first when it
/// is rows. The answer is taken: a second read gets nothing.
pub(super) fn read_result(caller: &mut Caller<'_, HostState>, ptr: i32) -> wasmtime::Result<()> {
    let state = caller.data_mut();
    let answer = std::mem::take(&mut state.result);
    let mut buf = std::mem::take(&mut state.encoded);
    let bytes = answer.encoded(&mut buf);
    // The module sized its buffer by the length the call returned (`len`); never write past
    // it, even if the encoding and `len` ever disagreed.
    let announced = answer.len();
    debug_assert_eq!(bytes.len(), announced, "the length the host call returned");
    let written = write_guest(caller, ptr, &bytes[..announced.min(bytes.len())]);
    caller.data_mut().encoded = buf;
    written
}

pub(super) fn finish_u64(
    caller: &mut Caller<'_, HostState>,
    ret: Result<u64, HostCallError>,
) -> wasmtime::Result<i64> {
    match ret {
        Ok(n) => Ok(i64::try_from(n).unwrap_or(i64::MAX)),
        Err(e) => finish_error(caller, e),
    }
}

pub(super) fn finish_i32(
    caller: &mut Caller<'_, HostState>,
    ret: Result<i32, HostCallError>,
) -> wasmtime::Result<i32> {
    match ret {
        Ok(n) => Ok(n),
        // Error codes are small, so the narrowing is lossless.
        Err(e) => finish_error(caller, e).map(|code| code as i32),
    }
}

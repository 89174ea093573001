//! What a module may subscribe to and claim: [`Event`]s (`#[reducer(on = "...")]`), the
//! [`TableEvent`]s of rows and the [`Authority`]s, with the text forms the SDK writes and the
//! host parses (never trusting the SDK's).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Type;

/// Exclusive, typed capabilities a module may claim (ARCHITECTURE.md, "Authorities").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Authority {
    Gpu,
    Input,
    Audio,
    File,
    Module,
}

impl FromStr for Authority {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "Gpu" => Authority::Gpu,
            "Input" => Authority::Input,
            "Audio" => Authority::Audio,
            "File" => Authority::File,
            "Module" => Authority::Module,
            _ => {
                return Err(ParseError(format!(
                    "unknown authority `{s}`; expected one of Gpu, Input, Audio, File, Module"
                )));
            }
        })
    }
}

/// What happened to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TableEvent {
    Insert,
    Update,
    Delete,
}

/// An event a reducer can subscribe to with `#[reducer(on = "...")]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    /// The module was installed for the first time.
    Init,
    /// The module was loaded (every node start, and after `init`).
    Load,
    /// A peer node connected; one `String` argument: its id.
    Connect,
    /// A peer node disconnected; one `String` argument: its id.
    Disconnect,
    /// A row of `module.table` changed; `node` is set for a table on another node.
    Table {
        node: Option<String>,
        module: String,
        table: String,
        kind: TableEvent,
    },
    /// A frame is due (`Gpu`); one `FrameInfo` argument. Read-only, like a query.
    Render,
    /// The user did something (`Input`); one `InputEvent` argument.
    Input,
    /// The next block of sound is wanted (`Audio`); one `AudioBlock` argument. Read-only.
    AudioOutput,
    /// A captured buffer arrived (`Audio`); one `AudioCapture` argument.
    AudioInput,
    /// A watched path changed (`File`); one `FileChange` argument.
    FileChanged,
}

/// The platform events: their names, authorities, argument types and whether their hooks
/// are read-only.
const PLATFORM_EVENTS: [(&str, Event, Authority, &str, bool); 5] = [
    (
        "render",
        Event::Render,
        Authority::Gpu,
        crate::platform::FRAME_INFO,
        true,
    ),
    (
        "input",
        Event::Input,
        Authority::Input,
        crate::platform::INPUT_EVENT,
        false,
    ),
    (
        "audio_output",
        Event::AudioOutput,
        Authority::Audio,
        crate::platform::AUDIO_BLOCK,
        true,
    ),
    (
        "audio_input",
        Event::AudioInput,
        Authority::Audio,
        crate::platform::AUDIO_CAPTURE,
        false,
    ),
    (
        "file_changed",
        Event::FileChanged,
        Authority::File,
        crate::platform::FILE_CHANGE,
        false,
    ),
];

impl Event {
    fn platform(&self) -> Option<&'static (&'static str, Event, Authority, &'static str, bool)> {
        PLATFORM_EVENTS.iter().find(|(_, e, ..)| e == self)
    }

    /// The authority a module must hold to subscribe to this event (platform events only).
    pub fn authority(&self) -> Option<Authority> {
        self.platform().map(|(_, _, authority, ..)| *authority)
    }

    /// Whether hooks of this event only read tables, like queries: `render` and
    /// `audio_output` produce frames and samples, not state.
    pub fn is_read_only(&self) -> bool {
        self.platform().is_some_and(|(.., read_only)| *read_only)
    }

    /// The argument types a subscribed reducer must take after its context, given the row type of
    /// the table for table events.
    pub fn expected_args(&self, row: Option<&Type>) -> Option<Vec<Type>> {
        if let Some((_, _, _, ty, _)) = self.platform() {
            return Some(vec![Type::Named((*ty).to_owned())]);
        }
        Some(match self {
            Event::Init | Event::Load => vec![],
            Event::Connect | Event::Disconnect => vec![Type::String],
            Event::Table { kind, .. } => {
                let row = row?.clone();
                match kind {
                    TableEvent::Insert | TableEvent::Delete => vec![row],
                    TableEvent::Update => vec![row.clone(), row],
                }
            }
            // Answered above.
            Event::Render
            | Event::Input
            | Event::AudioOutput
            | Event::AudioInput
            | Event::FileChanged => return None,
        })
    }

    /// How to write the reducer's parameters for this event, for error messages.
    pub fn signature_hint(&self, row_type: &str) -> String {
        if let Some((name, _, _, ty, _)) = self.platform() {
            let arg = match *name {
                "render" => "frame",
                "audio_output" => "block",
                "audio_input" => "capture",
                "file_changed" => "change",
                _ => "event",
            };
            return format!("fn _(ctx: ReducerContext, {arg}: {ty})");
        }
        match self {
            Event::Init | Event::Load => "fn _(ctx: ReducerContext)".into(),
            Event::Connect | Event::Disconnect => {
                "fn _(ctx: ReducerContext, node_id: String)".into()
            }
            Event::Table { kind, .. } => match kind {
                TableEvent::Insert => format!("fn _(ctx: ReducerContext, row: {row_type})"),
                TableEvent::Delete => format!("fn _(ctx: ReducerContext, row: {row_type})"),
                TableEvent::Update => {
                    format!("fn _(ctx: ReducerContext, old: {row_type}, new: {row_type})")
                }
            },
            _ => String::new(),
        }
    }
}

impl FromStr for Event {
    type Err = ParseError;

    /// Parses `init`, `load`, `connect`, `disconnect`, `<module>.<table>.<insert|update|delete>`
    /// and `<node>.<module>.<table>.<insert|update|delete>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "init" => return Ok(Event::Init),
            "load" => return Ok(Event::Load),
            "connect" => return Ok(Event::Connect),
            "disconnect" => return Ok(Event::Disconnect),
            _ => {}
        }
        if let Some((_, event, ..)) = PLATFORM_EVENTS.iter().find(|(name, ..)| *name == s) {
            return Ok(event.clone());
        }
        let parts: Vec<&str> = s.split('.').collect();
        let (node, module, table, kind) = match parts.as_slice() {
            [module, table, kind] => (None, *module, *table, *kind),
            [node, module, table, kind] => (Some((*node).to_owned()), *module, *table, *kind),
            _ => {
                return Err(ParseError(format!(
                    "unknown event `{s}`; expected `init`, `load`, `connect`, `disconnect`, \
                     `render`, `input`, `audio_output`, `audio_input`, `file_changed`, \
                     `<module>.<table>.<insert|update|delete>` or \
                     `<node>.<module>.<table>.<insert|update|delete>`"
                )));
            }
        };
        let kind = match kind {
            "insert" => TableEvent::Insert,
            "update" => TableEvent::Update,
            "delete" => TableEvent::Delete,
            other => {
                return Err(ParseError(format!(
                    "unknown table event `{other}` in `{s}`; expected insert, update or delete"
                )));
            }
        };
        if module.is_empty() || table.is_empty() || node.as_deref() == Some("") {
            return Err(ParseError(format!("empty name in event `{s}`")));
        }
        Ok(Event::Table {
            node,
            module: module.to_owned(),
            table: table.to_owned(),
            kind,
        })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Init => f.write_str("init"),
            Event::Load => f.write_str("load"),
            Event::Connect => f.write_str("connect"),
            Event::Disconnect => f.write_str("disconnect"),
            Event::Render
            | Event::Input
            | Event::AudioOutput
            | Event::AudioInput
            | Event::FileChanged => f.write_str(self.platform().map_or("", |(name, ..)| name)),
            Event::Table {
                node,
                module,
                table,
                kind,
            } => {
                if let Some(node) = node {
                    write!(f, "{node}.")?;
                }
                let kind = match kind {
                    TableEvent::Insert => "insert",
                    TableEvent::Update => "update",
                    TableEvent::Delete => "delete",
                };
                write!(f, "{module}.{table}.{kind}")
            }
        }
    }
}

/// A string that is not a valid event or authority.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

//! Where a command's results go: lines for people, or one JSON document with `--json`.
//!
//! With `--json`, stdout carries exactly one JSON document per command (an error too: see
//! `CliError::to_json`), except the long-running `node start` and `example`, which print one
//! JSON object per line as things happen. Progress and logs go to stderr either way.
//! `docs/CLI-JSON.md` documents every shape.

use serde_json::Value as Json;

#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `text` for people; nothing with `--json`.
    pub fn say(&self, text: impl std::fmt::Display) {
        if !self.json {
            println!("{text}");
        }
    }

    /// The command's result: `doc` with `--json`, else `text()`.
    pub fn done(&self, doc: Json, text: impl FnOnce() -> String) {
        if self.json {
            println!("{doc}");
        } else {
            println!("{}", text());
        }
    }

    /// One event of a long-running command: a JSON line with `--json`, else `text`.
    pub fn event(&self, doc: Json, text: impl std::fmt::Display) {
        if self.json {
            println!("{doc}");
        } else {
            println!("{text}");
        }
    }
}

/// `null` for an empty string, else the string: ids not known yet, optional paths.
pub fn or_null(s: &str) -> Json {
    if s.is_empty() {
        Json::Null
    } else {
        Json::String(s.to_owned())
    }
}

/// A rate for people: `1.23 M`, `456.7 k`, `12`.
pub fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

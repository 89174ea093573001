//! The authority seam (`AuthorityProvider`): how a platform (a window and GPU, audio, files,
//! module management) plugs into the node without touching its internals.
//!
//! An authority is granted to at most one module per node (the module claims it with
//! `interstice_module!(authorities: [..])`); a second claimant is refused. Each authority is an
//! implementation of [`AuthorityProvider`]: its kind, the host calls it links (in an import namespace of
//! its own), the lane its holder's invocations run on, how its events enter the ingress (through
//! the [`Holder`] it is given when its module is installed), and the resources it releases when
//! its module is removed or upgraded.
//!
//! Architecture Invariant: the node knows platform authorities (Gpu, Input, Audio, and any new
//! one) only through this trait. Adding one means implementing it (in the runtime, or in a
//! `platform/*` crate) and handing it to
//! [`NodeConfig::authorities`](crate::NodeConfig::authorities). Two built-in authorities also
//! reach into the node's own path, because what they govern is the node's: the Module authority
//! decides the access policy's publish and remove questions (`policy.rs`), and the File
//! authority's writes are staged with the invocation's transaction and written by the ordered
//! commit (`Authorities::stage_files`, `settle_files`), so that a file changes exactly when the
//! transaction that wrote it commits.

mod file;
mod module;

use std::collections::BTreeMap;
use std::sync::Arc;

use interstice_abi::{Authority as Kind, Event, ModuleSchema};
use wasmtime::Linker;

pub(crate) use file::Pending as FilePending;
pub use file::{FileAuthority, FileConfig, Hook};
pub use interstice_scheduler::LaneDriver;
pub use module::ModuleManager;

use crate::error::{LoadError, NodeError};
use crate::node::EventSink;
use crate::wasm::HostState;

/// Where the invocations of an authority's module run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// On the worker pool, like every other module.
    Pool,
    /// On a thread of its own that the scheduler starts when the module is installed (audio:
    /// a callback must never wait for the pool).
    Thread,
    /// On a thread the authority (or its embedder) owns, which runs the lane's invocations from
    /// its own loop (winit's event loop on the process's main thread): the authority gets the
    /// lane's driver in [`Holder::lane`].
    Driven,
}

/// A platform capability the node grants to one module.
pub trait AuthorityProvider: Send + Sync + 'static {
    /// Which authority this is.
    fn kind(&self) -> Kind;

    /// The import namespace of its host calls (e.g. `interstice_gpu`), if it has any. A module
    /// importing from it must hold the authority.
    fn imports(&self) -> Option<&'static str> {
        None
    }

    /// Links its host calls. Called once, when the node opens; the host calls are there for
    /// every module, and refuse modules that do not hold the authority.
    fn link(&self, _linker: &mut Linker<HostState>) -> Result<(), LoadError> {
        Ok(())
    }

    /// Where its holder's invocations run. By default, [`Lane::Pool`].
    fn lane(&self) -> Lane {
        Lane::Pool
    }

    /// Checks a module that claims it, before anything is installed; the error refuses the
    /// module.
    fn admit(&self, _schema: &ModuleSchema) -> Result<(), String> {
        Ok(())
    }

    /// Its module was installed, upgraded or loaded at start: from now on its events go to
    /// `holder`.
    fn attach(&self, _holder: Holder) -> Result<(), String> {
        Ok(())
    }

    /// Its module is being removed or replaced by an upgrade, or the node is closing: release
    /// what it holds.
    fn detach(&self, _module: &str) {}

    /// A hook of its holder for one of its events ran, on the invocation's thread; `ok` says
    /// whether the module succeeded. An error fails the invocation (e.g. the frame a render
    /// hook recorded does not validate).
    fn finish_hook(&self, _module: &str, _event: &Event, _ok: bool) -> Result<(), String> {
        Ok(())
    }

    /// Figures for the node's stats (`interstice node show`), as label and value.
    fn stats(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// What an authority gets when its module is attached.
pub struct Holder {
    /// The module holding the authority.
    pub module: String,
    /// Where the authority's events enter the node's ingress.
    pub events: EventSink,
    /// For [`Lane::Driven`]: the lane's driver. The module's invocations wait on it until the
    /// authority's own thread runs them with [`LaneDriver::run_pending`] (from its event loop:
    /// [`LaneDriver::set_waker`] says when). Dropping it closes the lane: what is queued there
    /// fails instead of running elsewhere. `None` for the other lanes.
    pub lane: Option<LaneDriver>,
}

/// The authorities a node grants, by kind.
#[derive(Clone, Default)]
pub(crate) struct Authorities {
    by_kind: BTreeMap<Kind, Arc<dyn AuthorityProvider>>,
    /// The built-in File authority, which the core and the commit also call directly.
    files: Option<Arc<FileAuthority>>,
}

impl Authorities {
    /// The built-in authorities (Module, and `files`) and the platform ones of `config`; two
    /// for one kind is an error.
    pub fn new(
        platform: &[Arc<dyn AuthorityProvider>],
        files: Arc<FileAuthority>,
    ) -> Result<Self, NodeError> {
        let mut by_kind: BTreeMap<Kind, Arc<dyn AuthorityProvider>> = BTreeMap::new();
        let builtin: [Arc<dyn AuthorityProvider>; 2] = [Arc::new(ModuleManager), files.clone()];
        for authority in builtin.iter().chain(platform) {
            let kind = authority.kind();
            if by_kind.insert(kind, authority.clone()).is_some() {
                return Err(NodeError::Load(LoadError::Engine(format!(
                    "two implementations of the {kind:?} authority were given to the node"
                ))));
            }
        }
        Ok(Authorities {
            by_kind,
            files: Some(files),
        })
    }

    /// The built-in File authority.
    pub fn files(&self) -> Option<&Arc<FileAuthority>> {
        self.files.as_ref()
    }

    /// Keeps the file changes of invocation `seq`, whose transaction applied, until its commit.
    pub fn stage_files(&self, seq: u64, pending: FilePending) {
        if let Some(files) = &self.files {
            files.stage(seq, pending);
        }
    }

    /// Invocation `seq` was committed (its file changes are written) or not (dropped).
    pub fn settle_files(&self, seq: u64, committed: bool) {
        if let Some(files) = &self.files {
            files.settle(seq, committed);
        }
    }

    /// The node is closing.
    pub fn close(&self) {
        if let Some(files) = &self.files {
            files.close();
        }
    }

    pub fn get(&self, kind: Kind) -> Option<&Arc<dyn AuthorityProvider>> {
        self.by_kind.get(&kind)
    }

    /// Links every authority's host calls.
    pub fn link(&self, linker: &mut Linker<HostState>) -> Result<(), LoadError> {
        for authority in self.by_kind.values() {
            authority.link(linker)?;
        }
        Ok(())
    }

    /// The authority whose host calls live in import namespace `imports`.
    pub fn by_imports(&self, imports: &str) -> Option<&Arc<dyn AuthorityProvider>> {
        self.by_kind.values().find(|a| a.imports() == Some(imports))
    }

    /// Every authority's figures, labelled with its kind.
    pub fn stats(&self) -> Vec<(String, String)> {
        self.by_kind
            .iter()
            .flat_map(|(kind, a)| {
                a.stats()
                    .into_iter()
                    .map(move |(label, value)| (format!("{kind:?} {label}"), value))
            })
            .collect()
    }
}

/// What to do when a module claims an authority this build does not provide, with its leading
/// separator.
pub(crate) fn missing_hint(kind: Kind) -> String {
    match kind {
        Kind::Gpu | Kind::Input => {
            "; this interstice was built without the window platform (the `window` feature of interstice-cli)".into()
        }
        Kind::Audio => {
            "; this interstice was built without audio (the `audio` feature of interstice-cli, which needs libasound2-dev on Linux)".into()
        }
        Kind::File | Kind::Module => String::new(),
    }
}

//! Module lifecycle: install, publish (install or upgrade), remove, and reloading the
//! installed modules when the node opens.

use interstice_store::Readable;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use interstice_abi::{ABI_VERSION, Authority, Event, Field, ModuleSchema, Value};
use parking_lot::Mutex;

use super::NodeInner;
use super::commit::Driver;
use super::commit::system_meta;
use super::ingress::{EventSink, Submission};
use super::lane_name;
use crate::authority::{Holder, Lane};
use crate::core::{Installed, NameMap, Query, Reducer};
use crate::error::{LoadError, NodeError};
use crate::exec::{Callee, Grant, Permissions};
use crate::feed::{Kept, Restored};
use crate::partition::PartGrant;
use crate::system::{
    self, FedChange, FedTable, InstalledModule, KeptTrigger, MODULE_TABLES, create_module_tables,
};

/// What [`Node::publish`](NodeInner::publish) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    Installed(ModuleSchema),
    Upgraded { from: String, to: ModuleSchema },
}

impl NodeInner {
    /// Installs a module: validates it, persists it, creates its tables, then fires `init`
    /// (first install only) and `load`.
    pub fn install(&self, wasm: &[u8]) -> Result<ModuleSchema, NodeError> {
        let module = self.prepare(wasm)?;
        self.install_prepared(module, wasm)
    }

    fn install_prepared(&self, module: Installed, wasm: &[u8]) -> Result<ModuleSchema, NodeError> {
        let name = module.schema().name.clone();
        let schema = module.schema().clone();
        let first_install = {
            // Tables and modules change only while no window runs.
            let _driver = self.driver.lock();
            if self.core.modules.load().contains_key(&name) {
                return Err(NodeError::AlreadyInstalled(name));
            }
            self.write_module_file(&name, wasm)?;
            self.register(module)?;
            let key = Value::String(name.clone());
            let first =
                system::get::<InstalledModule>(&self.store().read(), self.tables.modules, key)?
                    .is_none();
            if first {
                let order = self.store().read().len(self.tables.modules)? as u64;
                let mut tx = self.store().begin();
                let row = InstalledModule {
                    name: name.clone(),
                    installed_at: order,
                };
                system::insert(&mut tx, self.tables.modules, row)?;
                let _installed = tx.commit(system_meta("install", &name))?;
            }
            first
        };
        self.attach_authorities(&schema);
        if first_install {
            self.fire_lifecycle(&name, &Event::Init)?;
        }
        self.fire_lifecycle(&name, &Event::Load)?;
        Ok(schema)
    }

    /// Installs `wasm`, or upgrades the installed module of the same name. An upgrade keeps the
    /// data: every table of the installed version must exist unchanged in the new one (new
    /// tables may be added), otherwise it is refused and nothing changes. Fires `load`.
    pub fn publish(&self, wasm: &[u8]) -> Result<Published, NodeError> {
        self.publish_if(wasm, |_| Ok(()))
    }

    /// [`publish`](Self::publish), once `allow` has accepted the validated module's schema;
    /// its error refuses the module ([`NodeError::Unauthorized`]) and nothing changes.
    pub(crate) fn publish_if(
        &self,
        wasm: &[u8],
        allow: impl FnOnce(&ModuleSchema) -> Result<(), String>,
    ) -> Result<Published, NodeError> {
        let module = self.prepare(wasm)?;
        allow(module.schema()).map_err(NodeError::Unauthorized)?;
        let name = module.schema().name.clone();
        let Some(old) = self.core.module(&name) else {
            return self
                .install_prepared(module, wasm)
                .map(Published::Installed);
        };
        check_upgrade(old.schema(), module.schema())?;
        let from = old.schema().version.clone();
        let schema = module.schema().clone();
        {
            let mut driver = self.driver.lock();
            self.detach_authorities(old.schema(), &mut driver);
            self.write_module_file(&name, wasm)?;
            self.register(module)?;
        }
        self.attach_authorities(&schema);
        self.fire_lifecycle(&name, &Event::Load)?;
        Ok(Published::Upgraded { from, to: schema })
    }

    /// Removes a module with its tables, rows and timers. Installing it again fires `init`.
    pub fn remove(&self, name: &str) -> Result<(), NodeError> {
        interstice_abi::check_module_name(name).map_err(NodeError::InvalidName)?;
        let mut driver = self.driver.lock();
        let mut removed = None;
        self.core.modules.rcu(|modules| {
            let mut modules = std::collections::BTreeMap::clone(modules);
            removed = modules.remove(name);
            modules
        });
        let module = removed.ok_or_else(|| NodeError::NoSuchModule(name.to_owned()))?;
        self.detach_authorities(module.schema(), &mut driver);
        self.core.reindex();
        let tables = module
            .schema()
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .chain(MODULE_TABLES);
        for table in tables {
            if let Some(id) = self.core.table_id(name, table) {
                self.feeds.drop_table(id);
                self.store().drop_table(id)?;
            }
        }
        self.modules_changed.send_modify(|n| *n += 1);
        let mut tx = self.store().begin();
        tx.delete(self.tables.modules, &Value::String(name.to_owned()))?;
        // Its durable feeds go with its tables: the rows naming `<name>.<table>`.
        let prefix = format!("{name}.");
        {
            let view = self.store().read();
            for fed in system::scan::<FedTable>(&view, self.tables.feeds)? {
                if fed.table.starts_with(&prefix) {
                    tx.delete(self.tables.feeds, &Value::String(fed.table))?;
                }
            }
            for change in system::scan::<FedChange>(&view, self.tables.feed)? {
                if change.table.starts_with(&prefix) {
                    tx.delete(self.tables.feed, &Value::U64(change.id))?;
                }
            }
        }
        let _removed = tx.commit(system_meta("remove", name))?;
        if let Some(path) = self.module_file(name) {
            std::fs::remove_file(&path).map_err(|source| NodeError::Io {
                context: format!("cannot remove {}", path.display()),
                source,
            })?;
        }
        Ok(())
    }

    /// Where module `name`'s wasm is kept, on a node with a data directory. Only for names
    /// that passed `check_module_name`: a name never becomes a path otherwise.
    fn module_file(&self, name: &str) -> Option<std::path::PathBuf> {
        let dir = self.config.data_dir.as_ref()?;
        interstice_abi::check_module_name(name).ok()?;
        Some(dir.join("modules").join(format!("{name}.wasm")))
    }

    fn write_module_file(&self, name: &str, wasm: &[u8]) -> Result<(), NodeError> {
        match self.module_file(name) {
            Some(path) => write_atomically(&path, wasm),
            None => Ok(()),
        }
    }

    /// Compiles and validates a module and checks it may be installed here: its name, and the
    /// authorities it claims (provided by this node, held by no other module, admitted by the
    /// authority). Changes nothing.
    fn prepare(&self, wasm: &[u8]) -> Result<Installed, NodeError> {
        let (compiled, first) = self.core.compile(wasm)?;
        let schema = &compiled.schema;
        if schema.name.starts_with("__") {
            return Err(NodeError::Reserved(schema.name.clone()));
        }
        let registry = Arc::new(
            schema
                .validate(ABI_VERSION)
                .map_err(|e| LoadError::BadSchema(e.to_string()))?,
        );
        self.check_authorities(schema, &compiled.platform_imports())?;
        let qualify = |t: &str| {
            if t.contains('.') {
                t.to_owned()
            } else {
                format!("{}.{t}", schema.name)
            }
        };
        let nodes: Arc<BTreeSet<String>> =
            Arc::new(schema.nodes.iter().map(|n| n.name.clone()).collect());
        // Whole tables go into `reads`/`writes`; a declared partition (`cells[region]`)
        // becomes a grant evaluated from each call's arguments (`partition.rs`).
        let permissions = |declared: &Option<interstice_abi::Access>, args: &[Field]| {
            let mut reads = BTreeSet::new();
            let mut writes = BTreeSet::new();
            let mut partitions = Vec::new();
            if let Some(a) = declared {
                let all = a.reads.iter().map(|d| (d, false));
                for (text, write) in all.chain(a.writes.iter().map(|d| (d, true))) {
                    // The validator parsed every declaration already.
                    let Ok(table_ref) = text.parse::<interstice_abi::partition::TableRef>() else {
                        continue;
                    };
                    let table = qualify(&table_ref.table);
                    match table_ref.parts {
                        None if write => drop(writes.insert(table)),
                        None => drop(reads.insert(table)),
                        Some(parts) => partitions.push(PartGrant {
                            table: table.into(),
                            parts,
                            write,
                            declared: text.clone(),
                        }),
                    }
                }
            }
            Arc::new(Permissions {
                grant: match declared {
                    None => Grant::OwnModule,
                    Some(a) => Grant::Declared {
                        reads,
                        writes,
                        calls: a.calls.iter().map(|c| qualify(c)).collect(),
                        partitions,
                    },
                },
                nodes: nodes.clone(),
                params: args
                    .iter()
                    .map(|f| (f.name.clone(), f.ty.clone()))
                    .collect(),
            })
        };
        // One name for the module, shared by its functions' frames and its tasks.
        let module_name: Arc<str> = Arc::from(schema.name.as_str());
        let reducers: NameMap<Reducer> = schema
            .reducers
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name: Arc<str> = Arc::from(r.name.as_str());
                let reducer = Reducer {
                    callee: Arc::new(Callee {
                        module: module_name.clone(),
                        function: name.clone(),
                        permissions: permissions(&r.access, &r.args),
                    }),
                    name,
                    index: i as u32,
                    args: r.args.iter().map(|f| f.ty.clone()).collect(),
                    on: r.on.clone(),
                };
                (r.name.clone(), reducer)
            })
            .collect();
        let queries: NameMap<Query> = schema
            .queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let name: Arc<str> = Arc::from(q.name.as_str());
                let query = Query {
                    callee: Arc::new(Callee {
                        module: module_name.clone(),
                        function: name,
                        permissions: permissions(&q.access, &q.args),
                    }),
                    index: i as u32,
                    args: q.args.iter().map(|f| f.ty.clone()).collect(),
                    returns: q.returns.clone(),
                };
                (q.name.clone(), query)
            })
            .collect();
        Ok(Installed {
            name: module_name,
            compiled,
            registry,
            reducers,
            queries,
            pool: Mutex::new(vec![(0, Box::new(first))]),
        })
    }

    /// Every authority `schema` claims is provided by this node, held by no other module and
    /// admits it; every authority whose host calls it imports is one it claims.
    fn check_authorities(
        &self,
        schema: &ModuleSchema,
        imports: &[String],
    ) -> Result<(), NodeError> {
        let authorities = &self.core.authorities;
        for kind in &schema.authorities {
            let Some(authority) = authorities.get(*kind) else {
                return Err(NodeError::AuthorityMissing {
                    module: schema.name.clone(),
                    authority: *kind,
                    hint: crate::authority::missing_hint(*kind),
                });
            };
            // The installed version of the same module may hold it: that is an upgrade.
            if let Some(holder) =
                self.core.modules.load().values().find(|m| {
                    m.schema().name != schema.name && m.schema().authorities.contains(kind)
                })
            {
                return Err(NodeError::AuthorityTaken {
                    authority: *kind,
                    holder: holder.schema().name.clone(),
                });
            }
            authority
                .admit(schema)
                .map_err(|reason| NodeError::AuthorityRefused {
                    module: schema.name.clone(),
                    authority: *kind,
                    reason,
                })?;
        }
        for namespace in imports {
            match authorities.by_imports(namespace) {
                Some(a) if schema.authorities.contains(&a.kind()) => {}
                Some(a) => {
                    return Err(NodeError::AuthorityRefused {
                        module: schema.name.clone(),
                        authority: a.kind(),
                        reason: format!(
                            "it imports `{namespace}` host calls without claiming the authority; add `{:?}` to `interstice_module!(authorities: [..])`",
                            a.kind()
                        ),
                    });
                }
                // Not linked: instantiating it failed already with the import's name.
                None => {}
            }
        }
        Ok(())
    }

    /// Hands each authority `schema` claims its module: a lane first, if the authority wants
    /// one (so a node whose modules hold no such authority has no lane threads), then its
    /// event sink.
    fn attach_authorities(&self, schema: &ModuleSchema) {
        for kind in &schema.authorities {
            let Some(authority) = self.core.authorities.get(*kind) else {
                continue;
            };
            let lane = match authority.lane() {
                Lane::Pool => Ok(None),
                Lane::Thread => {
                    let mut driver = self.driver.lock();
                    driver
                        .scheduler
                        .add_lane(lane_name(*kind))
                        .map(|id| (id, None))
                        .map(Some)
                }
                Lane::Driven => {
                    let mut driver = self.driver.lock();
                    driver
                        .scheduler
                        .add_driven_lane(lane_name(*kind))
                        .map(|(id, owner)| (id, Some(owner)))
                        .map(Some)
                }
            };
            let lane = match lane {
                Ok(Some((id, owner))) => {
                    self.core.set_lane(*kind, id);
                    self.core.reindex();
                    owner
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(module = %schema.name, authority = ?kind, error = %e, "no lane for the authority; its module runs on the pool");
                    None
                }
            };
            let holder = Holder {
                module: schema.name.clone(),
                events: EventSink::new(schema.name.clone(), self.entrance.clone()),
                lane,
            };
            if let Err(e) = authority.attach(holder) {
                tracing::error!(module = %schema.name, authority = ?kind, error = %e, "the authority could not start for its module");
            }
        }
    }

    /// Tells each authority `schema` claims that its module goes, and closes its lane.
    pub(super) fn detach_authorities(&self, schema: &ModuleSchema, driver: &mut Driver) {
        for kind in &schema.authorities {
            if let Some(authority) = self.core.authorities.get(*kind) {
                authority.detach(&schema.name);
            }
            if let Some(lane) = self.core.take_lane(*kind) {
                if let Err(e) = driver.scheduler.remove_lane(lane) {
                    tracing::warn!(authority = ?kind, error = %e, "removing the authority's lane");
                }
                self.core.reindex();
            }
        }
    }

    /// Creates the module's tables and makes it callable. Call with the driver lock held.
    fn register(&self, module: Installed) -> Result<(), NodeError> {
        let name = module.schema().name.clone();
        for table in &module.schema().tables {
            self.store()
                .create_table(&name, table.clone(), module.registry.clone())?;
        }
        create_module_tables(self.store(), &name)?;
        if module.schema().authorities.contains(&Authority::File) {
            system::create_file_table(self.store(), &name)?;
        }
        let module = Arc::new(module);
        self.core.modules.rcu(|modules| {
            let mut modules = std::collections::BTreeMap::clone(modules);
            modules.insert(name.clone(), module.clone());
            modules
        });
        self.core.reindex();
        self.modules_changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Registers the modules the store says are installed, restores the durable feeds, runs
    /// the triggers a crash left, then fires every module's `load`.
    pub(super) fn reload_modules(&self) -> Result<(), NodeError> {
        if self.config.data_dir.is_none() {
            return Ok(());
        }
        let mut installed =
            system::scan::<InstalledModule>(&self.store().read(), self.tables.modules)?;
        installed.sort_by_key(|m| m.installed_at);
        for InstalledModule { name, .. } in &installed {
            let path = self.module_file(name).unwrap_or_default();
            let wasm = std::fs::read(&path).map_err(|source| NodeError::Io {
                context: format!("cannot read installed module {}", path.display()),
                source,
            })?;
            let module = self.prepare(&wasm)?;
            self.register(module)?;
        }
        self.restore_feeds()?;
        // Kept triggers of a module holding an authority may use it (a File module's files).
        for InstalledModule { name, .. } in &installed {
            if let Some(module) = self.core.module(name) {
                self.attach_authorities(module.schema());
            }
        }
        // What was committed before the node stopped comes before anything new.
        self.resume_triggers()?;
        for InstalledModule { name, .. } in installed {
            self.fire_lifecycle(&name, &Event::Load)?;
        }
        Ok(())
    }

    /// Reinstates the durable feeds, so that changes committed from now on are kept for the
    /// remote subscribers that reconnect, after those committed before the node stopped.
    fn restore_feeds(&self) -> Result<(), NodeError> {
        let view = self.store().read();
        let mut feeds: HashMap<String, Restored> = HashMap::new();
        let mut orphans = Vec::new();
        for fed in system::scan::<FedTable>(&view, self.tables.feeds)? {
            match self.store().table_id(&fed.table) {
                Some(table) => {
                    let restored = Restored {
                        table,
                        name: fed.table.clone(),
                        // A feed starts at a commit boundary.
                        since: (fed.since, 0),
                        trimmed: fed.trimmed,
                        kept: Vec::new(),
                    };
                    feeds.insert(fed.table, restored);
                }
                None => orphans.push(fed.table),
            }
        }
        if !orphans.is_empty() {
            tracing::warn!(tables = ?orphans, "durable feeds of tables that no longer exist are ignored");
        }
        for change in system::scan::<FedChange>(&view, self.tables.feed)? {
            let Some(feed) = feeds.get_mut(&change.table) else {
                continue;
            };
            let Some(kind) = crate::feed::kind_from_code(change.kind) else {
                continue;
            };
            let part = u32::try_from(change.part).unwrap_or(u32::MAX);
            feed.kept.push((
                change.id,
                Kept {
                    position: (change.seq, part),
                    kind,
                    rows: change.rows,
                },
            ));
        }
        drop(view);
        // Scanned in primary-key (id) order, so each feed's changes are in commit order.
        self.feeds.restore(feeds.into_values().collect());
        Ok(())
    }

    /// Runs the subscription triggers that durable commits emitted and that had not run when
    /// the node stopped, in the order they were emitted, at the time they were emitted for.
    fn resume_triggers(&self) -> Result<(), NodeError> {
        let pending = system::scan::<KeptTrigger>(&self.store().read(), self.tables.triggers)?;
        if pending.is_empty() {
            return Ok(());
        }
        tracing::info!(
            triggers = pending.len(),
            "running the subscription triggers of commits made before the node stopped"
        );
        self.entrance.submit_all(pending.into_iter().map(|t| {
            Submission::call(t.module, t.reducer, t.args)
                .kept(t.id)
                .at(t.time)
        }));
        self.drive()
    }

    /// Enqueues `module`'s reducers subscribed to `event`, in name order; returns whether
    /// there were any.
    pub(super) fn submit_hooks(
        &self,
        module: &str,
        event: &Event,
        args: &[u8],
    ) -> Result<bool, NodeError> {
        let hooks = self.entrance.hooks(module, event, args)?;
        let any = !hooks.is_empty();
        self.entrance.submit_all(hooks);
        Ok(any)
    }

    fn fire_lifecycle(&self, module: &str, event: &Event) -> Result<(), NodeError> {
        if self.submit_hooks(module, event, &[])? {
            self.drive()?;
        }
        Ok(())
    }
}

/// An upgrade keeps the data: every table of the installed version must exist unchanged in the
/// new one (new tables may be added).
fn check_upgrade(old: &ModuleSchema, new: &ModuleSchema) -> Result<(), NodeError> {
    for table in &old.tables {
        let reason = match new.table(&table.name) {
            None => format!(
                "it drops table `{}`; removing a table loses its rows — remove the module first if that is intended",
                table.name
            ),
            Some(changed) if changed != table => format!(
                "table `{}` changed its schema; migrations are not supported yet",
                table.name
            ),
            Some(_) => continue,
        };
        return Err(NodeError::Incompatible {
            module: new.name.clone(),
            reason,
        });
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    use std::io::Write;
    let io = |context: String| move |source| NodeError::Io { context, source };
    let tmp = path.with_extension("wasm.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        // Owner-only, like the rest of the node's data.
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .map_err(io(format!("cannot write {}", tmp.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("cannot install {}", path.display())))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

//! What the node derives from its set of modules, rebuilt whenever a module comes or goes:
//! each reducer's access set for the scheduler (with the closure over nested calls), table
//! subscriptions, the host tables of each module, and the tables host calls open.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use interstice_abi::{Authority, Event, TableEvent, TypeRegistry};
use interstice_scheduler::{self as sched, LaneId};
use interstice_store::{Store, TableId};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::{Installed, NameMap};
use crate::exec::{Grant, TableMeta, TableResolver};
use crate::partition::{self, PartGrant, Parts};
use crate::system::{Delivered, FileAccess, HostRow, OutboxCall, Timer};

/// A reducer subscribed to changes of one table.
#[derive(Clone)]
pub(super) struct Subscriber {
    pub kind: TableEvent,
    pub module: Arc<str>,
    pub reducer: Arc<str>,
}

/// A module's host tables.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostTables {
    pub timers: TableId,
    pub outbox: TableId,
    pub delivered: TableId,
}

/// Derived from the installed modules.
#[derive(Default)]
pub(super) struct Index {
    /// The modules it was built from: what an invocation looks its module up in, through the
    /// index it loads anyway (one shared load per call, and a borrow instead of a count).
    pub modules: Arc<BTreeMap<String, Arc<Installed>>>,
    pub registries: Arc<BTreeMap<String, Arc<TypeRegistry>>>,
    pub subscribers: HashMap<TableId, Vec<Subscriber>>,
    /// The scheduler's view of each reducer's access, by module then reducer: what it declares
    /// and, transitively, everything it may call.
    pub access: NameMap<NameMap<Arc<sched::AccessSet>>>,
    pub host_tables: NameMap<HostTables>,
    /// Reducers subscribed to tables of other nodes, by event, in module then reducer order.
    pub remote_subscribers: HashMap<Event, Vec<(String, String)>>,
    pub lanes: NameMap<LaneId>,
    /// Every module table by full name, as host calls open it: made once per index, so that
    /// each invocation's context shares it instead of allocating its own.
    pub resolver: Option<TableResolver>,
    /// Reducers that declare partitions: what their arguments must be evaluated with when a
    /// call enters the ingress. Their `access` above leaves those tables out.
    pub part_plans: NameMap<NameMap<Arc<PartPlan>>>,
}

/// What a call's partition declarations are planned with: evaluated from its arguments into
/// (table, partition) accesses, or, when they cannot be, the whole tables.
pub(crate) struct PartPlan {
    pub grants: Vec<PartGrant>,
    pub params: Arc<[(String, interstice_abi::Type)]>,
    /// Where the named arguments lie in the encoded call, when that is fixed: planning a call
    /// then reads them in place (it runs on the driving thread, for every call).
    pub fixed: Option<partition::FixedArgs>,
    pub registry: Arc<TypeRegistry>,
    /// The scheduler's id of each grant's table, in the order of `grants`.
    pub tables: Vec<Option<sched::ResourceId>>,
    /// Recent calls' plans by the values of their partition arguments. Most calls name
    /// partitions named before (a simulation's regions, a bank's lanes), and planning one then
    /// costs a lookup instead of building an access set and its partitions (a small reducer's
    /// plan was as much work as running it, on the one thread that plans for every worker).
    /// A plan is a function of the arguments and the index this belongs to, so it never goes
    /// stale; the map is emptied when it reaches [`PLANS_KEPT`].
    pub planned: Mutex<HashMap<PartKey, Planned, foldhash::fast::RandomState>>,
}

/// The values of a call's partition arguments, in the order of [`partition::FixedArgs`].
pub(crate) type PartKey = smallvec::SmallVec<[i128; 2]>;

/// A call's access set, and its partitions for the host's checks.
pub(crate) type Planned = (Arc<sched::AccessSet>, Option<Arc<Parts>>);

/// How many plans one reducer keeps.
const PLANS_KEPT: usize = 4096;

impl PartPlan {
    pub fn new(
        grants: Vec<PartGrant>,
        params: Arc<[(String, interstice_abi::Type)]>,
        registry: Arc<TypeRegistry>,
        tables: Vec<Option<sched::ResourceId>>,
    ) -> PartPlan {
        PartPlan {
            fixed: partition::FixedArgs::new(&params, &grants),
            grants,
            params,
            registry,
            tables,
            planned: Mutex::default(),
        }
    }

    /// The access set of a call with `args` to the reducer whose own access is `base`, and
    /// its partitions; kept for the next call that names the same ones.
    pub fn plan(&self, base: &Arc<sched::AccessSet>, args: &[u8]) -> Planned {
        let key = self.fixed.as_ref().and_then(|fixed| fixed.values(args));
        if let Some(key) = &key
            && let Some(planned) = self.planned.lock().get(key)
        {
            return planned.clone();
        }
        let mut access = sched::AccessSet::clone(base);
        let parts = self.apply(&mut access, args).map(Arc::new);
        let planned = (Arc::new(access), parts);
        if let Some(key) = key {
            let mut kept = self.planned.lock();
            if kept.len() >= PLANS_KEPT {
                kept.clear();
            }
            kept.insert(key, planned.clone());
        }
        planned
    }

    /// Adds to `access` the partitions the call with `args` touches, and returns them for the
    /// host's checks; adds the whole tables (and returns `None`) when they cannot be evaluated.
    fn apply(&self, access: &mut sched::AccessSet, args: &[u8]) -> Option<Parts> {
        let in_place = self
            .fixed
            .as_ref()
            .and_then(|fixed| partition::evaluate_with(&self.grants, |n| fixed.get(args, n)));
        let Some(parts) = in_place
            .or_else(|| partition::evaluate(&self.grants, &self.params, args, &self.registry))
        else {
            for (grant, table) in self.grants.iter().zip(&self.tables) {
                if let Some(table) = *table {
                    *access = if grant.write {
                        std::mem::take(access).write(table)
                    } else {
                        std::mem::take(access).read(table)
                    };
                }
            }
            return None;
        };
        for (grant, table) in self.grants.iter().zip(&self.tables) {
            let (Some(table), Some(found)) = (*table, parts.get(&grant.table)) else {
                continue;
            };
            // Writes are planned as writes; reads of partitions it also writes need nothing
            // more.
            if grant.write {
                for v in found.writes.values() {
                    access.add_write_part(table, partition::sched_part(v));
                }
            } else {
                for v in found.reads.values() {
                    if !found.writes.contains(v) {
                        access.add_read_part(table, partition::sched_part(v));
                    }
                }
            }
        }
        Some(parts)
    }
}

/// A reducer or query, as a node of the call graph.
type Function = (String, String);

impl Index {
    pub fn build(
        store: &Store,
        modules: &BTreeMap<String, Arc<Installed>>,
        lanes: &HashMap<Authority, LaneId>,
    ) -> Index {
        let mut index = Index::default();
        let mut tables: NameMap<Arc<TableMeta>> = NameMap::default();
        let mut registries = BTreeMap::new();
        // Each function's own access, and what it calls: the call graph.
        let mut graph: DiGraph<Function, ()> = DiGraph::new();
        let mut base: Vec<sched::AccessSet> = Vec::new();
        // The access of reducers with partition declarations, without those tables: what
        // their calls are planned with, before the partitions their arguments name.
        let mut own_without_parts: Vec<(NodeIndex, sched::AccessSet)> = Vec::new();
        let mut nodes: HashMap<Function, NodeIndex> = HashMap::new();
        let mut calls: Vec<(NodeIndex, Vec<String>)> = Vec::new();
        for (name, module) in modules {
            registries.insert(name.clone(), module.registry.clone());
            let mut own_tables = Vec::new();
            for table in &module.schema().tables {
                let full = format!("{name}.{}", table.name);
                if let Some(id) = store.table_id(&full) {
                    own_tables.push(id);
                    let meta = TableMeta::new(id, full.clone(), table, module.registry.clone());
                    tables.insert(full, Arc::new(meta));
                }
            }
            // The File module's file access, ordered like a table (`system::FileAccess`).
            let files = module
                .schema()
                .authorities
                .contains(&Authority::File)
                .then(|| store.table_id(&format!("{name}.{}", FileAccess::TABLE)))
                .flatten()
                .map(to_sched);
            let host = host_tables(store, name);
            if let Some(host) = host {
                index.host_tables.insert(name.clone(), host);
            }
            if let Some(lane) = module
                .schema()
                .authorities
                .iter()
                .find_map(|a| lanes.get(a))
            {
                index.lanes.insert(name.clone(), *lane);
            }
            let ids = |names: &std::collections::BTreeSet<String>| -> Vec<sched::ResourceId> {
                names
                    .iter()
                    .filter_map(|n| store.table_id(n))
                    .map(to_sched)
                    .collect()
            };
            let mut functions: Vec<(&String, &Grant, bool)> = module
                .reducers
                .iter()
                .map(|(n, r)| (n, &r.callee.permissions.grant, false))
                .chain(
                    module
                        .queries
                        .iter()
                        .map(|(n, q)| (n, &q.callee.permissions.grant, true)),
                )
                .collect();
            functions.sort_by_key(|(n, _, query)| (*query, *n));
            for (function, grant, query) in functions {
                let access = match grant {
                    Grant::OwnModule if query => {
                        sched::AccessSet::from_tables(own_tables.iter().copied().map(to_sched), [])
                    }
                    Grant::OwnModule => sched::AccessSet::from_tables(
                        [],
                        own_tables
                            .iter()
                            .copied()
                            .chain(host.map(|h| h.timers))
                            .chain(host.map(|h| h.outbox))
                            .map(to_sched),
                    ),
                    Grant::Declared {
                        reads,
                        writes,
                        calls: declared,
                        ..
                    } => {
                        // Scheduling one of its own reducers writes the module's timers;
                        // calling another node writes its outbox.
                        let schedules = declared.iter().any(|c| {
                            c.starts_with(&format!("{name}."))
                                && interstice_abi::remote_target(c).is_none()
                        });
                        let remote = declared
                            .iter()
                            .any(|c| interstice_abi::remote_target(c).is_some());
                        sched::AccessSet::from_tables(
                            ids(reads),
                            ids(writes)
                                .into_iter()
                                .chain(host.filter(|_| schedules).map(|h| to_sched(h.timers)))
                                .chain(host.filter(|_| remote).map(|h| to_sched(h.outbox))),
                        )
                    }
                };
                let access = match files {
                    Some(files) if query => access.read(files),
                    Some(files) => access.write(files),
                    None => access,
                };
                let key = (name.clone(), function.clone());
                let node = graph.add_node(key.clone());
                nodes.insert(key, node);
                let grants = match grant {
                    Grant::Declared { partitions, .. } => partitions.as_slice(),
                    Grant::OwnModule => &[],
                };
                if grants.is_empty() {
                    base.push(access);
                } else {
                    let tables: Vec<Option<sched::ResourceId>> = grants
                        .iter()
                        .map(|g| store.table_id(&g.table).map(to_sched))
                        .collect();
                    // Callers see these tables whole: a nested call's arguments are not known
                    // when its caller is planned.
                    let mut whole = access.clone();
                    for (g, t) in grants.iter().zip(&tables) {
                        if let Some(t) = *t {
                            whole = if g.write {
                                whole.write(t)
                            } else {
                                whole.read(t)
                            };
                        }
                    }
                    base.push(whole);
                    if !query && let Some(r) = module.reducers.get(function.as_str()) {
                        own_without_parts.push((node, access));
                        index.part_plans.entry(name.clone()).or_default().insert(
                            function.clone(),
                            Arc::new(PartPlan::new(
                                grants.to_vec(),
                                r.callee.permissions.params.clone(),
                                module.registry.clone(),
                                tables,
                            )),
                        );
                    }
                }
                if let Grant::Declared {
                    calls: declared, ..
                } = grant
                    && !declared.is_empty()
                {
                    calls.push((node, declared.iter().cloned().collect()));
                }
            }
            // Subscribers in module order, then reducer name order: a deterministic trigger
            // order.
            let mut reducers: Vec<(&String, &super::Reducer)> = module.reducers.iter().collect();
            reducers.sort_by_key(|(n, _)| *n);
            for (reducer, r) in reducers {
                if let Some(Event::Table {
                    node: None,
                    module: owner,
                    table,
                    kind,
                }) = &r.on
                    && let Some(id) = store.table_id(&format!("{owner}.{table}"))
                {
                    index.subscribers.entry(id).or_default().push(Subscriber {
                        kind: *kind,
                        module: module.name.clone(),
                        reducer: r.name.clone(),
                    });
                }
                if let Some(event @ Event::Table { node: Some(_), .. }) = &r.on {
                    index
                        .remote_subscribers
                        .entry(event.clone())
                        .or_default()
                        .push((name.clone(), reducer.clone()));
                }
            }
        }
        for (caller, callees) in calls {
            for callee in callees {
                let Some((m, f)) = callee.split_once('.') else {
                    continue;
                };
                if let Some(&target) = nodes.get(&(m.to_owned(), f.to_owned())) {
                    graph.add_edge(caller, target, ());
                }
            }
        }
        let mut effective = close_over_calls(&graph, &base);
        // A reducer with partition declarations is planned with its own access without them,
        // plus everything it may call (whole), plus, per call, its partitions.
        for (node, own) in own_without_parts {
            let mut reads = own.reads().to_vec();
            let mut writes = own.writes().to_vec();
            for callee in graph.neighbors(node) {
                reads.extend_from_slice(effective[callee.index()].reads());
                writes.extend_from_slice(effective[callee.index()].writes());
            }
            let mut planned = sched::AccessSet::from_tables(reads, writes);
            if own.is_exclusive() {
                planned = sched::AccessSet::exclusive();
            }
            effective[node.index()] = planned;
        }
        for (node, access) in graph.node_indices().zip(effective) {
            let (module, function) = &graph[node];
            // Queries only serve the closure: the scheduler plans reducers.
            if modules
                .get(module)
                .is_some_and(|m| m.reducers.contains_key(function))
            {
                index
                    .access
                    .entry(module.clone())
                    .or_default()
                    .insert(function.clone(), Arc::new(access));
            }
        }
        index.registries = Arc::new(registries);
        index.resolver = Some(Arc::new(move |full: &str| tables.get(full).cloned()));
        index
    }
}

/// Each function's effective access: its own, united with that of everything it may call,
/// transitively. A nested call runs inside its caller's transaction, so the scheduler must
/// treat the caller as touching all of it. Computed over the strongly connected components of
/// the call graph (`tarjan_scc` yields a component after every component it reaches), so
/// cycles and chains of any depth get the whole union, whatever the limit on nesting at run
/// time.
pub(super) fn close_over_calls(
    graph: &DiGraph<Function, ()>,
    base: &[sched::AccessSet],
) -> Vec<sched::AccessSet> {
    let mut effective: Vec<Option<sched::AccessSet>> = vec![None; graph.node_count()];
    for component in tarjan_scc(graph) {
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        for &node in &component {
            let own = &base[node.index()];
            reads.extend_from_slice(own.reads());
            writes.extend_from_slice(own.writes());
            for callee in graph.neighbors(node) {
                // Callees outside the component were closed already; inside it, their own
                // access is in this union.
                if let Some(done) = &effective[callee.index()] {
                    reads.extend_from_slice(done.reads());
                    writes.extend_from_slice(done.writes());
                }
            }
        }
        let union = sched::AccessSet::from_tables(reads, writes);
        for node in component {
            effective[node.index()] = Some(union.clone());
        }
    }
    effective
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
}

fn host_tables(store: &Store, module: &str) -> Option<HostTables> {
    let id = |table: &str| store.table_id(&format!("{module}.{table}"));
    Some(HostTables {
        timers: id(Timer::TABLE)?,
        outbox: id(OutboxCall::TABLE)?,
        delivered: id(Delivered::TABLE)?,
    })
}

/// The scheduler's number for a store table. Both are dense from zero; the scheduler keeps its
/// own type so that it depends on nothing of the store.
pub(crate) fn to_sched(id: TableId) -> sched::ResourceId {
    sched::ResourceId(id.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call graph of `edges` over functions `f0..fn`, where `fi` writes table `i`.
    fn closed(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<u32>> {
        let mut graph = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..n)
            .map(|i| graph.add_node(("m".to_owned(), format!("f{i}"))))
            .collect();
        for &(a, b) in edges {
            graph.add_edge(nodes[a], nodes[b], ());
        }
        let base: Vec<sched::AccessSet> = (0..n)
            .map(|i| sched::AccessSet::new().write(sched::ResourceId(i as u32)))
            .collect();
        close_over_calls(&graph, &base)
            .iter()
            .map(|a| a.writes().iter().map(|t| t.0).collect())
            .collect()
    }

    #[test]
    fn a_chain_deeper_than_the_nesting_limit_gets_the_whole_union() {
        let edges: Vec<(usize, usize)> = (0..19).map(|i| (i, i + 1)).collect();
        let effective = closed(20, &edges);
        assert_eq!(effective[0], (0..20).collect::<Vec<u32>>());
        assert_eq!(effective[10], (10..20).collect::<Vec<u32>>());
        assert_eq!(effective[19], vec![19]);
    }

    #[test]
    fn a_cycle_gets_the_union_of_its_members_and_what_they_call() {
        // f0 → f1 → f0, f1 → f2; f3 calls nothing.
        let effective = closed(4, &[(0, 1), (1, 0), (1, 2)]);
        assert_eq!(effective[0], vec![0, 1, 2]);
        assert_eq!(effective[1], vec![0, 1, 2]);
        assert_eq!(effective[2], vec![2]);
        assert_eq!(effective[3], vec![3]);
    }

    #[test]
    fn diamonds_and_self_calls_close_once() {
        // f0 → f1, f0 → f2, f1 → f3, f2 → f3, f3 → f3.
        let effective = closed(4, &[(0, 1), (0, 2), (1, 3), (2, 3), (3, 3)]);
        assert_eq!(effective[0], vec![0, 1, 2, 3]);
        assert_eq!(effective[3], vec![3]);
    }
}

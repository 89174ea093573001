//! Conflict planning: from a window of access sets to a dependency DAG.

use petgraph::dot::{Config as DotConfig, Dot};
use petgraph::graph::{DiGraph, NodeIndex};

use std::collections::HashMap;

use crate::access::{AccessSet, Part, ResourceId};

const NONE: u32 = u32::MAX;

/// The dependency DAG of one window, in flat arrays.
///
/// Nodes are window positions `0..len()` (position `i` is the `i`-th invocation of the window
/// in sequence order); every edge goes from a lower to a higher position. Successor lists are
/// stored CSR-style (one offsets array, one targets array) because the executor walks them once
/// per finished task and an allocation per node would cost more than the walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    succ_offsets: Vec<u32>,
    succs: Vec<u32>,
    in_degree: Vec<u32>,
}

impl Plan {
    /// Number of invocations planned.
    pub fn len(&self) -> usize {
        self.in_degree.len()
    }

    /// Whether the window was empty.
    pub fn is_empty(&self) -> bool {
        self.in_degree.is_empty()
    }

    /// Positions that must wait for position `i`, ascending.
    pub fn successors(&self, i: usize) -> &[u32] {
        let (start, end) = (self.succ_offsets[i], self.succ_offsets[i + 1]);
        &self.succs[start as usize..end as usize]
    }

    /// How many positions `i` waits for.
    pub fn in_degree(&self, i: usize) -> u32 {
        self.in_degree[i]
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.succs.len()
    }

    /// All edges `(from, to)`, ordered by `from` then `to`.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.len()).flat_map(move |i| self.successors(i).iter().map(move |&j| (i, j as usize)))
    }

    /// Positions that wait for nothing.
    pub fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(move |&i| self.in_degree[i] == 0)
    }

    /// The plan as a petgraph graph whose node weights are window positions, for analysis and
    /// debugging; the executor never builds it.
    pub fn to_graph(&self) -> DiGraph<usize, ()> {
        let mut graph = DiGraph::with_capacity(self.len(), self.edge_count());
        for i in 0..self.len() {
            graph.add_node(i);
        }
        for (from, to) in self.edges() {
            graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
        }
        graph
    }

    /// The plan in Graphviz DOT, e.g. to paste into `dot -Tsvg` when a schedule looks wrong.
    pub fn to_dot(&self) -> String {
        format!(
            "{:?}",
            Dot::with_config(&self.to_graph(), &[DotConfig::EdgeNoLabel])
        )
    }
}

/// What the sweep remembers about one partition of a table since the table's last whole
/// write.
#[derive(Clone, Debug, Default)]
struct PartState {
    /// The last invocation that wrote this part since the whole write, or `NONE`.
    writer: u32,
    /// Readers of this part since its last write (part or whole).
    readers: Vec<u32>,
    /// How many of the table's whole readers the last writer of this part already waits for,
    /// so that the next writer of the part only adds edges to the ones that came after.
    whole_readers_seen: u32,
}

/// The partitions touched since a table's last whole write: a small map from part to a dense
/// index, and the states in first-touch order (which keeps the sweep, and so the plan,
/// independent of the hash seed). States beyond `live` keep their allocations for later
/// windows.
#[derive(Debug, Default)]
struct Parts {
    index: HashMap<Part, u32, foldhash::fast::RandomState>,
    states: Vec<PartState>,
    live: usize,
}

impl Parts {
    /// The index of `part`'s state, creating a fresh one on first touch.
    fn slot(&mut self, part: Part) -> usize {
        let next = self.live as u32;
        let at = *self.index.entry(part).or_insert(next) as usize;
        if at == self.live {
            self.live += 1;
            if at == self.states.len() {
                self.states.push(PartState::default());
            }
            let state = &mut self.states[at];
            state.writer = NONE;
            state.readers.clear();
            state.whole_readers_seen = 0;
        }
        at
    }

    fn clear(&mut self) {
        if self.live > 0 {
            self.index.clear();
            self.live = 0;
        }
    }
}

#[derive(Debug)]
struct TableState {
    /// The last invocation that wrote the whole table, or `NONE`.
    last_writer: u32,
    /// Whole-table readers since that write.
    readers_since_write: Vec<u32>,
    /// Boxed, and only for tables ever accessed by part, so that the array of table states
    /// stays as dense as it was without partitions.
    parts: Option<Box<Parts>>,
    dirty: bool,
}

impl Default for TableState {
    fn default() -> Self {
        Self {
            last_writer: NONE,
            readers_since_write: Vec::new(),
            parts: None,
            dirty: false,
        }
    }
}

/// Builds [`Plan`]s, keeping its scratch buffers between windows so that steady-state planning
/// allocates nothing.
///
/// The algorithm is the classic sweep used for instruction scheduling and task-dataflow
/// runtimes (e.g. OmpSs/StarPU dependency tracking): walk the window in sequence order keeping,
/// per table, the last writer and the readers since that write. A read depends on the last
/// writer; a write depends on the readers since the last write, or on the last writer when
/// there were none (a reader already depends on that writer, so the edge would be implied).
/// An exclusive invocation depends on every invocation since the previous exclusive one that
/// has no successor yet (the others reach it through their successors), and everything after
/// it that gets no other edge depends on it. This costs `O(declared tables + edges)` per
/// invocation rather than the `O(n)` of pairwise checks, and yields the same transitive order
/// as ordering every conflicting pair.
///
/// Partitions nest inside that: since its last whole write, a table also keeps per touched
/// part the last part writer and the part readers since. A part read depends on the part's
/// writer (or the whole writer); a part write on the part's readers or writer and on the whole
/// readers it does not already reach; a whole read on the whole writer and every part's writer;
/// a whole write on everything since the previous whole write, after which the parts are
/// forgotten. Planning a part costs one hash lookup; a whole access to a partitioned table
/// costs one step per part touched since the last whole write.
#[derive(Debug, Default)]
pub struct Planner {
    tables: Vec<TableState>,
    dirty_tables: Vec<u32>,
    marks: Vec<u32>,
    pred_offsets: Vec<u32>,
    preds: Vec<u32>,
    out_degree: Vec<u32>,
    since_exclusive: Vec<u32>,
}

impl Planner {
    /// A planner with empty scratch buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans a window given its access sets in sequence order.
    pub fn plan<'a>(&mut self, window: impl IntoIterator<Item = &'a AccessSet>) -> Plan {
        let mut plan = Plan::default();
        self.plan_into(window, &mut plan);
        plan
    }

    /// Like [`plan`](Self::plan), reusing `plan`'s buffers.
    ///
    /// # Panics
    ///
    /// If the window holds `u32::MAX` invocations or more (the scheduler caps windows far
    /// below that).
    pub fn plan_into<'a>(
        &mut self,
        window: impl IntoIterator<Item = &'a AccessSet>,
        plan: &mut Plan,
    ) {
        self.reset_tables();
        self.marks.clear();
        self.preds.clear();
        self.pred_offsets.clear();
        self.pred_offsets.push(0);
        self.out_degree.clear();
        self.since_exclusive.clear();
        let mut last_exclusive = NONE;

        for (j, access) in window.into_iter().enumerate() {
            let j = u32::try_from(j)
                .ok()
                .filter(|&j| j != NONE)
                .expect("window too large to plan");
            self.marks.push(NONE);
            self.out_degree.push(0);
            let first_pred = self.preds.len();
            if access.is_exclusive() {
                if self.since_exclusive.is_empty() {
                    if last_exclusive != NONE {
                        self.depend(last_exclusive, j);
                    }
                } else {
                    for k in 0..self.since_exclusive.len() {
                        let i = self.since_exclusive[k];
                        if self.out_degree[i as usize] == 0 {
                            self.depend(i, j);
                        }
                    }
                }
                self.since_exclusive.clear();
                self.reset_tables();
                last_exclusive = j;
            } else {
                for &table in access.reads() {
                    self.whole_read(table, j);
                }
                for &(table, part) in access.part_reads() {
                    self.part_read(table, part, j);
                }
                for &table in access.writes() {
                    self.whole_write(table, j);
                }
                for &(table, part) in access.part_writes() {
                    self.part_write(table, part, j);
                }
                if self.preds.len() == first_pred && last_exclusive != NONE {
                    self.depend(last_exclusive, j);
                }
                self.since_exclusive.push(j);
            }
            self.pred_offsets.push(self.preds.len() as u32);
        }
        self.build_successors(plan);
    }

    fn whole_read(&mut self, table: ResourceId, j: u32) {
        let t = self.slot(table);
        self.tables[t].readers_since_write.push(j);
        let mut after_part_writer = false;
        let live = self.tables[t].parts.as_ref().map_or(0, |p| p.live);
        for k in 0..live {
            let writer = self.parts(t).states[k].writer;
            if writer != NONE {
                self.depend(writer, j);
                after_part_writer = true;
            }
        }
        // A part's writer already waits for the whole writer.
        let writer = self.tables[t].last_writer;
        if !after_part_writer && writer != NONE {
            self.depend(writer, j);
        }
    }

    fn whole_write(&mut self, table: ResourceId, j: u32) {
        let t = self.slot(table);
        let mut after_any = false;
        let mut readers = std::mem::take(&mut self.tables[t].readers_since_write);
        for &r in &readers {
            self.depend(r, j);
            after_any = true;
        }
        readers.clear();
        // Hand the (now empty) allocation back so the next reader reuses it.
        self.tables[t].readers_since_write = readers;
        let live = self.tables[t].parts.as_ref().map_or(0, |p| p.live);
        for k in 0..live {
            let mut readers = std::mem::take(&mut self.parts(t).states[k].readers);
            // A part's readers already wait for its writer.
            if readers.is_empty() {
                let writer = self.parts(t).states[k].writer;
                self.depend(writer, j);
            }
            for &r in &readers {
                self.depend(r, j);
            }
            readers.clear();
            self.parts(t).states[k].readers = readers;
            after_any = true;
        }
        if let Some(parts) = &mut self.tables[t].parts {
            parts.clear();
        }
        // Everything since the previous whole write already waits for it.
        let writer = std::mem::replace(&mut self.tables[t].last_writer, j);
        if !after_any && writer != NONE {
            self.depend(writer, j);
        }
    }

    fn part_read(&mut self, table: ResourceId, part: Part, j: u32) {
        let t = self.slot(table);
        let whole_writer = self.tables[t].last_writer;
        let parts = self.parts(t);
        let p = parts.slot(part);
        let part = &mut parts.states[p];
        part.readers.push(j);
        let writer = if part.writer != NONE {
            part.writer
        } else {
            whole_writer
        };
        if writer != NONE {
            self.depend(writer, j);
        }
    }

    fn part_write(&mut self, table: ResourceId, part: Part, j: u32) {
        let t = self.slot(table);
        let whole_writer = self.tables[t].last_writer;
        let whole_readers = self.tables[t].readers_since_write.len() as u32;
        let parts = self.parts(t);
        let p = parts.slot(part);
        let part = &mut parts.states[p];
        let seen = std::mem::replace(&mut part.whole_readers_seen, whole_readers);
        let writer = std::mem::replace(&mut part.writer, j);
        let mut readers = std::mem::take(&mut part.readers);
        let mut after_any = false;
        for &r in &readers {
            self.depend(r, j);
            after_any = true;
        }
        readers.clear();
        self.parts(t).states[p].readers = readers;
        for k in seen..whole_readers {
            let r = self.tables[t].readers_since_write[k as usize];
            self.depend(r, j);
            after_any = true;
        }
        // The part's readers already wait for its writer, and the writer (or any reader) for
        // the whole writer.
        if !after_any {
            let before = if writer != NONE { writer } else { whole_writer };
            if before != NONE {
                self.depend(before, j);
            }
        }
    }

    /// The part map of table slot `t`, created on first use.
    fn parts(&mut self, t: usize) -> &mut Parts {
        self.tables[t].parts.get_or_insert_default()
    }

    fn slot(&mut self, table: ResourceId) -> usize {
        let t = table.index();
        if t >= self.tables.len() {
            self.tables.resize_with(t + 1, TableState::default);
        }
        if !self.tables[t].dirty {
            self.tables[t].dirty = true;
            self.dirty_tables.push(table.0);
        }
        t
    }

    fn depend(&mut self, from: u32, to: u32) {
        // `marks[from] == to` means the edge was already recorded for this `to`: one slot per
        // node dedups without a set, because `to` only grows. An invocation that reads a whole
        // table and writes a part of it meets itself among the readers: no edge.
        let mark = &mut self.marks[from as usize];
        if *mark != to && from != to {
            *mark = to;
            self.preds.push(from);
            self.out_degree[from as usize] += 1;
        }
    }

    fn reset_tables(&mut self) {
        for &t in &self.dirty_tables {
            let slot = &mut self.tables[t as usize];
            slot.last_writer = NONE;
            slot.readers_since_write.clear();
            if let Some(parts) = &mut slot.parts {
                parts.clear();
            }
            slot.dirty = false;
        }
        self.dirty_tables.clear();
    }

    fn build_successors(&mut self, plan: &mut Plan) {
        let n = self.marks.len();
        plan.in_degree.clear();
        plan.in_degree
            .extend(self.pred_offsets.windows(2).map(|w| w[1] - w[0]));
        plan.succ_offsets.clear();
        plan.succ_offsets.reserve(n + 1);
        let mut total = 0u32;
        plan.succ_offsets.push(0);
        // Turn out-degrees into insertion cursors while writing the offsets.
        for degree in &mut self.out_degree {
            let start = total;
            total += *degree;
            *degree = start;
            plan.succ_offsets.push(total);
        }
        plan.succs.clear();
        plan.succs.resize(total as usize, 0);
        for to in 0..n {
            let (start, end) = (self.pred_offsets[to], self.pred_offsets[to + 1]);
            for &from in &self.preds[start as usize..end as usize] {
                let cursor = &mut self.out_degree[from as usize];
                plan.succs[*cursor as usize] = to as u32;
                *cursor += 1;
            }
        }
    }
}

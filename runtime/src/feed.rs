//! Committed table changes for subscribers outside the node (remote subscriptions).
//!
//! Fed from the ordered commit, so what leaves the node is in commit order. It may not slow the
//! commit down: a subscriber that does not keep up loses its subscription (it is told, and may
//! subscribe again) instead of making the node wait.
//!
//! Once a table has been subscribed to, its latest changes are kept ([`HISTORY`] of them), so a
//! subscriber that reconnects can say where it stopped and get what it missed, as long as the
//! node kept it. A change's position is `(seq, part)`: the committing invocation's sequence
//! number and the change's index in that commit.
//!
//! On a node with a data directory, the feeds of tables that survive a restart (logged and
//! stateful ones) are durable: which tables are fed is kept in `__node.feeds`, and their kept
//! changes in `__node.feed`, written in the record of the commit that made them
//! ([`Feeds::persist`]). A node that restarts, or crashes, serves its subscribers' resumption
//! as if it had not.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use interstice_abi::{TableEvent, Value};
use interstice_store::{Change, TableId, Transaction};
use parking_lot::RwLock;
use tokio::sync::{Notify, mpsc};

use crate::exec::encode_change;
use crate::system::{self, FedChange, FedTable, NodeTables, SystemError};

/// How many recent changes of each subscribed table are kept for subscribers that reconnect.
pub const HISTORY: usize = 4096;

/// Where a change is in the node's history: the committing invocation's sequence number, and
/// the change's index among that commit's changes.
pub type Position = (u64, u32);

/// One committed row change, for a remote subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    /// The subscriber's tag (the id of the request that subscribed).
    pub subscription: u64,
    /// The sequence number of the invocation that committed it.
    pub seq: u64,
    /// Its index among that commit's changes.
    pub part: u32,
    pub kind: TableEvent,
    /// The row (insert, delete), or the old row then the new one (update), ABI-encoded.
    pub rows: Vec<u8>,
}

/// Where a subscriber's events go.
#[derive(Clone, Debug)]
pub struct FeedSink {
    pub tag: u64,
    pub events: mpsc::Sender<FeedEvent>,
    /// Notified when the subscriber fell behind and its subscription was dropped.
    pub lagged: Arc<Notify>,
}

struct Subscriber {
    kind: TableEvent,
    sink: FeedSink,
}

/// A change kept for subscribers that reconnect.
pub(crate) struct Kept {
    pub position: Position,
    pub kind: TableEvent,
    pub rows: Vec<u8>,
}

/// A committed change of a fed table, encoded once for its subscribers, its history and
/// (when durable) `__node.feed`.
pub(crate) struct Encoded {
    table: TableId,
    kept: Kept,
}

/// One subscribed table: who listens, and what it committed lately.
struct Feed {
    subscribers: Vec<Subscriber>,
    history: VecDeque<Kept>,
    /// Every change at or after this position is in `history`.
    covered_from: Position,
    /// Whether changes were dropped from the history (then it does not start at a commit
    /// boundary).
    trimmed: bool,
    /// For a durable feed, the `__node.feed` rows holding its history, oldest first.
    durable: Option<Durable>,
}

struct Durable {
    /// The table's full name, as the rows name it.
    name: String,
    rows: VecDeque<u64>,
    /// Whether `__node.feeds` says the history was trimmed.
    trimmed: bool,
}

/// A durable feed as `__node.feeds` and `__node.feed` hold it, to restore when a node opens.
pub(crate) struct Restored {
    pub table: TableId,
    pub name: String,
    pub since: Position,
    pub trimmed: bool,
    /// `(row id, change)`, oldest first.
    pub kept: Vec<(u64, Kept)>,
}

pub(crate) fn kind_code(kind: TableEvent) -> u64 {
    match kind {
        TableEvent::Insert => 0,
        TableEvent::Update => 1,
        TableEvent::Delete => 2,
    }
}

pub(crate) fn kind_from_code(code: u64) -> Option<TableEvent> {
    match code {
        0 => Some(TableEvent::Insert),
        1 => Some(TableEvent::Update),
        2 => Some(TableEvent::Delete),
        _ => None,
    }
}

#[derive(Default)]
pub(crate) struct Feeds {
    by_table: RwLock<HashMap<TableId, Feed>>,
    /// Whether any table is fed: the commit path checks this and nothing else when none.
    any: AtomicBool,
}

impl Feeds {
    /// Adds a subscriber. With `after`, the position of the last change it has, it first gets
    /// the kept changes after that; returns whether those are all it missed (`false`: some
    /// were not kept, or were committed before this node kept any). `next_seq` is the sequence
    /// number the next commit will get; call between commits.
    /// `durable` names a table whose feed is new and should be kept in `__node.feeds`: the
    /// caller writes that row when this returns `(_, true)`.
    pub fn add(
        &self,
        table: TableId,
        kind: TableEvent,
        sink: FeedSink,
        after: Option<Position>,
        next_seq: u64,
        durable: Option<&str>,
    ) -> (bool, bool) {
        let mut by_table = self.by_table.write();
        let created = !by_table.contains_key(&table);
        let feed = by_table.entry(table).or_insert_with(|| Feed {
            subscribers: Vec::new(),
            history: VecDeque::new(),
            covered_from: (next_seq, 0),
            trimmed: false,
            durable: durable.map(|name| Durable {
                name: name.to_owned(),
                rows: VecDeque::new(),
                trimmed: false,
            }),
        });
        let mut complete = true;
        if let Some(after) = after {
            // Positions between `after` and `covered_from` may hold changes that were not kept.
            // Until a change is dropped, the history starts at a commit boundary: a subscriber
            // that had the commit just before it misses nothing (a commit's changes reach a
            // subscriber together).
            let (from_seq, _) = feed.covered_from;
            complete = after >= feed.covered_from
                || (!feed.trimmed && after.0.saturating_add(1) >= from_seq);
            for kept in feed
                .history
                .iter()
                .filter(|k| k.position > after && k.kind == kind)
            {
                let event = FeedEvent {
                    subscription: sink.tag,
                    seq: kept.position.0,
                    part: kept.position.1,
                    kind,
                    rows: kept.rows.clone(),
                };
                if sink.events.try_send(event).is_err() {
                    // More missed than the subscriber can take at once: it reconnects later.
                    sink.lagged.notify_one();
                    return (false, created && durable.is_some());
                }
            }
        }
        feed.subscribers.push(Subscriber { kind, sink });
        self.any.store(true, Ordering::Release);
        (complete, created && durable.is_some())
    }

    /// Reinstates the durable feeds of a node that opens again, before anything commits.
    pub fn restore(&self, restored: Vec<Restored>) {
        let mut by_table = self.by_table.write();
        for r in restored {
            let covered_from = match (r.trimmed, r.kept.first()) {
                // The exact position after the last dropped change is not kept; the oldest
                // kept one is at or after it, which is stricter, never wrong.
                (true, Some((_, oldest))) => oldest.position,
                _ => r.since,
            };
            let (rows, history) = r.kept.into_iter().unzip();
            by_table.insert(
                r.table,
                Feed {
                    subscribers: Vec::new(),
                    history,
                    covered_from,
                    trimmed: r.trimmed,
                    durable: Some(Durable {
                        name: r.name,
                        rows,
                        trimmed: r.trimmed,
                    }),
                },
            );
        }
        self.any.store(!by_table.is_empty(), Ordering::Release);
    }

    /// Whether any table is fed.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// A commit's changes of fed tables, encoded; empty when none is fed.
    pub fn encode(&self, seq: u64, changes: &[Change]) -> Vec<Encoded> {
        if !self.any() {
            return Vec::new();
        }
        let by_table = self.by_table.read();
        let mut out = Vec::new();
        for (part, change) in changes.iter().enumerate() {
            if !by_table.contains_key(&change.table) {
                continue;
            }
            let (kind, rows) = encode_change(&change.kind);
            out.push(Encoded {
                table: change.table,
                kept: Kept {
                    position: (seq, u32::try_from(part).unwrap_or(u32::MAX)),
                    kind,
                    rows,
                },
            });
        }
        out
    }

    /// Writes the changes of durable feeds to `__node.feed` in `tx`, dropping the rows beyond
    /// [`HISTORY`]; returns whether it wrote anything. Called in commit order, before the
    /// commit is logged, so the rows are in its record.
    pub fn persist(
        &self,
        encoded: &[Encoded],
        tx: &mut Transaction,
        tables: NodeTables,
    ) -> Result<bool, SystemError> {
        let mut by_table = self.by_table.write();
        let mut wrote = false;
        for e in encoded {
            let Some(durable) = by_table.get_mut(&e.table).and_then(|f| f.durable.as_mut()) else {
                continue;
            };
            let change = FedChange {
                id: 0,
                table: durable.name.clone(),
                seq: e.kept.position.0,
                part: u64::from(e.kept.position.1),
                kind: kind_code(e.kept.kind),
                rows: e.kept.rows.clone(),
            };
            let id = system::insert(tx, tables.feed, change)?.id;
            wrote = true;
            durable.rows.push_back(id);
            while durable.rows.len() > HISTORY {
                if let Some(oldest) = durable.rows.pop_front() {
                    tx.delete(tables.feed, &Value::U64(oldest))?;
                }
                if !durable.trimmed {
                    durable.trimmed = true;
                    let key = Value::String(durable.name.clone());
                    if let Some(mut fed) = system::get::<FedTable>(&*tx, tables.feeds, key)? {
                        fed.trimmed = true;
                        system::update(tx, tables.feeds, fed)?;
                    }
                }
            }
        }
        Ok(wrote)
    }

    /// Forgets a table (its module was removed).
    pub fn drop_table(&self, table: TableId) {
        let mut by_table = self.by_table.write();
        by_table.remove(&table);
        self.any.store(!by_table.is_empty(), Ordering::Release);
    }

    /// Keeps a commit's encoded changes and hands them to their subscribers, in change order.
    pub fn publish(&self, encoded: Vec<Encoded>) {
        if encoded.is_empty() {
            return;
        }
        let mut gone = false;
        let mut by_table = self.by_table.write();
        for Encoded { table, kept } in encoded {
            let Some(feed) = by_table.get_mut(&table) else {
                continue;
            };
            for sub in feed.subscribers.iter().filter(|s| s.kind == kept.kind) {
                let event = FeedEvent {
                    subscription: sub.sink.tag,
                    seq: kept.position.0,
                    part: kept.position.1,
                    kind: kept.kind,
                    rows: kept.rows.clone(),
                };
                match sub.sink.events.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(
                            subscription = sub.sink.tag,
                            "a remote subscriber fell behind; dropping its subscription"
                        );
                        sub.sink.lagged.notify_one();
                        gone = true;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => gone = true,
                }
            }
            feed.history.push_back(kept);
            if feed.history.len() > HISTORY
                && let Some(dropped) = feed.history.pop_front()
            {
                feed.covered_from = (dropped.position.0, dropped.position.1.saturating_add(1));
                feed.trimmed = true;
            }
        }
        if gone {
            // Lagged subscribers were notified; dropping them ends their subscription. The
            // table stays fed: its history serves whoever reconnects.
            for feed in by_table.values_mut() {
                feed.subscribers
                    .retain(|s| !s.sink.events.is_closed() && s.sink.events.capacity() > 0);
            }
        }
    }
}

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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use interstice_abi::TableEvent;
use interstice_store::{Change, ChangeKind, TableId};
use parking_lot::RwLock;
use tokio::sync::{Notify, mpsc};

use crate::invocation::encode_row;

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

struct Kept {
    position: Position,
    kind: TableEvent,
    rows: Vec<u8>,
}

/// One subscribed table: who listens, and what it committed lately.
struct Feed {
    subscribers: Vec<Subscriber>,
    history: VecDeque<Kept>,
    /// Every change at or after this position is in `history`.
    covered_from: Position,
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
    pub fn add(
        &self,
        table: TableId,
        kind: TableEvent,
        sink: FeedSink,
        after: Option<Position>,
        next_seq: u64,
    ) -> bool {
        let mut by_table = self.by_table.write();
        let feed = by_table.entry(table).or_insert_with(|| Feed {
            subscribers: Vec::new(),
            history: VecDeque::new(),
            covered_from: (next_seq, 0),
        });
        let mut complete = true;
        if let Some(after) = after {
            // Positions between `after` and `covered_from` may hold changes that were not kept.
            // Until a change is dropped (`part` 0), the history starts at a commit boundary:
            // a subscriber that had the commit just before it misses nothing (a commit's
            // changes reach a subscriber together).
            let (from_seq, from_part) = feed.covered_from;
            complete = after >= feed.covered_from
                || (from_part == 0 && after.0.saturating_add(1) >= from_seq);
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
                    return false;
                }
            }
        }
        feed.subscribers.push(Subscriber { kind, sink });
        self.any.store(true, Ordering::Release);
        complete
    }

    /// Forgets a table (its module was removed).
    pub fn drop_table(&self, table: TableId) {
        let mut by_table = self.by_table.write();
        by_table.remove(&table);
        self.any.store(!by_table.is_empty(), Ordering::Release);
    }

    /// Keeps a commit's changes of fed tables and hands them to their subscribers, in change
    /// order.
    pub fn publish(&self, seq: u64, changes: &[Change]) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut gone = false;
        let mut by_table = self.by_table.write();
        for (part, change) in changes.iter().enumerate() {
            let Some(feed) = by_table.get_mut(&change.table) else {
                continue;
            };
            let (kind, rows) = match &change.kind {
                ChangeKind::Insert(row) => (TableEvent::Insert, vec![row]),
                ChangeKind::Update { old, new } => (TableEvent::Update, vec![old, new]),
                ChangeKind::Delete(row) => (TableEvent::Delete, vec![row]),
            };
            let mut bytes = Vec::new();
            for row in &rows {
                encode_row(row, &mut bytes);
            }
            let position = (seq, u32::try_from(part).unwrap_or(u32::MAX));
            for sub in feed.subscribers.iter().filter(|s| s.kind == kind) {
                let event = FeedEvent {
                    subscription: sub.sink.tag,
                    seq,
                    part: position.1,
                    kind,
                    rows: bytes.clone(),
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
            feed.history.push_back(Kept {
                position,
                kind,
                rows: bytes,
            });
            if feed.history.len() > HISTORY
                && let Some(dropped) = feed.history.pop_front()
            {
                feed.covered_from = (dropped.position.0, dropped.position.1.saturating_add(1));
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

//! Committed table changes for subscribers outside the node (remote subscriptions), and the
//! outbox of calls to other nodes.
//!
//! Both are fed from the ordered commit, so what leaves the node is in commit order. Neither
//! may slow the commit down: a subscriber that does not keep up loses its subscription (it is
//! told, and may subscribe again) instead of making the node wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use interstice_abi::TableEvent;
use interstice_store::{Change, ChangeKind, TableId};
use parking_lot::RwLock;
use tokio::sync::{Notify, mpsc};

use crate::invocation::encode_row;

/// One committed row change, for a remote subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    /// The subscriber's tag (the id of the request that subscribed).
    pub subscription: u64,
    /// The sequence number of the invocation that committed it.
    pub seq: u64,
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

#[derive(Default)]
pub(crate) struct Feeds {
    by_table: RwLock<HashMap<TableId, Vec<Subscriber>>>,
    /// Whether any subscriber exists: the commit path checks this and nothing else when none.
    any: AtomicBool,
}

impl Feeds {
    pub fn add(&self, table: TableId, kind: TableEvent, sink: FeedSink) {
        self.by_table
            .write()
            .entry(table)
            .or_default()
            .push(Subscriber { kind, sink });
        self.any.store(true, Ordering::Release);
    }

    /// Drops every subscription of a table (its module was removed).
    pub fn drop_table(&self, table: TableId) {
        let mut by_table = self.by_table.write();
        by_table.remove(&table);
        self.any.store(!by_table.is_empty(), Ordering::Release);
    }

    /// Hands a commit's changes to the subscribers of their tables, in change order.
    pub fn publish(&self, seq: u64, changes: &[Change]) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut gone = false;
        {
            let by_table = self.by_table.read();
            for change in changes {
                let Some(subscribers) = by_table.get(&change.table) else {
                    continue;
                };
                let (kind, rows) = match &change.kind {
                    ChangeKind::Insert(row) => (TableEvent::Insert, vec![row]),
                    ChangeKind::Update { old, new } => (TableEvent::Update, vec![old, new]),
                    ChangeKind::Delete(row) => (TableEvent::Delete, vec![row]),
                };
                let mut encoded = None;
                for sub in subscribers.iter().filter(|s| s.kind == kind) {
                    let bytes = encoded
                        .get_or_insert_with(|| {
                            let mut out = Vec::new();
                            for row in &rows {
                                encode_row(row, &mut out);
                            }
                            out
                        })
                        .clone();
                    let event = FeedEvent {
                        subscription: sub.sink.tag,
                        seq,
                        kind,
                        rows: bytes,
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
            }
        }
        if gone {
            // Lagged subscribers were notified; closing their channel ends the subscription.
            let mut by_table = self.by_table.write();
            for subscribers in by_table.values_mut() {
                subscribers.retain(|s| !s.sink.events.is_closed() && s.sink.events.capacity() > 0);
            }
            by_table.retain(|_, subs| !subs.is_empty());
            self.any.store(!by_table.is_empty(), Ordering::Release);
        }
    }
}

//! What the network layer (`net/`) needs of the node: input from other nodes enters the
//! ingress here, committed changes and remote calls leave from here. Nothing in this file runs
//! guest code or holds a lock across the network.

use interstice_abi::{Event, TableEvent, Value, encode_into};

use super::NodeInner;
use super::commit::system_meta;
use super::ingress::Submission;
use crate::core::Origin;
use crate::error::NodeError;
use crate::exec::RemoteCall;
use crate::feed::{FeedSink, Position};
use crate::system::{self, Delivered, FedTable, OutboxCall};

/// Another node that installed modules depend on: its address and what they subscribe to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteNode {
    /// The name the modules' bindings give it.
    pub name: String,
    pub address: String,
    /// `(module, table, event)` on that node, sorted, without duplicates.
    pub subscriptions: Vec<(String, String, TableEvent)>,
}

impl NodeInner {
    /// Routes the remote calls that committed reducers make (`ctx.call_remote`) to `outbound`,
    /// in commit order. Without it they are logged and dropped.
    pub fn set_outbound(&self, outbound: tokio::sync::mpsc::UnboundedSender<RemoteCall>) {
        *self.outbound.write() = Some(outbound);
    }

    /// The remote calls to node `node` that committed and were not acknowledged yet, in
    /// module then outbox order: what a peer sends (again) when it connects.
    pub fn pending_remote(&self, node: &str) -> Result<Vec<RemoteCall>, NodeError> {
        let view = self.store().read();
        let mut calls = Vec::new();
        for (module, host) in self.core.all_host_tables() {
            for call in system::scan::<OutboxCall>(&view, host.outbox)? {
                if call.node != node {
                    continue;
                }
                calls.push(RemoteCall {
                    from: module.clone(),
                    node: call.node,
                    module: call.module,
                    reducer: call.reducer,
                    args: call.args,
                    id: call.id,
                });
            }
        }
        Ok(calls)
    }

    /// Forgets remote calls their node has answered, `(calling module, outbox number)`: they
    /// will not be sent again. A system commit between windows, like installing a module; the
    /// outboxes are the host's, no reducer can read them.
    pub(crate) fn ack_remote(&self, acks: &[(String, u64)]) -> Result<(), NodeError> {
        if acks.is_empty() {
            return Ok(());
        }
        let _driver = self.driver.lock();
        let mut tx = self.store().begin();
        let mut any = false;
        for (module, id) in acks {
            if let Some(host) = self.core.host_tables(module) {
                any |= tx.delete(host.outbox, &Value::U64(*id)).is_ok();
            }
        }
        if any {
            let _acked = tx.commit(system_meta("ack", "remote calls"))?;
        }
        Ok(())
    }

    /// Changes whenever a module is installed, upgraded or removed.
    pub(crate) fn watch_modules(&self) -> tokio::sync::watch::Receiver<u64> {
        self.modules_changed.subscribe()
    }

    /// Streams the committed changes of `module.table` of kind `kind` to `sink`, in commit
    /// order, until the sink's channel closes or falls behind (then `sink.lagged` is notified).
    /// With `after`, the position of the last change the subscriber has, the changes after it
    /// that the node kept come first; returns whether they are all it missed.
    pub fn subscribe_table(
        &self,
        module: &str,
        table: &str,
        kind: TableEvent,
        sink: FeedSink,
        after: Option<Position>,
    ) -> Result<bool, NodeError> {
        let installed = self.module(module)?;
        let Some(schema) = installed.schema().table(table) else {
            return Err(NodeError::NoSuchFunction {
                module: module.to_owned(),
                kind: "table",
                name: table.to_owned(),
            });
        };
        let full = format!("{module}.{table}");
        let id = self
            .store()
            .table_id(&full)
            .ok_or_else(|| NodeError::NoSuchModule(module.to_owned()))?;
        // A feed survives a restart when the table does.
        let durable = self.config.data_dir.is_some()
            && schema.persistence != interstice_abi::Persistence::Ephemeral;
        // Registered between windows, so the subscriber sees every commit after this one.
        let driver = self.driver.lock();
        let next_seq = driver.ingress.next_seq().0;
        let (complete, created) = self.feeds.add(
            id,
            kind,
            sink,
            after,
            next_seq,
            durable.then_some(full.as_str()),
        );
        if created {
            let mut tx = self.store().begin();
            let row = FedTable {
                table: full.clone(),
                since: next_seq,
                trimmed: false,
            };
            system::insert(&mut tx, self.tables.feeds, row)?;
            let _kept = tx.commit(system_meta("feed", &full))?;
        }
        Ok(complete)
    }

    /// The other nodes the installed modules depend on (their node bindings), with the
    /// tables they subscribe to there. Where two modules bind the same name to different
    /// addresses, the first module (by name) wins and the conflict is logged.
    pub fn remote_nodes(&self) -> Vec<RemoteNode> {
        let mut nodes: std::collections::BTreeMap<String, RemoteNode> = Default::default();
        let modules = self.core.modules.load();
        for (module, installed) in modules.iter() {
            let schema = installed.schema();
            for dep in &schema.nodes {
                let entry = nodes.entry(dep.name.clone()).or_insert_with(|| RemoteNode {
                    name: dep.name.clone(),
                    address: dep.address.clone(),
                    subscriptions: Vec::new(),
                });
                if entry.address != dep.address {
                    tracing::warn!(
                        node = %dep.name, %module, kept = %entry.address, ignored = %dep.address,
                        "two modules bind the same node name to different addresses"
                    );
                }
            }
            for reducer in &schema.reducers {
                if let Some(Event::Table {
                    node: Some(node),
                    module,
                    table,
                    kind,
                }) = &reducer.on
                    && let Some(entry) = nodes.get_mut(node)
                {
                    entry
                        .subscriptions
                        .push((module.clone(), table.clone(), *kind));
                }
            }
        }
        nodes
            .into_values()
            .map(|mut n| {
                n.subscriptions
                    .sort_by(|a, b| (&a.0, &a.1, a.2 as u8).cmp(&(&b.0, &b.1, b.2 as u8)));
                n.subscriptions.dedup();
                n
            })
            .collect()
    }

    /// Runs the reducers subscribed to `node.module.table.<kind>` with a change that node
    /// committed at `position` (`rows` as in [`FeedEvent`](crate::FeedEvent)), in module then
    /// reducer name order, and waits for them. Returns how many it submitted. `remote_id` is the
    /// node's id: each subscriber remembers, in its invocation's transaction, the last position
    /// it got from that node, so a change sent again after a reconnection runs once. The bytes
    /// come from another node and are checked: a subscriber whose arguments they do not decode
    /// as is skipped, with a warning (its binding is likely out of date).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn deliver_remote(
        &self,
        remote_id: &str,
        node: &str,
        module: &str,
        table: &str,
        kind: TableEvent,
        position: Position,
        rows: &[u8],
    ) -> Result<usize, NodeError> {
        let event = remote_event(node, module, table, kind);
        let mut submissions = Vec::new();
        for (subscriber, reducer) in self.core.remote_subscribers(&event) {
            let Some(installed) = self.core.module(&subscriber) else {
                continue;
            };
            let Some(r) = installed.reducers.get(reducer.as_str()) else {
                continue;
            };
            if let Err(e) = interstice_abi::decode_fields(rows, &r.args, &installed.registry) {
                tracing::warn!(
                    module = %subscriber, %reducer, %event, error = %e,
                    "a remote change does not decode as the subscriber's arguments; is the binding out of date?"
                );
                continue;
            }
            let origin = Origin {
                key: subscription_key(remote_id, &event, &subscriber, &reducer),
                id: position.0,
                part: position.1,
            };
            submissions.push(
                Submission::call(installed.name.clone(), r.name.clone(), rows.to_vec())
                    .origin(Some(origin)),
            );
        }
        let submitted = submissions.len();
        if submitted > 0 {
            self.entrance.submit_all(submissions);
            self.drive()?;
        }
        Ok(submitted)
    }

    /// The position of the last change of `node.module.table.<kind>` that every subscriber
    /// here with a mark has from node `remote_id`: where a resumed subscription starts. `None`
    /// when none has any yet (start from now). A subscriber added since gets the replayed
    /// changes too, rather than one that was there missing them.
    pub(crate) fn remote_position(
        &self,
        remote_id: &str,
        node: &str,
        module: &str,
        table: &str,
        kind: TableEvent,
    ) -> Result<Option<Position>, NodeError> {
        let event = remote_event(node, module, table, kind);
        let view = self.store().read();
        let mut least: Option<Position> = None;
        for (subscriber, reducer) in self.core.remote_subscribers(&event) {
            let Some(host) = self.core.host_tables(&subscriber) else {
                continue;
            };
            let key = Value::String(subscription_key(remote_id, &event, &subscriber, &reducer));
            let Some(mark) = system::get::<Delivered>(&view, host.delivered, key)? else {
                continue;
            };
            let position = (mark.last, u32::try_from(mark.part).unwrap_or(u32::MAX));
            least = Some(least.map_or(position, |l| l.min(position)));
        }
        Ok(least)
    }

    /// Fires every module's `connect` hooks with the peer's node id, in module order.
    pub fn peer_connected(&self, node_id: &str) -> Result<(), NodeError> {
        self.fire_peer(&Event::Connect, node_id)
    }

    /// Fires every module's `disconnect` hooks with the peer's node id, in module order.
    pub fn peer_disconnected(&self, node_id: &str) -> Result<(), NodeError> {
        self.fire_peer(&Event::Disconnect, node_id)
    }

    fn fire_peer(&self, event: &Event, node_id: &str) -> Result<(), NodeError> {
        let mut args = Vec::new();
        encode_into(&Value::String(node_id.to_owned()), &mut args);
        let names: Vec<String> = self.core.modules.load().keys().cloned().collect::<Vec<_>>();
        let mut any = false;
        for module in names {
            any |= self.submit_hooks(&module, event, &args)?;
        }
        if any {
            self.drive()?;
        }
        Ok(())
    }
}

fn remote_event(node: &str, module: &str, table: &str, kind: TableEvent) -> Event {
    Event::Table {
        node: Some(node.to_owned()),
        module: module.to_owned(),
        table: table.to_owned(),
        kind,
    }
}

/// The origin under which a subscriber remembers its last change from a remote node.
fn subscription_key(remote_id: &str, event: &Event, module: &str, reducer: &str) -> String {
    // The event string names the node by its binding; the id pins the node itself, whose
    // sequence numbers the positions are.
    format!("{remote_id}|{event}|{module}.{reducer}")
}

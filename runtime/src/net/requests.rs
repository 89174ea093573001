//! Answering requests: the public [`Node`] API behind each [`Request`], with the checks the
//! network adds (private modules, subscriptions per connection, answers within the frame
//! limit).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use interstice_abi::{ModuleSchema, Type, TypeRegistry, decode_fields, encode};

use super::proto::{
    ErrorKind, PublishReport, ReducerOutcome, RemoteError, Request, RequestFrame, Response,
};
use super::server::{Session, Shared};
use crate::{BadArguments, FeedSink, NodeError, Outcome, Published};

/// What requests need to know about an installed module.
pub(super) struct ModuleInfo {
    schema: ModuleSchema,
    registry: TypeRegistry,
    queries: HashMap<String, (Vec<Type>, Type)>,
}

pub(super) fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(RemoteError {
        kind,
        message: message.into(),
    })
}

fn reducer_response(outcome: Result<Outcome, NodeError>) -> Response {
    match outcome {
        Ok(Outcome::Committed { seq, lsn }) => {
            Response::Reducer(ReducerOutcome::Committed { seq, lsn: lsn.0 })
        }
        Ok(Outcome::Failed { seq, reason }) => Response::Reducer(ReducerOutcome::Failed {
            seq,
            reason: reason.to_string(),
        }),
        Err(e) => node_error(&e),
    }
}

/// The node's counters, then its authorities' figures.
fn node_figures(node: &crate::Node) -> Vec<(String, String)> {
    let stats = node.stats();
    let mut figures = vec![
        ("invocations".to_owned(), stats.invocations.to_string()),
        ("windows".to_owned(), stats.windows.to_string()),
        ("workers".to_owned(), node.workers().to_string()),
        (
            "uptime".to_owned(),
            format!("{:.0} s", stats.uptime.as_secs_f64()),
        ),
        ("log fsyncs".to_owned(), stats.log_fsyncs.to_string()),
        (
            "log fsyncs per second (since start)".to_owned(),
            format!(
                "{:.1}",
                stats.log_fsyncs as f64 / stats.uptime.as_secs_f64().max(1e-3)
            ),
        ),
        (
            // Each log record is a commit (or a commit and what it triggered, logged together).
            "commits per fsync".to_owned(),
            format!(
                "{:.1}",
                stats.records_durable as f64 / stats.log_fsyncs.max(1) as f64
            ),
        ),
    ];
    figures.extend(node.authority_stats());
    figures
}

fn node_error(e: &NodeError) -> Response {
    let kind = match e {
        NodeError::NoSuchModule(_)
        | NodeError::NoSuchFunction { .. }
        | NodeError::NotSubscribable { .. } => ErrorKind::NotFound,
        NodeError::Unauthorized(_) => ErrorKind::Unauthorized,
        NodeError::NotCallable { .. } | NodeError::BadArguments(_) | NodeError::InvalidName(_) => {
            ErrorKind::BadRequest
        }
        NodeError::Load(_)
        | NodeError::AlreadyInstalled(_)
        | NodeError::AuthorityTaken { .. }
        | NodeError::AuthorityMissing { .. }
        | NodeError::AuthorityRefused { .. }
        | NodeError::Reserved(_)
        | NodeError::Incompatible { .. } => ErrorKind::Refused,
        _ => ErrorKind::Internal,
    };
    error(kind, e.to_string())
}

impl Shared {
    /// Answers a batch: one request of any kind, or reducer calls, which run together.
    pub(super) fn handle_batch(
        &self,
        session: &Session,
        batch: Vec<RequestFrame>,
    ) -> Vec<Response> {
        if !batch
            .iter()
            .all(|r| matches!(r.request, Request::CallReducer { .. }))
        {
            return batch
                .into_iter()
                .map(|r| self.handle(session, r.id, r.request))
                .collect();
        }
        let mut responses: Vec<Option<Response>> = Vec::with_capacity(batch.len());
        let mut calls = Vec::with_capacity(batch.len());
        for frame in &batch {
            let Request::CallReducer {
                module,
                reducer,
                args,
                origin,
            } = &frame.request
            else {
                continue;
            };
            match self.module_for(session, module) {
                Ok(_) => {
                    responses.push(None);
                    let origin = origin.as_ref().map(|(m, id)| (m.as_str(), *id));
                    calls.push((module.as_str(), reducer.as_str(), args.as_slice(), origin));
                }
                Err(refused) => responses.push(Some(refused)),
            }
        }
        // Only another node's calls carry an origin worth deduplicating on: its id is the
        // one it gave in the handshake.
        let mut outcomes = self
            .node
            .call_reducers_from(session.peer_node.as_deref(), &calls)
            .into_iter();
        responses
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| match outcomes.next() {
                    Some(outcome) => reducer_response(outcome),
                    None => error(ErrorKind::Internal, "a batched call lost its outcome"),
                })
            })
            .collect()
    }

    fn handle(&self, session: &Session, id: u64, request: Request) -> Response {
        match request {
            Request::Ping => Response::Pong,
            Request::Stats => Response::Stats(node_figures(&self.node)),
            Request::Schema => Response::Schema(self.node.schemas_for(session.principal())),
            Request::Publish { wasm } => {
                let result = self.node.publish_as(session.principal(), &wasm);
                self.refresh_schemas();
                match result {
                    Ok(Published::Installed(schema)) => {
                        tracing::info!(peer = %session.peer, module = %schema.name, version = %schema.version, "installed");
                        Response::Published(PublishReport::Installed {
                            module: schema.name,
                            version: schema.version,
                        })
                    }
                    Ok(Published::Upgraded { from, to }) => {
                        tracing::info!(peer = %session.peer, module = %to.name, %from, to = %to.version, "upgraded");
                        Response::Published(PublishReport::Upgraded {
                            module: to.name,
                            from,
                            to: to.version,
                        })
                    }
                    Err(e) => {
                        tracing::info!(peer = %session.peer, error = %e, "publish refused");
                        node_error(&e)
                    }
                }
            }
            Request::Remove { module } => {
                let result = self.node.remove_as(session.principal(), &module);
                self.refresh_schemas();
                match result {
                    Ok(()) => {
                        tracing::info!(peer = %session.peer, %module, "removed");
                        Response::Removed
                    }
                    Err(e) => node_error(&e),
                }
            }
            request @ Request::CallReducer { .. } => {
                let mut answers = self.handle_batch(session, vec![RequestFrame { id, request }]);
                answers.pop().unwrap_or_else(|| {
                    error(ErrorKind::Internal, "a reducer call lost its outcome")
                })
            }
            Request::Subscribe {
                module,
                table,
                event,
                after,
            } => {
                let max = self.config.max_subscriptions;
                if session.subscriptions.load(Ordering::Relaxed) >= max {
                    return error(
                        ErrorKind::Limit,
                        format!(
                            "this connection already holds {max} subscriptions, the node's limit for one connection"
                        ),
                    );
                }
                if let Err(refused) =
                    self.node
                        .check_subscription(session.principal(), &module, &table)
                {
                    return node_error(&refused);
                }
                let sink = FeedSink {
                    tag: id,
                    events: session.events.clone(),
                    lagged: session.lagged.clone(),
                };
                match self
                    .node
                    .subscribe_table(&module, &table, event, sink, after)
                {
                    Ok(complete) => {
                        session.subscriptions.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(peer = %session.peer, %module, %table, ?event, ?after, complete, "subscribed");
                        Response::Subscribed { complete }
                    }
                    Err(e) => node_error(&e),
                }
            }
            Request::CallQuery {
                module,
                query,
                args,
            } => {
                let info = match self.module_for(session, &module) {
                    Ok(info) => info,
                    Err(refused) => return refused,
                };
                let Some((types, returns)) = info.queries.get(&query) else {
                    return node_error(&NodeError::NoSuchFunction {
                        module,
                        kind: "query",
                        name: query,
                    });
                };
                let values = match decode_fields(&args, types, &info.registry) {
                    Ok(values) => values,
                    Err(e) => {
                        let bad = BadArguments::new(&module, &query, types, e);
                        return node_error(&NodeError::BadArguments(bad));
                    }
                };
                match self.node.call_query(&module, &query, &values) {
                    Ok(value) => Response::Query {
                        value: encode(&value),
                        ty: returns.clone(),
                    },
                    Err(e) => node_error(&e),
                }
            }
        }
    }

    /// The module's info, refusing private modules to non-admins.
    fn module_for(&self, session: &Session, module: &str) -> Result<Arc<ModuleInfo>, Response> {
        let cached = self.schemas.read().get(module).cloned();
        let info = match cached {
            Some(info) => info,
            None => {
                self.refresh_schemas();
                let found = self.schemas.read().get(module).cloned();
                found.ok_or_else(|| node_error(&NodeError::NoSuchModule(module.to_owned())))?
            }
        };
        crate::policy::may_use(session.principal(), &info.schema).map_err(|e| node_error(&e))?;
        Ok(info)
    }

    pub(super) fn refresh_schemas(&self) {
        let map = self
            .node
            .schemas()
            .into_iter()
            .filter_map(|schema| {
                // Installed schemas were validated on install; one that no longer builds a
                // registry is left out and its calls are answered "no such module".
                let registry = schema.registry().ok()?;
                let queries = schema
                    .queries
                    .iter()
                    .map(|q| {
                        (
                            q.name.clone(),
                            (
                                q.args.iter().map(|a| a.ty.clone()).collect(),
                                q.returns.clone(),
                            ),
                        )
                    })
                    .collect();
                Some((
                    schema.name.clone(),
                    Arc::new(ModuleInfo {
                        schema,
                        registry,
                        queries,
                    }),
                ))
            })
            .collect();
        *self.schemas.write() = Arc::new(map);
    }
}

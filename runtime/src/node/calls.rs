//! Calls from outside: reducers (one, or many in one window), queries, and the checks of
//! their arguments against the signature.

use std::sync::Arc;

use interstice_abi::{Type, TypeRegistry, Value, decode_fields, encode_into};
use interstice_store::Lsn;

use super::NodeInner;
use super::ingress::Submission;
use crate::core::Origin;
use crate::error::{BadArguments, CallFailure, NodeError};
use crate::exec::Frame;
use crate::wasm::{Call, Running};

/// The outcome of one reducer invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it wrote is committed (and durable, under the configured durability).
    Committed { seq: u64, lsn: Lsn },
    /// Nothing it wrote was committed.
    Failed { seq: u64, reason: CallFailure },
}

impl Outcome {
    pub fn is_committed(&self) -> bool {
        matches!(self, Outcome::Committed { .. })
    }
}

impl super::Node {
    /// Runs the batch as [`call_many`](NodeInner::call_many) does (submitted, executed,
    /// committed in memory) and returns before waiting for its durability, so that the caller
    /// can run its next batch while the log is made durable, then [`PendingCalls::wait`] for
    /// this one. Under acknowledged durability (`Durability::EveryCommit`),
    /// [`call_many`](NodeInner::call_many) in a loop leaves the workers idle for the length of
    /// every fsync; a loop that waits for batch `k` (on another thread) while batch `k + 1`
    /// runs does not.
    ///
    /// The outcomes stay inside [`PendingCalls`] until the wait returns: nothing in a batch
    /// may be reported as committed before it is durable.
    pub fn call_many_pipelined(
        &self,
        calls: &[(&str, &str, Vec<u8>)],
    ) -> Result<PendingCalls, NodeError> {
        Ok(PendingCalls {
            outcomes: self.inner.run_many(calls)?,
            node: self.inner.clone(),
        })
    }
}

/// A batch of calls committed in memory, not yet known to be durable: what
/// [`Node::call_many_pipelined`](super::Node::call_many_pipelined) returns. Dropping it
/// without waiting leaves the calls committed (a crash may still lose them, as it may any call
/// not yet acknowledged).
#[must_use = "the calls may be reported as committed only once `wait` returns"]
pub struct PendingCalls {
    node: Arc<NodeInner>,
    outcomes: Vec<Outcome>,
}

impl PendingCalls {
    /// How many calls the batch holds.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// Waits until every committed call of the batch is durable (log order: the last one's
    /// record covers the others), then hands over the outcomes, in the order of the calls.
    pub fn wait(self) -> Result<Vec<Outcome>, NodeError> {
        self.node.wait_durable_all(&self.outcomes)?;
        Ok(self.outcomes)
    }
}

/// A reducer call as [`Node::call_reducers_from`] takes it: module, reducer, encoded arguments,
/// and, for a call from another node's outbox, the calling module and the call's number there.
pub(crate) type RemoteCallIn<'a> = (&'a str, &'a str, &'a [u8], Option<(&'a str, u64)>);

impl NodeInner {
    /// Calls a reducer with encoded arguments and waits for its outcome (and for the reducers
    /// its commit triggers).
    pub fn call_reducer(
        &self,
        module: &str,
        reducer: &str,
        args: &[u8],
    ) -> Result<Outcome, NodeError> {
        let (module, reducer) = self.check_reducer_call(module, reducer, args)?;
        let ticket = self.submit_awaited(Submission::call(module, reducer, args.to_vec()));
        let outcome = self.drive_until(ticket)?;
        self.wait_durable(&outcome)?;
        Ok(outcome)
    }

    /// Calls many reducers at once, each checked as by [`call_reducer`](Self::call_reducer):
    /// the valid ones enter the ingress in the order given (one window for the scheduler), and
    /// each gets its own outcome or error, in order.
    pub fn call_reducers(&self, calls: &[(&str, &str, &[u8])]) -> Vec<Result<Outcome, NodeError>> {
        let calls: Vec<RemoteCallIn<'_>> = calls
            .iter()
            .map(|&(module, reducer, args)| (module, reducer, args, None))
            .collect();
        self.call_reducers_from(None, &calls)
    }

    /// [`call_reducers`](Self::call_reducers) for calls that node `node_id` sent from its
    /// outbox: each may carry `(calling module, outbox number)`. A call whose number this node
    /// has committed for that origin already (it was sent again after a lost answer or a
    /// reconnection) does not run again and is reported committed.
    pub(crate) fn call_reducers_from(
        &self,
        node_id: Option<&str>,
        calls: &[RemoteCallIn<'_>],
    ) -> Vec<Result<Outcome, NodeError>> {
        let checked: Vec<Result<Submission, NodeError>> = calls
            .iter()
            .map(|&(module, reducer, args, from)| {
                let (module, reducer) = self.check_reducer_call(module, reducer, args)?;
                let origin = match (node_id, from) {
                    (Some(node), Some((caller, id))) => Some(Origin {
                        key: format!("{node}/{caller}"),
                        id,
                        part: 0,
                    }),
                    _ => None,
                };
                Ok(Submission::call(module, reducer, args.to_vec()).origin(origin))
            })
            .collect();
        let mut valid = Vec::with_capacity(checked.len());
        let mut slots: Vec<Result<(), NodeError>> = Vec::with_capacity(checked.len());
        for call in checked {
            slots.push(call.map(|call| valid.push(call)));
        }
        let tickets = self.entrance.submit_awaited_all(valid);
        // If the drive fails, the first call gets its error and each later one is driven on
        // its own (its outcome may have been filed meanwhile), as separate calls would be.
        let ran: Vec<Result<Outcome, NodeError>> = match self.drive_tickets(tickets.clone()) {
            Ok(ran) => ran.into_iter().map(Ok).collect(),
            Err(e) => std::iter::once(Err(e))
                .chain(tickets.skip(1).map(|t| self.drive_until(t)))
                .collect(),
        };
        // One result per valid call, in order: the slots that were `Ok` take them in turn.
        let mut ran = ran.into_iter();
        let outcomes: Vec<Result<Outcome, NodeError>> = slots
            .into_iter()
            .map(|slot| slot.and_then(|()| ran.next().unwrap_or(Err(NodeError::Halted))))
            .collect();
        // Durability is in log order: the last committed call being durable covers the rest.
        let last = outcomes
            .iter()
            .rev()
            .find_map(|o| o.as_ref().ok().filter(|o| o.is_committed()));
        if let Some(last) = last
            && let Err(e) = self.wait_durable(last)
        {
            let message = e.to_string();
            return outcomes
                .into_iter()
                .map(|o| match o {
                    Ok(Outcome::Committed { seq, .. }) => Ok(Outcome::Failed {
                        seq,
                        reason: CallFailure::Host(format!("not made durable: {message}")),
                    }),
                    other => other,
                })
                .collect();
        }
        outcomes
    }

    /// Submits many reducer calls at once (encoded arguments, not checked) and waits for all of
    /// them. They enter the ingress in the order given, so the scheduler sees them in one window
    /// and runs the non-conflicting ones in parallel.
    pub fn call_many(&self, calls: &[(&str, &str, Vec<u8>)]) -> Result<Vec<Outcome>, NodeError> {
        let outcomes = self.run_many(calls)?;
        self.wait_durable_all(&outcomes)?;
        Ok(outcomes)
    }

    /// Waits until every committed outcome of a batch is durable: durability is in log order,
    /// so the last committed one's record covers the others.
    fn wait_durable_all(&self, outcomes: &[Outcome]) -> Result<(), NodeError> {
        match outcomes.iter().rev().find(|o| o.is_committed()) {
            Some(last) => self.wait_durable(last),
            None => Ok(()),
        }
    }

    /// [`call_many`](Self::call_many) up to the commit in memory, without the durability wait.
    fn run_many(&self, calls: &[(&str, &str, Vec<u8>)]) -> Result<Vec<Outcome>, NodeError> {
        // Built before the inbox lock is taken: copying arguments is no work to do under it.
        // A batch usually calls one reducer again and again: its names are shared, not copied.
        let mut names: Option<(Arc<str>, Arc<str>)> = None;
        let submissions: Vec<Submission> = calls
            .iter()
            .map(|(module, reducer, args)| {
                let (m, r) = match &names {
                    Some((m, r)) if **m == **module && **r == **reducer => (m.clone(), r.clone()),
                    _ => {
                        let fresh: (Arc<str>, Arc<str>) = ((*module).into(), (*reducer).into());
                        names.insert(fresh).clone()
                    }
                };
                Submission::call(m, r, args.clone())
            })
            .collect();
        let tickets = self.entrance.submit_awaited_all(submissions);
        self.drive_tickets(tickets)
    }

    /// Calls a reducer with typed arguments, checked against its signature.
    pub fn call_reducer_values(
        &self,
        module: &str,
        reducer: &str,
        args: &[Value],
    ) -> Result<Outcome, NodeError> {
        let installed = self.module(module)?;
        let r = installed
            .reducers
            .get(reducer)
            .ok_or_else(|| no_such(module, "reducer", reducer))?;
        let bytes = encode_args(module, reducer, &r.args, args, &installed.registry)?;
        self.call_reducer(module, reducer, &bytes)
    }

    /// Runs a query over the committed state and returns its value.
    pub fn call_query(
        &self,
        module: &str,
        query: &str,
        args: &[Value],
    ) -> Result<Value, NodeError> {
        let installed = self.module(module)?;
        let q = installed
            .queries
            .get(query)
            .ok_or_else(|| no_such(module, "query", query))?;
        let bytes = encode_args(module, query, &q.args, args, &installed.registry)?;
        // The committed state between two windows, read without holding up commits.
        let snapshot = self.snapshot();
        let frame = Frame {
            callee: q.callee.clone(),
            timestamp: self.entrance.stamp(None),
            seq: u64::MAX,
            seed: self.config.seed,
        };
        let running = || Running {
            exec: self.core.exec(frame).reading(snapshot),
            core: self.core.clone(),
            read_only: true,
            hook: None,
        };
        let call = Call {
            query: true,
            index: q.index,
            args: &bytes,
            fuel: self.config.limits.fuel_per_call,
        };
        let result = self
            .core
            .run(&installed, running, call, |_, output| output.result);
        let bytes = result.map_err(|reason| NodeError::QueryFailed {
            module: module.to_owned(),
            query: query.to_owned(),
            reason,
        })?;
        interstice_abi::decode(&bytes, &q.returns, &installed.registry).map_err(|e| {
            NodeError::QueryFailed {
                module: module.to_owned(),
                query: query.to_owned(),
                reason: CallFailure::Host(format!(
                    "it returned {} bytes that do not decode as {}: {e}",
                    bytes.len(),
                    q.returns
                )),
            }
        })
    }

    /// Checks that `module.reducer` exists, may be called from outside and takes `args`;
    /// returns the shared names to submit it under.
    fn check_reducer_call(
        &self,
        module: &str,
        reducer: &str,
        args: &[u8],
    ) -> Result<(Arc<str>, Arc<str>), NodeError> {
        let installed = self.module(module)?;
        let r = installed
            .reducers
            .get(reducer)
            .ok_or_else(|| no_such(module, "reducer", reducer))?;
        if let Some(event) = &r.on {
            return Err(NodeError::NotCallable {
                module: module.to_owned(),
                reducer: reducer.to_owned(),
                event: event.to_string(),
            });
        }
        decode_fields(args, &r.args, &installed.registry)
            .map_err(|e| BadArguments::new(module, reducer, &r.args, e))?;
        Ok((installed.name.clone(), r.name.clone()))
    }

    pub(crate) fn module(&self, name: &str) -> Result<Arc<crate::core::Installed>, NodeError> {
        self.core
            .module(name)
            .ok_or_else(|| NodeError::NoSuchModule(name.to_owned()))
    }

    fn submit_awaited(&self, submission: Submission) -> u64 {
        self.entrance.submit_awaited(submission)
    }
}

fn no_such(module: &str, kind: &'static str, name: &str) -> NodeError {
    NodeError::NoSuchFunction {
        module: module.to_owned(),
        kind,
        name: name.to_owned(),
    }
}

/// Encodes typed arguments after checking them against `types`.
fn encode_args(
    module: &str,
    function: &str,
    types: &[Type],
    args: &[Value],
    registry: &TypeRegistry,
) -> Result<Vec<u8>, NodeError> {
    if types.len() != args.len() {
        let reason = format!("{} arguments given", args.len());
        return Err(BadArguments::new(module, function, types, reason).into());
    }
    let mut out = Vec::new();
    for (i, (ty, value)) in types.iter().zip(args).enumerate() {
        ty.check(value, registry).map_err(|e| {
            BadArguments::new(module, function, types, format!("argument {}: {e}", i + 1))
        })?;
        encode_into(value, &mut out);
    }
    Ok(out)
}

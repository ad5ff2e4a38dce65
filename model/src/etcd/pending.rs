//! What a member waits on: proposals it took, linearizable reads waiting for ReadIndex,
//! lease keepalives forwarded to the leader, and the leader-side lease timers.

use std::collections::BTreeMap;

use crate::time::SimTime;

use super::RequestId;

/// A proposal this member put into raft for a client.
#[derive(Clone, Debug)]
pub(crate) struct PendingProposal {
    pub client: RequestId,
    pub started: SimTime,
    pub deadline: SimTime,
}

/// A range as a read serves it.
#[derive(Clone, Debug)]
pub(crate) struct RangeQuery {
    pub key: String,
    pub prefix: bool,
    pub limit: usize,
    pub revision: i64,
}

/// Reads that share one ReadIndex round (EtcdServer.linearizableReadLoop serves every
/// read waiting when a round starts).
#[derive(Debug)]
pub(crate) struct ReadBatch {
    pub reads: Vec<(RequestId, RangeQuery)>,
    pub sent_at: SimTime,
    pub deadline: SimTime,
    /// The read index the leader confirmed; the reads are served once applied.
    pub index: Option<u64>,
}

/// Linearizable reads in their ReadIndex rounds.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    pub waiting: Vec<(RequestId, RangeQuery)>,
    pub batches: BTreeMap<u64, ReadBatch>,
    /// ReadIndex request context -> batch (a retried round has several contexts).
    pub ctx_to_batch: BTreeMap<u64, u64>,
    pub next_ctx: u64,
}

impl Reads {
    /// A batch's reads whose round has not been confirmed yet, removed.
    pub fn take_unconfirmed(&mut self) -> Vec<(RequestId, RangeQuery)> {
        let ids: Vec<u64> =
            self.batches.iter().filter(|(_, b)| b.index.is_none()).map(|(id, _)| *id).collect();
        let mut reads = Vec::new();
        for id in ids {
            reads.extend(self.batches.remove(&id).map(|b| b.reads).unwrap_or_default());
        }
        self.ctx_to_batch.retain(|_, b| self.batches.contains_key(b));
        reads
    }

    /// Batches confirmed at an index at or below `applied`, removed.
    pub fn take_servable(&mut self, applied: u64) -> Vec<(RequestId, RangeQuery)> {
        let ids: Vec<u64> = self
            .batches
            .iter()
            .filter(|(_, b)| b.index.is_some_and(|i| i <= applied))
            .map(|(id, _)| *id)
            .collect();
        let mut reads = Vec::new();
        for id in ids {
            reads.extend(self.batches.remove(&id).map(|b| b.reads).unwrap_or_default());
        }
        self.ctx_to_batch.retain(|_, b| self.batches.contains_key(b));
        reads
    }

    /// Batches past their deadline, removed.
    pub fn take_expired(&mut self, now: SimTime) -> Vec<(RequestId, RangeQuery)> {
        let ids: Vec<u64> =
            self.batches.iter().filter(|(_, b)| b.deadline <= now).map(|(id, _)| *id).collect();
        let mut reads = Vec::new();
        for id in ids {
            reads.extend(self.batches.remove(&id).map(|b| b.reads).unwrap_or_default());
        }
        self.ctx_to_batch.retain(|_, b| self.batches.contains_key(b));
        reads
    }
}

/// A keepalive this member forwarded to the leader.
#[derive(Clone, Debug)]
pub(crate) struct PendingKeepAlive {
    pub client: RequestId,
    pub lease: i64,
    pub deadline: SimTime,
    /// When to send it again if the leader answered "not primary" or nobody answered.
    pub retry_at: SimTime,
}

/// The leader-side lessor (server/lease/lessor.go): lease expiry lives only in the
/// primary's memory. A member becomes primary at the first commit of its term and
/// extends every lease by the election timeout (Promote); it stops being primary when it
/// loses leadership (Demote).
#[derive(Debug, Default)]
pub(crate) struct Lessor {
    pub primary: bool,
    pub expiry: BTreeMap<i64, SimTime>,
    /// Expired leases whose revoke was proposed, and when to propose it again.
    pub revoking: BTreeMap<i64, SimTime>,
}

impl Lessor {
    pub fn demote(&mut self) {
        self.primary = false;
        self.expiry.clear();
        self.revoking.clear();
    }

    /// Expired leases due for a revoke proposal now.
    pub fn due_revokes(&self, now: SimTime) -> Vec<i64> {
        if !self.primary {
            return Vec::new();
        }
        self.expiry
            .iter()
            .filter(|(id, exp)| **exp <= now && self.revoking.get(id).is_none_or(|retry| *retry <= now))
            .map(|(id, _)| *id)
            .collect()
    }
}

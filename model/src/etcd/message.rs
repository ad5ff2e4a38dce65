//! What members send each other, and what a raft entry refers to.
//!
//! Raft entries carry no serialized request: an entry's data is a 24-byte
//! [`ProposalKey`], and the request itself travels beside the raft message as an
//! `Arc<Payload>` (so objects are shared, never copied or encoded). Snapshots travel the
//! same way: the leader's applied backend, by `Arc`.

use std::sync::Arc;

use raft::eraftpb::Message;

use super::backend::Backend;
use super::mvcc::StampCache;
use super::{Compare, Op, ValueSize};

/// Names one proposal across the cluster: the member that took the request, that
/// member's incarnation (a nonce drawn from the seeded RNG when it starts, so a
/// restarted member never reuses a key) and a sequence number. It is a raft entry's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalKey {
    pub member: u64,
    pub incarnation: u64,
    pub seq: u64,
}

impl ProposalKey {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(24);
        b.extend_from_slice(&self.member.to_le_bytes());
        b.extend_from_slice(&self.incarnation.to_le_bytes());
        b.extend_from_slice(&self.seq.to_le_bytes());
        b
    }

    pub(crate) fn decode(data: &[u8]) -> Option<ProposalKey> {
        let word = |i: usize| Some(u64::from_le_bytes(data.get(i * 8..i * 8 + 8)?.try_into().ok()?));
        (data.len() == 24).then_some(())?;
        Some(ProposalKey { member: word(0)?, incarnation: word(1)?, seq: word(2)? })
    }
}

/// A request that goes through raft (etcd's InternalRaftRequest, by value).
#[derive(Clone, Debug)]
pub enum WriteRequest<V> {
    Txn {
        compare: Vec<Compare>,
        success: Vec<Op<V>>,
        failure: Vec<Op<V>>,
    },
    Compact {
        revision: i64,
    },
    LeaseGrant {
        id: i64,
        ttl_seconds: i64,
    },
    LeaseRevoke {
        id: i64,
    },
    /// Raises a member's NOSPACE alarm (`activate`) or disarms every NOSPACE alarm.
    Alarm {
        member: u64,
        activate: bool,
    },
}

impl<V: ValueSize> WriteRequest<V> {
    /// Roughly what etcd's marshalled InternalRaftRequest would take, for
    /// --max-request-bytes.
    pub fn approx_bytes(&self) -> u64 {
        const FIELD_OVERHEAD: u64 = 16;
        let op_bytes = |op: &Op<V>| match op {
            Op::Put { key, value } | Op::PutWithLease { key, value, .. } => {
                FIELD_OVERHEAD + key.len() as u64 + value.approx_bytes()
            }
            Op::Delete { key } | Op::Get { key } => FIELD_OVERHEAD + key.len() as u64,
        };
        match self {
            WriteRequest::Txn { compare, success, failure } => {
                compare.iter().map(|c| FIELD_OVERHEAD + c.key.len() as u64).sum::<u64>()
                    + success.iter().chain(failure).map(op_bytes).sum::<u64>()
            }
            _ => FIELD_OVERHEAD,
        }
    }
}

/// What a raft entry refers to: the request, plus the values its puts stored once the
/// first member applied it.
#[derive(Debug)]
pub struct Payload<V> {
    pub key: ProposalKey,
    pub request: WriteRequest<V>,
    pub(crate) stamps: StampCache<V>,
}

impl<V> Payload<V> {
    pub fn new(key: ProposalKey, request: WriteRequest<V>) -> Self {
        Payload { key, request, stamps: StampCache::default() }
    }
}

/// One message between members.
#[derive(Debug)]
pub struct PeerMessage<V> {
    pub from: u64,
    pub to: u64,
    pub body: PeerBody<V>,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved once, from sender to receiver
pub enum PeerBody<V> {
    /// A raft message. `payloads` holds the request of every entry with data, in entry
    /// order; `snapshot` the backend a MsgSnapshot installs.
    Raft { msg: Message, payloads: Vec<Arc<Payload<V>>>, snapshot: Option<Arc<Backend<V>>> },
    /// A lease keepalive forwarded to the leader (leases are renewed on the leader, not
    /// through raft: EtcdServer.LeaseRenew / leasehttp).
    LeaseKeepAlive { forward_id: u64, lease: i64 },
    /// The leader's answer: the lease's TTL, or an error.
    LeaseKeepAliveResponse { forward_id: u64, result: Result<i64, &'static str> },
}

impl<V> PeerMessage<V> {
    /// The raft message type, for tracing and fault rules (None for lease forwarding).
    pub fn raft_type(&self) -> Option<raft::eraftpb::MessageType> {
        match &self.body {
            PeerBody::Raft { msg, .. } => Some(msg.get_msg_type()),
            _ => None,
        }
    }
}

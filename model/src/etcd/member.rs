//! One etcd member replicated by raft-rs, as a sans-I/O state machine.
//!
//! Inputs: [`RaftMember::request`] (a client request with the driver's id),
//! [`RaftMember::step`] (a message from a peer), [`RaftMember::tick`] (simulated time
//! passing). Then [`RaftMember::ready`] runs raft-rs's Ready cycle — persist to the
//! [`Disk`], apply committed entries, answer clients — and returns the [`Output`]:
//! messages for peers, responses, committed MVCC events, leader changes. Every input
//! takes `now` (and, where raft may reset its election timer, the member's seeded RNG);
//! nothing here reads a clock or draws from an unseeded RNG.
//!
//! A driver's loop, per wake-up (the [`crate::process`] protocol, through
//! [`super::EtcdServer`]):
//!
//! 1. feed everything that arrived: `step` each peer message, `request` each client
//!    request (the member answers what it can at once, queues the rest);
//! 2. if `now >= next_tick_at()`, call `tick(now, rng)`;
//! 3. call `ready(now, rng)` and perform its [`Output`]: send `messages`, deliver
//!    `responses` and `events`, trace `leader_changes`, write `persist` to the durable
//!    disk (fsynced when `sync`), then call `advance(rng)`, which releases what waited
//!    for the writes (followers' acknowledgements, raft's own persisted progress); while
//!    `has_ready()`, go back to 3;
//! 4. sleep until the next message or `next_tick_at()`.
//!
//! Proposals taken between two `ready` calls go to raft as one batch. The driver keeps
//! the durable copy of the disk: after a kill, `RaftMember::recover(config, copy, now,
//! rng)` restarts the member from it; [`DiskState::lost`] replaces a lost disk.
//!
//! ## A member on a lost disk
//!
//! A member restarted on [`Disk::lost`] has its old id and none of its raft state: its
//! log, its term and its votes are gone. Raft's safety rests on voters remembering them —
//! an entry is committed once a majority holds it, and every later leader needs a vote
//! from that majority, whose members refuse a candidate without it. Forgetful, the
//! member could vote anew in a term it already voted in, or vote for (or be) a candidate
//! without the committed log: with a member back on a stale disk it forms a majority
//! that holds none of the entries the old incarnation acknowledged (fuzz schedule
//! `{"seed":268598044202362635,"members":3,"faults":[[1096,{"Kill":2}],[3581,{"LoseDisk":1}]]}`:
//! the blank member won term 2 with the stale one's vote, its first entry overwrote the
//! committed ones, and the member that held them stayed behind forever). Real etcd has
//! the operator remove the member and add it back; here it rejoins with its id, as
//! etcd's learners do, and stays out of elections until it has caught up:
//!
//! - it grants no vote or pre-vote (the requests are dropped, as if lost) and never
//!   campaigns (its election timer is held at zero; a leader transfer to it is dropped);
//! - it has caught up when, at least an election timeout after it started (by then what
//!   was in flight to or from the old incarnation has left the network; raft assumes
//!   the network is that fast), it follows a leader of its current term, has committed
//!   an entry of that term — so it holds every entry committed before the term (Leader
//!   Completeness and Log Matching) — and has committed up to the highest commit index
//!   that leader told it. It records that on its disk and votes again.
//!
//! What stays assumed, as with etcd's learners: the old incarnation voted in no term
//! above the one of the leader it catches up from — true when it lost its disk under a
//! stable leader, the fault model of the fuzz (`kubesim-faults`' `within_fault_model`).
//!
//! Every member, rejoining or not, commits from a heartbeat only the prefix of its log
//! that it has matched against the current leader's log (see `clamp_heartbeat_commit`):
//! the leader's heartbeat carries a commit index bounded by what it remembers of the
//! member, which for a lost disk is the old incarnation's log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use raft::eraftpb::{ConfState, Entry, Message, MessageType};
use raft::{RawNode, ReadState, StateRole};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::time::SimTime;

use super::backend::{Applied, Backend};
use super::config::{MemberConfig, READ_INDEX_RETRY};
use super::disk::{Disk, DiskOp, DiskState, DiskStorage};
use super::errors::*;
use super::message::{Payload, PeerBody, PeerMessage, ProposalKey, WriteRequest};
use super::pending::{Lessor, PendingKeepAlive, PendingProposal, RangeQuery, ReadBatch, Reads};
use super::{EtcdRequest, EtcdResponse, MvccEvent, MvccStore, Op, Stamp, ValueSize};

/// The driver's name for one client request; unique among this member's open requests.
pub type RequestId = u64;

/// server/lease/lessor.go ErrNotPrimary: a keepalive reached a member that is not the
/// primary lessor; the forwarding member retries.
const ERR_NOT_PRIMARY: &str = "not a primary lessor";
/// server/lease/lessor.go expiredLeaseRetryInterval (v3.5): an expired lease whose
/// revoke did not commit is proposed again after this long.
const EXPIRED_LEASE_RETRY: Duration = Duration::from_secs(3);

/// A member's raft role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl From<StateRole> for Role {
    fn from(r: StateRole) -> Role {
        match r {
            StateRole::Follower => Role::Follower,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Candidate => Role::Candidate,
            StateRole::Leader => Role::Leader,
        }
    }
}

/// The (term, leader) a member believes in changed: what the trace records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderChange {
    pub at: SimTime,
    pub term: u64,
    pub leader: Option<u64>,
}

/// An alarm change a member applied (etcd's AlarmRequest through raft,
/// server/etcdserver/apply.go `applyV3backend.Alarm`), with the member's database size
/// and quota then, for the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlarmChange {
    pub at: SimTime,
    /// The raft entry that carried it: the same on every member.
    pub index: u64,
    /// The member whose NOSPACE alarm is raised (for a disarm, the member that took it).
    pub member: u64,
    /// Raised (`true`) or disarmed.
    pub activate: bool,
    /// The applying member's database size (bytes) and --quota-backend-bytes.
    pub db_size_bytes: u64,
    pub quota_bytes: u64,
}

/// A snapshot of a member's raft and apply state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: u64,
    pub term: u64,
    pub leader: Option<u64>,
    pub role: Role,
    pub commit_index: u64,
    pub applied_index: u64,
    pub revision: i64,
    /// Raft ticks fired since this incarnation started.
    pub raft_ticks: u64,
    /// On a lost disk and not caught up yet: takes no part in elections.
    pub rejoining: bool,
}

/// What one Ready cycle produced.
#[derive(Debug)]
pub struct Output<V> {
    /// For peers, to send now: a leader's appends may go before its own write
    /// (raft thesis 10.2.1); everything else that depends on `persist` waits for
    /// [`RaftMember::advance`].
    pub messages: Vec<PeerMessage<V>>,
    /// Writes to the member's disk, in order; the driver applies them to the durable
    /// copy, then calls [`RaftMember::advance`].
    pub persist: Vec<DiskOp<V>>,
    /// `persist` must be fsynced before `advance` (etcd's mustSync: entries, a
    /// snapshot, a new term or vote).
    pub sync: bool,
    /// Answers to client requests, in the order they completed.
    pub responses: Vec<(RequestId, EtcdResponse<V>)>,
    /// Committed changes as this member applied them, in revision order.
    pub events: Vec<MvccEvent<V>>,
    pub leader_changes: Vec<LeaderChange>,
    /// The member installed a snapshot from the leader at this store revision: it has
    /// no events for the revisions it skipped (a watcher must resync from here).
    pub installed_snapshot: Option<i64>,
    /// Alarm changes this member applied, in log order.
    pub alarms: Vec<AlarmChange>,
}

impl<V> Default for Output<V> {
    fn default() -> Self {
        Output {
            messages: Vec::new(),
            persist: Vec::new(),
            sync: false,
            responses: Vec::new(),
            events: Vec::new(),
            leader_changes: Vec::new(),
            installed_snapshot: None,
            alarms: Vec::new(),
        }
    }
}

impl<V> Output<V> {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.persist.is_empty()
            && self.responses.is_empty()
            && self.events.is_empty()
            && self.leader_changes.is_empty()
            && self.installed_snapshot.is_none()
            && self.alarms.is_empty()
    }
}

/// One replicated etcd member. See the module documentation for the driving protocol.
pub struct RaftMember<V: Clone + Stamp + ValueSize> {
    config: MemberConfig,
    raw: RawNode<DiskStorage<V>>,
    disk: Disk<V>,
    /// Drawn from the seeded RNG at start; makes this incarnation's proposal keys unique.
    incarnation: u64,
    next_seq: u64,
    next_tick_at: SimTime,
    raft_ticks: u64,
    /// (term, role) when the election timeout was last drawn, and the value drawn.
    timeout_basis: (u64, StateRole),
    timeout_drawn: usize,
    /// Requests received from peers or proposed here, until raft has put them in a Ready.
    staged: BTreeMap<ProposalKey, Arc<Payload<V>>>,
    staged_snapshots: BTreeMap<(u64, u64), Arc<Backend<V>>>,
    /// Peers sent a snapshot in this Ready, to report to raft after it.
    snapshots_sent: Vec<u64>,
    /// Proposals taken since the last Ready, proposed together in one MsgPropose.
    queued: Vec<Arc<Payload<V>>>,
    pending: BTreeMap<u64, PendingProposal>,
    reads: Reads,
    lessor: Lessor,
    keepalives: BTreeMap<u64, PendingKeepAlive>,
    next_forward_id: u64,
    /// The leader as of the last soft state (0 = none), as etcd's `s.lead`.
    lead: u64,
    /// When this member last became leader (etcd's leadElectedTime).
    lead_elected_at: Option<SimTime>,
    reported: (u64, Option<u64>),
    out: Output<V>,
    /// When this incarnation started.
    started_at: SimTime,
    /// Mirrors the disk's `rejoining`: the member lost its disk and has not caught up,
    /// so it neither votes nor campaigns (see the module documentation).
    rejoining: bool,
    /// (term, index): this member's log matches the log of the leader of `term` up to
    /// `index` (an accepted MsgAppend or snapshot of that term showed it). The committed
    /// prefix always matches; in another term only it counts.
    verified: (u64, u64),
    /// (term, index): the highest commit index the leader of `term` has told this member.
    leader_commit: (u64, u64),
    /// Messages that wait for this cycle's writes to be durable (a follower's append and
    /// vote responses, raft-rs's persisted messages), released by `advance`.
    held: Vec<PeerMessage<V>>,
    /// The last raft Ready whose writes are not yet durable (raft-rs's async ready:
    /// `on_persist_ready` once the driver has advanced past them).
    unpersisted: Option<u64>,
    /// A snapshot installed in a Ready not yet persisted: raft counts it applied then.
    snapshot_to_apply: Option<u64>,
    /// The last log index the driver has made durable: nothing above it is applied, and
    /// no response depends on it (Architecture Invariant: no acknowledgement before the
    /// fsync). Checked in debug builds.
    durable_index: u64,
}

impl<V: Clone + Stamp + ValueSize> RaftMember<V> {
    /// Starts a member from what its disk holds (a [`DiskState::recovery_copy`] of the
    /// durable copy): a blank disk bootstraps it with `config.peers` as the voters; a
    /// used one recovers it — hard state, log, the snapshot's applied state — and raft
    /// replays the committed entries past the snapshot.
    pub fn recover(config: MemberConfig, mut disk: DiskState<V>, now: SimTime, rng: &mut ChaCha8Rng) -> Self {
        assert!(config.peers.contains(&config.id), "a member is one of its peers");
        if disk.is_blank() {
            disk.conf_state = ConfState::from((config.peers.clone(), Vec::<u64>::new()));
        }
        disk.outgoing_snapshots.clear();
        // A durable log: whatever the leader of the disk's term counts this member as
        // holding, it acknowledged from this log. A member still rejoining trusts only
        // its committed prefix (that leader may remember the lost incarnation's log).
        let verified = if disk.rejoining { (0, 0) } else { (disk.hard_state.term, disk.last_index()) };
        let (applied, rejoining, durable_index) =
            (disk.backend().applied_index(), disk.rejoining, disk.last_index());
        let disk = Disk::new(disk);
        let raft_config = config.raft_config(applied);
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let storage = DiskStorage { disk: disk.clone() };
        let raw = RawNode::new(&raft_config, storage, &logger).expect("a valid raft config and disk");
        let timeout_basis = (raw.raft.term, raw.raft.state);
        let next_tick_at = now + config.tick_interval;
        let mut member = RaftMember {
            config,
            raw,
            disk,
            incarnation: rng.gen(),
            next_seq: 0,
            next_tick_at,
            raft_ticks: 0,
            timeout_basis,
            timeout_drawn: 0,
            staged: BTreeMap::new(),
            staged_snapshots: BTreeMap::new(),
            snapshots_sent: Vec::new(),
            queued: Vec::new(),
            pending: BTreeMap::new(),
            reads: Reads::default(),
            lessor: Lessor::default(),
            keepalives: BTreeMap::new(),
            next_forward_id: 0,
            lead: 0,
            lead_elected_at: None,
            reported: (0, None),
            out: Output::default(),
            started_at: now,
            rejoining,
            verified,
            leader_commit: (0, 0),
            held: Vec::new(),
            unpersisted: None,
            snapshot_to_apply: None,
            durable_index,
        };
        member.draw_election_timeout(rng);
        member
    }

    /// A member on a fresh disk.
    pub fn new(config: MemberConfig, now: SimTime, rng: &mut ChaCha8Rng) -> Self {
        Self::recover(config, DiskState::new(), now, rng)
    }

    pub fn id(&self) -> u64 {
        self.config.id
    }

    pub fn config(&self) -> &MemberConfig {
        &self.config
    }

    /// The first index still in this member's log (entries before it are compacted).
    pub fn log_first_index(&self) -> u64 {
        self.disk.read(|d| d.first_index())
    }

    /// The last index in this member's log.
    pub fn log_last_index(&self) -> u64 {
        self.disk.read(|d| d.last_index())
    }

    /// When the driver should call [`RaftMember::tick`] next.
    pub fn next_tick_at(&self) -> SimTime {
        self.next_tick_at
    }

    pub fn status(&self) -> MemberStatus {
        let r = &self.raw.raft;
        let (applied_index, revision) =
            self.disk.read(|d| (d.backend().applied_index(), d.backend().store().revision()));
        MemberStatus {
            id: self.config.id,
            term: r.term,
            leader: (r.leader_id != 0).then_some(r.leader_id),
            role: r.state.into(),
            commit_index: r.raft_log.committed,
            applied_index,
            revision,
            raft_ticks: self.raft_ticks,
            rejoining: self.rejoining,
        }
    }

    /// Reads this member's applied store (checks and tests; no raft round).
    pub fn with_store<R>(&self, f: impl FnOnce(&MvccStore<V>) -> R) -> R {
        self.disk.read(|d| f(d.backend().store()))
    }

    /// Reads this member's applied backend (leases, alarms, sizes).
    pub fn with_backend<R>(&self, f: impl FnOnce(&Backend<V>) -> R) -> R {
        self.disk.read(|d| f(d.backend()))
    }

    fn leader_id(&self) -> Option<u64> {
        let l = self.raw.raft.leader_id;
        (l != 0).then_some(l)
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    // ---- determinism -------------------------------------------------------------

    /// raft-rs draws the randomized election timeout from `rand::thread_rng()` whenever
    /// it resets (becoming follower, candidate or leader). Every reset changes the term
    /// or the role, so after each call into raft a changed (term, role) means a reset,
    /// and the timeout is drawn again from the seeded RNG, in [election, 2 * election).
    fn after_raft_call(&mut self, rng: &mut ChaCha8Rng) {
        let basis = (self.raw.raft.term, self.raw.raft.state);
        if basis != self.timeout_basis {
            self.timeout_basis = basis;
            self.draw_election_timeout(rng);
        } else {
            debug_assert_eq!(
                self.raw.raft.randomized_election_timeout(),
                self.timeout_drawn,
                "raft reset its election timeout without a term or role change"
            );
        }
    }

    fn draw_election_timeout(&mut self, rng: &mut ChaCha8Rng) {
        let e = self.config.election_ticks;
        let t = rng.gen_range(e..2 * e);
        self.raw.raft.set_randomized_election_timeout(t);
        self.timeout_drawn = t;
    }

    // ---- inputs ------------------------------------------------------------------

    /// Simulated time passes: fires the raft ticks due by `now` (one per tick interval),
    /// times out requests, retries ReadIndex rounds and forwarded keepalives, and, on the
    /// leader, proposes revokes of expired leases.
    pub fn tick(&mut self, now: SimTime, rng: &mut ChaCha8Rng) {
        while self.next_tick_at <= now {
            if self.rejoining {
                // Never campaigns: its election timer never runs out.
                self.raw.raft.election_elapsed = 0;
            }
            self.raw.tick();
            self.after_raft_call(rng);
            self.raft_ticks += 1;
            self.next_tick_at = self.next_tick_at + self.config.tick_interval;
        }
        self.expire_requests(now);
        self.retry_reads(now, rng);
        self.retry_keepalives(now);
        for id in self.lessor.due_revokes(now) {
            self.lessor.revoking.insert(id, now + EXPIRED_LEASE_RETRY);
            self.propose_internal(WriteRequest::LeaseRevoke { id });
        }
    }

    /// A message from a peer.
    pub fn step(&mut self, msg: PeerMessage<V>, now: SimTime, rng: &mut ChaCha8Rng) {
        debug_assert_eq!(msg.to, self.config.id, "message delivered to the wrong member");
        match msg.body {
            PeerBody::Raft { msg: mut m, payloads, snapshot } => {
                let kind = m.get_msg_type();
                if self.rejoining
                    && matches!(
                        kind,
                        MessageType::MsgRequestVote
                            | MessageType::MsgRequestPreVote
                            | MessageType::MsgTimeoutNow
                    )
                {
                    return; // takes no part in elections until it has caught up
                }
                for p in payloads {
                    self.staged.insert(p.key, p);
                }
                if let Some(b) = snapshot {
                    let meta = m.get_snapshot().get_metadata();
                    self.staged_snapshots.insert((meta.index, meta.term), b);
                }
                let reported_commit = m.commit;
                let (from, term) = (m.from, m.term);
                let matches_up_to = self.accepted_append(&m);
                let unverified = self.clamp_heartbeat_commit(&mut m);
                // Errors are raft dropping a message it cannot use (a response from a
                // member it does not track): as if the network lost it.
                let _ = self.raw.step(m);
                self.after_raft_call(rng);
                let current = term == self.raw.raft.term && from == self.raw.raft.leader_id;
                if current {
                    if let Some(index) = matches_up_to {
                        let known = if self.verified.0 == term { self.verified.1 } else { 0 };
                        self.verified = (term, known.max(index));
                    }
                    if matches!(kind, MessageType::MsgAppend | MessageType::MsgHeartbeat) {
                        let known = if self.leader_commit.0 == term { self.leader_commit.1 } else { 0 };
                        self.leader_commit = (term, known.max(reported_commit));
                    }
                }
                if let Some(believed) = unverified {
                    self.ask_for_snapshot(from, believed);
                }
            }
            PeerBody::LeaseKeepAlive { forward_id, lease } => {
                let result = self.renew(lease, now);
                let body = PeerBody::LeaseKeepAliveResponse { forward_id, result };
                self.out.messages.push(PeerMessage { from: self.config.id, to: msg.from, body });
            }
            PeerBody::LeaseKeepAliveResponse { forward_id, result } => {
                if result == Err(ERR_NOT_PRIMARY) {
                    return; // retried at its retry time
                }
                if let Some(k) = self.keepalives.remove(&forward_id) {
                    let response = match result {
                        Ok(ttl_seconds) => EtcdResponse::LeaseKeepAlive { id: k.lease, ttl_seconds },
                        Err(e) => error(e),
                    };
                    self.respond(k.client, response);
                }
            }
        }
    }

    /// If `m` is a MsgAppend raft will accept, the index up to which this member's log
    /// then matches the sender's (raft's Log Matching: the entry before the new ones
    /// matches, so everything up to the last new one does).
    fn accepted_append(&self, m: &Message) -> Option<u64> {
        // (Below the commit index raft ignores the entries and answers with the commit
        // index, which matches anyway.)
        let r = &self.raw.raft;
        let accepted = m.get_msg_type() == MessageType::MsgAppend
            && m.term >= r.term
            && m.index >= r.raft_log.committed
            && r.raft_log.match_term(m.index, m.log_term);
        accepted.then(|| m.index + m.entries.len() as u64)
    }

    /// The highest index known to match the log of the leader of `term`.
    fn verified_index(&self, term: u64) -> u64 {
        let in_term = if self.verified.0 == term { self.verified.1 } else { 0 };
        in_term.max(self.raw.raft.raft_log.committed)
    }

    /// A heartbeat's commit index is bounded by what the leader remembers this member to
    /// hold (raft's `min(matched, committed)`). For a member back on a lost disk, that is
    /// the old incarnation's log: beyond its log end raft-rs would take the index for a
    /// corrupt log and panic, and within it the entries may be another leader's. So it
    /// commits only what it has matched against this leader's log, and returns the index
    /// the leader believes, to ask it for a snapshot. (For a member that kept its disk the
    /// clamp never binds: the leader remembers of it only what it acknowledged from the
    /// log it still has.)
    fn clamp_heartbeat_commit(&self, m: &mut Message) -> Option<u64> {
        // (A heartbeat of an older term is ignored by raft.)
        if m.get_msg_type() != MessageType::MsgHeartbeat || m.term < self.raw.raft.term {
            return None;
        }
        let verified = self.verified_index(m.term);
        let believed = m.commit;
        m.commit = m.commit.min(verified);
        (believed > verified).then_some(believed)
    }

    /// A member on a lost disk has caught up (see the module documentation): from now on
    /// it votes and campaigns like any other.
    fn maybe_finish_rejoin(&mut self, now: SimTime) {
        if !self.rejoining || now < self.started_at + self.config.election_timeout() {
            return;
        }
        let r = &self.raw.raft;
        let committed = r.raft_log.committed;
        let reported = if self.leader_commit.0 == r.term { self.leader_commit.1 } else { 0 };
        let caught_up = r.state == StateRole::Follower
            && r.leader_id != 0
            && r.leader_id != self.config.id
            && r.raft_log.term(committed).is_ok_and(|t| t == r.term)
            && committed >= reported;
        if caught_up {
            self.rejoining = false;
            self.write(DiskOp::FinishRejoin, true);
        }
    }

    /// A rejection that makes the leader probe this member again and send it a snapshot
    /// (raft-rs's request-snapshot path; its own `request_snapshot` needs a log entry of
    /// the current term, which a blank log does not have).
    fn ask_for_snapshot(&mut self, leader: u64, believed: u64) {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppendResponse);
        m.to = leader;
        m.from = self.config.id;
        m.term = self.raw.raft.term;
        m.reject = true;
        m.index = believed;
        m.reject_hint = self.disk.read(|d| d.last_index());
        m.request_snapshot = believed;
        self.send(vec![m]);
    }

    /// A client request. The answer comes in a later [`Output`] (at once for local reads
    /// and errors, after commit for writes, after ReadIndex for linearizable reads).
    pub fn request(&mut self, id: RequestId, request: EtcdRequest<V>, now: SimTime) {
        if self.config.require_leader && self.leader_id().is_none() {
            return self.respond(id, error(ERR_NO_LEADER));
        }
        match request {
            EtcdRequest::Range { key, prefix, limit } => {
                self.read(id, RangeQuery { key, prefix, limit, revision: 0 }, false)
            }
            EtcdRequest::RangeAt { key, prefix, limit, revision, serializable } => {
                self.read(id, RangeQuery { key, prefix, limit, revision }, serializable)
            }
            EtcdRequest::WatchFrom { revision } => {
                let response = self.with_store(|s| match s.events_since(revision) {
                    Ok(events) => EtcdResponse::Events { revision: s.revision(), events },
                    Err(e) => error(e),
                });
                self.respond(id, response)
            }
            EtcdRequest::Txn { compare, success, failure } => {
                self.propose(id, WriteRequest::Txn { compare, success, failure }, now)
            }
            EtcdRequest::Compact { revision } => self.propose(id, WriteRequest::Compact { revision }, now),
            EtcdRequest::LeaseGrant { id: lease, ttl_seconds } => {
                let lease = if lease == 0 { self.new_lease_id() } else { lease };
                self.propose(id, WriteRequest::LeaseGrant { id: lease, ttl_seconds }, now)
            }
            EtcdRequest::LeaseRevoke { id: lease } => {
                self.propose(id, WriteRequest::LeaseRevoke { id: lease }, now)
            }
            EtcdRequest::LeaseKeepAlive { id: lease } => self.keepalive(id, lease, now),
            EtcdRequest::AlarmDisarm => {
                self.propose(id, WriteRequest::Alarm { member: self.config.id, activate: false }, now)
            }
            EtcdRequest::Defragment => {
                let db_size_bytes = self.disk.lock().backend_mut().defragment();
                self.respond(id, EtcdResponse::Defragment { db_size_bytes })
            }
        }
    }

    /// Runs raft's Ready cycle until nothing is left: proposes what was queued, starts a
    /// ReadIndex round for waiting reads, persists, applies, answers. Call it after a
    /// batch of inputs; proposals taken since the last call go out as one MsgPropose.
    pub fn ready(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Output<V> {
        loop {
            self.flush_proposals(rng);
            self.flush_reads(now, rng);
            if !self.raw.has_ready() {
                break;
            }
            self.handle_ready(now);
            self.report_snapshots_sent(rng);
        }
        self.staged.clear();
        self.staged_snapshots.clear();
        self.disk.lock().outgoing_snapshots.clear();
        self.maybe_finish_rejoin(now);
        self.report_leader(now);
        std::mem::take(&mut self.out)
    }

    /// The driver has made the last Ready's `persist` durable: raft learns it (its own
    /// progress, what it may apply) and the messages that waited for it are released.
    pub fn advance(&mut self, rng: &mut ChaCha8Rng) {
        if let Some(n) = self.unpersisted.take() {
            self.raw.on_persist_ready(n);
            self.after_raft_call(rng);
        }
        if let Some(index) = self.snapshot_to_apply.take() {
            self.raw.advance_apply_to(index);
        }
        self.durable_index = self.disk.read(|d| d.last_index());
        self.out.messages.append(&mut self.held);
    }

    /// Whether [`RaftMember::ready`] has more to give now (after an `advance`).
    pub fn has_ready(&self) -> bool {
        !self.out.is_empty() || self.raw.has_ready() || !self.queued.is_empty()
    }

    /// Makes a write to the member's copy and queues it for the driver.
    fn write(&mut self, op: DiskOp<V>, sync: bool) {
        self.disk.lock().apply(&op);
        self.out.persist.push(op);
        self.out.sync |= sync;
    }

    // ---- requests ----------------------------------------------------------------

    fn respond(&mut self, id: RequestId, response: EtcdResponse<V>) {
        self.out.responses.push((id, response));
    }

    fn read(&mut self, id: RequestId, q: RangeQuery, serializable: bool) {
        if serializable || self.config.unsafe_local_linearizable_reads {
            let response = self.serve_read(&q);
            return self.respond(id, response);
        }
        self.reads.waiting.push((id, q));
    }

    fn serve_read(&self, q: &RangeQuery) -> EtcdResponse<V> {
        self.with_store(|s| match s.range_at(&q.key, q.prefix, q.limit, q.revision) {
            Ok((kvs, count)) => EtcdResponse::Range { revision: s.revision(), kvs, count },
            Err(e) => error(e),
        })
    }

    /// Checks a write as the API layer does, then queues it for raft.
    fn propose(&mut self, client: RequestId, request: WriteRequest<V>, now: SimTime) {
        if let Err(e) = self.check_write(&request) {
            return self.respond(client, error(e));
        }
        let payload = self.new_payload(request);
        let deadline = now + self.config.request_timeout;
        self.pending.insert(payload.key.seq, PendingProposal { client, started: now, deadline });
        self.queued.push(payload);
    }

    fn check_write(&mut self, request: &WriteRequest<V>) -> Result<(), &'static str> {
        if let WriteRequest::Txn { success, failure, .. } = request {
            if has_duplicate_key(success) || has_duplicate_key(failure) {
                return Err(ERR_DUPLICATE_KEY);
            }
        }
        if request.approx_bytes() > self.config.max_request_bytes {
            return Err(ERR_REQUEST_TOO_LARGE);
        }
        let quota = self.config.quota_backend_bytes;
        let (fits, alarmed) = self.with_backend(|b| {
            (b.quota_available(request, quota), b.nospace_alarms().contains(&self.config.id))
        });
        if !fits {
            // v3rpc quotaAlarmer.check: refuse, and raise this member's NOSPACE alarm.
            if !alarmed {
                self.propose_internal(WriteRequest::Alarm { member: self.config.id, activate: true });
            }
            return Err(ERR_NO_SPACE);
        }
        Ok(())
    }

    /// A proposal nobody waits for (alarms, lease revokes).
    fn propose_internal(&mut self, request: WriteRequest<V>) {
        let payload = self.new_payload(request);
        self.queued.push(payload);
    }

    fn new_payload(&mut self, request: WriteRequest<V>) -> Arc<Payload<V>> {
        self.next_seq += 1;
        let key = ProposalKey { member: self.config.id, incarnation: self.incarnation, seq: self.next_seq };
        Arc::new(Payload::new(key, request))
    }

    /// etcd's request id generator puts the member id in the top bits; ids stay positive.
    fn new_lease_id(&mut self) -> i64 {
        self.next_seq += 1;
        let low = self.incarnation.wrapping_add(self.next_seq) & ((1 << 47) - 1);
        (((self.config.id & 0xffff) << 47) | low).max(1) as i64
    }

    fn keepalive(&mut self, client: RequestId, lease: i64, now: SimTime) {
        if self.lessor.primary {
            let response = match self.renew(lease, now) {
                Ok(ttl_seconds) => EtcdResponse::LeaseKeepAlive { id: lease, ttl_seconds },
                Err(e) => error(e),
            };
            return self.respond(client, response);
        }
        self.next_forward_id += 1;
        let k =
            PendingKeepAlive { client, lease, deadline: now + self.config.request_timeout, retry_at: now };
        self.keepalives.insert(self.next_forward_id, k);
        self.retry_keepalives(now);
    }

    /// lessor.Renew on the primary: the lease lives another TTL from now.
    fn renew(&mut self, lease: i64, now: SimTime) -> Result<i64, &'static str> {
        if !self.lessor.primary {
            return Err(ERR_NOT_PRIMARY);
        }
        let Some(ttl) = self.with_backend(|b| b.leases().get(&lease).map(|l| l.ttl_seconds)) else {
            return Err(ERR_LEASE_NOT_FOUND);
        };
        if self.lessor.expiry.get(&lease).is_some_and(|expiry| *expiry <= now) {
            // Expired: its revoke is on the way (lessor.Renew waits for it, then fails).
            return Err(ERR_LEASE_NOT_FOUND);
        }
        self.lessor.expiry.insert(lease, now + Duration::from_secs(ttl as u64));
        Ok(ttl)
    }

    /// EtcdServer.LeaseRenew's loop: until the request times out, send the keepalive to
    /// the leader (this member itself once it is the primary lessor).
    fn retry_keepalives(&mut self, now: SimTime) {
        let Some(leader) = self.leader_id() else { return };
        let retry = self.config.tick_interval * 5;
        let due: Vec<u64> =
            self.keepalives.iter().filter(|(_, k)| k.retry_at <= now).map(|(f, _)| *f).collect();
        for forward_id in due {
            if leader == self.config.id {
                if !self.lessor.primary {
                    continue;
                }
                let k = self.keepalives.remove(&forward_id).expect("listed");
                let response = match self.renew(k.lease, now) {
                    Ok(ttl_seconds) => EtcdResponse::LeaseKeepAlive { id: k.lease, ttl_seconds },
                    Err(e) => error(e),
                };
                self.respond(k.client, response);
                continue;
            }
            let k = self.keepalives.get_mut(&forward_id).expect("listed");
            k.retry_at = now + retry;
            let body = PeerBody::LeaseKeepAlive { forward_id, lease: k.lease };
            self.out.messages.push(PeerMessage { from: self.config.id, to: leader, body });
        }
    }

    fn expire_requests(&mut self, now: SimTime) {
        let expired: Vec<u64> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(s, _)| *s).collect();
        for seq in expired {
            let p = self.pending.remove(&seq).expect("listed");
            let message = if self.started_while_leader_failed(p.started) {
                ERR_TIMEOUT_DUE_TO_LEADER_FAIL
            } else {
                ERR_TIMEOUT
            };
            self.respond(p.client, error(message));
        }
        for (client, _) in self.reads.take_expired(now) {
            self.respond(client, error(ERR_TIMEOUT));
        }
        let expired: Vec<u64> =
            self.keepalives.iter().filter(|(_, k)| k.deadline <= now).map(|(f, _)| *f).collect();
        for f in expired {
            let k = self.keepalives.remove(&f).expect("listed");
            self.respond(k.client, error(ERR_TIMEOUT));
        }
    }

    /// EtcdServer.parseProposeCtxErr: a request that started up to two election timeouts
    /// before this member was elected leader timed out "due to previous leader failure".
    fn started_while_leader_failed(&self, started: SimTime) -> bool {
        let Some(elected) = self.lead_elected_at else { return false };
        let window = 2 * self.config.election_timeout();
        started < elected && elected.saturating_sub(started) <= window
    }

    // ---- raft plumbing -----------------------------------------------------------

    fn flush_proposals(&mut self, rng: &mut ChaCha8Rng) {
        if self.queued.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.queued);
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = self.config.id;
        let mut entries = Vec::with_capacity(batch.len());
        for p in &batch {
            entries.push(Entry { data: p.key.encode().into(), ..Default::default() });
            self.staged.insert(p.key, Arc::clone(p));
        }
        m.set_entries(entries.into());
        let result = self.raw.step(m);
        self.after_raft_call(rng);
        if result.is_err() {
            // raft.ErrProposalDropped: no leader, or a leader transfer in progress.
            for p in batch {
                if let Some(pending) = self.pending.remove(&p.key.seq) {
                    let message =
                        if self.config.require_leader { ERR_NO_LEADER } else { ERR_PROPOSAL_DROPPED };
                    self.respond(pending.client, error(message));
                }
            }
        }
    }

    fn flush_reads(&mut self, now: SimTime, rng: &mut ChaCha8Rng) {
        if self.reads.waiting.is_empty() {
            return;
        }
        let reads = std::mem::take(&mut self.reads.waiting);
        self.reads.next_ctx += 1;
        let ctx = self.reads.next_ctx;
        let deadline = now + self.config.request_timeout;
        self.reads.batches.insert(ctx, ReadBatch { reads, sent_at: now, deadline, index: None });
        self.reads.ctx_to_batch.insert(ctx, ctx);
        self.raw.read_index(ctx.to_be_bytes().to_vec());
        self.after_raft_call(rng);
    }

    /// requestCurrentIndex: a round without an answer is sent again (a new leader drops
    /// ReadIndex until it has committed in its term; a lost heartbeat loses it).
    fn retry_reads(&mut self, now: SimTime, rng: &mut ChaCha8Rng) {
        let due: Vec<u64> = self
            .reads
            .batches
            .iter()
            .filter(|(_, b)| b.index.is_none() && b.sent_at + READ_INDEX_RETRY <= now)
            .map(|(id, _)| *id)
            .collect();
        for batch in due {
            self.reads.next_ctx += 1;
            let ctx = self.reads.next_ctx;
            self.reads.ctx_to_batch.insert(ctx, batch);
            if let Some(b) = self.reads.batches.get_mut(&batch) {
                b.sent_at = now;
            }
            self.raw.read_index(ctx.to_be_bytes().to_vec());
            self.after_raft_call(rng);
        }
    }

    /// One raft-rs Ready, handled asynchronously: writes go to the member's copy at once
    /// (raft reads them from there) and out as [`DiskOp`]s; raft counts them persisted
    /// only at [`RaftMember::advance`], so neither this member's acknowledgement of them
    /// nor, on a leader, its own vote towards committing them runs ahead of the disk.
    fn handle_ready(&mut self, now: SimTime) {
        let mut rd = self.raw.ready();
        if let Some(ss) = rd.ss() {
            let (lead, role) = (ss.leader_id, ss.raft_state);
            self.on_soft_state(lead, role, now);
        }
        // The leader may send before it persists (raft thesis 10.2.1); followers after.
        let msgs = rd.take_messages();
        self.send(msgs);
        let mut snapshot_index = None;
        if !rd.snapshot().is_empty() {
            let meta = rd.snapshot().get_metadata().clone();
            snapshot_index = Some(meta.index);
            self.install_snapshot(meta);
        }
        let entries = rd.take_entries();
        self.persist(entries);
        if let Some(hs) = rd.hs() {
            self.write(DiskOp::HardState(hs.clone()), false);
        }
        self.out.sync |= rd.must_sync();
        let msgs = rd.take_persisted_messages();
        let before = self.out.messages.len();
        self.send(msgs);
        if !self.out.persist.is_empty() {
            // They wait for the writes of this cycle.
            let waiting: Vec<PeerMessage<V>> = self.out.messages.drain(before..).collect();
            self.held.extend(waiting);
        }
        let states = rd.take_read_states();
        self.on_read_states(states);
        // Committed and persisted (raft-rs gives no entry past what `advance` confirmed).
        let committed = rd.take_committed_entries();
        self.apply(committed, now);
        let number = rd.number();
        self.raw.advance_append_async(rd);
        if self.out.persist.is_empty() && self.unpersisted.is_none() {
            // Nothing to write: persisted as it is.
            self.raw.on_persist_ready(number);
        } else {
            self.unpersisted = Some(number);
        }
        match snapshot_index {
            // Raft counts the snapshot applied once it is persisted (`advance`).
            Some(index) => self.snapshot_to_apply = Some(index),
            None => self.raw.advance_apply(),
        }
        self.maybe_snapshot();
        let applied = self.disk.read(|d| d.backend().applied_index());
        for (client, q) in self.reads.take_servable(applied) {
            let response = self.serve_read(&q);
            self.respond(client, response);
        }
    }

    /// raft-rs keeps a follower's progress in the Snapshot state until the application
    /// reports the snapshot's fate (etcd's transport calls ReportSnapshot when the send
    /// completes or fails). A member cannot see delivery, so it reports every snapshot
    /// as sent: the leader then probes, and sends another if this one was lost.
    fn report_snapshots_sent(&mut self, rng: &mut ChaCha8Rng) {
        for to in std::mem::take(&mut self.snapshots_sent) {
            self.raw.report_snapshot(to, raft::SnapshotStatus::Finish);
            self.after_raft_call(rng);
        }
    }

    fn on_soft_state(&mut self, lead: u64, role: StateRole, now: SimTime) {
        let new_leader = lead != 0 && lead != self.lead;
        if new_leader {
            // requestCurrentIndex: rounds in flight fail, the client retries.
            for (client, _) in self.reads.take_unconfirmed() {
                self.respond(client, error(ERR_LEADER_CHANGED));
            }
            if role == StateRole::Leader {
                self.lead_elected_at = Some(now);
            }
        }
        if self.config.fail_proposals_on_leader_change && self.lead != 0 && lead != self.lead {
            for (_, p) in std::mem::take(&mut self.pending) {
                self.respond(p.client, error(ERR_LEADER_CHANGED));
            }
        }
        if role != StateRole::Leader {
            self.lessor.demote();
        }
        self.lead = lead;
    }

    fn report_leader(&mut self, now: SimTime) {
        let current = (self.raw.raft.term, self.leader_id());
        if current != self.reported {
            self.reported = current;
            self.out.leader_changes.push(LeaderChange { at: now, term: current.0, leader: current.1 });
        }
    }

    fn payload_for(&self, e: &Entry) -> Arc<Payload<V>> {
        let key = ProposalKey::decode(&e.data).expect("entry data is a proposal key");
        if let Some(p) = self.staged.get(&key) {
            return Arc::clone(p);
        }
        let p = self.disk.read(|d| d.payload(e.index)).expect("every logged entry has its request");
        assert_eq!(p.key, key, "log entry {} refers to another request", e.index);
        p
    }

    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let carries_proposals =
                matches!(m.get_msg_type(), MessageType::MsgAppend | MessageType::MsgPropose);
            let payloads = if carries_proposals {
                m.entries.iter().filter(|e| !e.data.is_empty()).map(|e| self.payload_for(e)).collect()
            } else {
                Vec::new()
            };
            let snapshot = if m.get_msg_type() == MessageType::MsgSnapshot {
                let meta = m.get_snapshot().get_metadata();
                let key = (meta.index, meta.term);
                let backend = self.disk.read(|d| d.outgoing_snapshots.get(&key).cloned());
                self.snapshots_sent.push(m.to);
                Some(backend.expect("raft sends a snapshot the storage made"))
            } else {
                None
            };
            let to = m.to;
            let body = PeerBody::Raft { msg: m, payloads, snapshot };
            self.out.messages.push(PeerMessage { from: self.config.id, to, body });
        }
    }

    fn install_snapshot(&mut self, meta: raft::eraftpb::SnapshotMetadata) {
        let backend = self
            .staged_snapshots
            .remove(&(meta.index, meta.term))
            .expect("a snapshot in a Ready arrived with its backend");
        let revision = backend.store().revision();
        self.write(DiskOp::Snapshot { meta, backend, installed: true, compact_to: 0 }, true);
        self.out.installed_snapshot = Some(revision);
    }

    fn persist(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let payloads = entries.iter().map(|e| (!e.data.is_empty()).then(|| self.payload_for(e))).collect();
        self.write(DiskOp::Append { entries, payloads }, true);
    }

    fn on_read_states(&mut self, states: Vec<ReadState>) {
        for rs in states {
            let Ok(bytes) = <[u8; 8]>::try_from(rs.request_ctx.as_slice()) else { continue };
            let ctx = u64::from_be_bytes(bytes);
            let Some(batch) = self.reads.ctx_to_batch.get(&ctx).copied() else { continue };
            if let Some(b) = self.reads.batches.get_mut(&batch) {
                b.index.get_or_insert(rs.index);
            }
        }
    }

    fn apply(&mut self, entries: Vec<Entry>, now: SimTime) {
        for e in entries {
            debug_assert!(
                e.index <= self.durable_index,
                "member {} applies entry {} beyond its durable log ({})",
                self.config.id,
                e.index,
                self.durable_index
            );
            if e.data.is_empty() {
                // A new leader's empty entry: its first commit in the term.
                if self.is_leader() && e.term == self.raw.raft.term {
                    self.promote_lessor(now);
                }
            } else {
                let payload = self.payload_for(&e);
                self.apply_payload(&payload, e.index, now);
            }
            self.disk.lock().backend_mut().set_applied(e.index, e.term);
        }
    }

    fn apply_payload(&mut self, payload: &Payload<V>, index: u64, now: SimTime) {
        let quota = self.config.quota_backend_bytes;
        let min_ttl = self.config.min_lease_ttl_seconds();
        let Applied { response, events, raise_nospace } =
            self.disk.lock().backend_mut().apply(payload, quota, min_ttl);
        match (&payload.request, &response) {
            (WriteRequest::LeaseGrant { id, .. }, EtcdResponse::LeaseGrant { ttl_seconds, .. })
                if self.lessor.primary =>
            {
                self.lessor.expiry.insert(*id, now + Duration::from_secs(*ttl_seconds as u64));
            }
            (WriteRequest::LeaseRevoke { id }, _) => {
                self.lessor.expiry.remove(id);
                self.lessor.revoking.remove(id);
            }
            (WriteRequest::Alarm { member, activate }, _) => {
                let db_size_bytes = self.with_backend(|b| b.db_size_bytes());
                self.out.alarms.push(AlarmChange {
                    at: now,
                    index,
                    member: *member,
                    activate: *activate,
                    db_size_bytes,
                    quota_bytes: quota,
                });
            }
            _ => {}
        }
        if raise_nospace && !self.with_backend(|b| b.nospace_alarms().contains(&self.config.id)) {
            self.propose_internal(WriteRequest::Alarm { member: self.config.id, activate: true });
        }
        self.out.events.extend(events);
        let key = payload.key;
        if key.member == self.config.id && key.incarnation == self.incarnation {
            if let Some(p) = self.pending.remove(&key.seq) {
                self.respond(p.client, response);
            }
        }
    }

    /// lessor.Promote(electionTimeout): the new primary gives every lease a full TTL
    /// from now plus the election timeout.
    fn promote_lessor(&mut self, now: SimTime) {
        let extend = self.config.election_timeout();
        let leases: Vec<(i64, i64)> =
            self.with_backend(|b| b.leases().iter().map(|(id, l)| (*id, l.ttl_seconds)).collect());
        self.lessor.primary = true;
        self.lessor.revoking.clear();
        self.lessor.expiry = leases
            .into_iter()
            .map(|(id, ttl)| (id, now + extend + Duration::from_secs(ttl as u64)))
            .collect();
    }

    /// etcd's triggerSnapshot: after --snapshot-count applied entries, snapshot the
    /// applied state and compact the log, keeping SnapshotCatchUpEntries behind.
    fn maybe_snapshot(&mut self) {
        let (applied, term, last_snapshot, conf_state, backend) = self.disk.read(|d| {
            let b = d.backend();
            (
                b.applied_index(),
                b.applied_term(),
                d.snapshot.index,
                d.conf_state.clone(),
                Arc::clone(&d.backend),
            )
        });
        if applied.saturating_sub(last_snapshot) <= self.config.snapshot_count {
            return;
        }
        let compact_to = applied.saturating_sub(self.config.snapshot_catch_up_entries);
        let mut meta = raft::eraftpb::SnapshotMetadata { index: applied, term, ..Default::default() };
        meta.set_conf_state(conf_state);
        self.write(DiskOp::Snapshot { meta, backend, installed: false, compact_to }, true);
    }
}

fn error<V>(message: &str) -> EtcdResponse<V> {
    EtcdResponse::Error { message: message.to_string() }
}

fn has_duplicate_key<V>(ops: &[Op<V>]) -> bool {
    let mut keys = std::collections::BTreeSet::new();
    ops.iter().any(|op| match op {
        Op::Put { key, .. } | Op::PutWithLease { key, .. } | Op::Delete { key } => !keys.insert(key.as_str()),
        Op::Get { .. } => false,
    })
}

//! One etcd server process: the replicated [`RaftMember`] behind etcd's gRPC layer as
//! the API servers use it — request ids, the watch server that streams committed events
//! to the API servers watching this member, its liveness pings, and the no-leader
//! watchdog — driven through the one [`Process`] interface.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::errors::{ERR_NO_SPACE, ERR_REQUEST_TOO_LARGE};
use super::{
    DiskState, EtcdRequest, EtcdResponse, MemberConfig, PeerMessage, RaftMember, Stamp, StoreValue, ValueSize,
};
use crate::process::{Input, Process, Ready, Record};
use crate::time::SimTime;
use crate::wire::{Addr, FromEtcd, Message, ToEtcd};

/// etcd's monitorLeader (v3rpc/interceptor.go): watch streams that asked for a leader are
/// cancelled after maxNoLeaderCnt (3) election timeouts without one.
pub const MAX_NO_LEADER_CHECKS: u32 = 3;

/// An etcd server: a member and the clients it serves.
pub struct EtcdServer<V: Clone + Stamp + ValueSize> {
    config: MemberConfig,
    /// Every member's address, by id.
    peers: BTreeMap<u64, Addr>,
    /// The disk as it was when the process started; taken when the member starts.
    disk: Option<DiskState<V>>,
    member: Option<RaftMember<V>>,
    /// When the member starts: each process's 100 ms raft ticker starts when the process
    /// does, so members' ticks are not in phase (with equal randomized timeouts, in-phase
    /// ticks would make two followers campaign at the same instant and split the vote
    /// every time).
    start_at: SimTime,
    /// Inputs that arrived before the member started.
    early: Vec<(Addr, Message<V>)>,
    /// API servers whose watch is registered here.
    watchers: BTreeSet<Addr>,
    /// Client requests in flight: member request id -> (API server, its id, a watch).
    requests: BTreeMap<u64, (Addr, u64, bool)>,
    next_request: u64,
    next_leader_check: SimTime,
    no_leader_checks: u32,
    replies: BTreeMap<Addr, FromEtcd<V>>,
    /// What the member answered and emitted since the last Ready.
    out: Ready<V>,
}

impl<V: Clone + Stamp + ValueSize + Send + Sync + 'static> EtcdServer<V> {
    /// A server started at `now` on `disk` (the durable copy's [`DiskState::recovery_copy`]).
    pub fn new(
        config: MemberConfig,
        peers: BTreeMap<u64, Addr>,
        disk: DiskState<V>,
        now: SimTime,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let phase = rng.gen_range(0..config.tick_interval.as_millis() as u64).max(1);
        EtcdServer {
            config,
            peers,
            disk: Some(disk),
            member: None,
            start_at: now + Duration::from_millis(phase),
            early: Vec::new(),
            watchers: BTreeSet::new(),
            requests: BTreeMap::new(),
            next_request: 0,
            next_leader_check: SimTime::ZERO,
            no_leader_checks: 0,
            replies: BTreeMap::new(),
            out: Ready::default(),
        }
    }

    /// The member, once started (reads for checks and tests).
    pub fn member(&self) -> Option<&RaftMember<V>> {
        self.member.as_ref()
    }

    fn start(&mut self, now: SimTime, rng: &mut ChaCha8Rng) {
        let disk = self.disk.take().expect("a server starts once");
        self.member = Some(RaftMember::recover(self.config.clone(), disk, now, rng));
        self.next_leader_check = now + self.config.election_timeout();
        for (from, msg) in std::mem::take(&mut self.early) {
            self.on_message(from, msg, now, rng);
        }
    }

    fn on_message(&mut self, from: Addr, msg: Message<V>, now: SimTime, rng: &mut ChaCha8Rng) {
        let member = self.member.as_mut().expect("started");
        match msg {
            Message::Peer(m) => member.step(m, now, rng),
            Message::ToEtcd(ToEtcd { requests, ping }) => {
                if ping {
                    self.replies.entry(from).or_default().pong = Some(self.watchers.contains(&from));
                }
                for (api_id, request) in requests {
                    self.next_request += 1;
                    let watch = matches!(request, EtcdRequest::WatchFrom { .. });
                    self.requests.insert(self.next_request, (from, api_id, watch));
                    member.request(self.next_request, request, now);
                }
            }
            _ => {}
        }
    }

    /// Turns the member's output into messages for peers and API servers, disk writes
    /// and trace records.
    fn collect(&mut self, now: SimTime, rng: &mut ChaCha8Rng) {
        let Some(member) = self.member.as_mut() else { return };
        let out = member.ready(now, rng);
        let mut rejected: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (rid, response) in out.responses {
            let Some((to, api_id, watch)) = self.requests.remove(&rid) else { continue };
            if let EtcdResponse::Error { message } = &response {
                if let Some(e) = [ERR_NO_SPACE, ERR_REQUEST_TOO_LARGE].into_iter().find(|e| message == e) {
                    *rejected.entry(e).or_default() += 1;
                }
            }
            if watch && !matches!(response, EtcdResponse::Error { .. }) {
                self.watchers.insert(to);
            }
            self.replies.entry(to).or_default().responses.push((api_id, response));
        }
        if let Some(revision) = out.installed_snapshot {
            // The store jumped revisions: watchers must resync.
            self.watchers.clear();
            self.out.records.push(Record::EtcdSnapshotInstalled { revision });
        }
        if !out.events.is_empty() {
            for w in &self.watchers {
                self.replies.entry(*w).or_default().events.extend(out.events.iter().cloned());
            }
            self.out.records.push(Record::Committed(out.events));
        }
        if !rejected.is_empty() {
            self.out.records.push(Record::EtcdRejected(rejected.into_iter().collect()));
        }
        self.out.records.extend(out.alarms.into_iter().map(Record::EtcdAlarm));
        for lc in out.leader_changes {
            if let Some(leader) = lc.leader {
                self.out.records.push(Record::EtcdLeader { at: lc.at, term: lc.term, leader });
            }
        }
        self.send_to_peers(out.messages);
        for (to, reply) in std::mem::take(&mut self.replies) {
            self.out.send(to, Message::FromEtcd(reply));
        }
        self.out.persist.extend(out.persist);
        self.out.sync |= out.sync;
    }

    fn send_to_peers(&mut self, messages: Vec<PeerMessage<V>>) {
        for m in messages {
            if let Some(addr) = self.peers.get(&m.to) {
                self.out.send(*addr, Message::Peer(m));
            }
        }
    }
}

impl<V: StoreValue> Process<V> for EtcdServer<V> {
    fn step(&mut self, input: Input<V>, now: SimTime, rng: &mut ChaCha8Rng) {
        let Input::Message { from, msg } = input else { return };
        if self.member.is_none() {
            self.early.push((from, msg));
        } else {
            self.on_message(from, msg, now, rng);
        }
    }

    fn tick(&mut self, now: SimTime, rng: &mut ChaCha8Rng) {
        let Some(member) = self.member.as_mut() else { return };
        if now >= member.next_tick_at() {
            member.tick(now, rng);
        }
        if now >= self.next_leader_check {
            self.next_leader_check = now + self.config.election_timeout();
            let leaderless = member.status().leader.is_none();
            self.no_leader_checks = if leaderless { self.no_leader_checks + 1 } else { 0 };
            if self.no_leader_checks >= MAX_NO_LEADER_CHECKS {
                self.watchers.clear();
            }
        }
    }

    fn ready(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Ready<V> {
        if self.member.is_none() && now >= self.start_at {
            self.start(now, rng);
        }
        self.collect(now, rng);
        let mut rd = std::mem::take(&mut self.out);
        match &self.member {
            Some(m) => {
                rd.wake_no_later_than(m.next_tick_at());
                rd.wake_no_later_than(self.next_leader_check);
            }
            None => rd.wake_no_later_than(self.start_at),
        }
        rd
    }

    fn advance(&mut self, _now: SimTime, rng: &mut ChaCha8Rng) {
        if let Some(m) = self.member.as_mut() {
            m.advance(rng);
        }
    }

    fn has_ready(&self) -> bool {
        self.member.as_ref().is_some_and(|m| m.has_ready())
    }
}

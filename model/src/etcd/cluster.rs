//! [`LocalCluster`]: N replicated members on an in-memory network, driven the way the
//! simulation drives them, with every random choice (message delays, losses, tick
//! phases, each member's RNG) drawn from one seed. For tests, benchmarks and the
//! linearizability checker: partitions, kills, restarts from disk and disk loss, and a
//! safety check after every step (never two leaders in one term).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::time::SimTime;

use super::{Disk, EtcdRequest, EtcdResponse, LeaderChange, MemberConfig, MemberStatus, Output, PeerMessage};
use super::{RaftMember, RequestId, Role, Stamp, ValueSize};

/// Something that happened in the cluster, in order: the run's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterEvent {
    LeaderChange { member: u64, change: LeaderChange },
    Killed { member: u64, at: SimTime },
    Restarted { member: u64, at: SimTime, disk_lost: bool },
    InstalledSnapshot { member: u64, at: SimTime, revision: i64 },
}

pub struct LocalCluster<V: Clone + Stamp + ValueSize> {
    now: SimTime,
    net_rng: ChaCha8Rng,
    member_rngs: BTreeMap<u64, ChaCha8Rng>,
    configs: BTreeMap<u64, MemberConfig>,
    members: BTreeMap<u64, RaftMember<V>>,
    disks: BTreeMap<u64, Disk<V>>,
    in_flight: BTreeMap<(SimTime, u64), PeerMessage<V>>,
    next_message: u64,
    /// Directed links that drop everything.
    cut: BTreeSet<(u64, u64)>,
    /// One-way delay of a message, drawn uniformly in this range (milliseconds).
    pub delay_ms: (u64, u64),
    /// Probability that a message is lost.
    pub loss_rate: f64,
    responses: BTreeMap<RequestId, (u64, SimTime, EtcdResponse<V>)>,
    next_request: RequestId,
    history: Vec<ClusterEvent>,
    leaders_by_term: BTreeMap<u64, u64>,
    messages_delivered: u64,
    /// Panic at a broken safety property (tests), or record it (fuzzing).
    pub panic_on_violation: bool,
    violations: Vec<String>,
}

impl<V: Clone + Stamp + ValueSize> LocalCluster<V> {
    /// `n` members with etcd's defaults.
    pub fn new(n: u64, seed: u64) -> Self {
        Self::with_config(n, seed, |_| {})
    }

    /// `n` members (ids 1..=n); `tune` adjusts each member's config.
    pub fn with_config(n: u64, seed: u64, tune: impl Fn(&mut MemberConfig)) -> Self {
        let peers: Vec<u64> = (1..=n).collect();
        let mut c = LocalCluster {
            now: SimTime::ZERO,
            net_rng: ChaCha8Rng::seed_from_u64(seed),
            member_rngs: BTreeMap::new(),
            configs: BTreeMap::new(),
            members: BTreeMap::new(),
            disks: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_message: 0,
            cut: BTreeSet::new(),
            delay_ms: (1, 10),
            loss_rate: 0.0,
            responses: BTreeMap::new(),
            next_request: 0,
            history: Vec::new(),
            leaders_by_term: BTreeMap::new(),
            messages_delivered: 0,
            panic_on_violation: true,
            violations: Vec::new(),
        };
        for &id in &peers {
            let mut config = MemberConfig::new(id, peers.clone());
            tune(&mut config);
            let rng = ChaCha8Rng::seed_from_u64(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            c.member_rngs.insert(id, rng);
            c.configs.insert(id, config);
            c.disks.insert(id, Disk::new());
            c.start(id);
        }
        c
    }

    /// Starts a member on its disk, at a random phase of its tick interval (members'
    /// clocks are not in step).
    fn start(&mut self, id: u64) {
        let config = self.configs[&id].clone();
        let phase = self.net_rng.gen_range(0..config.tick_interval.as_millis() as u64);
        let rng = self.member_rngs.get_mut(&id).expect("member rng");
        let at = SimTime(self.now.0 + phase);
        let member = RaftMember::recover(config, self.disks[&id].clone(), at, rng);
        self.members.insert(id, member);
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    pub fn ids(&self) -> Vec<u64> {
        self.configs.keys().copied().collect()
    }

    pub fn member(&self, id: u64) -> Option<&RaftMember<V>> {
        self.members.get(&id)
    }

    pub fn status(&self, id: u64) -> Option<MemberStatus> {
        self.members.get(&id).map(|m| m.status())
    }

    pub fn is_alive(&self, id: u64) -> bool {
        self.members.contains_key(&id)
    }

    pub fn history(&self) -> &[ClusterEvent] {
        &self.history
    }

    pub fn messages_delivered(&self) -> u64 {
        self.messages_delivered
    }

    /// The live member that is leader in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.members
            .values()
            .map(|m| m.status())
            .filter(|s| s.role == Role::Leader)
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    // ---- faults --------------------------------------------------------------------

    /// Cuts every link between the groups (members in no group keep their links).
    pub fn partition(&mut self, groups: &[&[u64]]) {
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for &x in a.iter() {
                    for &y in b.iter() {
                        self.cut.insert((x, y));
                        self.cut.insert((y, x));
                    }
                }
            }
        }
    }

    /// Cuts `id` off from every other member.
    pub fn isolate(&mut self, id: u64) {
        let others: Vec<u64> = self.ids().into_iter().filter(|o| *o != id).collect();
        self.partition(&[&[id], &others]);
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Kills a member's process: its memory is gone, its disk stays.
    pub fn kill(&mut self, id: u64) {
        if self.members.remove(&id).is_some() {
            self.history.push(ClusterEvent::Killed { member: id, at: self.now });
        }
    }

    /// Restarts a killed member from its disk.
    pub fn restart(&mut self, id: u64) {
        assert!(!self.members.contains_key(&id), "restart a killed member");
        self.history.push(ClusterEvent::Restarted { member: id, at: self.now, disk_lost: false });
        self.start(id);
    }

    /// Kills a member and restarts it on a blank disk ([`Disk::lost`]): it rejoins with
    /// its old id and catches up before it votes again.
    pub fn restart_with_lost_disk(&mut self, id: u64) {
        self.kill(id);
        self.disks.insert(id, Disk::lost());
        self.history.push(ClusterEvent::Restarted { member: id, at: self.now, disk_lost: true });
        self.start(id);
    }

    // ---- clients -------------------------------------------------------------------

    /// Sends a client request to a member; its answer appears in [`Self::response`].
    pub fn request(&mut self, member: u64, request: EtcdRequest<V>) -> RequestId {
        self.next_request += 1;
        let id = self.next_request;
        if let Some(m) = self.members.get_mut(&member) {
            m.request(id, request, self.now);
            self.ready(member);
        }
        id
    }

    /// Sends several requests to a member before it runs a Ready, as a driver that
    /// drains its mailbox does: their proposals go to raft as one batch.
    pub fn request_all(&mut self, member: u64, requests: Vec<EtcdRequest<V>>) -> Vec<RequestId> {
        let mut ids = Vec::with_capacity(requests.len());
        for request in requests {
            self.next_request += 1;
            ids.push(self.next_request);
            if let Some(m) = self.members.get_mut(&member) {
                m.request(self.next_request, request, self.now);
            }
        }
        self.ready(member);
        ids
    }

    pub fn response(&self, id: RequestId) -> Option<&EtcdResponse<V>> {
        self.responses.get(&id).map(|(_, _, r)| r)
    }

    /// When the answer to `id` arrived.
    pub fn response_time(&self, id: RequestId) -> Option<SimTime> {
        self.responses.get(&id).map(|(_, t, _)| *t)
    }

    /// Sends a request and runs until it is answered or `timeout` passes.
    pub fn call(
        &mut self,
        member: u64,
        request: EtcdRequest<V>,
        timeout: Duration,
    ) -> Option<EtcdResponse<V>> {
        let id = self.request(member, request);
        self.run_until(timeout, |c| c.response(id).is_some());
        self.response(id).cloned()
    }

    // ---- time --------------------------------------------------------------------

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// Runs until `done` holds (checked after every step) or `timeout` passes; returns
    /// whether `done` held.
    pub fn run_until(&mut self, timeout: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let deadline = self.now + timeout;
        loop {
            if done(self) {
                return true;
            }
            let Some(next) = self.next_event_time().filter(|t| *t <= deadline) else {
                self.now = deadline;
                return done(self);
            };
            self.now = next;
            self.step_now();
        }
    }

    fn next_event_time(&self) -> Option<SimTime> {
        let message = self.in_flight.keys().next().map(|(t, _)| *t);
        let tick = self.members.values().map(|m| m.next_tick_at()).min();
        message.into_iter().chain(tick).min()
    }

    /// Delivers the messages due now, fires due ticks, runs Ready on every member touched.
    fn step_now(&mut self) {
        let now = self.now;
        let mut touched = BTreeSet::new();
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let msg = entry.remove();
            let to = msg.to;
            if let Some(m) = self.members.get_mut(&to) {
                let rng = self.member_rngs.get_mut(&to).expect("member rng");
                m.step(msg, now, rng);
                self.messages_delivered += 1;
                touched.insert(to);
            }
        }
        for (id, m) in self.members.iter_mut() {
            if m.next_tick_at() <= now {
                m.tick(now, self.member_rngs.get_mut(id).expect("member rng"));
                touched.insert(*id);
            }
        }
        for id in touched {
            self.ready(id);
        }
        self.check_one_leader_per_term();
    }

    fn ready(&mut self, id: u64) {
        let Some(m) = self.members.get_mut(&id) else { return };
        let out = m.ready(self.now, self.member_rngs.get_mut(&id).expect("member rng"));
        self.route(id, out);
    }

    fn route(&mut self, id: u64, out: Output<V>) {
        for msg in out.messages {
            let lost = self.loss_rate > 0.0 && self.net_rng.gen_bool(self.loss_rate);
            if self.cut.contains(&(msg.from, msg.to)) || lost {
                continue;
            }
            let delay = self.net_rng.gen_range(self.delay_ms.0..=self.delay_ms.1);
            self.next_message += 1;
            self.in_flight.insert((self.now + Duration::from_millis(delay), self.next_message), msg);
        }
        for (req, response) in out.responses {
            let prev = self.responses.insert(req, (id, self.now, response));
            assert!(prev.is_none(), "request {req} answered twice");
        }
        for change in out.leader_changes {
            self.history.push(ClusterEvent::LeaderChange { member: id, change });
        }
        if let Some(revision) = out.installed_snapshot {
            self.history.push(ClusterEvent::InstalledSnapshot { member: id, at: self.now, revision });
        }
    }

    /// Raft's Election Safety: at most one leader per term, ever.
    fn check_one_leader_per_term(&mut self) {
        for m in self.members.values() {
            let s = m.status();
            if s.role == Role::Leader {
                let leader = *self.leaders_by_term.entry(s.term).or_insert(s.id);
                if leader != s.id {
                    let msg =
                        format!("two leaders in term {} at {}: {leader} and {}", s.term, self.now, s.id);
                    assert!(!self.panic_on_violation, "{msg}");
                    if !self.violations.contains(&msg) {
                        self.violations.push(msg);
                    }
                }
            }
        }
    }

    /// Safety violations recorded with `panic_on_violation` off.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Every term's leader seen so far.
    pub fn leaders_by_term(&self) -> &BTreeMap<u64, u64> {
        &self.leaders_by_term
    }
}

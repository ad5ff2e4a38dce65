//! An etcd cluster on its own, on the same driver, network and disks as a scenario's:
//! [`EtcdCluster`] runs N [`EtcdServer`]s in a madsim runtime of its own and gives tests,
//! benchmarks and the etcd fuzzer a synchronous handle on it — send requests, run for a
//! while, kill, restart, partition, lose disks or un-fsynced writes — with Election Safety
//! (one leader per term) checked on every leader a member reports.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kubesim_model::etcd::{
    DiskState, EtcdRequest, EtcdResponse, EtcdServer, LeaderChange, MemberConfig, MemberStatus, RaftMember,
    RequestId, Role, StoreValue,
};
use kubesim_model::process::Record;
use kubesim_model::time::SimTime;
use kubesim_model::wire::{FromEtcd, Message, ToEtcd};
use madsim::runtime::{NodeHandle, Runtime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::disk::SimDisk;
use crate::driver::{drive, Hooks, Slot};
use crate::net::{LinkNoise, Network};
use crate::now;

/// Something that happened in the cluster, in order: the run's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterEvent {
    LeaderChange {
        member: u64,
        change: LeaderChange,
    },
    Killed {
        member: u64,
        at: SimTime,
    },
    Restarted {
        member: u64,
        at: SimTime,
        disk_lost: bool,
    },
    /// Power loss: `lost` of the member's un-fsynced writes did not reach its disk.
    LostUnsyncedWrites {
        member: u64,
        at: SimTime,
        lost: usize,
    },
    InstalledSnapshot {
        member: u64,
        at: SimTime,
        revision: i64,
    },
}

const PORT: u16 = 2379;
const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)), 50000);

fn member_addr(id: u64) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)), PORT)
}

/// What the members' hooks and the client task write, and the handle reads.
struct Shared<V: StoreValue> {
    history: Vec<ClusterEvent>,
    leaders_by_term: BTreeMap<u64, u64>,
    violations: Vec<String>,
    responses: BTreeMap<RequestId, (u64, SimTime, EtcdResponse<V>)>,
    /// The running incarnation of each member, for reads.
    slots: BTreeMap<u64, Slot<EtcdServer<V>>>,
    /// Panic at a broken safety property (tests), or record it (fuzzing).
    panic_on_violation: bool,
}

/// N replicated members in a runtime of their own. Every random choice (network delays
/// and losses, tick phases, election timeouts, torn writes) comes from the seed.
pub struct EtcdCluster<V: StoreValue> {
    rt: Runtime,
    net: Network,
    configs: BTreeMap<u64, MemberConfig>,
    nodes: BTreeMap<u64, NodeHandle>,
    disks: BTreeMap<u64, SimDisk<V>>,
    alive: BTreeSet<u64>,
    shared: Arc<Mutex<Shared<V>>>,
    next_request: RequestId,
    /// Draws what faults leave to chance.
    rng: ChaCha8Rng,
    now: SimTime,
}

impl<V: StoreValue> EtcdCluster<V> {
    /// `n` members with etcd's defaults.
    pub fn new(n: u64, seed: u64) -> Self {
        Self::with_config(n, seed, |_| {})
    }

    /// `n` members (ids 1..=n) on links of 1 to 10 ms; `tune` adjusts each member's config.
    pub fn with_config(n: u64, seed: u64, tune: impl Fn(&mut MemberConfig)) -> Self {
        let rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
        let net = Network::new(Duration::from_millis(1));
        net.set_noise(
            LinkNoise {
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(10),
                loss_rate: 0.0,
            },
            seed ^ 0x6e65_7477_6f72_6b21,
        );
        let peers: Vec<u64> = (1..=n).collect();
        let shared = Arc::new(Mutex::new(Shared {
            history: Vec::new(),
            leaders_by_term: BTreeMap::new(),
            violations: Vec::new(),
            responses: BTreeMap::new(),
            slots: BTreeMap::new(),
            panic_on_violation: true,
        }));
        let mut c = EtcdCluster {
            rt,
            net,
            configs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            alive: BTreeSet::new(),
            shared,
            next_request: 0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6661_756c_7473),
            now: SimTime::ZERO,
        };
        c.start_client();
        for &id in &peers {
            let mut config = MemberConfig::new(id, peers.clone());
            tune(&mut config);
            c.configs.insert(id, config);
            c.disks.insert(id, SimDisk::default());
        }
        for &id in &peers {
            c.create_member(id, seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        c
    }

    /// The client's endpoint: answers are recorded as they arrive.
    fn start_client(&mut self) {
        let (net, shared) = (self.net.clone(), self.shared.clone());
        self.rt.block_on(async move {
            let mut ep = net.bind(CLIENT);
            madsim::task::spawn(async move {
                loop {
                    let (payload, from) = ep.recv().await;
                    let Ok(msg) = payload.downcast::<Message<V>>() else { continue };
                    let Message::FromEtcd(FromEtcd { responses, .. }) = *msg else { continue };
                    let member =
                        from.ip().to_string().rsplit('.').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                    let mut s = shared.lock().expect("shared");
                    for (id, response) in responses {
                        let prev = s.responses.insert(id, (member, now(), response));
                        assert!(prev.is_none(), "request {id} answered twice");
                    }
                }
            });
        });
    }

    fn create_member(&mut self, id: u64, seed: u64) {
        let (net, shared, config, disk) =
            (self.net.clone(), self.shared.clone(), self.configs[&id].clone(), self.disks[&id].clone());
        let peers: BTreeMap<u64, SocketAddr> = self.configs.keys().map(|p| (*p, member_addr(*p))).collect();
        let node = self
            .rt
            .create_node()
            .name(format!("etcd-{id}"))
            .init(move || {
                let (net, shared, config, disk, peers) =
                    (net.clone(), shared.clone(), config.clone(), disk.clone(), peers.clone());
                async move {
                    let t = now();
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(seed ^ t.as_millis().wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let server = EtcdServer::new(config, peers, disk.recovery_copy(), t, &mut rng);
                    let slot = Arc::new(Mutex::new(server));
                    shared.lock().expect("shared").slots.insert(id, slot.clone());
                    let hooks =
                        Hooks { records: leader_hook(id, shared.clone()), local: Box::new(|_, _| {}) };
                    drive(slot, net.bind(member_addr(id)), rng, Some(disk), hooks).await
                }
            })
            .build();
        self.nodes.insert(id, node);
        self.alive.insert(id);
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Panic at a broken safety property (tests, the default), or record it (fuzzing).
    pub fn set_panic_on_violation(&mut self, panic: bool) {
        self.shared.lock().expect("shared").panic_on_violation = panic;
    }

    pub fn ids(&self) -> Vec<u64> {
        self.configs.keys().copied().collect()
    }

    /// Reads a live member that has started.
    pub fn with_member<R>(&self, id: u64, f: impl FnOnce(&RaftMember<V>) -> R) -> Option<R> {
        if !self.alive.contains(&id) {
            return None;
        }
        let slot = self.shared.lock().expect("shared").slots.get(&id).cloned()?;
        let server = slot.lock().expect("server");
        server.member().map(f)
    }

    pub fn status(&self, id: u64) -> Option<MemberStatus> {
        self.with_member(id, |m| m.status())
    }

    pub fn is_alive(&self, id: u64) -> bool {
        self.alive.contains(&id)
    }

    pub fn history(&self) -> Vec<ClusterEvent> {
        self.shared.lock().expect("shared").history.clone()
    }

    pub fn net_stats(&self) -> crate::net::NetStats {
        self.net.stats()
    }

    pub fn messages_delivered(&self) -> u64 {
        self.net.stats().delivered
    }

    /// The live member that is leader in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.ids()
            .into_iter()
            .filter_map(|id| self.status(id))
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
                        self.net.set_blocked(member_addr(x).ip(), member_addr(y).ip(), true);
                        self.net.set_blocked(member_addr(y).ip(), member_addr(x).ip(), true);
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
        self.net.unblock_all();
    }

    /// Kills a member's process: its memory is gone, its disk (page cache included) stays.
    pub fn kill(&mut self, id: u64) {
        if self.alive.remove(&id) {
            self.rt.handle().kill(self.nodes[&id].id());
            self.shared.lock().expect("shared").slots.remove(&id);
            self.event(ClusterEvent::Killed { member: id, at: self.now() });
        }
    }

    /// Restarts a killed member from its disk.
    pub fn restart(&mut self, id: u64) {
        assert!(!self.alive.contains(&id), "restart a killed member");
        self.event(ClusterEvent::Restarted { member: id, at: self.now(), disk_lost: false });
        self.rt.handle().restart(self.nodes[&id].id());
        self.alive.insert(id);
    }

    /// Kills a member and restarts it on a blank disk ([`DiskState::lost`]): it rejoins
    /// with its old id and catches up before it votes again.
    pub fn restart_with_lost_disk(&mut self, id: u64) {
        self.kill(id);
        self.disks[&id].replace(DiskState::lost());
        self.event(ClusterEvent::Restarted { member: id, at: self.now(), disk_lost: true });
        self.rt.handle().restart(self.nodes[&id].id());
        self.alive.insert(id);
    }

    /// PLANTED BUG: the member's disk acknowledges each fsync before the write is
    /// durable (see [`SimDisk::plant_ack_before_fsync`]).
    pub fn plant_ack_before_fsync(&mut self, id: u64) {
        self.disks[&id].plant_ack_before_fsync();
    }

    /// Each message is lost with this probability.
    pub fn set_loss_rate(&mut self, loss_rate: f64) {
        self.net.set_loss_rate(loss_rate);
    }

    /// Every fsync of a member's disk takes `latency`.
    pub fn set_fsync_latency(&mut self, id: u64, latency: Duration) {
        self.disks[&id].set_fsync_latency(latency);
    }

    /// A member's host loses power and reboots: the writes not yet fsynced are lost,
    /// but for a random prefix that reached the disk (a torn write).
    pub fn lose_unsynced_writes(&mut self, id: u64) {
        let was_alive = self.alive.contains(&id);
        self.kill(id);
        let disk = &self.disks[&id];
        let pending = disk.unsynced();
        let keep = if pending == 0 { 0 } else { self.rng.gen_range(0..=pending) };
        let lost = disk.lose_unsynced(keep);
        self.event(ClusterEvent::LostUnsyncedWrites { member: id, at: self.now(), lost });
        if was_alive {
            self.restart(id);
        }
    }

    fn event(&self, e: ClusterEvent) {
        self.shared.lock().expect("shared").history.push(e);
    }

    // ---- clients -------------------------------------------------------------------

    /// Sends a client request to a member; its answer appears in [`Self::response`].
    pub fn request(&mut self, member: u64, request: EtcdRequest<V>) -> RequestId {
        self.request_all(member, vec![request])[0]
    }

    /// Sends several requests to a member in one message: their proposals go to raft
    /// as one batch.
    pub fn request_all(&mut self, member: u64, requests: Vec<EtcdRequest<V>>) -> Vec<RequestId> {
        let mut ids = Vec::with_capacity(requests.len());
        let mut batch = Vec::with_capacity(requests.len());
        for request in requests {
            self.next_request += 1;
            ids.push(self.next_request);
            batch.push((self.next_request, request));
        }
        let net = self.net.clone();
        self.rt.block_on(async move {
            // Sent from the client's address, as if through its connection.
            let msg: Message<V> = Message::ToEtcd(ToEtcd { requests: batch, ping: false });
            net.send_from(CLIENT, member_addr(member), Box::new(msg));
        });
        ids
    }

    pub fn response(&self, id: RequestId) -> Option<EtcdResponse<V>> {
        self.shared.lock().expect("shared").responses.get(&id).map(|(_, _, r)| r.clone())
    }

    /// When the answer to `id` arrived.
    pub fn response_time(&self, id: RequestId) -> Option<SimTime> {
        self.shared.lock().expect("shared").responses.get(&id).map(|(_, t, _)| *t)
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
        self.response(id)
    }

    // ---- time --------------------------------------------------------------------

    pub fn run_for(&mut self, d: Duration) {
        self.now = self.rt.block_on(async move {
            madsim::time::sleep(d).await;
            now()
        });
    }

    /// Runs until `done` holds (checked every simulated millisecond) or `timeout` passes;
    /// returns whether `done` held.
    pub fn run_until(&mut self, timeout: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let deadline = self.now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if self.now() >= deadline {
                return false;
            }
            self.run_for(Duration::from_millis(1));
        }
    }

    /// Safety violations recorded with `panic_on_violation` off.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().expect("shared").violations.clone()
    }

    /// Every term's leader seen so far.
    pub fn leaders_by_term(&self) -> BTreeMap<u64, u64> {
        self.shared.lock().expect("shared").leaders_by_term.clone()
    }
}

/// Raft's Election Safety on every leader a member reports: at most one leader per
/// term, ever (a member learns of a term's leader only from that leader).
fn leader_hook<V: StoreValue>(
    member: u64,
    shared: Arc<Mutex<Shared<V>>>,
) -> Box<dyn FnMut(Vec<Record<V>>, SimTime) + Send> {
    Box::new(move |records, t| {
        let mut s = shared.lock().expect("shared");
        for r in records {
            let (at, term, leader) = match r {
                Record::EtcdLeader { at, term, leader } => (at, term, leader),
                Record::EtcdSnapshotInstalled { revision } => {
                    s.history.push(ClusterEvent::InstalledSnapshot { member, at: t, revision });
                    continue;
                }
                Record::Committed(_)
                | Record::ApiCalls(_)
                | Record::Component(_)
                | Record::EtcdAlarm(_)
                | Record::EtcdRejected(_) => continue,
            };
            s.history.push(ClusterEvent::LeaderChange {
                member,
                change: LeaderChange { at, term, leader: Some(leader) },
            });
            let known = *s.leaders_by_term.entry(term).or_insert(leader);
            if known != leader {
                let msg = format!("two leaders in term {term} at {at}: {known} and {leader}");
                assert!(!s.panic_on_violation, "{msg}");
                if !s.violations.contains(&msg) {
                    s.violations.push(msg);
                }
            }
        }
    })
}

//! The simulated world: hosts on madsim, the processes on them, the network between them,
//! and the faults that can be done to them.
//!
//! Control-plane hosts cp-1..cp-N each run an etcd member, an API server, a scheduler and
//! a controller manager (kubeadm's stacked layout); each worker runs a kubelet; one more
//! host, `kubectl`, carries the scenario's own API calls. Every process is a
//! kubesim-model [`Process`] run by the one [`crate::driver`] loop, in a madsim node of its
//! own so it can be killed alone; only etcd's disk survives a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use kubesim_model::apiserver::{ApiServerConfig, ApiServerProcess};
use kubesim_model::client::{ApiError, ApiRequest, ApiResult, Cache, ClientProcess, Component, Kubectl};
use kubesim_model::controllers::{ControllerManager, ControllerManagerConfig};
use kubesim_model::etcd::{DiskState, EtcdRequest, EtcdResponse, EtcdServer, MemberConfig};
use kubesim_model::host::HostState;
use kubesim_model::kubelet::{Kubelet, KubeletConfig};
use kubesim_model::leaderelection::{ComponentFactory, LeaderElected, LeaderElectionConfig};
use kubesim_model::process::{Input, Process, Record};
use kubesim_model::scheduler::{Scheduler, SchedulerConfig};
use kubesim_model::time::SimTime;
use kubesim_model::wire::{FromEtcd, Message, ToEtcd, Value};
use madsim::runtime::{Handle, NodeHandle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use kubesim_model::client::ClientRate;
use kubesim_model::client::ClientRates;

use crate::disk::SimDisk;
use crate::driver::{drive, Hooks};
use crate::net::Network;
use crate::now;
use crate::trace::{TraceRecord, TraceSink};

const ETCD_PORT: u16 = 2379;
const APISERVER_PORT: u16 = 6443;
const KUBELET_PORT: u16 = 10250;
const SCHEDULER_PORT: u16 = 10259;
const CONTROLLER_MANAGER_PORT: u16 = 10257;
const KUBECTL_PORT: u16 = 40000;
/// The API server waits this long after its host starts before it serves: etcd on the
/// same host binds first.
const APISERVER_START_DELAY: Duration = Duration::from_millis(5);

/// One worker node to start.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    pub kubelet: KubeletConfig,
    /// kubelet --kube-api-qps / --kube-api-burst (KubeletConfiguration kubeAPIQPS 50,
    /// kubeAPIBurst 100 since v1.27).
    pub rate: ClientRate,
    /// KubeletConfiguration eventRecordQPS 50, eventBurst 100 (since v1.27): the event
    /// client's rate.
    pub event_rate: ClientRate,
}

/// Everything needed to build the world.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    pub seed: u64,
    /// One-way network latency between hosts.
    pub latency: Duration,
    pub control_plane_hosts: usize,
    pub apiserver: ApiServerConfig,
    pub scheduler: SchedulerConfig,
    /// KubeSchedulerConfiguration clientConnection qps 50, burst 100.
    pub scheduler_rate: ClientRate,
    pub controller_manager: ControllerManagerConfig,
    /// kube-controller-manager --kube-api-qps 20, --kube-api-burst 30.
    pub controller_manager_rate: ClientRate,
    pub workers: Vec<WorkerSpec>,
    /// etcd --snapshot-count (100,000).
    pub etcd_snapshot_count: u64,
    /// etcd --quota-backend-bytes (2 GiB) and --max-request-bytes (1.5 MiB).
    pub etcd_quota_backend_bytes: u64,
    pub etcd_max_request_bytes: u64,
}

impl WorldConfig {
    pub fn new(seed: u64) -> Self {
        WorldConfig {
            seed,
            latency: Duration::from_millis(1),
            control_plane_hosts: 3,
            apiserver: ApiServerConfig::default(),
            scheduler: SchedulerConfig::default(),
            scheduler_rate: ClientRate { qps: 50.0, burst: 100 },
            controller_manager: ControllerManagerConfig::default(),
            controller_manager_rate: ClientRate { qps: 20.0, burst: 30 },
            workers: Vec::new(),
            etcd_snapshot_count: kubesim_model::etcd::config::DEFAULT_SNAPSHOT_COUNT,
            etcd_quota_backend_bytes: kubesim_model::etcd::config::DEFAULT_QUOTA_BACKEND_BYTES,
            etcd_max_request_bytes: kubesim_model::etcd::config::DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

/// Runs `body` inside a fresh deterministic madsim runtime seeded with `seed`.
/// Call it on a fresh OS thread per simulation (madsim keeps per-thread state).
pub fn simulate<F, Fut, T>(seed: u64, body: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    // Messages travel on crate::net, not on madsim's network: only its clock, executor
    // and node kill/restart are used.
    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    rt.block_on(async move {
        let _clock = crate::ClockGuard::set();
        body().await
    })
}

/// What the processes on a host share with the world: the host's state as its node agents
/// observe it.
pub type SharedHostState = Arc<Mutex<HostState>>;

#[derive(Clone)]
struct HostInfo {
    ip: IpAddr,
    state: SharedHostState,
    /// The host's processes by name (`etcd`, `kube-apiserver`, `kubelet`, ...).
    processes: BTreeMap<&'static str, NodeHandle>,
    /// The address of the process that observes the host (its kubelet).
    agent: Option<SocketAddr>,
}

/// Answers to the scenario kubectl's requests, by tag.
type Pending = Arc<Mutex<BTreeMap<u64, oneshot::Sender<ApiResult>>>>;

/// What the etcd members share with the world: each member's disk (it survives a
/// restart; a lost disk is replaced by a blank one) and the leader as the members report
/// it.
#[derive(Clone, Default)]
pub struct EtcdShared {
    disks: Arc<Mutex<BTreeMap<u64, SimDisk<Value>>>>,
    /// (term, leader member id) of the newest leader any member reported.
    leader: Arc<Mutex<Option<(u64, u64)>>>,
}

impl EtcdShared {
    fn disk(&self, id: u64) -> SimDisk<Value> {
        self.disks.lock().expect("disks lock").entry(id).or_default().clone()
    }
}

/// The live world, used from the orchestrating task inside [`simulate`].
pub struct World {
    handle: Handle,
    net: Network,
    config: WorldConfig,
    hosts: BTreeMap<String, HostInfo>,
    down: BTreeSet<String>,
    trace: Arc<Mutex<TraceSink>>,
    kubectl: SocketAddr,
    pending: Pending,
    next_tag: std::sync::atomic::AtomicU64,
    next_index: u32,
    etcd: EtcdShared,
    /// The host the last isolateMember / isolateEtcdLeader cut off (`via: isolated`).
    last_isolated: Mutex<Option<String>>,
    one_shot_clients: std::sync::atomic::AtomicU32,
    etcdctl_clients: std::sync::atomic::AtomicU32,
    /// Draws what a fault leaves to chance (how much of a torn write reached the disk).
    fault_rng: ChaCha8Rng,
    /// The scenario kubectl's process, stopped by [`World::shutdown`].
    kubectl_task: Option<madsim::task::JoinHandle<()>>,
}

fn host_ip(index: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + index))
}

fn seed_for(seed: u64, what: &str, index: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in what.bytes().chain(index.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    seed ^ h
}

/// A process's RNG: its seed mixed with the time it starts at, so a restarted process
/// does not repeat its choices.
fn rng_at(seed: u64, t: SimTime) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ t.as_millis().wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn process_rng(seed: u64) -> ChaCha8Rng {
    rng_at(seed, now())
}

/// Runs `process` on `ep` under the driver.
async fn run<P: Process + 'static>(
    ep: crate::net::Endpoint,
    rng: ChaCha8Rng,
    disk: Option<SimDisk<Value>>,
    hooks: Hooks<Value>,
    make: impl FnOnce(&mut ChaCha8Rng) -> P,
) {
    let mut rng = rng;
    let process = make(&mut rng);
    drive(Arc::new(Mutex::new(process)), ep, rng, disk, hooks).await
}

/// Records an etcd member's trace records: committed writes once per revision, and each
/// new term's leader once.
fn etcd_hooks(trace: Arc<Mutex<TraceSink>>, shared: EtcdShared) -> Hooks<Value> {
    Hooks {
        records: Box::new(move |records, t| {
            for r in records {
                match r {
                    Record::Committed(events) => {
                        trace.lock().expect("trace lock").record_committed(&events, t)
                    }
                    Record::EtcdLeader { at, term, leader } => {
                        let mut l = shared.leader.lock().expect("leader lock");
                        if l.is_none_or(|(known, _)| term > known) {
                            *l = Some((term, leader));
                            let rec = TraceRecord::Leader {
                                t: at.as_millis(),
                                component: "etcd".into(),
                                host: format!("cp-{leader}"),
                                term,
                            };
                            trace.lock().expect("trace lock").record(&rec);
                        }
                    }
                    Record::EtcdAlarm(a) => {
                        let host = format!("cp-{}", a.member);
                        trace.lock().expect("trace lock").record_etcd_alarm(&a, &host, t)
                    }
                    Record::EtcdRejected(rejected) => {
                        trace.lock().expect("trace lock").count_etcd_rejected(&rejected)
                    }
                    Record::EtcdSnapshotInstalled { .. } | Record::ApiCalls(_) | Record::Component(_) => {}
                }
            }
        }),
        local: Box::new(|_, _| {}),
    }
}

/// Hands an API server's answered requests to the trace's request metrics, each labelled
/// with the component that asked.
fn apiserver_hooks(trace: Arc<Mutex<TraceSink>>, cp_count: u32) -> Hooks<Value> {
    Hooks {
        records: Box::new(move |records, t| {
            for r in records {
                if let Record::ApiCalls(calls) = r {
                    trace
                        .lock()
                        .expect("trace lock")
                        .record_api_calls(&calls, t, |c| component_of(c, cp_count));
                }
            }
        }),
        local: Box::new(|_, _| {}),
    }
}

/// Records a client process's own records (the scheduler's attempts) with its host.
fn client_hooks(trace: Arc<Mutex<TraceSink>>, host: String) -> Hooks<Value> {
    Hooks {
        records: Box::new(move |records, t| {
            let mut sink = trace.lock().expect("trace lock");
            for r in records {
                if let Record::Component(r) = r {
                    sink.record(&TraceRecord::of_component(t, &host, r));
                }
            }
        }),
        local: Box::new(|_, _| {}),
    }
}

impl World {
    /// Builds every host and starts its processes.
    pub async fn start(config: WorldConfig, trace: Arc<Mutex<TraceSink>>) -> World {
        let kubectl_ip = host_ip(100);
        let mut world = World {
            handle: Handle::current(),
            net: Network::new(config.latency),
            config: config.clone(),
            hosts: BTreeMap::new(),
            down: BTreeSet::new(),
            trace,
            kubectl: SocketAddr::new(kubectl_ip, KUBECTL_PORT),
            pending: Pending::default(),
            next_tag: std::sync::atomic::AtomicU64::new(0),
            next_index: 1000,
            etcd: EtcdShared::default(),
            last_isolated: Mutex::new(None),
            one_shot_clients: std::sync::atomic::AtomicU32::new(0),
            etcdctl_clients: std::sync::atomic::AtomicU32::new(0),
            fault_rng: ChaCha8Rng::seed_from_u64(seed_for(config.seed, "faults", 0)),
            kubectl_task: None,
        };
        let cp_count = config.control_plane_hosts.max(1) as u32;
        // Stacked etcd, as kubeadm sets it up: one member on every control-plane host.
        let peers: BTreeMap<u64, SocketAddr> =
            (1..=cp_count).map(|i| (i as u64, SocketAddr::new(host_ip(i), ETCD_PORT))).collect();
        for i in 1..=cp_count {
            world.start_control_plane_host(i, &peers);
        }
        // The scenario's own client, like kubectl on an operator's laptop. It is never
        // restarted.
        world.hosts.insert(
            "kubectl".into(),
            HostInfo {
                ip: kubectl_ip,
                state: SharedHostState::default(),
                processes: BTreeMap::new(),
                agent: None,
            },
        );
        let (apis, pending) = (api_servers(cp_count, 0), world.pending.clone());
        let ep = world.net.bind(world.kubectl);
        world.kubectl_task = Some(madsim::task::spawn(async move {
            let hooks = Hooks { records: Box::new(|_, _| {}), local: answer(pending) };
            let t = now();
            let startup = kubesim_model::client::STARTUP_DELAY;
            run(ep, process_rng(0), None, hooks, |_| Kubectl::new(apis, client_id(100, 1), t, startup)).await
        }));
        for w in config.workers {
            world.add_worker(w);
        }
        world
    }

    fn start_control_plane_host(&mut self, i: u32, peers: &BTreeMap<u64, SocketAddr>) {
        let config = self.config.clone();
        let host = format!("cp-{i}");
        let ip = host_ip(i);
        self.hosts.insert(
            host.clone(),
            HostInfo { ip, state: SharedHostState::default(), processes: BTreeMap::new(), agent: None },
        );
        let etcd_addr = SocketAddr::new(ip, ETCD_PORT);
        let mut member = MemberConfig::new(i as u64, peers.keys().copied().collect());
        member.snapshot_count = config.etcd_snapshot_count;
        member.quota_backend_bytes = config.etcd_quota_backend_bytes;
        member.max_request_bytes = config.etcd_max_request_bytes;
        let (net, trace, shared, peers) =
            (self.net.clone(), self.trace.clone(), self.etcd.clone(), peers.clone());
        let seed = seed_for(config.seed, "etcd", i);
        self.add_process(&host, "etcd", move || {
            let (net, member, peers) = (net.clone(), member.clone(), peers.clone());
            let (disk, hooks) = (shared.disk(i as u64), etcd_hooks(trace.clone(), shared.clone()));
            async move {
                let t = now();
                let copy = disk.recovery_copy();
                run(net.bind(etcd_addr), process_rng(seed), Some(disk), hooks, |rng| {
                    EtcdServer::new(member, peers, copy, t, rng)
                })
                .await
            }
        });
        // kubeadm: --etcd-servers=https://127.0.0.1:2379, the member on the same host.
        let local_api = SocketAddr::new(ip, APISERVER_PORT);
        let (net, seed, api_config) =
            (self.net.clone(), seed_for(config.seed, "kube-apiserver", i), config.apiserver.clone());
        let (trace, cp_count) = (self.trace.clone(), config.control_plane_hosts.max(1) as u32);
        self.add_process(&host, "kube-apiserver", move || {
            let (net, api_config, trace) = (net.clone(), api_config.clone(), trace.clone());
            async move {
                let t = now();
                // `seed` is this API server's own (uids and generated names must not
                // repeat between API servers), mixed with the time it starts serving.
                let rng = rng_at(seed, t + APISERVER_START_DELAY);
                run(net.bind(local_api), rng, None, apiserver_hooks(trace, cp_count), |_| {
                    ApiServerProcess::new(api_config, etcd_addr, t, APISERVER_START_DELAY)
                })
                .await
            }
        });
        // kubeadm points the scheduler and the controller manager at the API server on
        // their own host.
        let sched = config.scheduler.clone();
        let mut le = LeaderElectionConfig::new("kube-scheduler", "default-scheduler", &host);
        le.event_client = kubesim_model::scheduler::EVENT_CLIENT;
        let make_sched = move || {
            let sched = sched.clone();
            let make: ComponentFactory =
                Box::new(move || Box::new(Scheduler::new(sched.clone())) as Box<dyn Component>);
            Box::new(LeaderElected::new(le.clone(), make)) as Box<dyn Component>
        };
        let addr = SocketAddr::new(ip, SCHEDULER_PORT);
        self.add_client(
            &host,
            "kube-scheduler",
            addr,
            vec![local_api],
            client_id(i, 1),
            seed_for(config.seed, "kube-scheduler", i),
            ClientRates::all(config.scheduler_rate),
            make_sched,
        );
        let kcm = config.controller_manager.clone();
        let mut le = LeaderElectionConfig::new("kube-controller-manager", "kube-controller-manager", &host);
        le.informers_before_leading = false;
        let make_kcm = move || {
            let kcm = kcm.clone();
            let make: ComponentFactory =
                Box::new(move || Box::new(ControllerManager::new(kcm.clone())) as Box<dyn Component>);
            Box::new(LeaderElected::new(le.clone(), make)) as Box<dyn Component>
        };
        let addr = SocketAddr::new(ip, CONTROLLER_MANAGER_PORT);
        self.add_client(
            &host,
            "kube-controller-manager",
            addr,
            vec![local_api],
            client_id(i, 2),
            seed_for(config.seed, "kube-controller-manager", i),
            ClientRates::all(config.controller_manager_rate),
            make_kcm,
        );
    }

    /// Starts a client process (a component on its API connection) on a host.
    #[allow(clippy::too_many_arguments)]
    fn add_client(
        &mut self,
        host: &str,
        process: &'static str,
        addr: SocketAddr,
        apis: Vec<SocketAddr>,
        client: u64,
        seed: u64,
        rates: ClientRates,
        make: impl Fn() -> Box<dyn Component> + Send + Sync + 'static,
    ) {
        let (net, trace, host_name) = (self.net.clone(), self.trace.clone(), host.to_string());
        let state = self.hosts.get(host).map(|h| h.state.clone()).unwrap_or_default();
        self.add_process(host, process, move || {
            let (net, apis, component, state, rates) =
                (net.clone(), apis.clone(), make(), state.clone(), rates.clone());
            let hooks = client_hooks(trace.clone(), host_name.clone());
            async move {
                let t = now();
                let ep_net = net.clone();
                // The host's state as the process finds it at start; changes arrive as
                // they happen (World::set_host_state).
                let observed = state.lock().expect("host state lock").clone();
                let ep = ep_net.bind(addr);
                if observed != HostState::default() {
                    ep_net.inject(addr, Box::new(Input::<Value>::Host(observed)));
                }
                let p = ClientProcess::new(component, apis, client, rates, t);
                drive(Arc::new(Mutex::new(p)), ep, process_rng(seed), None, hooks).await
            }
        });
    }

    /// Starts a process on a host: a madsim node of its own, so it can be killed and
    /// restarted alone; `init` runs at every (re)start.
    fn add_process<F>(
        &mut self,
        host: &str,
        process: &'static str,
        init: impl Fn() -> F + Send + Sync + 'static,
    ) where
        F: std::future::Future<Output = ()> + 'static,
    {
        let node = self.handle.create_node().name(format!("{host}/{process}")).init(init).build();
        if let Some(h) = self.hosts.get_mut(host) {
            h.processes.insert(process, node);
        }
    }

    /// Starts a new worker host running a kubelet.
    pub fn add_worker(&mut self, spec: WorkerSpec) {
        self.next_index += 1;
        let index = self.next_index;
        let ip = host_ip(index);
        let apis = api_servers(self.config.control_plane_hosts.max(1) as u32, index as usize);
        let seed = seed_for(self.config.seed, &spec.kubelet.node_name, 0);
        let name = spec.kubelet.node_name.clone();
        let addr = SocketAddr::new(ip, KUBELET_PORT);
        let info =
            HostInfo { ip, state: SharedHostState::default(), processes: BTreeMap::new(), agent: Some(addr) };
        self.hosts.insert(name.clone(), info);
        let kc = spec.kubelet.clone();
        let make = move || Box::new(Kubelet::new(kc.clone(), now())) as Box<dyn Component>;
        let rates = ClientRates::all(spec.rate)
            .with(kubesim_model::kubelet::EVENT_CLIENT, spec.event_rate)
            .with(kubesim_model::kubelet::HEARTBEAT_CLIENT, ClientRate::UNLIMITED);
        self.add_client(&name, "kubelet", addr, apis, client_id(index, 1), seed, rates, make);
    }

    pub fn has_host(&self, name: &str) -> bool {
        self.hosts.contains_key(name)
    }

    pub fn host_names(&self) -> Vec<String> {
        self.hosts.keys().cloned().collect()
    }

    /// The hosts that run a kubelet (the worker nodes).
    pub fn worker_names(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.processes.contains_key("kubelet"))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Message counts of the simulated network so far.
    pub fn net_stats(&self) -> crate::net::NetStats {
        self.net.stats()
    }

    fn host(&self, name: &str) -> Result<&HostInfo, String> {
        self.hosts.get(name).ok_or_else(|| format!("no host named {name:?}"))
    }

    /// Powers a host off: every process on it stops; messages to and from it are lost.
    /// Its disks keep what they held (writes in flight at that instant reached them).
    pub fn kill_host(&mut self, name: &str) -> Result<(), String> {
        let h = self.host(name)?.clone();
        for node in h.processes.values() {
            self.handle.kill(node.id());
        }
        self.net.set_down(h.ip, true);
        self.down.insert(name.to_string());
        self.fault("kill-host", name);
        Ok(())
    }

    /// Ends the simulation: every process is killed and the scenario kubectl stopped, so
    /// the runtime drops their tasks. A process task waits on its network endpoint, which
    /// the network keeps its waker in: without this the tasks, the network and every
    /// component's state form a cycle that outlives the runtime (the fuzzer, running seed
    /// after seed in one process, grew ~3.5 MB a quickstart seed).
    pub fn shutdown(&mut self) {
        for h in self.hosts.values() {
            for node in h.processes.values() {
                self.handle.kill(node.id());
            }
        }
        if let Some(t) = self.kubectl_task.take() {
            t.abort();
        }
    }

    /// Powers a host back on: its processes start afresh (etcd from its disk).
    pub fn restart_host(&mut self, name: &str) -> Result<(), String> {
        let h = self.host(name)?.clone();
        for node in h.processes.values() {
            // madsim's restart re-runs init without stopping what runs: kill first.
            self.handle.kill(node.id());
            self.handle.restart(node.id());
        }
        self.net.set_down(h.ip, false);
        self.down.remove(name);
        self.fault("restart-host", name);
        Ok(())
    }

    /// A control-plane host loses power and reboots: its etcd member's writes that were
    /// not fsynced are lost, but for a random prefix of them that reached the disk (a torn
    /// write); every process on the host starts afresh.
    pub fn lose_unsynced_writes(&mut self, host: &str) -> Result<(), String> {
        let id = self.etcd_member_id(host)?;
        let h = self.host(host)?.clone();
        for node in h.processes.values() {
            self.handle.kill(node.id());
        }
        let disk = self.etcd.disk(id);
        let pending = disk.unsynced();
        let keep = if pending == 0 { 0 } else { self.fault_rng.gen_range(0..=pending) };
        let lost = disk.lose_unsynced(keep);
        for node in h.processes.values() {
            self.handle.restart(node.id());
        }
        self.fault("lose-unsynced-writes", &format!("{host}: {lost} of {pending} un-fsynced writes lost"));
        Ok(())
    }

    fn process(&self, host: &str, process: &str) -> Result<&NodeHandle, String> {
        let h = self.host(host)?;
        h.processes.get(process).ok_or_else(|| {
            let names: Vec<&str> = h.processes.keys().copied().collect();
            format!("host {host:?} runs no process {process:?} (it runs: {})", names.join(", "))
        })
    }

    /// Changes what a host's node agents observe of it (a host fault): the kubelet hears
    /// of it at once, and sees it at its next relist.
    pub fn set_host_state(&mut self, host: &str, f: impl FnOnce(&mut HostState)) -> Result<(), String> {
        let h = self.host(host)?;
        let state = {
            let mut st = h.state.lock().expect("host state lock");
            f(&mut st);
            st.clone()
        };
        if let Some(agent) = h.agent {
            self.net.inject(agent, Box::new(Input::<Value>::Host(state)));
        }
        Ok(())
    }

    /// Stops one process (SIGKILL); the host and its other processes go on.
    pub fn kill_process(&mut self, host: &str, process: &str) -> Result<(), String> {
        let id = self.process(host, process)?.id();
        self.handle.kill(id);
        self.fault("kill-process", &format!("{host}/{process}"));
        Ok(())
    }

    /// Starts one process afresh (it keeps nothing but its disk).
    pub fn restart_process(&mut self, host: &str, process: &str) -> Result<(), String> {
        let id = self.process(host, process)?.id();
        self.handle.kill(id);
        self.handle.restart(id);
        self.fault("restart-process", &format!("{host}/{process}"));
        Ok(())
    }

    /// The host of the etcd member that leads now, as the members last reported.
    pub fn etcd_leader_host(&self) -> Option<String> {
        let l = *self.etcd.leader.lock().expect("leader lock");
        l.map(|(_, id)| format!("cp-{id}"))
    }

    /// Control-plane hosts (the etcd members' hosts), in order.
    pub fn control_plane_hosts(&self) -> Vec<String> {
        (1..=self.config.control_plane_hosts.max(1)).map(|i| format!("cp-{i}")).collect()
    }

    /// Cuts `host` off from the other control-plane hosts (its etcd peers), both ways;
    /// workers still reach it.
    pub fn isolate_from_control_plane(&mut self, host: &str) -> Result<(), String> {
        let ip = self.host(host)?.ip;
        for other in self.control_plane_hosts() {
            if other != host {
                let oip = self.host(&other)?.ip;
                self.net.set_blocked(ip, oip, true);
                self.net.set_blocked(oip, ip, true);
            }
        }
        *self.last_isolated.lock().expect("isolated lock") = Some(host.to_string());
        self.fault("isolate", &format!("{host} from the other control-plane hosts"));
        Ok(())
    }

    /// Replaces a member's disk with a blank one and restarts its etcd: it rejoins empty.
    pub fn lose_etcd_disk(&mut self, host: &str) -> Result<(), String> {
        let id = self.etcd_member_id(host)?;
        let node = self.process(host, "etcd")?.id();
        self.handle.kill(node);
        self.etcd.disk(id).replace(DiskState::lost());
        self.handle.restart(node);
        self.fault("lose-disk", host);
        Ok(())
    }

    /// Makes every fsync of a member's disk take `delay` (zero restores it).
    pub fn slow_etcd_disk(&mut self, host: &str, delay: Duration) -> Result<(), String> {
        let id = self.etcd_member_id(host)?;
        self.etcd.disk(id).set_fsync_latency(delay);
        self.fault("slow-disk", &format!("{host} fsync {}", kubesim_model::time::go_duration(delay)));
        Ok(())
    }

    /// One request from an etcdctl on the kubectl host to the etcd member on `host`
    /// (`etcdctl --endpoints=<host>:2379`), with etcdctl's --command-timeout (5 s,
    /// etcdctl/ctlv3/ctl.go defaultCommandTimeOut).
    pub async fn etcdctl(
        &self,
        host: &str,
        request: EtcdRequest<Value>,
    ) -> Result<EtcdResponse<Value>, String> {
        const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
        self.etcd_member_id(host)?;
        let member = SocketAddr::new(self.host(host)?.ip, ETCD_PORT);
        let n = self.etcdctl_clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut ep = self.net.bind(SocketAddr::new(host_ip(100), 61000 + (n % 4000) as u16));
        ep.send(member, Message::<Value>::ToEtcd(ToEtcd { requests: vec![(1, request)], ping: false }));
        let deadline = now() + COMMAND_TIMEOUT;
        while let Some((payload, _)) = ep.recv_until(Some(deadline)).await {
            let Ok(msg) = payload.downcast::<Message<Value>>() else { continue };
            let Message::FromEtcd(FromEtcd { responses, .. }) = *msg else { continue };
            if let Some((_, response)) = responses.into_iter().find(|(id, _)| *id == 1) {
                return match response {
                    EtcdResponse::Error { message } => Err(format!("{host}: {message}")),
                    r => Ok(r),
                };
            }
        }
        Err(format!("{host}: context deadline exceeded"))
    }

    /// `etcdctl compact <rev>` at the current revision (read from a member's header, as
    /// an operator does with `etcdctl endpoint status`): history up to it is discarded,
    /// the database file keeps its size. Sent to the etcd leader (cp-1 if none is known).
    pub async fn etcd_compact(&self) -> Result<String, String> {
        let host = self.etcd_leader_host().unwrap_or_else(|| "cp-1".into());
        let range = EtcdRequest::Range { key: "/registry/".into(), prefix: true, limit: 1 };
        let revision = match self.etcdctl(&host, range).await? {
            EtcdResponse::Range { revision, .. } => revision,
            other => return Err(format!("{host}: unexpected answer to a range: {other:?}")),
        };
        self.etcdctl(&host, EtcdRequest::Compact { revision }).await?;
        let detail = format!("compacted revision {revision}");
        Ok(detail)
    }

    /// `etcdctl defrag --cluster`: every member, one after the other, shrinks its database
    /// file to the bytes in use. A member that fails is reported and the others are still
    /// defragmented; the command fails if any did (etcdctl/ctlv3/command/defrag_command.go).
    pub async fn etcd_defrag(&self) -> Result<String, String> {
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for host in self.control_plane_hosts() {
            match self.etcdctl(&host, EtcdRequest::Defragment).await {
                Ok(EtcdResponse::Defragment { db_size_bytes }) => {
                    done.push(format!("{host} {db_size_bytes} bytes"))
                }
                Ok(other) => failed.push(format!("{host}: unexpected answer to defragment: {other:?}")),
                Err(e) => failed.push(format!("Failed to defragment etcd member[{host}] ({e})")),
            }
        }
        let detail = format!("defragmented: {}", done.join(", "));
        if failed.is_empty() {
            Ok(detail)
        } else {
            Err(format!("{}; {detail}", failed.join("; ")))
        }
    }

    /// `etcdctl alarm disarm`: every NOSPACE alarm goes, through raft. Sent to the etcd
    /// leader (cp-1 if none is known).
    pub async fn etcd_alarm_disarm(&self) -> Result<String, String> {
        let host = self.etcd_leader_host().unwrap_or_else(|| "cp-1".into());
        match self.etcdctl(&host, EtcdRequest::AlarmDisarm).await? {
            EtcdResponse::Alarms { nospace } if nospace.is_empty() => Ok(format!("disarmed via {host}")),
            other => Err(format!("{host}: unexpected answer to alarm disarm: {other:?}")),
        }
    }

    fn etcd_member_id(&self, host: &str) -> Result<u64, String> {
        host.strip_prefix("cp-")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n >= 1 && *n <= self.config.control_plane_hosts.max(1) as u64)
            .ok_or_else(|| format!("{host} runs no etcd member (members run on cp-1..cp-N)"))
    }

    /// The host whose process holds a leader-election Lease in kube-system
    /// (`kube-controller-manager`, `kube-scheduler`), from the committed state.
    pub fn lease_holder_host(&self, lease: &str) -> Option<String> {
        let key = kubesim_model::api::ObjectKey::new(kubesim_model::api::Kind::Lease, "kube-system", lease);
        self.state(|s| {
            let holder = s.get(&key)?.as_lease()?.spec.holder_identity.clone()?;
            Some(holder.split('_').next().unwrap_or_default().to_string())
        })
    }

    /// Cuts the network between groups; hosts not named form one more group.
    pub fn partition(&mut self, groups: &[Vec<String>]) -> Result<(), String> {
        let mut group_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (g, hosts) in groups.iter().enumerate() {
            for h in hosts {
                self.host(h)?;
                group_of.insert(h.as_str(), g);
            }
        }
        let rest = groups.len();
        let group = |h: &str| group_of.get(h).copied().unwrap_or(rest);
        for (a, ha) in &self.hosts {
            for (b, hb) in &self.hosts {
                if group(a) != group(b) {
                    self.net.set_blocked(ha.ip, hb.ip, true);
                }
            }
        }
        let detail = groups.iter().map(|g| format!("[{}]", g.join(","))).collect::<Vec<_>>().join(" ");
        self.fault("partition", &detail);
        Ok(())
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.net.unblock_all();
        self.fault("heal", "");
    }

    fn fault(&self, fault: &str, detail: &str) {
        self.trace.lock().expect("trace lock").record(&TraceRecord::Fault {
            t: now().as_millis(),
            fault: fault.into(),
            detail: detail.into(),
        });
    }

    /// Records a timeline action in the trace.
    pub fn action(&self, action: &str, detail: &str) {
        self.trace.lock().expect("trace lock").record(&TraceRecord::Action {
            t: now().as_millis(),
            action: action.into(),
            detail: detail.into(),
        });
    }

    /// One API call from the scenario's kubectl host.
    pub async fn api(&self, req: ApiRequest) -> ApiResult {
        let (tx, rx) = oneshot::channel();
        let tag = self.next_tag.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.pending.lock().expect("pending lock").insert(tag, tx);
        self.net.inject(self.kubectl, Box::new(Input::<Value>::Local { tag, request: req }));
        rx.await.unwrap_or_else(|_| Err(unavailable("kubectl host is down")))
    }

    /// One API call through a given control-plane host's API server (kubectl with
    /// `--server` pointing at it), from the kubectl host.
    pub async fn api_via(&self, host: &str, req: ApiRequest) -> ApiResult {
        let host = if host == "isolated" {
            self.last_isolated.lock().expect("isolated lock").clone().unwrap_or_default()
        } else {
            host.to_string()
        };
        let index = self.control_plane_hosts().iter().position(|h| *h == host).ok_or_else(|| ApiError {
            code: 400,
            reason: "BadRequest",
            message: format!("{host:?} is not a control-plane host"),
        })?;
        let n = self.one_shot_clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let addr = SocketAddr::new(host_ip(100), 41000 + (n % 20000) as u16);
        let api = SocketAddr::new(host_ip(index as u32 + 1), APISERVER_PORT);
        let pending = Pending::default();
        let (tx, rx) = oneshot::channel();
        pending.lock().expect("pending lock").insert(1, tx);
        let ep = self.net.bind(addr);
        let task = madsim::task::spawn(async move {
            let hooks = Hooks { records: Box::new(|_, _| {}), local: answer(pending) };
            let t = now();
            run(ep, process_rng(n as u64), None, hooks, |_| {
                Kubectl::new(vec![api], client_id(100, 2 + n), t, Duration::ZERO)
            })
            .await
        });
        self.net.inject(addr, Box::new(Input::<Value>::Local { tag: 1, request: req }));
        let result = rx.await.unwrap_or_else(|_| Err(unavailable("kubectl host is down")));
        task.abort();
        result
    }

    /// Reads the committed cluster state.
    pub fn state<R>(&self, f: impl FnOnce(&Cache) -> R) -> R {
        f(self.trace.lock().expect("trace lock").state())
    }

    /// Reads the committed state and the leader changes so far.
    pub fn observe<R>(&self, f: impl FnOnce(&Cache, &[crate::trace::Leadership]) -> R) -> R {
        let t = self.trace.lock().expect("trace lock");
        f(t.state(), t.leaders())
    }

    /// Lets madsim drop the bookkeeping of finished tasks (it grows in long runs).
    pub fn prune(&self) {
        let _ = self.handle.metrics().num_tasks();
    }
}

fn unavailable(message: &str) -> ApiError {
    ApiError { code: 503, reason: "ServiceUnavailable", message: message.into() }
}

/// Hands the kubectl process's answers to whoever waits for them.
fn answer(pending: Pending) -> Box<dyn FnMut(u64, ApiResult) + Send> {
    Box::new(move |tag, result| {
        if let Some(tx) = pending.lock().expect("pending lock").remove(&tag) {
            let _ = tx.send(result);
        }
    })
}

/// Every control-plane host's API server, starting at `start` (mod the count): clients
/// behind the control-plane load balancer spread over them and fail over in this order.
fn api_servers(cp_count: u32, start: usize) -> Vec<SocketAddr> {
    let n = cp_count.max(1) as usize;
    (0..n).map(|k| SocketAddr::new(host_ip(((start + k) % n) as u32 + 1), APISERVER_PORT)).collect()
}

fn client_id(host_index: u32, slot: u32) -> u64 {
    (host_index as u64) << 8 | slot as u64
}

/// The component behind a client id ([`client_id`]): the scenario's kubectl on host 100,
/// the scheduler (slot 1) and controller manager (slot 2) on control-plane hosts, else a
/// kubelet.
fn component_of(client: u64, cp_count: u32) -> &'static str {
    match ((client >> 8) as u32, client & 0xff) {
        (100, _) => "kubectl",
        (h, 1) if h <= cp_count => "kube-scheduler",
        (h, 2) if h <= cp_count => "kube-controller-manager",
        _ => "kubelet",
    }
}

/// Sleeps until simulated time `t`.
pub async fn sleep_until(t: SimTime) {
    let d = t.as_duration().saturating_sub(now().as_duration());
    if !d.is_zero() {
        madsim::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a control plane for a while and returns a weak handle on its trace sink, which
    /// every process's hooks hold: it is freed only if every process task was.
    fn run_and_watch_the_sink(shutdown: bool) -> std::sync::Weak<Mutex<TraceSink>> {
        simulate(7, move || async move {
            let sink = Arc::new(Mutex::new(TraceSink::new(None)));
            let mut world = World::start(WorldConfig::new(7), sink.clone()).await;
            madsim::time::sleep(Duration::from_secs(20)).await;
            if shutdown {
                world.shutdown();
            }
            Arc::downgrade(&sink)
        })
    }

    #[test]
    fn a_finished_simulation_frees_every_process() {
        assert!(run_and_watch_the_sink(true).upgrade().is_none(), "a process task outlived its runtime");
    }

    /// The check above can fail: without the shutdown the tasks and the network keep
    /// each other (and the sink) alive.
    #[test]
    fn without_shutdown_the_processes_leak() {
        assert!(run_and_watch_the_sink(false).upgrade().is_some());
    }
}

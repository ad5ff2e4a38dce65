//! The simulated world: hosts on madsim, the processes on them, the network between them,
//! and the faults that can be done to them.
//!
//! Control-plane host cp-1 runs the etcd member, the API server, the scheduler and the
//! controller manager; each worker runs a kubelet; one more host, `kubectl`, carries the
//! scenario's own API calls. Every process is a model state machine driven by a loop
//! here; only etcd's store survives a restart (it is the member's disk).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use kubesim_model::apiserver::{ApiInput, ApiOutput, ApiServer, ApiServerConfig};
use kubesim_model::client::{ApiError, ApiRequest, ApiResult, Cache, Component, Tagged};
use kubesim_model::controllers::{ControllerManager, ControllerManagerConfig};
use kubesim_model::etcd::{Disk, EtcdRequest, EtcdResponse, MemberConfig, PeerMessage, RaftMember};
use kubesim_model::host::HostState;
use kubesim_model::kubelet::{Kubelet, KubeletConfig};
use kubesim_model::leaderelection::{ComponentFactory, LeaderElected, LeaderElectionConfig};
use kubesim_model::scheduler::{Scheduler, SchedulerConfig};
use kubesim_model::time::SimTime;
use madsim::runtime::{Handle, NodeHandle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::client::{now, ApiConnection, Delivery};
use crate::messages::{ClientId, FromApi, FromEtcd, ToApi, ToEtcd, Value};
use crate::net::{Endpoint, Network, Payload};
use crate::trace::{TraceRecord, TraceSink};

const ETCD_PORT: u16 = 2379;
const APISERVER_PORT: u16 = 6443;
const KUBELET_PORT: u16 = 10250;
const SCHEDULER_PORT: u16 = 10259;
const CONTROLLER_MANAGER_PORT: u16 = 10257;
const KUBECTL_PORT: u16 = 40000;
/// kube-apiserver --etcd-compaction-interval default.
const ETCD_COMPACTION_INTERVAL: Duration = Duration::from_secs(300);
/// How often an API server checks its etcd (its /readyz etcd check and the watch
/// stream's liveness).
const ETCD_PING_INTERVAL: Duration = Duration::from_secs(1);
/// kube-apiserver --etcd-healthcheck-timeout (2 s): unanswered this long, etcd is
/// unhealthy and the server not ready.
const ETCD_HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// A watch whose member has not answered for this long is given up and relisted.
const ETCD_WATCH_GIVE_UP: Duration = Duration::from_secs(5);
/// A cache that has not listed in this long lists again.
const RELIST_RETRY: Duration = Duration::from_secs(5);
/// Clients wait this long after their process starts before registering, so that the
/// API server on cp-1 (started at the same instant) has bound its port.
const STARTUP_DELAY: Duration = Duration::from_millis(10);

/// A client's API rate limit (client-go QPS and burst).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientRate {
    pub qps: f64,
    pub burst: u32,
}

/// One worker node to start.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    pub kubelet: KubeletConfig,
    /// kubelet --kube-api-qps / --kube-api-burst (KubeletConfiguration kubeAPIQPS 50,
    /// kubeAPIBurst 100 since v1.27).
    pub rate: ClientRate,
}

/// Everything needed to build the world.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    pub seed: u64,
    /// One-way network latency between hosts.
    pub latency: Duration,
    pub control_plane_hosts: usize,
    pub scheduler: SchedulerConfig,
    /// KubeSchedulerConfiguration clientConnection qps 50, burst 100.
    pub scheduler_rate: ClientRate,
    pub controller_manager: ControllerManagerConfig,
    /// kube-controller-manager --kube-api-qps 20, --kube-api-burst 30.
    pub controller_manager_rate: ClientRate,
    pub workers: Vec<WorkerSpec>,
    /// etcd --snapshot-count (100,000).
    pub etcd_snapshot_count: u64,
}

impl WorldConfig {
    pub fn new(seed: u64) -> Self {
        WorldConfig {
            seed,
            latency: Duration::from_millis(1),
            control_plane_hosts: 3,
            scheduler: SchedulerConfig::default(),
            scheduler_rate: ClientRate { qps: 50.0, burst: 100 },
            controller_manager: ControllerManagerConfig::default(),
            controller_manager_rate: ClientRate { qps: 20.0, burst: 30 },
            workers: Vec::new(),
            etcd_snapshot_count: kubesim_model::etcd::config::DEFAULT_SNAPSHOT_COUNT,
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
    rt.block_on(body())
}

/// A host's observable state and a version that changes with it.
pub type SharedHostState = Arc<Mutex<(u64, HostState)>>;

#[derive(Clone)]
struct HostInfo {
    ip: IpAddr,
    state: SharedHostState,
    /// The host's processes by name (`etcd`, `kube-apiserver`, `kubelet`, ...).
    processes: BTreeMap<&'static str, NodeHandle>,
}

/// The live world, used from the orchestrating task inside [`simulate`].
pub struct World {
    handle: Handle,
    net: Network,
    config: WorldConfig,
    hosts: BTreeMap<String, HostInfo>,
    down: BTreeSet<String>,
    trace: Arc<Mutex<TraceSink>>,
    kubectl: mpsc::UnboundedSender<(ApiRequest, oneshot::Sender<ApiResult>)>,
    next_index: u32,
    etcd: EtcdShared,
    /// The host the last isolateMember / isolateEtcdLeader cut off (`via: isolated`).
    last_isolated: Mutex<Option<String>>,
    one_shot_clients: std::sync::atomic::AtomicU32,
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

impl World {
    /// Builds every host and starts its processes.
    pub async fn start(config: WorldConfig, trace: Arc<Mutex<TraceSink>>) -> World {
        let (tx, rx) = mpsc::unbounded();
        let mut world = World {
            handle: Handle::current(),
            net: Network::new(config.latency),
            config: config.clone(),
            hosts: BTreeMap::new(),
            down: BTreeSet::new(),
            trace,
            kubectl: tx,
            next_index: 1000,
            etcd: EtcdShared::default(),
            last_isolated: Mutex::new(None),
            one_shot_clients: std::sync::atomic::AtomicU32::new(0),
        };
        let cp_count = config.control_plane_hosts.max(1) as u32;
        // Stacked etcd, as kubeadm sets it up: one member on every control-plane host.
        let peers: BTreeMap<u64, SocketAddr> =
            (1..=cp_count).map(|i| (i as u64, SocketAddr::new(host_ip(i), ETCD_PORT))).collect();
        for i in 1..=cp_count {
            let host = format!("cp-{i}");
            let ip = host_ip(i);
            world.hosts.insert(
                host.clone(),
                HostInfo { ip, state: SharedHostState::default(), processes: BTreeMap::new() },
            );
            let etcd_addr = SocketAddr::new(ip, ETCD_PORT);
            let mut member = MemberConfig::new(i as u64, peers.keys().copied().collect());
            member.snapshot_count = config.etcd_snapshot_count;
            let (net, trace, shared, peers) =
                (world.net.clone(), world.trace.clone(), world.etcd.clone(), peers.clone());
            let (seed, h) = (seed_for(config.seed, "etcd", i), host.clone());
            world.add_process(&host, "etcd", move || {
                etcd_process(
                    net.bind(etcd_addr),
                    member.clone(),
                    peers.clone(),
                    shared.clone(),
                    trace.clone(),
                    seed,
                    h.clone(),
                )
            });
            // kubeadm: --etcd-servers=https://127.0.0.1:2379, the member on the same host.
            let local_api = SocketAddr::new(ip, APISERVER_PORT);
            let (net, seed) = (world.net.clone(), seed_for(config.seed, "kube-apiserver", i));
            world.add_process(&host, "kube-apiserver", move || {
                apiserver_process(net.bind(local_api), etcd_addr, seed)
            });
            // kubeadm points the scheduler and the controller manager at the API server on
            // their own host.
            let (net, cfg) = (world.net.clone(), config.clone());
            let le = LeaderElectionConfig::new("kube-scheduler", "default-scheduler", &host);
            // The scheduler's attempts go to the trace (for `kubesim explain`).
            let records = (world.trace.clone(), host.clone());
            world.add_process(&host, "kube-scheduler", move || {
                let (sched, le) = (cfg.scheduler.clone(), le.clone());
                component_process(
                    net.bind(SocketAddr::new(ip, SCHEDULER_PORT)),
                    vec![local_api],
                    client_id(i, 1),
                    seed_for(cfg.seed, "kube-scheduler", i),
                    cfg.scheduler_rate,
                    Box::new(move || {
                        let sched = sched.clone();
                        let make: ComponentFactory =
                            Box::new(move || Box::new(Scheduler::new(sched.clone())) as Box<dyn Component>);
                        Box::new(LeaderElected::new(le.clone(), make)) as Box<dyn Component>
                    }),
                    None,
                    Some(records.clone()),
                )
            });
            let (net, cfg) = (world.net.clone(), config.clone());
            let le = LeaderElectionConfig::new("kube-controller-manager", "kube-controller-manager", &host);
            world.add_process(&host, "kube-controller-manager", move || {
                let (kcm, le) = (cfg.controller_manager.clone(), le.clone());
                component_process(
                    net.bind(SocketAddr::new(ip, CONTROLLER_MANAGER_PORT)),
                    vec![local_api],
                    client_id(i, 2),
                    seed_for(cfg.seed, "kube-controller-manager", i),
                    cfg.controller_manager_rate,
                    Box::new(move || {
                        let kcm = kcm.clone();
                        let make: ComponentFactory = Box::new(move || {
                            Box::new(ControllerManager::new(kcm.clone())) as Box<dyn Component>
                        });
                        Box::new(LeaderElected::new(le.clone(), make)) as Box<dyn Component>
                    }),
                    None,
                    None,
                )
            });
        }
        // The scenario's own client, like kubectl on an operator's laptop. It runs as a task
        // of the orchestrator's, fed by a channel, so it is never restarted.
        let kubectl_ip = host_ip(100);
        world.hosts.insert(
            "kubectl".into(),
            HostInfo { ip: kubectl_ip, state: SharedHostState::default(), processes: BTreeMap::new() },
        );
        let kubectl_ep = world.net.bind(SocketAddr::new(kubectl_ip, KUBECTL_PORT));
        madsim::task::spawn(kubectl_process(kubectl_ep, api_servers(cp_count, 0), rx));
        for w in config.workers {
            world.add_worker(w);
        }
        world
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
        let state = SharedHostState::default();
        self.hosts.insert(name.clone(), HostInfo { ip, state: state.clone(), processes: BTreeMap::new() });
        let net = self.net.clone();
        self.add_process(&name, "kubelet", move || {
            let kc = spec.kubelet.clone();
            component_process(
                net.bind(SocketAddr::new(ip, KUBELET_PORT)),
                apis.clone(),
                client_id(index, 1),
                seed,
                spec.rate,
                Box::new(move || Box::new(Kubelet::new(kc.clone(), now())) as Box<dyn Component>),
                Some(state.clone()),
                None,
            )
        });
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

    fn process(&self, host: &str, process: &str) -> Result<&NodeHandle, String> {
        let h = self.host(host)?;
        h.processes.get(process).ok_or_else(|| {
            let names: Vec<&str> = h.processes.keys().copied().collect();
            format!("host {host:?} runs no process {process:?} (it runs: {})", names.join(", "))
        })
    }

    /// Changes what a host's kubelet observes of its machine (a host fault).
    pub fn set_host_state(&mut self, host: &str, f: impl FnOnce(&mut HostState)) -> Result<(), String> {
        let h = self.host(host)?;
        let mut st = h.state.lock().expect("host state lock");
        f(&mut st.1);
        st.0 += 1;
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
        self.etcd.disks.lock().expect("disks lock").insert(id, Disk::new());
        self.handle.restart(node);
        self.fault("lose-disk", host);
        Ok(())
    }

    /// Makes every fsync of a member's disk take `delay` (zero restores it).
    pub fn slow_etcd_disk(&mut self, host: &str, delay: Duration) -> Result<(), String> {
        let id = self.etcd_member_id(host)?;
        self.etcd.disk_delay.lock().expect("disk delay lock").insert(id, delay);
        self.fault("slow-disk", &format!("{host} fsync {}", kubesim_model::time::go_duration(delay)));
        Ok(())
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
        let down =
            || ApiError { code: 503, reason: "ServiceUnavailable", message: "kubectl host is down".into() };
        let (tx, rx) = oneshot::channel();
        if self.kubectl.unbounded_send((req, tx)).is_err() {
            return Err(down());
        }
        rx.await.unwrap_or_else(|_| Err(down()))
    }

    /// One API call through a given control-plane host's API server (kubectl with
    /// `--server` pointing at it), from the kubectl host; a 10 s client timeout.
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
        let port = 41000 + (n % 20000) as u16;
        let mut ep = self.net.bind(SocketAddr::new(host_ip(100), port));
        let api = SocketAddr::new(host_ip(index as u32 + 1), APISERVER_PORT);
        let mut conn = ApiConnection::new(ep.sender(), vec![api], client_id(100, 2 + n), 0.0, 0);
        conn.register(Vec::new());
        conn.enqueue(vec![Tagged { tag: 1, request: req }]);
        conn.flush();
        loop {
            let mut deliveries = Vec::new();
            if let Some((msg, _)) = ep.recv_until(Some(conn.next_deadline())).await {
                if let Some(m) = from_api(msg) {
                    conn.on_message(m, &mut deliveries);
                }
            }
            conn.on_timer(&mut deliveries);
            for d in deliveries {
                if let Delivery::Response(1, r) = d {
                    return r;
                }
            }
        }
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

/// Every control-plane host's API server, starting at `start` (mod the count): clients
/// behind the control-plane load balancer spread over them and fail over in this order.
fn api_servers(cp_count: u32, start: usize) -> Vec<SocketAddr> {
    let n = cp_count.max(1) as usize;
    (0..n).map(|k| SocketAddr::new(host_ip(((start + k) % n) as u32 + 1), APISERVER_PORT)).collect()
}

fn client_id(host_index: u32, slot: u32) -> ClientId {
    (host_index as u64) << 8 | slot as u64
}

/// Sleeps until simulated time `t`.
pub async fn sleep_until(t: SimTime) {
    let d = t.as_duration().saturating_sub(now().as_duration());
    if !d.is_zero() {
        madsim::time::sleep(d).await;
    }
}

type Factory = Box<dyn Fn() -> Box<dyn Component> + Send>;

fn from_api(p: Payload) -> Option<FromApi> {
    p.downcast::<FromApi>().ok().map(|b| *b)
}

/// How often a node component checks its host's state.
const HOST_POLL_PERIOD: Duration = Duration::from_secs(1);

/// Drives one model component: watch events and responses in, requests out, timers;
/// `records` takes the component's trace records (the scheduler's attempts).
#[allow(clippy::too_many_arguments)]
async fn component_process(
    mut ep: Endpoint,
    apis: Vec<SocketAddr>,
    client: ClientId,
    seed: u64,
    rate: ClientRate,
    make: Factory,
    host: Option<SharedHostState>,
    records: Option<(Arc<Mutex<TraceSink>>, String)>,
) {
    let mut comp = make();
    let mut host_version = 0;
    // Re-seeded from the start time so a restarted process does not repeat its choices.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ now().as_millis().wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut conn = ApiConnection::new(ep.sender(), apis, client, rate.qps, rate.burst);
    // Let the API server bind its port first (it starts on cp-1 at the same instant).
    madsim::time::sleep(STARTUP_DELAY).await;
    conn.register(comp.watches());
    let mut wake = Some(now());
    let mut retry: Option<SimTime> = None;
    let mut deliveries = Vec::new();
    loop {
        let mut deadline = conn.next_deadline();
        for t in [wake, retry].into_iter().flatten() {
            deadline = deadline.min(t);
        }
        if host.is_some() {
            // A node component looks at its host every second (the kubelet's PLEG relist
            // period), so a host fault reaches it within a second.
            let p = HOST_POLL_PERIOD.as_millis() as u64;
            deadline = deadline.min(SimTime((now().as_millis() / p + 1) * p));
        }
        if let Some((msg, _)) = ep.recv_until(Some(deadline)).await {
            if let Some(m) = from_api(msg) {
                conn.on_message(m, &mut deliveries);
            }
            while let Some((m, _)) = ep.try_recv() {
                if let Some(m) = from_api(m) {
                    conn.on_message(m, &mut deliveries);
                }
            }
        }
        conn.on_timer(&mut deliveries);
        let t = now();
        let mut due = wake.is_some_and(|w| w <= t);
        if let Some(h) = &host {
            let h = h.lock().expect("host state lock");
            if h.0 != host_version {
                host_version = h.0;
                comp.on_host(&h.1, t);
                due = true;
            }
        }
        if !deliveries.is_empty() || due {
            for d in deliveries.drain(..) {
                match d {
                    Delivery::Event(ev) => comp.on_event(&ev, t),
                    Delivery::Response(tag, r) => comp.on_response(tag, &r, t),
                }
            }
            let out = comp.tick(t, &mut rng);
            if let Some((trace, host)) = records.as_ref().filter(|_| !out.records.is_empty()) {
                let mut sink = trace.lock().expect("trace lock");
                for r in out.records {
                    sink.record(&TraceRecord::of_component(t, host, r));
                }
            }
            conn.enqueue(out.requests);
            // Never ask to be woken in the past: time must move on.
            wake = out.wake_at.map(|w| w.max(t + Duration::from_millis(1)));
        }
        retry = conn.flush();
    }
}

/// What the API server process knows of one client's connection.
struct ClientEntry {
    addr: SocketAddr,
    /// The registration epoch; messages of older epochs are stale.
    epoch: u64,
    /// Batches sent in this epoch (the client compares it with what it received).
    sent: u64,
    /// The watch cache relisted and dropped this client's watches: its next ping is told
    /// so, and it registers again.
    stale: bool,
}

/// The API server process: clients' requests and watches in, etcd round trips out.
async fn apiserver_process(mut ep: Endpoint, etcd: SocketAddr, seed: u64) {
    enum In {
        Client(ToApi),
        Etcd(FromEtcd),
    }
    fn convert(p: Payload) -> Option<In> {
        match p.downcast::<ToApi>() {
            Ok(m) => Some(In::Client(*m)),
            Err(p) => p.downcast::<FromEtcd>().ok().map(|m| In::Etcd(*m)),
        }
    }
    // etcd binds at the instant its host starts: let it.
    madsim::time::sleep(STARTUP_DELAY / 2).await;
    // `seed` is this API server's own (uids and generated names must not repeat between
    // API servers).
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ now().as_millis().wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut api = ApiServer::new(ApiServerConfig::default());
    let mut clients: BTreeMap<ClientId, ClientEntry> = BTreeMap::new();
    let mut outputs = Vec::new();
    let t0 = now();
    outputs.extend(api.start(t0, &mut rng));
    let mut started = t0;
    // kube-apiserver --etcd-compaction-interval (5m): each tick compacts to the revision
    // seen at the previous tick (storage/etcd3/compact.go).
    let mut next_compaction = t0 + ETCD_COMPACTION_INTERVAL;
    let mut revision_seen: i64 = 0;
    let mut compact_to: i64 = 0;
    let mut next_etcd_ping = t0 + ETCD_PING_INTERVAL;
    let mut etcd_pings_unanswered = 0;
    loop {
        let mut inbox = Vec::new();
        if outputs.is_empty() {
            if let Some((m, from)) = ep.recv_until(Some(next_compaction.min(next_etcd_ping))).await {
                inbox.extend(convert(m).map(|m| (m, from)));
            }
        }
        let t = now();
        if t >= next_compaction {
            next_compaction = t + ETCD_COMPACTION_INTERVAL;
            if compact_to > 0 {
                let request = EtcdRequest::Compact { revision: compact_to };
                ep.send(etcd, ToEtcd { requests: vec![(0, request)], ping: false });
            }
            compact_to = revision_seen;
        }
        let mut relist = false;
        if t >= next_etcd_ping {
            next_etcd_ping = t + ETCD_PING_INTERVAL;
            etcd_pings_unanswered += 1;
            // Two pings unanswered: the watch stream is gone with its member. A cache
            // that has not listed in time retries too.
            let silent = ETCD_PING_INTERVAL * etcd_pings_unanswered;
            relist =
                silent > ETCD_WATCH_GIVE_UP || (!api.is_ready() && t.saturating_sub(started) >= RELIST_RETRY);
            ep.send(etcd, ToEtcd { requests: Vec::new(), ping: true });
        }
        while let Some((m, from)) = ep.try_recv() {
            inbox.extend(convert(m).map(|m| (m, from)));
        }
        for (m, _) in &inbox {
            if let In::Etcd(FromEtcd { pong: Some(watching), .. }) = m {
                etcd_pings_unanswered = 0;
                relist |= !watching && api.is_ready();
            }
        }
        if relist {
            // The cacher relists and terminates its watchers (cacher.go
            // terminateAllWatchers): every client re-registers and relists.
            for (client, entry) in clients.iter_mut() {
                outputs.extend(api.handle(ApiInput::ClientGone { client: *client }, t, &mut rng));
                entry.stale = true;
            }
            outputs.extend(api.start(t, &mut rng));
            started = t;
            etcd_pings_unanswered = 0;
        }
        let mut pongs = Vec::new();
        for (msg, from) in inbox {
            let client_epoch = match &msg {
                In::Client(ToApi::Hello { client, epoch })
                | In::Client(ToApi::Requests { client, epoch, .. })
                | In::Client(ToApi::Watch { client, epoch, .. })
                | In::Client(ToApi::Ping { client, epoch, .. }) => Some((*client, *epoch)),
                In::Etcd(_) => None,
            };
            if let Some((client, epoch)) = client_epoch {
                // A newer epoch (re)registers the client; messages of an older epoch are
                // stale.
                match clients.get(&client).map(|c| c.epoch) {
                    Some(e) if e > epoch => continue,
                    Some(e) if e == epoch => {}
                    known => {
                        if known.is_some() {
                            outputs.extend(api.handle(ApiInput::ClientGone { client }, t, &mut rng));
                        }
                        // Only a Hello starts an epoch with its watches to follow; any
                        // other first message means the server lost the registration
                        // (it restarted), so the client must register again.
                        let stale = !matches!(msg, In::Client(ToApi::Hello { .. }));
                        clients.insert(client, ClientEntry { addr: from, epoch, sent: 0, stale });
                    }
                }
            }
            match msg {
                In::Client(ToApi::Hello { .. }) => {}
                In::Client(ToApi::Requests { client, requests, .. }) => {
                    for Tagged { tag, request } in requests {
                        outputs.extend(api.handle(
                            ApiInput::ClientRequest { client, tag, request },
                            t,
                            &mut rng,
                        ));
                    }
                }
                In::Client(ToApi::Watch { client, watch_id, spec, .. }) => {
                    outputs.extend(api.handle(ApiInput::Watch { client, watch_id, spec }, t, &mut rng));
                }
                In::Client(ToApi::Ping { client, .. }) => pongs.push((client, from)),
                In::Etcd(FromEtcd { responses, events, .. }) => {
                    if let Some(e) = events.last() {
                        revision_seen = revision_seen.max(e.kv.mod_revision);
                    }
                    if !events.is_empty() {
                        outputs.extend(api.handle(ApiInput::EtcdEvents(events), t, &mut rng));
                    }
                    for (id, response) in responses {
                        outputs.extend(api.handle(ApiInput::EtcdResponse { id, response }, t, &mut rng));
                    }
                }
            }
        }
        // Group outputs: one batch per client, one message to etcd.
        type Batch = (Vec<(u64, ApiResult)>, BTreeMap<u64, Vec<kubesim_model::client::WatchEvent>>);
        let mut batches: BTreeMap<ClientId, Batch> = BTreeMap::new();
        let mut to_etcd = Vec::new();
        for o in outputs.drain(..) {
            match o {
                ApiOutput::Response { client, tag, result } => {
                    batches.entry(client).or_default().0.push((tag, result))
                }
                ApiOutput::WatchEvents { client, watch_id, events } => {
                    batches.entry(client).or_default().1.entry(watch_id).or_default().extend(events)
                }
                ApiOutput::ToEtcd { id, request } => to_etcd.push((id, request)),
            }
        }
        if !to_etcd.is_empty() {
            ep.send(etcd, ToEtcd { requests: to_etcd, ping: false });
        }
        for (client, (responses, events)) in batches {
            let Some(c) = clients.get_mut(&client) else { continue };
            c.sent += 1;
            let msg = FromApi::Batch {
                epoch: c.epoch,
                seq: c.sent,
                responses,
                events: events.into_iter().collect(),
            };
            ep.send(c.addr, msg);
        }
        // kube-apiserver /readyz: the watch cache has listed and etcd answers pings.
        let ready = api.is_ready() && ETCD_PING_INTERVAL * etcd_pings_unanswered <= ETCD_HEALTHCHECK_TIMEOUT;
        if std::env::var_os("KUBESIM_DEBUG_API").is_some() && !pongs.is_empty() {
            eprintln!(
                "API {} {:?} ready={ready} cache={} unanswered={etcd_pings_unanswered} pongs={}",
                t,
                ep.addr(),
                api.is_ready(),
                pongs.len()
            );
        }
        for (client, from) in pongs {
            let msg = match clients.get(&client) {
                // A stale client's watches were dropped: `known: false` makes it relist.
                Some(c) => FromApi::Pong { epoch: c.epoch, known: !c.stale, sent: c.sent, ready },
                None => FromApi::Pong { epoch: 0, known: false, sent: 0, ready },
            };
            ep.send(from, msg);
        }
    }
}

/// What the etcd processes share with the world: each member's disk (it survives a
/// restart; a lost disk is replaced by a blank one), each host's fsync latency, and the
/// leader as the members report it.
#[derive(Clone, Default)]
pub struct EtcdShared {
    disks: Arc<Mutex<BTreeMap<u64, Disk<Value>>>>,
    disk_delay: Arc<Mutex<BTreeMap<u64, Duration>>>,
    /// (term, leader member id) of the newest leader any member reported.
    leader: Arc<Mutex<Option<(u64, u64)>>>,
}

impl EtcdShared {
    fn disk(&self, id: u64) -> Disk<Value> {
        self.disks.lock().expect("disks lock").entry(id).or_default().clone()
    }
}

/// etcd's monitorLeader (v3rpc/interceptor.go): watch streams that asked for a leader are
/// cancelled after maxNoLeaderCnt (3) election timeouts without one.
const MAX_NO_LEADER_CHECKS: u32 = 3;

/// One etcd member: raft-rs through kubesim-model's `RaftMember`, its disk kept by the
/// world. Peers and API servers reach it on one endpoint; committed writes go to the
/// trace (once per revision, from whichever member applies it first) and to the API
/// servers that watch this member.
async fn etcd_process(
    mut ep: Endpoint,
    config: MemberConfig,
    peers: BTreeMap<u64, SocketAddr>,
    shared: EtcdShared,
    trace: Arc<Mutex<TraceSink>>,
    seed: u64,
    host: String,
) {
    let id = config.id;
    let election = config.election_timeout();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ now().as_millis().wrapping_mul(0x9E37_79B9_7F4A_7C15));
    // Each etcd process's 100 ms raft ticker starts when the process does: members' ticks
    // are not in phase (with equal randomized timeouts, in-phase ticks would make two
    // followers campaign at the same instant and split the vote every time).
    let phase = rng.gen_range(0..config.tick_interval.as_millis() as u64);
    madsim::time::sleep(Duration::from_millis(phase.max(1))).await;
    let mut member = RaftMember::recover(config, shared.disk(id), now(), &mut rng);
    let mut watchers: BTreeSet<SocketAddr> = BTreeSet::new();
    // Client requests in flight: member request id -> (API server, its id).
    let mut requests: BTreeMap<u64, (SocketAddr, u64, bool)> = BTreeMap::new();
    let mut next_request: u64 = 0;
    let mut next_leader_check = now() + election;
    let mut no_leader_checks = 0;
    loop {
        let wake = member.next_tick_at().min(next_leader_check);
        let mut inbox = Vec::new();
        if let Some(m) = ep.recv_until(Some(wake)).await {
            inbox.push(m);
            while let Some(m) = ep.try_recv() {
                inbox.push(m);
            }
        }
        let t = now();
        let mut replies: BTreeMap<SocketAddr, FromEtcd> = BTreeMap::new();
        for (payload, from) in inbox {
            let payload = match payload.downcast::<PeerMessage<Value>>() {
                Ok(m) => {
                    member.step(*m, t, &mut rng);
                    continue;
                }
                Err(p) => p,
            };
            let Ok(msg) = payload.downcast::<ToEtcd>() else { continue };
            if msg.ping {
                replies.entry(from).or_default().pong = Some(watchers.contains(&from));
            }
            for (api_id, req) in msg.requests {
                next_request += 1;
                let watch = matches!(req, EtcdRequest::WatchFrom { .. });
                requests.insert(next_request, (from, api_id, watch));
                member.request(next_request, req, t);
            }
        }
        if t >= member.next_tick_at() {
            member.tick(t, &mut rng);
        }
        if t >= next_leader_check {
            next_leader_check = t + election;
            no_leader_checks = if member.status().leader.is_none() { no_leader_checks + 1 } else { 0 };
            if no_leader_checks >= MAX_NO_LEADER_CHECKS {
                watchers.clear();
            }
        }
        let out = member.ready(t, &mut rng);
        let delay = shared.disk_delay.lock().expect("disk delay lock").get(&id).copied().unwrap_or_default();
        let wrote = out.disk_writes.entries + out.disk_writes.hard_states + out.disk_writes.snapshots;
        if wrote > 0 && !delay.is_zero() {
            // A slow disk: the fsync holds everything that follows it.
            madsim::time::sleep(delay).await;
        }
        for (rid, response) in out.responses {
            let Some((to, api_id, watch)) = requests.remove(&rid) else { continue };
            if watch && !matches!(response, EtcdResponse::Error { .. }) {
                watchers.insert(to);
            }
            replies.entry(to).or_default().responses.push((api_id, response));
        }
        if out.installed_snapshot.is_some() {
            // The store jumped revisions: watchers must resync.
            watchers.clear();
        }
        if !out.events.is_empty() {
            trace.lock().expect("trace lock").record_committed(&out.events, t);
            for w in &watchers {
                replies.entry(*w).or_default().events.extend(out.events.iter().cloned());
            }
        }
        for lc in &out.leader_changes {
            if std::env::var_os("KUBESIM_DEBUG_ETCD").is_some() {
                eprintln!("ETCD {} member {id} term {} leader {:?}", lc.at, lc.term, lc.leader);
            }
            let Some(leader) = lc.leader else { continue };
            let mut l = shared.leader.lock().expect("leader lock");
            if l.is_none_or(|(term, _)| lc.term > term) {
                *l = Some((lc.term, leader));
                let rec = TraceRecord::Leader {
                    t: lc.at.as_millis(),
                    component: "etcd".into(),
                    host: format!("cp-{leader}"),
                    term: lc.term,
                };
                trace.lock().expect("trace lock").record(&rec);
            }
        }
        for m in out.messages {
            if let Some(addr) = peers.get(&m.to) {
                ep.send(*addr, m);
            }
        }
        for (to, reply) in replies {
            ep.send(to, reply);
        }
        let _ = &host;
    }
}

/// The scenario's kubectl: one request at a time, as a person typing. Between requests
/// it keeps its connection checked (pings, load-balancer failover), as a long-lived
/// client behind the control-plane endpoint.
async fn kubectl_process(
    mut ep: Endpoint,
    apis: Vec<SocketAddr>,
    mut requests: mpsc::UnboundedReceiver<(ApiRequest, oneshot::Sender<ApiResult>)>,
) {
    let mut conn = ApiConnection::new(ep.sender(), apis, client_id(100, 1), 0.0, 0);
    madsim::time::sleep(STARTUP_DELAY).await;
    conn.register(Vec::new());
    let mut tag = 0;
    let mut idle = Vec::new();
    loop {
        let wait = conn.next_deadline().as_duration().saturating_sub(now().as_duration());
        let next = match madsim::time::timeout(wait, requests.next()).await {
            Ok(None) => return,
            Ok(Some(r)) => Some(r),
            Err(_) => None,
        };
        while let Some((msg, _)) = ep.try_recv() {
            if let Some(m) = from_api(msg) {
                conn.on_message(m, &mut idle);
            }
        }
        conn.on_timer(&mut idle);
        idle.clear();
        let Some((req, reply)) = next else { continue };
        tag += 1;
        conn.enqueue(vec![Tagged { tag, request: req }]);
        conn.flush();
        let result = loop {
            let mut deliveries = Vec::new();
            if let Some((msg, _)) = ep.recv_until(Some(conn.next_deadline())).await {
                if let Some(m) = from_api(msg) {
                    conn.on_message(m, &mut deliveries);
                }
            }
            conn.on_timer(&mut deliveries);
            let found = deliveries.into_iter().find_map(|d| match d {
                Delivery::Response(t, r) if t == tag => Some(r),
                _ => None,
            });
            if let Some(r) = found {
                break r;
            }
        };
        let _ = reply.send(result);
    }
}

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
use kubesim_model::etcd::Member;
use kubesim_model::kubelet::{Kubelet, KubeletConfig};
use kubesim_model::scheduler::{Scheduler, SchedulerConfig};
use kubesim_model::time::SimTime;
use madsim::net::{Endpoint, NetSim};
use madsim::runtime::{Handle, NodeHandle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::client::{next_until, now, only, spawn_receiver, ApiConnection, Delivery};
use crate::messages::{ClientId, FromApi, FromEtcd, ToApi, ToEtcd, Value, TAG};
use crate::trace::{TraceRecord, TraceSink};

const ETCD_PORT: u16 = 2379;
const APISERVER_PORT: u16 = 6443;
const KUBELET_PORT: u16 = 10250;
const SCHEDULER_PORT: u16 = 10259;
const CONTROLLER_MANAGER_PORT: u16 = 10257;
const KUBECTL_PORT: u16 = 40000;
/// kube-apiserver --etcd-compaction-interval default.
const ETCD_COMPACTION_INTERVAL: Duration = Duration::from_secs(300);
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
}

impl WorldConfig {
    pub fn new(seed: u64) -> Self {
        WorldConfig {
            seed,
            latency: Duration::from_millis(1),
            control_plane_hosts: 1,
            scheduler: SchedulerConfig::default(),
            scheduler_rate: ClientRate { qps: 50.0, burst: 100 },
            controller_manager: ControllerManagerConfig::default(),
            controller_manager_rate: ClientRate { qps: 20.0, burst: 30 },
            workers: Vec::new(),
        }
    }
}

/// Runs `body` inside a fresh deterministic madsim runtime seeded with `seed`.
/// Call it on a fresh OS thread per simulation (madsim keeps per-thread state).
pub fn simulate<F, Fut, T>(seed: u64, latency: Duration, body: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut config = madsim::Config::default();
    // A fixed latency keeps messages between two hosts in order, as TCP would.
    config.net.send_latency = latency..latency + Duration::from_nanos(1);
    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, config);
    rt.block_on(body())
}

#[derive(Clone)]
struct HostInfo {
    node: NodeHandle,
}

/// The live world, used from the orchestrating task inside [`simulate`].
pub struct World {
    handle: Handle,
    config: WorldConfig,
    hosts: BTreeMap<String, HostInfo>,
    down: BTreeSet<String>,
    clogged: Vec<(String, String)>,
    trace: Arc<Mutex<TraceSink>>,
    kubectl: mpsc::UnboundedSender<(ApiRequest, oneshot::Sender<ApiResult>)>,
    next_index: u32,
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
        let handle = Handle::current();
        let api_addr = SocketAddr::new(host_ip(1), APISERVER_PORT);
        let etcd_addr = SocketAddr::new(host_ip(1), ETCD_PORT);
        let mut hosts = BTreeMap::new();
        let disk: Arc<Mutex<Member<Value>>> = Arc::new(Mutex::new(Member::new()));
        for i in 1..=config.control_plane_hosts.max(1) as u32 {
            let name = format!("cp-{i}");
            let (cfg, trace2, disk2) = (config.clone(), trace.clone(), disk.clone());
            let ip = host_ip(i);
            let builder = handle.create_node().name(name.clone()).ip(ip);
            let node = if i == 1 {
                builder
                    .init(move || {
                        let (cfg, trace, disk) = (cfg.clone(), trace2.clone(), disk2.clone());
                        async move {
                            madsim::task::spawn(etcd_process(ip, disk, trace.clone()));
                            madsim::task::spawn(apiserver_process(ip, etcd_addr, cfg.seed));
                            let sched = cfg.scheduler.clone();
                            madsim::task::spawn(component_process(
                                ip,
                                SCHEDULER_PORT,
                                api_addr,
                                client_id(1, 1),
                                seed_for(cfg.seed, "kube-scheduler", 1),
                                cfg.scheduler_rate,
                                Box::new(move || {
                                    Box::new(Scheduler::new(sched.clone())) as Box<dyn Component>
                                }),
                            ));
                            let kcm = cfg.controller_manager.clone();
                            component_process(
                                ip,
                                CONTROLLER_MANAGER_PORT,
                                api_addr,
                                client_id(1, 2),
                                seed_for(cfg.seed, "kube-controller-manager", 1),
                                cfg.controller_manager_rate,
                                Box::new(move || {
                                    Box::new(ControllerManager::new(kcm.clone())) as Box<dyn Component>
                                }),
                            )
                            .await;
                        }
                    })
                    .build()
            } else {
                builder.build()
            };
            hosts.insert(name, HostInfo { node });
        }
        trace.lock().expect("trace lock").record(&TraceRecord::Leader {
            t: now().as_millis(),
            component: "etcd".into(),
            host: "cp-1".into(),
            term: 1,
        });
        // The scenario's own client, like kubectl on an operator's laptop.
        let kubectl_index = 100;
        let kubectl_node = handle.create_node().name("kubectl").ip(host_ip(kubectl_index)).build();
        let (tx, rx) = mpsc::unbounded();
        kubectl_node.spawn(kubectl_process(host_ip(kubectl_index), api_addr, rx));
        hosts.insert("kubectl".into(), HostInfo { node: kubectl_node });
        let mut world = World {
            handle,
            config: config.clone(),
            hosts,
            down: BTreeSet::new(),
            clogged: Vec::new(),
            trace,
            kubectl: tx,
            next_index: 1000,
        };
        for w in config.workers {
            world.add_worker(w);
        }
        world
    }

    /// Starts a new worker host running a kubelet.
    pub fn add_worker(&mut self, spec: WorkerSpec) {
        self.next_index += 1;
        let index = self.next_index;
        let ip = host_ip(index);
        let api_addr = SocketAddr::new(host_ip(1), APISERVER_PORT);
        let seed = seed_for(self.config.seed, &spec.kubelet.node_name, 0);
        let name = spec.kubelet.node_name.clone();
        let node = self
            .handle
            .create_node()
            .name(name.clone())
            .ip(ip)
            .init(move || {
                let spec = spec.clone();
                async move {
                    let kc = spec.kubelet.clone();
                    component_process(
                        ip,
                        KUBELET_PORT,
                        api_addr,
                        client_id(index, 1),
                        seed,
                        spec.rate,
                        Box::new(move || Box::new(Kubelet::new(kc.clone(), now())) as Box<dyn Component>),
                    )
                    .await
                }
            })
            .build();
        self.hosts.insert(name, HostInfo { node });
    }

    pub fn has_host(&self, name: &str) -> bool {
        self.hosts.contains_key(name)
    }

    pub fn host_names(&self) -> Vec<String> {
        self.hosts.keys().cloned().collect()
    }

    fn host(&self, name: &str) -> Result<&HostInfo, String> {
        self.hosts.get(name).ok_or_else(|| format!("no host named {name:?}"))
    }

    /// Powers a host off: every process on it stops; its network endpoints go away.
    pub fn kill_host(&mut self, name: &str) -> Result<(), String> {
        let id = self.host(name)?.node.id();
        self.handle.kill(id);
        self.down.insert(name.to_string());
        self.fault("kill-host", name);
        Ok(())
    }

    /// Powers a host back on: its processes start afresh (etcd from its disk).
    pub fn restart_host(&mut self, name: &str) -> Result<(), String> {
        let id = self.host(name)?.node.id();
        // madsim's restart re-runs init without closing sockets: kill first.
        self.handle.kill(id);
        self.handle.restart(id);
        self.down.remove(name);
        self.fault("restart-host", name);
        Ok(())
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
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        let net = NetSim::current();
        for a in &names {
            for b in &names {
                let (ga, gb) = (
                    group_of.get(a.as_str()).copied().unwrap_or(rest),
                    group_of.get(b.as_str()).copied().unwrap_or(rest),
                );
                if a < b && ga != gb {
                    let (ia, ib) = (self.hosts[a].node.id(), self.hosts[b].node.id());
                    net.clog_link(ia, ib);
                    net.clog_link(ib, ia);
                    self.clogged.push((a.clone(), b.clone()));
                }
            }
        }
        let detail = groups.iter().map(|g| format!("[{}]", g.join(","))).collect::<Vec<_>>().join(" ");
        self.fault("partition", &detail);
        Ok(())
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        let net = NetSim::current();
        for (a, b) in self.clogged.drain(..) {
            let (ia, ib) = (self.hosts[&a].node.id(), self.hosts[&b].node.id());
            net.unclog_link(ia, ib);
            net.unclog_link(ib, ia);
        }
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
        if self.kubectl.unbounded_send((req, tx)).is_err() {
            return Err(ApiError {
                code: 503,
                reason: "ServiceUnavailable",
                message: "kubectl host is down".into(),
            });
        }
        rx.await.unwrap_or_else(|_| {
            Err(ApiError { code: 503, reason: "ServiceUnavailable", message: "kubectl host is down".into() })
        })
    }

    /// Reads the committed cluster state.
    pub fn state<R>(&self, f: impl FnOnce(&Cache) -> R) -> R {
        f(self.trace.lock().expect("trace lock").state())
    }

    /// Lets madsim drop the bookkeeping of finished tasks (it grows in long runs).
    pub fn prune(&self) {
        let _ = self.handle.metrics().num_tasks();
    }
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

/// Drives one model component: watch events and responses in, requests out, timers.
async fn component_process(
    ip: IpAddr,
    port: u16,
    api: SocketAddr,
    client: ClientId,
    seed: u64,
    rate: crate::world::ClientRate,
    make: Factory,
) {
    let ep = Arc::new(Endpoint::bind(SocketAddr::new(ip, port)).await.expect("port is free on a fresh host"));
    let mut rx = spawn_receiver::<FromApi>(ep.clone(), only::<FromApi>);
    let mut comp = make();
    // Re-seeded from the start time so a restarted process does not repeat its choices.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ now().as_millis().wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut conn = ApiConnection::new(ep, api, client, rate.qps, rate.burst);
    // Let the API server bind its port first (it starts on cp-1 at the same instant).
    madsim::time::sleep(STARTUP_DELAY).await;
    conn.register(comp.watches()).await;
    let mut wake = Some(now());
    let mut retry: Option<SimTime> = None;
    let mut deliveries = Vec::new();
    loop {
        let mut deadline = conn.next_deadline();
        for t in [wake, retry].into_iter().flatten() {
            deadline = deadline.min(t);
        }
        if let Some((msg, _)) = next_until(&mut rx, Some(deadline)).await {
            conn.on_message(msg, &mut deliveries).await;
            while let Ok((m, _)) = rx.try_recv() {
                conn.on_message(m, &mut deliveries).await;
            }
        }
        conn.on_timer(&mut deliveries).await;
        let t = now();
        let due = wake.is_some_and(|w| w <= t);
        if !deliveries.is_empty() || due {
            for d in deliveries.drain(..) {
                match d {
                    Delivery::Event(ev) => comp.on_event(&ev, t),
                    Delivery::Response(tag, r) => comp.on_response(tag, &r, t),
                }
            }
            let out = comp.tick(t, &mut rng);
            conn.enqueue(out.requests);
            // Never ask to be woken in the past: time must move on.
            wake = out.wake_at.map(|w| w.max(t + Duration::from_millis(1)));
        }
        retry = conn.flush().await;
    }
}

/// The API server process: clients' requests and watches in, etcd round trips out.
async fn apiserver_process(ip: IpAddr, etcd: SocketAddr, seed: u64) {
    enum In {
        Client(ToApi),
        Etcd(FromEtcd),
    }
    fn convert(p: madsim::net::Payload) -> Option<In> {
        match p.downcast::<ToApi>() {
            Ok(m) => Some(In::Client(*m)),
            Err(p) => p.downcast::<FromEtcd>().ok().map(|m| In::Etcd(*m)),
        }
    }
    let ep = Arc::new(Endpoint::bind(SocketAddr::new(ip, APISERVER_PORT)).await.expect("port is free"));
    let mut rx = spawn_receiver::<In>(ep.clone(), convert);
    let mut rng = ChaCha8Rng::seed_from_u64(seed_for(seed, "kube-apiserver", 0) ^ now().as_millis());
    let mut api = ApiServer::new(ApiServerConfig::default());
    // client -> (address, registration epoch, batches sent)
    let mut clients: BTreeMap<ClientId, (SocketAddr, u64, u64)> = BTreeMap::new();
    let mut outputs = Vec::new();
    // etcd's replies in the order it sent them.
    let mut etcd_early: BTreeMap<u64, FromEtcd> = BTreeMap::new();
    let mut etcd_next: u64 = 0;
    let t0 = now();
    outputs.extend(api.bootstrap(t0, &mut rng));
    // kube-apiserver --etcd-compaction-interval (5m): each tick compacts to the revision
    // seen at the previous tick (storage/etcd3/compact.go).
    let mut next_compaction = t0 + ETCD_COMPACTION_INTERVAL;
    let mut revision_seen: i64 = 0;
    let mut compact_to: i64 = 0;
    loop {
        let mut inbox = Vec::new();
        if outputs.is_empty() {
            if let Some(m) = next_until(&mut rx, Some(next_compaction)).await {
                inbox.push(m);
            }
        }
        if now() >= next_compaction {
            next_compaction = now() + ETCD_COMPACTION_INTERVAL;
            if compact_to > 0 {
                let request = kubesim_model::etcd::EtcdRequest::Compact { revision: compact_to };
                let _ = ep.send_to_raw(etcd, TAG, Box::new(ToEtcd { requests: vec![(0, request)] })).await;
            }
            compact_to = revision_seen;
        }
        while let Ok(m) = rx.try_recv() {
            inbox.push(m);
        }
        let t = now();
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
                // A newer epoch (re)registers the client, whichever of its messages comes
                // first; messages of an older epoch are stale.
                match clients.get(&client).map(|c| c.1) {
                    Some(e) if e > epoch => continue,
                    Some(e) if e == epoch => {}
                    known => {
                        if known.is_some() {
                            if std::env::var_os("KUBESIM_DEBUG_RELIST").is_some() {
                                eprintln!("RELIST {} {client}", t.as_secs() / 30 * 30);
                            }
                            outputs.extend(api.handle(ApiInput::ClientGone { client }, t, &mut rng));
                        }
                        clients.insert(client, (from, epoch, 0));
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
                In::Etcd(m) => {
                    etcd_early.insert(m.seq, m);
                    while let Some(FromEtcd { responses, events, .. }) = etcd_early.remove(&(etcd_next + 1)) {
                        etcd_next += 1;
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
            let _ = ep.send_to_raw(etcd, TAG, Box::new(ToEtcd { requests: to_etcd })).await;
        }
        for (client, (responses, events)) in batches {
            let Some((addr, epoch, sent)) = clients.get_mut(&client) else { continue };
            *sent += 1;
            let msg =
                FromApi::Batch { epoch: *epoch, seq: *sent, responses, events: events.into_iter().collect() };
            let addr = *addr;
            let _ = ep.send_to_raw(addr, TAG, Box::new(msg)).await;
        }
        for (client, from) in pongs {
            let msg = match clients.get(&client) {
                Some((_, epoch, sent)) => FromApi::Pong { epoch: *epoch, known: true, sent: *sent },
                None => FromApi::Pong { epoch: 0, known: false, sent: 0 },
            };
            let _ = ep.send_to_raw(from, TAG, Box::new(msg)).await;
        }
    }
}

/// The etcd member process: applies requests to its store (its disk survives restarts)
/// and records every committed write in the trace.
async fn etcd_process(ip: IpAddr, disk: Arc<Mutex<Member<Value>>>, trace: Arc<Mutex<TraceSink>>) {
    let ep = Arc::new(Endpoint::bind(SocketAddr::new(ip, ETCD_PORT)).await.expect("port is free"));
    let mut rx = spawn_receiver::<ToEtcd>(ep.clone(), only::<ToEtcd>);
    let mut seq = 0;
    while let Some((first, from)) = rx.next().await {
        let mut msgs = vec![(first, from)];
        while let Ok(m) = rx.try_recv() {
            msgs.push(m);
        }
        let t = now();
        for (msg, from) in msgs {
            seq += 1;
            let mut out = FromEtcd { seq, responses: Vec::new(), events: Vec::new() };
            {
                let mut member = disk.lock().expect("etcd disk lock");
                for (id, req) in msg.requests {
                    let (resp, events) = member.handle(req);
                    out.responses.push((id, resp));
                    out.events.extend(events);
                }
            }
            {
                let mut trace = trace.lock().expect("trace lock");
                for ev in &out.events {
                    if let Some(rec) = crate::record_of(ev, t) {
                        trace.record(&rec);
                    }
                }
            }
            let _ = ep.send_to_raw(from, TAG, Box::new(out)).await;
        }
    }
}

/// The scenario's kubectl: one request at a time, as a person typing.
async fn kubectl_process(
    ip: IpAddr,
    api: SocketAddr,
    mut requests: mpsc::UnboundedReceiver<(ApiRequest, oneshot::Sender<ApiResult>)>,
) {
    let ep = Arc::new(Endpoint::bind(SocketAddr::new(ip, KUBECTL_PORT)).await.expect("port is free"));
    let mut rx = spawn_receiver::<FromApi>(ep.clone(), only::<FromApi>);
    let mut conn = ApiConnection::new(ep, api, client_id(100, 1), 0.0, 0);
    madsim::time::sleep(STARTUP_DELAY).await;
    conn.register(Vec::new()).await;
    let mut tag = 0;
    while let Some((req, reply)) = requests.next().await {
        tag += 1;
        conn.enqueue(vec![Tagged { tag, request: req }]);
        conn.flush().await;
        let result = loop {
            let mut deliveries = Vec::new();
            if let Some((msg, _)) = next_until(&mut rx, Some(conn.next_deadline())).await {
                conn.on_message(msg, &mut deliveries).await;
            }
            conn.on_timer(&mut deliveries).await;
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

//! The one interface between every process of the simulated cluster and its driver, in
//! raft-rs's `RawNode` / `Ready` shape.
//!
//! A process — an etcd member ([`crate::etcd::EtcdServer`]), a kube-apiserver
//! ([`crate::apiserver::ApiServerProcess`]), or a client of the API (the scheduler, the
//! controller manager, a kubelet, the scenario's kubectl: [`crate::client::ClientProcess`])
//! — is a state machine. Its driver, per wake-up:
//!
//! 1. steps in every [`Input`] that arrived ([`Process::step`]), with the simulated `now`;
//! 2. calls [`Process::tick`] when `now` has reached the wake-up time the last [`Ready`]
//!    asked for;
//! 3. takes the [`Ready`] ([`Process::ready`]) and performs it: sends `messages`, hands
//!    `records` to the trace and `local` answers to the host's user, writes `persist` to
//!    the process's disk, in order, and, if `sync`, waits for the fsync;
//! 4. acknowledges it with [`Process::advance`] once the writes are durable, which may
//!    release outputs that had to wait for them (a follower's append response, a client's
//!    acknowledgement): while [`Process::has_ready`] holds, it goes back to 3;
//! 5. sleeps until the next message or the Ready's `wake_at`.
//!
//! Architecture Invariant: a process never sends an output that depends on a disk write
//! before the driver has advanced past that write. Persistence is an output; the driver
//! decides when a write becomes durable, so lost, torn and slow fsyncs are driver faults.

use rand_chacha::ChaCha8Rng;

use crate::client::{ApiRequest, ApiResult};
use crate::etcd::{DiskOp, MvccEvent};
use crate::host::HostState;
use crate::time::SimTime;
use crate::wire::{Addr, Message, Value};

/// Something that happened to a process.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved once from the network into the process
pub enum Input<V = Value> {
    /// A message from the network.
    Message { from: Addr, msg: Message<V> },
    /// The host under the process changed (a fault): what its node agent can observe.
    /// Drivers also send it once when the process starts.
    Host(HostState),
    /// A request from the host's own user (the scenario's kubectl); answered in
    /// [`Ready::local`] with the same tag.
    Local { tag: u64, request: ApiRequest },
}

/// What happened inside a process that the run's trace records.
#[derive(Debug)]
pub enum Record<V = Value> {
    /// Changes an etcd member applied, in revision order (each member reports what it
    /// applies; the trace keeps every revision once).
    Committed(Vec<MvccEvent<V>>),
    /// An etcd member learned of a leader in a term.
    EtcdLeader { at: SimTime, term: u64, leader: u64 },
    /// An etcd member installed a snapshot from its leader, jumping to this revision.
    EtcdSnapshotInstalled { revision: i64 },
    /// An etcd member applied an alarm change (raft entry `index`): `member`'s NOSPACE
    /// alarm raised, or (`activate` false) every NOSPACE alarm disarmed. Every member
    /// applies it; the trace keeps each entry once.
    EtcdAlarm(crate::etcd::AlarmChange),
    /// Client requests an etcd member refused since its last Ready, by etcd's error
    /// (`etcdserver: mvcc: database space exceeded`, `etcdserver: request is too large`).
    EtcdRejected(Vec<(&'static str, u64)>),
    /// Requests an API server answered since its last Ready, each with its latency: what
    /// kube-apiserver's `apiserver_request_duration_seconds` observes, "from the moment
    /// when apiserver gets the request to last byte of response sent to the user"
    /// (sig-scalability/slos/api_call_latency.md). Watches (streaming) are not requests
    /// here, as they are not in the SLI.
    ApiCalls(Vec<ApiCall>),
    /// A client component's own record of what it decided and why (the scheduler's
    /// attempts, for `kubesim explain`).
    Component(crate::client::Record),
}

/// One answered API request, labelled as `apiserver_request_duration_seconds` labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiCall {
    /// The client that asked (the world knows which component it is).
    pub client: u64,
    /// The HTTP verb the request metrics use: POST, PUT, PATCH, DELETE, GET.
    pub verb: &'static str,
    /// The REST resource (`pods`) and subresource (`status`, `binding`, or empty).
    pub resource: &'static str,
    pub subresource: &'static str,
    pub latency_ms: u64,
}

impl ApiCall {
    /// The verb, resource and subresource of a request, as the API server's request
    /// info resolver names them (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go):
    /// a create is a POST, a binding a POST to `pods/binding`, a status update a PUT to
    /// the `status` subresource.
    pub fn labels(request: &ApiRequest) -> (&'static str, &'static str, &'static str) {
        match request {
            ApiRequest::Create(o) => ("POST", o.kind().resource(), ""),
            ApiRequest::Update(o) => ("PUT", o.kind().resource(), ""),
            ApiRequest::UpdateStatus(o) => ("PUT", o.kind().resource(), "status"),
            ApiRequest::Bind { .. } => ("POST", "pods", "binding"),
            ApiRequest::Evict { .. } => ("POST", "pods", "eviction"),
            ApiRequest::Delete { key, .. } => ("DELETE", key.kind.resource(), ""),
            ApiRequest::Patch { patch: crate::client::Patch::PodStatus { .. }, .. } => {
                ("PATCH", "pods", "status")
            }
            ApiRequest::Patch { key, .. } => ("PATCH", key.kind.resource(), ""),
            ApiRequest::Get(key) => ("GET", key.kind.resource(), ""),
        }
    }
}

/// A process's outputs since the last [`Process::ready`].
#[derive(Debug)]
pub struct Ready<V = Value> {
    /// To send now.
    pub messages: Vec<(Addr, Message<V>)>,
    /// To write to the process's disk, in order, before [`Process::advance`].
    pub persist: Vec<DiskOp<V>>,
    /// The writes must be fsynced before [`Process::advance`] (etcd's `mustSync`: new
    /// entries, a snapshot, a changed term or vote).
    pub sync: bool,
    /// When to call [`Process::tick`] even if nothing arrives.
    pub wake_at: Option<SimTime>,
    pub records: Vec<Record<V>>,
    /// Answers to [`Input::Local`] requests.
    pub local: Vec<(u64, ApiResult)>,
}

impl<V> Default for Ready<V> {
    fn default() -> Self {
        Ready {
            messages: Vec::new(),
            persist: Vec::new(),
            sync: false,
            wake_at: None,
            records: Vec::new(),
            local: Vec::new(),
        }
    }
}

impl<V> Ready<V> {
    /// Asks for a tick at `t` at the latest.
    pub fn wake_no_later_than(&mut self, t: SimTime) {
        self.wake_at = Some(self.wake_at.map_or(t, |w| w.min(t)));
    }

    pub fn send(&mut self, to: Addr, msg: Message<V>) {
        self.messages.push((to, msg));
    }
}

/// A process of the simulated cluster; see the module documentation for the protocol.
pub trait Process<V = Value>: Send {
    /// Takes one input.
    fn step(&mut self, input: Input<V>, now: SimTime, rng: &mut ChaCha8Rng);
    /// Timers: called when `now` reaches the last Ready's `wake_at`.
    fn tick(&mut self, now: SimTime, rng: &mut ChaCha8Rng);
    /// The outputs produced since the last call.
    fn ready(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Ready<V>;
    /// The last Ready's `persist` is on disk (fsynced if it asked to be).
    fn advance(&mut self, _now: SimTime, _rng: &mut ChaCha8Rng) {}
    /// Whether [`Process::ready`] has more to give before the process sleeps (outputs
    /// that waited for an [`Process::advance`]).
    fn has_ready(&self) -> bool {
        false
    }
}

//! kube-apiserver: validation, defaulting and admission, optimistic concurrency on
//! resourceVersion, pod binding and graceful deletion, the watch cache and its indexed
//! fan-out. It talks to etcd only through messages ([`ApiOutput::ToEtcd`] /
//! [`ApiInput::EtcdResponse`]), as the real one talks gRPC, so replication slots in.

mod admission;
mod eviction;
mod priority;
pub mod server;
pub mod validation;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use crate::api::{Kind, Object, ObjectKey};
use crate::client::{ApiError, ApiRequest, ApiResult, Cache, WatchEvent, WatchEventType, WatchSpec};
use crate::etcd::{Compare, CompareOp, CompareTarget, EtcdRequest, EtcdResponse, MvccEvent, Op, Stamp};
use crate::time::SimTime;

pub use admission::{default_object, uuid_v4, validate_name};
pub use eviction::{too_many_requests, MSG_VIOLATES_BUDGET};
pub use server::ApiServerProcess;

impl Stamp for Arc<Object> {
    /// etcd's mod revision is the object's resourceVersion.
    fn stamp(&mut self, revision: i64) {
        Arc::make_mut(self).meta_mut().resource_version = revision as u64;
    }
}

pub type ClientId = u64;
type WatchKey = (ClientId, u64);

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a request is moved once, never stored
pub enum ApiInput {
    ClientRequest { client: ClientId, tag: u64, request: ApiRequest },
    Watch { client: ClientId, watch_id: u64, spec: WatchSpec },
    CancelWatch { client: ClientId, watch_id: u64 },
    ClientGone { client: ClientId },
    EtcdResponse { id: u64, response: EtcdResponse<Arc<Object>> },
    EtcdEvents(Vec<MvccEvent<Arc<Object>>>),
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // an output is moved once, never stored
pub enum ApiOutput {
    Response { client: ClientId, tag: u64, result: ApiResult },
    WatchEvents { client: ClientId, watch_id: u64, events: Vec<WatchEvent> },
    ToEtcd { id: u64, request: EtcdRequest<Arc<Object>> },
}

/// kube-apiserver flags this simulation honours, with upstream's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiServerConfig {
    /// --max-requests-inflight (default 400): with API Priority and Fairness on (the
    /// default), it and the mutating limit add up to the server's concurrency limit.
    pub max_requests_inflight: u32,
    /// --max-mutating-requests-inflight (default 200).
    pub max_mutating_requests_inflight: u32,
    /// --event-ttl (default 1h): Events are stored on an etcd lease of this TTL.
    pub event_ttl: Duration,
    /// --etcd-compaction-interval (default 5m; 0 turns compaction off).
    pub etcd_compaction_interval: Duration,
    /// --request-timeout (default 1m): how long a non-long-running request may take.
    pub request_timeout: Duration,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            event_ttl: EVENT_TTL,
            etcd_compaction_interval: Duration::from_secs(300),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// How often an API server checks its etcd (its /readyz etcd check and the watch
/// stream's liveness).
pub const ETCD_PING_INTERVAL: Duration = Duration::from_secs(1);
/// kube-apiserver --etcd-healthcheck-timeout (2 s): unanswered this long, etcd is
/// unhealthy and the server not ready.
pub const ETCD_HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// A watch whose member has not answered for this long is given up and relisted.
pub const ETCD_WATCH_GIVE_UP: Duration = Duration::from_secs(5);
/// A cache that has not listed in this long lists again.
pub const RELIST_RETRY: Duration = Duration::from_secs(5);
/// The cacher runs its reflector's ListAndWatch under `wait.Until(..., time.Second, ...)`
/// (k8s.io/apiserver/pkg/storage/cacher/cacher.go NewCacherFromConfig): a LIST or WATCH
/// that fails is tried again one second after it returned, not at once.
pub const CACHER_RETRY_PERIOD: Duration = Duration::from_secs(1);

/// A change to apply to the current object (retried on a fresh read when the write races
/// and the client set no resourceVersion, as `GuaranteedUpdate` does).
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
enum Mutation {
    Replace(Object),
    ReplaceStatus(Object),
    Bind { node: String, uid: String },
    MarkDeleting { grace_seconds: i64 },
    Patch(crate::client::Patch),
}

/// Who asked: the client and its tag, carried with a request through its etcd round
/// trips and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Caller {
    client: ClientId,
    tag: u64,
}

/// A write in progress: what to change, and how the client asked for it.
#[derive(Clone, Debug)]
struct WriteOp {
    key: ObjectKey,
    mutation: Mutation,
    /// The client set a resourceVersion: a conflict is the client's to resolve.
    conditional: bool,
    /// Conflicts retried on a fresh read so far (GuaranteedUpdate).
    tries: u32,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per in-flight etcd request
enum Pending {
    Create(Caller, ObjectKey),
    Write(Caller, WriteOp),
    Delete(Caller, DeleteOp),
    Get(Caller, ObjectKey),
    /// The watch cache's initial LIST of everything.
    List,
    /// The watch cache's WATCH from a revision.
    Watch,
    /// A lease for Events, asked for at this time.
    Lease {
        requested_at: SimTime,
    },
    /// POST pods/eviction's transaction (eviction.rs).
    Evict(eviction::PendingEviction),
}

impl Pending {
    fn caller(&self) -> Option<Caller> {
        match self {
            Pending::Create(c, _) | Pending::Write(c, _) | Pending::Delete(c, _) | Pending::Get(c, _) => {
                Some(*c)
            }
            Pending::Evict(e) => Some(e.caller),
            Pending::List | Pending::Watch | Pending::Lease { .. } => None,
        }
    }
}

/// --event-ttl default (1h): Events are stored on an etcd lease of this TTL.
pub const EVENT_TTL: Duration = Duration::from_secs(3600);
/// storage/etcd3 lease manager defaults (LeaseManagerConfig): a lease is reused for up to
/// 5% of the TTL, at most 60 s, and for at most 1000 objects.
const LEASE_REUSE_DURATION_SECONDS: u64 = 60;
const LEASE_REUSE_DURATION_PERCENT: f64 = 0.05;
const LEASE_MAX_OBJECT_COUNT: u64 = 1000;

/// storage/etcd3 leaseManager: the lease the last objects with a TTL were attached to.
#[derive(Debug)]
struct EventLease {
    id: i64,
    expires: SimTime,
    attached: u64,
}

/// A delete waiting on etcd, with what a retry needs.
#[derive(Debug)]
struct DeleteOp {
    key: ObjectKey,
    grace: Option<i64>,
    precondition_uid: Option<String>,
    tries: u32,
}

/// Requests with no client (the bootstrap namespaces) answer nobody.
const NOBODY: Caller = Caller { client: u64::MAX, tag: 0 };

pub struct ApiServer {
    config: ApiServerConfig,
    cache: Cache,
    watches: BTreeMap<WatchKey, WatchSpec>,
    /// Watches without a node filter, by kind (`None` = every kind).
    by_kind: BTreeMap<Option<Kind>, BTreeSet<WatchKey>>,
    /// Pod watches filtered by `spec.nodeName`, by node.
    by_node: BTreeMap<String, BTreeSet<WatchKey>>,
    /// Watches of one kind filtered by `metadata.name` (a kubelet's own Node and Lease),
    /// by kind and name: the cacher triggers them by that index, so other objects'
    /// changes cost them nothing.
    by_name: BTreeMap<Kind, BTreeMap<String, BTreeSet<WatchKey>>>,
    pending: BTreeMap<u64, Pending>,
    next_id: u64,
    /// Client requests not answered yet, with when each must be answered by
    /// (--request-timeout).
    deadlines: BTreeMap<Caller, SimTime>,
    /// The same deadlines ordered by time, so the next one is found without a scan.
    deadline_order: BTreeSet<(SimTime, Caller)>,
    /// When the watch cache tries its failed LIST or WATCH again ([`CACHER_RETRY_PERIOD`]).
    retry_list_at: Option<SimTime>,
    /// The last etcd revision applied to the watch cache.
    revision: i64,
    /// The watch cache has listed and watches etcd: requests are served.
    ready: bool,
    /// Inputs that arrived before the cache was ready, in arrival order.
    waiting: Vec<ApiInput>,
    /// The cache has listed at least once (requests need not wait for a relist).
    listed_once: bool,
    lease: Option<EventLease>,
    /// Event writes waiting for a lease grant.
    lease_waiting: Vec<(Pending, EtcdRequest<Arc<Object>>)>,
    lease_granting: bool,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self::new(ApiServerConfig::default())
    }
}

impl ApiServer {
    pub fn new(config: ApiServerConfig) -> Self {
        ApiServer {
            config,
            cache: Cache::default(),
            watches: BTreeMap::new(),
            by_kind: BTreeMap::new(),
            by_node: BTreeMap::new(),
            by_name: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_id: 0,
            deadlines: BTreeMap::new(),
            deadline_order: BTreeSet::new(),
            retry_list_at: None,
            revision: 0,
            ready: false,
            waiting: Vec::new(),
            listed_once: false,
            lease: None,
            lease_waiting: Vec::new(),
            lease_granting: false,
        }
    }

    /// Starts (or restarts) the watch cache: LIST everything from etcd, then WATCH from the
    /// list's revision (the storage cacher's reflector, k8s.io/apiserver/pkg/storage/cacher).
    /// Client requests wait until the cache has listed, as a starting kube-apiserver is not
    /// ready before its caches sync.
    pub fn start(&mut self, _now: SimTime, _rng: &mut ChaCha8Rng) -> Vec<ApiOutput> {
        let mut out = Vec::new();
        self.ready = false;
        self.list_from_etcd(&mut out);
        out
    }

    /// The watch cache's reflector LISTs everything from etcd.
    fn list_from_etcd(&mut self, out: &mut Vec<ApiOutput>) {
        self.retry_list_at = None;
        let request = EtcdRequest::Range { key: "/registry/".into(), prefix: true, limit: 0 };
        self.send_to_etcd(Pending::List, request, out);
    }

    /// Has the watch cache listed?
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The watch cache (the latest committed state the API server has seen).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Creates the namespaces every cluster starts with (default, kube-system,
    /// kube-public, kube-node-lease) when they are missing, as the API server's system
    /// namespaces controller does (pkg/controlplane/controller/systemnamespaces).
    fn bootstrap(&mut self, now: SimTime, rng: &mut ChaCha8Rng, out: &mut Vec<ApiOutput>) {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if self.cache.get(&ObjectKey::new(Kind::Namespace, "", ns)).is_some() {
                continue;
            }
            let obj = Object::Namespace(crate::api::Namespace {
                metadata: crate::api::ObjectMeta { name: ns.into(), ..Default::default() },
                ..Default::default()
            });
            self.create(NOBODY, obj, now, rng, out);
        }
        // The scheduling/bootstrap-system-priority-classes post-start hook (their uids
        // come from an RNG of their own, leaving the server's stream as it was).
        for pc in crate::api::PriorityClass::system_classes() {
            if self.cache.get(&ObjectKey::new(Kind::PriorityClass, "", pc.metadata.name.clone())).is_none() {
                let mut own = priority::bootstrap_rng(&pc.metadata.name);
                self.create(NOBODY, Object::PriorityClass(pc), now, &mut own, out);
            }
        }
    }

    pub fn handle(&mut self, input: ApiInput, now: SimTime, rng: &mut ChaCha8Rng) -> Vec<ApiOutput> {
        let mut out = Vec::new();
        self.handle_into(input, now, rng, &mut out);
        out
    }

    fn handle_into(&mut self, input: ApiInput, now: SimTime, rng: &mut ChaCha8Rng, out: &mut Vec<ApiOutput>) {
        let out = &mut *out;
        // Watches wait for the cache; requests too until it has listed once. While it
        // relists, reads and writes go to etcd as before (a write's compare against the
        // stored revision keeps a stale cache from losing updates).
        let wait = match input {
            ApiInput::Watch { .. } => !self.ready,
            ApiInput::ClientRequest { .. } => !self.ready && !self.listed_once,
            _ => false,
        };
        if wait {
            self.waiting.push(input);
            return;
        }
        match input {
            ApiInput::ClientRequest { client, tag, request } => {
                let caller = Caller { client, tag };
                let deadline = now + self.config.request_timeout;
                if let Some(old) = self.deadlines.insert(caller, deadline) {
                    self.deadline_order.remove(&(old, caller));
                }
                self.deadline_order.insert((deadline, caller));
                self.request(caller, request, now, rng, out)
            }
            ApiInput::Watch { client, watch_id, spec } => self.watch(client, watch_id, spec, out),
            ApiInput::CancelWatch { client, watch_id } => self.cancel((client, watch_id)),
            ApiInput::ClientGone { client } => {
                let keys: Vec<WatchKey> =
                    self.watches.range((client, 0)..=(client, u64::MAX)).map(|(k, _)| *k).collect();
                keys.into_iter().for_each(|k| self.cancel(k));
            }
            ApiInput::EtcdResponse { id, response } => self.etcd_response(id, response, now, rng, out),
            ApiInput::EtcdEvents(events) => {
                if self.ready {
                    self.fan_out(events, out)
                }
            }
        }
    }

    fn send_to_etcd(
        &mut self,
        pending: Pending,
        request: EtcdRequest<Arc<Object>>,
        out: &mut Vec<ApiOutput>,
    ) {
        self.next_id += 1;
        self.pending.insert(self.next_id, pending);
        out.push(ApiOutput::ToEtcd { id: self.next_id, request });
    }

    /// Sends a write of an object with a TTL (an Event) on a lease, as the registry's
    /// TTLFunc and storage/etcd3 GetLease do: the current lease while it has more than the
    /// TTL left and room for objects, else a new one of TTL plus the reuse duration.
    fn send_with_lease(
        &mut self,
        pending: Pending,
        request: EtcdRequest<Arc<Object>>,
        now: SimTime,
        out: &mut Vec<ApiOutput>,
    ) {
        if let Some(l) = &mut self.lease {
            if now + self.config.event_ttl < l.expires && l.attached < LEASE_MAX_OBJECT_COUNT {
                l.attached += 1;
                let id = l.id;
                return self.send_to_etcd(pending, on_lease(request, id), out);
            }
        }
        self.lease_waiting.push((pending, request));
        if !self.lease_granting {
            self.lease_granting = true;
            let ttl = self.config.event_ttl.as_secs();
            let reuse =
                ((ttl as f64 * LEASE_REUSE_DURATION_PERCENT) as u64).min(LEASE_REUSE_DURATION_SECONDS);
            let ttl_seconds = (ttl + reuse) as i64;
            let request = EtcdRequest::LeaseGrant { id: 0, ttl_seconds };
            self.send_to_etcd(Pending::Lease { requested_at: now }, request, out);
        }
    }

    /// Answers a client, unless the request timed out already (or has no client).
    fn reply(&mut self, caller: Caller, result: ApiResult, out: &mut Vec<ApiOutput>) {
        if let Some(deadline) = self.deadlines.remove(&caller).filter(|_| caller != NOBODY) {
            self.deadline_order.remove(&(deadline, caller));
            out.push(ApiOutput::Response { client: caller.client, tag: caller.tag, result });
        }
    }

    /// The earliest time a request in flight times out, or the watch cache retries its
    /// LIST.
    pub fn next_deadline(&self) -> Option<SimTime> {
        let request = self.deadline_order.first().map(|(t, _)| *t);
        request.into_iter().chain(self.retry_list_at).min()
    }

    /// WithTimeoutForNonLongRunningRequests (k8s.io/apiserver endpoints/filters/timeout.go):
    /// a request not answered within --request-timeout gets a 504; whatever etcd answers
    /// later is dropped. A watch cache whose LIST or WATCH failed lists again once its
    /// retry period is up.
    pub fn expire_requests(&mut self, now: SimTime) -> Vec<ApiOutput> {
        let mut expired: Vec<Caller> =
            self.deadline_order.iter().take_while(|(d, _)| *d <= now).map(|(_, c)| *c).collect();
        expired.sort_unstable();
        let mut out = Vec::new();
        for caller in expired {
            let err = ApiError {
                code: 504,
                reason: "Timeout",
                // apierrors.NewTimeoutError("request did not complete within requested
                // timeout - " + ctx.Err(), 0).
                message:
                    "Timeout: request did not complete within requested timeout - context deadline exceeded"
                        .into(),
            };
            self.reply(caller, Err(err), &mut out);
        }
        if self.retry_list_at.is_some_and(|t| t <= now) {
            self.list_from_etcd(&mut out);
        }
        out
    }

    fn request(
        &mut self,
        caller: Caller,
        req: ApiRequest,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<ApiOutput>,
    ) {
        let write = |key: ObjectKey, mutation: Mutation, conditional: bool| WriteOp {
            key,
            mutation,
            conditional,
            tries: 0,
        };
        // The body limit comes first, before decoding and admission (validation.rs).
        if let ApiRequest::Create(obj) | ApiRequest::Update(obj) | ApiRequest::UpdateStatus(obj) = &req {
            if let Err(e) = validation::check_request_size(obj) {
                return self.reply(caller, Err(e), out);
            }
        }
        match req {
            ApiRequest::Create(obj) => self.create(caller, obj, now, rng, out),
            ApiRequest::Update(obj) => {
                let conditional = obj.meta().resource_version != 0;
                self.write(caller, write(obj.key(), Mutation::Replace(obj), conditional), now, out)
            }
            ApiRequest::UpdateStatus(obj) => {
                let conditional = obj.meta().resource_version != 0;
                self.write(caller, write(obj.key(), Mutation::ReplaceStatus(obj), conditional), now, out)
            }
            ApiRequest::Bind { namespace, name, uid, node } => {
                let key = ObjectKey::new(Kind::Pod, namespace, name);
                self.write(caller, write(key, Mutation::Bind { node, uid }, false), now, out)
            }
            ApiRequest::Delete { key, grace_period_seconds, precondition_uid } => {
                let d = DeleteOp { key, grace: grace_period_seconds, precondition_uid, tries: 0 };
                self.delete(caller, d, now, out)
            }
            ApiRequest::Patch { key, patch } => {
                self.write(caller, write(key, Mutation::Patch(patch), false), now, out)
            }
            ApiRequest::Get(key) => {
                let request = EtcdRequest::Range { key: key.etcd_key(), prefix: false, limit: 0 };
                self.send_to_etcd(Pending::Get(caller, key), request, out)
            }
            ApiRequest::Evict { namespace, name, grace_period_seconds } => {
                self.evict(caller, namespace, name, grace_period_seconds, now, out)
            }
        }
    }

    fn create(
        &mut self,
        caller: Caller,
        mut obj: Object,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<ApiOutput>,
    ) {
        // Validation sees the defaulted, admitted object (registry BeforeCreate).
        let admitted = admission::prepare_create(&mut obj, &self.cache, now, rng)
            .and_then(|()| validation::validate_create(&obj));
        if let Err(e) = admitted {
            return self.reply(caller, Err(e), out);
        }
        let key = obj.key();
        let etcd_key = key.etcd_key();
        let request = EtcdRequest::Txn {
            compare: vec![Compare {
                key: etcd_key.clone(),
                target: CompareTarget::CreateRevision,
                op: CompareOp::Equal,
                value: 0,
            }],
            success: vec![Op::Put { key: etcd_key.clone(), value: Arc::new(obj) }],
            failure: vec![Op::Get { key: etcd_key }],
        };
        if key.kind == Kind::Event {
            return self.send_with_lease(Pending::Create(caller, key), request, now, out);
        }
        self.send_to_etcd(Pending::Create(caller, key), request, out);
    }

    fn write(&mut self, caller: Caller, op: WriteOp, now: SimTime, out: &mut Vec<ApiOutput>) {
        let Some(current) = self.cache.get(&op.key).cloned() else {
            return self.reply(caller, Err(ApiError::not_found(op.key.kind, &op.key.name)), out);
        };
        self.write_on(caller, op, &current, now, out)
    }

    /// Writes `op` against `current` with a compare on its revision; etcd's answer
    /// decides (see `etcd_response`).
    fn write_on(
        &mut self,
        caller: Caller,
        op: WriteOp,
        current: &Arc<Object>,
        now: SimTime,
        out: &mut Vec<ApiOutput>,
    ) {
        let stored = current.meta().resource_version;
        let expected = match &op.mutation {
            Mutation::Replace(o) | Mutation::ReplaceStatus(o) if op.conditional => o.meta().resource_version,
            _ => stored,
        };
        // The cache may lag etcd; let etcd's compare decide unless the cache is newer.
        if op.conditional && expected < stored {
            return self.reply(caller, Err(ApiError::conflict(op.key.kind, &op.key.name)), out);
        }
        let next = match admission::mutate(current, &mutation_view(&op.mutation), now) {
            Ok(Some(next)) => next,
            Ok(None) => return self.reply(caller, Ok(current.clone()), out),
            Err(e) => return self.reply(caller, Err(e), out),
        };
        // Status writes (UpdateStatus, status patches) are not validated as updates of
        // the object: the status strategy's PrepareForUpdate keeps the old spec.
        let validated = match &op.mutation {
            Mutation::Replace(_) => true,
            Mutation::Patch(p) => !p.is_status(),
            _ => false,
        };
        if validated {
            if let Err(e) = validation::validate_update(current, &next) {
                return self.reply(caller, Err(e), out);
            }
        }
        let etcd_key = op.key.etcd_key();
        let request = EtcdRequest::Txn {
            compare: vec![Compare {
                key: etcd_key.clone(),
                target: CompareTarget::ModRevision,
                op: CompareOp::Equal,
                value: expected as i64,
            }],
            success: vec![Op::Put { key: etcd_key.clone(), value: Arc::new(next) }],
            failure: vec![Op::Get { key: etcd_key }],
        };
        let event = op.key.kind == Kind::Event;
        let pending = Pending::Write(caller, op);
        if event {
            return self.send_with_lease(pending, request, now, out);
        }
        self.send_to_etcd(pending, request, out);
    }

    fn delete(&mut self, caller: Caller, d: DeleteOp, now: SimTime, out: &mut Vec<ApiOutput>) {
        let Some(current) = self.cache.get(&d.key).cloned() else {
            return self.reply(caller, Err(ApiError::not_found(d.key.kind, &d.key.name)), out);
        };
        self.delete_on(caller, d, &current, now, out);
    }

    /// Deletes against `current`; when etcd holds a newer revision the store re-reads
    /// and tries again (storage/etcd3 store.Delete's conflict loop), checking the
    /// preconditions on the fresh object.
    fn delete_on(
        &mut self,
        caller: Caller,
        d: DeleteOp,
        current: &Arc<Object>,
        now: SimTime,
        out: &mut Vec<ApiOutput>,
    ) {
        if let Some(uid) = &d.precondition_uid {
            if *uid != current.meta().uid {
                let message = format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    current.meta().uid
                );
                return self.reply(caller, Err(ApiError { code: 409, reason: "Conflict", message }), out);
            }
        }
        // Pods on a node are deleted gracefully: the kubelet stops them, then deletes
        // with grace 0 (pkg/registry/core/pod/strategy.go CheckGracefulDelete).
        if let Object::Pod(p) = &**current {
            let grace = d.grace.or(p.spec.termination_grace_period_seconds).unwrap_or(30);
            let finished =
                matches!(p.phase(), crate::api::PodPhase::Succeeded | crate::api::PodPhase::Failed);
            if !p.spec.node_name.is_empty() && grace > 0 && !finished {
                if p.metadata.deletion_timestamp.is_some() {
                    return self.reply(caller, Ok(current.clone()), out);
                }
                let mutation = Mutation::MarkDeleting { grace_seconds: grace };
                let op = WriteOp { key: d.key, mutation, conditional: false, tries: 0 };
                return self.write_on(caller, op, current, now, out);
            }
        }
        let etcd_key = d.key.etcd_key();
        let request = EtcdRequest::Txn {
            compare: vec![Compare {
                key: etcd_key.clone(),
                target: CompareTarget::ModRevision,
                op: CompareOp::Equal,
                value: current.meta().resource_version as i64,
            }],
            success: vec![Op::Delete { key: etcd_key.clone() }],
            failure: vec![Op::Get { key: etcd_key }],
        };
        self.send_to_etcd(Pending::Delete(caller, d), request, out);
    }

    fn etcd_response(
        &mut self,
        id: u64,
        response: EtcdResponse<Arc<Object>>,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<ApiOutput>,
    ) {
        let Some(pending) = self.pending.remove(&id) else { return };
        match (pending, response) {
            (Pending::List, EtcdResponse::Range { revision, kvs, .. }) => {
                self.listed(revision, kvs, now, rng, out)
            }
            (Pending::Watch, EtcdResponse::Events { events, .. }) => self.fan_out(events, out),
            (Pending::Lease { requested_at }, response) => {
                self.lease_granted(requested_at, response, now, rng, out)
            }
            // A failed LIST, or a WATCH whose revision was compacted away (410 Gone):
            // the reflector relists, one cacher period later.
            (Pending::List | Pending::Watch, _) => {
                self.ready = false;
                self.retry_list_at = Some(now + CACHER_RETRY_PERIOD);
            }
            (Pending::Evict(e), response) => self.eviction_response(e, response, now, out),
            (pending, EtcdResponse::Error { message }) => {
                // apiserver's ErrorToAPIStatus: an etcd error is not a metav1.Status; it
                // reaches the client as a 500 with reason Unknown ("") and etcd's message
                // (`Error from server: etcdserver: leader changed`).
                if let Some(caller) = pending.caller() {
                    self.reply(caller, Err(ApiError { code: 500, reason: "", message }), out);
                }
            }
            (pending, EtcdResponse::Txn { succeeded, results, .. }) => {
                self.answered(pending, succeeded, results, now, out)
            }
            (pending, EtcdResponse::Range { kvs, .. }) => {
                self.answered(pending, true, kvs.into_iter().map(Some).collect(), now, out)
            }
            _ => {}
        }
    }

    /// The watch cache's LIST came back: fill the cache, WATCH from its revision, serve.
    fn listed(
        &mut self,
        revision: i64,
        kvs: Vec<crate::etcd::KeyValue<Arc<Object>>>,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<ApiOutput>,
    ) {
        self.cache.clear();
        self.listed_once = true;
        for kv in kvs {
            self.cache.apply(&WatchEvent { type_: WatchEventType::Added, object: kv.value });
        }
        self.revision = revision;
        let watch = EtcdRequest::WatchFrom { revision: revision + 1 };
        self.send_to_etcd(Pending::Watch, watch, out);
        self.ready = true;
        self.bootstrap(now, rng, out);
        for input in std::mem::take(&mut self.waiting) {
            self.handle_into(input, now, rng, out);
        }
    }

    fn lease_granted(
        &mut self,
        requested_at: SimTime,
        response: EtcdResponse<Arc<Object>>,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<ApiOutput>,
    ) {
        self.lease_granting = false;
        let waiting = std::mem::take(&mut self.lease_waiting);
        match response {
            EtcdResponse::LeaseGrant { id, ttl_seconds, .. } => {
                let expires = requested_at + Duration::from_secs(ttl_seconds.max(0) as u64);
                self.lease = Some(EventLease { id, expires, attached: waiting.len() as u64 });
                for (p, request) in waiting {
                    self.send_to_etcd(p, on_lease(request, id), out);
                }
            }
            other => {
                // The grant failed: so do the writes that waited for it.
                let message = match other {
                    EtcdResponse::Error { message } => message,
                    _ => "etcdserver: unexpected lease grant response".into(),
                };
                for (p, _) in waiting {
                    self.next_id += 1;
                    self.pending.insert(self.next_id, p);
                    let error = EtcdResponse::Error { message: message.clone() };
                    self.etcd_response(self.next_id, error, now, rng, out);
                }
            }
        }
    }

    /// etcd answered a client's request: reply, or retry a write or delete that lost a
    /// race on a fresh read (GuaranteedUpdate, up to 5 times).
    fn answered(
        &mut self,
        pending: Pending,
        succeeded: bool,
        results: Vec<Option<crate::etcd::KeyValue<Arc<Object>>>>,
        now: SimTime,
        out: &mut Vec<ApiOutput>,
    ) {
        let first =
            |results: Vec<Option<crate::etcd::KeyValue<Arc<Object>>>>| results.into_iter().next().flatten();
        match pending {
            Pending::Create(caller, key) => {
                let result = if succeeded {
                    committed(results, &key)
                } else {
                    Err(ApiError::already_exists(key.kind, &key.name))
                };
                self.reply(caller, result, out);
            }
            Pending::Write(caller, op) => {
                if succeeded {
                    return self.reply(caller, committed(results, &op.key), out);
                }
                match first(results) {
                    None => self.reply(caller, Err(ApiError::not_found(op.key.kind, &op.key.name)), out),
                    Some(_) if op.conditional || op.tries >= 5 => {
                        self.reply(caller, Err(ApiError::conflict(op.key.kind, &op.key.name)), out)
                    }
                    Some(kv) => {
                        let retry = WriteOp { tries: op.tries + 1, conditional: false, ..op };
                        self.write_on(caller, retry, &kv.value, now, out)
                    }
                }
            }
            Pending::Delete(caller, d) => {
                if succeeded {
                    let result = first(results)
                        .map(|kv| kv.value)
                        .ok_or_else(|| ApiError::not_found(d.key.kind, &d.key.name));
                    return self.reply(caller, result, out);
                }
                match first(results) {
                    None => self.reply(caller, Err(ApiError::not_found(d.key.kind, &d.key.name)), out),
                    Some(_) if d.tries >= 5 => {
                        self.reply(caller, Err(ApiError::conflict(d.key.kind, &d.key.name)), out)
                    }
                    Some(kv) => {
                        let retry = DeleteOp { tries: d.tries + 1, ..d };
                        self.delete_on(caller, retry, &kv.value, now, out)
                    }
                }
            }
            Pending::Get(caller, key) => {
                let result =
                    first(results).map(|kv| kv.value).ok_or_else(|| ApiError::not_found(key.kind, &key.name));
                self.reply(caller, result, out);
            }
            Pending::List | Pending::Watch | Pending::Lease { .. } | Pending::Evict(_) => {}
        }
    }

    fn watch(&mut self, client: ClientId, watch_id: u64, spec: WatchSpec, out: &mut Vec<ApiOutput>) {
        let wk = (client, watch_id);
        let kinds: Vec<Kind> = match (&spec.node_name, spec.kind) {
            (Some(_), _) => vec![Kind::Pod],
            (None, kind) => kind.map_or(Kind::ALL.to_vec(), |k| vec![k]),
        };
        self.index_of(&spec).insert(wk);
        let mut events = Vec::new();
        for k in kinds {
            events.extend(
                self.cache
                    .list(k)
                    .filter(|o| spec.matches(o))
                    .map(|o| WatchEvent { type_: WatchEventType::Added, object: o.clone() }),
            );
        }
        self.watches.insert(wk, spec);
        // Always answer, even with nothing: the client learns its watch is established.
        out.push(ApiOutput::WatchEvents { client, watch_id, events });
    }

    /// The trigger index a watch belongs to: by node for pods of one node, by name for
    /// one named object of a kind, else by kind.
    fn index_of(&mut self, spec: &WatchSpec) -> &mut BTreeSet<WatchKey> {
        match (&spec.node_name, spec.kind, &spec.name) {
            (Some(node), _, _) => self.by_node.entry(node.clone()).or_default(),
            (None, Some(kind), Some(name)) => {
                self.by_name.entry(kind).or_default().entry(name.clone()).or_default()
            }
            (None, kind, _) => self.by_kind.entry(kind).or_default(),
        }
    }

    fn cancel(&mut self, wk: WatchKey) {
        if let Some(spec) = self.watches.remove(&wk) {
            self.index_of(&spec).remove(&wk);
        }
    }

    /// Applies committed events to the watch cache and sends each watcher what passes its
    /// filter: entering the filter is ADDED, leaving it DELETED (the cacher's semantics).
    fn fan_out(&mut self, events: Vec<MvccEvent<Arc<Object>>>, out: &mut Vec<ApiOutput>) {
        let mut batches: BTreeMap<WatchKey, Vec<WatchEvent>> = BTreeMap::new();
        // One txn's events share a revision and arrive together: skip only revisions
        // applied before this batch (the list covered them, or they came twice).
        let floor = self.revision;
        for ev in events {
            if ev.kv.mod_revision <= floor {
                continue;
            }
            // etcd streams a watch in revision order (links are FIFO): the cache never
            // goes back.
            debug_assert!(
                ev.kv.mod_revision >= self.revision,
                "watch event at revision {} after {}",
                ev.kv.mod_revision,
                self.revision
            );
            self.revision = ev.kv.mod_revision;
            let deleted = ev.type_ == crate::etcd::EventType::Delete;
            let new = ev.kv.value.clone();
            let key = new.key();
            let old = if deleted {
                self.cache.apply(&WatchEvent { type_: WatchEventType::Deleted, object: new.clone() })
            } else {
                self.cache.apply(&WatchEvent { type_: WatchEventType::Modified, object: new.clone() })
            };
            let mut candidates: BTreeSet<WatchKey> = BTreeSet::new();
            for k in [None, Some(key.kind)] {
                if let Some(s) = self.by_kind.get(&k) {
                    candidates.extend(s.iter().copied());
                }
            }
            if let Some(s) = self.by_name.get(&key.kind).and_then(|m| m.get(key.name.as_str())) {
                candidates.extend(s.iter().copied());
            }
            if key.kind == Kind::Pod {
                for o in [old.as_ref(), Some(&new)].into_iter().flatten() {
                    if let Some(p) = o.as_pod() {
                        if let Some(s) = self.by_node.get(&p.spec.node_name) {
                            candidates.extend(s.iter().copied());
                        }
                    }
                }
            }
            for wk in candidates {
                let spec = &self.watches[&wk];
                let was = old.as_ref().is_some_and(|o| spec.matches(o));
                let is = !deleted && spec.matches(&new);
                let type_ = match (was, is) {
                    (false, true) => WatchEventType::Added,
                    (true, true) => WatchEventType::Modified,
                    (true, false) => WatchEventType::Deleted,
                    (false, false) => continue,
                };
                batches.entry(wk).or_default().push(WatchEvent { type_, object: new.clone() });
            }
        }
        for ((client, watch_id), events) in batches {
            out.push(ApiOutput::WatchEvents { client, watch_id, events });
        }
    }
}

fn mutation_view(m: &Mutation) -> admission::MutationView<'_> {
    match m {
        Mutation::Replace(o) => admission::MutationView::Replace(o),
        Mutation::ReplaceStatus(o) => admission::MutationView::ReplaceStatus(o),
        Mutation::Bind { node, uid } => admission::MutationView::Bind { node, uid },
        Mutation::MarkDeleting { grace_seconds } => {
            admission::MutationView::MarkDeleting { grace_seconds: *grace_seconds }
        }
        Mutation::Patch(p) => admission::MutationView::Patch(p),
    }
}

/// The value a successful put committed (stamped with its revision by the store).
fn committed(results: Vec<Option<crate::etcd::KeyValue<Arc<Object>>>>, key: &ObjectKey) -> ApiResult {
    results
        .into_iter()
        .next()
        .flatten()
        .map(|kv| kv.value)
        .ok_or_else(|| ApiError::not_found(key.kind, &key.name))
}

/// The request with its puts attached to a lease.
fn on_lease(request: EtcdRequest<Arc<Object>>, lease: i64) -> EtcdRequest<Arc<Object>> {
    match request {
        EtcdRequest::Txn { compare, success, failure } => {
            let success = success
                .into_iter()
                .map(|op| match op {
                    Op::Put { key, value } => Op::PutWithLease { key, value, lease },
                    other => other,
                })
                .collect();
            EtcdRequest::Txn { compare, success, failure }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Node, ObjectMeta, Pod};
    use crate::etcd::Member;
    use rand::SeedableRng;

    /// An API server wired to one etcd member, delivering etcd's events before its
    /// responses as the simulator does.
    struct Harness {
        api: ApiServer,
        etcd: Member<Arc<Object>>,
        rng: ChaCha8Rng,
        out: Vec<ApiOutput>,
        now: SimTime,
        lease_grants: usize,
    }

    impl Harness {
        fn new() -> Self {
            let mut h = Harness {
                api: ApiServer::default(),
                etcd: Member::new(),
                rng: ChaCha8Rng::seed_from_u64(1),
                out: Vec::new(),
                now: SimTime(1000),
                lease_grants: 0,
            };
            let boot = h.api.start(SimTime::ZERO, &mut h.rng);
            h.pump(boot);
            h
        }

        fn pump(&mut self, mut outputs: Vec<ApiOutput>) {
            while !outputs.is_empty() {
                let mut next = Vec::new();
                for o in outputs {
                    match o {
                        ApiOutput::ToEtcd { id, request } => {
                            // The unreplicated member has no lessor: grant here.
                            let (response, events) = match request {
                                EtcdRequest::LeaseGrant { ttl_seconds, .. } => {
                                    self.lease_grants += 1;
                                    let id = self.lease_grants as i64;
                                    (EtcdResponse::LeaseGrant { revision: 0, id, ttl_seconds }, Vec::new())
                                }
                                request => self.etcd.handle(request),
                            };
                            next.extend(self.api.handle(
                                ApiInput::EtcdEvents(events),
                                self.now,
                                &mut self.rng,
                            ));
                            next.extend(self.api.handle(
                                ApiInput::EtcdResponse { id, response },
                                self.now,
                                &mut self.rng,
                            ));
                        }
                        other => self.out.push(other),
                    }
                }
                outputs = next;
            }
        }

        fn call(&mut self, request: ApiRequest) -> ApiResult {
            self.out.clear();
            let o = self.api.handle(
                ApiInput::ClientRequest { client: 1, tag: 7, request },
                self.now,
                &mut self.rng,
            );
            self.pump(o);
            self.out
                .iter()
                .find_map(|o| match o {
                    ApiOutput::Response { tag: 7, result, .. } => Some(result.clone()),
                    _ => None,
                })
                .expect("a response")
        }
    }

    /// A watch cache whose LIST fails (etcd without a leader) lists again one cacher
    /// period later (cacher.go's wait.Until with time.Second), not at once, and is
    /// ready when that LIST succeeds.
    #[test]
    fn a_failed_list_is_retried_one_second_later() {
        let mut api = ApiServer::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let list_ids = |out: &[ApiOutput]| -> Vec<u64> {
            out.iter()
                .filter_map(|o| match o {
                    ApiOutput::ToEtcd { id, request: EtcdRequest::Range { prefix: true, .. } } => Some(*id),
                    _ => None,
                })
                .collect()
        };
        let boot = api.start(SimTime::ZERO, &mut rng);
        let first = list_ids(&boot)[0];
        let failed = EtcdResponse::Error { message: "etcdserver: no leader".into() };
        let t = SimTime::from_millis(5);
        let out = api.handle(ApiInput::EtcdResponse { id: first, response: failed }, t, &mut rng);
        assert!(list_ids(&out).is_empty(), "no LIST at once: {out:?}");
        assert_eq!(api.next_deadline(), Some(t + CACHER_RETRY_PERIOD));
        assert!(
            list_ids(&api.expire_requests(SimTime::from_millis(1004))).is_empty(),
            "not before the period"
        );
        let retry = api.expire_requests(SimTime::from_millis(1005));
        let again = list_ids(&retry);
        assert_eq!(again.len(), 1, "{retry:?}");
        assert!(!api.is_ready());
        let listed = EtcdResponse::Range { revision: 1, kvs: Vec::new(), count: 0 };
        api.handle(
            ApiInput::EtcdResponse { id: again[0], response: listed },
            SimTime::from_millis(1006),
            &mut rng,
        );
        assert!(api.is_ready());
        assert_eq!(api.next_deadline(), None);
    }

    /// Events go on a lease of --event-ttl plus the reuse window (60 s), shared by the
    /// Events written while the lease has more than the TTL left.
    #[test]
    fn events_share_a_lease_for_its_reuse_window() {
        let mut h = Harness::new();
        let event = |name: &str| {
            Object::Event(crate::api::Event {
                metadata: ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() },
                reason: "Test".into(),
                ..Default::default()
            })
        };
        let r = h.call(ApiRequest::Create(event("a")));
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(h.lease_grants, 1);
        h.now = SimTime::from_secs(31);
        assert!(h.call(ApiRequest::Create(event("b"))).is_ok());
        assert_eq!(h.lease_grants, 1, "reused within 60 s");
        h.now = SimTime::from_secs(62);
        assert!(h.call(ApiRequest::Create(event("c"))).is_ok());
        assert_eq!(h.lease_grants, 2, "a new lease once less than the TTL is left");
        let pod_ok = h.call(ApiRequest::Create(pod("p")));
        assert!(pod_ok.is_ok());
        assert_eq!(h.lease_grants, 2, "objects without a TTL take no lease");
    }

    fn pod(name: &str) -> Object {
        let mut p = Pod {
            metadata: ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() },
            ..Default::default()
        };
        std::sync::Arc::make_mut(&mut p.spec).containers.push(crate::api::Container {
            name: "c".into(),
            image: "img".into(),
            ..Default::default()
        });
        Object::Pod(p)
    }

    #[test]
    fn create_defaults_and_conflicts() {
        let mut h = Harness::new();
        let mut gen = pod("");
        gen.meta_mut().generate_name = "web-".into();
        let created = h.call(ApiRequest::Create(gen)).unwrap();
        let name = &created.meta().name;
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        let p = created.as_pod().unwrap();
        assert_eq!(p.spec.scheduler_name, "default-scheduler");
        let tol: Vec<_> = p.spec.tolerations.iter().map(|t| (t.key.as_str(), t.toleration_seconds)).collect();
        assert_eq!(
            tol,
            vec![("node.kubernetes.io/not-ready", Some(300)), ("node.kubernetes.io/unreachable", Some(300))]
        );
        assert!(created.meta().resource_version > 0);

        let again = h.call(ApiRequest::Create(pod(name))).unwrap_err();
        assert_eq!(again.message, format!("pods \"{name}\" already exists"));

        // A stale resourceVersion conflicts; the current one succeeds.
        let mut stale = (*created).clone();
        stale.meta_mut().labels.insert("a".into(), "b".into());
        let ok = h.call(ApiRequest::Update(stale.clone())).unwrap();
        assert!(ok.meta().resource_version > created.meta().resource_version);
        let e = h.call(ApiRequest::Update(stale)).unwrap_err();
        assert!(e.is_conflict(), "{e:?}");
        assert!(e.message.contains("the object has been modified"));
    }

    /// Watches are triggered by index (by node for a node's pods, by name for one named
    /// object, by kind otherwise) and each gets exactly what passes its filter and
    /// nothing else.
    #[test]
    fn watches_by_node_name_and_kind_get_what_passes_their_filter() {
        let mut h = Harness::new();
        let watch = |h: &mut Harness, id: u64, spec: WatchSpec| {
            let o = h.api.handle(ApiInput::Watch { client: 2, watch_id: id, spec }, h.now, &mut h.rng);
            h.pump(o);
        };
        watch(
            &mut h,
            1,
            WatchSpec { kind: Some(Kind::Pod), node_name: Some("n1".into()), ..Default::default() },
        );
        watch(&mut h, 2, WatchSpec { kind: Some(Kind::Pod), name: Some("b".into()), ..Default::default() });
        watch(&mut h, 3, WatchSpec::kind(Kind::Pod));
        watch(&mut h, 4, WatchSpec { kind: Some(Kind::Node), name: Some("b".into()), ..Default::default() });
        h.out.clear();
        // `call` clears the outputs: keep each call's.
        let mut log = Vec::new();
        let a = h.call(ApiRequest::Create(pod("a")));
        log.append(&mut h.out);
        let b = h.call(ApiRequest::Create(pod("b")));
        log.append(&mut h.out);
        let bound = h.call(ApiRequest::Bind {
            namespace: "default".into(),
            name: "b".into(),
            uid: b.unwrap().meta().uid.clone(),
            node: "n1".into(),
        });
        assert!(a.is_ok() && bound.is_ok(), "{a:?} {bound:?}");
        log.append(&mut h.out);
        let seen = |id: u64| -> Vec<String> {
            let mut v = Vec::new();
            for o in &log {
                if let ApiOutput::WatchEvents { watch_id, events, .. } = o {
                    if *watch_id == id {
                        v.extend(events.iter().map(|e| format!("{:?} {}", e.type_, e.object.meta().name)));
                    }
                }
            }
            v
        };
        assert_eq!(seen(1), vec!["Added b"], "only pods bound to n1");
        assert_eq!(seen(2), vec!["Added b", "Modified b"], "only the pod named b");
        assert_eq!(seen(3), vec!["Added a", "Added b", "Modified b"]);
        assert!(seen(4).is_empty(), "a Node watch sees no pods");
    }

    #[test]
    fn namespace_must_exist_and_names_validate() {
        let mut h = Harness::new();
        let mut p = pod("x");
        p.meta_mut().namespace = "nowhere".into();
        assert_eq!(h.call(ApiRequest::Create(p)).unwrap_err().message, "namespaces \"nowhere\" not found");
        let e = h.call(ApiRequest::Create(pod("Bad_Name"))).unwrap_err();
        assert!(e.message.contains("a lowercase RFC 1123 subdomain"), "{e:?}");
    }

    #[test]
    fn bind_then_graceful_delete_then_grace_zero() {
        let mut h = Harness::new();
        let created = h.call(ApiRequest::Create(pod("p"))).unwrap();
        let uid = created.meta().uid.clone();
        // A kubelet's watch on node-1 sees the pod arrive when it is bound there.
        h.api.handle(
            ApiInput::Watch {
                client: 9,
                watch_id: 1,
                spec: WatchSpec {
                    kind: Some(Kind::Pod),
                    node_name: Some("node-1".into()),
                    ..Default::default()
                },
            },
            SimTime(1000),
            &mut h.rng,
        );
        let bind = ApiRequest::Bind {
            namespace: "default".into(),
            name: "p".into(),
            uid: uid.clone(),
            node: "node-1".into(),
        };
        let bound = h.call(bind.clone()).unwrap();
        assert_eq!(bound.as_pod().unwrap().spec.node_name, "node-1");
        let added = h.out.iter().any(|o| matches!(o, ApiOutput::WatchEvents { client: 9, events, .. } if events.iter().any(|e| e.type_ == WatchEventType::Added)));
        assert!(added, "{:?}", h.out);
        let e = h.call(bind).unwrap_err();
        assert_eq!(e.message, "pod p is already assigned to node \"node-1\"");

        let key = ObjectKey::new(Kind::Pod, "default", "p");
        let del = h
            .call(ApiRequest::Delete { key: key.clone(), grace_period_seconds: None, precondition_uid: None })
            .unwrap();
        assert!(del.meta().deletion_timestamp.is_some(), "bound pods are deleted gracefully");
        assert!(h.api.cache().get(&key).is_some());
        h.call(ApiRequest::Delete {
            key: key.clone(),
            grace_period_seconds: Some(0),
            precondition_uid: Some(uid),
        })
        .unwrap();
        assert!(h.api.cache().get(&key).is_none());
    }

    /// --request-timeout: a request etcd does not answer in time gets the timeout
    /// filter's 504, and etcd's late answer is dropped.
    #[test]
    fn a_request_unanswered_within_the_request_timeout_gets_a_504() {
        let mut h = Harness::new();
        let key = ObjectKey::new(Kind::Namespace, "", "default");
        let to_etcd = h.api.handle(
            ApiInput::ClientRequest { client: 1, tag: 9, request: ApiRequest::Get(key) },
            h.now,
            &mut h.rng,
        );
        let id = match &to_etcd[..] {
            [ApiOutput::ToEtcd { id, .. }] => *id,
            other => panic!("{other:?}"),
        };
        assert_eq!(h.api.next_deadline(), Some(h.now + std::time::Duration::from_secs(60)));
        assert!(h.api.expire_requests(h.now + std::time::Duration::from_secs(59)).is_empty());
        let out = h.api.expire_requests(h.now + std::time::Duration::from_secs(60));
        match &out[..] {
            [ApiOutput::Response { tag: 9, result: Err(e), .. }] => {
                assert_eq!((e.code, e.reason), (504, "Timeout"));
                assert_eq!(
                    e.message,
                    "Timeout: request did not complete within requested timeout - context deadline exceeded"
                );
            }
            other => panic!("{other:?}"),
        }
        let late = EtcdResponse::Range { revision: 5, kvs: Vec::new(), count: 0 };
        let out = h.api.handle(ApiInput::EtcdResponse { id, response: late }, h.now, &mut h.rng);
        assert!(out.is_empty(), "answered twice: {out:?}");
    }

    #[test]
    fn status_and_spec_travel_separately() {
        let mut h = Harness::new();
        let mut n = Node::default();
        n.metadata.name = "node-1".into();
        let created = h.call(ApiRequest::Create(Object::Node(n))).unwrap();
        let mut with_status = created.as_node().unwrap().clone();
        with_status.status.node_info.kubelet_version = "v1.33.0".into();
        with_status.spec.unschedulable = true;
        let after = h.call(ApiRequest::UpdateStatus(Object::Node(with_status))).unwrap();
        let after = after.as_node().unwrap();
        assert_eq!(after.status.node_info.kubelet_version, "v1.33.0");
        assert!(!after.spec.unschedulable, "UpdateStatus must not change spec");
    }
}

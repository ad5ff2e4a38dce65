//! The `drain` timeline action: `kubectl drain` (k8s.io/kubectl/pkg/drain, v1.33). The
//! node is cordoned; its pods are checked (DaemonSet pods need `ignoreDaemonSets`,
//! pods without a controller need `force`, mirror pods are skipped) and evicted through
//! the Eviction API. An eviction a PodDisruptionBudget refuses (429) is retried every
//! 5 s; the drain ends when every evicted pod is gone.
//!
//! The step's own result is its first pass, as the person running kubectl sees it: the
//! first refusals are its error (`expectError` can name upstream's message), while the
//! retries go on in the background of the timeline.

use std::time::Duration;

use kubesim_model::api::{Kind, Object, ObjectKey, PodPhase};
use kubesim_model::client::ApiRequest;
use kubesim_model::time::SimTime;
use kubesim_sim::{now, World};

/// kubectl drain: a refused eviction is retried after 5 s (drain.go evictPods).
pub const EVICTION_RETRY: Duration = Duration::from_secs(5);
/// kubectl drain waitForDelete polls every second.
pub const DELETE_POLL: Duration = Duration::from_secs(1);
/// `kubernetes.io/config.mirror`: static pods' mirrors are never drained.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// What the scenario asked for.
#[derive(Clone, Debug)]
pub struct Drain {
    pub node: String,
    pub ignore_daemon_sets: bool,
    pub force: bool,
    pub grace_period_seconds: Option<i64>,
}

/// A drain still evicting or waiting for deletions.
#[derive(Debug)]
pub struct Draining {
    drain: Drain,
    via: Option<String>,
    /// Pods still to evict.
    pending: Vec<ObjectKey>,
    /// Evicted pods (key, uid) not yet gone.
    evicted: Vec<(ObjectKey, String)>,
    pub next: SimTime,
}

/// The pods to evict (GetPodsForDeletion), or kubectl's error.
fn pods_for_deletion(world: &World, d: &Drain) -> Result<Vec<ObjectKey>, String> {
    world.state(|cache| {
        let (mut keep, mut ds, mut unmanaged) = (Vec::new(), Vec::new(), Vec::new());
        for o in cache.pods_on_node(&d.node) {
            let Some(p) = o.as_pod() else { continue };
            let m = &p.metadata;
            if m.annotations.contains_key(MIRROR_ANNOTATION) {
                continue;
            }
            let finished = matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed);
            match m.controller_of() {
                Some(c) if c.kind == "DaemonSet" && !finished => {
                    if !d.ignore_daemon_sets {
                        ds.push(format!("{}/{}", m.namespace, m.name));
                    }
                    continue;
                }
                None if !finished && !d.force => {
                    unmanaged.push(format!("{}/{}", m.namespace, m.name));
                    continue;
                }
                _ => {}
            }
            keep.push(o.key());
        }
        let mut errors = Vec::new();
        if !unmanaged.is_empty() {
            errors.push(format!(
                "cannot delete Pods that declare no controller (use --force to override): {}",
                unmanaged.join(", ")
            ));
        }
        if !ds.is_empty() {
            errors.push(format!(
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {}",
                ds.join(", ")
            ));
        }
        if errors.is_empty() {
            Ok(keep)
        } else {
            Err(format!("unable to drain node {:?} due to error: [{}]", d.node, errors.join(", ")))
        }
    })
}

async fn call(world: &World, via: Option<&str>, req: ApiRequest) -> kubesim_model::client::ApiResult {
    match via {
        Some(h) => world.api_via(h, req).await,
        None => world.api(req).await,
    }
}

impl Drain {
    /// Cordons the node and makes the first eviction pass.
    pub async fn start(&self, world: &World, via: Option<&str>) -> (Result<(), String>, Option<Draining>) {
        let key = ObjectKey::new(Kind::Node, "", self.node.clone());
        for _ in 0..10 {
            let current = match call(world, via, ApiRequest::Get(key.clone())).await {
                Ok(c) => c,
                Err(e) => return (Err(e.message), None),
            };
            let mut next = (*current).clone();
            if let Object::Node(n) = &mut next {
                if n.spec.unschedulable {
                    break;
                }
                n.spec.unschedulable = true;
            }
            match call(world, via, ApiRequest::Update(next)).await {
                Err(e) if e.is_conflict() => continue,
                Err(e) => return (Err(e.message), None),
                Ok(_) => break,
            }
        }
        let pending = match pods_for_deletion(world, self) {
            Ok(p) => p,
            Err(e) => return (Err(e), None),
        };
        let mut d = Draining {
            drain: self.clone(),
            via: via.map(String::from),
            pending,
            evicted: Vec::new(),
            next: now(),
        };
        let first = d.evict_pass(world).await;
        (first, Some(d))
    }
}

impl Draining {
    /// Evicts what is pending; the refusals' messages as kubectl prints them.
    async fn evict_pass(&mut self, world: &World) -> Result<(), String> {
        let mut errors = Vec::new();
        let mut still = Vec::new();
        for key in std::mem::take(&mut self.pending) {
            let req = ApiRequest::Evict {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                grace_period_seconds: self.drain.grace_period_seconds,
            };
            match call(world, self.via.as_deref(), req).await {
                Ok(o) => self.evicted.push((key, o.meta().uid.clone())),
                Err(e) if e.is_not_found() => {}
                Err(e) if e.code == 429 => {
                    errors.push(format!(
                        "error when evicting pods/{:?} -n {:?} (will retry after 5s): {}",
                        key.name, key.namespace, e.message
                    ));
                    still.push(key);
                }
                Err(e) => errors.push(format!(
                    "error when evicting pods/{:?} -n {:?}: {}",
                    key.name, key.namespace, e.message
                )),
            }
        }
        self.pending = still;
        self.next = now() + if self.pending.is_empty() { DELETE_POLL } else { EVICTION_RETRY };
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// One retry (or deletion poll); true when the drain is done.
    pub async fn step(&mut self, world: &World) -> bool {
        if !self.pending.is_empty() {
            let _ = self.evict_pass(world).await;
            return false;
        }
        let gone = |k: &ObjectKey, uid: &str| world.state(|c| c.get(k).is_none_or(|o| o.meta().uid != uid));
        self.evicted.retain(|(k, uid)| !gone(k, uid));
        if self.evicted.is_empty() {
            world.action("drained", &self.drain.node);
            return true;
        }
        self.next = now() + DELETE_POLL;
        false
    }
}

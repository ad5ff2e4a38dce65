//! The ReplicaSet controller (pkg/controller/replicaset): keeps `spec.replicas` pods
//! matching the selector, creating in slow-start batches (1, 2, 4, ... up to
//! burstReplicas 500 a sync) and deleting the least valuable pods first; expectations keep
//! it from acting twice on the same change.
//!
//! The same controller runs ReplicationControllers (pkg/controller/replication: the
//! ReplicaSet controller over ReplicationControllers converted to ReplicaSets, with its
//! own event source `replication-controller`).
//!
//! Pods are claimed as upstream's ControllerRefManager claims them (claimPods): orphans
//! matching the selector are adopted and count at once, owned pods that no longer match
//! are released (and replaced).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use super::controller_ref::Claimer;
use super::expectations::Expectations;
use super::{controller_ref, Controller, Requests};
use crate::api::{
    Kind, Object, ObjectKey, ObjectMeta, Pod, PodPhase, ReplicaSet, EVENT_NORMAL, EVENT_WARNING,
};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, WatchEvent};
use crate::time::SimTime;

/// replicaset_controller.go BurstReplicas.
pub const BURST_REPLICAS: usize = 500;
/// controller_utils.go SlowStartInitialBatchSize.
pub const SLOW_START_INITIAL_BATCH_SIZE: usize = 1;

#[derive(Debug, Default)]
struct State {
    /// A slow-start run: the pods still to create and the next batch size.
    slow_start: Option<(usize, usize)>,
    /// Requests of the current batch still awaiting a response.
    in_flight: usize,
    batch_failed: bool,
}

/// What a ReplicaSet's status counts, kept per owner uid as pod events arrive, so a sync
/// does not walk thousands of pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    active: usize,
    ready: usize,
    labeled: usize,
    /// Active pods it controls that its selector no longer matches (to release).
    unmatched: usize,
}

/// A pod's last contribution to its owner's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PodMemo {
    owner: String,
    owner_name: String,
    active: bool,
    ready: bool,
    labeled: bool,
    unmatched: bool,
}

pub struct ReplicaSetController {
    /// ReplicaSet, or ReplicationController.
    kind: Kind,
    counts: BTreeMap<String, Counts>,
    memo: BTreeMap<(String, String), PodMemo>,
    dirty: BTreeSet<ObjectKey>,
    state: BTreeMap<String, State>,
    routes: BTreeMap<u64, (ObjectKey, Op)>,
    /// Orphan pods to adopt, adoptions and releases in flight.
    claimer: Claimer,
    /// Creates and deletes not yet seen, by `namespace/name`
    /// (UIDTrackingControllerExpectations).
    expectations: Expectations,
    next_tag: u64,
    recorder: EventRecorder,
    pending_events: Vec<(u64, ApiRequest)>,
}

/// What a request was for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Create,
    /// The pod deleted.
    Delete(String),
    Status,
    /// An adoption or a release (ControllerRefManager).
    Claim,
}

impl Default for ReplicaSetController {
    fn default() -> Self {
        Self::new()
    }
}

/// Pods the controller counts: not terminal, not being deleted (controller.FilterActivePods).
fn is_active(p: &Pod) -> bool {
    !matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed) && p.metadata.deletion_timestamp.is_none()
}

/// Pods controlled by the owner with this uid (through the cache's owner index).
pub fn owned_pods<'a>(cache: &'a Cache, _ns: &'a str, uid: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
    cache.controlled_by(uid).filter_map(|o| o.as_pod())
}

/// Ranking for scale-down (controller.ActivePodsWithRanks, simplified to its main keys):
/// unassigned before assigned, pending before running, not ready before ready, newer
/// before older. Smaller = deleted first.
fn delete_rank(p: &Pod) -> (bool, u8, bool, std::cmp::Reverse<SimTime>, String) {
    let phase = match p.phase() {
        PodPhase::Pending => 0,
        PodPhase::Unknown => 1,
        _ => 2,
    };
    (
        !p.spec.node_name.is_empty(),
        phase,
        p.is_ready(),
        std::cmp::Reverse(p.metadata.creation_timestamp.unwrap_or_default()),
        p.metadata.name.clone(),
    )
}

impl ReplicaSetController {
    pub fn new() -> Self {
        Self::of(Kind::ReplicaSet, "replicaset-controller")
    }

    /// The replication manager: ReplicationControllers as ReplicaSets.
    pub fn for_replication_controllers() -> Self {
        Self::of(Kind::ReplicationController, "replication-controller")
    }

    fn of(kind: Kind, component: &str) -> Self {
        ReplicaSetController {
            kind,
            counts: BTreeMap::new(),
            memo: BTreeMap::new(),
            dirty: BTreeSet::new(),
            state: BTreeMap::new(),
            routes: BTreeMap::new(),
            claimer: Claimer::new(Kind::Pod),
            expectations: Expectations::default(),
            next_tag: 0,
            recorder: EventRecorder::new(component, ""),
            pending_events: Vec::new(),
        }
    }

    /// Moves a pod's contribution to its owner's counts from its last state to this one.
    /// Returns the owner the pod no longer counts for, if it left one.
    fn count_pod(&mut self, ev: &WatchEvent, cache: &Cache) -> Option<String> {
        let p = ev.object.as_pod()?;
        let k = (p.metadata.namespace.clone(), p.metadata.name.clone());
        let kind = self.kind;
        let new = match (ev.type_, p.metadata.controller_of().filter(|r| r.kind == kind.as_str())) {
            (crate::client::WatchEventType::Deleted, _) | (_, None) => None,
            (_, Some(r)) => {
                let owner = cache.get(&ObjectKey::new(kind, p.metadata.namespace.clone(), r.name.clone()));
                let view = owner.and_then(|o| self.view(o));
                let labels = &p.metadata.labels;
                let labeled = view.as_ref().is_none_or(|rs| {
                    rs.spec.template.metadata.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
                });
                let matches = view.as_ref().is_none_or(|rs| rs.spec.selector.matches(labels));
                let live = is_active(p);
                let active = live && matches;
                Some(PodMemo {
                    owner: r.uid.clone(),
                    owner_name: r.name.clone(),
                    active,
                    ready: active && p.is_ready(),
                    labeled: active && labeled,
                    unmatched: live && !matches,
                })
            }
        };
        let old = match &new {
            Some(n) => self.memo.insert(k, n.clone()),
            None => self.memo.remove(&k),
        };
        if old == new {
            return None;
        }
        let left = old
            .as_ref()
            .filter(|o| new.as_ref().is_none_or(|n| n.owner != o.owner))
            .map(|o| o.owner_name.clone());
        if let Some(o) = old {
            let c = self.counts.entry(o.owner.clone()).or_default();
            c.active -= usize::from(o.active);
            c.ready -= usize::from(o.ready);
            c.labeled -= usize::from(o.labeled);
            c.unmatched -= usize::from(o.unmatched);
        }
        if let Some(n) = new {
            let c = self.counts.entry(n.owner).or_default();
            c.active += usize::from(n.active);
            c.ready += usize::from(n.ready);
            c.labeled += usize::from(n.labeled);
            c.unmatched += usize::from(n.unmatched);
        }
        left
    }

    /// The object as the ReplicaSet it is run as.
    fn view<'a>(&self, o: &'a Object) -> Option<std::borrow::Cow<'a, ReplicaSet>> {
        match (self.kind, o) {
            (Kind::ReplicaSet, Object::ReplicaSet(rs)) => Some(std::borrow::Cow::Borrowed(rs)),
            (Kind::ReplicationController, Object::ReplicationController(rc)) => {
                Some(std::borrow::Cow::Owned(rc.as_replica_set()))
            }
            _ => None,
        }
    }

    fn send_event(&mut self, r: ApiRequest) {
        self.next_tag += 1;
        self.pending_events.push((self.next_tag, r));
    }

    fn send(&mut self, out: &mut Requests, rs: &ObjectKey, op: Op, r: ApiRequest) {
        self.next_tag += 1;
        self.routes.insert(self.next_tag, (rs.clone(), op));
        out.push(self.next_tag, r);
    }

    /// claimPods: adopts the matching orphans and releases the owned pods that no longer
    /// match; returns what the adopted pods add to the counts until their events arrive,
    /// and those pods.
    fn claim_pods(
        &mut self,
        key: &ObjectKey,
        obj: &Object,
        counts: Counts,
        cache: &Cache,
        out: &mut Requests,
    ) -> (Counts, Vec<Arc<Object>>) {
        let Some(rs) = self.view(obj) else { return (Counts::default(), Vec::new()) };
        let rs = rs.into_owned();
        let active = |o: &Object| o.as_pod().is_some_and(is_active);
        let mut patches = Vec::new();
        let adopted = self.claimer.adopt_orphans(obj, &rs.spec.selector, cache, active, &mut patches);
        if counts.unmatched > 0 {
            let owned = cache.controlled_by(&rs.metadata.uid);
            let matches = |o: &Object| rs.spec.selector.matches(&o.meta().labels);
            self.claimer.release_unmatched(&rs.metadata, matches, owned, active, &mut patches);
        }
        for r in patches {
            self.send(out, key, Op::Claim, r);
        }
        // Adopted pods count in this sync as upstream's claimPods returns them.
        let mut c = Counts::default();
        for p in adopted.iter().filter_map(|o| o.as_pod()) {
            c.active += 1;
            c.ready += usize::from(p.is_ready());
            let labels = &p.metadata.labels;
            c.labeled +=
                usize::from(rs.spec.template.metadata.labels.iter().all(|(k, v)| labels.get(k) == Some(v)));
        }
        (c, adopted)
    }

    fn sync(&mut self, key: &ObjectKey, cache: &Cache, now: SimTime, out: &mut Requests) {
        let Some(obj) = cache.get(key).cloned() else {
            let sk = format!("{}/{}", key.namespace, key.name);
            self.state.remove(&sk);
            self.expectations.delete(&sk);
            return;
        };
        let Some(rs) = self.view(&obj) else { return };
        let rs: &ReplicaSet = &rs;
        let uid = rs.metadata.uid.clone();
        let mut counts = self.counts.get(&uid).copied().unwrap_or_default();
        let (adopted, adopted_pods) = self.claim_pods(key, &obj, counts, cache, out);
        counts.active += adopted.active;
        counts.ready += adopted.ready;
        counts.labeled += adopted.labeled;
        let active = counts.active;
        let sk = format!("{}/{}", key.namespace, key.name);
        let expectations_met = self.expectations.satisfied(&sk, now);
        let st = self.state.entry(sk.clone()).or_default();
        let satisfied = expectations_met && st.in_flight == 0;
        let want = rs.spec.replicas.unwrap_or(1).max(0) as usize;
        let mut reqs: Vec<ApiRequest> = Vec::new();
        let mut creates = 0;
        if rs.metadata.deletion_timestamp.is_none() {
            if let Some((remaining, batch)) = st.slow_start {
                if st.in_flight == 0 {
                    if st.batch_failed || remaining == 0 {
                        // The run is over: look again once its pods are observed.
                        st.slow_start = None;
                        self.dirty.insert(key.clone());
                        out.wake(now);
                    } else {
                        let n = batch.min(remaining);
                        creates = n;
                        st.slow_start = Some((remaining - n, batch * 2));
                    }
                }
            } else if satisfied && active < want {
                let diff = (want - active).min(BURST_REPLICAS);
                let n = SLOW_START_INITIAL_BATCH_SIZE.min(diff);
                creates = n;
                st.slow_start = Some((diff - n, n * 2));
                st.batch_failed = false;
            } else if satisfied && active > want {
                // getPodsToDelete ranks the claimed pods: those it controls that still
                // match (not the ones being released) and the ones it adopts now.
                let mut ranked: Vec<&Pod> = owned_pods(cache, &key.namespace, &uid)
                    .filter(|p| is_active(p) && rs.spec.selector.matches(&p.metadata.labels))
                    .chain(adopted_pods.iter().filter_map(|o| o.as_pod()))
                    .collect();
                ranked.sort_by_key(|p| delete_rank(p));
                for p in ranked.into_iter().take((active - want).min(BURST_REPLICAS)) {
                    self.expectations.expect_deletion(&sk, &p.metadata.name, now);
                    reqs.push(ApiRequest::Delete {
                        key: ObjectKey::new(Kind::Pod, p.metadata.namespace.clone(), p.metadata.name.clone()),
                        grace_period_seconds: None,
                        precondition_uid: Some(p.metadata.uid.clone()),
                    });
                }
            }
        }
        if creates > 0 {
            self.expectations.expect_creations(&sk, creates, now);
            self.state.get_mut(&sk).expect("state").in_flight += creates;
            let mut template = rs.spec.template.clone();
            let pod = Pod {
                metadata: ObjectMeta {
                    generate_name: format!("{}-", rs.metadata.name),
                    namespace: rs.metadata.namespace.clone(),
                    labels: std::mem::take(&mut template.metadata.labels),
                    annotations: std::mem::take(&mut template.metadata.annotations),
                    owner_references: vec![controller_ref(&obj)],
                    ..Default::default()
                },
                spec: template.spec,
                ..Default::default()
            };
            for _ in 0..creates {
                reqs.push(ApiRequest::Create(Object::Pod(pod.clone())));
            }
        }
        for r in reqs {
            let op = match &r {
                ApiRequest::Delete { key, .. } => Op::Delete(key.name.clone()),
                _ => Op::Create,
            };
            if op != Op::Create {
                self.state.get_mut(&sk).expect("state").in_flight += 1;
            }
            self.send(out, key, op, r);
        }
        self.update_status(&obj, rs, counts, cache, now, out);
    }

    fn update_status(
        &mut self,
        obj: &Arc<Object>,
        rs: &ReplicaSet,
        c: Counts,
        cache: &Cache,
        now: SimTime,
        out: &mut Requests,
    ) {
        let mut s = rs.status.clone();
        s.replicas = c.active as i32;
        s.fully_labeled_replicas = c.labeled as i32;
        s.ready_replicas = c.ready as i32;
        s.available_replicas = if rs.spec.min_ready_seconds == 0 {
            c.ready as i32
        } else {
            owned_pods(cache, &rs.metadata.namespace, &rs.metadata.uid)
                .filter(|p| is_active(p) && p.is_available(rs.spec.min_ready_seconds, now))
                .count() as i32
        };
        s.observed_generation = rs.metadata.generation;
        if s != rs.status {
            let next = match &**obj {
                Object::ReplicationController(rc) => {
                    let mut n = rc.clone();
                    n.status = s;
                    n.metadata.resource_version = 0;
                    Object::ReplicationController(n)
                }
                _ => {
                    let mut n = rs.clone();
                    n.status = s;
                    n.metadata.resource_version = 0;
                    Object::ReplicaSet(n)
                }
            };
            let key = obj.key();
            self.send(out, &key, Op::Status, ApiRequest::UpdateStatus(next));
            let sk = format!("{}/{}", key.namespace, key.name);
            if let Some(st) = self.state.get_mut(&sk) {
                st.in_flight += 1;
            }
        }
        // Pods become available minReadySeconds after Ready: come back then.
        if rs.spec.min_ready_seconds > 0 {
            out.wake(now + std::time::Duration::from_secs(1));
        }
    }
}

impl Controller for ReplicaSetController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        let o = &ev.object;
        match o.kind() {
            k if k == self.kind => {
                self.dirty.insert(o.key());
            }
            Kind::Pod => {
                let m = o.meta();
                let kind = self.kind;
                if let Some(left) = self.count_pod(ev, _cache) {
                    self.dirty.insert(ObjectKey::new(kind, m.namespace.clone(), left));
                }
                // An orphan: the sets whose selector matches it may adopt it
                // (addPod/updatePod's getPodReplicaSets).
                let view = |o: &Object| match o {
                    Object::ReplicaSet(rs) => Some(rs.spec.selector.clone()),
                    Object::ReplicationController(rc) => Some(rc.as_replica_set().spec.selector),
                    _ => None,
                };
                let wake = self.claimer.observe(ev, _cache, kind, view);
                if o.as_pod().is_some_and(is_active) {
                    self.dirty.extend(wake);
                }
                if let Some(r) = m.controller_of().filter(|r| r.kind == kind.as_str()) {
                    // addPod: CreationObserved; updatePod with a deletionTimestamp and
                    // deletePod: DeletionObserved.
                    let sk = format!("{}/{}", m.namespace, r.name);
                    match ev.type_ {
                        // addPod: a pod already being deleted is a deletion observed.
                        crate::client::WatchEventType::Added if m.deletion_timestamp.is_some() => {
                            self.expectations.deletion_observed(&sk, &m.name)
                        }
                        crate::client::WatchEventType::Added => self.expectations.creation_observed(&sk),
                        crate::client::WatchEventType::Deleted => {
                            self.expectations.deletion_observed(&sk, &m.name)
                        }
                        _ if m.deletion_timestamp.is_some() => {
                            self.expectations.deletion_observed(&sk, &m.name)
                        }
                        _ => {}
                    }
                    self.dirty.insert(ObjectKey::new(kind, m.namespace.clone(), r.name.clone()));
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, cache: &Cache, now: SimTime) {
        let Some((key, op)) = self.routes.remove(&tag) else { return };
        let sk = format!("{}/{}", key.namespace, key.name);
        if op == Op::Claim {
            // A failed adoption (someone else's now, or gone) stops counting; a
            // successful one counts until the pod's event shows the reference.
            if result.is_err() {
                self.claimer.on_failure();
            }
            self.dirty.insert(key);
            return;
        }
        if let Some(st) = self.state.get_mut(&sk) {
            st.in_flight = st.in_flight.saturating_sub(1);
        }
        let Some(rs) = cache.get(&key).cloned() else { return };
        match (op == Op::Create, result) {
            (true, Ok(pod)) => {
                let msg = format!("Created pod: {}", pod.meta().name);
                let r = self.recorder.record(&rs, EVENT_NORMAL, "SuccessfulCreate", &msg, now);
                self.send_event(r);
            }
            (true, Err(e)) => {
                // A failed create is never observed: lower the expectations now.
                self.expectations.creation_observed(&sk);
                if let Some(st) = self.state.get_mut(&sk) {
                    st.batch_failed = true;
                }
                let msg = format!("Error creating: {}", e.message);
                let r = self.recorder.record(&rs, EVENT_WARNING, "FailedCreate", &msg, now);
                self.send_event(r);
            }
            (false, Ok(o)) if matches!(op, Op::Delete(_)) => {
                let msg = format!("Deleted pod: {}", o.meta().name);
                let r = self.recorder.record(&rs, EVENT_NORMAL, "SuccessfulDelete", &msg, now);
                self.send_event(r);
            }
            (false, Err(_)) => {
                if let Op::Delete(pod) = &op {
                    self.expectations.deletion_observed(&sk, pod);
                }
            }
            _ => {}
        }
        self.dirty.insert(key);
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for (tag, r) in std::mem::take(&mut self.pending_events) {
            out.push(tag, r);
        }
        let dirty = std::mem::take(&mut self.dirty);
        for key in dirty {
            self.sync(&key, cache, now, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{WatchEvent, WatchEventType};
    use rand::SeedableRng;
    use std::sync::Arc;

    fn rs(replicas: i32) -> Arc<Object> {
        let mut r = ReplicaSet {
            metadata: ObjectMeta {
                name: "web".into(),
                namespace: "default".into(),
                uid: "rs-uid".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        r.spec.replicas = Some(replicas);
        Arc::new(Object::ReplicaSet(r))
    }

    /// Creates happen in slow-start batches 1, 2, 4, 8 ... each after the previous one's
    /// responses, and a later sync continues past one burst.
    #[test]
    fn slow_start_batches_double() {
        let mut c = ReplicaSetController::new();
        let mut cache = Cache::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ev = WatchEvent { type_: WatchEventType::Added, object: rs(10) };
        cache.apply(&ev);
        c.on_event(&ev, &cache);
        let mut sizes = Vec::new();
        let mut n = 0;
        for _ in 0..10 {
            let mut out = Requests::default();
            c.reconcile(&cache, SimTime::ZERO, &mut rng, &mut out);
            let creates: Vec<_> =
                out.items.iter().filter(|(_, r)| matches!(r, ApiRequest::Create(Object::Pod(_)))).collect();
            if !creates.is_empty() {
                sizes.push(creates.len());
            }
            for (tag, r) in &out.items {
                if let ApiRequest::Create(Object::Pod(p)) = r {
                    n += 1;
                    let mut p = p.clone();
                    p.metadata.name = format!("web-{n}");
                    p.metadata.uid = format!("pod-{n}");
                    let obj = Arc::new(Object::Pod(p));
                    c.on_response(*tag, &Ok(obj.clone()), &cache, SimTime::ZERO);
                    let ev = WatchEvent { type_: WatchEventType::Added, object: obj };
                    cache.apply(&ev);
                    c.on_event(&ev, &cache);
                } else {
                    c.on_response(*tag, &Ok(rs(10)), &cache, SimTime::ZERO);
                }
            }
        }
        assert_eq!(sizes, vec![1, 2, 4, 3]);
        assert_eq!(owned_pods(&cache, "default", "rs-uid").count(), 10);
    }

    fn labeled_rs(replicas: i32) -> Arc<Object> {
        let mut o = (*rs(replicas)).clone();
        if let Object::ReplicaSet(r) = &mut o {
            r.spec.selector.match_labels.insert("app".into(), "web".into());
            r.spec.template.metadata.labels.insert("app".into(), "web".into());
        }
        Arc::new(o)
    }

    fn bare_pod(name: &str, app: &str, owner: Option<&Object>) -> Arc<Object> {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.namespace = "default".into();
        p.metadata.uid = format!("{name}-uid");
        p.metadata.labels.insert("app".into(), app.into());
        p.metadata.owner_references = owner.map(controller_ref).into_iter().collect();
        Arc::new(Object::Pod(p))
    }

    fn feed(c: &mut ReplicaSetController, cache: &mut Cache, type_: WatchEventType, object: Arc<Object>) {
        let ev = WatchEvent { type_, object };
        cache.apply(&ev);
        c.on_event(&ev, cache);
    }

    fn pass(c: &mut ReplicaSetController, cache: &Cache) -> Vec<(u64, ApiRequest)> {
        let mut out = Requests::default();
        c.reconcile(cache, SimTime::ZERO, &mut ChaCha8Rng::seed_from_u64(1), &mut out);
        out.items
    }

    /// Orphans matching the selector are adopted and count at once: a set of 3 with two
    /// matching bare pods creates one pod; a pod with other labels is left alone.
    #[test]
    fn matching_orphans_are_adopted_and_count() {
        let mut c = ReplicaSetController::new();
        let mut cache = Cache::default();
        feed(&mut c, &mut cache, WatchEventType::Added, bare_pod("a", "web", None));
        feed(&mut c, &mut cache, WatchEventType::Added, bare_pod("b", "web", None));
        feed(&mut c, &mut cache, WatchEventType::Added, bare_pod("c", "db", None));
        let set = labeled_rs(3);
        feed(&mut c, &mut cache, WatchEventType::Added, set.clone());
        let items = pass(&mut c, &cache);
        let adopted: Vec<_> = items
            .iter()
            .filter_map(|(_, r)| match r {
                ApiRequest::Patch { key, patch: crate::client::Patch::AdoptByController { owner, uid } } => {
                    assert_eq!(owner.uid, "rs-uid");
                    assert_eq!(*uid, format!("{}-uid", key.name));
                    Some(key.name.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(adopted, ["a", "b"]);
        let creates = items.iter().filter(|(_, r)| matches!(r, ApiRequest::Create(_))).count();
        assert_eq!(creates, 1);
        // Once the adoptions show in the cache, nothing more is adopted or created.
        for (tag, r) in &items {
            if let ApiRequest::Patch { key, .. } = r {
                let adopted = bare_pod(&key.name, "web", Some(&set));
                c.on_response(*tag, &Ok(adopted.clone()), &cache, SimTime::ZERO);
                feed(&mut c, &mut cache, WatchEventType::Modified, adopted);
            }
        }
        assert_eq!(c.counts["rs-uid"].active, 2);
        let again = pass(&mut c, &cache);
        assert!(again.iter().all(|(_, r)| !matches!(r, ApiRequest::Patch { .. })), "{again:?}");
    }

    /// A pod relabeled out of the selector is released and no longer counts, so the set
    /// replaces it; a set being deleted releases nothing.
    #[test]
    fn unmatched_pods_are_released() {
        let mut c = ReplicaSetController::new();
        let mut cache = Cache::default();
        let set = labeled_rs(1);
        feed(&mut c, &mut cache, WatchEventType::Added, set.clone());
        feed(&mut c, &mut cache, WatchEventType::Added, bare_pod("a", "web", Some(&set)));
        for (tag, _) in pass(&mut c, &cache) {
            c.on_response(tag, &Ok(set.clone()), &cache, SimTime::ZERO);
        }
        feed(&mut c, &mut cache, WatchEventType::Modified, bare_pod("a", "debug", Some(&set)));
        let items = pass(&mut c, &cache);
        let released = items.iter().any(|(_, r)| {
            matches!(r, ApiRequest::Patch { key, patch: crate::client::Patch::ReleaseFromController { owner_uid, .. } }
                if key.name == "a" && owner_uid == "rs-uid")
        });
        assert!(released, "{items:?}");
        assert_eq!(items.iter().filter(|(_, r)| matches!(r, ApiRequest::Create(_))).count(), 1);
    }

    /// Two sets whose selectors overlap both try to adopt one orphan (each sends its own
    /// patch, as upstream's syncs do); the loser's patch is refused, and once the pod shows
    /// its controller the loser no longer counts it and makes its own pods.
    #[test]
    fn overlapping_selectors_adopt_once() {
        let mut c = ReplicaSetController::new();
        let mut cache = Cache::default();
        feed(&mut c, &mut cache, WatchEventType::Added, bare_pod("a", "web", None));
        let one = labeled_rs(1);
        let mut two = (*labeled_rs(1)).clone();
        two.meta_mut().name = "web2".into();
        two.meta_mut().uid = "rs2-uid".into();
        let two = Arc::new(two);
        feed(&mut c, &mut cache, WatchEventType::Added, one.clone());
        feed(&mut c, &mut cache, WatchEventType::Added, two.clone());
        let items = pass(&mut c, &cache);
        let adopters: Vec<String> = items
            .iter()
            .filter_map(|(_, r)| match r {
                ApiRequest::Patch {
                    patch: crate::client::Patch::AdoptByController { owner, .. }, ..
                } => Some(owner.name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(adopters, ["web", "web2"]);
        assert!(items.iter().all(|(_, r)| !matches!(r, ApiRequest::Create(_))), "both count it for now");
        for (tag, r) in &items {
            let result = match r {
                ApiRequest::Patch {
                    patch: crate::client::Patch::AdoptByController { owner, .. }, ..
                } if owner.name == "web2" => Err(crate::client::ApiError::invalid(
                    Kind::Pod,
                    "a",
                    "Only one reference can have Controller set to true",
                )),
                _ => Ok(one.clone()),
            };
            c.on_response(*tag, &result, &cache, SimTime::ZERO);
        }
        feed(&mut c, &mut cache, WatchEventType::Modified, bare_pod("a", "web", Some(&one)));
        let again = pass(&mut c, &cache);
        let creates: Vec<_> = again.iter().filter(|(_, r)| matches!(r, ApiRequest::Create(_))).collect();
        assert_eq!(creates.len(), 1, "web2 makes its own pod: {again:?}");
    }
}

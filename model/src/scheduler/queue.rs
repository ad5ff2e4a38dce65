//! The scheduling queue as v1.33 runs it (pkg/scheduler/backend/queue/scheduling_queue.go):
//! activeQ ordered by PrioritySort (priority, then the time the pod entered the queue),
//! backoffQ for pods waiting out their backoff, unschedulablePods for pods a plugin
//! rejected. With SchedulerQueueingHints (on by default) a cluster event moves a parked
//! pod only when a plugin that rejected it says the event may help; with
//! SchedulerPopFromBackoffQ (beta, on in v1.33) an empty activeQ pops from backoffQ.
//! Backoff is podInitialBackoffSeconds doubled per attempt up to podMaxBackoffSeconds;
//! every 30 s pods parked for podMaxInUnschedulablePodsDuration (5 min) move out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::framework::PodInfo;
use super::plugins::PluginId;
use crate::api::Node;
use crate::time::SimTime;

/// Identifies a queued pod: namespace/name.
pub type PodKey = String;

/// scheduling_queue.go: flushBackoffQCompleted runs every second.
pub const BACKOFF_FLUSH_PERIOD: Duration = Duration::from_secs(1);
/// flushUnschedulablePodsLeftover runs every 30 s.
pub const UNSCHEDULABLE_FLUSH_PERIOD: Duration = Duration::from_secs(30);

/// `framework.QueueingHint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    Queue,
    QueueSkip,
}

impl Hint {
    /// Queue when the event may help, QueueSkip otherwise.
    pub fn queue_if(may_help: bool) -> Hint {
        if may_help {
            Hint::Queue
        } else {
            Hint::QueueSkip
        }
    }
}

/// The node fields whose change is an event (framework.ActionType for Node updates,
/// from nodeSchedulingPropertiesChange): a status update that only moves heartbeat
/// times is none of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeChange {
    pub allocatable: bool,
    pub label: bool,
    /// Taints or spec.unschedulable (NodeSpecUnschedulableChange is an UpdateNodeTaint).
    pub taint: bool,
    /// Conditions other than their heartbeat times.
    pub condition: bool,
    pub annotation: bool,
}

impl NodeChange {
    pub fn between(old: &Node, new: &Node) -> NodeChange {
        let strip = |n: &Node| {
            n.status
                .conditions
                .iter()
                .map(|c| {
                    (c.type_.clone(), c.status, c.reason.clone(), c.message.clone(), c.last_transition_time)
                })
                .collect::<Vec<_>>()
        };
        NodeChange {
            allocatable: old.status.allocatable != new.status.allocatable,
            label: old.metadata.labels != new.metadata.labels,
            taint: old.spec.taints != new.spec.taints || old.spec.unschedulable != new.spec.unschedulable,
            condition: strip(old) != strip(new),
            annotation: old.metadata.annotations != new.metadata.annotations,
        }
    }

    pub fn any(&self) -> bool {
        self.allocatable || self.label || self.taint || self.condition || self.annotation
    }
}

/// A cluster event (framework.ClusterEvent) with the objects a hint looks at.
#[derive(Clone, Debug)]
pub enum ClusterEvent {
    NodeAdd(Arc<Node>),
    NodeUpdate {
        old: Arc<Node>,
        new: Arc<Node>,
        change: NodeChange,
    },
    NodeDelete(Arc<Node>),
    AssignedPodAdd(Arc<PodInfo>),
    AssignedPodUpdate {
        old: Arc<PodInfo>,
        new: Arc<PodInfo>,
    },
    AssignedPodDelete(Arc<PodInfo>),
    /// A PersistentVolumeClaim added (`old` None) or updated.
    PvcChange {
        old: Option<Arc<crate::api::storage::PersistentVolumeClaim>>,
        new: Arc<crate::api::storage::PersistentVolumeClaim>,
    },
    /// A PersistentVolume added (`old` None) or updated.
    PvChange {
        old: Option<Arc<crate::api::storage::PersistentVolume>>,
        new: Arc<crate::api::storage::PersistentVolume>,
    },
    /// A StorageClass added (`old` None) or updated.
    StorageClassChange {
        old: Option<Arc<crate::api::storage::StorageClass>>,
        new: Arc<crate::api::storage::StorageClass>,
    },
    /// The 5-minute flush: a wildcard event, every pod moves.
    UnschedulableTimeout,
}

impl ClusterEvent {
    /// The event's label as upstream logs and metrics name it.
    pub fn label(&self) -> &'static str {
        match self {
            ClusterEvent::NodeAdd(_) => "NodeAdd",
            ClusterEvent::NodeUpdate { .. } => "NodeUpdate",
            ClusterEvent::NodeDelete(_) => "NodeDelete",
            ClusterEvent::AssignedPodAdd(_) => "AssignedPodAdd",
            ClusterEvent::AssignedPodUpdate { .. } => "AssignedPodUpdate",
            ClusterEvent::AssignedPodDelete(_) => "AssignedPodDelete",
            ClusterEvent::PvcChange { old: None, .. } => "PersistentVolumeClaimAdd",
            ClusterEvent::PvcChange { .. } => "PersistentVolumeClaimUpdate",
            ClusterEvent::PvChange { old: None, .. } => "PersistentVolumeAdd",
            ClusterEvent::PvChange { .. } => "PersistentVolumeUpdate",
            ClusterEvent::StorageClassChange { old: None, .. } => "StorageClassAdd",
            ClusterEvent::StorageClassChange { .. } => "StorageClassUpdate",
            ClusterEvent::UnschedulableTimeout => "UnschedulableTimeout",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    /// backoffQ's error heap (podErrorBackoffQ): pods that failed without a rejecting
    /// plugin; never popped before their backoff ends.
    ErrorBackoff,
    Unschedulable,
    InFlight,
}

#[derive(Clone, Debug)]
struct Entry {
    info: Arc<PodInfo>,
    /// Which profile (scheduler name) schedules it.
    profile: usize,
    /// podInfo.Timestamp: when it entered the queue or last failed (PrioritySort's
    /// tie-break and the backoff's start).
    timestamp: SimTime,
    /// Arrival order among equal timestamps.
    seq: u64,
    attempts: u32,
    /// The plugins that rejected it in its last attempt.
    unschedulable_plugins: BTreeSet<PluginId>,
    at: Where,
}

/// A parked pod as the event handler sees it.
pub struct Parked<'a> {
    pub key: &'a str,
    pub info: &'a Arc<PodInfo>,
    pub profile: usize,
    pub plugins: &'a BTreeSet<PluginId>,
}

#[derive(Debug)]
pub struct SchedulingQueue {
    entries: BTreeMap<PodKey, Entry>,
    active: BTreeSet<(i64, SimTime, u64, PodKey)>,
    backoff: BTreeSet<(SimTime, u64, PodKey)>,
    error_backoff: BTreeSet<(SimTime, u64, PodKey)>,
    unschedulable: BTreeSet<PodKey>,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_unschedulable: Duration,
    next_seq: u64,
    /// When the queue started: the 30 s flush ticks from here.
    started: Option<SimTime>,
}

impl SchedulingQueue {
    pub fn new(initial_backoff: Duration, max_backoff: Duration, max_unschedulable: Duration) -> Self {
        SchedulingQueue {
            entries: BTreeMap::new(),
            active: BTreeSet::new(),
            backoff: BTreeSet::new(),
            error_backoff: BTreeSet::new(),
            unschedulable: BTreeSet::new(),
            initial_backoff,
            max_backoff,
            max_unschedulable,
            next_seq: 0,
            started: None,
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn detach(&mut self, key: &str) {
        let Some(e) = self.entries.get(key) else { return };
        match e.at {
            Where::Active => {
                self.active.remove(&(-(e.info.priority as i64), e.timestamp, e.seq, key.to_string()));
            }
            Where::Backoff => {
                let expiry = self.backoff_expiry(e);
                self.backoff.remove(&(expiry, e.seq, key.to_string()));
            }
            Where::ErrorBackoff => {
                let expiry = self.backoff_expiry(e);
                self.error_backoff.remove(&(expiry, e.seq, key.to_string()));
            }
            Where::Unschedulable => {
                self.unschedulable.remove(key);
            }
            Where::InFlight => {}
        }
    }

    fn put(&mut self, key: &str, at: Where) {
        let seq = self.seq();
        let Some(e) = self.entries.get_mut(key) else { return };
        e.at = at;
        e.seq = seq;
        let e = e.clone();
        match at {
            Where::Active => {
                self.active.insert((-(e.info.priority as i64), e.timestamp, e.seq, key.to_string()));
            }
            Where::Backoff => {
                let expiry = self.backoff_expiry(&e);
                self.backoff.insert((expiry, e.seq, key.to_string()));
            }
            Where::ErrorBackoff => {
                let expiry = self.backoff_expiry(&e);
                self.error_backoff.insert((expiry, e.seq, key.to_string()));
            }
            Where::Unschedulable => {
                self.unschedulable.insert(key.to_string());
            }
            Where::InFlight => {}
        }
    }

    /// A new pending pod goes to activeQ.
    pub fn add(&mut self, info: Arc<PodInfo>, profile: usize, now: SimTime) {
        let key = info.key.clone();
        if self.entries.contains_key(&key) {
            return;
        }
        let entry = Entry {
            info,
            profile,
            timestamp: now,
            seq: 0,
            attempts: 0,
            unschedulable_plugins: BTreeSet::new(),
            at: Where::InFlight,
        };
        self.entries.insert(key.clone(), entry);
        self.put(&key, Where::Active);
    }

    /// The pending pod changed. A change of its spec or labels (not just its status) may
    /// make it schedulable: a parked pod moves (UnscheduledPodUpdate).
    pub fn update(&mut self, info: Arc<PodInfo>, spec_changed: bool, now: SimTime) {
        let key = info.key.clone();
        let Some(at) = self.entries.get(&key).map(|e| e.at) else { return };
        self.detach(&key);
        if let Some(e) = self.entries.get_mut(&key) {
            e.info = info;
        }
        if at == Where::Unschedulable && spec_changed {
            self.reactivate(&key, now);
        } else {
            self.put(&key, at);
        }
    }

    /// The pod is gone (deleted, or bound by someone).
    pub fn remove(&mut self, key: &str) {
        self.detach(key);
        self.entries.remove(key);
    }

    /// The next pod to schedule: activeQ's head, else (PopFromBackoffQ) the backoffQ pod
    /// whose backoff ends first, if it was rejected by a plugin (not an error).
    pub fn pop(&mut self) -> Option<(PodKey, Arc<PodInfo>, usize)> {
        let key = match self.active.pop_first() {
            Some((_, _, _, k)) => k,
            None => self.backoff.pop_first()?.2,
        };
        let e = self.entries.get_mut(&key)?;
        e.attempts += 1;
        e.at = Where::InFlight;
        Some((key, e.info.clone(), e.profile))
    }

    /// The pod's attempts so far (after `pop`).
    pub fn attempts(&self, key: &str) -> u32 {
        self.entries.get(key).map_or(0, |e| e.attempts)
    }

    /// `calculateBackoffDuration`: initial * 2^(attempts-1), capped.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        if attempts == 0 {
            return Duration::ZERO;
        }
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            d = d.saturating_mul(2);
            if d >= self.max_backoff {
                return self.max_backoff;
            }
        }
        d.min(self.max_backoff)
    }

    fn backoff_expiry(&self, e: &Entry) -> SimTime {
        e.timestamp + self.backoff_duration(e.attempts)
    }

    /// A failed attempt (AddUnschedulableIfNotPresent): parked until an event a rejecting
    /// plugin cares about; with no rejecting plugin (an error) it backs off.
    pub fn failed(&mut self, key: &str, plugins: BTreeSet<PluginId>, now: SimTime) {
        let Some(e) = self.entries.get_mut(key) else { return };
        e.timestamp = now;
        let empty = plugins.is_empty();
        e.unschedulable_plugins = plugins;
        self.put(key, if empty { Where::ErrorBackoff } else { Where::Unschedulable });
    }

    /// An attempt that failed after the scheduling cycle (a binding error): back off.
    pub fn requeue_backoff(&mut self, key: &str, now: SimTime) {
        self.failed(key, BTreeSet::new(), now);
    }

    /// `requeuePodViaQueueingHint` with Queue: backoffQ while backing off, else activeQ.
    fn reactivate(&mut self, key: &str, now: SimTime) {
        let Some(e) = self.entries.get(key) else { return };
        let backing_off = self.backoff_expiry(e) > now;
        self.put(key, if backing_off { Where::Backoff } else { Where::Active });
    }

    /// MoveAllToActiveOrBackoffQueue for one event: `worth` is the hint (isPodWorthRequeuing)
    /// for a parked pod. Returns how many pods moved.
    pub fn on_event(&mut self, now: SimTime, mut worth: impl FnMut(&Parked) -> bool) -> usize {
        let mut moving = Vec::new();
        for key in &self.unschedulable {
            let Some(e) = self.entries.get(key) else { continue };
            let parked = Parked { key, info: &e.info, profile: e.profile, plugins: &e.unschedulable_plugins };
            // isPodWorthRequeuing: a pod no plugin rejected moves on any event.
            if e.unschedulable_plugins.is_empty() || worth(&parked) {
                moving.push(key.clone());
            }
        }
        for k in &moving {
            self.detach(k);
            self.reactivate(k, now);
        }
        moving.len()
    }

    /// The periodic flushes due by `now`: flushBackoffQCompleted (every second) moves
    /// pods whose backoff is over to activeQ; flushUnschedulablePodsLeftover (every 30 s)
    /// moves pods parked for podMaxInUnschedulablePodsDuration.
    pub fn flush(&mut self, now: SimTime) {
        let started = *self.started.get_or_insert(now);
        for errors in [false, true] {
            loop {
                let set = if errors { &mut self.error_backoff } else { &mut self.backoff };
                match set.first() {
                    Some((t, _, _)) if *t <= now => {
                        let (_, _, k) = set.pop_first().expect("non-empty");
                        self.put(&k, Where::Active);
                    }
                    _ => break,
                }
            }
        }
        // The 30 s ticks since the queue started: only pods parked long enough at the
        // last tick move.
        let period = UNSCHEDULABLE_FLUSH_PERIOD.as_millis() as u64;
        let ticks = now.as_millis().saturating_sub(started.as_millis()) / period;
        if ticks == 0 {
            return;
        }
        let last_tick = SimTime(started.as_millis() + ticks * period);
        let stale: Vec<PodKey> = self
            .unschedulable
            .iter()
            .filter(|k| {
                self.entries
                    .get(*k)
                    .is_some_and(|e| last_tick.saturating_sub(e.timestamp) >= self.max_unschedulable)
            })
            .cloned()
            .collect();
        for k in stale {
            self.detach(&k);
            self.reactivate(&k, now);
        }
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// When a backoff ends or a parked pod reaches the flush tick after its 5 minutes.
    pub fn next_wake(&self) -> Option<SimTime> {
        let b = match (self.backoff.first(), self.error_backoff.first()) {
            (Some(a), Some(e)) => Some(a.0.min(e.0)),
            (a, e) => a.or(e).map(|(t, _, _)| *t),
        };
        let started = self.started.unwrap_or(SimTime::ZERO).as_millis();
        let period = UNSCHEDULABLE_FLUSH_PERIOD.as_millis() as u64;
        let u = self
            .unschedulable
            .iter()
            .filter_map(|k| self.entries.get(k))
            .map(|e| {
                let due = (e.timestamp + self.max_unschedulable).as_millis().max(started);
                SimTime(started + (due - started).div_ceil(period) * period)
            })
            .min();
        match (b, u) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The pods waiting in unschedulablePods (for explain and tests).
    pub fn unschedulable_len(&self) -> usize {
        self.unschedulable.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Pod;

    fn info(name: &str, priority: i32) -> Arc<PodInfo> {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.namespace = "default".into();
        Arc::make_mut(&mut p.spec).priority = Some(priority);
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn q() -> SchedulingQueue {
        SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10), Duration::from_secs(300))
    }

    fn fit() -> BTreeSet<PluginId> {
        [PluginId::NodeResourcesFit].into()
    }

    #[test]
    fn backoff_doubles_to_cap() {
        let q = q();
        let d: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(q.backoff_duration(0), Duration::ZERO);
    }

    #[test]
    fn priority_sort_then_arrival() {
        let mut q = q();
        q.add(info("low", 0), 0, SimTime::ZERO);
        q.add(info("high", 100), 0, SimTime::from_secs(1));
        q.add(info("low2", 0), 0, SimTime::from_secs(1));
        let order: Vec<String> = std::iter::from_fn(|| q.pop().map(|(k, _, _)| k)).collect();
        assert_eq!(order, ["default/high", "default/low", "default/low2"]);
    }

    #[test]
    fn parked_pods_move_only_when_a_hint_says_so_and_at_the_flush() {
        let mut q = q();
        q.add(info("a", 0), 0, SimTime::ZERO);
        q.flush(SimTime::ZERO);
        assert_eq!(q.pop().map(|(k, _, _)| k).as_deref(), Some("default/a"));
        q.failed("default/a", fit(), SimTime::ZERO);
        assert_eq!(q.on_event(SimTime::from_secs(5), |_| false), 0, "no plugin cares");
        assert!(q.pop().is_none());
        assert_eq!(
            q.on_event(SimTime::from_secs(100), |p| p.plugins.contains(&PluginId::NodeResourcesFit)),
            1
        );
        assert!(q.has_active());
        q.pop();
        q.failed("default/a", fit(), SimTime::from_secs(100));
        // Parked at 100 s: 5 minutes are up at 400 s, the next 30 s tick is 420 s.
        assert_eq!(q.next_wake(), Some(SimTime::from_secs(420)));
        q.flush(SimTime::from_secs(419));
        assert!(q.pop().is_none());
        q.flush(SimTime::from_secs(420));
        assert!(q.has_active(), "podMaxInUnschedulablePodsDuration flush");
    }

    #[test]
    fn moved_pods_still_backing_off_go_to_backoff_and_pop_when_active_is_empty() {
        let mut q = q();
        q.add(info("a", 0), 0, SimTime::ZERO);
        q.pop();
        q.pop();
        q.failed("default/a", fit(), SimTime::from_secs(10));
        q.on_event(SimTime::from_millis(10_500), |_| true);
        assert!(!q.has_active(), "backing off until 11 s");
        assert_eq!(q.next_wake(), Some(SimTime::from_secs(11)));
        // SchedulerPopFromBackoffQ: nothing active, so the backoff pod is next.
        assert_eq!(q.pop().map(|(k, _, _)| k).as_deref(), Some("default/a"));
    }

    #[test]
    fn errors_back_off_without_being_popped_early() {
        let mut q = q();
        q.add(info("a", 0), 0, SimTime::ZERO);
        q.pop();
        q.requeue_backoff("default/a", SimTime::ZERO);
        assert!(q.pop().is_none(), "an error backoff is waited out");
        q.flush(SimTime::from_secs(1));
        assert!(q.pop().is_some());
    }

    #[test]
    fn heartbeat_only_node_updates_are_no_event() {
        let mut a = Node::default();
        a.status.conditions.push(crate::api::NodeCondition {
            type_: "Ready".into(),
            status: crate::api::ConditionStatus::True,
            last_heartbeat_time: Some(SimTime::from_secs(1)),
            ..Default::default()
        });
        let mut b = a.clone();
        b.status.conditions[0].last_heartbeat_time = Some(SimTime::from_secs(11));
        assert!(!NodeChange::between(&a, &b).any());
        b.spec.unschedulable = true;
        assert_eq!(NodeChange::between(&a, &b), NodeChange { taint: true, ..Default::default() });
    }
}

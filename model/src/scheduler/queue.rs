//! The scheduling queue (pkg/scheduler/backend/queue): activeQ ordered by priority then
//! arrival, backoffQ for pods whose last attempt failed, unschedulablePods parked until a
//! cluster event may help or podMaxInUnschedulablePodsDuration passes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::time::SimTime;

/// Identifies a queued pod: namespace/name.
pub type PodKey = String;

#[derive(Clone, Debug)]
struct Entry {
    priority: i32,
    /// When the pod entered the queue (activeQ tie-break).
    arrived: SimTime,
    attempts: u32,
    /// When it was last parked as unschedulable.
    parked_at: SimTime,
    last_failure: SimTime,
}

#[derive(Debug)]
pub struct SchedulingQueue {
    entries: BTreeMap<PodKey, Entry>,
    active: BTreeSet<(i64, SimTime, PodKey)>,
    backoff: BTreeSet<(SimTime, PodKey)>,
    unschedulable: BTreeSet<PodKey>,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_unschedulable: Duration,
}

impl SchedulingQueue {
    pub fn new(initial_backoff: Duration, max_backoff: Duration, max_unschedulable: Duration) -> Self {
        SchedulingQueue {
            entries: BTreeMap::new(),
            active: BTreeSet::new(),
            backoff: BTreeSet::new(),
            unschedulable: BTreeSet::new(),
            initial_backoff,
            max_backoff,
            max_unschedulable,
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

    /// A new pending pod.
    pub fn add(&mut self, key: PodKey, priority: i32, now: SimTime) {
        if self.entries.contains_key(&key) {
            return;
        }
        self.entries.insert(
            key.clone(),
            Entry { priority, arrived: now, attempts: 0, parked_at: now, last_failure: now },
        );
        self.active.insert((-(priority as i64), now, key));
    }

    /// The pod is gone (deleted or bound elsewhere).
    pub fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.active.remove(&(-(e.priority as i64), e.arrived, key.to_string()));
            self.backoff.retain(|(_, k)| k != key);
            self.unschedulable.remove(key);
        }
    }

    /// Takes the next pod to schedule.
    pub fn pop(&mut self) -> Option<PodKey> {
        let (_, _, key) = self.active.pop_first()?;
        if let Some(e) = self.entries.get_mut(&key) {
            e.attempts += 1;
        }
        Some(key)
    }

    /// The pod's attempts so far (after `pop`).
    pub fn attempts(&self, key: &str) -> u32 {
        self.entries.get(key).map_or(0, |e| e.attempts)
    }

    /// `calculateBackoffDuration`: initial * 2^(attempts-1), capped.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
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
        e.last_failure + self.backoff_duration(e.attempts.max(1))
    }

    /// A failed attempt: park as unschedulable.
    pub fn park_unschedulable(&mut self, key: &str, now: SimTime) {
        if let Some(e) = self.entries.get_mut(key) {
            e.parked_at = now;
            e.last_failure = now;
            self.unschedulable.insert(key.to_string());
        }
    }

    /// An attempt that failed for a transient reason (a bind error): back off.
    pub fn requeue_backoff(&mut self, key: &str, now: SimTime) {
        if let Some(e) = self.entries.get_mut(key) {
            e.last_failure = now;
            let e = e.clone();
            self.backoff.insert((self.backoff_expiry(&e), key.to_string()));
        }
    }

    /// `MoveAllToActiveOrBackoffQueue`: a cluster event may have made parked pods fit.
    pub fn move_all_unschedulable(&mut self, now: SimTime) {
        let keys: Vec<PodKey> = std::mem::take(&mut self.unschedulable).into_iter().collect();
        for k in keys {
            self.reactivate(k, now);
        }
    }

    fn reactivate(&mut self, key: PodKey, now: SimTime) {
        let Some(e) = self.entries.get(&key).cloned() else { return };
        let expiry = self.backoff_expiry(&e);
        if expiry > now {
            self.backoff.insert((expiry, key));
        } else {
            self.active.insert((-(e.priority as i64), e.arrived, key));
        }
    }

    /// `flushBackoffQCompleted` (every 1 s) and `flushUnschedulablePodsLeftover`
    /// (every 30 s) — here done whenever the scheduler ticks.
    pub fn flush(&mut self, now: SimTime) {
        while let Some((t, _)) = self.backoff.first() {
            if *t > now {
                break;
            }
            let (_, k) = self.backoff.pop_first().expect("non-empty");
            if let Some(e) = self.entries.get(&k) {
                self.active.insert((-(e.priority as i64), e.arrived, k));
            }
        }
        let stale: Vec<PodKey> = self
            .unschedulable
            .iter()
            .filter(|k| {
                self.entries
                    .get(*k)
                    .is_some_and(|e| now.saturating_sub(e.parked_at) >= self.max_unschedulable)
            })
            .cloned()
            .collect();
        for k in stale {
            self.unschedulable.remove(&k);
            self.reactivate(k, now);
        }
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// When the next backoff expires or a parked pod reaches the 5-minute flush.
    pub fn next_wake(&self) -> Option<SimTime> {
        let b = self.backoff.first().map(|(t, _)| *t);
        let u = self
            .unschedulable
            .iter()
            .filter_map(|k| self.entries.get(k))
            .map(|e| e.parked_at + self.max_unschedulable)
            .min();
        match (b, u) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_cap() {
        let q =
            SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10), Duration::from_secs(300));
        let d: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn parked_pods_return_on_event_after_backoff_and_after_five_minutes() {
        let mut q =
            SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10), Duration::from_secs(300));
        q.add("default/a".into(), 0, SimTime::ZERO);
        assert_eq!(q.pop().as_deref(), Some("default/a"));
        q.park_unschedulable("default/a", SimTime::ZERO);
        q.flush(SimTime::from_secs(100));
        assert!(!q.has_active(), "parked until an event or the 5-minute flush");
        q.move_all_unschedulable(SimTime::from_secs(100));
        assert!(q.has_active());
        q.pop();
        q.park_unschedulable("default/a", SimTime::from_secs(100));
        q.flush(SimTime::from_secs(399));
        assert!(!q.has_active());
        q.flush(SimTime::from_secs(400));
        assert!(q.has_active(), "podMaxInUnschedulablePodsDuration flush");
    }
}

//! controller_utils.go `ControllerExpectations` and `UIDTrackingControllerExpectations`:
//! the creates and deletes a controller has asked for and not yet seen in its informer,
//! per controller key. A controller does not act on an object while its expectations are
//! unsatisfied, so it never counts the same change twice; expectations older than
//! `ExpectationsTimeout` (5 min) count as satisfied, so a lost watch event cannot stall
//! a controller forever.
//!
//! Deletions are tracked by pod name (upstream tracks pod keys, `namespace/name`, within
//! one controller's namespace), so only the deletion of a pod the controller asked to
//! delete lowers them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::time::SimTime;

/// controller_utils.go ExpectationsTimeout.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default)]
struct Expectee {
    /// Creates not yet observed.
    add: usize,
    /// Pods whose deletion is not yet observed.
    deleting: BTreeSet<String>,
    /// When they were last set from fulfilled (SetExpectations' timestamp).
    since: SimTime,
}

impl Expectee {
    fn fulfilled(&self) -> bool {
        self.add == 0 && self.deleting.is_empty()
    }
}

/// The expectations of one controller, by controller key.
#[derive(Debug, Default)]
pub struct Expectations {
    by_key: BTreeMap<String, Expectee>,
}

impl Expectations {
    /// SatisfiedExpectations: nothing recorded, everything observed, or the record is
    /// older than EXPECTATIONS_TIMEOUT.
    pub fn satisfied(&self, key: &str, now: SimTime) -> bool {
        self.by_key
            .get(key)
            .is_none_or(|e| e.fulfilled() || now.saturating_sub(e.since) > EXPECTATIONS_TIMEOUT)
    }

    /// The record to add to: nothing pending (fulfilled or expired) starts afresh at
    /// `now`, as ExpectCreations/ExpectDeletions set it; an open one is raised
    /// (RaiseExpectations keeps its timestamp).
    fn open(&mut self, key: &str, now: SimTime) -> &mut Expectee {
        let e = self.by_key.entry(key.to_string()).or_default();
        if e.fulfilled() || now.saturating_sub(e.since) > EXPECTATIONS_TIMEOUT {
            *e = Expectee { since: now, ..Default::default() };
        }
        e
    }

    /// ExpectCreations / RaiseExpectations: `n` more creates to observe.
    pub fn expect_creations(&mut self, key: &str, n: usize, now: SimTime) {
        if n > 0 {
            self.open(key, now).add += n;
        }
    }

    /// UIDTrackingControllerExpectations.ExpectDeletions: this pod's deletion to observe.
    pub fn expect_deletion(&mut self, key: &str, pod: &str, now: SimTime) {
        self.open(key, now).deleting.insert(pod.to_string());
    }

    /// CreationObserved: a create seen (or one that failed and will never be seen).
    pub fn creation_observed(&mut self, key: &str) {
        if let Some(e) = self.by_key.get_mut(key) {
            e.add = e.add.saturating_sub(1);
        }
    }

    /// DeletionObserved: the pod's deletion seen (or its delete failed); a pod the
    /// controller did not ask to delete changes nothing.
    pub fn deletion_observed(&mut self, key: &str, pod: &str) {
        if let Some(e) = self.by_key.get_mut(key) {
            e.deleting.remove(pod);
        }
    }

    /// DeleteExpectations: the controller is gone.
    pub fn delete(&mut self, key: &str) {
        self.by_key.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As TestControllerExpectations: unsatisfied until every create and delete is
    /// observed; a deletion of a pod not asked for changes nothing; the record expires.
    #[test]
    fn expectations_follow_controller_utils() {
        let mut e = Expectations::default();
        let t0 = SimTime::from_secs(10);
        assert!(e.satisfied("rs", t0), "no record: satisfied");
        e.expect_creations("rs", 2, t0);
        e.expect_deletion("rs", "web-a", t0);
        assert!(!e.satisfied("rs", t0));
        e.creation_observed("rs");
        e.deletion_observed("rs", "web-z");
        assert!(!e.satisfied("rs", t0));
        e.creation_observed("rs");
        e.deletion_observed("rs", "web-a");
        assert!(e.satisfied("rs", t0));
        // Expiry: an unobserved create stops blocking after the timeout.
        e.expect_creations("rs", 1, t0);
        assert!(!e.satisfied("rs", t0 + EXPECTATIONS_TIMEOUT));
        assert!(e.satisfied("rs", t0 + EXPECTATIONS_TIMEOUT + Duration::from_millis(1)));
        // Raising an open record keeps its timestamp; a fresh one takes the new time.
        let mut e = Expectations::default();
        e.expect_creations("rs", 1, t0);
        e.expect_creations("rs", 1, t0 + Duration::from_secs(200));
        assert!(e.satisfied("rs", t0 + Duration::from_secs(301)));
        e.creation_observed("rs");
        e.creation_observed("rs");
        e.expect_creations("rs", 1, t0 + Duration::from_secs(400));
        assert!(!e.satisfied("rs", t0 + Duration::from_secs(500)));
        e.delete("rs");
        assert!(e.satisfied("rs", t0));
    }
}

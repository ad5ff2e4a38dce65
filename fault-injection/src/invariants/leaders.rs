//! Leader exclusivity.
//!
//! - kube-controller-manager and kube-scheduler (client-go tools/leaderelection): a
//!   candidate takes a Lease only after it has gone `leaseDuration` (15 s) unrenewed on
//!   its own clock, and a leader stops acting when it has not renewed within
//!   `renewDeadline` (10 s). So a new holder's acquiring write comes at least the renew
//!   deadline after the old holder's last renewal, unless the old holder released it: no
//!   two instances act as leader at one instant.
//! - etcd (raft Election Safety): at most one leader per term.

use std::collections::BTreeMap;
use std::time::Duration;

use kubesim_model::client::Cache;
use kubesim_model::time::SimTime;
use kubesim_sim::TraceRecord;

use super::{Safety, Violation};

/// client-go LeaderElectionConfig RenewDeadline as kube-controller-manager and
/// kube-scheduler set it (--leader-elect-renew-deadline 10s).
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct OneLeaderAtATime {
    /// Lease name -> (holder, time of its last write as holder).
    holders: BTreeMap<String, (String, SimTime)>,
}

impl Safety for OneLeaderAtATime {
    fn observe(&mut self, rec: &TraceRecord, _state: &Cache, out: &mut Vec<Violation>) {
        let TraceRecord::Write { t, verb, object, .. } = rec else { return };
        let Some(lease) = object.as_lease() else { return };
        if lease.metadata.namespace != "kube-system" || verb == "delete" {
            return;
        }
        let now = SimTime(*t);
        let holder = lease.spec.holder_identity.clone().unwrap_or_default();
        let name = lease.metadata.name.clone();
        if let Some((was, last)) = self.holders.get(&name) {
            let taken_over = !was.is_empty() && !holder.is_empty() && *was != holder;
            if taken_over && now.saturating_sub(*last) < RENEW_DEADLINE {
                out.push(Violation {
                    invariant: "one-leader-at-a-time",
                    t: now,
                    detail: format!(
                        "{name}: {holder} took the Lease {} after {was} last renewed it (before its {}s renew deadline): both act as leader",
                        kubesim_model::time::go_duration(now.saturating_sub(*last)),
                        RENEW_DEADLINE.as_secs()
                    ),
                });
            }
        }
        self.holders.insert(name, (holder, now));
    }
}

#[derive(Default)]
pub struct OneEtcdLeaderPerTerm {
    by_term: BTreeMap<u64, String>,
}

impl Safety for OneEtcdLeaderPerTerm {
    fn observe(&mut self, rec: &TraceRecord, _state: &Cache, out: &mut Vec<Violation>) {
        let TraceRecord::Leader { t, component, host, term } = rec else { return };
        if component != "etcd" {
            return;
        }
        match self.by_term.get(term) {
            Some(h) if h != host => out.push(Violation {
                invariant: "one-etcd-leader-per-term",
                t: SimTime(*t),
                detail: format!("term {term} has two leaders: {h} and {host}"),
            }),
            Some(_) => {}
            None => {
                self.by_term.insert(*term, host.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kubesim_model::api::{Lease, LeaseSpec, Object, ObjectMeta};

    use super::*;

    fn lease_write(t: u64, holder: &str) -> TraceRecord {
        let lease = Lease {
            metadata: ObjectMeta {
                name: "kube-controller-manager".into(),
                namespace: "kube-system".into(),
                ..Default::default()
            },
            spec: LeaseSpec { holder_identity: Some(holder.into()), ..Default::default() },
        };
        TraceRecord::Write { t, rev: t, verb: "update".into(), object: Arc::new(Object::Lease(lease)) }
    }

    /// Planted bug: a candidate that takes the Lease 2 s after the leader's last renewal
    /// (ignoring the 15 s lease duration) is caught; a takeover 15 s later, or after a
    /// release, is not.
    #[test]
    fn early_takeover_is_caught() {
        let (state, mut out) = (Cache::default(), Vec::new());
        let mut c = OneLeaderAtATime::default();
        for r in [lease_write(1_000, "cp-1_a"), lease_write(3_000, "cp-1_a"), lease_write(18_000, "cp-2_b")] {
            c.observe(&r, &state, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        c.observe(&lease_write(20_000, "cp-3_c"), &state, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].invariant, "one-leader-at-a-time");
        c.observe(&lease_write(40_000, ""), &state, &mut out);
        c.observe(&lease_write(40_500, "cp-1_a"), &state, &mut out);
        assert_eq!(out.len(), 1, "a release lets the next candidate in at once: {out:?}");
    }

    #[test]
    fn two_etcd_leaders_in_one_term_are_caught() {
        let (state, mut out) = (Cache::default(), Vec::new());
        let mut c = OneEtcdLeaderPerTerm::default();
        let l = |t, host: &str, term| TraceRecord::Leader {
            t,
            component: "etcd".into(),
            host: host.into(),
            term,
        };
        for r in [l(1, "cp-1", 2), l(2, "cp-2", 3), l(3, "cp-3", 3)] {
            c.observe(&r, &state, &mut out);
        }
        assert_eq!(out.len(), 1, "{out:?}");
    }
}

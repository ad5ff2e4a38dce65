//! Watch streams (the API server's watch contract, apimachinery watch semantics): every
//! watcher sees resourceVersions increase, with no event skipped or repeated within one
//! watch — after its first event, a watch delivers exactly the committed changes that
//! match it, in revision order.
//!
//! The trace does not record what each watcher received, so this checker runs on
//! [`Delivery`] records. HOOK NEEDED: the client connection (sim/src/client.rs, being
//! moved by the driver refactor) should emit one `Delivery` per watch event delivered to a
//! component, with the revisions committed for that watch's selector.

use std::collections::BTreeMap;

use kubesim_model::time::SimTime;

use super::Violation;

/// One watch event as a watcher received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub t: SimTime,
    pub watcher: String,
    pub watch_id: u64,
    pub resource_version: u64,
}

/// Checks deliveries against `committed[(watcher, watch_id)]`: the revisions, in order,
/// that the watch should deliver (every committed change matching it).
pub fn check(deliveries: &[Delivery], committed: &BTreeMap<(String, u64), Vec<u64>>) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut last: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for d in deliveries {
        let key = (d.watcher.clone(), d.watch_id);
        if let Some(prev) = last.get(&key) {
            if d.resource_version <= *prev {
                out.push(Violation {
                    invariant: "watch-resource-versions-increase",
                    t: d.t,
                    detail: format!(
                        "{} watch {}: resourceVersion {} after {prev} (repeated or out of order)",
                        d.watcher, d.watch_id, d.resource_version
                    ),
                });
            } else if let Some(revs) = committed.get(&key) {
                let skipped: Vec<u64> =
                    revs.iter().copied().filter(|r| *r > *prev && *r < d.resource_version).collect();
                if !skipped.is_empty() {
                    out.push(Violation {
                        invariant: "watch-no-event-skipped",
                        t: d.t,
                        detail: format!(
                            "{} watch {}: jumped from {prev} to {}, skipping {skipped:?}",
                            d.watcher, d.watch_id, d.resource_version
                        ),
                    });
                }
            }
        }
        last.insert(key, d.resource_version);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(watcher: &str, rv: u64) -> Delivery {
        Delivery { t: SimTime(rv), watcher: watcher.into(), watch_id: 1, resource_version: rv }
    }

    /// Planted bugs: a watch cache that replays an event, and one that drops one.
    #[test]
    fn repeated_and_skipped_events_are_caught() {
        let committed: BTreeMap<(String, u64), Vec<u64>> =
            [(("kubelet".to_string(), 1), vec![3, 5, 8, 9])].into();
        let good = [d("kubelet", 3), d("kubelet", 5), d("kubelet", 8), d("kubelet", 9)];
        assert!(check(&good, &committed).is_empty());
        let repeated = [d("kubelet", 3), d("kubelet", 5), d("kubelet", 5), d("kubelet", 8)];
        let v = check(&repeated, &committed);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].invariant, "watch-resource-versions-increase");
        let skipped = [d("kubelet", 3), d("kubelet", 8), d("kubelet", 9)];
        let v = check(&skipped, &committed);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].invariant, "watch-no-event-skipped");
        assert!(v[0].detail.contains("[5]"), "{v:?}");
    }
}

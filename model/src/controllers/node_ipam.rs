//! Node IPAM's range allocator (pkg/controller/nodeipam/ipam/range_allocator.go,
//! cidrset/cidr_set.go, v1.33) with kubeadm's and kind's `--cluster-cidr=10.244.0.0/16`
//! and the default `--node-cidr-mask-size` 24: each node gets the next free /24 as
//! `spec.podCIDR` and `spec.podCIDRs`, searched from the one after the last handed out
//! (cidrset's nextCandidate); a deleted node's range is free again. The kubelet's CNI
//! hands out pod addresses from it.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;

use super::{Controller, Requests};
use crate::api::{Kind, Object, ObjectKey};
use crate::client::{ApiRequest, ApiResult, Cache, Patch, WatchEvent, WatchEventType};
use crate::time::SimTime;

/// --cluster-cidr 10.244.0.0/16 split into /24s: 256 ranges.
const RANGES: u32 = 256;

pub fn range(i: u32) -> String {
    format!("10.244.{i}.0/24")
}

fn index_of(cidr: &str) -> Option<u32> {
    cidr.strip_prefix("10.244.")?.strip_suffix(".0/24")?.parse().ok().filter(|i| *i < RANGES)
}

#[derive(Default)]
pub struct NodeIpamController {
    /// Nodes without a range (the allocator's queue).
    dirty: BTreeSet<String>,
    /// Ranges being written, by request tag: (node, range index).
    in_flight: BTreeMap<u64, (String, u32)>,
    next_candidate: u32,
    next_tag: u64,
}

impl NodeIpamController {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Controller for NodeIpamController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        if let Object::Node(n) = &*ev.object {
            if ev.type_ != WatchEventType::Deleted && n.spec.pod_cidr.is_empty() {
                self.dirty.insert(n.metadata.name.clone());
            }
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, _cache: &Cache, _now: SimTime) {
        // A failed patch releases the range (the node is queued again); the next
        // candidate has moved on, as cidrset's does.
        if let Some((node, _)) = self.in_flight.remove(&tag) {
            if result.is_err() {
                self.dirty.insert(node);
            }
        }
    }

    fn reconcile(&mut self, cache: &Cache, _now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        if self.dirty.is_empty() {
            return;
        }
        let mut used: BTreeSet<u32> = cache
            .list(Kind::Node)
            .filter_map(|o| o.as_node().and_then(|n| index_of(&n.spec.pod_cidr)))
            .collect();
        used.extend(self.in_flight.values().map(|(_, i)| *i));
        for name in std::mem::take(&mut self.dirty) {
            if self.in_flight.values().any(|(n, _)| *n == name) {
                continue;
            }
            let Some(node) =
                cache.get(&ObjectKey::new(Kind::Node, "", name.clone())).and_then(|o| o.as_node().cloned())
            else {
                continue;
            };
            if !node.spec.pod_cidr.is_empty() {
                continue;
            }
            // cidrSet.AllocateNext: from nextCandidate, wrapping; none free is
            // CIDRNotAvailable (the node keeps no range).
            let Some(i) = (0..RANGES).map(|k| (self.next_candidate + k) % RANGES).find(|i| !used.contains(i))
            else {
                continue;
            };
            self.next_candidate = (i + 1) % RANGES;
            used.insert(i);
            let key = ObjectKey::new(Kind::Node, "", name.clone());
            self.next_tag += 1;
            self.in_flight.insert(self.next_tag, (name, i));
            out.push(
                self.next_tag,
                ApiRequest::Patch { key, patch: Patch::NodePodCidrs { cidrs: vec![range(i)] } },
            );
        }
    }
}

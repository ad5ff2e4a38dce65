//! ImageLocality (plugins/imagelocality/image_locality.go): favours nodes that already
//! have the pod's images, each image's size scaled by the share of nodes that have it,
//! the sum clamped between 23 MiB and 1000 MiB per container and mapped to 0..100.

use std::collections::BTreeMap;

use crate::scheduler::framework::{normalized_image_name, NodeInfo, PodInfo};

use super::MAX_NODE_SCORE;

pub const NAME: &str = "ImageLocality";
const MB: i64 = 1024 * 1024;
/// minThreshold: images smaller than this do not count.
pub const MIN_THRESHOLD: i64 = 23 * MB;
/// maxContainerThreshold, per container.
pub const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// How many nodes have each of the pod's images (ImageStateSummary.NumNodes); `None`
/// when no node reports images (kubesim's kubelets do not fill status.images yet).
pub fn pre_score<'a>(
    pod: &PodInfo,
    nodes: impl Iterator<Item = &'a NodeInfo> + Clone,
) -> Option<BTreeMap<String, usize>> {
    if !nodes.clone().any(|n| !n.images.is_empty()) {
        return None;
    }
    let spec = &pod.pod.spec;
    let mut out = BTreeMap::new();
    for c in spec.init_containers.iter().chain(&spec.containers) {
        let name = normalized_image_name(&c.image);
        let count = nodes.clone().filter(|n| n.images.contains_key(&name)).count();
        out.insert(name, count);
    }
    Some(out)
}

/// `sumImageScores` then `calculatePriority`.
pub fn score(pod: &PodInfo, node: &NodeInfo, spread: &BTreeMap<String, usize>, total_nodes: usize) -> i64 {
    let spec = &pod.pod.spec;
    let mut sum = 0i64;
    for c in spec.init_containers.iter().chain(&spec.containers) {
        let name = normalized_image_name(&c.image);
        if let Some(size) = node.images.get(&name) {
            let with = spread.get(&name).copied().unwrap_or(0);
            sum += (*size as f64 * (with as f64 / total_nodes.max(1) as f64)) as i64;
        }
    }
    calculate_priority(sum, spec.init_containers.len() + spec.containers.len())
}

/// `calculatePriority`.
pub fn calculate_priority(sum_scores: i64, num_containers: usize) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * num_containers as i64;
    let s = sum_scores.clamp(MIN_THRESHOLD, max_threshold.max(MIN_THRESHOLD));
    if max_threshold <= MIN_THRESHOLD {
        return 0;
    }
    MAX_NODE_SCORE * (s - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    // imagelocality/image_locality_test.go TestImageLocalityPriority: a 250 MB image on
    // one of two nodes: 250*0.5 = 125 MB -> 100*(125-23)/(1000-23) = 10.
    #[test]
    fn priority() {
        assert_eq!(calculate_priority(125 * MB, 1), 10);
        assert_eq!(calculate_priority(10 * MB, 1), 0);
        assert_eq!(calculate_priority(2000 * MB, 1), 100);
        // 40 MB image on one of two nodes plus 300 MB on both: 20 + 300 = 320 MB over
        // two containers: 100*(320-23)/(2000-23) = 15.
        assert_eq!(calculate_priority(320 * MB, 2), 15);
    }
}

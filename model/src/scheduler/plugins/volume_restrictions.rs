//! VolumeRestrictions (pkg/scheduler/framework/plugins/volumerestrictions/
//! volume_restrictions.go, v1.33): a ReadWriteOncePod claim already used by a scheduled
//! pod keeps another pod off every node (preemption may free it).
//!
//! The inline-volume disk conflicts the plugin also checks (gcePersistentDisk,
//! awsElasticBlockStore, rbd, iscsi) concern volume types kubesim does not simulate.

use std::collections::BTreeSet;

use crate::api::storage::AccessMode;
use crate::scheduler::framework::{PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

use super::volume_binding::{claim_names, uses_claim};
use super::Ctx;

/// names.VolumeRestrictions.
pub const NAME: &str = "VolumeRestrictions";
/// volume_restrictions.go ErrReasonReadWriteOncePodConflict.
pub const ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT: &str =
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";

/// preFilterState: the pod's ReadWriteOncePod claims (by name, as upstream counts them)
/// and how many of them scheduled pods already use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PreFilterState {
    pub rwop_claims: BTreeSet<String>,
    pub conflicting: i64,
}

/// PreFilter: `Ok(None)` is Skip (no ReadWriteOncePod claim in use); a missing claim
/// rejects the pod.
pub fn pre_filter(ctx: &Ctx, pod: &PodInfo) -> Result<Option<PreFilterState>, Status> {
    let ns = pod.pod.metadata.namespace.as_str();
    let mut state = PreFilterState::default();
    for name in claim_names(pod) {
        let Some(pvc) = ctx.listers.pvc(ns, name) else {
            return Err(Status::unresolvable(NAME, format!("persistentvolumeclaim {name:?} not found")));
        };
        if pvc.spec.access_modes.contains(&AccessMode::ReadWriteOncePod) {
            state.rwop_claims.insert(name.to_string());
        }
    }
    if state.rwop_claims.is_empty() {
        return Ok(None);
    }
    // StorageInfos().IsPVCUsedByPods: pods assumed or bound anywhere in the snapshot.
    for name in &state.rwop_claims {
        let used =
            ctx.nodes.values().flat_map(|n| n.pods.values()).any(|p| {
                p.pod.metadata.namespace == ns && p.key != pod.key && claim_names(p).any(|c| c == name)
            });
        if used {
            state.conflicting += 1;
        }
    }
    Ok((state.conflicting > 0).then_some(state))
}

/// Filter: Unschedulable on every node while a claim is in use.
pub fn filter(state: &PreFilterState) -> Result<(), Status> {
    if state.conflicting > 0 {
        return Err(Status::unschedulable(NAME, vec![ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT.into()]));
    }
    Ok(())
}

/// AddPod / RemovePod (updateWithPod): the other pod's uses of the claims, by name.
pub fn update_with_pod(state: &mut PreFilterState, pod: &PodInfo, other: &PodInfo, delta: i64) {
    // Claims are namespaced: another namespace's claim of the same name is another claim.
    if other.pod.metadata.namespace != pod.pod.metadata.namespace {
        return;
    }
    let uses = claim_names(other).filter(|c| state.rwop_claims.contains(*c)).count() as i64;
    state.conflicting += delta * uses;
}

/// EventsToRegister (v1.33): a deleted pod that used one of the pod's claims, a node
/// added, one of the pod's claims added.
pub fn queueing_hint(pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    let ns = &pod.pod.metadata.namespace;
    let hit = match ev {
        ClusterEvent::AssignedPodDelete(gone) => {
            gone.pod.metadata.namespace == *ns && claim_names(gone).any(|c| claim_names(pod).any(|m| m == c))
        }
        ClusterEvent::NodeAdd(_) => true,
        ClusterEvent::PvcChange { old: None, new } => uses_claim(pod, new),
        _ => false,
    };
    Hint::queue_if(hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Pod;
    use std::sync::Arc;

    fn pod(name: &str, claim: &str) -> PodInfo {
        let p: Pod = serde_yaml::from_str(&format!(
            "metadata: {{name: {name}, namespace: default}}\nspec: {{containers: [{{name: c}}], volumes: [{{name: v, persistentVolumeClaim: {{claimName: {claim}}}}}]}}"
        ))
        .unwrap();
        PodInfo::new(Arc::new(p))
    }

    // volume_restrictions_test.go TestAccessModeConflicts: preemption's dry run removing
    // the pod that holds the claim clears the conflict (RemovePod), adding it back restores it.
    #[test]
    fn removing_the_claims_user_clears_the_conflict() {
        let mut s = PreFilterState { rwop_claims: ["rwop".to_string()].into(), conflicting: 1 };
        assert!(filter(&s).is_err());
        update_with_pod(&mut s, &pod("p", "rwop"), &pod("holder", "rwop"), -1);
        assert!(filter(&s).is_ok());
        update_with_pod(&mut s, &pod("p", "rwop"), &pod("other", "other-claim"), 1);
        assert!(filter(&s).is_ok());
        update_with_pod(&mut s, &pod("p", "rwop"), &pod("holder", "rwop"), 1);
        assert_eq!(filter(&s).unwrap_err().code, crate::scheduler::framework::Code::Unschedulable);
    }

    #[test]
    fn the_users_deletion_requeues_the_pod() {
        let p = pod("p", "rwop");
        let gone = |claim: &str| ClusterEvent::AssignedPodDelete(Arc::new(pod("q", claim)));
        assert_eq!(queueing_hint(&p, &gone("rwop")), Hint::Queue);
        assert_eq!(queueing_hint(&p, &gone("other")), Hint::QueueSkip);
    }
}

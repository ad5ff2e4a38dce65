//! The ControllerRefManager (pkg/controller/controller_ref_manager.go): a controller
//! claims the objects its selector matches. It keeps the ones it controls and still
//! matches, adopts orphans that match (a strategic-merge patch adding its controller
//! reference, guarded by the orphan's uid) and releases the ones it controls that no
//! longer match (a patch deleting its reference). Objects controlled by someone else are
//! never touched.
//!
//! Upstream's `CanAdopt` re-reads the controller with a quorum GET before the first
//! adoption (RecheckDeletionTimestamp); kubesim trusts its cache's deletionTimestamp,
//! which can only differ while a deletion is in flight.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{Kind, LabelSelector, Object, ObjectKey, ObjectMeta};
use crate::client::{ApiRequest, Cache, Patch, WatchEvent, WatchEventType};

/// What `ClaimObject` does with one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Controlled by this owner and matching: it counts.
    Owned,
    /// An orphan that matches: adopt it (it counts once adopted).
    Adopt,
    /// Controlled by this owner, no longer matching: release it.
    Release,
    /// Someone else's, or not for this owner.
    Ignore,
}

/// `BaseControllerRefManager.ClaimObject` for an owner and an object it may claim.
pub fn claim(owner: &ObjectMeta, selector_matches: bool, obj: &ObjectMeta) -> Claim {
    match obj.controller_of() {
        Some(r) if r.uid != owner.uid => Claim::Ignore,
        Some(_) if selector_matches => Claim::Owned,
        // Owned but no longer matching: released unless the owner is being deleted.
        Some(_) if owner.deletion_timestamp.is_some() => Claim::Ignore,
        Some(_) => Claim::Release,
        // An orphan: adopted if it matches, neither side is being deleted and it lives
        // in the owner's namespace.
        None if owner.deletion_timestamp.is_some()
            || !selector_matches
            || obj.deletion_timestamp.is_some()
            || obj.namespace != owner.namespace =>
        {
            Claim::Ignore
        }
        None => Claim::Adopt,
    }
}

/// The adoption patch of `obj` by `owner` (AdoptPod, AdoptReplicaSet).
pub fn adopt(owner: &Object, kind: Kind, obj: &ObjectMeta) -> ApiRequest {
    ApiRequest::Patch {
        key: ObjectKey::new(kind, obj.namespace.clone(), obj.name.clone()),
        patch: Patch::AdoptByController { owner: super::controller_ref(owner), uid: obj.uid.clone() },
    }
}

/// The release patch of `obj` by the owner with `owner_uid` (ReleasePod, ReleaseReplicaSet).
pub fn release(owner_uid: &str, kind: Kind, obj: &ObjectMeta) -> ApiRequest {
    ApiRequest::Patch {
        key: ObjectKey::new(kind, obj.namespace.clone(), obj.name.clone()),
        patch: Patch::ReleaseFromController { owner_uid: owner_uid.to_string(), uid: obj.uid.clone() },
    }
}

/// Objects of one kind with no controller reference, by namespace, kept from watch
/// events so that a sync looks at orphans without walking every object (upstream lists
/// the namespace and claims each; orphans are rare, owned objects many).
#[derive(Debug, Default)]
pub struct Orphans {
    by_ns: BTreeMap<String, BTreeSet<String>>,
}

impl Orphans {
    /// Follows one event of the tracked kind; true when the object is an orphan now
    /// (the caller then wakes the owners whose selector matches it, as the controllers'
    /// addPod/updatePod handlers do).
    pub fn observe(&mut self, ev: &WatchEvent) -> bool {
        let m = ev.object.meta();
        let orphan = ev.type_ != WatchEventType::Deleted && m.controller_of().is_none();
        if orphan {
            self.by_ns.entry(m.namespace.clone()).or_default().insert(m.name.clone());
        } else if let Some(names) = self.by_ns.get_mut(&m.namespace) {
            names.remove(&m.name);
            if names.is_empty() {
                self.by_ns.remove(&m.namespace);
            }
        }
        orphan
    }

    /// The orphans of `kind` in `ns` that `selector` matches, as the cache holds them.
    pub fn matching<'a>(
        &'a self,
        cache: &'a Cache,
        kind: Kind,
        ns: &'a str,
        selector: &'a LabelSelector,
    ) -> impl Iterator<Item = &'a std::sync::Arc<Object>> + 'a {
        self.by_ns
            .get(ns)
            .into_iter()
            .flatten()
            .filter_map(move |name| cache.get(&ObjectKey::new(kind, ns.to_string(), name.clone())))
            .filter(move |o| selector.matches(&o.meta().labels))
    }
}

/// One controller's claims on objects of a kind: the orphans it may adopt and the
/// adoptions and releases it has in flight (so a sync does not send them twice, and an
/// adopted object counts until its event shows the reference).
#[derive(Debug)]
pub struct Claimer {
    kind: Kind,
    orphans: Orphans,
    /// Adoptions sent, by (owner uid, object): each owner sends its own, as upstream's
    /// syncs do; the ones that lose the race fail validation (two controllers).
    adopting: BTreeSet<(String, ObjectKey)>,
    releasing: BTreeSet<ObjectKey>,
    /// Requests sent through `send`: tag -> the owner to sync again on the answer.
    in_flight: BTreeMap<u64, ObjectKey>,
}

impl Claimer {
    pub fn new(kind: Kind) -> Self {
        Claimer {
            kind,
            orphans: Orphans::default(),
            adopting: BTreeSet::new(),
            releasing: BTreeSet::new(),
            in_flight: BTreeMap::new(),
        }
    }

    /// Sends the claim patches under the controller's next tags, remembering the owner.
    pub fn send(
        &mut self,
        patches: Vec<ApiRequest>,
        owner: &ObjectKey,
        next_tag: &mut u64,
        out: &mut super::Requests,
    ) {
        for r in patches {
            *next_tag += 1;
            self.in_flight.insert(*next_tag, owner.clone());
            out.push(*next_tag, r);
        }
    }

    /// The answer to a request: `Some(owner)` (to sync again) when it was a claim sent
    /// through `send`, `None` when the tag is not one of these.
    pub fn on_response(&mut self, tag: u64, result: &crate::client::ApiResult) -> Option<ObjectKey> {
        let owner = self.in_flight.remove(&tag)?;
        if result.is_err() {
            self.on_failure();
        }
        Some(owner)
    }

    /// Follows an event of the claimed kind; returns the owners of `owner_kind` to wake
    /// (those whose selector matches a new or changed orphan), as the controllers'
    /// add/update handlers enqueue them.
    pub fn observe(
        &mut self,
        ev: &WatchEvent,
        cache: &Cache,
        owner_kind: Kind,
        selector_of: impl Fn(&Object) -> Option<LabelSelector>,
    ) -> Vec<ObjectKey> {
        if ev.object.kind() != self.kind {
            return Vec::new();
        }
        let orphan = self.orphans.observe(ev);
        let mut adopted = false;
        if !self.releasing.is_empty() || !self.adopting.is_empty() {
            let key = ev.object.key();
            self.releasing.remove(&key);
            if !orphan {
                let before = self.adopting.len();
                self.adopting.retain(|(_, k)| *k != key);
                adopted = self.adopting.len() != before;
            }
        }
        // An orphan wakes the owners that may adopt it; one just adopted wakes them too,
        // so that those who counted it while their own adoption was in flight count again.
        if !orphan && !adopted {
            return Vec::new();
        }
        matching_owners(cache, owner_kind, ev.object.meta(), selector_of).collect()
    }

    /// A request failed: adoptions in flight may have failed, so they may be sent again
    /// (an adoption repeated is a no-op) and stop counting until then.
    pub fn on_failure(&mut self) {
        self.adopting.clear();
        self.releasing.clear();
    }

    /// Adopts the orphans `selector` matches that pass `filter`; returns them (they count
    /// for the owner from now on) and the patches to send.
    pub fn adopt_orphans(
        &mut self,
        owner: &Object,
        selector: &LabelSelector,
        cache: &Cache,
        filter: impl Fn(&Object) -> bool,
        patches: &mut Vec<ApiRequest>,
    ) -> Vec<std::sync::Arc<Object>> {
        let m = owner.meta();
        let mut adopted = Vec::new();
        for o in self.orphans.matching(cache, self.kind, &m.namespace, selector) {
            if filter(o) && claim(m, true, o.meta()) == Claim::Adopt {
                if self.adopting.insert((m.uid.clone(), o.key())) {
                    patches.push(adopt(owner, self.kind, o.meta()));
                }
                adopted.push(o.clone());
            }
        }
        adopted
    }

    /// Releases the objects the owner controls that pass `filter` and no longer
    /// `matches` (the selector and any filter of ClaimPods'); returns the ones it keeps.
    pub fn release_unmatched<'a>(
        &mut self,
        owner: &ObjectMeta,
        matches: impl Fn(&Object) -> bool,
        controlled: impl Iterator<Item = &'a std::sync::Arc<Object>>,
        filter: impl Fn(&Object) -> bool,
        patches: &mut Vec<ApiRequest>,
    ) -> Vec<std::sync::Arc<Object>> {
        let mut kept = Vec::new();
        for o in controlled.filter(|o| o.kind() == self.kind && filter(o)) {
            match claim(owner, matches(o), o.meta()) {
                Claim::Owned => kept.push(o.clone()),
                Claim::Release if self.releasing.insert(o.key()) => {
                    patches.push(release(&owner.uid, self.kind, o.meta()))
                }
                _ => {}
            }
        }
        kept
    }

    /// ClaimPods / ClaimReplicaSets: the objects the owner keeps (those it controls and
    /// its selector and `also` match, and the orphans it adopts now), in name order, and
    /// the adoption and release patches to send.
    pub fn claim_all(
        &mut self,
        owner: &Object,
        selector: &LabelSelector,
        cache: &Cache,
        also: impl Fn(&Object) -> bool,
    ) -> (Vec<std::sync::Arc<Object>>, Vec<ApiRequest>) {
        let mut patches = Vec::new();
        let m = owner.meta();
        let matches = |o: &Object| selector.matches(&o.meta().labels) && also(o);
        let mut kept =
            self.release_unmatched(m, matches, cache.controlled_by(&m.uid), |_| true, &mut patches);
        kept.extend(self.adopt_orphans(owner, selector, cache, &also, &mut patches));
        kept.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        (kept, patches)
    }
}

/// The owners of `kind` in the object's namespace whose selector matches its labels
/// (getPodReplicaSets, getPodJobs, GetPodStatefulSets, ...): the ones to wake for an
/// orphan. An empty selector matches nothing here (`selector.Empty()` in those lookups).
pub fn matching_owners<'a>(
    cache: &'a Cache,
    kind: Kind,
    obj: &'a ObjectMeta,
    selector_of: impl Fn(&Object) -> Option<LabelSelector> + 'a,
) -> impl Iterator<Item = ObjectKey> + 'a {
    cache
        .list_namespace(kind, &obj.namespace)
        .filter(move |o| selector_of(o).is_some_and(|s| !s.is_empty() && s.matches(&obj.labels)))
        .map(|o| o.key())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OwnerReference;
    use crate::time::SimTime;

    fn meta(ns: &str, uid: &str, controller: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: uid.into(),
            namespace: ns.into(),
            uid: uid.into(),
            owner_references: controller
                .map(|c| OwnerReference { uid: c.into(), controller: Some(true), ..Default::default() })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn claim_follows_claim_object() {
        let owner = meta("default", "rs", None);
        let mut deleting = owner.clone();
        deleting.deletion_timestamp = Some(SimTime::ZERO);
        let mine = meta("default", "p", Some("rs"));
        let theirs = meta("default", "p", Some("other"));
        let orphan = meta("default", "p", None);
        let elsewhere = meta("kube-system", "p", None);
        let mut dying = orphan.clone();
        dying.deletion_timestamp = Some(SimTime::ZERO);
        // (owner, matches, object, decision), as TestClaimPods's cases.
        let cases = [
            (&owner, true, &mine, Claim::Owned),
            (&owner, false, &mine, Claim::Release),
            (&deleting, false, &mine, Claim::Ignore),
            (&deleting, true, &mine, Claim::Owned),
            (&owner, true, &theirs, Claim::Ignore),
            (&owner, false, &theirs, Claim::Ignore),
            (&owner, true, &orphan, Claim::Adopt),
            (&owner, false, &orphan, Claim::Ignore),
            (&deleting, true, &orphan, Claim::Ignore),
            (&owner, true, &dying, Claim::Ignore),
            (&owner, true, &elsewhere, Claim::Ignore),
        ];
        for (i, (o, m, obj, want)) in cases.into_iter().enumerate() {
            assert_eq!(claim(o, m, obj), want, "case {i}");
        }
    }

    #[test]
    fn orphans_follow_events() {
        use crate::api::Pod;
        use std::sync::Arc;
        let ev = |type_, controller: Option<&str>| {
            let p = Pod { metadata: meta("default", "p", controller), ..Default::default() };
            WatchEvent { type_, object: Arc::new(Object::Pod(p)) }
        };
        let mut o = Orphans::default();
        assert!(o.observe(&ev(WatchEventType::Added, None)));
        assert!(!o.by_ns.is_empty());
        assert!(!o.observe(&ev(WatchEventType::Modified, Some("rs"))));
        assert!(o.by_ns.is_empty());
        assert!(o.observe(&ev(WatchEventType::Modified, None)));
        assert!(!o.observe(&ev(WatchEventType::Deleted, None)));
        assert!(o.by_ns.is_empty());
    }
}

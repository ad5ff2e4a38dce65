//! The garbage collector (pkg/controller/garbagecollector), background propagation: an
//! object whose owners are all gone is deleted. The owner -> dependents graph is a
//! petgraph graph keyed by uid, kept up to date from watch events (upstream's
//! GraphBuilder uidToNode).

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graphmap::DiGraphMap;
use rand_chacha::ChaCha8Rng;

use super::{Controller, Requests};
use crate::api::ObjectKey;
use crate::client::{ApiRequest, Cache, WatchEvent, WatchEventType};
use crate::time::SimTime;

pub struct GarbageCollector {
    /// uid ids <-> graph nodes; edges owner -> dependent.
    ids: BTreeMap<String, u64>,
    uids: BTreeMap<u64, String>,
    graph: DiGraphMap<u64, ()>,
    /// Live objects: uid -> key.
    live: BTreeMap<String, ObjectKey>,
    /// Every uid ever seen live: an owner is gone only if it was seen and then deleted
    /// (an owner of a kind not watched is never presumed absent).
    ever: BTreeSet<String>,
    /// Dependents to check.
    attempt: BTreeSet<String>,
    deleting: BTreeSet<String>,
    next_id: u64,
    next_tag: u64,
}

impl Default for GarbageCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl GarbageCollector {
    pub fn new() -> Self {
        GarbageCollector {
            ids: BTreeMap::new(),
            uids: BTreeMap::new(),
            graph: DiGraphMap::new(),
            live: BTreeMap::new(),
            ever: BTreeSet::new(),
            attempt: BTreeSet::new(),
            deleting: BTreeSet::new(),
            next_id: 0,
            next_tag: 0,
        }
    }

    fn id(&mut self, uid: &str) -> u64 {
        if let Some(&i) = self.ids.get(uid) {
            return i;
        }
        self.next_id += 1;
        self.ids.insert(uid.to_string(), self.next_id);
        self.uids.insert(self.next_id, uid.to_string());
        self.graph.add_node(self.next_id);
        self.next_id
    }
}

impl Controller for GarbageCollector {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        let m = ev.object.meta();
        if m.uid.is_empty() {
            return;
        }
        let me = self.id(&m.uid);
        if ev.type_ == WatchEventType::Deleted {
            self.live.remove(&m.uid);
            self.deleting.remove(&m.uid);
            // Its dependents may now be orphans.
            let deps: Vec<u64> = self.graph.neighbors(me).collect();
            for d in deps {
                if let Some(u) = self.uids.get(&d) {
                    self.attempt.insert(u.clone());
                }
            }
            if self.graph.neighbors_directed(me, petgraph::Direction::Outgoing).next().is_none() {
                self.graph.remove_node(me);
                self.ids.remove(&m.uid);
                self.uids.remove(&me);
            }
            return;
        }
        self.live.insert(m.uid.clone(), ev.object.key());
        self.ever.insert(m.uid.clone());
        let owners: Vec<u64> = self.graph.neighbors_directed(me, petgraph::Direction::Incoming).collect();
        for o in owners {
            self.graph.remove_edge(o, me);
        }
        for r in &m.owner_references {
            let o = self.id(&r.uid);
            self.graph.add_edge(o, me, ());
        }
        if !m.owner_references.is_empty() {
            self.attempt.insert(m.uid.clone());
        }
    }

    fn reconcile(&mut self, _cache: &Cache, _now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for uid in std::mem::take(&mut self.attempt) {
            let Some(key) = self.live.get(&uid).cloned() else { continue };
            if self.deleting.contains(&uid) {
                continue;
            }
            let me = self.ids[&uid];
            let owners: Vec<u64> = self.graph.neighbors_directed(me, petgraph::Direction::Incoming).collect();
            let all_gone = !owners.is_empty()
                && owners.iter().all(|o| {
                    self.uids.get(o).is_some_and(|u| self.ever.contains(u) && !self.live.contains_key(u))
                });
            if all_gone {
                self.deleting.insert(uid.clone());
                self.next_tag += 1;
                out.push(
                    self.next_tag,
                    ApiRequest::Delete { key, grace_period_seconds: None, precondition_uid: Some(uid) },
                );
            }
        }
    }
}

//! The root CA certificate publisher (pkg/controller/certificates/rootcacertpublisher,
//! v1.33): every namespace gets the ConfigMap `kube-root-ca.crt` with the cluster's CA
//! bundle under `ca.crt`, which the ServiceAccount admission plugin's `kube-api-access-*`
//! volume projects into every pod. A deleted or changed copy is written again.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;

use super::{Controller, Requests};
use crate::api::config::ROOT_CA_CONFIG_MAP;
use crate::api::{ConfigMap, Kind, Object, ObjectKey, ObjectMeta};
use crate::client::{ApiRequest, ApiResult, Cache, WatchEvent, WatchEventType};
use crate::time::SimTime;

/// publisher.go DescriptionAnnotation and Description.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";
/// The simulated cluster's CA certificate (kube-controller-manager --root-ca-file): a
/// stand-in PEM block, the same in every run.
pub const ROOT_CA_PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBkubesimSimulatedClusterRootCAcertificateNotARealKey0000000000\n-----END CERTIFICATE-----\n";

/// The work queue of a controller that keeps something in every namespace: namespaces
/// to sync, one write in flight per namespace. A failed write is tried again on the
/// namespace's next event (the workqueue's rate-limited requeue).
#[derive(Debug, Default)]
pub struct NamespaceQueue {
    dirty: BTreeSet<String>,
    in_flight: BTreeMap<u64, String>,
    next_tag: u64,
}

impl NamespaceQueue {
    pub fn add(&mut self, ns: &str) {
        self.dirty.insert(ns.to_string());
    }

    pub fn answered(&mut self, tag: u64) {
        self.in_flight.remove(&tag);
    }

    /// The namespaces to sync now: those that exist and are not terminating (syncNamespace
    /// does nothing for the others); one with a write in flight waits for its answer.
    pub fn take(&mut self, cache: &Cache) -> Vec<String> {
        let mut ready = Vec::new();
        for ns in std::mem::take(&mut self.dirty) {
            if self.in_flight.values().any(|n| *n == ns) {
                self.dirty.insert(ns);
                continue;
            }
            let live = cache
                .get(&ObjectKey::new(Kind::Namespace, "", ns.clone()))
                .is_some_and(|n| n.meta().deletion_timestamp.is_none());
            if live {
                ready.push(ns);
            }
        }
        ready
    }

    pub fn send(&mut self, ns: String, r: ApiRequest, out: &mut Requests) {
        self.next_tag += 1;
        self.in_flight.insert(self.next_tag, ns);
        out.push(self.next_tag, r);
    }
}

#[derive(Default)]
pub struct RootCaPublisher {
    queue: NamespaceQueue,
}

impl RootCaPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    fn want(namespace: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: ROOT_CA_CONFIG_MAP.into(),
                namespace: namespace.into(),
                annotations: [(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string())].into(),
                ..Default::default()
            },
            data: [("ca.crt".to_string(), ROOT_CA_PEM.to_string())].into(),
            ..Default::default()
        }
    }
}

impl Controller for RootCaPublisher {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        match &*ev.object {
            // namespaceAdded / namespaceUpdated.
            Object::Namespace(n) if ev.type_ != WatchEventType::Deleted => self.queue.add(&n.metadata.name),
            // configMapDeleted / configMapUpdated: only the published one.
            Object::ConfigMap(c) if c.metadata.name == ROOT_CA_CONFIG_MAP => {
                self.queue.add(&c.metadata.namespace)
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, _result: &ApiResult, _cache: &Cache, _now: SimTime) {
        self.queue.answered(tag);
    }

    fn reconcile(&mut self, cache: &Cache, _now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for ns in self.queue.take(cache) {
            let want = Self::want(&ns);
            let req = match cache
                .get(&ObjectKey::new(Kind::ConfigMap, ns.clone(), ROOT_CA_CONFIG_MAP))
                .and_then(|o| o.as_config_map().cloned())
            {
                None => ApiRequest::Create(Object::ConfigMap(want)),
                Some(cm)
                    if cm.data == want.data
                        && cm.metadata.annotations.contains_key(DESCRIPTION_ANNOTATION) =>
                {
                    continue
                }
                Some(mut cm) => {
                    cm.data = want.data;
                    cm.metadata.annotations.insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
                    ApiRequest::Update(Object::ConfigMap(cm))
                }
            };
            self.queue.send(ns, req, out);
        }
    }
}

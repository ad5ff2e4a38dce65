//! The root CA certificate publisher (pkg/controller/certificates/rootcacertpublisher,
//! v1.33): every namespace gets the ConfigMap `kube-root-ca.crt` with the cluster's CA
//! bundle under `ca.crt`, which the ServiceAccount admission plugin's `kube-api-access-*`
//! volume projects into every pod. A deleted or changed copy is written again.

use std::collections::BTreeSet;

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

#[derive(Default)]
pub struct RootCaPublisher {
    /// Namespaces to sync (the controller's queue).
    dirty: BTreeSet<String>,
    /// Namespaces with a write in flight, by request tag.
    in_flight: std::collections::BTreeMap<u64, String>,
    next_tag: u64,
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
            Object::Namespace(n) if ev.type_ != WatchEventType::Deleted => {
                self.dirty.insert(n.metadata.name.clone());
            }
            // configMapDeleted / configMapUpdated: only the published one.
            Object::ConfigMap(c) if c.metadata.name == ROOT_CA_CONFIG_MAP => {
                self.dirty.insert(c.metadata.namespace.clone());
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, _result: &ApiResult, _cache: &Cache, _now: SimTime) {
        // A failed write is tried again on the namespace's next event (the workqueue's
        // rate-limited requeue).
        self.in_flight.remove(&tag);
    }

    fn reconcile(&mut self, cache: &Cache, _now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for ns in std::mem::take(&mut self.dirty) {
            if self.in_flight.values().any(|n| *n == ns) {
                self.dirty.insert(ns);
                continue;
            }
            // syncNamespace: nothing for a namespace that is gone or terminating.
            let Some(n) = cache.get(&ObjectKey::new(Kind::Namespace, "", ns.clone())) else { continue };
            if n.meta().deletion_timestamp.is_some() {
                continue;
            }
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
            self.next_tag += 1;
            self.in_flight.insert(self.next_tag, ns);
            out.push(self.next_tag, req);
        }
    }
}

//! The ServiceAccounts controller (pkg/controller/serviceaccount/serviceaccounts_controller.go,
//! v1.33): every active namespace has a ServiceAccount `default`, created when the
//! namespace appears and again whenever it is deleted. Pods name it (the admission plugin
//! defaults serviceAccountName to it), and the plugin refuses pods naming an account that
//! does not exist.

use rand_chacha::ChaCha8Rng;

use super::root_ca_publisher::NamespaceQueue;
use super::{Controller, Requests};
use crate::api::cluster::DEFAULT_SERVICE_ACCOUNT;
use crate::api::{Kind, Object, ObjectKey, ObjectMeta, ServiceAccount};
use crate::client::{ApiRequest, ApiResult, Cache, WatchEvent, WatchEventType};
use crate::time::SimTime;

#[derive(Default)]
pub struct ServiceAccountsController {
    queue: NamespaceQueue,
}

impl ServiceAccountsController {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Controller for ServiceAccountsController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        match &*ev.object {
            // namespaceAdded / namespaceUpdated.
            Object::Namespace(n) if ev.type_ != WatchEventType::Deleted => self.queue.add(&n.metadata.name),
            // serviceAccountDeleted: the namespace's accounts are checked again.
            Object::ServiceAccount(sa) if ev.type_ == WatchEventType::Deleted => {
                self.queue.add(&sa.metadata.namespace)
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, _result: &ApiResult, _cache: &Cache, _now: SimTime) {
        // AlreadyExists is success (another writer was first); other failures come back
        // with the namespace's next event.
        self.queue.answered(tag);
    }

    fn reconcile(&mut self, cache: &Cache, _now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for ns in self.queue.take(cache) {
            // syncNamespace: create the account unless the informer has it.
            if cache.get(&ObjectKey::new(Kind::ServiceAccount, ns.clone(), DEFAULT_SERVICE_ACCOUNT)).is_some()
            {
                continue;
            }
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: DEFAULT_SERVICE_ACCOUNT.into(),
                    namespace: ns.clone(),
                    ..Default::default()
                },
                ..Default::default()
            };
            self.queue.send(ns, ApiRequest::Create(Object::ServiceAccount(sa)), out);
        }
    }
}

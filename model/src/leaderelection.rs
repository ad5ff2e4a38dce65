//! Leader election for kube-controller-manager and kube-scheduler, as client-go's
//! `tools/leaderelection` does it with a `LeaseLock` (`resourcelock/leaselock.go`).
//!
//! [`LeaderElected`] wraps a component. Every candidate keeps its informer cache filled;
//! only the leader runs the component. On winning the Lease the component is built afresh
//! and fed the cache as its informers' initial list, so a new leader rebuilds its
//! in-memory state (node probe times, eviction deadlines, queues) as upstream's new process
//! does. On losing the Lease — no successful renewal for `renew_deadline` — the component
//! is dropped: upstream's process exits (`klog.Fatalf("leaderelection lost")`) and is
//! restarted as a candidate.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::api::{Kind, Lease, LeaseSpec, Object, ObjectKey, ObjectMeta, EVENT_NORMAL};
use crate::client::{
    ApiRequest, ApiResult, Cache, Component, EventRecorder, Output, Tagged, WatchEvent, WatchEventType,
    WatchSpec,
};
use crate::time::SimTime;

/// `--leader-elect-lease-duration` default (component-base LeaderElectionConfiguration).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// `--leader-elect-renew-deadline` default.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// `--leader-elect-retry-period` default.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);
/// leaderelection.go `JitterFactor`: a candidate waits retryPeriod * (1 + rand * 1.2).
pub const JITTER_FACTOR: f64 = 1.2;
/// `--leader-elect-resource-namespace` default.
pub const LEASE_NAMESPACE: &str = "kube-system";

/// One component's leader-election settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderElectionConfig {
    /// `--leader-elect-resource-name`: `kube-controller-manager` or `kube-scheduler`.
    pub lease_name: String,
    /// The event source component of the `LeaderElection` event.
    pub event_component: String,
    /// The host name; the identity is `<host>_<uuid>` (options.go).
    pub host: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    /// The client the LeaderElection event goes through: the component's event recorder's
    /// (kube-controller-manager's main client; kube-scheduler's event client).
    pub event_client: &'static str,
    /// Whether a candidate runs its informers before it leads. kube-scheduler does (Run
    /// starts the informer factory and waits for its caches before leader election), so a
    /// standby is a hot one; kube-controller-manager starts its informers only once it
    /// leads (its `run` starts controllers and the informer factory on
    /// OnStartedLeading), so a standby watches nothing.
    pub informers_before_leading: bool,
}

impl LeaderElectionConfig {
    pub fn new(lease_name: &str, event_component: &str, host: &str) -> Self {
        LeaderElectionConfig {
            lease_name: lease_name.into(),
            event_component: event_component.into(),
            host: host.into(),
            lease_duration: LEASE_DURATION,
            renew_deadline: RENEW_DEADLINE,
            retry_period: RETRY_PERIOD,
            event_client: crate::client::DEFAULT_CLIENT,
            informers_before_leading: true,
        }
    }
}

/// Builds the component a new leader runs.
pub type ComponentFactory = Box<dyn Fn() -> Box<dyn Component> + Send>;

/// The client leader election reads and writes its Lease through.
pub const LEADER_ELECTION_CLIENT: &str = "leader-election";

/// Our own request tags carry this bit; the component's never do.
const OWN_TAG: u64 = 1 << 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Nothing in flight; the next attempt is due at `next_try`.
    Idle,
    /// A GET of the Lease is in flight.
    Getting,
    /// A create or update of the Lease is in flight.
    Writing,
}

/// A component that runs only while this process holds its Lease.
pub struct LeaderElected {
    config: LeaderElectionConfig,
    make: ComponentFactory,
    inner: Option<Box<dyn Component>>,
    inner_watches: Vec<WatchSpec>,
    identity: Option<String>,
    cache: Cache,
    recorder: EventRecorder,
    step: Step,
    next_try: SimTime,
    /// The Lease record last seen, and when this process first saw it (client-go's
    /// `observedRecord` / `observedTime`: expiry is judged on the local clock).
    observed: Option<(LeaseSpec, SimTime)>,
    /// The last successful acquire or renew.
    last_renew: Option<SimTime>,
    next_tag: u64,
    /// Lease requests decided while handling a response, sent at the next tick.
    pending: Vec<Tagged>,
    /// How many times this process became leader.
    terms: u64,
    /// Leads, and waits for the informers it started to sync before it runs the component.
    awaiting_sync: bool,
    /// Bumped whenever `watches` changes.
    watch_generation: u64,
}

impl LeaderElected {
    pub fn new(config: LeaderElectionConfig, make: ComponentFactory) -> Self {
        let inner_watches = make().watches();
        let recorder = EventRecorder::new(config.event_component.clone(), String::new());
        LeaderElected {
            config,
            make,
            inner: None,
            inner_watches,
            identity: None,
            cache: Cache::default(),
            recorder,
            step: Step::Idle,
            next_try: SimTime::ZERO,
            observed: None,
            last_renew: None,
            next_tag: 0,
            pending: Vec::new(),
            terms: 0,
            awaiting_sync: false,
            watch_generation: 0,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leads()
    }

    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    fn lease_key(&self) -> ObjectKey {
        ObjectKey::new(Kind::Lease, LEASE_NAMESPACE, self.config.lease_name.clone())
    }

    fn own(&mut self, out: &mut Output, request: ApiRequest) {
        self.next_tag += 1;
        out.requests.push(Tagged { tag: OWN_TAG | self.next_tag, request });
    }

    /// `tryAcquireOrRenew`, second half: decide from the Lease as read.
    fn on_lease(&mut self, lease: Option<&Lease>, now: SimTime, out: &mut Output) {
        let me = self.identity.clone().expect("identity is set before the first attempt");
        let Some(lease) = lease else {
            let spec = LeaseSpec {
                holder_identity: Some(me),
                lease_duration_seconds: Some(self.config.lease_duration.as_secs() as i32),
                acquire_time: Some(now),
                renew_time: Some(now),
                lease_transitions: Some(0),
            };
            let meta = ObjectMeta {
                name: self.config.lease_name.clone(),
                namespace: LEASE_NAMESPACE.into(),
                ..Default::default()
            };
            self.step = Step::Writing;
            return self.own(out, ApiRequest::Create(Object::Lease(Lease { metadata: meta, spec })));
        };
        if self.observed.as_ref().is_none_or(|(spec, _)| *spec != lease.spec) {
            self.observed = Some((lease.spec.clone(), now));
        }
        let observed_at = self.observed.as_ref().map_or(now, |(_, t)| *t);
        let holder = lease.spec.holder_identity.clone().unwrap_or_default();
        let duration = lease
            .spec
            .lease_duration_seconds
            .map_or(self.config.lease_duration, |s| Duration::from_secs(s.max(0) as u64));
        if !holder.is_empty() && holder != me && observed_at + duration > now {
            // Held by another and not expired on our clock.
            self.step = Step::Idle;
            return;
        }
        let mut next = lease.clone();
        if holder == me {
            next.spec.renew_time = Some(now);
        } else {
            next.spec.holder_identity = Some(me);
            next.spec.lease_duration_seconds = Some(self.config.lease_duration.as_secs() as i32);
            next.spec.acquire_time = Some(now);
            next.spec.renew_time = Some(now);
            next.spec.lease_transitions = Some(lease.spec.lease_transitions.unwrap_or(0) + 1);
        }
        self.step = Step::Writing;
        self.own(out, ApiRequest::Update(Object::Lease(next)));
    }

    fn on_own_response(&mut self, result: &ApiResult, now: SimTime, out: &mut Output) {
        match (self.step, result) {
            (Step::Getting, Ok(o)) => self.on_lease(o.as_lease(), now, out),
            (Step::Getting, Err(e)) if e.is_not_found() => self.on_lease(None, now, out),
            (Step::Writing, Ok(o)) => {
                if let Some(l) = o.as_lease() {
                    self.observed = Some((l.spec.clone(), now));
                }
                self.last_renew = Some(now);
                self.step = Step::Idle;
                if !self.leads() {
                    self.become_leader(o, now, out);
                }
            }
            _ => self.step = Step::Idle,
        }
    }

    fn become_leader(&mut self, lease: &Arc<Object>, now: SimTime, out: &mut Output) {
        self.terms += 1;
        // resourcelock/leaselock.go RecordEvent: "<identity> became leader".
        let msg = format!("{} became leader", self.identity.as_deref().unwrap_or_default());
        let ev = self.recorder.record(lease, EVENT_NORMAL, "LeaderElection", &msg, now);
        self.own(out, ev);
        if self.config.informers_before_leading {
            return self.start_component(now);
        }
        // Start the informers, and the controllers once their caches have synced
        // (WaitForCacheSync).
        self.awaiting_sync = true;
        self.watch_generation += 1;
    }

    /// Builds the component afresh and feeds it what the informers hold, as their initial
    /// list.
    fn start_component(&mut self, now: SimTime) {
        let mut inner = (self.make)();
        // The new process's informers list what is there now.
        for kind in Kind::ALL {
            for o in self.cache.list(kind) {
                if self.inner_watches.iter().any(|w| w.matches(o)) {
                    inner.on_event(&WatchEvent { type_: WatchEventType::Added, object: o.clone() }, now);
                }
            }
        }
        self.inner = Some(inner);
    }

    /// Holds the Lease (its component may still be waiting for its caches).
    fn leads(&self) -> bool {
        self.inner.is_some() || self.awaiting_sync
    }

    fn attempt_due(&self, now: SimTime) -> bool {
        self.step == Step::Idle && now >= self.next_try
    }
}

impl Component for LeaderElected {
    /// Lease reads and writes go through kube-controller-manager's and kube-scheduler's
    /// separate "leader-election" client (options.go: `clientset.NewForConfigOrDie(
    /// restclient.AddUserAgent(kubeconfig, "leader-election"))`), so a component busy at
    /// its own rate limit still renews its Lease in time.
    fn client_of(&self, tag: u64, request: &ApiRequest) -> &'static str {
        if tag & OWN_TAG == 0 {
            return self.inner.as_ref().map_or(crate::client::DEFAULT_CLIENT, |c| c.client_of(tag, request));
        }
        match request {
            ApiRequest::Create(Object::Event(_)) | ApiRequest::Update(Object::Event(_)) => {
                self.config.event_client
            }
            _ => LEADER_ELECTION_CLIENT,
        }
    }

    fn name(&self) -> &str {
        &self.config.lease_name
    }

    fn watches(&self) -> Vec<WatchSpec> {
        if self.config.informers_before_leading || self.leads() {
            self.inner_watches.clone()
        } else {
            Vec::new()
        }
    }

    fn watch_generation(&self) -> u64 {
        self.watch_generation
    }

    fn on_synced(&mut self, now: SimTime) {
        if self.awaiting_sync {
            self.awaiting_sync = false;
            self.start_component(now);
        }
    }

    fn on_event(&mut self, ev: &WatchEvent, now: SimTime) {
        self.cache.apply(ev);
        if let Some(inner) = &mut self.inner {
            inner.on_event(ev, now);
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, now: SimTime) {
        if tag & OWN_TAG != 0 {
            // Responses to our Lease requests are acted on in `tick` (it has `out`).
            let mut out = Output::default();
            self.on_own_response(result, now, &mut out);
            self.pending.extend(out.requests);
            return;
        }
        if let Some(inner) = &mut self.inner {
            inner.on_response(tag, result, now);
        }
    }

    fn tick(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Output {
        let mut out = Output::default();
        out.requests.append(&mut self.pending);
        if self.identity.is_none() {
            self.identity = Some(format!("{}_{}", self.config.host, crate::apiserver::uuid_v4(rng)));
        }
        if self.leads()
            && self.last_renew.is_some_and(|t| now.saturating_sub(t) >= self.config.renew_deadline)
        {
            // leaderelection.go renew: "failed to renew lease ...: timed out waiting for
            // the condition"; the process exits and comes back as a candidate.
            self.inner = None;
            self.awaiting_sync = false;
            if !self.config.informers_before_leading {
                // The restarted process runs no informers until it leads again.
                self.cache.clear();
                self.watch_generation += 1;
            }
            self.observed = None;
            self.last_renew = None;
            // The restarted process has a new identity (`<host>_<new uuid>`).
            self.identity = Some(format!("{}_{}", self.config.host, crate::apiserver::uuid_v4(rng)));
        }
        if self.attempt_due(now) {
            self.step = Step::Getting;
            let key = self.lease_key();
            self.own(&mut out, ApiRequest::Get(key));
            // A leader renews every retry period; a candidate retries with jitter
            // (wait.JitterUntil(retryPeriod, JitterFactor)).
            let wait = if self.leads() {
                self.config.retry_period
            } else {
                self.config.retry_period.mul_f64(1.0 + rng.gen::<f64>() * JITTER_FACTOR)
            };
            self.next_try = now + wait;
        }
        if let Some(inner) = &mut self.inner {
            let inner_out = inner.tick(now, rng);
            out.requests.extend(inner_out.requests);
            out.records.extend(inner_out.records);
            if let Some(w) = inner_out.wake_at {
                out.wake_no_later_than(w);
            }
        }
        if let Some(t) = self.last_renew.filter(|_| self.leads()) {
            out.wake_no_later_than(t + self.config.renew_deadline);
        }
        // The next attempt is due only once the current one has its answer: a Get or
        // Update in flight (say, to an API server that does not answer) is waited for,
        // not polled.
        if self.step == Step::Idle {
            out.wake_no_later_than(self.next_try);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ApiError;
    use rand::SeedableRng;

    /// A component that counts its ticks, to see who runs.
    struct Probe;
    impl Component for Probe {
        fn name(&self) -> &str {
            "probe"
        }
        fn watches(&self) -> Vec<WatchSpec> {
            vec![WatchSpec::kind(Kind::Lease)]
        }
        fn on_event(&mut self, _: &WatchEvent, _: SimTime) {}
        fn tick(&mut self, _: SimTime, _: &mut ChaCha8Rng) -> Output {
            Output::default()
        }
    }

    /// The Lease as the API server stores it, with optimistic concurrency.
    #[derive(Default)]
    struct Store {
        lease: Option<Lease>,
        rv: u64,
    }

    impl Store {
        fn serve(&mut self, r: &ApiRequest) -> ApiResult {
            let conflict = || ApiError::conflict(Kind::Lease, "kube-controller-manager");
            match r {
                ApiRequest::Get(_) => match &self.lease {
                    Some(l) => Ok(Arc::new(Object::Lease(l.clone()))),
                    None => Err(ApiError::not_found(Kind::Lease, "kube-controller-manager")),
                },
                ApiRequest::Create(Object::Lease(l)) => {
                    if self.lease.is_some() {
                        return Err(ApiError::already_exists(Kind::Lease, "kube-controller-manager"));
                    }
                    self.rv += 1;
                    let mut l = l.clone();
                    l.metadata.resource_version = self.rv;
                    self.lease = Some(l.clone());
                    Ok(Arc::new(Object::Lease(l)))
                }
                ApiRequest::Update(Object::Lease(l)) => {
                    if self.lease.as_ref().map(|c| c.metadata.resource_version)
                        != Some(l.metadata.resource_version)
                    {
                        return Err(conflict());
                    }
                    self.rv += 1;
                    let mut l = l.clone();
                    l.metadata.resource_version = self.rv;
                    self.lease = Some(l.clone());
                    Ok(Arc::new(Object::Lease(l)))
                }
                // Events and anything else succeed without effect.
                other => Ok(Arc::new(match other {
                    ApiRequest::Create(o) => o.clone(),
                    _ => Object::Lease(Lease::default()),
                })),
            }
        }
    }

    fn candidate(host: &str) -> LeaderElected {
        let cfg = LeaderElectionConfig::new("kube-controller-manager", "kube-controller-manager", host);
        LeaderElected::new(cfg, Box::new(|| Box::new(Probe) as Box<dyn Component>))
    }

    /// Runs candidates on a 100 ms step; `alive[i]` false cuts candidate i off the API.
    fn run(
        cands: &mut [LeaderElected],
        store: &mut Store,
        from: u64,
        to: u64,
        alive: &[bool],
    ) -> Vec<(u64, String)> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut leaders = Vec::new();
        for ms in (from..to).step_by(100) {
            let now = SimTime(ms);
            for (i, c) in cands.iter_mut().enumerate() {
                let out = c.tick(now, &mut rng);
                if !alive[i] {
                    continue;
                }
                for t in out.requests {
                    let r = store.serve(&t.request);
                    c.on_response(t.tag, &r, now);
                }
            }
            let holders: Vec<String> =
                cands.iter().filter(|c| c.is_leader()).map(|c| c.config.host.clone()).collect();
            assert!(holders.len() <= 1 || !alive.iter().all(|a| *a), "two leaders at {ms}: {holders:?}");
            if let Some(h) =
                holders.iter().find(|h| alive[cands.iter().position(|c| &c.config.host == *h).unwrap()])
            {
                if leaders.last().map(|(_, l): &(u64, String)| l != h).unwrap_or(true) {
                    leaders.push((ms, h.clone()));
                }
            }
        }
        leaders
    }

    /// One candidate wins at once; when it is cut off, it stops leading after the renew
    /// deadline, and another takes over once the Lease has gone unrenewed for its
    /// duration on that candidate's clock (plus up to one jittered retry period).
    #[test]
    fn one_leader_then_failover_after_lease_duration() {
        let mut store = Store::default();
        let mut cands = vec![candidate("cp-1"), candidate("cp-2")];
        let leaders = run(&mut cands, &mut store, 0, 30_000, &[true, true]);
        assert_eq!(leaders, vec![(100, "cp-1".to_string())], "the GET, then the create on the next tick");
        assert_eq!(store.lease.as_ref().unwrap().spec.lease_transitions, Some(0));
        let last_renew = store.lease.as_ref().unwrap().spec.renew_time.unwrap();
        // cp-1 is partitioned from the API server at t=30s.
        let leaders = run(&mut cands, &mut store, 30_000, 60_000, &[false, true]);
        assert!(!cands[0].is_leader(), "cp-1 must give up after the renew deadline");
        let (t, who) = leaders.last().unwrap().clone();
        assert_eq!(who, "cp-2");
        let earliest = last_renew.as_millis() + LEASE_DURATION.as_millis() as u64;
        let latest = earliest + (RETRY_PERIOD.as_millis() as f64 * (1.0 + JITTER_FACTOR)) as u64 + 2_000;
        assert!((earliest..=latest).contains(&t), "took over at {t}, want {earliest}..={latest}");
        assert_eq!(store.lease.as_ref().unwrap().spec.lease_transitions, Some(1));
        assert!(store.lease.as_ref().unwrap().spec.holder_identity.as_ref().unwrap().starts_with("cp-2_"));
    }

    /// A candidate whose Get is unanswered (its API server does not reply) waits for the
    /// answer: it asks to be woken for the renew deadline, not polled every millisecond at
    /// its past retry time.
    #[test]
    fn a_request_in_flight_is_waited_for_not_polled() {
        let mut c = candidate("cp-1");
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let out = c.tick(SimTime(0), &mut rng);
        assert_eq!(out.requests.len(), 1, "the Get");
        // Past the retry period, the Get still in flight.
        let out = c.tick(SimTime(5_000), &mut rng);
        assert!(out.requests.is_empty());
        assert_eq!(out.wake_at, None, "nothing to wake for until the answer comes");
    }

    /// kube-controller-manager's standby runs no informers: it watches nothing until it
    /// holds the Lease, starts its controllers only once the informers have synced, and
    /// drops its informers again when it loses the Lease.
    #[test]
    fn cold_standby_starts_informers_on_leading_and_controllers_on_sync() {
        let mut cfg = LeaderElectionConfig::new("kube-controller-manager", "kube-controller-manager", "cp-1");
        cfg.informers_before_leading = false;
        let mut c = LeaderElected::new(cfg, Box::new(|| Box::new(Probe) as Box<dyn Component>));
        let mut store = Store::default();
        assert!(c.watches().is_empty(), "a candidate watches nothing");
        let gen0 = c.watch_generation();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut step = |c: &mut LeaderElected, store: &mut Store, ms: u64, alive: bool| {
            let out = c.tick(SimTime(ms), &mut rng);
            if alive {
                for t in out.requests {
                    let r = store.serve(&t.request);
                    c.on_response(t.tag, &r, SimTime(ms));
                }
            }
        };
        step(&mut c, &mut store, 0, true);
        step(&mut c, &mut store, 100, true);
        assert!(c.is_leader());
        assert_ne!(c.watch_generation(), gen0, "leading starts informers");
        assert_eq!(c.watches(), vec![WatchSpec::kind(Kind::Lease)]);
        assert!(c.inner.is_none(), "controllers wait for the caches");
        c.on_synced(SimTime(150));
        assert!(c.inner.is_some(), "controllers run once the informers synced");
        // Cut off: the renew deadline passes, the process restarts as a cold candidate.
        let gen1 = c.watch_generation();
        for ms in (200..15_000).step_by(100) {
            step(&mut c, &mut store, ms, false);
        }
        assert!(!c.is_leader());
        assert_ne!(c.watch_generation(), gen1);
        assert!(c.watches().is_empty(), "a restarted candidate watches nothing");
    }
}

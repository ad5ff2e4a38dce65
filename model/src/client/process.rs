//! Client processes: a [`Component`] (the scheduler, the controller manager, a kubelet,
//! each behind leader election where upstream has it) on its [`ApiConnection`], and the
//! scenario's [`Kubectl`], both driven through the one [`Process`] interface.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::connection::{ApiConnection, ClientRates, Delivery};
use super::events::{Correlated, EventCorrelator};
use super::{ApiRequest, ApiResult, Component, Tagged};
use crate::api::Object;
use crate::process::{Input, Process, Ready};
use crate::time::SimTime;
use crate::wire::{Addr, ClientId, Message};

/// A process waits this long after it starts before it registers with an API server:
/// processes on one host start at the same instant, and the API server must have bound
/// its port first.
pub const STARTUP_DELAY: Duration = Duration::from_millis(10);

pub use super::connection::ClientRate;

/// The process's own requests (an event created again after its update found it gone)
/// carry this bit; components' tags never do.
const OWN_TAG: u64 = 1 << 62;

/// A component and its connection to the API servers.
pub struct ClientProcess {
    component: Box<dyn Component>,
    conn: ApiConnection,
    /// When the client registers (its start plus [`STARTUP_DELAY`]); None once it has.
    register_at: Option<SimTime>,
    /// The component's own wake-up time.
    wake: Option<SimTime>,
    /// When the rate limiter has a token for a queued request.
    retry: Option<SimTime>,
    deliveries: Vec<Delivery>,
    /// The host changed since the component last ran.
    host_changed: bool,
    /// The component's watch generation last registered.
    watch_generation: u64,
    /// The event broadcaster's correlator.
    correlator: EventCorrelator,
    /// Event updates in flight (tag -> client, event): if the event is gone, it is
    /// created again (record/event.go recordEvent).
    event_updates: std::collections::BTreeMap<u64, (&'static str, crate::api::Event)>,
    next_own_tag: u64,
}

impl ClientProcess {
    /// A client of `apis` (tried in order) started at `now`.
    pub fn new(
        component: Box<dyn Component>,
        apis: Vec<Addr>,
        client: ClientId,
        rates: ClientRates,
        now: SimTime,
    ) -> Self {
        ClientProcess {
            component,
            conn: ApiConnection::new(apis, client, rates),
            register_at: Some(now + STARTUP_DELAY),
            wake: Some(now + STARTUP_DELAY),
            retry: None,
            deliveries: Vec::new(),
            host_changed: false,
            watch_generation: 0,
            correlator: EventCorrelator::default(),
            event_updates: std::collections::BTreeMap::new(),
            next_own_tag: 0,
        }
    }

    /// Requests waiting for a client's token, by client (for reports).
    pub fn queued(&self) -> std::collections::BTreeMap<&'static str, usize> {
        self.conn.queued()
    }

    /// Sends one of the component's requests through its client; events go through
    /// the correlator first (a skipped one is answered as if written).
    fn send(&mut self, r: Tagged, now: SimTime) {
        let client = self.component.client_of(r.tag, &r.request);
        let Tagged { tag, request } = r;
        let request = match request {
            ApiRequest::Create(Object::Event(ev)) => match self.correlator.correlate(ev.clone(), now) {
                Correlated::Skip => {
                    let written = Ok(std::sync::Arc::new(Object::Event(ev)));
                    return self.deliveries.push(Delivery::Response(tag, written));
                }
                Correlated::Send(req) => req,
            },
            other => other,
        };
        if let ApiRequest::Update(Object::Event(ev)) = &request {
            self.event_updates.insert(tag, (client, ev.clone()));
        }
        self.conn.enqueue_for(client, Tagged { tag, request });
    }

    /// Our own requests' answers stay here; an event update that found its event gone
    /// creates it again.
    fn intercept(&mut self, d: Delivery) -> Option<Delivery> {
        let Delivery::Response(tag, result) = d else { return Some(d) };
        if tag & OWN_TAG != 0 {
            return None;
        }
        if let Some((client, ev)) = self.event_updates.remove(&tag) {
            if result.as_ref().is_err_and(|e| e.is_not_found()) {
                self.next_own_tag += 1;
                let create = Tagged {
                    tag: OWN_TAG | self.next_own_tag,
                    request: ApiRequest::Create(Object::Event(ev)),
                };
                self.conn.enqueue_for(client, create);
            }
        }
        Some(Delivery::Response(tag, result))
    }
}

impl Process for ClientProcess {
    fn step(&mut self, input: Input, now: SimTime, _rng: &mut ChaCha8Rng) {
        match input {
            Input::Message { msg: Message::FromApi(m), .. } => {
                self.conn.on_message(m, now, &mut self.deliveries)
            }
            // The component sees its host as it is now; when it notices a change is its
            // own timing (the kubelet's PLEG relist, its eviction manager's pass).
            Input::Host(h) => {
                self.component.on_host(&h, now);
                self.host_changed = true;
            }
            Input::Message { .. } | Input::Local { .. } => {}
        }
    }

    fn tick(&mut self, now: SimTime, _rng: &mut ChaCha8Rng) {
        if self.register_at.is_none() {
            self.conn.on_timer(now, &mut self.deliveries);
        }
    }

    fn ready(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Ready {
        let mut rd = Ready::default();
        if self.register_at.is_some_and(|t| t <= now) {
            self.register_at = None;
            self.watch_generation = self.component.watch_generation();
            self.conn.register(self.component.watches(), now);
        }
        let due = self.wake.is_some_and(|w| w <= now) || std::mem::take(&mut self.host_changed);
        if self.register_at.is_none() && (!self.deliveries.is_empty() || due) {
            for d in std::mem::take(&mut self.deliveries) {
                match self.intercept(d) {
                    Some(Delivery::Event(ev)) => self.component.on_event(&ev, now),
                    Some(Delivery::Response(tag, r)) => self.component.on_response(tag, &r, now),
                    Some(Delivery::Synced) => self.component.on_synced(now),
                    None => {}
                }
            }
            let out = self.component.tick(now, rng);
            rd.records.extend(out.records.into_iter().map(crate::process::Record::Component));
            for r in out.requests {
                self.send(r, now);
            }
            if self.component.watch_generation() != self.watch_generation {
                // New informers (a leader starting its controllers, or one that stopped).
                self.watch_generation = self.component.watch_generation();
                self.conn.register(self.component.watches(), now);
            }
            // Never ask to be woken in the past: time must move on.
            self.wake = out.wake_at.map(|w| w.max(now + Duration::from_millis(1)));
        }
        if self.register_at.is_none() {
            self.retry = self.conn.flush(now);
            rd.wake_no_later_than(self.conn.next_deadline());
        }
        for t in [self.register_at, self.wake, self.retry].into_iter().flatten() {
            rd.wake_no_later_than(t);
        }
        rd.messages = self.conn.take_outbox();
        rd
    }
}

/// The scenario's kubectl: requests from the host's user ([`Input::Local`]) go out one
/// at a time, as a person types them; between them the connection is kept checked
/// (pings, load-balancer failover), as a long-lived client behind the control-plane
/// endpoint.
pub struct Kubectl {
    conn: ApiConnection,
    register_at: Option<SimTime>,
    waiting: std::collections::VecDeque<Tagged>,
    /// The request in flight.
    current: Option<u64>,
    deliveries: Vec<Delivery>,
    answers: Vec<(u64, ApiResult)>,
}

impl Kubectl {
    /// Unlimited rate (kubectl's own limiter never binds for one request at a time).
    pub fn new(apis: Vec<Addr>, client: ClientId, now: SimTime, startup_delay: Duration) -> Self {
        Kubectl {
            conn: ApiConnection::new(apis, client, ClientRates::all(ClientRate::UNLIMITED)),
            register_at: Some(now + startup_delay),
            waiting: std::collections::VecDeque::new(),
            current: None,
            deliveries: Vec::new(),
            answers: Vec::new(),
        }
    }

    fn take_answers(&mut self) {
        for d in std::mem::take(&mut self.deliveries) {
            if let Delivery::Response(tag, r) = d {
                if self.current == Some(tag) {
                    self.current = None;
                    self.answers.push((tag, r));
                }
            }
        }
    }
}

impl Process for Kubectl {
    fn step(&mut self, input: Input, now: SimTime, _rng: &mut ChaCha8Rng) {
        match input {
            Input::Message { msg: Message::FromApi(m), .. } => {
                self.conn.on_message(m, now, &mut self.deliveries)
            }
            Input::Local { tag, request } => self.waiting.push_back(Tagged { tag, request }),
            Input::Message { .. } | Input::Host(_) => {}
        }
    }

    fn tick(&mut self, now: SimTime, _rng: &mut ChaCha8Rng) {
        if self.register_at.is_none() {
            self.conn.on_timer(now, &mut self.deliveries);
        }
    }

    fn ready(&mut self, now: SimTime, _rng: &mut ChaCha8Rng) -> Ready {
        let mut rd = Ready::default();
        if self.register_at.is_some_and(|t| t <= now) {
            self.register_at = None;
            self.conn.register(Vec::new(), now);
        }
        self.take_answers();
        if self.register_at.is_none() && self.current.is_none() {
            if let Some(r) = self.waiting.pop_front() {
                self.current = Some(r.tag);
                self.conn.enqueue([r]);
                self.conn.flush(now);
            }
        }
        match self.register_at {
            Some(t) => rd.wake_no_later_than(t),
            None => rd.wake_no_later_than(self.conn.next_deadline()),
        }
        rd.messages = self.conn.take_outbox();
        rd.local = std::mem::take(&mut self.answers);
        rd
    }
}

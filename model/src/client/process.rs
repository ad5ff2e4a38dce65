//! Client processes: a [`Component`] (the scheduler, the controller manager, a kubelet,
//! each behind leader election where upstream has it) on its [`ApiConnection`], and the
//! scenario's [`Kubectl`], both driven through the one [`Process`] interface.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::connection::{ApiConnection, Delivery};
use super::{ApiResult, Component, Tagged};
use crate::process::{Input, Process, Ready};
use crate::time::SimTime;
use crate::wire::{Addr, ClientId, Message};

/// A process waits this long after it starts before it registers with an API server:
/// processes on one host start at the same instant, and the API server must have bound
/// its port first.
pub const STARTUP_DELAY: Duration = Duration::from_millis(10);

/// client-go's QPS and burst for one client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientRate {
    pub qps: f64,
    pub burst: u32,
}

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
}

impl ClientProcess {
    /// A client of `apis` (tried in order) started at `now`.
    pub fn new(
        component: Box<dyn Component>,
        apis: Vec<Addr>,
        client: ClientId,
        rate: ClientRate,
        now: SimTime,
    ) -> Self {
        ClientProcess {
            component,
            conn: ApiConnection::new(apis, client, rate.qps, rate.burst),
            register_at: Some(now + STARTUP_DELAY),
            wake: Some(now + STARTUP_DELAY),
            retry: None,
            deliveries: Vec::new(),
            host_changed: false,
        }
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
            self.conn.register(self.component.watches(), now);
        }
        let due = self.wake.is_some_and(|w| w <= now) || std::mem::take(&mut self.host_changed);
        if self.register_at.is_none() && (!self.deliveries.is_empty() || due) {
            for d in std::mem::take(&mut self.deliveries) {
                match d {
                    Delivery::Event(ev) => self.component.on_event(&ev, now),
                    Delivery::Response(tag, r) => self.component.on_response(tag, &r, now),
                }
            }
            let out = self.component.tick(now, rng);
            self.conn.enqueue(out.requests);
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
            conn: ApiConnection::new(apis, client, 0.0, 0),
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

//! client-go's transport as a process sees it: request/response matching with a
//! timeout, the token-bucket rate limiter, watch registration with relist (the
//! reflector's Replace) after a lost batch or a dropped stream, and load-balancer failover
//! between API servers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::api::ObjectKey;
use crate::client::{ApiError, ApiResult, ObjectMap, Tagged, WatchEvent, WatchEventType, WatchSpec};
use crate::time::SimTime;
use crate::wire::{Addr, ClientId, FromApi, Message, ToApi};

/// client-go's `flowcontrol.NewTokenBucketRateLimiter(qps, burst)`: a bucket of `burst`
/// tokens refilled at `qps` a second; qps 0 means no limit.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: SimTime,
}

impl TokenBucket {
    pub fn new(qps: f64, burst: u32) -> Self {
        Self::starting_at(qps, burst, SimTime::ZERO)
    }

    /// A full bucket made at `now`.
    pub fn starting_at(qps: f64, burst: u32, now: SimTime) -> Self {
        TokenBucket { qps, burst: burst as f64, tokens: burst as f64, last: now }
    }

    fn refill(&mut self, now: SimTime) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.qps).min(self.burst);
        self.last = now;
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: SimTime) -> bool {
        if self.qps <= 0.0 {
            return true;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be there (rounded up to the next millisecond, plus one).
    pub fn next_token_at(&self, now: SimTime) -> SimTime {
        let missing = (1.0 - self.tokens).max(0.0);
        now + Duration::from_micros(((missing / self.qps) * 1e6).ceil() as u64 + 1000)
    }
}

/// How long a client waits for a response before giving up: the request fails with a
/// timeout, as an HTTP client's deadline would fail it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a client checks its watch stream (a stand-in for TCP keepalive and the
/// watch's bookmark/timeout cycle).
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// How soon a client checks a not-ready API server again (a load balancer's health-check
/// interval while a backend fails; two failures in a row take it out).
pub const NOT_READY_RECHECK: Duration = Duration::from_secs(1);

/// client-go's QPS and burst for one client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientRate {
    pub qps: f64,
    pub burst: u32,
}

impl ClientRate {
    /// No limit (client-go's QPS -1, as the kubelet's heartbeat client has).
    pub const UNLIMITED: ClientRate = ClientRate { qps: 0.0, burst: 0 };
}

/// The rates of a process's clients. Every clientset a process builds has its own token
/// bucket (rest.Config QPS and burst): kube-controller-manager one per controller
/// (ControllerClientBuilder.ClientOrDie) plus one for leader election, kube-scheduler its
/// own, an event client and a leader-election client, the kubelet its own, an event
/// client and an unlimited heartbeat client. Clients not named here get `default`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRates {
    pub default: ClientRate,
    pub overrides: BTreeMap<&'static str, ClientRate>,
}

impl ClientRates {
    /// Every client at `rate`.
    pub fn all(rate: ClientRate) -> Self {
        ClientRates { default: rate, overrides: BTreeMap::new() }
    }

    pub fn with(mut self, client: &'static str, rate: ClientRate) -> Self {
        self.overrides.insert(client, rate);
        self
    }

    pub fn of(&self, client: &str) -> ClientRate {
        self.overrides.get(client).copied().unwrap_or(self.default)
    }
}

/// The client a request goes through when its component does not say.
pub const DEFAULT_CLIENT: &str = "default";

/// What the connection hands to the component above it.
#[derive(Debug)]
pub enum Delivery {
    Event(WatchEvent),
    Response(u64, ApiResult),
    /// Every watch has listed (the informers' caches have synced), after a
    /// registration or a relist.
    Synced,
}

type Batch = (Vec<(u64, ApiResult)>, Vec<(u64, Vec<WatchEvent>)>);

/// A request waiting for its client's token, with its place in the order of all.
type Queued = (u64, Tagged);

/// The connection of one process to the API servers.
pub struct ApiConnection {
    /// The API servers this client may use, in the order it tries them (a load balancer
    /// in front of several, or one for a component on a control-plane host).
    apis: Vec<Addr>,
    api_index: usize,
    pub client: ClientId,
    rates: ClientRates,
    /// Each client's token bucket and its queue of requests waiting for a token, with
    /// their sequence numbers (requests of different clients leave in the order they
    /// were queued, as far as their buckets allow).
    clients: BTreeMap<&'static str, (TokenBucket, VecDeque<Queued>)>,
    queued_seq: u64,
    /// wire tag -> (the component's tag, deadline). Wire tags are unique per
    /// registration epoch, so a response to an earlier incarnation is never misdelivered.
    in_flight: BTreeMap<u64, (u64, SimTime)>,
    next_wire_tag: u64,
    epoch: u64,
    watches: Vec<WatchSpec>,
    watch_epoch: u64,
    received: u64,
    /// What each watch has delivered, to diff against a relist (client-go's Replace).
    shadow: ObjectMap,
    relisting: Option<BTreeSet<ObjectKey>>,
    next_ping: SimTime,
    awaiting_pong: bool,
    /// Batches that arrived before an earlier one, by sequence number.
    early: BTreeMap<u64, Batch>,
    /// The server said it sent this many batches while fewer had arrived.
    suspect: Option<u64>,
    /// Watches of this epoch whose initial list has not arrived yet.
    lists_pending: BTreeSet<u64>,
    /// Pings in a row without a Pong.
    missed_pongs: u32,
    /// Pongs in a row from a server that is not ready.
    not_ready_pongs: u32,
    /// Messages to send.
    outbox: Vec<(Addr, Message)>,
    /// The last resourceVersion each watch delivered after its list (debug checks).
    watch_rv: BTreeMap<u64, u64>,
}

impl ApiConnection {
    /// A connection (not yet registered) to `apis`, its clients rate-limited at `rates`.
    pub fn new(apis: Vec<Addr>, client: ClientId, rates: ClientRates) -> Self {
        assert!(!apis.is_empty(), "a client needs an API server");
        ApiConnection {
            apis,
            api_index: 0,
            client,
            rates,
            clients: BTreeMap::new(),
            queued_seq: 0,
            in_flight: BTreeMap::new(),
            next_wire_tag: 0,
            epoch: 0,
            watches: Vec::new(),
            watch_epoch: 0,
            received: 0,
            shadow: ObjectMap::default(),
            relisting: None,
            next_ping: SimTime::ZERO,
            awaiting_pong: false,
            early: BTreeMap::new(),
            suspect: None,
            lists_pending: BTreeSet::new(),
            missed_pongs: 0,
            not_ready_pongs: 0,
            outbox: Vec::new(),
            watch_rv: BTreeMap::new(),
        }
    }

    fn send(&mut self, msg: ToApi) {
        self.outbox.push((self.apis[self.api_index], Message::ToApi(msg)));
    }

    /// The messages to send, taken.
    pub fn take_outbox(&mut self) -> Vec<(Addr, Message)> {
        std::mem::take(&mut self.outbox)
    }

    /// Registers (or re-registers) the client and its watches; the API server answers
    /// with the current state of each watch, then a Pong that ends the relist. A new set
    /// of watches starts new informers: nothing carries over from the old ones.
    pub fn register(&mut self, watches: Vec<WatchSpec>, now: SimTime) {
        if self.watches != watches {
            self.shadow.clear();
        }
        self.watches = watches;
        self.watch_epoch += 1;
        // Unique across restarts of this process too: simulated time moves on.
        self.epoch = (now.as_millis() << 16) | (self.watch_epoch & 0xffff);
        self.next_wire_tag = self.epoch << 20;
        self.received = 0;
        self.early.clear();
        self.suspect = None;
        self.relisting = Some(BTreeSet::new());
        self.missed_pongs = 0;
        self.lists_pending = (0..self.watches.len() as u64).map(|i| self.watch_epoch << 16 | i).collect();
        self.watch_rv.clear();
        // Requests in flight keep their wire tags: a late response is still matched,
        // and an unanswered one times out.
        self.send(ToApi::Hello { client: self.client, epoch: self.epoch });
        for (i, spec) in self.watches.clone().into_iter().enumerate() {
            let watch_id = self.watch_epoch << 16 | i as u64;
            self.send(ToApi::Watch { client: self.client, epoch: self.epoch, watch_id, spec });
        }
        self.send(ToApi::Ping { client: self.client, epoch: self.epoch, received: 0 });
        self.awaiting_pong = true;
        self.next_ping = now + PING_INTERVAL;
    }

    fn reregister(&mut self, now: SimTime) {
        let watches = std::mem::take(&mut self.watches);
        self.register(watches, now);
    }

    /// Queues requests through the default client.
    pub fn enqueue(&mut self, requests: impl IntoIterator<Item = Tagged>) {
        for r in requests {
            self.enqueue_for(DEFAULT_CLIENT, r);
        }
    }

    /// Queues a request through one of the process's clients.
    pub fn enqueue_for(&mut self, client: &'static str, request: Tagged) {
        self.queued_seq += 1;
        let rate = self.rates.of(client);
        let entry = self
            .clients
            .entry(client)
            .or_insert_with(|| (TokenBucket::new(rate.qps, rate.burst), VecDeque::new()));
        entry.1.push_back((self.queued_seq, request));
    }

    /// Sends what the clients' rate limiters allow; returns when to try again if some
    /// wait.
    pub fn flush(&mut self, now: SimTime) -> Option<SimTime> {
        let mut ready: Vec<(u64, Tagged)> = Vec::new();
        let mut retry: Option<SimTime> = None;
        for (bucket, queue) in self.clients.values_mut() {
            while !queue.is_empty() && bucket.try_take(now) {
                ready.push(queue.pop_front().expect("non-empty"));
            }
            if !queue.is_empty() {
                let t = bucket.next_token_at(now);
                retry = Some(retry.map_or(t, |r| r.min(t)));
            }
        }
        if !ready.is_empty() {
            ready.sort_by_key(|(seq, _)| *seq);
            let mut batch = Vec::with_capacity(ready.len());
            for (_, r) in ready {
                self.next_wire_tag += 1;
                self.in_flight.insert(self.next_wire_tag, (r.tag, now + REQUEST_TIMEOUT));
                batch.push(Tagged { tag: self.next_wire_tag, request: r.request });
            }
            self.send(ToApi::Requests { client: self.client, epoch: self.epoch, requests: batch });
        }
        retry
    }

    /// Requests waiting for a token, by client.
    pub fn queued(&self) -> BTreeMap<&'static str, usize> {
        self.clients.iter().map(|(c, (_, q))| (*c, q.len())).filter(|(_, n)| *n > 0).collect()
    }

    /// The earliest time the connection itself needs attention (ping, request timeout).
    pub fn next_deadline(&self) -> SimTime {
        let mut d = self.next_ping;
        if let Some(t) = self.in_flight.values().map(|(_, t)| *t).min() {
            d = d.min(t);
        }
        d
    }

    /// Timers: request timeouts and the watch-stream ping. Failed requests are delivered.
    pub fn on_timer(&mut self, now: SimTime, out: &mut Vec<Delivery>) {
        let expired: Vec<u64> =
            self.in_flight.iter().filter(|(_, (_, d))| *d <= now).map(|(&k, _)| k).collect();
        for wire in expired {
            let Some((tag, _)) = self.in_flight.remove(&wire) else { continue };
            out.push(Delivery::Response(
                tag,
                Err(ApiError {
                    code: 504,
                    reason: "Timeout",
                    message: "the server was unable to return a response in the time allotted, but may still be processing the request".into(),
                }),
            ));
        }
        if now < self.next_ping {
            return;
        }
        if self.awaiting_pong {
            self.missed_pongs += 1;
        }
        if self.missed_pongs >= 2 {
            // Fail over to the next API server, as a load balancer's health check would
            // take the dead one out; two pings unanswered: the stream is broken (a
            // partition, a restarted API server), start over.
            self.api_index = (self.api_index + 1) % self.apis.len();
            return self.reregister(now);
        }
        if self.suspect.is_some_and(|s| s > self.received) {
            // A batch the server sent never arrived: relist.
            return self.reregister(now);
        }
        self.suspect = None;
        self.send(ToApi::Ping { client: self.client, epoch: self.epoch, received: self.received });
        self.awaiting_pong = true;
        self.next_ping = now + PING_INTERVAL;
    }

    /// Turns one message from the API server into deliveries for the component.
    pub fn on_message(&mut self, msg: FromApi, now: SimTime, out: &mut Vec<Delivery>) {
        match msg {
            FromApi::Batch { epoch, .. } | FromApi::Pong { epoch, .. } if epoch != self.epoch => {}
            FromApi::Batch { seq, responses, events, .. } => {
                if seq <= self.received {
                    return;
                }
                // Hold batches that overtook an earlier one until the gap fills; a gap
                // that never fills (a partition dropped it) is caught by the ping.
                self.early.insert(seq, (responses, events));
                while let Some((responses, events)) = self.early.remove(&(self.received + 1)) {
                    self.received += 1;
                    self.deliver_batch(responses, events, out);
                }
            }
            FromApi::Pong { known, sent, ready, .. } => {
                self.awaiting_pong = false;
                self.missed_pongs = 0;
                self.not_ready_pongs = if ready { 0 } else { self.not_ready_pongs + 1 };
                if !ready {
                    // Check again soon, as a load balancer does while a backend fails.
                    self.next_ping = self.next_ping.min(now + NOT_READY_RECHECK);
                }
                if self.not_ready_pongs >= 2 && self.apis.len() > 1 {
                    // The load balancer's health check failed twice in a row: it takes
                    // this server out, and the client lands on the next.
                    self.not_ready_pongs = 0;
                    self.api_index = (self.api_index + 1) % self.apis.len();
                    return self.reregister(now);
                }
                if !known {
                    return self.reregister(now);
                }
                if sent > self.received {
                    self.suspect = Some(sent);
                }
            }
        }
    }

    fn deliver_batch(
        &mut self,
        responses: Vec<(u64, ApiResult)>,
        events: Vec<(u64, Vec<WatchEvent>)>,
        out: &mut Vec<Delivery>,
    ) {
        for (wire, res) in responses {
            if let Some((tag, _)) = self.in_flight.remove(&wire) {
                out.push(Delivery::Response(tag, res));
            }
        }
        for (watch_id, evs) in events {
            if watch_id >> 16 != self.watch_epoch {
                continue;
            }
            let listing = self.lists_pending.contains(&watch_id);
            for ev in evs {
                if !listing && ev.type_ != WatchEventType::Deleted {
                    // A watch stream never goes back (the initial list is in key order).
                    let rv = ev.object.meta().resource_version;
                    let last = self.watch_rv.insert(watch_id, rv).unwrap_or(0);
                    debug_assert!(rv > last, "watch {watch_id} delivered resourceVersion {rv} after {last}");
                }
                self.deliver_event(ev, out);
            }
            self.lists_pending.remove(&watch_id);
        }
        if self.lists_pending.is_empty() {
            if let Some(seen) = self.relisting.take() {
                // Every watch has listed: objects no list mentioned were deleted while
                // the stream was down (client-go's Replace).
                let gone: Vec<ObjectKey> =
                    self.shadow.values().map(|o| o.key()).filter(|k| !seen.contains(k)).collect();
                for k in gone {
                    if let Some(obj) = self.shadow.remove(k.kind, &k.namespace, &k.name) {
                        out.push(Delivery::Event(WatchEvent { type_: WatchEventType::Deleted, object: obj }));
                    }
                }
                out.push(Delivery::Synced);
            }
        }
    }

    fn deliver_event(&mut self, mut ev: WatchEvent, out: &mut Vec<Delivery>) {
        if let Some(seen) = &mut self.relisting {
            seen.insert(ev.object.key());
        }
        match ev.type_ {
            WatchEventType::Deleted => {
                let m = ev.object.meta();
                self.shadow.remove(ev.object.kind(), &m.namespace, &m.name);
            }
            _ => {
                let old = self.shadow.insert(&ev.object);
                match old {
                    Some(o) if o.meta().resource_version == ev.object.meta().resource_version => return,
                    Some(_) => ev.type_ = WatchEventType::Modified,
                    None => ev.type_ = WatchEventType::Added,
                }
            }
        }
        out.push(Delivery::Event(ev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_allows_a_burst_then_qps() {
        let mut b = TokenBucket::new(2.0, 3);
        let t0 = SimTime::ZERO;
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0), "the burst is spent");
        assert_eq!(b.next_token_at(t0), SimTime(501), "half a second at 2 qps, rounded up");
        assert!(b.try_take(SimTime(500)));
        assert!(!b.try_take(SimTime(500)));
    }

    fn addr(n: u8) -> Addr {
        Addr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, n)), 6443)
    }

    #[test]
    fn two_missed_pongs_fail_over_and_register_again() {
        let mut c = ApiConnection::new(vec![addr(1), addr(2)], 7, ClientRates::all(ClientRate::UNLIMITED));
        c.register(Vec::new(), SimTime::ZERO);
        let first = c.take_outbox();
        assert!(first.iter().all(|(to, _)| *to == addr(1)));
        let mut out = Vec::new();
        c.on_timer(SimTime::from_secs(5), &mut out);
        c.on_timer(SimTime::from_secs(10), &mut out);
        let again = c.take_outbox();
        assert!(again
            .iter()
            .any(|(to, m)| *to == addr(2) && matches!(m, Message::ToApi(ToApi::Hello { .. }))));
    }

    /// Each client has its own bucket: one client out of tokens does not hold up another.
    #[test]
    fn each_client_has_its_own_token_bucket() {
        let rates =
            ClientRates::all(ClientRate { qps: 1.0, burst: 2 }).with("heartbeat", ClientRate::UNLIMITED);
        let mut c = ApiConnection::new(vec![addr(1)], 7, rates);
        c.register(Vec::new(), SimTime::ZERO);
        c.take_outbox();
        let get = |tag| Tagged {
            tag,
            request: crate::client::ApiRequest::Get(ObjectKey::new(crate::api::Kind::Pod, "default", "p")),
        };
        for tag in 0..5 {
            c.enqueue_for("replicaset-controller", get(tag));
        }
        for tag in 10..15 {
            c.enqueue_for("heartbeat", get(tag));
        }
        let retry = c.flush(SimTime::ZERO);
        let sent: Vec<u64> = c
            .take_outbox()
            .into_iter()
            .flat_map(|(_, m)| match m {
                Message::ToApi(ToApi::Requests { requests, .. }) => {
                    requests.into_iter().map(|r| r.tag).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(sent.len(), 7, "the burst of 2, and every unlimited one");
        assert_eq!(c.queued().get("replicaset-controller"), Some(&3));
        assert_eq!(retry, Some(SimTime(1001)));
    }

    #[test]
    fn a_request_without_an_answer_times_out() {
        let mut c = ApiConnection::new(vec![addr(1)], 7, ClientRates::all(ClientRate::UNLIMITED));
        c.register(Vec::new(), SimTime::ZERO);
        c.enqueue([Tagged {
            tag: 42,
            request: crate::client::ApiRequest::Get(ObjectKey::new(crate::api::Kind::Pod, "default", "p")),
        }]);
        assert_eq!(c.flush(SimTime::ZERO), None);
        let mut out = Vec::new();
        c.on_timer(SimTime::ZERO + REQUEST_TIMEOUT, &mut out);
        assert!(matches!(&out[..], [Delivery::Response(42, Err(e))] if e.code == 504), "{out:?}");
    }
}

//! One kube-apiserver process: the [`ApiServer`] (requests, watch cache) behind its
//! network front — client registrations and their epochs, batching of responses and
//! watch events per client, `/readyz` (the watch cache has listed and etcd answers),
//! the etcd health check and watch-stream liveness with relist, and the periodic etcd
//! compaction — driven through the one [`Process`] interface.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;

use super::{ApiInput, ApiOutput, ApiServer, ApiServerConfig};
use crate::client::{Tagged, WatchEvent};
use crate::etcd::EtcdRequest;
use crate::process::{ApiCall, Input, Process, Ready, Record};
use crate::time::SimTime;
use crate::wire::{Addr, ClientId, FromApi, FromEtcd, Message, ToApi, ToEtcd};

/// What the API server process knows of one client's connection.
struct ClientEntry {
    addr: Addr,
    /// The registration epoch; messages of older epochs are stale.
    epoch: u64,
    /// Batches sent in this epoch (the client compares it with what it received).
    sent: u64,
    /// The watch cache relisted and dropped this client's watches: its next ping is told
    /// so, and it registers again.
    stale: bool,
}

/// A kube-apiserver on its host, talking to the etcd member at `etcd`.
pub struct ApiServerProcess {
    api: ApiServer,
    config: ApiServerConfig,
    etcd: Addr,
    clients: BTreeMap<ClientId, ClientEntry>,
    /// When the server starts serving (etcd on the same host binds first).
    start_at: Option<SimTime>,
    /// When the watch cache last (re)started listing.
    started: SimTime,
    next_compaction: SimTime,
    /// The newest etcd revision seen, and the one the next compaction compacts to
    /// (storage/etcd3/compact.go: each tick compacts to the revision seen at the previous).
    revision_seen: i64,
    compact_to: i64,
    next_etcd_ping: SimTime,
    etcd_pings_unanswered: u32,
    /// Set by a timer: relist the watch cache in the next Ready.
    relist: bool,
    inbox: Vec<(Addr, Message)>,
    outputs: Vec<ApiOutput>,
    /// Sent at once, before the batched outputs (compaction, etcd pings).
    urgent: Vec<(Addr, Message)>,
    /// When each request in flight arrived, with its metric labels (the request metrics).
    arrivals: BTreeMap<(ClientId, u64), (SimTime, ApiCall)>,
}

impl ApiServerProcess {
    /// A server started at `now`, serving once `start_delay` has passed.
    pub fn new(config: ApiServerConfig, etcd: Addr, now: SimTime, start_delay: std::time::Duration) -> Self {
        ApiServerProcess {
            api: ApiServer::new(config.clone()),
            config,
            etcd,
            clients: BTreeMap::new(),
            start_at: Some(now + start_delay),
            started: SimTime::ZERO,
            next_compaction: SimTime::ZERO,
            revision_seen: 0,
            compact_to: 0,
            next_etcd_ping: SimTime::ZERO,
            etcd_pings_unanswered: 0,
            relist: false,
            inbox: Vec::new(),
            outputs: Vec::new(),
            urgent: Vec::new(),
            arrivals: BTreeMap::new(),
        }
    }

    /// The server's state machine (reads for tests).
    pub fn api(&self) -> &ApiServer {
        &self.api
    }

    fn start(&mut self, now: SimTime, rng: &mut ChaCha8Rng) {
        self.start_at = None;
        self.outputs.extend(self.api.start(now, rng));
        self.started = now;
        self.next_compaction = self.compaction_after(now);
        self.next_etcd_ping = now + super::ETCD_PING_INTERVAL;
    }

    /// The next compaction tick; never when --etcd-compaction-interval is 0.
    fn compaction_after(&self, now: SimTime) -> SimTime {
        match self.config.etcd_compaction_interval {
            d if d.is_zero() => SimTime(u64::MAX),
            d => now + d,
        }
    }

    /// kube-apiserver /readyz: the watch cache has listed and etcd answers its health check.
    fn is_ready(&self) -> bool {
        self.api.is_ready()
            && super::ETCD_PING_INTERVAL * self.etcd_pings_unanswered <= super::ETCD_HEALTHCHECK_TIMEOUT
    }

    /// The cacher relists and terminates its watchers (cacher.go terminateAllWatchers):
    /// every client re-registers and relists.
    fn relist(&mut self, now: SimTime, rng: &mut ChaCha8Rng) {
        for (client, entry) in self.clients.iter_mut() {
            self.outputs.extend(self.api.handle(ApiInput::ClientGone { client: *client }, now, rng));
            entry.stale = true;
        }
        self.outputs.extend(self.api.start(now, rng));
        self.started = now;
        self.etcd_pings_unanswered = 0;
    }

    /// Registers a client's newer epoch; false for a message of an older one.
    fn admit(&mut self, msg: &ToApi, from: Addr, now: SimTime, rng: &mut ChaCha8Rng) -> bool {
        let (client, epoch) = msg.client_epoch();
        match self.clients.get(&client).map(|c| c.epoch) {
            Some(e) if e > epoch => false,
            Some(e) if e == epoch => true,
            known => {
                if known.is_some() {
                    self.outputs.extend(self.api.handle(ApiInput::ClientGone { client }, now, rng));
                }
                // Only a Hello starts an epoch with its watches to follow; any other first
                // message means the server lost the registration (it restarted), so the
                // client must register again.
                let stale = !matches!(msg, ToApi::Hello { .. });
                self.clients.insert(client, ClientEntry { addr: from, epoch, sent: 0, stale });
                true
            }
        }
    }

    fn on_client(
        &mut self,
        msg: ToApi,
        from: Addr,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        pongs: &mut Vec<(ClientId, Addr)>,
    ) {
        if !self.admit(&msg, from, now, rng) {
            return;
        }
        match msg {
            ToApi::Hello { .. } => {}
            ToApi::Requests { client, requests, .. } => {
                for Tagged { tag, request } in requests {
                    let (verb, resource, subresource) = ApiCall::labels(&request);
                    let call = ApiCall { client, verb, resource, subresource, latency_ms: 0 };
                    self.arrivals.insert((client, tag), (now, call));
                    let input = ApiInput::ClientRequest { client, tag, request };
                    self.outputs.extend(self.api.handle(input, now, rng));
                }
            }
            ToApi::Watch { client, watch_id, spec, .. } => {
                self.outputs.extend(self.api.handle(ApiInput::Watch { client, watch_id, spec }, now, rng));
            }
            ToApi::Ping { client, .. } => pongs.push((client, from)),
        }
    }

    fn on_etcd(&mut self, m: FromEtcd, now: SimTime, rng: &mut ChaCha8Rng) {
        let FromEtcd { responses, events, .. } = m;
        if let Some(e) = events.last() {
            self.revision_seen = self.revision_seen.max(e.kv.mod_revision);
        }
        if !events.is_empty() {
            self.outputs.extend(self.api.handle(ApiInput::EtcdEvents(events), now, rng));
        }
        for (id, response) in responses {
            self.outputs.extend(self.api.handle(ApiInput::EtcdResponse { id, response }, now, rng));
        }
    }

    /// Groups the state machine's outputs: one batch per client, one message to etcd.
    fn batch(&mut self, rd: &mut Ready, now: SimTime) {
        type Batch = (Vec<(u64, crate::client::ApiResult)>, BTreeMap<u64, Vec<WatchEvent>>);
        let mut batches: BTreeMap<ClientId, Batch> = BTreeMap::new();
        let mut to_etcd = Vec::new();
        let mut calls = Vec::new();
        for o in self.outputs.drain(..) {
            match o {
                ApiOutput::Response { client, tag, result } => {
                    if let Some((at, call)) = self.arrivals.remove(&(client, tag)) {
                        calls.push(ApiCall { latency_ms: now.saturating_sub(at).as_millis() as u64, ..call });
                    }
                    batches.entry(client).or_default().0.push((tag, result))
                }
                ApiOutput::WatchEvents { client, watch_id, events } => {
                    batches.entry(client).or_default().1.entry(watch_id).or_default().extend(events)
                }
                ApiOutput::ToEtcd { id, request } => to_etcd.push((id, request)),
            }
        }
        if !calls.is_empty() {
            rd.records.push(Record::ApiCalls(calls));
        }
        if !to_etcd.is_empty() {
            rd.send(self.etcd, Message::ToEtcd(ToEtcd { requests: to_etcd, ping: false }));
        }
        for (client, (responses, events)) in batches {
            let Some(c) = self.clients.get_mut(&client) else { continue };
            c.sent += 1;
            let msg = FromApi::Batch {
                epoch: c.epoch,
                seq: c.sent,
                responses,
                events: events.into_iter().collect(),
            };
            rd.send(c.addr, Message::FromApi(msg));
        }
    }
}

impl Process for ApiServerProcess {
    fn step(&mut self, input: Input, _now: SimTime, _rng: &mut ChaCha8Rng) {
        if let Input::Message { from, msg } = input {
            self.inbox.push((from, msg));
        }
    }

    fn tick(&mut self, now: SimTime, _rng: &mut ChaCha8Rng) {
        if self.start_at.is_some() {
            return;
        }
        self.outputs.extend(self.api.expire_requests(now));
        if now >= self.next_compaction {
            self.next_compaction = self.compaction_after(now);
            if self.compact_to > 0 {
                let request = EtcdRequest::Compact { revision: self.compact_to };
                let msg = ToEtcd { requests: vec![(0, request)], ping: false };
                self.urgent.push((self.etcd, Message::ToEtcd(msg)));
            }
            self.compact_to = self.revision_seen;
        }
        if now >= self.next_etcd_ping {
            self.next_etcd_ping = now + super::ETCD_PING_INTERVAL;
            self.etcd_pings_unanswered += 1;
            // Two pings unanswered: the watch stream is gone with its member. A cache
            // that has not listed in time retries too.
            let silent = super::ETCD_PING_INTERVAL * self.etcd_pings_unanswered;
            self.relist |= silent > super::ETCD_WATCH_GIVE_UP
                || (!self.api.is_ready() && now.saturating_sub(self.started) >= super::RELIST_RETRY);
            self.urgent.push((self.etcd, Message::ToEtcd(ToEtcd { requests: Vec::new(), ping: true })));
        }
    }

    fn ready(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Ready {
        let mut rd = Ready::default();
        if let Some(t) = self.start_at {
            if now < t {
                rd.wake_no_later_than(t);
                return rd;
            }
            self.start(now, rng);
        }
        rd.messages.append(&mut self.urgent);
        let inbox = std::mem::take(&mut self.inbox);
        let mut relist = std::mem::take(&mut self.relist);
        for (_, m) in &inbox {
            if let Message::FromEtcd(FromEtcd { pong: Some(watching), .. }) = m {
                self.etcd_pings_unanswered = 0;
                relist |= !watching && self.api.is_ready();
            }
        }
        if relist {
            self.relist(now, rng);
        }
        let mut pongs = Vec::new();
        for (from, msg) in inbox {
            match msg {
                Message::ToApi(m) => self.on_client(m, from, now, rng, &mut pongs),
                Message::FromEtcd(m) => self.on_etcd(m, now, rng),
                _ => {}
            }
        }
        self.batch(&mut rd, now);
        let ready = self.is_ready();
        for (client, from) in pongs {
            let msg = match self.clients.get(&client) {
                // A stale client's watches were dropped: `known: false` makes it relist.
                Some(c) => FromApi::Pong { epoch: c.epoch, known: !c.stale, sent: c.sent, ready },
                None => FromApi::Pong { epoch: 0, known: false, sent: 0, ready },
            };
            rd.send(from, Message::FromApi(msg));
        }
        rd.wake_no_later_than(self.next_compaction.min(self.next_etcd_ping));
        if let Some(t) = self.api.next_deadline() {
            rd.wake_no_later_than(t);
        }
        rd
    }
}

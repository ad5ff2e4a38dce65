//! The simulated network: typed messages between (host IP, port) addresses, delivered
//! after a link latency, in order per link (as TCP would), dropped across a partition or to
//! a host that is down.
//!
//! Why not madsim's own endpoints: in madsim 0.2.34 every `send_to_raw` and every
//! `recv_from_raw` sleeps (at least 1 ms of simulated time, its timer granularity), so one
//! loop moves at most ~1,000 messages per simulated second, and its mailbox takes queued
//! messages with `swap_remove`, so two queued messages can arrive in either order. A busy
//! API server or etcd leader needs far more. This layer keeps madsim for what it does
//! well — the clock, the deterministic executor, host kill and restart — and delivers
//! messages itself: a send is a non-blocking insert into the receiver's inbox, ordered by
//! delivery time, plus one madsim timer per distinct delivery instant that wakes the
//! receiver when the message is due. The receiver is woken once per due instant, not once
//! when a message is sent and again when it is due. (madsim timers cannot be cancelled:
//! each `Sleep` poll adds one, so the inbox remembers which instants are armed.)
//!
//! Architecture Invariant: no randomness here unless a fault asks for it, and then from
//! the network's own seeded RNG; delivery order is (delivery time, send sequence).

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use kubesim_model::time::SimTime;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::now;

/// A message in flight: any owned value; the receiver downcasts it.
pub type Payload = Box<dyn Any + Send>;

struct Envelope {
    deliver_at: SimTime,
    seq: u64,
    from: SocketAddr,
    payload: Payload,
}

/// Counters over the whole run, for benchmarks and debugging.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub sent: u64,
    pub delivered: u64,
    /// Dropped by a partition, a down host or an unbound address.
    pub dropped: u64,
}

/// Random delay and loss on every link, for fuzzing: each message is delayed uniformly
/// in `[min_delay, max_delay]` (so messages of one link may overtake each other, as on
/// separate connections) and lost with probability `loss_rate`, from the network's own
/// seeded RNG. Scenarios leave it off: their links are FIFO with a fixed latency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkNoise {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub loss_rate: f64,
}

struct NetState {
    latency: Duration,
    noise: Option<(LinkNoise, ChaCha8Rng)>,
    bindings: BTreeMap<SocketAddr, InboxRef>,
    down: BTreeSet<IpAddr>,
    /// One-way blocks: (from, to).
    blocked: BTreeSet<(IpAddr, IpAddr)>,
    /// Extra one-way delay on a link (a slow link fault).
    extra_delay: BTreeMap<(IpAddr, IpAddr), Duration>,
    /// Latest delivery time scheduled per link, so a link stays FIFO when its delay changes.
    last_delivery: BTreeMap<(IpAddr, IpAddr), SimTime>,
    seq: u64,
    stats: NetStats,
}

/// A handle on the network of one simulation; cheap to clone.
#[derive(Clone)]
pub struct Network(Arc<Mutex<NetState>>);

impl Network {
    /// A network whose links all have this one-way latency.
    pub fn new(latency: Duration) -> Self {
        Network(Arc::new(Mutex::new(NetState {
            latency,
            noise: None,
            bindings: BTreeMap::new(),
            down: BTreeSet::new(),
            blocked: BTreeSet::new(),
            extra_delay: BTreeMap::new(),
            last_delivery: BTreeMap::new(),
            seq: 0,
            stats: NetStats::default(),
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, NetState> {
        self.0.lock().expect("network lock")
    }

    /// Binds `addr`, replacing an earlier binding (a restarted process binds again).
    pub fn bind(&self, addr: SocketAddr) -> Endpoint {
        let inbox = InboxRef::default();
        self.state().bindings.insert(addr, inbox.clone());
        Endpoint { sender: Sender { net: self.clone(), addr }, inbox }
    }

    /// Marks a host down (powered off) or up; a down host neither sends nor receives.
    pub fn set_down(&self, ip: IpAddr, down: bool) {
        let mut s = self.state();
        if down {
            s.down.insert(ip);
        } else {
            s.down.remove(&ip);
        }
    }

    /// Blocks (or unblocks) messages from `from` to `to`, one way.
    pub fn set_blocked(&self, from: IpAddr, to: IpAddr, blocked: bool) {
        let mut s = self.state();
        if blocked {
            s.blocked.insert((from, to));
        } else {
            s.blocked.remove(&(from, to));
        }
    }

    /// Removes every block.
    pub fn unblock_all(&self) {
        self.state().blocked.clear();
    }

    /// Adds `extra` to the one-way delay from `from` to `to` (zero removes it).
    pub fn set_extra_delay(&self, from: IpAddr, to: IpAddr, extra: Duration) {
        let mut s = self.state();
        if extra.is_zero() {
            s.extra_delay.remove(&(from, to));
        } else {
            s.extra_delay.insert((from, to), extra);
        }
    }

    /// Turns random delay and loss on (see [`LinkNoise`]), drawn from `seed`.
    pub fn set_noise(&self, noise: LinkNoise, seed: u64) {
        self.state().noise = Some((noise, ChaCha8Rng::seed_from_u64(seed)));
    }

    /// Changes the loss rate of the noise (see [`LinkNoise`]); no effect without noise.
    pub fn set_loss_rate(&self, loss_rate: f64) {
        if let Some((noise, _)) = &mut self.state().noise {
            noise.loss_rate = loss_rate;
        }
    }

    /// Hands `payload` to the process bound at `to` at once, as its own host does (a
    /// fault the host's agents observe, a request typed at its console): no latency, no
    /// partition; lost if nothing is bound there.
    pub fn inject(&self, to: SocketAddr, payload: Payload) {
        let mut s = self.state();
        s.seq += 1;
        let t = now();
        let envelope = Envelope { deliver_at: t, seq: s.seq, from: to, payload };
        match s.bindings.get(&to) {
            Some(inbox) => inbox.put(envelope, t),
            None => s.stats.dropped += 1,
        }
    }

    pub fn stats(&self) -> NetStats {
        self.state().stats
    }

    /// Sends `payload` as if from `from` (a client that is not a bound endpoint).
    pub fn send_from(&self, from: SocketAddr, to: SocketAddr, payload: Payload) {
        self.send(from, to, payload)
    }

    fn send(&self, from: SocketAddr, to: SocketAddr, payload: Payload) {
        let mut s = self.state();
        s.stats.sent += 1;
        let link = (from.ip(), to.ip());
        if s.down.contains(&link.0) || s.down.contains(&link.1) || s.blocked.contains(&link) {
            s.stats.dropped += 1;
            return;
        }
        let mut delay = s.latency + s.extra_delay.get(&link).copied().unwrap_or_default();
        if let Some((noise, rng)) = &mut s.noise {
            if rng.gen_bool(noise.loss_rate.clamp(0.0, 1.0)) {
                s.stats.dropped += 1;
                return;
            }
            let (lo, hi) = (noise.min_delay.as_millis() as u64, noise.max_delay.as_millis() as u64);
            delay = Duration::from_millis(rng.gen_range(lo..=hi.max(lo)));
        }
        let t = now();
        let mut deliver_at = t + delay;
        if s.noise.is_some() {
            s.seq += 1;
            let envelope = Envelope { deliver_at, seq: s.seq, from, payload };
            match s.bindings.get(&to) {
                Some(inbox) => inbox.put(envelope, t),
                None => s.stats.dropped += 1,
            }
            return;
        }
        if let Some(last) = s.last_delivery.get(&link) {
            deliver_at = deliver_at.max(*last);
        }
        if !s.extra_delay.is_empty() || s.last_delivery.contains_key(&link) {
            s.last_delivery.insert(link, deliver_at);
        }
        s.seq += 1;
        let envelope = Envelope { deliver_at, seq: s.seq, from, payload };
        match s.bindings.get(&to) {
            Some(inbox) => inbox.put(envelope, t),
            None => s.stats.dropped += 1,
        }
    }

    /// Is a message due now from `from` still deliverable to `to`?
    fn deliverable(&self, from: IpAddr, to: IpAddr) -> bool {
        let mut s = self.state();
        let ok = !s.down.contains(&to) && !s.blocked.contains(&(from, to));
        if ok {
            s.stats.delivered += 1;
        } else {
            s.stats.dropped += 1;
        }
        ok
    }
}

/// The sending half of an endpoint; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    net: Network,
    addr: SocketAddr,
}

impl Sender {
    /// Sends without waiting; a message that cannot be delivered is lost, as a packet is.
    pub fn send<T: Any + Send>(&self, to: SocketAddr, msg: T) {
        self.net.send(self.addr, to, Box::new(msg));
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// What is on its way to one bound address, in delivery order, and how to wake its
/// receiver.
#[derive(Default)]
struct Inbox {
    queue: BTreeMap<(SimTime, u64), Envelope>,
    /// The receiver's task, while it waits in [`Endpoint::recv_until`].
    waker: Option<Waker>,
    /// Instants a timer is armed for (each wakes `waker`'s task), earliest first.
    armed: VecDeque<SimTime>,
}

impl Inbox {
    /// Makes sure the waiting receiver is woken at `at`: at once when it is due now, else
    /// by a timer, unless one is armed already at or before `at` (that wake-up arms the
    /// next).
    fn arm(&mut self, at: SimTime, now: SimTime) {
        let Some(waker) = &self.waker else { return };
        if at <= now {
            waker.wake_by_ref();
            return;
        }
        // Timers at or before now have fired.
        while self.armed.front().is_some_and(|t| *t <= now) {
            self.armed.pop_front();
        }
        if self.armed.front().is_some_and(|t| *t <= at) {
            return;
        }
        self.armed.push_front(at);
        // A madsim Sleep registers its timer, with the waker it is polled with, on its
        // first poll.
        let mut sleep = crate::sleep(at.as_duration() - now.as_duration());
        let _ = Pin::new(&mut sleep).poll(&mut Context::from_waker(waker));
    }
}

#[derive(Clone, Default)]
struct InboxRef(Arc<Mutex<Inbox>>);

impl InboxRef {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.0.lock().expect("inbox lock")
    }

    /// Queues `e`, sent at `now` (a replaced endpoint's inbox just holds it).
    fn put(&self, e: Envelope, now: SimTime) {
        let mut inbox = self.lock();
        let at = e.deliver_at;
        inbox.queue.insert((at, e.seq), e);
        inbox.arm(at, now);
    }

    /// The first queued message if it is due at `now`.
    fn pop_due(&self, now: SimTime) -> Option<Envelope> {
        let mut inbox = self.lock();
        let entry = inbox.queue.first_entry()?;
        (entry.key().0 <= now).then(|| entry.remove())
    }
}

/// A bound address: sends, and receives in delivery order. Receiving is cancel-safe:
/// messages stay in the inbox until taken.
pub struct Endpoint {
    sender: Sender,
    inbox: InboxRef,
}

impl Endpoint {
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.sender.addr
    }

    pub fn send<T: Any + Send>(&self, to: SocketAddr, msg: T) {
        self.sender.send(to, msg)
    }

    /// The next message that is due now, if any.
    pub fn try_recv(&mut self) -> Option<(Payload, SocketAddr)> {
        self.try_recv_at(now())
    }

    fn try_recv_at(&mut self, t: SimTime) -> Option<(Payload, SocketAddr)> {
        while let Some(e) = self.inbox.pop_due(t) {
            if self.sender.net.deliverable(e.from.ip(), self.sender.addr.ip()) {
                return Some((e.payload, e.from));
            }
        }
        None
    }

    /// Waits for the next message until `deadline` (forever with `None`); `None` when
    /// the deadline passes first.
    pub async fn recv_until(&mut self, deadline: Option<SimTime>) -> Option<(Payload, SocketAddr)> {
        std::future::poll_fn(|cx| {
            let t = now();
            if let Some(m) = self.try_recv_at(t) {
                self.inbox.lock().waker = None;
                return Poll::Ready(Some(m));
            }
            if deadline.is_some_and(|d| d <= t) {
                self.inbox.lock().waker = None;
                return Poll::Ready(None);
            }
            let mut inbox = self.inbox.lock();
            if !inbox.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                inbox.waker = Some(cx.waker().clone());
            }
            let next_due = inbox.queue.first_key_value().map(|(k, _)| k.0);
            if let Some(wake) = next_due.into_iter().chain(deadline).min() {
                inbox.arm(wake, t);
            }
            Poll::Pending
        })
        .await
    }

    /// Waits for the next message.
    pub async fn recv(&mut self) -> (Payload, SocketAddr) {
        self.recv_until(None).await.expect("no deadline")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(host: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)), port)
    }

    fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        crate::on_fresh_thread(move || crate::simulate(7, || async move { f() }))
    }

    #[test]
    fn a_link_is_fifo_with_its_latency_and_a_partition_drops() {
        let got = crate::on_fresh_thread(|| {
            crate::simulate(1, || async {
                let net = Network::new(Duration::from_millis(3));
                let (a, mut b) = (net.bind(addr(1, 1)), net.bind(addr(2, 1)));
                for i in 0..5u32 {
                    a.send(addr(2, 1), i);
                }
                let mut got = Vec::new();
                while let Some((p, _)) = b.recv_until(Some(SimTime::from_millis(50))).await {
                    got.push((*p.downcast::<u32>().expect("u32"), now().as_millis()));
                }
                // A partition drops what is sent across it, and what was in flight.
                a.send(addr(2, 1), 98u32);
                net.set_blocked(addr(1, 1).ip(), addr(2, 1).ip(), true);
                a.send(addr(2, 1), 99u32);
                assert!(b.recv_until(Some(SimTime::from_millis(100))).await.is_none());
                (got, net.stats())
            })
        });
        let (msgs, stats) = got;
        assert_eq!(msgs, (0..5).map(|i| (i, 3)).collect::<Vec<_>>(), "in order, after the latency");
        assert_eq!((stats.sent, stats.delivered, stats.dropped), (7, 5, 2));
    }

    #[test]
    fn a_host_injects_into_its_own_process_at_once_through_a_partition() {
        let t = run(|| {
            let net = Network::new(Duration::from_millis(3));
            let _b = net.bind(addr(2, 1));
            net.set_blocked(addr(1, 1).ip(), addr(2, 1).ip(), true);
            net.inject(addr(2, 1), Box::new(1u8));
            net.stats()
        });
        assert_eq!((t.dropped, t.sent), (0, 0), "an injected input is not network traffic");
    }

    #[test]
    fn noise_reorders_and_drops_the_same_way_for_one_seed() {
        let trial = |seed: u64| {
            crate::on_fresh_thread(move || {
                crate::simulate(1, move || async move {
                    let net = Network::new(Duration::from_millis(1));
                    let noise = LinkNoise {
                        min_delay: Duration::from_millis(1),
                        max_delay: Duration::from_millis(10),
                        loss_rate: 0.2,
                    };
                    net.set_noise(noise, seed);
                    let (a, mut b) = (net.bind(addr(1, 1)), net.bind(addr(2, 1)));
                    for i in 0..50u32 {
                        a.send(addr(2, 1), i);
                    }
                    let mut got = Vec::new();
                    while let Some((p, _)) = b.recv_until(Some(SimTime::from_millis(100))).await {
                        got.push(*p.downcast::<u32>().expect("u32"));
                    }
                    got
                })
            })
        };
        let (one, again, other) = (trial(1), trial(1), trial(2));
        assert_eq!(one, again, "one seed, one delivery order");
        assert_ne!(one, other);
        assert!(one.len() < 50 && one.len() > 25, "about a fifth lost: {}", one.len());
        assert!(one.windows(2).any(|w| w[0] > w[1]), "reordered");
    }
}

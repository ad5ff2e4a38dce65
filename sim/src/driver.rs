//! The one driver loop: turns any [`Process`] into a madsim task. It delivers what
//! arrives on the process's endpoint, ticks it at the wake-up time it asked for, and
//! performs its [`Ready`]: messages onto the network, records to the trace, answers to
//! the host's user, writes onto the process's disk, then the fsync (taking the disk's
//! fsync latency) before [`Process::advance`].
//!
//! Architecture Invariant: no Kubernetes behaviour here, and nothing that depends on
//! what a process is: every process of every scenario, and every etcd member the fuzzer
//! runs, goes through this loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kubesim_model::client::ApiResult;
use kubesim_model::etcd::StoreValue;
use kubesim_model::process::{Input, Process, Ready, Record};
use kubesim_model::time::SimTime;
use kubesim_model::wire::Message;
use rand_chacha::ChaCha8Rng;

use crate::disk::SimDisk;
use crate::net::{Endpoint, Payload, Sender};
use crate::now;

/// Where a process's records and local answers go.
pub struct Hooks<V> {
    pub records: Box<dyn FnMut(Vec<Record<V>>, SimTime) + Send>,
    pub local: Box<dyn FnMut(u64, ApiResult) + Send>,
}

impl<V> Default for Hooks<V> {
    fn default() -> Self {
        Hooks { records: Box::new(|_, _| {}), local: Box::new(|_, _| {}) }
    }
}

/// A running process's state, shared with the world so that checks can read it; the
/// driver locks it only between awaits.
pub type Slot<P> = Arc<Mutex<P>>;

/// The smallest step of simulated time: a process that asks to be woken now (or in the
/// past) after a tick is woken a millisecond later, so time always moves on.
const TIME_STEP: Duration = Duration::from_millis(1);

/// Turns a payload into an input: a message from the network, or an input the host
/// injected (`Network::inject`). Anything else is not for this process and is dropped.
fn to_input<V: StoreValue>(payload: Payload, from: std::net::SocketAddr) -> Option<Input<V>> {
    match payload.downcast::<Message<V>>() {
        Ok(msg) => Some(Input::Message { from, msg: *msg }),
        Err(p) => p.downcast::<Input<V>>().ok().map(|i| *i),
    }
}

/// Drives `slot`'s process until the task is dropped (its host or process killed).
pub async fn drive<V, P>(
    slot: Slot<P>,
    mut ep: Endpoint,
    mut rng: ChaCha8Rng,
    disk: Option<SimDisk<V>>,
    mut hooks: Hooks<V>,
) where
    V: StoreValue,
    P: Process<V>,
{
    let mut wake: Option<SimTime> = Some(now());
    loop {
        let first = ep.recv_until(wake).await;
        let t = now();
        {
            let mut p = slot.lock().expect("process lock");
            for (payload, from) in first.into_iter().chain(std::iter::from_fn(|| ep.try_recv())) {
                if let Some(input) = to_input::<V>(payload, from) {
                    p.step(input, t, &mut rng);
                }
            }
            if wake.is_some_and(|w| w <= t) {
                p.tick(t, &mut rng);
            }
        }
        loop {
            let rd = slot.lock().expect("process lock").ready(now(), &mut rng);
            wake = rd.wake_at;
            perform(rd, &ep.sender(), disk.as_ref(), &mut hooks).await;
            let mut p = slot.lock().expect("process lock");
            p.advance(now(), &mut rng);
            if !p.has_ready() {
                break;
            }
        }
        let t = now();
        wake = wake.map(|w| w.max(t + TIME_STEP));
    }
}

/// Performs one Ready: sends, records, answers, writes, and waits for the fsync.
async fn perform<V: StoreValue>(rd: Ready<V>, ep: &Sender, disk: Option<&SimDisk<V>>, hooks: &mut Hooks<V>) {
    let Ready { messages, persist, sync, records, local, .. } = rd;
    if !records.is_empty() {
        (hooks.records)(records, now());
    }
    for (tag, result) in local {
        (hooks.local)(tag, result);
    }
    for (to, msg) in messages {
        ep.send(to, msg);
    }
    if persist.is_empty() {
        return;
    }
    let Some(disk) = disk else {
        panic!("a process without a disk asked to write to it");
    };
    disk.write(persist);
    if sync {
        let latency = disk.fsync_latency();
        if !latency.is_zero() {
            madsim::time::sleep(latency).await;
        }
    }
    disk.sync();
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubesim_model::etcd::raft_types::HardState;
    use kubesim_model::etcd::DiskOp;
    use kubesim_model::wire::{FromEtcd, ToEtcd};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    const ME: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 1);
    const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 1);

    /// Writes once when asked, and says so to PEER only after `advance`; asks to be
    /// woken every 100 ms and counts its ticks.
    #[derive(Default)]
    struct Writer {
        asked: bool,
        written: bool,
        durable: bool,
        announced: bool,
        ticks: u32,
    }

    impl Process<i64> for Writer {
        fn step(&mut self, input: Input<i64>, _: SimTime, _: &mut ChaCha8Rng) {
            if let Input::Message { msg: Message::ToEtcd(_), .. } = input {
                self.asked = true;
            }
        }
        fn tick(&mut self, _: SimTime, _: &mut ChaCha8Rng) {
            self.ticks += 1;
        }
        fn ready(&mut self, now: SimTime, _: &mut ChaCha8Rng) -> Ready<i64> {
            let mut rd = Ready::default();
            if self.asked && !self.written {
                self.written = true;
                rd.persist.push(DiskOp::HardState(HardState { term: 7, ..Default::default() }));
                rd.sync = true;
            }
            if self.durable && !self.announced {
                self.announced = true;
                rd.send(PEER, Message::FromEtcd(FromEtcd::default()));
            }
            rd.wake_no_later_than(SimTime((now.as_millis() / 100 + 1) * 100));
            rd
        }
        fn advance(&mut self, _: SimTime, _: &mut ChaCha8Rng) {
            self.durable |= self.written;
        }
        fn has_ready(&self) -> bool {
            self.durable && !self.announced
        }
    }

    /// The driver writes a Ready's ops, waits out the fsync, and only then advances:
    /// what the process sends after `advance` leaves after the fsync, and the disk holds
    /// the write by then. Ticks come at the wake-ups asked for.
    #[test]
    fn persist_then_fsync_then_advance_and_ticks_on_time() {
        let (arrived, term, ticks) = crate::on_fresh_thread(|| {
            crate::simulate(3, || async {
                let net = crate::net::Network::new(Duration::from_millis(1));
                let disk: SimDisk<i64> = SimDisk::default();
                disk.set_fsync_latency(Duration::from_millis(40));
                let slot = Arc::new(Mutex::new(Writer::default()));
                let (s, d, n) = (slot.clone(), disk.clone(), net.clone());
                let mut peer = net.bind(PEER);
                let ep = n.bind(ME);
                madsim::task::spawn(async move {
                    let rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
                    drive(s, ep, rng, Some(d), Hooks::default()).await
                });
                madsim::time::sleep(Duration::from_millis(250)).await;
                peer.send(ME, Message::<i64>::ToEtcd(ToEtcd::default()));
                let (_, _) = peer.recv().await;
                let arrived = now();
                let term = disk.read(|st| st.hard_state.term);
                let ticks = slot.lock().expect("slot").ticks;
                (arrived, term, ticks)
            })
        });
        // Sent at 250 ms, arrives 251, written, 40 ms fsync, announced at 291, arrives 292.
        assert_eq!(arrived, SimTime(292));
        assert_eq!(term, 7, "durable before it was announced");
        assert_eq!(ticks, 3, "ticks at 0 (start), 100 and 200 ms");
    }
}

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

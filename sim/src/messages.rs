//! What crosses the simulated network ([`crate::net`]). Payloads are typed and boxed;
//! objects inside are `Arc`s, so nothing is serialized or copied.
//!
//! Links are FIFO, but a partition or a restart loses messages, so client streams carry
//! what detects it: client messages carry the registration epoch (a message of a newer
//! epoch registers the client), and batches to a client carry a sequence number that the
//! client's ping compares with what the server sent.

use kubesim_model::client::{ApiResult, Tagged, WatchEvent, WatchSpec};
use kubesim_model::etcd::{EtcdRequest, EtcdResponse, MvccEvent};

use std::sync::Arc;

use kubesim_model::api::Object;

/// The value type etcd stores in the simulation.
pub type Value = Arc<Object>;

/// Identifies one incarnation of one client process (host index << 16 | incarnation).
pub type ClientId = u64;

/// Client -> API server.
#[derive(Debug)]
pub enum ToApi {
    /// (Re)registers a client: the API server forgets its earlier watches and sequence.
    Hello {
        client: ClientId,
        epoch: u64,
    },
    Requests {
        client: ClientId,
        epoch: u64,
        requests: Vec<Tagged>,
    },
    Watch {
        client: ClientId,
        epoch: u64,
        watch_id: u64,
        spec: WatchSpec,
    },
    /// Liveness probe of the watch stream: `received` is the last batch sequence number
    /// the client saw.
    Ping {
        client: ClientId,
        epoch: u64,
        received: u64,
    },
}

/// API server -> client. Every batch carries the next sequence number for that client,
/// so a client detects batches lost to a partition and relists, as a broken watch
/// stream makes client-go's reflector do.
#[derive(Debug)]
pub enum FromApi {
    Batch {
        epoch: u64,
        seq: u64,
        responses: Vec<(u64, ApiResult)>,
        events: Vec<(u64, Vec<WatchEvent>)>,
    },
    /// `ready`: the server's /readyz would pass (its watch cache has listed and its etcd
    /// answers); a load balancer stops sending to it otherwise.
    Pong {
        epoch: u64,
        known: bool,
        sent: u64,
        ready: bool,
    },
}

/// API server -> etcd.
#[derive(Debug, Default)]
pub struct ToEtcd {
    pub requests: Vec<(u64, EtcdRequest<Value>)>,
    /// Asks whether the sender's watch is still registered (the watch stream's liveness:
    /// a restarted member has forgotten its watchers).
    pub ping: bool,
}

/// etcd -> API server: responses to its requests, and the events committed since the
/// last message if it watches (links are FIFO, so events arrive in revision order).
#[derive(Debug, Default)]
pub struct FromEtcd {
    pub responses: Vec<(u64, EtcdResponse<Value>)>,
    pub events: Vec<MvccEvent<Value>>,
    /// The answer to a ping: is the receiver a registered watcher?
    pub pong: Option<bool>,
}

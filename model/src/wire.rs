//! What crosses the simulated network between processes: typed, never serialized; objects
//! inside are `Arc`s, so a message is moved, not copied.
//!
//! Links are FIFO, but a partition or a restart loses messages, so client streams carry
//! what detects it: client messages carry the registration epoch (a message of a newer
//! epoch registers the client), and batches to a client carry a sequence number that the
//! client's ping compares with what the server sent.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::api::Object;
use crate::client::{ApiResult, Tagged, WatchEvent, WatchSpec};
use crate::etcd::{EtcdRequest, EtcdResponse, MvccEvent, PeerMessage};

/// A process's network address: its host's IP and its port. Plain data: the model
/// names peers by address, the driver delivers.
pub type Addr = SocketAddr;

/// The value type etcd stores in the cluster: API objects.
pub type Value = Arc<Object>;

/// Identifies one incarnation of one client process (host index << 8 | slot).
pub type ClientId = u64;

/// Everything one process can send another. `V` is etcd's value type (API objects in a
/// cluster; plain values where etcd is tested alone).
#[derive(Debug)]
pub enum Message<V = Value> {
    ToApi(ToApi),
    FromApi(FromApi),
    ToEtcd(ToEtcd<V>),
    FromEtcd(FromEtcd<V>),
    Peer(PeerMessage<V>),
}

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

impl ToApi {
    pub fn client_epoch(&self) -> (ClientId, u64) {
        match self {
            ToApi::Hello { client, epoch }
            | ToApi::Requests { client, epoch, .. }
            | ToApi::Watch { client, epoch, .. }
            | ToApi::Ping { client, epoch, .. } => (*client, *epoch),
        }
    }
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
#[derive(Debug)]
pub struct ToEtcd<V = Value> {
    pub requests: Vec<(u64, EtcdRequest<V>)>,
    /// Asks whether the sender's watch is still registered (the watch stream's liveness:
    /// a restarted member has forgotten its watchers).
    pub ping: bool,
}

impl<V> Default for ToEtcd<V> {
    fn default() -> Self {
        ToEtcd { requests: Vec::new(), ping: false }
    }
}

/// etcd -> API server: responses to its requests, and the events committed since the
/// last message if it watches (links are FIFO, so events arrive in revision order).
#[derive(Debug)]
pub struct FromEtcd<V = Value> {
    pub responses: Vec<(u64, EtcdResponse<V>)>,
    pub events: Vec<MvccEvent<V>>,
    /// The answer to a ping: is the receiver a registered watcher?
    pub pong: Option<bool>,
}

impl<V> Default for FromEtcd<V> {
    fn default() -> Self {
        FromEtcd { responses: Vec::new(), events: Vec::new(), pong: None }
    }
}

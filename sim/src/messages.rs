//! What crosses the simulated network. Payloads are typed and boxed (madsim's
//! `send_to_raw`); objects inside are `Arc`s, so nothing is serialized or copied.
//!
//! madsim 0.2.34's endpoint mailbox takes queued messages with `swap_remove`, so two
//! messages that wait in one mailbox can be received in either order. Every stream
//! here therefore carries what restores order: client messages carry the registration
//! epoch (a message of a newer epoch registers the client), batches to a client carry
//! a sequence number, and etcd's replies carry one too.

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
    Batch { epoch: u64, seq: u64, responses: Vec<(u64, ApiResult)>, events: Vec<(u64, Vec<WatchEvent>)> },
    Pong { epoch: u64, known: bool, sent: u64 },
}

/// API server -> etcd.
#[derive(Debug)]
pub struct ToEtcd {
    pub requests: Vec<(u64, EtcdRequest<Value>)>,
}

/// etcd -> API server: responses and the watch events committed by them. `seq` orders
/// them: madsim's mailbox does not keep arrival order when messages queue.
#[derive(Debug)]
pub struct FromEtcd {
    pub seq: u64,
    pub responses: Vec<(u64, EtcdResponse<Value>)>,
    pub events: Vec<MvccEvent<Value>>,
}

/// The one message tag every endpoint uses; the payload type tells messages apart.
pub const TAG: u64 = 1;

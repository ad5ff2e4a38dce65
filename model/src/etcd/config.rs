//! A replicated member's configuration, with etcd's defaults and where each comes from.

use std::time::Duration;

/// etcd --heartbeat-interval default (embed.DefaultTickMs = 100): one raft tick.
pub const DEFAULT_TICK_INTERVAL: Duration = Duration::from_millis(100);
/// etcd --election-timeout default (embed.DefaultElectionMs = 1000) in ticks:
/// ServerConfig.ElectionTicks = ElectionMs / TickMs.
pub const DEFAULT_ELECTION_TICKS: usize = 10;
/// server/etcdserver/bootstrap.go raftConfig: `HeartbeatTick: 1`.
pub const DEFAULT_HEARTBEAT_TICKS: usize = 1;
/// server/etcdserver/raft.go `maxSizePerMsg = 1 * 1024 * 1024`.
pub const DEFAULT_MAX_SIZE_PER_MSG_BYTES: u64 = 1024 * 1024;
/// server/etcdserver/raft.go `maxInflightMsgs = 4096 / 8`.
pub const DEFAULT_MAX_INFLIGHT_MSGS: usize = 4096 / 8;
/// etcd --snapshot-count default in v3.5 (etcdserver.DefaultSnapshotCount = 100000;
/// v3.6 lowered it to 10000).
pub const DEFAULT_SNAPSHOT_COUNT: u64 = 100_000;
/// server/etcdserver/server.go DefaultSnapshotCatchUpEntries: entries kept behind a
/// snapshot so a slow follower catches up by log, not by another snapshot.
pub const DEFAULT_SNAPSHOT_CATCH_UP_ENTRIES: u64 = 5000;
/// etcd --quota-backend-bytes default (storage.DefaultQuotaBytes = 2 GiB).
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// etcd --max-request-bytes default (embed.DefaultMaxRequestBytes = 1.5 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 3 * 1024 * 1024 / 2;
/// config.ServerConfig.ReqTimeout(): 5 s plus twice the election timeout.
pub fn request_timeout(tick: Duration, election_ticks: usize) -> Duration {
    Duration::from_secs(5) + 2 * tick * election_ticks as u32
}
/// server/etcdserver/v3_server.go `readIndexRetryTime`: a ReadIndex without an answer
/// is sent again after this long.
pub const READ_INDEX_RETRY: Duration = Duration::from_millis(500);
/// server/lease/lessor.go MaxLeaseTTL (seconds).
pub const MAX_LEASE_TTL_SECONDS: i64 = 9_000_000_000;

/// One replicated etcd member's settings. `MemberConfig::new(id, peers)` gives etcd's
/// defaults.
#[derive(Clone, Debug)]
pub struct MemberConfig {
    /// This member's raft id (non-zero).
    pub id: u64,
    /// Every voting member's id, this one included (the static --initial-cluster).
    pub peers: Vec<u64>,
    pub tick_interval: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// etcd --pre-vote (default true since v3.5).
    pub pre_vote: bool,
    /// Always on in etcd (bootstrap.go raftConfig `CheckQuorum: true`).
    pub check_quorum: bool,
    pub max_size_per_msg_bytes: u64,
    pub max_inflight_msgs: usize,
    /// Applied entries between two snapshots (--snapshot-count).
    pub snapshot_count: u64,
    /// Entries kept in the log behind a snapshot (SnapshotCatchUpEntries).
    pub snapshot_catch_up_entries: u64,
    pub quota_backend_bytes: u64,
    pub max_request_bytes: u64,
    /// How long a proposal or linearizable read may wait (ReqTimeout()).
    pub request_timeout: Duration,
    /// Whether clients send `hasleader` metadata (clientv3.WithRequireLeader): then a
    /// member without a leader answers every request with `etcdserver: no leader`.
    /// Without it, a write on such a member fails with raft's `raft proposal dropped`.
    pub require_leader: bool,
    /// Not etcd's behaviour (etcd lets such proposals run into the request timeout): fail
    /// proposals pending on this member with `etcdserver: leader changed` as soon as it
    /// sees a new leader. A failed proposal may still commit; clients must treat the error
    /// as indeterminate, as they must treat a timeout.
    pub fail_proposals_on_leader_change: bool,
    /// PLANTED BUG, for tests of the linearizability checker only: serve linearizable
    /// reads from the local store without ReadIndex, as a serializable read. A member
    /// cut off from the leader then returns stale data. Never enable in a scenario.
    pub unsafe_local_linearizable_reads: bool,
}

impl MemberConfig {
    pub fn new(id: u64, peers: Vec<u64>) -> Self {
        MemberConfig {
            id,
            peers,
            tick_interval: DEFAULT_TICK_INTERVAL,
            election_ticks: DEFAULT_ELECTION_TICKS,
            heartbeat_ticks: DEFAULT_HEARTBEAT_TICKS,
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg_bytes: DEFAULT_MAX_SIZE_PER_MSG_BYTES,
            max_inflight_msgs: DEFAULT_MAX_INFLIGHT_MSGS,
            snapshot_count: DEFAULT_SNAPSHOT_COUNT,
            snapshot_catch_up_entries: DEFAULT_SNAPSHOT_CATCH_UP_ENTRIES,
            quota_backend_bytes: DEFAULT_QUOTA_BACKEND_BYTES,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            request_timeout: request_timeout(DEFAULT_TICK_INTERVAL, DEFAULT_ELECTION_TICKS),
            require_leader: true,
            fail_proposals_on_leader_change: false,
            unsafe_local_linearizable_reads: false,
        }
    }

    /// The election timeout (--election-timeout).
    pub fn election_timeout(&self) -> Duration {
        self.tick_interval * self.election_ticks as u32
    }

    /// server/etcdserver/server.go NewServer: `minTTL = (3*ElectionTicks/2) * heartbeat`,
    /// rounded up to whole seconds.
    pub fn min_lease_ttl_seconds(&self) -> i64 {
        let min = self.tick_interval * (3 * self.election_ticks as u32 / 2);
        min.as_millis().div_ceil(1000) as i64
    }

    pub(crate) fn raft_config(&self, applied: u64) -> raft::Config {
        raft::Config {
            id: self.id,
            election_tick: self.election_ticks,
            heartbeat_tick: self.heartbeat_ticks,
            applied,
            max_size_per_msg: self.max_size_per_msg_bytes,
            max_inflight_msgs: self.max_inflight_msgs,
            check_quorum: self.check_quorum,
            pre_vote: self.pre_vote,
            // etcd's raft default: the randomized timeout is in [election, 2 * election).
            min_election_tick: self.election_ticks,
            max_election_tick: 2 * self.election_ticks,
            read_only_option: raft::ReadOnlyOption::Safe,
            // Off, as in raft-rs's default (etcd's raft has no such option): raft-rs 0.7's
            // try_batching merges entries into a pending entry-less MsgAppend whatever its
            // prev index, and the follower panics (regression test:
            // one_thousand_sequential_puts_commit_without_batch_append).
            batch_append: false,
            ..raft::Config::default()
        }
    }
}

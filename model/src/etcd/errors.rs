//! etcd's error strings, as a client sees them (gRPC status messages).
//!
//! Sources: server/etcdserver/errors.go (`etcdserver.Err*`), api/v3rpc/rpctypes/error.go
//! (`ErrGRPC*`, what togRPCError in server/etcdserver/api/v3rpc/util.go maps them to),
//! server/storage/mvcc/kvstore.go and server/lease/lessor.go.

/// mvcc.ErrCompacted (rpctypes.ErrGRPCCompacted carries the same text after "etcdserver: ").
pub const ERR_COMPACTED: &str = "mvcc: required revision has been compacted";
/// mvcc.ErrFutureRev.
pub const ERR_FUTURE_REV: &str = "mvcc: required revision is a future revision";
/// rpctypes.ErrGRPCNoLeader: the v3rpc interceptor's answer when the client requires a
/// leader (clientv3.WithRequireLeader) and the member has none.
pub const ERR_NO_LEADER: &str = "etcdserver: no leader";
/// rpctypes.ErrGRPCLeaderChanged: a linearizable read waiting on ReadIndex when the
/// member sees a new leader (EtcdServer.requestCurrentIndex).
pub const ERR_LEADER_CHANGED: &str = "etcdserver: leader changed";
/// rpctypes.ErrGRPCTimeout: a proposal or read not done within the request timeout.
pub const ERR_TIMEOUT: &str = "etcdserver: request timed out";
/// rpctypes.ErrGRPCTimeoutDueToLeaderFail (EtcdServer.parseProposeCtxErr): the request
/// started while the previous leader was failing.
pub const ERR_TIMEOUT_DUE_TO_LEADER_FAIL: &str =
    "etcdserver: request timed out, possibly due to previous leader failure";
/// rpctypes.ErrGRPCRequestTooLarge: the marshalled request exceeds --max-request-bytes.
pub const ERR_REQUEST_TOO_LARGE: &str = "etcdserver: request is too large";
/// rpctypes.ErrGRPCNoSpace: the quota check failed or the NOSPACE alarm is raised.
pub const ERR_NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";
/// raft.ErrProposalDropped, which togRPCError does not map (codes.Unknown): a write on a
/// member without a leader when the client does not require one.
pub const ERR_PROPOSAL_DROPPED: &str = "raft proposal dropped";
/// rpctypes.ErrGRPCLeaseNotFound.
pub const ERR_LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";
/// rpctypes.ErrGRPCLeaseExist.
pub const ERR_LEASE_EXIST: &str = "etcdserver: lease already exists";
/// rpctypes.ErrGRPCLeaseTTLTooLarge.
pub const ERR_LEASE_TTL_TOO_LARGE: &str = "etcdserver: too large lease TTL";
/// rpctypes.ErrGRPCDuplicateKey: a txn branch writes one key twice.
pub const ERR_DUPLICATE_KEY: &str = "etcdserver: duplicate key given in txn request";

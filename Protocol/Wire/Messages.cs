using MessagePack;

namespace KvReplica.Protocol.Wire;

// Every frame's payload is one Message. The [Union] tags and every [Key] below are part of the
// wire format: they are frozen by Tests/Protocol/WireStabilityTests and are never renumbered or
// reused. New fields take new keys; new messages take new tags. See docs/protocol.md.

/// <summary>Root of every message that travels in a frame, between replicas or to clients.</summary>
[Union(0, typeof(Hello))]
[Union(1, typeof(HelloAccepted))]
[Union(2, typeof(HelloRejected))]
[Union(3, typeof(AuthStart))]
[Union(4, typeof(AuthChallenge))]
[Union(5, typeof(AuthProof))]
[Union(6, typeof(AuthOutcome))]
[Union(10, typeof(ClientRequest))]
[Union(11, typeof(ClientReply))]
[Union(12, typeof(BackupChunk))]
[Union(13, typeof(StateSummary))]
[Union(14, typeof(CatchUpRequest))]
[Union(20, typeof(ReplicaEnvelope))]
public abstract class Message
{
}

/// <summary>Who opens a connection: a client, or a replica opening its outbound peer link.</summary>
public enum PeerKind
{
    Client = 0,
    Replica = 1,
    /// <summary>A backup download: after HelloAccepted the replica streams <see cref="BackupChunk"/>s and closes.</summary>
    Backup = 2,
    /// <summary>
    /// A restarting replica asking what a peer knows (its id in <see cref="Hello.ReplicaId"/>): the
    /// peer answers one <see cref="StateSummary"/> and closes.
    /// </summary>
    StateQuery = 3,
    /// <summary>
    /// A restarting replica that lost state fetching a peer's: the peer streams a snapshot and
    /// the log suffix after it as <see cref="BackupChunk"/>s (parts 0 and 1) and closes.
    /// </summary>
    CatchUp = 4,
}

/// <summary>
/// First frame on every connection, sent by the side that dialled. The listener answers with
/// <see cref="HelloAccepted"/> or <see cref="HelloRejected"/> and then closes on rejection.
/// </summary>
[MessagePackObject]
public sealed class Hello : Message
{
    /// <summary>Must equal the listener's <see cref="ProtocolVersion.Current"/>.</summary>
    [Key(0)] public int ProtocolVersion { get; set; }
    /// <summary>Must equal the listener's cluster name from cluster.json.</summary>
    [Key(1)] public string ClusterName { get; set; } = "";
    [Key(2)] public PeerKind Kind { get; set; }
    /// <summary>The dialling replica's id; 0 for a client.</summary>
    [Key(3)] public int ReplicaId { get; set; }
    /// <summary>
    /// A number the dialling replica picks once per process start. A change tells the listener
    /// that the peer restarted and lost its in-memory link state. 0 for a client.
    /// </summary>
    [Key(4)] public long Incarnation { get; set; }
}

[MessagePackObject]
public sealed class HelloAccepted : Message
{
    [Key(0)] public int ProtocolVersion { get; set; }
    /// <summary>The listener's replica id.</summary>
    [Key(1)] public int ReplicaId { get; set; }
    /// <summary>The listener's incarnation (see <see cref="Hello.Incarnation"/>).</summary>
    [Key(2)] public long Incarnation { get; set; }
    /// <summary>
    /// For replica links: the next link sequence number the listener expects from the dialler.
    /// The dialler resends every unacknowledged envelope from there on. 0 for clients.
    /// </summary>
    [Key(3)] public long ResumeFrom { get; set; }
    /// <summary>Largest frame payload, in bytes, the listener accepts.</summary>
    [Key(4)] public int MaxFrameBytes { get; set; }
}

[MessagePackObject]
public sealed class HelloRejected : Message
{
    /// <summary>One line, for a person: what did not match and what was expected.</summary>
    [Key(0)] public string Reason { get; set; } = "";
}

/// <summary>
/// First frame after <see cref="HelloAccepted"/> on a client or backup connection to a replica
/// with authentication on: the SCRAM client-first-message (docs/protocol.md, "Authentication").
/// </summary>
[MessagePackObject]
public sealed class AuthStart : Message
{
    /// <summary><c>SCRAM-SHA-256</c>, the only mechanism.</summary>
    [Key(0)] public string Mechanism { get; set; } = "";
    [Key(1)] public string Payload { get; set; } = "";
}

/// <summary>The replica's SCRAM server-first-message.</summary>
[MessagePackObject]
public sealed class AuthChallenge : Message
{
    [Key(0)] public string Payload { get; set; } = "";
}

/// <summary>The client's SCRAM client-final-message (with its proof).</summary>
[MessagePackObject]
public sealed class AuthProof : Message
{
    [Key(0)] public string Payload { get; set; } = "";
}

/// <summary>
/// The end of the exchange. Ok: the server-final-message, which the client checks to know the
/// replica holds the verifier. Not ok: <see cref="Error"/>, and the replica closes.
/// </summary>
[MessagePackObject]
public sealed class AuthOutcome : Message
{
    [Key(0)] public bool Ok { get; set; }
    [Key(1)] public string? Payload { get; set; }
    [Key(2)] public string? Error { get; set; }
}

/// <summary>Operations a client can ask for. Numbers are wire values.</summary>
public enum Operation
{
    Get = 1,
    Put = 2,
    Delete = 3,
    /// <summary>The contacted replica's view, suspicions and position (<see cref="ClientReply.ReplicaStatus"/>); no key. Admin only.</summary>
    Status = 4,
    /// <summary>Write the value only if the key exists; <see cref="ReplyStatus.NotFound"/> when it does not (nothing written).</summary>
    Update = 5,
    /// <summary>
    /// Write the value only if the key's version equals <see cref="ClientRequest.ExpectedTime"/>.<see cref="ClientRequest.ExpectedReplica"/>
    /// (0.0: only if the key is absent, put-if-absent); otherwise <see cref="ReplyStatus.ConditionFailed"/> with the key's current version.
    /// </summary>
    CompareAndSet = 6,
    /// <summary>A linearizable read of whether the key is present, and its version; no value travels.</summary>
    Exists = 7,
    /// <summary>An atomic transaction (<see cref="ClientRequest.Txn"/>): compares, then the then-operations or the else-operations.</summary>
    Txn = 8,
    /// <summary>A linearizable read of several keys (<see cref="ClientRequest.Keys"/>) as of one point of the order.</summary>
    MultiGet = 9,
    /// <summary>Admin: create or replace the user named by the key; the value is a MessagePack <c>UserRecord</c>.</summary>
    UserPut = 10,
    /// <summary>Admin: delete the user named by the key.</summary>
    UserDelete = 11,
    /// <summary>Admin: create or replace the role named by the key; the value is a MessagePack <c>RoleRecord</c>.</summary>
    RolePut = 12,
    /// <summary>Admin: delete the role named by the key.</summary>
    RoleDelete = 13,
    /// <summary>One page of the keys with a prefix, in key order (<see cref="ClientRequest.Scan"/>); every page of a scan is read at one revision.</summary>
    Scan = 14,
    /// <summary>
    /// A stream of the changes to keys with a prefix, in delivery order (<see cref="ClientRequest.Watch"/>): the replica
    /// answers with any number of <see cref="ClientReply"/>s carrying <see cref="ClientReply.Events"/> under this request id,
    /// until the connection closes or an error ends it. Open a connection of its own for each watch.
    /// </summary>
    Watch = 15,
}

/// <summary>How a GET is answered. Numbers are wire values.</summary>
public enum ReadMode
{
    /// <summary>Linearizable: answered from a majority of replicas (docs/design.md, "Reads").</summary>
    Majority = 0,
    /// <summary>Answered by the contacted replica alone; cheaper, see docs/design.md for what it gives up.</summary>
    Local = 1,
}

/// <summary>One client operation. Replies come back as <see cref="ClientReply"/> with the same <see cref="RequestId"/>.</summary>
[MessagePackObject]
public sealed class ClientRequest : Message
{
    /// <summary>Chosen by the client, unique among its requests in flight on this connection.</summary>
    [Key(0)] public long RequestId { get; set; }
    [Key(1)] public Operation Operation { get; set; }
    /// <summary>UTF-8, 1 to <see cref="Limits.MaxKeyBytes"/> bytes.</summary>
    [Key(2)] public string Key { get; set; } = "";
    /// <summary>PUT only: at most the cluster's MaxValueBytes.</summary>
    [Key(3)] public byte[]? Value { get; set; }
    /// <summary>Writes only: a random 64-bit id the client picks once per session.</summary>
    [Key(4)] public ulong ClientId { get; set; }
    /// <summary>Writes only: 1, 2, 3… per client id; a retry reuses the number, so it is applied once.</summary>
    [Key(5)] public long Sequence { get; set; }
    /// <summary>Writes only: every sequence number below this one has had its reply; the cluster may forget them.</summary>
    [Key(6)] public long AckedBelow { get; set; }
    [Key(7)] public ReadMode ReadMode { get; set; }
    /// <summary>CompareAndSet only: the version the key must have (time and replica of its stamp); 0 and 0 for "the key must be absent".</summary>
    [Key(8)] public long ExpectedTime { get; set; }
    [Key(9)] public int ExpectedReplica { get; set; }
    /// <summary>Txn only.</summary>
    [Key(10)] public TxnBody? Txn { get; set; }
    /// <summary>MultiGet only: 1 to <see cref="Limits.MaxMultiKeys"/> keys.</summary>
    [Key(11)] public string[]? Keys { get; set; }
    /// <summary>Scan only.</summary>
    [Key(12)] public ScanRequest? Scan { get; set; }
    /// <summary>Watch only.</summary>
    [Key(13)] public WatchRequest? Watch { get; set; }
}

/// <summary>What a <see cref="TxnCompare"/> tests about its key.</summary>
public enum TxnCompareKind
{
    Exists = 0,
    Absent = 1,
    /// <summary>The key is present with exactly this version.</summary>
    VersionEquals = 2,
    /// <summary>The key is absent, or present with another version.</summary>
    VersionNotEquals = 3,
    /// <summary>The key is present with exactly this value.</summary>
    ValueEquals = 4,
    /// <summary>The key is absent, or present with another value.</summary>
    ValueNotEquals = 5,
}

/// <summary>One condition of a transaction, evaluated against the state at the transaction's place in the order.</summary>
[MessagePackObject]
public sealed class TxnCompare
{
    [Key(0)] public string Key { get; set; } = "";
    [Key(1)] public TxnCompareKind Kind { get; set; }
    /// <summary>VersionEquals and VersionNotEquals.</summary>
    [Key(2)] public long VersionTime { get; set; }
    [Key(3)] public int VersionReplica { get; set; }
    /// <summary>ValueEquals and ValueNotEquals.</summary>
    [Key(4)] public byte[]? Value { get; set; }
}

/// <summary>One write of a transaction's branch: <see cref="Operation.Put"/> (with a value) or <see cref="Operation.Delete"/>.</summary>
[MessagePackObject]
public sealed class TxnOp
{
    [Key(0)] public Operation Operation { get; set; }
    [Key(1)] public string Key { get; set; } = "";
    [Key(2)] public byte[]? Value { get; set; }
}

/// <summary>
/// An etcd-style transaction, applied atomically at one place in the total order: if every
/// compare holds, the <see cref="Then"/> writes, otherwise the <see cref="Else"/> writes. Every key
/// it writes gets the transaction's stamp as its version. MSET is a transaction with no compares.
/// </summary>
[MessagePackObject]
public sealed class TxnBody
{
    [Key(0)] public TxnCompare[] Compares { get; set; } = [];
    [Key(1)] public TxnOp[] Then { get; set; } = [];
    [Key(2)] public TxnOp[] Else { get; set; } = [];
}

/// <summary>One page of a scan of the keys that begin with <see cref="Prefix"/>.</summary>
[MessagePackObject]
public sealed class ScanRequest
{
    /// <summary>Empty for every key.</summary>
    [Key(0)] public string Prefix { get; set; } = "";
    /// <summary>Null for the first page; then the last key of the previous page (the page starts after it).</summary>
    [Key(1)] public string? After { get; set; }
    /// <summary>1 to <see cref="Limits.MaxScanLimit"/> keys.</summary>
    [Key(2)] public int Limit { get; set; }
    /// <summary>
    /// 0 and 0 for the first page: it is read at a fresh linearizable point, returned in
    /// <see cref="ClientReply.RevisionTime"/>. Later pages pass that revision back, so that every
    /// page comes from the same state.
    /// </summary>
    [Key(3)] public long RevisionTime { get; set; }
    [Key(4)] public int RevisionReplica { get; set; }
    /// <summary>Leave values out of the reply (LIST without values).</summary>
    [Key(5)] public bool KeysOnly { get; set; }
}

/// <summary>Which changes a watch streams.</summary>
[MessagePackObject]
public sealed class WatchRequest
{
    /// <summary>Empty for every key.</summary>
    [Key(0)] public string Prefix { get; set; } = "";
    /// <summary>
    /// Stream every change with a revision after this one (time and replica of a stamp; 0 and 0:
    /// every change since the cluster began), then live changes. To resume, pass the revision of
    /// the last event seen, or the one the first reply confirmed if none came.
    /// </summary>
    [Key(1)] public long AfterTime { get; set; }
    [Key(2)] public int AfterReplica { get; set; }
    /// <summary>Ignore the revision above and start after the contacted replica's delivered point ("from now"); the first reply names it.</summary>
    [Key(3)] public bool FromNow { get; set; }
}

/// <summary>One key of a MultiGet or Scan reply.</summary>
[MessagePackObject]
public sealed class KeyValue
{
    [Key(0)] public string Key { get; set; } = "";
    /// <summary>MultiGet: whether the key is present (a scan lists present keys only).</summary>
    [Key(1)] public bool Found { get; set; }
    /// <summary>Null when absent, or when the scan asked for keys only.</summary>
    [Key(2)] public byte[]? Value { get; set; }
    [Key(3)] public long VersionTime { get; set; }
    [Key(4)] public int VersionReplica { get; set; }
}

/// <summary>One change of a watched key: its new value, or its deletion, at a revision.</summary>
[MessagePackObject]
public sealed class WatchEvent
{
    [Key(0)] public string Key { get; set; } = "";
    [Key(1)] public bool Deleted { get; set; }
    [Key(2)] public byte[]? Value { get; set; }
    /// <summary>The revision: the stamp of the write that made the change (all changes of one transaction share it).</summary>
    [Key(3)] public long Time { get; set; }
    [Key(4)] public int Replica { get; set; }
}

/// <summary>Outcome of a request. Numbers are wire values.</summary>
public enum ReplyStatus
{
    Ok = 0,
    NotFound = 1,
    Error = 2,
    /// <summary>
    /// A conditional write's condition did not hold, so nothing was written (CompareAndSet; the
    /// reply carries the key's current version), or a transaction ran its else-branch.
    /// </summary>
    ConditionFailed = 3,
}

/// <summary>Why a request failed. Numbers are wire values.</summary>
public enum ErrorCode
{
    None = 0,
    /// <summary>The request itself is wrong (key or value size, unknown operation). Do not retry.</summary>
    InvalidRequest = 1,
    /// <summary>Too few replicas answered in time. Retrying later may succeed.</summary>
    NoMajority = 2,
    /// <summary>The replica has too many writes pending. Retry after a pause.</summary>
    Busy = 3,
    /// <summary>The replica is stopping. Retry at another replica.</summary>
    ShuttingDown = 4,
    /// <summary>The connection has not authenticated; the replica closes it after this reply.</summary>
    AuthenticationRequired = 5,
    /// <summary>The user's roles do not allow this operation on this key. Do not retry.</summary>
    PermissionDenied = 6,
    /// <summary>
    /// A scan page or watch asked for a revision older than the replica's retained change history
    /// (the message says the oldest revision it has). Start the scan again, or re-read and watch
    /// from a newer revision.
    /// </summary>
    Compacted = 7,
}

[MessagePackObject]
public sealed class ClientReply : Message
{
    [Key(0)] public long RequestId { get; set; }
    [Key(1)] public ReplyStatus Status { get; set; }
    /// <summary>GET with status Ok: the value.</summary>
    [Key(2)] public byte[]? Value { get; set; }
    [Key(3)] public ErrorCode Error { get; set; }
    /// <summary>Status Error: one line for a person.</summary>
    [Key(4)] public string? ErrorMessage { get; set; }
    /// <summary>Lamport time of the write that produced this value (0 if none): the value's version.</summary>
    [Key(5)] public long VersionTime { get; set; }
    /// <summary>Replica id half of the version stamp.</summary>
    [Key(6)] public int VersionReplica { get; set; }
    /// <summary>STATUS with status Ok: what the replica knows about itself and its view.</summary>
    [Key(7)] public ReplicaStatus? ReplicaStatus { get; set; }
    /// <summary>
    /// The cluster revision the reply reflects (the stamp of the last write delivered at that point
    /// of the order): for a write, its own stamp; for a read, the point it was answered at.
    /// </summary>
    [Key(8)] public long RevisionTime { get; set; }
    [Key(9)] public int RevisionReplica { get; set; }
    /// <summary>MultiGet: one per requested key, in request order. Scan: the page's keys, in key order.</summary>
    [Key(10)] public KeyValue[]? Entries { get; set; }
    /// <summary>Scan: more keys follow the last one of this page.</summary>
    [Key(11)] public bool More { get; set; }
    /// <summary>Watch: the next changes, in delivery order (never splitting one revision's changes across replies). Empty on the first reply, which confirms the watch.</summary>
    [Key(12)] public WatchEvent[]? Events { get; set; }
}

/// <summary>A replica's answer to STATUS.</summary>
[MessagePackObject]
public sealed class ReplicaStatus
{
    [Key(0)] public int ReplicaId { get; set; }
    [Key(1)] public long ViewNumber { get; set; }
    [Key(2)] public int[] Members { get; set; } = [];
    [Key(3)] public int[] Suspected { get; set; } = [];
    /// <summary>Stamp of the last write delivered here (time, replica).</summary>
    [Key(4)] public long DeliveredTime { get; set; }
    [Key(5)] public int DeliveredReplica { get; set; }
    /// <summary>Writes held here and not yet delivered.</summary>
    [Key(6)] public int PendingWrites { get; set; }
    /// <summary>A view change is in progress (delivery paused).</summary>
    [Key(7)] public bool Wedged { get; set; }
    /// <summary>A newer view excludes this replica.</summary>
    [Key(8)] public bool Removed { get; set; }
}

/// <summary>
/// One piece of a backup (a snapshot file of the store, docs/protocol.md "Backup"), sent in order
/// on a connection opened with <see cref="PeerKind.Backup"/>. The last chunk carries the SHA-256
/// of the whole file, or an error instead.
/// </summary>
[MessagePackObject]
public sealed class BackupChunk : Message
{
    /// <summary>Byte offset of <see cref="Data"/> in the file.</summary>
    [Key(0)] public long Offset { get; set; }
    /// <summary>At most 1 MiB.</summary>
    [Key(1)] public byte[] Data { get; set; } = [];
    /// <summary>True on the final chunk.</summary>
    [Key(2)] public bool Last { get; set; }
    /// <summary>Final chunk: SHA-256 of the whole file.</summary>
    [Key(3)] public byte[]? Sha256 { get; set; }
    /// <summary>The stamp of the last write the snapshot includes (time, replica), on every chunk: it names the stream for a resume.</summary>
    [Key(4)] public long ThroughTime { get; set; }
    [Key(5)] public int ThroughReplica { get; set; }
    /// <summary>Non-null: the backup failed; one line for a person. No more chunks follow.</summary>
    [Key(6)] public string? Error { get; set; }
    /// <summary>
    /// Which file of the stream this chunk belongs to: 0 the snapshot; 1, in a catch-up stream
    /// only, the log suffix (write-ahead log records) that follows it. Each part ends with its
    /// own Last chunk and checksum; offsets start at 0 in each.
    /// </summary>
    [Key(7)] public int Part { get; set; }
    /// <summary>Catch-up only, on every chunk: the first and last log segment of the suffix (with the stamp, the stream's name for a resume).</summary>
    [Key(8)] public int SuffixFrom { get; set; }
    [Key(9)] public int SuffixThrough { get; set; }
}

/// <summary>
/// First frame after <see cref="HelloAccepted"/> on a <see cref="PeerKind.CatchUp"/> connection:
/// a fresh stream (all zero), or the rest of an earlier one, named by its snapshot stamp, from a
/// part and offset. A peer that no longer has that snapshot answers with an error chunk.
/// </summary>
[MessagePackObject]
public sealed class CatchUpRequest : Message
{
    [Key(0)] public long ResumeThroughTime { get; set; }
    [Key(1)] public int ResumeThroughReplica { get; set; }
    [Key(2)] public int ResumePart { get; set; }
    [Key(3)] public long ResumeOffset { get; set; }
    [Key(4)] public int ResumeSuffixFrom { get; set; }
    [Key(5)] public int ResumeSuffixThrough { get; set; }
}

/// <summary>
/// What a replica knows, per origin replica: the largest time of that origin's writes it holds
/// (its cumulative acknowledgement) and the largest it has delivered. A restarting replica
/// compares it with its own state to find out whether it lost writes it once acknowledged.
/// </summary>
[MessagePackObject]
public sealed class StateSummary : Message
{
    [Key(0)] public int[] Origins { get; set; } = [];
    [Key(1)] public long[] HeldThrough { get; set; } = [];
    [Key(2)] public long[] DeliveredThrough { get; set; } = [];
}

/// <summary>
/// Reliable-link wrapper around every replica-to-replica message (see <c>Protocol/Link/ReliableLink</c>).
/// Sequence numbers let a link survive TCP reconnects with nothing lost, duplicated or reordered.
/// </summary>
[MessagePackObject]
public sealed class ReplicaEnvelope : Message
{
    /// <summary>1, 2, 3… per direction of a replica pair, for the lifetime of the sender's process.</summary>
    [Key(0)] public long Sequence { get; set; }
    /// <summary>Every envelope the sender received from the addressee with a smaller sequence number.</summary>
    [Key(1)] public long AckedBelow { get; set; }
    [Key(2)] public PeerMessage Body { get; set; } = null!;
}

/// <summary>Messages of the replica protocol itself, carried inside a <see cref="ReplicaEnvelope"/>.</summary>
[Union(0, typeof(OrderBatch))]
[Union(1, typeof(ReadQuery))]
[Union(2, typeof(ReadAnswer))]
[Union(3, typeof(ViewPropose))]
[Union(4, typeof(ViewJoin))]
[Union(5, typeof(ViewInstall))]
[Union(6, typeof(JoinRequest))]
[Union(7, typeof(CatchUpWrites))]
[Union(8, typeof(JoinRefused))]
[Union(9, typeof(ReadIndexQuery))]
[Union(10, typeof(ReadIndexAnswer))]
public abstract class PeerMessage
{
}

/// <summary>A write as multicast between replicas. Its origin is the replica that sent the batch.</summary>
[MessagePackObject]
public sealed class WriteEntry
{
    /// <summary>Lamport time at the origin; strictly increasing within one origin's stream.</summary>
    [Key(0)] public long Time { get; set; }
    [Key(1)] public Operation Operation { get; set; }
    [Key(2)] public string Key { get; set; } = "";
    [Key(3)] public byte[]? Value { get; set; }
    [Key(4)] public ulong ClientId { get; set; }
    [Key(5)] public long Sequence { get; set; }
    [Key(6)] public long AckedBelow { get; set; }
    /// <summary>CompareAndSet: the version the key must have (0 and 0: absent).</summary>
    [Key(7)] public long ExpectedTime { get; set; }
    [Key(8)] public int ExpectedReplica { get; set; }
    /// <summary>Txn only.</summary>
    [Key(9)] public TxnBody? Txn { get; set; }
}

/// <summary>
/// The ordering stream from one replica to another: the sender's newly stamped writes, then its
/// cumulative acknowledgements ("I hold every write of origin Origins[i] up to time
/// HeldThrough[i]"), then its clock. An empty batch is a heartbeat.
/// </summary>
[MessagePackObject]
public sealed class OrderBatch : PeerMessage
{
    [Key(0)] public WriteEntry[] Writes { get; set; } = [];
    [Key(1)] public int[] Origins { get; set; } = [];
    [Key(2)] public long[] HeldThrough { get; set; } = [];
    /// <summary>The sender's Lamport time when it sent the batch.</summary>
    [Key(3)] public long Clock { get; set; }
    /// <summary>
    /// For each origin in <see cref="Origins"/>, the largest time of its writes the sender has
    /// delivered. A receiver that holds less has lost writes it once acknowledged (a data
    /// directory wiped or rolled back) and must not carry on as if it had them.
    /// </summary>
    [Key(4)] public long[] DeliveredThrough { get; set; } = [];
    /// <summary>
    /// The view number the sender promised and waits to see installed (it is wedged), or 0. A
    /// coordinator that sees a peer wedged for long starts a view change that completes it.
    /// </summary>
    [Key(5)] public long WedgedFor { get; set; }
    /// <summary>
    /// The view the sender has installed. Acknowledgements count only within one view: a
    /// receiver ignores those of a batch from another view (its writes still count).
    /// </summary>
    [Key(6)] public long View { get; set; }
    /// <summary>The sender's monotonic time (ms) when it sent the batch.</summary>
    [Key(7)] public long SentAt { get; set; }
    /// <summary>
    /// The <see cref="SentAt"/> of the newest batch the sender has received from the addressee:
    /// proof to the addressee that the sender heard from it then (its lease for local reads).
    /// </summary>
    [Key(8)] public long EchoSentAt { get; set; }
    /// <summary>
    /// The peers the sender suspects now. A coordinator that hears every member leaves out one
    /// side of a pair that cannot hear each other (a one-way cut), so that a view change happens.
    /// </summary>
    [Key(9)] public int[] Suspects { get; set; } = [];
}

/// <summary>Asks a replica for its current value of one key, for a majority read.</summary>
[MessagePackObject]
public sealed class ReadQuery : PeerMessage
{
    [Key(0)] public long ReadId { get; set; }
    [Key(1)] public string Key { get; set; } = "";
}

/// <summary>
/// Asks a replica, for a read of many keys (a MultiGet or a scan's first page), how far the
/// reading replica must have delivered before it answers from its own state: its read index.
/// </summary>
[MessagePackObject]
public sealed class ReadIndexQuery : PeerMessage
{
    [Key(0)] public long ReadId { get; set; }
    /// <summary>The keys read (a MultiGet), or null for a prefix.</summary>
    [Key(1)] public string[]? Keys { get; set; }
    /// <summary>The prefix read (a scan), when <see cref="Keys"/> is null.</summary>
    [Key(2)] public string Prefix { get; set; } = "";
}

/// <summary>
/// The answer to a <see cref="ReadIndexQuery"/>: the largest of the answering replica's delivered
/// point and the stamps of the writes to those keys it holds.
/// </summary>
[MessagePackObject]
public sealed class ReadIndexAnswer : PeerMessage
{
    [Key(0)] public long ReadId { get; set; }
    [Key(1)] public long FenceTime { get; set; }
    [Key(2)] public int FenceReplica { get; set; }
}

[MessagePackObject]
public sealed class ReadAnswer : PeerMessage
{
    [Key(0)] public long ReadId { get; set; }
    [Key(1)] public bool Found { get; set; }
    [Key(2)] public byte[]? Value { get; set; }
    [Key(3)] public long VersionTime { get; set; }
    [Key(4)] public int VersionReplica { get; set; }
}

/// <summary>
/// A view change's first step (docs/design.md, "View change"): the coordinator, the lowest id
/// among the members it does not suspect, proposes view <see cref="Number"/> with
/// <see cref="Members"/>. A member that has promised no higher number promises this one, stops
/// delivering and acknowledging (it is wedged) and answers with a <see cref="ViewJoin"/>.
/// </summary>
[MessagePackObject]
public sealed class ViewPropose : PeerMessage
{
    [Key(0)] public long Number { get; set; }
    [Key(1)] public int[] Members { get; set; } = [];
}

/// <summary>
/// A member's answer to a proposal: what it holds of each origin of the old view, as of the
/// moment it wedged (the last acknowledgements it ever sends in the old view).
/// </summary>
[MessagePackObject]
public sealed class ViewJoin : PeerMessage
{
    [Key(0)] public long Number { get; set; }
    [Key(1)] public int[] Origins { get; set; } = [];
    [Key(2)] public long[] HeldThrough { get; set; } = [];
    /// <summary>
    /// The last view the joiner installed (null: the configured one). A coordinator that learns of
    /// a newer view than its own adopts it and abandons its proposal: views are never forked.
    /// </summary>
    [Key(3)] public ViewInstall? InstalledView { get; set; }
    /// <summary>
    /// The joiner is a removed replica being added back: its report does not count toward the
    /// trims (its state is stale), and the coordinator sends it what it lacks before the install.
    /// </summary>
    [Key(4)] public bool Rejoining { get; set; }
    /// <summary>Rejoining: the stamp of the last write the joiner delivered.</summary>
    [Key(5)] public long DeliveredTime { get; set; }
    [Key(6)] public int DeliveredReplica { get; set; }
}

/// <summary>A removed replica asks a member to start a view change that adds it back.</summary>
[MessagePackObject]
public sealed class JoinRequest : PeerMessage
{
    /// <summary>The stamp of the last write it delivered: the coordinator must still have every later one.</summary>
    [Key(0)] public long DeliveredTime { get; set; }
    [Key(1)] public int DeliveredReplica { get; set; }
    /// <summary>The newest view the requester knows: a request older than the view that added it back is stale.</summary>
    [Key(2)] public long View { get; set; }
}

/// <summary>
/// The coordinator's answer to a <see cref="JoinRequest"/> it cannot serve from the recent writes it
/// keeps in memory: the requester fell further behind than that and must catch up from a snapshot.
/// </summary>
[MessagePackObject]
public sealed class JoinRefused : PeerMessage
{
    /// <summary>The stamp just before the oldest delivered write the coordinator still keeps.</summary>
    [Key(0)] public long KeptAfterTime { get; set; }
    [Key(1)] public int KeptAfterReplica { get; set; }
    /// <summary>The view change it refused to add the requester to (0: a refused join request).</summary>
    [Key(2)] public long ViewNumber { get; set; }
}

/// <summary>A write with its origin, carried on behalf of another replica.</summary>
[MessagePackObject]
public sealed class CarriedWrite
{
    [Key(0)] public int Origin { get; set; }
    [Key(1)] public WriteEntry Write { get; set; } = new();
}

/// <summary>
/// Sent by the coordinator to a rejoining replica just before the install that adds it: the
/// writes delivered after the joiner's last one, in delivery order, then every write the
/// coordinator holds, and the coordinator's acknowledgement vector and clock. The joiner then
/// holds what the coordinator holds at the install.
/// </summary>
[MessagePackObject]
public sealed class CatchUpWrites : PeerMessage
{
    [Key(0)] public long ViewNumber { get; set; }
    [Key(1)] public CarriedWrite[] Delivered { get; set; } = [];
    [Key(2)] public CarriedWrite[] Held { get; set; } = [];
    [Key(3)] public int[] Origins { get; set; } = [];
    [Key(4)] public long[] HeldThrough { get; set; } = [];
    [Key(5)] public long Clock { get; set; }
}

/// <summary>
/// The new view, sent by the coordinator once every proposed member joined: its number, its
/// members, and for each removed member the time through which its writes survive (the
/// smallest any joiner held); its later writes are discarded everywhere. Also sent to a replica
/// that is not a member, so that it learns it was removed.
/// </summary>
[MessagePackObject]
public sealed class ViewInstall : PeerMessage
{
    [Key(0)] public long Number { get; set; }
    [Key(1)] public int[] Members { get; set; } = [];
    [Key(2)] public int[] TrimOrigins { get; set; } = [];
    [Key(3)] public long[] TrimTimes { get; set; } = [];
    /// <summary>
    /// Members that enter this view on the coordinator's state, sent to each just before this
    /// install (<see cref="CatchUpWrites"/>): a replica added back, or one that missed a view
    /// and may hold writes that view trimmed. Such a member that did not get its catch-up
    /// counts itself removed and asks to rejoin.
    /// </summary>
    [Key(4)] public int[] CaughtUp { get; set; } = [];
}

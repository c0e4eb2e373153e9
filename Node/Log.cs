using Microsoft.Extensions.Logging;

namespace KvReplica.Node;

/// <summary>Every log line the daemon writes, with stable event ids (1xxx lifecycle, 2xxx peers, 3xxx clients, 4xxx protocol traces).</summary>
internal static partial class Log
{
    [LoggerMessage(1000, LogLevel.Information, "replica {ReplicaId} of cluster '{Cluster}' listening on {Endpoint}")]
    public static partial void Listening(ILogger logger, int replicaId, string cluster, string endpoint);

    [LoggerMessage(1001, LogLevel.Information, "view {ViewNumber}: members {Members}")]
    public static partial void ViewInstalled(ILogger logger, long viewNumber, string members);

    [LoggerMessage(1002, LogLevel.Information, "stopping: closing listener and connections")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(1003, LogLevel.Information, "stopped; delivered through {LastDelivered}, {Pending} writes still held")]
    public static partial void Stopped(ILogger logger, string lastDelivered, int pending);

    [LoggerMessage(1004, LogLevel.Critical, "replica core failed; stopping the replica: {Reason}")]
    public static partial void CoreFailed(ILogger logger, string reason, Exception exception);

    [LoggerMessage(2000, LogLevel.Information, "peer {PeerId} up ({Direction}, {Remote})")]
    public static partial void PeerUp(ILogger logger, int peerId, string direction, string remote);

    [LoggerMessage(2001, LogLevel.Warning, "peer {PeerId} down ({Direction}): {Reason}")]
    public static partial void PeerDown(ILogger logger, int peerId, string direction, string reason);

    [LoggerMessage(2002, LogLevel.Information, "peer {PeerId} restarted (incarnation {Old} -> {New}); starting a fresh link and re-sending our undelivered writes to it")]
    public static partial void PeerRestarted(ILogger logger, int peerId, long old, long @new);

    [LoggerMessage(2003, LogLevel.Warning, "peer {PeerId} broke the protocol, closing its connection: {Reason}")]
    public static partial void PeerViolation(ILogger logger, int peerId, string reason);

    [LoggerMessage(2004, LogLevel.Warning, "handshake with {Remote} rejected: {Reason}")]
    public static partial void HandshakeRejected(ILogger logger, string remote, string reason);

    [LoggerMessage(2005, LogLevel.Warning, "refused {Count} connections since the last such line: {Limit} connections were already waiting to complete their handshake")]
    public static partial void ConnectionsRefused(ILogger logger, long count, int limit);

    [LoggerMessage(3003, LogLevel.Warning, "closing client connection {ConnectionId}: it is not reading its replies ({Bytes} bytes of replies queued, the limit is {Limit})")]
    public static partial void ClientNotReading(ILogger logger, long connectionId, long bytes, long limit);

    [LoggerMessage(3000, LogLevel.Debug, "client connection {ConnectionId} from {Remote} opened as {User}")]
    public static partial void ClientOpened(ILogger logger, long connectionId, string remote, string user);

    [LoggerMessage(3001, LogLevel.Debug, "client connection {ConnectionId} closed: {Reason}")]
    public static partial void ClientClosed(ILogger logger, long connectionId, string reason);

    [LoggerMessage(3002, LogLevel.Warning, "closing connection from {Remote}: {Reason}")]
    public static partial void BadInput(ILogger logger, string remote, string reason);

    [LoggerMessage(4000, LogLevel.Debug, "delivered {Stamp} {Operation} '{Key}' -> {Result}{Duplicate}")]
    public static partial void Delivered(ILogger logger, string stamp, string operation, string key, string result, string duplicate);

    [LoggerMessage(4001, LogLevel.Debug, "resending {Count} envelopes to peer {PeerId} from sequence {From}")]
    public static partial void Resending(ILogger logger, int count, int peerId, long from);

    [LoggerMessage(5000, LogLevel.Information, "recovered from {Directory}: snapshot imported {Snapshot}, engine through {EngineThrough} with {Keys} keys, {Replayed} writes replayed from {LogEntries} log records, {Held} held, delivered through {LastDelivered}, in {ElapsedMs} ms")]
    public static partial void Recovered(ILogger logger, string directory, string snapshot, string engineThrough, long keys, int replayed, int logEntries, int held, string lastDelivered, long elapsedMs);

    [LoggerMessage(5001, LogLevel.Warning, "write-ahead log had a torn or corrupt tail (a write cut short by a crash): {Detail}")]
    public static partial void WalTailTruncated(ILogger logger, string detail);

    [LoggerMessage(5002, LogLevel.Warning, "skipping a damaged snapshot file, trying an older one: {Detail}")]
    public static partial void SnapshotSkipped(ILogger logger, string detail);

    [LoggerMessage(5003, LogLevel.Warning, "fsync is \"none\": acknowledged writes can be lost if this machine loses power. Use this for tests and benchmarks only")]
    public static partial void FsyncDisabled(ILogger logger);

    [LoggerMessage(5004, LogLevel.Information, "imported snapshot file {Path} into the storage engine: {Keys} keys in {ElapsedMs} ms; the file is deleted")]
    public static partial void SnapshotImported(ILogger logger, string path, long keys, long elapsedMs);

    [LoggerMessage(5006, LogLevel.Critical, "this replica's data is behind what its peers know it promised: {Reason}. Its data directory was lost or replaced; stopping. Re-seed it from a backup or another replica's data directory (README, \"Recovering a replica\")")]
    public static partial void StateLost(ILogger logger, string reason);

    [LoggerMessage(5021, LogLevel.Critical, "{Reason}")]
    public static partial void DiskFull(ILogger logger, string reason);

    [LoggerMessage(5020, LogLevel.Warning, "{Reason}")]
    public static partial void FellBehind(ILogger logger, string reason);

    [LoggerMessage(5007, LogLevel.Information, "{What} sent to {Remote}: {Bytes} bytes, through {Stamp}")]
    public static partial void BackupServed(ILogger logger, string what, string remote, long bytes, string stamp);

    [LoggerMessage(5008, LogLevel.Warning, "catching up from replica {PeerId}: {Reason}")]
    public static partial void CatchingUp(ILogger logger, int peerId, string reason);

    [LoggerMessage(5009, LogLevel.Information, "caught up from replica {PeerId}: {Bytes} bytes (its engine through {Stamp} and the log after it) in {ElapsedMs} ms; the old log and engine are in {Lost}")]
    public static partial void CaughtUp(ILogger logger, int peerId, long bytes, string stamp, long elapsedMs, string lost);

    [LoggerMessage(5010, LogLevel.Warning, "catch-up stream from replica {PeerId} broke ({Reason}); {Next}")]
    public static partial void CatchUpFailed(ILogger logger, int peerId, string reason, string next);

    [LoggerMessage(5011, LogLevel.Error, "still behind after {Attempts} catch-ups ({Reason}); starting anyway, and the core stops this replica if a peer shows it is behind")]
    public static partial void StillBehind(ILogger logger, int attempts, string reason);

    [LoggerMessage(6000, LogLevel.Warning, "TLS handshake with {Remote} failed; connection closed: {Reason}")]
    public static partial void TlsRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(6001, LogLevel.Warning, "connection from {Remote} claims to be replica {ClaimedId} but presented {Presented}; closed")]
    public static partial void PeerNotAuthenticated(ILogger logger, string remote, int claimedId, string presented);

    [LoggerMessage(6002, LogLevel.Warning, "{Kind} connection from {Remote} did not authenticate; closed: {Reason}")]
    public static partial void ClientNotAuthenticated(ILogger logger, string kind, string remote, string reason);

    [LoggerMessage(6003, LogLevel.Warning, "security is off: no tls in the cluster file, so connections are plaintext and clients do not authenticate{Why}")]
    public static partial void SecurityOff(ILogger logger, string why);
}

using KvReplica.Transport;

namespace KvReplica.Node;

/// <summary>
/// Every fixed limit and interval of the daemon, in one place (exit codes are in
/// <see cref="ExitCodes"/>). First the limits the replica puts on a connection (docs/protocol.md,
/// "Limits on a connection", lists what a client must respect): none is in cluster.json, since
/// they bound what a misbehaving or hostile party can hold, and a correct client or peer never
/// comes near them. Then the daemon's own pacing: its tick, its input queue, its start-up
/// catch-up and its stop.
/// </summary>
internal static class ConnectionLimits
{
    /// <summary>
    /// A connection must send its whole Hello within this long of being accepted, or it is closed.
    /// </summary>
    public static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Once a frame has started (any byte of it arrived), more of it must arrive within this long,
    /// or the connection is closed. "No progress within X" rather than "whole frame within X":
    /// a 16 MiB frame on a slow but working link keeps its connection, while a header with
    /// nothing behind it, or a sender that stopped, is closed after this long.
    /// </summary>
    public static readonly TimeSpan FrameProgressTimeout = FrameDeadlines.Replica.ProgressTimeout;

    /// <summary>
    /// A started frame must also arrive whole within <see cref="FrameProgressTimeout"/> plus its
    /// length at this rate (16 MiB: 10 s + 256 s), so that a sender trickling a byte just inside
    /// the progress timeout (slowloris) cannot hold a connection for days. 64 KiB/s is far below
    /// any link a replica is deployed on.
    /// </summary>
    public static readonly int MinFrameBytesPerSecond = FrameDeadlines.Replica.MinBytesPerSecond;

    /// <summary>
    /// Connections accepted that have not yet completed their handshake. Beyond this, a new
    /// connection is closed at once, so idle sockets cannot use up the replica's memory or file
    /// descriptors; each is closed within <see cref="HandshakeTimeout"/> anyway.
    /// </summary>
    public const int MaxUnauthenticatedConnections = 128;

    /// <summary>At most one log line per this interval about refused connections (with the count since the last one), so a flood cannot flood the log.</summary>
    public static readonly TimeSpan RefusedLogInterval = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Replies queued for one client and not yet taken by its socket, counted as value bytes plus
    /// <see cref="ReplyOverheadBytes"/> each. A client that stops reading its replies while it
    /// keeps asking is closed beyond this, rather than buffered without bound: the core loop
    /// never waits for a client. 64 MiB holds 64 replies of the largest value.
    /// </summary>
    public const long MaxQueuedReplyBytes = 64L << 20;

    /// <summary>What a reply costs in <see cref="MaxQueuedReplyBytes"/> besides its value (the object and its frame).</summary>
    public const int ReplyOverheadBytes = 128;

    /// <summary>
    /// How long a peer link's connect, and its TCP_USER_TIMEOUT (data sent and not acknowledged),
    /// may take, as a multiple of <c>suspicionTimeoutMs</c>. A peer silent for the suspicion
    /// timeout is removed from the view anyway, so holding a silent connection longer only delays
    /// the fresh one that is needed once the network heals (design.md §10); twice the timeout
    /// never drops a link before the failure detector would have acted, and leaves room for TCP's
    /// retransmission timer, which is when the kernel checks the limit. Heartbeats flow every
    /// <c>heartbeatIntervalMs</c>, so a peer link always has data in flight to time.
    /// </summary>
    public const int PeerTimeoutSuspicions = 2;

    /// <summary>Linux's TCP_USER_TIMEOUT socket option (level IPPROTO_TCP = 6), in milliseconds.</summary>
    public const int TcpUserTimeoutOption = 18;

    /// <summary>How often the core loop is handed the time (heartbeats, suspicion, request timeouts all count in these ticks).</summary>
    public static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Inputs (frames, ticks, lookups) waiting for the core loop. Beyond this, connections wait
    /// to hand over more (backpressure onto their sockets) rather than queue without bound.
    /// </summary>
    public const int CoreInputQueueCapacity = 65_536;

    /// <summary>
    /// Inputs the core loop takes before it asks the core for a Ready: one round (one group
    /// commit, one batch per peer) covers a whole burst, and a flood still yields to sending.
    /// </summary>
    public const int MaxInputsPerRound = 4096;

    /// <summary>How long a stop waits for connections and loops to finish before it drops them.</summary>
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(3);

    /// <summary>The listening socket's backlog of connections not yet accepted.</summary>
    public const int ListenBacklog = 512;

    /// <summary>The largest chunk of a backup or catch-up stream (also kept below maxFrameBytes).</summary>
    public const int StreamChunkBytes = 1 << 20;

    /// <summary>
    /// How long the engine view a catch-up streamed is kept after its stream ends, so that a
    /// broken stream resumes on the same bytes; it pins the engine's pages of that moment (the
    /// engine file grows instead of reusing them) until then.
    /// </summary>
    public static readonly TimeSpan TransferResumeWindow = TimeSpan.FromSeconds(60);

    /// <summary>Room a stream chunk leaves in its frame for the chunk's other fields, when maxFrameBytes is smaller than a chunk.</summary>
    public const int StreamChunkFrameOverheadBytes = 4096;

    /// <summary>How long a replica starting up waits for each peer to say what it holds.</summary>
    public static readonly TimeSpan StateQueryTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Catch-ups a starting replica runs before it starts anyway (a busy peer can stay ahead of each one).</summary>
    public const int MaxCatchUpsAtStart = 3;

    /// <summary>Connections one catch-up stream may take, resuming where the last broke, before the peers are asked again.</summary>
    public const int MaxCatchUpStreamTries = 10;
}

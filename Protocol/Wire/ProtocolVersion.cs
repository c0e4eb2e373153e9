namespace KvReplica.Protocol.Wire;

/// <summary>The version both sides of a connection must speak; bumped on any incompatible change.</summary>
public static class ProtocolVersion
{
    // 2: conditional writes, transactions, multi-key reads, scans and watches (issue 13).
    public const int Current = 2;
}

/// <summary>Fixed limits of the data model (docs/protocol.md, "Limits").</summary>
public static class Limits
{
    /// <summary>Keys are UTF-8 strings of 1 to this many bytes.</summary>
    public const int MaxKeyBytes = 1024;

    /// <summary>Default for cluster.json <c>maxValueBytes</c>: 1 MiB.</summary>
    public const int DefaultMaxValueBytes = 1 << 20;

    /// <summary>
    /// Default largest frame payload. Large enough for a batch of maximum-size values plus
    /// headroom; anything larger closes the connection before its body is read.
    /// </summary>
    public const int DefaultMaxFrameBytes = 16 << 20;

    /// <summary>
    /// Largest Lamport time (and view number) a replica accepts from a peer: 2^62. A clock that
    /// stamps a billion writes a second takes 146 years to get there, so anything larger is
    /// malformed; the headroom keeps <c>time + 1</c> from ever overflowing into negative stamps.
    /// </summary>
    public const long MaxLamportTime = 1L << 62;

    /// <summary>Most keys one MultiGet reads.</summary>
    public const int MaxMultiKeys = 1000;

    /// <summary>Most keys one scan page returns.</summary>
    public const int MaxScanLimit = 10_000;

    /// <summary>Most compares, and most writes per branch, in one transaction.</summary>
    public const int MaxTxnCompares = 64;
    public const int MaxTxnOps = 128;
}

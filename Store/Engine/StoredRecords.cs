using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using MessagePack;

namespace KvReplica.Store.Engine;

// How an on-disk engine stores its applied point and its sessions (MessagePack, integer keys:
// part of the data directory's format, so keys are never renumbered).

/// <summary>The stored form of an <see cref="AppliedPoint"/>.</summary>
[MessagePackObject]
public sealed class StoredAppliedPoint
{
    [Key(0)] public long LastAppliedTime { get; set; }
    [Key(1)] public int LastAppliedReplica { get; set; }
    [Key(2)] public Dictionary<int, long> AppliedThroughByOrigin { get; set; } = [];
    [Key(3)] public long AppliedWrites { get; set; }
    [Key(4)] public long KeyCount { get; set; }
    [Key(5)] public long SessionTouches { get; set; }
}

/// <summary>The stored form of a <see cref="SessionRecord"/> (the client id is the key).</summary>
[MessagePackObject]
public sealed class StoredSession
{
    [Key(0)] public long Floor { get; set; }
    [Key(1)] public long LastTouched { get; set; }
    [Key(2)] public long[] Sequences { get; set; } = [];
    [Key(3)] public ReplyStatus[] Results { get; set; } = [];
}


using MessagePack;

namespace KvReplica.Protocol.Core;

/// <summary>
/// A removed replica, being added back, replaced what it held with what the view change's
/// coordinator holds (docs/design.md §9). Logged before the writes the catch-up carried, it
/// tells recovery to forget every undelivered write logged before it: some of them may have
/// been trimmed by a view change this replica never saw. Keys are part of the on-disk format.
/// </summary>
[MessagePackObject]
public sealed class HeldRebase
{
    /// <summary>The configured replicas, in id order.</summary>
    [Key(0)] public int[] Origins { get; set; } = [];

    /// <summary>For each origin, the largest time of its writes held (or delivered) after the rebase.</summary>
    [Key(1)] public long[] HeldThrough { get; set; } = [];
}

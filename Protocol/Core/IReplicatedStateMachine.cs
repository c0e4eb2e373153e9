using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

/// <summary>A write as the state machine applies it, in total order.</summary>
/// <param name="Stamp">Its position in the total order; becomes the value's version.</param>
/// <param name="Operation">Put or Delete.</param>
/// <param name="Key">Validated key.</param>
/// <param name="Value">Put only.</param>
/// <param name="ClientId">The writing client's session id; 0 for an internal write.</param>
/// <param name="Sequence">The client's sequence number for exactly-once application.</param>
/// <param name="AckedBelow">Every lower sequence of this client has had its reply.</param>
public sealed record WriteCommand(Stamp Stamp, Operation Operation, string Key, byte[]? Value, ulong ClientId, long Sequence, long AckedBelow);

/// <summary>A key's current value at one replica.</summary>
/// <param name="Found">Whether the key is present.</param>
/// <param name="Value">The value when present.</param>
/// <param name="Version">Stamp of the write that set it (<see cref="Stamp.Zero"/> when absent).</param>
public readonly record struct StoredValue(bool Found, byte[]? Value, Stamp Version);

/// <summary>
/// The deterministic state machine the core applies delivered writes to (Store/ implements it).
/// The same sequence of <see cref="Apply"/> calls gives the same results and state on every
/// replica. Reads may reach the storage engine under the store (memory-mapped pages), but never
/// block on the network and never fail for a reason another replica would not share.
/// </summary>
public interface IReplicatedStateMachine
{
    /// <summary>
    /// Applies one delivered write, or recognises it as a retry of a write already applied for the
    /// same (client id, sequence) and returns that write's result without applying it again.
    /// Returns Ok (put; delete of a present key) or NotFound (delete of an absent key).
    /// </summary>
    ReplyStatus Apply(WriteCommand command, out bool duplicate);

    /// <summary>The key's current value.</summary>
    StoredValue Read(string key);

    /// <summary>
    /// The keys of <paramref name="range"/> in key order (<see cref="KeyOrder"/>), with their
    /// values and versions, as applied so far. Enumerate it before the next write is applied.
    /// </summary>
    IEnumerable<StoredEntry> Scan(KeyRange range);
}

using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

/// <summary>A write as the state machine applies it, in total order.</summary>
/// <param name="Stamp">Its position in the total order; becomes the value's version.</param>
/// <param name="Operation">Put, Delete, Update, CompareAndSet or Txn.</param>
/// <param name="Key">Validated key.</param>
/// <param name="Value">Put only.</param>
/// <param name="ClientId">The writing client's session id; 0 for an internal write.</param>
/// <param name="Sequence">The client's sequence number for exactly-once application.</param>
/// <param name="AckedBelow">Every lower sequence of this client has had its reply.</param>
public sealed record WriteCommand(Stamp Stamp, Operation Operation, string Key, byte[]? Value, ulong ClientId, long Sequence, long AckedBelow)
{
    /// <summary>CompareAndSet: the version the key must have; <see cref="Stamp.Zero"/> for "absent".</summary>
    public Stamp Expected { get; init; }

    /// <summary>Txn: the transaction (its <see cref="Key"/> is empty).</summary>
    public TxnBody? Txn { get; init; }

    /// <summary>The distinct keys a transaction's branches write.</summary>
    public static IEnumerable<string> WrittenKeys(TxnBody txn) => txn.Then.Concat(txn.Else).Select(op => op.Key).Distinct(StringComparer.Ordinal);
}

/// <summary>
/// One change to one key, as kept in the change history that watches and scans at a past
/// revision read: the key's new value (null: deleted) and what it was before.
/// </summary>
/// <param name="Revision">The stamp of the write that made it.</param>
/// <param name="Key">The key changed.</param>
/// <param name="Value">Its new value; null when the change deleted it.</param>
/// <param name="Previous">What the key held just before (absent or a value and its version).</param>
public readonly record struct KeyChange(Stamp Revision, string Key, byte[]? Value, StoredValue Previous);

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
    /// Returns Ok (put; delete of a present key; update of a present key; compare-and-set whose
    /// version matched; a transaction whose compares held), NotFound (delete or update of an
    /// absent key) or ConditionFailed (compare-and-set whose version did not match; a transaction
    /// that ran its else-branch).
    /// </summary>
    ReplyStatus Apply(WriteCommand command, out bool duplicate);

    /// <summary>The key's current value.</summary>
    StoredValue Read(string key);

    /// <summary>
    /// The keys of <paramref name="range"/> in key order (<see cref="KeyOrder"/>), with their
    /// values and versions, as applied so far. Enumerate it before the next write is applied.
    /// </summary>
    IEnumerable<StoredEntry> Scan(KeyRange range);

    /// <summary>
    /// The change history starts after this stamp: every change with a later revision is in
    /// <see cref="ChangesAfter"/>, none before. It moves forward as old changes are dropped.
    /// </summary>
    Stamp HistoryStart { get; }

    /// <summary>
    /// The retained changes with a revision after <paramref name="after"/> (which must not be
    /// before <see cref="HistoryStart"/>), in delivery order; the changes of one transaction in
    /// the order its branch lists them. Enumerate it before the next write is applied.
    /// </summary>
    IEnumerable<KeyChange> ChangesAfter(Stamp after);
}

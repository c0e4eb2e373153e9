using System.Text;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

/// <summary>
/// An etcd-style transaction to run with <see cref="KvClient.TxnAsync"/>: if every compare holds,
/// the then-operations, otherwise the else-operations, atomically at one place in the total order.
/// Compares read the state just before the transaction; the operations are PUT and DELETE, at most
/// one per key per branch.
/// </summary>
public sealed class KvTxn
{
    private readonly List<TxnCompare> _compares = [];
    private readonly List<TxnOp> _then = [];
    private readonly List<TxnOp> _else = [];

    /// <summary>Holds when <paramref name="key"/> is present.</summary>
    public KvTxn IfExists(string key) => Compare(key, TxnCompareKind.Exists);

    /// <summary>Holds when <paramref name="key"/> is absent.</summary>
    public KvTxn IfAbsent(string key) => Compare(key, TxnCompareKind.Absent);

    /// <summary>Holds when <paramref name="key"/> is present with exactly <paramref name="version"/>.</summary>
    public KvTxn IfVersion(string key, KvVersion version) => Compare(key, TxnCompareKind.VersionEquals, version);

    /// <summary>Holds when <paramref name="key"/> is absent or has another version than <paramref name="version"/>.</summary>
    public KvTxn IfNotVersion(string key, KvVersion version) => Compare(key, TxnCompareKind.VersionNotEquals, version);

    /// <summary>Holds when <paramref name="key"/> is present with exactly this value.</summary>
    public KvTxn IfValue(string key, ReadOnlyMemory<byte> value) => Compare(key, TxnCompareKind.ValueEquals, value: value.ToArray());

    /// <summary>Holds when <paramref name="key"/> is present with exactly this UTF-8 value.</summary>
    public KvTxn IfValue(string key, string value) => IfValue(key, Encoding.UTF8.GetBytes(value));

    /// <summary>Holds when <paramref name="key"/> is absent or has another value.</summary>
    public KvTxn IfNotValue(string key, ReadOnlyMemory<byte> value) => Compare(key, TxnCompareKind.ValueNotEquals, value: value.ToArray());

    /// <summary>Adds a compare of the given kind (the version for version compares, the value for value compares).</summary>
    public KvTxn Compare(string key, TxnCompareKind kind, KvVersion version = default, byte[]? value = null)
    {
        _compares.Add(new TxnCompare { Key = key, Kind = kind, VersionTime = version.Time, VersionReplica = version.ReplicaId, Value = value });
        return this;
    }

    /// <summary>Stores a value when the compares hold.</summary>
    public KvTxn ThenPut(string key, ReadOnlyMemory<byte> value) => Add(_then, Operation.Put, key, value.ToArray());

    /// <summary>Stores a UTF-8 value when the compares hold.</summary>
    public KvTxn ThenPut(string key, string value) => ThenPut(key, Encoding.UTF8.GetBytes(value));

    /// <summary>Deletes a key when the compares hold.</summary>
    public KvTxn ThenDelete(string key) => Add(_then, Operation.Delete, key, null);

    /// <summary>Stores a value when a compare fails.</summary>
    public KvTxn ElsePut(string key, ReadOnlyMemory<byte> value) => Add(_else, Operation.Put, key, value.ToArray());

    /// <summary>Stores a UTF-8 value when a compare fails.</summary>
    public KvTxn ElsePut(string key, string value) => ElsePut(key, Encoding.UTF8.GetBytes(value));

    /// <summary>Deletes a key when a compare fails.</summary>
    public KvTxn ElseDelete(string key) => Add(_else, Operation.Delete, key, null);

    private KvTxn Add(List<TxnOp> branch, Operation operation, string key, byte[]? value)
    {
        branch.Add(new TxnOp { Operation = operation, Key = key, Value = value });
        return this;
    }

    internal TxnBody ToBody() => new() { Compares = [.. _compares], Then = [.. _then], Else = [.. _else] };
}

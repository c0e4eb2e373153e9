using System.Runtime.CompilerServices;
using System.Text;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

// The operations beyond PUT, GET and DELETE: conditional writes, EXISTS, transactions, MGET and
// scans. Each is ordered by the total order (writes) or answered linearizably (reads), retried
// and failed over like the others (docs/design.md, "Operations").
public sealed partial class KvClient
{
    /// <summary>Stores <paramref name="value"/> only if <paramref name="key"/> exists.</summary>
    /// <returns>Written with the new version, or not written (the key was absent).</returns>
    public async Task<KvConditionalResult> UpdateAsync(string key, ReadOnlyMemory<byte> value, CancellationToken ct = default)
    {
        var reply = await ExecuteAsync(new ClientRequest { Operation = Operation.Update, Key = key, Value = AsArray(value) }, ct).ConfigureAwait(false);
        return new KvConditionalResult(reply.Status == ReplyStatus.Ok, VersionOf(reply));
    }

    /// <summary>Stores the UTF-8 <paramref name="value"/> only if <paramref name="key"/> exists.</summary>
    public Task<KvConditionalResult> UpdateAsync(string key, string value, CancellationToken ct = default) =>
        UpdateAsync(key, Encoding.UTF8.GetBytes(value), ct);

    /// <summary>
    /// Stores <paramref name="value"/> only if <paramref name="key"/>'s version is
    /// <paramref name="expected"/> (<see cref="KvVersion.None"/>: only if the key is absent).
    /// </summary>
    /// <returns>
    /// Written with the new version; or not written, with the key's version when the write was
    /// ordered (for a retried write whose first attempt was decided, the version as of the retry).
    /// </returns>
    public async Task<KvConditionalResult> CompareAndSetAsync(string key, KvVersion expected, ReadOnlyMemory<byte> value, CancellationToken ct = default)
    {
        var reply = await ExecuteAsync(new ClientRequest
        {
            Operation = Operation.CompareAndSet,
            Key = key,
            Value = AsArray(value),
            ExpectedTime = expected.Time,
            ExpectedReplica = expected.ReplicaId,
        }, ct).ConfigureAwait(false);
        return new KvConditionalResult(reply.Status == ReplyStatus.Ok, VersionOf(reply));
    }

    /// <summary>Compare-and-set of a UTF-8 value.</summary>
    public Task<KvConditionalResult> CompareAndSetAsync(string key, KvVersion expected, string value, CancellationToken ct = default) =>
        CompareAndSetAsync(key, expected, Encoding.UTF8.GetBytes(value), ct);

    /// <summary>Stores <paramref name="value"/> only if <paramref name="key"/> is absent: compare-and-set with <see cref="KvVersion.None"/>.</summary>
    public Task<KvConditionalResult> PutIfAbsentAsync(string key, ReadOnlyMemory<byte> value, CancellationToken ct = default) =>
        CompareAndSetAsync(key, KvVersion.None, value, ct);

    /// <summary>Whether <paramref name="key"/> exists, and its version; linearizable like GET, without fetching the value.</summary>
    public async Task<KvExistsResult> ExistsAsync(string key, CancellationToken ct = default)
    {
        var reply = await ExecuteAsync(new ClientRequest { Operation = Operation.Exists, Key = key }, ct).ConfigureAwait(false);
        return new KvExistsResult(reply.Status == ReplyStatus.Ok, VersionOf(reply));
    }

    /// <summary>Runs <paramref name="txn"/> atomically in the total order.</summary>
    public async Task<KvTxnResult> TxnAsync(KvTxn txn, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(txn);
        var reply = await ExecuteAsync(new ClientRequest { Operation = Operation.Txn, Txn = txn.ToBody() }, ct).ConfigureAwait(false);
        return new KvTxnResult(reply.Status == ReplyStatus.Ok, new KvVersion(reply.RevisionTime, reply.RevisionReplica));
    }

    /// <summary>Stores every pair at once: one transaction without compares, so all keys get the same version.</summary>
    public Task<KvTxnResult> MultiSetAsync(IEnumerable<KeyValuePair<string, ReadOnlyMemory<byte>>> pairs, CancellationToken ct = default)
    {
        var txn = new KvTxn();
        foreach (var (key, value) in pairs)
        {
            txn.ThenPut(key, value);
        }
        return TxnAsync(txn, ct);
    }

    /// <summary>Reads every key as of one point of the order, linearizably.</summary>
    public async Task<KvMultiGetResult> MultiGetAsync(IReadOnlyList<string> keys, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var reply = await ExecuteAsync(new ClientRequest { Operation = Operation.MultiGet, Keys = [.. keys] }, ct).ConfigureAwait(false);
        var entries = (reply.Entries ?? []).Select(ToEntry).ToList();
        if (entries.Count != keys.Count)
        {
            throw new KvException(ErrorCode.None, $"MGET of {keys.Count} keys answered with {entries.Count}: the replica is not speaking this protocol");
        }
        return new KvMultiGetResult(entries, new KvVersion(reply.RevisionTime, reply.RevisionReplica));
    }

    /// <summary>
    /// One page of the keys that begin with <paramref name="prefix"/>, in key order. The first
    /// page (<paramref name="cursor"/> null) is read linearizably at a fresh revision; the next
    /// pages, from <see cref="KvScanPage.Next"/>, are read at that same revision, so the pages
    /// together are one consistent state. A later page fails with <see cref="ErrorCode.Compacted"/>
    /// once that revision is older than the replica's change history.
    /// </summary>
    public async Task<KvScanPage> ScanPageAsync(string prefix, KvScanCursor? cursor = null, int limit = 1000, bool keysOnly = false, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        if (cursor is not null && cursor.Prefix != prefix)
        {
            throw KvExceptionFactory.InvalidRequest($"the cursor belongs to a scan of prefix '{cursor.Prefix}', not '{prefix}'");
        }
        var reply = await ExecuteAsync(new ClientRequest
        {
            Operation = Operation.Scan,
            Scan = new ScanRequest
            {
                Prefix = prefix,
                After = cursor?.After,
                Limit = limit,
                RevisionTime = cursor?.Revision.Time ?? 0,
                RevisionReplica = cursor?.Revision.ReplicaId ?? 0,
                KeysOnly = keysOnly,
            },
        }, ct).ConfigureAwait(false);
        var entries = (reply.Entries ?? []).Select(ToEntry).ToList();
        var revision = new KvVersion(reply.RevisionTime, reply.RevisionReplica);
        var next = reply.More && entries.Count > 0 ? new KvScanCursor(prefix, revision, entries[^1].Key) : null;
        return new KvScanPage(entries, revision, next);
    }

    /// <summary>Every key that begins with <paramref name="prefix"/>, in key order, page by page, all at one revision.</summary>
    public async IAsyncEnumerable<KvEntry> ScanAsync(string prefix, int pageSize = 1000, bool keysOnly = false, [EnumeratorCancellation] CancellationToken ct = default)
    {
        KvScanCursor? cursor = null;
        do
        {
            var page = await ScanPageAsync(prefix, cursor, pageSize, keysOnly, ct).ConfigureAwait(false);
            foreach (var entry in page.Entries)
            {
                yield return entry;
            }
            cursor = page.Next;
        }
        while (cursor is not null);
    }

    private static KvVersion VersionOf(ClientReply reply) => new(reply.VersionTime, reply.VersionReplica);

    private static KvEntry ToEntry(KeyValue kv) => new(kv.Key, kv.Found, kv.Value ?? [], new KvVersion(kv.VersionTime, kv.VersionReplica));
}

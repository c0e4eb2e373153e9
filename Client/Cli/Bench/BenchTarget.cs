namespace KvReplica.Client.Cli.Bench;

/// <summary>
/// The requests a bench workload sends: <see cref="KvClientTarget"/> in a run, an in-memory fake
/// in the tests. Failures are thrown as by <see cref="KvClient"/> (<see cref="KvException"/>).
/// </summary>
internal interface IBenchTarget
{
    Task PutAsync(string key, ReadOnlyMemory<byte> value);

    Task<KvGetResult> GetAsync(string key);

    Task<KvConditionalResult> CompareAndSetAsync(string key, KvVersion expected, ReadOnlyMemory<byte> value);

    Task<KvTxnResult> TxnAsync(KvTxn txn);

    /// <summary>The first page of a scan of <paramref name="prefix"/>.</summary>
    Task<KvScanPage> ScanPageAsync(string prefix, int limit, bool keysOnly);

    Task<KvMultiGetResult> MultiGetAsync(IReadOnlyList<string> keys);
}

/// <summary>A bench connection: each call is one request of <see cref="KvClient"/>.</summary>
internal sealed class KvClientTarget(KvClient client) : IBenchTarget
{
    public Task PutAsync(string key, ReadOnlyMemory<byte> value) => client.PutAsync(key, value);

    public Task<KvGetResult> GetAsync(string key) => client.GetAsync(key);

    public Task<KvConditionalResult> CompareAndSetAsync(string key, KvVersion expected, ReadOnlyMemory<byte> value) =>
        client.CompareAndSetAsync(key, expected, value);

    public Task<KvTxnResult> TxnAsync(KvTxn txn) => client.TxnAsync(txn);

    public Task<KvScanPage> ScanPageAsync(string prefix, int limit, bool keysOnly) =>
        client.ScanPageAsync(prefix, cursor: null, limit, keysOnly);

    public Task<KvMultiGetResult> MultiGetAsync(IReadOnlyList<string> keys) => client.MultiGetAsync(keys);
}

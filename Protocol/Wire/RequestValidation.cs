using System.Text;

namespace KvReplica.Protocol.Wire;

/// <summary>
/// The data-model rules a request must meet, shared by the replica (which enforces them) and the
/// client library (which reports them before sending). A violation is request-local: the request
/// gets <see cref="ErrorCode.InvalidRequest"/> and the connection stays open.
/// </summary>
public static class RequestValidation
{
    /// <summary>Returns null if <paramref name="request"/> is valid, else a one-line reason.</summary>
    public static string? Check(ClientRequest request, int maxValueBytes)
    {
        if (!Enum.IsDefined(request.Operation))
        {
            return $"unknown operation {(int)request.Operation}";
        }
        switch (request.Operation)
        {
            case Operation.Status:
                return null; // no key: it asks about the replica itself
            case Operation.Txn:
                return CheckTxn(request.Txn, maxValueBytes) ?? CheckSequence(request);
            case Operation.MultiGet:
                return CheckKeys(request.Keys);
            case Operation.Scan:
                return request.Scan is not { } scan ? "SCAN needs a prefix, a limit and a cursor"
                    : CheckPrefix(scan.Prefix)
                      ?? (scan.After is not null ? CheckKey(scan.After) : null)
                      ?? (scan.Limit < 1 || scan.Limit > Limits.MaxScanLimit ? $"scan limit {scan.Limit} is outside 1..{Limits.MaxScanLimit}" : null)
                      ?? CheckRevision(scan.RevisionTime, scan.RevisionReplica);
            case Operation.Watch:
                return request.Watch is not { } watch ? "WATCH needs a prefix"
                    : CheckPrefix(watch.Prefix) ?? CheckRevision(watch.AfterTime, watch.AfterReplica);
        }
        bool accessChange = request.Operation is Operation.UserPut or Operation.UserDelete or Operation.RolePut or Operation.RoleDelete;
        string? keyError = accessChange
            ? Auth.AccessKeys.CheckName(request.Key ?? "", request.Operation is Operation.UserPut or Operation.UserDelete ? "user" : "role")
            : CheckKey(request.Key);
        if (keyError is not null)
        {
            return keyError;
        }
        if (request.Operation is Operation.Put or Operation.Update or Operation.CompareAndSet or Operation.UserPut or Operation.RolePut)
        {
            if (request.Value is null)
            {
                return $"{request.Operation} needs a value";
            }
            if (request.Value.Length > maxValueBytes)
            {
                return $"value is {request.Value.Length} bytes; the limit is {maxValueBytes}";
            }
        }
        if (request.Operation == Operation.CompareAndSet)
        {
            string? versionError = CheckRevision(request.ExpectedTime, request.ExpectedReplica);
            if (versionError is not null)
            {
                return versionError;
            }
        }
        return CheckSequence(request);
    }

    private static string? CheckSequence(ClientRequest request) =>
        IsWrite(request.Operation) && request.Sequence <= 0 ? "a write needs a client sequence number of 1 or more" : null;

    /// <summary>Returns null if <paramref name="txn"/> is a valid transaction, else a one-line reason.</summary>
    public static string? CheckTxn(TxnBody? txn, int maxValueBytes)
    {
        if (txn is null || txn.Compares is null || txn.Then is null || txn.Else is null)
        {
            return "TXN needs compares, then-operations and else-operations (any may be empty)";
        }
        if (txn.Compares.Length > Limits.MaxTxnCompares)
        {
            return $"a transaction has {txn.Compares.Length} compares; the limit is {Limits.MaxTxnCompares}";
        }
        if (txn.Then.Length > Limits.MaxTxnOps || txn.Else.Length > Limits.MaxTxnOps)
        {
            return $"a transaction branch has {Math.Max(txn.Then.Length, txn.Else.Length)} operations; the limit is {Limits.MaxTxnOps}";
        }
        long valueBytes = 0;
        foreach (var compare in txn.Compares)
        {
            if (compare is null)
            {
                return "a transaction has an empty compare";
            }
            if (CheckKey(compare.Key) is { } keyError)
            {
                return $"a compare's {keyError}";
            }
            if (!Enum.IsDefined(compare.Kind))
            {
                return $"a compare of {compare.Key} has unknown kind {(int)compare.Kind}";
            }
            if (compare.Kind is TxnCompareKind.ValueEquals or TxnCompareKind.ValueNotEquals)
            {
                if (compare.Value is null)
                {
                    return $"a value compare of {compare.Key} has no value";
                }
                valueBytes += compare.Value.Length;
            }
            if (compare.Kind is TxnCompareKind.VersionEquals or TxnCompareKind.VersionNotEquals && CheckRevision(compare.VersionTime, compare.VersionReplica) is { } versionError)
            {
                return $"a compare of {compare.Key}: {versionError}";
            }
        }
        foreach (var branch in new[] { txn.Then, txn.Else })
        {
            var written = new HashSet<string>(StringComparer.Ordinal);
            foreach (var op in branch)
            {
                if (op is null)
                {
                    return "a transaction has an empty operation";
                }
                if (op.Operation is not (Operation.Put or Operation.Delete))
                {
                    return $"a transaction may only PUT and DELETE, not {op.Operation}";
                }
                if (CheckKey(op.Key) is { } keyError)
                {
                    return $"a transaction operation's {keyError}";
                }
                if (!written.Add(op.Key))
                {
                    return $"a transaction branch writes {op.Key} twice";
                }
                if (op.Operation == Operation.Put)
                {
                    if (op.Value is null)
                    {
                        return $"a transaction PUT of {op.Key} has no value";
                    }
                    valueBytes += op.Value.Length;
                }
            }
        }
        return valueBytes > maxValueBytes ? $"a transaction carries {valueBytes} bytes of values; the limit is {maxValueBytes} in all" : null;
    }

    private static string? CheckKeys(string[]? keys)
    {
        if (keys is null || keys.Length == 0)
        {
            return "MGET needs at least one key";
        }
        if (keys.Length > Limits.MaxMultiKeys)
        {
            return $"MGET of {keys.Length} keys; the limit is {Limits.MaxMultiKeys}";
        }
        foreach (string key in keys)
        {
            if (CheckKey(key) is { } error)
            {
                return error;
            }
        }
        return null;
    }

    /// <summary>Returns null if <paramref name="prefix"/> is a valid prefix (empty, or a valid key), else a one-line reason.</summary>
    public static string? CheckPrefix(string? prefix) =>
        prefix is null ? "prefix is missing" : prefix.Length == 0 ? null : CheckKey(prefix) is { } error ? "prefix " + error["key ".Length..] : null;

    private static string? CheckRevision(long time, int replica) =>
        time < 0 || time > Limits.MaxLamportTime || replica < 0 || (time == 0) != (replica == 0)
            ? $"revision {time}.{replica} is not a stamp (time 1..2^62 and a replica id, or 0.0)"
            : null;

    /// <summary>Operations that go through the total order (and so carry a client id and sequence number).</summary>
    public static bool IsWrite(Operation operation) =>
        operation is Operation.Put or Operation.Delete or Operation.Update or Operation.CompareAndSet or Operation.Txn or Operation.UserPut or Operation.UserDelete or Operation.RolePut or Operation.RoleDelete;

    /// <summary>Returns null if <paramref name="key"/> is a valid key, else a one-line reason.</summary>
    public static string? CheckKey(string? key)
    {
        if (string.IsNullOrEmpty(key))
        {
            return "key is empty";
        }
        int bytes;
        try
        {
            bytes = StrictUtf8.GetByteCount(key);
        }
        catch (EncoderFallbackException)
        {
            return "key is not valid UTF-8 text";
        }
        return bytes > Limits.MaxKeyBytes ? $"key is {bytes} bytes; the limit is {Limits.MaxKeyBytes}" : null;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}

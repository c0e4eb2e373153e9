using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace KvReplica.Tests.Linearizability;

/// <summary>The operations the checker knows. New kinds are appended; histories on disk name them by string.</summary>
public enum KvOperationKind
{
    /// <summary>Writes <see cref="KvOperation.Input"/> to <see cref="KvOperation.Key"/>.</summary>
    Put,
    /// <summary>Reads <see cref="KvOperation.Key"/>: Ok with <see cref="KvOperation.Output"/>, or NotFound.</summary>
    Get,
    /// <summary>Removes <see cref="KvOperation.Key"/>: Ok if it existed, NotFound if it was absent.</summary>
    Delete,
    /// <summary>Writes <see cref="KvOperation.Input"/> only if the key exists: Ok (written) or NotFound (absent, nothing written).</summary>
    Update,
    /// <summary>
    /// Compare-and-set: writes <see cref="KvOperation.Input"/> only if the key's current value equals
    /// <see cref="KvOperation.Expected"/> (null: only if the key is absent, i.e. put-if-absent).
    /// Ok (written) or ConditionFailed (nothing written); NotFound is also accepted, meaning the
    /// key was absent and so the condition failed. The store compares versions; our workloads
    /// write a unique value per write, so the value that carried the expected version stands for it.
    /// </summary>
    Cas,
    /// <summary>Reads whether the key exists: Ok (present) or NotFound (absent).</summary>
    Exists,
    /// <summary>
    /// An atomic etcd-style transaction over <see cref="KvOperation.Txn"/>: if every compare holds
    /// the then-writes run, else the else-writes. Outcome Then, Else or Unknown. MSET is a
    /// transaction with no compares and puts only (<see cref="KvOperation.MultiSet"/>).
    /// </summary>
    Txn,
    /// <summary>A consistent multi-key read: <see cref="KvOperation.Reads"/> holds each key asked and what it read (null: absent).</summary>
    Mget,
    /// <summary>
    /// A consistent read of every key starting with <see cref="KvOperation.Key"/> (the prefix):
    /// <see cref="KvOperation.Reads"/> holds the (key, value) pairs returned. The order of the
    /// pairs is not checked.
    /// </summary>
    List,
}

/// <summary>What an operation returned, as the client saw it. New outcomes are appended.</summary>
public enum KvOutcomeKind
{
    /// <summary>PUT, UPDATE, CAS: written. DELETE: the key existed. GET: returned <see cref="KvOperation.Output"/>.
    /// EXISTS: present. MGET, LIST: returned <see cref="KvOperation.Reads"/>.</summary>
    Ok,
    /// <summary>GET, EXISTS: no value. DELETE, UPDATE: the key was absent (nothing written). CAS: the key
    /// was absent, so the condition failed.</summary>
    NotFound,
    /// <summary>The client got no definite answer (timeout, error after sending): a write (PUT, DELETE,
    /// UPDATE, CAS, TXN) may or may not have taken effect, at any moment after its invocation. A read
    /// (GET, EXISTS, MGET, LIST) with this outcome constrains nothing and is ignored.</summary>
    Unknown,
    /// <summary>CAS: the key's value differed from the expected one; nothing written.</summary>
    ConditionFailed,
    /// <summary>TXN: every compare held and the then-writes ran.</summary>
    Then,
    /// <summary>TXN: some compare failed and the else-writes ran.</summary>
    Else,
}

/// <summary>What a TXN compare tests about one key.</summary>
public enum KvCompareKind
{
    /// <summary>The key holds <see cref="KvCompare.Value"/>.</summary>
    ValueEquals,
    /// <summary>The key exists, whatever its value.</summary>
    Exists,
    /// <summary>The key is absent.</summary>
    Absent,
}

/// <summary>One compare of a TXN.</summary>
/// <param name="Key">The key tested.</param>
/// <param name="Kind">What is tested about it.</param>
/// <param name="Value">For <see cref="KvCompareKind.ValueEquals"/> only: the value compared with.</param>
public sealed record KvCompare(string Key, KvCompareKind Kind, byte[]? Value = null)
{
    public override string ToString() => Kind switch
    {
        KvCompareKind.ValueEquals => $"{Key}=={KvOperation.Show(Value)}",
        KvCompareKind.Exists => $"exists({Key})",
        _ => $"absent({Key})",
    };
}

/// <summary>One write inside a TXN: a PUT of <paramref name="Value"/>, or a DELETE when it is null.</summary>
public sealed record KvWrite(string Key, byte[]? Value)
{
    public override string ToString() => Value is null ? $"delete({Key})" : $"put({Key}, {KvOperation.Show(Value)})";
}

/// <summary>One key as a multi-key read (MGET, LIST) saw it; <paramref name="Value"/> null means absent.</summary>
public sealed record KvRead(string Key, byte[]? Value)
{
    public override string ToString() => $"{Key}={(Value is null ? "absent" : KvOperation.Show(Value))}";
}

/// <summary>The body of a TXN: compares, all of which must hold for <see cref="Then"/> to run, else <see cref="Else"/> runs.</summary>
public sealed record KvTxn(IReadOnlyList<KvCompare> Compares, IReadOnlyList<KvWrite> Then, IReadOnlyList<KvWrite> Else)
{
    /// <summary>Every key a compare or a write names, sorted ordinally, without repeats.</summary>
    public IEnumerable<string> Keys =>
        Compares.Select(c => c.Key).Concat(Then.Select(w => w.Key)).Concat(Else.Select(w => w.Key)).Distinct().Order(StringComparer.Ordinal);

    public override string ToString() =>
        $"txn(if {(Compares.Count == 0 ? "true" : string.Join(" && ", Compares))} then [{string.Join(", ", Then)}] else [{string.Join(", ", Else)}])";
}

/// <summary>
/// One client operation of a recorded history. Times are in any one monotonic unit shared by
/// the whole history; an operation with an <see cref="KvOutcomeKind.Unknown"/> outcome is taken
/// to return at +infinity (record <see cref="long.MaxValue"/>).
/// </summary>
/// <remarks>
/// PUT, GET and DELETE use the positional members only. The other kinds also need
/// <see cref="Expected"/> (CAS), <see cref="Txn"/> (TXN) or <see cref="Reads"/> (MGET, LIST);
/// the static factories (<see cref="Update"/>, <see cref="CompareAndSet"/>, <see cref="KeyExists"/>,
/// <see cref="Transaction"/>, <see cref="MultiSet"/>, <see cref="MultiGet"/>, <see cref="ListPrefix"/>)
/// fill them in. For TXN and MGET, <see cref="Key"/> is only a label (the factories put the keys
/// joined by commas); for LIST it is the prefix.
/// </remarks>
public sealed record KvOperation(
    int Client,
    string Key,
    KvOperationKind Kind,
    byte[]? Input,
    KvOutcomeKind Outcome,
    byte[]? Output,
    long InvokedAt,
    long ReturnedAt)
{
    /// <summary>CAS only: the value the key must hold for the write to happen; null means the key must be absent.</summary>
    public byte[]? Expected { get; init; }

    /// <summary>TXN only: the compares and the two branches.</summary>
    public KvTxn? Txn { get; init; }

    /// <summary>MGET: each key asked, with the value read (null: absent). LIST: the pairs returned (values not null).</summary>
    public IReadOnlyList<KvRead>? Reads { get; init; }

    /// <summary>UPDATE of <paramref name="value"/>: outcome Ok, NotFound or Unknown.</summary>
    public static KvOperation Update(int client, string key, byte[] value, KvOutcomeKind outcome, long invokedAt, long returnedAt) =>
        new(client, key, KvOperationKind.Update, value, outcome, null, invokedAt, returnedAt);

    /// <summary>CAS to <paramref name="value"/> if the key holds <paramref name="expected"/> (null: if absent):
    /// outcome Ok, ConditionFailed, NotFound or Unknown.</summary>
    public static KvOperation CompareAndSet(int client, string key, byte[]? expected, byte[] value, KvOutcomeKind outcome, long invokedAt, long returnedAt) =>
        new(client, key, KvOperationKind.Cas, value, outcome, null, invokedAt, returnedAt) { Expected = expected };

    /// <summary>EXISTS: <paramref name="present"/> true records Ok, false NotFound; null records Unknown.</summary>
    public static KvOperation KeyExists(int client, string key, bool? present, long invokedAt, long returnedAt) =>
        new(client, key, KvOperationKind.Exists, null, present switch { true => KvOutcomeKind.Ok, false => KvOutcomeKind.NotFound, null => KvOutcomeKind.Unknown }, null, invokedAt, returnedAt);

    /// <summary>TXN: outcome Then, Else or Unknown.</summary>
    public static KvOperation Transaction(int client, KvTxn txn, KvOutcomeKind outcome, long invokedAt, long returnedAt) =>
        new(client, string.Join(",", txn.Keys), KvOperationKind.Txn, null, outcome, null, invokedAt, returnedAt) { Txn = txn };

    /// <summary>MSET, recorded as a TXN with no compares: outcome Ok (recorded as Then) or Unknown.</summary>
    public static KvOperation MultiSet(int client, IReadOnlyList<KvWrite> puts, KvOutcomeKind outcome, long invokedAt, long returnedAt) =>
        Transaction(client, new KvTxn([], puts, []), outcome == KvOutcomeKind.Ok ? KvOutcomeKind.Then : outcome, invokedAt, returnedAt);

    /// <summary>MGET: <paramref name="reads"/> lists each key asked and what was read (null: absent). Outcome Ok or Unknown.</summary>
    public static KvOperation MultiGet(int client, IReadOnlyList<KvRead> reads, KvOutcomeKind outcome, long invokedAt, long returnedAt) =>
        new(client, string.Join(",", reads.Select(r => r.Key)), KvOperationKind.Mget, null, outcome, null, invokedAt, returnedAt) { Reads = reads };

    /// <summary>LIST of <paramref name="prefix"/>: <paramref name="entries"/> are the pairs returned. Outcome Ok or Unknown.</summary>
    public static KvOperation ListPrefix(int client, string prefix, IReadOnlyList<KvRead> entries, KvOutcomeKind outcome, long invokedAt, long returnedAt) =>
        new(client, prefix, KvOperationKind.List, null, outcome, null, invokedAt, returnedAt) { Reads = entries };

    internal static string Show(byte[]? v) => v is null ? "-" : Encoding.UTF8.GetString(v);

    public override string ToString()
    {
        string call = Kind switch
        {
            KvOperationKind.Put => $"put({Key}, {Show(Input)})",
            KvOperationKind.Get => $"get({Key})",
            KvOperationKind.Delete => $"delete({Key})",
            KvOperationKind.Update => $"update({Key}, {Show(Input)})",
            KvOperationKind.Cas => $"cas({Key}, {(Expected is null ? "absent" : Show(Expected))} -> {Show(Input)})",
            KvOperationKind.Exists => $"exists({Key})",
            KvOperationKind.Txn => Txn?.ToString() ?? "txn(?)",
            KvOperationKind.Mget => $"mget({Key})",
            _ => $"list({Key}*)",
        };
        string result = Outcome switch
        {
            KvOutcomeKind.Unknown => "?",
            KvOutcomeKind.NotFound => "not found",
            KvOutcomeKind.ConditionFailed => "condition failed",
            KvOutcomeKind.Then => "then",
            KvOutcomeKind.Else => "else",
            _ => Kind switch
            {
                KvOperationKind.Get => Show(Output),
                KvOperationKind.Exists => "present",
                KvOperationKind.Mget or KvOperationKind.List => $"[{string.Join(", ", Reads ?? [])}]",
                _ => "ok",
            },
        };
        string end = Outcome == KvOutcomeKind.Unknown ? "inf" : ReturnedAt.ToString();
        return $"client {Client} [{InvokedAt}, {end}] {call} -> {result}";
    }
}

/// <summary>A history as JSON lines, one operation per line (values base64), kept as an artefact for replay.</summary>
public static class HistoryFile
{
    private static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static void Write(string path, IEnumerable<KvOperation> history) =>
        File.WriteAllLines(path, history.Select(op => JsonSerializer.Serialize(op, Json)));

    public static List<KvOperation> Read(string path) =>
        [.. File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<KvOperation>(l, Json)!)];
}
